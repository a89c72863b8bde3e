"""The DMA engine: moves words between an external Wishbone bus and the on-chip memories.

A command names a direction, an on-chip memory (by its code, its index in ``memories``), a
range of its words and a strided range of external bus words; the engine moves the words
with pipelined Wishbone B4 bursts and reports one ``done`` record per command, in order.

Word format
    An on-chip word of ``B`` bits travels as ``beats = ceil(B / data_width)`` bus words,
    little-endian: beat ``j`` carries bits ``[data_width*j, data_width*(j+1))``. On-chip word
    ``k`` of a command uses the bus words ``ext + k*stride + j`` (modulo ``2**addr_width``).
    Towards the bus (``"out"``) the unused top bits of the last beat are 0; from the bus
    (``"in"``) they are ignored. :func:`words_to_beats` and :func:`beats_to_words` are the
    same conversion in Python, for drivers and testbenches.

Commit rule
    ``"in"``: a word is assembled from its acknowledged beats and written to the on-chip
    memory (one write-port cycle) only after *all* its beats were acknowledged, so a bus error
    never leaves a word half written: the words before the failing one are committed, the
    failing word is dropped, nothing after it is touched. ``"out"``: a word counts as
    committed once all its beats were acknowledged (requests already accepted by the slave
    when the error arrived may have been performed by it; a pipelined master cannot take
    them back).

Bus use
    ``cyc`` is held for the whole command, from its first request to its last answer (or the
    error); requests are issued back to back without waiting for answers, with at most
    ``max_outstanding`` accepted and not yet answered. On ``err`` the engine issues nothing
    more, drops ``cyc`` on the next cycle (abandoning the outstanding requests) and reports.
    A slave that never answers makes the engine wait; there is no time-out. ``sel`` is all
    ones.

The properties are proved in ``formal/soc/dma.py`` (bus protocol, addresses, order, commit rule,
report) and tested against a Python model under random stalls, wait states and errors in
``tests/test_dma.py``.
"""

from collections.abc import Sequence
from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import check_bool, check_int, observe, silence_on_error
from fixar_hw.soc.bus import WishboneSignature, check_width

__all__ = ["ACCESS", "DIRECTIONS", "DMA", "STATUS", "beats_per_word", "beats_to_words",
           "words_to_beats"]

#: Encoding of a command's ``dir`` field.
DIRECTIONS = {"in": 0, "out": 1}
#: Encoding of a report's ``status`` field.
STATUS = {"ok": 0, "bus_error": 1, "bad_command": 2}
#: Memory access modes: the directions the DMA may use on such a memory.
ACCESS = {"rw": ("in", "out"), "w": ("in",), "r": ("out",)}
# the states of the DMA's FSM
_STATES = ("IDLE", "CHECK", "RUN", "REPORT")


def _bits(n: int) -> int:
    return max(n.bit_length(), 1)


