# amaranth: UnusedElaboratable=no
"""The AAP array's levels, each on its own: a PE, one core's PE grid, the output stages and the
sequencer, against Python references, the golden numerics and the cycle model.

Every part advances only with its enable, so each test drives a random enable pattern (the
stalls of the array's output streams) and checks the results by the number of enabled cycles.
"""

import numpy as np
from amaranth.hdl import signed
from amaranth.sim import Simulator
from hypothesis import given
from hypothesis import strategies as st

from fixar_hw.arith.numeric import range_shape
from fixar_hw.train.aap import OP_CODES, AAPCommandSet
from fixar_hw.train.aap_output import GradientRequantizer, OutputStage
from fixar_hw.train.aap_sequencer import AAPSequencer, settings_layout
from fixar_hw.train.array import PEArray
from fixar_hw.train.pe_grid import PEGrid, ProcessingElement
from sw_model.numerics.activation import activate, derivative
from sw_model.numerics.fixed import FixedFormat, requantize

from .strategies import examples
from .test_aap import configs


def _run(dut, bench) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@st.composite
def enables(draw, n: int) -> list[bool]:
    """At least ``n`` enabled cycles, spread over a random pattern of enabled and stalled
    cycles (the array's stalls)."""
    pattern = draw(st.lists(st.booleans(), min_size=n, max_size=3 * n))
    return pattern + [True] * max(0, n - sum(pattern))


@examples(ci=40, nightly=800)
@given(st.integers(2, 9), st.integers(1, 4), st.booleans(), st.data())
def test_pe_products_and_sums(lw, h, dual, data):
    """A PE: ``lhs * rhs`` two enabled cycles after its operands; a dual-precision PE the
    same in full mode and ``lhs * rhs_lo + lhs1 * rhs_hi`` in half mode, three cycles after;
    and the accumulator, against a reference of the registers."""
    rw = 2 * h if dual else data.draw(st.integers(2, 9))
    left, right = signed(lw), signed(rw)
    lo, hi = -(1 << (lw + rw - 2)), 1 << (lw + rw - 2)
    product, acc = range_shape(lo, hi), signed(lw + rw + 4)
    n = data.draw(st.integers(1, 12))
    wl = st.integers(-(1 << (lw - 1)), (1 << (lw - 1)) - 1)
    half_lane = st.integers(-(1 << (h - 1)), (1 << (h - 1)) - 1)
    # (w, w1, a, a_lo, a_hi, half, acc, first, close)
    ops = data.draw(st.lists(st.tuples(
        wl, wl, st.integers(-(1 << (rw - 1)), (1 << (rw - 1)) - 1), half_lane, half_lane,
        st.booleans() if dual else st.just(False), st.booleans(), st.booleans(),
        st.booleans()), min_size=n, max_size=n))
    dut = ProcessingElement(left, right, product, acc, dual=h if dual else None)
    latency = dut.latency
    assert latency == (3 if dual else 2)
    en = data.draw(enables(n + latency))
    idle = (0, 0, 0, 0, 0, False, False, False, False)

    def value(op):
        w, w1, a, a_lo, a_hi, half = op[:6]
        return w * a_lo + w1 * a_hi if half else w * a

    async def bench(ctx):
        # the reference: the pipeline's values (its last is the product register), the
        # accumulator and the closed sum
        pipe, total, closed, fed = [0] * latency, 0, 0, 0
        for e in en:
            op = ops[fed] if fed < n else idle
            w, w1, a, a_lo, a_hi, half = op[:6]
            ctx.set(dut.en, e)
            ctx.set(dut.lhs, w)
            ctx.set(dut.rhs, ((a_hi << h) | (a_lo & ((1 << h) - 1))) if half else a)
            if dual:
                ctx.set(dut.lhs1, w1)
                ctx.set(dut.half, half)
            # the tags describe the product in the output register: that of op fed - latency
            tag = ops[fed - latency] if 0 <= fed - latency < n else idle
            ctx.set(dut.acc, tag[6])
            ctx.set(dut.first, tag[7])
            ctx.set(dut.close, tag[8])
            await ctx.tick()
            if e:
                if tag[6]:
                    total = (0 if tag[7] else total) + pipe[-1]
                    closed = total if tag[8] else closed
                pipe = [value(op) if fed < n else 0, *pipe[:-1]]
                fed += 1
            assert ctx.get(dut.p) == pipe[-1]
            assert ctx.get(dut.sum) == closed

    _run(dut, bench)


