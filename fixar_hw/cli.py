"""The ``fixar-hw`` command line.

``fixar-hw demo``
    Simulate the fixed-point MAC on random vectors and check it against the golden model.
``fixar-hw prove [NAME ...]``
    Run SymbiYosys proofs (all, or the named ones or groups) and print a table.
``fixar-hw train``
    Train a DDPG agent in NumPy (float, fixed point or FIXAR QAT) and write a CSV log of
    episode returns, a reward plot and the final weight image; ``--backend sim`` (or
    ``verilator``) runs the training steps and actions on a simulated
    :class:`~fixar_hw.core.FixarCore`.
``fixar-hw search --budget-luts N ...``
    Search per-layer weight schemes and bit widths of a trained actor under a hardware budget
    (PPO, a HAQ-style DDPG baseline, uniform widths) and write a CSV, a plot and the best.
``fixar-hw export --config cfg.json -o fixar_core.v``
    Write the Verilog of a :class:`~fixar_hw.core.FixarCore` (and, with ``--regmap DIR``, its
    register map as JSON, a C header and Markdown).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), not {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), not {text!r}")
    return value


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import DEMO_CONFIGS, format_report, run_mac_demo

    configs = [c for c in DEMO_CONFIGS if not args.config or c.name in args.config]
    # the first configuration also runs without stalls, to show one term per cycle
    runs = [(configs[0], 0.0)] if args.stall > 0 else []
    runs += [(c, args.stall) for c in configs]
    results = []
    for k, (config, stall) in enumerate(runs):
        print(f"simulating {config.name} (stall {stall:g}) ...", flush=True)
        vcd = args.vcd if (args.vcd and k == 0) else None
        results.append(run_mac_demo(config, vectors=args.vectors, terms=args.terms,
                                    seed=args.seed, stall=stall, vcd=vcd))
    print()
    print(format_report(results))
    if args.vcd:
        print(f"waveform of {configs[0].name} written to {args.vcd}")
    return 0 if all(r.mismatches == 0 for r in results) else 1


def _cmd_prove(args: argparse.Namespace) -> int:
    from .formal import format_table, run_jobs, select

    try:
        jobs = select(args.names)
    except ValueError as exc:
        print(f"fixar-hw prove: {exc}", file=sys.stderr)
        return 2
    if args.quick:
        jobs = [j for j in jobs if not j.slow]
    if args.list:
        for job in jobs:
            slow = " (slow)" if job.slow else ""
            print(f"{job.name:32} {job.mode:6} depth {job.depth:<3} {job.description}{slow}")
        return 0
    print(f"running {len(jobs)} proofs on {args.jobs} workers ...", flush=True)

    def progress(result) -> None:
        mark = "ok" if result.ok else "NOT OK"
        print(f"  {result.job.name}: {result.status} ({mark}, {result.seconds:.1f} s)", flush=True)

    results = run_jobs(jobs, workers=args.jobs, on_result=progress)
    print()
    print(format_table(results))
    failed = [r for r in results if not r.ok]
    for r in failed:
        where = f"; files in {r.workdir}" if r.workdir else ""
        print(f"\n{r.job.name}: {r.status}, expected {r.job.expect}{where}")
    return 1 if failed else 0


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a non-negative integer, not {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, not {text!r}")
    return value


def _cmd_train(args: argparse.Namespace) -> int:
    from .train import config_from_args, run_training

    try:
        config = config_from_args(
            args.precision, args.hidden, args.seed, batch_size=args.batch_size,
            warmup_steps=args.warmup, qat_delay=args.qat_delay, gamma=args.gamma,
            actor_lr=args.actor_lr, critic_lr=args.critic_lr, noise_sigma=args.noise,
            buffer_size=args.buffer_size)
    except (TypeError, ValueError) as exc:
        print(f"fixar-hw train: {exc}", file=sys.stderr)
        return 2
    make_agent = None
    if args.backend != "numpy":
        from .train import core_agent_factory

        if not config.is_fixed:
            print(f"fixar-hw train: --backend {args.backend} needs a fixed-point precision, "
                  f"not {config.precision!r}", file=sys.stderr)
            return 2
        make_agent = core_agent_factory(args.backend, size=args.core_size,
                                        cores=args.core_cores)
    summary = run_training(config, args.env, args.steps, args.out,
                           eval_episodes=args.eval_episodes, progress=not args.no_progress,
                           make_agent=make_agent)
    rets = summary.episode_returns
    print(f"{len(rets)} episodes, {summary.train_steps} training steps in "
          f"{summary.seconds:.1f} s")
    if rets:
        last = rets[-10:]
        print(f"mean return of the last {len(last)} episodes: {sum(last) / len(last):.1f}")
    if summary.eval_returns:
        ev = summary.eval_returns
        print(f"final policy, {len(ev)} episodes without noise: {sum(ev) / len(ev):.1f}")
    print(f"wrote {args.out}/returns.csv, rewards.png, weights.fximg, config.json, summary.json")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .config import CoreConfig

    try:
        config = CoreConfig.load(args.config)
    except (OSError, TypeError, ValueError) as exc:
        print(f"fixar-hw export: {args.config}: {exc}", file=sys.stderr)
        return 2
    from .core import FixarCore
    from .csr import register_map
    from .export import _atomic_write_text, to_verilog

    if args.regmap:
        out = Path(args.regmap)
        out.mkdir(parents=True, exist_ok=True)
        regmap = register_map(config)
        for suffix, text in ((".json", regmap.to_json()), (".h", regmap.to_c_header()),
                             (".md", regmap.to_markdown())):
            _atomic_write_text(out / f"{args.name}_regs{suffix}", text)
        print(f"wrote {out}/{args.name}_regs.json, .h, .md")
    if args.output:
        core = FixarCore(config)
        print(f"exporting {args.name} (config id 0x{config.config_id:08x}) ...", flush=True)
        text = core.verilog_header(args.name) + to_verilog(core, name=args.name)
        _atomic_write_text(Path(args.output), text)
        print(f"wrote {args.output} ({len(text.splitlines())} lines)")
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from sw_model.autoq import Budget

    from .search import METHODS, format_summary, load_actor, run_search, train_actor

    def fail(message: str) -> int:
        print(f"fixar-hw search: {message}", file=sys.stderr)
        return 2

    limits = {"luts": args.budget_luts, "dsps": args.budget_dsps,
              "mem_bits": args.budget_mem_bits, "cycles": args.budget_cycles}
    if all(v is None for v in limits.values()):
        return fail("give at least one of --budget-luts, --budget-dsps, --budget-mem-bits, "
                    "--budget-cycles")
    try:
        budget = Budget(**limits)
    except (TypeError, ValueError) as exc:
        return fail(str(exc))
    if args.weights is not None and args.train_steps is not None:
        return fail("give --weights or --train-steps, not both")
    env = "pendulum"
    if args.weights is not None:
        try:
            weights, env = load_actor(args.weights)
        except (OSError, TypeError, ValueError) as exc:
            return fail(f"{args.weights}: {exc}")
    else:
        steps = args.train_steps or 6000
        print(f"training a float64 {env} actor, hidden {' '.join(map(str, args.hidden))}, "
              f"{steps} steps, seed {args.seed} ...", flush=True)
        weights = train_actor(steps, args.seed, env=env, hidden=args.hidden,
                              progress=not args.no_progress)
    methods = METHODS if args.method == "all" else (args.method,)
    try:
        run = run_search(weights, budget, args.out, methods=methods, env=env, seed=args.seed,
                         iterations=args.iterations, episodes_per_iter=args.episodes_per_iter,
                         haq_episodes=args.episodes, lanes=args.lanes, states=args.states,
                         return_episodes=args.eval_episodes, penalty=args.penalty,
                         bonus=args.bonus, progress=not args.no_progress)
    except (TypeError, ValueError) as exc:
        return fail(str(exc))
    print(format_summary(run))
    print(f"wrote {args.out}/search.csv, cost_vs_quality.png, best.json")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``fixar-hw``."""
    parser = argparse.ArgumentParser(
        prog="fixar-hw",
        description="Fixed-point and mixed-scheme DRL training accelerator generators.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="simulate the MAC against the golden model")
    demo.add_argument("--vectors", type=_positive_int, default=100,
                      help="dot products per configuration (default 100)")
    demo.add_argument("--terms", type=_positive_int, default=64,
                      help="terms per dot product (default 64)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--stall", type=_probability, default=0.2,
                      help="probability of an input gap / output stall per cycle (default 0.2)")
    demo.add_argument("--config", action="append", metavar="NAME",
                      help="run only this configuration (repeatable)")
    demo.add_argument("--vcd", metavar="FILE", help="write a waveform of the first configuration")
    demo.set_defaults(func=_cmd_demo)

    prove = sub.add_parser("prove", help="run SymbiYosys proofs")
    prove.add_argument("names", nargs="*", metavar="NAME",
                       help="proof names or groups (e.g. mac.contract); all if none")
    prove.add_argument("--list", action="store_true", help="list the proofs and exit")
    prove.add_argument("--quick", action="store_true",
                       help="skip the slow proofs (minutes each)")
    prove.add_argument("--jobs", type=_positive_int, default=os.cpu_count() or 1,
                       help="proofs run at once (default: CPU count)")
    prove.set_defaults(func=_cmd_prove)

    from sw_model.ddpg_config import PRECISIONS

    tr = sub.add_parser("train", help="train a DDPG agent (float, fixed point or FIXAR QAT)")
    tr.add_argument("--env", default="pendulum",
                    help="environment: pendulum, mountain_car_continuous or a Gymnasium id")
    tr.add_argument("--precision", choices=PRECISIONS, default="qat",
                    help="arithmetic (default qat)")
    tr.add_argument("--steps", type=_positive_int, default=20_000,
                    help="environment steps (default 20000)")
    tr.add_argument("--seed", type=_nonneg_int, default=0, help="random seed (default 0)")
    tr.add_argument("--hidden", type=_positive_int, nargs="+", default=[400, 300],
                    metavar="N", help="hidden layer sizes (default 400 300)")
    tr.add_argument("--batch-size", type=_positive_int, help="batch size (default 64)")
    tr.add_argument("--warmup", type=_nonneg_int,
                    help="random-action steps before training (default 1000)")
    tr.add_argument("--qat-delay", type=_positive_int,
                    help="training steps with 32-bit activations in qat mode (default 5000)")
    tr.add_argument("--gamma", type=float, help="discount (default 0.99)")
    tr.add_argument("--actor-lr", type=float, help="actor step size (default 1e-3)")
    tr.add_argument("--critic-lr", type=float, help="critic step size (default 1e-3)")
    tr.add_argument("--noise", type=float, help="exploration noise sigma (default 0.1)")
    tr.add_argument("--buffer-size", type=_positive_int,
                    help="replay buffer size (default 100000)")
    tr.add_argument("--eval-episodes", type=_nonneg_int, default=10,
                    help="episodes to evaluate the final policy (default 10)")
    tr.add_argument("--out", default="runs/ddpg", help="output directory (default runs/ddpg)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")
    tr.add_argument("--backend", choices=("numpy", "sim", "verilator"), default="numpy",
                    help="where training steps and actions run: NumPy, or a FixarCore in "
                         "Amaranth's simulator or in Verilator (default numpy)")
    tr.add_argument("--core-size", type=_positive_int, default=4,
                    help="sim/verilator backends: PE grid side (default 4)")
    tr.add_argument("--core-cores", type=_positive_int, default=2,
                    help="sim/verilator backends: AAP cores (default 2)")
    tr.set_defaults(func=_cmd_train)

    ex = sub.add_parser("export", help="write the Verilog and register map of a FixarCore")
    ex.add_argument("--config", required=True, metavar="JSON",
                    help="a CoreConfig JSON file (fixar_hw.config.CoreConfig.to_json)")
    ex.add_argument("-o", "--output", metavar="FILE", help="the Verilog file to write")
    ex.add_argument("--name", default="fixar_core", help="module name (default fixar_core)")
    ex.add_argument("--regmap", metavar="DIR",
                    help="also write <name>_regs.json, .h and .md to DIR")
    ex.set_defaults(func=_cmd_export)

    se = sub.add_parser("search", help="search per-layer precisions of an actor under a budget")
    se.add_argument("--weights", metavar="FILE.fximg",
                    help="a trained agent's weight image (fixar-hw train); without it, a "
                         "float actor is trained first")
    se.add_argument("--train-steps", type=_positive_int, metavar="N",
                    help="steps to train the float Pendulum actor (default 6000)")
    se.add_argument("--hidden", type=_positive_int, nargs="+", default=[64, 64], metavar="N",
                    help="hidden sizes of the trained actor (default 64 64)")
    se.add_argument("--budget-luts", type=float, metavar="N", help="LUT limit")
    se.add_argument("--budget-dsps", type=float, metavar="N", help="DSP limit")
    se.add_argument("--budget-mem-bits", type=int, metavar="N", help="weight memory bit limit")
    se.add_argument("--budget-cycles", type=int, metavar="N", help="cycles per inference limit")
    se.add_argument("--method", choices=("ppo", "haq", "uniform", "all"), default="ppo",
                    help="search method (default ppo)")
    se.add_argument("--iterations", type=_positive_int, default=30,
                    help="PPO iterations (default 30)")
    se.add_argument("--episodes-per-iter", type=_positive_int, default=32,
                    help="PPO episodes per iteration (default 32)")
    se.add_argument("--episodes", type=_positive_int,
                    help="HAQ episodes (default: iterations * episodes-per-iter)")
    se.add_argument("--seed", type=_nonneg_int, default=0, help="random seed (default 0)")
    se.add_argument("--lanes", type=_positive_int, default=16,
                    help="lanes per engine of the cost model (default 16)")
    se.add_argument("--states", type=_positive_int, default=256,
                    help="calibration states of the proxy (default 256)")
    se.add_argument("--eval-episodes", type=_positive_int, default=3,
                    help="episodes of each real-return evaluation (default 3)")
    se.add_argument("--penalty", type=float, default=2.0,
                    help="reward penalty per fraction over budget (default 2)")
    se.add_argument("--bonus", type=float, default=0.0,
                    help="reward bonus per fraction of budget unused (default 0)")
    se.add_argument("--out", default="runs/search", help="output directory (default runs/search)")
    se.add_argument("--no-progress", action="store_true", help="no progress bars")
    se.set_defaults(func=_cmd_search)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fixar-hw`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo" and args.config:
        from .demo import DEMO_CONFIGS

        known = {c.name for c in DEMO_CONFIGS}
        unknown = [n for n in args.config if n not in known]
        if unknown:
            parser.error(f"unknown --config {unknown[0]!r}; choose from {', '.join(sorted(known))}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
