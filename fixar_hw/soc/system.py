"""The board SoC around :class:`~fixar_hw.soc.core.FixarCore`, and its Wishbone interconnect.

amaranth-soc, which has a Wishbone decoder and arbiter, is not installable from PyPI (the name
there is a placeholder), so the few interconnect pieces a board top needs are written here by
hand, in its style, on :class:`fixar_hw.soc.bus.WishboneSignature` (B4 pipelined, ``stall`` and
``err``):

:class:`WishboneDecoder`
    One master to N slaves by address window; unmapped addresses are answered with ``err``.
:class:`WishboneArbiter`
    N masters to one slave, round robin, one master per bus cycle (``cyc``).
:class:`WishboneSRAM`
    On-chip RAM (:class:`amaranth.lib.memory.Memory`: block RAM on ECP5 and Xilinx) behind a
    pipelined slave: one request per cycle, answered on the next.
:class:`FixarSoC`
    A UART pin pair to the host (:class:`~fixar_hw.soc.bridges.UARTWishboneBridge`; or, with
    ``link="stream"``, the bridge's byte streams), the core, and a :class:`WishboneSRAM` that
    the core's DMA uses as its external memory. Board tops wrap it.

Python twins used by the tests: :class:`WindowMap` (the decoding rule, and the one place the
windows are validated) and :class:`MemoryMapModel` (a dict memory per window behind a
:class:`WindowMap`). :func:`driver_memory_words` is the external memory
:class:`~fixar_hw.host.driver.FixarDriver` stages its images in, which sizes the SoC's RAM.
"""

import math
from collections.abc import Callable, MutableMapping, Sequence

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import silence_on_error
from fixar_hw.config import CoreConfig
from fixar_hw.host.driver import SerialTransport
from fixar_hw.soc.bridges import BridgeEngine, UARTWishboneBridge
from fixar_hw.soc.bus import WishboneSignature
from fixar_hw.soc.core import FixarCore
from fixar_hw.soc.csr import register_map

__all__ = [
    "FixarSoC",
    "MemoryMapModel",
    "WindowMap",
    "WishboneArbiter",
    "WishboneDecoder",
    "WishboneSRAM",
    "driver_memory_words",
]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(value: object, name: str, owner: str, minimum: int, maximum: int) -> int:
    if not _is_int(value):
        raise TypeError(f"{owner} {name} must be an integer, not {value!r}")
    if not minimum <= value <= maximum:
        raise ValueError(f"{owner} {name} must be in [{minimum}, {maximum}], not {value!r}")
    return value


def _is_pow2(value: int) -> bool:
    return value >= 1 and value & (value - 1) == 0


def _bus_widths(owner: str, addr_width: object, data_width: object, granularity: object
                ) -> None:
    _check_int(addr_width, "addr_width", owner, 1, 64)
    if not _is_int(data_width):
        raise TypeError(f"{owner} data_width must be an integer, not {data_width!r}")
    if data_width not in (8, 16, 32, 64):
        raise ValueError(f"{owner} data_width must be 8, 16, 32 or 64, not {data_width!r}")
    if not _is_int(granularity):
        raise TypeError(f"{owner} granularity must be an integer, not {granularity!r}")
    if granularity not in (8, 16, 32, 64) or granularity > data_width:
        raise ValueError(f"{owner} granularity must be 8, 16, 32 or 64 and at most data_width "
                         f"({data_width}), not {granularity!r}")


# --- Python twins --------------------------------------------------------------------------------

