"""Tests for :mod:`fixar_hw.flow.memories`: where synthesis put each memory.

Expectations come from the port needs of the memories, not from earlier runs: a memory with one
write and one read port fits a block RAM of every family; one with three write ports fits none
(block RAMs have at most two ports), so Yosys builds it from flip-flops.

No ``from __future__ import annotations`` here: ``wiring.Component`` reads its signature from
the evaluated class annotations.
"""

import os
import tempfile

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw.flow.memories import (
    BLOCK,
    FLIP_FLOPS,
    LUT_RAM,
    MemoryPlacement,
    memory_bits,
    memory_placement,
)
from fixar_hw.flow.synth import _SYNTH_COMMANDS


class _Bank(wiring.Component):
    """``deep``: 2048 x 32 bits, one write and one read port; ``multi``: 16 x 32 bits, three
    write ports and one read port."""

    a: In(11)
    d: In(32)
    we: In(1)
    q: Out(32)
    r: Out(32)

    def elaborate(self, platform):
        m = Module()
        m.submodules.deep = deep = memory.Memory(shape=32, depth=2048, init=[])
        w = deep.write_port()
        rd = deep.read_port()
        m.d.comb += [w.addr.eq(self.a), w.data.eq(self.d), w.en.eq(self.we),
                     rd.addr.eq(self.a + 1), self.q.eq(rd.data)]
        m.submodules.multi = multi = memory.Memory(shape=32, depth=16, init=[])
        for k in range(3):
            wk = multi.write_port()
            m.d.comb += [wk.addr.eq(self.a + k), wk.data.eq(self.d + k), wk.en.eq(self.we)]
        rm = multi.read_port()
        m.d.comb += [rm.addr.eq(self.a + 5), self.r.eq(rm.data)]
        return m


class _Outer(wiring.Component):
    """:class:`_Bank` one level down the hierarchy (its memories are ``bank.deep`` and
    ``bank.multi``)."""

    def __init__(self):
        self._bank = _Bank()
        super().__init__(self._bank.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.bank = self._bank
        wiring.connect(m, wiring.flipped(self), self._bank)
        return m


def _synthesize(family: str) -> tuple[str, str]:
    from pyosys import libyosys as ys

    text = rtlil.convert(_Outer(), name="top")
    with tempfile.TemporaryDirectory() as tmp:
        il, log = os.path.join(tmp, "design.il"), os.path.join(tmp, "yosys.log")
        with open(il, "w") as f:
            f.write(text)
        design = ys.Design()
        design.run_pass(["tee", "-q", "-o", log, "read_rtlil", il])
        design.run_pass(["tee", "-q", "-a", log, *_SYNTH_COMMANDS[family], "-top", "top"])
        with open(log) as f:
            return f.read(), text


@pytest.mark.parametrize("family", ["ecp5", "ice40", "xilinx"])
def test_each_memory_is_named_with_its_placement_and_size(family):
    log, netlist = _synthesize(family)
    found = {m.name: m for m in memory_placement(log, netlist)}
    assert set(found) == {"bank.deep", "bank.multi"}
    assert found["bank.deep"].kind == BLOCK and found["bank.deep"].bits == 2048 * 32
    assert found["bank.multi"] == MemoryPlacement("bank.multi", FLIP_FLOPS, "FF", 16 * 32)


def test_sizes_from_rtlil_and_verilog():
    rtlil_text = ("module \\top\nend\nmodule \\top.core.buf\n"
                  "  memory width 16 size 100 \\W\n  memory width 3 size 8 offset 0 \\M\nend\n")
    assert memory_bits(rtlil_text) == {"core.buf.W": 1600, "core.buf.M": 24}
    verilog = ("module top(clk);\n  reg [7:0] mem [0:1023];\n  reg [35:0] \\x.y [511:0] ;\n"
               "endmodule\n")
    assert memory_bits(verilog) == {"mem": 8192, "x.y": 512 * 36}


def test_decisions_read_from_a_log():
    log = ("mapping memory top.a.W via $__ECP5_DP16KD_\n"
           "using FF mapping for memory top.b\n"
           "mapping memory top.c via $__TRELLIS_DPR16X4_\n"
           "mapping memory top.d via $__XILINX_RAMB36_SDP\n")
    got = memory_placement(log)
    assert [(m.name, m.kind, m.bits) for m in got] == [
        ("a.W", BLOCK, None), ("b", FLIP_FLOPS, None), ("c", LUT_RAM, None), ("d", BLOCK, None)]
    assert all(m.declared for m in got)
    rom = memory_placement("using FF mapping for memory top.$flattenu.$auto$proc_rom.cc:155$7\n")
    assert [(m.kind, m.declared) for m in rom] == [(FLIP_FLOPS, False)]
    assert memory_placement("no memories here\n") == []


@pytest.mark.parametrize(("call", "message"), [
    (lambda: memory_placement(None), "log must be a str, not NoneType"),
    (lambda: memory_bits(b"module"), "netlist must be a str, not bytes"),
])
def test_bad_input(call, message):
    with pytest.raises(TypeError, match=message):
        call()
