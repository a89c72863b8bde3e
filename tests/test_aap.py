# amaranth: UnusedElaboratable=no
"""AAP core and PE array against the golden model and the cycle model.

Hypothesis draws the build (grid size, cores, formats), the layer shape (including 1 and
non-multiples of the grid), the op, activation, parallelism, operands mixed with the format
extremes, and stall patterns on the command and result streams. Results must equal
:mod:`sw_model.arch.aap` with ``==``; without stalls the cycle count must equal
:class:`sw_model.arch.aap.CycleModel` exactly, and with stalls it may only grow.
"""

import numpy as np
import pytest
from hypothesis import given, target
from hypothesis import strategies as st

from fixar_hw.sim.array import ArrayJob, expected, simulate, unpack
from fixar_hw.sim.testing import stall_pattern
from fixar_hw.train.array import PEArray
from sw_model.arch.aap import (
    AAPConfig,
    CycleModel,
    choose_parallelism,
    slice_vectors,
    tile_weights,
    unslice_vectors,
    untile_weights,
)
from sw_model.numerics.fixed import FixedFormat

from .strategies import codes, examples, stall_lists


@st.composite
def configs(draw, max_cores: int = 3):
    size = draw(st.sampled_from([1, 2, 4]))
    cores = draw(st.integers(1, max_cores))

    def fmt(min_frac=-2):
        width = draw(st.integers(3, 12))
        return FixedFormat(width, draw(st.integers(min_frac, width + 2)))

    a_fmt = fmt(min_frac=0)
    return AAPConfig(
        size=size, cores=cores, w_fmt=fmt(), a_fmt=a_fmt, d_fmt=fmt(), g_fmt=fmt(),
        grad_fmt=fmt(), rounding=draw(st.sampled_from(["floor", "half_up", "half_even"])),
        max_m=draw(st.integers(6, 9)), max_n=draw(st.integers(6, 9)),
        max_batch=draw(st.integers(4, 6)), addr_width=8,
        tanh_index_bits=draw(st.integers(1, a_fmt.frac + 2)),
        narrow_width=draw(st.one_of(st.none(), st.integers(2, a_fmt.width))),
        # dual-precision PEs; half mode whenever the narrow activations fit half an operand
        half=draw(st.booleans()),
    )


def act_formats(config: AAPConfig):
    """None (the build's ``a_fmt``) or any run-time activation format of ``config``."""
    narrow = st.booleans() if config.narrow_width is not None else st.just(False)
    return st.one_of(st.none(), st.builds(config.act_format, st.integers(0, config.a_fmt.frac),
                                          narrow))


def matrix(draw, fmt, rows, cols):
    return np.array(draw(st.lists(st.lists(codes(fmt), min_size=cols, max_size=cols),
                                  min_size=rows, max_size=rows)), dtype=np.int64)


@st.composite
def jobs(draw, config: AAPConfig):
    op = draw(st.sampled_from(["forward", "backward", "wgrad"]))
    m = draw(st.integers(1, config.max_m))
    n = draw(st.integers(1, config.max_n))
    batch = draw(st.integers(1, min(config.max_batch, 5)))
    kind = draw(st.sampled_from(["identity", "relu", "tanh"]))
    parallelism = draw(st.sampled_from(["batch", "layer"]))
    c = config
    x_fmt = draw(act_formats(c))
    xf = x_fmt or c.a_fmt
    # half mode wherever the op can take it (mostly: it is the new path)
    half = c.half_for(op, x_fmt) and draw(st.sampled_from([True, True, False]))
    if op == "forward":
        return ArrayJob(op, m, n, batch, kind, parallelism, w=matrix(draw, c.w_fmt, m, n),
                        b=matrix(draw, c.w_fmt, 1, m)[0], x=matrix(draw, xf, batch, n),
                        x_fmt=x_fmt, out_fmt=draw(act_formats(c)), half=half)
    if op == "backward":
        return ArrayJob(op, m, n, batch, kind, parallelism, w=matrix(draw, c.w_fmt, m, n),
                        d=matrix(draw, c.d_fmt, batch, m),
                        y_prev=matrix(draw, xf, batch, n), x_fmt=x_fmt)
    return ArrayJob(op, m, n, batch, kind, parallelism, d=matrix(draw, c.d_fmt, batch, m),
                    x=matrix(draw, xf, batch, n), x_fmt=x_fmt, half=half)