class WindowMap:
    """Address windows of a :class:`WishboneDecoder`, and its decoding rule in Python.

    Parameters
    ----------
    addr_width : int
        Word-address bits of the decoded bus (1 to 64).
    windows : sequence of (int, int)
        ``(base, size)`` word-address windows, one per slave: ``size`` a power of two,
        ``base`` a multiple of ``size``, inside ``[0, 2**addr_width)``, no two overlapping.
    owner : str, optional
        The name error messages start with.

    Raises
    ------
    TypeError
        If ``windows`` is not a sequence of pairs of integers.
    ValueError
        If it is empty, or a window is misaligned, too big, outside the address space or
        overlaps another; the message names the window (``windows[i]``).
    """

    def __init__(self, *, addr_width: int, windows: Sequence[tuple[int, int]],
                 owner: str = "WindowMap") -> None:
        _check_int(addr_width, "addr_width", owner, 1, 64)
        if isinstance(windows, (str, bytes)) or not isinstance(windows, Sequence):
            raise TypeError(f"{owner} windows must be a sequence of (base, size) pairs, not "
                            f"{windows!r}")
        if not windows:
            raise ValueError(f"{owner} windows must hold at least one window, not {windows!r}")
        out: list[tuple[int, int]] = []
        for i, w in enumerate(windows):
            if isinstance(w, (str, bytes)) or not isinstance(w, Sequence) or len(w) != 2 \
                    or not all(_is_int(v) for v in w):
                raise TypeError(f"{owner} windows[{i}] must be a (base, size) pair of integers, "
                                f"not {w!r}")
            base, size = w
            if not _is_pow2(size):
                raise ValueError(f"{owner} windows[{i}] size must be a power of two, not "
                                 f"{size!r}")
            if base < 0 or base % size:
                raise ValueError(f"{owner} windows[{i}] base must be a non-negative multiple of "
                                 f"its size {size:#x}, not {base:#x}")
            if base + size > 1 << addr_width:
                raise ValueError(f"{owner} windows[{i}] ({base:#x}, {size:#x}) does not fit "
                                 f"{addr_width}-bit addresses")
            for j, (b, s) in enumerate(out):
                if base < b + s and b < base + size:
                    raise ValueError(f"{owner} windows[{j}] ({b:#x}, {s:#x}) and windows[{i}] "
                                     f"({base:#x}, {size:#x}) overlap")
            out.append((base, size))
        self._addr_width = addr_width
        self._windows = tuple(out)

    @property
    def addr_width(self) -> int:
        """Word-address bits of the decoded bus."""
        return self._addr_width

    @property
    def windows(self) -> tuple[tuple[int, int], ...]:
        """The ``(base, size)`` windows, in slave order."""
        return self._windows

    def offset_width(self, index: int) -> int:
        """Address bits of slave ``index``'s port: ``log2(size)``, at least 1 (a one-word
        window's port has one address bit, always 0)."""
        return max(1, self._windows[index][1].bit_length() - 1)

    def decode(self, addr: int) -> tuple[int, int] | None:
        """``(slave index, word offset in its window)`` of bus word ``addr``, or ``None`` for an
        unmapped address (the decoder answers it with ``err``). Bits of ``addr`` above
        ``addr_width`` are ignored, as the bus has no wires for them."""
        addr &= (1 << self._addr_width) - 1
        for i, (base, size) in enumerate(self._windows):
            if base <= addr < base + size:
                return i, addr - base
        return None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WindowMap) and \
            (self._addr_width, self._windows) == (other._addr_width, other._windows)

    def __hash__(self) -> int:
        return hash((WindowMap, self._addr_width, self._windows))

    def __repr__(self) -> str:
        return f"WindowMap(addr_width={self._addr_width}, windows={list(self._windows)!r})"


def _merge_lanes(old: int, data: int, sel: int, lanes: int, granularity: int) -> int:
    for lane in range(lanes):
        if (sel >> lane) & 1:
            mask = ((1 << granularity) - 1) << (lane * granularity)
            old = (old & ~mask) | (data & mask)
    return old


class MemoryMapModel:
    """A Wishbone address map in Python: a dict memory behind each window of a
    :class:`WindowMap`, unmapped addresses failing. The reference the interconnect tests
    compare the hardware with.

    Parameters
    ----------
    windows : WindowMap
    memories : sequence of dict, optional
        One ``{offset: word}`` per window (absent words read 0); new empty ones by default.
    data_width, granularity : int
        Bits per word and per ``sel`` bit.
    error : sequence of callable, optional
        Per window, ``error(offset, we) -> bool``: the slave answers that access with ``err``
        (and does not perform it), as :func:`fixar_hw.sim.testing.wishbone_slave`'s ``error``.
    """

    def __init__(self, windows: WindowMap, memories: Sequence[MutableMapping[int, int]] | None
                 = None, *, data_width: int = 32, granularity: int = 8,
                 error: Sequence[Callable[[int, bool], bool]] | None = None) -> None:
        if not isinstance(windows, WindowMap):
            raise TypeError(f"MemoryMapModel windows must be a WindowMap, not {windows!r}")
        n = len(windows.windows)
        _bus_widths("MemoryMapModel", windows.addr_width, data_width, granularity)
        self.windows = windows
        self.memories: list[MutableMapping[int, int]] = \
            [{} for _ in range(n)] if memories is None else list(memories)
        if len(self.memories) != n:
            raise ValueError(f"MemoryMapModel memories must hold {n} memories, not "
                             f"{len(self.memories)}")
        self.error = [None] * n if error is None else list(error)
        if len(self.error) != n:
            raise ValueError(f"MemoryMapModel error must hold {n} callables, not "
                             f"{len(self.error)}")
        self.data_width = data_width
        self.granularity = granularity

    def access(self, we: bool, addr: int, data: int = 0, sel: int | None = None
               ) -> tuple[bool, int]:
        """One bus access: ``(ok, read data)``; a write honours ``sel`` (all lanes if None),
        a failed access (unmapped, or refused by the window's ``error``) changes nothing and
        reads 0."""
        lanes = self.data_width // self.granularity
        if sel is None:
            sel = (1 << lanes) - 1
        hit = self.windows.decode(addr)
        if hit is None:
            return False, 0
        index, offset = hit
        refuse = self.error[index]
        if refuse is not None and refuse(offset, bool(we)):
            return False, 0
        mem = self.memories[index]
        mask = (1 << self.data_width) - 1
        if we:
            mem[offset] = _merge_lanes(mem.get(offset, 0), data, sel, lanes,
                                       self.granularity) & mask
            return True, 0
        return True, mem.get(offset, 0) & mask

    def write(self, addr: int, data: int, sel: int | None = None) -> bool:
        """Write one word; whether it succeeded."""
        return self.access(True, addr, data, sel)[0]

    def read(self, addr: int) -> int | None:
        """Read one word; ``None`` when the access fails."""
        ok, data = self.access(False, addr)
        return data if ok else None


