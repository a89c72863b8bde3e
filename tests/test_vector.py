# amaranth: UnusedElaboratable=no
"""The vector unit: sw_model.arch.vector against direct formulas, and VectorUnit against it."""

import dataclasses
import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module, Shape
from amaranth.lib import memory
from amaranth.sim import Simulator
from hypothesis import given
from hypothesis import strategies as st

from fixar_hw.sim.testing import stall_pattern, stream_put
from fixar_hw.train.vector import OP_CODES, VectorCommandSet, VectorUnit
from sw_model.arch.vector import (
    VECTOR_OPS,
    VectorCommand,
    VectorSpec,
    VectorState,
    div_round,
    execute,
    loss_delta,
)
from sw_model.numerics.activation import derivative
from sw_model.numerics.fixed import FixedFormat, requantize
from sw_model.numerics.optim import mul_shift
from sw_model.numerics.prng import gaussian_codes, seed_state
from sw_model.numerics.qat import shift_quantize, track_range

from .strategies import codes, examples, rounding_modes, stall_lists

# --- strategies ---------------------------------------------------------------------------------


@st.composite
def specs(draw, addr_width: int = 9):
    """Small vector units: any lane count of 1, 2, 4 and formats of 2 to 32 bits."""
    aw = draw(st.integers(2, 32))
    dw = draw(st.integers(2, 32))
    vw = draw(st.integers(2, 32))
    return VectorSpec(
        size=draw(st.sampled_from([1, 2, 4])),
        word_width=max(aw, dw) + draw(st.integers(0, 3)),
        addr_width=addr_width,
        act_fmt=FixedFormat(aw, draw(st.integers(0, aw))),
        delta_fmt=FixedFormat(dw, draw(st.integers(0, dw + 2))),
        deriv_fmt=FixedFormat(vw, draw(st.integers(0, vw))),
        narrow_width=draw(st.integers(2, aw)),
        rounding=draw(rounding_modes),
        points=draw(st.integers(1, 3)),
        max_batch=draw(st.integers(1, 4)),
        max_len=draw(st.integers(1, 6)),
    )


#: Discount codes: ties of the half-even rounding need gamma codes with few low bits set.
gammas = st.one_of(st.sampled_from([0, 1, 1 << 14, 1 << 15, 3 << 14, 1 << 16]),
                   st.integers(0, 1 << 16))
#: Noise scale codes, with their extremes.
sigmas = st.one_of(st.sampled_from([0, 1, 1 << 16, 2**31 - 1]), st.integers(0, 2**31 - 1))


def _word_fmt(spec: VectorSpec) -> FixedFormat:
    return FixedFormat(spec.word_width, 0)


