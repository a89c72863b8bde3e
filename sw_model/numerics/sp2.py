"""Sum-of-power-of-two (SP2) weight codes: levels, quantization and the shift-add product.

This is the golden model of the LUT lanes of a mixed-scheme (MSQ) accelerator: an SP2 weight
multiplies an activation with two shifts and one add, no DSP. It follows the SP2 scheme of
Chang et al., *Mix and Match: A Novel FPGA-Centric Deep Neural Network Quantization Framework*
(HPCA 2021, arXiv:2012.04240): ``q = ±alpha * (q1 + q2)`` with
``q1 ∈ {0, 2**-1, ..., 2**-(2**m1 - 1)}`` and ``q2 ∈ {0, 2**-1, ..., 2**-(2**m2 - 1)}``,
``m1 + m2 + 1 = m``, ``m1 >= m2 >= 0``.

Levels
------
An ``m``-bit SP2 code holds a sign bit and two sub-codes ``c1`` (``m1`` bits) and ``c2``
(``m2`` bits). A sub-code ``c`` selects ``0`` when ``c == 0`` and ``2**-c`` otherwise, so the
code means ``(-1)**sign * alpha * (2**-c1 + 2**-c2)`` (with the zero convention) for a per-row
scale ``alpha > 0``. The levels are dense near zero and sparse near the top, which the paper
matches to Gaussian-like weight rows, and fixed point (uniform levels) to uniform-like rows.
(On squared error with the best per-row scale, fixed point still wins on Gaussian rows; SP2
wins on heavy-tailed ones: see :mod:`sw_model.numerics.msq`.)

Every level is an integer multiple of ``2**-K`` with ``K = 2**m1 - 1`` (the largest ``c1``):
the *level integer* of a code is ``level * 2**K`` (:meth:`SP2Format.to_int`), so SP2 weights
are fixed-point numbers with ``frac = K`` fraction bits. The largest level is ``1`` (``c1 = c2
= 1``) when ``m2 >= 1`` and ``1/2`` when ``m2 == 0``.

Code layout (shared with the hardware)
--------------------------------------
A code is an unsigned ``m``-bit integer ``sign << (m-1) | c1 << m2 | c2``: the sign in the top
bit, then ``c1``, then ``c2`` in the low ``m2`` bits. Several codes may mean the same level
(``c1 = 1, c2 = 0`` and ``c1 = 0, c2 = 1`` both mean ``1/2``; a set sign bit with
``c1 = c2 = 0`` is a negative zero). :meth:`SP2Format.quantize` emits the *canonical* code of
a level, the smallest unsigned code that means it: zero is code ``0`` (never a negative zero)
and a negative level is the canonical positive code with the sign bit set. Every other function
accepts every code, and treats a negative zero as zero.

Quantization and rounding
-------------------------
:meth:`SP2Format.quantize` forms the ratio ``|w| / alpha`` in ``float64`` (one correctly
rounded IEEE division) and picks the nearest level *exactly* (the midpoints between levels are
exactly representable); a ratio exactly halfway between two levels goes to the smaller
magnitude; ratios beyond the largest level saturate to it (infinities too). The sign of the
code is the sign of ``w`` unless the level is zero.

The shift-add product and the limit on ``K``
--------------------------------------------
:meth:`SP2Format.mul` multiplies an integer activation ``x`` by a code as the hardware does::

    ±( (x << (K - c1) if c1 else 0) + (x << (K - c2) if c2 else 0) )

exact, no rounding: the result is ``x * level_int`` with ``frac(x) + K`` fraction bits. Since
``c >= 1`` when a term is used, a term is at most ``|x| * 2**(K-1)`` and the product at most
``|x| * 2**K`` in magnitude: a signed ``n``-bit ``x`` gives an ``n + K + 1``-bit signed product.
``K`` grows as ``2**m1``, so this module limits ``m1 <= 5`` (``K <= 31``, hence ``m <= 11``
with ``m1 >= m2``, and ``ValueError`` beyond): the shift-adder is about ``n + K`` bits wide,
already 64 bits for a 32-bit activation at ``K = 31``, and a larger ``K`` would make a LUT lane
wider than the DSP it replaces. With ``K <= 31`` the product of any 32-bit activation code
(signed or unsigned) fits an ``int64``; wider activations are still exact, as
:meth:`SP2Format.mul` then switches to Python integers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sw_model.checks import check_int
from sw_model.numerics.fixed import FixedFormat, _as_code_array

__all__ = ["MAX_M", "MAX_M1", "MIN_M", "SP2Format"]

#: Largest ``m1``: ``K = 2**m1 - 1 <= 31``.
MAX_M1 = 5
#: Smallest code width: a sign bit and a one-bit ``c1``.
MIN_M = 2
#: Largest code width with ``m1 <= MAX_M1`` and ``m1 >= m2``.
MAX_M = 2 * MAX_M1 + 1


def _check_range(arr: np.ndarray, lo: int, hi: int, name: str, what: str = "") -> np.ndarray:
    if arr.size:
        amin, amax = int(arr.min()), int(arr.max())
        if amin < lo or amax > hi:
            bad = amin if amin < lo else amax
            raise ValueError(f"{name} holds {bad!r}, outside {what}[{lo}, {hi}]")
    return arr.astype(np.int64)


def _level_index(r: np.ndarray, tables: dict[str, np.ndarray], k: int) -> np.ndarray:
    """Index of the level nearest to each ratio ``r >= 0`` (ties to the smaller level).

    It is the number of midpoints strictly below ``r``. With a small ``K`` a table indexed by
    ``ceil(r * 2**(K+1))`` gives it (midpoints are integers in units of ``2**-(K+1)``, and an
    integer ``M`` is below ``y`` exactly when it is below ``ceil(y)``); otherwise a binary
    search. The scaling by a power of two is exact.
    """
    return np.take(tables["lut"], _lut_index(r, tables, k)) if "lut" in tables else (
        np.searchsorted(tables["mids"], r, side="left"))


def _lut_index(r: np.ndarray, tables: dict[str, np.ndarray], k: int) -> np.ndarray:
    """``ceil(r * 2**(K+1))``, clamped to the last table entry, as an index array."""
    top = float(tables["lut"].shape[0] - 1)
    y = np.minimum(r * float(1 << (k + 1)), top)
    return np.ceil(y, out=y).astype(np.intp)


#: Largest ``K`` with a lookup table for quantization (2**(K+1) entries).
_LUT_MAX_K = 15


@functools.cache
def _tables(m: int, m1: int) -> dict[str, np.ndarray]:
    """Level tables of the format ``(m, m1)``, computed once and made read-only."""
    m2 = m - 1 - m1
    k = (1 << m1) - 1
    c1 = np.arange(1 << m1, dtype=np.int64)[:, None]
    c2 = np.arange(1 << m2, dtype=np.int64)[None, :]
    t1 = np.where(c1 > 0, np.int64(1) << (k - c1), 0)
    t2 = np.where(c2 > 0, np.int64(1) << (k - c2), 0)
    mag = (t1 + t2).ravel()  # level integer of the unsigned code c1 << m2 | c2
    level_ints, first = np.unique(mag, return_index=True)  # first: the smallest code
    code_of_int = (c1 << m2 | c2).ravel()[first]
    signed = np.concatenate([mag, -mag])  # indexed by the full code, sign bit on top
    level_floats = np.ldexp(level_ints.astype(np.float64), -k)
    mid_ints = level_ints[:-1] + level_ints[1:]  # midpoints in units of 2**-(K+1)
    out = {
        "level_ints": level_ints,
        "levels": level_floats,
        "mids": np.ldexp(mid_ints.astype(np.float64), -k - 1),
        "code_of_level": code_of_int,
        "int_of_code": signed,
    }
    if k <= _LUT_MAX_K:
        # lut[c] = number of midpoints below c (units of 2**-(K+1)); see _level_index.
        top = (1 << (k + 1)) + 1
        out["lut"] = np.searchsorted(mid_ints, np.arange(top + 1), side="left").astype(np.intp)
        out["lut_levels"] = level_floats[out["lut"]]
    for arr in out.values():
        arr.setflags(write=False)
    return out


@dataclass(frozen=True)
class SP2Format:
    """An ``m``-bit sum-of-power-of-two code format (see the module docs for the layout).

    Parameters
    ----------
    m : int
        Total code width including the sign bit, 2 to 11.
    m1 : int, optional
        Width of the first sub-code ``c1``. Default ``ceil((m-1)/2)``; it must satisfy
        ``m1 >= m2 = m - 1 - m1 >= 0`` and ``m1 <= 5`` (so ``K = 2**m1 - 1 <= 31``).

    Raises
    ------
    TypeError
        If ``m`` or ``m1`` is not an integer (``bool`` is rejected).
    ValueError
        If ``m`` or ``m1`` is out of range.

    Examples
    --------
    >>> f = SP2Format(4)
    >>> f.m1, f.m2, f.shift, f.max_level_int
    (2, 1, 3, 8)
    >>> f.level_ints().tolist()
    [0, 1, 2, 4, 5, 6, 8]
    """

    m: int
    m1: int | None = None

    def __post_init__(self) -> None:
        m = check_int(self.m, "SP2Format m")
        if not MIN_M <= m <= MAX_M:
            raise ValueError(f"SP2Format m must be from {MIN_M} to {MAX_M}, not {self.m!r}")
        lo, hi = m // 2, min(m - 1, MAX_M1)  # m // 2 == ceil((m-1)/2)
        if self.m1 is None:
            m1 = lo
        else:
            m1 = check_int(self.m1, "SP2Format m1")
            if not lo <= m1 <= hi:
                raise ValueError(
                    f"SP2Format m1 must be from {lo} to {hi} for m={m}, not {self.m1!r}"
                )
        object.__setattr__(self, "m", m)
        object.__setattr__(self, "m1", m1)

    def __repr__(self) -> str:
        return f"SP2Format({self.m}, m1={self.m1})"

    @property
    def m2(self) -> int:
        """Width of the second sub-code ``c2``: ``m - 1 - m1``."""
        return self.m - 1 - self.m1

    @property
    def shift(self) -> int:
        """``K = 2**m1 - 1``, the largest ``c1``; every level times ``2**K`` is an integer."""
        return (1 << self.m1) - 1

    @property
    def frac(self) -> int:
        """Fraction bits of the level integers (:meth:`to_int`): equal to :attr:`shift`."""
        return self.shift

    @property
    def max_code(self) -> int:
        """Largest code, ``2**m - 1``."""
        return (1 << self.m) - 1

    @property
    def max_level_int(self) -> int:
        """Largest level integer: ``2**K`` if ``m2 >= 1`` (level 1), else ``2**(K-1)``."""
        return int(self._tables["level_ints"][-1])

    @property
    def level_fmt(self) -> FixedFormat:
        """The narrowest signed format of the level integers (``frac = K``): SP2 weights as
        fixed-point codes, ``FixedFormat(bits(max_level_int) + 1, K)``."""
        return FixedFormat(self.max_level_int.bit_length() + 1, self.frac)

    @property
    def _tables(self) -> dict[str, np.ndarray]:
        return _tables(self.m, self.m1)

    # --- levels -------------------------------------------------------------------------------

    def levels(self) -> np.ndarray:
        """Sorted distinct level magnitudes for ``alpha = 1`` (``float64``, exact, from 0).

        Returns
        -------
        numpy.ndarray of float64
        """
        return self._tables["levels"].copy()

    def level_ints(self) -> np.ndarray:
        """:meth:`levels` as exact integers in units of ``2**-K`` (``int64``).

        Returns
        -------
        numpy.ndarray of int64
        """
        return self._tables["level_ints"].copy()

    # --- code layout --------------------------------------------------------------------------

    def check_codes(self, codes: npt.ArrayLike, name: str = "codes") -> np.ndarray:
        """Return ``codes`` as an ``int64`` array, or raise if it is not a valid code array.

        Raises
        ------
        TypeError
            If ``codes`` does not hold integers.
        ValueError
            If a code lies outside ``[0, 2**m - 1]``.
        """
        arr = _as_code_array(codes, name)
        return _check_range(arr, 0, self.max_code, name, f"{self!r} codes ")

    def pack(
        self, sign: npt.ArrayLike, c1: npt.ArrayLike, c2: npt.ArrayLike
    ) -> np.ndarray:
        """Codes ``sign << (m-1) | c1 << m2 | c2`` (arguments broadcast).

        Parameters
        ----------
        sign : array_like of int
            0 or 1.
        c1 : array_like of int
            ``0`` to ``2**m1 - 1``.
        c2 : array_like of int
            ``0`` to ``2**m2 - 1``.

        Returns
        -------
        numpy.ndarray of int64

        Raises
        ------
        TypeError, ValueError
            If an argument does not hold integers or holds one out of range.
        """
        s = _check_range(_as_code_array(sign, "sign"), 0, 1, "sign")
        a = _check_range(_as_code_array(c1, "c1"), 0, (1 << self.m1) - 1, "c1")
        b = _check_range(_as_code_array(c2, "c2"), 0, (1 << self.m2) - 1, "c2")
        return (s << (self.m - 1)) | (a << self.m2) | b

    def unpack(self, codes: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Split codes into ``(sign, c1, c2)``, the inverse of :meth:`pack`.

        Returns
        -------
        tuple of three numpy.ndarray of int64
        """
        q = self.check_codes(codes)
        sign = q >> (self.m - 1)
        c1 = (q >> self.m2) & ((1 << self.m1) - 1)
        c2 = q & ((1 << self.m2) - 1)
        return sign, c1, c2

    # --- values -------------------------------------------------------------------------------

    def to_int(self, codes: npt.ArrayLike) -> np.ndarray:
        """Signed level integers of ``codes``: the weight in units of ``2**-K`` (exact).

        Returns
        -------
        numpy.ndarray of int64
        """
        return self._tables["int_of_code"][self.check_codes(codes)]

    def decode(self, codes: npt.ArrayLike, alpha: npt.ArrayLike = 1.0) -> np.ndarray:
        """Real weights ``alpha * level`` (``float64``; one rounding, of the product).

        Parameters
        ----------
        codes : array_like of int
        alpha : array_like of float
            Scale, broadcast against ``codes`` (e.g. a column vector of per-row scales).

        Returns
        -------
        numpy.ndarray of float64
        """
        level = np.ldexp(self.to_int(codes).astype(np.float64), -self.shift)
        return level * np.asarray(alpha, dtype=np.float64)

    def quantize(self, w: npt.ArrayLike, alpha: npt.ArrayLike = 1.0) -> np.ndarray:
        """Canonical codes of the levels nearest to ``w / alpha``.

        The ratio ``|w| / alpha`` is formed in ``float64``, then rounded exactly to the nearest
        level, ties to the smaller magnitude, saturating at the largest level; the sign bit is
        set for negative ``w`` with a non-zero level (see the module docs).

        Parameters
        ----------
        w : array_like of float
            Weights.
        alpha : array_like of float
            Positive finite scales, broadcast against ``w``.

        Returns
        -------
        numpy.ndarray of int64
            Codes, of the broadcast shape of ``w`` and ``alpha``.

        Raises
        ------
        ValueError
            If ``w`` holds NaN or ``alpha`` holds a value that is not positive and finite.
        """
        wf = np.asarray(w, dtype=np.float64)
        af = np.asarray(alpha, dtype=np.float64)
        if np.isnan(wf).any():
            raise ValueError("w holds NaN, which has no SP2 code")
        bad = ~(np.isfinite(af) & (af > 0))
        if bad.any():
            raise ValueError(f"alpha must be positive and finite, not {float(af[bad].flat[0])!r}")
        t = self._tables
        idx = _level_index(np.abs(wf) / af, t, self.shift)
        mag_code = t["code_of_level"][idx]
        sign = (np.signbit(wf) & (idx > 0)).astype(np.int64)
        return np.asarray((sign << (self.m - 1)) | mag_code, dtype=np.int64)

    def mul(self, x_q: npt.ArrayLike, codes: npt.ArrayLike) -> np.ndarray:
        """Exact products ``x_q * level_int`` by shifts and one add, as the LUT lane does.

        Computes ``±((x << (K - c1) if c1 else 0) + (x << (K - c2) if c2 else 0))``; the result
        has the fraction bits of ``x_q`` plus ``K``. No rounding.

        Parameters
        ----------
        x_q : array_like of int
            Integer activations (codes of any fixed-point format), broadcast against ``codes``.
        codes : array_like of int
            SP2 codes.

        Returns
        -------
        numpy.ndarray
            ``int64`` when every product fits (always for ``|x_q| < 2**32``, any signed or
            unsigned 32-bit code), otherwise an object array of Python integers.
        """
        x = _as_code_array(x_q, "x_q")
        sign, c1, c2 = self.unpack(codes)
        k = self.shift
        big = x.dtype == object or (
            # |product| <= |x| * 2**K must stay below 2**63
            x.size > 0 and max(abs(int(x.min())), abs(int(x.max()))).bit_length() + k > 63
        )
        if big:
            x = x.astype(object)
            sign, c1, c2 = (a.astype(object) for a in (sign, c1, c2))
        x, sign, c1, c2 = np.broadcast_arrays(x, sign, c1, c2)
        dtype = x.dtype
        # A sub-code 0 selects no term: shift by 0 and mask the term with (c > 0).
        t1 = (x << np.where(c1 > 0, k - c1, 0).astype(dtype)) * (c1 > 0).astype(dtype)
        t2 = (x << np.where(c2 > 0, k - c2, 0).astype(dtype)) * (c2 > 0).astype(dtype)
        s = np.asarray(t1 + t2, dtype=dtype)
        return np.asarray(np.where(sign == 1, -s, s), dtype=dtype)