def driver_memory_words(config: CoreConfig) -> int:
    """Bus words of external memory :class:`~fixar_hw.host.driver.FixarDriver` stages images in.

    The driver gives every on-chip memory (``W G M V A P T``) a window of ``depth * beats``
    32-bit bus words, one after the other from its ``ext_base``; this is their sum, the
    smallest external memory that lets a driver with ``ext_base=0`` use every operation.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`~fixar_hw.config.CoreConfig`.
    """
    if not isinstance(config, CoreConfig):
        raise TypeError(f"config must be a CoreConfig, not {config!r}")
    return sum(g["depth"] * g["beats"] for g in register_map(config).memories)


# --- interconnect --------------------------------------------------------------------------------

class WishboneDecoder(wiring.Component):
    """One Wishbone B4 pipelined master to N slaves, by address window.

    Protocol
        A request whose address falls in ``windows[i]`` goes to slave ``i`` with the offset in
        the window as its address (``adr``, ``dat_w``, ``sel``, ``we`` and ``stb`` pass
        through; ``stall`` comes back). A slave's ``cyc`` is high while it has requests
        outstanding and while a request is offered to it. Answers (``ack``, ``err``,
        ``dat_r``) come back from the slave that owns the outstanding requests. The decoder
        switches to another slave only once every outstanding request is answered: a request
        for another slave is stalled until then, so answers return in request order. A
        request that hits no window is accepted at once and answered with ``err`` on the
        next cycle; it never reaches a slave. Dropping ``cyc`` abandons the outstanding
        requests (every slave's ``cyc`` drops with it).

    Latency and throughput
        No added cycles: requests and answers pass through combinationally (``err`` for an
        unmapped address: 1 cycle after the request). One request per cycle while the target
        slave stays the same; a change of slave waits for the previous slave's outstanding
        answers. At most ``max_outstanding`` requests are outstanding (the master is stalled
        beyond that).

    Parameters
    ----------
    addr_width : int
        Word-address bits of the master port (1 to 64).
    data_width : int
        8, 16, 32 or 64.
    granularity : int
        Bits per ``sel`` bit: 8, 16, 32 or 64, at most ``data_width``.
    windows : sequence of (int, int)
        ``(base, size)`` word-address windows, one per slave (see :class:`WindowMap`).
    max_outstanding : int
        Requests outstanding at once (1 to 256).

    Members
    -------
    bus : In(WishboneSignature(addr_width=addr_width, data_width=data_width,
        granularity=granularity))
    slave_0, slave_1, ... : Out(WishboneSignature(addr_width=window_map.offset_width(i),
        data_width=data_width, granularity=granularity))
        Also listed, in order, by :attr:`slaves`.

    Raises
    ------
    TypeError, ValueError
        For a bad parameter, naming it.
    """

    @silence_on_error
    def __init__(self, *, addr_width: int, data_width: int = 32, granularity: int = 8,
                 windows: Sequence[tuple[int, int]], max_outstanding: int = 16) -> None:
        owner = "WishboneDecoder"
        _bus_widths(owner, addr_width, data_width, granularity)
        self._map = WindowMap(addr_width=addr_width, windows=windows, owner=owner)
        _check_int(max_outstanding, "max_outstanding", owner, 1, 256)
        self._max_outstanding = max_outstanding
        self._data_width = data_width
        self._granularity = granularity
        members = {"bus": In(WishboneSignature(addr_width=addr_width, data_width=data_width,
                                               granularity=granularity))}
        for i in range(len(self._map.windows)):
            members[f"slave_{i}"] = Out(WishboneSignature(
                addr_width=self._map.offset_width(i), data_width=data_width,
                granularity=granularity))
        super().__init__(members)

    @property
    def addr_width(self) -> int:
        """Word-address bits of the master port."""
        return self._map.addr_width

    @property
    def data_width(self) -> int:
        return self._data_width

    @property
    def granularity(self) -> int:
        return self._granularity

    @property
    def windows(self) -> tuple[tuple[int, int], ...]:
        """The ``(base, size)`` windows, in slave order."""
        return self._map.windows

    @property
    def window_map(self) -> WindowMap:
        """The windows with their Python decoding rule."""
        return self._map

    @property
    def max_outstanding(self) -> int:
        return self._max_outstanding

    @property
    def slaves(self) -> tuple:
        """The slave ports, ``slaves[i]`` for ``windows[i]``."""
        return tuple(getattr(self, f"slave_{i}") for i in range(len(self._map.windows)))

    def elaborate(self, platform) -> Module:
        m = Module()
        bus = self.bus
        slaves = self.slaves
        n = len(slaves)
        unmapped = n  # the target/owner code of the built-in error responder
        target = Signal(range(n + 1))
        owner = Signal(range(n + 1))
        count = Signal(range(self._max_outstanding + 1))
        err_due = Signal()  # an unmapped request was accepted on the previous cycle

        m.d.comb += target.eq(unmapped)
        for i, (base, size) in enumerate(self._map.windows):
            k = size.bit_length() - 1
            with m.If(bus.adr[k:] == base >> k):
                m.d.comb += target.eq(i)

        busy = count != 0
        allowed = (~busy | (target == owner)) & (count != self._max_outstanding)
        slave_stall = Const(0)
        for i, s in enumerate(slaves):
            slave_stall = Mux(target == i, s.stall, slave_stall)
        m.d.comb += bus.stall.eq(~allowed | slave_stall)

        ack = Const(0)
        err = err_due & bus.cyc
        dat_r = Const(0, len(bus.dat_r))
        for i, s in enumerate(slaves):
            k = self._map.windows[i][1].bit_length() - 1
            mine = busy & (owner == i)
            m.d.comb += [
                s.adr.eq(bus.adr[:k] if k else 0),
                s.dat_w.eq(bus.dat_w), s.sel.eq(bus.sel), s.we.eq(bus.we),
                s.cyc.eq(bus.cyc & Mux(busy, owner == i, bus.stb & (target == i))),
                s.stb.eq(bus.stb & (target == i) & allowed),
            ]
            ack = ack | (s.ack & mine)
            err = err | (s.err & mine)
            dat_r = Mux(owner == i, s.dat_r, dat_r)
        m.d.comb += [bus.ack.eq(ack), bus.err.eq(err), bus.dat_r.eq(dat_r)]

        accepted = bus.cyc & bus.stb & ~bus.stall
        m.d.sync += err_due.eq(accepted & (target == unmapped))
        with m.If(~bus.cyc):
            m.d.sync += count.eq(0)
        with m.Else():
            m.d.sync += count.eq(count + accepted - (bus.ack | bus.err))
        with m.If(accepted):
            m.d.sync += owner.eq(target)
        # state for the property harness's white-box invariants (formal/soc/soc.py)
        self._observe = {"count": count, "owner": owner, "target": target, "err_due": err_due}
        return m


