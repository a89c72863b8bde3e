"""Tests of sw_model.search.cost: closed forms, sharing, monotonicity, validation, the packaged
table."""

import itertools
import json
import math
import sys
from pathlib import Path

import pytest

from sw_model.search.cost import (
    A_BITS,
    ALPHA_BITS,
    W_BITS,
    Cost,
    CostModel,
    LayerChoice,
    LayerShape,
)

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _entry(w, a, lane_luts, lane_dsps=0.0, base_luts=100.0, base_dsps=2.0):
    return {"w_bits": w, "a_bits": a, "lane_luts": lane_luts, "lane_dsps": lane_dsps,
            "base_luts": base_luts, "base_dsps": base_dsps}


def _table():
    """A small synthetic table: fixed w in {2, 4, 16}, sp2 w in {2, 11}, a in {4, 16}."""
    fixed = [_entry(w, a, 10 * w + a, 1.0) for w in (2, 4, 16) for a in (4, 16)]
    sp2 = [_entry(w, a, 20 * w + 2 * a) for w in (2, 11) for a in (4, 16)]
    return {"family": "ecp5", "row_unit_latency": 3, "entries": {"fixed": fixed, "sp2": sp2}}


@pytest.fixture(scope="module")
def packaged():
    return CostModel.load()


# --- value types ---------------------------------------------------------------------------

def test_layer_shape():
    assert LayerShape("fc", 17, 400).weights == 6800
    with pytest.raises(TypeError, match=r"^fan_in must be an integer, not 1\.5$"):
        LayerShape("fc", 1.5, 4)
    with pytest.raises(TypeError, match=r"^fan_out must be an integer, not True$"):
        LayerShape("fc", 4, True)
    with pytest.raises(ValueError, match=r"^fan_out must be at least 1, not 0$"):
        LayerShape("fc", 4, 0)
    with pytest.raises(TypeError, match=r"^name must be a str, not 3$"):
        LayerShape(3, 4, 4)


def test_layer_choice():
    assert LayerChoice("sp2", 11, 16).kind == ("sp2", 11, 16)
    with pytest.raises(ValueError, match=r"^scheme must be 'fixed' or 'sp2', not 'float'$"):
        LayerChoice("float", 8, 8)
    with pytest.raises(TypeError, match=r"^scheme must be a str, not None$"):
        LayerChoice(None, 8, 8)
    with pytest.raises(ValueError, match=r"^w_bits must be from 2 to 11 for scheme 'sp2', "
                                         r"not 12$"):
        LayerChoice("sp2", 12, 8)
    with pytest.raises(ValueError, match=r"^a_bits must be one of \(4, 6, 8, 12, 16\), not 5$"):
        LayerChoice("fixed", 8, 5)
    with pytest.raises(TypeError, match=r"^w_bits must be an integer, not '8'$"):
        LayerChoice("fixed", "8", 8)


def test_widths():
    assert W_BITS["fixed"] == tuple(range(2, 17))
    assert W_BITS["sp2"] == tuple(range(2, 12))
    assert A_BITS == (4, 6, 8, 12, 16)


def test_cost_add():
    a, b = Cost(1.5, 1.0, 10, 7), Cost(2.0, 0.0, 5, 3)
    assert a + b == Cost(3.5, 1.0, 15, 10)
    assert sum([a, b]) == a + b
    with pytest.raises(TypeError):
        a + 1
    with pytest.raises(ValueError, match=r"^luts must be finite and in \[0, inf\), not -1\.0$"):
        Cost(-1.0, 0, 0, 0)
    with pytest.raises(TypeError, match=r"^cycles must be an integer, not 1\.0$"):
        Cost(0, 0, 0, 1.0)


# --- closed forms ----------------------------------------------------------------------------

@pytest.mark.parametrize("lanes", [1, 16, 7])
@pytest.mark.parametrize(("fan_in", "fan_out", "batch"),
                         [(400, 300, 64), (17, 400, 1), (300, 1, 5), (3, 64, 2)])
