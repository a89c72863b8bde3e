"""The NumPy environments against hand-written references of Gymnasium's equations.

The references below use the ``math`` module and the constants of ``Pendulum-v1`` and
``MountainCarContinuous-v0`` written out, not anything from :mod:`sw_model.rl.envs`. The Gymnasium
adapter is tested against a small fake ``gymnasium`` module, since Gymnasium is optional.
"""

from __future__ import annotations

import math
import subprocess
import sys
import types

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sw_model.rl.envs import Env, GymnasiumEnv, MountainCarContinuous, Pendulum, make

APPROX = dict(rel=1e-12, abs=1e-12)


def ref_pendulum(th, thdot, u, g=10.0):
    """One Pendulum-v1 step: ((theta, thetadot), reward)."""
    m, l, dt, max_speed, max_torque = 1.0, 1.0, 0.05, 8.0, 2.0  # noqa: E741
    u = min(max(u, -max_torque), max_torque)
    norm = (th + math.pi) % (2 * math.pi) - math.pi
    reward = -(norm**2 + 0.1 * thdot**2 + 0.001 * u**2)
    newthdot = thdot + (3 * g / (2 * l) * math.sin(th) + 3.0 / (m * l**2) * u) * dt
    newthdot = min(max(newthdot, -max_speed), max_speed)
    return (th + newthdot * dt, newthdot), reward


def ref_pendulum_obs(th, thdot):
    return [math.cos(th), math.sin(th), thdot]


def ref_mountain_car(pos, vel, a, goal_velocity=0.0):
    """One MountainCarContinuous-v0 step: ((position, velocity), reward, terminated)."""
    force = min(max(a, -1.0), 1.0)
    vel = min(max(vel + force * 0.0015 - 0.0025 * math.cos(3 * pos), -0.07), 0.07)
    pos = min(max(pos + vel, -1.2), 0.6)
    if pos == -1.2 and vel < 0:
        vel = 0.0
    terminated = pos >= 0.45 and vel >= goal_velocity
    reward = (100.0 if terminated else 0.0) - 0.1 * a * a
    return (pos, vel), reward, terminated


def started(cls, state, **kwargs):
    env = cls(**kwargs)
    env.reset(state=state)
    return env


# --- Pendulum: single steps -----------------------------------------------------------------


def test_pendulum_attributes():
    env = Pendulum()
    assert (env.observation_dim, env.action_dim, env.max_episode_steps) == (3, 1, 200)
    for arr, want in [(env.action_low, [-2.0]), (env.action_high, [2.0]),
                      (env.observation_low, [-1.0, -1.0, -8.0]),
                      (env.observation_high, [1.0, 1.0, 8.0])]:
        assert arr.dtype == np.float64 and arr.tolist() == want
    with pytest.raises(ValueError, match="read-only"):
        env.action_low[0] = -5.0
    assert isinstance(env, Env) and repr(env) == "Pendulum()"
    assert repr(Pendulum(g=9.81)) == "Pendulum(g=9.81)"


@pytest.mark.parametrize(
    "state, u, want_state, want_reward",
    [
        # At rest upright, torque 1: thetadot = 3*1*0.05, theta = 0.15*0.05, cost 0.001*1.
        ((0.0, 0.0), 1.0, (0.0075, 0.15), -0.001),
        # Horizontal, no torque: thetadot = 15*1*0.05; cost (pi/2)**2.
        ((math.pi / 2, 0.0), 0.0, (math.pi / 2 + 0.0375, 0.75), -((math.pi / 2) ** 2)),
        # Hanging down at rest, full torque: sin(pi) ~ 0, thetadot = 6*0.05.
        ((math.pi, 0.0), -2.0, (math.pi - 0.015, -0.3), -(math.pi**2 + 0.004)),
        # theta = 2*pi + 0.5 normalises to 0.5 for the cost.
        ((2 * math.pi + 0.5, 1.0), 0.0,
         (2 * math.pi + 0.5 + (1.0 + 0.75 * math.sin(0.5)) * 0.05, 1.0 + 0.75 * math.sin(0.5)),
         -(0.25 + 0.1)),
    ],
)
def test_pendulum_closed_form_step(state, u, want_state, want_reward):
    env = started(Pendulum, state)
    obs, reward, terminated, truncated = env.step([u])
    assert env.state.tolist() == pytest.approx(want_state, rel=1e-12, abs=1e-15)
    assert obs.tolist() == pytest.approx(ref_pendulum_obs(*want_state), **APPROX)
    assert reward == pytest.approx(want_reward, **APPROX)
    assert (terminated, truncated) == (False, False)
    assert obs.dtype == np.float64 and isinstance(reward, float)


