"""The search modules' check of a per-layer choice sequence (numbers are checked with
:mod:`sw_model.checks`)."""

from __future__ import annotations

from collections.abc import Sequence

from sw_model.search.cost import LayerChoice

__all__ = ["check_choices"]


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