class WishboneArbiter(wiring.Component):
    """N Wishbone B4 pipelined masters sharing one slave, round robin.

    Protocol
        One master at a time is granted: its signals pass to ``bus`` and the slave's answers
        (and ``stall``) come back to it; every other master sees ``stall`` high and no
        answers. The grant changes only at a clock edge where the granted master's ``cyc``
        is low, and then goes to the next master, in index order after the granted one
        (wrapping), whose ``cyc`` is high; so a master's requests are all answered (or
        abandoned, by dropping ``cyc``) before another master is granted, and ``bus.cyc`` is
        low for at least one cycle between two masters. After reset master 0 is granted.

    Latency and throughput
        No added cycles for the granted master. A master that raises ``cyc`` while another
        one is granted waits until that master drops ``cyc``, plus one cycle (the grant is a
        register); a waiting master is granted after at most ``masters - 1`` other bus cycles.

    Parameters
    ----------
    addr_width : int
        Word-address bits (1 to 64).
    data_width : int
        8, 16, 32 or 64.
    granularity : int
        Bits per ``sel`` bit: 8, 16, 32 or 64, at most ``data_width``.
    masters : int
        Number of masters (1 to 64); the ports are ``masters[0]`` ... (``len(self.masters)``).

    Members
    -------
    masters : In(WishboneSignature(addr_width=addr_width, data_width=data_width,
        granularity=granularity)).array(masters)
    bus : Out(WishboneSignature(addr_width=addr_width, data_width=data_width,
        granularity=granularity))

    Raises
    ------
    TypeError, ValueError
        For a bad parameter, naming it.
    """

    @silence_on_error
    def __init__(self, *, addr_width: int, data_width: int = 32, granularity: int = 8,
                 masters: int) -> None:
        owner = "WishboneArbiter"
        _bus_widths(owner, addr_width, data_width, granularity)
        _check_int(masters, "masters", owner, 1, 64)
        self._addr_width = addr_width
        self._data_width = data_width
        self._granularity = granularity
        sig = WishboneSignature(addr_width=addr_width, data_width=data_width,
                                granularity=granularity)
        super().__init__({"masters": In(sig).array(masters), "bus": Out(sig)})

    @property
    def addr_width(self) -> int:
        return self._addr_width

    @property
    def data_width(self) -> int:
        return self._data_width

    @property
    def granularity(self) -> int:
        return self._granularity

    def elaborate(self, platform) -> Module:
        m = Module()
        bus = self.bus
        ports = list(self.masters)
        n = len(ports)
        grant = Signal(range(n))
        for p in ports:
            m.d.comb += [p.stall.eq(1), p.dat_r.eq(bus.dat_r)]
        with m.Switch(grant):
            for g, p in enumerate(ports):
                with m.Case(g):
                    m.d.comb += [bus.adr.eq(p.adr), bus.dat_w.eq(p.dat_w), bus.sel.eq(p.sel),
                                 bus.we.eq(p.we), bus.cyc.eq(p.cyc), bus.stb.eq(p.stb),
                                 p.stall.eq(bus.stall), p.ack.eq(bus.ack), p.err.eq(bus.err)]
                    with m.If(~p.cyc):
                        # the nearest requesting master after g wins (later statements win)
                        for k in reversed(range(1, n)):
                            with m.If(ports[(g + k) % n].cyc):
                                m.d.sync += grant.eq((g + k) % n)
        # state for the property harness's white-box invariants (formal/soc/soc.py)
        self._observe = {"grant": grant}
        return m


