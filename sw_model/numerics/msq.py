"""Mixed-scheme quantization (MSQ): SP2 rows and fixed-point rows in one weight matrix.

Following Chang et al., *Mix and Match* (HPCA 2021, arXiv:2012.04240), each row of a weight
matrix is quantized either with the SP2 scheme of :mod:`sw_model.numerics.sp2` (multiplied by
shifts and
one add in FPGA LUTs; suits Gaussian-like rows, whose levels are dense near zero) or with plain
fixed point (multiplied in DSPs; suits uniform-like rows). Both use the same bit width ``m`` and
a per-row scale ``alpha``. This module chooses the scheme of every row, the scales and the
codes, and is the bit-exact golden model of the mixed matrix-vector product.

Formats
-------
* SP2 rows: codes of ``SP2Format(m)``; the weight is ``alpha * level`` and the level integer
  has ``K = sp2_fmt.frac`` fraction bits.
* Fixed rows: codes of ``fix_fmt = FixedFormat(m, m - 1)`` (``[-2**(m-1), 2**(m-1) - 1]``,
  meaning ``[-1, 1)``); the weight is ``alpha * code * 2**-(m-1)``. A fixed row is quantized
  with :meth:`FixedFormat.from_float` of ``w / alpha`` (``float64`` division, ``"half_even"``
  rounding, saturation); an SP2 row with :meth:`SP2Format.quantize` (ties toward the smaller
  magnitude).
* Scales: unsigned codes of ``alpha_fmt``, one format for the whole matrix (one scale
  multiplier serves every row). By default (:func:`default_alpha_fmt`) it is unsigned 16-bit
  with the largest ``frac`` for which the largest candidate scale of the search fits, so no
  candidate saturates; the scales of the rows with the largest weights then keep about 14 to
  16 significant bits, rows with smaller weights fewer. An all-zero matrix gets ``frac = 0``;
  a row whose scale rounds to 0 is all zeros (codes 0). The codes of a row are chosen for its
  *quantized* scale, so :meth:`QuantizedMatrix.weights` is exactly what the hardware computes.
* Weight integers (:meth:`QuantizedMatrix.weight_ints`): every weight as an integer with the
  common fraction ``w_frac = max(sp2_fmt.frac, fix_fmt.frac)``, before the scale.

Scale search
------------
For each row and scheme, :func:`row_errors` picks the scale with the least squared error among
candidates (:class:`AlphaSearch`): ``alpha = t * amax / top`` with ``amax = max|row|`` and
``top`` the scheme's largest positive level (``t = 1`` maps the largest weight onto the top
level), ``t`` on a geometric grid of ``n_alphas`` points over the scheme's range (default
``[0.1, 4]`` for SP2, ``[0.1, 1]`` for fixed point), then on a fine grid of ``n_alphas`` points
spanning one coarse step either side of the best point, then ``lloyd_steps`` Lloyd steps from
the best scale (with the levels fixed, the least-squares scale ``sum(|w| * l) / sum(l * l)``).
Every candidate is rounded to ``alpha_fmt`` before it is scored, so the reported error is the
error of the final matrix. The squared error of a candidate is evaluated in full (no model of
the distribution), in one vectorised in-place pass over the matrix; ties keep the earlier
candidate. For a 400 x 300 matrix both schemes take about 70 ms of CPU together (about
0.45 s for ``m >= 10``, whose ``K = 31`` is too large for the quantization lookup table, so a
binary search over the levels replaces it).

This is a heuristic: the error is not unimodal in ``alpha``. Against a 3000-point sweep of
``t`` on random Gaussian, uniform and heavy-tailed matrices, the summed row errors came within
0.1 % for ``m <= 4`` and fixed point at every width, and within about 5 % for SP2 at
``m >= 6``, whose error is a very bumpy function of ``alpha``; single rows can miss more.

The search is per row and independent of the other rows, so the row errors are additive and
the scheme choice is a selection problem.

Row assignment
--------------
With a row count ``k``, the total error is ``sum(fixed errors) - sum(gains of the SP2 rows)``
with ``gain = fixed error - SP2 error``, so the ``k`` rows with the largest gains (ties: lower
row index first) minimise it. A ratio ``r`` gives ``k = round(r * rows)`` (Python's
:func:`round`, ties to even). A :class:`LaneBudget` gives the ratio of :func:`fill_ratio`.

Accuracy (squared error)
------------------------
:func:`compare_schemes` reports the relative Frobenius error of fixed-only, SP2-only and MSQ
quantization at equal ``m``. With the best per-row scale, SP2 as defined here loses to fixed
point on squared error for Gaussian and uniform rows at every width: at ``m = 4`` its levels
``{0, 1/8, 1/4, 1/2, 5/8, 3/4, 1}`` are, but for ``+1``, a subset of the fixed-point levels
``k/8``, and from ``m = 6`` on SP2 has no level between ``3/4`` and ``1`` (nor between
``3/8`` and ``1/2``, ...). SP2 wins only on heavy-tailed rows (e.g. Student t with 2 degrees
of freedom). So on Gaussian/uniform matrices the best ratio for accuracy is 0, and a lane
budget that puts rows on SP2 buys LUT throughput with some error. (The paper trains with the
quantizer in the loop, which this module does not model.)

The mixed product
-----------------
:func:`matvec` computes, for each row ``r``, ``acc_r = sum_j x_j * weight_int[r, j]`` exactly
(with 16-bit limbs as in :func:`sw_model.numerics.fixed.matmul`, and Python integers where ``int64``
would overflow), multiplies it exactly by the row's scale code and rounds once, with
:func:`sw_model.numerics.fixed.requantize`, from ``x_fmt.frac + w_frac + alpha_fmt.frac`` fraction
bits
to ``out_fmt``. For SP2 rows each term ``x_j * weight_int[r, j]`` equals
``SP2Format.mul(x_j, code) << (w_frac - K)``: the shift-add of the LUT lane, aligned to the
common fraction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from sw_model.checks import check_int, check_real
from sw_model.numerics.fixed import (
    FixedFormat,
    Overflow,
    Rounding,
    check_overflow,
    check_rounding,
    exact_matmul,
    requantize,
)
from sw_model.numerics.sp2 import SP2Format, _level_index

__all__ = [
    "AlphaSearch",
    "LaneBudget",
    "QuantizedMatrix",
    "RowErrors",
    "SchemeErrors",
    "assign_rows",
    "best_sp2_ratio",
    "compare_schemes",
    "default_alpha_fmt",
    "fill_ratio",
    "matvec",
    "quantization_error",
    "quantize_matrix",
    "row_errors",
]

#: Width of the default scale format.
ALPHA_WIDTH = 16


def _check_matrix(w: npt.ArrayLike, name: str = "W") -> np.ndarray:
    arr = np.asarray(w)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, not an array of {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D, not of shape {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite")
    return arr


def _fix_fmt(m: int) -> FixedFormat:
    return FixedFormat(m, m - 1)


def _top_levels(sp2_fmt: SP2Format, fix_fmt: FixedFormat) -> tuple[float, float]:
    """Largest positive level of each scheme, for ``alpha = 1``."""
    return float(sp2_fmt.levels()[-1]), fix_fmt.max_value


# --- lane budget ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LaneBudget:
    """FPGA resources for weight lanes and the cost of one lane of each kind.

    The per-lane costs come from synthesis of the lane generators (a benchmark measures them);
    round measured averages up to integers.

    Parameters
    ----------
    luts : int
        LUTs available for lanes (``>= 0``).
    dsps : int
        DSP slices available for lanes (``>= 0``).
    lut_per_sp2_lane : int
        LUTs of one SP2 (shift-add) lane (``>= 1``).
    lut_per_fixed_lane : int
        LUTs of one fixed-point lane besides its DSPs (``>= 0``).
    dsp_per_fixed_lane : int
        DSP slices of one fixed-point lane (``>= 1``).

    Raises
    ------
    TypeError
        If a field is not an integer.
    ValueError
        If a field is below its minimum.
    """

    luts: int
    dsps: int
    lut_per_sp2_lane: int
    lut_per_fixed_lane: int
    dsp_per_fixed_lane: int

    def __post_init__(self) -> None:
        minimum = {
            "luts": 0,
            "dsps": 0,
            "lut_per_sp2_lane": 1,
            "lut_per_fixed_lane": 0,
            "dsp_per_fixed_lane": 1,
        }
        for name, lo in minimum.items():
            value = getattr(self, name)
            v = check_int(value, f"LaneBudget {name}")
            if v < lo:
                raise ValueError(f"LaneBudget {name} must be at least {lo}, not {value!r}")
            object.__setattr__(self, name, v)


def fill_ratio(budget: LaneBudget) -> tuple[int, int, float]:
    """The lane mix that fills the device, and the SP2 row ratio that keeps it busy.

    Fixed lanes take the DSPs: ``n_fixed = dsps // dsp_per_fixed_lane``, limited to
    ``luts // lut_per_fixed_lane`` when the LUTs cannot hold that many fixed lanes. SP2 lanes
    take the remaining LUTs: ``n_sp2 = (luts - n_fixed * lut_per_fixed_lane) //
    lut_per_sp2_lane``. If the rows are split ``n_sp2 : n_fixed`` between the two schemes, both
    kinds of lanes finish together, so the SP2 row ratio is ``n_sp2 / (n_fixed + n_sp2)``.

    Parameters
    ----------
    budget : LaneBudget

    Returns
    -------
    tuple of (int, int, float)
        ``(n_fixed, n_sp2, ratio)``.

    Raises
    ------
    TypeError
        If ``budget`` is not a :class:`LaneBudget`.
    ValueError
        If the budget holds no lane at all.
    """
    if not isinstance(budget, LaneBudget):
        raise TypeError(f"budget must be a LaneBudget, not {budget!r}")
    n_fixed = budget.dsps // budget.dsp_per_fixed_lane
    if budget.lut_per_fixed_lane:
        n_fixed = min(n_fixed, budget.luts // budget.lut_per_fixed_lane)
    n_sp2 = max(0, (budget.luts - n_fixed * budget.lut_per_fixed_lane) // budget.lut_per_sp2_lane)
    if n_fixed + n_sp2 == 0:
        raise ValueError(f"{budget!r} holds no lane")
    return n_fixed, n_sp2, n_sp2 / (n_fixed + n_sp2)


# --- the quantized matrix -------------------------------------------------------------------


def _weight_fmt(sp2_fmt: SP2Format, fix_fmt: FixedFormat) -> FixedFormat:
    """Signed format of the weight integers aligned to ``w_frac``."""
    w_frac = max(sp2_fmt.frac, fix_fmt.frac)
    hi = max(sp2_fmt.max_level_int << (w_frac - sp2_fmt.frac),
             fix_fmt.max_int << (w_frac - fix_fmt.frac))
    lo = min(-(sp2_fmt.max_level_int << (w_frac - sp2_fmt.frac)),
             fix_fmt.min_int << (w_frac - fix_fmt.frac))
    width = max((-lo - 1).bit_length(), hi.bit_length()) + 1
    if width > 64:
        raise ValueError(f"{sp2_fmt!r} and {fix_fmt!r} need {width}-bit weight integers, "
                         f"more than 64")
    return FixedFormat(width, w_frac)


@dataclass(frozen=True, eq=False)
class QuantizedMatrix:
    """A weight matrix with SP2 rows and fixed-point rows, each with its own scale.

    Parameters
    ----------
    codes : array_like of int, shape (rows, cols)
        SP2 codes (of ``sp2_fmt``) in SP2 rows, fixed-point codes (of ``fix_fmt``) in fixed rows.
    sp2_rows : array_like of bool, shape (rows,)
        Which rows are SP2.
    alpha : array_like of int, shape (rows,)
        Per-row scale codes of ``alpha_fmt``.
    alpha_fmt : FixedFormat
        Unsigned format of the scales.
    sp2_fmt : SP2Format
        Code format of the SP2 rows.
    fix_fmt : FixedFormat
        Signed code format of the fixed rows (``FixedFormat(m, m - 1)`` from
        :func:`quantize_matrix`).

    Raises
    ------
    TypeError, ValueError
        If a field has the wrong type, shape or range. The arrays are copied and made read-only.
    """

    codes: np.ndarray
    sp2_rows: np.ndarray
    alpha: np.ndarray
    alpha_fmt: FixedFormat
    sp2_fmt: SP2Format
    fix_fmt: FixedFormat

    def __post_init__(self) -> None:
        if not isinstance(self.sp2_fmt, SP2Format):
            raise TypeError(f"sp2_fmt must be an SP2Format, not {self.sp2_fmt!r}")
        for name in ("alpha_fmt", "fix_fmt"):
            if not isinstance(getattr(self, name), FixedFormat):
                raise TypeError(f"{name} must be a FixedFormat, not {getattr(self, name)!r}")
        if self.alpha_fmt.signed:
            raise ValueError(f"alpha_fmt must be unsigned, not {self.alpha_fmt!r}")
        if not self.fix_fmt.signed:
            raise ValueError(f"fix_fmt must be signed, not {self.fix_fmt!r}")
        _weight_fmt(self.sp2_fmt, self.fix_fmt)
        codes = np.asarray(self.codes)
        if codes.ndim != 2:
            raise ValueError(f"codes must be 2-D, not of shape {codes.shape}")
        sp2_rows = np.asarray(self.sp2_rows)
        if sp2_rows.dtype != np.bool_:
            raise TypeError(f"sp2_rows must hold bools, not an array of {sp2_rows.dtype}")
        if sp2_rows.shape != codes.shape[:1]:
            raise ValueError(
                f"sp2_rows must have shape {codes.shape[:1]}, not {sp2_rows.shape}"
            )
        alpha = self.alpha_fmt.check_codes(self.alpha, "alpha")
        if alpha.shape != codes.shape[:1]:
            raise ValueError(f"alpha must have shape {codes.shape[:1]}, not {alpha.shape}")
        codes = np.array(codes)  # a copy, so that freezing it leaves the caller's array alone
        self.sp2_fmt.check_codes(codes[sp2_rows], "codes of SP2 rows")
        self.fix_fmt.check_codes(codes[~sp2_rows], "codes of fixed rows")
        for name, arr in (("codes", codes.astype(np.int64)), ("sp2_rows", sp2_rows.copy()),
                          ("alpha", alpha.copy())):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)``."""
        return self.codes.shape

    @property
    def w_frac(self) -> int:
        """Common fraction bits of :meth:`weight_ints`: ``max(sp2_fmt.frac, fix_fmt.frac)``."""
        return max(self.sp2_fmt.frac, self.fix_fmt.frac)

    @property
    def weight_fmt(self) -> FixedFormat:
        """Signed format (``frac = w_frac``) that holds every possible weight integer."""
        return _weight_fmt(self.sp2_fmt, self.fix_fmt)

    def weight_ints(self) -> np.ndarray:
        """Exact weights before scaling, as integers with ``w_frac`` fraction bits.

        Returns
        -------
        numpy.ndarray of int64, shape (rows, cols)
        """
        w_frac = self.w_frac
        out = self.codes << (w_frac - self.fix_fmt.frac)
        sp2 = self.sp2_fmt.to_int(self.codes[self.sp2_rows]) << (w_frac - self.sp2_fmt.frac)
        out[self.sp2_rows] = sp2
        return out

    def alpha_values(self) -> np.ndarray:
        """The per-row scales as ``float64`` (exact)."""
        return self.alpha_fmt.to_float(self.alpha)

    def weights(self) -> np.ndarray:
        """The real matrix represented, ``alpha[r] * weight`` (``float64``).

        Exact whenever ``weight_fmt.width + alpha_fmt.width <= 54``, which holds for the default
        formats; otherwise each entry is rounded once.

        Returns
        -------
        numpy.ndarray of float64, shape (rows, cols)
        """
        prod = self.weight_ints().astype(np.float64) * self.alpha.astype(np.float64)[:, None]
        return np.ldexp(prod, -(self.w_frac + self.alpha_fmt.frac))


