"""Fixed-point multiply-accumulate with a guard-bit accumulator.

:class:`FixedMAC` computes the dot product of a stream of ``(a, b)`` pairs, one vector at a
time, and emits it requantized to an output format. It is the hardware twin of
:func:`sw_model.numerics.fixed.dot`: the same formats, rounding and overflow give the same codes.
"""

from __future__ import annotations

from amaranth.hdl import Module, Shape, Signal, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import check_bool, check_int, observe, silence_on_error
from fixar_hw.arith.numeric import check_format, range_shape, requantize, shape_of
from sw_model.numerics.fixed import FixedFormat, check_overflow, check_rounding, product_range

__all__ = ["FixedMAC", "exact_product"]


def exact_product(a: Value, b: Value) -> Value:
    """The MAC's multiplier: the exact product of two codes, signedness taken from the shapes.

    A plain ``*``, which synthesis maps to DSP blocks. Its correctness is checked by SMT at
    operand widths up to 8 bits (``formal/arith/mac.py``) and by exhaustive compiled simulation of
    the
    exported Verilog at wider widths (``tests/test_mac_product.py``).
    """
    return a * b


class FixedMAC(wiring.Component):
    """Streaming fixed-point dot product: exact products, exact accumulation, one rounding.

    Terms arrive on :attr:`i` as ``(a, b, last)``; the term with ``last`` set closes a vector.
    The sum of the vector's exact products, held in an accumulator with exactly enough guard
    bits for ``max_terms`` terms, is requantized from ``a_fmt.frac + b_fmt.frac`` fraction bits to
    ``out_fmt`` with ``rounding`` and ``overflow`` (as :func:`sw_model.numerics.fixed.requantize`)
    and
    emitted on :attr:`o`. The result equals :func:`sw_model.numerics.fixed.dot` of the vector,
    always.

    A vector of more than ``max_terms`` terms does not fit the accumulator: its result has
    ``overrun`` set and a ``value`` that must not be used. Every other result has ``overrun``
    clear.

    Timing: one term per cycle while :attr:`o` is not stalled (a stalled output holds back the
    input only once the next vector's last term arrives). :attr:`latency` (3) cycles from the
    transfer of a ``last`` term to ``o.valid``. Both streams keep the valid/ready rules of
    :mod:`amaranth.lib.stream`: ``o.valid`` does not depend on ``o.ready``, and ``o.payload`` is
    stable while ``o.valid`` is held without ``o.ready``.

    Parameters
    ----------
    a_fmt, b_fmt : FixedFormat
        Formats of the two operands.
    out_fmt : FixedFormat
        Format of the result.
    max_terms : int
        Most terms in one vector; sizes the accumulator. At least 1.
    rounding : {"floor", "half_up", "half_even"}
        Rounding of the result (see :mod:`sw_model.numerics.fixed`).
    overflow : {"saturate", "wrap"}
        Handling of a result outside ``out_fmt``.
    observe : bool
        Add the :attr:`obs` port (for proofs; default False).

    Members
    -------
    i : In(stream.Signature(StructLayout({"a": ..., "b": ..., "last": 1})))
        Terms.
    o : Out(stream.Signature(StructLayout({"value": shape_of(out_fmt), "overrun": 1})))
        Results, one per vector.
    obs : Out(observation_layout)
        With ``observe``: the internal registers, for a proof's shadow model.

    Raises
    ------
    TypeError
        If a format is not a :class:`~sw_model.numerics.fixed.FixedFormat`, ``max_terms`` is not an
        integer, or a mode is not a string.
    ValueError
        If ``max_terms`` is below 1 or a mode name is unknown.
    """

    #: Cycles from the transfer of a ``last`` term to ``o.valid`` (no output stall).
    latency: int = 3
    #: Terms accepted per cycle with no stall.
    throughput: int = 1

    @silence_on_error
    def __init__(
        self,
        a_fmt: FixedFormat,
        b_fmt: FixedFormat,
        out_fmt: FixedFormat,
        *,
        max_terms: int,
        rounding: str = "half_even",
        overflow: str = "saturate",
        observe: bool = False,
    ) -> None:
        self._a_fmt = check_format(a_fmt, "a_fmt")
        self._b_fmt = check_format(b_fmt, "b_fmt")
        self._out_fmt = check_format(out_fmt, "out_fmt")
        self._max_terms = check_int(max_terms, "max_terms", minimum=1)
        self._rounding = check_rounding(rounding)
        self._overflow = check_overflow(overflow)

        self._product_range = product_range(a_fmt, b_fmt)
        self._product_shape = range_shape(*self._product_range)
        self._acc_shape = self.accumulator_shape(a_fmt, b_fmt, max_terms)
        self._observe = check_bool(observe, "observe")

        super().__init__({
            "i": In(stream.Signature(self.input_layout)),
            "o": Out(stream.Signature(self.output_layout)),
            **({"obs": Out(self.observation_layout)} if observe else {}),
        })

    @staticmethod
    def accumulator_shape(a_fmt: FixedFormat, b_fmt: FixedFormat, max_terms: int) -> Shape:
        """Narrowest shape holding any sum of up to ``max_terms`` products of the two formats."""
        pmin, pmax = product_range(a_fmt, b_fmt)
        return range_shape(min(0, pmin * max_terms), max(0, pmax * max_terms))

    @property
    def a_fmt(self) -> FixedFormat:
        """Format of operand ``a``."""
        return self._a_fmt

    @property
    def b_fmt(self) -> FixedFormat:
        """Format of operand ``b``."""
        return self._b_fmt

    @property
    def out_fmt(self) -> FixedFormat:
        """Format of the result."""
        return self._out_fmt

    @property
    def max_terms(self) -> int:
        """Most terms in one vector."""
        return self._max_terms

    @property
    def rounding(self) -> str:
        """Rounding mode of the result."""
        return self._rounding

    @property
    def overflow(self) -> str:
        """Overflow mode of the result."""
        return self._overflow

    @property
    def input_layout(self) -> data.StructLayout:
        """Payload layout of :attr:`i`: ``a``, ``b``, ``last``."""
        return data.StructLayout({
            "a": shape_of(self._a_fmt), "b": shape_of(self._b_fmt), "last": 1,
        })

    @property
    def output_layout(self) -> data.StructLayout:
        """Payload layout of :attr:`o`: ``value`` (an ``out_fmt`` code), ``overrun``."""
        return data.StructLayout({"value": shape_of(self._out_fmt), "overrun": 1})

    @property
    def observation_layout(self) -> data.StructLayout:
        """Layout of :attr:`obs`: the product stage (``p_valid``, ``p_last``, ``p``), the open
        vector (``acc``, ``count``, ``over``) and the closed one (``s_valid``, ``s_sum``,
        ``s_over``)."""
        return data.StructLayout({
            "p_valid": 1, "p_last": 1, "p": self._product_shape, "acc": self._acc_shape,
            "count": range(self._max_terms + 1), "over": 1, "s_valid": 1,
            "s_sum": self._acc_shape, "s_over": 1,
        })

    @property
    def product_range(self) -> tuple[int, int]:
        """Exact ``(min, max)`` of one product ``a * b`` (as integer codes)."""
        return self._product_range

    @property
    def product_shape(self) -> Shape:
        """Narrowest shape of one product."""
        return self._product_shape

    @property
    def acc_shape(self) -> Shape:
        """Accumulator shape: narrowest shape holding any sum of ``max_terms`` products."""
        return self._acc_shape

    @property
    def guard_bits(self) -> int:
        """Accumulator bits beyond the product width."""
        return self._acc_shape.width - self._product_shape.width

    @property
    def src_frac(self) -> int:
        """Fraction bits of products and of the accumulator: ``a_fmt.frac + b_fmt.frac``."""
        return self._a_fmt.frac + self._b_fmt.frac

    def _multiply(self, m: Module, a: Value, b: Value) -> Value:
        """The product stage; a seam that formal harnesses replace with an abstract product."""
        return exact_product(a, b)

    def elaborate(self, platform) -> Module:
        m = Module()
        n = self._max_terms

        # Stage P: registered product.
        p_valid = Signal()
        p_last = Signal()
        p = Signal(self._product_shape)
        # Accumulator of the open vector, and how many terms it holds (saturating at n).
        acc = Signal(self._acc_shape)
        count = Signal(range(n + 1))
        over = Signal()
        # Stage S: a closed vector's exact sum.
        s_valid = Signal()
        s_sum = Signal(self._acc_shape)
        s_over = Signal()

        o_free = ~self.o.valid | self.o.ready
        s_move = s_valid & o_free
        s_free = ~s_valid | s_move
        p_block = p_valid & p_last & ~s_free
        m.d.comb += self.i.ready.eq(~p_block)

        with m.If(~p_block):
            m.d.sync += [
                p_valid.eq(self.i.valid),
                p_last.eq(self.i.payload.last),
                p.eq(self._multiply(m, self.i.payload.a, self.i.payload.b)),
            ]
            with m.If(p_valid):
                with m.If(p_last):
                    m.d.sync += [
                        s_sum.eq(acc + p),
                        s_over.eq(over | (count == n)),
                        acc.eq(0),
                        count.eq(0),
                        over.eq(0),
                    ]
                with m.Else():
                    m.d.sync += acc.eq(acc + p)
                    with m.If(count == n):
                        m.d.sync += over.eq(1)
                    with m.Else():
                        m.d.sync += count.eq(count + 1)

        with m.If(s_move):
            m.d.sync += s_valid.eq(0)
        with m.If(~p_block & p_valid & p_last):
            m.d.sync += s_valid.eq(1)

        with m.If(s_move):
            m.d.sync += [
                self.o.valid.eq(1),
                self.o.payload.value.eq(
                    requantize(s_sum, self.src_frac, self._out_fmt, self._rounding,
                               self._overflow)),
                self.o.payload.overrun.eq(s_over),
            ]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        if self._observe:
            observe(m, self.obs, p_valid=p_valid, p_last=p_last, p=p, acc=acc, count=count,
                    over=over, s_valid=s_valid, s_sum=s_sum, s_over=s_over)
        return m

    def __repr__(self) -> str:
        return (f"FixedMAC({self._a_fmt!r}, {self._b_fmt!r}, {self._out_fmt!r}, "
                f"max_terms={self._max_terms}, rounding={self._rounding!r}, "
                f"overflow={self._overflow!r})")
