"""Running AAP operations at RTL speed: the PE array exported to Verilog and built with Verilator.

:func:`build` exports :class:`~fixar_hw.train.array.PEArray` with
:func:`fixar_hw.flow.export.to_verilog` and compiles it with :func:`fixar_hw.flow.export.verilate`
together with the C++ testbench ``fixar_hw/sim/cpp/array_tb.cpp`` (its widths and port
names filled in for the build). The testbench plays the part of
:class:`~fixar_hw.sim.array.ArrayHarness`:

* it holds the ``w``, ``v``, ``u`` and ``b`` memories itself (contents from
  :func:`~fixar_hw.sim.array.memory_images`, written by Python to a binary file), one read
  port per core and memory, with one cycle of read latency: the data of a port changes at a
  clock edge only when its ``en`` was high before the edge, and holds otherwise, as an
  ``amaranth.lib.memory`` synchronous read port does;
* it sends one command per job on ``cmd`` (the payload packed as
  :attr:`~fixar_hw.train.array.PEArray.command_layout`), keeps the result stream's ``ready``
  high (or low on a seeded pseudo-random share of cycles), checks the valid/ready rules of the
  result stream and that the other result stream stays idle, and collects the result beats;
* it counts the clock edges from the command transfer to the transfer of the beat flagged
  ``last``, exactly as :func:`~fixar_hw.sim.array.simulate` does.

Python unpacks the beats with :func:`~fixar_hw.sim.array.unpack`, so the Verilator run is held
to the same output contract as the Amaranth simulation. The jobs of one call run back to back
on one model, without a reset between them; each job's memories are loaded while the array is
idle.

Builds are cached twice: the exported Verilog on disk (keyed by the configuration and the
sources of ``fixar_hw``, ``sw_model`` and the Amaranth version, since the export of a 16 x 16
array takes tens of seconds) and the compiled model by :func:`~fixar_hw.flow.export.verilate`
(keyed by content). :func:`build` also keeps one model per configuration in memory.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data

from fixar_hw.flow.cache import cache_dir, design_digest
from fixar_hw.flow.export import VerilatedModel, to_verilog, verilate
from fixar_hw.sim._cpp import render
from fixar_hw.sim.array import ArrayJob, memory_images, unpack
from fixar_hw.train.aap_sequencer import read_ports
from fixar_hw.train.array import PEArray
from sw_model.arch.aap import AAPConfig

__all__ = ["ArrayVerilator", "JobRun", "build", "run_verilator"]

TOP = "aap_array"
_MAGIC = 0x41415031  # "AAP1"
_HEADER_WORDS = 6     # per job in the output file, uint64 each


@dataclass(frozen=True, eq=False)
class JobRun:
    """One job run on the Verilator model.

    Attributes
    ----------
    result : numpy.ndarray
        The unpacked result (:func:`~fixar_hw.sim.array.unpack`), ``int64`` codes.
    cycles : int
        Clock edges from the command transfer to the transfer of the last result beat.
    edges : int
        Clock edges simulated for the job (from the first cycle the command is offered to
        the last result transfer, inclusive).
    seconds : float
        Wall time of the job's simulation loop (excludes loading the memories and the files).
    out_of_range_reads : int
        Enabled reads at an address beyond the memory image (they return zeros).
    """

    result: np.ndarray
    cycles: int
    edges: int
    seconds: float
    out_of_range_reads: int

    @property
    def cycles_per_second(self) -> float:
        """Simulated clock cycles per wall-clock second for this job."""
        return self.edges / self.seconds if self.seconds > 0 else math.inf


# --- bit packing ---------------------------------------------------------------------------

def _words32(width: int) -> int:
    return max(1, -(-width // 32))


def _pack_lanes(words: np.ndarray, width: int, total: int) -> np.ndarray:
    """``(rows, lanes)`` two's-complement codes -> ``(rows, words32(total))`` ``uint32``.

    Lane ``i`` occupies bits ``[i*width, (i+1)*width)``; bits up to ``total`` are zero-padded.
    """
    words = np.asarray(words, dtype=np.int64)
    rows, lanes = words.shape
    u = words.view(np.uint64) & np.uint64((1 << width) - 1 if width < 64 else 2**64 - 1)
    bits = ((u[:, :, None] >> np.arange(width, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    bits = bits.reshape(rows, lanes * width)
    n32 = _words32(total)
    padded = np.zeros((rows, n32 * 32), dtype=np.uint8)
    padded[:, :lanes * width] = bits
    return np.packbits(padded, axis=1, bitorder="little").view("<u4").reshape(rows, n32)


def _bits_of(raw: np.ndarray) -> np.ndarray:
    """``(rows, n32)`` ``uint32`` -> ``(rows, n32*32)`` bits, least significant first."""
    raw = np.ascontiguousarray(raw, dtype="<u4")
    return np.unpackbits(raw.view(np.uint8), axis=1, bitorder="little")


def _field(bits: np.ndarray, offset: int, width: int, *, signed: bool) -> np.ndarray:
    """The ``width``-bit integers starting at bit ``offset`` of each row of ``bits``."""
    chunk = bits[:, offset:offset + width].astype(np.uint64)
    value = (chunk << np.arange(width, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
    if signed and width < 64:
        value = value.astype(np.int64)
        value -= ((value >> (width - 1)) & 1) << width
        return value
    return value.astype(np.int64)


def _lanes(bits: np.ndarray, offset: int, count: int, width: int) -> np.ndarray:
    """``count`` signed ``width``-bit lanes from bit ``offset`` of each row: ``(rows, count)``."""
    rows = bits.shape[0]
    chunk = bits[:, offset:offset + count * width].reshape(rows, count, width).astype(np.uint64)
    value = (chunk << np.arange(width, dtype=np.uint64)).sum(axis=2, dtype=np.uint64)
    value = value.astype(np.int64)
    if width < 64:
        value -= ((value >> (width - 1)) & 1) << width
    return value


# --- the design's ports ---------------------------------------------------------------------

def _cxx(name: str) -> str:
    """The C++ member Verilator generates for a Verilog port (``__`` is escaped)."""
    return name.replace("__", "___05F")


@dataclass(frozen=True)
class _Ports:
    """Bit widths and payload offsets of one build, read from the component's signature."""

    cores: int
    cmd_width: int
    mem_lanes: dict[str, int]
    mem_lane_width: dict[str, int]
    addr_width: int
    o_width: int
    o_lane_width: int
    o_lanes: int
    o_data_offset: int
    o_mask_offset: int
    o_last_offset: int
    g_width: int
    g_lane_width: int
    g_lanes: int
    g_data_offset: int
    g_mask_offset: int
    g_last_offset: int

    @classmethod
    def of(cls, dut: PEArray) -> _Ports:
        cfg = dut.config
        lanes, lane_width = {}, {}
        for q in read_ports(cfg):
            layout = getattr(dut, f"{q}_rd")[0].data.shape()
            lanes[q] = layout.length
            lane_width[q] = Shape.cast(layout.elem_shape).width
        stream = {}
        for s in ("o", "g"):
            layout: data.StructLayout = getattr(dut, s).payload.shape()
            outer = layout["data"].shape          # ArrayLayout(ArrayLayout(elem, lanes), cores)
            inner = outer.elem_shape
            stream[s] = dict(width=layout.size, lane_width=Shape.cast(inner.elem_shape).width,
                             lanes=inner.length, data_offset=layout["data"].offset,
                             mask_offset=layout["mask"].offset,
                             last_offset=layout["last"].offset)
        return cls(
            cores=cfg.cores, cmd_width=dut.command_layout.size, mem_lanes=lanes,
            mem_lane_width=lane_width, addr_width=cfg.addr_width,
            **{f"{s}_{k}": v for s, fields in stream.items() for k, v in fields.items()},
        )

    def verilog_ports(self) -> dict[str, tuple[str, int]]:
        """Direction and width of every top-level port the testbench touches."""
        ports = {"clk": ("input", 1), "rst": ("input", 1), "cmd__valid": ("input", 1),
                 "cmd__ready": ("output", 1), "cmd__payload": ("input", self.cmd_width)}
        for s in ("o", "g"):
            ports[f"{s}__valid"] = ("output", 1)
            ports[f"{s}__ready"] = ("input", 1)
            ports[f"{s}__payload"] = ("output", getattr(self, f"{s}_width"))
        for q in self.mem_lanes:
            for k in range(self.cores):
                ports[f"{q}_rd__{k}__en"] = ("output", 1)
                ports[f"{q}_rd__{k}__addr"] = ("output", self.addr_width)
                ports[f"{q}_rd__{k}__data"] = ("input",
                                               self.mem_lanes[q] * self.mem_lane_width[q])
        return ports


