"""FPGA resource estimates by in-process Yosys synthesis.

:func:`resources` converts an Amaranth design to RTLIL, synthesizes it with the
Yosys Python bindings (``pyosys``) for one FPGA family, flattens it, and counts
the primitive cells of the synthesized top module by walking the netlist through
the pyosys API (no text logs are parsed).

Families and the Yosys scripts used (all of them flatten the design and infer
DSP blocks, block RAM and LUT RAM):

``"ecp5"``
    ``synth_ecp5 -top NAME`` (flattens and infers ``MULT18X18D`` by default).
``"ice40"``
    ``synth_ice40 -dsp -top NAME`` (flattens by default; ``-dsp`` enables
    ``SB_MAC16`` inference, which is off by default).
``"xilinx"``
    ``synth_xilinx -family xc7 -flatten -noiopad -noclkbuf -top NAME``. I/O and
    clock buffers are left out so that a block is measured like it would be
    inside a larger design, as for the other two families.

What is counted, per family (each number is a number of cells):

``lut``
    ECP5: ``LUT4`` cells plus **two** per ``CCU2C`` carry cell, since a CCU2C
    occupies the two LUT4s of a slice. iCE40: ``SB_LUT4`` (``SB_CARRY`` uses
    the carry chain next to a LUT and is not counted). Xilinx: ``LUT1`` to
    ``LUT6``, ``LUT6_2`` and ``INV`` (Vivado places an ``INV`` in a LUT1).
``ff``
    ECP5: ``TRELLIS_FF``. iCE40: every ``SB_DFF*`` variant. Xilinx: every
    ``FD*`` cell (``FDRE``, ``FDSE``, ``FDCE``, ``FDPE``, ...).
``dsp``
    ECP5: ``MULT18X18D`` (``ALU54B`` accumulators are only in ``cells``).
    iCE40: ``SB_MAC16``. Xilinx: ``DSP48E1`` / ``DSP48E2``.
``bram``
    ECP5: ``DP16KD`` / ``PDPW16KD``. iCE40: ``SB_RAM40_4K*`` and
    ``SB_SPRAM256KA``. Xilinx: ``RAMB18E1`` / ``RAMB36E1`` / ``RAMB18E2`` /
    ``RAMB36E2``; a RAMB36 counts as one cell, not as two RAMB18s.
``lutram``
    ECP5: ``TRELLIS_DPR16X4``. iCE40: always 0 (no distributed RAM). Xilinx:
    ``RAM32M``, ``RAM64M``, ``RAM32M16``, ``RAM64M8`` and the ``RAM*X1S`` /
    ``RAM*X1D`` primitives, plus the ``SRL16E`` / ``SRLC16E`` / ``SRLC32E``
    shift registers (Vivado reports those as "LUT as Memory" too). One count
    per primitive, not per LUT site.

``cells`` keeps the full cell-type histogram (carry chains, wide-function muxes
such as ``PFUMX`` / ``L6MUX21`` / ``MUXF7``, ``ALU54B``, ...), so nothing that
the fields above leave out is lost. Cell types are unescaped (``LUT4``, not
``\\LUT4``). The ``$scopeinfo`` cells that ``flatten`` leaves behind to record
the removed hierarchy are not hardware and are left out.

Notes
-----
A Yosys error inside pyosys 0.70 is not turned into a Python exception: Yosys
ends the whole interpreter with exit status 1. Since Yosys output is kept off the
console, the log of each run goes to a ``fixar_hw_synth_*`` directory in the
system temporary directory; the directory is removed after a successful run, so
after such an exit the last Yosys log, with its ``ERROR:`` line, is still there.
"""

from __future__ import annotations

import collections
import os
import tempfile
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from amaranth.back import rtlil

from fixar_hw.errors import ToolError

__all__ = ["FAMILIES", "Resources", "format_table", "resources"]

FAMILIES: tuple[str, ...] = ("ecp5", "ice40", "xilinx")
"""FPGA families that :func:`resources` can synthesize for."""

# The synthesis command of each family, without ``-top NAME``.
_SYNTH_COMMANDS: dict[str, tuple[str, ...]] = {
    "ecp5": ("synth_ecp5",),
    "ice40": ("synth_ice40", "-dsp"),
    "xilinx": ("synth_xilinx", "-family", "xc7", "-flatten", "-noiopad", "-noclkbuf"),
}

