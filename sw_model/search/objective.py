"""The users' objective: the cheapest configuration whose return stays within a loss bound.

A :class:`CostMetric` names what "cheap" means: one resource of a
:class:`~sw_model.search.cost.Cost` (``luts``, ``dsps``, ``mem_bits``, ``cycles``) or a weighted
sum of them, written as text (``"luts"``, ``"luts+30*dsps"``). A :class:`LossBound` is the
constraint and the search reward: the *loss* of a configuration is the return it gives up
against the float network on the same episodes, as a fraction of the float return's magnitude
(``(R_float - R_quant) / |R_float|``); a configuration *meets* the bound when its loss is at
most ``max_loss``. The search's quality of a configuration is ``-loss``
(:class:`~sw_model.search.evaluators.LossEvaluator`), so that higher stays better.

Reward of :class:`~sw_model.search.env.QuantEnv` under a :class:`LossBound` (``m`` the metric
of the configuration, ``scale`` that of a reference configuration, ``L`` the bound)::

    reward = -ln(m / scale) - penalty * ln(1 + max(0, loss - L) / L)

A configuration that meets the bound earns less the more it costs (halving the cost is worth
``ln 2`` anywhere); one that does not is pushed back by the excess loss in units of the bound,
on a log scale so that the catastrophic configurations (losses of several hundred percent) do
not drown the differences between the near-feasible ones.

Choosing the winner without fooling oneself (:func:`heldout_winner`): the search judges
configurations on its own (rotating) episodes; the cheapest configurations that meet the bound
there are re-checked on held-out episodes that the search never saw, and the winner is the
cheapest one that meets the bound on the held-out episodes. If none does, the least-loss
re-checked configuration is reported instead, with its cost. Re-checks run periodically as the
search goes on, which gives the time-to-quality curve: the held-out winner's cost against the
configurations evaluated.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sw_model.checks import check_int, check_real
from sw_model.search.cost import Cost, LayerChoice

__all__ = [
    "COST_FIELDS",
    "CostMetric",
    "HeldOutCheck",
    "LossBound",
    "Selection",
    "heldout_winner",
    "parse_loss",
]

#: The resources of a :class:`~sw_model.search.cost.Cost` a metric can weigh.
COST_FIELDS: tuple[str, ...] = ("luts", "dsps", "mem_bits", "cycles")

_TERM = re.compile(r"^(?:(?P<w>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*\*\s*)?(?P<n>[a-z_]+)$")


@dataclass(frozen=True)
class CostMetric:
    """A weighted sum of the resources of a :class:`~sw_model.search.cost.Cost`.

    Parameters
    ----------
    weights : mapping of str to float
        Weight of each resource (names from :data:`COST_FIELDS`, weights ``> 0``); at least
        one.

    Raises
    ------
    TypeError
        If ``weights`` is not a mapping or a weight is not a number.
    ValueError
        If it is empty, names an unknown resource or holds a weight that is not positive.

    Examples
    --------
    >>> m = CostMetric.parse("luts + 30*dsps")
    >>> m(Cost(100.0, 2.0, 0, 0))
    160.0
    >>> str(m)
    'luts+30*dsps'
    """

    weights: Mapping[str, float]

    def __post_init__(self) -> None:
        if not isinstance(self.weights, Mapping):
            raise TypeError(f"weights must be a mapping of resource to weight, not "
                            f"{self.weights!r}")
        if not self.weights:
            raise ValueError("weights must name at least one resource")
        out = {}
        for name, w in self.weights.items():
            if name not in COST_FIELDS:
                raise ValueError(f"weights must name resources among {COST_FIELDS!r}, not "
                                 f"{name!r}")
            out[name] = check_real(w, f"weight of {name}", minimum=0.0, min_open=True)
        object.__setattr__(self, "weights", dict(sorted(out.items(),
                                                        key=lambda kv: COST_FIELDS.index(kv[0]))))

    @classmethod
    def parse(cls, text: str) -> CostMetric:
        """A metric from text: terms ``[weight*]resource`` joined by ``+`` (``"luts"``,
        ``"luts+30*dsps"``, ``"0.001*mem_bits+luts"``); a resource named twice adds up.

        Raises
        ------
        TypeError
            If ``text`` is not a str.
        ValueError
            If a term is malformed or names an unknown resource (the message shows it).
        """
        if not isinstance(text, str):
            raise TypeError(f"cost metric must be a str, not {text!r}")
        weights: dict[str, float] = {}
        for term in text.replace(" ", "").split("+"):
            m = _TERM.match(term)
            if m is None or m["n"] not in COST_FIELDS:
                raise ValueError(f"cost metric must be terms [weight*]resource joined by '+' "
                                 f"with resources among {COST_FIELDS!r}, not {text!r}")
            weights[m["n"]] = weights.get(m["n"], 0.0) + float(m["w"] or 1.0)
        return cls(weights)

    def __call__(self, cost: Cost) -> float:
        """``sum(weight_r * cost.r)``."""
        if not isinstance(cost, Cost):
            raise TypeError(f"cost must be a Cost, not {cost!r}")
        return float(sum(w * float(getattr(cost, n)) for n, w in self.weights.items()))

    def __str__(self) -> str:
        return "+".join(n if w == 1.0 else f"{w:g}*{n}" for n, w in self.weights.items())


def parse_loss(text: str | float, name: str = "max_loss") -> float:
    """A loss bound as a fraction: ``"2%"`` or ``0.02`` give ``0.02``; errors name the
    parameter ``name``.

    Raises
    ------
    TypeError
        If ``text`` is neither a str nor a number.
    ValueError
        If it is not a number (with an optional ``%``) in ``(0, 1)`` as a fraction.
    """
    if not isinstance(text, str):
        return check_real(text, name, minimum=0.0, maximum=1.0, min_open=True,
                          max_open=True)
    s = text.strip()
    try:
        value = float(s[:-1]) / 100.0 if s.endswith("%") else float(s)
    except ValueError:
        value = math.nan
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be a fraction in (0, 1) or a percentage like '2%', "
                         f"not {text!r}")
    return value


@dataclass(frozen=True)
class LossBound:
    """The constrained objective: minimise ``metric`` while the loss stays within ``max_loss``
    (see the module docs for the loss and the reward).

    Parameters
    ----------
    max_loss : float
        In ``(0, 1)``: the largest return loss, as a fraction of the float return's magnitude.
    metric : CostMetric
    scale : float
        ``> 0``: the metric of a reference configuration (uniform fixed 16/16, say), so that
        :meth:`usage` is about 1 at the reference.
    penalty : float
        ``>= 0``: weight of the excess-loss term of the reward.

    Raises
    ------
    TypeError, ValueError
        For a parameter of the wrong type or value (the message names it).
    """

    max_loss: float
    metric: CostMetric
    scale: float
    penalty: float = 4.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_loss", parse_loss(self.max_loss))
        if not isinstance(self.metric, CostMetric):
            raise TypeError(f"metric must be a CostMetric, not {self.metric!r}")
        object.__setattr__(self, "scale", check_real(self.scale, "scale", minimum=0.0,
                                                     min_open=True))
        object.__setattr__(self, "penalty", check_real(self.penalty, "penalty", minimum=0.0))

    def usage(self, cost: Cost) -> float:
        """``metric(cost) / scale``."""
        return self.metric(cost) / self.scale

    def meets(self, quality: float) -> bool:
        """Whether a quality ``-loss`` meets the bound: ``-quality <= max_loss``."""
        return -float(quality) <= self.max_loss

    def reward(self, cost: Cost, quality: float) -> float:
        """The search reward of a configuration of ``cost`` and quality ``-loss`` (module
        docs)."""
        excess = max(0.0, -float(quality) - self.max_loss) / self.max_loss
        return -math.log(max(self.usage(cost), 1e-300)) - self.penalty * math.log1p(excess)


@dataclass(frozen=True)
class HeldOutCheck:
    """One configuration re-checked on held-out episodes.

    Attributes
    ----------
    choices : tuple of LayerChoice
    cost : Cost
    metric : float
        The objective's metric of ``cost``.
    loss : float
        Loss on the search's episodes (``-quality``).
    heldout_loss : float
        Loss on the held-out episodes.
    meets : bool
        ``heldout_loss <= max_loss``.
    """

    choices: tuple[LayerChoice, ...]
    cost: Cost
    metric: float
    loss: float
    heldout_loss: float
    meets: bool


@dataclass
class Selection:
    """Outcome of :func:`heldout_winner`.

    Attributes
    ----------
    winner : HeldOutCheck or None
        The cheapest re-checked configuration that meets the bound on the held-out episodes.
    least_loss : HeldOutCheck or None
        The re-checked configuration with the least held-out loss (cheapest on ties); what to
        report when there is no winner. None only for an empty history.
    checked : list of HeldOutCheck
        Every re-checked configuration, cheapest first (one held-out evaluation each).
    curve : list of (int, float or None)
        After each re-check, ``(distinct configurations evaluated so far, metric of the winner
        so far)``, None while there is none: the time-to-quality curve.
    """

    winner: HeldOutCheck | None = None
    least_loss: HeldOutCheck | None = None
    checked: list[HeldOutCheck] = field(default_factory=list)
    curve: list[tuple[int, float | None]] = field(default_factory=list)


class _EpisodeLike(Protocol):
    choices: tuple[LayerChoice, ...]
    cost: Cost
    quality: float


def heldout_winner(history: Sequence[_EpisodeLike], bound: LossBound,
                   heldout: Callable[[tuple[LayerChoice, ...]], float], *, top: int = 5,
                   every: int | None = None) -> Selection:
    """The held-out winner among a search's evaluated configurations (see the module docs).

    A *re-check* takes the distinct configurations evaluated so far that meet ``bound`` on the
    search's episodes, cheapest first by ``bound.metric`` (ties: lower search loss, then first
    evaluated), and runs the first ``top`` of them on the held-out episodes (each
    configuration once: one already re-checked keeps its result). If none meets the bound on
    the search's episodes, the ``top`` configurations of least search loss are re-checked
    instead, so that the least-loss one can be reported. A re-check happens after every
    ``every`` distinct configurations (as the search would run it) and after the last one;
    the winner is the cheapest configuration of all re-checks that meets the bound held out,
    so it never gets more expensive as the search goes on.

    Parameters
    ----------
    history : sequence of Episode
        The search's episodes in order: anything with ``choices``, ``cost`` and ``quality``
        (``-loss`` on the search's episodes).
    bound : LossBound
    heldout : callable
        ``heldout(choices) -> loss`` on the held-out episodes (a fraction; lower is better).
    top : int
        Configurations per re-check (``>= 1``).
    every : int, optional
        Distinct configurations between two re-checks (``>= 1``); default only one re-check,
        at the end.

    Returns
    -------
    Selection
    """
    if not isinstance(bound, LossBound):
        raise TypeError(f"bound must be a LossBound, not {bound!r}")
    if not callable(heldout):
        raise TypeError(f"heldout must be callable, not {heldout!r}")
    top = check_int(top, "top", minimum=1)
    if every is not None:
        every = check_int(every, "every", minimum=1)
    first: dict[tuple[LayerChoice, ...], tuple[int, _EpisodeLike]] = {}
    for i, ep in enumerate(history):
        first.setdefault(tuple(ep.choices), (i, ep))
    distinct = list(first.values())
    n = len(distinct)
    points = [] if every is None else list(range(every, n, every))
    if n:
        points.append(n)
    checked: dict[tuple[LayerChoice, ...], HeldOutCheck] = {}
    curve: list[tuple[int, float | None]] = []
    winner: HeldOutCheck | None = None
    for d in points:
        seen = distinct[:d]
        feasible = [(i, ep) for i, ep in seen if bound.meets(ep.quality)]
        if feasible:
            order = sorted(feasible, key=lambda t: (bound.metric(t[1].cost), -t[1].quality,
                                                    t[0]))
        else:
            order = sorted(seen, key=lambda t: (-t[1].quality, bound.metric(t[1].cost), t[0]))
        for _, ep in order[:top]:
            key = tuple(ep.choices)
            if key not in checked:
                h = float(heldout(key))
                checked[key] = HeldOutCheck(key, ep.cost, bound.metric(ep.cost),
                                            -float(ep.quality), h, h <= bound.max_loss)
                c = checked[key]
                if c.meets and (winner is None or (c.metric, c.heldout_loss)
                                < (winner.metric, winner.heldout_loss)):
                    winner = c
        curve.append((d, None if winner is None else winner.metric))
    checks = sorted(checked.values(), key=lambda c: (c.metric, c.heldout_loss))
    least = min(checks, key=lambda c: (c.heldout_loss, c.metric), default=None)
    return Selection(winner, least, checks, curve)
