# amaranth: UnusedElaboratable=no
"""The exported PE array run by Verilator, against the golden, simulator and cycle models.

Each build is compiled once (and cached on disk) and runs many jobs back to back: shapes of 1,
of the grid size and of non-multiples of it, all three ops, both parallelisms, the three
activations, operands mixed with the format extremes. Every result must equal
:func:`fixar_hw.sim.array.expected` with ``==``, a subset must also equal the Amaranth simulation
(:func:`fixar_hw.sim.array.simulate`) of the same component, and without stalls the cycle count
must equal :class:`sw_model.arch.aap.CycleModel` exactly (with stalls it may only grow).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from fixar_hw.flow.export import verilator_available
from fixar_hw.sim.array import ArrayJob, expected, simulate
from fixar_hw.sim.array_verilator import (
    _bits_of,
    _encode,
    _lanes,
    _pack_lanes,
    _Ports,
    build,
    run_verilator,
)
from fixar_hw.train.array import PEArray
from sw_model.arch.aap import AAPConfig
from sw_model.numerics.fixed import FixedFormat

pytestmark = [
    pytest.mark.verilator,
    pytest.mark.skipif(not verilator_available(), reason="verilator-cli is not installed"),
]

# -O0: these builds are small, and compile time dominates the test
CFLAGS = ("-O0",)

Q8 = FixedFormat(8, 5)
CONFIGS = {
    # one core, 8-bit everything
    "s2c1": AAPConfig(size=2, cores=1, w_fmt=Q8, a_fmt=Q8, d_fmt=Q8, g_fmt=Q8, grad_fmt=Q8,
                      rounding="half_up", max_m=9, max_n=9, max_batch=5, addr_width=8,
                      tanh_index_bits=4),
    # three cores, mixed widths (the v port is wider than a_fmt), floor rounding
    "s2c3": AAPConfig(size=2, cores=3, w_fmt=FixedFormat(10, 6), a_fmt=FixedFormat(9, 5),
                      d_fmt=FixedFormat(12, 7), g_fmt=FixedFormat(8, 6),
                      grad_fmt=FixedFormat(11, 4), rounding="floor", max_m=9, max_n=9,
                      max_batch=5, addr_width=8, tanh_index_bits=5),
    # 4 x 4 grid, two cores, 16-bit formats
    "s4c2": AAPConfig(size=4, cores=2, w_fmt=FixedFormat(16, 12), a_fmt=FixedFormat(16, 12),
                      d_fmt=FixedFormat(16, 12), g_fmt=FixedFormat(16, 14),
                      grad_fmt=FixedFormat(16, 10), max_m=13, max_n=13, max_batch=5,
                      addr_width=8, tanh_index_bits=6),
    # dual-precision PEs, two cores: forward and weight gradient in half mode on 4-bit
    # activations (the second weight, vector and input ports driven too)
    "s2c2h": AAPConfig(size=2, cores=2, w_fmt=Q8, a_fmt=Q8, d_fmt=Q8, g_fmt=Q8, grad_fmt=Q8,
                       max_m=9, max_n=9, max_batch=5, addr_width=8, tanh_index_bits=4,
                       narrow_width=4, half=True),
}


def _codes(rng: np.random.Generator, fmt: FixedFormat, *shape: int) -> np.ndarray:
    """Uniform codes with a quarter of them replaced by min, -1, 0, 1 or max."""
    q = rng.integers(fmt.min_int, fmt.max_int, shape, endpoint=True)
    corners = np.array([fmt.min_int, -1, 0, 1, fmt.max_int])
    pick = rng.random(shape) < 0.25
    q[pick] = rng.choice(corners, size=int(pick.sum()))
    return q


def make_job(rng: np.random.Generator, config: AAPConfig, op: str, m: int, n: int, batch: int,
             kind: str, parallelism: str) -> ArrayJob:
    c = config
    # a half-mode build runs its forward and weight-gradient jobs in half mode
    half = c.half_mode and op != "backward"
    x_fmt = c.act_format(min(2, c.a_fmt.frac), narrow=True) if half else None
    xf = x_fmt or c.a_fmt
    if op == "forward":
        return ArrayJob(op, m, n, batch, kind, parallelism, w=_codes(rng, c.w_fmt, m, n),
                        b=_codes(rng, c.w_fmt, m), x=_codes(rng, xf, batch, n), x_fmt=x_fmt,
                        half=half)
    if op == "backward":
        return ArrayJob(op, m, n, batch, kind, parallelism, w=_codes(rng, c.w_fmt, m, n),
                        d=_codes(rng, c.d_fmt, batch, m), y_prev=_codes(rng, c.a_fmt, batch, n))
    return ArrayJob(op, m, n, batch, kind, parallelism, d=_codes(rng, c.d_fmt, batch, m),
                    x=_codes(rng, xf, batch, n), x_fmt=x_fmt, half=half)


def job_set(config: AAPConfig, seed: int) -> list[ArrayJob]:
    """Every op x parallelism x kind, on shapes cycling through 1, S, S+1, ..., max."""
    rng = np.random.default_rng(seed)
    S, N = config.size, config.cores
    dims = sorted({1, S, S + 1, 2 * S - 1, config.max_m, config.max_n} - {0})
    batches = sorted({1, N, N + 1, config.max_batch})
    jobs = []
    shapes = itertools.cycle(itertools.product(dims, dims, batches))
    for op, par, kind in itertools.product(("forward", "backward", "wgrad"),
                                           ("batch", "layer"), ("identity", "relu", "tanh")):
        for _ in range(3):
            m, n, batch = next(shapes)
            m, n = min(m, config.max_m), min(n, config.max_n)
            jobs.append(make_job(rng, config, op, m, n, min(batch, config.max_batch), kind, par))
    return jobs


@pytest.mark.parametrize("name", [
    # the 4x4 build (its Verilator compile is the longest, about 40 s) is thoroughness
    pytest.param(name, marks=pytest.mark.nightly) if name == "s4c2" else name
    for name in sorted(CONFIGS)])
def test_verilator_equals_the_models(name):
    """One build per configuration (so parallel workers never build the same one twice)."""
    config = CONFIGS[name]
    model = build(config, cflags=CFLAGS)

    # every op x parallelism x activation against the golden and cycle models
    jobs = job_set(config, seed=sorted(CONFIGS).index(name))
    runs = model.run(jobs)
    assert len(runs) == len(jobs)
    for job, run in zip(jobs, runs, strict=True):
        want = expected(config, job)
        what = (job.op, job.parallelism, job.kind, job.m, job.n, job.batch)
        assert run.result.shape == want.shape, what
        assert (run.result == want).all(), what
        assert run.cycles == job.cycles(config), what
        assert run.out_of_range_reads == 0, what
        assert run.edges > run.cycles

    # one job per op and parallelism, on shapes that are not multiples of the grid, against
    # the Amaranth simulation of the same component (through run_verilator)
    rng = np.random.default_rng(100)
    S = config.size
    sim_jobs = [make_job(rng, config, op, S + 1, 2 * S + 1, config.cores + 1, kind, par)
                for (op, par), kind in zip(itertools.product(("forward", "backward", "wgrad"),
                                                             ("batch", "layer")),
                                           itertools.cycle(("tanh", "relu", "identity")))]
    pairs = run_verilator(config, sim_jobs, cflags=CFLAGS)
    for job, (result, cycles) in zip(sim_jobs, pairs, strict=True):
        dut = PEArray(config)
        sim_result, sim_cycles = simulate(dut, job)
        assert (result == sim_result).all(), (job.op, job.parallelism)
        assert (result == expected(config, job)).all(), (job.op, job.parallelism)
        assert cycles == sim_cycles == job.cycles(config)

    # random backpressure on the result stream: same results, cycles only grow
    for stall, seed in ((0.3, 11), (0.8, 12)):
        runs = model.run(jobs, stall=stall, seed=seed)
        longer = 0
        for job, run in zip(jobs, runs, strict=True):
            assert (run.result == expected(config, job)).all(), (stall, job.op, job.parallelism)
            assert run.cycles >= job.cycles(config)
            longer += run.cycles > job.cycles(config)
        # the stalls really happened (at 30 %, a job of few result beats may escape them all)
        assert longer > (len(jobs) // 2 if stall > 0.5 else 0)


def test_lane_packing_round_trips_extremes():
    rng = np.random.default_rng(5)
    for width in (1, 3, 8, 12, 31, 32, 33, 63):
        lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
        words = rng.integers(lo, hi, (7, 5), endpoint=True)
        words[0] = [lo, -1, 0, hi, lo]
        packed = _pack_lanes(words, width, 5 * width + 9)
        assert packed.shape == (7, -(-(5 * width + 9) // 32))
        assert (_lanes(_bits_of(packed), 0, 5, width) == words).all()
        # the padding bits above the lanes stay zero
        assert not _bits_of(packed)[:, 5 * width:].any()


def test_errors():
    config = CONFIGS["s2c1"]
    with pytest.raises(TypeError, match=r"^config must be an AAPConfig, not 3$"):
        build(3)
    with pytest.raises(TypeError, match=r"^config must be an AAPConfig, not 3$"):
        run_verilator(3, [])
    with pytest.raises(TypeError, match=r"^cflags must be a sequence of strings, not '-O0'$"):
        build(config, cflags="-O0")
    with pytest.raises(TypeError, match=r"^jobs must be a sequence of ArrayJob, not 3$"):
        run_verilator(config, 3)
    with pytest.raises(TypeError, match=r"^jobs\[0\] must be an ArrayJob, not 'x'$"):
        run_verilator(config, ["x"])
    with pytest.raises(ValueError, match=r"^stall must be from 0 to below 1, not 1\.0$"):
        run_verilator(config, [], stall=1.0)
    with pytest.raises(TypeError, match=r"^seed must be an integer, not 1\.5$"):
        run_verilator(config, [], seed=1.5)
    too_big = make_job(np.random.default_rng(0), config, "forward", 9, 9, 5, "relu", "batch")
    small = AAPConfig(size=2, cores=1, w_fmt=Q8, a_fmt=Q8, d_fmt=Q8, g_fmt=Q8, grad_fmt=Q8,
                      max_m=9, max_n=9, max_batch=5, addr_width=4, tanh_index_bits=4)
    dut = PEArray(small)
    with pytest.raises(ValueError, match=r"^jobs\[0\] needs 25 words of the w memory"):
        _encode(dut, _Ports.of(dut), [too_big], 0.0, 0)