class WishboneSRAM(wiring.Component):
    """On-chip RAM behind a Wishbone B4 pipelined slave.

    Protocol
        Never stalls: every request is accepted on the cycle it is offered, and answered with
        ``ack`` on the next cycle (while ``cyc`` is still high; never ``err``). A write takes
        effect at the clock edge that accepts it, on the ``granularity``-bit lanes ``sel``
        selects; a read returns the word as it is after every earlier request. The RAM is an
        :class:`amaranth.lib.memory.Memory` with one synchronous read port and one write port
        with lane enables, which synthesis maps to block RAM.

    Latency and throughput
        1 cycle from request to answer; one request per cycle.

    Parameters
    ----------
    depth : int
        Words, a power of two from 2 to ``2**32``; the port has ``log2(depth)`` address bits.
    data_width : int
        8, 16, 32 or 64.
    granularity : int
        Bits per ``sel`` bit: 8, 16, 32 or 64, at most ``data_width``.
    init : sequence of int
        Initial contents of the first words (the rest 0).

    Members
    -------
    bus : In(WishboneSignature(addr_width=log2(depth), data_width=data_width,
        granularity=granularity))

    Raises
    ------
    TypeError, ValueError
        For a bad parameter, naming it.
    """

    @silence_on_error
    def __init__(self, *, depth: int, data_width: int = 32, granularity: int = 8,
                 init: Sequence[int] = ()) -> None:
        owner = "WishboneSRAM"
        _check_int(depth, "depth", owner, 2, 1 << 32)
        if not _is_pow2(depth):
            raise ValueError(f"{owner} depth must be a power of two, not {depth!r}")
        addr_width = depth.bit_length() - 1
        _bus_widths(owner, addr_width, data_width, granularity)
        if isinstance(init, (str, bytes)) or not isinstance(init, Sequence):
            raise TypeError(f"{owner} init must be a sequence of integers, not {init!r}")
        if len(init) > depth:
            raise ValueError(f"{owner} init has {len(init)} words, more than depth {depth}")
        for i, w in enumerate(init):
            if not _is_int(w):
                raise TypeError(f"{owner} init[{i}] must be an integer, not {w!r}")
            if not 0 <= w < 1 << data_width:
                raise ValueError(f"{owner} init[{i}] must be in [0, 2**{data_width}), not "
                                 f"{w!r}")
        self._depth = depth
        self._data_width = data_width
        self._granularity = granularity
        self._init = tuple(init)
        super().__init__({"bus": In(WishboneSignature(addr_width=addr_width,
                                                      data_width=data_width,
                                                      granularity=granularity))})

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def data_width(self) -> int:
        return self._data_width

    @property
    def granularity(self) -> int:
        return self._granularity

    @property
    def init(self) -> tuple[int, ...]:
        return self._init

    def elaborate(self, platform) -> Module:
        m = Module()
        bus = self.bus
        m.submodules.mem = mem = memory.Memory(shape=self._data_width, depth=self._depth,
                                               init=self._init)
        rd = mem.read_port()
        wr = mem.write_port(granularity=self._granularity)
        request = bus.cyc & bus.stb
        answer = Signal()
        m.d.sync += answer.eq(request)
        m.d.comb += [
            bus.stall.eq(0),
            rd.addr.eq(bus.adr), rd.en.eq(request & ~bus.we),
            wr.addr.eq(bus.adr), wr.data.eq(bus.dat_w),
            wr.en.eq(Mux(request & bus.we, bus.sel, 0)),
            bus.ack.eq(answer & bus.cyc), bus.err.eq(0), bus.dat_r.eq(rd.data),
        ]
        return m


