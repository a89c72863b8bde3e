"""The environment interface shared by the NumPy environments and the Gymnasium adapter.

An :class:`Env` is a single episodic control task with a flat continuous observation and a flat
continuous action, as a DDPG agent needs. Its interface is Gymnasium's without the ``info``
dictionaries and spaces:

>>> from sw_model.rl.envs import Pendulum
>>> env = Pendulum(seed=0)
>>> obs = env.reset()
>>> obs.shape, env.action_low, env.action_high
((3,), array([-2.]), array([2.]))
>>> obs, reward, terminated, truncated = env.step([0.5])

Observations are fresh ``float64`` arrays, rewards Python floats and the two flags Python bools.
An episode ends when ``terminated`` (the task reached a terminal state) or ``truncated`` (the
step limit :attr:`Env.max_episode_steps` was reached; both can be true at once, as with
Gymnasium's ``TimeLimit``); :meth:`Env.step` then refuses to go on until :meth:`Env.reset`.

Seeding
-------
Randomness comes from one ``numpy.random.default_rng(seed)`` generator per environment, created
by the constructor and replaced by ``reset(seed=...)``; ``reset()`` without a seed goes on with
the current generator. The same seed and the same actions therefore give the same trajectory.
``default_rng(seed)`` is the generator Gymnasium builds for ``reset(seed=seed)``
(``PCG64(SeedSequence(seed))``), and the environments draw their initial states with the same
calls, so a seed gives the same initial state here and in Gymnasium.
"""

from __future__ import annotations

import abc

import numpy as np
import numpy.typing as npt

__all__ = ["Env", "StateEnv", "check_seed"]


def check_seed(seed: object, name: str = "seed") -> int | None:
    """Validate a seed for ``numpy.random.default_rng`` and return it.

    Raises
    ------
    TypeError
        If ``seed`` is neither ``None`` nor an integer.
    ValueError
        If it is negative.
    """
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"{name} must be an integer or None, not {seed!r}")
    if seed < 0:
        raise ValueError(f"{name} must be non-negative, not {seed!r}")
    return int(seed)


def _frozen(values: npt.ArrayLike) -> np.ndarray:
    arr = np.array(values, dtype=np.float64)
    arr.flags.writeable = False
    return arr


