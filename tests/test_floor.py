"""Resource floors before synthesis (fixar_hw.flow.floor) and the refusals they allow
(fixar_hw.flow.build.floor_check): closed forms here, soundness against synthesis in
tests/test_build.py."""

import dataclasses
import time

import pytest

from fixar_hw._util import never_elaborated
from fixar_hw.errors import DoesNotFit
from fixar_hw.flow import build as fb
from fixar_hw.flow.floor import FloorItem, resource_floor
from fixar_hw.train.buffers import Buffers
from fixar_hw.train.description import memory_depths, memory_layouts, memory_ports

from .test_build import small_config


def test_single_core_iterative_builds_have_no_floor():
    """One core: every memory has one write port (block RAM holds it); iterative units have
    no pipeline to count."""
    assert resource_floor(small_config(), "ecp5") == []


@pytest.mark.parametrize("family", ["ecp5", "ice40", "xilinx"])
@pytest.mark.parametrize("units", [1, 4])
def test_pipelined_units_floor(family, units):
    config = small_config("narrow16", update_units=units, update_kind="pipelined")
    items = resource_floor(config, family)
    if family == "xilinx":  # shift registers may live in LUTs there
        assert items == []
        return
    # 39 + W stages, each holding op (2), w (16), m (16) and v (63) bits
    assert items == [FloorItem("ff", units * (39 + 16) * (2 + 16 + 16 + 63),
                               f"{units} pipelined update unit(s)", items[0].why)]
    assert f"{39 + 16} stages" in items[0].why


@pytest.mark.parametrize("cores", [2, 3])
def test_multi_write_memories_floor(cores):
    """G and A take a write port per core: with three ports or more, one flip-flop a bit."""
    config = small_config(cores=cores)
    e = config.engine
    depths, layouts = memory_depths(e), memory_layouts(e)
    bits = {name: max(depths[name], 2) * layouts[name].size for name in ("G", "A")}
    items = resource_floor(config, "ecp5")
    assert [(i.kind, i.count, i.part) for i in items] == [
        ("ff", bits["G"], "memory G"), ("ff", bits["A"], "memory A")]
    assert f"{cores} write and {2 * cores} read ports" in items[1].why


def test_memory_ports_are_the_buffers_ports():
    """The port counts the floor uses are the ones Buffers builds."""
    for cores in (1, 2, 3):
        config = small_config(cores=cores)
        buf = never_elaborated(Buffers(config.engine))
        names = {"W": ("w_rd", "w_wr"), "G": ("g_rd", "g_wr"), "M": ("m_rd", "m_wr"),
                 "V": ("v_rd", "v_wr"), "A": ("a_rd", "a_wr")}

        def count(attr, buf=buf):
            port = getattr(buf, attr)
            return len(port) if isinstance(port, list) else 1

        want = {n: (count(r), count(w)) for n, (r, w) in names.items()}
        assert memory_ports(config.engine) == want


def _demo_sized():
    """A 4x4, two-core, 32-bit core of 64-64 networks and batch 64: far beyond any board."""
    base = small_config()
    ddpg = dataclasses.replace(base.engine.ddpg, hidden=(64, 64), batch_size=64,
                               buffer_size=64)
    return base.replace(engine=dataclasses.replace(base.engine, ddpg=ddpg, size=4, cores=2,
                                                   update_units=4))


def test_build_refuses_before_synthesis(tmp_path, monkeypatch):
    def no_tools(*args, **kwargs):
        raise AssertionError("a tool ran")

    monkeypatch.setattr(fb, "run_tool", no_tools)
    config = _demo_sized()
    start = time.monotonic()
    with pytest.raises(DoesNotFit, match=r"known before synthesis \(none was run\): it needs "
                                         r"at least [0-9,]+ FFs of 83,640") as info:
        fb.build(config, "ulx3s-85f", tmp_path)
    assert time.monotonic() - start < 5
    floor = sum(i.count for i in resource_floor(config, "ecp5"))
    assert info.value.used == {"ff": floor} and info.value.over == {"ff": (floor, 83_640)}
    assert "memory A has 2 write and 4 read ports" in str(info.value)
    report = fb.estimate(config, "ulx3s-85f")  # not an error there: a predicted report
    assert report.predicted and not report.fits and report.used == {"ff": floor}
    assert "Refused before synthesis" in report.to_markdown()
    assert "| FF | " + f"{floor:,}" in report.to_markdown()
    assert not list((tmp_path).glob("*"))  # nothing written


def test_floor_errors():
    with pytest.raises(TypeError, match=r"^config must be a CoreConfig, not 3$"):
        resource_floor(3, "ecp5")
