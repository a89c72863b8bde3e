"""The compiled fast paths of the numerics against Python integers, at the format extremes.

Each fast path (a one-pass kernel that replaces several NumPy passes) must give the codes of
the definition for every input, and must raise exactly as the checked path does when a code is
out of range.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from sw_model.numerics.activation import TanhTable, activate, derivative
from sw_model.numerics.fixed import FixedFormat

from .strategies import codes, fixed_formats, rounding_modes
from .test_fixed import ref_requantize


def _code_arrays(fmt: FixedFormat, max_size: int = 24):
    return st.lists(codes(fmt), min_size=0, max_size=max_size)


def _layouts(values: list[int], data) -> np.ndarray:
    """``values`` as an int64 array: flat, 2-D, transposed (not contiguous) or 0-d."""
    arr = np.array(values, dtype=np.int64)
    layout = data.draw(st.sampled_from(["flat", "2d", "transposed", "0d"]))
    if layout == "0d" and arr.size:
        return arr[:1].reshape(())
    if layout in ("2d", "transposed") and arr.size % 2 == 0 and arr.size:
        arr = arr.reshape(2, -1)
        return arr.T if layout == "transposed" else arr
    return arr


@given(data=st.data(), kind=st.sampled_from(["identity", "relu"]), rounding=rounding_modes)
def test_activate_shift_matches_python_integers(data, kind, rounding):
    in_fmt = data.draw(fixed_formats(2, 32, signed=True), label="in_fmt")
    out_fmt = data.draw(fixed_formats(2, 32), label="out_fmt")
    z = _layouts(data.draw(_code_arrays(in_fmt)), data)
    got = activate(z, in_fmt, out_fmt, kind, rounding=rounding)
    src = np.maximum(z, 0) if kind == "relu" else z
    want = [ref_requantize(int(v), in_fmt.frac, out_fmt, rounding, "saturate")
            for v in src.reshape(-1)]
    assert got.dtype == np.int64 and got.shape == z.shape
    assert got.reshape(-1).tolist() == want


@given(data=st.data())
def test_tanh_lookup_matches_python_integers(data):
    fmt = data.draw(fixed_formats(2, 32, signed=True), label="fmt")
    range_log2 = data.draw(st.integers(-4, 4), label="range_log2")
    assume(fmt.frac + range_log2 >= 1)
    index_bits = data.draw(st.integers(1, min(12, fmt.frac + range_log2)), label="index_bits")
    table = TanhTable(fmt, fmt, index_bits=index_bits, range_log2=range_log2)
    entries = table.entries().tolist()
    z = _layouts(data.draw(_code_arrays(fmt)), data)
    got = activate(z, fmt, fmt, "tanh", table=table)

    def ref(v: int) -> int:
        e = entries[min(abs(v) >> table.shift, table.size - 1)]
        return -e if v < 0 else (e if v > 0 else 0)

    assert got.dtype == np.int64 and got.shape == z.shape
    assert got.reshape(-1).tolist() == [ref(int(v)) for v in z.reshape(-1)]


@given(data=st.data(), rounding=rounding_modes, same=st.booleans())
def test_relu_derivative_matches_python_integers(data, rounding, same):
    in_fmt = data.draw(fixed_formats(2, 32, signed=True), label="in_fmt")
    d_fmt = data.draw(fixed_formats(2, 32, signed=True), label="d_fmt")
    z = _layouts(data.draw(_code_arrays(in_fmt)), data)
    y = z if same else np.maximum(z, 0)
    got = derivative(z, y, in_fmt, in_fmt, d_fmt, "relu", rounding=rounding)
    one = ref_requantize(1, 0, d_fmt, rounding, "saturate")
    assert got.dtype == np.int64 and got.shape == z.shape
    assert got.reshape(-1).tolist() == [one if v > 0 else 0 for v in z.reshape(-1)]


@pytest.mark.parametrize("kind", ["identity", "relu", "tanh"])
def test_activate_out_of_range_codes_raise_as_before(kind):
    fmt = FixedFormat(8, 4)
    z = np.array([[0, 1], [fmt.max_int + 1, -3]], dtype=np.int64)
    with pytest.raises(ValueError, match=r"^z_q holds 128, outside FixedFormat\(8, 4\) codes"):
        activate(z, fmt, fmt, kind)
    with pytest.raises(ValueError, match=r"^z_q holds -129, outside"):
        activate(np.array([fmt.min_int - 1]), fmt, fmt, kind)


def test_relu_derivative_out_of_range_codes_raise_as_before():
    fmt, d_fmt = FixedFormat(8, 4), FixedFormat(16, 14)
    good = np.array([1, -1, 0], dtype=np.int64)
    bad = np.array([1, 200, 0], dtype=np.int64)
    with pytest.raises(ValueError, match=r"^z_q holds 200"):
        derivative(bad, good, fmt, fmt, d_fmt, "relu")
    with pytest.raises(ValueError, match=r"^y_q holds 200"):
        derivative(good, bad, fmt, fmt, d_fmt, "relu")


def test_activate_extreme_formats():
    """64-bit and wide-shift formats take the checked path and still give exact codes."""
    wide = FixedFormat(64, 0)
    z = np.array([wide.min_int, -1, 0, 1, wide.max_int], dtype=np.int64)
    for kind in ("identity", "relu"):
        got = activate(z, wide, FixedFormat(8, -60), kind, rounding="half_even")
        src = np.maximum(z, 0) if kind == "relu" else z
        want = [ref_requantize(int(v), 0, FixedFormat(8, -60), "half_even", "saturate")
                for v in src]
        assert got.tolist() == want
    narrow = FixedFormat(32, 0)
    got = activate(np.array([narrow.max_int, narrow.min_int]), narrow, FixedFormat(32, 31),
                   "identity")
    assert got.tolist() == [2**31 - 1, -(2**31)]
    assert Fraction(int(got[0]), 2**31) < 1


# --- Adam's step: float quotient with an exact correction ------------------------------------

@st.composite
def _adam_steps(draw):
    """``(w, m, den, lr_t)``: one step size, elements with ``|2 lr_t m + den| < 2**62``."""
    lr_t = draw(st.one_of(st.integers(1, 2**24), st.sampled_from([1, 2**40])))
    elements = []
    for _ in range(draw(st.integers(1, 16))):
        den = draw(st.one_of(st.integers(1, 2**20), st.integers(1, 2**59 - 1),
                             st.sampled_from([1, 2**16, 2**47, 2**59 - 1])))
        m_lim = (2**62 - 1 - den) // (2 * lr_t)
        m = draw(st.one_of(st.integers(-m_lim, m_lim), st.sampled_from([-m_lim, 0, m_lim])))
        elements.append((draw(st.integers(-(2**31), 2**31 - 1)), m, den))
    return elements, lr_t


@given(_adam_steps())
def test_adam_float_quotient_is_the_exact_floor(steps):
    from sw_model.numerics import kernels

    elements, lr_t = steps
    w, m, den = (np.array(x, dtype=np.int64) for x in zip(*elements, strict=True))
    out = den.copy()
    lo, hi = -(2**31), 2**31 - 1
    ok = kernels._step_float(w, m, lr_t, lo, hi, out)
    quotients = [(2 * lr_t * mi + di) // (2 * di) for _, mi, di in elements]
    if max(abs(q) for q in quotients) < 2**49 and max(d for _, _, d in elements) < 2**59:
        assert ok
    if ok:
        assert out.tolist() == [min(max(wi - q, lo), hi)
                                for (wi, _, _), q in zip(elements, quotients, strict=True)]


@given(st.integers(1, 2**24), st.integers(1, 2**30), st.integers(-(2**20), 2**20),
       st.sampled_from([-1, 0, 1]))
def test_adam_float_quotient_at_exact_multiples(lr_t, j, k, off):
    """``den = 2 lr_t j`` and ``m = (2k - 1) j + off``: ``(2 lr_t m + den) / (2 den)`` is
    ``k`` or a hair off it, where a floored float quotient is most likely to be one off."""
    from sw_model.numerics import kernels

    den = 2 * lr_t * j
    m = (2 * k - 1) * j + off
    num = 2 * lr_t * m + den
    assume(abs(num) < 2**62 and den < 2**59)
    out = np.array([den], dtype=np.int64)
    assert kernels._step_float(np.zeros(1, np.int64), np.array([m]), lr_t, -(2**62), 2**62,
                               out)
    assert int(out[0]) == -(num // (2 * den))


# --- the weight cache of the matrix products --------------------------------------------------

_W, _X, _D, _G = FixedFormat(32, 20), FixedFormat(16, 10), FixedFormat(32, 24), FixedFormat(32, 30)


def _layer_ops(w: np.ndarray, b: np.ndarray, x: np.ndarray, d: np.ndarray) -> list[np.ndarray]:
    """A forward pass (reads ``w.T``) and a backward pass (reads ``w``) of one layer."""
    from sw_model.arch import aap

    z, y = aap.forward(w, b, x, w_fmt=_W, x_fmt=_X, out_fmt=_X, kind="relu")
    e = aap.backward(w, d, x, w_fmt=_W, d_fmt=_D, y_fmt=_X, g_fmt=_G, out_fmt=_D, kind="relu")
    return [z, y, e]


def _read_only(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.setflags(write=False)
    return a


def test_weight_cache_follows_new_arrays_at_a_reused_address():
    """New read-only weights land where freed ones were (CPython reuses the address, which is
    the cache's key): each must be read afresh, as an uncached (writeable) copy is."""
    rng = np.random.default_rng(1)
    x = rng.integers(_X.min_int, _X.max_int, (5, 40))
    d = rng.integers(-(2**20), 2**20, (5, 30))
    b = rng.integers(-(2**19), 2**19, 30)
    for k in range(8):
        w = _read_only(rng.integers(-(2**(12 + k)), 2**(12 + k), (30, 40)))
        want = _layer_ops(w.copy(), b, x, d)
        for _ in range(2):  # the second time from the cache
            got = _layer_ops(w, b, x, d)
            assert all(np.array_equal(g, h) for g, h in zip(got, want, strict=True))
        del w


def test_weight_cache_ignores_arrays_made_writeable_again():
    rng = np.random.default_rng(2)
    x = rng.integers(_X.min_int, _X.max_int, (5, 40))
    d = rng.integers(-(2**20), 2**20, (5, 30))
    b = rng.integers(-(2**19), 2**19, 30)
    w = _read_only(rng.integers(-(2**19), 2**19, (30, 40)))
    _layer_ops(w, b, x, d)  # cached
    w.setflags(write=True)
    w[:, 0] = _W.max_int  # also widens the range the cache held
    got = _layer_ops(w, b, x, d)
    want = _layer_ops(w.copy(), b, x, d)
    assert all(np.array_equal(g, h) for g, h in zip(got, want, strict=True))
    with pytest.raises(ValueError, match=r"^w_q holds 2147483648, outside"):
        w[0, 0] = _W.max_int + 1
        _layer_ops(w, b, x, d)


def test_optimizer_outputs_are_read_only():
    from sw_model.numerics import optim

    fmt = FixedFormat(32, 20)
    consts = optim.FixedAdamConstants.from_floats(1e-3, 0.9, 0.999, 1e-8, fmt, fmt, 100)
    z = np.zeros((3, 4), dtype=np.int64)
    w, m, v = optim.adam_fixed(z, z + 5, z, z, 1, consts, fmt, fmt)
    assert not w.flags.writeable and m.flags.writeable and v.flags.writeable
    t = optim.soft_update_fixed(z, w, 300, fmt)
    assert not t.flags.writeable and t.base is None and w.base is None


@pytest.mark.parametrize("precision", ["fixed", "qat"])
def test_training_steps_equal_without_the_weight_cache(precision, monkeypatch):
    """Several steps (weights replaced every step, QAT switching formats) give the same codes
    with the cache as with every weight read afresh."""
    from sw_model.arch import ddpg_step as ds
    from sw_model.numerics import fixed
    from sw_model.rl.ddpg import DDPGAgent, DDPGConfig
    from sw_model.rl.envs import make

    def run() -> list:
        config = DDPGConfig(hidden=(24, 16), precision=precision, batch_size=8, qat_delay=2,
                            buffer_size=100, seed=3)
        env = make("pendulum", seed=3)
        agent = DDPGAgent(config, env.observation_dim, env.action_dim, env.action_low,
                          env.action_high)
        obs = env.reset()
        for _ in range(40):
            a = agent.random_action()
            nxt, r, term, _ = env.step(agent.scale_action(a))
            agent.remember(obs, a, r, nxt, term)
            obs = nxt
        out = []
        for _ in range(5):
            agent.train_step()
            out.append((agent.weights, agent.targets, agent.opt.m, agent.opt.v))
        return out

    cached = run()
    monkeypatch.setattr(fixed, "_known", lambda arr: None)
    fresh = run()
    for c, f in zip(cached, fresh, strict=True):
        for tree_c, tree_f in zip(c, f, strict=True):
            for net in ds.NETS:
                for key in tree_c[net]:
                    assert np.array_equal(tree_c[net][key], tree_f[net][key]), (net, key)