@examples(ci=15, nightly=300)
@given(st.sampled_from([1, 2, 3, 4]), st.booleans(), st.data())
def test_pe_grid_column_and_gradient_sums(size, dual, data):
    S = size
    wf = FixedFormat(data.draw(st.integers(2, 6)), 0)
    vf = FixedFormat(data.draw(st.integers(2, 6)), 0)
    lo = min(wf.min_int * vf.max_int, wf.max_int * vf.min_int, vf.min_int * vf.max_int)
    hi = max(wf.min_int * vf.min_int, vf.min_int * vf.min_int)
    shape = signed(max(wf.width, vf.width))
    # a dual PE's halves may be wider than the lanes (a wider delta format elsewhere)
    h = (vf.width + 1) // 2 + data.draw(st.integers(0, 2)) if dual else None
    right = signed(2 * h) if dual else shape
    product = range_shape(2 * lo, 2 * hi) if dual else range_shape(lo, hi)
    pe_acc = signed(product.width + 4)
    dut = PEGrid(S, weight=signed(wf.width), vector=signed(vf.width),
                 second=signed(vf.width), left=shape, right=right, product=product,
                 acc=pe_acc, dual=h)
    op = data.draw(st.sampled_from(["forward", "backward", "wgrad"]))
    half = dual and op != "backward" and data.draw(st.booleans())
    n = data.draw(st.integers(1, 6))
    # half mode: activation lanes hold h-bit codes (narrow activations, sign-extended)
    lane = (st.integers(max(-(1 << (h - 1)), vf.min_int), min((1 << (h - 1)) - 1, vf.max_int))
            if half else st.integers(vf.min_int, vf.max_int))

    def draw_pass() -> dict:
        tiles = {t: data.draw(st.lists(st.integers(wf.min_int, wf.max_int), min_size=S * S,
                                       max_size=S * S)) for t in ("tile", "tile1")}
        vecs = {v: data.draw(st.lists(lane, min_size=S, max_size=S))
                for v in ("vec", "uvec", "vec1", "uvec1")}
        masks = {k: data.draw(st.integers(0, (1 << S) - 1))
                 for k in ("vmask", "umask", "v1mask", "u1mask")}
        return {**tiles, **vecs, **masks}

    passes = [draw_pass() for _ in range(n)]

    def products(p):
        """Each PE's product (sum of two in half mode) of pass ``p``, as the grid's docs
        route the operands."""
        def lanes(name, mask, axis):
            v = np.where([(p[mask] >> r) & 1 for r in range(S)], np.array(p[name]), 0)
            return v[:, None] if axis == 0 else v[None, :]
        w = np.array(p["tile"]).reshape(S, S)          # lane r*S + c at [r, c]
        w1 = np.array(p["tile1"]).reshape(S, S)
        v, v1 = lanes("vec", "vmask", 0), lanes("vec1", "v1mask", 0)
        u, u1 = lanes("uvec", "umask", 1), lanes("uvec1", "u1mask", 1)
        if op == "forward":
            return w.T * v + (w1.T * v1 if half else 0)
        if op == "backward":
            return w * v
        return v * u + (v1 * u1 if half else 0)

    cols = [products(p).sum(axis=0) for p in passes]
    grad = sum(products(p) for p in passes)
    en = data.draw(enables(n + dut.col_latency + 1))

    async def bench(ctx):
        ctx.set(dut.is_fwd, op == "forward")
        ctx.set(dut.is_wg, op == "wgrad")
        if dual:
            ctx.set(dut.half, half)
        fed = checked = 0
        for e in en:
            p = passes[fed] if fed < n else passes[-1]
            names = ("tile", "vec", "uvec", "vmask", "umask")
            if dual:
                names += ("tile1", "vec1", "uvec1", "v1mask", "u1mask")
            for name in names:
                ctx.set(getattr(dut, name), p[name])
            in_out = fed - dut.pe_latency  # the pass in the PEs' output registers
            ctx.set(dut.acc, op == "wgrad" and 0 <= in_out < n)
            ctx.set(dut.first, in_out == 0)
            ctx.set(dut.close, in_out == n - 1)
            ctx.set(dut.en, e)
            await ctx.tick()
            fed += e
            done = fed - dut.col_latency
            if e and op != "wgrad" and 0 <= done < n:
                assert [ctx.get(dut.col[c]) for c in range(S)] == cols[done].tolist()
                checked += 1
            if e and op == "wgrad" and fed - dut.pe_latency == n:
                assert [ctx.get(dut.sum[k]) for k in range(S * S)] == grad.flatten().tolist()
                checked += n
        assert checked == n

    _run(dut, bench)