def test_layer_cycles_and_memory(lanes, fan_in, fan_out, batch):
    model = CostModel(_table(), lanes=lanes)
    cost = model.layer_cost(LayerShape("l", fan_in, fan_out), LayerChoice("fixed", 4, 16),
                            batch=batch)
    period = max(fan_in, lanes)
    assert cost.cycles == (batch * math.ceil(fan_out / lanes) * period - (period - fan_in)
                           + 3 + lanes - 1)
    assert cost.mem_bits == fan_in * fan_out * 4 + fan_out * ALPHA_BITS


def test_cycles_equal_mac_count_on_full_passes():
    model = CostModel(_table(), lanes=16)
    cost = model.layer_cost(LayerShape("l", 400, 320), LayerChoice("sp2", 2, 4), batch=8)
    assert cost.cycles == 8 * math.ceil(400 * 320 / 16) + model.latency + 15


def test_layer_resources():
    model = CostModel(_table(), lanes=16)
    cost = model.layer_cost(LayerShape("l", 8, 8), LayerChoice("fixed", 4, 16))
    assert (cost.luts, cost.dsps) == (100 + 16 * 56, 2 + 16 * 1)
    assert model.engine("fixed", 4, 16) == (cost.luts, cost.dsps)
    assert model.lane("fixed", 4, 16) == (56, 1)
    assert model.base("fixed", 4, 16) == (100, 2)


def test_network_sums_layers():
    model = CostModel(_table(), lanes=8)
    shapes = [LayerShape("a", 17, 400), LayerShape("b", 400, 300), LayerShape("c", 300, 6)]
    choices = [LayerChoice("fixed", 4, 16), LayerChoice("sp2", 11, 4), LayerChoice("fixed", 2, 4)]
    net = model.network_cost(shapes, choices, batch=3)
    parts = [model.layer_cost(s, c, batch=3) for s, c in zip(shapes, choices, strict=True)]
    assert net == sum(parts)  # three distinct kinds: nothing shared
    assert net.mem_bits == 17 * 400 * 4 + 400 * 300 * 11 + 300 * 6 * 2 + 706 * ALPHA_BITS


def test_sharing():
    model = CostModel(_table(), lanes=16)
    shapes = [LayerShape("a", 17, 400), LayerShape("b", 400, 300), LayerShape("c", 300, 6)]
    same = [LayerChoice("fixed", 4, 16)] * 3
    net = model.network_cost(shapes, same)
    one = model.engine("fixed", 4, 16)
    assert (net.luts, net.dsps) == one
    parts = [model.layer_cost(s, c) for s, c in zip(shapes, same, strict=True)]
    assert net.cycles == sum(p.cycles for p in parts)
    assert net.mem_bits == sum(p.mem_bits for p in parts)
    # a different activation width is a different kind: a second engine
    mixed = [*same[:2], LayerChoice("fixed", 4, 4)]
    cost = model.network_cost(shapes, mixed)
    assert cost.luts == one[0] + model.engine("fixed", 4, 4)[0]


def test_empty_network():
    assert CostModel(_table()).network_cost([], []) == Cost(0.0, 0.0, 0, 0)


# --- interpolation and monotonicity ----------------------------------------------------------

def test_interpolation_linear_in_width():
    model = CostModel(_table())
    assert model.lane("fixed", 3, 4) == (34.0, 1.0)  # halfway between 24 and 44
    assert model.lane("fixed", 10, 16) == pytest.approx((116.0, 1.0))  # 56 + 6/12 * 120
    lo, hi = model.lane("sp2", 2, 4)[0], model.lane("sp2", 11, 4)[0]
    assert model.lane("sp2", 5, 4)[0] == pytest.approx(lo + (hi - lo) / 3)


def test_interpolation_in_activation_width():
    model = CostModel(_table())
    # a = 8 lies a third of the way from 4 to 16
    assert model.lane("fixed", 2, 8)[0] == pytest.approx(24 + (36 - 24) / 3)