def _as_vector(value: object, dim: int, name: str) -> np.ndarray:
    """``value`` as a finite ``float64`` vector of shape ``(dim,)``, or a TypeError/ValueError."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):  # ragged sequences
        raise TypeError(f"{name} must be an array of real numbers, not {value!r}") from None
    real = arr.dtype.kind in "iuf" or (
        arr.dtype.kind == "O"
        and all(
            isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
            for v in arr.flat
        )
    )
    if not real:
        raise TypeError(f"{name} must be an array of real numbers, not {value!r}")
    if arr.shape != (dim,):
        raise ValueError(f"{name} must have shape ({dim},), not {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, not {value!r}")
    return arr


class Env(abc.ABC):
    """Base class of the environments: seeding, action checks and episode bookkeeping.

    A subclass sets the class attributes below and implements :meth:`_reset` and :meth:`_step`;
    :meth:`reset` and :meth:`step` validate their arguments, count steps and apply the step
    limit.

    Parameters
    ----------
    seed : int or None
        Seed of the environment's ``numpy.random.default_rng`` generator; ``None`` draws fresh
        entropy from the operating system.

    Attributes
    ----------
    observation_dim : int
        Length of an observation.
    action_dim : int
        Length of an action.
    action_low, action_high : numpy.ndarray
        Bounds of the action space (read-only ``float64`` arrays of length ``action_dim``).
        Environments clip actions themselves as their definition says; the bounds tell an
        agent which range to produce.
    observation_low, observation_high : numpy.ndarray
        Bounds of the observations (read-only ``float64`` arrays, possibly infinite).
    max_episode_steps : int or None
        Number of steps after which an episode is truncated; ``None`` for no limit.

    Raises
    ------
    TypeError
        If ``seed`` is neither ``None`` nor an integer.
    ValueError
        If ``seed`` is negative.
    """

    observation_dim: int
    action_dim: int
    action_low: np.ndarray
    action_high: np.ndarray
    observation_low: np.ndarray
    observation_high: np.ndarray
    max_episode_steps: int | None

    def __init__(self, seed: int | None = None) -> None:
        self._rng = np.random.default_rng(check_seed(seed))
        self._elapsed_steps = 0
        self._started = False
        self._ended: str | None = None

    @property
    def elapsed_steps(self) -> int:
        """Steps taken in the current (or last) episode."""
        return self._elapsed_steps

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start a new episode and return its first observation.

        Parameters
        ----------
        seed : int or None
            If given, the random generator is replaced by ``numpy.random.default_rng(seed)``
            first; otherwise the current generator goes on.

        Raises
        ------
        TypeError
            If ``seed`` is neither ``None`` nor an integer.
        ValueError
            If ``seed`` is negative.
        """
        seed = check_seed(seed)
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        obs = self._reset()
        self._begin()
        return obs

    def step(self, action: npt.ArrayLike) -> tuple[np.ndarray, float, bool, bool]:
        """Apply ``action`` for one time step.

        Parameters
        ----------
        action : array_like
            Real numbers, shape ``(action_dim,)``.

        Returns
        -------
        obs : numpy.ndarray
            The next observation (``float64``).
        reward : float
            The reward of this transition.
        terminated : bool
            Whether the task reached a terminal state.
        truncated : bool
            Whether the episode reached :attr:`max_episode_steps`.

        Raises
        ------
        TypeError
            If ``action`` does not hold real numbers.
        ValueError
            If ``action`` has the wrong shape or holds NaN or an infinity.
        RuntimeError
            If no episode has been started with :meth:`reset`, or the current one has ended.
        """
        if not self._started:
            raise RuntimeError("reset() must be called before step()")
        if self._ended is not None:
            n = self._elapsed_steps
            raise RuntimeError(
                f"the episode has ended ({self._ended} after {n} step{'' if n == 1 else 's'}); "
                "call reset() before step()"
            )
        a = _as_vector(action, self.action_dim, "action")
        obs, reward, terminated, truncated = self._step(a)
        self._elapsed_steps += 1
        limit = self.max_episode_steps
        truncated = bool(truncated) or (limit is not None and self._elapsed_steps >= limit)
        terminated = bool(terminated)
        if terminated or truncated:
            self._ended = "terminated" if terminated else "truncated"
        return obs, float(reward), terminated, truncated

    def close(self) -> None:
        """Release resources (nothing for the NumPy environments)."""
        return None

    def _begin(self) -> None:
        self._elapsed_steps = 0
        self._started = True
        self._ended = None

    @abc.abstractmethod
    def _reset(self) -> np.ndarray:
        """Draw an initial state from ``self._rng`` and return the observation."""

    @abc.abstractmethod
    def _step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool]:
        """Advance one step with a checked finite ``float64`` action."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class StateEnv(Env):
    """An :class:`Env` whose whole state is a ``float64`` vector that can be read and set.

    :attr:`state` returns a copy of it, and ``reset(state=...)`` starts an episode from a
    chosen state instead of a random one (for tests, and to start training from hard states).
    """

    state_dim: int

    _state: np.ndarray

    @property
    def state(self) -> np.ndarray:
        """A copy of the physical state (``float64``, shape ``(state_dim,)``)."""
        return self._state.copy()

    def reset(self, seed: int | None = None, *, state: npt.ArrayLike | None = None) -> np.ndarray:
        """Start a new episode and return its first observation.

        Parameters
        ----------
        seed : int or None
            If given, the random generator is replaced by ``numpy.random.default_rng(seed)``
            first; otherwise the current generator goes on.
        state : array_like or None
            If given, the episode starts from this state (shape ``(state_dim,)``) and the
            generator is not drawn from; otherwise the initial state is drawn at random.

        Raises
        ------
        TypeError
            If ``seed`` is neither ``None`` nor an integer, or ``state`` does not hold real
            numbers.
        ValueError
            If ``seed`` is negative, or ``state`` has the wrong shape or is not finite.
        """
        if state is None:
            return super().reset(seed)
        seed = check_seed(seed)
        start = _as_vector(state, self.state_dim, "state")
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._state = start
        self._begin()
        return self._observe()

    @abc.abstractmethod
    def _observe(self) -> np.ndarray:
        """The observation of the current state (a fresh array)."""
