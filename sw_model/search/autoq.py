"""Automated mixed-precision search: a PPO agent picks each layer's scheme and bit widths.

Every layer of a network gets a :class:`~sw_model.search.cost.LayerChoice` (scheme ``"fixed"`` or
``"sp2"``, weight width, activation width) under a hardware :class:`Budget`, evaluated with a
:class:`~sw_model.search.cost.CostModel` (or any object with the same ``network_cost``). NumPy only.

The pieces:

- :class:`Budget`: limits on LUTs, DSPs, memory bits and cycles;
- :class:`QuantEnv`: the episodic search environment (one step per layer, in order);
- evaluators: :class:`ProxyEvaluator` / :func:`proxy_quality` (cheap: how far the quantized
  actor's actions move from the float actor's, as a mean squared error (``"mse"``), normalised
  per output (``"rel"``), or as the value lost according to the float critic (``"q_drop"``)),
  :func:`return_quality` / :class:`ReturnEvaluator` (the quantized policy's return on a fixed
  set of seeded episodes, run in lockstep), :func:`critic_evaluator` (a quantized critic's
  relative Q error) and :func:`validate_proxy` (Spearman rank correlation of a proxy with the
  return);
- :func:`ppo_search` (clipped PPO with GAE, optionally started from the best uniform
  configuration), and the baselines :func:`uniform_baseline` and :func:`haq_ddpg_search`
  (HAQ-style DDPG with HAQ's budget enforcement).

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

PPO
---
:func:`ppo_search`: the policy is an MLP (tanh hidden layers) from the state to logits. By
default they form three *factorised* softmax heads, sampled in order: the scheme, the weight
width (over the union of the schemes' widths, masked to those of the sampled scheme) and the
activation width; the action's log-probability is the sum of the three. (``policy="flat"``
uses one softmax over the whole grid instead; on the toy problem of the tests the factorised
heads find the optimum far more reliably, since what a layer learns about one component holds
for every value of the others.) The value function is a separate MLP. Per iteration,
``episodes_per_iter`` episodes are sampled, advantages come from GAE (:func:`gae`, ``V = 0``
after the last layer) and are normalised over the batch, then ``epochs`` full-batch Adam steps
minimise ``-mean(min(r A, clip(r, 1 - clip, 1 + clip) A)) - ent_coef * mean(entropy)`` (the
entropy summed over the heads) for the policy and ``mean((V - R)**2) / 2`` for the value
network.

With ``init="uniform"``, :func:`ppo_search` first scores every uniform configuration (one
action for every layer) and biases the policy's output layer towards the incumbent, the best
fitting one, so that PPO refines the best uniform configuration rather than starting from a
uniform random policy; its best result is therefore never worse than the uniform sweep's.

Reproducibility: every random draw of a search comes from ``numpy.random.default_rng(seed)``,
so the same seed and environment give identical results.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.msq import quantize_matrix
from sw_model.rl.envs import Env, make
from sw_model.rl.envs.base import StateEnv
from sw_model.search.cost import A_BITS, W_BITS, Cost, LayerChoice, LayerShape

__all__ = [
    "FEATURES",
    "METRICS",
    "MLP",
    "OUTPUTS",
    "POLICIES",
    "SCHEMES",
    "SHAPINGS",
    "Adam",
    "Budget",
    "CostModelLike",
    "Episode",
    "ProxyEvaluator",
    "ProxyValidation",
    "QuantEnv",
    "ReturnEvaluator",
    "SearchResult",
    "actor_layers",
    "actor_shapes",
    "clipped_surrogate",
    "critic_evaluator",
    "enforce_budget",
    "gae",
    "haq_ddpg_search",
    "ppo_policy_loss",
    "ppo_search",
    "proxy_quality",
    "quantize_activations",
    "quantize_layer",
    "return_quality",
    "spearman",
    "uniform_baseline",
    "validate_proxy",
    "weight_stats",
]

#: The quantization schemes, in the order of the action grid.
SCHEMES: tuple[str, str] = ("fixed", "sp2")
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


# --- checks ---------------------------------------------------------------------------------


def _check_int(value: object, name: str, lo: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if lo is not None and value < lo:
        raise ValueError(f"{name} must be at least {lo}, not {value!r}")
    return int(value)


def _check_real(value: object, name: str, lo: float | None = None, hi: float | None = None,
                *, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a real number, not {value!r}")
    v = float(value)
    bad = not math.isfinite(v) or (lo is not None and (v <= lo if lo_open else v < lo)) or (
        hi is not None and v > hi)
    if bad:
        lo_s = "-inf" if lo is None else repr(lo)
        hi_s = "inf" if hi is None else repr(hi)
        bracket = "(" if lo_open or lo is None else "["
        raise ValueError(f"{name} must be finite and in {bracket}{lo_s}, {hi_s}], not {value!r}")
    return v


def _check_choices(choices: object, n: int, name: str = "choices") -> tuple[LayerChoice, ...]:
    if isinstance(choices, str | bytes) or not isinstance(choices, Sequence):
        raise TypeError(f"{name} must be a sequence of LayerChoice, not {choices!r}")
    out = tuple(choices)
    for c in out:
        if not isinstance(c, LayerChoice):
            raise TypeError(f"{name} must hold LayerChoice objects, not {c!r}")
    if len(out) != n:
        raise ValueError(f"{name} must have {n} entries (one per layer), not {len(out)}")
    return out


# --- budget ---------------------------------------------------------------------------------

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
                v: float = _check_int(value, f"Budget {name}")
                if v <= 0:
                    raise ValueError(f"Budget {name} must be positive, not {value!r}")
            else:
                v = _check_real(value, f"Budget {name}", 0.0, lo_open=True)
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


# --- networks -------------------------------------------------------------------------------


def _actor_dict(weights: object) -> Mapping[str, Any]:
    if not isinstance(weights, Mapping):
        raise TypeError(f"weights must be a mapping of actor arrays, not {weights!r}")
    if "actor" in weights:
        weights = weights["actor"]
        if not isinstance(weights, Mapping):
            raise TypeError(f"weights['actor'] must be a mapping, not {weights!r}")
    return weights


def actor_layers(weights: Mapping[str, Any]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ``(W, b)`` float pairs of a DDPG actor, ``W`` of shape ``(fan_out, fan_in)``.

    Parameters
    ----------
    weights : mapping
        A float actor ``{"l1.w", "l1.b", ..., "lL.w", "lL.b"}`` (the layout of
        :mod:`sw_model.arch.ddpg_step`), or a :data:`~sw_model.arch.ddpg_step.Weights` dict holding
        one
        under ``"actor"``.

    Raises
    ------
    TypeError, ValueError
        If the mapping does not hold consecutive, chained, finite float layers.
    """
    p = _actor_dict(weights)
    layers = []
    k = 1
    while f"l{k}.w" in p:
        w = np.asarray(p[f"l{k}.w"])
        b = np.asarray(p.get(f"l{k}.b", np.zeros(w.shape[:1])))
        if not np.issubdtype(w.dtype, np.floating):
            raise TypeError(f"weights l{k}.w must hold floats, not an array of {w.dtype}")
        if w.ndim != 2 or b.shape != w.shape[:1]:
            raise ValueError(f"weights l{k} must be a 2-D w with a matching b, not shapes "
                             f"{w.shape} and {b.shape}")
        if layers and layers[-1][0].shape[0] != w.shape[1]:
            raise ValueError(f"weights l{k}.w has {w.shape[1]} inputs, but l{k - 1} has "
                             f"{layers[-1][0].shape[0]} outputs")
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise ValueError(f"weights l{k} must be finite")
        layers.append((w.astype(np.float64), b.astype(np.float64)))
        k += 1
    if not layers:
        raise ValueError(f"weights must hold l1.w, l2.w, ...; got keys {sorted(p)!r}")
    return layers