@st.composite
def scenarios(draw, spec: VectorSpec, ops, n_cmds: int):
    """``n_cmds`` commands of ``ops`` in disjoint memory areas (a command may work in place)
    and the memory image they start from, with operands drawn from their formats' codes."""
    S = spec.size
    writes: dict[tuple[int, int], int] = {}
    cursor = 0
    cmds = []
    for _ in range(n_cmds):
        op = draw(st.sampled_from(ops))
        batch = draw(st.integers(1, spec.max_batch))
        length = 1 if op in ("target", "loss") else draw(st.integers(1, spec.max_len))
        fields = {"op": op, "batch": batch, "length": length}
        for r in "abd":
            fields[f"{r}_frac"] = draw(st.integers(0, spec.act_fmt.frac))
            fields[f"{r}_narrow"] = draw(st.booleans())
        fields["point"] = draw(st.integers(0, spec.points - 1))
        fields["clear"] = draw(st.booleans())
        in_place = op in ("convert", "noise", "tanh_delta") and draw(st.booleans())
        for r in VectorCommand(op).regions:
            if r == "d" and in_place:
                for k in ("base", "stride", "off"):
                    fields[f"d_{k}"] = fields[f"a_{k}"]
                continue
            n = 2 if (op == "target" and r == "b") else length
            off = draw(st.integers(0, 2 * S - 1))
            stride = -(-(off + n) // S) + draw(st.integers(0, 1))
            base = cursor + draw(st.integers(0, 1))
            fields.update({f"{r}_base": base, f"{r}_stride": stride, f"{r}_off": off})
            cursor = base + (batch - 1) * stride + (off + n - 1) // S + 1
        cmd = VectorCommand(**fields).validate(spec)
        # operand values: codes of each operand's format, sometimes any lane value
        word = _word_fmt(spec)
        fa = spec.fmt(cmd.a_frac, cmd.a_narrow)
        fb = spec.fmt(cmd.b_frac, cmd.b_narrow)
        operand_fmts = {
            "convert": {"a": fa}, "target": {"a": spec.act_fmt, "b": spec.act_fmt},
            "loss": {"a": spec.act_fmt, "b": spec.act_fmt}, "fill": {},
            "tanh_delta": {"a": spec.delta_fmt, "b": fb}, "range": {"a": word},
            "noise": {"a": fa},
        }[op]
        for r, fmt in operand_fmts.items():
            n = 2 if (op == "target" and r == "b") else length
            base, stride, off = (getattr(cmd, f"{r}_{k}") for k in ("base", "stride", "off"))
            for b in range(batch):
                for e in range(n):
                    where = (base + b * stride + (off + e) // S, (off + e) % S)
                    if op == "target" and r == "b" and e == 1:
                        value = draw(st.one_of(st.sampled_from([0, 1]), codes(fmt)))
                    else:
                        value = draw(st.one_of(codes(fmt), codes(word)))
                    writes[where] = value
        cmds.append(cmd)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    w = _word_fmt(spec)
    image = rng.integers(w.min_int, w.max_int, (max(cursor, 2), S), endpoint=True)
    for (i, k), value in writes.items():
        image[i, k] = value
    return cmds, image


# --- simulation ---------------------------------------------------------------------------------


class MemoryHarness(Elaboratable):
    """A :class:`VectorUnit` on an ``amaranth.lib.memory.Memory`` holding ``image``."""

    def __init__(self, dut: VectorUnit, image: np.ndarray) -> None:
        self.dut = dut
        self.mem = memory.Memory(shape=dut.word_layout, depth=len(image),
                                 init=[[int(v) for v in row] for row in image])

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.dut = dut = self.dut
        m.submodules.mem = mem = self.mem
        for port in (dut.a_rd, dut.b_rd):
            rp = mem.read_port()
            m.d.comb += [rp.addr.eq(port.addr), rp.en.eq(port.en), port.data.eq(rp.data)]
        wp = mem.write_port(granularity=1)
        m.d.comb += [wp.addr.eq(dut.d_wr.addr), wp.en.eq(dut.d_wr.en),
                     wp.data.eq(dut.d_wr.data)]
        return m


def simulate(spec, cmds, image, *, gamma_q, sigma_q, seed=None, stalls=()):
    """Run ``cmds`` in order; returns the final image, the ranges and busy cycles per command."""
    dut = VectorUnit(spec)
    harness = MemoryHarness(dut, image)
    counts: list[int] = []
    out = {}

    async def testbench(ctx):
        ctx.set(dut.gamma, gamma_q)
        ctx.set(dut.sigma, sigma_q)
        if seed is not None:
            await stream_put(ctx, dut.seed, seed)
        stall = stall_pattern(stalls)
        for cmd in cmds:
            await stream_put(ctx, dut.cmd, dut.command(cmd), stall=stall)
        await ctx.tick().until(~dut.busy)
        out["mem"] = np.array([[int(v) for v in ctx.get(harness.mem.data[i])]
                               for i in range(len(image))], dtype=np.int64)
        rs = [ctx.get(dut.ranges[k]) for k in range(spec.points)]
        out["ranges"] = tuple((int(r.lo), int(r.hi)) if r.valid else None for r in rs)

    async def count(ctx):
        seeded = []  # cycles since each seed transfer
        async for _, _, busy, valid, ready, en_a, en_b, en_d, s_valid, s_ready in \
                ctx.tick().sample(dut.busy, dut.cmd.valid, dut.cmd.ready, dut.a_rd.en,
                                  dut.b_rd.en, dut.d_wr.en, dut.seed.valid, dut.seed.ready):
            seeding = any(age < 2 for age in seeded)
            seeded = [age + 1 for age in seeded] + ([0] if s_valid and s_ready else [])
            # a command waits while a seed is offered and for the two cycles after it
            assert ready == (not busy and not s_valid and not seeding), \
                "cmd ready exactly when idle and no seed is offered or being formed"
            assert busy or not (en_a or en_b or en_d), "memory ports only while busy"
            if valid and ready:
                counts.append(0)
            if busy:
                counts[-1] += 1

    sim = Simulator(harness)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.add_process(count)
    sim.run()
    return out["mem"], out["ranges"], counts


def golden(spec, cmds, image, *, gamma_q, sigma_q, seed=None):
    state = VectorState.initial(spec)
    if seed is not None:
        state = state.reseed(seed)
    for cmd in cmds:
        image, state = execute(spec, cmd, image, state, gamma_q=gamma_q, sigma_q=sigma_q)
    return image, state


def check(spec, cmds, image, gamma_q, sigma_q, seed, stalls):
    dut = VectorUnit(spec)
    got, ranges, counts = simulate(spec, cmds, image, gamma_q=gamma_q, sigma_q=sigma_q,
                                   seed=seed, stalls=stalls)
    want, state = golden(spec, cmds, image, gamma_q=gamma_q, sigma_q=sigma_q, seed=seed)
    assert got.tolist() == want.tolist()
    assert ranges == state.ranges
    assert counts == [dut.cycles(c) for c in cmds]


@examples(ci=15)
@given(st.data(), specs(), gammas, sigmas, stall_lists(),
       st.one_of(st.none(), st.integers(0, 2**32 - 1)))
def test_commands_equal_the_golden_model(data, spec, gamma_q, sigma_q, stalls, seed):
    cmds, image = data.draw(scenarios(spec, VECTOR_OPS, data.draw(st.integers(1, 3))))
    check(spec, cmds, image, gamma_q, sigma_q, seed, stalls)


@examples(ci=15)
@given(st.data(), specs(), sigmas, stall_lists(),
       st.one_of(st.none(), st.integers(0, 2**32 - 1)))
def test_noise_and_ranges_carry_over(data, spec, sigma_q, stalls, seed):
    cmds, image = data.draw(scenarios(spec, ("noise", "range"), data.draw(st.integers(2, 4))))
    check(spec, cmds, image, 0, sigma_q, seed, stalls)


def test_ddpg_formats_every_op():
    """The default (trainer) formats, each op once, with extreme operands."""
    spec = VectorSpec(size=4, addr_width=6, points=2, max_batch=4, max_len=6)
    a = FixedFormat(32, 16)
    extremes = [a.min_int, a.max_int, -1, 0, 1, 1 << 16, -(1 << 16), 12345]
    image = np.array([extremes[(3 * i) % 8: (3 * i) % 8 + 4] + [0] * max(0, (3 * i) % 8 - 4)
                      for i in range(64)], dtype=np.int64)[:, :4]
    image[40:48] = [[0, 1, 0, 1]] * 8  # done flags
    cmds = [
        VectorCommand("convert", batch=3, length=5, a_base=0, a_stride=2, a_frac=16,
                      d_base=16, d_stride=2, d_frac=10, d_narrow=True),
        VectorCommand("target", batch=4, a_base=0, a_stride=1, b_base=40, b_stride=1,
                      b_off=2, d_base=24, d_stride=1),
        VectorCommand("loss", batch=4, a_base=0, a_stride=1, b_base=4, b_stride=1,
                      d_base=28, d_stride=1, d_off=3),
        VectorCommand("fill", batch=4, length=3, d_base=32, d_stride=1),
        VectorCommand("tanh_delta", batch=2, length=6, a_base=0, a_stride=2, b_base=4,
                      b_stride=2, b_frac=10, b_narrow=True, d_base=48, d_stride=2),
        VectorCommand("range", batch=2, length=6, a_base=0, a_stride=2, point=1),
        VectorCommand("noise", batch=2, length=4, a_base=8, a_stride=1, a_frac=16,
                      d_base=56, d_stride=1),
    ]
    check(spec, cmds, image, 65000, 13107, 2026, [])


@pytest.mark.parametrize("b_off", [0, 1])
def test_target_ties_round_half_even(b_off):
    """``gamma = 1/2`` on odd codes: every product is a tie (``b_off = 1``: R and done in two
    words)."""
    spec = VectorSpec(size=2, word_width=12, addr_width=5, act_fmt=FixedFormat(12, 4),
                      delta_fmt=FixedFormat(8, 4), deriv_fmt=FixedFormat(8, 6), narrow_width=6,
                      max_batch=8)
    image = np.zeros((32, 2), dtype=np.int64)
    image[0:8, 0] = [1, 3, 5, 7, -1, -3, -5, 2047]
    image[8:24:2, b_off] = [0, 10, -10, 2047, -2048, 1, 0, 0]
    cmd = VectorCommand("target", batch=8, a_base=0, a_stride=1, b_base=8, b_stride=2,
                        b_off=b_off, d_base=24, d_stride=1)
    check(spec, [cmd], image, 1 << 15, 0, None, [])


# --- golden model against direct formulas -------------------------------------------------------

_SPEC = VectorSpec(size=2, word_width=20, addr_width=6, act_fmt=FixedFormat(16, 8),
                   delta_fmt=FixedFormat(18, 12), deriv_fmt=FixedFormat(16, 14),
                   narrow_width=8, rounding="half_up", points=2, max_batch=5, max_len=6)


def _image(values, words=64, size=2):
    img = np.zeros((words, size), dtype=np.int64)
    flat = img.reshape(-1)
    flat[:len(values)] = values
    return img


@given(st.lists(codes(_SPEC.act_fmt), min_size=12, max_size=12), st.integers(0, 8),
       st.booleans(), st.integers(0, 8), st.booleans(), st.integers(-9, 9))
def test_convert_is_shift_quantize(vals, fa, na, fd, nd, fill):
    cmd = VectorCommand("convert", batch=2, length=6, a_stride=3, a_frac=fa, a_narrow=na,
                        d_base=10, d_stride=4, d_off=1, d_frac=fd, d_narrow=nd)
    img = _image(vals)
    img[10:] = fill
    out, _ = execute(_SPEC, cmd, img, VectorState.initial(_SPEC))
    want = img.copy()
    lanes = want[10:18].reshape(2, 8)  # a view: two vectors of four words
    lanes[:, 1:7] = shift_quantize(np.array(vals).reshape(2, 6), _SPEC.fmt(fa, na),
                                   _SPEC.fmt(fd, nd))
    assert out.tolist() == want.tolist()
    assert (img[10:] == fill).all()  # the input is not modified


@given(st.lists(codes(_SPEC.act_fmt), min_size=5, max_size=5),
       st.lists(codes(_SPEC.act_fmt), min_size=5, max_size=5),
       st.lists(st.sampled_from([0, 1]), min_size=5, max_size=5), gammas)
def test_target_is_the_td_target(q, r, done, gamma_q):
    img = np.zeros((32, 2), dtype=np.int64)
    img[0:5, 0] = q
    img[10:15] = np.array([r, done]).T
    cmd = VectorCommand("target", batch=5, a_base=0, a_stride=1, b_base=10, b_stride=1,
                        d_base=20, d_stride=1, d_off=1)
    out, _ = execute(_SPEC, cmd, img, VectorState.initial(_SPEC), gamma_q=gamma_q)
    act = _SPEC.act_fmt
    for b in range(5):
        y = r[b] + (1 - done[b]) * int(mul_shift(np.int64(q[b]), gamma_q))
        assert out[20 + b].tolist() == [0, min(max(y, act.min_int), act.max_int)]


@given(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=8), st.integers(1, 600),
       st.sampled_from([(32, 24, 32, 16), (32, 16, 32, 24), (8, 3, 16, 9), (16, 0, 4, 2)]))
def test_loss_delta_and_div_round(diffs, batch, fmts):
    dw, df, aw, af = fmts
    delta, act = FixedFormat(dw, df), FixedFormat(aw, af)
    got = loss_delta(np.array(diffs, dtype=np.int64), batch, act, delta)
    for d, q in zip(diffs, got.tolist(), strict=True):
        exact = Fraction(2 * d * 2**df, batch * 2**af)
        assert q == min(max(math.floor(exact + Fraction(1, 2)), delta.min_int), delta.max_int)
    for n in diffs:
        assert int(div_round(n, batch)) == math.floor(Fraction(n, batch) + Fraction(1, 2))


@given(st.lists(codes(_SPEC.act_fmt), min_size=5, max_size=5),
       st.lists(codes(_SPEC.act_fmt), min_size=5, max_size=5), st.integers(1, 5))
def test_loss_and_fill_are_the_output_deltas(qs, ys, batch):
    img = np.zeros((64, 2), dtype=np.int64)
    img[0:5, 0] = qs
    img[5:10, 1] = ys
    cmd = VectorCommand("loss", batch=batch, a_base=0, a_stride=1, b_base=5, b_stride=1,
                        b_off=1, d_base=20, d_stride=2, d_off=3)
    out, _ = execute(_SPEC, cmd, img, VectorState.initial(_SPEC))
    want = loss_delta(np.array(qs[:batch]) - np.array(ys[:batch]), batch, _SPEC.act_fmt,
                      _SPEC.delta_fmt)
    assert [out[21 + 2 * k, 1] for k in range(batch)] == want.tolist()
    cmd = VectorCommand("fill", batch=batch, length=3, d_base=30, d_stride=2)
    out, _ = execute(_SPEC, cmd, img, VectorState.initial(_SPEC))
    df = _SPEC.delta_fmt.frac
    value = math.floor(Fraction(-(2**df), batch) + Fraction(1, 2))
    assert out[30:30 + 2 * batch].reshape(batch, 4)[:, :3].tolist() == [[value] * 3] * batch


@given(st.lists(codes(_SPEC.delta_fmt), min_size=6, max_size=6), st.integers(0, 8),
       st.booleans(), st.data())
def test_tanh_delta_is_the_actor_output_delta(dx, fy, ny, data):
    yf = _SPEC.fmt(fy, ny)
    ys = data.draw(st.lists(codes(yf), min_size=6, max_size=6))
    img = np.zeros((32, 2), dtype=np.int64)
    flat = img.reshape(-1)  # two vectors of three elements in two words each
    flat[[0, 1, 2, 4, 5, 6]] = dx
    flat[[8, 9, 10, 12, 13, 14]] = ys
    cmd = VectorCommand("tanh_delta", batch=2, length=3, a_base=0, a_stride=2, b_base=4,
                        b_stride=2, b_frac=fy, b_narrow=ny, d_base=20, d_stride=2)
    out, _ = execute(_SPEC, cmd, img, VectorState.initial(_SPEC))
    g = derivative(np.array(ys), np.array(ys), yf, yf, _SPEC.deriv_fmt, "tanh",
                   rounding=_SPEC.rounding)
    want = requantize(np.array(dx) * g, _SPEC.delta_fmt.frac + _SPEC.deriv_fmt.frac,
                      _SPEC.delta_fmt, _SPEC.rounding, "saturate")
    got = out[20:24].reshape(2, 4)[:, :3].reshape(-1)
    assert got.tolist() == want.tolist()


@given(st.lists(codes(_word_fmt(_SPEC)), min_size=8, max_size=8), st.booleans(),
       st.one_of(st.none(), st.tuples(st.integers(-9, 0), st.integers(0, 9))))
def test_range_tracks_lane_values(vals, clear, prev):
    img = _image(vals)
    state = VectorState((None, prev), 1)
    cmd = VectorCommand("range", batch=2, length=3, a_base=0, a_stride=2, a_off=1, point=1,
                        clear=clear)
    out, new = execute(_SPEC, cmd, img, state)
    seen = [vals[1], vals[2], vals[3], vals[5], vals[6], vals[7]]
    assert new.ranges == (None, track_range(None if clear else prev, seen))
    assert (out == img).all() and new.noise == 1


@pytest.mark.parametrize("size", [1, 2, 4, 16])
def test_range_takes_a_cycle_per_word_its_vectors_span(size):
    """Against the words the golden model's region names: every offset, length and batch."""
    spec = VectorSpec(size=size, addr_width=8, max_batch=3, max_len=40)
    timing = VectorCommandSet(spec)
    for off, length, batch in itertools.product(range(2 * size), range(1, 41), (1, 3)):
        cmd = VectorCommand("range", batch=batch, length=length, a_base=0,
                            a_stride=-(-(off + length) // size), a_off=off)
        words = {int(w) for w in cmd.words(spec, "a").ravel()}
        assert timing.cycles(cmd) == len(words) + VectorUnit.latency
        # one element a cycle for the element-wise ops
        assert timing.cycles(dataclasses.replace(cmd, op="convert")) \
            == batch * length + VectorUnit.latency


@given(st.lists(codes(_SPEC.act_fmt), min_size=6, max_size=6), st.integers(0, 8),
       st.booleans(), st.integers(0, 2**32 - 1), st.integers(0, 2**31 - 1))
def test_noise_is_the_agents_exploration(ys, f, narrow, seed, sigma_q):
    fmt = _SPEC.fmt(f, narrow)
    ys = np.clip(ys, fmt.min_int, fmt.max_int)
    img = np.zeros((8, 2), dtype=np.int64)
    img.reshape(-1)[[0, 1, 2, 4, 5, 6]] = ys  # two vectors of three elements, two words each
    state = VectorState.initial(_SPEC).reseed(seed)
    cmd = VectorCommand("noise", batch=2, length=3, a_base=0, a_stride=2, a_frac=f,
                        a_narrow=narrow, d_base=0, d_stride=2)
    out, new = execute(_SPEC, cmd, img, state, sigma_q=sigma_q)
    # DDPGAgent.explore: noise of the whole action vector from the agent's stream, then clip
    noise, s = gaussian_codes(seed_state(seed), 6, sigma_q / 2**16, fmt)
    one = min(1 << fmt.frac, fmt.max_int)
    want = np.clip(ys + noise, -one, one)
    assert out[:4].reshape(2, 4)[:, :3].reshape(-1).tolist() == want.tolist()
    assert new.noise == s


@pytest.mark.parametrize("precision", ["fixed", "fixed16"])
def test_noise_reproduces_the_agents_exploration(precision):
    """``noise`` on the actor's output codes, converted as ``explore`` does, is ``explore``."""
    from sw_model.arch.ddpg_config import DDPGConfig
    from sw_model.arch.ddpg_step import fixed_actor_forward
    from sw_model.numerics.prng import sigma_code
    from sw_model.rl.ddpg import DDPGAgent

    cfg = DDPGConfig(hidden=(6, 5), precision=precision, seed=11, noise_sigma=0.3)
    agent = DDPGAgent(cfg, 3, 2, [-2.0, -1.0], [2.0, 1.0])
    out_fmt = agent.formats["actor.x3"]
    spec = VectorSpec(size=2, addr_width=2, max_batch=1, max_len=2,
                      narrow_width=cfg.act16_fmt.width)
    state = VectorState.initial(spec).reseed(cfg.seed)
    rng = np.random.default_rng(0)
    for _ in range(4):
        obs = rng.uniform(-3, 3, 3)
        y = fixed_actor_forward(agent.weights["actor"], cfg.act_fmt.from_float(obs[None]), cfg,
                                agent.formats)[0]
        mem = np.zeros((2, 2), dtype=np.int64)
        mem[0] = y
        cmd = VectorCommand("noise", length=2, a_frac=out_fmt.frac,
                            a_narrow=out_fmt.width != cfg.act_fmt.width, d_base=1)
        mem, state = execute(spec, cmd, mem, state, sigma_q=sigma_code(cfg.noise_sigma))
        got = cfg.act_fmt.to_float(requantize(mem[1], out_fmt.frac, cfg.act_fmt, "floor",
                                              "saturate"))
        assert got.tolist() == agent.explore(obs).tolist()
    assert state.noise == agent.noise_state


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"size": 3}, ValueError, r"^VectorSpec size must be a power of two, not 3$"),
    ({"size": 2.0}, TypeError, r"^VectorSpec size must be an integer, not 2\.0$"),
    ({"word_width": 16}, ValueError, r"^VectorSpec word_width must be from 32 to 64, not 16$"),
    ({"act_fmt": 32}, TypeError, r"^VectorSpec act_fmt must be a FixedFormat, not 32$"),
    ({"delta_fmt": FixedFormat(32, 24, False)}, ValueError, r"^VectorSpec delta_fmt must be "),
    ({"deriv_fmt": FixedFormat(8, -1)}, ValueError, r"^VectorSpec deriv_fmt must be signed"),
    ({"narrow_width": 40}, ValueError, r"^VectorSpec narrow_width must be from 2 to 32, not 40$"),
    ({"rounding": "up"}, ValueError, r"^VectorSpec rounding must be one of"),
    ({"points": 0}, ValueError, r"^VectorSpec points must be from 1 to 64, not 0$"),
    ({"max_batch": True}, TypeError, r"^VectorSpec max_batch must be an integer, not True$"),
    ({"addr_width": 0}, ValueError, r"^VectorSpec addr_width must be from 1 to 32, not 0$"),
])
def test_spec_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        VectorSpec(**kwargs)


