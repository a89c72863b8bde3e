"""Where synthesis put each memory: block RAM, LUT RAM or flip-flops.

Yosys' ``memory_libmap`` pass decides, memory by memory, which of the family's RAM primitives
builds it, and logs each decision (``mapping memory top.x.y via $__ECP5_DP16KD_``, or ``using
FF mapping for memory top.x.y`` when no primitive offers the ports the memory needs: it is
then built from flip-flops and multiplexers). :func:`memory_placement` reads those lines from a
synthesis log and the memories' sizes from the netlist that was synthesized (Amaranth's RTLIL,
whose module names are hierarchical paths, or Verilog), so a build can name every memory that
missed block RAM and say how large it is. No installable tool reports this per memory: the
cell histogram only says how many RAM primitives there are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["BLOCK", "FLIP_FLOPS", "LUT_RAM", "MemoryPlacement", "memory_bits",
           "memory_placement"]

#: Kinds of :attr:`MemoryPlacement.kind`.
BLOCK, LUT_RAM, FLIP_FLOPS = "block", "lut", "ff"

_DECISION = re.compile(r"^(?:mapping memory (?P<mapped>\S+) via (?P<cell>\S+)"
                       r"|using FF mapping for memory (?P<ff>\S+))\s*$", re.MULTILINE)
# Yosys' block RAM cells of ECP5 (DP16KD, PDPW16KD), iCE40 (RAM4K, SPRAM) and 7-series
# (BLOCKRAM, for RAMB18/RAMB36)
_BLOCK_CELL = re.compile(r"DP16KD|PDPW16KD|RAM4K|SPRAM|BLOCKRAM|RAMB(?:18|36)")
_RTLIL_MODULE = re.compile(r"^module \\(\S+)\s*$")
_RTLIL_MEMORY = re.compile(r"^\s*memory width (\d+) size (\d+)(?: offset -?\d+)? \\(\S+)\s*$")
_VERILOG_MODULE = re.compile(r"^\s*module \\?(\S+?)\s*\(")
_VERILOG_MEMORY = re.compile(r"^\s*reg\s*\[(\d+):(\d+)\]\s*\\?(\S+)\s*\[(\d+):(\d+)\]\s*;")


@dataclass(frozen=True)
class MemoryPlacement:
    """One memory of a synthesized design and what builds it.

    Parameters
    ----------
    name : str
        The memory's hierarchical name below the top module (``engine.buffers.A``).
    kind : str
        :data:`BLOCK` (block RAM), :data:`LUT_RAM` (distributed RAM in logic cells) or
        :data:`FLIP_FLOPS` (flip-flops and multiplexers).
    cell : str
        The primitive Yosys mapped it to (``$__ECP5_DP16KD_``), or ``"FF"``.
    bits : int or None
        Width times depth, when the netlist declares it (None otherwise).
    """

    name: str
    kind: str
    cell: str
    bits: int | None

    @property
    def declared(self) -> bool:
        """Whether the design declares this memory; Yosys also makes ROMs of its own from
        ``case`` statements (``proc_rom``), whose names hold a ``$``."""
        return "$" not in self.name


def memory_bits(netlist: str) -> dict[str, int]:
    """Bits (width times depth) of every memory an RTLIL or Verilog netlist declares, by the
    hierarchical name Yosys gives it once the design is flattened (the module's path below
    ``top``, a dot, the memory's name).

    Parameters
    ----------
    netlist : str
        Amaranth's RTLIL (``memory width W size D \\name`` inside ``module \\top.a.b``), or
        Verilog (``reg [W-1:0] name [D-1:0];``).

    Returns
    -------
    dict of str to int
    """
    if not isinstance(netlist, str):
        raise TypeError(f"netlist must be a str, not {type(netlist).__name__}")
    out: dict[str, int] = {}
    module = ""
    for line in netlist.splitlines():
        head = _RTLIL_MODULE.match(line) or _VERILOG_MODULE.match(line)
        if head:
            module = head.group(1)
            continue
        rtlil = _RTLIL_MEMORY.match(line)
        if rtlil:
            width, size, name = int(rtlil.group(1)), int(rtlil.group(2)), rtlil.group(3)
        else:
            verilog = _VERILOG_MEMORY.match(line)
            if not verilog:
                continue
            hi, lo, name, a, b = verilog.groups()
            width = abs(int(hi) - int(lo)) + 1
            size = abs(int(a) - int(b)) + 1
        path = module.split(".", 1)[1] if "." in module else ""
        out[f"{path}.{name}" if path else name] = width * size
    return out


def memory_placement(log: str, netlist: str | None = None) -> list[MemoryPlacement]:
    """Every memory ``memory_libmap`` placed, in the order of the log.

    Parameters
    ----------
    log : str
        A Yosys synthesis log (``synth_ecp5``, ``synth_ice40`` or ``synth_xilinx``).
    netlist : str, optional
        The netlist that was synthesized, for the sizes (:func:`memory_bits`).

    Returns
    -------
    list of MemoryPlacement
    """
    if not isinstance(log, str):
        raise TypeError(f"log must be a str, not {type(log).__name__}")
    sizes = memory_bits(netlist) if netlist is not None else {}
    out = []
    for match in _DECISION.finditer(log):
        full = match.group("mapped") or match.group("ff")
        # "<module>.<memory id>": the top module's name, then the flattened memory's path
        name = full.split(".", 1)[1] if "." in full else full
        name = name.replace("\\", "")
        if match.group("ff"):
            kind, cell = FLIP_FLOPS, "FF"
        else:
            cell = match.group("cell")
            kind = BLOCK if _BLOCK_CELL.search(cell) else LUT_RAM
        out.append(MemoryPlacement(name, kind, cell, sizes.get(name)))
    return out
