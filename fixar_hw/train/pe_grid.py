"""The AAP array's processing elements and one core's grid of them.

:class:`ProcessingElement` is one PE: registered operands, a multiplier with a registered
product, and the accumulator of the weight gradient. :class:`PEGrid` is one core's
``size x size`` PEs with the operand routing of the three operations and the column adder
trees (:class:`~fixar_hw.train.array.PEArray` has the data layouts).
"""

from collections.abc import Callable

from amaranth.hdl import Assert, Module, Mux, Shape, Signal, Value, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import check_int, silence_on_error
from fixar_hw.arith.mac import exact_product
from fixar_hw.train._stages import stage, tree_stages, tree_sum

__all__ = ["PEGrid", "ProcessingElement"]

#: ``multiply(m, left, right)``: one PE's product, built in the PE's module ``m``.
Multiply = Callable[[Module, Value, Value], Value]


def _exact(m: Module, left: Value, right: Value) -> Value:
    return exact_product(left, right)


def fits(value: Value, shape: Shape) -> Value:
    """``value`` lies in the range of the signed ``shape`` (for the proofs)."""
    lo, hi = -(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1
    return (value >= lo) & (value <= hi)


class ProcessingElement(wiring.Component):
    """One PE: ``p = lhs * rhs`` two enabled cycles after its operands, and a weight-gradient
    accumulator.

    Every register advances only when :attr:`en` is high. Cycle 1 registers the operands (the
    multiplier's input registers), cycle 2 the exact product (its output register), :attr:`p`.
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

    Members
    -------
    en, acc, first, close : In(1)
    lhs : In(left)
    rhs : In(right)
    p : Out(product)
    sum : Out(acc)
    """

    latency: int = 2

    @silence_on_error
    def __init__(self, left: Shape, right: Shape, product: Shape, acc: Shape,
                 multiply: Multiply = _exact) -> None:
        if not callable(multiply):
            raise TypeError(f"multiply must be callable, not {multiply!r}")
        self._multiply = multiply
        self._acc_shape = Shape.cast(acc)
        super().__init__({
            "en": In(1), "acc": In(1), "first": In(1), "close": In(1),
            "lhs": In(left), "rhs": In(right),
            "p": Out(product), "sum": Out(acc),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        en = self.en
        lhs = stage(m, en, self.lhs, self.lhs.shape(), "lhs")
        rhs = stage(m, en, self.rhs, self.rhs.shape(), "rhs")
        with m.If(en):
            m.d.sync += self.p.eq(self._multiply(m, lhs, rhs))
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

    Outputs: :attr:`col`, the exact column sums of the products, :meth:`col_latency` enabled
    cycles after the operands (registered after every two adder levels,
    :func:`~fixar_hw.train._stages.tree_stages`), and :attr:`sum`, every PE's closed
    weight-gradient sum in the tile layout (lane ``r*size + c``), one cycle after the
    :attr:`acc`/:attr:`close` cycle. :attr:`acc`, :attr:`first` and :attr:`close` are the tags
    of the products in the PEs' output registers (two enabled cycles after their operands).

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

    Members
    -------
    en, is_fwd, is_wg, acc, first, close : In(1)
    tile : In(ArrayLayout(weight, size**2))
    vec : In(ArrayLayout(vector, size))
    uvec : In(ArrayLayout(second, size))
    vmask, umask : In(size)
    col : Out(ArrayLayout(signed(product.width + ceil(log2 size)), size))
    sum : Out(ArrayLayout(acc, size**2))
    """

    @silence_on_error
    def __init__(self, size: int, *, weight: Shape, vector: Shape, second: Shape, left: Shape,
                 right: Shape, product: Shape, acc: Shape, multiply: Multiply = _exact
                 ) -> None:
        self._size = S = check_int(size, "size", minimum=1)
        self._pe = (left, right, product, acc, multiply)
        col = signed(Shape.cast(product).width + (S - 1).bit_length())
        super().__init__({
            "en": In(1), "is_fwd": In(1), "is_wg": In(1),
            "acc": In(1), "first": In(1), "close": In(1),
            "tile": In(data.ArrayLayout(weight, S * S)),
            "vec": In(data.ArrayLayout(vector, S)),
            "uvec": In(data.ArrayLayout(second, S)),
            "vmask": In(S), "umask": In(S),
            "col": Out(data.ArrayLayout(col, S)),
            "sum": Out(data.ArrayLayout(acc, S * S)),
        })

    @property
    def col_latency(self) -> int:
        """Enabled cycles from the operands to :attr:`col`."""
        return ProcessingElement.latency + tree_stages(self._size)

    def elaborate(self, platform) -> Module:
        m = Module()
        S = self._size
        products = [[None] * S for _ in range(S)]
        for r in range(S):
            d_r = Mux(self.vmask[r], self.vec[r], 0)
            for cc in range(S):
                pe = ProcessingElement(*self._pe)
                m.submodules[f"pe_{r}_{cc}"] = pe
                weight = Mux(self.is_fwd, self.tile[cc * S + r], self.tile[r * S + cc])
                x_c = Mux(self.umask[cc], self.uvec[cc], 0)
                m.d.comb += [
                    pe.en.eq(self.en), pe.acc.eq(self.acc), pe.first.eq(self.first),
                    pe.close.eq(self.close),
                    pe.lhs.eq(Mux(self.is_wg, d_r, weight)),
                    pe.rhs.eq(Mux(self.is_wg, x_c, d_r)),
                    self.sum[r * S + cc].eq(pe.sum),
                ]
                products[r][cc] = pe.p
        for cc in range(S):
            m.d.comb += self.col[cc].eq(tree_sum(m, self.en, [products[r][cc] for r in range(S)],
                                                 f"col_{cc}"))
        return m