def test_outside_measured_range():
    table = _table()
    table["entries"]["fixed"] = [e for e in table["entries"]["fixed"] if e["w_bits"] != 16]
    model = CostModel(table)
    with pytest.raises(ValueError, match=r"^w_bits must be within the measured 2 to 4 for "
                                         r"scheme 'fixed' in this table, not 5$"):
        model.lane("fixed", 5, 4)


def test_running_maximum():
    table = _table()
    for e in table["entries"]["fixed"]:
        if e["w_bits"] == 4:
            e["lane_luts"] = 1.0  # cheaper than w=2: synthesis noise
    model = CostModel(table)
    assert model.lane("fixed", 4, 4)[0] == model.lane("fixed", 2, 4)[0] == 24
    assert model.lane("fixed", 3, 4)[0] == 24


def _monotone(model, quantity):
    for scheme, widths in W_BITS.items():
        for a in A_BITS:
            values = [quantity(model, scheme, w, a) for w in widths]
            assert values == sorted(values), (scheme, a, values)
        for w in widths:
            values = [quantity(model, scheme, w, a) for a in A_BITS]
            assert values == sorted(values), (scheme, w, values)


def test_monotone_packaged(packaged):
    _monotone(packaged, lambda m, s, w, a: m.lane(s, w, a)[0])
    _monotone(packaged, lambda m, s, w, a: m.lane(s, w, a)[1])
    _monotone(packaged, lambda m, s, w, a: m.engine(s, w, a)[0])


def test_more_bits_never_cheaper_in_a_network(packaged):
    shapes = [LayerShape("a", 17, 400), LayerShape("b", 400, 300)]
    for scheme, widths in W_BITS.items():
        costs = [packaged.network_cost(shapes, [LayerChoice(scheme, w, 8)] * 2)
                 for w in widths]
        assert [c.luts for c in costs] == sorted(c.luts for c in costs)
        assert [c.mem_bits for c in costs] == sorted(c.mem_bits for c in costs)


# --- validation ------------------------------------------------------------------------------

def test_model_arguments():
    with pytest.raises(ValueError, match=r"^lanes must be at least 1, not 0$"):
        CostModel(_table(), lanes=0)
    with pytest.raises(TypeError, match=r"^lanes must be an integer, not 2\.0$"):
        CostModel(_table(), lanes=2.0)
    with pytest.raises(TypeError, match=r"^table must be a mapping, not \[\]$"):
        CostModel([])
    model = CostModel(_table())
    shape, choice = LayerShape("l", 4, 4), LayerChoice("fixed", 4, 4)
    with pytest.raises(ValueError, match=r"^batch must be at least 1, not 0$"):
        model.layer_cost(shape, choice, batch=0)
    with pytest.raises(ValueError, match=r"^choices must have one entry per layer \(2\), "
                                         r"not 1$"):
        model.network_cost([shape, shape], [choice])
    with pytest.raises(TypeError, match=r"^choices\[0\] must be a LayerChoice, not "):
        model.network_cost([shape], [("fixed", 4, 4)])
    with pytest.raises(TypeError, match=r"^shapes must be a sequence, not "):
        model.network_cost(iter([shape]), [choice])
    with pytest.raises(ValueError, match=r"^w_bits must be from 2 to 16 for scheme 'fixed', "
                                         r"not 17$"):
        model.lane("fixed", 17, 4)
    with pytest.raises(ValueError, match=r"^scheme must be 'fixed' or 'sp2', not 'x'$"):
        model.lane("x", 4, 4)
    with pytest.raises(TypeError, match=r"^path must be a str, a path or None, not 3$"):
        CostModel.load(3)