def test_pendulum_reset_state_observation():
    env = Pendulum()
    obs = env.reset(state=[math.pi / 3, -0.5])
    assert obs.tolist() == pytest.approx([0.5, math.sqrt(3) / 2, -0.5], **APPROX)
    obs[2] = 100.0  # observations are fresh arrays
    assert env.state.tolist() == [math.pi / 3, -0.5]


def test_pendulum_torque_clipping():
    for u in (2.0, 2.5, 1e9):
        env = started(Pendulum, (0.3, -0.2))
        _, reward, _, _ = env.step([u])
        (th, thdot), want = ref_pendulum(0.3, -0.2, 2.0)
        assert env.state.tolist() == pytest.approx([th, thdot], **APPROX)
        assert reward == pytest.approx(want, **APPROX)  # the cost uses the clipped torque
    hi = started(Pendulum, (0.3, -0.2)).step([7.0])
    lo = started(Pendulum, (0.3, -0.2)).step([-7.0])
    assert hi[0][2] - lo[0][2] == pytest.approx(2 * 3 * 2.0 * 0.05, **APPROX)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_pendulum_speed_clipping(sign):
    env = started(Pendulum, (sign * math.pi / 2, sign * 7.9))
    obs, _, _, _ = env.step([sign * 2.0])  # 7.9 + (15 + 6) * 0.05 = 8.95 -> 8
    assert env.state.tolist() == pytest.approx(
        [sign * (math.pi / 2 + 8.0 * 0.05), sign * 8.0], **APPROX)
    assert obs[2] == sign * 8.0


def test_pendulum_gravity_argument():
    env = started(Pendulum, (1.0, 0.5), g=9.81)
    _, reward, _, _ = env.step([0.25])
    (th, thdot), want = ref_pendulum(1.0, 0.5, 0.25, g=9.81)
    assert env.state.tolist() == pytest.approx([th, thdot], **APPROX)
    assert reward == pytest.approx(want, **APPROX)
    assert make("pendulum", g=9.81).g == 9.81


finite = dict(allow_nan=False, allow_infinity=False)


@given(th=st.floats(-20, 20, **finite), thdot=st.floats(-10, 10, **finite),
       u=st.one_of(st.sampled_from([-2.0, 0.0, 2.0]), st.floats(-5, 5, **finite)),
       steps=st.integers(1, 4))
def test_pendulum_matches_reference(th, thdot, u, steps):
    env = started(Pendulum, (th, thdot))
    for _ in range(steps):
        obs, reward, terminated, truncated = env.step(np.array([u]))
        in_range = abs(thdot) <= 8  # the reward is of the state before the step
        (th, thdot), want = ref_pendulum(th, thdot, u)
        assert env.state.tolist() == pytest.approx([th, thdot], **APPROX)
        assert obs.tolist() == pytest.approx(ref_pendulum_obs(th, thdot), **APPROX)
        assert reward == pytest.approx(want, **APPROX)
        assert -16.2736045 <= reward <= 0.0 or not in_range
        assert (terminated, truncated) == (False, False)


# --- MountainCarContinuous: single steps ----------------------------------------------------


def test_mountain_car_attributes():
    env = MountainCarContinuous()
    assert (env.observation_dim, env.action_dim, env.max_episode_steps) == (2, 1, 999)
    for arr, want in [(env.action_low, [-1.0]), (env.action_high, [1.0]),
                      (env.observation_low, [-1.2, -0.07]),
                      (env.observation_high, [0.6, 0.07])]:
        assert arr.dtype == np.float64 and arr.tolist() == want
    assert repr(env) == "MountainCarContinuous()"
    assert repr(MountainCarContinuous(goal_velocity=0.01)) == (
        "MountainCarContinuous(goal_velocity=0.01)")