_PORT_DECL = re.compile(r"^\s*(input|output)\s+(?:signed\s+)?(?:\[(\d+):0\]\s+)?(\w+)\s*;",
                        re.MULTILINE)


def _check_verilog_ports(verilog: str, ports: _Ports) -> None:
    """Raise ``RuntimeError`` unless the top module's ports are the ones the testbench drives."""
    start = verilog.find(f"module {TOP}(")
    if start < 0:
        raise RuntimeError(f"module {TOP} not found in the exported Verilog")
    body = verilog[start:verilog.find("endmodule", start)]
    found = {name: (direction, int(msb) + 1 if msb else 1)
             for direction, msb, name in _PORT_DECL.findall(body)}
    for name, want in ports.verilog_ports().items():
        if found.get(name) != want:
            raise RuntimeError(f"exported port {name} is {found.get(name)!r}, expected {want!r}")


# --- C++ testbench (fixar_hw/sim/cpp/array_tb.cpp) -------------------------------------------

def _testbench(ports: _Ports) -> str:
    """``cpp/array_tb.cpp`` filled in for the build's ports and widths."""
    sample, apply = [], []
    for qi, q in enumerate(ports.mem_lanes):
        for k in range(ports.cores):
            base = f"{q}_rd__{k}__"
            sample.append(f"    r[{qi}][{k}].en = t->{_cxx(base + 'en')};")
            sample.append(f"    r[{qi}][{k}].addr = t->{_cxx(base + 'addr')};")
            apply.append(f"    if (r[{qi}][{k}].en) put(t->{_cxx(base + 'data')}, "
                         f"word(mem[{qi}], r[{qi}][{k}].addr));")
    mem_w32 = ", ".join(str(_words32(ports.mem_lanes[q] * ports.mem_lane_width[q]))
                        for q in ports.mem_lanes)
    subst = {
        "TOP": TOP, "CORES": str(ports.cores), "NMEM": str(len(ports.mem_lanes)),
        "CMD_W32": str(_words32(ports.cmd_width)),
        "MEM_W32": mem_w32, "O_W32": str(_words32(ports.o_width)),
        "G_W32": str(_words32(ports.g_width)), "O_LAST": str(ports.o_last_offset),
        "G_LAST": str(ports.g_last_offset), "MAGIC": hex(_MAGIC),
        "SAMPLE": "\n".join(sample), "APPLY": "\n".join(apply),
    }
    return render("array_tb.cpp", subst)


