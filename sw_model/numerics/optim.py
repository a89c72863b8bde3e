"""Adam and target-network soft updates, in floating point and in integer fixed point.

Floating point
--------------
:func:`adam_float` is PyTorch's Adam (no weight decay, no AMSGrad) and :func:`soft_update_float`
is Polyak averaging ``t <- t + tau * (w - t)``.

Fixed point
-----------
Integer only, so that the on-chip update unit reproduces every code. Constants are turned into
integer codes once (:class:`FixedAdamConstants`); nothing in an update step uses floating point.
With ``F = BETA_FRAC = 16``:

``mul_shift(x, c, F, rounding)``
    ``round(x * c / 2**F)`` exactly, for ``int64`` ``|x| < 2**62`` and ``0 <= c <= 2**F``
    (the product is split into ``(x >> F) * c`` and ``(x mod 2**F) * c`` so that no
    intermediate exceeds 62 bits). All exponential moving averages below are
    ``a <- a + mul_shift(b - a, c, F, "half_even")``, with ``c = round((1 - beta) * 2**F)``.
Moments
    ``m`` has the gradient format ``g_fmt``; ``v`` has ``v_fmt = FixedFormat(63, 2 * g_fmt.frac)``,
    which holds ``g**2`` exactly (saturated only for ``g = g_fmt.min_int`` of a 32-bit
    format)::

        m <- sat_g(m + mul_shift(g - m, c1, F, "half_even"))
        v <- sat_v(v + mul_shift(sat_v(g * g) - v, c2, F, "half_even"))

Step size
    ``lr_t`` is a code with ``w_fmt.frac + LR_EXTRA`` fraction bits (``LR_EXTRA = 16``) from a
    table (:func:`lr_table`):
    ``lr_t = floor(lr_q * isqrt((2**62 - p2_t) * 2**62) / (2**62 - p1_t))`` with
    ``lr_q = round(lr * 2**(w.frac + LR_EXTRA))`` and ``p_t = beta**t`` as 62-bit fractions
    computed by the
    recurrence ``p_0 = 2**62``, ``p_t = floor(p_{t-1} * (2**F - c) / 2**F)``; i.e. Adam's
    bias correction ``lr * sqrt(1 - beta2**t) / (1 - beta1**t)`` (with the quantized betas),
    floored. The table has ``bias_steps`` entries; steps beyond it use the last one (the
    correction is then within ``beta2**bias_steps / 2`` of 1, relatively).
Update
    ``s = isqrt(v)`` (exact floor square root, :func:`isqrt_codes`; ``g_fmt.frac`` fraction
    bits), ``den = s + eps_q`` with ``eps_q = max(1, round(eps * 2**g.frac))`` (so ``den >= 1``),
    ``D = den * 2**LR_EXTRA`` and ``u = floor((2 * lr_t * m + D) / (2 * D))``: the ``w_fmt``
    code of ``lr * m_hat / (sqrt(v_hat) + eps)`` rounded half up. Then ``w <- sat_w(w - u)``.
SGD
    ``u = round_half_up(lr_q * g / 2**(g_fmt.frac + LR_EXTRA))``, computed exactly as
    ``floor((2 * lr_q * g + 2**S) / 2**(S + 1))`` with ``S = g_fmt.frac + LR_EXTRA`` (and as
    ``lr_q * g * 2**-S`` when ``S <= 0``), then ``w <- sat_w(w - u)``; ``lr_q`` is the step-size
    code of Adam, ``round(lr * 2**(w_fmt.frac + LR_EXTRA))`` (:func:`sgd_fixed`).
Soft update
    ``t <- sat_w(t + mul_shift(w - t, tau_q, F, "half_even"))``, ``tau_q = round(tau * 2**F)``.

The float constants are converted with Python's ``round`` (half-even, exact on IEEE doubles),
so the codes are the same on every platform.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sw_model.numerics import kernels
from sw_model.numerics.fixed import FixedFormat, Rounding, _round_dropped, check_rounding

__all__ = [
    "BETA_FRAC",
    "LR_EXTRA",
    "FixedAdamConstants",
    "adam_fixed",
    "adam_float",
    "beta_code",
    "isqrt_codes",
    "lr_table",
    "mul_shift",
    "sgd_fixed",
    "soft_update_fixed",
    "soft_update_float",
    "v_format",
]

#: Fraction bits of the beta, tau and gamma codes.
BETA_FRAC = 16
#: Fraction bits of the step size beyond the weight format's.
LR_EXTRA = 16
_P_FRAC = 62


def mul_shift(x: npt.ArrayLike, c: int, shift: int = BETA_FRAC,
              rounding: Rounding = "half_even") -> np.ndarray:
    """Exact ``x * c / 2**shift`` rounded to an integer (see the module docs).

    Parameters
    ----------
    x : array_like of int
        ``int64`` values with ``|x| < 2**62``.
    c : int
        ``0 <= c <= 2**shift``.
    shift : int
        1 to 31.
    rounding : {"floor", "half_up", "half_even"}

    Returns
    -------
    numpy.ndarray of int64
    """
    check_rounding(rounding)
    if isinstance(shift, bool) or not isinstance(shift, int) or not 1 <= shift <= 31:
        raise ValueError(f"shift must be an integer from 1 to 31, not {shift!r}")
    if isinstance(c, bool) or not isinstance(c, int | np.integer) or not 0 <= c <= 1 << shift:
        raise ValueError(f"c must be an integer from 0 to 2**shift, not {c!r}")
    v = np.asarray(x, dtype=np.int64)
    return _mul_shift(v.reshape(-1), int(c), shift, rounding, 1 << 62).reshape(v.shape)


def _mul_shift(v: np.ndarray, c: int, shift: int, rounding: str, bound: int) -> np.ndarray:
    """:func:`mul_shift` of ``int64`` values known to satisfy ``|v| <= bound``.

    When ``bound * c`` fits in 62 bits the product is formed directly; otherwise it is split
    into ``(v >> shift) * c`` and ``(v mod 2**shift) * c`` so that no intermediate exceeds 62
    bits. Both give the same exact result.
    """
    mask = (1 << shift) - 1
    if bound * c < 1 << 62:
        p = v * c
        return _round_dropped(p >> shift, p & mask, shift, rounding)
    low = (v & mask) * c
    total = (v >> shift) * c
    total += low >> shift
    low &= mask
    return _round_dropped(total, low, shift, rounding)


def _saturate(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Clamp ``x`` to ``[lo, hi]`` in place and return it."""
    np.maximum(x, lo, out=x)
    np.minimum(x, hi, out=x)
    return x