def _settings(config, op: str, kind: str, x_frac: int, o_frac: int, narrow: bool,
              t_shift: int) -> dict:
    """The settings a command leaves (the formulas of ``settings_layout``'s docs)."""
    af = config.a_fmt.frac
    return {"op": OP_CODES[op], "kind": ("identity", "relu", "tanh").index(kind), "layer": 0,
            "x_frac": x_frac, "o_narrow": int(narrow), "t_shift": t_shift,
            "left_z": af - x_frac + o_frac, "left_d": 2 * (af - x_frac),
            "left_g": af - x_frac, "one_y": 1 << (2 * x_frac)}


@examples(ci=20, nightly=400)
@given(st.data())
def test_output_stage_equals_the_golden_numerics(data):
    c = data.draw(configs(max_cores=1))
    core = PEArray(c)
    S = c.size
    op = data.draw(st.sampled_from(["forward", "backward"]))
    kind = data.draw(st.sampled_from(["identity", "relu", "tanh"]))
    x_frac = data.draw(st.integers(0, c.a_fmt.frac))
    if kind == "tanh" and op == "forward":      # the initial table: the build's a_fmt
        o_frac, narrow = c.a_fmt.frac, False
    else:
        o_frac = data.draw(st.integers(0, c.a_fmt.frac))
        narrow = c.narrow_width is not None and data.draw(st.booleans())
    out_fmt = c.act_format(o_frac, narrow)
    x_fmt = c.act_format(x_frac)
    settings = _settings(c, op, kind, x_frac, o_frac, narrow, min(c.table.shift, c.a_fmt.width))
    lo, hi = core.product_range
    col_shape = signed(core.product_shape.width + (S - 1).bit_length())
    dut = OutputStage(c, settings_layout(c, core.command_layout), col=col_shape,
                      acc=core.acc_shape, out=signed(max(c.a_fmt.width, c.d_fmt.width)))
    sums = data.draw(st.integers(1, 3))
    passes = data.draw(st.integers(1, 3))
    cols = [[[data.draw(st.integers(S * lo, S * hi)) for _ in range(S)] for _ in range(passes)]
            for _ in range(sums)]
    side_fmt = c.w_fmt if op == "forward" else x_fmt
    aux = [[data.draw(st.integers(side_fmt.min_int, side_fmt.max_int)) for _ in range(S)]
           for _ in range(sums)]
    total = np.array([np.sum(s, axis=0) for s in cols], dtype=np.int64)   # (sums, S)
    side = np.array(aux, dtype=np.int64)
    if op == "forward":
        z = requantize(total + (side << x_frac), x_frac + c.w_fmt.frac, out_fmt, c.rounding,
                       "saturate")
        want = activate(z, out_fmt, out_fmt, kind, rounding=c.rounding, table=c.table
                        if kind == "tanh" else None)
    else:
        e = requantize(total, c.d_fmt.frac + c.w_fmt.frac, c.d_fmt, c.rounding, "saturate")
        g = derivative(side, side, x_fmt, x_fmt, c.g_fmt, kind, rounding=c.rounding)
        want = requantize(e * g, c.d_fmt.frac + c.g_fmt.frac, c.d_fmt, c.rounding, "saturate")
    flat = [(s, p) for s in range(sums) for p in range(passes)]
    en = data.draw(enables(len(flat) + OutputStage.latency + 1))

    async def bench(ctx):
        for name, value in settings.items():
            ctx.set(getattr(dut.settings, name), value)
        fed, got = 0, []
        closed = []                  # enabled-cycle counts at which each sum closed
        for e in en:
            s, p = flat[fed] if fed < len(flat) else (sums - 1, passes - 1)
            live = fed < len(flat)
            ctx.set(dut.col, cols[s][p])
            ctx.set(dut.aux, aux[s])
            ctx.set(dut.acc, live)
            ctx.set(dut.first, p == 0)
            ctx.set(dut.close, live and p == passes - 1)
            ctx.set(dut.en, e)
            await ctx.tick()
            if e:
                if live and p == passes - 1:
                    closed.append(fed + 1)
                fed += 1
                if closed and fed == closed[0] + OutputStage.latency - 1:
                    closed.pop(0)
                    got.append([ctx.get(dut.out[k]) for k in range(S)])
        assert np.array_equal(np.array(got, dtype=np.int64), want.reshape(sums, S))

    _run(dut, bench)


