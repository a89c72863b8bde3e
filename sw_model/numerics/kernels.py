"""Compiled one-pass kernels for the fixed-point optimizer (Adam and the soft update).

The NumPy formulation of a fixed-point Adam step (:func:`sw_model.numerics.optim.adam_fixed`)
takes about fifty array passes per tensor: every rounding, clamp and square-root correction is
a separate NumPy operation over the whole tensor. These kernels do the same integer arithmetic
element by element in one compiled loop (Numba, which NumPy cannot do: it has no fused
elementwise integer kernels), so a step over FIXAR-sized networks costs one pass over the
weights instead of fifty.

Every operation is the one the module docs of :mod:`sw_model.numerics.optim` define, in
``int64``, with the same bounds: the results equal the NumPy path's bit for bit (the tests
compare the two, and both with Python integers). A kernel returns ``False`` when a value leaves
the range where ``int64`` is exact (a step size so large that ``2 * lr_t * m`` passes
``2**62``); the caller then takes the NumPy path, which keeps those steps exact with Python
integers.

Kernels are compiled on first use and cached on disk (Numba's ``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["adam_step", "soft_update"]

_LIMIT = 1 << 62


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _rounded(q: int, dropped: int, shift: int, rounding: int) -> int:  # pragma: no cover
    """``q``, a floor, plus the rounding increment of its ``shift`` dropped bits
    ``0 <= dropped < 2**shift`` (0 floor, 1 half up, 2 half even): the compiled twin of
    :func:`sw_model.numerics.fixed._round_dropped`."""
    first = dropped >> (shift - 1)
    if rounding == 1:
        return q + first
    if rounding == 2:
        return q + (first & (((dropped & ((1 << (shift - 1)) - 1)) != 0) | (q & 1)))
    return q


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _mul_shift16(x: int, c: int) -> int:  # pragma: no cover - compiled
    """``round_half_even(x * c / 2**16)`` for ``|x| < 2**62``, ``0 <= c <= 2**16``."""
    low = (x & 0xFFFF) * c
    return _rounded((x >> 16) * c + (low >> 16), low & 0xFFFF, 16, 2)


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _isqrt(a: int) -> int:  # pragma: no cover - compiled
    """Exact floor square root of ``0 <= a < 2**62`` (a float64 estimate is within one)."""
    s = np.int64(np.sqrt(np.float64(a)))
    s -= s * s > a
    return s + ((s + 1) * (s + 1) <= a)


@njit(cache=True, nogil=True, error_model="numpy")
def adam_step(w: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, c1: int, c2: int,
              eps_q: int, lr_t: int, lr_extra: int, g_min: int, g_max: int, v_max: int,
              w_min: int, w_max: int, w_out: np.ndarray, m_out: np.ndarray,
              v_out: np.ndarray) -> bool:  # pragma: no cover - compiled
    """One fixed-point Adam step over flat ``int64`` arrays; ``False`` if ``int64`` is too narrow.

    The arithmetic of :func:`sw_model.numerics.optim.adam_fixed` (module docs there), written
    into ``w_out``, ``m_out`` and ``v_out``. ``2 * lr_t * m + den`` stays below ``2**62`` for
    every ``|m| <= m_lim``, ``m_lim`` computed once from the largest possible ``den``; if a
    first moment is larger the kernel returns ``False`` and ``w_out`` is not to be used.

    Three short loops (moments; square roots into ``w_out``; step) run about four times
    faster than one fused loop: each keeps its dependency chain short (square root, then
    division) so the processor overlaps iterations.
    """
    den_max = (_isqrt(v_max) + eps_q) << lr_extra
    m_lim = (_LIMIT - 1 - den_max) // (2 * lr_t) if lr_t > 0 else _LIMIT
    n = w.shape[0]
    bad = 0
    for i in range(n):
        gi = g[i]
        mi = m[i]
        vi = v[i]
        mn = min(max(mi + _mul_shift16(gi - mi, c1), g_min), g_max)
        bad |= abs(mn) > m_lim
        m_out[i] = mn
        g2 = min(gi * gi, v_max)
        v_out[i] = min(max(vi + _mul_shift16(g2 - vi, c2), 0), v_max)
    if bad:
        return False
    for i in range(n):
        w_out[i] = (_isqrt(v_out[i]) + eps_q) << lr_extra
    if _step_float(w, m_out, lr_t, w_min, w_max, w_out):
        return True
    for i in range(n):  # a quotient or divisor beyond the float estimate's range: redo exactly
        den = (_isqrt(v_out[i]) + eps_q) << lr_extra
        u = (2 * lr_t * m_out[i] + den) // (2 * den)
        w_out[i] = min(max(w[i] - u, w_min), w_max)
    return True


@njit(cache=True, nogil=True, error_model="numpy")
def _step_float(w: np.ndarray, m: np.ndarray, lr_t: int, w_min: int, w_max: int,
                w_out: np.ndarray) -> bool:  # pragma: no cover - compiled
    """Adam's ``w_out = sat_w(w - floor((2 * lr_t * m + D) / (2 * D)))``, ``D = w_out`` on entry.

    The floor of a quotient ``N / E`` (``|N| < 2**62``, ``0 < E``) is taken from a ``float64``
    quotient, floored: within one of the exact floor while it is below ``2**50`` (three
    roundings of at most ``2**-53`` relative each), then corrected by the sign of the exact
    remainder ``N - q * E`` (``int64`` for ``E < 2**60``). About twice as fast as ``//`` on
    ``int64``. Returns ``False`` if a quotient or divisor was beyond that range (``w_out`` is
    then not to be used).
    """
    bad = False
    for i in range(w.shape[0]):
        den = w_out[i]
        num = 2 * lr_t * m[i] + den
        d2 = 2 * den
        qf = np.floor(np.float64(num) / np.float64(d2))
        bad |= (abs(qf) >= 1125899906842624.0) | (d2 >= 1 << 60)  # 2**50
        q = np.int64(qf)
        r = num - q * d2
        q = q - (r < 0) + (r >= d2)
        w_out[i] = min(max(w[i] - q, w_min), w_max)
    return not bad


@njit(cache=True, nogil=True, error_model="numpy")
def soft_update(t: np.ndarray, w: np.ndarray, tau_q: int, w_min: int, w_max: int,
                out: np.ndarray) -> None:  # pragma: no cover - compiled
    """``out = sat_w(t + mul_shift(w - t, tau_q, 16, "half_even"))`` over flat ``int64`` arrays."""
    for i in range(t.shape[0]):
        ti = t[i]
        out[i] = min(max(ti + _mul_shift16(w[i] - ti, tau_q), w_min), w_max)


@njit(cache=True, nogil=True, error_model="numpy")
def min_max(x: np.ndarray) -> tuple[int, int]:  # pragma: no cover - compiled
    """``(min, max)`` of a non-empty flat ``int64`` array in one pass."""
    lo = x[0]
    hi = x[0]
    for i in range(1, x.shape[0]):
        xi = x[i]
        lo = min(lo, xi)
        hi = max(hi, xi)
    return lo, hi


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _round_clamp(x: int, shift: int, rounding: int, lo: int,
                 hi: int) -> int:  # pragma: no cover - compiled
    """``clamp(round(x / 2**shift), lo, hi)`` (:func:`_rounded`)."""
    return min(max(_rounded(x >> shift, x & ((1 << shift) - 1), shift, rounding), lo), hi)


@njit(cache=True, nogil=True, error_model="numpy")
def shift_round_clamp(x: np.ndarray, shift: int, rounding: int, lo: int, hi: int,
                      out: np.ndarray) -> None:  # pragma: no cover - compiled
    """``out = clamp(round(x / 2**shift), lo, hi)`` over flat ``int64``, ``1 <= shift <= 62``.

    ``rounding``: 0 floor, 1 half up, 2 half even (:func:`sw_model.numerics.fixed.shift_round`),
    read from the first dropped bit and whether any bit below it is set, so nothing leaves
    ``int64``.
    """
    for i in range(x.shape[0]):
        out[i] = _round_clamp(x[i], shift, rounding, lo, hi)


@njit(cache=True, nogil=True, error_model="numpy")
def adam_float_step(w: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, beta1: float,
                    one_minus_beta1: float, beta2: float, one_minus_beta2: float, bc1: float,
                    bc2: float, lr: float, eps: float, w_out: np.ndarray, m_out: np.ndarray,
                    v_out: np.ndarray) -> None:  # pragma: no cover - compiled
    """One Adam step (PyTorch's formula) over flat float arrays, in their dtype.

    The operations and their order are those of :func:`sw_model.numerics.optim.adam_float`
    (``m_hat = m / bc1``, ``v_hat = v / bc2``, ``w - lr * m_hat / (sqrt(v_hat) + eps)``), with
    the scalars given in the arrays' dtype, so the results are the same values.
    """
    for i in range(w.shape[0]):
        gi = g[i]
        mn = beta1 * m[i] + one_minus_beta1 * gi
        vn = beta2 * v[i] + one_minus_beta2 * gi * gi
        w_out[i] = w[i] - lr * (mn / bc1) / (np.sqrt(vn / bc2) + eps)
        m_out[i] = mn
        v_out[i] = vn


@njit(cache=True, nogil=True, error_model="numpy")
def soft_update_float(t: np.ndarray, w: np.ndarray, tau: float,
                      out: np.ndarray) -> None:  # pragma: no cover - compiled
    """``out = t + tau * (w - t)`` over flat float arrays, in their dtype."""
    for i in range(t.shape[0]):
        out[i] = t[i] + tau * (w[i] - t[i])


@njit(cache=True, nogil=True, error_model="numpy")
def requantize_product(p: np.ndarray, addend: np.ndarray, addend_shift: int, shift: int,
                       rounding: int, lo: int, hi: int,
                       out: np.ndarray) -> None:  # pragma: no cover - compiled
    """``out = clamp(round((p + (addend << addend_shift)) / 2**shift), lo, hi)``, one pass.

    ``p`` is a ``(m, k)`` ``float64`` matrix product whose entries are integers below
    ``2**53`` (exact); ``addend`` is empty or one ``int64`` per column; the sums fit in 62 bits
    and ``1 <= shift <= 62``. Rounding as :func:`shift_round_clamp`.
    """
    k = p.shape[1]
    with_addend = addend.shape[0] > 0
    for i in range(p.shape[0]):
        for j in range(k):
            x = np.int64(p[i, j])
            if with_addend:
                x += addend[j] << addend_shift
            out[i, j] = _round_clamp(x, shift, rounding, lo, hi)


@njit(cache=True, nogil=True, error_model="numpy")
def shift_activate(z: np.ndarray, in_lo: int, in_hi: int, relu: bool, shift: int, left: int,
                   rounding: int, lo: int, hi: int,
                   out: np.ndarray) -> bool:  # pragma: no cover - compiled
    """ReLU or identity of flat ``int64`` codes, requantized and saturated, in one pass.

    ``out = clamp(round(max(z, 0) * 2**(left - shift)), lo, hi)`` (``max`` only with
    ``relu``), with ``0 <= shift <= 62`` bits dropped (rounding as :func:`shift_round_clamp`)
    or ``0 <= left`` bits gained (one of the two is 0; the caller ensures that every code of
    ``[in_lo, in_hi]`` shifted left stays within ``int64``). Returns ``False``, with ``out``
    not to be used, when a code lies outside ``[in_lo, in_hi]``.
    """
    bad = False
    for i in range(z.shape[0]):
        x = z[i]
        bad |= (x < in_lo) | (x > in_hi)
        if relu:
            x = max(x, 0)
        if shift > 0:
            out[i] = _round_clamp(x, shift, rounding, lo, hi)
        else:
            out[i] = min(max(x << left, lo), hi)
    return not bad


@njit(cache=True, nogil=True, error_model="numpy")
def table_lookup(z: np.ndarray, in_lo: int, in_hi: int, entries: np.ndarray, shift: int,
                 out: np.ndarray) -> bool:  # pragma: no cover - compiled
    """``out = sign(z) * entries[min(|z| >> shift, len(entries) - 1)]`` over flat ``int64``.

    The tanh table of :class:`sw_model.numerics.activation.TanhTable` (``in_lo > -2**63`` so
    that ``|z|`` exists). Returns ``False``, with ``out`` not to be used, when a code lies
    outside ``[in_lo, in_hi]``.
    """
    last = entries.shape[0] - 1
    bad = False
    for i in range(z.shape[0]):
        x = z[i]
        bad |= (x < in_lo) | (x > in_hi)
        y = entries[min(abs(x) >> shift, last)]
        out[i] = -y if x < 0 else (y if x > 0 else 0)
    return not bad


@njit(cache=True, nogil=True, error_model="numpy")
def step_where(z: np.ndarray, z_lo: int, z_hi: int, y: np.ndarray, y_lo: int, y_hi: int,
               one: int, out: np.ndarray) -> bool:  # pragma: no cover - compiled
    """``out = one if z > 0 else 0`` (ReLU's derivative) over flat ``int64``, checking ranges.

    Returns ``False``, with ``out`` not to be used, when a code of ``z`` lies outside
    ``[z_lo, z_hi]`` or one of ``y`` (same length, may be ``z`` itself) outside
    ``[y_lo, y_hi]``.
    """
    bad = False
    for i in range(z.shape[0]):
        x = z[i]
        yi = y[i]
        bad |= (x < z_lo) | (x > z_hi) | (yi < y_lo) | (yi > y_hi)
        out[i] = one if x > 0 else 0
    return not bad
