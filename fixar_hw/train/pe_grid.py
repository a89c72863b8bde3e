"""The AAP array's processing elements and one core's grid of them.

:class:`ProcessingElement` is one PE: registered operands, a multiplier with a registered
product (or, in a dual-precision build, FIXAR's :class:`~fixar_hw.arith.pe.DualPrecisionPE`:
one full product or two half products a cycle), and the accumulator of the weight gradient.
:class:`PEGrid` is one core's ``size x size`` PEs with the operand routing of the three
operations and the column adder trees (:class:`~fixar_hw.train.array.PEArray` has the data
layouts).
"""

from collections.abc import Callable

from amaranth.hdl import Assert, Cat, Module, Mux, Shape, Signal, Value, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import check_int, silence_on_error
from fixar_hw.arith.mac import exact_product
from fixar_hw.arith.numeric import extend
from fixar_hw.arith.pe import DualPrecisionPE, compose
from fixar_hw.train._stages import stage, tree_stages, tree_sum

__all__ = ["PEGrid", "ProcessingElement"]

#: ``multiply(m, left, right)``: one PE's product, built in the PE's module ``m``.
Multiply = Callable[[Module, Value, Value], Value]
#: ``multiply_dual(m, left, left1, right, half)``: a dual-precision PE's two products
#: ``(p0, p1)`` (see :class:`~fixar_hw.arith.pe.DualPrecisionPE`), built in ``m``.
MultiplyDual = Callable[[Module, Value, Value, Value, Value], tuple[Value, Value]]


def _exact(m: Module, left: Value, right: Value) -> Value:
    return exact_product(left, right)


def dual_products(m: Module, left: Value, left1: Value, right: Value, half: Value
                  ) -> tuple[Value, Value]:
    """The two products ``(p0, p1)`` of a :class:`~fixar_hw.arith.pe.DualPrecisionPE` built
    in ``m`` (``right`` an even number of bits wide): the default of a dual PE."""
    pe = DualPrecisionPE(len(left), len(right))
    m.submodules.dual = pe
    m.d.comb += [pe.w.eq(left), pe.w1.eq(left1), pe.a.eq(right), pe.half.eq(half)]
    return pe.p0, pe.p1


def combine(p0: Value, p1: Value, half: Value, h: int) -> Value:
    """A dual-precision PE's result from its two products: ``p0 + p1`` in half mode (two
    products summed), the full product (:func:`~fixar_hw.arith.pe.compose`) otherwise."""
    return Mux(half, p0 + p1, compose(p0, p1, h))


