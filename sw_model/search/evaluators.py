"""Qualities of a configuration: how good the actor stays when quantized layer by layer.

:class:`ProxyEvaluator` / :func:`proxy_quality` (cheap: how far the quantized actor's actions
move from the float actor's, as a mean squared error (``"mse"``), normalised per output
(``"rel"``), or as the value lost according to the float critic (``"q_drop"``)),
:func:`return_quality` / :class:`ReturnEvaluator` (the quantized policy's return on a fixed set
of seeded episodes, run in lockstep), :class:`LossEvaluator` (the return lost against the float
actor on episodes that rotate through a seeded pool, or from given initial states such as
:func:`covering_starts`, which spread evenly over an environment's initial states),
:class:`JointLossEvaluator` (an actor and its critic together: the return lost and the
critic's value error, each against its bound),
:func:`critic_evaluator` (a quantized
critic's relative Q error) and :func:`validate_proxy` (Spearman rank correlation of a proxy
with the return).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from sw_model.checks import check_int, check_real
from sw_model.rl.envs import Env, make
from sw_model.rl.envs.base import StateEnv
from sw_model.search._checks import check_choices
from sw_model.search.cost import LayerChoice, LayerShape
from sw_model.search.quantize import actor_layers, actor_shapes, choice_grid, quantize_layer

__all__ = [
    "METRICS",
    "OUTPUTS",
    "START_BOXES",
    "JointLossEvaluator",
    "LossEvaluator",
    "ProxyEvaluator",
    "ProxyValidation",
    "ReturnEvaluator",
    "covering_starts",
    "critic_evaluator",
    "lattice_generator",
    "proxy_quality",
    "return_quality",
    "spearman",
    "validate_proxy",
]

#: Proxy metrics of :class:`ProxyEvaluator`.
METRICS: tuple[str, ...] = ("mse", "rel", "q_drop")
#: Output activations of :class:`ProxyEvaluator`'s network.
OUTPUTS: tuple[str, ...] = ("tanh", "linear")
#: The initial-state distributions of the NumPy environments, uniform in a box ``(low, high)``
#: over the state (:mod:`sw_model.rl.envs.pendulum`: ``(theta, thetadot)`` in
#: ``[-pi, pi] x [-1, 1]``; :mod:`sw_model.rl.envs.mountain_car`: ``(position, velocity)`` in
#: ``[-0.6, -0.4] x {0}``).
START_BOXES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "pendulum": ((-math.pi, -1.0), (math.pi, 1.0)),
    "mountain_car_continuous": ((-0.6, 0.0), (-0.4, 0.0)),
}


def lattice_generator(n: int) -> int:
    """The generator ``g`` of the ``n``-point rank-1 lattice ``{(i/n, i*g/n mod 1)}`` of
    :func:`covering_starts`: among the ``g`` coprime to ``n``, the one whose points lie
    farthest apart on the unit torus (the smallest ``g`` on a tie; 1 for ``n <= 2``).

    Raises
    ------
    TypeError, ValueError
        If ``n`` is not an integer from 1 to 100000.
    """
    return _lattice_generator(check_int(n, "n", minimum=1, maximum=100000))


@functools.lru_cache(maxsize=64)
def _lattice_generator(n: int) -> int:
    if n <= 2:
        return 1
    i = np.arange(1, n, dtype=np.int64)
    a = np.minimum(i, n - i) ** 2
    best, best_g = -1, 1
    for g in range(1, n):
        if math.gcd(g, n) != 1:
            continue
        b = (i * g) % n
        d = int(np.min(a + np.minimum(b, n - b) ** 2))
        if d > best:
            best, best_g = d, g
    return best_g


def covering_starts(env: str, n: int, seed: int) -> np.ndarray:
    """``n`` initial states of ``env`` spread evenly over its initial-state box
    (:data:`START_BOXES`): a randomly shifted rank-1 lattice.

    With ``d`` the box's dimensions of non-zero width and ``u`` a uniform shift in
    ``[0, 1)**d`` drawn from ``numpy.random.default_rng(seed)``, point ``i < n`` is
    ``low + (high - low) * ((i * z / n + u) mod 1)`` on those dimensions (the others are
    ``low``), with ``z = (1, g, g**2, ...) mod n`` and ``g = lattice_generator(n)``. So:

    - every point is uniform over the box (the shift), so the mean of a function over the
      points is an unbiased estimate of its mean over the initial states, as with random
      starts;
    - every dimension is stratified: each of its ``n`` equal slices holds exactly one point;
    - in two dimensions (Pendulum's angle and velocity) the points lie far apart: every cell
      of a ``k x k`` grid over the box holds a point for ``k**2 <= 0.3 * n`` (checked for
      ``n`` from 8 to 240), so a region of hard starts a few cells wide cannot be missed, as
      random starts miss it with probability ``(1 - area)**n``.

    Parameters
    ----------
    env : str
        A name in :data:`START_BOXES`.
    n : int
        Points, 1 to 100000.
    seed : int
        Of the shift, ``>= 0``.

    Returns
    -------
    numpy.ndarray, shape (n, state_dim)
        ``float64`` states for ``reset(state=...)``.

    Raises
    ------
    TypeError, ValueError
        For an unknown environment, ``n`` outside 1 to 100000 or a negative seed.
    """
    if not isinstance(env, str):
        raise TypeError(f"env must be an environment name, not {env!r}")
    if env not in START_BOXES:
        raise ValueError(f"env must be one of {tuple(START_BOXES)!r}, not {env!r}")
    n = check_int(n, "n", minimum=1, maximum=100000)
    seed = check_int(seed, "seed", minimum=0)
    low, high = (np.array(v, dtype=np.float64) for v in START_BOXES[env])
    dims = np.flatnonzero(high > low)
    g = lattice_generator(n)
    z = np.array([pow(g, k, n) if n > 1 else 0 for k in range(len(dims))], dtype=np.int64)
    shift = np.random.default_rng(seed).random(len(dims))
    u = (np.outer(np.arange(n, dtype=np.int64), z) % n / n + shift) % 1.0
    out = np.tile(low, (n, 1))
    out[:, dims] = low[dims] + (high[dims] - low[dims]) * u
    return out

def _check_states(states: npt.ArrayLike, fan_in: int) -> np.ndarray:
    s = np.asarray(states, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != fan_in or s.shape[0] == 0:
        raise ValueError(f"states must have shape (n >= 1, {fan_in}), not {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("states must be finite")
    return s


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

    Layer ``k`` of the quantized network uses :func:`~sw_model.search.quantize.quantize_layer`
    weights (biases stay float) and quantizes its *input* with
    :func:`~sw_model.search.quantize.quantize_activations` at ``a_bits``, with ``amax`` the
    largest magnitude of that input over ``states`` in the float network (calibration). Hidden
    layers are ReLU, the output tanh (an actor) or linear (a critic), as in
    :mod:`sw_model.arch.ddpg_step`. Quantized layers are cached per ``(layer, scheme, w_bits)``.

    Parameters
    ----------
    weights : mapping
        A float network (see :func:`~sw_model.search.quantize.actor_layers`; a DDPG weights dict
        gives its actor).
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
        """``(2**frac, lowest, highest code)`` of
        :func:`~sw_model.search.quantize.quantize_activations` at layer ``k``."""
        key = (k, bits)
        if key not in self._grids:
            amax = self.ranges[k]
            frac = (bits - 1) - math.ceil(math.log2(amax)) if amax > 0 else bits - 1
            self._grids[key] = (2.0**frac, -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1)
        return self._grids[key]

    def outputs(self, obs: npt.ArrayLike, choices: Sequence[LayerChoice]) -> np.ndarray:
        """Outputs ``(B, outputs)`` of the quantized network for inputs ``(B, inputs)``."""
        choices = check_choices(choices, len(self.layers))
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
        A float actor (see :func:`~sw_model.search.quantize.actor_layers`).
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


def _lockstep(policy: Callable[[np.ndarray], np.ndarray], env: str,
              starts: Sequence[np.ndarray], seen: list[list[np.ndarray]] | None = None
              ) -> np.ndarray:
    """Returns of episodes of the named :class:`~sw_model.rl.envs.base.StateEnv` ``env`` from
    the initial ``starts``, run in lockstep: ``policy(obs (B, obs_dim))`` gives actions in
    ``[-1, 1]``, scaled to the action range. With ``seen``, each episode's observations (one
    per step, in order) are appended to it, one list per episode."""
    envs = [make(env) for _ in starts]
    lo, hi = envs[0].action_low, envs[0].action_high
    obs = np.array([e.reset(state=st) for e, st in zip(envs, starts, strict=True)])
    live = np.ones(len(envs), dtype=bool)
    totals = np.zeros(len(envs))
    if seen is not None:
        seen.extend([] for _ in envs)
        first = len(seen) - len(envs)
    while live.any():
        idx = np.flatnonzero(live)
        if seen is not None:
            for i in idx:
                seen[first + i].append(obs[i].copy())
        acts = lo + (policy(obs[idx]) + 1.0) * 0.5 * (hi - lo)
        for i, a in zip(idx, acts, strict=True):
            obs[i], reward, terminated, truncated = envs[i].step(a)
            totals[i] += reward
            live[i] = not (terminated or truncated)
    return totals


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
        return float(_lockstep(lambda x: ev.outputs(x, choices), env, starts).mean())
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
        A float actor (see :func:`~sw_model.search.quantize.actor_layers`).
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
    episodes = check_int(episodes, "episodes", minimum=1)
    seed = check_int(seed, "seed", minimum=0)
    ev = ProxyEvaluator(weights, states)
    return _returns(ev, check_choices(choices, len(ev.layers)), env, episodes, seed)


class ReturnEvaluator:
    """The real return as a search quality: :func:`return_quality` of a fixed set of seeded
    episodes, as a callable for :class:`~sw_model.search.env.QuantEnv`.

    Parameters
    ----------
    weights : mapping
        A float actor (see :func:`~sw_model.search.quantize.actor_layers`).
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
        self.episodes = check_int(episodes, "episodes", minimum=1)
        self.seed = check_int(seed, "seed", minimum=0)
        self._ev = ProxyEvaluator(weights, states)
        self.layers, self.shapes, self.states = self._ev.layers, self._ev.shapes, self._ev.states

    def __call__(self, choices: Sequence[LayerChoice]) -> float:
        choices = check_choices(choices, len(self.layers))
        return _returns(self._ev, choices, self.env, self.episodes, self.seed)


