"""The exported :class:`~fixar_hw.soc.core.FixarCore` compiled by Verilator, as a driver transport.

:class:`VerilatorTransport` exports the core of a :class:`~fixar_hw.config.CoreConfig` to Verilog
(:func:`core_verilog`: Amaranth's bundled Yosys, cached on disk by configuration and source
digest), compiles it with Verilator together with a small C++ harness
(``fixar_hw/sim/cpp/core_lib.cpp``) into a shared library
(cached under ``~/.cache/fixar-hw/verilator-lib/``), and loads it in process with :mod:`ctypes`.
The harness owns the clock: every control-register access is a full Wishbone B4 pipelined
transaction on the ``csr__*`` port, cycle by cycle, and the ``dma__*`` master is served by an
external memory modelled in C++ with the semantics of :func:`fixar_hw.sim.testing.wishbone_slave`
(requests accepted on ``cyc & stb & ~stall``, answered in order after the wait states, ``err``
for the chosen addresses, outstanding requests dropped when ``cyc`` falls). A
:class:`~fixar_hw.host.driver.FixarDriver` on it runs the same programs as on
:class:`~fixar_hw.sim.transport.SimTransport`, a few hundred times faster (measured here for
the small test build at ``-O2``: about 240 k cycles/s against about 600 in Amaranth's
simulator); the first build of a configuration takes one to two minutes.

With ``trace=PATH`` the transport writes every signal of the core to an FST file (GTKWave and
Surfer read it; ``fst2vcd`` converts it) from the first cycle after reset until
:meth:`VerilatorTransport.close`. Tracing needs a build of its own, with Verilator's
``--trace-fst`` (cached beside the plain one, which stays untraced and fast). The edge that ends
cycle ``N`` (as :attr:`VerilatorTransport.cycles` and :meth:`VerilatorTransport.write_cycle`
count them) is at ``10 * N - 5`` ns, as in :class:`~fixar_hw.sim.transport.SimTransport`'s VCD.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from fixar_hw.config import CoreConfig
from fixar_hw.errors import ToolError
from fixar_hw.flow.cache import build_lock, cache_dir, design_digest
from fixar_hw.flow.core_export import export_core
from fixar_hw.flow.export import (
    _atomic_write_text,
    _compiler_version,
    _make_flags,
    _remove_stale_staging,
    _require_verilator,
    _verilator_env,
    _verilator_version,
    verilator_available,
)
from fixar_hw.host.driver import Transport
from fixar_hw.sim._cpp import render
from fixar_hw.tools import run_tool, tool_failure

__all__ = ["TOP", "VerilatorTransport", "build_library", "core_verilog"]

#: The exported module's name.
TOP = "fixar_core"

_LIB_CACHE_FORMAT = 1
_LIB_NAME = f"lib{TOP}.so"
_BUILD_LOCK = threading.Lock()


def _mangle(name: str) -> str:
    """The C++ member of Verilog port ``name`` (Verilator escapes ``__``)."""
    return name.replace("__", "___05F")


# --- the Verilog export, cached --------------------------------------------------------------

def _design_digest() -> str:
    """A digest of the Python sources the exported core depends on, and Amaranth's version."""
    return design_digest()


def _cache_base() -> Path:
    return cache_dir()


def core_verilog(config: CoreConfig) -> str:
    """The Verilog of ``FixarCore(config)`` as module :data:`TOP`, with its documenting header.

    The text is cached under ``~/.cache/fixar-hw/verilog/`` by the configuration's JSON and a
    digest of the generator sources, so only the first call for a build pays for the export.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`~fixar_hw.config.CoreConfig`.
    """
    if not isinstance(config, CoreConfig):
        raise TypeError(f"config must be a CoreConfig, not {config!r}")
    key = hashlib.sha256(f"{TOP}\n{config.to_json()}\n{_design_digest()}".encode()).hexdigest()
    path = _cache_base() / "verilog" / f"core-{key}.v"
    if path.is_file():
        return path.read_text(encoding="utf-8")
    from fixar_hw.soc.core import FixarCore

    core = FixarCore(config)
    text = export_core(core, TOP)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_text(path, text)
    return text


# --- the C++ harness -------------------------------------------------------------------------

def _harness_cpp() -> str:
    """``cpp/core_lib.cpp`` with the module's name and its Wishbone port members filled in."""
    ports = {f"{bus.upper()}_{sig.upper()}": _mangle(f"{bus}__{sig}")
             for bus in ("csr", "dma")
             for sig in ("adr", "dat_w", "dat_r", "sel", "cyc", "stb", "we", "ack", "err",
                         "stall")}
    return render("core_lib.cpp", {"TOP": TOP, **ports})


# --- the shared library ----------------------------------------------------------------------

