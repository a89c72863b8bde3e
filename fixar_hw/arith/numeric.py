"""Hardware side of the numeric contract: :mod:`sw_model.numerics.fixed` formats as Amaranth shapes.

The formats, rounding-mode and overflow-mode names are defined once, in
:mod:`sw_model.numerics.fixed`; this module only turns them into Amaranth shapes and expressions.
The
expressions here compute exactly what :func:`sw_model.numerics.fixed.requantize` computes, for every
input (proved in ``formal/arith/mac.py``).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Shape, Value, ValueCastable, signed, unsigned

from sw_model.numerics.fixed import FixedFormat, check_overflow, check_rounding

__all__ = [
    "align_runtime",
    "check_format",
    "extend",
    "range_shape",
    "requantize",
    "requantize_runtime",
    "saturate",
    "shape_of",
    "shift_round",
]


def check_format(fmt: object, name: str) -> FixedFormat:
    """Return ``fmt`` if it is a :class:`~sw_model.numerics.fixed.FixedFormat`, else raise
    ``TypeError``."""
    if not isinstance(fmt, FixedFormat):
        raise TypeError(f"{name} must be a FixedFormat, not {fmt!r}")
    return fmt


def shape_of(fmt: FixedFormat) -> Shape:
    """The Amaranth shape that holds the codes of ``fmt``."""
    return signed(fmt.width) if fmt.signed else unsigned(fmt.width)


def range_shape(lo: int, hi: int) -> Shape:
    """The narrowest shape holding every integer in ``[lo, hi]`` (at least one bit).

    Written out rather than ``Shape.cast(range(...))``, whose ``len()`` overflows beyond 2**63.
    """
    if lo > hi:
        raise ValueError(f"range_shape needs lo <= hi, not {lo!r} > {hi!r}")
    if lo >= 0:
        return unsigned(max(hi.bit_length(), 1))
    return signed(max((-lo - 1).bit_length(), max(hi, 0).bit_length()) + 1)


def extend(v: Value, width: int) -> Value:
    """``v`` sign- or zero-extended to at least ``width`` bits."""
    if len(v) >= width:
        return v
    if v.shape().signed:
        return Cat(v, v[-1].replicate(width - len(v))).as_signed()
    return Cat(v, Const(0, width - len(v)))


def shift_round(v: Value, shift: int, rounding: str) -> Value:
    """``v * 2**-shift`` rounded to an integer (a left shift when ``shift <= 0``).

    Rounding as in :mod:`sw_model.numerics.fixed`: ``"floor"`` is an arithmetic shift; ``"half_up"``
    adds half an output step first; ``"half_even"`` adds half a step less one, plus the bit that
    becomes the result's LSB, which breaks ties toward even.
    """
    check_rounding(rounding)
    v = Value.cast(v)
    if shift <= 0:
        return v << -shift
    v = extend(v, shift + 2)
    if rounding == "floor":
        return v >> shift
    half = 1 << (shift - 1)
    if rounding == "half_up":
        return (v + half) >> shift
    return (v + (half - 1) + v[shift]) >> shift


def requantize(
    v: Value | ValueCastable, src_frac: int, dst: FixedFormat, rounding: str, overflow: str
) -> Value:
    """Expression converting codes with ``src_frac`` fraction bits to ``dst`` codes.

    The hardware twin of :func:`sw_model.numerics.fixed.requantize`: rounding shift, then
    saturation or
    wrap. Purely combinational; the result has shape :func:`shape_of` ``(dst)``.
    """
    check_format(dst, "dst")
    check_overflow(overflow)
    r = shift_round(Value.cast(v), src_frac - dst.frac, rounding)
    r_shape = r.shape()
    r_lo = -(1 << (r_shape.width - 1)) if r_shape.signed else 0
    r_hi = (1 << (r_shape.width - (1 if r_shape.signed else 0))) - 1
    low = r[: dst.width] if len(r) >= dst.width else extend(r, dst.width)
    low = low.as_signed() if dst.signed else low.as_unsigned()
    if overflow == "wrap" or (r_lo >= dst.min_int and r_hi <= dst.max_int):
        return low
    too_big = (r > dst.max_int) if r_hi > dst.max_int else Const(0, 1)
    too_small = (r < dst.min_int) if r_lo < dst.min_int else Const(0, 1)
    return Mux(too_big, Const(dst.max_int, shape_of(dst)),
               Mux(too_small, Const(dst.min_int, shape_of(dst)), low))


def requantize_runtime(
    v: Value | ValueCastable, shift: Value, lo: int, hi: int, width: int, rounding: str,
    *, narrow: Value | None = None, narrow_width: int | None = None,
) -> Value:
    """``round(v * 2**-shift)`` for a shift known only at run time, saturated to ``width`` bits.

    The run-time twin of :func:`requantize` (signed results, saturating): with codes of
    ``src_frac`` fraction bits and a destination of ``dst_frac``, ``shift = src_frac -
    dst_frac``. Saturation bounds of a signed code do not depend on its fraction bits, so only
    the width matters: ``width``, or ``narrow_width`` while ``narrow`` is high (a narrower
    format stored sign-extended in the same lanes).

    Parameters
    ----------
    v : Value
        The codes to convert.
    shift : Value
        Unsigned offset: the right shift is ``lo + shift`` (so ``shift`` runs from 0 to
        ``hi - lo``; larger values are the caller's error and give unspecified results).
    lo, hi : int
        Smallest and largest right shift (negative for left shifts).
    width : int
        Signed result width.
    rounding : str
        As in :mod:`sw_model.numerics.fixed`.
    narrow, narrow_width
        Optional second saturation width, selected by ``narrow``.

    Notes
    -----
    ``v`` is first shifted left by ``hi - lo - shift`` (a barrel shifter), which makes the
    remaining right shift the constant ``hi``; the rounding is then :func:`shift_round`'s.
    """
    check_rounding(rounding)
    if (narrow is None) != (narrow_width is None):
        raise ValueError("requantize_runtime needs both narrow and narrow_width, or neither")
    aligned = align_runtime(v, shift, lo, hi)
    return saturate(shift_round(aligned, hi, rounding), width, narrow=narrow,
                    narrow_width=narrow_width)


def align_runtime(v: Value | ValueCastable, shift: Value, lo: int, hi: int) -> Value:
    """``v`` shifted left by ``hi - lo - shift``: the barrel shifter of
    :func:`requantize_runtime`, after which the right shift is the constant ``hi``.

    Parameters as :func:`requantize_runtime`. A pipelined requantizer registers this value,
    then ``shift_round(aligned, hi, rounding)``, then :func:`saturate` of that (three stages
    whose composition is :func:`requantize_runtime`).
    """
    if lo > hi:
        raise ValueError(f"requantize_runtime needs lo <= hi, not {lo!r} > {hi!r}")
    v = Value.cast(v)
    if hi == lo:
        return v
    left = Const(hi - lo, range(hi - lo + 1)) - Value.cast(shift)
    left = left.as_unsigned()[: max((hi - lo).bit_length(), 1)]
    return v << left


def saturate(v: Value | ValueCastable, width: int, *, narrow: Value | None = None,
             narrow_width: int | None = None) -> Value:
    """``v`` saturated to a signed ``width``-bit code, or to ``narrow_width`` bits while
    ``narrow`` is high (the result is always ``signed(width)``).

    The last step of :func:`requantize` (saturating, signed destination) and of
    :func:`requantize_runtime`; the two bounds of a narrow build are compared side by side, not
    one after the other.
    """
    if (narrow is None) != (narrow_width is None):
        raise ValueError("saturate needs both narrow and narrow_width, or neither")
    wide = requantize(v, 0, FixedFormat(width, 0), "floor", "saturate")
    if narrow is None:
        return wide
    v = Value.cast(v)
    nmin, nmax = -(1 << (narrow_width - 1)), (1 << (narrow_width - 1)) - 1
    low = wide  # v itself where v fits the narrow bounds (they lie inside the wide ones)
    clamped = Mux(v > nmax, Const(nmax, signed(width)),
                  Mux(v < nmin, Const(nmin, signed(width)), low))
    return Mux(narrow, clamped, wide)
