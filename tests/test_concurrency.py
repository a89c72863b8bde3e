"""The engine's units run at once only where that cannot change a result.

Three independent checks of :mod:`sw_model.arch.engine`'s footprints and of
:class:`fixar_hw.train.description.EngineDescription`'s schedule and wait masks:

* a descriptor's footprint covers what the golden :func:`~sw_model.arch.engine.execute` does:
  it changes no word outside its writes, and words outside its reads do not change what it
  writes (brute force: every word outside them is redrawn);
* the schedule keeps every clashing pair in program order, and executing it leaves the same
  memories as the program;
* by the cycle model's timeline, no two operations that clash are in progress at once
  (every pair is checked).

The simulated engine runs the encoded schedule in exactly the modelled cycles and leaves the
golden memories (``tests/test_engine_hw.py``).
"""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixar_hw.train.description import EngineDescription
from sw_model.arch import ddpg_step as ds
from sw_model.arch import engine as en
from sw_model.arch.ddpg_config import DDPGConfig


def _config(cores: int = 2, precision: str = "fixed") -> en.EngineConfig:
    cfg = DDPGConfig(hidden=(5, 3), precision=precision, batch_size=3, buffer_size=32,
                     qat_delay=1, warmup_steps=0, seed=3)
    return en.EngineConfig(cfg, 3, 2, size=2, cores=cores, update_units=2)


def _programs(ec: en.EngineConfig) -> dict[str, list]:
    fmts = ds.activation_formats(ec.ddpg)
    return {"step": en.compile_step(ec, fmts), "tracking": en.compile_step(ec, fmts, True),
            "sgd": en.compile_step(ec, fmts, optimizer="sgd"), "act": en.compile_act(ec, fmts)}


def _state(ec: en.EngineConfig, rng: np.random.Generator) -> en.EngineState:
    """Trained-looking memories: the trainer's networks and moments, a random batch, an
    observation, random activations."""
    cfg = ec.ddpg
    weights = ds.init_weights(cfg, ec.obs_dim, ec.act_dim)
    opt = ds.init_opt_state(weights, cfg)
    targets = weights
    state = en.load_state(ec, weights, targets, opt)
    return _redraw(ec, state, rng, keep=())