class LossEvaluator:
    """The return lost against the float actor, on rotating seeded episodes, as a search
    quality (``-loss``) for a :class:`~sw_model.search.objective.LossBound` search.

    Episode ``s`` starts from the first initial state of ``make(env, seed=s)``, or from
    ``starts[s]`` when ``starts`` is given, so each episode is named by its seed (or index)
    and any set of them can be run on its own. Call ``i`` (counting from
    0) runs the ``episodes`` episodes ``seeds[(i * episodes + j) % len(seeds)]``,
    ``j < episodes``: successive configurations meet successive episodes of the pool, so the
    search cannot tune itself to one fixed set (with ``episodes == len(seeds)`` every call runs
    them all). The loss on a set of episodes is ``(F - Q) / |F|``, with ``Q`` the quantized
    actor's total return over them and ``F`` the float actor's on the same episodes (cached per
    seed), so a hard episode costs both alike.

    Parameters
    ----------
    weights : mapping
        A float actor (see :func:`~sw_model.search.quantize.actor_layers`).
    states : array_like, shape (n, obs_dim)
        Calibration states for the activation ranges (as :class:`ProxyEvaluator`).
    env : str
        The name of a :class:`~sw_model.rl.envs.base.StateEnv` for :func:`sw_model.rl.envs.make`
        (``"pendulum"``, ``"mountain_car_continuous"``).
    seeds : sequence of int, optional
        The pool of episodes (distinct seeds ``>= 0``, or indices into ``starts``); default
        ``range(5)``, or every index of ``starts``.
    episodes : int
        Episodes per call, ``1 <= episodes <= len(seeds)``.
    starts : array_like, shape (n, state_dim), optional
        Initial states of the episodes (e.g. :func:`covering_starts`), instead of seeded
        draws.

    Attributes
    ----------
    env, seeds, episodes
        As given (``seeds`` a tuple).
    starts : numpy.ndarray or None
        As given (a read-only copy).
    calls : int
        Calls so far (the next call's turn in the rotation).
    layers, shapes, states
        As :class:`ProxyEvaluator`'s.

    Raises
    ------
    TypeError, ValueError
        For a parameter of the wrong type or value (the message names it), or an actor whose
        inputs do not match the environment's observations.
    """

    def __init__(self, weights: Mapping[str, Any], states: npt.ArrayLike, *,
                 env: str = "pendulum", seeds: Sequence[int] | None = None,
                 episodes: int = 5, starts: npt.ArrayLike | None = None) -> None:
        if not isinstance(env, str):
            raise TypeError(f"env must be an environment name, not {env!r}")
        probe = make(env, seed=0)
        if not isinstance(probe, StateEnv):
            raise ValueError(f"env must name an environment whose state can be set, not "
                             f"{env!r}")
        self.starts: np.ndarray | None = None
        if starts is not None:
            st = np.array(starts, dtype=np.float64)
            if st.ndim != 2 or st.shape[0] == 0 or st.shape[1] != probe.state_dim:
                raise ValueError(f"starts must have shape (n >= 1, {probe.state_dim}), not "
                                 f"{st.shape}")
            if not np.isfinite(st).all():
                raise ValueError("starts must be finite")
            st.flags.writeable = False
            self.starts = st
        if seeds is None:
            seeds = tuple(range(5 if self.starts is None else len(self.starts)))
        if isinstance(seeds, str | bytes) or not isinstance(seeds, Sequence) or not seeds:
            raise TypeError(f"seeds must be a non-empty sequence of int, not {seeds!r}")
        pool = tuple(check_int(x, "seeds entry", minimum=0) for x in seeds)
        if len(set(pool)) != len(pool):
            raise ValueError(f"seeds must be distinct, not {seeds!r}")
        if self.starts is not None and max(pool) >= len(self.starts):
            raise ValueError(f"seeds must index starts (below {len(self.starts)}), not "
                             f"{max(pool)!r}")
        self.episodes = check_int(episodes, "episodes", minimum=1)
        if self.episodes > len(pool):
            raise ValueError(f"episodes must be at most len(seeds) = {len(pool)}, not "
                             f"{episodes!r}")
        self.env, self.seeds, self.calls = env, pool, 0
        self._ev = ProxyEvaluator(weights, states)
        self.layers, self.shapes, self.states = self._ev.layers, self._ev.shapes, self._ev.states
        if probe.observation_dim != self.layers[0][0].shape[1] or (
                probe.action_dim != self.layers[-1][0].shape[0]):
            raise ValueError(f"the actor maps {self.layers[0][0].shape[1]} inputs to "
                             f"{self.layers[-1][0].shape[0]} outputs, but {env!r} has "
                             f"{probe.observation_dim} observations and {probe.action_dim} "
                             f"actions")
        self._starts: dict[int, np.ndarray] = {}
        self._float: dict[int, float] = {}

    def _start(self, seed: int) -> np.ndarray:
        if self.starts is not None:
            if seed >= len(self.starts):
                raise ValueError(f"seeds entry must index starts (below {len(self.starts)}), "
                                 f"not {seed!r}")
            return self.starts[seed].copy()
        if seed not in self._starts:
            e = make(self.env, seed=seed)
            e.reset()
            self._starts[seed] = e.state  # type: ignore[attr-defined]
        return self._starts[seed]

    def float_returns(self, seeds: Sequence[int]) -> np.ndarray:
        """Returns of the float actor on the episodes ``seeds`` (cached)."""
        todo = [s for s in dict.fromkeys(seeds) if s not in self._float]
        if todo:
            layers = self.layers
            got = _lockstep(lambda x: _float_net(layers, x, "tanh")[-1], self.env,
                            [self._start(s) for s in todo])
            self._float.update(zip(todo, map(float, got), strict=True))
        return np.array([self._float[s] for s in seeds])

    def returns(self, choices: Sequence[LayerChoice], seeds: Sequence[int]) -> np.ndarray:
        """Returns of the quantized actor on the episodes ``seeds``."""
        choices = check_choices(choices, len(self.layers))
        return _lockstep(lambda x: self._ev.outputs(x, choices), self.env,
                         [self._start(check_int(s, "seeds entry", minimum=0)) for s in seeds])

    def loss(self, choices: Sequence[LayerChoice], seeds: Sequence[int]) -> float:
        """``(F - Q) / |F|`` on the episodes ``seeds`` (see the class docs)."""
        f = float(self.float_returns(seeds).sum())
        q = float(self.returns(choices, seeds).sum())
        return (f - q) / max(abs(f), 1e-12)

    def loss_bound(self, choices: Sequence[LayerChoice], seeds: Sequence[int], z: float
                   ) -> float:
        """The loss plus ``z`` standard errors: ``(sum d + z * sqrt(n) * std(d)) / |F|`` with
        ``d_i = f_i - q_i`` the return lost on episode ``i`` of the ``n`` episodes ``seeds``
        (``std`` with ``n - 1`` degrees of freedom, 0 for one episode): an upper confidence
        bound of the loss on ``n`` episodes drawn like these, which a configuration that
        fails on rare starting states cannot meet by luck.

        Raises
        ------
        ValueError
            If ``z`` is negative or not finite.
        """
        z = check_real(z, "z", minimum=0.0)
        f = self.float_returns(seeds)
        d = f - self.returns(choices, seeds)
        spread = float(d.std(ddof=1)) if d.size > 1 else 0.0
        return (float(d.sum()) + z * math.sqrt(d.size) * spread) / max(abs(float(f.sum())),
                                                                        1e-12)

    def turn(self, i: int) -> tuple[int, ...]:
        """The seeds of call ``i``."""
        i = check_int(i, "i", minimum=0)
        n = len(self.seeds)
        return tuple(self.seeds[(i * self.episodes + j) % n] for j in range(self.episodes))

    def __call__(self, choices: Sequence[LayerChoice]) -> float:
        seeds = self.turn(self.calls)
        self.calls += 1
        return -self.loss(choices, seeds)


