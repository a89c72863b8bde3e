"""Small helpers shared by the generators (:func:`check_int` is
:func:`sw_model.checks.check_int`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from amaranth.hdl import Module, Value

from sw_model.checks import check_bool, check_int

F = TypeVar("F", bound=Callable[..., None])

__all__ = ["check_bool", "check_int", "never_elaborated", "observe", "silence_on_error"]


def observe(m: Module, port: object, **values: Value) -> None:
    """Drive the fields of a component's observation port ``port`` (an ``Out`` of a
    ``StructLayout``, added to the signature when the component is built with
    ``observe=True``) from the internal signals ``values``, by field name.

    Proof harnesses read a component's internal registers through such a port, declared with
    its signature, rather than through attributes that elaboration leaves behind.
    """
    m.d.comb += [port[name].eq(v) for name, v in values.items()]


def silence_on_error(init: F) -> F:
    """Decorate a component ``__init__`` so that a constructor that raises stays quiet.

    Amaranth warns about every elaboratable that is created but never elaborated, and an
    object whose constructor raised a validation error is such an object; the warning (and its
    repr of a half-built object) would only hide the real error.
    """

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except BaseException:
            self._MustUse__silence = True
            raise

    return wrapper  # type: ignore[return-value]


def never_elaborated(obj: object) -> object:
    """Mark ``obj`` and the elaboratables it holds (attributes, lists, dicts) as meant never to
    be elaborated, so Amaranth does not warn about them: for components built only for their
    Python-side methods (a driver encoding descriptors, a register map reading layouts)."""
    seen: set[int] = set()

    def walk(o: object, depth: int) -> None:
        if id(o) in seen or depth > 6:
            return
        seen.add(id(o))
        if hasattr(o, "_MustUse__silence"):
            o._MustUse__silence = True
        if isinstance(o, list | tuple):
            for x in o:
                walk(x, depth + 1)
        elif isinstance(o, dict):
            for x in o.values():
                walk(x, depth + 1)
        elif hasattr(o, "__dict__") and hasattr(o, "elaborate"):
            for x in vars(o).values():
                walk(x, depth + 1)

    walk(obj, 0)
    return obj