def fits(value: Value, shape: Shape) -> Value:
    """``value`` lies in the range of the signed ``shape`` (for the proofs)."""
    lo, hi = -(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1
    return (value >= lo) & (value <= hi)


class ProcessingElement(wiring.Component):
    """One PE: ``p = lhs * rhs`` :attr:`latency` enabled cycles after its operands, and a
    weight-gradient accumulator.

    Every register advances only when :attr:`en` is high. Cycle 1 registers the operands (the
    multiplier's input registers), cycle 2 the exact product (its output register), :attr:`p`.

    Dual precision (``dual = h``): the PE is a :class:`~fixar_hw.arith.pe.DualPrecisionPE`
    with a ``2h``-bit activation operand. With :attr:`half` low, ``p = lhs * rhs`` (``rhs``
    sign-extended to ``2h`` bits); with :attr:`half` high, ``rhs`` packs two signed ``h``-bit
    activations (the low one in the low bits) and ``p = lhs * rhs_lo + lhs1 * rhs_hi``, two
    products in one cycle. Cycle 2 registers the two products, cycle 3 their sum
    (:func:`combine`): the latency is 3.

    In a cycle with :attr:`en` and :attr:`acc` high the accumulator takes ``p`` (when
    :attr:`first`) or its value plus ``p``, and with :attr:`close` also high that sum goes to
    :attr:`sum`, where it stays until the next closed sum. The accumulator is sized by the
    caller for the longest sum it takes (it cannot wrap; under ``platform="formal"`` the PE
    asserts so).

    Parameters
    ----------
    left, right : Shape
        Operand shapes.
    product : Shape
        Holds every product.
    acc : Shape
        The accumulator's (signed) shape.
    multiply : callable, optional
        ``multiply(m, left, right)``, the product built in the PE's module ``m`` (default: an
        exact product, a DSP block); the seam for other PEs (SP2 shift-adders, products left
        free in a proof).
    dual : int, optional
        ``h``: build a dual-precision PE with ``h``-bit half activations (``right`` at most
        ``2h`` bits wide).
    multiply_dual : callable, optional
        ``multiply_dual(m, left, left1, right, half)``: the two products of a dual PE (default:
        a :class:`~fixar_hw.arith.pe.DualPrecisionPE`); the seam for proofs.

    Members
    -------
    en, acc, first, close : In(1)
    lhs : In(left)
    lhs1 : In(left)
        The second weight of half mode (dual PEs only).
    rhs : In(right)
    half : In(1)
        Half mode (dual PEs only).
    p : Out(product)
    sum : Out(acc)
    """

    @silence_on_error
    def __init__(self, left: Shape, right: Shape, product: Shape, acc: Shape,
                 multiply: Multiply = _exact, *, dual: int | None = None,
                 multiply_dual: MultiplyDual = dual_products) -> None:
        if not callable(multiply):
            raise TypeError(f"multiply must be callable, not {multiply!r}")
        if not callable(multiply_dual):
            raise TypeError(f"multiply_dual must be callable, not {multiply_dual!r}")
        if dual is not None:
            check_int(dual, "dual", minimum=1)
            if Shape.cast(right).width > 2 * dual:
                raise ValueError(f"dual = {dual} needs right at most {2 * dual} bits wide, "
                                 f"not {Shape.cast(right).width}")
        self._multiply, self._multiply_dual = multiply, multiply_dual
        self._dual = dual
        self._acc_shape = Shape.cast(acc)
        members = {
            "en": In(1), "acc": In(1), "first": In(1), "close": In(1),
            "lhs": In(left), "rhs": In(right),
            "p": Out(product), "sum": Out(acc),
        }
        if dual is not None:
            members.update({"lhs1": In(left), "half": In(1)})
        super().__init__(members)

    @staticmethod
    def latency_of(dual: int | None) -> int:
        """Enabled cycles from the operands to :attr:`p`: 2, or 3 for a dual PE."""
        return 2 if dual is None else 3

    @property
    def latency(self) -> int:
        """Enabled cycles from the operands to :attr:`p`: 2, or 3 for a dual PE."""
        return self.latency_of(self._dual)

    def elaborate(self, platform) -> Module:
        m = Module()
        en = self.en
        lhs = stage(m, en, self.lhs, self.lhs.shape(), "lhs")
        rhs = stage(m, en, self.rhs, self.rhs.shape(), "rhs")
        if self._dual is None:
            with m.If(en):
                m.d.sync += self.p.eq(self._multiply(m, lhs, rhs))
        else:
            h = self._dual
            lhs1 = stage(m, en, self.lhs1, self.lhs1.shape(), "lhs1")
            half1 = stage(m, en, self.half, 1, "half1")
            p0, p1 = self._multiply_dual(m, lhs, lhs1, extend(rhs, 2 * h), half1)
            p0r = stage(m, en, p0, p0.shape(), "p0")
            p1r = stage(m, en, p1, p1.shape(), "p1")
            half2 = stage(m, en, half1, 1, "half2")
            with m.If(en):
                m.d.sync += self.p.eq(combine(p0r, p1r, half2, h))
        total = Signal(self._acc_shape)
        new = Mux(self.first, 0, total) + self.p
        with m.If(en & self.acc):
            m.d.sync += total.eq(new)
            with m.If(self.close):
                m.d.sync += self.sum.eq(new)
        if platform == "formal":
            m.d.comb += Assert(~(en & self.acc) | fits(new, self._acc_shape),
                               "PE accumulator sum fits")
        return m


class PEGrid(wiring.Component):
    """One core's ``size x size`` PEs, the operand routing of the three operations and the
    column adder trees.

    Inputs (the memories' read data of one tile pass, and the command's op): a weight tile
    :attr:`tile` (``size**2`` lanes), the vector operand :attr:`vec` and the second one
    :attr:`uvec` (``size`` lanes each), with :attr:`vmask` and :attr:`umask` clearing the lanes
    beyond the layer. PE ``(r, c)`` multiplies

    * forward: tile lane ``c*size + r`` by ``vec[r]`` (column ``c`` sums output ``c``);
    * backward: tile lane ``r*size + c`` by ``vec[r]`` (column ``c`` sums ``e[c]``);
    * weight gradient (``is_wg``): ``vec[r]`` by ``uvec[c]``, into its accumulator.

    Dual-precision grids (``dual = h``) also take a second tile :attr:`tile1`, second
    operands :attr:`vec1` and :attr:`uvec1` with their masks, and :attr:`half`. In half mode
    (codes of at most ``h`` bits in the activation lanes) PE ``(r, c)`` adds a second
    product:

    * forward: tile1 lane ``c*size + r`` times ``vec1[r]`` (the next reduction tile and
      slice);
    * weight gradient: ``vec1[r]`` times ``uvec1[c]`` (the next batch vector's delta and
      input).

    Outputs: :attr:`col`, the exact column sums of the products, :meth:`col_latency` enabled
    cycles after the operands (registered after every two adder levels,
    :func:`~fixar_hw.train._stages.tree_stages`), and :attr:`sum`, every PE's closed
    weight-gradient sum in the tile layout (lane ``r*size + c``), one cycle after the
    :attr:`acc`/:attr:`close` cycle. :attr:`acc`, :attr:`first` and :attr:`close` are the tags
    of the products in the PEs' output registers (:attr:`ProcessingElement.latency` enabled
    cycles after their operands).

    Parameters
    ----------
    size : int
    weight, vector, second : Shape
        Shapes of a weight lane, a :attr:`vec` lane and a :attr:`uvec` lane.
    left, right : Shape
        The PEs' operand shapes (a weight or ``vec`` lane; a ``vec`` or ``uvec`` lane).
    product, acc : Shape
        See :class:`ProcessingElement`.
    multiply : callable, optional
        See :class:`ProcessingElement`.
    dual : int, optional
        Dual-precision PEs with ``h``-bit halves (see :class:`ProcessingElement`).
    multiply_dual : callable, optional
        See :class:`ProcessingElement`.

    Members
    -------
    en, is_fwd, is_wg, acc, first, close : In(1)
    tile : In(ArrayLayout(weight, size**2))
    vec : In(ArrayLayout(vector, size))
    uvec : In(ArrayLayout(second, size))
    vmask, umask : In(size)
    tile1, vec1, uvec1, v1mask, u1mask, half
        As their first namesakes and the mode (dual grids only).
    col : Out(ArrayLayout(signed(product.width + ceil(log2 size)), size))
    sum : Out(ArrayLayout(acc, size**2))
    """

    @silence_on_error
    def __init__(self, size: int, *, weight: Shape, vector: Shape, second: Shape, left: Shape,
                 right: Shape, product: Shape, acc: Shape, multiply: Multiply = _exact,
                 dual: int | None = None, multiply_dual: MultiplyDual = dual_products) -> None:
        self._size = S = check_int(size, "size", minimum=1)
        self._pe = (left, right, product, acc, multiply)
        self._pe_kw = {"dual": dual, "multiply_dual": multiply_dual}
        self._dual = dual
        self._latency = ProcessingElement.latency_of(dual)
        col = signed(Shape.cast(product).width + (S - 1).bit_length())
        members = {
            "en": In(1), "is_fwd": In(1), "is_wg": In(1),
            "acc": In(1), "first": In(1), "close": In(1),
            "tile": In(data.ArrayLayout(weight, S * S)),
            "vec": In(data.ArrayLayout(vector, S)),
            "uvec": In(data.ArrayLayout(second, S)),
            "vmask": In(S), "umask": In(S),
            "col": Out(data.ArrayLayout(col, S)),
            "sum": Out(data.ArrayLayout(acc, S * S)),
        }
        if dual is not None:
            members.update({
                "tile1": In(data.ArrayLayout(weight, S * S)),
                "vec1": In(data.ArrayLayout(vector, S)),
                "uvec1": In(data.ArrayLayout(second, S)),
                "v1mask": In(S), "u1mask": In(S), "half": In(1),
            })
        super().__init__(members)

    @property
    def col_latency(self) -> int:
        """Enabled cycles from the operands to :attr:`col`."""
        return self._latency + tree_stages(self._size)

    @property
    def pe_latency(self) -> int:
        """Enabled cycles from the operands to a PE's product (:attr:`acc` and its tags)."""
        return self._latency

    def elaborate(self, platform) -> Module:
        m = Module()
        S, h = self._size, self._dual
        products = [[None] * S for _ in range(S)]
        for r in range(S):
            d_r = Mux(self.vmask[r], self.vec[r], 0)
            if h is not None:
                e_r = Mux(self.v1mask[r], self.vec1[r], 0)
            for cc in range(S):
                pe = ProcessingElement(*self._pe, **self._pe_kw)
                m.submodules[f"pe_{r}_{cc}"] = pe
                weight = Mux(self.is_fwd, self.tile[cc * S + r], self.tile[r * S + cc])
                x_c = Mux(self.umask[cc], self.uvec[cc], 0)
                full = Mux(self.is_wg, x_c, d_r)
                m.d.comb += [
                    pe.en.eq(self.en), pe.acc.eq(self.acc), pe.first.eq(self.first),
                    pe.close.eq(self.close),
                    pe.lhs.eq(Mux(self.is_wg, d_r, weight)),
                    self.sum[r * S + cc].eq(pe.sum),
                ]
                if h is None:
                    m.d.comb += pe.rhs.eq(full)
                else:
                    x1_c = Mux(self.u1mask[cc], self.uvec1[cc], 0)
                    # each half: the lane's code, sign-extended if the lane is narrower
                    packed = Cat(extend(full, h)[:h], extend(Mux(self.is_wg, x1_c, e_r), h)[:h])
                    m.d.comb += [
                        pe.half.eq(self.half),
                        pe.lhs1.eq(Mux(self.is_wg, e_r, self.tile1[cc * S + r])),
                        pe.rhs.eq(Mux(self.half, packed.as_signed(), full)),
                    ]
                products[r][cc] = pe.p
        for cc in range(S):
            m.d.comb += self.col[cc].eq(tree_sum(m, self.en, [products[r][cc] for r in range(S)],
                                                 f"col_{cc}"))
        return m
