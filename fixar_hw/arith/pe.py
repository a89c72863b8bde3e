"""FIXAR's configurable processing-element datapath: one full-precision or two half products.

:class:`DualPrecisionPE` holds two multipliers of ``w_width x (a_width/2 + 1)`` bits. In full
precision they form one ``w_width x a_width`` product from the two halves of the activation; in
half precision they give two independent ``w_width x a_width/2`` products per cycle (FIXAR:
two 32x16 multipliers, one 32x32 MAC or two 32x16 MACs). The accumulating PE grid that uses it
is built on it; this module is its multiplier stage. Golden twin:
:func:`sw_model.numerics.pe.pe_products`.
"""

from amaranth.hdl import Cat, Module, Mux, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import check_int, silence_on_error
from fixar_hw.arith.mac import exact_product

__all__ = ["DualPrecisionPE", "compose"]


def compose(p0: Value, p1: Value, h: int) -> Value:
    """The full product from a :class:`DualPrecisionPE`'s two: ``(p1 << h) + p0`` (``p0`` the
    low half's product, taken unsigned; ``p1`` the high half's)."""
    return (p1 << h) + p0


class DualPrecisionPE(wiring.Component):
    """Two ``w_width x (a_width/2 + 1)`` multipliers: one ``w x a`` or two half products.

    Full precision (``half = 0``)::

        p = (w * a_hi << a_width/2) + w * a_lo      # == w * a exactly

    with ``a_lo`` the low half of ``a`` taken as unsigned and ``a_hi`` the signed high half.
    Half precision (``half = 1``): ``a`` packs two signed ``a_width/2``-bit activations;
    ``p0 = w * a_lo`` (``a_lo`` now sign-extended) and ``p1 = w1 * a_hi``. Combinational
    (latency 0); synthesis maps each multiplier to DSP blocks. All operands are signed.

    Parameters
    ----------
    w_width : int
        Weight width (at least 2).
    a_width : int
        Activation width in full precision, even, at least 2.

    Members
    -------
    w, w1 : In(signed(w_width))
        Weights; ``w1`` feeds the high-half multiplier in half precision only.
    a : In(signed(a_width))
        Activation (full) or two packed half activations, low one in the low bits (half).
    half : In(1)
        Precision mode, at run time.
    p : Out(signed(w_width + a_width))
        Full-precision product.
    p0, p1 : Out(signed(w_width + a_width/2 + 1)), Out(signed(w_width + a_width/2))
        The two multipliers' products (the half-precision results).
    """

    latency: int = 0

    @silence_on_error
    def __init__(self, w_width: int, a_width: int) -> None:
        self._w_width = check_int(w_width, "w_width", minimum=2)
        self._a_width = check_int(a_width, "a_width", minimum=2)
        if a_width % 2:
            raise ValueError(f"a_width must be even, not {a_width!r}")
        h = a_width // 2
        super().__init__({
            "w": In(signed(w_width)),
            "w1": In(signed(w_width)),
            "a": In(signed(a_width)),
            "half": In(1),
            "p": Out(signed(w_width + a_width)),
            "p0": Out(signed(w_width + h + 1)),
            "p1": Out(signed(w_width + h)),
        })

    @property
    def w_width(self) -> int:
        """Weight width."""
        return self._w_width

    @property
    def a_width(self) -> int:
        """Full-precision activation width."""
        return self._a_width

    def elaborate(self, platform) -> Module:
        m = Module()
        h = self._a_width // 2
        a_lo = self.a[:h]
        # The low half is unsigned in full precision and signed in half precision: one extra
        # operand bit, the sign extension, switched by the mode.
        lo_operand = Cat(a_lo, self.half & a_lo[-1]).as_signed()
        hi_operand = self.a[h:].as_signed()
        m.d.comb += [
            self.p0.eq(exact_product(self.w, lo_operand)),
            self.p1.eq(exact_product(Mux(self.half, self.w1, self.w), hi_operand)),
            self.p.eq(compose(self.p0, self.p1, h)),
        ]
        return m

    def __repr__(self) -> str:
        return f"DualPrecisionPE({self._w_width}, {self._a_width})"
