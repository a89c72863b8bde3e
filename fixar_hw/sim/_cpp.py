"""The C++ testbenches and harnesses shipped with :mod:`fixar_hw.sim` (``fixar_hw/sim/cpp/``).

Each source is a template: ``@NAME@`` marks a value the Python side fills in (the exported
module's name, port members, widths) before the text is handed to Verilator.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib.resources import files

__all__ = ["cpp_source", "render"]

_PLACEHOLDER = re.compile(r"@(\w+)@")


@cache
def cpp_source(name: str) -> str:
    """The text of ``fixar_hw/sim/cpp/<name>``, placeholders unsubstituted.

    Parameters
    ----------
    name : str
        The file's name, e.g. ``"array_tb.cpp"``.

    Returns
    -------
    str

    Raises
    ------
    FileNotFoundError
        If the package holds no such file.
    """
    return (files("fixar_hw.sim") / "cpp" / name).read_text(encoding="utf-8")


def render(name: str, values: Mapping[str, str]) -> str:
    """``fixar_hw/sim/cpp/<name>`` with every ``@KEY@`` replaced by ``values[KEY]``.

    Parameters
    ----------
    name : str
        The file's name.
    values : mapping of str to str
        A value for every placeholder the file holds.

    Returns
    -------
    str

    Raises
    ------
    KeyError
        If the file holds a placeholder that ``values`` does not give.
    """
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], cpp_source(name))