def test_mountain_car_closed_form_step():
    env = started(MountainCarContinuous, (-0.5, 0.0))
    obs, reward, terminated, truncated = env.step([1.0])
    vel = 0.0015 - 0.0025 * math.cos(-1.5)
    assert obs.tolist() == pytest.approx([-0.5 + vel, vel], **APPROX)
    assert env.state.tolist() == obs.tolist()
    assert reward == pytest.approx(-0.1, **APPROX)
    assert (terminated, truncated) == (False, False)
    assert obs.dtype == np.float64 and isinstance(reward, float)


def test_mountain_car_reward_uses_unclipped_action():
    clipped = started(MountainCarContinuous, (-0.5, 0.01)).step([1.0])
    raw = started(MountainCarContinuous, (-0.5, 0.01)).step([3.0])
    assert raw[0].tolist() == clipped[0].tolist()  # the force is clipped to 1
    assert raw[1] == pytest.approx(-0.9, **APPROX)  # the reward is not
    assert started(MountainCarContinuous, (-0.5, 0.01)).step([-2.0])[1] == pytest.approx(-0.4)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_mountain_car_speed_clipping(sign):
    # |0.0695 + 0.0015| +- 0.0025*|cos(-1.8)| (0.00057) exceeds 0.07 both ways.
    env = started(MountainCarContinuous, (-0.6, sign * 0.0695))
    obs, _, _, _ = env.step([sign * 1.0])
    want = ref_mountain_car(-0.6, sign * 0.0695, sign * 1.0)[0]
    assert abs(want[1]) == 0.07  # the reference clipped too
    assert obs.tolist() == pytest.approx(list(want), **APPROX)
    assert abs(obs[1]) == 0.07


def test_mountain_car_left_wall_stops_the_car():
    env = started(MountainCarContinuous, (-1.18, -0.05))
    obs, reward, terminated, _ = env.step([-1.0])  # -1.18 - 0.05... < -1.2: clipped, stopped
    assert obs.tolist() == [-1.2, 0.0]
    assert (reward, terminated) == (pytest.approx(-0.1), False)
    # At the wall, a push to the right moves the car off it.
    obs, _, _, _ = env.step([1.0])
    vel = 0.0015 - 0.0025 * math.cos(-3.6)
    assert obs.tolist() == pytest.approx([-1.2 + vel, vel], **APPROX) and vel > 0
    # Hitting the wall at full speed: -0.07 - 0.0015 - 0.0025*cos(-3.6) < 0 and -1.2 + v < -1.2.
    env.reset(state=(-1.2, -0.07))
    assert env.step([-1.0])[0].tolist() == [-1.2, 0.0]
    # The slope at the wall pushes right (cos(-3.6) < 0), more than a full push left.
    env.reset(state=(-1.2, 0.0))
    vel = -0.0015 - 0.0025 * math.cos(-3.6)
    assert env.step([-1.0])[0].tolist() == pytest.approx([-1.2 + vel, vel], **APPROX)
    assert vel > 0


def test_mountain_car_right_wall_clips_position():
    env = started(MountainCarContinuous, (0.58, 0.07))
    obs, reward, terminated, truncated = env.step([1.0])
    assert obs.tolist() == [0.6, 0.07]
    assert (terminated, truncated) == (True, False)
    assert reward == pytest.approx(100.0 - 0.1, **APPROX)


def test_mountain_car_goal_termination():
    env = started(MountainCarContinuous, (0.44, 0.02))
    obs, reward, terminated, truncated = env.step([0.5])
    vel = 0.02 + 0.5 * 0.0015 - 0.0025 * math.cos(1.32)
    assert obs.tolist() == pytest.approx([0.44 + vel, vel], **APPROX)
    assert obs[0] >= 0.45 and (terminated, truncated) == (True, False)
    assert reward == pytest.approx(100.0 - 0.1 * 0.25, **APPROX)
    with pytest.raises(RuntimeError, match=r"^the episode has ended \(terminated after 1 step\);"
                                           r" call reset\(\) before step\(\)$"):
        env.step([0.0])
    env.reset()
    assert env.step([0.0])[2] is False


