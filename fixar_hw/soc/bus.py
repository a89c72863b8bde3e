"""Bus signatures: Wishbone B4 (pipelined, with ``ERR``) and AXI4-Lite.

These are the small parts of a bus library the accelerator needs, written in the style of
amaranth-soc (which is not installable from PyPI): :class:`wiring.Signature` subclasses with
keyword-only, validated parameters, named from the initiator's (master's) side, so that a master
component has ``Out(WishboneSignature(...))`` and a slave ``In(WishboneSignature(...))``. The
member names are the specifications' signal names (lower case), so an exported Verilog port
reads ``csr__adr``, ``dma__stb``, ``csr__awaddr`` and so on.

Wishbone B4 pipelined (``WishboneSignature``)
    Addresses count ``data_width``-bit words (``adr`` is a word address); ``sel`` has one bit
    per ``granularity`` bits of data. A master raises ``cyc`` for a bus cycle and ``stb`` for
    each request; a request is *accepted* on a cycle with ``cyc & stb & ~stall``, and the
    master holds ``adr``, ``dat_w``, ``sel`` and ``we`` while ``stb & stall``. The slave
    answers every accepted request, in order, with exactly one cycle of ``ack`` (done) or
    ``err`` (failed), never both, and only while ``cyc`` is high; a master may drop ``cyc``
    to abandon its outstanding requests (after an ``err``, say). Several requests may be
    outstanding (pipelined bursts).

AXI4-Lite (``AXILiteSignature``)
    The five channels ``aw``, ``w``, ``b``, ``ar``, ``r`` with ``valid``/``ready`` handshakes;
    byte addresses; ``bresp``/``rresp`` are ``OKAY`` (0) or ``SLVERR`` (2). ``data_width`` is 32
    or 64, as the specification allows.
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import check_int

__all__ = [
    "AXI_RESP",
    "WISHBONE_WIDTHS",
    "AXILiteSignature",
    "WishboneSignature",
    "check_bus_widths",
    "check_width",
]

#: AXI response codes.
AXI_RESP = {"okay": 0, "exokay": 1, "slverr": 2, "decerr": 3}


#: Data widths a Wishbone bus may have (and its ``sel`` granularities).
WISHBONE_WIDTHS = (8, 16, 32, 64)


def _prefix(owner: str | None) -> str:
    return f"{owner} " if owner else ""


def check_width(value: object, name: str, *, owner: str | None = None,
                choices: tuple[int, ...] = WISHBONE_WIDTHS, at_most: int | None = None
                ) -> int:
    """Return ``value`` if it is one of the integers ``choices`` (and at most ``at_most``),
    else raise: a data width or a ``sel`` granularity.

    Messages read ``BridgeEngine data_width must be 8, 16, 32 or 64, not 24`` and, with
    ``at_most``, ``... granularity must be 8, 16, 32 or 64 and at most data_width (32), not
    64``.

    Raises
    ------
    TypeError
        If ``value`` is not an integer.
    ValueError
        If it is not one of ``choices``, or above ``at_most``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{_prefix(owner)}{name} must be an integer, not {value!r}")
    if value not in choices or (at_most is not None and value > at_most):
        names = ", ".join(str(c) for c in choices[:-1]) + f" or {choices[-1]}"
        limit = "" if at_most is None else f" and at most data_width ({at_most})"
        raise ValueError(f"{_prefix(owner)}{name} must be {names}{limit}, not {value!r}")
    return value


def check_bus_widths(owner: str, addr_width: object, data_width: object,
                     granularity: object) -> None:
    """Check the three widths of a Wishbone port (``addr_width`` 1 to 64, ``data_width`` and
    ``granularity`` by :func:`check_width`), naming ``owner`` in the message.

    Raises
    ------
    TypeError, ValueError
        For the first bad width, naming it.
    """
    check_int(addr_width, "addr_width", owner=owner, minimum=1, maximum=64)
    check_width(data_width, "data_width", owner=owner)
    check_width(granularity, "granularity", owner=owner, at_most=data_width)


