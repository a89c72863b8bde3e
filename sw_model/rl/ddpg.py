"""DDPG (Lillicrap et al., 2016) in NumPy, in floating point or bit-exact fixed point (FIXAR).

>>> from sw_model.rl.ddpg import DDPGConfig, train
>>> result = train(DDPGConfig(hidden=(32, 32), precision="qat", qat_delay=200), "pendulum",
...                steps=600)                                          # doctest: +SKIP
>>> result.episode_returns                                             # doctest: +SKIP

The pieces:

- :class:`~sw_model.arch.ddpg_config.DDPGConfig`: the frozen configuration (JSON round trip);
- :mod:`sw_model.arch.ddpg_step`: the networks and the pure training steps
  (:func:`~sw_model.arch.ddpg_step.fixed_train_step` is the one the hardware reproduces bit for
  bit);
- :class:`ReplayBuffer`, :class:`DDPGAgent` (acting with exploration noise, warm-up, replay
  sampling) and :func:`train` / :func:`evaluate`;
- :func:`weights_to_image` / :func:`weights_from_image`: the trained networks as a
  :class:`sw_model.rl.image.WeightImage`.

Reproducibility: everything random derives from ``config.seed``: the network initialisation
(``default_rng(seed)``), the environment (``make(env, seed=seed)``), warm-up actions, replay
sampling and float exploration noise (``default_rng([seed, 1])``), and fixed-point exploration
noise (xorshift32 from :func:`sw_model.numerics.prng.seed_state`), so one seed gives identical
returns.

Acting in fixed-point modes: the observation becomes ``act_fmt`` codes (half-even, saturating),
the actor runs with :func:`~sw_model.arch.ddpg_step.fixed_actor_forward`, noise codes from
:func:`sw_model.numerics.prng.gaussian_codes` in the actor's output format are added, the sum is
clipped to ``[-1, 1]`` and kept as ``act_fmt`` codes (exact). The replay buffer holds the float
values; a sampled batch is converted to ``act_fmt`` codes (half-even, saturating), which for
actions gives back the exact codes that were applied.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from sw_model.arch.ddpg_config import PRECISIONS, DDPGConfig
from sw_model.arch.ddpg_step import (
    NETS,
    Batch,
    OptState,
    Weights,
    activation_formats,
    fixed_actor_forward,
    fixed_train_step,
    float_actor_forward,
    float_train_step,
    init_opt_state,
    init_weights,
    quantize_weights,
)
from sw_model.checks import check_int
from sw_model.numerics.fixed import FixedFormat, requantize
from sw_model.numerics.prng import gaussian_codes, seed_state
from sw_model.rl.envs import Env, make
from sw_model.rl.image import Tensor, WeightImage, config_hash_of

__all__ = [
    "PRECISIONS",
    "DDPGAgent",
    "DDPGConfig",
    "ImageContents",
    "ReplayBuffer",
    "TrainResult",
    "evaluate",
    "fixed_train_step",
    "float_train_step",
    "train",
    "weights_from_image",
    "weights_to_image",
]


class ReplayBuffer:
    """A ring buffer of transitions (float64), sampled uniformly with replacement.

    Parameters
    ----------
    capacity : int
        Most transitions kept; the oldest are overwritten.
    obs_dim, act_dim : int
    """

    def __init__(self, capacity: int, obs_dim: int, act_dim: int) -> None:
        for name, value in (("capacity", capacity), ("obs_dim", obs_dim), ("act_dim", act_dim)):
            check_int(value, name, minimum=1)
        self.capacity = capacity
        self._obs = np.zeros((capacity, obs_dim))
        self._act = np.zeros((capacity, act_dim))
        self._rew = np.zeros(capacity)
        self._next = np.zeros((capacity, obs_dim))
        self._done = np.zeros(capacity, dtype=np.int64)
        self._size = 0
        self._pos = 0

    def __len__(self) -> int:
        return self._size

    def add(self, obs: npt.ArrayLike, action: npt.ArrayLike, reward: float,
            next_obs: npt.ArrayLike, done: bool) -> None:
        """Store one transition (``done``: terminal, not truncated)."""
        i = self._pos
        self._obs[i], self._act[i], self._rew[i] = obs, action, reward
        self._next[i], self._done[i] = next_obs, int(bool(done))
        self._pos = (i + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)

    def sample(self, rng: np.random.Generator, batch_size: int) -> Batch:
        """``batch_size`` transitions at ``rng.integers(0, len(self), batch_size)``."""
        if self._size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, self._size, batch_size)
        return Batch(self._obs[idx], self._act[idx], self._rew[idx], self._next[idx],
                     self._done[idx])


def _as_bounds(low: npt.ArrayLike, high: npt.ArrayLike, act_dim: int) -> tuple[np.ndarray, ...]:
    lo = np.asarray(low, dtype=np.float64).reshape(-1)
    hi = np.asarray(high, dtype=np.float64).reshape(-1)
    if lo.shape != (act_dim,) or hi.shape != (act_dim,):
        raise ValueError(f"action bounds must have shape ({act_dim},), not {lo.shape} and "
                         f"{hi.shape}")
    if not (np.isfinite(lo).all() and np.isfinite(hi).all() and (lo < hi).all()):
        raise ValueError(f"action bounds must be finite with low < high, not {lo!r}, {hi!r}")
    return lo, hi


class DDPGAgent:
    """A DDPG agent: networks, target networks, optimizer state, replay buffer and noise.

    Parameters
    ----------
    config : DDPGConfig
    obs_dim, act_dim : int
        Observation and action lengths.
    action_low, action_high : array_like
        Bounds of the environment's action space; the actor's ``[-1, 1]`` output is mapped
        to them linearly.

    Attributes
    ----------
    weights, targets : Weights
        Online and target networks (float arrays or ``weight_fmt`` codes).
    opt : OptState
        Optimizer and QAT state.
    buffer : ReplayBuffer
    noise_state : int
        xorshift32 state of the fixed-point exploration noise.
    noise : numpy.ndarray
        The float exploration noise last added (the Ornstein-Uhlenbeck state when
        ``config.noise_theta < 1``; it runs on across episodes).
    """

    def __init__(self, config: DDPGConfig, obs_dim: int, act_dim: int,
                 action_low: npt.ArrayLike, action_high: npt.ArrayLike) -> None:
        if not isinstance(config, DDPGConfig):
            raise TypeError(f"config must be a DDPGConfig, not {config!r}")
        self.config = config
        self.obs_dim = check_int(obs_dim, "obs_dim", minimum=1)
        self.act_dim = check_int(act_dim, "act_dim", minimum=1)
        self.action_low, self.action_high = _as_bounds(action_low, action_high, self.act_dim)
        w = init_weights(config, self.obs_dim, self.act_dim)
        if config.is_fixed:
            w = quantize_weights(w, config.weight_fmt)
        elif config.precision == "float32":
            w = {net: {k: v.astype(np.float32) for k, v in p.items()} for net, p in w.items()}
        self.weights: Weights = w
        self.targets: Weights = {net: {k: v.copy() for k, v in p.items()} for net, p in w.items()}
        self.opt: OptState = init_opt_state(w, config)
        self.buffer = ReplayBuffer(config.buffer_size, self.obs_dim, self.act_dim)
        self.rng = np.random.default_rng([config.seed, 1])
        self.noise_state = seed_state(config.seed)
        self.noise = np.zeros(self.act_dim)
        self.last_info: dict[str, Any] = {}

    @property
    def formats(self) -> dict[str, FixedFormat]:
        """Activation formats the next step and the policy use (fixed-point modes)."""
        return activation_formats(self.config, self.opt)

    def scale_action(self, a: npt.ArrayLike) -> np.ndarray:
        """Environment action ``low + (a + 1) * (high - low) / 2`` of normalized ``a``."""
        a = np.asarray(a, dtype=np.float64)
        return self.action_low + (a + 1.0) * 0.5 * (self.action_high - self.action_low)

    def policy(self, obs: npt.ArrayLike) -> np.ndarray:
        """Deterministic normalized actions ``(B, act_dim)`` for observations ``(B, obs_dim)``."""
        x = np.atleast_2d(np.asarray(obs, dtype=np.float64))
        c = self.config
        if c.is_fixed:
            fmts = self.formats
            y = fixed_actor_forward(self.weights["actor"], c.act_fmt.from_float(x), c, fmts)
            return fmts[f"actor.x{len(c.hidden) + 1}"].to_float(y)
        dt = np.float32 if c.precision == "float32" else np.float64
        return float_actor_forward(self.weights["actor"], x.astype(dt), c).astype(np.float64)

    def random_action(self) -> np.ndarray:
        """A uniform normalized action (warm-up); ``act_fmt`` values in fixed-point modes."""
        a = self.rng.uniform(-1.0, 1.0, self.act_dim)
        if self.config.is_fixed:
            a = self.config.act_fmt.to_float(self.config.act_fmt.from_float(a))
        return a

    def explore(self, obs: npt.ArrayLike) -> np.ndarray:
        """The policy's normalized action for ``obs`` plus exploration noise, clipped to +-1."""
        c = self.config
        if not c.is_fixed:
            # theta 1 leaves exactly the independent draw: 0 * n + e == e
            e = self.rng.normal(0.0, c.noise_sigma, self.act_dim)
            self.noise = (1.0 - c.noise_theta) * self.noise + e
            return np.clip(self.policy(obs)[0] + self.noise, -1.0, 1.0)
        fmts = self.formats
        out_fmt = fmts[f"actor.x{len(c.hidden) + 1}"]
        x = c.act_fmt.from_float(np.atleast_2d(np.asarray(obs, dtype=np.float64)))
        y = fixed_actor_forward(self.weights["actor"], x, c, fmts)[0]
        noise, self.noise_state = gaussian_codes(self.noise_state, self.act_dim,
                                                 c.noise_sigma, out_fmt)
        one = min(1 << out_fmt.frac, out_fmt.max_int)
        a = np.clip(y + noise, -one, one)
        return c.act_fmt.to_float(requantize(a, out_fmt.frac, c.act_fmt, "floor", "saturate"))

    def remember(self, obs: npt.ArrayLike, action: npt.ArrayLike, reward: float,
                 next_obs: npt.ArrayLike, terminated: bool) -> None:
        """Store a transition (``action`` normalized)."""
        self.buffer.add(obs, action, reward, next_obs, terminated)

    def sample(self) -> Batch:
        """A training batch from the buffer, as ``act_fmt`` codes in fixed-point modes."""
        b = self.buffer.sample(self.rng, self.config.batch_size)
        if not self.config.is_fixed:
            return b
        f = self.config.act_fmt
        return Batch(f.from_float(b.obs), f.from_float(b.action), f.from_float(b.reward),
                     f.from_float(b.next_obs), b.done)

    def train_step(self, batch: Batch | None = None) -> dict[str, Any]:
        """One training step on ``batch`` (sampled if None); returns the step's info."""
        if batch is None:
            batch = self.sample()
        step = fixed_train_step if self.config.is_fixed else float_train_step
        self.weights, self.opt, self.targets, info = step(self.weights, self.targets, self.opt,
                                                          batch, self.config)
        self.last_info = info
        return info

    def to_image(self, metadata: Mapping[str, str] | None = None) -> WeightImage:
        """The actor and critic as a weight image (:func:`weights_to_image`)."""
        fmts = self.formats if self.config.is_fixed else None
        return weights_to_image(self.config, self.weights, self.action_low, self.action_high,
                                formats=fmts, metadata=metadata)

    @classmethod
    def from_image(cls, image: WeightImage) -> DDPGAgent:
        """An agent whose online and target networks are those of ``image``.

        Fixed-point agents get the codes (and QAT formats) exactly; float agents get the
        code values. The optimizer state starts afresh.
        """
        contents = weights_from_image(image)
        c = contents.config
        obs_dim = contents.weights["actor"]["l1.w"].shape[1]
        act_dim = contents.weights["actor"][f"l{len(c.hidden) + 1}.w"].shape[0]
        agent = cls(c, obs_dim, act_dim, contents.action_low, contents.action_high)
        w = contents.weights
        if not c.is_fixed:
            dt = np.float32 if c.precision == "float32" else np.float64
            w = {net: {k: c.weight_fmt.to_float(v).astype(dt) for k, v in p.items()}
                 for net, p in w.items()}
        agent.weights = w
        agent.targets = {net: {k: v.copy() for k, v in p.items()} for net, p in w.items()}
        if c.precision == "qat" and contents.formats is not None \
                and contents.formats != activation_formats(c):
            agent.opt = OptState(agent.opt.m, agent.opt.v, c.qat_delay, {},
                                 MappingProxyType(dict(contents.formats)))
        return agent


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train`.

    Attributes
    ----------
    agent : DDPGAgent
        The trained agent.
    episode_returns : list of float
        Undiscounted return of every finished training episode.
    episode_ends : list of int
        Environment steps done when each episode ended.
    train_steps : int
        Training (gradient) steps done.
    seconds : float
        Wall-clock time of the run.
    """

    agent: DDPGAgent
    episode_returns: list[float]
    episode_ends: list[int]
    train_steps: int
    seconds: float


def _make_env(env: str | Env, seed: int) -> Env:
    if isinstance(env, Env):
        return env
    return make(env, seed=seed)


def train(config: DDPGConfig, env: str | Env = "pendulum", steps: int = 20_000, *,
          callback: Callable[[int, DDPGAgent, float | None], None] | None = None,
          make_agent: Callable[..., DDPGAgent] | None = None) -> TrainResult:
    """Train a DDPG agent for ``steps`` environment steps.

    Each environment step: a warm-up action (the first ``warmup_steps`` steps) or the
    policy's action with noise; the transition is stored; then, once the warm-up is over and
    the buffer holds a batch, one training step. Episodes that end (terminated or truncated)
    restart with ``env.reset()``; truncation is not terminal for the target.

    Parameters
    ----------
    config : DDPGConfig
    env : str or Env
        An environment or a name for :func:`sw_model.rl.envs.make` (seeded with ``config.seed``).
    steps : int
        Environment steps.
    callback : callable, optional
        Called after every environment step as ``callback(step, agent, episode_return)``
        (``episode_return`` is the return of an episode that just ended, else None).
    make_agent : callable, optional
        ``make_agent(config, obs_dim, act_dim, action_low, action_high)`` builds the agent
        (default :class:`DDPGAgent`); e.g. an agent whose steps run on an accelerator.

    Returns
    -------
    TrainResult
    """
    if not isinstance(config, DDPGConfig):
        raise TypeError(f"config must be a DDPGConfig, not {config!r}")
    steps = check_int(steps, "steps", minimum=1)
    start = time.perf_counter()
    environment = _make_env(env, config.seed)
    agent = (make_agent or DDPGAgent)(config, environment.observation_dim,
                                      environment.action_dim, environment.action_low,
                                      environment.action_high)
    obs = environment.reset()
    returns: list[float] = []
    ends: list[int] = []
    ep_return = 0.0
    train_steps = 0
    for step in range(steps):
        a = agent.random_action() if step < config.warmup_steps else agent.explore(obs)
        next_obs, reward, terminated, truncated = environment.step(agent.scale_action(a))
        agent.remember(obs, a, reward, next_obs, terminated)
        ep_return += reward
        obs = next_obs
        if step + 1 >= config.warmup_steps and len(agent.buffer) >= config.batch_size:
            agent.train_step()
            train_steps += 1
        finished = None
        if terminated or truncated:
            returns.append(ep_return)
            ends.append(step + 1)
            finished = ep_return
            ep_return = 0.0
            obs = environment.reset()
        if callback is not None:
            callback(step, agent, finished)
    return TrainResult(agent, returns, ends, train_steps, time.perf_counter() - start)


def evaluate(agent: DDPGAgent, env: str | Env = "pendulum", episodes: int = 10,
             seed: int = 12345) -> list[float]:
    """Returns of ``episodes`` episodes of the deterministic policy (no noise).

    A named environment is created with ``seed``, so evaluations are reproducible and every
    agent meets the same initial states.
    """
    episodes = check_int(episodes, "episodes", minimum=1)
    environment = _make_env(env, seed)
    out = []
    for _ in range(episodes):
        obs = environment.reset()
        total, done = 0.0, False
        while not done:
            a = agent.policy(obs)[0]
            obs, reward, terminated, truncated = environment.step(agent.scale_action(a))
            total += reward
            done = terminated or truncated
        out.append(total)
    return out


# --- weight images --------------------------------------------------------------------------

@dataclass(frozen=True)
class ImageContents:
    """What :func:`weights_from_image` reads back.

    Attributes
    ----------
    config : DDPGConfig
    weights : Weights
        ``weight_fmt`` codes of the actor and critic.
    formats : dict of str to FixedFormat, or None
        Activation formats the networks were trained with (fixed-point modes).
    action_low, action_high : numpy.ndarray
        The environment's action bounds.
    """

    config: DDPGConfig
    weights: Weights
    formats: dict[str, FixedFormat] | None
    action_low: np.ndarray
    action_high: np.ndarray


IMAGE_KIND = "fixar-ddpg"


def weights_to_image(config: DDPGConfig, weights: Weights, action_low: npt.ArrayLike,
                     action_high: npt.ArrayLike, *,
                     formats: Mapping[str, FixedFormat] | None = None,
                     metadata: Mapping[str, str] | None = None) -> WeightImage:
    """The actor and critic as a :class:`~sw_model.rl.image.WeightImage`.

    Tensors ``actor.l1.w``, ``actor.l1.b``, ..., ``critic.lL.b`` in ``config.weight_fmt``
    (float weights are quantized half-even, saturating). The configuration hash is
    ``config_hash_of(config.to_dict())``; metadata holds ``kind`` (``"fixar-ddpg"``),
    ``ddpg_config`` (its JSON), ``action_low``/``action_high`` (JSON lists) and, when given,
    ``activation_formats`` (JSON ``{point: [width, frac]}``), plus ``metadata``.
    """
    if not isinstance(config, DDPGConfig):
        raise TypeError(f"config must be a DDPGConfig, not {config!r}")
    fmt = config.weight_fmt
    tensors = []
    for net in NETS:
        for k, v in weights[net].items():
            arr = np.asarray(v)
            codes = arr if np.issubdtype(arr.dtype, np.integer) else fmt.from_float(arr)
            tensors.append(Tensor(f"{net}.{k}", fmt, codes))
    lo = np.asarray(action_low, dtype=np.float64).reshape(-1)
    hi = np.asarray(action_high, dtype=np.float64).reshape(-1)
    meta = {"kind": IMAGE_KIND, "ddpg_config": config.to_json(),
            "action_low": json.dumps(lo.tolist()), "action_high": json.dumps(hi.tolist())}
    if formats is not None:
        meta["activation_formats"] = json.dumps(
            {k: [f.width, f.frac] for k, f in sorted(formats.items())})
    meta.update(metadata or {})
    return WeightImage(tuple(tensors), config_hash_of(config.to_dict()), meta)


def weights_from_image(image: WeightImage) -> ImageContents:
    """Read back what :func:`weights_to_image` wrote.

    Raises
    ------
    TypeError
        If ``image`` is not a WeightImage.
    ValueError
        If it is not a DDPG image, or its tensors or hash do not match its configuration.
    """
    if not isinstance(image, WeightImage):
        raise TypeError(f"image must be a WeightImage, not {image!r}")
    meta = image.metadata
    if meta.get("kind") != IMAGE_KIND:
        raise ValueError(f"image is not a DDPG weight image (kind {meta.get('kind')!r})")
    config = DDPGConfig.from_json(meta["ddpg_config"])
    if image.config_hash != config_hash_of(config.to_dict()):
        raise ValueError("image configuration hash does not match its ddpg_config")
    weights: Weights = {net: {} for net in NETS}
    for t in image.tensors:
        net, _, key = t.name.partition(".")
        if net not in weights or t.fmt != config.weight_fmt:
            raise ValueError(f"image tensor {t.name!r} ({t.fmt!r}) does not belong to a "
                             f"DDPG network in {config.weight_fmt!r}")
        weights[net][key] = np.array(t.codes)
    n = len(config.hidden) + 1
    for net in NETS:
        expected = {f"l{k}.{p}" for k in range(1, n + 1) for p in "wb"}
        if set(weights[net]) != expected:
            raise ValueError(f"image {net} tensors {sorted(weights[net])} differ from "
                             f"{sorted(expected)}")
    formats = None
    if "activation_formats" in meta:
        formats = {k: FixedFormat(w, f)
                   for k, (w, f) in json.loads(meta["activation_formats"]).items()}
    lo = np.asarray(json.loads(meta["action_low"]), dtype=np.float64)
    hi = np.asarray(json.loads(meta["action_high"]), dtype=np.float64)
    return ImageContents(config, weights, formats, lo, hi)