# --- scale search and row errors ------------------------------------------------------------


def _check_range_pair(value: object, name: str) -> tuple[float, float]:
    ok = isinstance(value, tuple) and len(value) == 2
    if ok:
        try:
            lo, hi = (check_real(v, name) for v in value)
        except (TypeError, ValueError):
            ok = False
        else:
            ok = 0.0 < lo <= hi < math.inf
    if not ok:
        raise ValueError(f"{name} must be a pair (lo, hi) with 0 < lo <= hi < inf, not {value!r}")
    return lo, hi


@dataclass(frozen=True)
class AlphaSearch:
    """How :func:`row_errors` searches the scale of each row (see the module docs).

    A scale is ``alpha = t * max|row| / top`` (``top``: the scheme's largest positive level);
    ``t`` is searched on a geometric grid of ``n_alphas`` points over the scheme's range, then
    on a finer geometric grid of ``n_alphas`` points spanning one coarse step either side of
    the best coarse point; then ``lloyd_steps`` Lloyd steps move the best scale to the
    least-squares scale of its levels (this may leave the range).

    Parameters
    ----------
    n_alphas : int
        Points of each of the two grids, at least 1 (1: only ``t = hi``).
    sp2_range : tuple of float
        ``(lo, hi)`` of ``t`` for SP2 rows. SP2 levels are sparse near the top (nothing between
        ``3/4`` and ``1``), so from ``m = 6`` the best scale often leaves the top level unused:
        ``hi`` defaults to 4.
    fixed_range : tuple of float
        ``(lo, hi)`` of ``t`` for fixed-point rows. ``t > 1`` only coarsens the step without
        clipping less, so ``hi`` defaults to 1.
    lloyd_steps : int
        Lloyd steps after the grids, at least 0.

    Raises
    ------
    TypeError
        If ``n_alphas`` or ``lloyd_steps`` is not an integer.
    ValueError
        If ``n_alphas < 1``, ``lloyd_steps < 0`` or a range is not ``0 < lo <= hi < inf``.
    """

    n_alphas: int = 32
    sp2_range: tuple[float, float] = (0.1, 4.0)
    fixed_range: tuple[float, float] = (0.1, 1.0)
    lloyd_steps: int = 4

    def __post_init__(self) -> None:
        n = check_int(self.n_alphas, "AlphaSearch n_alphas")
        if n < 1:
            raise ValueError(f"AlphaSearch n_alphas must be at least 1, not {self.n_alphas!r}")
        object.__setattr__(self, "n_alphas", n)
        steps = check_int(self.lloyd_steps, "AlphaSearch lloyd_steps")
        if steps < 0:
            raise ValueError(
                f"AlphaSearch lloyd_steps must be at least 0, not {self.lloyd_steps!r}"
            )
        object.__setattr__(self, "lloyd_steps", steps)
        for name in ("sp2_range", "fixed_range"):
            pair = _check_range_pair(getattr(self, name), f"AlphaSearch {name}")
            object.__setattr__(self, name, pair)