_SMALL = VectorSpec(size=2, word_width=8, addr_width=4, act_fmt=FixedFormat(8, 4),
                    delta_fmt=FixedFormat(8, 5), deriv_fmt=FixedFormat(8, 6), narrow_width=4,
                    max_batch=3, max_len=4, points=2)


@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    ({"op": "add"}, ValueError, r"^VectorCommand op must be one of 'convert', .*not 'add'$"),
    ({"op": 1}, TypeError, r"^VectorCommand op must be a string, not 1$"),
    ({"op": "fill", "batch": 4}, ValueError, r"^VectorCommand batch must be from 1 to 3, not 4$"),
    ({"op": "fill", "length": 0}, ValueError, r"^VectorCommand length must be from 1 to 4"),
    ({"op": "loss", "length": 2}, ValueError, r"^VectorCommand length must be 1 for 'loss'"),
    ({"op": "convert", "a_frac": 5}, ValueError, r"^VectorCommand a_frac must be from 0 to 4"),
    ({"op": "range", "point": 2}, ValueError, r"^VectorCommand point must be from 0 to 1"),
    ({"op": "fill", "d_base": 15, "length": 3}, ValueError,
     r"^VectorCommand region d \(base 15, stride 0, off 0\) ends at word 16, beyond"),
    ({"op": "target", "b_base": 15, "b_off": 1}, ValueError,
     r"^VectorCommand region b .* ends at word 16"),
    ({"op": "fill", "d_stride": -1}, ValueError, r"^VectorCommand d_stride must be at least 0"),
    ({"op": "fill", "clear": "yes"}, TypeError, r"^VectorCommand clear must be a bool"),
    ({"op": "fill", "a_base": 16}, ValueError, r"^VectorCommand a_base must be from 0 to 15"),
])
def test_command_errors(kwargs, exc, match):
    dut = VectorUnit(_SMALL)
    with pytest.raises(exc, match=match):
        dut.command(VectorCommand(**kwargs))


