"""The Verilog of a :class:`~fixar_hw.soc.core.FixarCore`, with the header that documents it.

``fixar-hw export`` and the Verilator model of the core
(:func:`fixar_hw.sim.core_verilator.core_verilog`) write the same text: a comment block naming
the module, the configuration ID, the configuration (its JSON) and every port with its
direction, width and role (:meth:`FixarCore.port_table
<fixar_hw.soc.core.FixarCore.port_table>`), then the module that
:func:`fixar_hw.flow.export.to_verilog` prints.
"""

from __future__ import annotations

from fixar_hw.flow.export import to_verilog
from fixar_hw.soc.core import FixarCore

__all__ = ["export_core", "verilog_header"]


def _check_core(core: object) -> FixarCore:
    if not isinstance(core, FixarCore):
        raise TypeError(f"core must be a FixarCore, not {core!r}")
    return core


def verilog_header(core: FixarCore, name: str = "fixar_core") -> str:
    """A Verilog comment documenting the configuration and the ports of ``core``'s export.

    Parameters
    ----------
    core : FixarCore
    name : str
        The exported module's name, as the first line states it.

    Returns
    -------
    str
        ``//`` lines, each ending in a newline.

    Raises
    ------
    TypeError
        If ``core`` is not a :class:`~fixar_hw.soc.core.FixarCore`.
    """
    c = _check_core(core).config
    lines = [f"// {name}: fixar-hw FixarCore, config id 0x{c.config_id:08x}",
             "// Register map: fixar-hw export --regmap DIR (JSON, C header, Markdown).",
             "// Configuration:"]
    lines += [f"//   {line}" for line in c.to_json().splitlines()]
    lines.append("// Ports:")
    for port, direction, width, role in core.port_table():
        lines.append(f"//   {direction:6} {width:3}  {port:16} {role}")
    return "\n".join(lines) + "\n"


def export_core(core: FixarCore, name: str = "fixar_core") -> str:
    """``core`` as Verilog module ``name``, preceded by :func:`verilog_header`.

    Parameters
    ----------
    core : FixarCore
    name : str
        The module name: a simple Verilog identifier that is not a reserved word.

    Returns
    -------
    str
        The header and the Verilog source.

    Raises
    ------
    TypeError
        If ``core`` is not a :class:`~fixar_hw.soc.core.FixarCore` or ``name`` not a string.
    ValueError
        If ``name`` is not a valid identifier.
    """
    _check_core(core)
    text = to_verilog(core, name=name)
    return verilog_header(core, name) + text
