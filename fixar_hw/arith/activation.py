"""Activation unit: identity, ReLU or table tanh on a stream of fixed-point codes.

The hardware twin of :func:`sw_model.numerics.activation.activate`; the tanh table is a ROM built
from
:meth:`sw_model.numerics.activation.TanhTable.entries`.
"""

from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import silence_on_error
from fixar_hw.arith.numeric import check_format, requantize, shape_of
from sw_model.numerics.activation import TanhTable, check_kind, resolve_table
from sw_model.numerics.fixed import FixedFormat, check_rounding

__all__ = ["ActivationUnit", "table_index", "table_result"]


def table_index(magnitude: Value, shift: Value | int, size: int) -> Value:
    """The tanh table's address for ``|z|``: ``|z| >> shift``, clamped to the last entry
    (:meth:`sw_model.numerics.activation.TanhTable.lookup`)."""
    index = magnitude >> shift
    return Mux(index >= size, size - 1, index)


def table_result(entry: Value, negative: Value, zero: Value) -> Value:
    """``tanh(z)`` from the table's entry for ``|z|``: the sign of ``z`` restored, 0 at 0."""
    return Mux(zero, 0, Mux(negative, -entry, entry))


class ActivationUnit(wiring.Component):
    """``y = act(z)`` for each code on :attr:`i`, emitted on :attr:`o`.

    ``"identity"`` and ``"relu"`` requantize (with ``rounding``, saturating);
    ``"tanh"`` looks up a :class:`~sw_model.numerics.activation.TanhTable` in a ROM (block RAM or
    LUTs)
    and applies the sign of ``z``. Results equal :func:`sw_model.numerics.activation.activate`.

    Timing: one code per cycle; :attr:`latency` (1) cycle from a transfer on :attr:`i` to
    ``o.valid``. :attr:`o` keeps the valid/ready rules of :mod:`amaranth.lib.stream`.

    Parameters
    ----------
    in_fmt, out_fmt : FixedFormat
        Formats of ``z`` and ``y``.
    kind : {"identity", "relu", "tanh"}
    rounding : str
        Rounding of identity and ReLU.
    table : TanhTable, optional
        For ``"tanh"``; default ``TanhTable(in_fmt, out_fmt)``.

    Members
    -------
    i : In(stream.Signature(shape_of(in_fmt)))
    o : Out(stream.Signature(shape_of(out_fmt)))
    """

    latency: int = 1

    @silence_on_error
    def __init__(self, in_fmt: FixedFormat, out_fmt: FixedFormat, kind: str, *,
                 rounding: str = "half_even", table: TanhTable | None = None) -> None:
        self._in_fmt = check_format(in_fmt, "in_fmt")
        self._out_fmt = check_format(out_fmt, "out_fmt")
        self._kind = check_kind(kind)
        self._rounding = check_rounding(rounding)
        self._table = resolve_table(in_fmt, out_fmt, table) if kind == "tanh" else None
        super().__init__({
            "i": In(stream.Signature(shape_of(in_fmt))),
            "o": Out(stream.Signature(shape_of(out_fmt))),
        })

    @property
    def kind(self) -> str:
        """The activation."""
        return self._kind

    @property
    def table(self) -> TanhTable | None:
        """The tanh table, or ``None``."""
        return self._table

    def elaborate(self, platform) -> Module:
        m = Module()
        i, o = self.i, self.o
        advance = ~o.valid | o.ready
        m.d.comb += i.ready.eq(advance)
        with m.If(advance):
            m.d.sync += o.valid.eq(i.valid)

        if self._kind != "tanh":
            z = Mux(i.payload < 0, 0, i.payload) if self._kind == "relu" else i.payload
            with m.If(advance):
                m.d.sync += o.payload.eq(requantize(z, self._in_fmt.frac, self._out_fmt,
                                                    self._rounding, "saturate"))
            return m

        table = self._table
        m.submodules.rom = rom = memory.Memory(shape=shape_of(self._out_fmt),
                                               depth=table.size, init=table.entries().tolist())
        rd = rom.read_port(domain="sync")
        z = i.payload
        magnitude = Mux(z < 0, -z, z)
        # the ROM output and the sign flags are both registered when the stage advances, so
        # the payload below is stable while o is stalled
        negative, zero = Signal(), Signal()
        m.d.comb += [
            rd.en.eq(advance),
            rd.addr.eq(table_index(magnitude, table.shift, table.size)),
        ]
        with m.If(advance):
            m.d.sync += [negative.eq(z < 0), zero.eq(z == 0)]
        m.d.comb += o.payload.eq(table_result(rd.data, negative, zero))
        return m

    def __repr__(self) -> str:
        return f"ActivationUnit({self._in_fmt!r}, {self._out_fmt!r}, {self._kind!r})"
