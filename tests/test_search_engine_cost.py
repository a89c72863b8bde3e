"""Tests of sw_model.search.engine_cost: the training engine's array as a cost model for the
bit-width search, against measured synthesis, the engine's memory plan, brute-force layouts and
the cycle formulas."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sw_model.arch.aap import AAPConfig, CycleModel, slice_vectors, tile_weights
from sw_model.numerics.fixed import FixedFormat
from sw_model.search.cost import LayerChoice, LayerShape
from sw_model.search.engine_cost import EngineCostModel, mult18

# registered signed a x b products, MULT18X18D blocks after pyosys synth_ecp5
# (fixar_hw.flow.synth.resources, 2026-12-07)
MEASURED_PRODUCTS = {(2, 2): 1, (3, 3): 1, (4, 4): 1, (2, 16): 1, (6, 6): 1, (16, 16): 1,
                     (18, 18): 1, (19, 18): 1, (17, 19): 1, (19, 19): 1, (20, 20): 4,
                     (21, 18): 2, (24, 16): 2, (33, 18): 2, (32, 32): 4, (35, 35): 4,
                     (36, 36): 4}


@pytest.mark.parametrize("widths, blocks", sorted(MEASURED_PRODUCTS.items()))
def test_mult18_equals_synthesis(widths, blocks):
    assert mult18(*widths) == blocks == mult18(*reversed(widths))


# (size, cores, weight/activation/delta bits, derivative bits) -> MULT18X18D of the synthesized
# PEArray (docs/results.md: "PE array on an ECP5 LFE5U-85F" and "SP2PEArray against PEArray")
MEASURED_ARRAYS = [((4, 1, 16, 18), 24), ((4, 2, 16, 18), 48), ((8, 1, 16, 18), 80),
                   ((8, 2, 16, 18), 160), ((2, 1, 8, 10), 8)]


@pytest.mark.parametrize("build, dsps", MEASURED_ARRAYS)
def test_dsps_equal_synthesized_arrays(build, dsps):
    size, cores, bits, g = build
    model = EngineCostModel(size=size, cores=cores, delta_bits=bits, deriv_bits=g)
    assert model.dsps(bits, bits) == dsps
    # the SP2 comparison's fixed arrays had 5- and 9-bit weights and the same DSPs
    assert model.dsps(5, bits) == model.dsps(9, bits) == dsps


def _brute_bits(shapes, choices, size, batch, packed):
    """Words of the engine's layouts, made with the layout functions, times lane widths."""
    w_max = max(c.w_bits for c in choices)
    a_max = max(c.a_bits for c in choices)
    weights = acts = 0
    for s, c in zip(shapes, choices, strict=True):
        words = (tile_weights(np.zeros((s.fan_out, s.fan_in)), size).shape[0]
                 + tile_weights(np.zeros((s.fan_out, 1)), size).shape[0])
        weights += words * size * size * (c.w_bits if packed else w_max)
        vec = slice_vectors(np.zeros((batch, s.fan_in)), size).shape[0]
        acts += vec * size * (c.a_bits if packed else a_max)
    return weights, acts


_layers = st.lists(st.tuples(st.integers(1, 70), st.integers(1, 6), st.sampled_from((4, 6, 8,
                                                                                      12, 16))),
                   min_size=1, max_size=4)


@given(layers=_layers, first=st.integers(1, 40), size=st.sampled_from((1, 2, 4, 8, 16)),
       cores=st.integers(1, 3), batch=st.integers(1, 9), packed=st.booleans())
def test_memory_bits_equal_the_layouts(layers, first, size, cores, batch, packed):
    fans = [first] + [n for n, _, _ in layers]
    shapes = [LayerShape(f"l{k}", fans[k], fans[k + 1]) for k in range(len(layers))]
    choices = [LayerChoice("fixed", 2 + 2 * w, a) for _, w, a in layers]
    model = EngineCostModel(size=size, cores=cores, packed=packed)
    weights, acts = _brute_bits(shapes, choices, size, batch, packed)
    assert model.weight_bits(shapes, choices) == weights
    assert model.activation_bits(shapes, choices, batch=batch) == acts
    cost = model.network_cost(shapes, choices, batch=batch)
    assert cost.mem_bits == weights + acts
    assert cost.luts == 0.0


@given(layers=_layers, first=st.integers(1, 40), size=st.sampled_from((2, 4, 16)),
       batch=st.integers(1, 5))
def test_packing_never_costs_more_and_saves_exactly_when_widths_differ(layers, first, size,
                                                                       batch):
    fans = [first] + [n for n, _, _ in layers]
    shapes = [LayerShape(f"l{k}", fans[k], fans[k + 1]) for k in range(len(layers))]
    choices = [LayerChoice("fixed", 2 + 2 * w, a) for _, w, a in layers]
    packed = EngineCostModel(size=size).network_cost(shapes, choices, batch=batch)
    built = EngineCostModel(size=size, packed=False).network_cost(shapes, choices, batch=batch)
    uniform = len({c.w_bits for c in choices}) == 1 and len({c.a_bits for c in choices}) == 1
    assert packed.mem_bits <= built.mem_bits
    assert (packed.mem_bits == built.mem_bits) == uniform
    assert (packed.dsps, packed.cycles) == (built.dsps, built.cycles)