def _redraw(ec: en.EngineConfig, state: en.EngineState, rng: np.random.Generator,
            keep: tuple) -> en.EngineState:
    """``state`` with every memory word outside the ranges ``keep`` drawn again at random
    (within the codes each memory holds), but for the region of ones (a constant of the
    build, held as narrow codes)."""
    ones = ec.plan.regions["ones"]
    keep = (*keep, ("A", ones.base, ones.base + ones.words))
    d = ec.ddpg
    widths = {"W": d.weight_fmt.width, "G": d.grad_fmt.width, "M": d.grad_fmt.width,
              "A": ec.vector.word_width}
    out = {}
    for name in ("W", "G", "M", "V", "A"):
        img = getattr(state, name).copy()
        if name == "V":
            new = rng.integers(0, 1 << 20, size=img.shape)
        else:
            half = 1 << (widths[name] - 1)
            new = rng.integers(-half // 8, half // 8, size=img.shape)
        mask = np.ones(img.shape[0], dtype=bool)
        for store, lo, hi in keep:
            if store == name:
                mask[lo:hi] = False
        img[mask] = new[mask]
        out[name] = img
    return state.replace(**out)


@pytest.mark.parametrize("name", ["step", "tracking", "sgd", "act"])
def test_footprints_cover_what_execute_does(name):
    ec = _config()
    rng = np.random.default_rng(1)
    state = _state(ec, rng)
    for op in _programs(ec)[name]:
        fp = en.footprint(ec, op)
        after = en.execute(ec, [op], state)
        for mem in ("W", "G", "M", "V", "A"):
            changed = np.flatnonzero((getattr(after, mem) != getattr(state, mem)).any(axis=1))
            for word in changed:
                assert any(s == mem and lo <= word < hi for s, lo, hi in fp.writes), \
                    (op, mem, int(word))
        if after.t != state.t:
            assert ("t", 0, 1) in fp.writes
        # what lies outside the reads does not reach the writes
        other = _redraw(ec, state, rng, keep=fp.reads)
        if not any(s == "t" for s, *_ in fp.reads):
            other = other.replace(t=state.t + 3)
        again = en.execute(ec, [op], other)
        for store, lo, hi in fp.writes:
            if store in ("W", "G", "M", "V", "A"):
                assert np.array_equal(getattr(again, store)[lo:hi], getattr(after, store)[lo:hi]), \
                    (op, store)
        state = after


def test_a_footprint_that_misses_a_read_is_caught():
    """The redraw check above would see a weight read left out of a forward pass."""
    ec = _config()
    rng = np.random.default_rng(2)
    state = _state(ec, rng)
    op = next(op for op in _programs(ec)["step"]
              if isinstance(op, en.ArrayOp) and op.op == "forward")
    fp = en.footprint(ec, op)
    short = tuple(r for r in fp.reads if r[0] != "W")
    after = en.execute(ec, [op], state)
    again = en.execute(ec, [op], _redraw(ec, state, rng, keep=short))
    store, lo, hi = fp.writes[0]
    assert not np.array_equal(getattr(again, store)[lo:hi], getattr(after, store)[lo:hi])


@pytest.mark.parametrize("cores", [1, 2])
def test_schedule_keeps_clashing_pairs_in_order(cores):
    ec = _config(cores)
    desc = EngineDescription(ec)
    rng = np.random.default_rng(cores)
    for program in _programs(ec).values():
        order = desc.schedule(program)
        assert sorted(map(id, order)) == sorted(map(id, program))
        pos = {id(op): k for k, op in enumerate(order)}
        for i, j in itertools.combinations(range(len(program)), 2):
            a, b = program[i], program[j]
            if desc._clash(a, b):
                assert pos[id(a)] < pos[id(b)], (a, b)
        state = _state(ec, rng)
        want, got = en.execute(ec, program, state), en.execute(ec, order, state)
        for mem in ("W", "G", "M", "V", "A"):
            assert np.array_equal(getattr(got, mem), getattr(want, mem)), mem


def _clash_in_time(desc: EngineDescription, program: list) -> list:
    line = desc.timeline(program)
    return [(a, b) for (a, _, ia, ea), (b, _, ib, eb) in itertools.combinations(line, 2)
            if ia < eb and ib < ea and desc._clash(a, b)]


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 2), st.sampled_from([1, 2, 4]), st.sampled_from(["fixed", "qat"]),
       st.booleans(), st.sampled_from(["own", "shared"]))
def test_no_clashing_operations_run_at_once(cores, units, precision, tracking, ports):
    cfg = DDPGConfig(hidden=(6, 4), precision=precision, batch_size=4, buffer_size=32,
                     qat_delay=1, warmup_steps=0)
    ec = en.EngineConfig(cfg, 3, 1, size=2, cores=cores, update_units=units,
                         update_ports=ports)
    desc = EngineDescription(ec)
    program = en.compile_step(ec, ds.activation_formats(cfg), tracking=tracking)
    assert _clash_in_time(desc, program) == []
    line = desc.timeline(program)
    # the update unit works while the array does, unless it borrows the array's ports
    upd = [(i, e) for _, u, i, e in line if u == "update"]
    arr = [(i, e) for _, u, i, e in line if u == "array"]
    beside = any(i < e2 and i2 < e for i, e in upd for i2, e2 in arr)
    assert beside == (ports == "own")
    assert desc.cycles(program)["cycles"] == max(e for *_, e in line) + 1


def test_masks_left_out_are_caught():
    """Without wait masks the timeline runs clashing operations at once."""
    ec = _config()
    desc = EngineDescription(ec)
    program = _programs(ec)["step"]

    class NoWaits(EngineDescription):
        def _mask(self, last, op):
            return frozenset()

    assert _clash_in_time(NoWaits(ec), program) != []
    assert _clash_in_time(desc, program) == []
