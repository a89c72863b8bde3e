"""Gymnasium's ``MountainCarContinuous-v0`` in NumPy: drive an underpowered car up a hill.

The dynamics, reward, limits, initial-state distribution and episode length are those of
``gymnasium/envs/classic_control/continuous_mountain_car.py`` with ``MountainCarContinuous-v0``'s
``TimeLimit`` of 999 steps. The state is kept in ``float64`` throughout; Gymnasium stores it as
``float32`` after every step, so the two agree to ``float32`` precision, not bit for bit.

State ``(position, velocity)``. With ``force`` the action clipped to ``[-1, 1]``, one step is::

    velocity = clip(velocity + force * 0.0015 - 0.0025 * cos(3 * position), -0.07, 0.07)
    position = clip(position + velocity, -1.2, 0.6)
    if position == -1.2 and velocity < 0: velocity = 0        (inelastic left wall)
    terminated = position >= 0.45 and velocity >= goal_velocity
    reward = (100 if terminated else 0) - 0.1 * action**2

The reward penalises the *unclipped* action, as Gymnasium does. The observation is the state.
The initial position is uniform in ``[-0.6, -0.4]`` with velocity 0. Episodes are truncated
after 999 steps.
"""

from __future__ import annotations

import math

import numpy as np

from sw_model.checks import check_real
from sw_model.rl.envs.base import StateEnv, _frozen

__all__ = ["MountainCarContinuous"]


class MountainCarContinuous(StateEnv):
    """The continuous mountain-car task, Gymnasium's ``MountainCarContinuous-v0``.

    Observation ``[position, velocity]`` in ``[-1.2, 0.6] x [-0.07, 0.07]``; action ``[force]``
    in ``[-1, 1]`` (larger forces are clipped in the dynamics but not in the reward); reward
    ``-0.1 * force**2`` per step plus 100 on reaching the goal; terminated at the goal,
    truncated after 999 steps. See the module docstring for the equations.

    Parameters
    ----------
    seed : int or None
        Seed of the environment's ``numpy.random.default_rng`` generator.
    goal_velocity : float
        Smallest velocity that counts at the goal (Gymnasium's ``goal_velocity``), 0 by
        default.

    Raises
    ------
    TypeError
        If ``seed`` is neither ``None`` nor an integer, or ``goal_velocity`` is not a real
        number.
    ValueError
        If ``seed`` is negative or ``goal_velocity`` is not finite.
    """

    MIN_ACTION = -1.0
    MAX_ACTION = 1.0
    MIN_POSITION = -1.2
    MAX_POSITION = 0.6
    MAX_SPEED = 0.07
    GOAL_POSITION = 0.45
    POWER = 0.0015

    observation_dim = 2
    action_dim = 1
    state_dim = 2
    max_episode_steps = 999
    action_low = _frozen([MIN_ACTION])
    action_high = _frozen([MAX_ACTION])
    observation_low = _frozen([MIN_POSITION, -MAX_SPEED])
    observation_high = _frozen([MAX_POSITION, MAX_SPEED])

    def __init__(self, seed: int | None = None, *, goal_velocity: float = 0.0) -> None:
        self._goal_velocity = check_real(goal_velocity, "goal_velocity")
        super().__init__(seed)

    @property
    def goal_velocity(self) -> float:
        """Smallest velocity that counts at the goal."""
        return self._goal_velocity

    def _observe(self) -> np.ndarray:
        return self._state.copy()

    def _reset(self) -> np.ndarray:
        self._state = np.array([self._rng.uniform(low=-0.6, high=-0.4), 0.0], dtype=np.float64)
        return self._observe()

    def _step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool]:
        position = float(self._state[0])
        velocity = float(self._state[1])
        a = float(action[0])
        force = min(max(a, self.MIN_ACTION), self.MAX_ACTION)

        velocity += force * self.POWER - 0.0025 * math.cos(3 * position)
        velocity = min(max(velocity, -self.MAX_SPEED), self.MAX_SPEED)
        position += velocity
        position = min(max(position, self.MIN_POSITION), self.MAX_POSITION)
        if position == self.MIN_POSITION and velocity < 0:
            velocity = 0.0

        terminated = position >= self.GOAL_POSITION and velocity >= self._goal_velocity
        reward = 100.0 if terminated else 0.0
        reward -= math.pow(a, 2) * 0.1

        self._state = np.array([position, velocity], dtype=np.float64)
        return self._observe(), reward, terminated, False

    def __repr__(self) -> str:
        if self._goal_velocity == 0.0:
            return "MountainCarContinuous()"
        return f"MountainCarContinuous(goal_velocity={self._goal_velocity!r})"