def _saturation(config: AAPConfig, result: np.ndarray, job: ArrayJob) -> float:
    fmt = {"forward": job.out_fmt or config.a_fmt, "backward": config.d_fmt,
           "wgrad": config.grad_fmt}[job.op]
    return float(np.mean((result == fmt.max_int) | (result == fmt.min_int)))


@examples(ci=20)  # each: a whole array in the simulator
@given(st.data())
def test_results_and_cycles_equal_the_models(data):
    config = data.draw(configs())
    job = data.draw(jobs(config))
    dut = PEArray(config)
    result, cycles = simulate(dut, job)
    want = expected(config, job)
    target(_saturation(config, want, job), label="saturated results")
    assert result.shape == want.shape
    assert (result == want).all()
    assert cycles == job.cycles(config)


@pytest.mark.parametrize(("cores", "m", "n"), [(3, 8, 2), (3, 8, 4), (2, 6, 4), (3, 5, 5)])
def test_weight_gradient_tiles_step_over_row_ends(cores, m, n):
    """More cores than tile columns: one step of the cores' tiles wraps a row several times
    (and the last group is partly idle); every tile is still the golden model's."""
    config = AAPConfig(size=2, cores=cores, max_m=8, max_n=8, max_batch=4)
    rng = np.random.default_rng(m * 100 + n * 10 + cores)
    c = config

    def codes(fmt, rows, cols):
        return rng.integers(fmt.min_int, fmt.max_int + 1, size=(rows, cols), dtype=np.int64)

    job = ArrayJob("wgrad", m, n, 3, "identity", "batch", d=codes(c.d_fmt, 3, m),
                   x=codes(c.a_fmt, 3, n))
    result, cycles = simulate(PEArray(config), job)
    assert (result == expected(config, job)).all()
    assert cycles == config.cycle_model.cycles("wgrad", m, n, 3)


@examples(ci=20)  # each: a whole array in the simulator
@given(st.data(), stall_lists(), stall_lists(), stall_lists())
def test_results_equal_the_golden_model_under_stalls(data, cmd_stalls, o_stalls, g_stalls):
    config = data.draw(configs(max_cores=2))
    job = data.draw(jobs(config))
    dut = PEArray(config)
    result, cycles = simulate(dut, job, cmd_stall=stall_pattern(cmd_stalls),
                              o_stall=stall_pattern(o_stalls), g_stall=stall_pattern(g_stalls))
    assert (result == expected(config, job)).all()
    assert cycles >= job.cycles(config)


