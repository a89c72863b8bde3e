"""``fixar-hw search`` end to end in a tiny configuration, and its errors."""

from __future__ import annotations

import contextlib
import csv
import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixar_hw.apps.cli import main
from sw_model.search.cost import CostModel, LayerChoice, LayerShape
from sw_model.search.env import Budget

TINY = ["search", "--train-steps", "400", "--hidden", "8", "8", "--iterations", "3",
        "--episodes-per-iter", "6", "--states", "32", "--eval-episodes", "1", "--lanes", "8",
        "--seed", "2", "--no-progress"]
BUDGET = ["--budget-luts", "1500", "--budget-mem-bits", "1500"]


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _choice(text):
    scheme, w, a = text.split(":")
    return LayerChoice(scheme, int(w), int(a))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("search") / "run"
    assert main([*TINY, *BUDGET, "--method", "all", "--out", str(out)]) == 0
    return out


def test_search_writes_consistent_csv_png_and_json(run, capsys):
    rows = _rows(run / "search.csv")
    assert list(rows[0]) == ["method", "episode", "l1", "l2", "l3", "luts", "dsps", "mem_bits",
                             "cycles", "quality", "usage", "fits", "reward"]
    by_method = {m: [r for r in rows if r["method"] == m]
                 for m in ("ppo", "haq", "random", "uniform")}
    # PPO scores the 125 uniform configurations first; HAQ and random search get as many
    assert len(by_method["ppo"]) == len(by_method["haq"]) == len(by_method["random"]) == 143
    assert len(by_method["uniform"]) == 125 and len(rows) == 4 * 125 + 54
    assert [r["l1"] for r in by_method["ppo"][:125]] == [r["l1"] for r in by_method["uniform"]]
    shapes = [LayerShape("l1", 3, 8), LayerShape("l2", 8, 8), LayerShape("l3", 8, 1)]
    model = CostModel.load(lanes=8, mapping="pipelined")  # the default of the search
    budget = Budget(luts=1500, mem_bits=1500)
    for r in rows:
        cost = model.network_cost(shapes, [_choice(r[k]) for k in ("l1", "l2", "l3")])
        assert (float(r["luts"]), float(r["dsps"])) == (cost.luts, cost.dsps)
        assert (int(r["mem_bits"]), int(r["cycles"])) == (cost.mem_bits, cost.cycles)
        assert r["fits"] == str(int(budget.fits(cost)))
        assert float(r["usage"]) == budget.usage(cost)
        assert -2000 < float(r["quality"]) <= 0  # the return of one seeded episode

    png = (run / "cost_vs_quality.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10000

    best = json.loads((run / "best.json").read_text())
    assert best["budget"] == {"luts": 1500.0, "mem_bits": 1500}
    assert best["layers"] == [["l1", 3, 8], ["l2", 8, 8], ["l3", 8, 1]]
    assert best["reference"]["choices"] == ["fixed:16:16"] * 3
    assert (best["mapping"], best["quality"]) == ("pipelined", "return")
    for method, entry in best["methods"].items():
        fitting = [r for r in by_method[method] if r["fits"] == "1"]
        assert entry["evaluated"] == len(by_method[method])
        if not fitting:
            assert entry["best"] is None
            continue
        top = max(fitting, key=lambda r: float(r["quality"]))
        b = entry["best"]
        assert b["choices"] == [top["l1"], top["l2"], top["l3"]]
        assert b["quality"] == float(top["quality"]) == b["return"]
        assert -2000 < b["heldout_return"] <= 0
        assert b["cost"]["luts"] <= 1500 and b["cost"]["mem_bits"] <= 1500
        assert b["cost"]["luts"] == float(top["luts"])
        assert b["cost"]["mem_bits"] == int(top["mem_bits"])
        assert -2000 < b["return"] <= 0
    # PPO starts from the best uniform configuration, so it never ends worse
    ppo, uni = best["methods"]["ppo"]["best"], best["methods"]["uniform"]["best"]
    assert ppo["quality"] >= uni["quality"]
    # the uniform baseline always finds the best uniform configuration that fits
    assert best["methods"]["uniform"]["best"] is not None


def test_search_is_deterministic(run, tmp_path, capsys):
    out = tmp_path / "again"
    assert main([*TINY, *BUDGET, "--method", "all", "--out", str(out)]) == 0
    assert (out / "search.csv").read_text() == (run / "search.csv").read_text()
    a, b = (json.loads((d / "best.json").read_text()) for d in (run, out))
    for m in a["methods"]:
        a["methods"][m].pop("seconds")
        b["methods"][m].pop("seconds")
    assert a == b
    text = capsys.readouterr().out
    assert "fx16/16" in text and "float actor return" in text


@pytest.fixture(scope="module")
def pendulum_image(tmp_path_factory):
    """A tiny float Pendulum agent's weight image (3-6-1 actor), trained by the CLI."""
    img = tmp_path_factory.mktemp("agent")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", "--precision", "float64", "--steps", "250", "--hidden", "6",
                     "--warmup", "200", "--batch-size", "16", "--eval-episodes", "1", "--out",
                     str(img), "--no-progress"]) == 0
    return img / "weights.fximg"


