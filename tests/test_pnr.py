# amaranth: UnusedElaboratable=no
"""Tests for :mod:`fixar_hw.flow.pnr` (ECP5 place and route with nextpnr).

Expectations come from the designs (a counter with an 8-bit output has 8 flip-flops and
8 + clock + reset = 10 I/O pins), from the datasheets of the devices (an LFE5U-85F has 83,640
LUT4s, 156 MULT18X18D, 208 DP16KD and 365 user I/Os on the CABGA381; an LFE5U-25F 24,288 LUT4s
and 28 MULT18X18D) and from :func:`fixar_hw.flow.synth.resources`, which runs the same synthesis
script, not from earlier runs.

No ``from __future__ import annotations`` here: ``wiring.Component`` reads its signature from
the evaluated class annotations.
"""

import math

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fixar_hw.flow.pnr import FoldedTop, PnrReport, place_and_route, place_and_route_seeds
from fixar_hw.flow.synth import resources
from fixar_hw.train.array import PEArray
from sw_model.arch.aap import AAPConfig
from sw_model.numerics.fixed import FixedFormat

from .test_synth import Counter


class WideRegister(wiring.Component):
    """A 200-bit register: 400 data pins, more than a CABGA381 ECP5 has."""

    d: In(200)
    q: Out(200)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.q.eq(self.d)
        return m


def tiny_array() -> PEArray:
    f = FixedFormat(8, 6)
    config = AAPConfig(size=2, cores=1, w_fmt=f, a_fmt=f, d_fmt=f, grad_fmt=f,
                       g_fmt=FixedFormat(10, 8), max_m=64, max_n=64, max_batch=64,
                       tanh_index_bits=6)
    return PEArray(config)


_cache: dict[str, PnrReport] = {}


def counter_report(device: str = "85k") -> PnrReport:
    if device not in _cache:
        _cache[device] = place_and_route(Counter(), device=device)
    return _cache[device]


def test_counter_report_fields():
    rep = counter_report()
    assert (rep.device, rep.package, rep.speed, rep.seed, rep.router) == (
        "85k", "CABGA381", 6, 1, "router2")
    assert rep.freq_mhz == 100.0
    assert len(rep.fmax) == 1
    assert math.isfinite(rep.fmax_mhz) and 0 < rep.fmax_mhz < 1000
    assert rep.io == 10
    assert rep.ff == 8
    assert rep.dsp == 0 and rep.bram == 0
    # the packer may add route-through LUTs, never drop the synthesized ones
    assert rep.lut >= rep.synth.lut > 0
    assert rep.utilisation["TRELLIS_IO"] == (10, 365)
    assert rep.available("TRELLIS_COMB") == 83640
    assert rep.available("MULT18X18D") == 156
    assert rep.available("DP16KD") == 208
    assert rep.available("NO_SUCH_BEL") == 0
    assert len(rep.critical_path) >= 2
    assert rep.synth_seconds > 0 and rep.pnr_seconds > 0


def test_counter_netlist_matches_pyosys_resources():
    assert counter_report().synth == resources(Counter(), "ecp5")


def test_device_is_passed_on():
    rep = counter_report("25k")
    assert rep.available("TRELLIS_COMB") == 24288
    assert rep.available("MULT18X18D") == 28
    assert rep.ff == counter_report().ff


def test_seeds_share_one_synthesis():
    reps = place_and_route_seeds(Counter(), seeds=[2, 3], router="router1")
    assert [r.seed for r in reps] == [2, 3]
    assert all(r.router == "router1" for r in reps)
    assert reps[0].synth == reps[1].synth
    assert reps[0].synth_seconds == reps[1].synth_seconds
    assert all(r.ff == 8 and r.io == 10 for r in reps)


@pytest.mark.parametrize(("seeds", "exc", "message"), [
    ([], ValueError, r"^seeds must not be empty, not \[\]$"),
    (3, TypeError, r"^seeds must be a sequence of integers, not 3$"),
    ([1, 0], ValueError, r"^seed must be at least 1, not 0$"),
])
def test_bad_seeds(seeds, exc, message):
    with pytest.raises(exc, match=message):
        place_and_route_seeds(Counter(), seeds=seeds)


