"""The numeric contract: fixed-point formats, rounding, overflow and exact dot products.

Every hardware part of ``fixar_hw`` and every fixed-point operation of the NumPy trainer
reads this module, so that the two agree bit for bit.

Representation
--------------
A fixed-point number is an integer ``q`` (the *code*) together with a :class:`FixedFormat`
``(width, frac, signed)``; its real value is ``q * 2**-frac``. Codes are held in NumPy
``int64`` arrays (every supported format fits), and all arithmetic on codes is exact
integer arithmetic: no floating point takes part in any result except :meth:`FixedFormat.to_float`
and :meth:`FixedFormat.from_float`.

Rounding modes (applied when bits are dropped by a right shift of ``s > 0`` bits)
---------------------------------------------------------------------------------
``"floor"``
    Toward minus infinity: an arithmetic shift right, ``q >> s``. Costs nothing in hardware.
``"half_up"``
    To nearest, ties toward plus infinity: ``(q + 2**(s-1)) >> s``.
``"half_even"``
    To nearest, ties to the even neighbour (convergent rounding, no bias).

Overflow handling (applied after rounding)
------------------------------------------
``"saturate"``
    Clamp to ``[min_int, max_int]`` of the destination format.
``"wrap"``
    Keep the low ``width`` bits (two's complement for signed formats).

Exact dot products
------------------
:func:`dot` and :func:`matmul` compute the exact sum of exact products and round once at the end,
which is what the hardware MAC does with its guard-bit accumulator. A 32x32-bit product needs
64 bits and a sum of thousands of them needs more than NumPy's ``int64``, so operands are split
into 16-bit limbs (as FIXAR's PE splits a 32-bit activation into halves): a limb product is below
2**32 in magnitude, so ``int64`` (in :func:`dot`) and ``float64`` BLAS (in :func:`matmul`, whose
partial sums are integers below 2**53 and therefore exact in any summation order) sum up to
2**20 terms per block without error. Limb sums are recombined in ``int64`` when the result is
known to fit and in Python integers otherwise, then rounded by :func:`requantize`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from sw_model.checks import check_int

__all__ = [
    "OVERFLOW_MODES",
    "ROUNDING_MODES",
    "FixedFormat",
    "Overflow",
    "Rounding",
    "check_overflow",
    "check_rounding",
    "dot",
    "exact_matmul",
    "matmul",
    "product_range",
    "requantize",
    "shift_round",
]

Rounding = Literal["floor", "half_up", "half_even"]
Overflow = Literal["saturate", "wrap"]

ROUNDING_MODES: tuple[str, ...] = ("floor", "half_up", "half_even")
OVERFLOW_MODES: tuple[str, ...] = ("saturate", "wrap")

#: Widest supported format: every code fits in an ``int64``.
MAX_WIDTH = 64
#: Largest ``|frac|``; larger shifts would only ever produce zero or saturate.
MAX_FRAC = 256

_LIMB_BITS = 16
# Limb products are < 2**32 in magnitude; 2**20 of them (and sums of two such blocks when
# limbs pair up in matmul) stay below 2**53, the exact-integer range of float64.
_BLOCK_TERMS = 1 << 20


def check_rounding(rounding: object, name: str = "rounding") -> str:
    """Validate a rounding-mode name and return it.

    Raises
    ------
    TypeError
        If ``rounding`` is not a string.
    ValueError
        If it is not one of :data:`ROUNDING_MODES`.
    """
    if not isinstance(rounding, str):
        raise TypeError(f"{name} must be a string, not {rounding!r}")
    if rounding not in ROUNDING_MODES:
        raise ValueError(
            f"{name} must be one of 'floor', 'half_up', 'half_even', not {rounding!r}"
        )
    return rounding


def check_overflow(overflow: object, name: str = "overflow") -> str:
    """Validate an overflow-mode name and return it.

    Raises
    ------
    TypeError
        If ``overflow`` is not a string.
    ValueError
        If it is not one of :data:`OVERFLOW_MODES`.
    """
    if not isinstance(overflow, str):
        raise TypeError(f"{name} must be a string, not {overflow!r}")
    if overflow not in OVERFLOW_MODES:
        raise ValueError(f"{name} must be one of 'saturate', 'wrap', not {overflow!r}")
    return overflow


@dataclass(frozen=True)
class FixedFormat:
    """A binary fixed-point format: ``width`` bits, ``frac`` of them after the binary point.

    The real value of a code ``q`` is ``q * 2**-frac``. Signed formats are two's complement.

    Parameters
    ----------
    width : int
        Total number of bits, including the sign bit of a signed format. 1 to 64 for signed
        formats, 1 to 63 for unsigned ones (codes are held in ``int64``).
    frac : int
        Number of fraction bits, -256 to 256. It may exceed ``width`` (a format for small
        magnitudes) or be negative (a format for large magnitudes with a coarse step).
    signed : bool
        Two's complement (``True``, the default) or unsigned.

    Raises
    ------
    TypeError
        If ``width`` or ``frac`` is not an integer or ``signed`` is not a bool.
    ValueError
        If ``width`` or ``frac`` is out of range.

    Examples
    --------
    >>> fmt = FixedFormat(16, 8)
    >>> fmt.min_int, fmt.max_int, fmt.resolution
    (-32768, 32767, 0.00390625)
    >>> int(fmt.from_float(1.5)), float(fmt.to_float(384))
    (384, 1.5)
    """

    width: int
    frac: int
    signed: bool = True

    def __post_init__(self) -> None:
        width = check_int(self.width, "FixedFormat width")
        frac = check_int(self.frac, "FixedFormat frac")
        if not isinstance(self.signed, bool | np.bool_):
            raise TypeError(f"FixedFormat signed must be a bool, not {self.signed!r}")
        max_width = MAX_WIDTH if self.signed else MAX_WIDTH - 1
        if not 1 <= width <= max_width:
            kind = "signed" if self.signed else "unsigned"
            raise ValueError(
                f"FixedFormat width must be from 1 to {max_width} for {kind} formats, "
                f"not {self.width!r}"
            )
        if not -MAX_FRAC <= frac <= MAX_FRAC:
            raise ValueError(
                f"FixedFormat frac must be from {-MAX_FRAC} to {MAX_FRAC}, not {self.frac!r}"
            )
        # Normalise NumPy scalars to plain Python values so formats compare and hash alike.
        object.__setattr__(self, "width", width)
        object.__setattr__(self, "frac", frac)
        object.__setattr__(self, "signed", bool(self.signed))

    @property
    def min_int(self) -> int:
        """Smallest code: ``-2**(width-1)`` if signed, else 0."""
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_int(self) -> int:
        """Largest code: ``2**(width-1) - 1`` if signed, else ``2**width - 1``."""
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def resolution(self) -> float:
        """Value of one code step, ``2**-frac``."""
        return math.ldexp(1.0, -self.frac)

    @property
    def min_value(self) -> float:
        """Smallest representable real value."""
        return math.ldexp(float(self.min_int), -self.frac)

    @property
    def max_value(self) -> float:
        """Largest representable real value (rounded to float64 for widths above 53)."""
        return math.ldexp(float(self.max_int), -self.frac)

    def contains(self, q: npt.ArrayLike) -> bool:
        """Whether every code in ``q`` lies in ``[min_int, max_int]``."""
        arr = np.asarray(q)
        if arr.size == 0:
            return True
        return bool(int(arr.min()) >= self.min_int and int(arr.max()) <= self.max_int)

    def check_codes(self, q: npt.ArrayLike, name: str = "q") -> np.ndarray:
        """Return ``q`` as an ``int64`` array, or raise if it is not a valid code array.

        Raises
        ------
        TypeError
            If ``q`` does not hold integers.
        ValueError
            If a code lies outside ``[min_int, max_int]``.
        """
        arr = _as_code_array(q, name)
        if not self.contains(arr):
            lo, hi = int(arr.min()), int(arr.max())
            bad = lo if lo < self.min_int else hi
            raise ValueError(
                f"{name} holds {bad!r}, outside {self!r} codes "
                f"[{self.min_int}, {self.max_int}]"
            )
        return arr.astype(np.int64, copy=False)

    def to_float(self, q: npt.ArrayLike) -> np.ndarray:
        """Real values ``q * 2**-frac`` as ``float64`` (exact for widths up to 53)."""
        arr = _as_code_array(q, "q")
        return np.ldexp(arr.astype(np.float64), -self.frac)

    def from_float(
        self,
        x: npt.ArrayLike,
        rounding: Rounding = "half_even",
        overflow: Overflow = "saturate",
    ) -> np.ndarray:
        """Nearest codes of real values ``x`` (an ``int64`` array).

        ``x * 2**frac`` is rounded with ``rounding`` (ties as documented in the module), then
        overflow is handled with ``overflow``. Infinities saturate; NaN is an error.

        Raises
        ------
        ValueError
            If ``x`` holds NaN, or an infinity with ``overflow="wrap"``.
        """
        rounding = check_rounding(rounding)
        overflow = check_overflow(overflow)
        xf = np.asarray(x, dtype=np.float64)
        if np.isnan(xf).any():
            raise ValueError("x holds NaN, which has no fixed-point code")
        if overflow == "wrap" and np.isinf(xf).any():
            raise ValueError("x holds an infinity, which cannot wrap")
        y = np.ldexp(xf, self.frac)
        if rounding == "floor":
            r = np.floor(y)
        elif rounding == "half_up":
            # Above 2**52 every float is an integer and y + 0.5 would itself round.
            r = np.where(np.abs(y) >= 2.0**52, y, np.floor(y + 0.5))
        else:
            r = np.rint(y)
        if r.size == 0 or float(np.abs(r).max()) < 2.0**62:
            codes = r.astype(np.int64)
        else:
            # Python integers keep far-out values exact; infinities (saturate only) become
            # a value beyond every format so that they clamp.
            if overflow == "saturate":
                r = np.clip(r, -(2.0**64), 2.0**64)
            codes = np.frompyfunc(int, 1, 1)(r)
        return _overflow(np.asarray(codes), self, overflow)

    def __repr__(self) -> str:
        sign = "" if self.signed else ", signed=False"
        return f"FixedFormat({self.width}, {self.frac}{sign})"


def _as_code_array(q: npt.ArrayLike, name: str) -> np.ndarray:
    arr = np.asarray(q)
    if arr.dtype == object:
        if arr.size and not all(
            isinstance(v, int | np.integer) and not isinstance(v, bool) for v in arr.flat
        ):
            raise TypeError(f"{name} must hold integers, not {arr!r}")
        return arr
    if arr.dtype == np.uint64:
        if arr.size and int(arr.max()) > np.iinfo(np.int64).max:
            return arr.astype(object)
        return arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, not an array of {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _fits_int64(lo: int, hi: int) -> bool:
    return lo >= -(1 << 62) and hi < (1 << 62)


def shift_round(q: npt.ArrayLike, shift: int, rounding: Rounding) -> np.ndarray:
    """Exact ``q * 2**-shift`` rounded to an integer with ``rounding``.

    ``shift <= 0`` is an exact left shift. Works on ``int64`` and on object (Python integer)
    arrays; the result has the same kind.
    """
    rounding = check_rounding(rounding)
    shift = check_int(shift, "shift")
    v = np.asarray(q)
    if shift <= 0:
        return v << (-shift)
    if v.dtype != object and shift >= 62:
        # Python integers keep the rounding exact for any shift.
        v = v.astype(object)
    if rounding == "floor":
        return v >> shift
    half = 1 << (shift - 1)
    if rounding == "half_up":
        return (v + half) >> shift
    # On 0-d object arrays NumPy returns bare Python integers: keep them Python integers.
    q_floor = np.asarray(v >> shift, dtype=v.dtype)
    rem = np.asarray(v - (q_floor << shift), dtype=v.dtype)
    round_up = np.asarray((rem > half) | ((rem == half) & ((q_floor & 1) == 1)))
    return q_floor + round_up.astype(v.dtype if v.dtype != object else np.int64)


def _overflow(v: np.ndarray, dst: FixedFormat, overflow: str) -> np.ndarray:
    v = np.asarray(v)
    if v.dtype == object:
        # Python integers (values beyond int64): clamp or wrap each one exactly.
        if overflow == "saturate":
            def one(x):
                return min(max(int(x), dst.min_int), dst.max_int)
        else:
            def one(x):
                return (int(x) - dst.min_int) % (1 << dst.width) + dst.min_int
        return np.asarray(np.frompyfunc(one, 1, 1)(v)).astype(np.int64)
    if overflow == "saturate":
        out = np.clip(v, dst.min_int, dst.max_int)
    elif dst.width == 64:
        out = v  # an int64 already is its own 64-bit two's complement wrap
    else:
        low = v & ((1 << dst.width) - 1)
        if dst.signed:
            sign = 1 << (dst.width - 1)
            # ``low - 2 * sign`` written so that no constant exceeds int64
            out = np.where(low >= sign, low - sign - sign, low)
        else:
            out = low
    return np.asarray(out).astype(np.int64)


def requantize(
    q: npt.ArrayLike,
    src_frac: int,
    dst: FixedFormat,
    rounding: Rounding = "half_even",
    overflow: Overflow = "saturate",
) -> np.ndarray:
    """Convert exact codes with ``src_frac`` fraction bits to format ``dst``.

    The value ``q * 2**-src_frac`` is shifted to ``dst.frac`` fraction bits (exactly when
    ``dst.frac >= src_frac``, otherwise with ``rounding``), then overflow is handled with
    ``overflow``. ``q`` may hold any integers (``int64`` or Python integers of any size).

    Parameters
    ----------
    q : array_like of int
        Source codes.
    src_frac : int
        Fraction bits of the source codes.
    dst : FixedFormat
        Destination format.
    rounding : {"floor", "half_up", "half_even"}
        Rounding of dropped bits.
    overflow : {"saturate", "wrap"}
        Handling of values outside ``dst``.

    Returns
    -------
    numpy.ndarray of int64
        Codes of ``dst``, the shape of ``q``.
    """
    if not isinstance(dst, FixedFormat):
        raise TypeError(f"dst must be a FixedFormat, not {dst!r}")
    src_frac = check_int(src_frac, "src_frac")
    rounding = check_rounding(rounding)
    overflow = check_overflow(overflow)
    v = _as_code_array(q, "q")
    shift = src_frac - dst.frac
    if v.dtype != object and v.size:
        lo, hi = int(v.min()), int(v.max())
        grown = max(abs(lo), abs(hi)) << max(-shift, 0)
        if not _fits_int64(-grown, grown):
            v = v.astype(object)
    return _overflow(np.asarray(shift_round(v, shift, rounding)), dst, overflow)


def product_range(a_fmt: FixedFormat, b_fmt: FixedFormat) -> tuple[int, int]:
    """Exact ``(min, max)`` of the integer product of an ``a_fmt`` code and a ``b_fmt`` code."""
    a_ends, b_ends = (a_fmt.min_int, a_fmt.max_int), (b_fmt.min_int, b_fmt.max_int)
    corners = [x * y for x in a_ends for y in b_ends]
    return min(corners), max(corners)


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


def _check_dot_args(a_fmt, b_fmt, out_fmt, rounding, overflow) -> None:
    for name, fmt in (("a_fmt", a_fmt), ("b_fmt", b_fmt), ("out_fmt", out_fmt)):
        if not isinstance(fmt, FixedFormat):
            raise TypeError(f"{name} must be a FixedFormat, not {fmt!r}")
    check_rounding(rounding)
    check_overflow(overflow)


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
    """Exact fixed-point dot product along the last axis, rounded once.

    Computes ``sum(a_q[..., k] * b_q[..., k])`` exactly, with ``a_fmt.frac + b_fmt.frac``
    fraction bits, then :func:`requantize` to ``out_fmt``. Leading axes broadcast (a batch of
    dot products). This is the golden model of :class:`fixar_hw.arith.mac.FixedMAC`.

    Parameters
    ----------
    a_q, b_q : array_like of int
        Codes of ``a_fmt`` and ``b_fmt``; shapes ``(..., n)`` that broadcast.
    a_fmt, b_fmt, out_fmt : FixedFormat
        Operand and result formats.
    rounding, overflow : str
        As for :func:`requantize`.

    Returns
    -------
    numpy.ndarray of int64
        ``out_fmt`` codes of shape ``broadcast(a_q.shape[:-1], b_q.shape[:-1])``.

    Raises
    ------
    TypeError, ValueError
        For a bad format or mode, non-integer codes, codes outside their format, or operands
        without a term axis or whose term axes differ.
    """
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
    """Exact integer matrix product ``a_q @ b_q`` of codes, with no rounding.

    The entries have ``a_fmt.frac + b_fmt.frac`` fraction bits. The limb products run through
    ``float64`` BLAS, exact because every partial sum is an integer below ``2**53``.

    Parameters
    ----------
    a_q : array_like of int, shape (m, n) or (n,)
    b_q : array_like of int, shape (n, k) or (n,)
    a_fmt, b_fmt : FixedFormat

    Returns
    -------
    numpy.ndarray
        ``int64`` when every possible sum of codes as large as the operands' fits, otherwise
        an object array of Python integers;
        shape as for ``numpy.matmul`` of the operands.
    """
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
    """Exact fixed-point matrix product ``a_q @ b_q``, each entry rounded once.

    Each entry is the exact dot product of a row of ``a_q`` and a column of ``b_q``
    (:func:`exact_matmul`), requantized to ``out_fmt`` exactly as :func:`dot` does; the two
    functions agree entry for entry.

    Parameters
    ----------
    a_q : array_like of int, shape (m, n) or (n,)
    b_q : array_like of int, shape (n, k) or (n,)
    a_fmt, b_fmt, out_fmt : FixedFormat
    rounding, overflow : str

    Returns
    -------
    numpy.ndarray of int64
        Shape as for ``numpy.matmul`` of the operands.
    """
    _check_dot_args(a_fmt, b_fmt, out_fmt, rounding, overflow)
    total = exact_matmul(a_q, b_q, a_fmt, b_fmt)
    return requantize(total, a_fmt.frac + b_fmt.frac, out_fmt, rounding, overflow)
