"""Resource floors: what a configuration needs at least, known before synthesis.

Synthesis of a core that cannot fit its board can take an hour and tens of GB (a memory built
from flip-flops is one flip-flop and a multiplexer input per bit). :func:`resource_floor`
counts, from the configuration alone and in milliseconds, the flip-flops two parts of the
engine cannot avoid; :func:`fixar_hw.flow.build.build` refuses a configuration whose floor is
beyond the board before it starts synthesis.

The floors are lower bounds, not estimates: the synthesized counts are never smaller (a test
compares them with synthesis). They count:

* **memories that no block RAM can hold**: an engine memory written through two or more
  ports and with three or more ports in all (the activation memory ``A`` and the gradient
  memory ``G`` of a multi-core build: :class:`fixar_hw.train.buffers.Buffers`). Block RAM
  has at most two ports (ECP5 DP16KD, Xilinx RAMB) or one write port (iCE40 SB_RAM40_4K), and
  LUT RAM one write port, so Yosys builds such a memory from one flip-flop per bit;
* **pipelined update units** on ECP5 and iCE40: each of the ``39 + W`` pipeline stages of an
  :class:`fixar_hw.train.update.UpdateUnit` registers the element's op code, weight, first and
  second moment (``2 + W + G + 63`` bits). (Xilinx can put such shift registers in LUTs, so no
  floor is claimed there.)
"""

from __future__ import annotations

from dataclasses import dataclass

from fixar_hw.config import CoreConfig
from fixar_hw.train.description import memory_depths, memory_layouts, memory_ports
from fixar_hw.train.update import update_latency

__all__ = ["FloorItem", "resource_floor"]

#: Families whose flip-flops cannot be replaced by LUT shift registers.
_NO_SHIFT_REGISTERS = ("ecp5", "ice40")


@dataclass(frozen=True)
class FloorItem:
    """One part's share of a resource floor.

    Attributes
    ----------
    kind : str
        The resource (``"ff"``).
    count : int
        How many the part needs at least.
    part : str
        The part, e.g. ``"memory G"`` or ``"4 pipelined update units"``.
    why : str
        Why it needs them, in a sentence.
    """

    kind: str
    count: int
    part: str
    why: str


def resource_floor(config: CoreConfig, family: str) -> list[FloorItem]:
    """The parts of ``config`` whose resources are known before synthesis (module docs).

    Parameters
    ----------
    config : CoreConfig
    family : str
        ``"ecp5"``, ``"ice40"`` or ``"xilinx"``.

    Returns
    -------
    list of FloorItem
        Sum the ``count`` of the items of a ``kind`` for that resource's floor.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`~fixar_hw.config.CoreConfig`.
    """
    if not isinstance(config, CoreConfig):
        raise TypeError(f"config must be a CoreConfig, not {config!r}")
    e = config.engine
    items = []
    depths, layouts = memory_depths(e), memory_layouts(e)
    for name, (reads, writes) in memory_ports(e).items():
        if writes >= 2 and reads + writes >= 3:
            bits = max(depths[name], 2) * layouts[name].size
            items.append(FloorItem(
                "ff", bits, f"memory {name}",
                f"memory {name} has {writes} write and {reads} read ports, more than any "
                f"block RAM: its {bits:,} bits are built from flip-flops"))
    if e.update_kind == "pipelined" and family in _NO_SHIFT_REGISTERS:
        d = e.ddpg
        stages = update_latency(d.weight_fmt)
        per_unit = stages * (2 + d.weight_fmt.width + d.grad_fmt.width + 63)
        items.append(FloorItem(
            "ff", per_unit * e.update_units, f"{e.update_units} pipelined update unit(s)",
            f"each of the {e.update_units} pipelined update unit(s) registers an element in "
            f"each of its {stages} stages (at least {per_unit:,} flip-flops a unit; "
            f"engine.update_kind 'iterative' needs a few hundred)"))
    return items
