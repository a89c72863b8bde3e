"""Adaptive array processing (AAP): a grid of PEs that runs forward, backward and weight-gradient.

FIXAR's compute engine. A ``size x size`` grid of PEs multiplies, in one cycle, one weight tile by
one vector slice: activations are broadcast along PE rows and the products summed down PE columns
into per-column accumulators (forward and backward), or each PE accumulates its own product over
a batch (weight gradient, an outer product per cycle). Closed sums go through an output stage:
requantization, bias, activation (identity, ReLU, table tanh) or the activation derivative.

The three operations use one weight memory layout, the tiles of
:func:`sw_model.arch.aap.tile_weights`
(tile ``(i, j)`` holds ``W[i*S + r, j*S + c]`` at lane ``r*S + c``), and never a transpose:

forward, ``y = act(W x + b)``
    PE ``(r, c)`` takes lane ``c*S + r`` of tile ``(i, j)``: weight row ``i*S + c`` goes down PE
    column ``c``, ``x[j*S + r]`` is broadcast along PE row ``r``; column ``c`` sums output
    ``i*S + c`` over the slice. The reduction runs over ``j``.
backward, ``d_prev = (W^T d) * act'(y_prev)``
    PE ``(r, c)`` takes lane ``r*S + c`` of the same tile: weight row ``i*S + r`` goes along PE
    row ``r``, ``d[i*S + r]`` is broadcast along it; column ``c`` sums ``e[j*S + c]``. The
    reduction runs over ``i``.
weight gradient, ``G = sum_b d_b x_b^T``
    PE ``(r, c)`` accumulates ``d_b[i*S + r] * x_b[j*S + c]`` over the batch; the closed tile
    leaves as one ``S x S`` word in the weight layout.

Results equal :func:`sw_model.arch.aap.forward`, :func:`~sw_model.arch.aap.backward` and
:func:`~sw_model.arch.aap.weight_gradient` bit for bit, and cycle counts equal
:class:`sw_model.arch.aap.CycleModel`. :class:`AAPCore` is one core;
:class:`fixar_hw.train.array.PEArray`
runs several in lockstep with intra-batch or intra-layer parallelism (the engine below is written
for ``cores`` cores; an :class:`AAPCore` is the one-core case).
"""

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import silence_on_error
from fixar_hw.arith.mac import exact_product
from fixar_hw.arith.numeric import (
    range_shape,
    requantize,
    saturate,
    shape_of,
    shift_round,
)
from sw_model.arch.aap import OPS, PARALLELISM, AAPConfig
from sw_model.numerics.activation import ACTIVATIONS, TanhTable
from sw_model.numerics.fixed import FixedFormat, product_range

__all__ = ["KIND_CODES", "OP_CODES", "AAPCommandSet", "AAPCore"]

#: Encoding of the ``op`` field of a command.
OP_CODES = {"forward": 0, "backward": 1, "wgrad": 2}
#: Encoding of the ``kind`` field of a command.
KIND_CODES = {"identity": 0, "relu": 1, "tanh": 2}

_FWD, _BWD, _WG = 0, 1, 2


def _bits(n: int) -> int:
    return max(n.bit_length(), 1)