def beats_per_word(word_width: int, data_width: int) -> int:
    """Bus words (beats) per on-chip word: ``ceil(word_width / data_width)``.

    Raises
    ------
    TypeError, ValueError
        If a width is not a positive integer.
    """
    check_int(word_width, "word_width", minimum=1)
    check_int(data_width, "data_width", minimum=1)
    return -(-word_width // data_width)


def words_to_beats(words: Sequence[int], word_width: int, data_width: int) -> list[int]:
    """Split on-chip words into bus words, little-endian (the ``"out"`` direction).

    Parameters
    ----------
    words : sequence of int
        Unsigned words, each below ``2**word_width``.
    word_width, data_width : int
        Bits of an on-chip word and of a bus word.

    Returns
    -------
    list of int
        ``beats_per_word(word_width, data_width)`` bus words per word, low beat first; the
        unused top bits of a word's last beat are 0.

    Raises
    ------
    TypeError, ValueError
        For a width that is not a positive integer, or a word that is not an integer in
        ``[0, 2**word_width)``.
    """
    n = beats_per_word(word_width, data_width)
    mask = (1 << data_width) - 1
    out = []
    for i, w in enumerate(words):
        if isinstance(w, bool) or not isinstance(w, int):
            raise TypeError(f"words[{i}] must be an integer, not {w!r}")
        if not 0 <= w < 1 << word_width:
            raise ValueError(f"words[{i}] must be in [0, 2**{word_width}), not {w!r}")
        out.extend((w >> (data_width * j)) & mask for j in range(n))
    return out


def beats_to_words(beats: Sequence[int], word_width: int, data_width: int) -> list[int]:
    """Assemble bus words into on-chip words, little-endian (the ``"in"`` direction).

    Parameters
    ----------
    beats : sequence of int
        Bus words, a whole number of words' worth, each below ``2**data_width``.
    word_width, data_width : int
        Bits of an on-chip word and of a bus word.

    Returns
    -------
    list of int
        One word per ``beats_per_word(word_width, data_width)`` beats; bits of the last beat
        above ``word_width`` are ignored.

    Raises
    ------
    TypeError, ValueError
        For a width that is not a positive integer, a beat that is not an integer in
        ``[0, 2**data_width)``, or a number of beats that is not a multiple of the beats per
        word.
    """
    n = beats_per_word(word_width, data_width)
    beats = list(beats)
    if len(beats) % n:
        raise ValueError(f"beats must hold a multiple of {n} bus words, not {len(beats)!r}")
    for i, b in enumerate(beats):
        if isinstance(b, bool) or not isinstance(b, int):
            raise TypeError(f"beats[{i}] must be an integer, not {b!r}")
        if not 0 <= b < 1 << data_width:
            raise ValueError(f"beats[{i}] must be in [0, 2**{data_width}), not {b!r}")
    mask = (1 << word_width) - 1
    return [sum(beats[k + j] << (data_width * j) for j in range(n)) & mask
            for k in range(0, len(beats), n)]


def _check_memories(memories: object) -> tuple[tuple[str, int, int, str], ...]:
    if isinstance(memories, (str, bytes)) or not isinstance(memories, Sequence):
        raise TypeError(f"memories must be a sequence of (name, word_width, depth, access), "
                        f"not {memories!r}")
    if not memories:
        raise ValueError(f"memories must name at least one memory, not {memories!r}")
    names = set()
    out = []
    for i, entry in enumerate(memories):
        if not isinstance(entry, (tuple, list)) or len(entry) != 4:
            raise TypeError(f"memories[{i}] must be a (name, word_width, depth, access) tuple, "
                            f"not {entry!r}")
        name, width, depth, access = entry
        if not isinstance(name, str) or not name:
            raise TypeError(f"memories[{i}] name must be a non-empty string, not {name!r}")
        if name in names:
            raise ValueError(f"memories[{i}] name {name!r} is used twice")
        names.add(name)
        check_int(width, f"memories[{i}] word_width", minimum=1)
        check_int(depth, f"memories[{i}] depth", minimum=1)
        if access not in ACCESS:
            raise ValueError(f"memories[{i}] access must be 'rw', 'w' or 'r', not {access!r}")
        out.append((name, width, depth, access))
    return tuple(out)


class DMA(wiring.Component):
    """Moves words between a Wishbone bus (master) and on-chip memories (see the module docs).

    Parameters
    ----------
    addr_width : int
        Word-address bits of the external bus (1 to 64).
    data_width : int
        Bus data bits: 8, 16, 32 or 64.
    memories : sequence of (str, int, int, str)
        One ``(name, word_width, depth, access)`` per on-chip memory; its index is its code.
        ``access`` is ``"rw"``, ``"w"`` (the DMA only writes it: direction ``"in"``, a program
        memory say) or ``"r"`` (only reads it: ``"out"``).
    max_outstanding : int
        Most requests accepted by the slave and not yet answered (1 to 256).

    Members
    -------
    bus : Out(WishboneSignature(addr_width=addr_width, data_width=data_width, granularity=8))
        The master port; ``sel`` is all ones.
    cmd : In(stream.Signature(command_layout))
        ``{"dir": 1, "mem": mem_width, "local": local_width, "count": count_width,
        "ext": addr_width, "stride": addr_width}``: move ``count`` words of memory ``mem``
        from word ``local`` on; word ``k`` uses bus words ``ext + k*stride + j``. ``dir`` is
        :data:`DIRECTIONS` (0: bus to memory, 1: memory to bus). Taken only while idle.
    done : Out(stream.Signature(done_layout))
        ``{"status": 2, "words": count_width, "addr": addr_width}``, one per command, in
        order: ``status`` is :data:`STATUS` (0 ok, 1 bus error, 2 bad command), ``words`` the
        words committed, ``addr`` the bus word address whose request got ``err`` (else 0). A
        bad command (unknown memory, a direction its access forbids, ``local + count`` beyond
        its depth) moves nothing and touches neither bus nor memory; ``count == 0`` is a valid
        no-op.
    rd : In(memory.ReadPort.Signature(addr_width=local_width, shape=unsigned(word_width)))
        Read port of the memory ``mem`` selects (one cycle of latency, data held while ``en``
        is low, as ``amaranth.lib.memory`` read ports). Narrower memories must be
        zero-extended: the DMA sends the word's bits as the port gives them. ``In``, since
        the DMA drives ``addr``/``en``: it connects to a memory-side
        ``Out(ReadPort.Signature)``.
    wr : In(memory.WritePort.Signature(addr_width=local_width, shape=unsigned(word_width)))
        Whole-word write port of that memory (narrower memories truncate: the bits above the
        memory's width are the last beat's upper bits or an earlier word's, not zeros, which
        would cost a LUT per bit of the widest memory).
    mem : Out(mem_width)
        Code of the running command's memory (held for the whole command and after it).
    busy : Out(1)
        High from the command transfer to the ``done`` transfer.
    obs : Out(observation_layout)
        With ``observe``: the DMA's registers and state, for a proof's invariants.

    Timing
    ------
    With a slave that never stalls and answers on the cycle after a request (no wait
    states), a command of ``N = count * beats`` bus words has ``done.valid`` high
    ``N + 3`` cycles after the command transfer when ``max_outstanding >= 2`` (one beat per
    cycle), and ``2 * N + 2`` cycles after it when ``max_outstanding == 1``, one cycle more
    for ``"out"`` (its first beat is loaded into the request's data register in the first
    cycle of the transfer); a bad command or a no-op reports after 2 cycles. In general a
    request slot is busy for ``2 + w`` cycles for ``w`` wait states, so the steady throughput
    is ``min(1, max_outstanding / (2 + w))`` beats per cycle. The next command is taken on
    the cycle after the ``done`` transfer.

    Attributes
    ----------
    addr_width, data_width, memories, max_outstanding
        The parameters (``memories`` as a tuple of tuples).
    command_layout, done_layout : data.StructLayout
    mem_width, local_width, count_width, word_width : int
        Field widths; ``word_width`` is the widest memory's.

    Raises
    ------
    TypeError, ValueError
        For a parameter of the wrong kind or value, naming it.
    """

    @silence_on_error
    def __init__(self, *, addr_width: int, data_width: int = 32,
                 memories: Sequence[tuple[str, int, int, str]], max_outstanding: int = 4,
                 observe: bool = False) -> None:
        check_int(addr_width, "addr_width", minimum=1, maximum=64)
        check_width(data_width, "data_width")
        mems = _check_memories(memories)
        check_int(max_outstanding, "max_outstanding", minimum=1, maximum=256)
        self._addr_width = addr_width
        self._data_width = data_width
        self._memories = mems
        self._max_outstanding = max_outstanding
        max_depth = max(depth for _, _, depth, _ in mems)
        self._mem_width = _bits(len(mems) - 1)
        self._local_width = _bits(max_depth - 1)
        self._count_width = _bits(max_depth)
        self._word_width = max(width for _, width, _, _ in mems)
        self._max_beats = max(beats_per_word(w, data_width) for _, w, _, _ in mems)
        self._observe = check_bool(observe, "observe")
        self._command_layout = data.StructLayout({
            "dir": 1, "mem": self._mem_width, "local": self._local_width,
            "count": self._count_width, "ext": addr_width, "stride": addr_width})
        self._done_layout = data.StructLayout({
            "status": 2, "words": self._count_width, "addr": addr_width})
        aw, ww = self._local_width, unsigned(self._word_width)
        super().__init__({
            "bus": Out(WishboneSignature(addr_width=addr_width, data_width=data_width,
                                         granularity=8)),
            "cmd": In(stream.Signature(self._command_layout)),
            "done": Out(stream.Signature(self._done_layout)),
            "rd": In(memory.ReadPort.Signature(addr_width=aw, shape=ww)),
            "wr": In(memory.WritePort.Signature(addr_width=aw, shape=ww)),
            "mem": Out(self._mem_width),
            "busy": Out(1),
            **({"obs": Out(self.observation_layout)} if observe else {}),
        })

    # -- parameters -------------------------------------------------------------------------

    @property
    def addr_width(self) -> int:
        return self._addr_width

    @property
    def data_width(self) -> int:
        return self._data_width

    @property
    def memories(self) -> tuple[tuple[str, int, int, str], ...]:
        return self._memories

    @property
    def max_outstanding(self) -> int:
        return self._max_outstanding

    @property
    def command_layout(self) -> data.StructLayout:
        return self._command_layout

    @property
    def observation_layout(self) -> data.StructLayout:
        """Layout of :attr:`obs`: the DMA's registers and signals (:meth:`_registers`) and
        its state (``idle``, ``check``, ``run``, ``report``)."""
        return data.StructLayout({**{name: f.shape for name, f in self._registers()},
                                  **{state.lower(): 1 for state in _STATES}})

    def _registers(self) -> data.StructLayout:
        """Shapes of the signals :meth:`elaborate` works with (one layout for them and for
        :attr:`obs`)."""
        aw, cw, lw = self._addr_width, self._count_width, self._local_width
        beat = range(max(self._max_beats, 2))
        return data.StructLayout({
            # the running command; ok: its checks, a register loaded with the command (valid
            # in CHECK, whose first read then follows from registers alone)
            "cmd": self._command_layout, "ok": 1, "nbeats": range(self._max_beats + 1),
            # request side: word and beat of the next request, its word's address, its address
            "req_word": cw, "req_beat": beat, "req_base": aw, "adr": aw,
            "stb": 1, "accept": 1, "outstanding": range(self._max_outstanding + 1),
            # "out": the request's data comes from a register (dat_q, holding the beat of
            # (req_word, req_beat) when q_full: the read port's data and its multiplexers
            # never reach the bus in the same cycle), loaded from the read port with the next
            # beat as a request leaves, or with the first while it is empty. The next word is
            # read (rd_addr, always the port's address; reads_left) as the last beat of a word
            # is loaded, so the port holds it by the time that beat leaves.
            "dat_q": self._data_width, "q_full": 1, "rd_addr": lw, "reads_left": cw,
            # answer side: word and beat of the next answer, its word's address
            "resp_word": cw, "resp_beat": beat, "resp_base": aw,
            # "in": the word being assembled, and the write of a complete one
            "word": self._max_beats * self._data_width, "commit": 1, "commit_addr": lw,
            # the report
            "status": 2, "words": cw, "err_addr": aw,
        })

    @property
    def done_layout(self) -> data.StructLayout:
        return self._done_layout

    @property
    def mem_width(self) -> int:
        return self._mem_width

    @property
    def local_width(self) -> int:
        return self._local_width

    @property
    def count_width(self) -> int:
        return self._count_width

    @property
    def word_width(self) -> int:
        return self._word_width

    # -- Python helpers ---------------------------------------------------------------------

    def _code(self, mem: int | str) -> int:
        if isinstance(mem, str):
            for code, (name, *_) in enumerate(self._memories):
                if name == mem:
                    return code
            names = ", ".join(repr(n) for n, *_ in self._memories)
            raise ValueError(f"mem must be one of {names} or a code, not {mem!r}")
        if isinstance(mem, bool) or not isinstance(mem, int):
            raise TypeError(f"mem must be a memory name or code, not {mem!r}")
        if not 0 <= mem < len(self._memories):
            raise ValueError(f"mem must be a code in [0, {len(self._memories) - 1}], "
                             f"not {mem!r}")
        return mem

    def beats(self, mem: int | str) -> int:
        """Bus words per word of memory ``mem`` (a name or a code)."""
        return beats_per_word(self._memories[self._code(mem)][1], self._data_width)

    def command(self, dir: int | str, mem: int | str, local: int, count: int, ext: int,
                stride: int | None = None) -> dict[str, int]:
        """A valid ``cmd`` payload, checked like the hardware checks it.

        Parameters
        ----------
        dir : {"in", "out", 0, 1}
        mem : str or int
            Memory name or code.
        local, count : int
            First on-chip word and number of words (``local + count <= depth``).
        ext : int
            Bus word address of word 0's first beat.
        stride : int, optional
            Bus words from one word's first beat to the next one's (modulo
            ``2**addr_width``); default :meth:`beats` of the memory (contiguous words).

        Raises
        ------
        TypeError, ValueError
            For a value the hardware would reject with status 2, or that does not fit its
            field, naming the parameter.
        """
        if dir in DIRECTIONS and isinstance(dir, str):
            d = DIRECTIONS[dir]
        elif not isinstance(dir, bool) and isinstance(dir, int) and dir in (0, 1):
            d = dir
        else:
            raise ValueError(f"dir must be 'in', 'out', 0 or 1, not {dir!r}")
        code = self._code(mem)
        name, _, depth, access = self._memories[code]
        if ("in", "out")[d] not in ACCESS[access]:
            raise ValueError(f"dir {('in', 'out')[d]!r} is not allowed on memory {name!r} "
                             f"(access {access!r})")
        for pname, value in (("local", local), ("count", count)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{pname} must be an integer, not {value!r}")
            if value < 0:
                raise ValueError(f"{pname} must be non-negative, not {value!r}")
        if local + count > depth:
            raise ValueError(f"local + count must be at most the depth of {name!r} ({depth}), "
                             f"not {local} + {count}")
        if stride is None:
            stride = self.beats(code) % (1 << self._addr_width)
        for pname, value in (("ext", ext), ("stride", stride)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{pname} must be an integer, not {value!r}")
            if not 0 <= value < 1 << self._addr_width:
                raise ValueError(f"{pname} must be in [0, 2**{self._addr_width}), "
                                 f"not {value!r}")
        return {"dir": d, "mem": code, "local": local, "count": count, "ext": ext,
                "stride": stride}

    # -- hardware ---------------------------------------------------------------------------

    def elaborate(self, platform) -> Module:
        m = Module()
        bus, rd, wr = self.bus, self.rd, self.wr
        r = SimpleNamespace(**{name: Signal(f.shape, name=name)
                               for name, f in self._registers()})
        c = r.cmd
        m.d.comb += [
            self.mem.eq(c.mem),
            bus.sel.eq((1 << len(bus.sel)) - 1),
            bus.adr.eq(r.adr),
            bus.we.eq(c.dir),
            bus.dat_w.eq(Mux(c.dir, r.dat_q, 0)),
            bus.stb.eq(r.stb),
            r.accept.eq(self._accepted(r.stb)),
            rd.en.eq(0),
            rd.addr.eq(r.rd_addr),
            wr.en.eq(r.commit),
            wr.addr.eq(r.commit_addr),
            wr.data.eq(r.word),
            self.done.payload.status.eq(r.status),
            self.done.payload.words.eq(r.words),
            self.done.payload.addr.eq(r.err_addr),
        ]
        m.d.sync += r.commit.eq(0)
        cp = self.cmd.payload
        with m.FSM() as fsm:
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [c.eq(cp), r.ok.eq(self._command_ok(m, cp)),
                                 r.rd_addr.eq(cp.local)]
                    m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += self.busy.eq(1)
                self._check(m, r)
            with m.State("RUN"):
                m.d.comb += self.busy.eq(1)
                self._run(m, r)
            with m.State("REPORT"):
                # the last word of an "in" command may be written in this state's first cycle
                m.d.comb += [self.busy.eq(1), self.done.valid.eq(1)]
                with m.If(self.done.ready):
                    m.next = "IDLE"
        if self._observe:
            observe(m, self.obs, **vars(r),
                    **{state.lower(): fsm.ongoing(state) for state in _STATES})
        return m

    def _accepted(self, stb: Value) -> Value:
        """Whether the request offered (``stb``) is taken: it is unless the slave stalls (a
        seam that a proof's mutant replaces)."""
        return stb & ~self.bus.stall

    def _command_ok(self, m: Module, cp: Value) -> Value:
        """Whether command ``cp`` names a memory, a direction its access allows, and words
        within its depth."""
        ok_now = Signal()
        with m.Switch(cp.mem):
            for code, (_, _, depth, access) in enumerate(self._memories):
                with m.Case(code):
                    allowed = [DIRECTIONS[d] for d in ACCESS[access]]
                    dir_ok = (cp.dir == allowed[0]) if len(allowed) == 1 else Const(1)
                    m.d.comb += ok_now.eq(dir_ok & (cp.local + cp.count <= depth))
        return ok_now

    def _check(self, m: Module, r: SimpleNamespace) -> None:
        """State CHECK: the command's beat count, the counters reset; a bad command
        or a no-op goes to REPORT, anything else to RUN (an "out" reading its first word)."""
        c = r.cmd
        with m.Switch(c.mem):
            for code, (_, width, _, _) in enumerate(self._memories):
                with m.Case(code):
                    m.d.sync += r.nbeats.eq(beats_per_word(width, self._data_width))
        m.d.sync += [
            r.req_word.eq(0), r.req_beat.eq(0), r.req_base.eq(c.ext), r.adr.eq(c.ext),
            r.resp_word.eq(0), r.resp_beat.eq(0), r.resp_base.eq(c.ext),
            r.outstanding.eq(0), r.status.eq(STATUS["ok"]), r.words.eq(0), r.err_addr.eq(0),
        ]
        with m.If(~r.ok):
            m.d.sync += r.status.eq(STATUS["bad_command"])
            m.next = "REPORT"
        with m.Elif(c.count == 0):
            m.next = "REPORT"
        with m.Else():
            # "out": fetch word 0 now, so that it is at the read port in RUN
            m.d.comb += self.rd.en.eq(c.dir)
            m.d.sync += [r.q_full.eq(0), r.rd_addr.eq(c.local + 1),
                         r.reads_left.eq(c.count - 1)]
            m.next = "RUN"

    def _load_beat(self, m: Module, r: SimpleNamespace, beat: Value, last: Value) -> None:
        """Load beat ``beat`` of the word at the read port into ``dat_q``; after its ``last``
        beat, read the next word."""
        dw = self._data_width
        out_word = Cat(self.rd.data,
                       Const(0, self._max_beats * dw - self._word_width))
        m.d.sync += [r.dat_q.eq(out_word.word_select(beat, dw)), r.q_full.eq(1)]
        with m.If(last & (r.reads_left != 0)):
            m.d.comb += self.rd.en.eq(1)
            m.d.sync += [r.rd_addr.eq(r.rd_addr + 1), r.reads_left.eq(r.reads_left - 1)]

    def _run(self, m: Module, r: SimpleNamespace) -> None:
        """State RUN: requests and answers, up to ``max_outstanding`` apart; REPORT after the
        last answer or the first error."""
        c, bus = r.cmd, self.bus
        req_last = r.req_beat == r.nbeats - 1
        resp_last = r.resp_beat == r.nbeats - 1
        more = r.req_word != c.count
        m.d.comb += [bus.cyc.eq(1),
                     r.stb.eq(more & (r.outstanding != self._max_outstanding)
                              & (~c.dir | r.q_full))]
        m.d.sync += r.outstanding.eq(r.outstanding + r.accept - (bus.ack | bus.err))
        with m.If(r.accept):
            with m.If(req_last):
                m.d.sync += [r.req_beat.eq(0), r.req_word.eq(r.req_word + 1),
                             r.req_base.eq(r.req_base + c.stride),
                             r.adr.eq(r.req_base + c.stride)]
                # "out": the next word's first beat (its read was issued as this word's last
                # beat was loaded)
                with m.If(c.dir & (r.req_word + 1 != c.count)):
                    self._load_beat(m, r, 0, r.nbeats == 1)
                with m.Else():
                    m.d.sync += r.q_full.eq(0)
            with m.Else():
                m.d.sync += [r.req_beat.eq(r.req_beat + 1), r.adr.eq(r.adr + 1)]
                with m.If(c.dir):
                    self._load_beat(m, r, r.req_beat + 1, r.req_beat + 2 == r.nbeats)
        with m.Elif(c.dir & ~r.q_full & more):
            # the first beat of the command's first word
            self._load_beat(m, r, r.req_beat, req_last)
        with m.If(bus.err):
            m.d.sync += [r.status.eq(STATUS["bus_error"]), r.words.eq(r.resp_word),
                         r.err_addr.eq(r.resp_base + r.resp_beat)]
            m.next = "REPORT"
        with m.Elif(bus.ack):
            m.d.sync += r.word.word_select(r.resp_beat, self._data_width).eq(bus.dat_r)
            with m.If(resp_last):
                m.d.sync += [r.resp_beat.eq(0), r.resp_word.eq(r.resp_word + 1),
                             r.resp_base.eq(r.resp_base + c.stride),
                             r.commit.eq(~c.dir),
                             r.commit_addr.eq(c.local + r.resp_word)]
                with m.If(r.resp_word + 1 == c.count):
                    m.d.sync += r.words.eq(c.count)
                    m.next = "REPORT"
            with m.Else():
                m.d.sync += r.resp_beat.eq(r.resp_beat + 1)
