"""FIXAR quantization-aware training: activation range tracking and the 16-bit activation rule.

The paper (Yang, Hong, Kim, DAC 2021) trains with 32-bit activations for a *quantization delay*
while it tracks each layer's activation range ``[Amin, Amax]``, then quantizes activations to
``n = 16`` bits with

    Qn(A) = floor(A / delta) + z,   delta = (|Amin| + |Amax|) / 2**n,   z = floor(-Amin / delta)

(an asymmetric code with a zero point ``z``). :func:`paper_quantize` computes exactly that, in
float64, for reference.

The hardware rule
-----------------
A power-of-two step makes ``floor(A / delta)`` an arithmetic shift of the 32-bit code, and a
symmetric (``z = 0``) signed code is what the PE's signed 32x16 multiplier takes. So the
trainer uses ``delta' = 2**-frac`` and a signed ``FixedFormat(n, frac)``, with

    M    = max(|Amin|, |Amax|)                      (tracked, as 32-bit codes of frac f32)
    frac = (n - 1) - ceil(log2(M))                  then clamped to [0, f32]

``ceil(log2(M))`` is exact on the code ``M_q = M * 2**f32``: ``(M_q - 1).bit_length() - f32``
(``M_q`` is taken as at least 1). A 32-bit code ``q`` becomes ``requantize(q, f32, fmt,
"floor", "saturate")``, i.e. ``floor(A / delta')`` saturated: the paper's floor with ``z = 0``.

Relation to the paper's step: ``2**(n-1) * delta' = 2**ceil(log2 M) >= M``, so the signed
range covers ``[-M, M)`` (``+M`` itself saturates by one step when ``M`` is a power of two),
and ``delta <= delta' < 4 * delta``: at most two bits coarser than the paper's step (one for
rounding the step up to a power of two, one for the sign bit that the zero point saves), never
finer. The clamp keeps ``frac >= 0`` (the layer operations align biases by ``x.frac``) and
``frac <= f32`` (so 16-bit codes convert back to 32 bits exactly).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from sw_model.numerics.fixed import FixedFormat, requantize

__all__ = [
    "paper_dequantize",
    "paper_quantize",
    "range_format",
    "shift_quantize",
    "track_range",
]


def paper_quantize(a: npt.ArrayLike, amin: float, amax: float, n: int = 16
                   ) -> tuple[np.ndarray, float, int]:
    """The paper's ``Qn(A) = floor(A / delta) + z`` in float64 (reference only).

    Parameters
    ----------
    a : array_like of float
        Activations.
    amin, amax : float
        Tracked range, ``amin <= amax``, not both 0.
    n : int
        Bits, 2 to 32.

    Returns
    -------
    codes : numpy.ndarray of int64
        ``floor(a / delta) + z`` (not clipped: values outside ``[amin, amax]`` fall outside
        ``[0, 2**n)``).
    delta : float
        ``(|amin| + |amax|) / 2**n``.
    z : int
        ``floor(-amin / delta)``.

    Raises
    ------
    TypeError, ValueError
        For a bad ``n`` or range.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an integer, not {n!r}")
    if not 2 <= n <= 32:
        raise ValueError(f"n must be from 2 to 32, not {n!r}")
    amin, amax = float(amin), float(amax)
    if not (math.isfinite(amin) and math.isfinite(amax)) or amin > amax:
        raise ValueError(f"amin, amax must be finite with amin <= amax, not {amin!r}, {amax!r}")
    delta = (abs(amin) + abs(amax)) / 2.0**n
    if delta == 0.0:
        raise ValueError("amin and amax must not both be 0")
    z = math.floor(-amin / delta)
    codes = np.floor(np.asarray(a, dtype=np.float64) / delta).astype(np.int64) + z
    return codes, delta, z


def paper_dequantize(codes: npt.ArrayLike, delta: float, z: int) -> np.ndarray:
    """Values ``(q - z) * delta`` of paper codes (the lower end of each code's interval)."""
    return (np.asarray(codes, dtype=np.float64) - z) * delta


def track_range(rng: tuple[int, int] | None, q: npt.ArrayLike) -> tuple[int, int]:
    """The running ``(min, max)`` code after seeing the codes ``q`` (``rng`` None at first)."""
    arr = np.asarray(q)
    if arr.size == 0:
        if rng is None:
            raise ValueError("q must not be empty when no range is tracked yet")
        return rng
    lo, hi = int(arr.min()), int(arr.max())
    if rng is None:
        return lo, hi
    return min(rng[0], lo), max(rng[1], hi)


def range_format(amin_q: int, amax_q: int, src: FixedFormat, n: int = 16) -> FixedFormat:
    """The signed ``n``-bit format for a tracked range of ``src`` codes (see the module docs).

    Parameters
    ----------
    amin_q, amax_q : int
        Tracked minimum and maximum, as codes of ``src``.
    src : FixedFormat
        The wide (32-bit) activation format the range was tracked in.
    n : int
        Width of the result, 2 to ``src.width``.

    Returns
    -------
    FixedFormat
        ``FixedFormat(n, frac)`` with ``frac = clamp((n - 1) - ceil(log2 M), 0, src.frac)``.
    """
    if not isinstance(src, FixedFormat):
        raise TypeError(f"src must be a FixedFormat, not {src!r}")
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an integer, not {n!r}")
    if not 2 <= n <= src.width:
        raise ValueError(f"n must be from 2 to {src.width}, not {n!r}")
    m_q = max(abs(int(amin_q)), abs(int(amax_q)), 1)
    ceil_log2 = (m_q - 1).bit_length() - src.frac
    frac = min(max((n - 1) - ceil_log2, 0), src.frac)
    return FixedFormat(n, frac)


def shift_quantize(q: npt.ArrayLike, src: FixedFormat, dst: FixedFormat) -> np.ndarray:
    """``floor(A / 2**-dst.frac)`` of ``src`` codes, saturated to ``dst`` (an arithmetic shift)."""
    return requantize(q, src.frac, dst, "floor", "saturate")
