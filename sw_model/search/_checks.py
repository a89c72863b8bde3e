"""Parameter checks shared by the search modules (``TypeError`` / ``ValueError`` naming the
parameter and the value)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from sw_model.search.cost import LayerChoice

__all__ = ["check_choices", "check_int", "check_real"]


def check_int(value: object, name: str, lo: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if lo is not None and value < lo:
        raise ValueError(f"{name} must be at least {lo}, not {value!r}")
    return int(value)


def check_real(value: object, name: str, lo: float | None = None, hi: float | None = None,
                *, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a real number, not {value!r}")
    v = float(value)
    bad = not math.isfinite(v) or (lo is not None and (v <= lo if lo_open else v < lo)) or (
        hi is not None and v > hi)
    if bad:
        lo_s = "-inf" if lo is None else repr(lo)
        hi_s = "inf" if hi is None else repr(hi)
        bracket = "(" if lo_open or lo is None else "["
        raise ValueError(f"{name} must be finite and in {bracket}{lo_s}, {hi_s}], not {value!r}")
    return v


def check_choices(choices: object, n: int, name: str = "choices") -> tuple[LayerChoice, ...]:
    if isinstance(choices, str | bytes) or not isinstance(choices, Sequence):
        raise TypeError(f"{name} must be a sequence of LayerChoice, not {choices!r}")
    out = tuple(choices)
    for c in out:
        if not isinstance(c, LayerChoice):
            raise TypeError(f"{name} must hold LayerChoice objects, not {c!r}")
    if len(out) != n:
        raise ValueError(f"{name} must have {n} entries (one per layer), not {len(out)}")
    return out