def test_malformed_tables():
    table = _table()
    del table["entries"]["fixed"][1]
    with pytest.raises(ValueError, match=r"^table entries of 'fixed' must form a grid; missing "
                                         r"\(w_bits, a_bits\) \[\(2, 16\)\]$"):
        CostModel(table)
    table = _table()
    table["entries"]["sp2"].append(dict(table["entries"]["sp2"][0]))
    with pytest.raises(ValueError, match=r"^table holds 'sp2' w_bits=2, a_bits=4 twice$"):
        CostModel(table)
    table = _table()
    del table["entries"]["sp2"][0]["base_dsps"]
    with pytest.raises(ValueError, match=r"^table entry of 'sp2' lacks base_dsps: "):
        CostModel(table)
    table = _table()
    table["entries"]["float"] = []
    with pytest.raises(ValueError, match=r"^table entries must be for 'fixed' and 'sp2', "
                                         r"not \['float'\]$"):
        CostModel(table)
    with pytest.raises(ValueError, match=r"^table must have an 'entries' mapping, not None$"):
        CostModel({"row_unit_latency": 3})
    table = _table()
    del table["row_unit_latency"]
    with pytest.raises(TypeError, match=r"^table row_unit_latency must be an integer, "
                                        r"not None$"):
        CostModel(table)
    table = _table()
    del table["entries"]["sp2"]
    with pytest.raises(ValueError, match=r"^scheme 'sp2' has no entries in this table$"):
        CostModel(table).lane("sp2", 4, 4)


# --- the table on disk -----------------------------------------------------------------------

def test_json_round_trip(tmp_path, packaged):
    path = tmp_path / "table.json"
    path.write_text(json.dumps(packaged.table), encoding="utf-8")
    again = CostModel.load(path, lanes=packaged.lanes)
    assert again.table == packaged.table
    for scheme, widths in W_BITS.items():
        for w in widths:
            for a in A_BITS:
                assert again.lane(scheme, w, a) == packaged.lane(scheme, w, a)
                assert again.base(scheme, w, a) == packaged.base(scheme, w, a)
    assert CostModel.load(str(path)).table == packaged.table


def test_table_is_a_copy(packaged):
    table = packaged.table
    table["entries"]["fixed"].clear()
    assert packaged.table["entries"]["fixed"]


def test_packaged_table(packaged):
    table = packaged.table
    assert table["family"] == "ecp5"
    assert table["command"] == "python benchmarks/build_cost_tables.py"
    assert {"amaranth", "pyosys", "yosys"} <= set(table["versions"])
    assert table["date"]
    from fixar_hw.arith.row_unit import MixedRowUnit

    assert packaged.latency == MixedRowUnit.latency
    for scheme, widths in W_BITS.items():  # every allowed kind has a price
        for w in widths:
            for a in A_BITS:
                lut, dsp = packaged.lane(scheme, w, a)
                assert lut > 0
                assert dsp == (1.0 if scheme == "fixed" else 0.0)


def test_packaged_entry_matches_fresh_synthesis(packaged):
    sys.path.insert(0, str(BENCH))
    try:
        from build_cost_tables import measure
    finally:
        sys.path.remove(str(BENCH))
    stored = next(e for e in packaged.table["entries"]["fixed"]
                  if (e["w_bits"], e["a_bits"]) == (2, 4))
    fresh = measure("fixed", 2, 4, (stored["n_hi"],))
    assert fresh == stored


@pytest.mark.parametrize(("fan_in", "fan_out", "batch", "lanes", "scheme"),
                         [(10, 5, 3, 4, "sp2"), (1, 8, 3, 4, "fixed"), (2, 7, 2, 3, "sp2"),
                          (5, 9, 1, 8, "fixed"), (4, 4, 2, 4, "fixed")])
