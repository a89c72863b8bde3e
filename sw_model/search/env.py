"""The search environment: one episode of one step per layer, under a hardware :class:`Budget`.

Every layer of a network gets a :class:`~sw_model.search.cost.LayerChoice` (scheme ``"fixed"`` or
``"sp2"``, weight width, activation width) under a hardware :class:`Budget`, evaluated with a
:class:`~sw_model.search.cost.CostModel` (or any object with the same ``network_cost``). NumPy only.

Environment
-----------
A network of ``L`` layers is one episode of ``L`` steps. At step ``k`` the state is the feature
vector of :meth:`QuantEnv.state` (:data:`FEATURES`, each about ``[0, 1]``):

==================  ==========================================================================
``index``           ``k / L``
``fan_in``          ``fan_in_k / max_j fan_in_j``
``fan_out``         ``fan_out_k / max_j fan_out_j``
``log_weights``     ``log2(1 + n_k) / log2(1 + max_j n_j)`` with ``n`` the weight count
``std``             ``std(W_k) / max_j std(W_j)`` (0 if every std is 0)
``max_abs``         ``max|W_k| / max_j max|W_j|`` (0 if every weight is 0)
``kurtosis``        ``g / (1 + |g|)`` with ``g`` the excess kurtosis of ``W_k`` (0 if constant)
``prev_scheme``     index of the previous layer's scheme in ``schemes`` / ``max(1, S - 1)``
``prev_w_bits``     previous layer's weight width / the largest weight width of the grid
``prev_a_bits``     previous layer's activation width / the largest activation width
``budget_used``     ``budget.usage(network_cost(layers 0..k-1))`` (0 at ``k = 0``)
==================  ==========================================================================

(the three ``prev_*`` features are 0 at ``k = 0``). The action is an index into
:attr:`QuantEnv.actions`, the grid ``[LayerChoice(s, w, a) for s in schemes for w in
w_bits[s] for a in a_bits]``. Intermediate rewards are 0; the last step's reward is

``reward = shaped(quality) - penalty * max(0, u - 1) + bonus * (1 - min(u, 1))``

with ``quality = evaluate(choices)`` (higher is better) and ``u = budget.usage(cost)``: a linear
penalty for every fraction of the tightest limit exceeded, and a small bonus for the part of
the budget left unused. ``shaped`` is the identity (``shaping="linear"``) or
``-log(max(-quality, 1e-12))`` (``shaping="log"``), for qualities ``<= 0`` that span decades:
a proxy error from ``1e-5`` to ``1e-1``, or a Pendulum return from -150 to -1500. On a linear
scale the few catastrophic configurations dominate the batch-normalised advantages and the
policy cannot tell good configurations apart; on a log scale halving the error is worth the
same everywhere. ``penalty`` and ``bonus`` are in the units of the shaped quality (with
``"log"``, a penalty of 10 makes a 10% overrun cost as much as a factor ``e`` in the error).
:meth:`QuantEnv.score` memoises the evaluator per configuration, so ``evaluate`` must be
deterministic.

The records of a search: :class:`Episode` (one scored configuration) and :class:`SearchResult`
(every episode and the best fitting one).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from sw_model.checks import check_int, check_real
from sw_model.search._checks import check_choices
from sw_model.search.cost import Cost, LayerChoice, LayerShape
from sw_model.search.evaluators import ProxyEvaluator
from sw_model.search.objective import LossBound
from sw_model.search.quantize import actor_layers, actor_shapes, choice_grid, weight_stats

__all__ = [
    "FEATURES",
    "SHAPINGS",
    "Budget",
    "CostModelLike",
    "Episode",
    "QuantEnv",
    "SearchResult",
]

#: Reward shapings of :class:`QuantEnv`.
SHAPINGS: tuple[str, ...] = ("linear", "log")

#: Names of the state features of :meth:`QuantEnv.state`, in order.
FEATURES: tuple[str, ...] = (
    "index", "fan_in", "fan_out", "log_weights", "std", "max_abs", "kurtosis",
    "prev_scheme", "prev_w_bits", "prev_a_bits", "budget_used",
)


class CostModelLike(Protocol):
    """What the search needs of a cost model:
    :meth:`sw_model.search.cost.CostModel.network_cost`."""

    def network_cost(self, shapes: Sequence[LayerShape], choices: Sequence[LayerChoice],
                     *, batch: int = 1) -> Cost: ...


_LIMITS = ("luts", "dsps", "mem_bits", "cycles")


@dataclass(frozen=True)
class Budget:
    """Hardware limits a configuration must fit; ``None`` leaves a resource unlimited.

    Parameters
    ----------
    luts, dsps : float, optional
        LUTs and DSP slices (``> 0``).
    mem_bits, cycles : int, optional
        Weight memory bits and cycles per inference (``> 0``).

    Raises
    ------
    TypeError
        If a limit is not a number (an integer for ``mem_bits`` and ``cycles``).
    ValueError
        If a limit is not positive and finite.
    """

    luts: float | None = None
    dsps: float | None = None
    mem_bits: int | None = None
    cycles: int | None = None

    def __post_init__(self) -> None:
        for name in _LIMITS:
            value = getattr(self, name)
            if value is None:
                continue
            if name in ("mem_bits", "cycles"):
                v: float = check_int(value, f"Budget {name}")
                if v <= 0:
                    raise ValueError(f"Budget {name} must be positive, not {value!r}")
            else:
                v = check_real(value, f"Budget {name}", minimum=0.0, min_open=True)
            object.__setattr__(self, name, v)

    @property
    def limits(self) -> dict[str, float]:
        """The given limits by name (``luts``, ``dsps``, ``mem_bits``, ``cycles``)."""
        return {n: getattr(self, n) for n in _LIMITS if getattr(self, n) is not None}

    def usage(self, cost: Cost) -> float:
        """``max(cost.<r> / limit_r)`` over the given limits (0 with no limit).

        Raises
        ------
        TypeError
            If ``cost`` is not a :class:`~sw_model.search.cost.Cost`.
        """
        if not isinstance(cost, Cost):
            raise TypeError(f"cost must be a Cost, not {cost!r}")
        return max((float(getattr(cost, n)) / lim for n, lim in self.limits.items()),
                   default=0.0)

    def fits(self, cost: Cost) -> bool:
        """Whether every resource of ``cost`` is within its limit."""
        if not isinstance(cost, Cost):
            raise TypeError(f"cost must be a Cost, not {cost!r}")
        return all(float(getattr(cost, n)) <= lim for n, lim in self.limits.items())


@dataclass(frozen=True)
class Episode:
    """One evaluated configuration.

    Attributes
    ----------
    choices : tuple of LayerChoice
    cost : Cost
    quality : float
        ``evaluate(choices)``.
    usage : float
        ``budget.usage(cost)``.
    fits : bool
        ``budget.fits(cost)``.
    reward : float
        The final reward (see the module docs).
    merit : float or None
        What :meth:`SearchResult.record` maximises among fitting episodes: None for the
        quality (under a :class:`Budget`); under a
        :class:`~sw_model.search.objective.LossBound`, minus the cost metric.
    """

    choices: tuple[LayerChoice, ...]
    cost: Cost
    quality: float
    usage: float
    fits: bool
    reward: float
    merit: float | None = None

    def row(self) -> dict[str, Any]:
        """A flat dict for a CSV row: choices as ``scheme:w_bits:a_bits`` joined by ``|``."""
        return {
            "choices": "|".join(f"{c.scheme}:{c.w_bits}:{c.a_bits}" for c in self.choices),
            "luts": self.cost.luts, "dsps": self.cost.dsps, "mem_bits": self.cost.mem_bits,
            "cycles": self.cost.cycles, "quality": self.quality, "usage": self.usage,
            "fits": self.fits, "reward": self.reward,
        }


class QuantEnv:
    """The episodic search: one step per layer, in order (see the module docs).

    Parameters
    ----------
    shapes : sequence of LayerShape
        The layers, in order.
    weights : sequence of array_like
        Each layer's float weights, shape ``(fan_out, fan_in)`` (for the statistics).
    cost_model : CostModelLike
        Anything with ``network_cost(shapes, choices, batch=...) -> Cost``.
    budget : Budget or LossBound
        Hardware limits (maximise the quality within them), or a
        :class:`~sw_model.search.objective.LossBound` (minimise its cost metric while the
        quality, ``-loss``, meets the bound): then ``usage`` is the metric over its scale,
        ``fits`` whether the quality meets the bound, the reward
        :meth:`~sw_model.search.objective.LossBound.reward`, and ``penalty``, ``bonus`` and
        ``shaping`` are not used.
    evaluate : callable
        ``evaluate(choices) -> float``, higher is better, deterministic.
    w_bits : mapping of str to sequence of int, optional
        Weight widths per scheme; default ``sw_model.search.cost.W_BITS``.
    a_bits : sequence of int, optional
        Activation widths; default ``sw_model.search.cost.A_BITS``.
    batch : int
        Passed to ``network_cost``.
    penalty : float
        ``>= 0``, weight of the over-budget penalty.
    bonus : float
        ``>= 0``, weight of the bonus for unused budget.
    shaping : {"linear", "log"}
        How the quality enters the reward: as it is, or as ``-log(max(-quality, 1e-12))``
        (for qualities ``<= 0`` whose magnitudes span decades, as a proxy error or a Pendulum
        return: a halving of the error or of the lost reward is worth ``log 2`` anywhere).

    Attributes
    ----------
    shapes : tuple of LayerShape
    weights : tuple of numpy.ndarray
        The layers' float weights (``float64``).
    cost_model, budget, evaluate, batch, penalty, bonus, shaping
        As given.
    actions : tuple of LayerChoice
        The action grid; an action is an index into it.
    schemes : tuple of str
    w_bits : dict of str to tuple of int
        Sorted widths per scheme.
    a_bits : tuple of int
        Sorted.
    stats : numpy.ndarray, shape (L, 3)
        :func:`~sw_model.search.quantize.weight_stats` of every layer.

    Raises
    ------
    TypeError, ValueError
        For a parameter of the wrong type or value (the message names it).
    """

    def __init__(self, shapes: Sequence[LayerShape], weights: Sequence[npt.ArrayLike], *,
                 cost_model: CostModelLike, budget: Budget | LossBound,
                 evaluate: Callable[[tuple[LayerChoice, ...]], float],
                 w_bits: Mapping[str, Sequence[int]] | None = None,
                 a_bits: Sequence[int] | None = None, batch: int = 1, penalty: float = 2.0,
                 bonus: float = 0.05, shaping: str = "linear") -> None:
        if isinstance(shapes, str | bytes) or not isinstance(shapes, Sequence) or not shapes:
            raise TypeError(f"shapes must be a non-empty sequence of LayerShape, not {shapes!r}")
        for s in shapes:
            if not isinstance(s, LayerShape):
                raise TypeError(f"shapes must hold LayerShape objects, not {s!r}")
        if isinstance(weights, str | bytes) or not isinstance(weights, Sequence):
            raise TypeError(f"weights must be a sequence of arrays, not {weights!r}")
        if len(weights) != len(shapes):
            raise ValueError(f"weights must have {len(shapes)} arrays (one per layer), not "
                             f"{len(weights)}")
        mats = []
        for s, w in zip(shapes, weights, strict=True):
            arr = np.asarray(w, dtype=np.float64)
            if arr.shape != (s.fan_out, s.fan_in):
                raise ValueError(f"weights of layer {s.name!r} must have shape "
                                 f"{(s.fan_out, s.fan_in)}, not {arr.shape}")
            mats.append(arr)
        if not callable(getattr(cost_model, "network_cost", None)):
            raise TypeError(f"cost_model must have a network_cost method, not {cost_model!r}")
        if not isinstance(budget, Budget | LossBound):
            raise TypeError(f"budget must be a Budget or a LossBound, not {budget!r}")
        if not callable(evaluate):
            raise TypeError(f"evaluate must be callable, not {evaluate!r}")
        self.shapes = tuple(shapes)
        self.weights = tuple(mats)
        self.cost_model = cost_model
        self.budget = budget
        self.evaluate = evaluate
        self.actions, self.schemes, self.w_bits, self.a_bits = choice_grid(w_bits, a_bits)
        self.batch = check_int(batch, "batch", minimum=1)
        self.penalty = check_real(penalty, "penalty", minimum=0.0)
        self.bonus = check_real(bonus, "bonus", minimum=0.0)
        if shaping not in SHAPINGS:
            raise ValueError(f"shaping must be one of {SHAPINGS!r}, not {shaping!r}")
        self.shaping = shaping
        self.stats = np.array([weight_stats(w) for w in mats])
        self._index = {c: i for i, c in enumerate(self.actions)}
        self._static = self._static_features()
        self._scores: dict[tuple[LayerChoice, ...], Episode] = {}
        self._choices: list[LayerChoice] = []

    @classmethod
    def from_actor(cls, weights: Mapping[str, Any], states: npt.ArrayLike, *,
                   cost_model: CostModelLike, budget: Budget | LossBound,
                   evaluate: Callable[[tuple[LayerChoice, ...]], float] | None = None,
                   **kwargs: Any) -> QuantEnv:
        """The search over a DDPG actor's layers, scored by default by
        :class:`~sw_model.search.evaluators.ProxyEvaluator`.

        Parameters
        ----------
        weights : mapping
            A float actor (see :func:`~sw_model.search.quantize.actor_layers`).
        states : array_like, shape (n, obs_dim)
            States of the proxy.
        evaluate : callable, optional
            The quality, e.g. a :class:`~sw_model.search.evaluators.ReturnEvaluator` or a
            :class:`~sw_model.search.evaluators.ProxyEvaluator` with another metric; default
            ``ProxyEvaluator(weights, states)``.
        cost_model, budget, **kwargs
            As for the constructor.
        """
        layers = actor_layers(weights)
        ev = ProxyEvaluator(weights, states) if evaluate is None else evaluate
        return cls(actor_shapes(weights), [w for w, _ in layers], cost_model=cost_model,
                   budget=budget, evaluate=ev, **kwargs)

    def __repr__(self) -> str:
        return (f"QuantEnv({len(self.shapes)} layers, {len(self.actions)} actions, "
                f"{self.budget!r})")

    @property
    def n_layers(self) -> int:
        """``L``, the episode length."""
        return len(self.shapes)

    @property
    def n_features(self) -> int:
        """Length of a state vector: ``len(FEATURES)``."""
        return len(FEATURES)

    def _static_features(self) -> np.ndarray:
        n = len(self.shapes)
        fi = np.array([s.fan_in for s in self.shapes], dtype=np.float64)
        fo = np.array([s.fan_out for s in self.shapes], dtype=np.float64)
        nw = np.log2(1.0 + fi * fo)

        def rel(v: np.ndarray) -> np.ndarray:
            top = float(v.max())
            return v / top if top > 0 else np.zeros_like(v)

        g = self.stats[:, 2]
        return np.column_stack([np.arange(n) / n, rel(fi), rel(fo), rel(nw),
                                rel(self.stats[:, 0]), rel(self.stats[:, 1]),
                                g / (1.0 + np.abs(g))])

    def action_index(self, choice: LayerChoice) -> int:
        """Index of ``choice`` in :attr:`actions`.

        Raises
        ------
        ValueError
            If ``choice`` is not on the grid.
        """
        if choice not in self._index:
            raise ValueError(f"choice {choice!r} is not on the action grid")
        return self._index[choice]

    def state(self, k: int, previous: Sequence[LayerChoice]) -> np.ndarray:
        """The features of layer ``k`` after ``previous`` (the choices of layers ``0..k-1``).

        Raises
        ------
        ValueError
            If ``k`` is out of range or ``previous`` does not have ``k`` entries.
        """
        k = check_int(k, "k", minimum=0)
        if k >= self.n_layers:
            raise ValueError(f"k must be below {self.n_layers}, not {k!r}")
        previous = check_choices(previous, k, "previous")
        dyn = np.zeros(4)
        if k:
            c = previous[-1]
            dyn[0] = self.schemes.index(c.scheme) / max(1, len(self.schemes) - 1)
            dyn[1] = c.w_bits / max(max(w) for w in self.w_bits.values())
            dyn[2] = c.a_bits / max(self.a_bits)
            cost = self.cost_model.network_cost(self.shapes[:k], previous, batch=self.batch)
            dyn[3] = self.budget.usage(cost)
        return np.concatenate([self._static[k], dyn])

    def cost(self, choices: Sequence[LayerChoice]) -> Cost:
        """``cost_model.network_cost(shapes, choices, batch=batch)``."""
        choices = check_choices(choices, self.n_layers)
        return self.cost_model.network_cost(self.shapes, choices, batch=self.batch)

    def shaped(self, quality: float) -> float:
        """The quality as the reward counts it (``shaping``)."""
        if self.shaping == "log":
            return -math.log(max(-quality, 1e-12))
        return quality

    def reward(self, quality: float, usage: float) -> float:
        """``shaped(quality) - penalty * max(0, usage - 1) + bonus * (1 - min(usage, 1))``."""
        return (self.shaped(quality) - self.penalty * max(0.0, usage - 1.0)
                + self.bonus * (1.0 - min(usage, 1.0)))

    def score(self, choices: Sequence[LayerChoice]) -> Episode:
        """Cost, quality and reward of a whole configuration (memoised)."""
        key = check_choices(choices, self.n_layers)
        if key not in self._scores:
            cost = self.cost(key)
            quality = float(self.evaluate(key))
            usage = self.budget.usage(cost)
            if isinstance(self.budget, LossBound):
                self._scores[key] = Episode(key, cost, quality, usage,
                                            self.budget.meets(quality),
                                            self.budget.reward(cost, quality),
                                            -self.budget.metric(cost))
            else:
                self._scores[key] = Episode(key, cost, quality, usage, self.budget.fits(cost),
                                            self.reward(quality, usage))
        return self._scores[key]

    def reset(self) -> np.ndarray:
        """Start an episode; the state of layer 0."""
        self._choices = []
        return self.state(0, ())

    def step(self, action: int) -> tuple[np.ndarray | None, float, bool, Episode | None]:
        """Choose ``actions[action]`` for the current layer.

        Returns
        -------
        tuple
            ``(next_state, reward, done, episode)``: ``next_state`` is None and ``episode``
            the scored configuration on the last layer; before it the reward is 0.

        Raises
        ------
        ValueError
            If ``action`` is off the grid or the episode is over (call :meth:`reset`).
        """
        a = check_int(action, "action", minimum=0)
        if a >= len(self.actions):
            raise ValueError(f"action must be below {len(self.actions)}, not {action!r}")
        if len(self._choices) >= self.n_layers:
            raise ValueError("the episode is over; call reset()")
        self._choices.append(self.actions[a])
        k = len(self._choices)
        if k < self.n_layers:
            return self.state(k, self._choices), 0.0, False, None
        ep = self.score(self._choices)
        return None, ep.reward, True, ep


@dataclass
class SearchResult:
    """Outcome of a search.

    Attributes
    ----------
    best_choices : tuple of LayerChoice or None
        The fitting configuration of the highest merit (:attr:`Episode.merit`: the highest
        quality within a :class:`Budget`, the cheapest within a
        :class:`~sw_model.search.objective.LossBound`; the first one on ties; None if none
        fitted).
    best_cost : Cost or None
    best_quality : float or None
    history : list of Episode
        Every evaluated episode, in order.
    seconds : float
        Wall-clock time.
    final_choices : tuple of LayerChoice or None
        The search policy's greedy configuration at the end (None for baselines).
    """

    best_choices: tuple[LayerChoice, ...] | None = None
    best_cost: Cost | None = None
    best_quality: float | None = None
    history: list[Episode] = field(default_factory=list)
    seconds: float = 0.0
    final_choices: tuple[LayerChoice, ...] | None = None
    _best_merit: float | None = field(default=None, repr=False)

    def record(self, ep: Episode) -> None:
        """Append ``ep`` to the history and keep it if it is the best fitting one so far."""
        self.history.append(ep)
        merit = ep.quality if ep.merit is None else ep.merit
        if ep.fits and (self._best_merit is None or merit > self._best_merit):
            self.best_choices, self.best_cost, self.best_quality = ep.choices, ep.cost, ep.quality
            self._best_merit = merit

    def write_csv(self, path: str | os.PathLike[str]) -> None:
        """The history as a CSV file, one row per episode (:meth:`Episode.row`)."""
        rows = [{"episode": i, **ep.row()} for i, ep in enumerate(self.history)]
        fields = ["episode", "choices", "luts", "dsps", "mem_bits", "cycles", "quality",
                  "usage", "fits", "reward"]
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)


def check_env(env: object) -> QuantEnv:
    """Return ``env`` if it is a :class:`QuantEnv`, else raise ``TypeError``."""
    if not isinstance(env, QuantEnv):
        raise TypeError(f"env must be a QuantEnv, not {env!r}")
    return env
