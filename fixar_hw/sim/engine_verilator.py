"""Cycle counts of training programs on the exported engine, simulated by Verilator.

:func:`build` exports a :class:`~fixar_hw.train.engine.TrainingEngine` to Verilog (the Yosys build
bundled with Amaranth, cached by configuration and source digest) and compiles it with the
C++ testbench ``fixar_hw/sim/cpp/engine_tb.cpp``. :meth:`EngineVerilator.run` writes a program
through the engine's program port, starts it, counts the clock edges until the engine is idle
again, and returns the performance counters. The memories start at zero: every unit's timing is
independent of the data (the array, the vector unit and the update unit have fixed schedules),
so the counts are those of a real step; ``tests/test_engine_hw.py`` checks the same counts
against :meth:`~fixar_hw.train.description.EngineDescription.cycles` with real data in Amaranth's
simulator.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

from amaranth.lib import data

from fixar_hw.flow.cache import design_digest
from fixar_hw.flow.export import VerilatedModel, to_verilog, verilate
from fixar_hw.sim._cpp import render
from fixar_hw.sim.array_verilator import _verilog_cache_dir
from fixar_hw.train.engine import TrainingEngine
from sw_model.arch.engine import EngineConfig

__all__ = ["EngineVerilator", "build"]

TOP = "fixar_engine"


def _setter(name: str, width: int, src: str) -> str:
    """C++ statements setting port ``name`` from the 32-bit words at ``src``."""
    if width > 64:
        return "\n".join(f"    t->{name}[{i}] = {src}[{i}];" for i in range((width + 31) // 32))
    if width > 32:
        return f"    t->{name} = ((uint64_t){src}[1] << 32) | {src}[0];"
    return f"    t->{name} = {src}[0];"


def _getter(name: str, width: int) -> str:
    """C++ statement printing port ``name`` as 32-bit hex words, least significant first."""
    n = (width + 31) // 32
    if width > 64:
        return "\n".join(f'    printf("%08x ", (unsigned)t->{name}[{i}]);' for i in range(n))
    if width > 32:
        return (f'    printf("%08x %08x ", (unsigned)(t->{name} & 0xffffffffu), '
                f'(unsigned)(t->{name} >> 32));')
    return f'    printf("%08x ", (unsigned)t->{name});'


def _mangle(name: str) -> str:
    return name.replace("__", "___05F")


def _testbench(width: int, perf_width: int) -> str:
    """``cpp/engine_tb.cpp`` for an engine with ``width``-bit program words and a
    ``perf_width``-bit counter port."""
    return render("engine_tb.cpp", {
        "TOP": TOP, "PWA": _mangle("prog_wr__addr"), "PWE": _mangle("prog_wr__en"),
        "SV": _mangle("start__valid"), "SR": _mangle("start__ready"),
        "SP": _mangle("start__payload"),
        "SETDATA": _setter(_mangle("prog_wr__data"), width, "word"),
        "GETPERF": _getter("perf", perf_width),
    })


@dataclass
class EngineVerilator:
    """A compiled engine model (see :func:`build`)."""

    engine: TrainingEngine
    model: VerilatedModel
    export_seconds: float
    build_seconds: float
    verilog_cached: bool

    def run(self, program: Sequence, timeout: float = 7200) -> dict[str, int]:
        """Run ``program`` (descriptors of :mod:`sw_model.arch.engine`); returns the performance
        counters, ``edges`` (clock edges from the start transfer to idle) and ``seconds``
        (wall-clock time of the simulation)."""
        eng = self.engine
        words = eng.description.encode(program)
        width = eng.description.descriptor_layout.size
        w32 = (width + 31) // 32
        payload = bytearray()
        payload += len(words).to_bytes(4, "little") + w32.to_bytes(4, "little")
        for word in words:
            payload += word.to_bytes(4 * w32, "little")
        with tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as handle:
            handle.write(payload)
            path = handle.name
        try:
            start = time.perf_counter()
            out = self.model.run([path], timeout=timeout).stdout
            seconds = time.perf_counter() - start
        finally:
            os.unlink(path)
        edges = int(re.search(r"edges (\d+)", out).group(1))
        hexwords = re.search(r"perf ([0-9a-f ]+)", out).group(1).split()
        bits = sum(int(h, 16) << (32 * i) for i, h in enumerate(hexwords))
        layout: data.StructLayout = eng.perf.shape()
        perf = {name: (bits >> field.offset) & ((1 << field.width) - 1)
                for name, field in layout}
        return {**perf, "edges": edges, "seconds": seconds}


def build(config: EngineConfig, *, program_depth: int = 256,
          cflags: Sequence[str] = ("-O1",), timeout: float = 7200) -> EngineVerilator:
    """Export and compile the engine of ``config`` (cached on disk by configuration).

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~sw_model.arch.engine.EngineConfig`.
    RuntimeError
        If Verilator is missing or the build fails.
    """
    if not isinstance(config, EngineConfig):
        raise TypeError(f"config must be an EngineConfig, not {config!r}")
    engine = TrainingEngine(config, program_depth)
    engine._MustUse__silence = True
    key = hashlib.sha256(f"{TOP}\n{config!r}\n{program_depth}\n{design_digest()}"
                         .encode()).hexdigest()
    path = _verilog_cache_dir() / f"engine-{key}.v"
    cached = path.is_file()
    start = time.perf_counter()
    if cached:
        verilog = path.read_text(encoding="utf-8")
    else:
        verilog = to_verilog(engine, name=TOP)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(verilog, encoding="utf-8")
        os.replace(tmp, path)
    export_seconds = 0.0 if cached else time.perf_counter() - start
    width = engine.description.descriptor_layout.size
    perf_width = engine.perf.shape().size
    cpp = _testbench(width, perf_width)
    start = time.perf_counter()
    model = verilate(verilog, TOP, cpp, cflags=cflags, timeout=timeout)
    return EngineVerilator(engine, model, export_seconds, time.perf_counter() - start, cached)
