"""The Wishbone B4 interconnect of a board SoC: decoder, arbiter and on-chip RAM.

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

Python twins used by the tests: :class:`WindowMap` (the decoding rule, and the one place the
windows are validated) and :class:`MemoryMapModel` (a dict memory per window behind a
:class:`WindowMap`). :class:`fixar_hw.soc.system.FixarSoC` puts them together around the core;
the properties are proved in ``formal/soc/soc.py``.
"""

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

from amaranth.hdl import Const, Module, Mux, Signal, Value
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import check_bool, check_int, observe, silence_on_error
from fixar_hw.soc.bus import WishboneSignature, check_bus_widths

__all__ = [
    "MemoryMapModel",
    "WindowMap",
    "WishboneArbiter",
    "WishboneDecoder",
    "WishboneSRAM",
]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_pow2(value: int) -> bool:
    return value >= 1 and value & (value - 1) == 0


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
        check_int(addr_width, "addr_width", owner=owner, minimum=1, maximum=64)
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
        check_bus_widths("MemoryMapModel", windows.addr_width, data_width, granularity)
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


# --- interconnect ------------------------------------------------------------------------------

class WishboneDecoder(wiring.Component):
    """One Wishbone B4 pipelined master to N slaves, by address window.

    Protocol
        A request whose address falls in ``windows[i]`` goes to slave ``i`` with the offset in
        the window as its address (``adr``, ``dat_w``, ``sel``, ``we`` and ``stb`` pass
        through; ``stall`` comes back). A slave's ``cyc`` is high while it has requests
        outstanding and, while no slave has, while the master's ``cyc`` is high and its
        address is in the slave's window (whether or not ``stb`` is). Answers (``ack``, ``err``,
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
    observe : bool
        Add the :attr:`obs` port (for proofs; default False).

    Members
    -------
    bus : In(WishboneSignature(addr_width=addr_width, data_width=data_width,
        granularity=granularity))
    slave_0, slave_1, ... : Out(WishboneSignature(addr_width=window_map.offset_width(i),
        data_width=data_width, granularity=granularity))
        Also listed, in order, by :attr:`slaves`.
    obs : Out(observation_layout)
        With ``observe``: the decoder's state, for a proof's inductive invariants.

    Raises
    ------
    TypeError, ValueError
        For a bad parameter, naming it.
    """

    @silence_on_error
    def __init__(self, *, addr_width: int, data_width: int = 32, granularity: int = 8,
                 windows: Sequence[tuple[int, int]], max_outstanding: int = 16,
                 observe: bool = False) -> None:
        owner = "WishboneDecoder"
        check_bus_widths(owner, addr_width, data_width, granularity)
        self._map = WindowMap(addr_width=addr_width, windows=windows, owner=owner)
        check_int(max_outstanding, "max_outstanding", owner=owner, minimum=1, maximum=256)
        self._max_outstanding = max_outstanding
        self._data_width = data_width
        self._granularity = granularity
        members = {"bus": In(WishboneSignature(addr_width=addr_width, data_width=data_width,
                                               granularity=granularity))}
        for i in range(len(self._map.windows)):
            members[f"slave_{i}"] = Out(WishboneSignature(
                addr_width=self._map.offset_width(i), data_width=data_width,
                granularity=granularity))
        self._observe = check_bool(observe, "observe", owner=owner)
        if observe:
            members["obs"] = Out(self.observation_layout)
        super().__init__(members)

    @property
    def observation_layout(self) -> data.StructLayout:
        """Layout of :attr:`obs`: ``count`` (requests outstanding), ``owner`` (the slave
        that answers them, ``len(windows)`` for the error responder), ``target`` (the slave
        the current address selects) and ``err_due`` (an unmapped request was accepted on the
        previous cycle)."""
        n = len(self._map.windows)
        return data.StructLayout({"count": range(self._max_outstanding + 1),
                                  "owner": range(n + 1), "target": range(n + 1),
                                  "err_due": 1})

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
                # not from stb: a slave whose answer depends on its cyc (WishboneSRAM's) would
                # close a combinational loop through a master whose stb depends on answers
                s.cyc.eq(bus.cyc & Mux(busy, owner == i, target == i)),
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
        if self._observe:
            observe(m, self.obs, count=count, owner=owner, target=target, err_due=err_due)
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
    observe : bool
        Add the :attr:`obs` port (for proofs; default False).

    Members
    -------
    masters : In(WishboneSignature(addr_width=addr_width, data_width=data_width,
        granularity=granularity)).array(masters)
    bus : Out(WishboneSignature(addr_width=addr_width, data_width=data_width,
        granularity=granularity))
    obs : Out(data.StructLayout({"grant": range(masters)}))
        With ``observe``: the granted master.

    Raises
    ------
    TypeError, ValueError
        For a bad parameter, naming it.
    """

    @silence_on_error
    def __init__(self, *, addr_width: int, data_width: int = 32, granularity: int = 8,
                 masters: int, observe: bool = False) -> None:
        owner = "WishboneArbiter"
        check_bus_widths(owner, addr_width, data_width, granularity)
        check_int(masters, "masters", owner=owner, minimum=1, maximum=64)
        self._addr_width = addr_width
        self._data_width = data_width
        self._granularity = granularity
        self._observe = check_bool(observe, "observe", owner=owner)
        sig = WishboneSignature(addr_width=addr_width, data_width=data_width,
                                granularity=granularity)
        super().__init__({"masters": In(sig).array(masters), "bus": Out(sig),
                          **({"obs": Out(data.StructLayout({"grant": range(masters)}))}
                             if observe else {})})

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
                    with m.If(self._releases(p)):
                        # the nearest requesting master after g wins (later statements win)
                        for k in reversed(range(1, n)):
                            with m.If(ports[(g + k) % n].cyc):
                                m.d.sync += grant.eq((g + k) % n)
        if self._observe:
            observe(m, self.obs, grant=grant)
        return m

    def _releases(self, port: Any) -> Value:
        """Whether the granted ``port`` lets the grant move on: when it drops ``cyc`` (a
        seam that a proof's mutant replaces)."""
        return ~port.cyc


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
        check_int(depth, "depth", owner=owner, minimum=2, maximum=1 << 32)
        if not _is_pow2(depth):
            raise ValueError(f"{owner} depth must be a power of two, not {depth!r}")
        addr_width = depth.bit_length() - 1
        check_bus_widths(owner, addr_width, data_width, granularity)
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
