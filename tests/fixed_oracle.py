"""The previous implementation of the exact products, kept as an oracle for the fast paths.

``sw_model.numerics.fixed`` computes :func:`~sw_model.numerics.fixed.dot`,
:func:`~sw_model.numerics.fixed.exact_matmul` and :func:`~sw_model.numerics.fixed.matmul` with
magnitude-sized limbs in one BLAS call and requantizes wide sums straight from their limb sums.
This module is the straightforward version it replaced (fixed 16-bit limbs, one product per limb
pair, wide sums recombined in Python integers): slower, and independently exact, so the tests
compare the two value for value.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sw_model.numerics.fixed import (
    FixedFormat,
    Overflow,
    Rounding,
    _check_dot_args,
    product_range,
    requantize,
)

_LIMB_BITS = 16
_BLOCK_TERMS = 1 << 20


def _data_format(x: np.ndarray, fmt: FixedFormat) -> FixedFormat:
    """``fmt``, or a narrower signed format with its fraction bits that holds the codes ``x``.

    Limb counts and sum bounds follow the operands' actual magnitudes, so products of wide
    formats holding small codes stay on the ``int64`` paths.
    """
    lo, hi = (int(x.min()), int(x.max())) if x.size else (0, 0)
    width = max(hi.bit_length(), (-lo - 1).bit_length() if lo < 0 else 0) + 1
    return FixedFormat(max(width, 2), fmt.frac) if width < fmt.width else fmt


def _limbs(x: np.ndarray, fmt: FixedFormat) -> list[np.ndarray]:
    """Split codes into 16-bit limbs, least significant first; the top limb keeps the sign.

    Every limb lies in ``[-2**15, 2**16)``, so a product of two limbs is below ``2**32``.
    """
    n = max(1, -(-fmt.width // _LIMB_BITS))
    out = []
    for k in range(n):
        limb = x >> (k * _LIMB_BITS)
        if k < n - 1:
            limb = limb & ((1 << _LIMB_BITS) - 1)
        out.append(limb)
    return out


def _blocks(n: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + _BLOCK_TERMS, n)) for lo in range(0, max(n, 1), _BLOCK_TERMS)]


def _combine(sums: dict[int, np.ndarray], bound: int) -> np.ndarray:
    """Recombine limb-pair sums ``{shift: S}`` into exact integers ``sum(S << shift)``."""
    # Each limb-pair term is at most a few times ``bound``; the margin keeps partial sums
    # inside int64.
    wide = bound >= (1 << 56)
    total = None
    for shift, s in sorted(sums.items()):
        s = s.astype(object) if wide else s.astype(np.int64)
        term = s << shift
        total = term if total is None else total + term
    return total


def dot(
    a_q: npt.ArrayLike,
    b_q: npt.ArrayLike,
    a_fmt: FixedFormat,
    b_fmt: FixedFormat,
    out_fmt: FixedFormat,
    rounding: Rounding = "half_even",
    overflow: Overflow = "saturate",
) -> np.ndarray:
    """:func:`sw_model.numerics.fixed.dot` as it was: 16-bit limbs summed in ``int64``."""
    _check_dot_args(a_fmt, b_fmt, out_fmt, rounding, overflow)
    a = a_fmt.check_codes(a_q, "a_q")
    b = b_fmt.check_codes(b_q, "b_q")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("a_q and b_q must have a term axis (at least one dimension)")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"a_q and b_q must have the same number of terms, not {a.shape[-1]} and {b.shape[-1]}"
        )
    n = a.shape[-1]
    a, b = np.broadcast_arrays(a, b)
    a_data, b_data = _data_format(a, a_fmt), _data_format(b, b_fmt)
    sums: dict[int, np.ndarray] = {}
    for i, al in enumerate(_limbs(a, a_data)):
        for j, bl in enumerate(_limbs(b, b_data)):
            shift = (i + j) * _LIMB_BITS
            # int64 sums of limb products (< 2**32 each) are exact for up to 2**31 terms;
            # blocks keep that true for any n.
            s = sum(
                np.einsum("...k,...k->...", al[..., lo:hi], bl[..., lo:hi])
                for lo, hi in _blocks(n)
            )
            sums[shift] = sums[shift] + s if shift in sums else np.asarray(s)
    pmin, pmax = product_range(a_data, b_data)
    total = _combine(sums, max(abs(pmin), abs(pmax)) * max(n, 1))
    return requantize(total, a_fmt.frac + b_fmt.frac, out_fmt, rounding, overflow)


def exact_matmul(
    a_q: npt.ArrayLike, b_q: npt.ArrayLike, a_fmt: FixedFormat, b_fmt: FixedFormat
) -> np.ndarray:
    """:func:`sw_model.numerics.fixed.exact_matmul` as it was: 16-bit limbs, ``float64`` BLAS."""
    for name, fmt in (("a_fmt", a_fmt), ("b_fmt", b_fmt)):
        if not isinstance(fmt, FixedFormat):
            raise TypeError(f"{name} must be a FixedFormat, not {fmt!r}")
    a = a_fmt.check_codes(a_q, "a_q")
    b = b_fmt.check_codes(b_q, "b_q")
    if a.ndim not in (1, 2) or b.ndim not in (1, 2):
        raise ValueError(
            f"a_q and b_q must be 1-D or 2-D, not of shapes {a.shape} and {b.shape}"
        )
    n = a.shape[-1]
    if b.shape[0] != n:
        raise ValueError(f"a_q has {n} columns but b_q has {b.shape[0]} rows")
    a_data, b_data = _data_format(a, a_fmt), _data_format(b, b_fmt)
    a_limbs = [x.astype(np.float64) for x in _limbs(a, a_data)]
    b_limbs = [x.astype(np.float64) for x in _limbs(b, b_data)]
    sums: dict[int, np.ndarray] = {}
    for lo, hi in _blocks(n):
        sl = slice(lo, hi)
        for i, al in enumerate(a_limbs):
            for j, bl in enumerate(b_limbs):
                s = np.asarray(al[..., sl] @ bl[sl, ...]).astype(np.int64)
                shift = (i + j) * _LIMB_BITS
                sums[shift] = sums[shift] + s if shift in sums else s
    pmin, pmax = product_range(a_data, b_data)
    return np.asarray(_combine(sums, max(abs(pmin), abs(pmax)) * max(n, 1)))


def matmul(
    a_q: npt.ArrayLike,
    b_q: npt.ArrayLike,
    a_fmt: FixedFormat,
    b_fmt: FixedFormat,
    out_fmt: FixedFormat,
    rounding: Rounding = "half_even",
    overflow: Overflow = "saturate",
) -> np.ndarray:
    """:func:`sw_model.numerics.fixed.matmul` as it was: :func:`exact_matmul`, then requantize."""
    _check_dot_args(a_fmt, b_fmt, out_fmt, rounding, overflow)
    total = exact_matmul(a_q, b_q, a_fmt, b_fmt)
    return requantize(total, a_fmt.frac + b_fmt.frac, out_fmt, rounding, overflow)