class RowErrors(NamedTuple):
    """Per-row squared quantization errors and the best scales, from :func:`row_errors`."""

    #: Squared error of each row under SP2, at its best scale (``float64``, shape (rows,)).
    sp2: np.ndarray
    #: Squared error of each row under fixed point, at its best scale.
    fixed: np.ndarray
    #: Best SP2 scale of each row (rounded to ``alpha_fmt`` if one was given).
    sp2_alpha: np.ndarray
    #: Best fixed-point scale of each row.
    fixed_alpha: np.ndarray


def _check_search(search: object) -> AlphaSearch:
    if search is None:
        return AlphaSearch()
    if not isinstance(search, AlphaSearch):
        raise TypeError(f"search must be an AlphaSearch, not {search!r}")
    return search


def _check_alpha_fmt(alpha_fmt: object) -> FixedFormat:
    if not isinstance(alpha_fmt, FixedFormat):
        raise TypeError(f"alpha_fmt must be a FixedFormat, not {alpha_fmt!r}")
    if alpha_fmt.signed:
        raise ValueError(f"alpha_fmt must be unsigned, not {alpha_fmt!r}")
    return alpha_fmt


def default_alpha_fmt(
    w: npt.ArrayLike, m: int, *, m1: int | None = None, search: AlphaSearch | None = None
) -> FixedFormat:
    """The default scale format of :func:`quantize_matrix` for the matrix ``w``.

    Unsigned :data:`ALPHA_WIDTH`-bit, with the largest ``frac`` for which the largest candidate
    scale of the search (``hi * max|w| / top`` over both schemes) rounds to a code that fits:
    the largest scales keep all 16 significant bits, smaller ones lose leading bits. An
    all-zero matrix gets ``frac = 0``.

    Parameters
    ----------
    w : array_like of float, shape (rows, cols)
    m : int
    m1 : int, optional
    search : AlphaSearch, optional

    Returns
    -------
    FixedFormat
    """
    arr = _check_matrix(w)
    search = _check_search(search)
    sp2_fmt, fix_fmt = SP2Format(m, m1), _fix_fmt(m)
    amax = float(np.abs(arr).max()) if arr.size else 0.0
    top_sp2, top_fix = _top_levels(sp2_fmt, fix_fmt)
    biggest = max(amax * search.sp2_range[1] / top_sp2, amax * search.fixed_range[1] / top_fix)
    if biggest == 0.0:
        return FixedFormat(ALPHA_WIDTH, 0, signed=False)
    frac = ALPHA_WIDTH - math.frexp(biggest)[1]  # biggest * 2**frac in [2**15, 2**16)
    if round(math.ldexp(biggest, frac)) > (1 << ALPHA_WIDTH) - 1:
        frac -= 1
    return FixedFormat(ALPHA_WIDTH, max(-256, min(256, frac)), signed=False)