def isqrt_codes(v: npt.ArrayLike) -> np.ndarray:
    """Exact floor square root of non-negative ``int64`` integers below ``2**62``.

    A float64 estimate, then one correction step each way (the estimate is within one).
    """
    a = np.asarray(v, dtype=np.int64)
    if a.size and (int(a.min()) < 0 or int(a.max()) >= 1 << 62):
        raise ValueError("v must hold integers in [0, 2**62)")
    return _isqrt(a).reshape(a.shape)


def _isqrt(a: np.ndarray) -> np.ndarray:
    a = a.reshape(-1)
    s = np.sqrt(a.astype(np.float64)).astype(np.int64)  # non-negative: truncation is floor
    s -= s * s > a
    t = s + 1
    t *= t
    s += t <= a
    return s


def beta_code(beta: float, name: str = "beta") -> int:
    """``round((1 - beta) * 2**16)``, the increment weight of a moving average (1 to 2**16)."""
    c = round((1.0 - float(beta)) * (1 << BETA_FRAC))
    if not 1 <= c <= 1 << BETA_FRAC:
        raise ValueError(f"{name} must leave 1 - {name} representable in 16 fraction bits, "
                         f"not {beta!r}")
    return c


def v_format(g_fmt: FixedFormat) -> FixedFormat:
    """Format of Adam's second moment: ``FixedFormat(63, 2 * g_fmt.frac)``."""
    return _v_format(g_fmt.frac)


