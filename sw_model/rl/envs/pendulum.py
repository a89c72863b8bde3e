"""Gymnasium's ``Pendulum-v1`` in NumPy: swing a pendulum up and hold it upright.

The dynamics, reward, limits, initial-state distribution and episode length are those of
``gymnasium/envs/classic_control/pendulum.py`` with ``Pendulum-v1``'s ``TimeLimit`` of 200 steps,
computed with the same ``float64`` expressions, so the state follows Gymnasium's bit for bit
(for ``float64`` actions). Observations are ``float64`` here; Gymnasium rounds them to
``float32``.

State ``(theta, thetadot)``: the angle from upright (counter-clockwise positive, not wrapped)
and the angular velocity. With ``u`` the torque clipped to ``[-2, 2]``, ``dt = 0.05``,
``g = 10``, ``m = l = 1``, one step is::

    cost     = angle_normalize(theta)**2 + 0.1 * thetadot**2 + 0.001 * u**2
    thetadot = clip(thetadot + (3*g/(2*l) * sin(theta) + 3/(m*l**2) * u) * dt, -8, 8)
    theta    = theta + thetadot * dt
    reward   = -cost            (of the state before the step)

and the observation is ``[cos(theta), sin(theta), thetadot]``. The initial state is uniform in
``[-pi, pi] x [-1, 1]``. Episodes never terminate; they are truncated after 200 steps.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sw_model.checks import check_real
from sw_model.rl.envs.base import StateEnv, _frozen

__all__ = ["Pendulum", "angle_normalize"]


def angle_normalize(x: npt.ArrayLike) -> np.ndarray:
    """Angle ``x`` wrapped into ``[-pi, pi)``: ``((x + pi) mod 2*pi) - pi``."""
    return ((x + np.pi) % (2 * np.pi)) - np.pi


class Pendulum(StateEnv):
    """The inverted-pendulum swing-up task, Gymnasium's ``Pendulum-v1``.

    Observation ``[cos(theta), sin(theta), thetadot]`` in ``[-1, 1] x [-1, 1] x [-8, 8]``;
    action ``[torque]`` in ``[-2, 2]`` (larger torques are clipped); reward in
    ``[-16.2736044, 0]``; 200 steps per episode, never terminated. See the module docstring
    for the equations.

    Parameters
    ----------
    seed : int or None
        Seed of the environment's ``numpy.random.default_rng`` generator.
    g : float
        Gravity in m/s**2 (Gymnasium's ``g`` argument), 10.0 by default.

    Raises
    ------
    TypeError
        If ``seed`` is neither ``None`` nor an integer, or ``g`` is not a real number.
    ValueError
        If ``seed`` is negative or ``g`` is not finite.
    """

    MAX_SPEED = 8
    MAX_TORQUE = 2.0
    DT = 0.05
    M = 1.0
    L = 1.0

    observation_dim = 3
    action_dim = 1
    state_dim = 2
    max_episode_steps = 200
    action_low = _frozen([-MAX_TORQUE])
    action_high = _frozen([MAX_TORQUE])
    observation_low = _frozen([-1.0, -1.0, -MAX_SPEED])
    observation_high = _frozen([1.0, 1.0, MAX_SPEED])

    def __init__(self, seed: int | None = None, *, g: float = 10.0) -> None:
        self._g = check_real(g, "g")
        super().__init__(seed)

    @property
    def g(self) -> float:
        """Gravity in m/s**2."""
        return self._g

    def _observe(self) -> np.ndarray:
        theta, thetadot = self._state
        return np.array([np.cos(theta), np.sin(theta), thetadot], dtype=np.float64)

    def _reset(self) -> np.ndarray:
        high = np.array([np.pi, 1.0])
        self._state = self._rng.uniform(low=-high, high=high)
        return self._observe()

    def _step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool]:
        # Gymnasium's expressions, in its order, so that results agree bit for bit.
        th, thdot = self._state
        g, m, l, dt = self._g, self.M, self.L, self.DT  # noqa: E741 (the physics name)
        u = np.clip(action, -self.MAX_TORQUE, self.MAX_TORQUE)[0]
        costs = angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * (u**2)
        newthdot = thdot + (3 * g / (2 * l) * np.sin(th) + 3.0 / (m * l**2) * u) * dt
        newthdot = np.clip(newthdot, -self.MAX_SPEED, self.MAX_SPEED)
        newth = th + newthdot * dt
        self._state = np.array([newth, newthdot], dtype=np.float64)
        return self._observe(), -float(costs), False, False

    def __repr__(self) -> str:
        return "Pendulum()" if self._g == 10.0 else f"Pendulum(g={self._g!r})"