#: The two functions of lz4's stable API that Verilator's FST writer calls.
_LZ4_DECLARATIONS = """\
// The declarations of lz4.h that Verilator's FST writer uses (lz4's stable API), for a system
// with the lz4 runtime library but without its development files.
#pragma once
extern "C" {
int LZ4_compressBound(int inputSize);
int LZ4_compress_default(const char* src, char* dst, int srcSize, int dstCapacity);
}
"""


def _has_header(header: str, workdir: Path) -> bool:
    """Whether the C++ compiler finds ``<header>`` (a probe file is left in ``workdir``)."""
    compiler = shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        return False
    probe = workdir / "has_header.cpp"
    probe.write_text(f"#include <{header}>\n", encoding="utf-8")
    result = run_tool([compiler, "-E", "-o", os.devnull, probe], cwd=workdir, timeout=60,
                      what=f"c++ -E (looking for {header})", check=False)
    return result.returncode == 0


def _shared_library(soname: str) -> Path | None:
    """The path of the runtime library ``soname`` (from ``ldconfig -p``), or None."""
    ldconfig = shutil.which("ldconfig") or next(
        (p for p in ("/sbin/ldconfig", "/usr/sbin/ldconfig") if os.path.exists(p)), None)
    if ldconfig is None:
        return None
    result = run_tool([ldconfig, "-p"], cwd=None, timeout=60, what="ldconfig -p", check=False)
    for line in result.stdout.splitlines():
        name, _, path = line.strip().partition(" => ")
        if name.split(" ", 1)[0] == soname and os.path.exists(path.strip()):
            return Path(path.strip())
    return None


def _fst_flags(workdir: Path) -> list[str]:
    """Verilator flags for an FST-tracing build. Verilator's FST writer needs ``lz4.h`` and
    ``-llz4``; where only lz4's runtime library is installed, a folder in ``workdir`` supplies
    the two declarations it uses and a link name for the runtime library."""
    flags = ["--trace-fst", "--timescale", "1ns/1ns", "-CFLAGS", "-DFX_TRACE"]
    if _has_header("lz4.h", workdir):
        return flags
    runtime = _shared_library("liblz4.so.1")
    if runtime is None:
        raise ToolError("FST tracing needs the lz4 library (Debian: liblz4-1, or liblz4-dev), "
                        "which is not installed")
    shim = workdir / "lz4"
    shim.mkdir(exist_ok=True)
    (shim / "lz4.h").write_text(_LZ4_DECLARATIONS, encoding="utf-8")
    (shim / "liblz4.so").symlink_to(runtime)
    return [*flags, "-CFLAGS", f"-I{shim.resolve()}", "-LDFLAGS", f"-L{shim.resolve()}"]


def _build_library(workdir: Path, verilog: str, cflags: Sequence[str], timeout: float,
                   trace: bool = False) -> Path:
    """Verilate the core with the harness in ``workdir``; returns the linked ``.so``."""
    (workdir / f"{TOP}.v").write_text(verilog, encoding="utf-8")
    (workdir / "harness.cpp").write_text(_harness_cpp(), encoding="utf-8")
    tracing = _fst_flags(workdir) if trace else []
    command = [*_require_verilator(), "--cc", "--exe", "--build", "-j", "2", "-Wno-fatal",
               "--top-module", TOP, "-O3", "--Mdir", "obj_dir", *_make_flags(), *tracing,
               "-CFLAGS", "-fPIC", "-LDFLAGS", "-shared", "-o", _LIB_NAME,
               f"{TOP}.v", "harness.cpp"]
    for flag in cflags:
        command += ["-CFLAGS", flag]
    what = f"Verilator build of {TOP!r} in {workdir}"
    result = run_tool(command, cwd=workdir, env=_verilator_env(), timeout=timeout, what=what,
                      check=False)
    (workdir / "build.log").write_text(f"{result.stdout}\n{result.stderr}", encoding="utf-8")
    library = workdir / "obj_dir" / _LIB_NAME
    if result.returncode != 0 or not library.is_file():
        raise tool_failure(what, result)
    return library


def build_library(config: CoreConfig, *, cflags: Sequence[str] = ("-O2",),
                  timeout: float = 3600, trace: bool = False) -> Path:
    """The path of the harness library for ``config``, built first if it is not cached.

    ``trace=True`` builds (and caches separately) the variant that can write FST waveforms
    (Verilator's ``--trace-fst``); it runs slower even while no trace is open.

    The build runs in a temporary directory under ``~/.cache/fixar-hw/verilator-lib/`` and is
    renamed into place (a directory named by a SHA-256 of the Verilog, the harness, the flags
    and the tool versions) only once it succeeded, so concurrent builders are safe and a failed
    build leaves nothing behind.

    Raises
    ------
    RuntimeError
        If Verilator or the C++ compiler is missing, or the build fails.
    """
    verilog = core_verilog(config)
    cflags = tuple(cflags)
    payload = "\n".join([str(_LIB_CACHE_FORMAT), verilog, _harness_cpp(), repr(cflags),
                         _verilator_version(), _compiler_version()]
                        + (["trace-fst"] if trace else []))
    key = hashlib.sha256(payload.encode()).hexdigest()
    return _cached_build("verilator-lib", key, f"obj_dir/{_LIB_NAME}",
                         lambda workdir: _build_library(workdir, verilog, cflags, timeout,
                                                        bool(trace)))


