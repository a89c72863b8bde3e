"""Parameter checks shared by the golden model and the generators (NumPy-free).

Each check returns the value it accepts and raises ``TypeError`` for a value of the wrong kind
and ``ValueError`` for a value out of range, with a message that names the parameter (and its
owner, when given) and shows the value with ``!r``::

    >>> check_int(0, "depth", minimum=1, owner="FIFO")
    Traceback (most recent call last):
    ...
    ValueError: FIFO depth must be at least 1, not 0
    >>> check_real(1.5, "gamma", minimum=0, maximum=1, max_open=True, owner="DDPGConfig")
    Traceback (most recent call last):
    ...
    ValueError: DDPGConfig gamma must be finite and in [0, 1), not 1.5
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from typing import TypeVar

__all__ = ["check_bool", "check_choice", "check_int", "check_real"]

T = TypeVar("T")


def _subject(name: str, owner: str | None) -> str:
    return name if owner is None else f"{owner} {name}"


def check_int(value: object, name: str, *, minimum: int | None = None,
              maximum: int | None = None, owner: str | None = None) -> int:
    """Return ``value`` as an ``int`` if it is an integer within ``[minimum, maximum]``.

    Any :class:`numbers.Integral` but ``bool`` is an integer (NumPy's integer scalars too).

    Parameters
    ----------
    value : object
        The value to check.
    name : str
        The parameter's name, for the message.
    minimum, maximum : int, optional
        Inclusive bounds (None: unbounded).
    owner : str, optional
        What the parameter belongs to (``"CoreConfig"``); the message starts with it.

    Returns
    -------
    int

    Raises
    ------
    TypeError
        ``"{owner} {name} must be an integer, not {value!r}"``.
    ValueError
        ``"... must be at least {minimum}"``, ``"... must be at most {maximum}"`` or
        ``"... must be from {minimum} to {maximum}, not {value!r}"``.
    """
    subject = _subject(name, owner)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{subject} must be an integer, not {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        if maximum is None:
            where = f"at least {minimum}"
        elif minimum is None:
            where = f"at most {maximum}"
        else:
            where = f"from {minimum} to {maximum}"
        raise ValueError(f"{subject} must be {where}, not {value!r}")
    return int(value)


def _bound_text(bound: float) -> str:
    return repr(int(bound)) if isinstance(bound, numbers.Integral) else repr(float(bound))


def check_real(value: object, name: str, *, minimum: float | None = None,
               maximum: float | None = None, min_open: bool = False, max_open: bool = False,
               owner: str | None = None) -> float:
    """Return ``value`` as a ``float`` if it is a finite real number within the given interval.

    Any :class:`numbers.Real` but ``bool`` is a real number (Python and NumPy integers and
    floats, :class:`fractions.Fraction`); an integer too large for a float counts as infinite.

    Parameters
    ----------
    value : object
        The value to check.
    name : str
        The parameter's name, for the message.
    minimum, maximum : float, optional
        Bounds (None: unbounded on that side).
    min_open, max_open : bool, optional
        Exclude the bound itself (``minimum < value`` rather than ``minimum <= value``); ignored
        for a side without a bound.
    owner : str, optional
        What the parameter belongs to (``"DDPGConfig"``); the message starts with it.

    Returns
    -------
    float

    Raises
    ------
    TypeError
        ``"{owner} {name} must be a real number, not {value!r}"``.
    ValueError
        Without bounds, ``"{owner} {name} must be finite, not {value!r}"``; with a bound,
        ``"{owner} {name} must be finite and in {interval}, not {value!r}"``, the interval
        written ``[lo, hi]`` with ``(`` / ``)`` for an open side, each bound as the ``repr`` of
        the ``int`` or ``float`` it is, and an unbounded side as ``(-inf`` or ``inf)``:
        ``"DDPGConfig gamma must be finite and in [0, 1), not 1.5"``,
        ``"lr must be finite and in (0.0, inf), not 0.0"``.
    """
    subject = _subject(name, owner)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{subject} must be a real number, not {value!r}")
    try:
        x = float(value)
    except OverflowError:  # an integer beyond float64
        x = math.inf
    if minimum is None and maximum is None:
        if not math.isfinite(x):
            raise ValueError(f"{subject} must be finite, not {value!r}")
        return x
    ok = (math.isfinite(x)
          and (minimum is None or (x > minimum if min_open else x >= minimum))
          and (maximum is None or (x < maximum if max_open else x <= maximum)))
    if not ok:
        lo = "(-inf" if minimum is None else ("(" if min_open else "[") + _bound_text(minimum)
        hi = "inf)" if maximum is None else _bound_text(maximum) + (")" if max_open else "]")
        raise ValueError(f"{subject} must be finite and in {lo}, {hi}, not {value!r}")
    return x


def check_choice(value: T, name: str, choices: Collection[T], *,
                 owner: str | None = None) -> T:
    """Return ``value`` if it is one of ``choices``.

    Parameters
    ----------
    value : object
        The value to check.
    name : str
        The parameter's name, for the message.
    choices : collection
        The accepted values, in the order the message lists them.
    owner : str, optional
        What the parameter belongs to; the message starts with it.

    Returns
    -------
    object
        ``value``.

    Raises
    ------
    TypeError
        If every choice is a ``str`` and ``value`` is not: ``"... must be a str, not
        {value!r}"``.
    ValueError
        ``"{owner} {name} must be one of {choices}, not {value!r}"``, the choices as their
        reprs separated by commas.
    """
    subject = _subject(name, owner)
    if all(isinstance(c, str) for c in choices) and not isinstance(value, str):
        raise TypeError(f"{subject} must be a str, not {value!r}")
    try:
        ok = value in choices
    except TypeError:  # an unhashable value tested against a set
        ok = False
    if isinstance(value, bool) and not any(isinstance(c, bool) for c in choices):
        ok = False  # True == 1, but True is not the choice 1
    if not ok:
        names = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{subject} must be one of {names}, not {value!r}")
    return value


def check_bool(value: object, name: str, *, owner: str | None = None) -> bool:
    """Return ``value`` if it is a ``bool``.

    Raises
    ------
    TypeError
        ``"{owner} {name} must be a bool, not {value!r}"``.
    """
    if not isinstance(value, bool):
        raise TypeError(f"{_subject(name, owner)} must be a bool, not {value!r}")
    return value
