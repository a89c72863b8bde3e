"""The training engine: a whole fixed-point DDPG training step on chip.

:class:`TrainingEngine` puts together, for one :class:`sw_model.arch.engine.EngineConfig`:

* the PE array (:class:`fixar_hw.train.array.PEArray`) with
  run-time activation formats and a writable tanh table;
* the vector unit (:class:`fixar_hw.train.vector.VectorUnit`): conversions, TD target, loss delta,
  actor output delta, QAT range registers, exploration noise;
* the update units (:class:`fixar_hw.train.update.UpdateUnit`, or the compact
  :class:`fixar_hw.train.update.IterativeUpdateUnit`) behind :class:`UpdateSequencer`, which
  streams parameter words through them: Adam (or SGD) and the target networks' soft update;
* the memories (:class:`fixar_hw.train.buffers.Buffers`) laid out by the config's
  :class:`~sw_model.arch.engine.MemoryPlan`, the program memory, Adam's step-size tables;
* the :class:`fixar_hw.train.scheduler.Scheduler`, which runs a program from the program memory.

:class:`fixar_hw.train.description.EngineDescription` (the engine's
:attr:`~TrainingEngine.description`) encodes programs and predicts their counters in plain
Python, for hosts that build no hardware.

A program from :func:`sw_model.arch.engine.compile_step` leaves the memories exactly as
:func:`sw_model.arch.engine.execute` leaves its images, which equal
:func:`sw_model.arch.ddpg_step.fixed_train_step` (``tests/test_engine_hw.py``).

Host interface (until the bus and DMA of the integration layer): programs are written through
:attr:`prog_wr`, the tanh table through :attr:`tbl_wr` (the QAT switch changes the actor's output
format), the step counter through :attr:`t_load`, the noise seed through :attr:`seed`; a
simulation testbench reads and writes the memories directly (:attr:`Buffers.memories`).
Constants (Adam's betas and epsilon, ``tau``, ``gamma``, the noise scale) are the config's.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import silence_on_error
from fixar_hw.train.array import PEArray
from fixar_hw.train.buffers import Buffers
from fixar_hw.train.description import EngineDescription
from fixar_hw.train.scheduler import PERF_COUNTERS, Scheduler
from fixar_hw.train.update import (
    UPDATE_OPS,
    IterativeUpdateUnit,
    UpdateCommandSet,
    UpdateUnit,
)
from fixar_hw.train.vector import VectorUnit
from sw_model.arch.engine import EngineConfig

__all__ = ["HOST_MEMORIES", "TrainingEngine", "UpdateSequencer"]

#: Memories the host reaches through ``host_rd_*`` / ``host_wr_*`` while the engine is idle.
HOST_MEMORIES = ("W", "G", "M", "V", "A")


class UpdateSequencer(wiring.Component):
    """Streams parameter words through update units (:mod:`fixar_hw.train.update`).

    A command ``{op, net, lo, count}`` covers words ``lo .. lo + count - 1``. Adam/SGD read
    ``W``, ``G``, ``M``, ``V`` at each address and write ``W``, ``M``, ``V`` back there; the soft
    update reads the target word at ``+ soft_offset`` and the online word, and writes the
    target. ``units`` update units work in lockstep, each taking one element of a word after
    another: a word is ``lanes / units`` element groups (a cycle each for pipelined units;
    iterative units take a group as they return the previous one). The first word is read in
    a cycle of its own, every next one in the cycle that sends the previous word's last
    group; results are gathered per word and written the cycle after its last elements.
    Without stalls a command keeps :attr:`busy` high for :meth:`UpdateCommandSet.cycles
    <fixar_hw.train.update.UpdateCommandSet.cycles>` of :attr:`commands` cycles: ``count *
    lanes / units + unit.latency + 2`` with pipelined units, ``count * lanes / units *
    unit.op_latency(op) + 3`` with iterative ones.

    Parameters
    ----------
    unit : UpdateUnit or IterativeUpdateUnit
        One of the units (for its payload layouts).
    commands : UpdateCommandSet
        The command layout, encoding and timing: words of ``commands.lanes`` elements through
        ``commands.units`` units of ``commands.kind``.
    soft_offset : int
        Words from an online parameter to its target copy.
    word_layouts : dict
        ``"W"``, ``"G"``, ``"M"``, ``"V"`` word layouts of the memories.

    Raises
    ------
    ValueError
        If ``unit`` is not of ``commands.kind`` or has another latency.

    Attributes
    ----------
    commands : UpdateCommandSet
    """

    def __init__(self, unit: UpdateUnit | IterativeUpdateUnit, commands: UpdateCommandSet,
                 soft_offset: int, word_layouts: dict) -> None:
        kind = "iterative" if isinstance(unit, IterativeUpdateUnit) else "pipelined"
        if kind != commands.kind or unit.latency != commands.latency:
            raise ValueError(f"UpdateSequencer commands {commands!r} do not time unit {unit!r}")
        self.commands = commands
        self._lanes = commands.lanes
        self._units = commands.units
        self._offset = soft_offset
        rd, wr = memory.ReadPort.Signature, memory.WritePort.Signature
        aw = commands.addr_width
        super().__init__({
            "cmd": In(stream.Signature(self.commands.layout)),
            "w_rd": In(rd(addr_width=aw, shape=word_layouts["W"])),
            "t_rd": In(rd(addr_width=aw, shape=word_layouts["W"])),
            "g_rd": In(rd(addr_width=aw, shape=word_layouts["G"])),
            "m_rd": In(rd(addr_width=aw, shape=word_layouts["M"])),
            "v_rd": In(rd(addr_width=aw, shape=word_layouts["V"])),
            "w_wr": In(wr(addr_width=aw, shape=word_layouts["W"])),
            "m_wr": In(wr(addr_width=aw, shape=word_layouts["M"])),
            "v_wr": In(wr(addr_width=aw, shape=word_layouts["V"])),
            "i": Out(stream.Signature(unit.input_layout)).array(commands.units),
            "o": In(stream.Signature(unit.output_layout)).array(commands.units),
            "net": Out(1),
            "op": Out(2),
            "busy": Out(1),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        L, U = self._lanes, self._units
        steps = L // U
        p = self.cmd.payload
        op = Signal(2)
        net = Signal()
        soft = Signal()
        rd_addr = Signal.like(p.lo)
        wr_addr = Signal.like(p.lo)
        rd_left = Signal(len(p.count) + 1)
        wr_left = Signal(len(p.count) + 1)
        lane_in = Signal(range(steps))   # element group being sent
        lane_out = Signal(range(steps))  # element group being gathered
        reading = Signal()   # the input side has words left
        streaming = Signal()  # the read data is valid: send its lanes
        # unit u takes lanes u, u + U, u + 2U, ... of the word (group lane_in: lane_in * U + u)
        ready = Signal()
        m.d.comb += ready.eq(Cat(*(i.ready for i in self.i)).all())
        m.d.comb += [self.net.eq(net), self.op.eq(op), self.busy.eq(wr_left != 0),
                     self.cmd.ready.eq(wr_left == 0)]
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [op.eq(p.op), net.eq(p.net), soft.eq(p.op == UPDATE_OPS["soft"]),
                         rd_addr.eq(p.lo), wr_addr.eq(p.lo), rd_left.eq(p.count),
                         wr_left.eq(p.count), reading.eq(p.count != 0), lane_in.eq(0),
                         lane_out.eq(0), streaming.eq(0)]

        # input side: read a word (one cycle), then send its lanes; the next word is read
        # as the last group of a word is sent (the port's data changes the cycle after), so
        # pipelined units take a group every cycle across words
        last_group = streaming & ready & (lane_in == steps - 1)
        read_now = reading & (~streaming | last_group)
        m.d.comb += [
            self.w_rd.addr.eq(Mux(soft, rd_addr + self._offset, rd_addr)),
            self.t_rd.addr.eq(rd_addr), self.g_rd.addr.eq(rd_addr),
            self.m_rd.addr.eq(rd_addr), self.v_rd.addr.eq(rd_addr),
            self.w_rd.en.eq(read_now), self.t_rd.en.eq(read_now & soft),
            self.g_rd.en.eq(read_now & ~soft), self.m_rd.en.eq(read_now & ~soft),
            self.v_rd.en.eq(read_now & ~soft),
        ]
        for u, i in enumerate(self.i):
            lane = lane_in * U + u
            ip = i.payload
            m.d.comb += [
                i.valid.eq(streaming & ready),
                ip.op.eq(op),
                ip.w.eq(self.w_rd.data[lane]),
                ip.x.eq(Mux(soft, self.t_rd.data[lane], self.g_rd.data[lane])),
                ip.m.eq(self.m_rd.data[lane]),
                ip.v.eq(self.v_rd.data[lane]),
            ]
        with m.If(streaming & ready):
            m.d.sync += lane_in.eq(lane_in + 1)
            with m.If(lane_in == steps - 1):
                m.d.sync += streaming.eq(0)
        with m.If(read_now):
            m.d.sync += [streaming.eq(1), lane_in.eq(0), rd_addr.eq(rd_addr + 1),
                         rd_left.eq(rd_left - 1), reading.eq(rd_left != 1)]

        # output side: gather a word, write it the next cycle
        bufs = {k: Signal(self.w_wr.data.shape() if k == "w" else
                          (self.m_wr.data.shape() if k == "m" else self.v_wr.data.shape()),
                          name=f"obuf_{k}") for k in "wmv"}
        full = Signal()
        o_valid = self.o[0].valid  # the units run in lockstep
        for u, o in enumerate(self.o):
            m.d.comb += o.ready.eq(1)
            with m.If(o_valid):
                for k in "wmv":
                    m.d.sync += bufs[k][lane_out * U + u].eq(getattr(o.payload, k))
        with m.If(o_valid):
            m.d.sync += lane_out.eq(Mux(lane_out == steps - 1, 0, lane_out + 1))
        m.d.sync += full.eq(o_valid & (lane_out == steps - 1))
        m.d.comb += [
            self.w_wr.addr.eq(Mux(soft, wr_addr + self._offset, wr_addr)),
            self.m_wr.addr.eq(wr_addr), self.v_wr.addr.eq(wr_addr),
            self.w_wr.data.eq(bufs["w"]), self.m_wr.data.eq(bufs["m"]),
            self.v_wr.data.eq(bufs["v"]),
            self.w_wr.en.eq(full), self.m_wr.en.eq(full & ~soft), self.v_wr.en.eq(full & ~soft),
        ]
        with m.If(full):
            m.d.sync += [wr_addr.eq(wr_addr + 1), wr_left.eq(wr_left - 1)]
        return m


class _HostShare:
    """The engine's view of :class:`Buffers` in which the first read and write port of every
    memory is a proxy; :meth:`connect` gives each real port to the host port while that is
    enabled, else to the units."""

    def __init__(self, m: Module, buffers: Buffers, engine: "TrainingEngine") -> None:
        self._m, self._buf, self._eng = m, buffers, engine
        self._pairs = []  # (real, proxy, host, is_write)
        rd_names = {"W": "w_rd", "G": "g_rd", "M": "m_rd", "V": "v_rd", "A": "a_rd"}
        wr_names = {"W": "w_wr", "G": "g_wr", "M": "m_wr", "V": "v_wr", "A": "a_wr"}
        for name in HOST_MEMORIES:
            for names, is_write in ((rd_names, False), (wr_names, True)):
                attr = names[name]
                real = getattr(buffers, attr)
                host = getattr(engine, f"host_{'wr' if is_write else 'rd'}_{name.lower()}")
                first = real[0] if isinstance(real, list) else real
                proxy = first.signature.flip().create(path=(f"{attr}0_unit",))
                self._pairs.append((first, proxy, host, is_write))
                if first is real:
                    setattr(self, attr, proxy)
                else:
                    setattr(self, attr, [proxy, *list(real)[1:]])

    def connect(self) -> None:
        m = self._m
        for real, proxy, host, is_write in self._pairs:
            if is_write:
                full = (1 << len(real.en)) - 1
                m.d.comb += [real.addr.eq(Mux(host.en, host.addr, proxy.addr)),
                             real.data.eq(Mux(host.en, host.data, proxy.data)),
                             real.en.eq(Mux(host.en, full, proxy.en))]
            else:
                # the host has the port while the engine is idle (the units read nothing
                # then): the choice hangs on the engine's state alone, not on the host's
                # enable, which keeps the host's request logic off the memory's address
                idle = ~self._eng.busy
                m.d.comb += [real.addr.eq(Mux(idle, host.addr, proxy.addr)),
                             real.en.eq(Mux(idle, host.en, proxy.en)),
                             proxy.data.eq(real.data), host.data.eq(real.data)]


class TrainingEngine(wiring.Component):
    """The on-chip DDPG training step (see the module docs).

    Numerics are the golden model's (:mod:`sw_model.arch.engine`: every format and rounding of
    :func:`sw_model.arch.ddpg_step.fixed_train_step`). Timing: the units run at once where the
    program's data and the memory ports allow (:class:`~fixar_hw.train.scheduler.Scheduler`); a
    program takes exactly :meth:`EngineDescription.cycles
    <fixar_hw.train.description.EngineDescription.cycles>` cycles from its start to ``busy``
    falling (every unit's schedule is independent of the data). Memories have one cycle of read
    latency. Programs are encoded by :attr:`description` (no engine needs building for that).

    Parameters
    ----------
    config : EngineConfig
    program_depth : int
        Descriptors the program memory holds.

    Members
    -------
    start : In(stream.Signature(unsigned(pc_width)))
        Run the program from this address to its ``end``.
    busy : Out(1)
    prog_wr : Out(memory.WritePort.Signature(addr_width=pc_width, shape=descriptor_layout))
        The program memory's write port (driven from outside, as a memory's is).
    tbl_wr : Out(memory.WritePort.Signature(...))
        The array's tanh table (while idle).
    t_load : In(stream.Signature(32))
        Set the step counter (while idle).
    t : Out(32)
        The step counter (Adam uses the step-size table entry ``min(t, steps) - 1``).
    seed : In(stream.Signature(32))
        Reseed the exploration noise.
    ranges : Out(...)
        The vector unit's QAT range registers (:attr:`sw_model.arch.engine.EngineConfig.points`).
    perf : Out(StructLayout(...))
        The scheduler's counters (:data:`fixar_hw.train.scheduler.PERF_COUNTERS`) and ``macs``: PE
        multiplies issued (``size**2`` per core and array pass).
    op_trace : Out(...)
        The scheduler's issue trace (``issue``, ``pc``, ``unit``).
    host_rd_w, host_rd_g, host_rd_m, host_rd_v, host_rd_a : Out(memory.ReadPort.Signature(...))
    host_wr_w, host_wr_g, host_wr_m, host_wr_v, host_wr_a : Out(memory.WritePort.Signature(...))
        Whole-word access to the memories for the host (the DMA), used only while ``busy`` is
        low: they share the memories' first ports with the units (the host's read ports
        have them while ``busy`` is low, an enabled host write port takes the memory's; one
        cycle of read latency, data held while disabled).

    Attributes
    ----------
    description : EngineDescription
        Descriptor layout, program encoding, memory layouts and the cycle model.
    buffers : Buffers
    program : amaranth.lib.memory.Memory
    """

    @silence_on_error
    def __init__(self, config: EngineConfig, program_depth: int = 256) -> None:
        self.description = desc = EngineDescription(config, program_depth)
        self._config = c = config
        self.array = PEArray(c.aap)
        self.vector = VectorUnit(c.vector)
        d = c.ddpg
        if c.update_kind == "iterative":
            self.updates = [IterativeUpdateUnit(d.weight_fmt, d.grad_fmt, lr_width=c.lr_width,
                                                bits=c.update_bits)
                            for _ in range(c.update_units)]
        else:
            self.updates = [UpdateUnit(d.weight_fmt, d.grad_fmt, lr_width=c.lr_width)
                            for _ in range(c.update_units)]
        self.buffers = Buffers(c)
        aw = c.addr_width
        layout = desc.descriptor_layout
        self.scheduler = Scheduler(layout, program_depth)
        self.sequencer = UpdateSequencer(self.updates[0], desc.update_commands,
                                         c.plan.online_words, self.buffers.layouts)
        self.program = memory.Memory(shape=layout, depth=program_depth, init=[])
        pw = desc.pc_width
        perf = {name: 48 for name in (*PERF_COUNTERS, "macs")}
        super().__init__({
            "start": In(stream.Signature(unsigned(pw))),
            "busy": Out(1),
            # the engine holds these memories: their write ports are driven from outside
            "prog_wr": Out(memory.WritePort.Signature(addr_width=pw, shape=layout)),
            "tbl_wr": Out(self.array.tbl_wr.signature),
            "t_load": In(stream.Signature(32)),
            "t": Out(32),
            "seed": In(stream.Signature(32)),
            "ranges": Out(self.vector.ranges.shape()),
            "perf": Out(data.StructLayout(perf)),
            "op_trace": Out(self.scheduler.trace.shape()),
            # host access to the memories while idle (the DMA's side)
            **{f"host_rd_{name.lower()}": Out(memory.ReadPort.Signature(
                addr_width=aw, shape=desc.layouts[name])) for name in HOST_MEMORIES},
            **{f"host_wr_{name.lower()}": Out(memory.WritePort.Signature(
                addr_width=aw, shape=desc.layouts[name])) for name in HOST_MEMORIES},
        })

    @property
    def config(self) -> EngineConfig:
        """The build."""
        return self._config

    # --- hardware ------------------------------------------------------------------------------

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.array = self.array
        m.submodules.vector = self.vector
        for u, unit in enumerate(self.updates):
            m.submodules[f"update_{u}"] = unit
        m.submodules.buffers = self.buffers
        buf = _HostShare(m, self.buffers, self)
        m.submodules.scheduler = self.scheduler
        m.submodules.sequencer = self.sequencer
        m.submodules.program = self.program

        self._connect_program(m)
        t = self._step_counter(m)
        self._connect_array_results(m, buf)
        self._connect_activation_reads(m, buf)
        self._connect_parameter_reads(m, buf)
        self._connect_update(m, buf, t)
        self._connect_vector(m)
        # the scheduler issues to a unit once the units a descriptor waits for are idle
        m.d.comb += self.scheduler.units_busy.eq(
            Cat(self.array.busy, self.vector.busy, self.sequencer.busy))
        buf.connect()
        self._count_macs(m)
        return m

    def _connect_program(self, m: Module) -> None:
        """The program memory's ports, the scheduler's start, busy, trace and counters."""
        sch = self.scheduler
        prd = self.program.read_port(domain="sync")
        pwr = self.program.write_port()
        m.d.comb += [prd.addr.eq(sch.prog_rd.addr), prd.en.eq(sch.prog_rd.en),
                     sch.prog_rd.data.eq(prd.data),
                     pwr.addr.eq(self.prog_wr.addr), pwr.data.eq(self.prog_wr.data),
                     pwr.en.eq(self.prog_wr.en)]
        wiring.connect(m, wiring.flipped(self.start), sch.start)
        m.d.comb += [self.busy.eq(sch.busy), self.op_trace.eq(sch.trace)]
        for name in PERF_COUNTERS:
            m.d.comb += getattr(self.perf, name).eq(getattr(sch.perf, name))

    def _step_counter(self, m: Module) -> Signal:
        """The step counter: loaded while idle, advanced by ``tick``; returns it."""
        sch = self.scheduler
        t = Signal(32)
        m.d.comb += [self.t.eq(t), self.t_load.ready.eq(~sch.busy)]
        with m.If(self.t_load.valid & self.t_load.ready):
            m.d.sync += t.eq(self.t_load.payload)
        with m.Elif(sch.tick):
            m.d.sync += t.eq(t + 1)
        return t

    def _connect_array_results(self, m: Module, buf: _HostShare) -> None:
        """The array's command and tanh table, and the writers of its results: output slices
        into ``A`` (port 0 shared with the vector unit), gradient tiles into ``G``."""
        c = self._config
        S, N = c.size, c.cores
        arr, vec = self.array, self.vector
        a_cmd = self.scheduler.array
        m.d.comb += [arr.cmd.payload.eq(a_cmd.payload.cmd), arr.cmd.valid.eq(a_cmd.valid),
                     a_cmd.ready.eq(arr.cmd.ready)]
        m.d.comb += [arr.tbl_wr.addr.eq(self.tbl_wr.addr), arr.tbl_wr.data.eq(self.tbl_wr.data),
                     arr.tbl_wr.en.eq(self.tbl_wr.en)]
        ap = a_cmd.payload.cmd
        out_base = Signal.like(a_cmd.payload.out_base)
        t_out = Signal(c.addr_width)     # output slices per vector
        layer = Signal()
        grp = Signal(c.addr_width)       # vector group (batch) / vector (layer) / tile group
        slc = Signal(c.addr_width)       # output slice within the vector
        L = S.bit_length() - 1
        with m.If(a_cmd.valid & a_cmd.ready):
            m.d.sync += [
                out_base.eq(a_cmd.payload.out_base), layer.eq(ap.layer), grp.eq(0), slc.eq(0),
                t_out.eq(Mux(ap.op == 0, (ap.m_minus_1 >> L) + 1, (ap.n_minus_1 >> L) + 1)),
            ]
        o, g = arr.o, arr.g
        m.d.comb += [o.ready.eq(1), g.ready.eq(1)]
        with m.If(o.valid):
            last_slice = slc == t_out - 1
            m.d.sync += [slc.eq(Mux(last_slice, 0, slc + 1)),
                         grp.eq(Mux(last_slice, grp + 1, grp))]
        with m.If(g.valid):
            m.d.sync += grp.eq(grp + 1)
        for k in range(N):
            vec_index = Mux(layer, grp, grp * N + k)
            port = buf.a_wr[k]
            g_port = buf.g_wr[k]
            o_en = o.valid & o.payload.mask[k]
            if k == 0:  # shared with the vector unit, which writes only while the array idles
                v_en = vec.d_wr.en
                m.d.comb += [
                    port.addr.eq(Mux(o_en, out_base + vec_index * t_out + slc, vec.d_wr.addr)),
                    port.en.eq(Mux(o_en, Const((1 << S) - 1, S), v_en)),
                ]
                for lane in range(S):
                    m.d.comb += port.data[lane].eq(Mux(o_en, o.payload.data[k][lane],
                                                       vec.d_wr.data[lane]))
            else:
                m.d.comb += [port.addr.eq(out_base + vec_index * t_out + slc),
                             port.en.eq(Mux(o_en, Const((1 << S) - 1, S), 0))]
                for lane in range(S):
                    m.d.comb += port.data[lane].eq(o.payload.data[k][lane])
            m.d.comb += [g_port.addr.eq(out_base + grp * N + k),
                         g_port.en.eq(g.valid & g.payload.mask[k])]
            for lane in range(S * S):
                m.d.comb += g_port.data[lane].eq(g.payload.data[k][lane])

    def _connect_activation_reads(self, m: Module, buf: _HostShare) -> None:
        """Activation reads: array ports v (0..N-1) and u (N..2N-1), in a half-mode build v1
        (2N..3N-1) and u1 (3N..4N-1); the vector unit shares port 0 (a) and port N (b)."""
        S, N = self._config.size, self._config.cores
        arr, vec = self.array, self.vector
        half = self._config.aap.half_mode
        for k in range(N):
            pairs = [(arr.v_rd[k], k), (arr.u_rd[k], N + k)]
            if half:
                pairs += [(arr.v1_rd[k], 2 * N + k), (arr.u1_rd[k], 3 * N + k)]
            for src, idx in pairs:
                port = buf.a_rd[idx]
                share = {0: vec.a_rd, N: vec.b_rd}.get(idx) if k == 0 else None
                if share is not None:
                    m.d.comb += [port.addr.eq(Mux(src.en, src.addr, share.addr)),
                                 port.en.eq(src.en | share.en), share.data.eq(port.data)]
                else:
                    m.d.comb += [port.addr.eq(src.addr), port.en.eq(src.en)]
                for lane in range(S):
                    m.d.comb += src.data[lane].eq(port.data[lane])

    def _connect_parameter_reads(self, m: Module, buf: _HostShare) -> None:
        """Parameter reads: array tiles (0..N-1) and biases (N..2N-1, PE column-0 lanes); the
        update sequencer's own ports 2N (online words) and 2N+1 (target words), so that an
        update runs while the array works, or with ``update_ports="shared"`` ports 0 and N,
        which it takes while the array does not read them (the scheduler never runs the two
        at once then); in a half-mode build the array's second tiles on the ports after
        those."""
        S, N = self._config.size, self._config.cores
        arr, seq = self.array, self.sequencer
        shared = self._config.update_ports == "shared"
        for k in range(N):
            for src, idx, share in ((arr.w_rd[k], k, seq.w_rd if k == 0 else None),
                                    (arr.b_rd[k], N + k, seq.t_rd if k == 0 else None)):
                port = buf.w_rd[idx]
                if shared and share is not None:
                    m.d.comb += [port.addr.eq(Mux(src.en, src.addr, share.addr)),
                                 port.en.eq(src.en | share.en), share.data.eq(port.data)]
                else:
                    m.d.comb += [port.addr.eq(src.addr), port.en.eq(src.en)]
                if src is arr.b_rd[k]:
                    for lane in range(S):
                        m.d.comb += src.data[lane].eq(port.data[lane * S])
                else:
                    m.d.comb += src.data.eq(port.data)
        own = []
        if not shared:
            own = [(seq.w_rd, 2 * N), (seq.t_rd, 2 * N + 1)]
        if self._config.aap.half_mode:
            first = 2 * N + len(own)
            own += [(arr.w1_rd[k], first + k) for k in range(N)]
        for src, idx in own:
            port = buf.w_rd[idx]
            m.d.comb += [port.addr.eq(src.addr), port.en.eq(src.en), src.data.eq(port.data)]

    def _connect_update(self, m: Module, buf: _HostShare, t: Signal) -> None:
        """The update sequencer's memory ports and units, Adam's step-size tables (indexed by
        the step counter ``t``) and the optimizer constants."""
        c = self._config
        d = c.ddpg
        seq = self.sequencer
        for a, b in ((seq.g_rd, buf.g_rd), (seq.m_rd, buf.m_rd), (seq.v_rd, buf.v_rd)):
            m.d.comb += [b.addr.eq(a.addr), b.en.eq(a.en), a.data.eq(b.data)]
        for a, b in ((seq.w_wr, buf.w_wr), (seq.m_wr, buf.m_wr), (seq.v_wr, buf.v_wr)):
            m.d.comb += [b.addr.eq(a.addr), b.en.eq(a.en), b.data.eq(a.data)]
        wiring.connect(m, self.scheduler.update, seq.cmd)
        for u, unit in enumerate(self.updates):
            wiring.connect(m, seq.i[u], unit.i)
            wiring.connect(m, unit.o, seq.o[u])
        steps = d.adam_bias_steps
        lr_mems = []
        for net in ("actor", "critic"):
            mem = memory.Memory(shape=unsigned(c.lr_width), depth=steps, init=c.lr_table(net))
            m.submodules[f"lr_{net}"] = mem
            lr_mems.append(mem.read_port(domain="sync"))
        # the entry of step t (read one cycle after t changes; Adam runs much later)
        t_index = Mux(t > steps, steps - 1, Mux(t == 0, 0, t - 1))
        for port in lr_mems:
            m.d.comb += [port.addr.eq(t_index), port.en.eq(1)]
        consts = c.adam_constants("actor")
        # SGD takes the plain step size lr_q, Adam the bias-corrected table entry
        lr_q = [c.adam_constants(net).lr_q for net in ("actor", "critic")]
        lr = Mux(seq.op == UPDATE_OPS["sgd"], Mux(seq.net, lr_q[1], lr_q[0]),
                 Mux(seq.net, lr_mems[1].data, lr_mems[0].data))
        for upd in self.updates:
            m.d.comb += [
                upd.lr.eq(lr),
                upd.c1.eq(consts.c1), upd.c2.eq(consts.c2), upd.eps.eq(consts.eps_q),
                upd.tau.eq(d.tau_q),
            ]

    def _connect_vector(self, m: Module) -> None:
        """The vector unit's command, seed, constants and range registers."""
        c, vec = self._config, self.vector
        wiring.connect(m, self.scheduler.vector, vec.cmd)
        wiring.connect(m, wiring.flipped(self.seed), vec.seed)
        m.d.comb += [vec.gamma.eq(c.ddpg.gamma_q), vec.sigma.eq(c.sigma_q),
                     self.ranges.eq(vec.ranges)]

    def _count_macs(self, m: Module) -> None:
        """``perf.macs``: ``size**2`` per core and array pass (twice that for a half-mode
        pass with both halves), cleared when a program starts."""
        S, N = self._config.size, self._config.cores
        issued = sum(self.array.v_rd[k].en for k in range(N))
        if self._config.aap.half_mode:
            # a pass's second half (tile or vector) is read exactly when it exists
            issued = issued + sum(self.array.v1_rd[k].en for k in range(N))
        with m.If(self.scheduler.start.valid & self.scheduler.start.ready):
            m.d.sync += self.perf.macs.eq(0)
        with m.Else():
            m.d.sync += self.perf.macs.eq(self.perf.macs + issued * (S * S))