# --- export cache --------------------------------------------------------------------------

def _verilog_cache_dir() -> Path:
    return cache_dir("verilog")


def _export(dut: PEArray, config: AAPConfig) -> tuple[str, float, bool]:
    """The design's Verilog, the seconds its export took (0 if cached), and whether cached."""
    key = hashlib.sha256(f"{TOP}\n{config!r}\n{design_digest()}".encode()).hexdigest()
    path = _verilog_cache_dir() / f"{key}.v"
    if path.is_file():
        return path.read_text(encoding="utf-8"), 0.0, True
    start = time.perf_counter()
    text = to_verilog(dut, name=TOP)
    seconds = time.perf_counter() - start
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".v", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return text, seconds, False


def _check_run_args(jobs: object, stall: object, seed: object) -> None:
    if isinstance(jobs, (str, bytes)) or not isinstance(jobs, Sequence):
        raise TypeError(f"jobs must be a sequence of ArrayJob, not {jobs!r}")
    for index, job in enumerate(jobs):
        if not isinstance(job, ArrayJob):
            raise TypeError(f"jobs[{index}] must be an ArrayJob, not {job!r}")
    if isinstance(stall, bool) or not isinstance(stall, (int, float)):
        raise TypeError(f"stall must be a number, not {stall!r}")
    if not 0 <= stall < 1:
        raise ValueError(f"stall must be from 0 to below 1, not {stall!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an integer, not {seed!r}")


