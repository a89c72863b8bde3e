"""The float actor's layers, what a :class:`~sw_model.search.cost.LayerChoice` does to them, and
the grid of choices the search picks from.

:func:`actor_layers` / :func:`actor_shapes` read a float DDPG actor, :func:`weight_stats` the
statistics of a layer's weights; :func:`quantize_layer` and :func:`quantize_activations`
quantize weights and activations as a choice says; :func:`choice_grid` is the grid
``[LayerChoice(s, w, a) for s in schemes for w in w_bits[s] for a in a_bits]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from sw_model.checks import check_int
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.msq import quantize_matrix
from sw_model.search.cost import A_BITS, W_BITS, LayerChoice, LayerShape

__all__ = [
    "SCHEMES",
    "actor_layers",
    "actor_shapes",
    "choice_grid",
    "quantize_activations",
    "quantize_layer",
    "weight_stats",
]

#: The quantization schemes, in the order of the action grid.
SCHEMES: tuple[str, str] = ("fixed", "sp2")


def _actor_dict(weights: object) -> Mapping[str, Any]:
    if not isinstance(weights, Mapping):
        raise TypeError(f"weights must be a mapping of actor arrays, not {weights!r}")
    if "actor" in weights:
        weights = weights["actor"]
        if not isinstance(weights, Mapping):
            raise TypeError(f"weights['actor'] must be a mapping, not {weights!r}")
    return weights


def actor_layers(weights: Mapping[str, Any]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ``(W, b)`` float pairs of a DDPG actor, ``W`` of shape ``(fan_out, fan_in)``.

    Parameters
    ----------
    weights : mapping
        A float actor ``{"l1.w", "l1.b", ..., "lL.w", "lL.b"}`` (the layout of
        :mod:`sw_model.arch.ddpg_step`), or a :data:`~sw_model.arch.ddpg_step.Weights` dict holding
        one
        under ``"actor"``.

    Raises
    ------
    TypeError, ValueError
        If the mapping does not hold consecutive, chained, finite float layers.
    """
    p = _actor_dict(weights)
    layers = []
    k = 1
    while f"l{k}.w" in p:
        w = np.asarray(p[f"l{k}.w"])
        b = np.asarray(p.get(f"l{k}.b", np.zeros(w.shape[:1])))
        if not np.issubdtype(w.dtype, np.floating):
            raise TypeError(f"weights l{k}.w must hold floats, not an array of {w.dtype}")
        if w.ndim != 2 or b.shape != w.shape[:1]:
            raise ValueError(f"weights l{k} must be a 2-D w with a matching b, not shapes "
                             f"{w.shape} and {b.shape}")
        if layers and layers[-1][0].shape[0] != w.shape[1]:
            raise ValueError(f"weights l{k}.w has {w.shape[1]} inputs, but l{k - 1} has "
                             f"{layers[-1][0].shape[0]} outputs")
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise ValueError(f"weights l{k} must be finite")
        layers.append((w.astype(np.float64), b.astype(np.float64)))
        k += 1
    if not layers:
        raise ValueError(f"weights must hold l1.w, l2.w, ...; got keys {sorted(p)!r}")
    return layers


def actor_shapes(weights: Mapping[str, Any]) -> tuple[LayerShape, ...]:
    """``LayerShape("l1", fan_in, fan_out), ...`` of an actor (see :func:`actor_layers`)."""
    return tuple(LayerShape(f"l{k}", w.shape[1], w.shape[0])
                 for k, (w, _) in enumerate(actor_layers(weights), 1))


def weight_stats(w: npt.ArrayLike) -> tuple[float, float, float]:
    """``(std, max|w|, excess kurtosis)`` of a weight array (kurtosis 0 for a constant array)."""
    a = np.asarray(w, dtype=np.float64).ravel()
    if a.size == 0:
        return 0.0, 0.0, 0.0
    std = float(a.std())
    kurt = float(np.mean((a - a.mean()) ** 4) / std**4 - 3.0) if std > 0 else 0.0
    return std, float(np.abs(a).max()), kurt