def actor_shapes(weights: Mapping[str, Any]) -> tuple[LayerShape, ...]:
    """``LayerShape("l1", fan_in, fan_out), ...`` of an actor (see :func:`actor_layers`)."""
    return tuple(LayerShape(f"l{k}", w.shape[1], w.shape[0])
                 for k, (w, _) in enumerate(actor_layers(weights), 1))


def weight_stats(w: npt.ArrayLike) -> tuple[float, float, float]:
    """``(std, max|w|, excess kurtosis)`` of a weight array (kurtosis 0 for a constant array)."""
    a = np.asarray(w, dtype=np.float64).ravel()
    if a.size == 0:
        return 0.0, 0.0, 0.0
    std = float(a.std())
    kurt = float(np.mean((a - a.mean()) ** 4) / std**4 - 3.0) if std > 0 else 0.0
    return std, float(np.abs(a).max()), kurt


# --- quantization of the actor ----------------------------------------------------------------


def quantize_layer(w: npt.ArrayLike, choice: LayerChoice) -> np.ndarray:
    """The weight matrix as quantized by ``choice`` (float values of the codes).

    ``"fixed"``: one scale for the layer, ``alpha = max|w| / fmt.max_value`` with
    ``fmt = FixedFormat(w_bits, w_bits - 1)``, and ``alpha * fmt.from_float(w / alpha)``
    (half-even, saturating). ``"sp2"``: every row SP2 with its own scale,
    ``sw_model.numerics.msq.quantize_matrix(w, w_bits, sp2_ratio=1.0).weights()``.

    Raises
    ------
    TypeError
        If ``choice`` is not a LayerChoice.
    ValueError
        For an unknown scheme or a width outside 2..32 (fixed) or 2..11 (SP2).
    """
    if not isinstance(choice, LayerChoice):
        raise TypeError(f"choice must be a LayerChoice, not {choice!r}")
    arr = np.asarray(w, dtype=np.float64)
    bits = choice.w_bits
    if choice.scheme == "fixed":
        if not 2 <= bits <= 32:
            raise ValueError(f"choice w_bits must be from 2 to 32 for fixed, not {bits!r}")
        fmt = FixedFormat(bits, bits - 1)
        amax = float(np.abs(arr).max()) if arr.size else 0.0
        if amax == 0.0:
            return np.zeros_like(arr)
        alpha = amax / fmt.max_value
        return alpha * fmt.to_float(fmt.from_float(arr / alpha))
    if choice.scheme == "sp2":
        if not 2 <= bits <= 11:
            raise ValueError(f"choice w_bits must be from 2 to 11 for sp2, not {bits!r}")
        return quantize_matrix(arr, bits, sp2_ratio=1.0).weights()
    raise ValueError(f"choice scheme must be one of {SCHEMES!r}, not {choice.scheme!r}")


def quantize_activations(x: npt.ArrayLike, bits: int, amax: float) -> np.ndarray:
    """``x`` on the signed ``bits``-bit fixed-point grid that holds ``[-amax, amax]``.

    The step is ``2**-frac`` with ``frac = (bits - 1) - ceil(log2 amax)`` (the rule of
    :func:`sw_model.numerics.qat.range_format`; ``amax <= 0`` counts as 1); values round half-even
    and
    saturate to ``[-2**(bits-1), 2**(bits-1) - 1]`` steps.
    """
    bits = _check_int(bits, "bits", 2)
    frac = (bits - 1) - math.ceil(math.log2(amax)) if amax > 0 else bits - 1
    q = np.rint(np.ldexp(np.asarray(x, dtype=np.float64), frac))
    q = np.clip(q, -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1)
    return np.ldexp(q, -frac)


