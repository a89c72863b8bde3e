"""Integer random numbers for exploration noise: xorshift32 and a sum-of-uniforms Gaussian.

Everything here is integer arithmetic on 32-bit words, so an on-chip noise unit can reproduce
every draw from the seed.

Generator
---------
Marsaglia's xorshift32 with shifts ``(13, 17, 5)``: with ``s`` the 32-bit state,

    s ^= (s << 13) mod 2**32;  s ^= s >> 17;  s ^= (s << 5) mod 2**32

and the new state is also the output. The period is ``2**32 - 1``; the state is never 0.
:func:`seed_state` maps a seed (any non-negative integer) to a first state:
``(seed * 0x9E3779B9 + 0x6D2B79F5) mod 2**32``, replaced by ``0x6D2B79F5`` if that is 0.

Gaussian approximation
----------------------
One normal sample is the centred sum of ``12`` uniforms (Irwin-Hall): each uniform is the top 16
bits of one output minus ``2**15``, an integer in ``[-2**15, 2**15 - 1]`` (mean ``-1/2``,
variance ``(2**32 - 1) / 12``). Their sum ``S`` has mean ``-6`` and variance ``2**32 - 1``, so
``S`` read as a code with 16 fraction bits is approximately ``N(0, 1)`` (bounded by +-6, with
a bias of ``-6 * 2**-16``). :func:`gaussian_codes` scales it by ``sigma``, held as a 16-bit
code ``sigma_q = round(sigma * 2**16)``, and floors to the destination format::

    noise = floor(S * sigma_q / 2**(32 - dst.frac))     (then saturated to dst)

The samples of one call are drawn one after another (12 outputs each) from one stream.
"""

from __future__ import annotations

import numpy as np

from sw_model.numerics.fixed import FixedFormat, requantize

__all__ = [
    "GAUSS_TERMS",
    "SIGMA_FRAC",
    "gaussian_codes",
    "seed_state",
    "sigma_code",
    "xorshift32",
    "xorshift32_stream",
]

_MASK = 0xFFFFFFFF
_SEED_MUL = 0x9E3779B9
_SEED_ADD = 0x6D2B79F5
#: Uniforms summed per normal sample.
GAUSS_TERMS = 12
#: Fraction bits of the ``sigma`` code.
SIGMA_FRAC = 16


def _check_state(state: object) -> int:
    if isinstance(state, bool) or not isinstance(state, int | np.integer):
        raise TypeError(f"state must be an integer, not {state!r}")
    if not 0 < state <= _MASK:
        raise ValueError(f"state must be a nonzero 32-bit unsigned integer, not {state!r}")
    return int(state)


def seed_state(seed: int) -> int:
    """The first xorshift32 state for ``seed`` (see the module docs).

    Raises
    ------
    TypeError
        If ``seed`` is not an integer.
    ValueError
        If ``seed`` is negative.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an integer, not {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, not {seed!r}")
    state = (int(seed) * _SEED_MUL + _SEED_ADD) & _MASK
    return state or _SEED_ADD


def xorshift32(state: int) -> int:
    """The next xorshift32 state (which is also the output) after ``state``."""
    s = _check_state(state)
    s ^= (s << 13) & _MASK
    s ^= s >> 17
    s ^= (s << 5) & _MASK
    return s


def xorshift32_stream(state: int, n: int) -> tuple[np.ndarray, int]:
    """``n`` successive outputs after ``state`` and the final state.

    Returns
    -------
    outputs : numpy.ndarray of uint32
        The ``n`` outputs, in order.
    state : int
        The state after the last output (``state`` itself if ``n == 0``).
    """
    s = _check_state(state)
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, not {n!r}")
    out = np.empty(n, dtype=np.uint32)
    for i in range(n):
        s ^= (s << 13) & _MASK
        s ^= s >> 17
        s ^= (s << 5) & _MASK
        out[i] = s
    return out, s


def sigma_code(sigma: float) -> int:
    """``round(sigma * 2**16)`` (half-even), the noise scale code; 0 <= sigma < 2**15.

    Raises
    ------
    TypeError
        If ``sigma`` is not a real number.
    ValueError
        If ``sigma`` is negative, not finite or too large.
    """
    if isinstance(sigma, bool) or not isinstance(sigma, int | float | np.integer | np.floating):
        raise TypeError(f"sigma must be a real number, not {sigma!r}")
    sigma = float(sigma)
    if not 0.0 <= sigma < 2.0**15:
        raise ValueError(f"sigma must be in [0, 2**15), not {sigma!r}")
    return round(sigma * (1 << SIGMA_FRAC))


def gaussian_codes(state: int, n: int, sigma: float, dst: FixedFormat) -> tuple[np.ndarray, int]:
    """``n`` approximately ``N(0, sigma**2)`` samples as ``dst`` codes, and the next state.

    See the module docs for the exact definition. Consumes ``12 * n`` outputs.

    Parameters
    ----------
    state : int
        Current xorshift32 state (nonzero, 32 bits).
    n : int
        Number of samples.
    sigma : float
        Standard deviation, rounded to a 16-bit fraction (:func:`sigma_code`).
    dst : FixedFormat
        Format of the result (saturating).

    Returns
    -------
    codes : numpy.ndarray of int64
    state : int
    """
    if not isinstance(dst, FixedFormat):
        raise TypeError(f"dst must be a FixedFormat, not {dst!r}")
    words, state = xorshift32_stream(state, GAUSS_TERMS * n)
    uniforms = (words >> np.uint32(16)).astype(np.int64) - (1 << 15)
    sums = uniforms.reshape(n, GAUSS_TERMS).sum(axis=1)
    scaled = sums * sigma_code(sigma)
    codes = requantize(scaled, 16 + SIGMA_FRAC, dst, "floor", "saturate")
    return codes, state