def _encode(dut: PEArray, ports: _Ports, jobs: Sequence[ArrayJob], stall: float,
            seed: int) -> bytes:
    """The testbench's input file for ``jobs`` (validating each job against the build)."""
    parts = [np.array([_MAGIC, len(jobs)], dtype="<u4").tobytes()]
    c = dut.config
    for index, job in enumerate(jobs):
        if not isinstance(job, ArrayJob):
            raise TypeError(f"jobs[{index}] must be an ArrayJob, not {job!r}")
        if job.table_image(c) is not None:
            raise ValueError(f"jobs[{index}] needs a tanh table load, which this testbench "
                             f"does not do; give the forward tanh job no out_fmt/table")
        cmd = dut.command(job.op, **job.command_fields())
        cmd_bits = dut.command_layout.const(cmd).as_value().value
        n32 = _words32(ports.cmd_width)
        cmd_words = np.array([(cmd_bits >> (32 * i)) & 0xFFFFFFFF for i in range(n32)],
                             dtype="<u4")
        images = memory_images(c, job)
        bound = job.cycles(c) + 100
        max_edges = bound * math.ceil(10 / (1 - stall))
        if max_edges >= 1 << 32:
            raise ValueError(f"jobs[{index}] is too long to simulate ({max_edges} cycles)")
        parts += [np.array([int(job.op == "wgrad"), round(stall * 1000),
                            (seed + index * 0x9E3779B9) & 0xFFFFFFFF, max_edges],
                           dtype="<u4").tobytes(), cmd_words.tobytes()]
        for q in ports.mem_lanes:  # the testbench's memory order
            words = np.asarray(images[q], dtype=np.int64)
            if len(words) > 1 << c.addr_width:
                raise ValueError(f"jobs[{index}] needs {len(words)} words of the {q} memory, "
                                 f"more than addr_width = {c.addr_width!r} can address")
            width = ports.mem_lane_width[q]
            lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
            if words.size and (words.min() < lo or words.max() > hi):
                raise ValueError(f"jobs[{index}] has codes outside the {width}-bit lanes of "
                                 f"the {q} memory")
            parts.append(np.array([len(words)], dtype="<u4").tobytes())
            parts.append(_pack_lanes(words, width, ports.mem_lanes[q] * width).tobytes())
    return b"".join(parts)


# --- the model ---------------------------------------------------------------------------

