"""Tests for :mod:`fixar_hw.flow.synth` (in-process Yosys synthesis via pyosys).

Expectations come from the designs themselves (an 8-bit register is 8
flip-flops), from the FPGA primitives (a 512x36 memory is 18 Kibit, the size of
one ECP5 DP16KD) and from the DSP size thresholds in the Yosys scripts, not from
earlier runs. Each (design, family) synthesis runs once per session through a
cache, because ``synth_xilinx`` takes about 3 s a run.

No ``from __future__ import annotations`` here: ``wiring.Component`` reads its
signature from the evaluated class annotations.
"""

import json
import re
from collections.abc import Callable

import pytest
from amaranth.hdl import Elaboratable, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from fixar_hw.flow.synth import FAMILIES, Resources, format_table, resources


class Counter(wiring.Component):
    """8-bit free-running counter with a registered output."""

    count: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.count.eq(self.count + 1)
        return m


class TwoCounters(wiring.Component):
    """Two counters as submodules, to check that the netlist is flattened."""

    a: Out(8)
    b: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.submodules.ca = ca = Counter()
        m.submodules.cb = cb = Counter()
        m.d.comb += [self.a.eq(ca.count), self.b.eq(cb.count)]
        return m


class Multiplier(wiring.Component):
    """Signed ``width`` x ``width`` multiplier with a registered product."""

    def __init__(self, width: int):
        super().__init__(
            {"a": In(signed(width)), "b": In(signed(width)), "p": Out(signed(2 * width))}
        )

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.p.eq(self.a * self.b)
        return m


class Ram(wiring.Component):
    """512 x 36 simple dual-port RAM with a synchronous read port."""

    waddr: In(9)
    wdata: In(36)
    we: In(1)
    raddr: In(9)
    rdata: Out(36)

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=36, depth=512, init=[])
        wr = mem.write_port()
        rd = mem.read_port(domain="sync")
        m.d.comb += [
            wr.addr.eq(self.waddr),
            wr.data.eq(self.wdata),
            wr.en.eq(self.we),
            rd.addr.eq(self.raddr),
            self.rdata.eq(rd.data),
        ]
        return m


class PlainCounter(Elaboratable):
    """A counter that is not a ``wiring.Component``: needs explicit ports."""

    def __init__(self):
        self.count = Signal(4)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.count.eq(self.count + 1)
        return m


DESIGNS: dict[str, Callable[[], Elaboratable]] = {
    "counter": Counter,
    "two_counters": TwoCounters,
    "mul16": lambda: Multiplier(16),
    "mul2": lambda: Multiplier(2),
    "ram": Ram,
}

_cache: dict[tuple[str, str], Resources] = {}


def synth(design: str, family: str) -> Resources:
    """Synthesize ``DESIGNS[design]`` for ``family`` once per test session."""
    key = (design, family)
    if key not in _cache:
        _cache[key] = resources(DESIGNS[design](), family)
    return _cache[key]


@pytest.mark.parametrize("family", FAMILIES)
def test_counter_is_eight_flip_flops(family):
    res = synth("counter", family)
    assert res.family == family
    assert res.ff == 8
    assert res.dsp == 0
    assert res.bram == 0
    assert res.lutram == 0
    assert res.lut >= 1  # the +1 needs logic (on Xilinx an INV feeding CARRY4)
    assert sum(res.cells.values()) >= res.ff + 1


def test_counter_ecp5_counts_two_luts_per_ccu2c():
    res = synth("counter", "ecp5")
    assert res.cells.get("CCU2C", 0) >= 1
    assert res.lut == res.cells.get("LUT4", 0) + 2 * res.cells["CCU2C"]


def test_hierarchy_is_flattened():
    res = synth("two_counters", "ecp5")
    assert res.ff == 16
    # Only ECP5 primitives remain in the top module, no user submodules.
    assert set(res.cells) <= {"TRELLIS_FF", "LUT4", "CCU2C"}


@pytest.mark.parametrize("family", FAMILIES)
def test_16x16_multiplier_uses_dsp(family):
    res = synth("mul16", family)
    assert res.dsp >= 1
    # A 16x16 signed product fits one block on all three families.
    assert res.dsp == 1