def quantize_layer(w: npt.ArrayLike, choice: LayerChoice) -> np.ndarray:
    """The weight matrix as quantized by ``choice`` (float values of the codes).

    ``"fixed"``: one scale for the layer, ``alpha = max|w| / fmt.max_value`` with
    ``fmt = FixedFormat(w_bits, w_bits - 1)``, and ``alpha * fmt.from_float(w / alpha)``
    (half-even, saturating). ``"sp2"``: every row SP2 with its own scale,
    ``sw_model.numerics.msq.quantize_matrix(w, w_bits, sp2_ratio=1.0).weights()``.

    Raises
    ------
    TypeError
        If ``choice`` is not a LayerChoice.
    ValueError
        For an unknown scheme or a width outside 2..32 (fixed) or 2..11 (SP2).
    """
    if not isinstance(choice, LayerChoice):
        raise TypeError(f"choice must be a LayerChoice, not {choice!r}")
    arr = np.asarray(w, dtype=np.float64)
    bits = choice.w_bits
    if choice.scheme == "fixed":
        if not 2 <= bits <= 32:
            raise ValueError(f"choice w_bits must be from 2 to 32 for fixed, not {bits!r}")
        fmt = FixedFormat(bits, bits - 1)
        amax = float(np.abs(arr).max()) if arr.size else 0.0
        if amax == 0.0:
            return np.zeros_like(arr)
        alpha = amax / fmt.max_value
        return alpha * fmt.to_float(fmt.from_float(arr / alpha))
    if choice.scheme == "sp2":
        if not 2 <= bits <= 11:
            raise ValueError(f"choice w_bits must be from 2 to 11 for sp2, not {bits!r}")
        return quantize_matrix(arr, bits, sp2_ratio=1.0).weights()
    raise ValueError(f"choice scheme must be one of {SCHEMES!r}, not {choice.scheme!r}")


def quantize_activations(x: npt.ArrayLike, bits: int, amax: float) -> np.ndarray:
    """``x`` on the signed ``bits``-bit fixed-point grid that holds ``[-amax, amax]``.

    The step is ``2**-frac`` with ``frac = (bits - 1) - ceil(log2 amax)`` (the rule of
    :func:`sw_model.numerics.qat.range_format`; ``amax <= 0`` counts as 1); values round half-even
    and
    saturate to ``[-2**(bits-1), 2**(bits-1) - 1]`` steps.
    """
    bits = check_int(bits, "bits", minimum=2)
    frac = (bits - 1) - math.ceil(math.log2(amax)) if amax > 0 else bits - 1
    q = np.rint(np.ldexp(np.asarray(x, dtype=np.float64), frac))
    q = np.clip(q, -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1)
    return np.ldexp(q, -frac)


def choice_grid(w_bits: Mapping[str, Sequence[int]] | None, a_bits: Sequence[int] | None
                ) -> tuple[tuple[LayerChoice, ...], tuple[str, ...], dict[str, tuple[int, ...]],
                           tuple[int, ...]]:
    """The grid of choices of the search and its components.

    Parameters
    ----------
    w_bits : mapping of str to sequence of int, optional
        Weight widths per scheme (schemes among :data:`SCHEMES`); default
        ``sw_model.search.cost.W_BITS``.
    a_bits : sequence of int, optional
        Activation widths; default ``sw_model.search.cost.A_BITS``.

    Returns
    -------
    tuple
        ``(grid, schemes, widths, a_bits)``: ``grid`` is ``[LayerChoice(s, w, a) for s in
        schemes for w in widths[s] for a in a_bits]``, ``schemes`` in the order of
        :data:`SCHEMES`, the widths sorted and without repeats.

    Raises
    ------
    TypeError, ValueError
        For widths that are not non-empty sequences of integers of at least 2, or an
        unknown scheme.
    """
    wb = W_BITS if w_bits is None else w_bits
    ab = A_BITS if a_bits is None else a_bits
    if not isinstance(wb, Mapping) or not wb:
        raise TypeError(f"w_bits must be a non-empty mapping of scheme to widths, not {wb!r}")
    schemes = tuple(s for s in SCHEMES if s in wb)
    if len(schemes) != len(wb):
        raise ValueError(f"w_bits schemes must be among {SCHEMES!r}, not {tuple(wb)!r}")
    widths: dict[str, tuple[int, ...]] = {}
    for s in schemes:
        ws = wb[s]
        if isinstance(ws, str | bytes) or not isinstance(ws, Sequence) or not ws:
            raise TypeError(f"w_bits[{s!r}] must be a non-empty sequence, not {ws!r}")
        widths[s] = tuple(sorted({check_int(w, f"w_bits[{s!r}] entry", minimum=2) for w in ws}))
    if isinstance(ab, str | bytes) or not isinstance(ab, Sequence) or not ab:
        raise TypeError(f"a_bits must be a non-empty sequence, not {ab!r}")
    a_sorted = tuple(sorted({check_int(a, "a_bits entry", minimum=2) for a in ab}))
    grid = tuple(LayerChoice(s, w, a) for s in schemes for w in widths[s] for a in a_sorted)
    return grid, schemes, widths, a_sorted
