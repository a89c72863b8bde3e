"""Golden model of the dual-precision PE datapath (:class:`fixar_hw.arith.pe.DualPrecisionPE`)."""

from __future__ import annotations

__all__ = ["pe_products"]


def pe_products(w: int, w1: int, a: int, half: bool, a_width: int) -> tuple[int, int, int]:
    """``(p, p0, p1)`` of the dual-precision PE for one input (all operands signed integers).

    Full precision (``half`` false): ``p = w * a``, computed as the hardware does from the two
    halves of ``a``: ``p0 = w * a_lo`` (low half as unsigned), ``p1 = w * a_hi`` (signed high
    half), ``p = (p1 << a_width/2) + p0``. Half precision: ``a`` packs two signed
    ``a_width/2``-bit values; ``p0 = w * low``, ``p1 = w1 * high``, ``p`` their shifted sum.
    """
    h = a_width // 2
    lo_bits = a & ((1 << h) - 1)
    hi = a >> h  # arithmetic shift: the signed high half
    lo = lo_bits - (1 << h) if (half and lo_bits >> (h - 1)) else lo_bits
    p0 = w * lo
    p1 = (w1 if half else w) * hi
    return (p1 << h) + p0, p0, p1
