"""The Verilog of a :class:`~fixar_hw.soc.core.FixarCore`, with the header that documents it.

The Verilator model of the core (:func:`fixar_hw.sim.core_verilator.core_verilog`) and the
testbench kit use :func:`export_core`; it writes what ``fixar-hw export core`` writes into its
``.v`` file (:func:`fixar_hw.flow.part_export.documented`): the configuration, every port with
its direction, width, signedness and role, the payload fields and the reset values, then the
module that :func:`fixar_hw.flow.export.to_verilog` prints.
"""

from __future__ import annotations

from fixar_hw.flow.export import to_verilog
from fixar_hw.flow.part_export import documented
from fixar_hw.soc.core import FixarCore

__all__ = ["export_core"]


def export_core(core: FixarCore, name: str = "fixar_core") -> str:
    """``core`` as Verilog module ``name``, preceded by the comment that documents it.

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
    if not isinstance(core, FixarCore):
        raise TypeError(f"core must be a FixarCore, not {core!r}")
    text = to_verilog(core, name=name)
    return documented(core, name, text, part="core", config=core.config)
