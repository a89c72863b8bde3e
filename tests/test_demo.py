"""``fixar-hw demo``: the end-to-end run (quick mode), its report, its checker and its options.

The quick run (a 3-8-1 actor trained for 3 episodes, 2 training steps and 2 actions on a 2x2 x 2
core in Amaranth's simulator, no synthesis) runs once per module; the other tests read its
report and recompute its numbers independently.
"""

import csv
import dataclasses
import re

import numpy as np
import pytest

import fixar_hw.apps.demo as demo
from fixar_hw.apps.cli import main
from fixar_hw.apps.demo import Check, compare, demo_settings
from fixar_hw.config import CoreConfig
from sw_model.arch import engine as en
from sw_model.rl.ddpg import DDPGAgent, evaluate
from sw_model.rl.image import WeightImage


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """``fixar-hw demo --quick``: its exit status, output directory, stdout and result."""
    out = tmp_path_factory.mktemp("demo")
    results = []
    real = demo.run_demo

    def spy(*args, **kwargs):
        results.append(real(*args, **kwargs))
        return results[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(demo, "run_demo", spy)
        code = main(["demo", "--quick", "--no-progress", "--out", str(out)])
    return code, out, results[0]


def report_checks(text: str) -> dict[str, tuple[int, int, str]]:
    """Rows of the report's bit-exact table: name -> (compared, mismatches, result)."""
    section = text.split("## Bit-exact checks")[1].split("## Cycles")[0]
    rows = {}
    for m in re.finditer(r"^\| (.+?) \| ([\d,]+) \| (\d+) \| (.+?) \|$", section, re.M):
        rows[m[1]] = (int(m[2].replace(",", "")), int(m[3]), m[4])
    return rows


def report_row(text: str, label: str) -> list[str]:
    line = next(x for x in text.splitlines() if x.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split("|")][1:]


def number(text: str) -> int:
    return int(text.replace(",", ""))


# --- the quick run ---------------------------------------------------------------------------

def test_quick_demo_passes_and_writes_its_report(quick_run):
    code, out, result = quick_run
    assert code == 0
    for name in ("report.md", "learning_curve.png", "cycles.png", "returns.csv",
                 "weights.fximg", "core_config.json"):
        assert (out / name).stat().st_size > 0, name
    assert not (out / "utilisation.png").exists()  # quick mode does not synthesize
    for name in ("learning_curve.png", "cycles.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG")
    text = (out / "report.md").read_text()
    assert "all bit-exact checks passed" in text
    assert "fixar-hw demo --quick --out" in text
    checks = report_checks(text)
    assert len(checks) == len(result.checks) >= 12
    for name, (compared, mismatches, verdict) in checks.items():
        assert compared > 0 and mismatches == 0 and verdict == "pass", name
    for name in ("row unit, actor layer 1", "weights after 2 training steps",
                 "adam v after 2 training steps", "noisy actions"):
        assert name in checks
    assert result.ok


def test_report_numbers_agree_with_a_recomputation(quick_run):
    """Cycles from the compiled programs, returns from the saved weight image, episode count
    from the CSV, throughput from the cycles."""
    _, out, result = quick_run
    text = (out / "report.md").read_text()
    config = CoreConfig.load(out / "core_config.json")
    assert config == result.config
    e = config.engine
    agent = DDPGAgent.from_image(WeightImage.load(out / "weights.fximg"))
    assert agent.opt.act16 is not None  # the 16-bit formats were frozen before the core ran
    fmts = agent.formats
    step, act = en.compile_step(e, fmts), en.compile_act(e, fmts)
    model = report_row(text, "array cycle model (`program_cycles`)")
    assert [number(x) for x in model] == [en.program_cycles(e, step)["array_cycles"],
                                          en.program_cycles(e, act)["array_cycles"]]
    counters = report_row(text, "array cycles (counter `array`)")
    for got, program in zip(counters, (step, act), strict=True):
        ops = sum(isinstance(op, en.ArrayOp) for op in program)
        assert number(got) == en.program_cycles(e, program)["array_cycles"] + 2 * ops
    engine = [number(x) for x in report_row(text, "engine cycles (counter `cycles`)")]
    assert engine == [number(x) for x in report_row(text, "predicted (`EngineDescription.cycles`)")]
    busy = [number(x) for x in report_row(text, "busy cycles incl. DMA (counter `busy_cycles`)")]
    assert busy[0] > engine[0] and busy[1] > engine[1]
    # the QAT policy's return, from the saved image
    want = np.mean(evaluate(agent, "pendulum", result.settings.eval_episodes))
    assert report_row(text, "QAT fixed point (16-bit activations, Q12.20 weights)")[0] \
        == f"{want:.1f}"
    with open(out / "returns.csv") as f:
        assert len(list(csv.DictReader(f))) == result.settings.episodes == 3
    m = re.search(r"Projected at ([\d.]+) MHz \((.+?)\): ([\d,.]+) training samples/s", text)
    assert m is not None
    samples = e.ddpg.batch_size * float(m[1]) * 1e6 / busy[0]
    assert number(m[3].split(".")[0]) == round(samples)


def test_summary_names_what_differed(quick_run, monkeypatch, capsys):
    """A corrupted hardware result makes the run fail, exit 1 and say what differed."""
    _, out, result = quick_run
    core = result.core
    bad = compare("noisy actions", np.array([[5]]), np.array([[4]]))
    corrupted = dataclasses.replace(result, core=dataclasses.replace(
        core, checks=[*core.checks[:-1], bad]))
    assert not corrupted.ok
    monkeypatch.setattr(demo, "run_demo", lambda *a, **k: corrupted)
    assert main(["demo", "--quick", "--no-progress", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert ("MISMATCH noisy actions: noisy actions at (0, 0) is 5, the golden model 4 "
            "(1 of 1 differ)") in captured.out
    assert "differs from the golden model" in captured.err



def test_summary_and_report_say_whether_the_core_fits(quick_run, tmp_path):
    """Board figures of a core that fits and of one that does not: the printed summary and
    ``report.md`` say which, with what is left of each resource."""
    _, _, result = quick_run
    capacity = {"lut": 83_640, "ff": 83_640, "dsp": 156, "bram": 208}
    used = {"lut": 34_273, "ff": 11_247, "dsp": 104, "bram": 150}
    fits = demo.BoardFigures("ulx3s-85f", "LFE5U-85F", used, capacity,
                             {k: used[k] / capacity[k] for k in used}, True, 25.0, None, 0.1,
                             synth_seconds=175.0, cached=True)
    summary = demo.format_summary(dataclasses.replace(result, board=fits))
    assert ("board ulx3s-85f: the core fits the LFE5U-85F with room to spare: LUT 41 % used "
            "(49,367 free), FF 13 % used (72,393 free), DSP 67 % used (52 free), BRAM 72 % "
            "used (58 free)") in summary
    assert "  synthesized in 175 s (read from the cache); at 25 MHz (board clock)" in summary
    text = demo.write_report(dataclasses.replace(result, board=fits), tmp_path).read_text()
    assert "**The core fits the LFE5U-85F with room to spare**: LUT 41 % used" in text
    big = {**used, "lut": 100_000}
    over = dataclasses.replace(fits, used=big, fits=False,
                               utilisation={k: big[k] / capacity[k] for k in big})
    summary = demo.format_summary(dataclasses.replace(result, board=over))
    assert "the core does NOT fit the LFE5U-85F: LUT 120 % used (16,360 too many)" in summary
    assert demo.fit_statement(dataclasses.replace(
        fits, used={**used, "lut": 70_000}, utilisation={"lut": 70_000 / 83_640})).startswith(
        "fits the LFE5U-85F, with little room: LUT 84 % used")
    # any resource beyond 75 % leaves little room: here block RAM, the LUTs at 41 %
    full = {**used, "bram": 195}
    assert demo.fit_statement(dataclasses.replace(
        fits, used=full, utilisation={k: full[k] / capacity[k] for k in full})) == (
        "fits the LFE5U-85F, with little room: LUT 41 % used (49,367 free), FF 13 % used "
        "(72,393 free), DSP 67 % used (52 free), BRAM 94 % used (13 free)")

# --- the checker -----------------------------------------------------------------------------

def test_compare_accepts_equal_results():
    w = {"actor": {"l1.w": np.arange(6).reshape(2, 3), "l1.b": np.zeros(2, dtype=np.int64)}}
    check = compare("weights", w, {"actor": {k: v.copy() for k, v in w["actor"].items()}})
    assert check == Check("weights", 8, 0, "")
    assert check.ok


def test_compare_finds_a_corrupted_word():
    want = {"actor": {"l1.w": np.arange(12).reshape(3, 4)}, "critic": {"l1.b": np.ones(3)}}
    got = {"actor": {"l1.w": want["actor"]["l1.w"].copy()}, "critic": {"l1.b": np.ones(3)}}
    got["actor"]["l1.w"][2, 1] += 1 << 20
    check = compare("weights", got, want)
    assert not check.ok
    assert (check.compared, check.mismatched) == (15, 1)
    assert check.detail == (f"weights[actor.l1.w] at (2, 1) is {9 + (1 << 20)}, the golden "
                            "model 9 (1 of 12 differ)")


def test_compare_counts_missing_keys_and_shapes():
    check = compare("m", {"a": np.zeros(2), "b": np.zeros(3)}, {"a": np.zeros(3), "c": 1})
    assert check.mismatched == 3 and check.compared == 0 and not check.ok
    assert check.detail == "m[a] has shape (2,), the golden model (3,)"
    assert compare("step", 7, 8).detail == "step is 7, the golden model 8 (1 of 1 differ)"
    assert not compare("nothing", {}, {}).ok  # nothing compared is not a pass


# --- options -------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["demo", "--episodes", "0"], "expected a positive integer, not '0'"),
    (["demo", "--seed", "-1"], "expected a non-negative integer, not '-1'"),
    (["demo", "--quick", "--vectors", "3"], "unrecognized arguments: --vectors 3"),
    (["demo", "--transport", "fpga"], "invalid choice: 'fpga'"),
])
def test_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_unknown_board(capsys):
    names = demo.board_names()
    assert main(["demo", "--quick", "--board", "nope"]) == 2
    err = capsys.readouterr().err
    assert f"unknown --board 'nope'; choose from {', '.join(names)}" in err


@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(episodes=0), ValueError, r"^episodes must be at least 1, not 0$"),
    (dict(episodes=2.5), TypeError, r"^episodes must be an integer, not 2\.5$"),
    (dict(seed=-3), ValueError, r"^seed must be at least 0, not -3$"),
    (dict(board=""), ValueError, r"^board must be a board name, not ''$"),
    (dict(transport="fpga"), ValueError, r"^transport must be one of sim, verilator, not 'fpga'$"),
])
def test_settings_errors(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        demo_settings(quick=True, **kwargs)


def test_settings_sizes():
    quick, full = demo_settings(quick=True), demo_settings()
    assert (quick.steps, quick.synth, full.synth) == (600, False, True)
    for s in (quick, full, demo_settings(episodes=1)):
        d = s.ddpg
        # the 16-bit formats freeze before training ends, so the core never tracks ranges
        assert d.warmup_steps + d.qat_delay < s.steps
        s.core_config()  # the networks fit the core


def test_core_check_rejects_another_agent():
    settings = demo_settings(quick=True)
    config = settings.core_config()
    other = DDPGAgent(settings.ddpg.replace(hidden=(4,)), 3, 1, [-2.0], [2.0])
    with pytest.raises(ValueError, match=r"^agent must have the configuration and sizes"):
        demo.run_core_check(other, config, steps=1, actions=1)
    agent = DDPGAgent(settings.ddpg, 3, 1, [-2.0], [2.0])
    with pytest.raises(ValueError, match=r"^steps must be at least 1, not 0$"):
        demo.run_core_check(agent, config, steps=0, actions=1)


def test_narrow16_core_is_bit_exact():
    """The 16-bit format set on the simulated core: a short fixed-point training run, then two
    steps and two actions compared with the golden model and the cycle model."""
    from sw_model.arch.ddpg_config import format_set
    from sw_model.rl.ddpg import train

    settings = demo_settings(quick=True, episodes=1)
    ddpg = settings.ddpg.replace(precision="fixed", **format_set("narrow16"))
    settings = dataclasses.replace(settings, ddpg=ddpg)
    config = settings.core_config()
    assert config.engine.ddpg.weight_fmt.width == 16
    agent = train(ddpg, demo.ENV, settings.steps).agent
    run = demo.run_core_check(agent, config, steps=2, actions=2)
    assert run.checks and all(c.ok for c in run.checks), [c for c in run.checks if not c.ok]
    assert sum(c.compared for c in run.checks) > 300
    assert run.step_counters[-1]["cycles"] == run.step_predicted["cycles"]


# --- the default core on the board -----------------------------------------------------------

def test_default_core_is_the_documented_one_and_fits_the_85f():
    """The full run's core is the one ``demo_settings`` documents (a 2x2 grid, one AAP core,
    four iterative update units, 32-32 networks, batch 16), and nothing known before synthesis
    keeps it off the ULX3S-85F: no resource floor (the 4x4 two-core core needed 2.6 million
    flip-flops), and its memories (the engine's, a copy per read port, and the RAM the driver
    stages images in) fit the 208 block RAMs' bits (the one-core 4x4 core with 64-64
    networks and batch 64 needed more than twice that)."""
    from fixar_hw.flow.build import floor_check
    from fixar_hw.flow.floor import resource_floor
    from fixar_hw.platforms.boards import get_board
    from fixar_hw.soc.system import driver_memory_words
    from fixar_hw.train.description import memory_depths, memory_layouts, memory_ports

    settings = demo_settings(transport="sim")
    assert settings.synth and settings.board == "ulx3s-85f"
    config = settings.core_config()
    e, d = config.engine, config.engine.ddpg
    assert (e.size, e.cores, e.update_units, e.update_kind, e.update_bits) \
        == (2, 1, 4, "iterative", 2)
    assert (tuple(d.hidden), d.batch_size, d.precision) == ((32, 32), 16, "qat")
    board = get_board("ulx3s-85f")
    assert resource_floor(config, board.family) == []
    floor_check(config, board)  # raises DoesNotFit when the floor is beyond the board
    depths, layouts = memory_depths(e), memory_layouts(e)
    bits = sum(depths[n] * layouts[n].size * max(1, reads)
               for n, (reads, _) in memory_ports(e).items())
    bits += 32 * (1 << (driver_memory_words(config) - 1).bit_length())
    assert bits <= board.capacity["bram"] * 18 * 1024 * 0.9


@pytest.mark.nightly
def test_default_core_synthesizes_within_the_85f():
    """The full run's core synthesized for the ULX3S-85F (about 4 minutes, under 1 GB): at
    most 75 % of the LUTs, and within the multipliers and block RAMs."""
    from fixar_hw.flow.build import estimate

    report = estimate(demo_settings(transport="sim").core_config(), "ulx3s-85f")
    assert report.fits and not report.predicted
    assert report.utilisation["lut"] <= 0.75
    assert report.used["dsp"] <= 156 and report.used["bram"] <= 208


def test_board_cache_survives_an_edit_that_keeps_the_netlist(tmp_path, monkeypatch):
    """The demo's board step (:func:`fixar_hw.flow.build.estimate`) finds a synthesis by the
    elaborated netlist too: after an edit of a source that leaves the netlist as it was (the
    digest of the sources changes), the design is elaborated again but not synthesized."""
    from fixar_hw.flow import build as fb

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = fb.estimate(None, "ulx3s-85f")
    assert len(list((tmp_path / "fixar-hw" / "builds" / "plans").glob("ulx3s-85f-*.json"))) == 1

    def no_synthesis(*args, **kwargs):
        raise AssertionError("synthesized again")

    monkeypatch.setattr(fb, "_run_plan", no_synthesis)
    monkeypatch.setattr(fb, "_source_digest", lambda: "an edited source")
    assert fb.estimate(None, "ulx3s-85f") == first
    with pytest.raises(AssertionError, match="synthesized again"):
        fb.estimate(None, "ulx3s-45f")
