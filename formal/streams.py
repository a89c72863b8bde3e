"""Stream pieces shared by the property harnesses: a free environment and protocol checks."""

from amaranth.asserts import AnySeq, Initial
from amaranth.hdl import Assume, Module, Mux, ResetSignal, Signal, Value

__all__ = ["any_environment", "at_most_terms", "holds_while_stalled"]


def any_environment(m: Module, *, sources=(), sinks=()) -> None:
    """Drive ``sources`` (valid and payload) and ``sinks`` (ready) with any values each cycle.

    Reset is assumed in the first cycle only.
    """
    for s in sources:
        m.d.comb += [s.valid.eq(AnySeq(1)), s.payload.eq(AnySeq(len(Value.cast(s.payload))))]
    for s in sinks:
        m.d.comb += s.ready.eq(AnySeq(1))
    m.d.comb += Assume(ResetSignal() == Initial())


def at_most_terms(m: Module, stream, n: int) -> Signal:
    """Assume every vector on ``stream`` (closed by ``payload.last``) has at most ``n`` terms.

    Returns the count of the open vector's transferred terms.
    """
    count = Signal(range(n + 1))
    with m.If(stream.valid & stream.ready):
        m.d.sync += count.eq(Mux(stream.payload.last, 0, count + 1))
    m.d.comb += Assume(~(stream.valid & (count == n - 1)) | stream.payload.last)
    return count


def holds_while_stalled(m: Module, stream) -> Value:
    """Property: once ``valid`` is high without ``ready``, ``valid`` and ``payload`` hold."""
    stalled = Signal()
    payload = Value.cast(stream.payload)
    held = Signal.like(payload)
    m.d.sync += [stalled.eq(stream.valid & ~stream.ready), held.eq(payload)]
    return ~stalled | (stream.valid & (payload == held))