def test_mountain_car_goal_needs_goal_velocity():
    # Past the goal position but rolling back: not terminated.
    obs, reward, terminated, _ = started(MountainCarContinuous, (0.5, -0.01)).step([-1.0])
    assert obs[0] >= 0.45 and obs[1] < 0 and not terminated
    assert reward == pytest.approx(-0.1, **APPROX)
    # With goal_velocity 0.03, a car arriving at 0.02 does not count.
    env = started(MountainCarContinuous, (0.44, 0.02), goal_velocity=0.03)
    assert env.step([0.5])[2] is False


@given(pos=st.floats(-1.2, 0.6, **finite), vel=st.floats(-0.07, 0.07, **finite),
       a=st.one_of(st.sampled_from([-1.0, 0.0, 1.0]), st.floats(-3, 3, **finite)),
       goal_velocity=st.sampled_from([0.0, 0.01]), steps=st.integers(1, 4))
def test_mountain_car_matches_reference(pos, vel, a, goal_velocity, steps):
    env = started(MountainCarContinuous, (pos, vel), goal_velocity=goal_velocity)
    for _ in range(steps):
        obs, reward, terminated, truncated = env.step([a])
        (pos, vel), want, want_term = ref_mountain_car(pos, vel, a, goal_velocity)
        assert obs.tolist() == pytest.approx([pos, vel], **APPROX)
        assert reward == pytest.approx(want, **APPROX)
        assert (terminated, truncated) == (want_term, False)
        assert -1.2 <= obs[0] <= 0.6 and -0.07 <= obs[1] <= 0.07
        if terminated:
            break


# --- episodes, seeding ----------------------------------------------------------------------


def test_pendulum_episode_is_truncated_after_200_steps():
    env = Pendulum(seed=1)
    env.reset()
    actions = np.random.default_rng(0).uniform(-3, 3, size=(200, 1))
    flags = [env.step(a)[2:] for a in actions]
    assert flags == [(False, False)] * 199 + [(False, True)]
    assert env.elapsed_steps == 200
    with pytest.raises(RuntimeError, match=r"^the episode has ended \(truncated after 200 steps\);"
                                           r" call reset\(\) before step\(\)$"):
        env.step([0.0])
    env.reset()
    assert env.elapsed_steps == 0 and env.step([0.0])[2:] == (False, False)


def test_mountain_car_episode_is_truncated_after_999_steps():
    env = MountainCarContinuous(seed=2)
    env.reset()
    flags = [env.step([0.0])[2:] for _ in range(999)]  # no push never reaches the goal
    assert flags == [(False, False)] * 998 + [(False, True)]
    with pytest.raises(RuntimeError, match=r"^the episode has ended \(truncated after 999 steps\)"):
        env.step([0.0])


def test_terminated_and_truncated_together():
    env = MountainCarContinuous()
    env.max_episode_steps = 1
    env.reset(state=(0.44, 0.02))
    assert env.step([0.5])[2:] == (True, True)
    with pytest.raises(RuntimeError, match=r"^the episode has ended \(terminated after 1 step\)"):
        env.step([0.5])


def trajectory(env, actions):
    """Observations, rewards and flags over ``actions``, resetting (unseeded) at episode ends."""
    out = [env.reset().tolist()]
    for a in actions:
        obs, reward, terminated, truncated = env.step(a)
        out.append((obs.tolist(), reward, terminated, truncated))
        if terminated or truncated:
            out.append(env.reset().tolist())
    return out


@pytest.mark.parametrize("cls", [Pendulum, MountainCarContinuous])
def test_same_seed_same_trajectory(cls):
    actions = np.random.default_rng(123).uniform(-2.5, 2.5, size=(450, 1))
    first = trajectory(cls(seed=7), actions)
    assert first == trajectory(cls(seed=7), actions)
    assert first[0] != trajectory(cls(seed=8), actions)[0]
    # reset(seed=...) reseeds; an unseeded reset goes on with the generator.
    env = cls()
    assert env.reset(seed=7).tolist() == first[0]
    assert env.reset().tolist() != first[0]
    assert env.reset(seed=7).tolist() == first[0]