class JointLossEvaluator:
    """An actor and its critic quantized together: the actor's return lost, and the critic's
    value error on the states the float actor visits, against two bounds.

    A configuration holds the actor's layers, then the critic's (:attr:`shapes`). On a set of
    episodes (named as by :class:`LossEvaluator`, which scores the actor part):

    * ``actor_loss`` is :meth:`LossEvaluator.loss`: the return lost against the float actor;
    * ``critic_error`` is the quantized critic's relative RMS value error
      ``sqrt(mean((Q - Q_q)**2)) / mean(|Q|)`` at ``(s, actor(s))``, ``s`` every ``stride``-th
      state the float actor visits in those episodes and ``actor`` the float actor (the pairs
      whose values DDPG's actor update follows); the critic's activation ranges are calibrated
      on ``states`` with the float actor's actions, like the actor's;
    * the *loss* is ``max(actor_loss, critic_error * max_loss / max_critic_error)``, so a
      configuration meets a :class:`~sw_model.search.objective.LossBound` of ``max_loss``
      exactly when its actor loses at most ``max_loss`` of the return and its critic errs by at
      most ``max_critic_error``.

    Parameters
    ----------
    weights : mapping
        A float DDPG agent ``{"actor": {...}, "critic": {...}}``; the critic maps
        ``obs_dim + act_dim`` inputs to one value.
    states : array_like, shape (n, obs_dim)
        Calibration states.
    max_loss, max_critic_error : float
        The two bounds, each in ``(0, 1)``.
    stride : int
        Every ``stride``-th visited state enters the critic's error (at least 1).
    env, seeds, episodes, starts
        As :class:`LossEvaluator`'s.

    Attributes
    ----------
    actor : LossEvaluator
        The actor's part.
    critic : ProxyEvaluator
        The quantized critic.
    shapes : tuple of LayerShape
        The actor's layers (``l1``, ...), then the critic's (``critic.l1``, ...).
    split : int
        The actor's layer count: ``choices[:split]`` are the actor's.
    env, seeds, episodes, calls
        As :class:`LossEvaluator`'s.

    Raises
    ------
    TypeError, ValueError
        For a parameter of the wrong type or value, or a critic whose shape does not fit the
        actor and environment (the message shows both).
    """

    def __init__(self, weights: Mapping[str, Any], states: npt.ArrayLike, *,
                 max_loss: float, max_critic_error: float, stride: int = 10,
                 env: str = "pendulum", seeds: Sequence[int] | None = None, episodes: int = 5,
                 starts: npt.ArrayLike | None = None) -> None:
        if not isinstance(weights, Mapping) or "actor" not in weights or "critic" not in weights:
            raise TypeError("weights must be a DDPG weights dict with 'actor' and 'critic'")
        self.max_loss = check_real(max_loss, "max_loss", minimum=0.0, maximum=1.0,
                                   min_open=True, max_open=True)
        self.max_critic_error = check_real(max_critic_error, "max_critic_error", minimum=0.0,
                                           maximum=1.0, min_open=True, max_open=True)
        self.stride = check_int(stride, "stride", minimum=1)
        self.actor = LossEvaluator(weights["actor"], states, env=env, seeds=seeds,
                                   episodes=episodes, starts=starts)
        a_layers = self.actor.layers
        c_layers = actor_layers(weights["critic"])
        n_in = a_layers[0][0].shape[1] + a_layers[-1][0].shape[0]
        if c_layers[0][0].shape[1] != n_in or c_layers[-1][0].shape[0] != 1:
            c_shape = "-".join([*(str(w.shape[1]) for w, _ in c_layers),
                                str(c_layers[-1][0].shape[0])])
            raise ValueError(f"the critic is {c_shape}, but the actor and {env!r} need a critic "
                             f"of {n_in} inputs and 1 output")
        inputs = np.concatenate([self.actor.states,
                                 _float_net(a_layers, self.actor.states, "tanh")[-1]], axis=1)
        self.critic = ProxyEvaluator(weights["critic"], inputs, output="linear")
        self.shapes = self.actor.shapes + tuple(
            LayerShape(f"critic.{s.name}", s.fan_in, s.fan_out) for s in self.critic.shapes)
        self.split = len(a_layers)
        self.env, self.seeds, self.episodes = self.actor.env, self.actor.seeds, self.actor.episodes
        self.calls = 0
        self._visits: dict[int, np.ndarray] = {}

    @property
    def starts(self) -> np.ndarray | None:
        """The actor part's initial states (see :class:`LossEvaluator`)."""
        return self.actor.starts

    def _visited(self, seeds: Sequence[int]) -> np.ndarray:
        """Critic inputs ``[s, actor(s)]`` at every ``stride``-th state the float actor visits
        on the episodes ``seeds`` (cached per episode)."""
        todo = [s for s in dict.fromkeys(seeds) if s not in self._visits]
        if todo:
            layers = self.actor.layers
            seen: list[list[np.ndarray]] = []
            _lockstep(lambda x: _float_net(layers, x, "tanh")[-1], self.env,
                      [self.actor._start(check_int(s, "seeds entry", minimum=0)) for s in todo],
                      seen)
            for seed, states in zip(todo, seen, strict=True):
                s = np.array(states[::self.stride])
                self._visits[seed] = np.concatenate(
                    [s, _float_net(layers, s, "tanh")[-1]], axis=1)
        return np.concatenate([self._visits[s] for s in seeds])

    def critic_error(self, choices: Sequence[LayerChoice], seeds: Sequence[int]) -> float:
        """The critic part's relative RMS value error on the episodes ``seeds`` (see the class
        docs); ``choices`` are the critic's layers."""
        x = self._visited(seeds)
        q = _float_net(self.critic.layers, x, "linear")[-1][:, 0]
        q_q = self.critic.outputs(x, choices)[:, 0]
        return float(np.sqrt(np.mean((q - q_q) ** 2)) / max(float(np.abs(q).mean()), 1e-12))

    def parts(self, choices: Sequence[LayerChoice], seeds: Sequence[int]
              ) -> tuple[float, float]:
        """``(actor_loss, critic_error)`` of a whole configuration on the episodes ``seeds``."""
        choices = check_choices(choices, len(self.shapes))
        return (self.actor.loss(choices[:self.split], seeds),
                self.critic_error(choices[self.split:], seeds))

    def _combine(self, actor_loss: float, critic_error: float) -> float:
        return max(actor_loss, critic_error * self.max_loss / self.max_critic_error)

    def float_returns(self, seeds: Sequence[int]) -> np.ndarray:
        """The float actor's returns (:meth:`LossEvaluator.float_returns`)."""
        return self.actor.float_returns(seeds)

    def loss(self, choices: Sequence[LayerChoice], seeds: Sequence[int]) -> float:
        """The joint loss on the episodes ``seeds`` (see the class docs)."""
        return self._combine(*self.parts(choices, seeds))

    def loss_bound(self, choices: Sequence[LayerChoice], seeds: Sequence[int], z: float
                   ) -> float:
        """As :meth:`loss`, the actor's part an upper confidence bound
        (:meth:`LossEvaluator.loss_bound`)."""
        choices = check_choices(choices, len(self.shapes))
        return self._combine(self.actor.loss_bound(choices[:self.split], seeds, z),
                             self.critic_error(choices[self.split:], seeds))

    def turn(self, i: int) -> tuple[int, ...]:
        """The seeds of call ``i`` (:meth:`LossEvaluator.turn`)."""
        return self.actor.turn(i)

    def __call__(self, choices: Sequence[LayerChoice]) -> float:
        seeds = self.turn(self.calls)
        self.calls += 1
        return -self.loss(choices, seeds)


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
    n_configs = check_int(n_configs, "n_configs", minimum=2)
    seed = check_int(seed, "seed", minimum=0)
    grid = choice_grid(w_bits, a_bits)[0]
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