def _fill(size, cores):
    """The forward pipeline fill of the array model: a 1 x 1 layer takes one pass."""
    return CycleModel(size, cores).cycles("forward", 1, 1, 1, "batch") - 1


def _passes(m, n, batch, size, cores):
    out, red = -(-m // size), -(-n // size)
    by_batch = -(-batch // cores) * out * red
    by_layer = batch * out * -(-red // cores)
    return min(by_batch, by_layer)


def _closed_form_cycles(m, n, batch, size, cores):
    return _passes(m, n, batch, size, cores) + _fill(size, cores)


@given(fans=st.lists(st.integers(1, 600), min_size=2, max_size=5),
       size=st.sampled_from((2, 4, 16)), cores=st.integers(1, 4), batch=st.integers(1, 300),
       widths=st.lists(st.tuples(st.integers(2, 16), st.sampled_from((4, 8, 16))), min_size=4,
                       max_size=4))
def test_cycles_are_the_layers_forward_passes_whatever_the_widths(fans, size, cores, batch,
                                                                  widths):
    shapes = [LayerShape("", fans[k], fans[k + 1]) for k in range(len(fans) - 1)]
    model = EngineCostModel(size=size, cores=cores)
    expected = sum(_closed_form_cycles(s.fan_out, s.fan_in, batch, size, cores) for s in shapes)
    choices = [LayerChoice("fixed", *widths[k % 4]) for k in range(len(shapes))]
    assert model.network_cost(shapes, choices, batch=batch).cycles == expected
    assert model.cycles(shapes, batch=batch) == expected


def test_fixar_actor_cycles():
    # 17-400-300-6 at batch 64 on 16x16x2: the RTL took 1,606 and 15,206 cycles for the first
    # two layers with a 6-cycle fill (docs/results.md, "AAP array"), so 1,600 and 15,200 passes
    shapes = [LayerShape("l1", 17, 400), LayerShape("l2", 400, 300), LayerShape("l3", 300, 6)]
    passes = [1606 - 6, 15206 - 6, _passes(6, 300, 64, 16, 2)]
    assert EngineCostModel().cycles(shapes, batch=64) == sum(passes) + 3 * _fill(16, 2)


@given(w=st.integers(2, 16), a=st.sampled_from((4, 6, 8, 12, 16)),
       size=st.sampled_from((1, 2, 4, 8, 16)), cores=st.integers(1, 4),
       d=st.integers(2, 18), g=st.integers(2, 18))
def test_within_one_mult18_every_width_costs_the_same(w, a, size, cores, d, g):
    # one DSP per PE and two per output column of each core
    assert EngineCostModel(size=size, cores=cores, delta_bits=d,
                           deriv_bits=g).dsps(w, a) == cores * (size * size + 2 * size)


def test_wide_deltas_take_four_dsps_per_pe():
    model = EngineCostModel(size=16, cores=2, delta_bits=32, deriv_bits=32)
    # PE: 32 x 32 (4); column: y*y 16 x 16 (1), e*act' 32 x 32 (4)
    assert model.dsps(8, 16) == 2 * (256 * 4 + 16 * (1 + 4))
    assert model.dsps(16, 32) == 2 * (256 * 4 + 16 * (4 + 4))


def test_from_config_takes_the_builds_widths():
    cfg = AAPConfig(size=8, cores=2, d_fmt=FixedFormat(24, 16), g_fmt=FixedFormat(18, 16))
    model = EngineCostModel.from_config(cfg, packed=False)
    assert (model.size, model.cores, model.delta_bits, model.deriv_bits, model.packed) == (
        8, 2, 24, 18, False)
    # PE: 24 x 24 (4); column: y*y 8 x 8 (1), e*act' 24 x 18 (2)
    assert model.dsps(8, 8) == 2 * (64 * 4 + 8 * (1 + 2))


def test_engine_memory_plan_agrees():
    from sw_model.arch.ddpg_config import DDPGConfig
    from sw_model.arch.engine import EngineConfig

    cfg = DDPGConfig(hidden=(40, 30), precision="fixed", batch_size=8, buffer_size=64)
    ec = EngineConfig(cfg, 17, 6, size=4, cores=2)
    plan = ec.plan
    sizes = ec.sizes("actor")
    shapes = [LayerShape(f"l{k}", sizes[k - 1], sizes[k]) for k in range(1, len(sizes))]
    choices = [LayerChoice("fixed", 16, 16)] * len(shapes)
    model = EngineCostModel(size=4, cores=2)
    words = sum(t.words for t in plan.tensors.values() if t.net == "actor")
    assert model.weight_bits(shapes, choices) == words * 16 * 16
    inputs = sum(plan.regions[f"a.x{k}"].words for k in range(len(shapes)))
    assert model.activation_bits(shapes, choices, batch=8) == inputs * 4 * 16


def test_errors():
    shapes = [LayerShape("l1", 3, 4)]
    model = EngineCostModel(size=4, cores=1)
    with pytest.raises(ValueError, match=r"^choices\[0\] must be a 'fixed' choice \(the engine's "
                                         r"PEs are fixed-point multipliers\), not LayerChoice"):
        model.network_cost(shapes, [LayerChoice("sp2", 4, 8)])
    with pytest.raises(ValueError, match=r"^choices must have 1 entries \(one per layer\), not 2$"):
        model.network_cost(shapes, [LayerChoice("fixed", 4, 8)] * 2)
    with pytest.raises(ValueError, match=r"^size must be a power of two, not 6$"):
        EngineCostModel(size=6)
    with pytest.raises(TypeError, match=r"^packed must be a bool, not 1$"):
        EngineCostModel(packed=1)
    with pytest.raises(ValueError, match=r"delta_bits"):
        EngineCostModel(delta_bits=40)
    with pytest.raises(ValueError, match=r"b_bits"):
        mult18(8, 37)
    with pytest.raises(TypeError, match=r"^config must be an AAPConfig, not 3$"):
        EngineCostModel.from_config(3)
    assert model.network_cost([], []).mem_bits == 0


def test_loss_search_on_the_engine(tmp_path):
    from fixar_hw.apps.search import cost_model, run_loss_search, train_actor

    weights = train_actor(200, 1, hidden=(8,))
    kw = {"methods": ("random",), "mapping": "engine", "size": 4, "cores": 1,
          "evaluations": 6, "states": 8, "episodes": 1, "pool": 2, "heldout_episodes": 1,
          "recheck": 2, "progress": False}
    with pytest.raises(ValueError, match=r"^cost must not use luts with mapping 'engine'"):
        run_loss_search(weights, "5%", tmp_path / "x", cost="luts+30*dsps", **kw)
    assert not (tmp_path / "x").exists()
    run = run_loss_search(weights, "5%", tmp_path / "s", cost="mem_bits", **kw)
    model, w_bits = cost_model("engine", size=4, cores=1)
    assert w_bits is not None and set(w_bits) == {"fixed"}
    shapes = [LayerShape("l1", 3, 8), LayerShape("l2", 8, 1)]
    assert (run.best["mapping"], run.best["size"], run.best["cores"]) == ("engine", 4, 1)
    for ep in run.results["random"].history:
        assert all(c.scheme == "fixed" for c in ep.choices)
        assert ep.cost == model.network_cost(shapes, ep.choices)
    with pytest.raises(ValueError, match=r"^mapping must be one of \('shared', 'pipelined', "
                                         r"'engine'\), not 'serial'$"):
        cost_model("serial")


def test_budgeted_search_on_the_engine(tmp_path):
    from fixar_hw.apps.search import run_search, train_actor
    from sw_model.search.env import Budget

    weights = train_actor(200, 1, hidden=(8,))
    model = EngineCostModel(size=4, cores=1)
    shapes = [LayerShape("l1", 3, 8), LayerShape("l2", 8, 1)]
    # room for 8-bit weights and activations everywhere, not for 16/16
    limit = model.network_cost(shapes, [LayerChoice("fixed", 8, 8)] * 2).mem_bits
    kw = {"methods": ("uniform",), "mapping": "engine", "size": 4, "cores": 1, "states": 8,
          "return_episodes": 1, "quality": "proxy", "progress": False}
    with pytest.raises(ValueError, match=r"^budget must not limit luts with mapping 'engine'"):
        run_search(weights, Budget(luts=1000, mem_bits=limit), tmp_path / "x", **kw)
    run = run_search(weights, Budget(mem_bits=limit), tmp_path / "s", **kw)
    hist = run.results["uniform"].history
    bits_w, bits_a = _brute_bits(shapes, [LayerChoice("fixed", 2, 4)] * 2, 4, 1, True)
    lanes_w, lanes_a = bits_w // 2, bits_a // 4
    assert len(hist) == 15 * 5  # fixed point only: 15 weight widths x 5 activation widths
    for ep in hist:
        assert ep.cost == model.network_cost(shapes, ep.choices)
        # uniform w/a: w bits in each weight lane and a in each input lane, counted apart
        w, a = ep.choices[0].w_bits, ep.choices[0].a_bits
        assert ep.fits == (w * lanes_w + a * lanes_a <= 8 * lanes_w + 8 * lanes_a)
    best = run.best["methods"]["uniform"]["best"]
    assert best["cost"]["mem_bits"] <= limit