@given(st.integers(1, 9), st.integers(1, 9), st.sampled_from([1, 2, 4, 8]), st.data())
def test_layouts_round_trip(m, n, size, data):
    w = np.arange(m * n).reshape(m, n) + 1
    words = tile_weights(w, size)
    assert (untile_weights(words, (m, n), size) == w).all()
    i, j = data.draw(st.integers(0, m - 1)), data.draw(st.integers(0, n - 1))
    tj = -(-n // size)
    # the documented address and lane of W[i, j]
    assert words[(i // size) * tj + j // size][(i % size) * size + j % size] == w[i, j]
    v = w
    assert (unslice_vectors(slice_vectors(v, size), m, n, size) == v).all()


def test_cycle_model_closed_forms():
    model = CycleModel(16, 4)
    # 300 x 400 layer, batch 64: 16 groups x 19 output tiles x 25 reduction tiles
    assert model.passes("forward", 300, 400, 64, "batch") == 16 * 19 * 25
    assert model.passes("forward", 300, 400, 64, "layer") == 64 * 19 * 7
    assert model.passes("backward", 300, 400, 64, "batch") == 16 * 25 * 19
    assert model.passes("wgrad", 300, 400, 64, "batch") == 119 * 64  # ceil(19 * 25 / 4)
    assert choose_parallelism(model, "forward", 300, 400, 64) == "batch"
    assert choose_parallelism(model, "forward", 6, 300, 1) == "layer"
    # half mode: reduction tiles two a pass (forward), batch vectors two a pass (wgrad)
    dual = CycleModel(16, 4, dual=True)
    assert dual.passes("forward", 300, 400, 64, "batch", half=True) == 16 * 19 * 13
    assert dual.passes("forward", 300, 400, 64, "layer", half=True) == 64 * 19 * 4
    assert dual.passes("wgrad", 300, 400, 63, "batch", half=True) == 119 * 32
    assert dual.passes("forward", 300, 400, 64, "batch") == 16 * 19 * 25
    assert [dual.fill(op) - model.fill(op) for op in ("forward", "backward", "wgrad")] == [1] * 3
    with pytest.raises(ValueError, match=r"^half=True needs dual PEs"):
        model.cycles("forward", 4, 4, 4, half=True)
    with pytest.raises(ValueError, match=r"^half=True: backward runs full mode$"):
        dual.cycles("backward", 4, 4, 4, half=True)


def test_half_mode_needs_narrow_activations_that_fit_half_an_operand():
    q = FixedFormat(32, 24)
    fixar = AAPConfig(w_fmt=q, a_fmt=q, d_fmt=q, narrow_width=16, half=True)
    assert fixar.half_mode and fixar.pe_half_width == 16
    assert "two products a PE per cycle" in fixar.half_note
    narrow = fixar.act_format(12, narrow=True)
    assert fixar.half_for("forward", narrow) and fixar.half_for("wgrad", narrow)
    assert not fixar.half_for("backward", narrow)
    assert not fixar.half_for("forward", None) and not fixar.half_for("forward", q)
    # 20-bit narrow activations do not fit a 16-bit half: the build runs full mode, says so
    wide = AAPConfig(w_fmt=q, a_fmt=q, d_fmt=q, narrow_width=20, half=True)
    assert not wide.half_mode
    assert wide.half_note == ("half mode asked for, but the 20-bit narrow activations are "
                              "wider than half the PE's operand (16 bits): full mode")
    assert not AAPConfig(half=True).half_mode  # no narrow activations at all
    assert wide.cycle_model == CycleModel(16, 1) and fixar.cycle_model.dual
    with pytest.raises(TypeError, match=r"^half must be a bool, not 1$"):
        AAPConfig(half=1)


def test_unpack_rejects_broken_streams():
    config = AAPConfig(size=2, cores=2, max_m=4, max_n=4, max_batch=4)
    job = ArrayJob("forward", 2, 2, 2)
    good = [([[1, 2], [3, 4]], 0b11, 1)]
    assert (unpack(config, job, good) == [[1, 2], [3, 4]]).all()
    with pytest.raises(AssertionError, match="mask"):
        unpack(config, job, [([[1, 2], [3, 4]], 0b01, 1)])
    with pytest.raises(AssertionError, match="last"):
        unpack(config, job, [([[1, 2], [3, 4]], 0b11, 0)])
    with pytest.raises(AssertionError, match="output beats"):
        unpack(config, job, good * 2)


def test_configuration_errors():
    with pytest.raises(ValueError, match=r"^size must be a power of two, not 3$"):
        AAPConfig(size=3)
    with pytest.raises(TypeError, match=r"^cores must be an integer, not 1.5$"):
        AAPConfig(cores=1.5)
    with pytest.raises(ValueError, match=r"^a_fmt.frac must be >= 0"):
        AAPConfig(a_fmt=FixedFormat(8, -1))
    with pytest.raises(TypeError, match=r"^config must be an AAPConfig, not 3$"):
        PEArray(3)


def test_command_errors():
    core = PEArray(AAPConfig(size=2, max_m=8, max_n=8, max_batch=4, addr_width=4))
    with pytest.raises(ValueError, match=r"^m must be from 1 to 8, not 0$"):
        core.command("forward", m=0, n=1, batch=1)
    with pytest.raises(ValueError, match=r"^batch must be from 1 to 4, not 5$"):
        core.command("forward", m=1, n=1, batch=5)
    with pytest.raises(ValueError, match=r"^op must be one of"):
        core.command("transpose", m=1, n=1, batch=1)
    with pytest.raises(ValueError, match=r"^w_base must be from 0 to 15, not 16$"):
        core.command("forward", m=1, n=1, batch=1, w_base=16)
    with pytest.raises(ValueError, match=r"^parallelism must be 'batch' or 'layer'"):
        core.command("forward", m=1, n=1, batch=1, parallelism="rows")
    with pytest.raises(ValueError, match=r"^half=True needs a half-mode build"):
        core.command("forward", m=1, n=1, batch=1, half=True)
    f = FixedFormat(8, 4)
    dual = PEArray(AAPConfig(size=2, w_fmt=f, a_fmt=f, d_fmt=f, max_m=8, max_n=8,
                             max_batch=4, addr_width=4, tanh_index_bits=3, narrow_width=4,
                             half=True))
    narrow = dual.config.act_format(2, narrow=True)
    assert dual.command("forward", m=1, n=1, batch=1, x_fmt=narrow, half=True)["half"] == 1
    # a 32-bit-activation op (here the build's 8-bit a_fmt) is refused before it is sent
    with pytest.raises(ValueError, match=r"^half=True needs 4-bit activations, not x_fmt "):
        dual.command("wgrad", m=1, n=1, batch=1, half=True)
    with pytest.raises(ValueError, match=r"^half=True: backward has no narrow operand"):
        dual.command("backward", m=1, n=1, batch=1, x_fmt=narrow, half=True)
    with pytest.raises(TypeError, match=r"^half must be a bool, not 1$"):
        dual.command("forward", m=1, n=1, batch=1, half=1)


@examples(ci=20)  # each: a whole array in the simulator
@given(st.data(), stall_lists())
def test_sp2_array_equals_the_golden_model_on_level_integers(data, o_stalls):
    from fixar_hw.train.array import SP2PEArray
    from sw_model.numerics.sp2 import SP2Format

    m1 = data.draw(st.integers(1, 2))
    sp2 = SP2Format(data.draw(st.integers(m1 + 1, 2 * m1 + 1)), m1)
    base = data.draw(configs(max_cores=2))
    config = AAPConfig(**{**base.__dict__, "w_fmt": sp2.level_fmt, "half": False})
    job = data.draw(jobs(config).filter(lambda j: j.op != "wgrad"))
    codes = np.array(data.draw(st.lists(
        st.lists(st.integers(0, sp2.max_code), min_size=job.n, max_size=job.n),
        min_size=job.m, max_size=job.m)), dtype=np.int64)
    job = ArrayJob(**{**job.__dict__, "w": sp2.to_int(codes), "w_codes": codes})
    result, _ = simulate(SP2PEArray(config, sp2), job, o_stall=stall_pattern(o_stalls))
    assert (result == expected(config, job)).all()


def test_sp2_array_errors():
    from fixar_hw.train.array import SP2PEArray
    from sw_model.numerics.sp2 import SP2Format

    sp2 = SP2Format(4, 2)
    config = AAPConfig(size=2, w_fmt=sp2.level_fmt, max_m=4, max_n=4, max_batch=2)
    with pytest.raises(ValueError, match=r"^config.w_fmt must be FixedFormat\(5, 3\)"):
        SP2PEArray(AAPConfig(size=2), sp2)
    with pytest.raises(TypeError, match=r"^sp2_fmt must be an SP2Format, not 4$"):
        SP2PEArray(config, 4)
    with pytest.raises(ValueError, match=r"^SP2PEArray runs 'forward' and 'backward'"):
        SP2PEArray(config, sp2).command("wgrad", m=1, n=1, batch=1)
    with pytest.raises(ValueError, match=r"^SP2PEArray multiplies with shift-adders"):
        SP2PEArray(AAPConfig(**{**config.__dict__, "half": True}), sp2)