def _check_states(states: npt.ArrayLike, fan_in: int) -> np.ndarray:
    s = np.asarray(states, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != fan_in or s.shape[0] == 0:
        raise ValueError(f"states must have shape (n >= 1, {fan_in}), not {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("states must be finite")
    return s


#: Proxy metrics of :class:`ProxyEvaluator`.
METRICS: tuple[str, ...] = ("mse", "rel", "q_drop")
#: Output activations of :class:`ProxyEvaluator`'s network.
OUTPUTS: tuple[str, ...] = ("tanh", "linear")


def _float_net(layers: Sequence[tuple[np.ndarray, np.ndarray]], x: np.ndarray, output: str
               ) -> list[np.ndarray]:
    """Inputs of every layer and the output of a float ReLU network."""
    xs = [x]
    for k, (w, b) in enumerate(layers):
        z = xs[-1] @ w.T + b
        if k < len(layers) - 1:
            xs.append(np.maximum(z, 0.0))
        else:
            xs.append(np.tanh(z) if output == "tanh" else z)
    return xs


class ProxyEvaluator:
    """A network quantized per layer, compared with the float network on fixed inputs.

    Layer ``k`` of the quantized network uses :func:`quantize_layer` weights (biases stay
    float) and quantizes its *input* with :func:`quantize_activations` at ``a_bits``, with
    ``amax`` the largest magnitude of that input over ``states`` in the float network
    (calibration). Hidden layers are ReLU, the output tanh (an actor) or linear (a critic), as
    in :mod:`sw_model.arch.ddpg_step`. Quantized layers are cached per ``(layer, scheme, w_bits)``.

    Parameters
    ----------
    weights : mapping
        A float network (see :func:`actor_layers`; a DDPG weights dict gives its actor).
    states : array_like, shape (n, inputs)
        The evaluation (and calibration) inputs.
    output : {"tanh", "linear"}
        The output activation: ``"tanh"`` for an actor, ``"linear"`` for a critic.
    metric : {"mse", "rel", "q_drop"}
        What calling the evaluator with ``choices`` returns (higher is better, 0 perfect),
        with ``y`` the float outputs and ``y_q`` the quantized ones over ``states``:

        ``"mse"``
            ``-mean((y - y_q)**2)``.
        ``"rel"``
            ``-mean(((y - y_q) / sigma)**2)`` with ``sigma`` the standard deviation of each
            output of ``y`` over ``states`` (1 where it is 0): every output counts alike,
            whatever its spread.
        ``"q_drop"``
            For an actor, the value lost by the quantized actions according to the float
            ``critic``: ``-mean(max(0, Q(s, y) - Q(s, y_q))) / mean(|Q(s, y)|)``.
    critic : mapping, optional
        The float critic for ``"q_drop"`` (inputs ``[state, action]``, linear output); a DDPG
        weights dict gives its critic.

    Raises
    ------
    TypeError, ValueError
        For malformed weights or states, an unknown ``output`` or ``metric``, or
        ``"q_drop"`` without a matching critic.
    """

    def __init__(self, weights: Mapping[str, Any], states: npt.ArrayLike, *,
                 output: str = "tanh", metric: str = "mse",
                 critic: Mapping[str, Any] | None = None) -> None:
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS!r}, not {output!r}")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS!r}, not {metric!r}")
        self.output = output
        self.metric = metric
        self.layers = actor_layers(weights)
        self.states = _check_states(states, self.layers[0][0].shape[1])
        self.shapes = actor_shapes(weights)
        xs = _float_net(self.layers, self.states, output)
        self.ranges = [float(np.abs(x).max()) for x in xs[:-1]]
        self.reference = xs[-1]
        sigma = self.reference.std(axis=0)
        self.sigma = np.where(sigma > 0, sigma, 1.0)
        self.critic: list[tuple[np.ndarray, np.ndarray]] | None = None
        if metric == "q_drop":
            if critic is None:
                raise ValueError("metric 'q_drop' needs a critic")
            if isinstance(critic, Mapping) and "critic" in critic:
                critic = critic["critic"]
            self.critic = actor_layers(critic)
            n_in = self.states.shape[1] + self.reference.shape[1]
            if self.critic[0][0].shape[1] != n_in or self.critic[-1][0].shape[0] != 1:
                raise ValueError(f"critic must map {n_in} inputs to 1 output, not "
                                 f"{self.critic[0][0].shape[1]} to {self.critic[-1][0].shape[0]}")
            self.q_ref = self._q(self.reference)
        self._cache: dict[tuple[int, str, int], np.ndarray] = {}
        self._grids: dict[tuple[int, int], tuple[float, float, float]] = {}

    def _q(self, actions: np.ndarray) -> np.ndarray:
        if self.critic is None:
            raise ValueError("the 'q_drop' metric needs a critic")
        x = np.concatenate([self.states, actions], axis=1)
        return _float_net(self.critic, x, "linear")[-1][:, 0]

    def _weights(self, k: int, choice: LayerChoice) -> np.ndarray:
        key = (k, choice.scheme, choice.w_bits)
        if key not in self._cache:
            self._cache[key] = quantize_layer(self.layers[k][0], choice)
        return self._cache[key]

    def _grid(self, k: int, bits: int) -> tuple[float, float, float]:
        """``(2**frac, lowest, highest code)`` of :func:`quantize_activations` at layer ``k``."""
        key = (k, bits)
        if key not in self._grids:
            amax = self.ranges[k]
            frac = (bits - 1) - math.ceil(math.log2(amax)) if amax > 0 else bits - 1
            self._grids[key] = (2.0**frac, -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1)
        return self._grids[key]

    def outputs(self, obs: npt.ArrayLike, choices: Sequence[LayerChoice]) -> np.ndarray:
        """Outputs ``(B, outputs)`` of the quantized network for inputs ``(B, inputs)``."""
        choices = _check_choices(choices, len(self.layers))
        x = np.atleast_2d(np.asarray(obs, dtype=np.float64))
        last = len(self.layers) - 1
        for k, ((_, b), c) in enumerate(zip(self.layers, choices, strict=True)):
            # quantize_activations(x, c.a_bits, self.ranges[k]), with its constants cached
            scale, lo, hi = self._grid(k, c.a_bits)
            q = np.rint(x * scale)
            np.maximum(q, lo, out=q)
            np.minimum(q, hi, out=q)
            x = (q / scale) @ self._weights(k, c).T + b
            if k < last:
                x = np.maximum(x, 0.0)
            elif self.output == "tanh":
                x = np.tanh(x)
        return x

    def actions(self, obs: npt.ArrayLike, choices: Sequence[LayerChoice]) -> np.ndarray:
        """Normalized actions ``(B, act_dim)`` of the quantized actor for ``obs (B, obs_dim)``
        (:meth:`outputs`)."""
        return self.outputs(obs, choices)

    def __call__(self, choices: Sequence[LayerChoice]) -> float:
        y = self.outputs(self.states, choices)
        if self.metric == "q_drop":
            drop = np.maximum(0.0, self.q_ref - self._q(y))
            return -float(drop.mean()) / max(float(np.abs(self.q_ref).mean()), 1e-12)
        diff = self.reference - y
        if self.metric == "rel":
            diff = diff / self.sigma
        return -float(np.mean(diff * diff))


def proxy_quality(weights: Mapping[str, Any], choices: Sequence[LayerChoice],
                  states: npt.ArrayLike, *, metric: str = "mse",
                  critic: Mapping[str, Any] | None = None) -> float:
    """The proxy of :class:`ProxyEvaluator` for an actor; by default
    ``-mean((a_float - a_quant)**2)`` over ``states``.

    Parameters
    ----------
    weights : mapping
        A float actor (see :func:`actor_layers`).
    choices : sequence of LayerChoice
        One per actor layer.
    states : array_like, shape (n, obs_dim)
    metric, critic
        As for :class:`ProxyEvaluator`.

    Returns
    -------
    float
        ``<= 0``; higher is better.
    """
    return ProxyEvaluator(weights, states, metric=metric, critic=critic)(choices)


def _returns(ev: ProxyEvaluator, choices: tuple[LayerChoice, ...], env: str | Env,
             episodes: int, seed: int) -> float:
    """Mean return of ``episodes`` episodes of the quantized actor (see
    :func:`return_quality`)."""
    environment = make(env, seed=seed) if isinstance(env, str) else env
    if not isinstance(environment, Env):
        raise TypeError(f"env must be an Env or a name, not {env!r}")
    lo, hi = environment.action_low, environment.action_high
    if isinstance(env, str) and isinstance(environment, StateEnv):
        # the episodes in lockstep, one batched forward pass per step, from the initial states
        # the seeded environment would draw one episode after another
        starts = []
        for _ in range(episodes):
            environment.reset()
            starts.append(environment.state)
        envs = [make(env) for _ in range(episodes)]
        obs = np.array([e.reset(state=st) for e, st in zip(envs, starts, strict=True)])
        live = np.ones(episodes, dtype=bool)
        total = 0.0
        while live.any():
            idx = np.flatnonzero(live)
            acts = lo + (ev.outputs(obs[idx], choices) + 1.0) * 0.5 * (hi - lo)
            for i, a in zip(idx, acts, strict=True):
                obs[i], reward, terminated, truncated = envs[i].step(a)
                total += reward
                live[i] = not (terminated or truncated)
        return total / episodes
    total = 0.0
    for _ in range(episodes):
        obs1, done = environment.reset(), False
        while not done:
            a = ev.outputs(obs1, choices)[0]
            obs1, reward, terminated, truncated = environment.step(lo + (a + 1.0) * 0.5 * (hi - lo))
            total += reward
            done = terminated or truncated
    return total / episodes


def return_quality(weights: Mapping[str, Any], choices: Sequence[LayerChoice],
                   states: npt.ArrayLike, *, env: str | Env = "pendulum", episodes: int = 3,
                   seed: int = 0) -> float:
    """Mean undiscounted return of the quantized actor (no noise) over ``episodes`` episodes.

    Parameters
    ----------
    weights : mapping
        A float actor (see :func:`actor_layers`).
    choices : sequence of LayerChoice
    states : array_like, shape (n, obs_dim)
        Calibration states for the activation ranges (as :class:`ProxyEvaluator`).
    env : str or Env
        An environment, or a name for :func:`sw_model.rl.envs.make`, created with ``seed``.
        The episodes of a named environment whose state can be set
        (:class:`~sw_model.rl.envs.base.StateEnv`, as Pendulum) run in lockstep, from the initial
        states that the seeded environment draws by successive resets (the episodes of running
        them one after another, for environments whose steps draw no random numbers); those
        of a given ``Env`` run one after another.
    episodes : int
    seed : int
        Seed of a named environment: every configuration meets the same initial states.
    """
    episodes = _check_int(episodes, "episodes", 1)
    seed = _check_int(seed, "seed", 0)
    ev = ProxyEvaluator(weights, states)
    return _returns(ev, _check_choices(choices, len(ev.layers)), env, episodes, seed)