def test_cycles_equal_row_unit_simulation(fan_in, fan_out, batch, lanes, scheme):
    import numpy as np

    from fixar_hw.arith.row_unit import MixedRowUnit, pass_columns, plan_passes
    from fixar_hw.sim.testing import simulate_stream
    from sw_model.numerics.fixed import FixedFormat
    from sw_model.numerics.msq import QuantizedMatrix
    from sw_model.numerics.sp2 import SP2Format

    rng = np.random.default_rng(fan_in * 100 + fan_out)
    x_fmt, sp2_fmt, fix_fmt = FixedFormat(8, 4), SP2Format(4), FixedFormat(4, 3)
    alpha_fmt = FixedFormat(8, 4, signed=False)
    sp2 = scheme == "sp2"
    codes = rng.integers(0, 16, (fan_out, fan_in)) if sp2 else rng.integers(-8, 8,
                                                                            (fan_out, fan_in))
    qm = QuantizedMatrix(codes, np.full(fan_out, sp2), np.full(fan_out, 16), alpha_fmt, sp2_fmt,
                         fix_fmt)
    unit = MixedRowUnit(x_fmt, sp2_fmt, fix_fmt, alpha_fmt, FixedFormat(16, 8),
                        n_fixed=0 if sp2 else lanes, n_sp2=lanes if sp2 else 0,
                        max_cols=max(fan_in, 2))
    passes = plan_passes(qm.sp2_rows, unit.n_fixed, unit.n_sp2)
    xs = rng.integers(-128, 128, (batch, fan_in)).tolist()
    jobs = [(v, p) for v in range(batch) for p in passes]
    inputs = [payload for v, p in jobs for payload in pass_columns(qm, xs[v], p, unit.n_fixed)]
    _, cycles = simulate_stream(unit, inputs, len(jobs) * lanes)
    model = CostModel(_table(), lanes=lanes)
    cost = model.layer_cost(LayerShape("l", fan_in, fan_out), LayerChoice(scheme, 4, 4),
                            batch=batch)
    assert cost.cycles == cycles


# --- the pipelined mapping -------------------------------------------------------------------

def test_mapping_argument():
    assert CostModel(_table()).mapping == "shared"
    assert CostModel.load(mapping="pipelined").mapping == "pipelined"
    assert repr(CostModel(_table(), lanes=4, mapping="pipelined")) == (
        "CostModel(<ecp5 table>, lanes=4, mapping='pipelined')")
    with pytest.raises(ValueError, match=r"^mapping must be 'shared' or 'pipelined', "
                                         r"not 'serial'$"):
        CostModel(_table(), mapping="serial")
    with pytest.raises(TypeError, match=r"^mapping must be a str, not 1$"):
        CostModel(_table(), mapping=1)
    with pytest.raises(ValueError, match=r"^lanes must be at least 1, not 0$"):
        CostModel(_table()).engine("fixed", 4, 4, lanes=0)


def test_pipelined_by_hand():
    # the FIXAR actor on 16 lanes: MACs 6800, 120000, 1800 of 128600 in all
    # 16 * 6800 / 128600 = 0.85 -> 1; 16 * 120000 / 128600 = 14.93 -> 15; 0.22 -> 0 -> 1
    model = CostModel(_table(), lanes=16, mapping="pipelined")
    shapes = [LayerShape("a", 17, 400), LayerShape("b", 400, 300), LayerShape("c", 300, 6)]
    assert model.allocate(shapes) == (1, 15, 1)
    choices = [LayerChoice("fixed", 4, 16), LayerChoice("sp2", 2, 4), LayerChoice("fixed", 4, 16)]
    cost = model.network_cost(shapes, choices, batch=2)
    # fixed 4/16: lane 56 LUTs 1 DSP; sp2 2/4: lane 48 LUTs; every base 100 LUTs 2 DSPs
    assert cost.luts == (100 + 1 * 56) + (100 + 15 * 48) + (100 + 1 * 56)
    assert cost.dsps == (2 + 1) + 2 + (2 + 1)
    assert cost.mem_bits == 17 * 400 * 4 + 400 * 300 * 2 + 300 * 6 * 4 + 706 * ALPHA_BITS
    # stage cycles: 2 * 400 * 17 + 3 + 0; 2 * 20 * 400 + 3 + 14; 2 * 6 * 300 + 3
    assert cost.cycles == max(2 * 400 * 17 + 3, 2 * 20 * 400 + 3 + 14, 2 * 6 * 300 + 3)
    # lanes are capped by fan_out, and every layer keeps one
    assert CostModel(_table(), lanes=100, mapping="pipelined").allocate(
        [LayerShape("x", 50, 2), LayerShape("y", 2, 50)]) == (2, 50)
    assert CostModel(_table(), lanes=16).allocate(shapes) == (16, 16, 16)
    # one layer: all the lanes (up to fan_out)
    single = model.layer_cost(shapes[1], choices[1])
    assert (single.luts, single.dsps) == (100 + 16 * 48, 2)