class ArrayVerilator:
    """A Verilator model of one build of the array, with its testbench.

    Create it with :func:`build` (which caches one per configuration).

    Attributes
    ----------
    config : AAPConfig
        The build.
    dut : PEArray
        The component that was exported (:class:`~fixar_hw.train.array.PEArray` when
        ``config.cores > 1``); it also encodes commands.
    model : VerilatedModel
        The compiled testbench.
    export_seconds : float
        Seconds the Verilog export took (0 when it came from the disk cache).
    build_seconds : float
        Seconds :func:`~fixar_hw.flow.export.verilate` took (about 0 when the build was cached).
    verilog_cached : bool
        Whether the Verilog came from the disk cache.
    """

    def __init__(self, config: AAPConfig, dut: PEArray, model: VerilatedModel,
                 export_seconds: float, build_seconds: float, verilog_cached: bool) -> None:
        self.config = config
        self.dut = dut
        self.model = model
        self.export_seconds = export_seconds
        self.build_seconds = build_seconds
        self.verilog_cached = verilog_cached
        self._ports = _Ports.of(dut)

    def __repr__(self) -> str:
        return f"ArrayVerilator({self.config!r})"

    def run(self, jobs: Sequence[ArrayJob], *, stall: float = 0.0, seed: int = 0,
            timeout: float | None = None) -> list[JobRun]:
        """Run ``jobs`` back to back on the model.

        Parameters
        ----------
        jobs : sequence of ArrayJob
            The operations; shapes within the configuration's limits.
        stall : float, optional
            Share of cycles, from 0 (never) to below 1, in which the result stream's
            ``ready`` is low (a seeded pseudo-random pattern; multiples of 0.001).
        seed : int, optional
            Seed of the stall pattern.
        timeout : float or None, optional
            Seconds before the model process is killed; ``None`` (default) relies on the
            testbench's own bound of ``10 / (1 - stall)`` times the modelled cycles per job.

        Returns
        -------
        list of JobRun
            One per job, in order.

        Raises
        ------
        TypeError
            If ``jobs`` is not a sequence of :class:`~fixar_hw.sim.array.ArrayJob` or
            ``stall``/``seed`` have the wrong type.
        ValueError
            If ``stall`` is outside ``[0, 1)``, or a job does not fit the configuration.
        AssertionError
            If the result stream breaks its contract (valid/ready rules, the other stream
            active, beats that :func:`~fixar_hw.sim.array.unpack` rejects).
        RuntimeError
            If the model process fails (e.g. no final beat within its bound).
        """
        _check_run_args(jobs, stall, seed)
        if not jobs:
            return []
        payload = _encode(self.dut, self._ports, jobs, stall, seed)
        with tempfile.TemporaryDirectory(prefix="fixar-array-") as tmp:
            src, dst = Path(tmp) / "jobs.bin", Path(tmp) / "beats.bin"
            src.write_bytes(payload)
            self.model.run([str(src), str(dst)], timeout=timeout)
            raw = dst.read_bytes()
        return self._parse(jobs, raw)

    def _parse(self, jobs: Sequence[ArrayJob], raw: bytes) -> list[JobRun]:
        ports, pos, runs = self._ports, 0, []
        for index, job in enumerate(jobs):
            header = np.frombuffer(raw, dtype="<u8", count=_HEADER_WORDS, offset=pos)
            pos += 8 * _HEADER_WORDS
            n_beats, cycles, edges, errors, oob, nanos = (int(v) for v in header)
            s = "g" if job.op == "wgrad" else "o"
            n32 = _words32(getattr(ports, f"{s}_width"))
            beat_words = np.frombuffer(raw, dtype="<u4", count=n_beats * n32, offset=pos)
            pos += 4 * n_beats * n32
            if errors & 1:
                raise AssertionError(f"jobs[{index}]: the other result stream became valid")
            if errors & 2:
                raise AssertionError(f"jobs[{index}]: result stream dropped valid or changed "
                                     "its payload while stalled")
            if errors & 4:
                raise AssertionError(f"jobs[{index}]: the command was never accepted")
            beats = self._beats(s, beat_words.reshape(n_beats, n32))
            result = unpack(self.config, job, beats)
            runs.append(JobRun(result, cycles, edges, nanos * 1e-9, oob))
        if pos != len(raw):
            raise RuntimeError(f"model output has {len(raw) - pos} unexpected trailing bytes")
        return runs

    def _beats(self, s: str, words: np.ndarray) -> list[tuple[list, int, int]]:
        p, cores = self._ports, self.config.cores
        if not len(words):
            return []
        bits = _bits_of(words)
        lanes, width = getattr(p, f"{s}_lanes"), getattr(p, f"{s}_lane_width")
        values = _lanes(bits, getattr(p, f"{s}_data_offset"), cores * lanes, width)
        values = values.reshape(len(words), cores, lanes)
        mask = _field(bits, getattr(p, f"{s}_mask_offset"), cores, signed=False)
        last = _field(bits, getattr(p, f"{s}_last_offset"), 1, signed=False)
        return [(values[i].tolist(), int(mask[i]), int(last[i])) for i in range(len(words))]