def test_initial_states_follow_gymnasium():
    # Gymnasium seeds with Generator(PCG64(SeedSequence(seed))) and draws these exact calls.
    for seed in (0, 1, 12345):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))
        high = np.array([math.pi, 1.0])
        env = Pendulum(seed=seed)
        env.reset()
        assert env.state.tolist() == rng.uniform(low=-high, high=high).tolist()
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))
        assert MountainCarContinuous(seed=seed).reset().tolist() == [
            rng.uniform(low=-0.6, high=-0.4), 0.0]


def test_initial_state_ranges():
    pend, car = Pendulum(seed=3), MountainCarContinuous(seed=3)
    states = np.array([(pend.reset(), pend.state)[1] for _ in range(2000)])
    assert np.all(np.abs(states[:, 0]) <= math.pi) and np.all(np.abs(states[:, 1]) <= 1.0)
    assert states[:, 0].min() < -3.0 and states[:, 0].max() > 3.0
    assert states[:, 1].min() < -0.99 and states[:, 1].max() > 0.99
    cars = np.array([car.reset() for _ in range(2000)])
    assert np.all((cars[:, 0] >= -0.6) & (cars[:, 0] <= -0.4)) and np.all(cars[:, 1] == 0.0)
    assert cars[:, 0].min() < -0.59 and cars[:, 0].max() > -0.41


def test_reset_with_state_does_not_draw():
    a, b = Pendulum(seed=5), Pendulum(seed=5)
    a.reset(state=(0.1, 0.2))
    assert a.reset().tolist() == b.reset().tolist()
    assert Pendulum().reset(seed=5, state=(0.1, 0.2)).tolist() == pytest.approx(
        [math.cos(0.1), math.sin(0.1), 0.2], **APPROX)


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [Pendulum, MountainCarContinuous])
@pytest.mark.parametrize(
    "action, exc, msg",
    [
        ([1.0, 2.0], ValueError, r"^action must have shape \(1,\), not \(2,\)$"),
        (0.5, ValueError, r"^action must have shape \(1,\), not \(\)$"),
        ([[0.5]], ValueError, r"^action must have shape \(1,\), not \(1, 1\)$"),
        ([], ValueError, r"^action must have shape \(1,\), not \(0,\)$"),
        ([math.nan], ValueError, r"^action must be finite, not \[nan\]$"),
        (np.array([-np.inf]), ValueError, r"^action must be finite, not array\(\[-inf\]\)$"),
        ("a", TypeError, r"^action must be an array of real numbers, not 'a'$"),
        ([True], TypeError, r"^action must be an array of real numbers, not \[True\]$"),
        ([1j], TypeError, r"^action must be an array of real numbers, not \[1j\]$"),
        ([None], TypeError, r"^action must be an array of real numbers, not \[None\]$"),
        ([[1.0], 2.0], TypeError,
         r"^action must be an array of real numbers, not \[\[1\.0\], 2\.0\]$"),
    ],
)
def test_action_errors(cls, action, exc, msg):
    env = cls(seed=0)
    env.reset()
    before = env.state
    with pytest.raises(exc, match=msg):
        env.step(action)
    assert env.state.tolist() == before.tolist() and env.elapsed_steps == 0
    env.step([0.5])  # the episode goes on


def test_integer_and_float32_actions_are_accepted():
    a = started(Pendulum, (0.2, 0.1)).step([1])
    b = started(Pendulum, (0.2, 0.1)).step(np.array([1.0], dtype=np.float32))
    assert a[0].tolist() == b[0].tolist() and a[1] == b[1]


@pytest.mark.parametrize("cls", [Pendulum, MountainCarContinuous])
def test_step_before_reset(cls):
    with pytest.raises(RuntimeError, match=r"^reset\(\) must be called before step\(\)$"):
        cls(seed=0).step([0.0])


@pytest.mark.parametrize(
    "seed, exc, msg",
    [
        (1.5, TypeError, r"^seed must be an integer or None, not 1\.5$"),
        (True, TypeError, r"^seed must be an integer or None, not True$"),
        ("1", TypeError, r"^seed must be an integer or None, not '1'$"),
        (-1, ValueError, r"^seed must be non-negative, not -1$"),
    ],
)
def test_seed_errors(seed, exc, msg):
    with pytest.raises(exc, match=msg):
        Pendulum(seed=seed)
    with pytest.raises(exc, match=msg):
        make("mountain_car_continuous", seed=seed)
    env = Pendulum()
    with pytest.raises(exc, match=msg):
        env.reset(seed=seed)
    with pytest.raises(exc, match=msg):
        env.reset(seed=seed, state=(0.0, 0.0))
    assert Pendulum(seed=np.int64(3)).reset().tolist() == Pendulum(seed=3).reset().tolist()


