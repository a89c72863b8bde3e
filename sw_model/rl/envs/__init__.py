"""NumPy environments for training DDPG agents, and an adapter for Gymnasium ones.

>>> from sw_model.rl.envs import make
>>> env = make("pendulum", seed=0)
>>> obs = env.reset()
>>> obs, reward, terminated, truncated = env.step([0.0])

:class:`Pendulum` and :class:`MountainCarContinuous` reproduce Gymnasium's ``Pendulum-v1`` and
``MountainCarContinuous-v0`` with NumPy alone; :class:`GymnasiumEnv` wraps any Gymnasium
environment with flat ``Box`` spaces (Gymnasium is an optional dependency, imported only then).
See :mod:`sw_model.rl.envs.base` for the interface and the seeding rules.
"""

from __future__ import annotations

import re
from typing import Any

from sw_model.rl.envs.base import Env, StateEnv, check_seed
from sw_model.rl.envs.gym_adapter import GymnasiumEnv
from sw_model.rl.envs.mountain_car import MountainCarContinuous
from sw_model.rl.envs.pendulum import Pendulum, angle_normalize

__all__ = [
    "ENVS",
    "Env",
    "GymnasiumEnv",
    "MountainCarContinuous",
    "Pendulum",
    "StateEnv",
    "angle_normalize",
    "check_seed",
    "make",
]

#: The NumPy environments by name.
ENVS: dict[str, type[StateEnv]] = {
    "pendulum": Pendulum,
    "mountain_car_continuous": MountainCarContinuous,
}

# Gymnasium ids: "[module:][namespace/]Name-vN", e.g. "Pendulum-v1" or "ALE/Pong-v5".
_GYM_ID = re.compile(r"^(?:[\w.]+:)?(?:[\w.-]+/)?[\w.-]+-v\d+$")


def make(name: str, *, seed: int | None = None, **kwargs: Any) -> Env:
    """Create an environment by name.

    Parameters
    ----------
    name : str
        ``"pendulum"`` or ``"mountain_car_continuous"`` for the NumPy environments, or a
        Gymnasium id such as ``"Pendulum-v1"`` (``[module:][namespace/]Name-vN``) for a
        :class:`GymnasiumEnv`, which needs Gymnasium installed.
    seed : int or None
        Seed of the environment's random generator.
    **kwargs
        Passed to the environment's constructor (e.g. ``g`` for ``"pendulum"``), or to
        ``gymnasium.make`` for a Gymnasium id.

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    ValueError
        If ``name`` is neither a known name nor a Gymnasium id.
    ImportError
        If ``name`` is a Gymnasium id and Gymnasium is not installed.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, not {name!r}")
    if name in ENVS:
        return ENVS[name](seed, **kwargs)
    if _GYM_ID.match(name):
        return GymnasiumEnv(name, seed, **kwargs)
    raise ValueError(
        "name must be 'pendulum', 'mountain_car_continuous' or a Gymnasium id such as "
        f"'Pendulum-v1', not {name!r}"
    )