# --- the SoC -------------------------------------------------------------------------------------

class FixarSoC(wiring.Component):
    """A board's SoC: UART to the host, a :class:`~fixar_hw.soc.core.FixarCore`, on-chip RAM.

    Topology::

        uart_rx/tx -- UARTWishboneBridge --> host decoder --+--> core.csr   (control registers)
                                                            +--> arbiter[0] --+
        core.dma ------------------------> DMA decoder ------->  arbiter[1] --+--> WishboneSRAM

    The host (over the UART, :class:`~fixar_hw.host.driver.SerialTransport`) reaches the control
    registers and the RAM; the DMA reaches the RAM only, through its own decoder, so a DMA
    address beyond the RAM is a bus error the core reports (a ``bus_error`` fault) rather
    than an alias. The arbiter grants the RAM to one master per bus cycle, round robin; the
    DMA holds it for a whole transfer, the bridge for one word. Control-register accesses
    never wait for the DMA.

    Memory map
        Word addresses as the bridge sees them (byte addresses are 4 times these):

        ================================================  =================  ===================
        bridge word addresses                             what               DMA word addresses
        ================================================  =================  ===================
        ``CSR_BASE`` (0x0) + ``[0, csr_words)``           control registers  --
        ``MEM_BASE`` (0x1000_0000) + ``[0, sram_words)``  the RAM            ``[0, sram_words)``
        anything else                                     ``err``            ``err``
        ================================================  =================  ===================

        ``csr_words`` is ``2**regmap.addr_width`` (:func:`fixar_hw.soc.csr.register_map`; the
        holes in it answer ``err`` too).

        So ``SerialTransport(port, csr_base=CSR_BASE, mem_base=MEM_BASE, mem_offset=0)``
        (:meth:`transport`) and ``FixarDriver(..., ext_base=0)`` drive it.

    Timing
        The UART runs at ``clk_freq / divisor`` baud, ``divisor = round(clk_freq / baud)``
        clock cycles per bit: a bus word costs ``40 * divisor`` cycles on the line
        (:class:`~fixar_hw.soc.bridges.UARTWishboneBridge`). Interconnect latency: none added
        on the control path; on the RAM path one cycle when the arbiter switches masters;
        the RAM answers one cycle after each request and never stalls, so DMA transfers run
        at one beat per cycle when ``config.max_outstanding >= 2``. The bridge's 16-byte
        receive FIFO absorbs a wait for the RAM while a DMA transfer holds it
        (``16 * 10 * divisor`` cycles); :class:`~fixar_hw.host.driver.FixarDriver` never writes
        the RAM while its queue runs.

    Parameters
    ----------
    config : CoreConfig
        The core's build; its ``csr_bus`` must be ``"wishbone"``.
    clk_freq : float
        Clock frequency in Hz.
    baud : int
        UART bit rate; ``round(clk_freq / baud)`` must be at least 4, and the actual rate
        within 2 % of ``baud``.
    sram_words : int, optional
        RAM words (32-bit), a power of two, at least :func:`driver_memory_words`
        ``(config)`` and at most ``min(2**28, 2**config.dma_addr_width)``; by default the
        smallest such power of two.
    link : {"uart", "stream"}
        The host link. ``"uart"``: a serial pin pair
        (:class:`~fixar_hw.soc.bridges.UARTWishboneBridge`).
        ``"stream"``: the bridge's command and reply byte streams as ports, without the UART
        (:class:`~fixar_hw.soc.bridges.BridgeEngine`, same byte protocol), for a byte-FIFO host
        link (an FT245-style USB FIFO, say) and for fast simulation: a byte per cycle instead
        of one per ``10 * divisor`` cycles. ``baud`` does not matter then (it is still
        checked).

    Members
    -------
    uart_rx : In(1)
        Serial line from the host (asynchronous, idle high); ``link="uart"`` only.
    uart_tx : Out(1)
        Serial line to the host (idle high); ``link="uart"`` only.
    host_rx : In(stream.Signature(8))
        Command bytes from the host; ``link="stream"`` only.
    host_tx : Out(stream.Signature(8))
        Reply bytes to the host; ``link="stream"`` only.
    irq : Out(1)
        The core's interrupt (level).
    busy : Out(1)
        The core is running its descriptor queue (``STATUS.busy``): for a LED.

    Attributes
    ----------
    core : FixarCore
    bridge : UARTWishboneBridge or BridgeEngine
    sram : WishboneSRAM
    host_decoder, dma_decoder : WishboneDecoder
    arbiter : WishboneArbiter

    Raises
    ------
    TypeError, ValueError
        For a bad parameter, naming it.
    """

    #: Bridge word address of the control registers.
    CSR_BASE = 0x0000_0000
    #: Bridge word address of the RAM's first word (byte address 0x4000_0000).
    MEM_BASE = 0x1000_0000
    #: Word-address bits the bridge drives (every address outside the map is an ``err``).
    BRIDGE_ADDR_WIDTH = 32

    #: Host links :class:`FixarSoC` accepts.
    LINKS = ("uart", "stream")

    @silence_on_error
    def __init__(self, config: CoreConfig, *, clk_freq: float, baud: int = 115200,
                 sram_words: int | None = None, link: str = "uart") -> None:
        owner = "FixarSoC"
        if not isinstance(link, str):
            raise TypeError(f"{owner} link must be a string, not {link!r}")
        if link not in self.LINKS:
            raise ValueError(f"{owner} link must be 'uart' or 'stream', not {link!r}")
        if not isinstance(config, CoreConfig):
            raise TypeError(f"{owner} config must be a CoreConfig, not {config!r}")
        if config.csr_bus != "wishbone":
            raise ValueError(f"{owner} config.csr_bus must be 'wishbone', not "
                             f"{config.csr_bus!r}")
        if isinstance(clk_freq, bool) or not isinstance(clk_freq, (int, float)):
            raise TypeError(f"{owner} clk_freq must be a number (Hz), not {clk_freq!r}")
        if not (math.isfinite(clk_freq) and clk_freq > 0):
            raise ValueError(f"{owner} clk_freq must be a positive number (Hz), not "
                             f"{clk_freq!r}")
        if not _is_int(baud):
            raise TypeError(f"{owner} baud must be an integer, not {baud!r}")
        if baud <= 0:
            raise ValueError(f"{owner} baud must be positive, not {baud!r}")
        divisor = round(clk_freq / baud)
        if divisor < 4:
            raise ValueError(f"{owner} baud must be at most clk_freq / 4 ({clk_freq / 4:g}), "
                             f"not {baud!r}")
        if abs(clk_freq / divisor - baud) > 0.02 * baud:
            raise ValueError(f"{owner} baud {baud!r} is more than 2 % away from the nearest "
                             f"rate clk_freq / {divisor} = {clk_freq / divisor:g}")
        need = driver_memory_words(config)
        limit = min(1 << 28, 1 << config.dma_addr_width)
        if sram_words is None:
            sram_words = 1 << max(1, (need - 1).bit_length())
            if sram_words > limit:
                raise ValueError(f"{owner} config needs {need} words of RAM for the driver, "
                                 f"more than the {limit} the map allows")
        else:
            if not _is_int(sram_words):
                raise TypeError(f"{owner} sram_words must be an integer, not {sram_words!r}")
            if not _is_pow2(sram_words) or not max(2, need) <= sram_words <= limit:
                raise ValueError(f"{owner} sram_words must be a power of two from {need} (what "
                                 f"FixarDriver stages) to {limit}, not {sram_words!r}")
        self._config = config
        self._clk_freq = clk_freq
        self._baud = baud
        self._divisor = divisor
        self._sram_words = sram_words
        self._link = link
        self.core = FixarCore(config)
        if link == "uart":
            self.bridge = UARTWishboneBridge(divisor=divisor, addr_width=self.BRIDGE_ADDR_WIDTH)
            members = {"uart_rx": In(1, init=1), "uart_tx": Out(1, init=1)}
        else:
            self.bridge = BridgeEngine(addr_width=self.BRIDGE_ADDR_WIDTH)
            members = {"host_rx": In(stream.Signature(8)), "host_tx": Out(stream.Signature(8))}
        members |= {"irq": Out(1), "busy": Out(1)}
        self.sram = WishboneSRAM(depth=sram_words)
        csr_words = 1 << self.core.regmap.addr_width
        self._csr_words = csr_words
        self.host_decoder = WishboneDecoder(
            addr_width=self.BRIDGE_ADDR_WIDTH,
            windows=[(self.CSR_BASE, csr_words), (self.MEM_BASE, sram_words)],
            max_outstanding=1)
        self.dma_decoder = WishboneDecoder(addr_width=config.dma_addr_width,
                                           windows=[(0, sram_words)],
                                           max_outstanding=config.max_outstanding)
        self.arbiter = WishboneArbiter(addr_width=sram_words.bit_length() - 1, masters=2)
        super().__init__(members)

    @property
    def config(self) -> CoreConfig:
        return self._config

    @property
    def clk_freq(self) -> float:
        """Clock frequency in Hz."""
        return self._clk_freq

    @property
    def baud(self) -> int:
        """The requested UART bit rate."""
        return self._baud

    @property
    def link(self) -> str:
        """The host link: ``"uart"`` or ``"stream"``."""
        return self._link

    @property
    def divisor(self) -> int:
        """Clock cycles per UART bit."""
        return self._divisor

    @property
    def csr_base(self) -> int:
        """Bridge word address of the control registers (``SerialTransport(csr_base=)``)."""
        return self.CSR_BASE

    @property
    def csr_words(self) -> int:
        """Words of the control-register window."""
        return self._csr_words

    @property
    def mem_base(self) -> int:
        """Bridge word address of the RAM (``SerialTransport(mem_base=)``)."""
        return self.MEM_BASE

    @property
    def mem_offset(self) -> int:
        """The DMA's word address of the RAM's first word (``SerialTransport(mem_offset=)``)."""
        return 0

    @property
    def sram_words(self) -> int:
        """RAM words (32-bit)."""
        return self._sram_words

    @property
    def address_map(self) -> WindowMap:
        """The bridge's view: window 0 the control registers, window 1 the RAM."""
        return self.host_decoder.window_map

    def transport(self, port: object) -> SerialTransport:
        """A :class:`~fixar_hw.host.driver.SerialTransport` for this SoC on ``port`` (a byte port:
        ``serial.Serial``, or :class:`~fixar_hw.host.serial_link.SimSerialPort` in simulation)."""
        return SerialTransport(port, csr_base=self.csr_base, mem_base=self.mem_base,
                               mem_offset=self.mem_offset)

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.bridge = bridge = self.bridge
        m.submodules.core = core = self.core
        m.submodules.sram = sram = self.sram
        m.submodules.host_decoder = hdec = self.host_decoder
        m.submodules.dma_decoder = ddec = self.dma_decoder
        m.submodules.arbiter = arb = self.arbiter
        if self._link == "uart":
            m.d.comb += [bridge.rx.eq(self.uart_rx), self.uart_tx.eq(bridge.tx)]
        else:
            wiring.connect(m, wiring.flipped(self.host_rx), bridge.rx)
            wiring.connect(m, bridge.tx, wiring.flipped(self.host_tx))
        m.d.comb += [self.irq.eq(core.irq), self.busy.eq(core.control.running)]
        wiring.connect(m, bridge.bus, hdec.bus)
        wiring.connect(m, hdec.slaves[0], core.csr)
        wiring.connect(m, hdec.slaves[1], arb.masters[0])
        wiring.connect(m, core.dma, ddec.bus)
        wiring.connect(m, ddec.slaves[0], arb.masters[1])
        wiring.connect(m, arb.bus, sram.bus)
        return m