class WishboneSignature(wiring.Signature):
    """A Wishbone B4 pipelined bus with ``ERR`` and ``STALL``, from the master's side.

    Parameters
    ----------
    addr_width : int
        Word address bits (1 to 64).
    data_width : int
        Data bits: 8, 16, 32 or 64.
    granularity : int, optional
        Bits per ``sel`` bit: 8 (byte lanes) up to ``data_width``; default ``data_width``
        (one ``sel`` bit).

    Members
    -------
    adr : Out(addr_width)
    dat_w : Out(data_width)
    dat_r : In(data_width)
    sel : Out(data_width // granularity)
    cyc, stb, we : Out(1)
    ack, err, stall : In(1)

    Raises
    ------
    TypeError, ValueError
        For a width that is not an integer or out of range, naming the parameter.
    """

    def __init__(self, *, addr_width: int, data_width: int, granularity: int | None = None
                 ) -> None:
        owner = "WishboneSignature"
        check_bus_widths(owner, addr_width, data_width,
                         data_width if granularity is None else granularity)
        if granularity is None:
            granularity = data_width
        self._addr_width = addr_width
        self._data_width = data_width
        self._granularity = granularity
        super().__init__({
            "adr": Out(addr_width),
            "dat_w": Out(data_width),
            "dat_r": In(data_width),
            "sel": Out(data_width // granularity),
            "cyc": Out(1),
            "stb": Out(1),
            "we": Out(1),
            "ack": In(1),
            "err": In(1),
            "stall": In(1),
        })

    @property
    def addr_width(self) -> int:
        return self._addr_width

    @property
    def data_width(self) -> int:
        return self._data_width

    @property
    def granularity(self) -> int:
        return self._granularity

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, WishboneSignature)
                and (self.addr_width, self.data_width, self.granularity)
                == (other.addr_width, other.data_width, other.granularity))

    def __hash__(self) -> int:
        return hash((WishboneSignature, self.addr_width, self.data_width, self.granularity))

    def __repr__(self) -> str:
        return (f"WishboneSignature(addr_width={self.addr_width}, "
                f"data_width={self.data_width}, granularity={self.granularity})")


class AXILiteSignature(wiring.Signature):
    """An AXI4-Lite bus, from the master's side.

    Parameters
    ----------
    addr_width : int
        Byte address bits (1 to 64).
    data_width : int
        32 or 64.

    Members
    -------
    awaddr : Out(addr_width); awprot : Out(3); awvalid : Out(1); awready : In(1)
    wdata : Out(data_width); wstrb : Out(data_width // 8); wvalid : Out(1); wready : In(1)
    bresp : In(2); bvalid : In(1); bready : Out(1)
    araddr : Out(addr_width); arprot : Out(3); arvalid : Out(1); arready : In(1)
    rdata : In(data_width); rresp : In(2); rvalid : In(1); rready : Out(1)

    Raises
    ------
    TypeError, ValueError
        For a width that is not an integer or out of range, naming the parameter.
    """

    def __init__(self, *, addr_width: int, data_width: int = 32) -> None:
        owner = "AXILiteSignature"
        check_int(addr_width, "addr_width", owner=owner, minimum=1, maximum=64)
        check_width(data_width, "data_width", owner=owner, choices=(32, 64))
        self._addr_width = addr_width
        self._data_width = data_width
        super().__init__({
            "awaddr": Out(addr_width), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wvalid": Out(1),
            "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_width), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })

    @property
    def addr_width(self) -> int:
        return self._addr_width

    @property
    def data_width(self) -> int:
        return self._data_width

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, AXILiteSignature)
                and (self.addr_width, self.data_width) == (other.addr_width, other.data_width))

    def __hash__(self) -> int:
        return hash((AXILiteSignature, self.addr_width, self.data_width))

    def __repr__(self) -> str:
        return f"AXILiteSignature(addr_width={self.addr_width}, data_width={self.data_width})"