@pytest.mark.parametrize("family", ["ice40", "xilinx"])
def test_2x2_multiplier_uses_no_dsp(family):
    # Yosys only maps a product of at least 11 bits (iCE40) / 9 bits (xc7) to DSP.
    res = synth("mul2", family)
    assert res.dsp == 0
    assert res.lut >= 1
    assert res.ff == 4


def test_2x2_multiplier_ecp5_uses_dsp():
    # synth_ecp5's mul2dsp threshold is only "both operands >= 2 bits" (no
    # minimum product width), so even a 2x2 product goes to a MULT18X18D.
    assert synth("mul2", "ecp5").dsp == 1


def test_512x36_memory_maps_to_block_ram_on_ecp5():
    res = synth("ram", "ecp5")
    assert res.bram >= 1
    # 512 x 36 = 18 Kibit: one 18 Kibit EBR, not 36 flip-flops per word.
    assert res.bram == 1
    assert res.ff < 512 * 36
    assert res.lutram == 0


def test_plain_elaboratable_with_ports_and_name():
    design = PlainCounter()
    res = resources(design, "ice40", ports=[design.count], name="plain")
    assert res.ff == 4
    assert res.dsp == 0


def test_two_calls_give_equal_results():
    # Run other designs in between so that leaked state would show up.
    first = resources(Counter(), "ecp5")
    synth("mul16", "ecp5")
    synth("ram", "ecp5")
    second = resources(Counter(), "ecp5")
    assert first == second
    assert first.as_dict() == second.as_dict()
    assert hash(first) == hash(second)


@pytest.mark.parametrize("family", ["ECP5", "ice", "", "gowin"])
def test_bad_family_value(family):
    message = f"family must be one of 'ecp5', 'ice40', 'xilinx', not {family!r}"
    with pytest.raises(ValueError, match=rf"^{re.escape(message)}$"):
        resources(None, family)  # validated before the design is used


def test_bad_family_type():
    with pytest.raises(
        TypeError, match=r"^family must be one of 'ecp5', 'ice40', 'xilinx', not 5$"
    ):
        resources(None, 5)


def test_bad_name():
    with pytest.raises(TypeError, match=r"^name must be a str"):
        resources(None, "ecp5", name=1)
    with pytest.raises(ValueError, match=r"^name must be a non-empty str$"):
        resources(None, "ecp5", name="")


def test_resources_is_immutable_and_serializable():
    res = Resources("ice40", 3, 2, 0, 0, 0, {"SB_LUT4": 3, "SB_DFF": 2})
    with pytest.raises(AttributeError):
        res.lut = 4
    with pytest.raises(TypeError):
        res.cells["SB_LUT4"] = 5
    d = res.as_dict()
    assert d == {
        "family": "ice40",
        "lut": 3,
        "ff": 2,
        "dsp": 0,
        "bram": 0,
        "lutram": 0,
        "cells": {"SB_DFF": 2, "SB_LUT4": 3},
    }
    assert json.loads(json.dumps(d)) == d
    assert res == Resources("ice40", 3, 2, 0, 0, 0, {"SB_DFF": 2, "SB_LUT4": 3})
    assert res != Resources("ice40", 3, 2, 0, 0, 0, {"SB_DFF": 2})


def test_format_table():
    rows = [
        ("counter", Resources("ecp5", 9, 8, 0, 0, 0, {})),
        ("mac", Resources("xilinx", 1234, 56, 7, 10, 3, {})),
    ]
    assert format_table(rows).splitlines() == [
        "name     family   LUT  FF  DSP  BRAM  LUTRAM",
        "-------  ------  ----  --  ---  ----  ------",
        "counter  ecp5       9   8    0     0       0",
        "mac      xilinx  1234  56    7    10       3",
    ]
    assert format_table([]).splitlines()[0].split() == [
        "name", "family", "LUT", "FF", "DSP", "BRAM", "LUTRAM",
    ]  # fmt: skip