def test_pipelined_kinds_are_not_shared():
    shapes = [LayerShape("a", 8, 8), LayerShape("b", 8, 8)]
    same = [LayerChoice("fixed", 4, 16)] * 2
    model = CostModel(_table(), lanes=8, mapping="pipelined")
    assert model.allocate(shapes) == (4, 4)
    assert model.network_cost(shapes, same).luts == 2 * (100 + 4 * 56)
    # a narrower second layer is cheaper by its 4 lanes' difference, with no extra engine
    mixed = [same[0], LayerChoice("fixed", 2, 16)]
    diff = model.network_cost(shapes, same).luts - model.network_cost(shapes, mixed).luts
    assert diff == 4 * (56 - 36)


def _naive_pipelined(table, lanes, shapes, choices, batch):
    """An independent reading of the module docs, with exact fractions."""
    from fractions import Fraction

    rows = {(s, e["w_bits"], e["a_bits"]): e for s in ("fixed", "sp2")
            for e in table["entries"][s]}
    total = sum(s.fan_in * s.fan_out for s in shapes)
    luts = dsps = 0.0
    mem, cycles = 0, []
    for s, c in zip(shapes, choices, strict=True):
        x = Fraction(lanes * s.fan_in * s.fan_out, total)
        n = min(s.fan_out, max(1, math.floor(x + Fraction(1, 2))))
        e = rows[c.kind]
        luts += e["base_luts"] + n * e["lane_luts"]
        dsps += e["base_dsps"] + n * e["lane_dsps"]
        mem += s.fan_in * s.fan_out * c.w_bits + s.fan_out * ALPHA_BITS
        passes = math.ceil(s.fan_out / n)
        period = max(s.fan_in, n)
        cycles.append(batch * passes * period - (period - s.fan_in) + table["row_unit_latency"]
                      + n - 1)
    return luts, dsps, mem, max(cycles)


def test_pipelined_brute_force():
    table = _table()
    kinds = [LayerChoice("fixed", 2, 4), LayerChoice("fixed", 16, 16), LayerChoice("sp2", 11, 4)]
    fans = (1, 3, 7, 20)
    for lanes in (1, 2, 5, 16):
        model = CostModel(table, lanes=lanes, mapping="pipelined")
        for fi, fo, fo2 in itertools.product(fans, repeat=3):
            shapes = [LayerShape("a", fi, fo), LayerShape("b", fo, fo2)]
            for choices in itertools.product(kinds, repeat=2):
                cost = model.network_cost(shapes, list(choices), batch=3)
                want = _naive_pipelined(table, lanes, shapes, choices, 3)
                assert (cost.luts, cost.dsps, cost.mem_bits, cost.cycles) == pytest.approx(want)


def test_pipelined_cost_is_monotone_in_widths(packaged):
    model = CostModel(packaged.table, lanes=16, mapping="pipelined")
    shapes = [LayerShape("a", 3, 64), LayerShape("b", 64, 64), LayerShape("c", 64, 1)]
    base = [LayerChoice("fixed", 8, 8)] * 3
    for k in range(3):
        costs = [model.network_cost(shapes, [*base[:k], LayerChoice("fixed", w, 8),
                                             *base[k + 1:]]).luts for w in W_BITS["fixed"]]
        assert costs == sorted(costs)