def _cached_build(kind: str, key: str, product: str, build: Callable[[Path], object]) -> Path:
    """``~/.cache/fixar-hw/<kind>/<key>/<product>``, made first by ``build(workdir)`` in a
    temporary directory that is renamed into place once it succeeded (keeping only the product
    and ``build.log``: the objects and precompiled headers take hundreds of megabytes)."""
    root = _cache_base() / kind
    final = root / key
    target = final / product
    if target.is_file():
        return target
    with _BUILD_LOCK, build_lock(root, key):
        if target.is_file():  # built by another thread or process while this one waited
            return target
        root.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(root)
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".build-{key[:16]}-", dir=root))
        try:
            build(staging)
            for path in sorted(staging.rglob("*"), reverse=True):  # keep the product, the log
                if path.is_file() and path not in (staging / product, staging / "build.log"):
                    path.unlink()
            try:
                os.rename(staging, final)
            except OSError:
                if not target.is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


_LIBRARIES: dict[Path, ctypes.CDLL] = {}


def _load(path: Path) -> ctypes.CDLL:
    if path in _LIBRARIES:
        return _LIBRARIES[path]
    lib = ctypes.CDLL(str(path))
    vp, u32, u64 = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint64
    p32, p64 = ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_uint64)
    for name, restype, argtypes in (
            ("fx_create", vp, [u32, u32, p64, u32]),
            ("fx_destroy", None, [vp]),
            ("fx_csr_read", u32, [vp, u32, ctypes.POINTER(ctypes.c_int)]),
            ("fx_csr_write", ctypes.c_int, [vp, u32, u32]),
            ("fx_mem_write", None, [vp, u64, u32, p32]),
            ("fx_mem_read", None, [vp, u64, u32, p32]),
            ("fx_idle", None, [vp, u64]),
            ("fx_cycles", u64, [vp]),
            ("fx_write_cycle", ctypes.c_int64, [vp, u64]),
            ("fx_trace_open", ctypes.c_int, [vp, ctypes.c_char_p]),
            ("fx_trace_close", None, [vp])):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    _LIBRARIES[path] = lib
    return lib


# --- the transport ---------------------------------------------------------------------------