def test_search_from_a_weight_image(tmp_path, capsys, pendulum_image):
    out = tmp_path / "s"
    assert main(["search", "--weights", str(pendulum_image), "--method", "haq",
                 "--episodes", "5", "--states", "16", "--eval-episodes", "1",
                 "--budget-dsps", "40", "--out", str(out), "--no-progress"]) == 0
    rows = _rows(out / "search.csv")
    assert len(rows) == 5 and {r["method"] for r in rows} == {"haq"}
    assert list(rows[0])[2:4] == ["l1", "l2"]


@pytest.mark.parametrize("extra, message", [
    ([], "fixar-hw search: give --max-loss, or at least one of --budget-luts, --budget-dsps, "
         "--budget-mem-bits, --budget-cycles"),
    (["--max-loss", "2%", "--budget-luts", "2000"],
     "fixar-hw search: give --max-loss or budget limits (--budget-*), not both"),
    (["--max-loss", "200%"], "fixar-hw search: max_loss must be a fraction in (0, 1) or a "
                             "percentage like '2%', not '200%'"),
    (["--max-loss", "2%", "--cost", "luts+flops"],
     "fixar-hw search: cost metric must be terms [weight*]resource joined by '+' with "
     "resources among ('luts', 'dsps', 'mem_bits', 'cycles'), not 'luts+flops'"),
    (["--budget-luts", "-5"], "fixar-hw search: Budget luts must be finite and in (0.0, inf), "
                              "not -5.0"),
    (["--budget-luts", "2000", "--weights", "x.fximg"],
     "fixar-hw search: give --weights or --train-steps, not both"),
    (["--budget-luts", "2000", "--method", "descent"],
     "fixar-hw search: --method descent needs --max-loss"),
    (["--budget-luts", "2000", "--floor"], "fixar-hw search: --floor needs --max-loss"),
    (["--budget-luts", "100"], "fixar-hw search: no configuration fits the budget (luts 100); "
                               "the cheapest need "),
    (["--budget-cycles", "10"], "cycles (fixed:2:4 fixed:2:4 fixed:2:4)"),
])
def test_search_errors(tmp_path, capsys, extra, message):
    out = tmp_path / "x"
    assert main([*TINY, *extra, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_search_bad_weight_images(tmp_path, capsys):
    bad = tmp_path / "bad.fximg"
    bad.write_bytes(b"not an image at all")
    for path in (bad, tmp_path / "missing.fximg"):
        assert main(["search", "--weights", str(path), "--budget-luts", "2000", "--out",
                     str(tmp_path / "x"), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"fixar-hw search: {path}: ")
    assert not (tmp_path / "x").exists()


def test_search_bad_option_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["search", "--budget-luts", "2000", "--method", "sa"])
    assert exc.value.code == 2
    assert "invalid choice: 'sa'" in capsys.readouterr().err


def test_run_search_shared_mapping_and_proxy(tmp_path):
    from fixar_hw.apps.search import format_summary, run_search, train_actor

    weights = train_actor(300, 1, hidden=(6,))
    budget = Budget(luts=1000)
    run = run_search(weights, budget, tmp_path / "s", methods=("uniform",), lanes=4,
                     states=16, return_episodes=1, mapping="shared", quality="proxy",
                     metric="rel", progress=False)
    assert (run.best["mapping"], run.best["quality"], run.best["metric"]) == (
        "shared", "proxy", "rel")
    model = CostModel.load(lanes=4)
    shapes = [LayerShape("l1", 3, 6), LayerShape("l2", 6, 1)]
    for ep in run.results["uniform"].history:
        assert ep.cost == model.network_cost(shapes, ep.choices)
        assert ep.quality <= 0
    assert "uniform" in format_summary(run)
    for kw, msg in (({"mapping": "serial"}, r"^mapping must be one of"),
                    ({"quality": "q"}, r"^quality must be one of"),
                    ({"metric": "q_drop"}, r"^metric must be 'mse' or 'rel', not 'q_drop'$")):
        with pytest.raises(ValueError, match=msg):
            run_search(weights, budget, tmp_path / "x", progress=False, **kw)
    assert not (tmp_path / "x").exists()


def test_check_feasible_pipelined():
    import numpy as np

    from fixar_hw.apps.search import check_feasible
    from sw_model.search.env import QuantEnv

    shapes = [LayerShape("l1", 3, 8), LayerShape("l2", 8, 1)]
    mats = [np.ones((8, 3)), np.ones((1, 8))]
    model = CostModel.load(lanes=4, mapping="pipelined")
    lanes = model.allocate(shapes)
    # the cheapest LUTs: each layer's cheapest kind on its own lanes
    least = sum(min(model.engine(s, w, a, lanes=n)[0] for s in ("fixed", "sp2")
                    for w in (2, 3) for a in (4, 6)) for n in lanes)

    def env(budget):
        return QuantEnv(shapes, mats, cost_model=model, budget=budget, evaluate=lambda c: 0.0)

    check_feasible(env(Budget(luts=least)))
    with pytest.raises(ValueError, match=r"^no configuration fits the budget \(luts "):
        check_feasible(env(Budget(luts=least - 1)))


def test_search_cli_passes_mapping_quality_metric(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main([*TINY, *BUDGET, "--method", "uniform", "--mapping", "shared", "--quality",
                 "proxy", "--metric", "rel", "--out", str(out)]) == 0
    best = json.loads((out / "best.json").read_text())
    assert (best["mapping"], best["quality"], best["metric"]) == ("shared", "proxy", "rel")
    with pytest.raises(SystemExit) as info:
        main([*TINY, *BUDGET, "--mapping", "serial"])
    assert info.value.code == 2


LOSS = ["--max-loss", "2%", "--cost", "luts+30*dsps", "--heldout-episodes", "3",
        "--episode-pool", "6", "--eval-episodes", "2", "--recheck", "3", "--incumbents", "2",
        "--confidence", "0.5"]


@pytest.fixture(scope="module")
def loss_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("loss") / "run"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main([*TINY, *LOSS, "--method", "all", "--episodes", "10", "--floor", "--out",
                     str(out)]) == 0
    (out / "stdout.txt").write_text(buf.getvalue())
    return out


def test_loss_search_outputs(loss_run):
    from sw_model.search.objective import CostMetric

    rows = _rows(loss_run / "search.csv")
    by_method = {m: [r for r in rows if r["method"] == m]
                 for m in ("ppo", "haq", "random", "uniform", "descent")}
    assert [len(v) for v in by_method.values()] == [143, 10, 10, 125, 10]
    best = json.loads((loss_run / "best.json").read_text())
    assert (best["cost"], best["max_loss"], best["incumbents"], best["confidence"],
            best["moves"]) == ("luts+30*dsps", 0.02, 2, 0.5, "local")
    assert best["episode_pool"] == list(range(200010, 200016))
    # held out: starts spread over Pendulum's initial states, shifted by seed 100000 * 2 + 50000
    from sw_model.search.evaluators import covering_starts

    assert (best["heldout"], best["heldout_shift_seed"]) == ("lattice", 250000)
    assert best["heldout_episodes"] == covering_starts("pendulum", 3, 250000).tolist()
    metric = CostMetric.parse("luts+30*dsps")
    shapes = [LayerShape("l1", 3, 8), LayerShape("l2", 8, 8), LayerShape("l3", 8, 1)]
    model = CostModel.load(lanes=8, mapping="pipelined")
    ref = model.network_cost(shapes, [LayerChoice("fixed", 16, 16)] * 3)
    assert best["reference"]["metric"] == metric(ref)
    for method, entry in best["methods"].items():
        hist = by_method[method]
        assert entry["sampled"] == len(hist)
        assert entry["evaluated"] == len({tuple(r[k] for k in ("l1", "l2", "l3"))
                                          for r in hist})
        assert entry["heldout_checked"] == len(entry["rechecked"]) >= 1
        for c in entry["rechecked"]:
            cost = model.network_cost(shapes, [_choice(x) for x in c["choices"]])
            assert c["metric"] == pytest.approx(metric(cost))
            assert c["meets"] == (c["heldout_loss"] <= 0.02)
            # the loss on the search's episodes is the row's quality
            q = next(float(r["quality"]) for r in hist
                     if [r["l1"], r["l2"], r["l3"]] == c["choices"])
            assert c["loss"] == -q
        meeting = [c for c in entry["rechecked"] if c["meets"]]
        if meeting:
            assert entry["winner"]["metric"] == min(c["metric"] for c in meeting)
            assert entry["winner"]["heldout_loss"] <= 0.02
        else:
            assert entry["winner"] is None
        assert entry["least_loss"]["heldout_loss"] == min(
            c["heldout_loss"] for c in entry["rechecked"])
        curve = [y for _, y in entry["time_to_quality"] if y is not None]
        assert curve == sorted(curve, reverse=True)
        assert entry["time_to_quality"][-1][1] == (
            None if entry["winner"] is None else entry["winner"]["metric"])
    png = (loss_run / "time_to_quality.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    # the floor: its cost, and the re-checked configurations that meet the bound below it
    floor = best["floor"]
    floors = [_choice(x) for x in floor["choices"]]
    assert floor["metric"] == pytest.approx(metric(model.network_cost(shapes, floors)))
    ref3 = [LayerChoice("fixed", 16, 16)] * 3

    def alone(k, c):
        return metric(model.network_cost(shapes, [*ref3[:k], c, *ref3[k + 1:]]))

    passing = {tuple(c["choices"]) for e in best["methods"].values()
               for c in e["rechecked"] if c["meets"]}
    assert floor["passing"] == len(passing)
    assert floor["undercut"] == sum(
        any(alone(k, _choice(x)) < alone(k, floors[k]) for k, x in enumerate(cs))
        for cs in passing)
    text = (loss_run / "stdout.txt").read_text()
    assert f"{floor['undercut']} of the {floor['passing']} re-checked configurations" in text
    assert "cheapest configuration by luts+30*dsps within 2.00% loss" in text
    for method, entry in best["methods"].items():
        line = next(x for x in text.splitlines() if x.startswith(f"{method} "))
        shown = entry["winner"] or entry["least_loss"]
        assert line.endswith(" ".join(shown["choices"]) + (
            "" if entry["winner"] else "  (nothing meets the bound held out; least loss shown)"))


def test_loss_search_is_deterministic_and_methods_independent(loss_run, tmp_path):
    out = tmp_path / "again"
    assert main([*TINY, *LOSS, "--method", "haq", "--episodes", "10", "--out", str(out)]) == 0
    again = _rows(out / "search.csv")
    assert again == [r for r in _rows(loss_run / "search.csv") if r["method"] == "haq"]
    a, b = (json.loads((d / "best.json").read_text()) for d in (loss_run, out))
    a["methods"]["haq"].pop("seconds")
    b["methods"]["haq"].pop("seconds")
    assert a["methods"]["haq"] == b["methods"]["haq"]


@given(pen=st.lists(st.lists(st.floats(0.0, 0.05), min_size=4, max_size=4), min_size=2,
                   max_size=4),
       limit=st.floats(0.0, 0.1))
def test_layer_floor_is_each_layers_cheapest_passing_choice(pen, limit):
    """A synthetic loss that adds up per layer (a penalty per choice, 0 at the reference):
    the floor against brute force over every choice of every layer."""
    from fixar_hw.apps.search import REFERENCE, layer_floor
    from sw_model.search.objective import CostMetric

    shapes = [LayerShape(f"l{k}", 6, 5) for k in range(len(pen))]
    actions = [LayerChoice("fixed", w, a) for w in (4, 8, 12, 16) for a in (8, 16)]
    model = CostModel.load(lanes=4, mapping="pipelined")
    metric = CostMetric.parse("luts")

    def penalty(k, c):  # coarser choices cost more loss; the reference none
        return 0.0 if c == REFERENCE else pen[k][(16 - c.w_bits) // 4 - 1 + (c.a_bits == 8)]

    calls = []

    def loss(choices):
        calls.append(choices)
        return sum(penalty(k, c) for k, c in enumerate(choices))

    got = layer_floor(shapes, actions, model, metric, loss, limit)

    def cost(k, c):
        return metric(model.network_cost(shapes, [*[REFERENCE] * k, c,
                                                  *[REFERENCE] * (len(shapes) - k - 1)]))

    for k, f in enumerate(got.choices):
        ok = [c for c in actions if penalty(k, c) <= limit]
        assert cost(k, f) == min(cost(k, c) for c in ok)
    assert got.metric == metric(model.network_cost(shapes, got.choices))
    assert got.heldout_loss == loss(got.choices)
    assert got.checked == len(calls) - 2  # the floor network is evaluated once more


def test_search_env_must_match_the_weight_image(tmp_path, capsys, pendulum_image):
    path = pendulum_image
    out = tmp_path / "s"
    assert main(["search", "--weights", str(path), "--env", "mountain_car_continuous",
                 "--max-loss", "2%", "--out", str(out), "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"fixar-hw search: --env mountain_car_continuous does not match {path}, an agent for "
        f"pendulum")
    assert not out.exists()


def test_search_envs_are_those_with_a_heldout_lattice():
    from fixar_hw.apps.cli import SEARCH_ENVS
    from fixar_hw.apps.search import TRAIN_NOISE
    from sw_model.search.evaluators import START_BOXES

    assert SEARCH_ENVS == tuple(START_BOXES) == tuple(TRAIN_NOISE)


def test_search_moves_are_ppos(tmp_path):
    from fixar_hw.apps.cli import SEARCH_MOVES
    from sw_model.search.ppo import MOVES

    assert sorted(SEARCH_MOVES) == sorted(MOVES)
    out = tmp_path / "grid"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([*TINY, *LOSS, "--method", "ppo", "--moves", "grid", "--out",
                     str(out)]) == 0
    assert json.loads((out / "best.json").read_text())["moves"] == "grid"
    with pytest.raises(SystemExit) as info:
        main([*TINY, *LOSS, "--moves", "near"])
    assert info.value.code == 2


def test_search_trains_and_searches_mountain_car(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["search", "--env", "mountain_car_continuous", "--train-steps", "300",
                 "--hidden", "6", "--max-loss", "5%", "--method", "uniform",
                 "--states", "16", "--eval-episodes", "1", "--episode-pool", "2",
                 "--heldout-episodes", "2", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "training a float64 mountain_car_continuous actor, hidden 6, 300 steps" in text
    best = json.loads((out / "best.json").read_text())
    assert best["env"] == "mountain_car_continuous"


def test_search_refuses_a_weight_image_of_other_sizes(tmp_path, capsys, pendulum_image):
    path = pendulum_image
    out = tmp_path / "s"
    assert main(["search", "--weights", str(path), "--hidden", "8", "--max-loss", "2%",
                 "--out", str(out), "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"fixar-hw search: {path}: the weight image's actor is 3-6-1, but the pendulum "
        f"networks asked for are actors 3-8-1")
    assert not out.exists()


def test_loss_search_with_seeded_heldout_episodes(tmp_path):
    from fixar_hw.apps.search import run_loss_search, train_actor

    weights = train_actor(200, 1, hidden=(6,))
    kw = {"methods": ("random",), "evaluations": 4, "states": 8, "episodes": 1, "pool": 2,
          "heldout_episodes": 2, "recheck": 2, "seed": 1, "progress": False}
    run = run_loss_search(weights, "5%", tmp_path / "s", heldout="seeds", **kw)
    assert run.best["heldout"] == "seeds" and "heldout_shift_seed" not in run.best
    assert run.best["heldout_episodes"] == [150000, 150001]
    with pytest.raises(ValueError, match=r"^heldout must be one of \('lattice', 'seeds'\), "
                                         r"not 'grid'$"):
        run_loss_search(weights, "5%", tmp_path / "x", heldout="grid", **kw)
    assert not (tmp_path / "x").exists()


def test_search_cli_engine_mapping_takes_the_grid(tmp_path):
    """``--mapping engine --size 2 --cores 1`` prices the 2x2 one-core array: one multiplier
    per PE and two per output column (``y*y``, ``e*act'``), 4 + 4 DSPs at these widths (the
    16x16x2 default would give 576)."""
    out = tmp_path / "engine"
    assert main([*TINY, "--max-loss", "2%", "--cost", "mem_bits", "--heldout-episodes", "3",
                 "--episode-pool", "6", "--eval-episodes", "2", "--recheck", "2", "--method",
                 "uniform", "--confidence", "0", "--mapping", "engine", "--size", "2",
                 "--cores", "1", "--out", str(out)]) == 0
    best = json.loads((out / "best.json").read_text())
    assert (best["mapping"], best["size"], best["cores"]) == ("engine", 2, 1)
    winner = best["methods"]["uniform"]["winner"]
    assert winner["cost"]["dsps"] == 2 * 2 + 2 * 2
    assert winner["cost"]["luts"] == 0


def test_joint_actor_and_critic_search(tmp_path, capsys):
    """``--critic``: six layers (the actor's, then the critic's), and every re-checked
    winner's held-out loss is the larger of its actor loss and its scaled critic error."""
    out = tmp_path / "joint"
    assert main([*TINY, *LOSS[:2], "--heldout-episodes", "3", "--episode-pool", "4",
                 "--eval-episodes", "2", "--critic", "--max-critic-error", "5%",
                 "--method", "random", "--episodes", "12", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "within 2.00% loss of the float actor's return and 5.00% critic value error" in text
    rows = _rows(out / "search.csv")
    assert list(rows[0])[2:8] == ["l1", "l2", "l3", "critic.l1", "critic.l2", "critic.l3"]
    best = json.loads((out / "best.json").read_text())
    assert (best["critic"], best["max_critic_error"]) == (True, 0.05)
    assert [x[0] for x in best["layers"]] == ["l1", "l2", "l3", "critic.l1", "critic.l2",
                                              "critic.l3"]
    assert best["layers"][3][1:] == [4, 8]
    entry = best["methods"]["random"]
    for c in (entry["winner"], entry["least_loss"]):
        if c is not None:
            assert c["heldout_loss"] == pytest.approx(
                max(c["heldout_actor_loss"], c["heldout_critic_error"] * 0.02 / 0.05))
            assert c["meets"] == (c["heldout_actor_loss"] <= 0.02
                                  and c["heldout_critic_error"] <= 0.05 + 1e-12)


def test_joint_search_errors(tmp_path, capsys):
    out = tmp_path / "x"
    assert main([*TINY, *BUDGET, "--critic", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == "fixar-hw search: --critic needs --max-loss"
    assert main([*TINY, "--max-loss", "2%", "--critic", "--max-critic-error", "0%", "--out",
                 str(out)]) == 2
    assert capsys.readouterr().err.strip() == (
        "fixar-hw search: max_critic_error must be a fraction in (0, 1) or a percentage like "
        "'2%', not '0%'")
    assert not out.exists()