@pytest.mark.parametrize(
    "state, exc, msg",
    [
        ((0.0,), ValueError, r"^state must have shape \(2,\), not \(1,\)$"),
        ((0.0, math.inf), ValueError, r"^state must be finite, not \(0\.0, inf\)$"),
        ("ab", TypeError, r"^state must be an array of real numbers, not 'ab'$"),
    ],
)
def test_state_errors(state, exc, msg):
    env = Pendulum()
    with pytest.raises(exc, match=msg):
        env.reset(state=state)
    with pytest.raises(RuntimeError, match=r"^reset\(\) must be called before step\(\)$"):
        env.step([0.0])


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        (dict(g="10"), TypeError, r"^g must be a real number, not '10'$"),
        (dict(g=math.nan), ValueError, r"^g must be finite, not nan$"),
    ],
)
def test_parameter_errors(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        Pendulum(**kwargs)
    name = "goal_velocity"
    with pytest.raises(exc, match=msg.replace("g must", f"{name} must")):
        MountainCarContinuous(**{name: kwargs["g"]})


def test_make():
    assert type(make("pendulum")) is Pendulum
    assert type(make("mountain_car_continuous", seed=1)) is MountainCarContinuous
    assert make("pendulum", seed=4).reset().tolist() == Pendulum(seed=4).reset().tolist()
    msg = (r"^name must be 'pendulum', 'mountain_car_continuous' or a Gymnasium id such as "
           r"'Pendulum-v1', not 'cartpole'$")
    with pytest.raises(ValueError, match=msg):
        make("cartpole")
    with pytest.raises(TypeError, match=r"^name must be a string, not 3$"):
        make(3)


# --- Gymnasium adapter ----------------------------------------------------------------------


class FakeBox:
    def __init__(self, low, high, dtype=np.float32):
        self.low = np.asarray(low, dtype=dtype)
        self.high = np.asarray(high, dtype=dtype)
        self.shape = self.low.shape
        self.dtype = np.dtype(dtype)

    def __repr__(self):
        return f"Box{self.shape}"


class FakeDiscrete:
    def __repr__(self):
        return "Discrete(3)"


class FakePendulumV1:
    """Gymnasium's API (reset(seed=, options=) -> (obs, info), 5-tuple step, TimeLimit 200)
    around the reference equations, with float32 observations as Gymnasium returns them."""

    def __init__(self, g=10.0):
        self.g = g
        self.action_space = FakeBox([-2.0], [2.0])
        self.observation_space = FakeBox([-1, -1, -8], [1, 1, 8])
        self.spec = types.SimpleNamespace(max_episode_steps=200)
        self.np_random = np.random.default_rng()
        self.calls = []
        self.closed = False

    def obs(self):
        return np.array(ref_pendulum_obs(*self.state), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        self.calls.append(("reset", seed, options))
        if seed is not None:
            self.np_random = np.random.default_rng(seed)
        self.state = tuple(self.np_random.uniform(low=[-math.pi, -1.0], high=[math.pi, 1.0]))
        self.t = 0
        return self.obs(), {"reset": True}

    def step(self, action):
        self.calls.append(("step", action.dtype, action.shape))
        self.state, reward = ref_pendulum(*self.state, float(action[0]), g=self.g)
        self.t += 1
        return self.obs(), np.float64(reward), False, self.t >= 200, {"t": self.t}

    def close(self):
        self.closed = True


class FakeDiscreteEnv(FakePendulumV1):
    def __init__(self):
        super().__init__()
        self.action_space = FakeDiscrete()


@pytest.fixture
def fake_gymnasium(monkeypatch):
    made = []

    def fake_make(env_id, **kwargs):
        env = {"Pendulum-v1": FakePendulumV1, "Discrete-v0": FakeDiscreteEnv}[env_id](**kwargs)
        made.append(env)
        return env

    module = types.ModuleType("gymnasium")
    module.make = fake_make
    module.spaces = types.SimpleNamespace(Box=FakeBox)
    module.made = made
    monkeypatch.setitem(sys.modules, "gymnasium", module)
    return module


def test_adapter_matches_native_pendulum(fake_gymnasium):
    env = GymnasiumEnv("Pendulum-v1", seed=11)
    fake = fake_gymnasium.made[-1]
    assert (env.observation_dim, env.action_dim, env.max_episode_steps) == (3, 1, 200)
    assert env.action_low.tolist() == [-2.0] and env.observation_high.tolist() == [1, 1, 8]
    assert env.action_low.dtype == np.float64 and repr(env) == "GymnasiumEnv('Pendulum-v1')"
    native = Pendulum(seed=11)
    actions = np.random.default_rng(1).uniform(-2.5, 2.5, size=(200, 1))
    got, want = trajectory(env, actions), trajectory(native, actions)
    assert len(got) == len(want) == 202
    for g, w in zip(got, want, strict=True):
        if isinstance(w, list):  # a reset observation
            assert g == pytest.approx(w, rel=1e-6, abs=1e-6)
        else:
            assert g[0] == pytest.approx(w[0], rel=1e-5, abs=1e-5)
            assert g[1] == pytest.approx(w[1], rel=1e-5, abs=1e-5)
            assert g[2:] == w[2:]
    # The seed went to the first reset only; actions were cast to the space's dtype.
    resets = [c for c in fake.calls if c[0] == "reset"]
    assert resets == [("reset", 11, None), ("reset", None, None)]
    assert {c[1:] for c in fake.calls if c[0] == "step"} == {(np.dtype(np.float32), (1,))}
    assert env.last_info == {"reset": True}


def test_adapter_episode_end_and_options(fake_gymnasium):
    env = make("Pendulum-v1", seed=2, g=9.81)
    assert isinstance(env, GymnasiumEnv)
    fake = fake_gymnasium.made[-1]
    assert fake.g == 9.81
    with pytest.raises(RuntimeError, match=r"^reset\(\) must be called before step\(\)$"):
        env.step([0.0])
    obs = env.reset(seed=5, options={"x_init": 1.0})
    assert obs.dtype == np.float64 and fake.calls[-1] == ("reset", 5, {"x_init": 1.0})
    for _ in range(199):
        assert env.step([0.0])[2:] == (False, False)
    assert env.step([0.0])[2:] == (False, True) and env.last_info == {"t": 200}
    with pytest.raises(RuntimeError, match=r"^the episode has ended \(truncated after 200 steps\)"):
        env.step([0.0])
    with pytest.raises(ValueError, match=r"^action must have shape \(1,\), not \(2,\)$"):
        env.reset()
        env.step([0.0, 0.0])
    env.close()
    assert fake.closed


def test_adapter_rejects_non_box_spaces(fake_gymnasium):
    msg = (r"^GymnasiumEnv needs a one-dimensional Box action space, but 'Discrete-v0' has "
           r"Discrete\(3\)$")
    with pytest.raises(ValueError, match=msg):
        GymnasiumEnv("Discrete-v0")
    assert fake_gymnasium.made[-1].closed
    with pytest.raises(TypeError, match=r"^env_id must be a string, not 1$"):
        GymnasiumEnv(1)


GYM_MISSING = (r"^GymnasiumEnv needs Gymnasium, which is not installed; install it with "
               r"pip install \"fixar-hw\[gym\]\" \(or pip install gymnasium\)$")


def test_adapter_without_gymnasium(monkeypatch):
    monkeypatch.setitem(sys.modules, "gymnasium", None)  # makes `import gymnasium` fail
    with pytest.raises(ImportError, match=GYM_MISSING):
        GymnasiumEnv("Pendulum-v1")
    with pytest.raises(ImportError, match=GYM_MISSING):
        make("ALE/Pong-v5", seed=0)
    assert type(make("pendulum")) is Pendulum  # the NumPy environments need nothing


def test_import_is_numpy_only():
    code = ("import sys, sw_model.rl.envs; "
            "print(sorted(m for m in ('gymnasium', 'amaranth', 'hypothesis') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
