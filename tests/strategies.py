"""Hypothesis strategies shared by the tests: formats and codes with their corner values."""

from __future__ import annotations

from hypothesis import strategies as st

from sw_model.numerics.fixed import OVERFLOW_MODES, ROUNDING_MODES, FixedFormat

rounding_modes = st.sampled_from(ROUNDING_MODES)
overflow_modes = st.sampled_from(OVERFLOW_MODES)


@st.composite
def fixed_formats(draw, min_width: int = 1, max_width: int = 32, signed=None, frac=None):
    """A :class:`FixedFormat`; small widths first so failures shrink toward narrow formats."""
    width = draw(st.integers(min_width, max_width))
    is_signed = draw(st.booleans()) if signed is None else signed
    if not is_signed and width > 63:
        width = 63
    f = draw(st.integers(-4, width + 4)) if frac is None else frac
    return FixedFormat(width, f, is_signed)


def codes(fmt: FixedFormat):
    """Codes of ``fmt``, mixing in min, -1, 0, 1 and max."""
    corners = sorted({v for v in (fmt.min_int, -1, 0, 1, fmt.max_int)
                      if fmt.min_int <= v <= fmt.max_int})
    return st.one_of(st.sampled_from(corners), st.integers(fmt.min_int, fmt.max_int))


def stall_lists(max_size: int = 200):
    """Stall decisions for :func:`fixar_hw.sim.testing.stall_pattern`: none, light, or heavy."""
    light = st.lists(st.sampled_from([False, False, False, True]), max_size=max_size)
    heavy = st.lists(st.booleans(), max_size=max_size)
    return st.one_of(st.just([]), light, heavy)


def examples(ci: int, nightly: int = 1000):
    """Hypothesis settings with ``ci`` examples in the quick profile and ``nightly`` in the
    thorough one: for property tests whose every example is a hardware simulation of seconds."""
    import os

    from hypothesis import settings

    profile = os.environ.get("FIXAR_HYPOTHESIS_PROFILE", "ci")
    return settings(max_examples=nightly if profile == "nightly" else ci)