_XILINX_LUTS = frozenset({"LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "LUT6_2", "INV"})
_XILINX_LUTRAMS = frozenset(
    {
        "RAM32M", "RAM64M", "RAM32M16", "RAM64M8",
        "RAM16X1S", "RAM32X1S", "RAM64X1S", "RAM128X1S", "RAM256X1S", "RAM512X1S",
        "RAM16X1D", "RAM32X1D", "RAM64X1D", "RAM128X1D", "RAM256X1D",
        "SRL16E", "SRLC16E", "SRLC32E",
    }
)  # fmt: skip
_XILINX_BRAMS = frozenset({"RAMB18E1", "RAMB36E1", "RAMB18E2", "RAMB36E2"})


def _family_message(family: object) -> str:
    names = ", ".join(repr(f) for f in FAMILIES)
    return f"family must be one of {names}, not {family!r}"


@dataclass(frozen=True)
class Resources:
    """Resource counts of one synthesized design.

    Parameters
    ----------
    family : str
        FPGA family the design was synthesized for, one of :data:`FAMILIES`.
    lut : int
        Logic LUTs (ECP5: ``LUT4`` + 2 per ``CCU2C``; iCE40: ``SB_LUT4``;
        Xilinx: ``LUT1`` .. ``LUT6``, ``LUT6_2``, ``INV``).
    ff : int
        Flip-flops (ECP5: ``TRELLIS_FF``; iCE40: ``SB_DFF*``; Xilinx: ``FD*``).
    dsp : int
        Multiplier / DSP blocks (ECP5: ``MULT18X18D``; iCE40: ``SB_MAC16``;
        Xilinx: ``DSP48E1`` / ``DSP48E2``).
    bram : int
        Block RAM primitives (ECP5: ``DP16KD`` / ``PDPW16KD``; iCE40:
        ``SB_RAM40_4K*`` / ``SB_SPRAM256KA``; Xilinx: ``RAMB18E*`` /
        ``RAMB36E*``).
    lutram : int
        Distributed-RAM primitives (ECP5: ``TRELLIS_DPR16X4``; iCE40: 0;
        Xilinx: ``RAM32M`` / ``RAM64M`` / ``RAM*X1*`` / ``SRL*``).
    cells : Mapping[str, int]
        Raw histogram of the cell types of the flattened, synthesized top
        module, sorted by cell type. Stored read-only.

    See Also
    --------
    resources : Produces instances of this class.
    """

    family: str
    lut: int
    ff: int
    dsp: int
    bram: int
    lutram: int
    # Left out of the hash (a mapping is unhashable) but still compared.
    cells: Mapping[str, int] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        frozen = types.MappingProxyType(dict(sorted(self.cells.items())))
        object.__setattr__(self, "cells", frozen)

    def as_dict(self) -> dict[str, Any]:
        """Return the counts as a plain, JSON-serializable dictionary.

        Returns
        -------
        dict
            Keys ``family``, ``lut``, ``ff``, ``dsp``, ``bram``, ``lutram`` and
            ``cells`` (a new ``dict`` copy of the histogram).
        """
        return {
            "family": self.family,
            "lut": self.lut,
            "ff": self.ff,
            "dsp": self.dsp,
            "bram": self.bram,
            "lutram": self.lutram,
            "cells": dict(self.cells),
        }


def _classify(family: str, cells: Mapping[str, int]) -> Resources:
    """Sum a cell-type histogram into the fields of :class:`Resources`."""

    def total(pred: Callable[[str], bool]) -> int:
        return sum(n for cell_type, n in cells.items() if pred(cell_type))

    if family == "ecp5":
        lut = cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0)
        ff = cells.get("TRELLIS_FF", 0)
        dsp = cells.get("MULT18X18D", 0)
        bram = cells.get("DP16KD", 0) + cells.get("PDPW16KD", 0)
        lutram = cells.get("TRELLIS_DPR16X4", 0)
    elif family == "ice40":
        lut = cells.get("SB_LUT4", 0)
        ff = total(lambda t: t.startswith("SB_DFF"))
        dsp = cells.get("SB_MAC16", 0)
        bram = total(lambda t: t.startswith("SB_RAM40_4K")) + cells.get("SB_SPRAM256KA", 0)
        lutram = 0
    else:  # xilinx
        lut = total(_XILINX_LUTS.__contains__)
        ff = total(lambda t: t.startswith("FD"))
        dsp = cells.get("DSP48E1", 0) + cells.get("DSP48E2", 0)
        bram = total(_XILINX_BRAMS.__contains__)
        lutram = total(_XILINX_LUTRAMS.__contains__)
    return Resources(family, lut, ff, dsp, bram, lutram, cells)


def resources(
    elaboratable: Any, family: str, *, ports: Iterable[Any] | None = None, name: str = "top"
) -> Resources:
    """Synthesize a design with Yosys and count the FPGA resources it uses.

    The design is converted with :func:`amaranth.back.rtlil.convert`, read into a
    fresh ``pyosys`` design, and synthesized in this process with the family's
    Yosys script (flattened, with DSP inference on); see the module
    documentation for the exact commands and what each field counts. Every call
    builds its own Yosys design, so calls do not affect each other, and the
    synthesis is deterministic: the same design gives equal results each time.

    Parameters
    ----------
    elaboratable : amaranth.hdl.Elaboratable
        The design. A :class:`amaranth.lib.wiring.Component` needs no ``ports``.
    family : str
        One of :data:`FAMILIES`: ``"ecp5"``, ``"ice40"`` or ``"xilinx"``.
    ports : iterable of amaranth.hdl.Signal, optional
        Top-level ports, passed on to :func:`amaranth.back.rtlil.convert`;
        required for an elaboratable that is not a ``wiring.Component``.
    name : str, optional
        Name of the top module (default ``"top"``).

    Returns
    -------
    Resources
        Counts of LUTs, flip-flops, DSP blocks, block RAMs and LUT RAMs, and
        the raw cell histogram of the synthesized top module.

    Raises
    ------
    TypeError
        If ``family`` or ``name`` is not a ``str``.
    ValueError
        If ``family`` is not in :data:`FAMILIES` or ``name`` is empty.
    ToolError
        If the top module cannot be found in the design after synthesis (a
        ``RuntimeError``).

    Notes
    -----
    Yosys errors (for example an ``Instance`` of a primitive the family does not
    have) end the Python process with exit status 1, because pyosys 0.70 does
    not raise them as exceptions; the Yosys log is then left in a
    ``fixar_hw_synth_*`` temporary directory.

    Examples
    --------
    >>> from fixar_hw.flow.synth import resources
    >>> res = resources(MyCounter(), "ice40")  # doctest: +SKIP
    >>> res.ff  # doctest: +SKIP
    8
    """
    if not isinstance(family, str):
        raise TypeError(_family_message(family))
    if family not in FAMILIES:
        raise ValueError(_family_message(family))
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, not {name!r}")
    if not name:
        raise ValueError("name must be a non-empty str")

    text = rtlil.convert(elaboratable, ports=ports, name=name)

    # Imported here so that importing fixar_hw.flow.synth stays cheap.
    from pyosys import libyosys as ys

    log_dir = tempfile.mkdtemp(prefix="fixar_hw_synth_")
    il_path = os.path.join(log_dir, "design.il")
    log_path = os.path.join(log_dir, "yosys.log")
    with open(il_path, "w", encoding="utf-8") as f:
        f.write(text)

    # Quiet output: `Design.run_pass` calls Pass::call directly, so unlike the
    # module-level `ys.run_pass(cmd, design)` it does not print the
    # "-- Running command ..." banner to stdout; `tee -q` then removes the
    # console from Yosys' log streams for the wrapped command, and `-o`/`-a`
    # sends the log to a file instead. (pyosys 0.70 has no working binding for
    # the log streams: `ys.logger()` fails with "Unregistered type".)
    # Arguments are passed as a list so that paths need no quoting.
    design = ys.Design()
    design.run_pass(["tee", "-q", "-o", log_path, "read_rtlil", il_path])
    design.run_pass(["tee", "-q", "-a", log_path, *_SYNTH_COMMANDS[family], "-top", name])

    top = design.module(f"\\{name}")
    if top is None:
        raise ToolError(f"top module {name!r} not found after synthesis; see {log_path}")
    # `Module.cells()` has no Python binding in pyosys 0.70 ("Unregistered type
    # ObjRange<Cell*>"); the `cells_` dict (IdString -> Cell) works.
    # `$scopeinfo` cells only record the hierarchy that `flatten` removed (for
    # debug names); they are no hardware and are left out.
    histogram = collections.Counter(
        cell_type
        for cell_type in (cell.type.unescape() for cell in top.cells_.values())
        if cell_type != "$scopeinfo"
    )
    del top, design

    for path in (il_path, log_path):
        os.remove(path)
    os.rmdir(log_dir)
    return _classify(family, histogram)


def format_table(rows: Sequence[tuple[str, Resources]]) -> str:
    """Render resource counts as a plain-text table with aligned columns.

    Parameters
    ----------
    rows : sequence of (str, Resources)
        One ``(name, resources)`` pair per table row, in display order.

    Returns
    -------
    str
        A header line, a dashed rule and one line per row, joined with
        newlines (no trailing newline). Text columns are left-aligned and
        number columns right-aligned.

    Examples
    --------
    >>> from fixar_hw.flow.synth import Resources, format_table
    >>> print(format_table([("pe", Resources("ecp5", 120, 64, 1, 0, 0, {}))]))
    name  family  LUT  FF  DSP  BRAM  LUTRAM
    ----  ------  ---  --  ---  ----  ------
    pe    ecp5    120  64    1     0       0
    """
    header = ("name", "family", "LUT", "FF", "DSP", "BRAM", "LUTRAM")
    body = [
        (str(n), r.family, str(r.lut), str(r.ff), str(r.dsp), str(r.bram), str(r.lutram))
        for n, r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def render(line: Sequence[str]) -> str:
        cols = [
            text.ljust(width) if i < 2 else text.rjust(width)
            for i, (text, width) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(cols).rstrip()

    rule = ["-" * w for w in widths]
    return "\n".join(render(line) for line in [header, rule, *body])