def _non_negative(value: object, name: str, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < 0 or (hi is not None and value > hi):
        where = "non-negative" if hi is None else f"from 0 to {hi}"
        raise ValueError(f"{name} must be {where}, not {value!r}")
    return value


class VerilatorTransport(Transport):
    """A :class:`~fixar_hw.soc.core.FixarCore` exported to Verilog and compiled by Verilator, in
    process (see the module docs).

    Parameters
    ----------
    config : CoreConfig
        The build (Wishbone control port).
    wait_states : int
        Extra cycles before the DMA port's memory answers a request (0: the next cycle).
    seed : int
        0: every request waits exactly ``wait_states`` cycles and ``stall`` is never raised.
        Otherwise each request waits a number of cycles drawn uniformly from
        ``0 .. wait_states`` and ``stall`` is raised on about a quarter of the cycles, both
        from a xorshift32 generator seeded with ``seed`` (reproducible).
    error_addrs : sequence of int
        Bus word addresses the memory answers with ``err`` (a write there is not performed).
    cflags : sequence of str
        C++ compiler flags of the build.
    trace : path, optional
        Write an FST file (its name ends in ``.fst``) of every signal here, from the first
        cycle after reset until :meth:`close` (with the tracing build, see the module docs).

    Attributes
    ----------
    config : CoreConfig
    library : pathlib.Path
        The loaded shared library.
    trace : str or None
        The FST file being written.

    Raises
    ------
    TypeError, ValueError
        For a bad parameter.
    OSError
        If the FST file cannot be created.
    RuntimeError
        If Verilator or the compiler is missing or the build fails.
    """

    def __init__(self, config: CoreConfig, *, wait_states: int = 0, seed: int = 0,
                 error_addrs: Sequence[int] = (), cflags: Sequence[str] = ("-O2",),
                 trace: str | os.PathLike[str] | None = None) -> None:
        if not isinstance(config, CoreConfig):
            raise TypeError(f"config must be a CoreConfig, not {config!r}")
        if config.csr_bus != "wishbone":
            raise ValueError(f"config.csr_bus must be 'wishbone' for VerilatorTransport, not "
                             f"{config.csr_bus!r}")
        _non_negative(wait_states, "wait_states", 1 << 20)
        _non_negative(seed, "seed", 0xFFFFFFFF)
        if isinstance(error_addrs, str | bytes):
            raise TypeError(f"error_addrs must be a sequence of integers, not {error_addrs!r}")
        limit = (1 << config.dma_addr_width) - 1
        errors = [_non_negative(a, "error_addrs entry", limit) for a in error_addrs]
        if trace is not None and not isinstance(trace, str | os.PathLike):
            raise TypeError(f"trace must be a path, not {trace!r}")
        if trace is not None and not os.fspath(trace).endswith(".fst"):
            raise ValueError(f"trace must name an .fst file, not {os.fspath(trace)!r}")
        self.config = config
        self.wait_states, self.seed, self.error_addrs = wait_states, seed, tuple(errors)
        self.trace = None if trace is None else os.fspath(trace)
        self._handle = None
        if self.trace is not None:
            with open(self.trace, "wb"):  # an unwritable path fails here, before the build
                pass
        self.library = build_library(config, cflags=cflags, trace=self.trace is not None)
        self._lib = _load(self.library)
        array = (ctypes.c_uint64 * max(len(errors), 1))(*errors)
        self._handle = self._lib.fx_create(wait_states, seed, array, len(errors))
        self._addr_limit = 1 << config.dma_addr_width
        if self.trace is not None and \
                self._lib.fx_trace_open(self._handle, os.fsencode(self.trace)) != 1:
            self.close()
            raise OSError(f"cannot write the FST trace {self.trace!r}")

    @staticmethod
    def available() -> bool:
        """Whether Verilator (``verilator-cli``) and a C++ compiler are installed."""
        return (shutil.which("g++") is not None or shutil.which("c++") is not None) and \
            verilator_available()

    def _live(self):
        if self._handle is None:
            raise RuntimeError("the VerilatorTransport is closed")
        return self._handle

    @property
    def cycles(self) -> int:
        """Clock cycles simulated since reset."""
        return int(self._lib.fx_cycles(self._live()))

    def _check(self, ok: int, kind: str, offset: int) -> None:
        if ok < 0:
            raise TimeoutError(f"control-port {kind} of word 0x{offset:x} was never answered")
        if ok == 0:
            raise OSError(f"control-port {kind} of word 0x{offset:x} answered with a bus error")

    def csr_read(self, offset: int) -> int:
        _non_negative(offset, "offset", 0xFFFFFFFF)
        ok = ctypes.c_int(0)
        value = self._lib.fx_csr_read(self._live(), offset, ctypes.byref(ok))
        self._check(ok.value, "read", offset)
        return int(value)

    def csr_write(self, offset: int, value: int) -> None:
        _non_negative(offset, "offset", 0xFFFFFFFF)
        self._check(self._lib.fx_csr_write(self._live(), offset, int(value) & 0xFFFFFFFF),
                    "write", offset)

    def _range(self, addr: int, count: int) -> None:
        _non_negative(addr, "addr")
        _non_negative(count, "count")
        if addr + count > self._addr_limit:
            raise ValueError(f"words {addr} .. {addr + count - 1} are beyond the DMA's "
                             f"{self.config.dma_addr_width}-bit word addresses")

    def mem_write(self, addr: int, words: Sequence[int]) -> None:
        values = [int(w) & 0xFFFFFFFF for w in words]
        self._range(addr, len(values))
        if values:
            buf = (ctypes.c_uint32 * len(values))(*values)
            self._lib.fx_mem_write(self._live(), addr, len(values), buf)

    def mem_read(self, addr: int, count: int) -> list[int]:
        self._range(addr, count)
        if count == 0:
            return []
        buf = (ctypes.c_uint32 * count)()
        self._lib.fx_mem_read(self._live(), addr, count, buf)
        return list(buf)

    def write_cycle(self, addr: int) -> int | None:
        """The cycle (counted like :attr:`cycles`) at which the DMA last wrote word ``addr``;
        None if it never did or :meth:`mem_write` wrote the word since."""
        _non_negative(addr, "addr")
        cycle = int(self._lib.fx_write_cycle(self._live(), addr))
        return None if cycle < 0 else cycle

    def idle(self, cycles: int) -> None:
        self._lib.fx_idle(self._live(), _non_negative(cycles, "cycles"))

    def close(self) -> None:
        """Finish the FST file (if one is written) and free the model; the transport cannot
        be used after."""
        if getattr(self, "_handle", None) is not None:
            self._lib.fx_destroy(self._handle)
            self._handle = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

