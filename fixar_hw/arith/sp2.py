"""SP2 shift-adder: an activation times a sum-of-two-powers-of-two weight, without a multiplier.

:class:`SP2ShiftAdd` is the LUT lane of a mixed-scheme (MSQ) accelerator. Its twin in the
golden model is :meth:`sw_model.numerics.sp2.SP2Format.mul`; the code layout and the level
definition are
those of :mod:`sw_model.numerics.sp2`.
"""

from amaranth.hdl import Module, Mux, Shape, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import silence_on_error
from fixar_hw.arith.numeric import check_format, range_shape, shape_of
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.sp2 import SP2Format

__all__ = ["SP2ShiftAdd", "sp2_product_range"]


def sp2_product_range(x_fmt: FixedFormat, sp2_fmt: SP2Format) -> tuple[int, int]:
    """Exact ``(min, max)`` of ``x * level_int`` over all codes of the two formats."""
    top = sp2_fmt.max_level_int
    corners = [x * s * top for x in (x_fmt.min_int, x_fmt.max_int) for s in (-1, 1)]
    return min(corners), max(corners)


class SP2ShiftAdd(wiring.Component):
    """``p = x * level_int(code)``: two shifts, one add and a conditional negation.

    For a code ``sign << (m-1) | c1 << m2 | c2`` of ``sp2_fmt`` (see :mod:`sw_model.numerics.sp2`)
    and
    ``K = sp2_fmt.shift``::

        p = ±((x << (K - c1) if c1 else 0) + (x << (K - c2) if c2 else 0))

    exactly, with no rounding: ``p`` has ``x_fmt.frac + K`` fraction bits. The shifts are by a
    run-time amount (barrel shifters in LUTs); there is no multiplier, so synthesis maps it to no
    DSP block. Combinational: latency 0, one product per cycle.

    Parameters
    ----------
    x_fmt : FixedFormat
        Format of the activation ``x``.
    sp2_fmt : SP2Format
        Format of the weight code.

    Members
    -------
    x : In(shape_of(x_fmt))
        Activation code.
    code : In(unsigned(sp2_fmt.m))
        SP2 weight code.
    p : Out(product_shape)
        Exact product, the narrowest shape holding :func:`sp2_product_range`.
    """

    latency: int = 0

    @silence_on_error
    def __init__(self, x_fmt: FixedFormat, sp2_fmt: SP2Format) -> None:
        self._x_fmt = check_format(x_fmt, "x_fmt")
        if not isinstance(sp2_fmt, SP2Format):
            raise TypeError(f"sp2_fmt must be an SP2Format, not {sp2_fmt!r}")
        self._sp2_fmt = sp2_fmt
        self._product_shape = range_shape(*sp2_product_range(x_fmt, sp2_fmt))
        super().__init__({
            "x": In(shape_of(x_fmt)),
            "code": In(unsigned(sp2_fmt.m)),
            "p": Out(self._product_shape),
        })

    @property
    def x_fmt(self) -> FixedFormat:
        """Format of the activation."""
        return self._x_fmt

    @property
    def sp2_fmt(self) -> SP2Format:
        """Format of the weight code."""
        return self._sp2_fmt

    @property
    def product_shape(self) -> Shape:
        """Shape of :attr:`p`."""
        return self._product_shape

    @property
    def frac(self) -> int:
        """Fraction bits of :attr:`p`: ``x_fmt.frac + sp2_fmt.shift``."""
        return self._x_fmt.frac + self._sp2_fmt.shift

    def elaborate(self, platform) -> Module:
        m = Module()
        f = self._sp2_fmt
        k = f.shift
        c2 = self.code[: f.m2] if f.m2 else None
        c1 = self.code[f.m2: f.m2 + f.m1]
        sign = self.code[f.m - 1]

        def term(c):
            # c in 1..K selects x << (K - c) (a shift of 0..K-1, which fits m1 bits);
            # c == 0 selects nothing
            return Mux(c == 0, 0, self.x << (k - c).as_unsigned()[: f.m1])

        total = term(c1) if c2 is None else term(c1) + term(c2)
        m.d.comb += self.p.eq(Mux(sign, -total, total))
        return m

    def __repr__(self) -> str:
        return f"SP2ShiftAdd({self._x_fmt!r}, {self._sp2_fmt!r})"