@dataclass(frozen=True)
class AAPCommandSet:
    """The command encoding of an AAP array (:class:`AAPCore`,
    :class:`~fixar_hw.train.array.PEArray`) for one :class:`~sw_model.arch.aap.AAPConfig`: plain
    Python, shared by the hardware and the host (a program's descriptors are encoded without
    building an array).

    Parameters
    ----------
    config : AAPConfig

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~sw_model.arch.aap.AAPConfig`.
    """

    config: AAPConfig

    def __post_init__(self) -> None:
        if not isinstance(self.config, AAPConfig):
            raise TypeError(f"config must be an AAPConfig, not {self.config!r}")

    @property
    def layout(self) -> data.StructLayout:
        """Layout of a command: dimensions are stored minus one, so none can be 0."""
        c = self.config
        return data.StructLayout({
            "op": 2,
            "kind": 2,
            "layer": 1,
            "m_minus_1": _bits(c.max_m - 1),
            "n_minus_1": _bits(c.max_n - 1),
            "batch_minus_1": _bits(c.max_batch - 1),
            "w_base": c.addr_width,
            "v_base": c.addr_width,
            "u_base": c.addr_width,
            "b_base": c.addr_width,
            "x_frac": _bits(c.a_fmt.frac),
            "o_frac": _bits(c.a_fmt.frac),
            "o_narrow": 1,
            "t_shift": _bits(self.max_t_shift),
        })

    @property
    def max_t_shift(self) -> int:
        """The largest table shift a command holds: ``|z| >> shift`` indexes the table, and
        beyond ``a_fmt.width`` bits every index clamps."""
        return self.config.a_fmt.width

    def command(self, op: str, *, m: int, n: int, batch: int, kind: str = "identity",
                parallelism: str = "batch", w_base: int = 0, v_base: int = 0,
                u_base: int = 0, b_base: int = 0, x_fmt: FixedFormat | None = None,
                out_fmt: FixedFormat | None = None, table: TanhTable | None = None) -> dict:
        """The command payload (a dict for :attr:`layout`) of one operation on an ``m x n``
        weight matrix.

        ``x_fmt`` is the format of the activation operand (forward ``x``, backward
        ``y_prev``, weight-gradient ``x``) and ``out_fmt`` that of a forward output, each a
        run-time format of the build (default ``a_fmt``); ``table`` is the tanh table of a
        forward tanh layer (default :meth:`~sw_model.arch.aap.AAPConfig.table_for` the output
        format, or the initial table when ``out_fmt`` is omitted).

        Raises
        ------
        TypeError
            For a dimension or base address that is no integer.
        ValueError
            For an unknown ``op``/``kind``/``parallelism``, a dimension outside
            ``1..config.max_*``, a base address that does not fit ``addr_width``, or a format
            or table the build cannot take.
        """
        c = self.config
        if op not in OPS:
            raise ValueError(f"op must be one of {', '.join(map(repr, OPS))}, not {op!r}")
        if kind not in ACTIVATIONS:
            raise ValueError(f"kind must be one of {', '.join(map(repr, ACTIVATIONS))}, "
                             f"not {kind!r}")
        if parallelism not in PARALLELISM:
            raise ValueError(f"parallelism must be 'batch' or 'layer', not {parallelism!r}")
        for name, value, hi in (("m", m, c.max_m), ("n", n, c.max_n),
                                ("batch", batch, c.max_batch)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            if not 1 <= value <= hi:
                raise ValueError(f"{name} must be from 1 to {hi}, not {value!r}")
        bases = {"w_base": w_base, "v_base": v_base, "u_base": u_base, "b_base": b_base}
        for name, value in bases.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            if not 0 <= value < 1 << c.addr_width:
                raise ValueError(f"{name} must be from 0 to {(1 << c.addr_width) - 1}, "
                                 f"not {value!r}")
        x_frac, _ = c.act_fields(x_fmt)
        o_frac, o_narrow = c.act_fields(out_fmt)
        if table is None:
            table = c.table if out_fmt is None else c.table_for(out_fmt)
        c.table_image(table)  # raises for a table the memory cannot hold
        out = out_fmt or c.a_fmt
        if table.out_fmt != out:
            raise ValueError(f"table format {table.out_fmt!r} differs from the output format "
                             f"{out!r}")
        return {"op": OP_CODES[op], "kind": KIND_CODES[kind],
                "layer": int(parallelism == "layer"), "m_minus_1": m - 1,
                "n_minus_1": n - 1, "batch_minus_1": batch - 1, **bases,
                "x_frac": x_frac, "o_frac": o_frac, "o_narrow": int(o_narrow),
                "t_shift": min(table.shift, self.max_t_shift)}

    def cycles(self, op: str, m: int, n: int, batch: int, parallelism: str = "batch") -> int:
        """Cycles from the command transfer to the last result transfer (outputs always
        accepted): :meth:`sw_model.arch.aap.CycleModel.cycles`."""
        return self.config.cycle_model.cycles(op, m, n, batch, parallelism)


class AAPCore(wiring.Component):
    """One AAP core: a ``size x size`` PE grid with its sequencer and output stage.

    An operation starts with a command on :attr:`cmd` (see :meth:`command`); the core then
    reads its memories through the read ports (one tile or slice per port per cycle, addresses
    below) and emits results on :attr:`o` (forward, backward) or :attr:`g` (weight gradient).
    It accepts the next command once the last result has left.

    Memories (read ports with one cycle of latency, as ``amaranth.lib.memory`` gives; ``en`` is
    low whenever the port is not read, so the data stays put):

    ``w_rd``
        Weight tiles, ``size**2`` lanes of ``w_fmt``; tile ``(i, j)`` at
        ``w_base + i * ceil(n/size) + j``.
    ``v_rd``
        The vector operand, ``size`` lanes: ``x`` slices (forward; ``a_fmt``) or ``d`` slices
        (backward and weight gradient; ``d_fmt``); slice ``s`` of vector ``b`` at
        ``v_base + b * slices + s``.
    ``u_rd``
        The second vector operand (``a_fmt``): ``y_prev`` (backward) or ``x`` (weight
        gradient), same layout at ``u_base``.
    ``b_rd``
        Biases (forward), ``size`` lanes of ``w_fmt``, slice ``i`` at ``b_base + i``.

    Contents of lanes beyond a layer's size do not matter: the core masks them.

    Run-time activation formats: each command carries the fraction bits of its activation
    operand (``x``, or ``y_prev``) and the fraction bits and width (``a_fmt.width`` or
    ``config.narrow_width``) of a forward output, see
    :meth:`sw_model.arch.aap.AAPConfig.act_format`.
    The requantizers shift by amounts known only at run time (barrel shifters,
    :func:`fixar_hw.arith.numeric.requantize_runtime`). The tanh table is a memory, one copy per
    output lane, written through :attr:`tbl_wr` (every copy at once) while the core is idle;
    it starts with :attr:`~sw_model.arch.aap.AAPConfig.table`. A tanh command's ``t_shift`` is its
    table's :attr:`~sw_model.numerics.activation.TanhTable.shift`; the memory must hold
    :meth:`~sw_model.arch.aap.AAPConfig.table_image` of that table.

    Results: :attr:`o` carries one output slice per beat (``data[k]`` for core ``k``; here
    ``k = 0``), for each vector in order, slices in order; lanes beyond the layer are 0.
    Forward emits ``y`` (``a_fmt``), backward ``d_prev`` (``d_fmt``). :attr:`g` carries one
    gradient tile per beat (``grad_fmt``, lanes as in the weight layout), tiles in row-major
    order. ``mask`` flags the cores whose data is real; ``last`` marks the operation's final
    beat.

    Timing: one tile pass per cycle per core (``size**2`` MACs). With outputs always accepted,
    an operation takes :meth:`sw_model.arch.aap.CycleModel.cycles` cycles from the command transfer
    to the last result transfer. A stalled output stalls the whole pipeline; nothing is lost.
    The pipeline is :meth:`~sw_model.arch.aap.CycleModel.fill` stages deep, each at most one
    adder, one multiplier or one barrel shifter: read, operands, products, the column adder
    trees (a register every two adder levels), the cross-core sum, accumulate, bias, align,
    round, saturate, table index, table read, table word, activation (forward and backward);
    read, operands, products, accumulate, align, round, saturate (weight gradient). The run-time
    shift amounts are registers set with the command.

    Numerics: exact products (PE multipliers), exact sums in accumulators sized for the
    largest layer and batch of the configuration (they cannot wrap), then one saturating
    requantization with ``config.rounding`` per result, as in :mod:`sw_model.arch.aap`.

    Parameters
    ----------
    config : AAPConfig
        Grid size, formats and limits; ``config.cores`` must be 1 (see
        :class:`fixar_hw.train.array.PEArray` for several cores).

    Members
    -------
    cmd : In(stream.Signature(command_layout))
    w_rd, v_rd, u_rd, b_rd : In(memory.ReadPort.Signature(...)).array(cores)
    tbl_wr : Out(memory.WritePort.Signature(addr_width=tanh_index_bits, shape=a_fmt))
        The table memories' write port (driven from outside, like a memory's).
    o : Out(stream.Signature({data, mask, last}))
    g : Out(stream.Signature({data, mask, last}))
    busy : Out(1)
        High from the command transfer to the last result transfer.
    """

    _max_cores = 1
    #: The command encoding (a subclass may restrict it).
    _command_set: type[AAPCommandSet] = AAPCommandSet

    @silence_on_error
    def __init__(self, config: AAPConfig) -> None:
        if not isinstance(config, AAPConfig):
            raise TypeError(f"config must be an AAPConfig, not {config!r}")
        if config.cores > self._max_cores:
            raise ValueError(f"{type(self).__name__} has one core, not config.cores = "
                             f"{config.cores!r} (use fixar_hw.train.array.PEArray)")
        self._config = c = config
        self._commands = self._command_set(config)
        S, N = c.size, c.cores
        self._left_shape = signed(max(c.w_fmt.width, c.d_fmt.width))
        self._v_shape = signed(max(c.a_fmt.width, c.d_fmt.width))
        self._o_shape = self._v_shape
        aw = c.addr_width
        port = memory.ReadPort.Signature
        super().__init__({
            "cmd": In(stream.Signature(self.command_layout)),
            "w_rd": In(port(addr_width=aw,
                            shape=data.ArrayLayout(self._weight_lane_shape(), S * S))).array(N),
            "v_rd": In(port(addr_width=aw, shape=data.ArrayLayout(self._v_shape, S))).array(N),
            "u_rd": In(port(addr_width=aw, shape=data.ArrayLayout(shape_of(c.a_fmt), S)))
            .array(N),
            "b_rd": In(port(addr_width=aw, shape=data.ArrayLayout(shape_of(c.w_fmt), S)))
            .array(N),
            # the core holds the table memories: the port is written from outside
            "tbl_wr": Out(memory.WritePort.Signature(addr_width=c.tanh_index_bits,
                                                     shape=shape_of(c.a_fmt))),
            "o": Out(stream.Signature(data.StructLayout({
                "data": data.ArrayLayout(data.ArrayLayout(self._o_shape, S), N),
                "mask": N,
                "last": 1,
            }))),
            "g": Out(stream.Signature(data.StructLayout({
                "data": data.ArrayLayout(data.ArrayLayout(shape_of(c.grad_fmt), S * S), N),
                "mask": N,
                "last": 1,
            }))),
            "busy": Out(1),
        })

    # --- build-time description ------------------------------------------------------------

    @property
    def config(self) -> AAPConfig:
        """The configuration."""
        return self._config

    @property
    def commands(self) -> "AAPCommandSet":
        """The command encoding of this array (:class:`AAPCommandSet` or a subclass)."""
        return self._commands

    @property
    def command_layout(self) -> data.StructLayout:
        """Layout of a command (:attr:`AAPCommandSet.layout`)."""
        return self._commands.layout

    def command(self, op: str, **kwargs) -> dict:
        """The :attr:`cmd` payload of one operation (:meth:`AAPCommandSet.command`)."""
        return self._commands.command(op, **kwargs)

    @property
    def product_range(self) -> tuple[int, int]:
        """``(min, max)`` over the exact products of the three operations."""
        c = self._config
        ranges = [product_range(c.w_fmt, c.a_fmt), product_range(c.w_fmt, c.d_fmt),
                  product_range(c.d_fmt, c.a_fmt)]
        return min(r[0] for r in ranges), max(r[1] for r in ranges)

    @property
    def product_shape(self) -> Shape:
        """Shape holding any product of the three operations."""
        return range_shape(*self.product_range)

    @property
    def acc_shape(self) -> Shape:
        """Column accumulators: any sum of up to ``2**bits(max(max_m, max_n) - 1)`` products
        plus a bias shifted by ``a_fmt.frac``; they cannot wrap."""
        c = self._config
        terms = 1 << max(_bits(c.max_m - 1), _bits(c.max_n - 1))
        lo, hi = self.product_range
        f = c.a_fmt.frac
        return range_shape(terms * lo + (c.w_fmt.min_int << f), terms * hi + (c.w_fmt.max_int << f))

    @property
    def pe_acc_shape(self) -> Shape:
        """PE accumulators (weight gradient): any sum of up to ``2**bits(max_batch - 1)``
        products; they cannot wrap."""
        lo, hi = self.product_range
        terms = 1 << _bits(self._config.max_batch - 1)
        return range_shape(terms * lo, terms * hi)

    def _weight_lane_shape(self) -> Shape:
        """Shape of one lane of a weight tile (a ``w_fmt`` code here)."""
        return shape_of(self._config.w_fmt)

    def _multiply(self, m: Module, left: Value, right: Value) -> Value:
        """One PE's product of ``left`` (a weight lane, or ``d`` for the weight gradient) and
        ``right`` (the broadcast vector lane). The seam for other PEs (SP2 lanes, abstract
        products)."""
        return exact_product(left, right)

    # --- hardware ----------------------------------------------------------------------------

    def elaborate(self, platform) -> Module:
        m = Module()
        c = self._config
        S, N, L = c.size, c.cores, c.size.bit_length() - 1
        # white-box view for the property harnesses: (enable, exact sum, register shape) of
        # every accumulator update, to prove none wraps
        self._obs = {"sums": []}
        aw = c.addr_width
        cmd, o, g = self.cmd, self.o, self.g

        go = Signal()
        m.d.comb += go.eq((~o.valid | o.ready) & (~g.valid | g.ready))

        # ---- command decoding (at acceptance) ----
        p = cmd.payload
        ti_new = (p.m_minus_1 >> L) + 1
        tj_new = (p.n_minus_1 >> L) + 1
        op_new = p.op

        busy = Signal()           # the sequencer issues passes
        op = Signal(2)
        kind = Signal(2)
        layer = Signal()
        x_frac = Signal.like(p.x_frac)
        o_narrow = Signal()
        t_shift = Signal.like(p.t_shift)
        # the requantizers' left shifts (see align_runtime), set with the command so that no
        # subtraction sits in front of a barrel shifter
        af, f2 = c.a_fmt.frac, 2 * c.a_fmt.frac
        left_z = Signal(range(2 * af + 1))   # forward output: af - x_frac + o_frac
        left_d = Signal(range(f2 + 1))       # tanh derivative: 2 (af - x_frac)
        left_g = Signal(range(af + 1))       # weight gradient: af - x_frac
        one_y = Signal(signed(f2 + 2))       # 1 with 2 x_frac fraction bits
        m_1 = Signal.like(p.m_minus_1)
        n_1 = Signal.like(p.n_minus_1)
        b_1 = Signal.like(p.batch_minus_1)
        tw = max(len(ti_new), len(tj_new)) + _bits(N)
        ti = Signal(tw)
        t_red_1 = Signal(tw)      # reduction tiles - 1 (forward, backward)
        t_out_1 = Signal(tw)      # output tiles - 1 (forward, backward)

        # loop counters: a (outer), bm (middle), t (inner), and their multiples of N
        cw = max(tw, len(p.batch_minus_1)) + _bits(N) + 1
        a, bm, t = Signal(cw), Signal(cw), Signal(cw)
        aN, bN, tN = Signal(cw), Signal(cw), Signal(cw)
        # weight gradient: core k's gradient tile (row, column); the cores take consecutive
        # tiles in row-major order
        wi = [Signal(tw, name=f"wg_i_{k}") for k in range(N)]
        wj = [Signal(tw, name=f"wg_j_{k}") for k in range(N)]

        # the weight gradient's next tiles, without a chain of compares: the thresholds
        # ``w * tj - N`` (j wraps w times) and offsets ``N - w * tj`` are set with the command,
        # and the lead core's linear tile index ``wlin`` ends the operation at ``ti * tj - N``
        sw = tw + _bits(N) + 2
        wrap_at = [Signal(signed(sw), name=f"wg_wrap_at_{w}") for w in range(1, N + 1)]
        wrap_off = [Signal(signed(sw), name=f"wg_wrap_off_{w}") for w in range(1, N + 1)]
        wlin = Signal(2 * tw + 1)
        wlin_last = Signal(signed(2 * tw + 2))

        # the loop ends and the cores' validity compare counters with limits less k, set
        # with the command (``tN + k <= t_red_1`` is ``tN <= red_lim[k]``): no adder in front
        red_lim = [Signal(signed(cw + 2), name=f"red_lim_{k}") for k in range(N + 1)]
        bat_lim = [Signal(signed(cw + 2), name=f"bat_lim_{k}") for k in range(N + 1)]

        def step_tiles(i, j):
            """Tile ``(i, j)`` moved ``N`` tiles on in row-major order."""
            ni, nj = i, j + N
            for w in range(1, N + 1):  # the highest number of wraps that applies wins
                wrap = j.as_signed() >= wrap_at[w - 1]
                ni, nj = Mux(wrap, i + w, ni), Mux(wrap, j + wrap_off[w - 1], nj)
            return ni, nj

        def advance(i, j, step, tj_v):
            """Tile ``(i, j)`` moved ``step`` tiles on in row-major order (``tj_v`` columns)."""
            j = j + step
            for _ in range(step):
                wrap = j >= tj_v
                i, j = Mux(wrap, i + 1, i), Mux(wrap, j - tj_v, j)
            return i, j

        # address generators: (cA, cB, ct, ck) per port, running addresses
        ports = ("w", "v", "u", "b")
        coef = {q: [Signal(aw, name=f"{q}_c{x}") for x in "ABtk"] for q in ports}
        reg_a = {q: Signal(aw, name=f"{q}_reg_a") for q in ports}
        reg_b = {q: Signal(aw, name=f"{q}_reg_b") for q in ports}
        cur = {q: Signal(aw, name=f"{q}_cur") for q in ports}

        in_flight = Signal()
        accept = Signal()
        m.d.comb += [
            cmd.ready.eq(~busy & ~in_flight),
            accept.eq(cmd.valid & cmd.ready),
            self.busy.eq(busy | in_flight),
        ]

        def coefs(ti_v, tj_v):
            """(cA, cB, ct, ck) per port and (op, layer) for the command being accepted."""
            z = Const(0, aw)
            one = Const(1, aw)
            n_c = Const(N, aw)
            table = {
                (_FWD, 0): {"w": (z, tj_v, one, z), "v": (tj_v * N, z, one, tj_v),
                            "u": (z, z, z, z), "b": (z, one, z, z)},
                (_FWD, 1): {"w": (z, tj_v, n_c, one), "v": (tj_v, z, n_c, one),
                            "u": (z, z, z, z), "b": (z, one, z, z)},
                (_BWD, 0): {"w": (z, one, tj_v, z), "v": (ti_v * N, z, one, ti_v),
                            "u": (tj_v * N, one, z, tj_v), "b": (z, z, z, z)},
                (_BWD, 1): {"w": (z, one, tj_v * N, tj_v), "v": (ti_v, z, n_c, one),
                            "u": (tj_v, one, z, z), "b": (z, z, z, z)},
                (_WG, 0): {"w": (z, z, z, z), "v": (z, z, ti_v, z),
                           "u": (z, z, tj_v, z), "b": (z, z, z, z)},
            }
            table[(_WG, 1)] = table[(_WG, 0)]
            return table

        with m.If(accept):
            m.d.sync += [
                busy.eq(1), op.eq(op_new), kind.eq(p.kind), layer.eq(p.layer),
                x_frac.eq(p.x_frac), o_narrow.eq(p.o_narrow),
                t_shift.eq(p.t_shift),
                left_z.eq(af - p.x_frac + p.o_frac), left_d.eq(f2 - (p.x_frac << 1)),
                left_g.eq(af - p.x_frac), one_y.eq(Const(1, f2 + 2) << (p.x_frac << 1)),
                m_1.eq(p.m_minus_1), n_1.eq(p.n_minus_1), b_1.eq(p.batch_minus_1),
                ti.eq(ti_new),
                t_red_1.eq(Mux(op_new == _BWD, ti_new, tj_new) - 1),
                t_out_1.eq(Mux(op_new == _BWD, tj_new, ti_new) - 1),
                a.eq(0), bm.eq(0), t.eq(0), aN.eq(0), bN.eq(0), tN.eq(0),
            ]
            for k in range(N):
                i0, j0 = advance(Const(0, tw), Const(0, tw), k, tj_new)
                m.d.sync += [wi[k].eq(i0), wj[k].eq(j0)]
            for w in range(1, N + 1):
                m.d.sync += [wrap_at[w - 1].eq(tj_new * w - N), wrap_off[w - 1].eq(N - tj_new * w)]
            m.d.sync += [wlin.eq(0), wlin_last.eq(ti_new * tj_new - N)]
            red_1_new = Mux(op_new == _BWD, ti_new, tj_new) - 1
            for k in range(N + 1):
                m.d.sync += [red_lim[k].eq(red_1_new - k), bat_lim[k].eq(p.batch_minus_1 - k)]
            table = coefs(ti_new, tj_new)
            for (op_k, layer_k), entry in table.items():
                with m.If((op_new == op_k) & (p.layer == layer_k)):
                    for q in ports:
                        m.d.sync += [sig.eq(val) for sig, val in zip(coef[q], entry[q],
                                                                     strict=True)]
            for q in ports:
                base = getattr(p, f"{q}_base")
                m.d.sync += [reg_a[q].eq(base), reg_b[q].eq(base), cur[q].eq(base)]

        # ---- loop control ----
        is_fwd, is_bwd, is_wg = op == _FWD, op == _BWD, op == _WG
        last_t = Signal()
        last_b = Signal()
        last_a = Signal()
        m.d.comb += [
            last_t.eq(Mux(is_wg, t == b_1,
                          Mux(layer, tN.as_signed() > red_lim[N], t == t_red_1))),
            last_b.eq(is_wg | (bm == t_out_1)),
            last_a.eq(Mux(is_wg, wlin.as_signed() >= wlin_last,
                          Mux(layer, a == b_1, aN.as_signed() > bat_lim[N]))),
        ]
        issue = Signal()
        m.d.comb += issue.eq(busy & go)
        with m.If(issue):
            with m.If(~last_t):
                m.d.sync += [t.eq(t + 1), tN.eq(tN + N)]
                for q in ports:
                    m.d.sync += cur[q].eq(cur[q] + coef[q][2])
            with m.Elif(~last_b):
                m.d.sync += [t.eq(0), tN.eq(0), bm.eq(bm + 1), bN.eq(bN + N)]
                for q in ports:
                    nb = reg_b[q] + coef[q][1]
                    m.d.sync += [reg_b[q].eq(nb), cur[q].eq(nb)]
            with m.Elif(~last_a):
                m.d.sync += [t.eq(0), tN.eq(0), bm.eq(0), bN.eq(0), a.eq(a + 1),
                             aN.eq(aN + N)]
                for k in range(N):
                    nxt = step_tiles(wi[k], wj[k])
                    m.d.sync += [wi[k].eq(nxt[0]), wj[k].eq(nxt[1])]
                m.d.sync += wlin.eq(wlin + N)
                for q in ports:
                    na = reg_a[q] + coef[q][0]
                    m.d.sync += [reg_a[q].eq(na), reg_b[q].eq(na), cur[q].eq(na)]
            with m.Else():
                m.d.sync += busy.eq(0)

        # ---- per-core validity, reads and lane masks (stage 0) ----
        def lane_mask(slice_index, len_minus_1) -> Value:
            """Lanes ``r`` of slice ``slice_index`` inside a vector of ``len_minus_1 + 1``."""
            # the lane's index, slice_index * S + r, without an adder
            return Cat(*(Cat(Const(r, L), slice_index) <= len_minus_1 for r in range(S)))

        core_valid, red_index = [], []
        for k in range(N):
            cv = Signal(name=f"core_valid_{k}")
            m.d.comb += cv.eq(Mux(is_wg, wi[k] < ti,
                                  Mux(layer, tN.as_signed() <= red_lim[k],
                                      aN.as_signed() <= bat_lim[k])))
            core_valid.append(cv)
            red_index.append(Mux(layer, tN + k, t))

        rd = {"w": self.w_rd, "v": self.v_rd, "u": self.u_rd, "b": self.b_rd}
        for k in range(N):
            lead = Const(1, 1) if k == 0 else Const(0, 1)
            uses = {
                "w": ~is_wg,
                "v": Const(1, 1),
                "u": is_wg | (is_bwd & last_t & (~layer | lead)),
                "b": is_fwd & last_t & (~layer | lead),
            }
            for q in ports:
                ck_k = coef[q][3] * k if k else Const(0, aw)
                if q in ("v", "u"):
                    ck_k = Mux(is_wg, wi[k] if q == "v" else wj[k], ck_k)
                m.d.comb += [
                    rd[q][k].addr.eq(cur[q] + ck_k),
                    rd[q][k].en.eq(issue & core_valid[k] & uses[q]),
                ]

        # ---- the datapath: one pipeline that advances with ``go`` ----
        # Stage k's registers hold what the pass issued k cycles earlier computed (stage 1: the
        # memories' read data). Every stage is at most one adder, one multiplier or one barrel
        # shifter deep, so the grid closes timing with its DSP products and BRAM reads
        # registered; CycleModel.fill counts the stages.
        valids = []

        def reg(value, shape, name):
            """``value`` one stage later."""
            r = Signal(shape, name=name)
            with m.If(go):
                m.d.sync += r.eq(value)
            return r

        def tags(prev: dict, stage: str) -> dict:
            """The pass's tags (valid, first/last pass of a sum, end of the op, core and lane
            masks) one stage later."""
            out = {key: reg(value, len(Value.cast(value)), f"{key}{stage}")
                   for key, value in prev.items()}
            valids.append(out["v"])
            return out

        def tree_sum(terms, name):
            """Sum of ``terms``, registered after every two adder levels: (sum, stages)."""
            stages = 0
            level = 0
            while len(terms) > 1:
                terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i]
                         for i in range(0, len(terms), 2)]
                level += 1
                if level % 2 == 0 or len(terms) == 1:
                    stages += 1
                    terms = [reg(x, x.shape(), f"{name}_t{stages}_{i}")
                             for i, x in enumerate(terms)]
            return terms[0], stages

        def delay(value, n, name):
            for i in range(n):
                value = reg(value, Value.cast(value).shape(), f"{name}_d{i}")
            return value

        # stage 1: read data and the pass's tags
        t1 = {"v": Signal(name="v1"), "first": Signal(name="first1"),
              "last": Signal(name="last1"), "end": Signal(name="end1"),
              "cv": Signal(N, name="cv1"), "omask": Signal(S, name="omask1")}
        valids.append(t1["v"])
        vmask1 = [Signal(S, name=f"vmask1_{k}") for k in range(N)]
        umask1 = [Signal(S, name=f"umask1_{k}") for k in range(N)]
        with m.If(go):
            m.d.sync += [
                t1["v"].eq(issue),
                t1["first"].eq(t == 0), t1["last"].eq(last_t),
                t1["end"].eq(last_t & last_b & last_a),
                t1["cv"].eq(Cat(*core_valid)),
                t1["omask"].eq(lane_mask(bm, Mux(is_fwd, m_1, n_1))),
            ]
            for k in range(N):
                v_slice = Mux(is_wg, wi[k], red_index[k])
                v_len = Mux(is_fwd, n_1, m_1)
                # an idle core's lanes are masked too: it adds zeros to a reduction
                m.d.sync += [
                    vmask1[k].eq(Mux(core_valid[k], lane_mask(v_slice, v_len), 0)),
                    umask1[k].eq(Mux(core_valid[k], lane_mask(wj[k], n_1), 0)),
                ]

        # stage 2: each PE's operands (the multipliers' input registers)
        t2 = tags(t1, "2")
        aux_shape = signed(max(c.w_fmt.width, c.a_fmt.width))
        lhs2 = [[[None] * S for _ in range(S)] for _ in range(N)]
        rhs2 = [[[None] * S for _ in range(S)] for _ in range(N)]
        aux2 = [[None] * S for _ in range(N)]
        for k in range(N):
            tile, vec, uvec = self.w_rd[k].data, self.v_rd[k].data, self.u_rd[k].data
            for r in range(S):
                d_r = Mux(vmask1[k][r], vec[r], 0)
                for cc in range(S):
                    weight = Mux(is_fwd, tile[cc * S + r], tile[r * S + cc])
                    x_c = Mux(umask1[k][cc], uvec[cc], 0)
                    lhs2[k][r][cc] = reg(Mux(is_wg, d_r, weight), self._left_shape,
                                         f"lhs2_{k}_{r}_{cc}")
                    rhs2[k][r][cc] = reg(Mux(is_wg, x_c, d_r), self._v_shape,
                                         f"rhs2_{k}_{r}_{cc}")
            for cc in range(S):
                aux2[k][cc] = reg(Mux(is_fwd, self.b_rd[k].data[cc], uvec[cc]), aux_shape,
                                  f"aux2_{k}_{cc}")

        # stage 3: products (the multipliers' output registers)
        t3 = tags(t2, "3")
        p_shape = self.product_shape
        p3 = [[[reg(self._multiply(m, lhs2[k][r][cc], rhs2[k][r][cc]), p_shape,
                    f"p3_{k}_{r}_{cc}") for cc in range(S)] for r in range(S)]
              for k in range(N)]
        aux3 = [[reg(aux2[k][cc], aux_shape, f"aux3_{k}_{cc}") for cc in range(S)]
                for k in range(N)]

        # ---- weight gradient: PE accumulators, then a three-stage requantizer ----
        pe_acc = [[[Signal(self.pe_acc_shape, name=f"pe_acc_{k}_{r}_{cc}") for cc in range(S)]
                   for r in range(S)] for k in range(N)]
        gsum4 = [[[Signal(self.pe_acc_shape, name=f"g4_{k}_{r}_{cc}") for cc in range(S)]
                  for r in range(S)] for k in range(N)]
        g4 = tags({"v": t3["v"] & is_wg & t3["last"], "end": t3["end"], "cv": t3["cv"]}, "g4")
        with m.If(go & t3["v"] & is_wg):
            for k in range(N):
                for r in range(S):
                    for cc in range(S):
                        new = Mux(t3["first"], 0, pe_acc[k][r][cc]) + p3[k][r][cc]
                        self._obs["sums"].append((go & t3["v"] & is_wg, new,
                                                  self.pe_acc_shape))
                        m.d.sync += pe_acc[k][r][cc].eq(new)
                        with m.If(t3["last"]):
                            m.d.sync += gsum4[k][r][cc].eq(new)
        # right shifts d.frac - grad.frac + x_frac, from a left shift by af - x_frac
        g_hi = c.d_fmt.frac + c.a_fmt.frac - c.grad_fmt.frac
        g5 = tags(g4, "g5")
        g6 = tags(g5, "g6")
        with m.If(go):
            m.d.sync += [g.valid.eq(g6["v"]), g.payload.mask.eq(g6["cv"]),
                         g.payload.last.eq(g6["end"])]
        for k in range(N):
            for r in range(S):
                for cc in range(S):
                    name = f"{k}_{r}_{cc}"
                    al = gsum4[k][r][cc] << left_g
                    al5 = reg(al, al.shape(), f"gal5_{name}")
                    rounded = shift_round(al5, g_hi, c.rounding)
                    r6 = reg(rounded, rounded.shape(), f"gr6_{name}")
                    with m.If(go):
                        m.d.sync += g.payload.data[k][r * S + cc].eq(
                            saturate(r6, c.grad_fmt.width))
        valids.append(g.valid)

        # ---- forward and backward: column sums, cross-core sum, accumulators ----
        fb = {"v": t3["v"] & ~is_wg, "first": t3["first"], "last": t3["last"],
              "end": t3["end"], "cv": t3["cv"], "omask": t3["omask"]}
        cols, aux = [[None] * S for _ in range(N)], [[None] * S for _ in range(N)]
        stages = 0
        for k in range(N):
            for cc in range(S):
                cols[k][cc], stages = tree_sum([p3[k][r][cc] for r in range(S)],
                                               f"col_{k}_{cc}")
                aux[k][cc] = delay(aux3[k][cc], stages, f"aux_{k}_{cc}")
        for i in range(stages):
            fb = tags(fb, f"c{i}")
        if N > 1:
            # intra-layer: core 0 accumulates the sum over the cores
            srcs = [[None] * S for _ in range(N)]
            for cc in range(S):
                reduced, stages = tree_sum([cols[k][cc] for k in range(N)], f"red_{cc}")
                for k in range(N):
                    own = delay(cols[k][cc], stages, f"own_{k}_{cc}")
                    srcs[k][cc] = Mux(layer, reduced, own) if k == 0 else own
                    aux[k][cc] = delay(aux[k][cc], stages, f"auxr_{k}_{cc}")
            for i in range(stages):
                fb = tags(fb, f"x{i}")
            cols = srcs
        # the accumulators; a sum's result, the bias shifted to the sum's fraction bits and
        # (backward) y_prev and its square leave together
        acc = [[Signal(self.acc_shape, name=f"acc_{k}_{cc}") for cc in range(S)]
               for k in range(N)]
        ta = tags({"v": fb["v"] & fb["last"], "end": fb["end"],
                   "cv": Mux(layer, 1, fb["cv"]), "omask": fb["omask"]}, "a")
        y_shape = shape_of(c.a_fmt)
        y_sq_shape = (Signal(y_shape) * Signal(y_shape)).shape()
        zacc, bias, y, ysq = ([[None] * S for _ in range(N)] for _ in range(4))
        for k in range(N):
            for cc in range(S):
                new = Mux(fb["first"], 0, acc[k][cc]) + cols[k][cc]
                self._obs["sums"].append((go & fb["v"], new, self.acc_shape))
                with m.If(go & fb["v"]):
                    m.d.sync += acc[k][cc].eq(new)
                zacc[k][cc] = reg(new, self.acc_shape, f"zacc_{k}_{cc}")
                y_in = aux[k][cc][:c.a_fmt.width].as_signed()
                y[k][cc] = reg(y_in, y_shape, f"y_{k}_{cc}")
                ysq[k][cc] = reg(y_in * y_in, y_sq_shape, f"ysq_{k}_{cc}")
                bias[k][cc] = reg(Mux(is_fwd, aux[k][cc] << x_frac, 0), self.acc_shape,
                                  f"bias_{k}_{cc}")

        # z = sum + bias; backward: 1 - y**2 with 2 * x_frac fraction bits
        tz = tags(ta, "z")
        z, diff, pos = ([[None] * S for _ in range(N)] for _ in range(3))
        for k in range(N):
            for cc in range(S):
                total = zacc[k][cc] + bias[k][cc]
                self._obs["sums"].append((go & ta["v"], total, self.acc_shape))
                z[k][cc] = reg(total, self.acc_shape, f"z_{k}_{cc}")
                d = one_y - ysq[k][cc]
                diff[k][cc] = reg(d, d.shape(), f"diff_{k}_{cc}")
                pos[k][cc] = reg(y[k][cc] > 0, 1, f"pos_{k}_{cc}")

        # ---- output stage: requantizers (align, round, saturate), tanh table, d * g ----
        wf = c.w_fmt.frac
        narrow = {} if c.narrow_width is None else {"narrow": o_narrow,
                                                     "narrow_width": c.narrow_width}
        one_g = requantize(Const(1, 2), 0, c.g_fmt, c.rounding, "saturate")
        table = c.table
        t_al = tags(tz, "al")
        t_rn = tags(t_al, "rn")
        t_sa = tags(t_rn, "sa")
        t_mg = tags(t_sa, "mg")
        t_rd = tags(t_mg, "rd")
        t_ro = tags(t_rd, "ro")
        with m.If(go):
            m.d.sync += [o.valid.eq(t_ro["v"]), o.payload.mask.eq(t_ro["cv"]),
                         o.payload.last.eq(t_ro["end"])]
        valids.append(o.valid)
        for k in range(N):
            for cc in range(S):
                name = f"{k}_{cc}"
                # align
                # align_runtime(z, x_frac + af - o_frac, wf - af, wf + af)
                zal = z[k][cc] << left_z
                zal = reg(zal, zal.shape(), f"zal_{name}")
                # align_runtime(diff, 2 x_frac, -g_fmt.frac, f2 - g_fmt.frac)
                dal = diff[k][cc] << left_d
                dal = reg(dal, dal.shape(), f"dal_{name}")
                er = shift_round(z[k][cc], c.w_fmt.frac, c.rounding)
                er = reg(er, er.shape(), f"er_{name}")
                pos_al = reg(pos[k][cc], 1, f"pos_al_{name}")
                # round
                zr = shift_round(zal, wf + af, c.rounding)
                zr = reg(zr, zr.shape(), f"zr_{name}")
                dr = shift_round(dal, f2 - c.g_fmt.frac, c.rounding)
                dr = reg(dr, dr.shape(), f"dr_{name}")
                e = reg(saturate(er, c.d_fmt.width), shape_of(c.d_fmt), f"e_{name}")
                pos_rn = reg(pos_al, 1, f"pos_rn_{name}")
                # saturate; the activation's derivative
                zq = reg(saturate(zr, c.a_fmt.width, **narrow), shape_of(c.a_fmt),
                         f"zq_{name}")
                deriv = Mux(kind == KIND_CODES["identity"], one_g,
                            Mux(kind == KIND_CODES["relu"], Mux(pos_rn, one_g, 0),
                                saturate(dr, c.g_fmt.width)))
                gd = reg(deriv, shape_of(c.g_fmt), f"gd_{name}")
                e = reg(e, shape_of(c.d_fmt), f"e_sa_{name}")
                # magnitude (the table's index) and the operand of d * g
                mag = reg(Mux(zq < 0, -zq, zq), unsigned(c.a_fmt.width), f"mag_{name}")
                val = reg(Mux(is_fwd, zq, e), self._o_shape, f"val_{name}")
                gd = reg(gd, shape_of(c.g_fmt), f"gd_mg_{name}")
                neg = reg(zq < 0, 1, f"neg_{name}")
                zero = reg(zq == 0, 1, f"zero_{name}")
                # the table read (its address register is the memory's); d * g
                rom = memory.Memory(shape=shape_of(c.a_fmt), depth=table.size,
                                    init=table.entries().tolist())
                m.submodules[f"tanh_{name}"] = rom
                port = rom.read_port(domain="sync")
                wport = rom.write_port()
                m.d.comb += [wport.addr.eq(self.tbl_wr.addr), wport.data.eq(self.tbl_wr.data),
                             wport.en.eq(self.tbl_wr.en)]
                index = mag >> t_shift
                m.d.comb += [port.en.eq(go),
                             port.addr.eq(Mux(index >= table.size, table.size - 1, index))]
                prod = val * gd
                prod = reg(prod, prod.shape(), f"dg_{name}")
                val = reg(val, self._o_shape, f"val_rd_{name}")
                neg, zero = reg(neg, 1, f"neg_rd_{name}"), reg(zero, 1, f"zero_rd_{name}")
                # the table's word; d * g rounded
                word = reg(port.data, shape_of(c.a_fmt), f"word_{name}")
                dq = shift_round(prod, c.g_fmt.frac, c.rounding)
                dq = reg(dq, dq.shape(), f"dq_{name}")
                val = reg(val, self._o_shape, f"val_ro_{name}")
                neg, zero = reg(neg, 1, f"neg_ro_{name}"), reg(zero, 1, f"zero_ro_{name}")
                # the activation, or d_prev saturated
                y_tanh = Mux(zero, 0, Mux(neg, -word, word))
                act = Mux(kind == KIND_CODES["identity"], val,
                          Mux(kind == KIND_CODES["relu"], Mux(val < 0, 0, val), y_tanh))
                out = Mux(is_fwd, act, saturate(dq, c.d_fmt.width))
                keep = t_ro["omask"][cc] & t_ro["cv"][k]
                with m.If(go):
                    m.d.sync += o.payload.data[k][cc].eq(Mux(keep, out, 0))

        # ---- occupancy: the next command waits for the pipeline to drain ----
        m.d.comb += in_flight.eq(Cat(*valids).any())
        return m

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._config!r})"

