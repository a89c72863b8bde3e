"""Benchmark: DDPG training speed (gradient steps per second), NumPy modes vs stable-baselines3.

Each implementation fills a replay buffer with random Pendulum transitions and runs a few
untimed steps; then the implementations take turns, ``--repeat`` times, each timing
``--steps`` training steps (one critic and one actor update, soft updates) per turn, so that a
change in the machine's load meets all of them alike; the figure is the median of an
implementation's timings. Our modes run
:meth:`sw_model.rl.ddpg.DDPGAgent.train_step` (float64, float32, bit-exact fixed point with
32-bit activations, and FIXAR QAT after the switch to 16-bit activations); stable-baselines3's
DDPG (PyTorch, CPU) runs ``model.train(gradient_steps, batch_size)`` on the same environment,
network sizes and batch size. BLAS and PyTorch use ``--threads`` threads (default 1), set
before NumPy and PyTorch are imported.

stable-baselines3 is optional (``pip install "fixar-hw[bench]"``); without it the script says
so and measures our modes only.

Reproduce with::

    python benchmarks/bench_ddpg_speed.py             # 400-300 and 64-64, batch 64
    python benchmarks/bench_ddpg_speed.py --quick     # 64-64 only, few steps
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small network, few steps")
    parser.add_argument("--repeat", type=int, default=5, help="timings per figure (median)")
    parser.add_argument("--steps", type=int, default=None, help="training steps per timing")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS / PyTorch threads (default 1)")
    return parser.parse_args(argv)


def _median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def ours_timer(precision: str, hidden: tuple[int, ...], batch: int
               ) -> Callable[[int], float]:
    """A :class:`sw_model.rl.ddpg.DDPGAgent` ready to train: ``timer(steps)`` times ``steps``
    training steps on pre-sampled batches and returns steps per second."""
    from sw_model.rl.ddpg import DDPGAgent, DDPGConfig
    from sw_model.rl.envs import make

    config = DDPGConfig(hidden=hidden, precision=precision, batch_size=batch, qat_delay=1,
                        buffer_size=10_000)
    env = make("pendulum", seed=0)
    agent = DDPGAgent(config, env.observation_dim, env.action_dim, env.action_low,
                      env.action_high)
    obs = env.reset()
    for _ in range(2000):
        a = agent.random_action()
        nxt, r, term, trunc = env.step(agent.scale_action(a))
        agent.remember(obs, a, r, nxt, term)
        obs = env.reset() if term or trunc else nxt
    for _ in range(3):  # untimed: caches, and the QAT switch after the first step
        agent.train_step()

    def timer(steps: int) -> float:
        batches = [agent.sample() for _ in range(steps)]
        start = time.perf_counter()
        for b in batches:
            agent.train_step(b)
        return steps / (time.perf_counter() - start)

    return timer


def sb3_timer(hidden: tuple[int, ...], batch: int, threads: int) -> Callable[[int], float]:
    """stable-baselines3's DDPG on Pendulum-v1 ready to train: ``timer(steps)`` times
    ``model.train(steps, batch)`` and returns gradient steps per second."""
    import torch
    from stable_baselines3 import DDPG

    torch.set_num_threads(threads)
    model = DDPG("MlpPolicy", "Pendulum-v1", batch_size=batch, learning_starts=2000,
                 buffer_size=10_000, policy_kwargs={"net_arch": list(hidden)}, device="cpu",
                 seed=0, verbose=0)
    model.learn(total_timesteps=2003)  # fills the buffer, sets up the logger, 3 updates

    def timer(steps: int) -> float:
        start = time.perf_counter()
        model.train(gradient_steps=steps, batch_size=batch)
        return steps / (time.perf_counter() - start)

    return timer


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    sizes = [(64, 64)] if args.quick else [(400, 300), (64, 64)]
    modes = ["float64", "float32", "fixed", "qat"]
    repeat = max(1, args.repeat)
    try:
        import stable_baselines3  # noqa: F401
        have_sb3 = True
    except ImportError:
        have_sb3 = False
        print("stable-baselines3 is not installed: measuring the NumPy modes only "
              '(install it with pip install "fixar-hw[bench]")')
    print(f"DDPG training steps per second on Pendulum, batch {args.batch_size}, "
          f"{args.threads} thread(s), median of {repeat}")
    print(f"{'hidden':>8} {'implementation':>26} {'steps/s':>9} {'vs SB3':>7}")
    for hidden in sizes:
        big = hidden[0] >= 256
        steps = args.steps or (3 if args.quick else (20 if big else 100))
        timers = {}  # name: (timer, steps per timing)
        for mode in modes:
            n = steps if mode.startswith("fixed") or mode == "qat" else steps * 5
            timers[f"NumPy {mode}"] = (ours_timer(mode, hidden, args.batch_size), n)
        if have_sb3:
            timers["SB3 DDPG (PyTorch CPU)"] = (
                sb3_timer(hidden, args.batch_size, args.threads), steps * 5)
        rates: dict[str, list[float]] = {name: [] for name in timers}
        for _ in range(repeat):  # in turn, so that a change of load meets every implementation
            for name, (timer, n) in timers.items():
                rates[name].append(timer(n))
        figures = {name: _median(r) for name, r in rates.items()}
        ref = figures.get("SB3 DDPG (PyTorch CPU)")
        for name, rate in figures.items():
            rel = f"{rate / ref:6.2f}x" if ref else "    -"
            print(f"{'-'.join(map(str, hidden)):>8} {name:>26} {rate:>9.1f} {rel:>7}")
    extra = " --quick" if args.quick else ""
    print(f"reproduce: python benchmarks/bench_ddpg_speed.py{extra} --repeat {repeat}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