def test_placement_only_gives_an_estimate():
    rep = place_and_route(Counter(), route=False)
    assert rep.routed is False and counter_report().routed is True
    assert len(rep.fmax) == 1 and 0 < rep.fmax_mhz < 1000
    assert rep.critical_path == ()
    assert (rep.ff, rep.io) == (8, 10)


def test_folded_array_synthesizes_with_the_datapath():
    """The wrapper's synthesis keeps every multiplier of the bare array and adds registers;
    its memories are block RAM (the quick profile's check of :class:`FoldedTop`)."""
    bare = resources(tiny_array(), "ecp5")
    folded = resources(FoldedTop(tiny_array(), fold_width=4, seed_pins=4), "ecp5")
    assert folded.dsp == bare.dsp > 0
    assert folded.ff > bare.ff
    assert folded.bram >= 4


@pytest.mark.nightly
def test_folded_array_keeps_the_datapath():
    """Placed and routed (about a minute and a half: nightly)."""
    dut = tiny_array()
    bare = resources(tiny_array(), "ecp5")
    top = FoldedTop(dut, fold_width=4, seed_pins=4)
    rep = place_and_route(top)
    # clock, reset, 4 seed pins, 2 x 4 folded pins, busy
    assert rep.io == 15
    # every multiplier and register of the bare array survives inside the wrapper
    assert rep.dsp == rep.synth.dsp == bare.dsp > 0
    assert rep.ff == rep.synth.ff > bare.ff
    # the eight memories (w, v, u, b) of 512 words fit in one DP16KD each; tanh ROMs add more
    assert rep.bram >= 4
    assert rep.lut >= rep.synth.lut
    assert 0 < rep.fmax_mhz < 1000


def test_design_that_does_not_fit_raises_with_log():
    with pytest.raises(RuntimeError, match=r"^nextpnr-ecp5 failed .*log tail:\n(.|\n)*ERROR"):
        place_and_route(WideRegister(), device="25k")


def test_timeout_raises():
    with pytest.raises(RuntimeError, match=r"timed out after 0\.001 s"):
        place_and_route(Counter(), timeout=0.001)


@pytest.mark.parametrize(("kwargs", "exc", "message"), [
    ({"device": "100k"}, ValueError, r"^device must be one of '12k', .*, not '100k'$"),
    ({"device": 85}, TypeError, r"^device must be a str, not 85$"),
    ({"package": "CABGA 381"}, ValueError, r"^package must be .*, not 'CABGA 381'$"),
    ({"speed": 5}, ValueError, r"^speed must be one of 6, 7, 8, not 5$"),
    ({"speed": "6"}, TypeError, r"^speed must be an integer, not '6'$"),
    ({"freq_mhz": 0}, ValueError, r"^freq_mhz must be a positive finite number, not 0$"),
    ({"freq_mhz": "100"}, TypeError, r"^freq_mhz must be a number, not '100'$"),
    ({"seed": 0}, ValueError, r"^seed must be at least 1, not 0$"),
    ({"timeout": -1}, ValueError, r"^timeout must be positive, not -1$"),
    ({"router": "router3"}, ValueError,
     r"^router must be one of 'router2', 'router1', not 'router3'$"),
    ({"router": None}, TypeError, r"^router must be a str, not None$"),
    ({"route": 1}, TypeError, r"^route must be a bool, not 1$"),
    ({"name": "a b"}, ValueError, r"^name must be an identifier, not 'a b'$"),
])
def test_bad_parameters(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        place_and_route(Counter(), **kwargs)


@pytest.mark.parametrize(("kwargs", "exc", "message"), [
    ({"depth": 1}, ValueError, r"^depth must be at least 2, not 1$"),
    ({"fold_width": 33}, ValueError, r"^fold_width must be from 1 to 32, not 33$"),
    ({"fold_width": 2.0}, TypeError, r"^fold_width must be an integer, not 2\.0$"),
    ({"seed_pins": 0}, ValueError, r"^seed_pins must be from 1 to 64, not 0$"),
    ({"seed": -1}, ValueError, r"^seed must be at least 0, not -1$"),
])
def test_folded_top_bad_parameters(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        FoldedTop(tiny_array(), **kwargs)


def test_folded_top_needs_a_core():
    with pytest.raises(TypeError, match=r"^dut must be a PEArray, not <.*Counter"):
        FoldedTop(Counter())
