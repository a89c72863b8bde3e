"""The AAP array's output stages: what turns a core's exact sums into results.

:class:`OutputStage` finishes forward and backward sums, a core's ``size`` output lanes at a
time: accumulation over the reduction, the bias, the saturating requantization, the tanh
table and the activation derivative. :class:`GradientRequantizer` finishes weight-gradient
tiles. Both are pipelines of stages that are each at most one adder, one multiplier or one
barrel shifter deep, advancing together when :attr:`en` is high.
"""

from amaranth.hdl import Assert, Const, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import silence_on_error
from fixar_hw.arith.activation import table_index, table_result
from fixar_hw.arith.numeric import requantize, saturate, shape_of, shift_round
from fixar_hw.train._stages import stage
from fixar_hw.train.aap import KIND_CODES, OP_CODES
from fixar_hw.train.pe_grid import fits
from sw_model.arch.aap import AAPConfig

__all__ = ["GradientRequantizer", "OutputStage"]

_IDENTITY, _RELU = KIND_CODES["identity"], KIND_CODES["relu"]


class OutputStage(wiring.Component):
    """``size`` output lanes of a core: accumulate, add the bias, requantize, activate (forward)
    or multiply by the activation's derivative (backward).

    Each enabled cycle takes one column sum per lane (:attr:`col`, the exact sum of one tile
    pass, with ``x_frac + w_fmt.frac`` fraction bits forward) and the lane's side operand
    (:attr:`aux`: the bias, a ``w_fmt`` code, forward; ``y_prev``, an ``a_fmt`` code with
    ``x_frac`` fraction bits, backward). With :attr:`acc` high the accumulators take it
    (restarting when :attr:`first`); :attr:`close` marks the pass that completes a sum, and
    :attr:`out` holds that sum's lane results :attr:`latency` enabled cycles later,
    combinationally from the last stage's registers:

    forward
        ``z = sum + (bias << x_frac)``, requantized (``config.rounding``, saturating) to the
        output format (``a_fmt.frac - left_z + x_frac`` fraction bits, ``narrow_width`` bits
        when ``o_narrow``), then identity, ReLU or the table tanh (``|z| >> t_shift`` indexes
        the table, clamped to its last entry; the sign restored).
    backward
        ``e = sum`` requantized to ``d_fmt`` (``w_fmt.frac`` fraction bits dropped), times the
        derivative ``g`` of the activation at ``y_prev`` (1; 1 or 0; ``1 - y**2`` requantized
        to ``g_fmt``), the product requantized to ``d_fmt``.

    The stages: accumulate (with ``y_prev`` and ``y_prev**2`` registered), the bias add and
    ``1 - y**2``, align (run-time left shifts), round, saturate and the derivative's choice,
    the table index and the ``e * g`` operands, the table read and ``e * g``, the table word
    and the product's rounding: 8, and :attr:`out`.

    Parameters
    ----------
    config : AAPConfig
    settings : data.StructLayout
        The layout of :attr:`settings`
        (:func:`~fixar_hw.train.aap_sequencer.settings_layout`).
    col : Shape
        A column sum's shape.
    acc : Shape
        The accumulators' signed shape: the caller sizes it for the longest sum plus the
        shifted bias (under ``platform="formal"`` the stage asserts no sum overflows it).
    out : Shape
        A result lane's shape.

    Members
    -------
    en, acc, first, close : In(1)
    col : In(ArrayLayout(col, size))
    aux : In(ArrayLayout(signed(max(w_fmt.width, a_fmt.width)), size))
    settings : In(settings_layout(config, ...))
        The operation's settings (:func:`~fixar_hw.train.aap_sequencer.settings_layout`).
    tbl_wr : Out(memory.WritePort.Signature(addr_width=tanh_index_bits, shape=a_fmt))
        The table memories' write port, driven from outside; every lane's copy is written.
    out : Out(ArrayLayout(out, size))
    """

    latency: int = 8

    @silence_on_error
    def __init__(self, config: AAPConfig, settings: data.StructLayout, *, col: Shape,
                 acc: Shape, out: Shape) -> None:
        if not isinstance(config, AAPConfig):
            raise TypeError(f"config must be an AAPConfig, not {config!r}")
        self._config = c = config
        self._acc = Shape.cast(acc)
        self._out = Shape.cast(out)
        S = c.size
        super().__init__({
            "en": In(1), "acc": In(1), "first": In(1), "close": In(1),
            "col": In(data.ArrayLayout(col, S)),
            "aux": In(data.ArrayLayout(signed(max(c.w_fmt.width, c.a_fmt.width)), S)),
            "settings": In(settings),
            "tbl_wr": Out(memory.WritePort.Signature(addr_width=c.tanh_index_bits,
                                                     shape=shape_of(c.a_fmt))),
            "out": Out(data.ArrayLayout(out, S)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        for lane in range(self._config.size):
            self._lane(m, platform, lane)
        return m

    def _lane(self, m: Module, platform, lane: int) -> None:
        c, en, s = self._config, self.en, self.settings
        is_fwd = s.op == OP_CODES["forward"]

        def reg(value: Value, shape, name: str) -> Signal:
            return stage(m, en, value, shape, f"{name}_{lane}")

        # accumulate; y_prev and its square, the bias shifted to the sum's fraction bits
        total = Signal(self._acc, name=f"acc_{lane}")
        new = Mux(self.first, 0, total) + self.col[lane]
        with m.If(en & self.acc):
            m.d.sync += total.eq(new)
        aux = self.aux[lane]
        y_shape = shape_of(c.a_fmt)
        y_in = aux[:c.a_fmt.width].as_signed()
        zacc = reg(new, self._acc, "zacc")
        y = reg(y_in, y_shape, "y")
        ysq = reg(y_in * y_in, (Signal(y_shape) * Signal(y_shape)).shape(), "ysq")
        bias = reg(Mux(is_fwd, aux << s.x_frac, 0), self._acc, "bias")
        # z = sum + bias; backward: 1 - y**2 with 2 x_frac fraction bits
        z_sum = zacc + bias
        z = reg(z_sum, self._acc, "z")
        diff = s.one_y - ysq
        diff = reg(diff, diff.shape(), "diff")
        pos = reg(y > 0, 1, "pos")
        if platform == "formal":
            # zacc and bias hold a finished sum one enabled cycle after its closing pass
            closed = reg(self.acc & self.close, 1, "closed")
            m.d.comb += [Assert(~(en & self.acc) | fits(new, self._acc),
                                "column accumulator sum fits"),
                         Assert(~(en & closed) | fits(z_sum, self._acc), "biased sum fits")]
        self._finish(m, lane, reg, z, diff, pos)

    def _finish(self, m: Module, lane: int, reg, z: Value, diff: Value, pos: Value) -> None:
        """Align, round, saturate; table index; table read and ``e * g``; the activation."""
        c, s = self._config, self.settings
        is_fwd = s.op == OP_CODES["forward"]
        wf, af, f2 = c.w_fmt.frac, c.a_fmt.frac, 2 * c.a_fmt.frac
        narrow = {} if c.narrow_width is None else {"narrow": s.o_narrow,
                                                     "narrow_width": c.narrow_width}
        one_g = requantize(Const(1, 2), 0, c.g_fmt, c.rounding, "saturate")
        # align: align_runtime(z, x_frac + af - o_frac, wf - af, wf + af) and
        # align_runtime(diff, 2 x_frac, -g_fmt.frac, f2 - g_fmt.frac)
        zal = z << s.left_z
        zal = reg(zal, zal.shape(), "zal")
        dal = diff << s.left_d
        dal = reg(dal, dal.shape(), "dal")
        er = shift_round(z, wf, c.rounding)
        er = reg(er, er.shape(), "er")
        pos = reg(pos, 1, "pos_al")
        # round
        zr = shift_round(zal, wf + af, c.rounding)
        zr = reg(zr, zr.shape(), "zr")
        dr = shift_round(dal, f2 - c.g_fmt.frac, c.rounding)
        dr = reg(dr, dr.shape(), "dr")
        e = reg(saturate(er, c.d_fmt.width), shape_of(c.d_fmt), "e")
        pos = reg(pos, 1, "pos_rn")
        # saturate; the activation's derivative
        zq = reg(saturate(zr, c.a_fmt.width, **narrow), shape_of(c.a_fmt), "zq")
        deriv = Mux(s.kind == _IDENTITY, one_g,
                    Mux(s.kind == _RELU, Mux(pos, one_g, 0), saturate(dr, c.g_fmt.width)))
        gd = reg(deriv, shape_of(c.g_fmt), "gd")
        e = reg(e, shape_of(c.d_fmt), "e_sa")
        # magnitude (the table's index) and the operands of e * g
        mag = reg(Mux(zq < 0, -zq, zq), unsigned(c.a_fmt.width), "mag")
        val = reg(Mux(is_fwd, zq, e), self._out, "val")
        gd = reg(gd, shape_of(c.g_fmt), "gd_mg")
        neg = reg(zq < 0, 1, "neg")
        zero = reg(zq == 0, 1, "zero")
        # the table read (its address register is the memory's); e * g
        word = self._table(m, lane, mag)
        prod = val * gd
        prod = reg(prod, prod.shape(), "dg")
        val = reg(val, self._out, "val_rd")
        neg, zero = reg(neg, 1, "neg_rd"), reg(zero, 1, "zero_rd")
        # the table's word; e * g rounded
        word = reg(word, shape_of(c.a_fmt), "word")
        dq = shift_round(prod, c.g_fmt.frac, c.rounding)
        dq = reg(dq, dq.shape(), "dq")
        val = reg(val, self._out, "val_ro")
        neg, zero = reg(neg, 1, "neg_ro"), reg(zero, 1, "zero_ro")
        # the activation, or d_prev saturated
        y_tanh = table_result(word, neg, zero)
        act = Mux(s.kind == _IDENTITY, val,
                  Mux(s.kind == _RELU, Mux(val < 0, 0, val), y_tanh))
        m.d.comb += self.out[lane].eq(Mux(is_fwd, act, saturate(dq, c.d_fmt.width)))

    def _table(self, m: Module, lane: int, mag: Value) -> Value:
        """The lane's tanh table: its read data, one enabled cycle after ``mag``."""
        c = self._config
        table = c.table
        rom = memory.Memory(shape=shape_of(c.a_fmt), depth=table.size,
                            init=table.entries().tolist())
        m.submodules[f"tanh_{lane}"] = rom
        port = rom.read_port(domain="sync")
        wport = rom.write_port()
        m.d.comb += [wport.addr.eq(self.tbl_wr.addr), wport.data.eq(self.tbl_wr.data),
                     wport.en.eq(self.tbl_wr.en)]
        m.d.comb += [port.en.eq(self.en),
                     port.addr.eq(table_index(mag, self.settings.t_shift, table.size))]
        return port.data


class GradientRequantizer(wiring.Component):
    """Weight-gradient tiles: each lane's exact sum (``d_fmt.frac + x_frac`` fraction bits)
    requantized to ``grad_fmt`` with ``config.rounding``, saturating.

    Three stages advancing when :attr:`en` is high: align (a left shift by ``left_g =
    a_fmt.frac - x_frac``), round, and :attr:`out`, saturated combinationally from the round's
    register: :attr:`out` holds a tile :attr:`latency` enabled cycles after :attr:`sum`.

    Parameters
    ----------
    config : AAPConfig
    acc : Shape
        The shape of a lane's sum.

    Members
    -------
    en : In(1)
    left_g : In(range(a_fmt.frac + 1))
    sum : In(ArrayLayout(acc, size**2))
    out : Out(ArrayLayout(grad_fmt, size**2))
    """

    latency: int = 2

    @silence_on_error
    def __init__(self, config: AAPConfig, *, acc: Shape) -> None:
        if not isinstance(config, AAPConfig):
            raise TypeError(f"config must be an AAPConfig, not {config!r}")
        self._config = c = config
        super().__init__({
            "en": In(1),
            "left_g": In(range(c.a_fmt.frac + 1)),
            "sum": In(data.ArrayLayout(acc, c.size ** 2)),
            "out": Out(data.ArrayLayout(shape_of(c.grad_fmt), c.size ** 2)),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        c = self._config
        # right shifts d.frac - grad.frac + x_frac, from a left shift by af - x_frac
        g_hi = c.d_fmt.frac + c.a_fmt.frac - c.grad_fmt.frac
        for lane in range(c.size ** 2):
            al = self.sum[lane] << self.left_g
            al = stage(m, self.en, al, al.shape(), f"gal_{lane}")
            rounded = shift_round(al, g_hi, c.rounding)
            rounded = stage(m, self.en, rounded, rounded.shape(), f"gr_{lane}")
            m.d.comb += self.out[lane].eq(saturate(rounded, c.grad_fmt.width))
        return m