def test_other_errors():
    with pytest.raises(TypeError, match=r"^spec must be a VectorSpec, not 3$"):
        VectorUnit(3)
    dut = VectorUnit(_SMALL)
    with pytest.raises(TypeError, match=r"^c must be a VectorCommand, not 'fill'$"):
        dut.command("fill")
    state = VectorState.initial(_SMALL)
    cmd = VectorCommand("fill", batch=2, d_base=3, d_stride=1)
    with pytest.raises(ValueError, match=r"^mem must have shape \(words, 2\), not \(4, 3\)$"):
        execute(_SMALL, cmd, np.zeros((4, 3), dtype=np.int64), state)
    with pytest.raises(ValueError, match=r"^region d of the command ends at word 4, beyond"):
        execute(_SMALL, cmd, np.zeros((4, 2), dtype=np.int64), state)
    with pytest.raises(ValueError, match=r"^mem holds 128"):
        execute(_SMALL, cmd, np.full((8, 2), 128), state)
    with pytest.raises(ValueError, match=r"^execute gamma_q must be from 0 to 65536"):
        execute(_SMALL, cmd, np.zeros((8, 2), dtype=np.int64), state, gamma_q=65537)
    with pytest.raises(ValueError, match=r"^VectorSpec.fmt frac must be from 0 to 4, not 5$"):
        _SMALL.fmt(5)


def test_encoding_and_layout():
    dut = VectorUnit(_SMALL)
    assert {op: k for k, op in enumerate(VECTOR_OPS)} == OP_CODES
    widths = {name: Shape.cast(f.shape).width for name, f in dut.command_layout}
    assert widths["op"] == 3 and widths["batch_minus_1"] == 2 and widths["length_minus_1"] == 2
    assert widths["a_off"] == _SMALL.addr_width + 1 and widths["a_frac"] == 3
    payload = dut.command(VectorCommand("noise", batch=3, length=2, a_frac=4, a_narrow=True,
                                        d_base=2, d_stride=1))
    assert payload["op"] == 6 and payload["batch_minus_1"] == 2 and payload["a_narrow"] == 1
    assert len(dut.d_wr.en) == _SMALL.size
