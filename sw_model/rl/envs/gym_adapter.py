"""Any Gymnasium environment with flat ``Box`` spaces behind the :class:`~.base.Env` interface.

Gymnasium is an optional dependency: it is imported when a :class:`GymnasiumEnv` is created,
never when this module is imported.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sw_model.rl.envs.base import Env, _frozen, check_seed

__all__ = ["GYMNASIUM_MISSING", "GymnasiumEnv", "import_gymnasium"]

#: Message of the ImportError raised when Gymnasium is not installed.
GYMNASIUM_MISSING = (
    "GymnasiumEnv needs Gymnasium, which is not installed; "
    'install it with pip install "fixar-hw[gym]" (or pip install gymnasium)'
)


def import_gymnasium() -> Any:
    """Import and return the ``gymnasium`` module.

    Raises
    ------
    ImportError
        If Gymnasium is not installed, with a message saying how to install it.
    """
    try:
        import gymnasium
    except ImportError as exc:  # optional: the 'gym' extra
        raise ImportError(GYMNASIUM_MISSING) from exc
    return gymnasium


def _check_box(gymnasium: Any, space: Any, env_id: str, which: str) -> None:
    if not isinstance(space, gymnasium.spaces.Box) or len(space.shape) != 1:
        raise ValueError(
            f"GymnasiumEnv needs a one-dimensional Box {which} space, but {env_id!r} has "
            f"{space!r}"
        )


class GymnasiumEnv(Env):
    """A Gymnasium environment behind the :class:`~.base.Env` interface.

    ``gymnasium.make(env_id, **kwargs)`` builds the environment, so its registered
    ``TimeLimit`` applies and :attr:`max_episode_steps` is the registered limit (``None`` when
    there is none). Both spaces must be one-dimensional ``Box`` spaces. Observations are
    returned as ``float64`` arrays, rewards as floats and the ``info`` dictionaries are
    dropped (the last ones are kept in :attr:`last_info`). Actions are checked like those of
    the NumPy environments, then cast to the action space's dtype (usually ``float32``).

    Seeding follows Gymnasium: ``seed`` is passed to the first :meth:`reset`, later resets
    without a seed go on with the environment's own generator, and ``reset(seed=...)``
    reseeds it.

    Parameters
    ----------
    env_id : str
        A Gymnasium environment id such as ``"Pendulum-v1"``.
    seed : int or None
        Seed for the first reset.
    **kwargs
        Passed to ``gymnasium.make``.

    Raises
    ------
    ImportError
        If Gymnasium is not installed.
    TypeError
        If ``env_id`` is not a string or ``seed`` is neither ``None`` nor an integer.
    ValueError
        If ``seed`` is negative, or a space is not a one-dimensional ``Box``.
    """

    def __init__(self, env_id: str, seed: int | None = None, **kwargs: Any) -> None:
        if not isinstance(env_id, str):
            raise TypeError(f"env_id must be a string, not {env_id!r}")
        super().__init__(seed)
        self._pending_seed = check_seed(seed)
        gymnasium = import_gymnasium()
        env = gymnasium.make(env_id, **kwargs)
        try:
            _check_box(gymnasium, env.action_space, env_id, "action")
            _check_box(gymnasium, env.observation_space, env_id, "observation")
        except ValueError:
            env.close()
            raise
        self.env_id = env_id
        self.env = env
        self.last_info: dict[str, Any] = {}
        act, obs = env.action_space, env.observation_space
        self._action_dtype = np.dtype(act.dtype)
        self.action_dim = int(act.shape[0])
        self.observation_dim = int(obs.shape[0])
        self.action_low = _frozen(act.low)
        self.action_high = _frozen(act.high)
        self.observation_low = _frozen(obs.low)
        self.observation_high = _frozen(obs.high)
        spec = getattr(env, "spec", None)
        limit = getattr(spec, "max_episode_steps", None)
        self.max_episode_steps = None if limit is None else int(limit)

    def reset(
        self, seed: int | None = None, *, options: dict[str, Any] | None = None
    ) -> np.ndarray:
        """Start a new episode and return its first observation.

        Parameters
        ----------
        seed : int or None
            Passed to the Gymnasium environment's ``reset`` (on the first reset, the
            constructor's seed is used when this is ``None``).
        options : dict or None
            Passed to the Gymnasium environment's ``reset``.

        Raises
        ------
        TypeError
            If ``seed`` is neither ``None`` nor an integer.
        ValueError
            If ``seed`` is negative.
        """
        seed = check_seed(seed)
        self._reset_args = (self._pending_seed if seed is None else seed, options)
        return super().reset()  # calls _reset, then starts the episode's bookkeeping

    def _reset(self) -> np.ndarray:
        seed, options = self._reset_args
        obs, info = self.env.reset(seed=seed, options=options)
        self._pending_seed = None
        self.last_info = dict(info)
        return np.array(obs, dtype=np.float64)

    def _step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool]:
        obs, reward, terminated, truncated, info = self.env.step(
            action.astype(self._action_dtype)
        )
        self.last_info = dict(info)
        return np.array(obs, dtype=np.float64), float(reward), bool(terminated), bool(truncated)

    def close(self) -> None:
        """Close the Gymnasium environment."""
        self.env.close()

    def __repr__(self) -> str:
        return f"GymnasiumEnv({self.env_id!r})"