@examples(ci=20, nightly=400)
@given(st.data())
def test_gradient_requantizer_equals_the_golden_numerics(data):
    c = data.draw(configs(max_cores=1))
    core = PEArray(c)
    S = c.size
    x_frac = data.draw(st.integers(0, c.a_fmt.frac))
    lo, hi = core.product_range
    n = data.draw(st.integers(1, 4))
    tiles = [[data.draw(st.integers(c.max_batch * lo, c.max_batch * hi)) for _ in range(S * S)]
             for _ in range(n)]
    want = requantize(np.array(tiles, dtype=np.int64), c.d_fmt.frac + x_frac, c.grad_fmt,
                      c.rounding, "saturate")
    dut = GradientRequantizer(c, acc=core.pe_acc_shape)
    en = data.draw(enables(n + GradientRequantizer.latency))

    async def bench(ctx):
        ctx.set(dut.left_g, c.a_fmt.frac - x_frac)
        fed, got = 0, []
        for e in en:
            ctx.set(dut.sum, tiles[min(fed, n - 1)])
            ctx.set(dut.en, e)
            await ctx.tick()
            fed += e
            if e and 0 <= fed - GradientRequantizer.latency < n:
                got.append([ctx.get(dut.out[k]) for k in range(S * S)])
        assert np.array_equal(np.array(got, dtype=np.int64), want)

    _run(dut, bench)


@examples(ci=20, nightly=400)
@given(st.data())
def test_sequencer_issues_the_cycle_models_passes(data):
    c = data.draw(configs())
    dut = AAPSequencer(c, AAPCommandSet(c).layout)
    op = data.draw(st.sampled_from(["forward", "backward", "wgrad"]))
    m, n = data.draw(st.integers(1, c.max_m)), data.draw(st.integers(1, c.max_n))
    batch = data.draw(st.integers(1, c.max_batch))
    parallelism = data.draw(st.sampled_from(["batch", "layer"]))
    cmd = AAPCommandSet(c).command(op, m=m, n=n, batch=batch, parallelism=parallelism)
    passes = c.cycle_model.passes(op, m, n, batch, parallelism)
    ti, tj = -(-m // c.size), -(-n // c.size)
    en = data.draw(enables(passes + 2))

    async def bench(ctx):
        ctx.set(dut.drained, 1)
        ctx.set(dut.cmd.payload, cmd)
        ctx.set(dut.cmd.valid, 1)
        while not ctx.get(dut.cmd.ready):
            await ctx.tick()
        await ctx.tick()
        ctx.set(dut.cmd.valid, 0)
        issued, ends, reads = 0, 0, {}
        for e in en:
            ctx.set(dut.en, e)
            ctx.set(dut.drained, 0)
            w_en, w_addr = ctx.get(dut.reads.w.en), ctx.get(dut.reads.w.addr)
            busy = ctx.get(dut.busy)
            assert not ctx.get(dut.cmd.ready)
            await ctx.tick()
            if e and busy:
                issued += 1
                for k in range(c.cores):
                    if (w_en >> k) & 1:
                        reads[w_addr[k]] = reads.get(w_addr[k], 0) + 1
            if e:
                ends += ctx.get(dut.tag.v) and ctx.get(dut.tag.end)
        assert issued == passes
        assert not ctx.get(dut.busy)
        assert ends == 1
        # every tile of the layer read once per vector (never for a weight gradient)
        assert reads == ({} if op == "wgrad" else {t: batch for t in range(ti * tj)})

    _run(dut, bench)