@functools.lru_cache(maxsize=64)
def _v_format(frac: int) -> FixedFormat:
    return FixedFormat(63, 2 * frac)


@functools.cache
def lr_table(lr_q: int, c1: int, c2: int, steps: int) -> tuple[int, ...]:
    """Bias-corrected step sizes ``lr_t`` for ``t = 1 .. steps`` (see the module docs)."""
    one = 1 << _P_FRAC
    p1 = p2 = one
    out = []
    for _ in range(steps):
        p1 = (p1 * ((1 << BETA_FRAC) - c1)) >> BETA_FRAC
        p2 = (p2 * ((1 << BETA_FRAC) - c2)) >> BETA_FRAC
        out.append(lr_q * math.isqrt((one - p2) << _P_FRAC) // (one - p1))
    return tuple(out)


@dataclass(frozen=True)
class FixedAdamConstants:
    """Integer constants of the fixed-point Adam step (see the module docs).

    Parameters
    ----------
    lr_q : int
        ``round(lr * 2**(w_fmt.frac + LR_EXTRA))``.
    c1, c2 : int
        ``round((1 - beta1) * 2**16)``, ``round((1 - beta2) * 2**16)``.
    eps_q : int
        ``max(1, round(eps * 2**g_fmt.frac))``.
    bias_steps : int
        Length of the step-size table.
    """

    lr_q: int
    c1: int
    c2: int
    eps_q: int
    bias_steps: int

    @classmethod
    def from_floats(cls, lr: float, beta1: float, beta2: float, eps: float,
                    w_fmt: FixedFormat, g_fmt: FixedFormat, bias_steps: int
                    ) -> FixedAdamConstants:
        """Codes of float hyperparameters, rounded half-even."""
        lr_q = round(float(lr) * 2.0 ** (w_fmt.frac + LR_EXTRA))
        if lr_q < 1 << LR_EXTRA:
            raise ValueError(f"lr {lr!r} is below one step of the weight format {w_fmt!r}")
        return cls(lr_q, beta_code(beta1, "beta1"), beta_code(beta2, "beta2"),
                   max(1, round(float(eps) * 2.0**g_fmt.frac)), int(bias_steps))

    def lr_at(self, t: int) -> int:
        """Step-size code of step ``t >= 1`` (the last table entry beyond the table)."""
        table = lr_table(self.lr_q, self.c1, self.c2, self.bias_steps)
        return table[min(t, self.bias_steps) - 1]


def adam_fixed(w: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, t: int,
               consts: FixedAdamConstants, w_fmt: FixedFormat, g_fmt: FixedFormat
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One fixed-point Adam step of one tensor (module docs); returns new ``(w, m, v)``.

    Parameters
    ----------
    w : numpy.ndarray of int64
        Weight codes (``w_fmt``).
    g : numpy.ndarray of int64
        Gradient codes (``g_fmt``).
    m, v : numpy.ndarray of int64
        Moments (``g_fmt`` and :func:`v_format` codes).
    t : int
        Step number, counting from 1.

    Returns
    -------
    w, m, v : numpy.ndarray of int64
        The new weights (read-only: a weight matrix is read by several matrix products before
        the next update, and :mod:`sw_model.numerics.fixed` keeps its range and ``float64``
        copy meanwhile) and moments.

    Notes
    -----
    Computed by the compiled kernel :func:`sw_model.numerics.kernels.adam_step`; a step
    whose ``2 * lr_t * m + den`` could pass ``2**62`` (a first moment beyond the bound that
    the largest ``den`` leaves) is computed in NumPy, with Python integers where needed.
    Both give the codes the module docs define.
    """
    # flat contiguous int64 arrays (0-d inputs too)
    w, g, m, v = (np.asarray(x, dtype=np.int64) for x in (w, g, m, v))
    if not w.shape == g.shape == m.shape == v.shape:
        w, g, m, v = np.broadcast_arrays(w, g, m, v)
    shape = w.shape
    w, g, m, v = (np.ascontiguousarray(x).reshape(-1) for x in (w, g, m, v))
    vf = v_format(g_fmt)
    w_new = np.empty(shape, dtype=np.int64)  # its own array: the read-only weights
    mv = np.empty((2, w.size), dtype=np.int64)  # one block (fewer, larger allocations)
    m_new, v_new = mv[0].reshape(shape), mv[1].reshape(shape)
    if kernels.adam_step(w, g, m, v, consts.c1, consts.c2, consts.eps_q, consts.lr_at(t),
                         LR_EXTRA, g_fmt.min_int, g_fmt.max_int, vf.max_int, w_fmt.min_int,
                         w_fmt.max_int, w_new.reshape(-1), mv[0], mv[1]):
        w_new.setflags(write=False)
        return w_new, m_new, v_new
    w_new, m_new, v_new = _adam_numpy(w, g, m, v, t, consts, w_fmt, g_fmt, shape)
    w_new.setflags(write=False)
    return w_new, m_new, v_new


def _adam_numpy(w: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, t: int,
                consts: FixedAdamConstants, w_fmt: FixedFormat, g_fmt: FixedFormat,
                shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`adam_fixed` in NumPy array operations over flat ``int64`` arrays (any step size)."""
    vf = v_format(g_fmt)
    # |g - m| < 2**width: the moving averages' products fit int64 directly when width <= 45
    m_new = _mul_shift(g - m, consts.c1, BETA_FRAC, "half_even", 1 << g_fmt.width)
    m_new += m
    _saturate(m_new, g_fmt.min_int, g_fmt.max_int)
    g2 = g * g
    np.minimum(g2, vf.max_int, out=g2)
    g2 -= v
    v_new = _mul_shift(g2, consts.c2, BETA_FRAC, "half_even", 1 << 63)
    v_new += v
    _saturate(v_new, 0, vf.max_int)
    den = _isqrt(v_new)
    den += consts.eps_q
    den <<= LR_EXTRA
    lr_t = consts.lr_at(t)
    m_max = max(-int(m_new.min()), int(m_new.max())) if m_new.size else 0
    d_max = int(den.max()) if den.size else 0
    if 2 * lr_t * m_max + d_max < 1 << 62:
        num = m_new * (2 * lr_t)
        num += den
        den <<= 1
        u = num // den
    else:  # a very large step size: Python integers keep it exact
        num = 2 * lr_t * m_new.astype(object) + den.astype(object)
        u = np.asarray(num // (2 * den.astype(object)))
        # (np.asarray: clip returns a Python int for a 0-d object array)
        u = np.asarray(np.clip(u, w_fmt.min_int - w_fmt.max_int, w_fmt.max_int - w_fmt.min_int))
        u = u.astype(np.int64)
    w_new = _saturate(w - u, w_fmt.min_int, w_fmt.max_int)
    return w_new.reshape(shape), m_new.reshape(shape), v_new.reshape(shape)


def sgd_fixed(w: npt.ArrayLike, g: npt.ArrayLike, lr_q: int, w_fmt: FixedFormat,
              g_fmt: FixedFormat) -> np.ndarray:
    """One fixed-point SGD step of one tensor (module docs); returns the new weight codes.

    ``u = round_half_up(lr_q * g / 2**(g_fmt.frac + LR_EXTRA))`` (a ``w_fmt`` code), exact for
    every input (Python integers hold the products), then ``w <- sat_w(w - u)``.

    Parameters
    ----------
    w : array_like of int
        Weight codes (``w_fmt``).
    g : array_like of int
        Gradient codes (``g_fmt``), broadcast against ``w``.
    lr_q : int
        Step-size code, ``round(lr * 2**(w_fmt.frac + LR_EXTRA))``; non-negative.
    w_fmt, g_fmt : FixedFormat
        Weight and gradient formats.

    Returns
    -------
    numpy.ndarray of int64

    Raises
    ------
    TypeError
        If ``lr_q`` is not an integer.
    ValueError
        If ``lr_q`` is negative, or a code lies outside its format.
    """
    if isinstance(lr_q, bool) or not isinstance(lr_q, int | np.integer):
        raise TypeError(f"lr_q must be an integer, not {lr_q!r}")
    if lr_q < 0:
        raise ValueError(f"lr_q must be non-negative, not {lr_q!r}")
    w = w_fmt.check_codes(w, "w")
    g = g_fmt.check_codes(g, "g")
    w, g = np.broadcast_arrays(w, g)
    shift = g_fmt.frac + LR_EXTRA
    prod = int(lr_q) * g.astype(object)
    # floor division by a power of two (Python's >> floors); an exact product for shift <= 0
    u = ((2 * prod + (1 << shift)) >> (shift + 1)) if shift > 0 else prod * (1 << -shift)
    out = np.asarray(w.astype(object) - u, dtype=object)
    out = np.minimum(np.maximum(out, w_fmt.min_int), w_fmt.max_int)
    return np.asarray(out, dtype=np.int64).reshape(w.shape)


def adam_float(w: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, t: int,
               lr: float, beta1: float, beta2: float, eps: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Adam step (PyTorch's formula) in the dtype of ``w``; returns new ``(w, m, v)``.

    ``m' = beta1 * m + (1 - beta1) * g``, ``v' = beta2 * v + (1 - beta2) * g * g``,
    ``w' = w - lr * (m' / (1 - beta1**t)) / (sqrt(v' / (1 - beta2**t)) + eps)``, every
    operation in the dtype of ``w`` (float32 or float64), in one compiled pass
    (:func:`sw_model.numerics.kernels.adam_float_step`).
    """
    dt = w.dtype.type
    w, g, m, v = (np.ascontiguousarray(x, dtype=dt) for x in (w, g, m, v))
    out = np.empty((3, *w.shape), dtype=dt)
    flat = out.reshape(3, -1)
    kernels.adam_float_step(w.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1),
                            dt(beta1), dt(1 - beta1), dt(beta2), dt(1 - beta2),
                            dt(1 - beta1**t), dt(1 - beta2**t), dt(lr), dt(eps),
                            flat[0], flat[1], flat[2])
    return out[0], out[1], out[2]


def soft_update_float(target: np.ndarray, w: np.ndarray, tau: float) -> np.ndarray:
    """``target + tau * (w - target)`` in the dtype of ``target``, in one compiled pass."""
    dt = target.dtype.type
    t = np.ascontiguousarray(target)
    out = np.empty_like(t)
    kernels.soft_update_float(t.reshape(-1), np.ascontiguousarray(w, dtype=dt).reshape(-1),
                              dt(tau), out.reshape(-1))
    return out


def soft_update_fixed(target: np.ndarray, w: np.ndarray, tau_q: int,
                      w_fmt: FixedFormat) -> np.ndarray:
    """``sat_w(target + mul_shift(w - target, tau_q, 16, "half_even"))`` (module docs).

    The result is read-only, like :func:`adam_fixed`'s new weights.
    """
    tau_q = int(tau_q)
    if not 0 <= tau_q <= 1 << BETA_FRAC:
        raise ValueError(f"tau_q must be an integer from 0 to 2**{BETA_FRAC}, not {tau_q!r}")
    t, w = np.asarray(target, dtype=np.int64), np.asarray(w, dtype=np.int64)
    if t.shape != w.shape:
        t, w = np.broadcast_arrays(t, w)
    out = np.empty(t.shape, dtype=np.int64)
    kernels.soft_update(np.ascontiguousarray(t).reshape(-1), np.ascontiguousarray(w).reshape(-1),
                        tau_q, w_fmt.min_int, w_fmt.max_int, out.reshape(-1))
    out.setflags(write=False)
    return out