def _round_alpha(alpha: np.ndarray, alpha_fmt: FixedFormat | None) -> np.ndarray:
    if alpha_fmt is None:
        return alpha
    return alpha_fmt.to_float(alpha_fmt.from_float(alpha))


def _lloyd(x: np.ndarray, q: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Least-squares scale for fixed unscaled levels ``q``: ``sum(x*q) / sum(q*q)`` per row."""
    num = np.einsum("ij,ij->i", x, q)
    den = np.einsum("ij,ij->i", q, q)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), alpha)


def _sp2_err(absw: np.ndarray, alpha: np.ndarray, sp2_fmt: SP2Format, buf: np.ndarray,
             ibuf: np.ndarray, lloyd: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Squared error per row of SP2 quantization of ``|w|`` with per-row ``alpha``.

    Rounds as :meth:`SP2Format.quantize` (the same level lookup); a zero ``alpha`` quantizes the
    row to zero. With ``lloyd``, also returns the Lloyd update of ``alpha``. ``buf`` (float64)
    and ``ibuf`` (intp), shaped like ``absw``, are scratch space: in-place passes avoid
    allocating a matrix per step, several times faster.
    """
    a = alpha[:, None]
    np.divide(absw, np.where(a > 0, a, 1.0), out=buf)
    t = sp2_fmt._tables
    if "lut_levels" in t:
        buf *= float(1 << (sp2_fmt.shift + 1))
        np.minimum(buf, float(t["lut"].shape[0] - 1), out=buf)
        np.ceil(buf, out=buf)
        np.copyto(ibuf, buf, casting="unsafe")
        np.take(t["lut_levels"], ibuf, out=buf)
    else:
        np.take(t["levels"], _level_index(buf, t, sp2_fmt.shift), out=buf)
    update = _lloyd(absw, buf, alpha) if lloyd else None
    buf *= a
    np.subtract(absw, buf, out=buf)
    return np.einsum("ij,ij->i", buf, buf), update


def _fix_err(w: np.ndarray, alpha: np.ndarray, fmt: FixedFormat, buf: np.ndarray,
             lloyd: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Squared error per row of fixed-point quantization, as ``fmt.from_float(w / alpha)``.

    With ``lloyd``, also returns the Lloyd update of ``alpha``. ``buf`` is scratch space like
    ``w``. Scaling by powers of two is exact.
    """
    a = alpha[:, None]
    np.divide(w, np.where(a > 0, a, 1.0), out=buf)
    buf *= 2.0**fmt.frac
    np.rint(buf, out=buf)
    np.maximum(buf, float(fmt.min_int), out=buf)
    np.minimum(buf, float(fmt.max_int), out=buf)
    buf *= 2.0**-fmt.frac
    update = _lloyd(w, buf, alpha) if lloyd else None
    buf *= a
    np.subtract(w, buf, out=buf)
    return np.einsum("ij,ij->i", buf, buf), update


def _search(err_fn, amax_over_top: np.ndarray, search: AlphaSearch,
            t_range: tuple[float, float],
            alpha_fmt: FixedFormat | None) -> tuple[np.ndarray, np.ndarray]:
    """Grid, fine grid and Lloyd steps (see :class:`AlphaSearch`); best (error, alpha) per row."""
    lo, hi = t_range
    n = search.n_alphas
    rows = amax_over_top.shape[0]
    best_err = np.full(rows, np.inf)
    best_alpha = np.zeros(rows)
    best_t = np.full(rows, hi)

    def consider(alpha: np.ndarray, t: np.ndarray | None = None) -> None:
        alpha = _round_alpha(alpha, alpha_fmt)
        err = err_fn(alpha, False)[0]
        better = err < best_err
        best_err[better] = err[better]
        best_alpha[better] = alpha[better]
        if t is not None:
            best_t[better] = t[better]

    coarse = np.geomspace(lo, hi, n) if n > 1 else np.array([hi])
    for t in coarse:
        consider(t * amax_over_top, np.full(rows, t))
    ratio = (hi / lo) ** (1.0 / (n - 1)) if n > 1 else 1.0
    if ratio > 1.0:
        centre = best_t.copy()
        for u in np.linspace(-1.0, 1.0, n):
            t = np.clip(centre * ratio**u, lo, hi)
            consider(t * amax_over_top, t)
    for _ in range(search.lloyd_steps):
        consider(err_fn(best_alpha, True)[1])
    return best_err, best_alpha


def row_errors(
    w: npt.ArrayLike,
    m: int,
    *,
    m1: int | None = None,
    alpha_fmt: FixedFormat | None = None,
    search: AlphaSearch | None = None,
) -> RowErrors:
    """Per-row squared quantization error under SP2 and under fixed point, each at its best scale.

    Each row and scheme gets the scale with the least squared error among the candidates of
    ``search`` (see :class:`AlphaSearch`). Rows are independent, so the errors are additive.

    Parameters
    ----------
    w : array_like of float, shape (rows, cols)
        The weight matrix.
    m : int
        Bit width of both schemes: ``SP2Format(m, m1)`` and ``FixedFormat(m, m - 1)``.
    m1 : int, optional
        SP2 split, as for :class:`~sw_model.numerics.sp2.SP2Format`.
    alpha_fmt : FixedFormat, optional
        Unsigned scale format; candidates are rounded to it before they are scored, so the
        errors are those of the final matrix. ``None`` scores unrounded scales.
    search : AlphaSearch, optional
        The candidate scales; default ``AlphaSearch()``.

    Returns
    -------
    RowErrors

    Raises
    ------
    TypeError, ValueError
        For a bad matrix, format or search.
    """
    arr = _check_matrix(w)
    sp2_fmt, fix_fmt = SP2Format(m, m1), _fix_fmt(m)
    if alpha_fmt is not None:
        _check_alpha_fmt(alpha_fmt)
    search = _check_search(search)
    amax = np.abs(arr).max(axis=1) if arr.shape[1] else np.zeros(arr.shape[0])
    top_sp2, top_fix = _top_levels(sp2_fmt, fix_fmt)
    absw = np.abs(arr)
    buf, ibuf = np.empty_like(arr), np.empty(arr.shape, dtype=np.intp)
    e_sp2, a_sp2 = _search(lambda a, ll: _sp2_err(absw, a, sp2_fmt, buf, ibuf, ll), amax / top_sp2,
                           search, search.sp2_range, alpha_fmt)
    e_fix, a_fix = _search(lambda a, ll: _fix_err(arr, a, fix_fmt, buf, ll), amax / top_fix,
                           search, search.fixed_range, alpha_fmt)
    return RowErrors(e_sp2, e_fix, a_sp2, a_fix)


def _check_choice(sp2_ratio: object, budget: object) -> float:
    if (sp2_ratio is None) == (budget is None):
        raise ValueError("exactly one of sp2_ratio and budget must be given")
    if budget is not None:
        return fill_ratio(budget)[2]
    return check_real(sp2_ratio, "sp2_ratio", minimum=0, maximum=1)


def _select(errors: RowErrors, n_sp2: int) -> np.ndarray:
    """The ``n_sp2`` rows with the largest gain ``fixed - sp2`` (ties: lower index first)."""
    gain = errors.fixed - errors.sp2
    order = np.argsort(-gain, kind="stable")
    mask = np.zeros(gain.shape[0], dtype=bool)
    mask[order[:n_sp2]] = True
    return mask


def assign_rows(
    w: npt.ArrayLike,
    m: int,
    *,
    sp2_ratio: float | None = None,
    budget: LaneBudget | None = None,
    m1: int | None = None,
    alpha_fmt: FixedFormat | None = None,
    search: AlphaSearch | None = None,
) -> np.ndarray:
    """Choose the SP2 rows: ``round(ratio * rows)`` of them, with the least total error.

    Exactly one of ``sp2_ratio`` and ``budget`` must be given; a budget gives the ratio of
    :func:`fill_ratio`. The rows with the largest error reduction from SP2 are chosen, which
    minimises the total squared error for that count (see the module docs).

    Parameters
    ----------
    w : array_like of float, shape (rows, cols)
    m : int
    sp2_ratio : float, optional
        Fraction of SP2 rows, from 0 to 1.
    budget : LaneBudget, optional
    m1, alpha_fmt, search
        As for :func:`row_errors`. :func:`quantize_matrix` passes its ``alpha_fmt``, so pass
        :func:`default_alpha_fmt` here to get its assignment.

    Returns
    -------
    numpy.ndarray of bool, shape (rows,)
        The SP2 rows.

    Raises
    ------
    ValueError
        If both or neither of ``sp2_ratio`` and ``budget`` are given, or a ratio is out of range.
    """
    ratio = _check_choice(sp2_ratio, budget)
    errors = row_errors(w, m, m1=m1, alpha_fmt=alpha_fmt, search=search)
    return _select(errors, round(ratio * errors.sp2.shape[0]))


def quantize_matrix(
    w: npt.ArrayLike,
    m: int,
    *,
    sp2_ratio: float | None = None,
    budget: LaneBudget | None = None,
    alpha_fmt: FixedFormat | None = None,
    m1: int | None = None,
    search: AlphaSearch | None = None,
) -> QuantizedMatrix:
    """Quantize ``w`` with mixed schemes: row assignment, per-row scales and codes.

    Parameters
    ----------
    w : array_like of float, shape (rows, cols)
    m : int
        Bit width of both schemes.
    sp2_ratio, budget
        As for :func:`assign_rows` (exactly one).
    alpha_fmt : FixedFormat, optional
        Unsigned scale format; default :func:`default_alpha_fmt`.
    m1, search
        As for :func:`row_errors`.

    Returns
    -------
    QuantizedMatrix
        With ``fix_fmt = FixedFormat(m, m - 1)`` and codes chosen for the quantized scales.

    Raises
    ------
    TypeError, ValueError
        As for :func:`assign_rows` and :func:`row_errors`.
    """
    ratio = _check_choice(sp2_ratio, budget)
    arr = _check_matrix(w)
    search = _check_search(search)
    if alpha_fmt is None:
        alpha_fmt = default_alpha_fmt(arr, m, m1=m1, search=search)
    errors = row_errors(arr, m, m1=m1, alpha_fmt=alpha_fmt, search=search)
    sp2_rows = _select(errors, round(ratio * arr.shape[0]))
    sp2_fmt, fix_fmt = SP2Format(m, m1), _fix_fmt(m)
    alpha = np.where(sp2_rows, errors.sp2_alpha, errors.fixed_alpha)
    alpha_q = alpha_fmt.from_float(alpha)  # exact: the search already rounded the scales
    a = alpha_fmt.to_float(alpha_q)[:, None]
    codes = np.zeros(arr.shape, dtype=np.int64)
    live = a[:, 0] > 0  # a zero scale makes the row zero: its codes stay 0
    s, f = sp2_rows & live, ~sp2_rows & live
    codes[s] = sp2_fmt.quantize(arr[s], a[s])
    codes[f] = fix_fmt.from_float(arr[f] / a[f])
    return QuantizedMatrix(codes, sp2_rows, alpha_q, alpha_fmt, sp2_fmt, fix_fmt)


# --- the golden mixed product ---------------------------------------------------------------


def matvec(
    qm: QuantizedMatrix,
    x_q: npt.ArrayLike,
    x_fmt: FixedFormat,
    out_fmt: FixedFormat,
    rounding: Rounding = "half_even",
    overflow: Overflow = "saturate",
) -> np.ndarray:
    """The exact mixed-scheme matrix-vector product, rounded once per output.

    ``y_r = requantize(alpha[r] * sum_j x_q[..., j] * weight_ints[r, j],
    x_fmt.frac + w_frac + alpha_fmt.frac, out_fmt, rounding, overflow)``; everything before the
    final rounding is exact integer arithmetic (see the module docs).

    Parameters
    ----------
    qm : QuantizedMatrix
    x_q : array_like of int, shape (..., cols)
        Activation codes of ``x_fmt``; leading axes are a batch.
    x_fmt, out_fmt : FixedFormat
        Activation and result formats.
    rounding, overflow : str
        As for :func:`sw_model.numerics.fixed.requantize`.

    Returns
    -------
    numpy.ndarray of int64, shape (..., rows)
        ``out_fmt`` codes.

    Raises
    ------
    TypeError, ValueError
        For a bad argument, codes outside ``x_fmt`` or a column count that does not match.
    """
    if not isinstance(qm, QuantizedMatrix):
        raise TypeError(f"qm must be a QuantizedMatrix, not {qm!r}")
    for name, fmt in (("x_fmt", x_fmt), ("out_fmt", out_fmt)):
        if not isinstance(fmt, FixedFormat):
            raise TypeError(f"{name} must be a FixedFormat, not {fmt!r}")
    check_rounding(rounding)
    check_overflow(overflow)
    x = x_fmt.check_codes(x_q, "x_q")
    rows, cols = qm.shape
    if x.ndim == 0 or x.shape[-1] != cols:
        got = "no axis" if x.ndim == 0 else f"{x.shape[-1]} columns"
        raise ValueError(f"x_q must have {cols} columns (the matrix's), not {got}")
    batch = x.shape[:-1]
    w_fmt = qm.weight_fmt
    acc = exact_matmul(x.reshape(-1, cols), qm.weight_ints().T, x_fmt, w_fmt)
    alpha = qm.alpha
    xmax = max(-x_fmt.min_int, x_fmt.max_int)
    wmax = max(-w_fmt.min_int, w_fmt.max_int)
    bound = xmax * wmax * max(cols, 1) * qm.alpha_fmt.max_int
    if acc.dtype == object or bound >= (1 << 62):
        acc, alpha = acc.astype(object), alpha.astype(object)
    prod = acc * alpha[None, :]
    y = requantize(prod, x_fmt.frac + qm.w_frac + qm.alpha_fmt.frac, out_fmt, rounding, overflow)
    return y.reshape(*batch, rows)


# --- accuracy -------------------------------------------------------------------------------


def quantization_error(w: npt.ArrayLike, qm: QuantizedMatrix) -> float:
    """Relative Frobenius error ``||w - qm.weights()|| / ||w||`` (0 for a zero ``w`` and error).

    Raises
    ------
    ValueError
        If the shapes differ.
    """
    arr = _check_matrix(w)
    if not isinstance(qm, QuantizedMatrix):
        raise TypeError(f"qm must be a QuantizedMatrix, not {qm!r}")
    if arr.shape != qm.shape:
        raise ValueError(f"W has shape {arr.shape} but qm has shape {qm.shape}")
    err = float(np.linalg.norm(arr - qm.weights()))
    norm = float(np.linalg.norm(arr))
    if norm == 0.0:
        return 0.0 if err == 0.0 else math.inf
    return err / norm


def best_sp2_ratio(
    w: npt.ArrayLike,
    m: int,
    *,
    m1: int | None = None,
    alpha_fmt: FixedFormat | None = None,
    search: AlphaSearch | None = None,
) -> float:
    """The SP2 row ratio with the least total error: the share of rows where SP2 is better.

    Parameters
    ----------
    w : array_like of float, shape (rows, cols)
    m : int
    m1, search
        As for :func:`row_errors`.
    alpha_fmt : FixedFormat, optional
        Default :func:`default_alpha_fmt`, as in :func:`quantize_matrix`.

    Returns
    -------
    float
        ``count(sp2 error < fixed error) / rows`` (0 for a matrix without rows).
    """
    arr = _check_matrix(w)
    if alpha_fmt is None:
        alpha_fmt = default_alpha_fmt(arr, m, m1=m1, search=search)
    errors = row_errors(arr, m, m1=m1, alpha_fmt=alpha_fmt, search=search)
    rows = arr.shape[0]
    return float(np.count_nonzero(errors.sp2 < errors.fixed)) / rows if rows else 0.0


class SchemeErrors(NamedTuple):
    """Relative Frobenius errors of the schemes at one bit width, from :func:`compare_schemes`."""

    #: Every row fixed point.
    fixed: float
    #: Every row SP2.
    sp2: float
    #: Mixed, with ``msq_ratio`` of the rows SP2.
    msq: float
    #: The SP2 row ratio used for ``msq``.
    msq_ratio: float


def compare_schemes(
    w: npt.ArrayLike,
    m: int,
    *,
    sp2_ratio: float | None = None,
    budget: LaneBudget | None = None,
    m1: int | None = None,
    alpha_fmt: FixedFormat | None = None,
    search: AlphaSearch | None = None,
) -> SchemeErrors:
    """Relative errors of fixed-only, SP2-only and MSQ quantization at equal bit width ``m``.

    MSQ uses ``sp2_ratio`` or ``budget`` if one is given, else :func:`best_sp2_ratio`. All
    three use the same scale format (default :func:`default_alpha_fmt`) and search.

    Returns
    -------
    SchemeErrors
    """
    arr = _check_matrix(w)
    if alpha_fmt is None:
        alpha_fmt = default_alpha_fmt(arr, m, m1=m1, search=search)
    if sp2_ratio is None and budget is None:
        ratio = best_sp2_ratio(arr, m, m1=m1, alpha_fmt=alpha_fmt, search=search)
    else:
        ratio = _check_choice(sp2_ratio, budget)

    def err(r: float) -> float:
        qm = quantize_matrix(arr, m, sp2_ratio=r, alpha_fmt=alpha_fmt, m1=m1, search=search)
        return quantization_error(arr, qm)

    return SchemeErrors(err(0.0), err(1.0), err(ratio), ratio)