_MODELS: dict[tuple[AAPConfig, tuple[str, ...]], ArrayVerilator] = {}
_MODELS_LOCK = threading.Lock()


def build(config: AAPConfig, *, cflags: Sequence[str] = ("-O2",),
          timeout: float = 3600) -> ArrayVerilator:
    """The Verilator model of ``config``'s array (built once per configuration and process).

    Parameters
    ----------
    config : AAPConfig
        The build (a :class:`~fixar_hw.train.array.PEArray` is exported).
    cflags : sequence of str, optional
        C++ compiler flags for :func:`~fixar_hw.flow.export.verilate` (``("-O0",)`` compiles small
        builds faster; the default suits long runs).
    timeout : float, optional
        Seconds allowed for the Verilator build.

    Returns
    -------
    ArrayVerilator

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~sw_model.arch.aap.AAPConfig` or ``cflags`` is not a
        sequence of strings.
    RuntimeError
        If Verilator is missing, the build fails, or the exported ports differ from the
        component's signature.
    """
    if not isinstance(config, AAPConfig):
        raise TypeError(f"config must be an AAPConfig, not {config!r}")
    if isinstance(cflags, str) or not all(isinstance(f, str) for f in cflags):
        raise TypeError(f"cflags must be a sequence of strings, not {cflags!r}")
    key = (config, tuple(cflags))
    with _MODELS_LOCK:
        if key in _MODELS:
            return _MODELS[key]
        dut = PEArray(config)
        # with a cached export the component only encodes commands: no unused-design warning
        dut._MustUse__silence = True
        ports = _Ports.of(dut)
        verilog, export_seconds, cached = _export(dut, config)
        _check_verilog_ports(verilog, ports)
        start = time.perf_counter()
        model = verilate(verilog, TOP, _testbench(ports), cflags=key[1], timeout=timeout)
        build_seconds = time.perf_counter() - start
        _MODELS[key] = runner = ArrayVerilator(config, dut, model, export_seconds,
                                               build_seconds, cached)
        return runner


def run_verilator(config: AAPConfig, jobs: Sequence[ArrayJob], *, stall: float = 0.0,
                  seed: int = 0, cflags: Sequence[str] = ("-O2",)
                  ) -> list[tuple[np.ndarray, int]]:
    """Run ``jobs`` on the Verilator model of ``config``'s array.

    Parameters
    ----------
    config : AAPConfig
        The build (see :func:`build`).
    jobs : sequence of ArrayJob
        The operations, run back to back on one model.
    stall : float, optional
        Share of cycles with the result stream's ``ready`` low (0: always ready).
    seed : int, optional
        Seed of the stall pattern.
    cflags : sequence of str, optional
        C++ compiler flags of the build (see :func:`build`).

    Returns
    -------
    list of (numpy.ndarray, int)
        Per job: the result (as :func:`~fixar_hw.sim.array.simulate` returns it) and the
        cycles from the command transfer to the last result transfer.

    Raises
    ------
    TypeError, ValueError, AssertionError, RuntimeError
        As :func:`build` and :meth:`ArrayVerilator.run`.
    """
    if not isinstance(config, AAPConfig):
        raise TypeError(f"config must be an AAPConfig, not {config!r}")
    _check_run_args(jobs, stall, seed)
    return [(run.result, run.cycles)
            for run in build(config, cflags=cflags).run(jobs, stall=stall, seed=seed)]