class ReturnEvaluator:
    """The real return as a search quality: :func:`return_quality` of a fixed set of seeded
    episodes, as a callable for :class:`QuantEnv`.

    Parameters
    ----------
    weights : mapping
        A float actor (see :func:`actor_layers`).
    states : array_like, shape (n, obs_dim)
        Calibration states for the activation ranges.
    env : str
        An environment name for :func:`sw_model.rl.envs.make` (deterministic per ``seed``).
    episodes : int
        Episodes per evaluation (``>= 1``).
    seed : int
        Seed of the environment: every configuration meets the same initial states.

    Attributes
    ----------
    layers, shapes, states
        As :class:`ProxyEvaluator`'s.

    Calling it with ``choices`` returns the mean return (higher is better).
    """

    def __init__(self, weights: Mapping[str, Any], states: npt.ArrayLike, *,
                 env: str = "pendulum", episodes: int = 5, seed: int = 0) -> None:
        if not isinstance(env, str):
            raise TypeError(f"env must be an environment name, not {env!r}")
        self.env = env
        self.episodes = _check_int(episodes, "episodes", 1)
        self.seed = _check_int(seed, "seed", 0)
        self._ev = ProxyEvaluator(weights, states)
        self.layers, self.shapes, self.states = self._ev.layers, self._ev.shapes, self._ev.states

    def __call__(self, choices: Sequence[LayerChoice]) -> float:
        choices = _check_choices(choices, len(self.layers))
        return _returns(self._ev, choices, self.env, self.episodes, self.seed)


def critic_evaluator(weights: Mapping[str, Any], states: npt.ArrayLike) -> ProxyEvaluator:
    """The critic of a DDPG weights dict quantized per layer, scored by its relative Q error.

    The inputs are ``[s, actor(s)]`` for ``s`` in ``states`` with the float actor's actions;
    the result is ``ProxyEvaluator(weights["critic"], inputs, output="linear",
    metric="rel")``, whose quality is ``-mean((Q - Q_q)**2) / var(Q)``.

    Raises
    ------
    TypeError, ValueError
        If ``weights`` does not hold an ``"actor"`` and a matching ``"critic"``.
    """
    if not isinstance(weights, Mapping) or "actor" not in weights or "critic" not in weights:
        raise TypeError("weights must be a DDPG weights dict with 'actor' and 'critic'")
    layers = actor_layers(weights["actor"])
    s = _check_states(states, layers[0][0].shape[1])
    inputs = np.concatenate([s, _float_net(layers, s, "tanh")[-1]], axis=1)
    return ProxyEvaluator(weights["critic"], inputs, output="linear", metric="rel")


