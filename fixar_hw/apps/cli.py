"""The ``fixar-hw`` command line.

``fixar-hw demo [--quick]``
    Train a FIXAR-QAT DDPG agent on Pendulum, quantize it (QAT and MSQ rows), run training
    steps and actions on the simulated core bit-exactly against the golden model, project
    board figures, and write a Markdown report with plots (:mod:`fixar_hw.apps.demo`);
    ``--vcd FILE`` (Amaranth's simulator) or ``--trace FILE.fst`` (Verilator) also write a
    waveform of the core's run.
``fixar-hw prove [NAME ...]``
    Run SymbiYosys proofs (all, or the named ones or groups) and print a table.
``fixar-hw train``
    Train a DDPG agent in NumPy (float, fixed point or FIXAR QAT) and write a CSV log of
    episode returns, a reward plot and the final weight image; ``--backend sim`` (or
    ``verilator``) runs the training steps and actions on a simulated
    :class:`~fixar_hw.soc.core.FixarCore`, with ``--vcd FILE`` (sim) or ``--trace FILE.fst``
    (verilator) writing a waveform of it.
``fixar-hw search --max-loss 2% --cost luts ...`` (or ``--budget-luts N ...``)
    Search per-layer weight schemes and bit widths of a trained actor: the cheapest
    configuration whose held-out return stays within the loss, or the best one under a
    hardware budget (PPO, a HAQ-style DDPG baseline, random search, uniform widths); write a
    CSV, a plot and the best.
``fixar-hw build --board ulx3s-85f --config cfg.json``
    Build a bitstream for a board with the open toolchain (Yosys through pyosys,
    yowasp-nextpnr and the packer) and report LUT/FF/DSP/BRAM use and Fmax; ``--bringup``
    builds the UART and memory alone. A configuration that does not fit is refused, naming
    what to shrink.
``fixar-hw sweep --sizes 2 4 --cores 1 2 --boards ulx3s-85f ...``
    Synthesize a grid of configurations for boards on a process pool or a Dask cluster
    (``--scheduler``), with cached results: resources, Fmax, projected throughput, a CSV, a
    Markdown table and a Pareto plot.
``fixar-hw export [PART] [--param NAME=VALUE ...] [--config cfg.json] -o fixar_core.v``
    Write the Verilog of a part (``mac``, ``sp2``, ``row-unit``, ``pe``, ``array``, ``engine``,
    ``core``, the default, or ``soc``) with a header documenting its ports, a wrapper with one port
    per payload field and Verilator waivers (:mod:`fixar_hw.flow.part_export`); for the core,
    with ``--regmap DIR``, its register map as JSON, a C header and Markdown.
``fixar-hw testbench DIR --config cfg.json``
    Write a plain-Verilog testbench kit of the core (one noisy action and one training step
    with the golden model's results); ``make -C DIR`` builds it with Verilator, runs it and
    compares (:func:`fixar_hw.sim.verilog_tb.write_kit`).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable, Sequence

from sw_model.checks import check_int

__all__ = ["main"]


def _failer(command: str) -> Callable[..., int]:
    """``fail(message, status=2)`` for ``command``: print ``fixar-hw COMMAND: message`` to
    stderr and return the exit status."""

    def fail(message: str, status: int = 2) -> int:
        print(f"fixar-hw {command}: {message}", file=sys.stderr)
        return status

    return fail


def _int_argument(text: str, minimum: int, kind: str) -> int:
    """``text`` as an integer of at least ``minimum`` (:func:`sw_model.checks.check_int`), or
    an argparse error saying a ``kind`` integer was expected."""
    try:
        return check_int(int(text), "value", minimum=minimum)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a {kind} integer, not {text!r}") from None


def _positive_int(text: str) -> int:
    return _int_argument(text, 1, "positive")


def _waveform_problem(args: argparse.Namespace, option: str, where: str | None) -> str | None:
    """What is wrong with ``--vcd``/``--trace`` for a run on ``where`` (``"sim"``,
    ``"verilator"``, or None when ``option`` was not given and the flag chooses), or None.

    Checked before anything runs: the flag fits the simulator, and the file can be written
    (its folder exists or can be made, and is writable)."""
    from pathlib import Path

    from fixar_hw.flow.part_export import _check_destination

    if args.vcd is not None and args.trace is not None:
        return "give --vcd (Amaranth's simulator) or --trace (Verilator), not both"
    if args.vcd is not None and where not in (None, "sim"):
        return f"--vcd is written by Amaranth's simulator: it needs {option} sim, not {where}"
    if args.trace is not None and where not in (None, "verilator"):
        return (f"--trace is written by Verilator: it needs {option} verilator, not {where} "
                f"(Amaranth's simulator writes --vcd)")
    for flag, path in (("--vcd", args.vcd), ("--trace", args.trace)):
        if path is None:
            continue
        if flag == "--trace" and not path.endswith(".fst"):
            return f"--trace must name an .fst file, not {path!r}"
        target = Path(path)
        if target.is_dir():
            return f"{flag} {path}: is a directory"
        try:
            _check_destination(target.parent)
        except ValueError as exc:
            return f"{flag} {path}: {exc}"
        if target.exists() and not os.access(target, os.W_OK):
            return f"{flag} {path}: the file is not writable"
    return None


def _prepare_waveform(args: argparse.Namespace) -> None:
    """Make the folder of the ``--vcd``/``--trace`` file (checked by :func:`_waveform_problem`)."""
    from pathlib import Path

    for path in (args.vcd, args.trace):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def _cmd_demo(args: argparse.Namespace) -> int:
    from fixar_hw.apps.demo import demo_settings, format_summary, run_demo

    fail = _failer("demo")

    problem = _waveform_problem(args, "--transport", args.transport)
    if problem is not None:
        return fail(problem)
    try:
        settings = demo_settings(quick=args.quick, episodes=args.episodes, seed=args.seed,
                                 board=args.board, synth=args.synth, fmax=args.fmax,
                                 transport=args.transport, vcd=args.vcd, trace=args.trace)
    except (TypeError, ValueError) as exc:
        return fail(str(exc))
    from fixar_hw.apps.demo import board_names

    boards = board_names()
    if args.board not in boards:
        return fail(f"unknown --board {args.board!r}; choose from {', '.join(boards)}")
    _prepare_waveform(args)
    result = run_demo(settings, args.out, progress=not args.no_progress,
                      log=lambda line: print(line, flush=True))
    print()
    print(format_summary(result))
    print(f"wrote {args.out}/report.md and its plots; reproduce with: {result.command}")
    if settings.vcd or settings.trace:
        print(f"wrote the core's waveform to {settings.vcd or settings.trace}")
    if not result.ok:
        print("fixar-hw demo: the hardware differs from the golden model (see above)",
              file=sys.stderr)
        return 1
    return 0


def _cmd_prove(args: argparse.Namespace) -> int:
    from fixar_hw.formal import format_table, run_jobs, select

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
    return _int_argument(text, 0, "non-negative")


def _cmd_train(args: argparse.Namespace) -> int:
    from fixar_hw.apps.train import config_from_args, run_training

    try:
        config = config_from_args(
            args.precision, args.hidden, args.seed, batch_size=args.batch_size,
            warmup_steps=args.warmup, qat_delay=args.qat_delay, gamma=args.gamma,
            actor_lr=args.actor_lr, critic_lr=args.critic_lr, noise_sigma=args.noise,
            noise_theta=args.noise_theta, buffer_size=args.buffer_size)
    except (TypeError, ValueError) as exc:
        print(f"fixar-hw train: {exc}", file=sys.stderr)
        return 2
    problem = _waveform_problem(args, "--backend", args.backend)
    if problem is not None:
        print(f"fixar-hw train: {problem}", file=sys.stderr)
        return 2
    make_agent = None
    if args.backend != "numpy":
        from fixar_hw.apps.train import core_agent_factory

        if not config.is_fixed:
            print(f"fixar-hw train: --backend {args.backend} needs a fixed-point precision, "
                  f"not {config.precision!r}", file=sys.stderr)
            return 2
        try:
            make_agent = core_agent_factory(args.backend, size=args.core_size,
                                            cores=args.core_cores,
                                            update_units=args.core_update_units,
                                            update_kind=args.core_update_kind, vcd=args.vcd,
                                            trace=args.trace)
            # the grid the engine refuses is refused now, not after the output is written
            from sw_model.rl.envs import make as make_env

            env = make_env(args.env)
            make_agent.core_config(config, env.observation_dim, env.action_dim)
        except ValueError as exc:
            print(f"fixar-hw train: {exc}", file=sys.stderr)
            return 2
        _prepare_waveform(args)
    try:
        summary = run_training(config, args.env, args.steps, args.out,
                               eval_episodes=args.eval_episodes, progress=not args.no_progress,
                               make_agent=make_agent)
    finally:
        if make_agent is not None:
            make_agent.close()
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
    if args.vcd or args.trace:
        print(f"wrote the core's waveform to {args.vcd or args.trace}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fixar_hw.config import CoreConfig
    from fixar_hw.flow.part_export import PARTS, export_part, load_params, parse_params

    fail = _failer("export")
    part = args.part
    if part not in PARTS:
        return fail(f"unknown part {part!r}; the parts are {', '.join(PARTS)}")
    spec = PARTS[part]
    params: dict[str, object] = {}
    if args.params is not None:
        try:
            params.update(load_params(args.params))
        except (OSError, ValueError) as exc:
            return fail(f"part {part!r}: --params {args.params}: {exc}")
    for item in args.param:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            return fail(f"part {part!r}: --param must be NAME=VALUE, not {item!r}")
        params[key.strip()] = value
    try:
        parse_params(part, params)
    except (TypeError, ValueError) as exc:
        return fail(str(exc))
    config = None
    if spec.needs_config:
        if args.config is None:
            return fail(f"part {part!r} needs --config cfg.json (a CoreConfig JSON file)")
        try:
            config = CoreConfig.load(args.config)
        except (OSError, TypeError, ValueError) as exc:
            return fail(f"{args.config}: {exc}")
    elif args.config is not None:
        return fail(f"part {part!r} takes --param/--params, not --config")
    if args.regmap and part not in ("core", "soc"):
        return fail(f"part {part!r} has no register map (--regmap is for core and soc)")
    name = args.name or spec.module
    write_verilog = bool(args.output) or not args.regmap
    out = Path(args.output or ".")
    out_dir, stem = (out.parent, out.stem) if out.suffix == ".v" else (out, name)

    from fixar_hw.flow.export import _atomic_write_text
    from fixar_hw.flow.part_export import _check_destination
    from fixar_hw.soc.csr import register_map

    try:
        if args.regmap:
            _check_destination(Path(args.regmap))
        if write_verilog:
            what = "" if config is None else f" (config id 0x{config.config_id:08x})"
            print(f"exporting {part} as {name}{what} ...", flush=True)
            result = export_part(part, params, out_dir, config=config, name=name, stem=stem,
                                 wrapper=not args.no_wrapper)
            files = [result.verilog, result.vlt] + ([result.wrapper] if result.wrapper else [])
            print(f"wrote {', '.join(str(f) for f in files)}")
    except (TypeError, ValueError) as exc:
        return fail(str(exc))
    except OSError as exc:
        return fail(f"{args.output or '.'}: {exc}")
    if args.regmap:
        regs = Path(args.regmap)
        regs.mkdir(parents=True, exist_ok=True)
        regmap = register_map(config)
        for suffix, text in ((".json", regmap.to_json()), (".h", regmap.to_c_header()),
                             (".md", regmap.to_markdown())):
            _atomic_write_text(regs / f"{name}_regs{suffix}", text)
        print(f"wrote {regs}/{name}_regs.json, .h, .md")
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from fixar_hw.config import CoreConfig
    from fixar_hw.errors import BuildError
    from fixar_hw.flow.build import build

    fail = _failer("build")

    if (args.config is None) == (not args.bringup):
        return fail("give --config FILE or --bringup (one of them)")
    config = None
    if args.config is not None:
        try:
            config = CoreConfig.load(args.config)
        except (OSError, TypeError, ValueError) as exc:
            return fail(f"{args.config}: {exc}")
    out = args.output or os.path.join("build", args.board)
    what = "bring-up top" if config is None else f"config id 0x{config.config_id:08x}"
    if config is not None:
        print(config.summary())
    print(f"building {what} for {args.board} in {out} ...", flush=True)
    try:
        report = build(config, args.board, out, route=not args.no_route, seed=args.seed,
                       baud=args.baud, clock_mhz=args.clock_mhz, timeout=args.timeout,
                       router=args.router)
    except (TypeError, ValueError) as exc:  # DoesNotFit is a ValueError
        return fail(str(exc))
    except BuildError as exc:
        return fail(str(exc), 1)
    print(report.to_markdown())
    print(f"wrote {out}/report.json, {out}/report.md")
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from fixar_hw.apps.search import (
        LOSS_METHODS,
        METHODS,
        format_loss_summary,
        format_summary,
        load_actor,
        load_agent,
        run_loss_search,
        run_search,
        train_actor,
        train_agent,
    )
    from sw_model.search.env import Budget
    from sw_model.search.objective import CostMetric, parse_loss

    fail = _failer("search")

    limits = {"luts": args.budget_luts, "dsps": args.budget_dsps,
              "mem_bits": args.budget_mem_bits, "cycles": args.budget_cycles}
    budgeted = any(v is not None for v in limits.values())
    if args.max_loss is not None and budgeted:
        return fail("give --max-loss or budget limits (--budget-*), not both")
    if args.max_loss is None and not budgeted:
        return fail("give --max-loss, or at least one of --budget-luts, --budget-dsps, "
                    "--budget-mem-bits, --budget-cycles")
    try:
        if args.max_loss is not None:
            max_loss = parse_loss(args.max_loss)
            CostMetric.parse(args.cost)
        else:
            budget = Budget(**limits)
    except (TypeError, ValueError) as exc:
        return fail(str(exc))
    if args.weights is not None and args.train_steps is not None:
        return fail("give --weights or --train-steps, not both")
    if args.critic and args.max_loss is None:
        return fail("--critic needs --max-loss")
    if args.floor and args.max_loss is None:
        return fail("--floor needs --max-loss")
    if args.method == "descent" and args.max_loss is None:
        return fail("--method descent needs --max-loss")
    env = args.env or "pendulum"
    if args.weights is not None:
        try:
            weights, env = (load_agent if args.critic else load_actor)(args.weights, args.hidden)
        except (OSError, TypeError, ValueError) as exc:
            return fail(f"{args.weights}: {exc}")
        if args.env is not None and args.env != env:
            return fail(f"--env {args.env} does not match {args.weights}, an agent for {env}")
    else:
        steps = args.train_steps or 6000
        hidden = args.hidden or [64, 64]
        what = "agent" if args.critic else "actor"
        print(f"training a float64 {env} {what}, hidden {' '.join(map(str, hidden))}, "
              f"{steps} steps, seed {args.seed} ...", flush=True)
        weights = (train_agent if args.critic else train_actor)(
            steps, args.seed, env=env, hidden=hidden, progress=not args.no_progress)
    if args.method == "all":
        methods = LOSS_METHODS if args.max_loss is not None else METHODS
    else:
        methods = (args.method,)
    if args.max_loss is not None:
        try:
            loss_run = run_loss_search(
                weights, max_loss, args.out, cost=args.cost, methods=methods, env=env,
                seed=args.seed, iterations=args.iterations,
                episodes_per_iter=args.episodes_per_iter, evaluations=args.episodes,
                lanes=args.lanes, states=args.states, episodes=args.eval_episodes or 5,
                pool=args.episode_pool, heldout_episodes=args.heldout_episodes,
                recheck=args.recheck, mapping=args.mapping, size=args.size,
                cores=args.cores, incumbents=args.incumbents, moves=args.moves,
                floor=args.floor,
                confidence=args.confidence, critic=args.critic,
                max_critic_error=args.max_critic_error, progress=not args.no_progress)
        except (TypeError, ValueError) as exc:
            return fail(str(exc))
        print(format_loss_summary(loss_run))
        print(f"wrote {args.out}/search.csv, time_to_quality.png, best.json")
        return 0
    try:
        run = run_search(weights, budget, args.out, methods=methods, env=env, seed=args.seed,
                         iterations=args.iterations, episodes_per_iter=args.episodes_per_iter,
                         haq_episodes=args.episodes, lanes=args.lanes, states=args.states,
                         return_episodes=args.eval_episodes or 3, penalty=args.penalty,
                         bonus=args.bonus, mapping=args.mapping, size=args.size,
                         cores=args.cores, quality=args.quality,
                         metric=args.metric, progress=not args.no_progress)
    except (TypeError, ValueError) as exc:
        return fail(str(exc))
    print(format_summary(run))
    print(f"wrote {args.out}/search.csv, cost_vs_quality.png, best.json")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    import math
    import shlex
    import time

    from fixar_hw.flow import sweep

    fail = _failer("sweep")

    if args.scheduler is not None:
        if args.workers is not None:
            return fail("--workers sizes the local process pool; with --scheduler the "
                        "cluster's workers run the points")
        if not sweep.is_scheduler_address(args.scheduler):
            return fail(f"--scheduler must be a Dask scheduler address like "
                        f"tcp://host:8786, not {args.scheduler!r}")
    if args.timeout is not None and not (math.isfinite(args.timeout) and args.timeout > 0):
        return fail(f"--timeout must be a positive number of seconds, not {args.timeout!r}")
    try:
        points, skipped = sweep.grid(
            args.sizes, args.cores, args.precisions, args.boards,
            update_units=args.update_units, formats=args.formats, hidden=tuple(args.hidden),
            batch=args.batch, update_kind=args.update_kind,
            obs_dim=args.obs_dim, act_dim=args.act_dim)
    except (TypeError, ValueError) as exc:
        return fail(str(exc))
    for point, reason in skipped:
        print(f"fixar-hw sweep: skipping {point.board} {point.label}: {reason}",
              file=sys.stderr)
    if not points:
        return fail("no valid point to sweep (every combination was skipped, see above)")

    def words(flag: str, values) -> list[str]:
        return [flag, *map(str, values)]

    argv = ["fixar-hw", "sweep", *words("--sizes", args.sizes), *words("--cores", args.cores),
            *words("--update-units", args.update_units),
            *(["--update-kind", args.update_kind] if args.update_kind != "pipelined" else []),
            *words("--precisions", args.precisions), *words("--formats", args.formats),
            *words("--boards", args.boards),
            *words("--hidden", args.hidden), "--batch", str(args.batch)]
    if (args.obs_dim, args.act_dim) != (3, 1):
        argv += ["--obs-dim", str(args.obs_dim), "--act-dim", str(args.act_dim)]
    argv += ["--fmax"] * args.fmax + ["--out", str(args.out)]
    command = shlex.join(argv)
    where = f"Dask scheduler {args.scheduler}" if args.scheduler else (
        f"{args.workers or os.cpu_count() or 1} local processes")
    print(f"sweeping {len(points)} points on {where} ...", flush=True)

    def progress(done: int, total: int, row: dict) -> None:
        name = f"{row['board']} {sweep.SweepPoint.from_row(row).label}"
        if row.get("error"):
            what = "ERROR " + str(row["error"]).splitlines()[0][:100]
        else:
            when = "cached" if row.get("cached") else f"{row['eval_s']:.0f} s"
            what = (f"{row['lut']:,} LUT, {'fits' if row['fits'] else 'does NOT fit'}, "
                    f"{row['train_samples_per_s']:,.0f} samples/s ({when})")
        print(f"  [{done}/{total}] {name}: {what}", flush=True)

    start = time.perf_counter()
    try:
        rows = sweep.run_sweep(points, executor=args.scheduler or "process",
                               workers=args.workers, fmax=args.fmax, timeout=args.timeout,
                               cache=not args.no_cache, progress=progress)
    except ImportError as exc:  # a Dask scheduler without the 'dask' extra
        return fail(str(exc))
    except OSError as exc:
        return fail(f"cannot reach the Dask scheduler {args.scheduler}: {exc}")
    except (TypeError, ValueError) as exc:
        return fail(str(exc))
    seconds = time.perf_counter() - start
    paths = sweep.write_report(rows, args.out, command=command)
    counts = sweep.summary(rows)
    print()
    print(sweep.format_table(rows))
    print(f"{counts['total']} points: {counts['fit']} fit, {counts['errors']} failed, "
          f"{counts['cached']} from the cache; {seconds:.1f} s")
    print(f"wrote {', '.join(str(p) for p in paths)}")
    print(f"reproduce: {command}")
    return 1 if counts["errors"] else 0


def _add_demo_parser(sub: argparse._SubParsersAction) -> None:
    """The ``demo`` sub-command and its arguments."""
    demo = sub.add_parser(
        "demo", help="train a QAT DDPG agent, quantize it, run it bit-exactly on the simulated "
                     "core and project board figures")
    demo.add_argument("--quick", action="store_true",
                      help="tiny network, 3 episodes, 2 core steps, no synthesis (CI)")
    demo.add_argument("--episodes", type=_positive_int,
                      help="training episodes of 200 steps (default 50, quick 3)")
    demo.add_argument("--seed", type=_nonneg_int, default=0, help="random seed (default 0)")
    demo.add_argument("--board", default="ulx3s-85f",
                      help="board to synthesize for (default ulx3s-85f)")
    demo.add_argument("--synth", action=argparse.BooleanOptionalAction, default=None,
                      help="synthesize for the board (default: yes, except with --quick)")
    demo.add_argument("--fmax", action="store_true",
                      help="also place the design for an Fmax estimate (slow)")
    demo.add_argument("--transport", choices=("sim", "verilator"),
                      help="where the core runs: Amaranth's simulator or Verilator (default: "
                           "sim with --quick, else verilator when installed)")
    demo.add_argument("--vcd", metavar="FILE",
                      help="write a VCD waveform of the core's run in Amaranth's simulator "
                           "(implies --transport sim)")
    demo.add_argument("--trace", metavar="FILE.fst",
                      help="write an FST waveform of the core's run in Verilator (implies "
                           "--transport verilator; a tracing build of its own)")
    demo.add_argument("--out", default="demo_report",
                      help="output directory (default demo_report)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    demo.set_defaults(func=_cmd_demo)


def _add_prove_parser(sub: argparse._SubParsersAction) -> None:
    """The ``prove`` sub-command and its arguments."""
    prove = sub.add_parser("prove", help="run SymbiYosys proofs")
    prove.add_argument("names", nargs="*", metavar="NAME",
                       help="proof names or groups (e.g. mac.contract); all if none")
    prove.add_argument("--list", action="store_true", help="list the proofs and exit")
    prove.add_argument("--quick", action="store_true",
                       help="skip the slow proofs (minutes each)")
    prove.add_argument("--jobs", type=_positive_int, default=os.cpu_count() or 1,
                       help="proofs run at once (default: CPU count)")
    prove.set_defaults(func=_cmd_prove)


def _add_train_parser(sub: argparse._SubParsersAction) -> None:
    """The ``train`` sub-command and its arguments."""
    from sw_model.arch.ddpg_config import PRECISIONS
    from sw_model.arch.engine import UPDATE_KINDS

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
    tr.add_argument("--noise-theta", type=float,
                    help="exploration noise mean reversion in (0, 1]: 1 is independent "
                         "Gaussian noise (the default), 0.15 an Ornstein-Uhlenbeck process "
                         "(float precisions)")
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
    tr.add_argument("--core-update-units", type=_positive_int, default=None, metavar="N",
                    help="sim/verilator backends: update units, a power of two up to "
                         "size**2 (default min(size**2, 4))")
    tr.add_argument("--core-update-kind", choices=UPDATE_KINDS, default="pipelined",
                    help="sim/verilator backends: pipelined update units (one element a "
                         "cycle) or the compact iterative ones (default pipelined)")
    tr.add_argument("--vcd", metavar="FILE",
                    help="--backend sim: write a VCD waveform of the core's whole run")
    tr.add_argument("--trace", metavar="FILE.fst",
                    help="--backend verilator: write an FST waveform of the core's whole run "
                         "(a tracing build of its own)")
    tr.set_defaults(func=_cmd_train)


def _add_export_parser(sub: argparse._SubParsersAction) -> None:
    """The ``export`` sub-command and its arguments."""
    from fixar_hw.flow.part_export import PARTS

    ex = sub.add_parser(
        "export", help="write the Verilog of a part (default: the core), its documented ports, "
                       "a wrapper and Verilator waivers",
        description="Write <stem>.v (the part's module, with a header documenting every port "
                    "and payload field), <stem>_wrap.v (module <name>_wrap: one port per "
                    "payload field) and <stem>.vlt (Verilator waivers: verilator-cli "
                    "--lint-only -Wall <stem>.vlt <stem>.v reports no warning).")
    ex.add_argument("part", nargs="?", default="core", metavar="PART",
                    help=f"one of {', '.join(PARTS)} (default core)")
    ex.add_argument("--config", metavar="JSON",
                    help="array, engine, core, soc: a CoreConfig JSON file "
                         "(fixar_hw.config.CoreConfig.to_json)")
    ex.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="a parameter of the part, e.g. a_fmt=s12.8 or max_terms=16 "
                         "(repeatable; overrides --params)")
    ex.add_argument("--params", metavar="JSON", help="the part's parameters as a JSON object")
    ex.add_argument("-o", "--output", metavar="PATH",
                    help="the Verilog file to write (FILE.v), or a directory for <name>.v "
                         "(default: the current directory; with only --regmap, no Verilog)")
    ex.add_argument("--name", help="module name (default: the part's, e.g. fixed_mac, "
                                   "fixar_core)")
    ex.add_argument("--no-wrapper", action="store_true",
                    help="do not write the <stem>_wrap.v wrapper")
    ex.add_argument("--regmap", metavar="DIR",
                    help="core, soc: also write <name>_regs.json, .h and .md to DIR")
    ex.set_defaults(func=_cmd_export)


def _add_build_parser(sub: argparse._SubParsersAction) -> None:
    """The ``build`` sub-command and its arguments."""
    from fixar_hw.platforms.boards import BOARDS

    bu = sub.add_parser("build", help="build a bitstream for a board and report resources "
                                      "and Fmax")
    bu.add_argument("--board", required=True, choices=sorted(BOARDS), help="target board")
    bu.add_argument("--config", metavar="JSON", help="a CoreConfig JSON file")
    bu.add_argument("--bringup", action="store_true",
                    help="build the bring-up top (UART bridge and memory, no core)")
    bu.add_argument("-o", "--output", metavar="DIR", help="build directory (default build/BOARD)")
    bu.add_argument("--no-route", action="store_true",
                    help="stop after placement (placement Fmax estimate, no bitstream)")
    bu.add_argument("--seed", type=_positive_int, default=1, help="placer seed (default 1)")
    bu.add_argument("--router", choices=("router1", "router2"),
                    help="nextpnr's router (default: nextpnr's, router1); router2 is meant for "
                         "congested designs")
    bu.add_argument("--baud", type=_positive_int, default=115200,
                    help="UART baud rate (default 115200)")
    bu.add_argument("--clock-mhz", type=float, metavar="MHZ",
                    help="run clock made by the board's PLL (ECP5 boards; default: the "
                         "board's oscillator)")
    bu.add_argument("--timeout", type=float, metavar="S", help="seconds allowed to each tool")
    bu.set_defaults(func=_cmd_build)


#: The environments ``fixar-hw search`` trains on and searches over: those with a held-out
#: lattice (:data:`sw_model.search.evaluators.START_BOXES`, a heavier import than the parser's).
SEARCH_ENVS = ("pendulum", "mountain_car_continuous")
#: PPO's action spaces under ``--max-loss`` (:data:`sw_model.search.ppo.MOVES`, the default
#: first).
SEARCH_MOVES = ("local", "grid")


def _add_search_parser(sub: argparse._SubParsersAction) -> None:
    """The ``search`` sub-command and its arguments."""
    se = sub.add_parser("search", help="search per-layer precisions of an actor: the cheapest "
                                       "within a loss, or the best under a budget")
    se.add_argument("--weights", metavar="FILE.fximg",
                    help="a trained agent's weight image (fixar-hw train); without it, a "
                         "float actor is trained first")
    se.add_argument("--train-steps", type=_positive_int, metavar="N",
                    help="steps to train the float actor (default 6000)")
    se.add_argument("--env", choices=SEARCH_ENVS, default=None,
                    help="without --weights, the environment to train on (default pendulum); "
                         "with --weights, the image's environment, which must match")
    se.add_argument("--hidden", type=_positive_int, nargs="+", metavar="N",
                    help="hidden sizes of the trained networks (default 64 64), or those the "
                         "--weights networks must have")
    se.add_argument("--max-loss", metavar="LOSS",
                    help="minimise --cost while the held-out return stays within this loss "
                         "of the float actor's (a fraction or a percentage, e.g. 2%%)")
    se.add_argument("--cost", default="luts", metavar="METRIC",
                    help="with --max-loss, the cost to minimise: luts, dsps, mem_bits, cycles "
                         "or a weighted sum such as luts+30*dsps (default luts)")
    se.add_argument("--critic", action="store_true",
                    help="with --max-loss, search the actor's and the critic's layers together "
                         "(the critic's value error must also stay within --max-critic-error)")
    se.add_argument("--floor", action="store_true",
                    help="with --max-loss, also find each layer's floor: the cheapest choice "
                         "that meets the bound with the other layers at 16/16 (a bound on what "
                         "a search can find only where no configuration undercuts it)")
    se.add_argument("--max-critic-error", default="2%", metavar="ERROR",
                    help="with --critic, the bound of the critic's relative RMS value error on "
                         "the states the float actor visits (default 2%%)")
    se.add_argument("--recheck", type=_positive_int, default=5, metavar="N",
                    help="with --max-loss, configurations per method re-checked on the "
                         "held-out episodes (default 5)")
    se.add_argument("--heldout-episodes", type=_positive_int, default=60, metavar="N",
                    help="with --max-loss, held-out episodes (default 60)")
    se.add_argument("--incumbents", type=_positive_int, default=1, metavar="N",
                    help="with --max-loss, PPO restarts from the N best uniform configurations "
                         "(default 1)")
    se.add_argument("--moves", choices=SEARCH_MOVES, default=SEARCH_MOVES[0],
                    help="with --max-loss, PPO's actions: each layer's move from the best "
                         "configuration found so far, one width step down, kept or up "
                         "('local', the default), or each layer's configuration on the whole "
                         "grid ('grid')")
    se.add_argument("--confidence", type=float, default=2.0, metavar="Z",
                    help="with --max-loss, a configuration meets the loss held out only if "
                         "its held-out loss plus Z standard errors does (default 2; 0 "
                         "compares the loss itself)")
    se.add_argument("--episode-pool", type=_positive_int, default=50, metavar="N",
                    help="with --max-loss, the pool of seeded episodes the search rotates "
                         "through (default 50)")
    se.add_argument("--budget-luts", type=float, metavar="N", help="LUT limit")
    se.add_argument("--budget-dsps", type=float, metavar="N", help="DSP limit")
    se.add_argument("--budget-mem-bits", type=int, metavar="N", help="weight memory bit limit")
    se.add_argument("--budget-cycles", type=int, metavar="N", help="cycles per inference limit")
    se.add_argument("--method", choices=("ppo", "haq", "random", "uniform", "descent", "all"),
                    default="ppo",
                    help="search method (default ppo); descent (greedy, from the best uniform "
                         "configurations) only with --max-loss; all: every method the mode has")
    se.add_argument("--iterations", type=_positive_int, default=30,
                    help="PPO iterations (default 30)")
    se.add_argument("--episodes-per-iter", type=_positive_int, default=32,
                    help="PPO episodes per iteration (default 32)")
    se.add_argument("--episodes", type=_positive_int,
                    help="HAQ and random-search configurations (default: as many as PPO "
                         "evaluates)")
    se.add_argument("--seed", type=_nonneg_int, default=0, help="random seed (default 0)")
    se.add_argument("--lanes", type=_positive_int, default=16,
                    help="cost model lanes: per engine (shared) or in all (pipelined); "
                         "default 16")
    se.add_argument("--mapping", choices=("pipelined", "shared", "engine"),
                    default="pipelined",
                    help="cost model: one engine per layer (pipelined), one per kind "
                         "(shared), or the training engine's PE array (engine: DSPs, memory "
                         "bits and cycles, no LUTs); default pipelined")
    se.add_argument("--size", type=_positive_int, default=16,
                    help="engine mapping: PE grid size (default 16)")
    se.add_argument("--cores", type=_positive_int, default=2,
                    help="engine mapping: PE grids (default 2)")
    se.add_argument("--quality", choices=("return", "proxy"), default="return",
                    help="search quality: the return of --eval-episodes seeded episodes, or "
                         "the action-error proxy (default return)")
    se.add_argument("--metric", choices=("mse", "rel"), default="mse",
                    help="proxy metric (default mse)")
    se.add_argument("--states", type=_positive_int, default=256,
                    help="calibration states of the proxy (default 256)")
    se.add_argument("--eval-episodes", type=_positive_int,
                    help="episodes of each real-return evaluation (default 3; with "
                         "--max-loss 5, rotating through --episode-pool)")
    se.add_argument("--penalty", type=float, default=2.0,
                    help="reward penalty per fraction over budget (default 2)")
    se.add_argument("--bonus", type=float, default=0.0,
                    help="reward bonus per fraction of budget unused (default 0)")
    se.add_argument("--out", default="runs/search", help="output directory (default runs/search)")
    se.add_argument("--no-progress", action="store_true", help="no progress bars")
    se.set_defaults(func=_cmd_search)


def _add_sweep_parser(sub: argparse._SubParsersAction) -> None:
    """The ``sweep`` sub-command and its arguments."""
    from fixar_hw.flow.sweep import PRECISIONS as SWEEP_PRECISIONS
    from fixar_hw.platforms.boards import BOARDS
    from sw_model.arch.ddpg_config import FORMAT_SETS
    from sw_model.arch.engine import UPDATE_KINDS

    sw = sub.add_parser("sweep", help="sweep PE grid, cores, precision and board: resources, "
                                      "Fmax, projected throughput and a Pareto plot")
    sw.add_argument("--sizes", type=_positive_int, nargs="+", default=[2, 4], metavar="S",
                    help="PE grid sides, powers of two (default 2 4)")
    sw.add_argument("--cores", type=_positive_int, nargs="+", default=[1], metavar="N",
                    help="AAP cores (default 1)")
    sw.add_argument("--update-units", type=_positive_int, nargs="+", default=[1], metavar="N",
                    help="update units, powers of two up to size**2 (default 1)")
    sw.add_argument("--update-kind", choices=UPDATE_KINDS, default="pipelined",
                    help="the update units' kind: pipelined (one element a cycle) or "
                         "iterative (compact; a few bits a cycle) (default pipelined)")
    sw.add_argument("--precisions", choices=SWEEP_PRECISIONS, nargs="+", default=["fixed"],
                    metavar="P", help=f"agent precisions: {', '.join(SWEEP_PRECISIONS)} "
                                      f"(default fixed; they share one datapath)")
    sw.add_argument("--formats", choices=list(FORMAT_SETS), nargs="+", default=["fixar32"],
                    metavar="F", help=f"format sets: {', '.join(FORMAT_SETS)} (default "
                                      f"fixar32; narrow16 makes every format 16 bits wide)")
    sw.add_argument("--boards", choices=sorted(BOARDS), nargs="+", default=["ulx3s-85f"],
                    metavar="BOARD", help=f"boards: {', '.join(sorted(BOARDS))} "
                                          f"(default ulx3s-85f)")
    sw.add_argument("--hidden", type=_positive_int, nargs="+", default=[16, 16], metavar="N",
                    help="hidden layer sizes of both networks (default 16 16)")
    sw.add_argument("--batch", type=_positive_int, default=8,
                    help="transitions per training step (default 8)")
    sw.add_argument("--obs-dim", type=_positive_int, default=3,
                    help="observation size (default 3, Pendulum)")
    sw.add_argument("--act-dim", type=_positive_int, default=1,
                    help="action size (default 1, Pendulum)")
    sw.add_argument("--fmax", action="store_true",
                    help="also place each fitting design for a post-placement Fmax estimate")
    sw.add_argument("--workers", type=_positive_int,
                    help="processes of the local pool (default: CPU count)")
    sw.add_argument("--scheduler", metavar="ADDRESS",
                    help="run on a Dask distributed cluster (e.g. tcp://host:8786) instead of "
                         "the local pool")
    sw.add_argument("--timeout", type=float, metavar="S",
                    help="seconds allowed to each tool of an evaluation")
    sw.add_argument("--no-cache", action="store_true",
                    help="evaluate every point again (the build cache is still used)")
    sw.add_argument("--out", default="runs/sweep", help="output directory (default runs/sweep)")
    sw.set_defaults(func=_cmd_sweep)


def _cmd_testbench(args: argparse.Namespace) -> int:
    from fixar_hw.config import CoreConfig

    fail = _failer("testbench")
    try:
        config = CoreConfig.load(args.config)
    except (OSError, TypeError, ValueError) as exc:
        return fail(f"{args.config}: {exc}")
    from fixar_hw.sim.verilog_tb import write_kit

    print(f"writing the testbench kit of config id 0x{config.config_id:08x} to {args.dir} ...",
          flush=True)
    try:
        kit = write_kit(args.dir, config, image=args.weights, seed=args.seed,
                        wait_states=args.wait_states)
    except OSError as exc:
        return fail(f"{args.weights or args.dir}: {exc}")
    except (TypeError, ValueError) as exc:
        return fail(str(exc))
    print(f"wrote {', '.join(f.name for f in kit.files)}")
    print(f"golden action: {' '.join(str(int(a)) for a in kit.action)}")
    print(f"run it: make -C {args.dir}")
    return 0


def _add_testbench_parser(sub: argparse._SubParsersAction) -> None:
    """The ``testbench`` sub-command and its arguments."""
    tb = sub.add_parser(
        "testbench",
        help="write a plain-Verilog testbench kit: the core, one action and one training "
             "step, the golden results and a Makefile",
        description="Write into DIR the exported core, the plain-Verilog testbench, host "
                    "scripts and memory images of one noisy action and one training step, "
                    "the golden model's results and a Makefile. `make -C DIR` builds it with "
                    "verilator-cli, runs both and compares (needs make, Verilator and python3).")
    tb.add_argument("dir", metavar="DIR", help="the folder to write (created if missing)")
    tb.add_argument("--config", required=True, metavar="JSON",
                    help="a CoreConfig JSON file (a fixed-point agent, Wishbone control port)")
    tb.add_argument("--weights", metavar="FXIMG",
                    help="start from this weight image (default: random networks from --seed)")
    tb.add_argument("--seed", type=_nonneg_int, default=0,
                    help="seeds the networks, the observation, the batch and the noise "
                         "(default 0)")
    tb.add_argument("--wait-states", type=_nonneg_int, default=0, metavar="N",
                    help="cycles the testbench's memory waits before answering (0 to 64, "
                         "default 0)")
    tb.set_defaults(func=_cmd_testbench)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``fixar-hw``."""
    parser = argparse.ArgumentParser(
        prog="fixar-hw",
        description="Fixed-point and mixed-scheme DRL training accelerator generators.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_demo_parser(sub)
    _add_prove_parser(sub)
    _add_train_parser(sub)
    _add_export_parser(sub)
    _add_build_parser(sub)
    _add_search_parser(sub)
    _add_sweep_parser(sub)
    _add_testbench_parser(sub)
    return parser


def _in_fresh_thread(func: Callable[[], int]) -> int:
    """Run ``func`` in a new thread and return its result (or raise its exception).

    Why: CPython 3.11 keeps Python frames on per-thread stack chunks of 16 KiB and frees a
    chunk as soon as its first frame returns. When a hot loop's calls sit on a chunk boundary
    (the Amaranth simulator's, at the depth the console script reaches), every call maps and
    unmaps a chunk: 20,000 ``mmap``/``munmap`` pairs a second, and ``fixar-hw demo --quick``
    took 5 to 9 minutes instead of 40 seconds. A fresh thread starts from an empty stack, so
    the depth is the same however ``main`` is called (console script, ``python -m``, tests).
    """
    result: list[int] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(func())
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name="fixar-hw", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fixar-hw`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return _in_fresh_thread(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
