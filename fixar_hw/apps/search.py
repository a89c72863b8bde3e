"""``fixar-hw search``: automated mixed-precision search of a DDPG actor, within a return loss
or under a hardware budget.

``--max-loss`` (:func:`run_loss_search`) asks the users' question: the cheapest configuration,
by a cost metric the user names (``--cost luts+30*dsps``), whose return on held-out episodes
stays within the loss of the float actor's. Each method scores configurations on episodes that
rotate through a seeded pool, re-checks its cheapest ones on held-out episodes as it goes, and
reports its held-out winner (or, if nothing meets the bound held out, its least-loss
configuration and its cost). It writes ``search.csv`` (as below, ``quality`` being minus the
loss on the search's episodes), ``time_to_quality.png`` (each method's held-out winner's cost
against the configurations evaluated) and ``best.json`` (per method the winner, the
least-loss configuration, every re-checked configuration and the curve; the episode seeds; the
reference uniform fixed 16/16). The rest of these docs is about the budgeted search
(:func:`run_search`).

The actor comes from a weight image of ``fixar-hw train`` (:func:`load_actor`) or is trained
here in float64 (:func:`train_actor`). Every layer gets a :class:`~sw_model.search.cost.LayerChoice`
from the PPO search of :mod:`sw_model.search.ppo` (started from the best uniform configuration),
the HAQ-style DDPG baseline or the uniform baselines of :mod:`sw_model.search.baselines`, priced
by :class:`~sw_model.search.cost.CostModel` (by default on the layer-pipelined mapping, one
engine per layer) or, with ``mapping="engine"``, on the training engine's array
(:class:`~sw_model.search.engine_cost.EngineCostModel`: fixed-point choices, no LUTs), and
scored, by default, by the real return of a fixed set of seeded episodes
(:class:`~sw_model.search.evaluators.ReturnEvaluator`, with a log-scale reward), or by a proxy
on calibration states (:class:`~sw_model.search.evaluators.ProxyEvaluator`). The run writes into
its output directory:

``search.csv``
    Every evaluated configuration: ``method, episode``, one column per layer
    (``scheme:w_bits:a_bits``), ``luts, dsps, mem_bits, cycles, quality, usage, fits, reward``.
``cost_vs_quality.png``
    Budget usage against the quality loss ``-quality`` (the lost reward, or the proxy error),
    per method, best points and the uniform baselines marked.
``best.json``
    Per method the best fitting configuration (highest quality), its cost, quality, the real
    return of the search's episodes (:func:`sw_model.search.evaluators.return_quality`) and of as
    many held-out episodes, with the float actor's and uniform fixed 16/16's returns and cost for
    reference.

Seeds: the actor is trained with ``seed``; the calibration states are rollouts of the float
actor (no noise) on the environment seeded with ``seed + 1``; returns use episodes of the
environment seeded with ``seed`` (held-out returns: ``seed + 2``); the searches use ``seed``.

Feasibility (:func:`check_feasible`): with engines shared per kind, a configuration's LUTs and
DSPs are at least those of the engine of any kind it uses, and its weight bits at least those
of the same network with every layer at its narrowest weight width; so if a configuration
fits, the uniform configuration of its kind with the narrowest weights fits too, and only the
uniform configurations are tried. On the pipelined mapping every resource is a sum over the
layers (cycles do not depend on the choices), so each limit is checked against the sum of the
per-layer minima; limits that are each reachable but not together are not detected, and then
no method finds a fitting configuration.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sw_model.checks import check_int, check_real
from sw_model.rl.envs import make
from sw_model.search.baselines import (
    descent_search,
    haq_ddpg_search,
    random_search,
    uniform_baseline,
)
from sw_model.search.cost import (
    ALPHA_BITS,
    MAPPINGS,
    W_BITS,
    Cost,
    CostModel,
    LayerChoice,
    LayerShape,
)
from sw_model.search.engine_cost import ENGINE_MAPPING, EngineCostModel
from sw_model.search.env import Budget, Episode, QuantEnv, SearchResult
from sw_model.search.evaluators import (
    START_BOXES,
    JointLossEvaluator,
    LossEvaluator,
    ProxyEvaluator,
    ReturnEvaluator,
    covering_starts,
    return_quality,
)
from sw_model.search.objective import (
    CostMetric,
    HeldOutCheck,
    LossBound,
    Selection,
    heldout_winner,
    parse_loss,
)
from sw_model.search.ppo import MOVES, ppo_search
from sw_model.search.quantize import actor_layers

__all__ = [
    "COLORS",
    "HELDOUT_KINDS",
    "LOSS_METHODS",
    "METHODS",
    "QUALITIES",
    "REFERENCE",
    "SEARCH_MAPPINGS",
    "TRAIN_NOISE",
    "LayerFloor",
    "LossRun",
    "SearchRun",
    "calibration_states",
    "check_feasible",
    "choice_text",
    "cost_model",
    "episode_seeds",
    "float_return",
    "format_loss_summary",
    "format_summary",
    "heldout_starts",
    "layer_floor",
    "load_actor",
    "plot_cost_vs_quality",
    "plot_time_to_quality",
    "run_loss_search",
    "run_search",
    "train_actor",
    "train_agent",
    "write_csv",
]

#: Search methods of ``--method`` (``all`` runs every one, in this order).
METHODS: tuple[str, ...] = ("ppo", "haq", "random", "uniform")
#: Search methods under a loss bound (:func:`run_loss_search`): :data:`METHODS` and the greedy
#: descent (:func:`sw_model.search.baselines.descent_search`).
LOSS_METHODS: tuple[str, ...] = (*METHODS, "descent")
#: Plot colours of the methods.
COLORS: dict[str, str] = {"ppo": "tab:blue", "haq": "tab:orange", "random": "tab:purple",
                          "uniform": "tab:green", "descent": "tab:red"}
#: The reference configuration: every layer fixed point, 16-bit weights and activations.
REFERENCE = LayerChoice("fixed", 16, 16)
#: Search qualities: the real return of seeded episodes, or the action-error proxy.
QUALITIES: tuple[str, ...] = ("return", "proxy")
#: Held-out episodes of :func:`run_loss_search`: initial states spread evenly over the
#: environment's (:func:`heldout_starts`), or seeded random draws (:func:`episode_seeds`).
HELDOUT_KINDS: tuple[str, ...] = ("lattice", "seeds")
#: Cost models of ``mapping``: the row-unit mappings of :class:`~sw_model.search.cost.CostModel`
#: and the training engine's array (:class:`~sw_model.search.engine_cost.EngineCostModel`).
SEARCH_MAPPINGS: tuple[str, ...] = (*MAPPINGS, ENGINE_MAPPING)


def cost_model(mapping: str, *, lanes: int = 16, size: int = 16, cores: int = 2
               ) -> tuple[CostModel | EngineCostModel, dict[str, tuple[int, ...]] | None]:
    """The cost model of a mapping and the weight widths the search may choose on it.

    Parameters
    ----------
    mapping : str
        One of :data:`SEARCH_MAPPINGS`: ``"shared"`` or ``"pipelined"`` row-unit lanes
        (:class:`~sw_model.search.cost.CostModel` with ``lanes``), or ``"engine"``, the
        training engine's array of ``cores`` grids of ``size x size`` PEs
        (:class:`~sw_model.search.engine_cost.EngineCostModel`, 16-bit deltas, packed
        memories).
    lanes, size, cores : int
        Of the row-unit and the engine models.

    Returns
    -------
    tuple
        ``(model, w_bits)``: ``w_bits`` is None (every scheme of
        :data:`sw_model.search.cost.W_BITS`) for the row-unit mappings and the fixed-point
        widths alone for the engine, whose PEs have no SP2 lanes.

    Raises
    ------
    TypeError, ValueError
        For an unknown mapping or a bad ``lanes``, ``size`` or ``cores``.
    """
    if not isinstance(mapping, str):
        raise TypeError(f"mapping must be a str, not {mapping!r}")
    if mapping not in SEARCH_MAPPINGS:
        raise ValueError(f"mapping must be one of {SEARCH_MAPPINGS!r}, not {mapping!r}")
    if mapping == ENGINE_MAPPING:
        return EngineCostModel(size=size, cores=cores), {"fixed": W_BITS["fixed"]}
    return CostModel.load(lanes=lanes, mapping=mapping), None


def _model_text(mapping: str, lanes: int, size: int, cores: int) -> str:
    if mapping == ENGINE_MAPPING:
        return f"engine array {size}x{size}x{cores}"
    return f"{lanes} lanes {mapping}"


def choice_text(c: LayerChoice) -> str:
    """``scheme:w_bits:a_bits``."""
    return f"{c.scheme}:{c.w_bits}:{c.a_bits}"


def _cost_dict(cost: Cost) -> dict[str, Any]:
    return {"luts": cost.luts, "dsps": cost.dsps, "mem_bits": cost.mem_bits,
            "cycles": cost.cycles}


def load_agent(path: str | os.PathLike[str], hidden: Sequence[int] | None = None
               ) -> tuple[dict[str, dict[str, np.ndarray]], str]:
    """The float networks ``{"actor": ..., "critic": ...}`` of a ``fixar-hw train`` weight
    image and its environment name.

    The image's ``weight_fmt`` codes become their float values.

    Parameters
    ----------
    path : path
    hidden : sequence of int, optional
        The hidden sizes both networks must have; default any.

    Raises
    ------
    OSError
        If the file cannot be read.
    ValueError
        If it is not a valid DDPG weight image, or a network does not have the ``hidden``
        sizes or does not match its environment's observations and actions (the message
        shows both shapes).
    """
    from sw_model.rl.ddpg import weights_from_image
    from sw_model.rl.image import WeightImage

    image = WeightImage.load(path)
    contents = weights_from_image(image)
    fmt = contents.config.weight_fmt
    nets = {net: {k: np.asarray(fmt.to_float(v), dtype=np.float64)
                  for k, v in contents.weights[net].items()} for net in ("actor", "critic")}
    env = image.metadata.get("env", "pendulum")
    environment = make(env)
    obs, act = environment.observation_dim, environment.action_dim
    for net, ends in (("actor", (obs, act)), ("critic", (obs + act, 1))):
        layers = actor_layers(nets[net])
        sizes = [layers[0][0].shape[1], *(w.shape[0] for w, _ in layers)]
        wanted = [ends[0], *(sizes[1:-1] if hidden is None else hidden), ends[1]]
        if sizes != wanted:
            raise ValueError(f"the weight image's {net} is {'-'.join(map(str, sizes))}, but "
                             f"the {env} networks asked for are {net}s "
                             f"{'-'.join(map(str, wanted))}")
    return nets, env


def load_actor(path: str | os.PathLike[str], hidden: Sequence[int] | None = None
               ) -> tuple[dict[str, np.ndarray], str]:
    """The float actor of :func:`load_agent` and the environment name (the same checks)."""
    nets, env = load_agent(path, hidden)
    return nets["actor"], env


#: Exploration noise ``(noise_sigma, noise_theta)`` of :func:`train_agent` per environment:
#: independent Gaussian noise for Pendulum; for MountainCarContinuous, whose reward is sparse,
#: an Ornstein-Uhlenbeck process (independent noise of any size leaves the car at the bottom).
TRAIN_NOISE = {"pendulum": (0.1, 1.0), "mountain_car_continuous": (0.3, 0.15)}


def train_agent(steps: int, seed: int, *, env: str = "pendulum",
                hidden: Sequence[int] = (64, 64), progress: bool = False
                ) -> dict[str, dict[str, np.ndarray]]:
    """A float64 DDPG agent trained for ``steps`` environment steps (seeded): its weights
    ``{"actor": {...}, "critic": {...}}``.

    Warm-up is ``min(1000, steps // 4)`` random steps, the batch ``min(64, warm-up)`` (at
    least 1), the discount 0.98, the exploration noise :data:`TRAIN_NOISE` ``[env]``.
    """
    from tqdm import tqdm

    from sw_model.rl.ddpg import DDPGConfig, train

    warmup = min(1000, steps // 4)
    sigma, theta = TRAIN_NOISE.get(env, TRAIN_NOISE["pendulum"])
    config = DDPGConfig(hidden=tuple(hidden), precision="float64", seed=seed, gamma=0.98,
                        warmup_steps=warmup, batch_size=max(1, min(64, warmup)),
                        noise_sigma=sigma, noise_theta=theta)
    bar = tqdm(total=steps, desc=f"train float64 {env}", unit="step", disable=not progress,
               mininterval=0.5)
    try:
        result = train(config, env, steps, callback=lambda *_: bar.update(1))
    finally:
        bar.close()
    return {net: {k: np.asarray(v, dtype=np.float64) for k, v in result.agent.weights[net].items()}
            for net in ("actor", "critic")}


def train_actor(steps: int, seed: int, *, env: str = "pendulum",
                hidden: Sequence[int] = (64, 64), progress: bool = False
                ) -> dict[str, np.ndarray]:
    """The actor of :func:`train_agent`."""
    return train_agent(steps, seed, env=env, hidden=hidden, progress=progress)["actor"]


def _float_forward(layers: Sequence[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    for k, (w, b) in enumerate(layers):
        x = x @ w.T + b
        x = np.tanh(x) if k == len(layers) - 1 else np.maximum(x, 0.0)
    return x


def _rollouts(weights: Mapping[str, Any], env: str, episodes: int, seed: int
              ) -> tuple[list[np.ndarray], float]:
    """States visited and mean return of the float actor (no noise)."""
    layers = actor_layers(weights)
    environment = make(env, seed=seed)
    if environment.observation_dim != layers[0][0].shape[1]:
        raise ValueError(f"the actor has {layers[0][0].shape[1]} inputs, but {env!r} has "
                         f"{environment.observation_dim} observations")
    lo, hi = environment.action_low, environment.action_high
    states, total = [], 0.0
    for _ in range(episodes):
        obs, done = environment.reset(), False
        while not done:
            states.append(np.asarray(obs, dtype=np.float64))
            a = _float_forward(layers, np.atleast_2d(obs))[0]
            obs, reward, terminated, truncated = environment.step(lo + (a + 1.0) * 0.5 * (hi - lo))
            total += reward
            done = terminated or truncated
    return states, total / episodes


def calibration_states(weights: Mapping[str, Any], n: int, seed: int, *,
                       env: str = "pendulum") -> np.ndarray:
    """``n`` states, shape ``(n, obs_dim)``: evenly spaced picks from float-actor rollouts on
    ``env`` seeded with ``seed + 1`` (as many episodes as needed)."""
    states: list[np.ndarray] = []
    episodes = 1
    while True:
        states, _ = _rollouts(weights, env, episodes, seed + 1)
        if len(states) >= n:
            break
        episodes = max(episodes + 1, math.ceil(episodes * n / max(1, len(states))))
    idx = np.linspace(0, len(states) - 1, n).round().astype(int)
    return np.array(states)[idx]


def float_return(weights: Mapping[str, Any], *, env: str = "pendulum", episodes: int = 3,
                 seed: int = 0) -> float:
    """Mean return of the float actor over the episodes that :func:`return_quality` uses."""
    return _rollouts(weights, env, episodes, seed)[1]


def _layer_minima(env: QuantEnv, model: CostModel) -> dict[str, tuple[float, list[LayerChoice]]]:
    """Pipelined mapping: per resource, the sum of the per-layer minima and the choices."""
    lanes = model.allocate(env.shapes)
    out: dict[str, tuple[float, list[LayerChoice]]] = {}
    for name in ("luts", "dsps", "mem_bits"):
        total, picks = 0.0, []
        for shape, n in zip(env.shapes, lanes, strict=True):
            def part(c: LayerChoice, shape: Any = shape, n: int = n, name: str = name) -> float:
                if name == "mem_bits":
                    return shape.weights * c.w_bits + shape.fan_out * ALPHA_BITS
                return model.engine(*c.kind, lanes=n)[0 if name == "luts" else 1]
            best = min(env.actions, key=part)
            total += part(best)
            picks.append(best)
        out[name] = (total, picks)
    cycles = env.cost((env.actions[0],) * env.n_layers).cycles
    out["cycles"] = (cycles, [env.actions[0]] * env.n_layers)
    return out


def check_feasible(env: QuantEnv) -> None:
    """Raise ``ValueError`` (with the cheapest costs) if no configuration fits the budget.

    See the module docs: on the shared mapping (or any cost model without ``allocate``), some
    configuration fits exactly when a uniform one does; on the pipelined mapping, each limit
    is compared with the sum of the per-layer minima of its resource.
    """
    model = env.cost_model
    limits = ", ".join(f"{k} {v:g}" for k, v in env.budget.limits.items())
    units = (("luts", "LUTs"), ("dsps", "DSPs"), ("mem_bits", "weight memory bits"),
             ("cycles", "cycles"))
    if isinstance(model, CostModel) and model.mapping == "pipelined":
        minima = _layer_minima(env, model)
        if all(minima[n][0] <= lim for n, lim in env.budget.limits.items()):
            return
        parts = [f"{minima[n][0]:g} {unit} ({' '.join(map(choice_text, minima[n][1]))})"
                 for n, unit in units]
    else:
        uniform = [env.score((c,) * env.n_layers) for c in env.actions]
        if any(ep.fits for ep in uniform):
            return
        parts = []
        for name, unit in units:
            ep = min(uniform, key=lambda e, n=name: (getattr(e.cost, n), e.usage))
            parts.append(f"{getattr(ep.cost, name):g} {unit} ({choice_text(ep.choices[0])})")
    raise ValueError(f"no configuration fits the budget ({limits}); the cheapest need "
                     f"{', '.join(parts)}")


@dataclass
class SearchRun:
    """What :func:`run_search` measured.

    Attributes
    ----------
    results : dict of str to SearchResult
        Per method run.
    uniform : SearchResult
        Every uniform configuration (for the plot and the reference).
    reference : Episode
        Uniform fixed 16/16.
    returns : dict of str to float or None
        Real return of each method's best configuration (None if nothing fitted).
    heldout : dict of str to float or None
        The same on the held-out episodes.
    float_return, reference_return : float
    best : dict
        The contents of ``best.json``.
    """

    results: dict[str, SearchResult]
    uniform: SearchResult
    reference: Episode
    returns: dict[str, float | None]
    float_return: float
    reference_return: float
    best: dict[str, Any] = field(default_factory=dict)
    heldout: dict[str, float | None] = field(default_factory=dict)


def write_csv(path: str | os.PathLike[str], env: QuantEnv,
              results: Mapping[str, SearchResult]) -> None:
    """Every evaluated configuration of every method, in order (see the module docs)."""
    names = [s.name or f"l{k}" for k, s in enumerate(env.shapes, 1)]
    fields = ["method", "episode", *names, "luts", "dsps", "mem_bits", "cycles", "quality",
              "usage", "fits", "reward"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(fields)
        for method, res in results.items():
            for i, ep in enumerate(res.history):
                w.writerow([method, i, *map(choice_text, ep.choices), repr(ep.cost.luts),
                            repr(ep.cost.dsps), ep.cost.mem_bits, ep.cost.cycles,
                            repr(ep.quality), repr(ep.usage), int(ep.fits), repr(ep.reward)])


def plot_cost_vs_quality(path: str | os.PathLike[str], results: Mapping[str, SearchResult],
                         uniform: SearchResult, reference: Episode, title: str) -> None:
    """Budget usage against the quality loss ``-quality`` (log scale), per method (matplotlib,
    Agg backend): hollow markers over budget, a star at each method's best, crosses for the
    uniform configurations, a square for uniform fixed 16/16."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def err(eps: Sequence[Episode]) -> np.ndarray:
        return np.maximum(-np.array([e.quality for e in eps], dtype=np.float64), 1e-12)

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=100)
    colors = COLORS
    for method, res in results.items():
        if method == "uniform":
            continue
        eps = res.history
        fit = np.array([e.fits for e in eps], dtype=bool)
        u = np.array([e.usage for e in eps])
        e = err(eps)
        c = colors.get(method, "tab:gray")
        ax.scatter(u[fit], e[fit], s=10, color=c, alpha=0.4, label=f"{method} (fits)")
        ax.scatter(u[~fit], e[~fit], s=10, facecolors="none", edgecolors=c, alpha=0.3,
                   label=f"{method} (over budget)")
    ue = uniform.history
    ax.scatter([e.usage for e in ue], err(ue), marker="x", s=25, color="tab:green",
               label="uniform")
    for method, res in results.items():
        if res.best_choices is not None:
            best = next(e for e in res.history if e.choices == res.best_choices)
            ax.scatter([best.usage], err([best]), marker="*", s=220,
                       color=colors.get(method, "tab:gray"), edgecolors="black", zorder=5,
                       label=f"best {method}")
    ax.scatter([reference.usage], err([reference]), marker="s", s=60, color="black", zorder=5,
               label="uniform fixed 16/16")
    ax.axvline(1.0, color="red", linestyle="--", linewidth=1, label="budget")
    ax.set_yscale("log")
    ax.set_xlabel("budget usage (max over limits of cost / limit)")
    ax.set_ylabel("quality loss: -return, or the proxy error")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run_search(weights: Mapping[str, Any], budget: Budget, out_dir: str | os.PathLike[str], *,
               methods: Sequence[str] = ("ppo",), env: str = "pendulum", seed: int = 0,
               iterations: int = 30, episodes_per_iter: int = 32,
               haq_episodes: int | None = None, lanes: int = 16, states: int = 256,
               return_episodes: int = 3, penalty: float = 2.0, bonus: float = 0.0,
               mapping: str = "pipelined", quality: str = "return", metric: str = "mse",
               size: int = 16, cores: int = 2, progress: bool = True,
               log: Callable[[str], None] | None = None) -> SearchRun:
    """Search, evaluate and write the outputs listed in the module docs.

    Parameters
    ----------
    weights : mapping
        A float actor (:func:`sw_model.search.quantize.actor_layers`).
    budget : Budget
    out_dir : path
        Created if missing (only after the checks pass).
    methods : sequence of str
        From :data:`METHODS`.
    haq_episodes : int, optional
        Episodes of the HAQ and random searches; default ``iterations * episodes_per_iter``
        plus, with PPO, the uniform configurations PPO scores first (as many evaluated
        configurations as PPO).
    lanes : int
        Lanes of the cost model: per engine (shared mapping) or in total (pipelined).
    states : int
        Calibration states (:func:`calibration_states`).
    return_episodes : int
        Episodes of each real-return evaluation (and of the ``"return"`` quality).
    penalty, bonus : float
        Of :class:`~sw_model.search.env.QuantEnv`'s reward.
    mapping : {"pipelined", "shared", "engine"}
        The cost model (:func:`cost_model`); ``"engine"`` searches fixed-point choices only
        and does not price LUTs, so the budget must not limit them.
    size, cores : int
        The engine's array (``mapping="engine"``).
    quality : {"return", "proxy"}
        ``"return"``: :class:`~sw_model.search.evaluators.ReturnEvaluator` over the
        ``return_episodes`` seeded episodes, with ``shaping="log"``. ``"proxy"``:
        :class:`~sw_model.search.evaluators.ProxyEvaluator` with ``metric`` (``"q_drop"`` is not
        available here: the weights hold no critic), linear reward.

    Raises
    ------
    ValueError
        For a bad parameter or a budget no configuration meets.
    """
    from tqdm import tqdm

    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be among {METHODS!r}, not {tuple(methods)!r}")
    if not isinstance(budget, Budget) or not budget.limits:
        raise ValueError("at least one budget limit (LUTs, DSPs, memory bits, cycles) is needed")
    model, w_bits = cost_model(mapping, lanes=lanes, size=size, cores=cores)
    if mapping == ENGINE_MAPPING and "luts" in budget.limits:
        raise ValueError(f"budget must not limit luts with mapping {mapping!r} (the engine "
                         f"model does not price LUTs), not {budget.limits!r}")
    if quality not in QUALITIES:
        raise ValueError(f"quality must be one of {QUALITIES!r}, not {quality!r}")
    if metric not in ("mse", "rel"):
        raise ValueError(f"metric must be 'mse' or 'rel', not {metric!r}")
    calib = calibration_states(weights, states, seed, env=env)
    if quality == "return":
        evaluate: Any = ReturnEvaluator(weights, calib, env=env, episodes=return_episodes,
                                        seed=seed)
    else:
        evaluate = ProxyEvaluator(weights, calib, metric=metric)
    qenv = QuantEnv.from_actor(weights, calib, cost_model=model, budget=budget,
                               evaluate=evaluate, penalty=penalty, bonus=bonus,
                               shaping="log" if quality == "return" else "linear",
                               w_bits=w_bits)
    if haq_episodes is None:
        haq_episodes = iterations * episodes_per_iter
        if "ppo" in methods:
            haq_episodes += len(qenv.actions)
    check_feasible(qenv)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    results: dict[str, SearchResult] = {}
    for method in methods:
        if method == "uniform":
            results[method] = uniform_baseline(qenv)
            continue
        total = iterations if method == "ppo" else haq_episodes
        unit = "iter" if method == "ppo" else "ep"
        bar = tqdm(total=total, desc=f"search {method}", unit=unit, disable=not progress,
                   mininterval=0.5)

        def callback(_: int, res: SearchResult, bar: Any = bar) -> None:
            bar.update(1)
            if res.best_quality is not None:
                bar.set_postfix(best=f"{res.best_quality:.3g}", refresh=False)

        try:
            if method == "ppo":
                results[method] = ppo_search(qenv, iterations=iterations,
                                             episodes_per_iter=episodes_per_iter, seed=seed,
                                             init="uniform", callback=callback)
            elif method == "random":
                results[method] = random_search(qenv, episodes=haq_episodes, seed=seed,
                                                callback=callback)
            else:
                results[method] = haq_ddpg_search(qenv, episodes=haq_episodes, seed=seed,
                                                  warmup=min(20, haq_episodes // 4),
                                                  callback=callback)
        finally:
            bar.close()
    uniform = results.get("uniform") or uniform_baseline(qenv)
    reference = qenv.score((REFERENCE,) * qenv.n_layers)

    def ret(choices: Sequence[LayerChoice]) -> float:
        return return_quality(weights, choices, calib, env=env, episodes=return_episodes,
                              seed=seed)

    def heldout(choices: Sequence[LayerChoice]) -> float:
        return return_quality(weights, choices, calib, env=env, episodes=return_episodes,
                              seed=seed + 2)

    f_ret = float_return(weights, env=env, episodes=return_episodes, seed=seed)
    ref_ret = ret(reference.choices)
    returns = {m: (ret(r.best_choices) if r.best_choices is not None else None)
               for m, r in results.items()}
    held = {m: (heldout(r.best_choices) if r.best_choices is not None else None)
            for m, r in results.items()}

    write_csv(out / "search.csv", qenv, results)
    limits = ", ".join(f"{k} {v:g}" for k, v in budget.limits.items())
    plot_cost_vs_quality(out / "cost_vs_quality.png", results, uniform, reference,
                         f"{env} actor {'-'.join(str(s.fan_in) for s in qenv.shapes)}-"
                         f"{qenv.shapes[-1].fan_out}, {_model_text(mapping, lanes, size, cores)}; "
                         f"budget {limits}")
    ref_block = {"choices": [choice_text(REFERENCE)] * qenv.n_layers,
                 "cost": _cost_dict(reference.cost), "usage": reference.usage,
                 "fits": reference.fits, "quality": reference.quality,
                 "return": ref_ret, "heldout_return": heldout(reference.choices)}
    best: dict[str, Any] = {
        "env": env, "seed": seed, "lanes": lanes, "mapping": mapping,
        **({"size": size, "cores": cores} if mapping == ENGINE_MAPPING else {}),
        "quality": quality,
        "metric": metric if quality == "proxy" else None, "calibration_states": states,
        "return_episodes": return_episodes, "budget": budget.limits,
        "layers": [[s.name, s.fan_in, s.fan_out] for s in qenv.shapes],
        "float_return": f_ret, "reference": ref_block, "methods": {},
    }
    for m, r in results.items():
        entry: dict[str, Any] = {"evaluated": len(r.history), "seconds": r.seconds}
        if r.best_choices is None:
            entry["best"] = None
        else:
            ep = qenv.score(r.best_choices)
            entry["best"] = {"choices": [choice_text(c) for c in r.best_choices],
                             "cost": _cost_dict(ep.cost), "usage": ep.usage,
                             "quality": ep.quality, "return": returns[m],
                             "heldout_return": held[m]}
        if r.final_choices is not None:
            entry["final_choices"] = [choice_text(c) for c in r.final_choices]
        best["methods"][m] = entry
    (out / "best.json").write_text(json.dumps(best, indent=2) + "\n")
    return SearchRun(results, uniform, reference, returns, f_ret, ref_ret, best, held)


def format_summary(run: SearchRun) -> str:
    """A text table of each method's best configuration, with the references."""
    head = (f"{'method':8} {'evaluated':>9} {'LUTs':>8} {'DSPs':>5} {'mem bits':>9} "
            f"{'cycles':>7} {'usage':>6} {'-quality':>10} {'return':>8} {'time s':>7}  choices")
    lines = [head, "-" * len(head)]

    def row(name: str, n: str, cost: Cost, usage: float, q: float, r: float | None,
            secs: str, choices: Sequence[LayerChoice]) -> str:
        rs = "-" if r is None else f"{r:8.1f}"
        return (f"{name:8} {n:>9} {cost.luts:8.0f} {cost.dsps:5.0f} {cost.mem_bits:9d} "
                f"{cost.cycles:7d} {usage:6.2f} {-q:10.3g} {rs:>8} {secs:>7}  "
                f"{' '.join(map(choice_text, choices))}")

    for m, res in run.results.items():
        if res.best_choices is None:
            lines.append(f"{m:8} {len(res.history):>9}  no evaluated configuration fits")
            continue
        ep = next(e for e in res.history if e.choices == res.best_choices)
        lines.append(row(m, str(len(res.history)), ep.cost, ep.usage, ep.quality,
                         run.returns[m], f"{res.seconds:.1f}", ep.choices))
    ref = run.reference
    lines.append(row("fx16/16", "ref", ref.cost, ref.usage, ref.quality, run.reference_return,
                     "", ref.choices))
    lines.append(f"float actor return: {run.float_return:.1f}")
    return "\n".join(lines)


@dataclass
class LossRun:
    """What :func:`run_loss_search` measured.

    Attributes
    ----------
    bound : LossBound
    results : dict of str to SearchResult
        Per method, its search (quality: ``-loss`` on the rotating episodes).
    selections : dict of str to Selection
        Per method, the held-out re-check of its cheapest configurations
        (:func:`sw_model.search.objective.heldout_winner`).
    curves : dict of str to list of (int, float or None)
        Per method, the held-out winner's metric against the distinct configurations
        evaluated (:attr:`sw_model.search.objective.Selection.curve`).
    float_heldout : float
        The float actor's mean return on the held-out episodes.
    best : dict
        The contents of ``best.json``.
    floor : LayerFloor or None
        With ``floor=True``, every layer's floor.
    """

    bound: LossBound
    results: dict[str, SearchResult]
    selections: dict[str, Selection]
    curves: dict[str, list[tuple[int, float | None]]]
    float_heldout: float
    best: dict[str, Any] = field(default_factory=dict)
    floor: LayerFloor | None = None


@dataclass(frozen=True)
class LayerFloor:
    """What :func:`layer_floor` found: per layer, the cheapest choice that meets the loss bound
    held out while every other layer stays at :data:`REFERENCE`.

    If a layer's loss only grew when other layers are quantized more coarsely, no
    configuration that meets the bound would put any layer below its floor, and with a cost
    that adds over layers (the pipelined mapping's LUTs, DSPs and memory bits) :attr:`metric`
    would be a lower bound on what any search can find. Quantization errors of different
    layers can partly cancel, though, so that premise has to be checked: :attr:`undercut`
    counts the configurations seen that meet the bound held out with a layer below its floor.
    Where it is not 0, the floor is a per-layer sensitivity estimate, not a bound.

    Attributes
    ----------
    choices : tuple of LayerChoice
        Per layer, its floor (:data:`REFERENCE` if no cheaper choice meets the bound alone).
    cost : Cost
        Of the network with every layer at its floor.
    metric : float
        The objective's metric of :attr:`cost`.
    heldout_loss : float
        Of that network (the layers' losses compound, so it usually breaks the bound).
    checked : int
        Held-out evaluations made (each layer's choices from the cheapest up, to the first
        that meets the bound).
    undercut : int
        Configurations re-checked by the searches that meet the bound held out with some
        layer cheaper than its floor; set by :func:`run_loss_search`.
    passing : int
        Configurations re-checked by the searches that meet the bound held out.
    """

    choices: tuple[LayerChoice, ...]
    cost: Cost
    metric: float
    heldout_loss: float
    checked: int
    undercut: int = 0
    passing: int = 0

    def below(self, model: CostModel | EngineCostModel, shapes: Sequence[LayerShape],
              metric: Callable[[Cost], float], choices: Sequence[LayerChoice]) -> bool:
        """Whether some layer of ``choices`` is cheaper than its floor (each priced with the
        other layers at :data:`REFERENCE`)."""
        return any(_alone(model, shapes, metric, k, c) < _alone(model, shapes, metric, k, f)
                   for k, (c, f) in enumerate(zip(choices, self.choices, strict=True)))


def _with(n: int, k: int, choice: LayerChoice) -> tuple[LayerChoice, ...]:
    """``n`` layers at :data:`REFERENCE` but layer ``k`` at ``choice``."""
    return (REFERENCE,) * k + (choice,) + (REFERENCE,) * (n - k - 1)


def _alone(model: CostModel | EngineCostModel, shapes: Sequence[LayerShape],
           metric: Callable[[Cost], float], k: int, choice: LayerChoice) -> float:
    return metric(model.network_cost(shapes, _with(len(shapes), k, choice)))


def layer_floor(shapes: Sequence[LayerShape], actions: Sequence[LayerChoice],
                model: CostModel | EngineCostModel, metric: Callable[[Cost], float],
                heldout_loss: Callable[[tuple[LayerChoice, ...]], float],
                max_loss: float) -> LayerFloor:
    """Per layer, the cheapest of ``actions`` that meets ``max_loss`` held out with every other
    layer at :data:`REFERENCE` (see :class:`LayerFloor` for what it bounds).

    Parameters
    ----------
    shapes : sequence of LayerShape
        The searched layers.
    actions : sequence of LayerChoice
        The choices a layer may take (:attr:`sw_model.search.env.QuantEnv.actions`).
    model : CostModel or EngineCostModel
    metric : callable
        The objective's metric of a :class:`~sw_model.search.cost.Cost`.
    heldout_loss : callable
        The held-out loss of a whole configuration.
    max_loss : float
        The bound.

    Returns
    -------
    LayerFloor
    """
    n = len(shapes)
    floors: list[LayerChoice] = []
    checked = 0
    for k in range(n):
        ref = _alone(model, shapes, metric, k, REFERENCE)
        price = {c: _alone(model, shapes, metric, k, c) for c in actions}
        floor = REFERENCE
        for c in sorted((c for c in actions if price[c] < ref), key=price.__getitem__):
            checked += 1
            if heldout_loss(_with(n, k, c)) <= max_loss:
                floor = c
                break
        floors.append(floor)
    choices = tuple(floors)
    cost = model.network_cost(shapes, choices)
    return LayerFloor(choices, cost, metric(cost), heldout_loss(choices), checked)


def episode_seeds(seed: int, pool: int, heldout: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The search's rotating episode pool and the held-out episodes of :func:`run_loss_search`:
    seeds ``100000 * seed + 10 + k`` (``k < pool``) and ``100000 * seed + 50000 + k``
    (``k < heldout``); disjoint, and disjoint from the calibration rollouts (seed
    ``seed + 1``) for ``pool <= 49990``."""
    seed = check_int(seed, "seed", minimum=0)
    pool = check_int(pool, "pool", minimum=1, maximum=49990)
    heldout = check_int(heldout, "heldout", minimum=1, maximum=49999)
    base = 100000 * seed
    return (tuple(base + 10 + k for k in range(pool)),
            tuple(base + 50000 + k for k in range(heldout)))


def heldout_starts(env: str, seed: int, n: int) -> tuple[int, np.ndarray]:
    """The lattice held-out episodes of :func:`run_loss_search`: ``(shift seed, starts)`` with
    ``starts = covering_starts(env, n, 100000 * seed + 50000)``
    (:func:`sw_model.search.evaluators.covering_starts`: ``n`` initial states spread evenly
    over the environment's, each uniform over them).

    Raises
    ------
    TypeError, ValueError
        For an environment without a known initial-state box, a negative seed or a bad ``n``.
    """
    seed = check_int(seed, "seed", minimum=0)
    shift = 100000 * seed + 50000
    return shift, covering_starts(env, n, shift)


def plot_time_to_quality(path: str | os.PathLike[str],
                         curves: Mapping[str, Sequence[tuple[int, float | None]]],
                         title: str, ylabel: str) -> None:
    """Best held-out cost against configurations evaluated, one step curve per method
    (matplotlib, Agg backend); a method has no point before its first held-out winner."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=100)
    drawn = False
    for method, pts in curves.items():
        xs = [x for x, y in pts if y is not None]
        ys = [y for _, y in pts if y is not None]
        if xs:
            ax.step(xs, ys, where="post", color=COLORS.get(method, "tab:gray"), label=method)
            drawn = True
    ax.set_xlabel("configurations evaluated (distinct)")
    ax.set_ylabel(ylabel)
    ax.set_title(textwrap.fill(title, 100), fontsize=9)  # long titles wrap
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _check_dict(c: HeldOutCheck, float_heldout: float,
                parts: Callable[[tuple[LayerChoice, ...]], tuple[float, float]] | None = None
                ) -> dict[str, Any]:
    out = {"choices": [choice_text(x) for x in c.choices], "cost": _cost_dict(c.cost),
           "metric": c.metric, "loss": c.loss, "heldout_loss": c.heldout_loss,
           "heldout_return": float_heldout - c.heldout_loss * abs(float_heldout),
           "meets": c.meets}
    if parts is not None:
        # a joint search: the loss is the larger of the actor's and the critic's (scaled)
        actor_loss, critic_error = parts(c.choices)
        out.update(heldout_actor_loss=actor_loss, heldout_critic_error=critic_error,
                   heldout_return=float_heldout - actor_loss * abs(float_heldout))
    return out


def run_loss_search(weights: Mapping[str, Any], max_loss: float | str,
                    out_dir: str | os.PathLike[str], *, cost: str = "luts",
                    methods: Sequence[str] = ("ppo",), env: str = "pendulum", seed: int = 0,
                    iterations: int = 30, episodes_per_iter: int = 32,
                    evaluations: int | None = None, lanes: int = 16, states: int = 256,
                    episodes: int = 5, pool: int = 50, heldout_episodes: int = 60,
                    recheck: int = 5, penalty: float = 4.0, mapping: str = "pipelined",
                    curve_step: int = 16, incumbents: int = 1, confidence: float = 2.0,
                    heldout: str = "lattice", size: int = 16, cores: int = 2,
                    critic: bool = False, max_critic_error: float | str = 0.02,
                    floor: bool = False, moves: str = "local", progress: bool = True
                    ) -> LossRun:
    """The cheapest configuration whose held-out return stays within ``max_loss`` of the float
    actor's, by every method in ``methods``; writes ``search.csv``, ``time_to_quality.png``
    and ``best.json`` into ``out_dir``. With ``critic``, the actor and the critic are searched
    together: a configuration also sets the critic's layers, and must also keep the critic's
    value error within ``max_critic_error``
    (:class:`~sw_model.search.evaluators.JointLossEvaluator`).

    Each method searches its own :class:`~sw_model.search.env.QuantEnv` under a
    :class:`~sw_model.search.objective.LossBound` (metric ``cost``, scaled by uniform fixed
    16/16's), scored by a :class:`~sw_model.search.evaluators.LossEvaluator` that rotates
    through a pool of ``pool`` seeded episodes, ``episodes`` per configuration. Then the
    ``recheck`` cheapest configurations that met the bound in the search so far are re-run on
    ``heldout_episodes`` held-out episodes (:func:`heldout_starts`, or :func:`episode_seeds`
    with ``heldout="seeds"``) after every ``curve_step``
    distinct configurations and at the end, and the method's winner is the cheapest that meets
    the bound there (:func:`~sw_model.search.objective.heldout_winner`); if none does, its
    least-loss re-checked configuration is reported with its cost. Every loss and return in
    ``best.json`` and the summary is held-out unless named ``loss`` (the search's episodes).

    Parameters
    ----------
    weights : mapping
        A float actor (:func:`sw_model.search.quantize.actor_layers`), or with ``critic`` a
        float agent ``{"actor": ..., "critic": ...}``.
    max_loss : float or str
        A fraction in ``(0, 1)`` or a percentage (``"2%"``).
    out_dir : path
        Created if missing (only after the checks pass).
    cost : str
        The metric, :meth:`sw_model.search.objective.CostMetric.parse` (``"luts"``,
        ``"luts+30*dsps"``).
    methods : sequence of str
        From :data:`LOSS_METHODS`.
    iterations, episodes_per_iter : int
        PPO's (it scores every uniform configuration first, then samples
        ``iterations * episodes_per_iter`` configurations).
    evaluations : int, optional
        Configurations sampled by HAQ and random search; default as many as PPO.
    lanes, mapping, size, cores
        The cost model (:func:`cost_model`); ``mapping="engine"`` searches fixed-point choices
        only, and its ``cost`` must not name ``luts`` (the engine model does not price them).
    states : int
        Calibration states (:func:`calibration_states`).
    episodes, pool, heldout_episodes : int
        Episodes per evaluation, the rotating pool, the held-out episodes.
    recheck : int
        Configurations re-checked on the held-out episodes per method.
    penalty : float
        Of the :class:`~sw_model.search.objective.LossBound`.
    curve_step : int
        Distinct configurations between two held-out re-checks (the points of the
        time-to-quality curves).
    incumbents : int
        PPO's restarts from the best uniform configurations
        (:func:`~sw_model.search.ppo.ppo_search`).
    moves : {"local", "grid"}
        PPO's actions (:func:`~sw_model.search.ppo.ppo_search`): each layer's move from the
        incumbent, which follows the best configuration scored so far, or each layer's
        configuration on the whole grid.
    confidence : float
        ``z >= 0``: the held-out check compares the held-out loss plus ``z`` standard errors
        of it (:meth:`~sw_model.search.evaluators.LossEvaluator.loss_bound`) with the bound,
        and ``heldout_loss`` in the outputs is that bound; 0 compares the loss itself. The
        default 2 keeps winners off the bound's edge, where 60 held-out episodes cannot tell
        1% from 2.5%.
    heldout : {"lattice", "seeds"}
        The held-out episodes: initial states spread evenly over the environment's
        (:func:`heldout_starts`; environments of
        :data:`sw_model.search.evaluators.START_BOXES`), so that a configuration that fails
        on a region of hard starts meets some of them, or seeded random draws
        (:func:`episode_seeds`). ``best.json`` lists them under ``heldout_episodes`` (start
        states or seeds).
    critic : bool
        Search the actor's and the critic's layers together (``weights`` must hold both);
        ``best.json`` then gives each winner's held-out actor loss and critic error.
    max_critic_error : float or str
        With ``critic``, the bound of the critic's relative RMS value error on the visited
        states, a fraction or a percentage.
    floor : bool
        Also find every layer's floor (:func:`layer_floor`: each layer's cheapest choice
        that meets the bound alone, and how many re-checked configurations undercut it),
        ``best.json``'s ``"floor"``.

    Raises
    ------
    TypeError, ValueError
        For a bad parameter (the message names it).
    """
    from tqdm import tqdm

    unknown = [m for m in methods if m not in LOSS_METHODS]
    if unknown or not methods:
        raise ValueError(f"methods must be among {LOSS_METHODS!r}, not {tuple(methods)!r}")
    model, w_bits = cost_model(mapping, lanes=lanes, size=size, cores=cores)
    metric = CostMetric.parse(cost)
    if mapping == ENGINE_MAPPING and "luts" in metric.weights:
        raise ValueError(f"cost must not use luts with mapping {mapping!r} (the engine model "
                         f"does not price LUTs), not {cost!r}")
    limit = parse_loss(max_loss)
    recheck = check_int(recheck, "recheck", minimum=1)
    if moves not in MOVES:
        raise ValueError(f"moves must be one of {MOVES!r}, not {moves!r}")
    curve_step = check_int(curve_step, "curve_step", minimum=1)
    if heldout not in HELDOUT_KINDS:
        raise ValueError(f"heldout must be one of {HELDOUT_KINDS!r}, not {heldout!r}")
    if heldout == "lattice" and env not in START_BOXES:
        raise ValueError(f"heldout 'lattice' needs an environment among "
                         f"{tuple(START_BOXES)!r}, not {env!r}")
    if not isinstance(critic, bool):
        raise TypeError(f"critic must be a bool, not {critic!r}")
    c_limit = parse_loss(max_critic_error, "max_critic_error")
    if critic and (not isinstance(weights, Mapping) or "critic" not in weights):
        raise ValueError("critic=True needs weights holding an 'actor' and a 'critic'")

    def evaluator(**kw: Any) -> LossEvaluator | JointLossEvaluator:
        if critic:
            return JointLossEvaluator(weights, calib, max_loss=limit,
                                      max_critic_error=c_limit, env=env, **kw)
        return LossEvaluator(weights, calib, env=env, **kw)

    train_seeds, held_seeds = episode_seeds(seed, pool, heldout_episodes)
    calib = calibration_states(weights, states, seed, env=env)
    if heldout == "lattice":
        shift_seed, starts = heldout_starts(env, seed, heldout_episodes)
        held = evaluator(starts=starts, episodes=len(starts))
        held_seeds = held.seeds
        held_list: list[Any] = starts.tolist()
    else:
        held = evaluator(seeds=held_seeds, episodes=len(held_seeds))
        held_list = list(held_seeds)
    shapes = held.shapes
    mats = [w for w, _ in (held.actor.layers + held.critic.layers if critic else held.layers)]
    ref = model.network_cost(shapes, [REFERENCE] * len(shapes))
    bound = LossBound(limit, metric, metric(ref), penalty=penalty)
    evaluator(seeds=train_seeds, episodes=episodes)  # checks
    probe = QuantEnv(shapes, mats, cost_model=model, budget=bound, evaluate=lambda c: 0.0,
                     w_bits=w_bits)
    if evaluations is None:
        evaluations = iterations * episodes_per_iter + (
            len(probe.actions) if "ppo" in methods else 0)
    evaluations = check_int(evaluations, "evaluations", minimum=1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    z = check_real(confidence, "confidence", minimum=0.0)
    memo: dict[tuple[LayerChoice, ...], float] = {}

    def held_loss(choices: tuple[LayerChoice, ...]) -> float:
        if choices not in memo:
            memo[choices] = held.loss_bound(choices, held_seeds, z)
        return memo[choices]

    results: dict[str, SearchResult] = {}
    selections: dict[str, Selection] = {}
    curves: dict[str, list[tuple[int, float | None]]] = {}
    for method in methods:
        evaluate = evaluator(seeds=train_seeds, episodes=episodes)
        qenv = QuantEnv(shapes, mats, cost_model=model, budget=bound, evaluate=evaluate,
                        w_bits=w_bits)
        total = {"ppo": iterations, "uniform": 0}.get(method, evaluations)
        bar = tqdm(total=total, desc=f"search {method}", disable=not progress or not total,
                   mininterval=0.5)

        def callback(_: int, res: SearchResult, bar: Any = bar) -> None:
            bar.update(1)

        try:
            if method == "ppo":
                res = ppo_search(qenv, iterations=iterations,
                                 episodes_per_iter=episodes_per_iter, seed=seed,
                                 init="uniform", incumbents=incumbents, moves=moves,
                                 callback=callback)
            elif method == "haq":
                res = haq_ddpg_search(qenv, episodes=evaluations, seed=seed,
                                      warmup=min(20, evaluations // 4), callback=callback)
            elif method == "random":
                res = random_search(qenv, episodes=evaluations, seed=seed, callback=callback)
            elif method == "descent":
                res = descent_search(qenv, episodes=evaluations, callback=callback)
            else:
                res = uniform_baseline(qenv)
        finally:
            bar.close()
        results[method] = res
        selections[method] = heldout_winner(res.history, bound, held_loss, top=recheck,
                                            every=curve_step)
        curves[method] = selections[method].curve
    float_held = float(held.float_returns(held_seeds).mean())
    if not isinstance(floor, bool):
        raise TypeError(f"floor must be a bool, not {floor!r}")
    found = None
    if floor:
        found = layer_floor(shapes, probe.actions, model, metric, held_loss, limit)
        seen = {c.choices: c for sel in selections.values() for c in sel.checked if c.meets}
        found = dataclasses.replace(found, passing=len(seen), undercut=sum(
            found.below(model, shapes, metric, c) for c in seen))

    write_csv(out / "search.csv", probe, results)
    def arch_of(part: Sequence[LayerShape]) -> str:
        return "-".join(str(s.fan_in) for s in part) + f"-{part[-1].fan_out}"

    split = held.split if critic else len(shapes)
    nets = (f"actor {arch_of(shapes[:split])} and critic {arch_of(shapes[split:])}"
            if critic else f"actor {arch_of(shapes)}")
    bounds = (f"{limit:.1%} loss and {c_limit:.1%} critic error" if critic
              else f"{limit:.1%} loss")
    plot_time_to_quality(out / "time_to_quality.png", curves,
                         f"{env} {nets}, {_model_text(mapping, lanes, size, cores)}: "
                         f"cheapest configuration "
                         f"within {bounds} on {len(held_seeds)} held-out episodes",
                         f"held-out winner's {metric}")
    parts = ((lambda c: held.parts(c, held_seeds)) if critic else None)
    best: dict[str, Any] = {
        "env": env, "seed": seed, "lanes": lanes, "mapping": mapping,
        **({"size": size, "cores": cores} if mapping == ENGINE_MAPPING else {}),
        "cost": str(metric),
        "max_loss": limit, "critic": critic,
        **({"max_critic_error": c_limit} if critic else {}),
        "calibration_states": states, "episodes": episodes,
        "incumbents": incumbents, "moves": moves, "confidence": z,
        "episode_pool": list(train_seeds), "heldout": heldout,
        **({"heldout_shift_seed": shift_seed} if heldout == "lattice" else {}),
        "heldout_episodes": held_list,
        "layers": [[s.name, s.fan_in, s.fan_out] for s in shapes],
        "float_heldout_return": float_held,
        "reference": {"choices": [choice_text(REFERENCE)] * len(shapes),
                      "cost": _cost_dict(ref), "metric": metric(ref),
                      "heldout_loss": held_loss((REFERENCE,) * len(shapes))},
        "methods": {},
    }
    if found is not None:
        best["floor"] = {"choices": [choice_text(x) for x in found.choices],
                         "cost": _cost_dict(found.cost), "metric": found.metric,
                         "heldout_loss": found.heldout_loss, "checked": found.checked,
                         "passing": found.passing, "undercut": found.undercut}
    for m, res in results.items():
        sel = selections[m]
        best["methods"][m] = {
            "sampled": len(res.history),
            "evaluated": len({ep.choices for ep in res.history}),
            "heldout_checked": len(sel.checked),
            "seconds": res.seconds,
            "winner": None if sel.winner is None else _check_dict(sel.winner, float_held, parts),
            "least_loss": (None if sel.least_loss is None
                           else _check_dict(sel.least_loss, float_held, parts)),
            "rechecked": [_check_dict(c, float_held) for c in sel.checked],
            "time_to_quality": [[x, y] for x, y in curves[m]],
        }
    (out / "best.json").write_text(json.dumps(best, indent=2) + "\n")
    return LossRun(bound, results, selections, curves, float_held, best, found)


def format_loss_summary(run: LossRun) -> str:
    """A text table of each method's held-out winner (or least-loss configuration)."""
    b = run.best
    joint = b.get("critic", False)
    critic = (f" and {b['max_critic_error']:.2%} critic value error (actor layers, then the "
              f"critic's; 'loss' and 'held' are the larger of the actor's loss and the "
              f"critic's error scaled to the loss bound)" if joint else "")
    lines = [f"cheapest configuration by {b['cost']} within {run.bound.max_loss:.2%} loss of "
             f"the float actor's return{critic} on {len(b['heldout_episodes'])} held-out "
             f"episodes (float: {run.float_heldout:.1f}); reference fx16/16: "
             f"{b['reference']['metric']:g}, held-out loss {b['reference']['heldout_loss']:.2%}"]
    head = (f"{'method':8} {'evaluated':>9} {'metric':>10} {'LUTs':>8} {'DSPs':>5} "
            f"{'mem bits':>9} {'loss':>7} {'held':>7} {'time s':>7}  choices")
    lines += [head, "-" * len(head)]
    for m, entry in b["methods"].items():
        c = entry["winner"]
        note = ""
        if c is None:
            c = entry["least_loss"]
            note = "  (nothing meets the bound held out; least loss shown)"
        if c is None:
            lines.append(f"{m:8} {entry['evaluated']:>9}  nothing evaluated")
            continue
        lines.append(f"{m:8} {entry['evaluated']:>9} {c['metric']:10.6g} "
                     f"{c['cost']['luts']:8.0f} {c['cost']['dsps']:5.0f} "
                     f"{c['cost']['mem_bits']:9d} {c['loss']:7.2%} {c['heldout_loss']:7.2%} "
                     f"{entry['seconds']:7.1f}  {' '.join(c['choices'])}{note}")
    f = b.get("floor")
    if f is not None:
        lines.append(f"{'floor':8} {f['checked']:>9} {f['metric']:10.6g} "
                     f"{f['cost']['luts']:8.0f} {f['cost']['dsps']:5.0f} "
                     f"{f['cost']['mem_bits']:9d} {'':>7} {f['heldout_loss']:7.2%} {'':>7}  "
                     f"{' '.join(f['choices'])}")
        lines.append(f"floor: every layer at the cheapest choice that meets the bound with the "
                     f"others at fx16/16; {f['undercut']} of the {f['passing']} re-checked "
                     f"configurations that meet the bound put a layer below its floor (when "
                     f"none does, no search can find anything cheaper than the floor)")
    return "\n".join(lines)