def spearman(x: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Spearman's rank correlation: Pearson's of the ranks (ties get their average rank).

    Returns ``nan`` when either input is constant.

    Raises
    ------
    ValueError
        If ``x`` and ``y`` are not 1-D of one length of at least 2.
    """
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or a.size < 2:
        raise ValueError(f"x and y must be 1-D of one length >= 2, not shapes {a.shape} and "
                         f"{b.shape}")

    def ranks(v: np.ndarray) -> np.ndarray:
        order = np.argsort(v, kind="stable")
        r = np.empty(v.size)
        r[order] = np.arange(v.size, dtype=np.float64)
        _, inv, counts = np.unique(v, return_inverse=True, return_counts=True)
        sums = np.bincount(inv, weights=r)
        return sums[inv] / counts[inv]

    ra, rb = ranks(a), ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    den = math.sqrt(float(ra @ ra) * float(rb @ rb))
    return float(ra @ rb) / den if den > 0 else math.nan


@dataclass(frozen=True)
class ProxyValidation:
    """Outcome of :func:`validate_proxy`.

    Attributes
    ----------
    rho : float
        Spearman rank correlation of ``proxy`` and ``returns``.
    configs : list of tuple of LayerChoice
    proxy, returns : list of float
        Proxy quality and mean return of each configuration.
    """

    rho: float
    configs: list[tuple[LayerChoice, ...]]
    proxy: list[float]
    returns: list[float]


def validate_proxy(weights: Mapping[str, Any], states: npt.ArrayLike, *, n_configs: int = 16,
                   episodes: int = 3, seed: int = 0, env: str | Env = "pendulum",
                   w_bits: Mapping[str, Sequence[int]] | None = None,
                   a_bits: Sequence[int] | None = None, metric: str = "mse",
                   critic: Mapping[str, Any] | None = None) -> ProxyValidation:
    """Rank correlation of :func:`proxy_quality` and :func:`return_quality` on random configs.

    Each configuration draws every layer's action uniformly from the grid of ``w_bits`` /
    ``a_bits`` (default ``sw_model.search.cost.W_BITS`` / ``A_BITS``) with
    ``numpy.random.default_rng(seed)``; returns use ``episodes`` episodes of ``env`` seeded
    with ``seed``. ``metric`` and ``critic`` choose the proxy (:class:`ProxyEvaluator`); the
    configurations do not depend on them.
    """
    n_configs = _check_int(n_configs, "n_configs", 2)
    seed = _check_int(seed, "seed", 0)
    grid = _grid(w_bits, a_bits)[0]
    ev = ProxyEvaluator(weights, states, metric=metric, critic=critic)
    rng = np.random.default_rng(seed)
    configs, proxy, returns = [], [], []
    for _ in range(n_configs):
        choices = tuple(grid[i] for i in rng.integers(len(grid), size=len(ev.layers)))
        configs.append(choices)
        proxy.append(ev(choices))
        returns.append(return_quality(weights, choices, ev.states, env=env, episodes=episodes,
                                      seed=seed))
    return ProxyValidation(spearman(proxy, returns), configs, proxy, returns)


# --- the search environment -----------------------------------------------------------------


def _grid(w_bits: Mapping[str, Sequence[int]] | None, a_bits: Sequence[int] | None
          ) -> tuple[tuple[LayerChoice, ...], tuple[str, ...], dict[str, tuple[int, ...]],
                     tuple[int, ...]]:
    wb = W_BITS if w_bits is None else w_bits
    ab = A_BITS if a_bits is None else a_bits
    if not isinstance(wb, Mapping) or not wb:
        raise TypeError(f"w_bits must be a non-empty mapping of scheme to widths, not {wb!r}")
    schemes = tuple(s for s in SCHEMES if s in wb)
    if len(schemes) != len(wb):
        raise ValueError(f"w_bits schemes must be among {SCHEMES!r}, not {tuple(wb)!r}")
    widths: dict[str, tuple[int, ...]] = {}
    for s in schemes:
        ws = wb[s]
        if isinstance(ws, str | bytes) or not isinstance(ws, Sequence) or not ws:
            raise TypeError(f"w_bits[{s!r}] must be a non-empty sequence, not {ws!r}")
        widths[s] = tuple(sorted({_check_int(w, f"w_bits[{s!r}] entry", 2) for w in ws}))
    if isinstance(ab, str | bytes) or not isinstance(ab, Sequence) or not ab:
        raise TypeError(f"a_bits must be a non-empty sequence, not {ab!r}")
    a_sorted = tuple(sorted({_check_int(a, "a_bits entry", 2) for a in ab}))
    grid = tuple(LayerChoice(s, w, a) for s in schemes for w in widths[s] for a in a_sorted)
    return grid, schemes, widths, a_sorted


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
    """

    choices: tuple[LayerChoice, ...]
    cost: Cost
    quality: float
    usage: float
    fits: bool
    reward: float

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
    budget : Budget
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
        :func:`weight_stats` of every layer.

    Raises
    ------
    TypeError, ValueError
        For a parameter of the wrong type or value (the message names it).
    """

    def __init__(self, shapes: Sequence[LayerShape], weights: Sequence[npt.ArrayLike], *,
                 cost_model: CostModelLike, budget: Budget,
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
        if not isinstance(budget, Budget):
            raise TypeError(f"budget must be a Budget, not {budget!r}")
        if not callable(evaluate):
            raise TypeError(f"evaluate must be callable, not {evaluate!r}")
        self.shapes = tuple(shapes)
        self.weights = tuple(mats)
        self.cost_model = cost_model
        self.budget = budget
        self.evaluate = evaluate
        self.actions, self.schemes, self.w_bits, self.a_bits = _grid(w_bits, a_bits)
        self.batch = _check_int(batch, "batch", 1)
        self.penalty = _check_real(penalty, "penalty", 0.0)
        self.bonus = _check_real(bonus, "bonus", 0.0)
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
                   cost_model: CostModelLike, budget: Budget,
                   evaluate: Callable[[tuple[LayerChoice, ...]], float] | None = None,
                   **kwargs: Any) -> QuantEnv:
        """The search over a DDPG actor's layers, scored by default by :class:`ProxyEvaluator`.

        Parameters
        ----------
        weights : mapping
            A float actor (see :func:`actor_layers`).
        states : array_like, shape (n, obs_dim)
            States of the proxy.
        evaluate : callable, optional
            The quality, e.g. a :class:`ReturnEvaluator` or a :class:`ProxyEvaluator` with
            another metric; default ``ProxyEvaluator(weights, states)``.
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
        k = _check_int(k, "k", 0)
        if k >= self.n_layers:
            raise ValueError(f"k must be below {self.n_layers}, not {k!r}")
        previous = _check_choices(previous, k, "previous")
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
        choices = _check_choices(choices, self.n_layers)
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
        key = _check_choices(choices, self.n_layers)
        if key not in self._scores:
            cost = self.cost(key)
            quality = float(self.evaluate(key))
            usage = self.budget.usage(cost)
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
        a = _check_int(action, "action", 0)
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


# --- small NumPy networks -------------------------------------------------------------------


class MLP:
    """A fully connected network: tanh hidden layers, a linear output.

    Parameters
    ----------
    sizes : sequence of int
        ``[inputs, hidden..., outputs]`` (at least two entries, each ``>= 1``).
    rng : numpy.random.Generator
        Initialisation: ``W ~ N(0, 1 / fan_in)``, biases 0.
    out_scale : float
        Multiplies the last layer's initial weights (small for a near-uniform policy).

    Attributes
    ----------
    params : list of numpy.ndarray
        ``[W1, b1, W2, b2, ...]``, ``Wk`` of shape ``(in, out)``; updated in place.
    """

    def __init__(self, sizes: Sequence[int], rng: np.random.Generator, *,
                 out_scale: float = 1.0) -> None:
        sizes = [_check_int(s, "sizes entry", 1) for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"sizes must have at least 2 entries, not {sizes!r}")
        self.sizes = tuple(sizes)
        self.params: list[np.ndarray] = []
        for k, (i, o) in enumerate(itertools.pairwise(sizes)):
            w = rng.standard_normal((i, o)) / math.sqrt(i)
            if k == len(sizes) - 2:
                w *= out_scale
            self.params += [w, np.zeros(o)]
        self._xs: list[np.ndarray] = []

    def forward(self, x: npt.ArrayLike) -> np.ndarray:
        """Outputs ``(B, outputs)`` of inputs ``(B, inputs)``; keeps what :meth:`backward` needs."""
        h = np.asarray(x, dtype=np.float64)
        self._xs = [h]
        n = len(self.params) // 2
        for k in range(n):
            h = h @ self.params[2 * k] + self.params[2 * k + 1]
            if k < n - 1:
                h = np.tanh(h)
            self._xs.append(h)
        return h

    def backward(self, d_out: npt.ArrayLike) -> tuple[list[np.ndarray], np.ndarray]:
        """Gradients of ``sum(d_out * outputs)`` of the last :meth:`forward`: (params, inputs)."""
        d = np.asarray(d_out, dtype=np.float64)
        n = len(self.params) // 2
        grads: list[np.ndarray] = [np.empty(0)] * len(self.params)
        for k in range(n - 1, -1, -1):
            if k < n - 1:
                d = d * (1.0 - self._xs[k + 1] ** 2)
            grads[2 * k] = self._xs[k].T @ d
            grads[2 * k + 1] = d.sum(axis=0)
            d = d @ self.params[2 * k].T
        return grads, d


class Adam:
    """Adam (Kingma & Ba) over a list of arrays, updated in place.

    Parameters
    ----------
    params : list of numpy.ndarray
    lr : float
        Step size ``> 0``.
    betas : tuple of float
    eps : float
    """

    def __init__(self, params: list[np.ndarray], lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params = params
        self.lr = _check_real(lr, "lr", 0.0, lo_open=True)
        self.betas = betas
        self.eps = eps
        self.t = 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """One update with ``grads`` (same shapes as ``params``)."""
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1.0 - b1**self.t, 1.0 - b2**self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * g * g
            p -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


# --- PPO ------------------------------------------------------------------------------------


def gae(rewards: npt.ArrayLike, values: npt.ArrayLike, *, gamma: float, lam: float,
        last_value: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimates along the last axis (time) of one or more episodes.

    ``delta_t = r_t + gamma * V_{t+1} - V_t`` (``V_T = last_value``),
    ``A_t = delta_t + gamma * lam * A_{t+1}`` (``A_T = 0``), returns ``R_t = A_t + V_t``.

    Returns
    -------
    tuple of numpy.ndarray
        ``(advantages, returns)``, shaped like ``rewards``.
    """
    gamma = _check_real(gamma, "gamma", 0.0, 1.0)
    lam = _check_real(lam, "lam", 0.0, 1.0)
    r = np.asarray(rewards, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if r.shape != v.shape or r.ndim == 0:
        raise ValueError(f"rewards and values must have one shape, not {r.shape} and {v.shape}")
    nxt = np.concatenate([v[..., 1:], np.full((*v.shape[:-1], 1), float(last_value))], axis=-1)
    delta = r + gamma * nxt - v
    adv = np.zeros_like(delta)
    acc = np.zeros(delta.shape[:-1])
    for t in range(delta.shape[-1] - 1, -1, -1):
        acc = delta[..., t] + gamma * lam * acc
        adv[..., t] = acc
    return adv, adv + v


def clipped_surrogate(ratio: npt.ArrayLike, adv: npt.ArrayLike, clip: float) -> np.ndarray:
    """PPO's per-sample objective ``min(r A, clip(r, 1 - clip, 1 + clip) A)`` (to maximise)."""
    clip = _check_real(clip, "clip", 0.0, 1.0, lo_open=True)
    r, a = np.asarray(ratio, dtype=np.float64), np.asarray(adv, dtype=np.float64)
    return np.minimum(r * a, np.clip(r, 1.0 - clip, 1.0 + clip) * a)


def _masked_log_softmax(z: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Log-softmax over the allowed entries (``-inf`` where ``mask`` is False)."""
    if mask is None:
        return _log_softmax(z)
    zm = np.where(mask, z, -np.inf)
    zm = zm - zm.max(axis=-1, keepdims=True)
    return zm - np.log(np.exp(zm).sum(axis=-1, keepdims=True))


def _split(heads: Sequence[int]) -> list[slice]:
    edges = np.cumsum([0, *heads])
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def ppo_policy_loss(logits: npt.ArrayLike, actions: npt.ArrayLike, logp_old: npt.ArrayLike,
                    adv: npt.ArrayLike, clip: float, ent_coef: float = 0.0, *,
                    heads: Sequence[int] | None = None, mask: npt.ArrayLike | None = None
                    ) -> tuple[float, np.ndarray]:
    """PPO's clipped policy loss and its gradient with respect to the logits.

    The logits are split into softmax *heads* of ``heads`` entries each (default one head);
    the action has one component per head, and its log-probability is the sum of the heads'
    log-probabilities, each a softmax over the entries that ``mask`` allows. With
    ``r = exp(logp - logp_old)``, ``loss = -mean(clipped_surrogate(r, adv, clip)) -
    ent_coef * mean(sum of the heads' entropies)``. Where the clipped term is the smaller one
    and ``r`` lies outside ``[1 - clip, 1 + clip]``, the surrogate's gradient is 0.

    Parameters
    ----------
    logits : array_like, shape (N, sum(heads))
    actions : array_like of int, shape (N,) for one head or (N, len(heads))
        Component indices within each head.
    logp_old : array_like, shape (N,)
        Log-probabilities of ``actions`` under the sampling policy.
    adv : array_like, shape (N,)
    clip : float
        In ``(0, 1]``.
    ent_coef : float
    heads : sequence of int, optional
        Head sizes; default ``(logits.shape[1],)``.
    mask : array_like of bool, shape (N, sum(heads)), optional
        Allowed entries (every head needs one per row, including the chosen one).

    Returns
    -------
    tuple
        ``(loss, d loss / d logits)``; masked entries get gradient 0.
    """
    clip = _check_real(clip, "clip", 0.0, 1.0, lo_open=True)
    z = np.asarray(logits, dtype=np.float64)
    n = z.shape[0]
    hs = (z.shape[1],) if heads is None else tuple(heads)
    if sum(hs) != z.shape[1]:
        raise ValueError(f"heads must add up to the {z.shape[1]} logits, not {hs!r}")
    act = np.asarray(actions).reshape(n, len(hs))
    m = None if mask is None else np.asarray(mask, dtype=bool)
    rows = np.arange(n)
    parts = []
    logp = np.zeros(n)
    ent = np.zeros(n)
    for h, sl in enumerate(_split(hs)):
        mh = None if m is None else m[:, sl]
        lp = _masked_log_softmax(z[:, sl], mh)
        p = np.exp(lp)
        plogp = np.where(p > 0, p * np.where(np.isfinite(lp), lp, 0.0), 0.0)
        e = -plogp.sum(axis=1)
        logp += lp[rows, act[:, h]]
        ent += e
        parts.append((sl, lp, p, e))
    ratio = np.exp(logp - np.asarray(logp_old, dtype=np.float64))
    a = np.asarray(adv, dtype=np.float64)
    surr = clipped_surrogate(ratio, a, clip)
    loss = -float(surr.mean()) - ent_coef * float(ent.mean())
    active = (ratio * a <= np.clip(ratio, 1.0 - clip, 1.0 + clip) * a) | (
        (ratio >= 1.0 - clip) & (ratio <= 1.0 + clip))
    d_logp = np.where(active, -a * ratio, 0.0) / n
    d = np.zeros_like(z)
    for h, (sl, lp, p, e) in enumerate(parts):
        onehot = np.zeros_like(p)
        onehot[rows, act[:, h]] = 1.0
        g = d_logp[:, None] * (onehot - p)
        g += ent_coef / n * np.where(p > 0, p * (np.where(np.isfinite(lp), lp, 0.0)
                                                 + e[:, None]), 0.0)
        d[:, sl] = g
    return loss, d


@dataclass
class SearchResult:
    """Outcome of a search.

    Attributes
    ----------
    best_choices : tuple of LayerChoice or None
        The highest-quality configuration that fits the budget (the first one on ties;
        None if none fitted).
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

    def record(self, ep: Episode) -> None:
        """Append ``ep`` to the history and keep it if it is the best fitting one so far."""
        self.history.append(ep)
        if ep.fits and (self.best_quality is None or ep.quality > self.best_quality):
            self.best_choices, self.best_cost, self.best_quality = ep.choices, ep.cost, ep.quality

    def write_csv(self, path: str | os.PathLike[str]) -> None:
        """The history as a CSV file, one row per episode (:meth:`Episode.row`)."""
        rows = [{"episode": i, **ep.row()} for i, ep in enumerate(self.history)]
        fields = ["episode", "choices", "luts", "dsps", "mem_bits", "cycles", "quality",
                  "usage", "fits", "reward"]
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)


def _check_env(env: object) -> QuantEnv:
    if not isinstance(env, QuantEnv):
        raise TypeError(f"env must be a QuantEnv, not {env!r}")
    return env


POLICIES: tuple[str, str] = ("factored", "flat")


class _PolicyHeads:
    """Maps a policy's logits to grid actions: factored heads or one flat softmax."""

    def __init__(self, env: QuantEnv, kind: str) -> None:
        self.env = env
        self.kind = kind
        if kind == "flat":
            self.heads: tuple[int, ...] = (len(env.actions),)
            return
        self.w_all = tuple(sorted(set().union(*env.w_bits.values())))
        self.heads = (len(env.schemes), len(self.w_all), len(env.a_bits))
        s_n, a_n = self.heads[0], self.heads[2]
        self.masks = {s: np.array([True] * s_n + [w in env.w_bits[s] for w in self.w_all]
                                  + [True] * a_n) for s in env.schemes}

    def act(self, z: np.ndarray, rng: np.random.Generator | None
            ) -> tuple[int, np.ndarray, float, np.ndarray | None]:
        """(grid index, components, log-probability, mask) sampled (or arg-max without rng)."""

        def pick(lp: np.ndarray) -> int:
            if rng is None:
                return int(np.argmax(lp))
            p = np.exp(lp)
            return int(rng.choice(p.size, p=p / p.sum()))

        if self.kind == "flat":
            lp = _log_softmax(z)
            i = pick(lp)
            return i, np.array([i]), float(lp[i]), None
        sl = _split(self.heads)
        lp_s = _log_softmax(z[sl[0]])
        si = pick(lp_s)
        scheme = self.env.schemes[si]
        mask = self.masks[scheme]
        lp_w = _masked_log_softmax(z[sl[1]], mask[sl[1]])
        wi = pick(lp_w)
        lp_a = _log_softmax(z[sl[2]])
        ai = pick(lp_a)
        choice = LayerChoice(scheme, self.w_all[wi], self.env.a_bits[ai])
        return (self.env.action_index(choice), np.array([si, wi, ai]),
                float(lp_s[si] + lp_w[wi] + lp_a[ai]), mask)

    def bias(self, choice: LayerChoice, prob: float) -> np.ndarray:
        """Logit offsets that give ``choice``'s entry of every head probability ``prob`` when
        the other logits are equal (``log(prob * (n - 1) / (1 - prob))``, ``n`` the allowed
        entries of the head)."""
        out = np.zeros(sum(self.heads))
        if self.kind == "flat":
            parts = [(0, self.env.action_index(choice), len(self.env.actions))]
        else:
            sl = _split(self.heads)
            n_w = int(self.masks[choice.scheme][sl[1]].sum())
            parts = [(sl[0].start, self.env.schemes.index(choice.scheme), self.heads[0]),
                     (sl[1].start, self.w_all.index(choice.w_bits), n_w),
                     (sl[2].start, self.env.a_bits.index(choice.a_bits), self.heads[2])]
        for start, i, n in parts:
            if n > 1:
                out[start + i] = math.log(prob * (n - 1) / (1.0 - prob))
        return out


def ppo_search(env: QuantEnv, *, iterations: int = 30, episodes_per_iter: int = 32,
               seed: int = 0, lr: float = 1e-2, clip: float = 0.2, gamma: float = 1.0,
               lam: float = 0.95, epochs: int = 8, hidden: int = 32, ent_coef: float = 0.01,
               value_lr: float | None = None, policy: str = "factored",
               init: str | None = None, init_prob: float = 0.5,
               callback: Callable[[int, SearchResult], None] | None = None) -> SearchResult:
    """Search the configuration with clipped PPO and GAE (see the module docs).

    Parameters
    ----------
    env : QuantEnv
    iterations : int
        PPO iterations (``>= 1``).
    episodes_per_iter : int
        Episodes sampled per iteration (``>= 1``).
    seed : int
        Seeds ``numpy.random.default_rng`` (initialisation and sampling).
    lr : float
        Adam step of the policy (``> 0``).
    clip : float
        PPO clip range, in ``(0, 1]``.
    gamma, lam : float
        Discount and GAE parameter, in ``[0, 1]``.
    epochs : int
        Full-batch updates per iteration (``>= 1``).
    hidden : int
        Width of the two hidden layers of both networks.
    ent_coef : float
        Entropy bonus (``>= 0``).
    value_lr : float, optional
        Adam step of the value network; default ``lr``.
    policy : {"factored", "flat"}
        ``"factored"``: three softmax heads (scheme; weight width over the union of the
        schemes' widths, masked to those of the sampled scheme; activation width), sampled in
        that order, the log-probability being their sum. ``"flat"``: one softmax over the
        whole grid :attr:`QuantEnv.actions`.
    init : {None, "uniform"}
        ``"uniform"``: before the first iteration, score every uniform configuration (the
        first ``len(env.actions)`` entries of the history) and start the policy at the
        incumbent, the fitting one with the highest reward (the highest reward of all if none
        fits): the output biases give each of its components probability ``init_prob`` in
        every layer (:meth:`_PolicyHeads.bias`), so that PPO searches around the best uniform
        configuration instead of from scratch. ``None``: a near-uniform initial policy.
    init_prob : float
        In ``(0, 1)``.
    callback : callable, optional
        ``callback(iteration, result)`` after every iteration.

    Returns
    -------
    SearchResult
        With ``final_choices`` the greedy (arg-max per head) configuration of the final
        policy.
    """
    env = _check_env(env)
    iterations = _check_int(iterations, "iterations", 1)
    episodes_per_iter = _check_int(episodes_per_iter, "episodes_per_iter", 1)
    seed = _check_int(seed, "seed", 0)
    epochs = _check_int(epochs, "epochs", 1)
    hidden = _check_int(hidden, "hidden", 1)
    lr = _check_real(lr, "lr", 0.0, lo_open=True)
    clip = _check_real(clip, "clip", 0.0, 1.0, lo_open=True)
    gamma = _check_real(gamma, "gamma", 0.0, 1.0)
    lam = _check_real(lam, "lam", 0.0, 1.0)
    ent_coef = _check_real(ent_coef, "ent_coef", 0.0)
    value_lr = lr if value_lr is None else _check_real(value_lr, "value_lr", 0.0, lo_open=True)
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES!r}, not {policy!r}")
    if init not in (None, "uniform"):
        raise ValueError(f"init must be None or 'uniform', not {init!r}")
    init_prob = _check_real(init_prob, "init_prob", 0.0, 1.0, lo_open=True)
    if init_prob >= 1.0:
        raise ValueError(f"init_prob must be below 1, not {init_prob!r}")
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    heads = _PolicyHeads(env, policy)
    n_f, n_l, n_z = env.n_features, env.n_layers, sum(heads.heads)
    net = MLP([n_f, hidden, hidden, n_z], rng, out_scale=0.01)
    value = MLP([n_f, hidden, hidden, 1], rng)
    opt_p, opt_v = Adam(net.params, lr), Adam(value.params, value_lr)
    result = SearchResult()
    if init == "uniform":
        uniform = [env.score((c,) * n_l) for c in env.actions]
        for ep in uniform:
            result.record(ep)
        incumbent = max([ep for ep in uniform if ep.fits] or uniform, key=lambda e: e.reward)
        net.params[-1] += heads.bias(incumbent.choices[0], init_prob)
    e_n = episodes_per_iter
    for it in range(iterations):
        states = np.zeros((e_n, n_l, n_f))
        comps = np.zeros((e_n, n_l, len(heads.heads)), dtype=np.intp)
        masks = np.ones((e_n, n_l, n_z), dtype=bool)
        logps = np.zeros((e_n, n_l))
        rewards = np.zeros((e_n, n_l))
        for e in range(e_n):
            s: np.ndarray | None = env.reset()
            for k in range(n_l):
                states[e, k] = s
                a, comps[e, k], logps[e, k], mask = heads.act(net.forward(s[None])[0], rng)
                if mask is not None:
                    masks[e, k] = mask
                s, rewards[e, k], _, ep = env.step(a)
            if ep is None:
                raise RuntimeError("the environment did not end after its last layer")
            result.record(ep)
        flat_s = states.reshape(-1, n_f)
        values = value.forward(flat_s)[:, 0].reshape(e_n, n_l)
        adv, ret = gae(rewards, values, gamma=gamma, lam=lam)
        adv, ret = adv.ravel(), ret.ravel()
        std = float(adv.std())
        adv = (adv - adv.mean()) / std if std > 1e-12 else adv - adv.mean()
        flat_c, flat_m = comps.reshape(-1, len(heads.heads)), masks.reshape(-1, n_z)
        for _ in range(epochs):
            _, d = ppo_policy_loss(net.forward(flat_s), flat_c, logps.ravel(), adv, clip,
                                   ent_coef, heads=heads.heads, mask=flat_m)
            opt_p.step(net.backward(d)[0])
            v = value.forward(flat_s)[:, 0]
            opt_v.step(value.backward(((v - ret) / v.size)[:, None])[0])
        if callback is not None:
            callback(it, result)
    greedy: list[LayerChoice] = []
    for k in range(n_l):
        a = heads.act(net.forward(env.state(k, greedy)[None])[0], None)[0]
        greedy.append(env.actions[a])
    result.final_choices = tuple(greedy)
    result.seconds = time.perf_counter() - start
    return result


# --- baselines ------------------------------------------------------------------------------


def uniform_baseline(env: QuantEnv, widths: Sequence[LayerChoice] | None = None
                     ) -> SearchResult:
    """Every layer with the same choice, for each choice of ``widths`` (default: the grid).

    Returns
    -------
    SearchResult
        ``history`` holds one :class:`Episode` per choice, in order; ``best_*`` the best
        fitting one.
    """
    env = _check_env(env)
    start = time.perf_counter()
    widths = env.actions if widths is None else widths
    if isinstance(widths, str | bytes) or not isinstance(widths, Sequence):
        raise TypeError(f"widths must be a sequence of LayerChoice, not {widths!r}")
    result = SearchResult()
    for c in widths:
        if not isinstance(c, LayerChoice):
            raise TypeError(f"widths must hold LayerChoice objects, not {c!r}")
        result.record(env.score((c,) * env.n_layers))
    result.seconds = time.perf_counter() - start
    return result


def _lower(env: QuantEnv, c: LayerChoice, which: str) -> LayerChoice | None:
    """``c`` with its weight (``"w"``) or activation (``"a"``) width one grid step lower."""
    grid = env.w_bits[c.scheme] if which == "w" else env.a_bits
    bits = c.w_bits if which == "w" else c.a_bits
    lower = [b for b in grid if b < bits]
    if not lower:
        return None
    if which == "w":
        return LayerChoice(c.scheme, lower[-1], c.a_bits)
    return LayerChoice(c.scheme, c.w_bits, lower[-1])


def enforce_budget(env: QuantEnv, choices: Sequence[LayerChoice]) -> tuple[LayerChoice, ...]:
    """HAQ's budget enforcement: lower widths from the last layer until the budget fits.

    Passes run over the layers from the last to the first; at each layer the weight width,
    then the activation width, drops one step on the grid (if above the scheme's minimum), and
    the search stops as soon as the configuration fits. When every layer is at its minimum and
    it still does not fit, layers (last first) switch to the scheme whose minimum-width choice
    gives the lowest usage, again stopping when it fits. So the result fits whenever the
    minimum widths of the chosen schemes fit; otherwise it may still be over budget.
    """
    env = _check_env(env)
    cur = list(_check_choices(choices, env.n_layers))

    def fits() -> bool:
        return env.budget.fits(env.cost(cur))

    if fits():
        return tuple(cur)
    changed = True
    while changed:
        changed = False
        for k in range(env.n_layers - 1, -1, -1):
            for which in ("w", "a"):
                low = _lower(env, cur[k], which)
                if low is not None:
                    cur[k], changed = low, True
                    if fits():
                        return tuple(cur)
    for k in range(env.n_layers - 1, -1, -1):
        options = [LayerChoice(s, env.w_bits[s][0], env.a_bits[0]) for s in env.schemes]
        best = min(options, key=lambda c: env.budget.usage(env.cost([*cur[:k], c, *cur[k + 1:]])))
        cur[k] = best
        if fits():
            break
    return tuple(cur)


def _bin(u: float, n: int) -> int:
    return min(int(u * n), n - 1)


def haq_ddpg_search(env: QuantEnv, *, episodes: int = 100, warmup: int = 20, seed: int = 0,
                    hidden: int = 64, actor_lr: float = 1e-3, critic_lr: float = 2e-3,
                    batch_size: int = 64, updates: int = 8, noise: float = 0.5,
                    noise_decay: float = 0.95, baseline_decay: float = 0.95,
                    callback: Callable[[int, SearchResult], None] | None = None
                    ) -> SearchResult:
    """A HAQ-style DDPG search (Wang et al., CVPR 2019) over :class:`QuantEnv`'s grid.

    Per layer the actor (tanh hidden layers, sigmoid output) gives ``u`` in ``[0, 1]**3``;
    ``u[0]`` picks the scheme, ``u[1]`` the weight width and ``u[2]`` the activation width,
    each as bin ``min(floor(u * n), n - 1)`` of its sorted grid of ``n`` entries (HAQ's
    ``round(b_min - 0.5 + u * (b_max - b_min + 1))`` for consecutive widths). The first
    ``warmup`` episodes draw ``u`` uniformly; later ones add Gaussian noise of standard
    deviation ``noise * noise_decay**(episode - warmup)``, clipped to ``[0, 1]``. After each
    episode the configuration goes through :func:`enforce_budget` and is scored. As in HAQ,
    every transition of the episode gets the final reward minus a moving-average baseline
    (``b <- baseline_decay * b + (1 - baseline_decay) * reward``), and with HAQ's discount of
    1 and one reward per episode the critic regresses ``Q(s, u)`` on that value (no
    bootstrapping, so no target networks). Each episode after the warm-up runs ``updates``
    minibatch steps of the critic (MSE) and the actor (``-Q(s, actor(s))``), with Adam.

    Returns
    -------
    SearchResult
        ``final_choices`` is the enforced configuration of the noise-free actor.
    """
    env = _check_env(env)
    episodes = _check_int(episodes, "episodes", 1)
    warmup = _check_int(warmup, "warmup", 0)
    seed = _check_int(seed, "seed", 0)
    hidden = _check_int(hidden, "hidden", 1)
    batch_size = _check_int(batch_size, "batch_size", 1)
    updates = _check_int(updates, "updates", 0)
    actor_lr = _check_real(actor_lr, "actor_lr", 0.0, lo_open=True)
    critic_lr = _check_real(critic_lr, "critic_lr", 0.0, lo_open=True)
    noise = _check_real(noise, "noise", 0.0)
    noise_decay = _check_real(noise_decay, "noise_decay", 0.0, 1.0)
    baseline_decay = _check_real(baseline_decay, "baseline_decay", 0.0, 1.0)
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_f, n_l = env.n_features, env.n_layers
    actor = MLP([n_f, hidden, hidden, 3], rng, out_scale=0.1)
    critic = MLP([n_f + 3, hidden, hidden, 1], rng)
    opt_a, opt_c = Adam(actor.params, actor_lr), Adam(critic.params, critic_lr)
    buf_s: list[np.ndarray] = []
    buf_u: list[np.ndarray] = []
    buf_r: list[float] = []
    baseline: float | None = None
    result = SearchResult()

    def act(s: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-actor.forward(s[None])[0]))

    def choose(u: np.ndarray) -> LayerChoice:
        scheme = env.schemes[_bin(u[0], len(env.schemes))]
        ws = env.w_bits[scheme]
        return LayerChoice(scheme, ws[_bin(u[1], len(ws))], env.a_bits[_bin(u[2], len(env.a_bits))])

    def rollout(sigma: float | None) -> tuple[list[np.ndarray], list[np.ndarray], list]:
        choices: list[LayerChoice] = []
        ss, us = [], []
        for k in range(n_l):
            s = env.state(k, choices)
            if sigma is None:
                u = rng.random(3)
            elif sigma == 0.0:
                u = act(s)
            else:
                u = np.clip(act(s) + sigma * rng.standard_normal(3), 0.0, 1.0)
            ss.append(s)
            us.append(u)
            choices.append(choose(u))
        return ss, us, choices

    for ep_i in range(episodes):
        sigma = None if ep_i < warmup else noise * noise_decay ** (ep_i - warmup)
        ss, us, choices = rollout(sigma)
        ep = env.score(enforce_budget(env, choices))
        result.record(ep)
        baseline = ep.reward if baseline is None else (
            baseline_decay * baseline + (1.0 - baseline_decay) * ep.reward)
        target = ep.reward - baseline
        buf_s += ss
        buf_u += us
        buf_r += [target] * n_l
        if ep_i + 1 >= warmup and updates:
            s_all, u_all, r_all = np.array(buf_s), np.array(buf_u), np.array(buf_r)
            for _ in range(updates):
                idx = rng.integers(len(buf_r), size=min(batch_size, len(buf_r)))
                q = critic.forward(np.hstack([s_all[idx], u_all[idx]]))[:, 0]
                opt_c.step(critic.backward(((q - r_all[idx]) / idx.size)[:, None])[0])
                z = actor.forward(s_all[idx])
                u = 1.0 / (1.0 + np.exp(-z))
                critic.forward(np.hstack([s_all[idx], u]))
                _, d_in = critic.backward(np.full((idx.size, 1), -1.0 / idx.size))
                opt_a.step(actor.backward(d_in[:, n_f:] * u * (1.0 - u))[0])
        if callback is not None:
            callback(ep_i, result)
    result.final_choices = enforce_budget(env, rollout(0.0)[2])
    result.seconds = time.perf_counter() - start
    return result
