"""PE array: AAP cores in lockstep, with intra-batch or intra-layer parallelism per op.

:class:`PEArray` runs ``config.cores`` PE grids (:mod:`fixar_hw.train.aap` has the operations
and the weight layout) from one sequencer.
Each command picks how an operation is split (``parallelism`` of :meth:`PEArray.command`):

``"batch"`` (intra-batch)
    Core ``k`` takes vectors ``k, k + cores, ...``; all cores read the same weight tile in the
    same cycle (one broadcast read serves them) and each has its own accumulators and output
    stage. One output beat carries the slice of ``cores`` consecutive vectors.
``"layer"`` (intra-layer)
    Core ``k`` takes reduction tiles ``k, k + cores, ...`` of every output slice (FIXAR's
    column interleaving); their column sums are added across cores, then accumulated and
    finished by core 0's output stage. One vector at a time.

Weight gradients always give the cores consecutive gradient tiles (each core sums the batch in
its PEs), whatever the command says; see :class:`sw_model.arch.aap.CycleModel`.

Which is faster (:func:`sw_model.arch.aap.choose_parallelism` applies the rule): intra-batch idles
``cores - batch % cores`` core-slots once per output slice, intra-layer idles
``cores - red % cores`` per output slice of every vector (``red`` the reduction tiles). So
training batches (a multiple of ``cores``) run intra-batch at full occupancy; a single vector
(acting in the environment) runs intra-layer, where intra-batch would leave all cores but one
idle.

Memories: each core has its own read ports, with the addresses of :class:`PEArray` in one
shared address space. In intra-batch mode the ``w_rd``
addresses of all active cores are equal in every cycle (a banked or broadcast weight memory can
serve them with one read); in intra-layer mode core ``k`` reads tiles whose reduction index is
``k`` modulo ``cores`` (a memory banked that way serves each core from its own bank).
"""

from amaranth.hdl import Assert, Cat, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import silence_on_error
from fixar_hw.arith.mac import exact_product
from fixar_hw.arith.numeric import range_shape, shape_of
from fixar_hw.arith.sp2 import SP2ShiftAdd
from fixar_hw.train._stages import delay, stage, tree_stages, tree_sum
from fixar_hw.train.aap import OP_CODES, AAPCommandSet, field_bits
from fixar_hw.train.aap_output import GradientRequantizer, OutputStage
from fixar_hw.train.aap_sequencer import AAPSequencer, read_ports
from fixar_hw.train.pe_grid import PEGrid, dual_products
from sw_model.arch.aap import AAPConfig
from sw_model.numerics.fixed import FixedFormat, product_range
from sw_model.numerics.sp2 import SP2Format

__all__ = ["PEArray", "SP2CommandSet", "SP2PEArray"]

_FWD, _WG = OP_CODES["forward"], OP_CODES["wgrad"]


class SP2CommandSet(AAPCommandSet):
    """The command encoding of an :class:`SP2PEArray`: :class:`~fixar_hw.train.aap.AAPCommandSet`
    without the weight gradient (see :class:`SP2PEArray`)."""

    def command(self, op: str, **kwargs) -> dict:
        """As :meth:`AAPCommandSet.command <fixar_hw.train.aap.AAPCommandSet.command>`;
        ``"wgrad"`` raises ``ValueError``."""
        if op == "wgrad":
            raise ValueError("SP2PEArray runs 'forward' and 'backward', not 'wgrad' (weight "
                             "gradients need multipliers: use a PEArray)")
        return super().command(op, **kwargs)


class PEArray(wiring.Component):
    """``config.cores`` AAP cores of ``size x size`` PEs in lockstep, with their sequencer and
    output stages (see the module docs for the two parallelisms).

    An operation starts with a command on :attr:`cmd` (see :meth:`command`); the array then
    reads its memories through the read ports (one tile or slice per port per cycle, addresses
    below) and emits results on :attr:`o` (forward, backward) or :attr:`g` (weight gradient).
    It accepts the next command once the last result has left.

    Memories (read ports with one cycle of latency, as ``amaranth.lib.memory`` gives; ``en`` is
    low whenever the port is not read, so the data stays put), one set per core; the addresses
    of core 0 in intra-batch mode, the other cores' as in the module docs:

    ``w_rd``
        Weight tiles, ``size**2`` lanes of ``w_fmt``; tile ``(i, j)`` at
        ``w_base + i * ceil(n/size) + j``.
    ``v_rd``
        The vector operand, ``size`` lanes: ``x`` slices (forward; ``a_fmt``) or ``d`` slices
        (backward and weight gradient; ``d_fmt``); slice ``s`` of vector ``b`` at
        ``v_base + b * slices + s``.
    ``u_rd``
        The second vector operand (``a_fmt``): ``y_prev`` (backward) or ``x`` (weight
        gradient), same layout at ``u_base``.
    ``b_rd``
        Biases (forward), ``size`` lanes of ``w_fmt``, slice ``i`` at ``b_base + i``.

    Contents of lanes beyond a layer's size do not matter: the core masks them.

    Run-time activation formats: each command carries the fraction bits of its activation
    operand (``x``, or ``y_prev``) and the fraction bits and width (``a_fmt.width`` or
    ``config.narrow_width``) of a forward output, see
    :meth:`sw_model.arch.aap.AAPConfig.act_format`.
    The requantizers shift by amounts known only at run time (barrel shifters,
    :func:`fixar_hw.arith.numeric.requantize_runtime`). The tanh table is a memory, one copy per
    output lane, written through :attr:`tbl_wr` (every copy at once) while the core is idle;
    it starts with :attr:`~sw_model.arch.aap.AAPConfig.table`. A tanh command's ``t_shift`` is its
    table's :attr:`~sw_model.numerics.activation.TanhTable.shift`; the memory must hold
    :meth:`~sw_model.arch.aap.AAPConfig.table_image` of that table.

    Results: :attr:`o` carries one output slice per beat (``data[k]`` for core ``k``: the slices
    of ``cores`` consecutive vectors in intra-batch mode, core 0's alone in intra-layer mode),
    for each vector in order, slices in order; lanes beyond the layer are 0.
    Forward emits ``y`` (``a_fmt``), backward ``d_prev`` (``d_fmt``). :attr:`g` carries one
    gradient tile per beat (``grad_fmt``, lanes as in the weight layout), tiles in row-major
    order. ``mask`` flags the cores whose data is real; ``last`` marks the operation's final
    beat.

    Timing: one tile pass per cycle per core (``size**2`` MACs each). With outputs always accepted,
    an operation takes :meth:`sw_model.arch.aap.CycleModel.cycles` cycles from the command transfer
    to the last result transfer. A stalled output stalls the whole pipeline; nothing is lost.
    The pipeline is :meth:`~sw_model.arch.aap.CycleModel.fill` stages deep, each at most one
    adder, one multiplier or one barrel shifter: read, operands, products, the column adder
    trees (a register every two adder levels), the cross-core sum, accumulate, bias, align,
    round, saturate, table index, table read, table word, activation (forward and backward);
    read, operands, products, accumulate, align, round, saturate (weight gradient). The run-time
    shift amounts are registers set with the command.

    Half mode: the PEs of a half-mode build are dual-precision
    (:class:`~fixar_hw.arith.pe.DualPrecisionPE`, one pipeline stage more); a command with
    ``half`` set runs two products a PE per cycle (see :class:`~sw_model.arch.aap.AAPConfig`),
    with the same results.

    Numerics: exact products (PE multipliers), exact sums in accumulators sized for the
    largest layer and batch of the configuration (they cannot wrap), then one saturating
    requantization with ``config.rounding`` per result, as in :mod:`sw_model.arch.aap`.

    Structure: an :class:`~fixar_hw.train.aap_sequencer.AAPSequencer` (decoding, loops,
    addresses), one :class:`~fixar_hw.train.pe_grid.PEGrid` of
    :class:`~fixar_hw.train.pe_grid.ProcessingElement` per core, the cross-core adder tree, and
    per core an :class:`~fixar_hw.train.aap_output.OutputStage` and a
    :class:`~fixar_hw.train.aap_output.GradientRequantizer`; the passes' tags travel alongside
    the data in registers of this component. Every register advances with one enable, high
    while neither output stream is stalled.

    Parameters
    ----------
    config : AAPConfig
        Grid size, cores, formats and limits.

    Members
    -------
    cmd : In(stream.Signature(command_layout))
    w_rd, v_rd, u_rd, b_rd : In(memory.ReadPort.Signature(...)).array(cores)
    w1_rd, v1_rd, u1_rd : In(memory.ReadPort.Signature(...)).array(cores)
        Half-mode builds only (:attr:`~sw_model.arch.aap.AAPConfig.half_mode`): the second
        weight tile (forward: the next reduction tile, at the next address), the second
        vector operand (forward: the next slice; weight gradient: the next batch vector's
        deltas) and the second input (weight gradient: the next batch vector's), laid out as
        their namesakes.
    tbl_wr : Out(memory.WritePort.Signature(addr_width=tanh_index_bits, shape=a_fmt))
        The table memories' write port (driven from outside, like a memory's).
    o : Out(stream.Signature({data, mask, last}))
    g : Out(stream.Signature({data, mask, last}))
    busy : Out(1)
        High from the command transfer to the last result transfer.
    """

    #: The command encoding (a subclass may restrict it).
    _command_set: type[AAPCommandSet] = AAPCommandSet

    @silence_on_error
    def __init__(self, config: AAPConfig) -> None:
        if not isinstance(config, AAPConfig):
            raise TypeError(f"config must be an AAPConfig, not {config!r}")
        self._config = c = config
        self._commands = self._command_set(config)
        S, N = c.size, c.cores
        self._left_shape = signed(max(c.w_fmt.width, c.d_fmt.width))
        self._v_shape = signed(max(c.a_fmt.width, c.d_fmt.width))
        self._o_shape = self._v_shape
        aw = c.addr_width
        port = memory.ReadPort.Signature
        half = {}
        if c.half_mode:
            half = {
                "w1_rd": In(port(addr_width=aw, shape=data.ArrayLayout(
                    self._weight_lane_shape(), S * S))).array(N),
                "v1_rd": In(port(addr_width=aw, shape=data.ArrayLayout(self._v_shape, S)))
                .array(N),
                "u1_rd": In(port(addr_width=aw, shape=data.ArrayLayout(shape_of(c.a_fmt), S)))
                .array(N),
            }
        super().__init__({
            "cmd": In(stream.Signature(self.command_layout)),
            "w_rd": In(port(addr_width=aw,
                            shape=data.ArrayLayout(self._weight_lane_shape(), S * S))).array(N),
            "v_rd": In(port(addr_width=aw, shape=data.ArrayLayout(self._v_shape, S))).array(N),
            "u_rd": In(port(addr_width=aw, shape=data.ArrayLayout(shape_of(c.a_fmt), S)))
            .array(N),
            "b_rd": In(port(addr_width=aw, shape=data.ArrayLayout(shape_of(c.w_fmt), S)))
            .array(N),
            # the core holds the table memories: the port is written from outside
            "tbl_wr": Out(memory.WritePort.Signature(addr_width=c.tanh_index_bits,
                                                     shape=shape_of(c.a_fmt))),
            "o": Out(stream.Signature(data.StructLayout({
                "data": data.ArrayLayout(data.ArrayLayout(self._o_shape, S), N),
                "mask": N,
                "last": 1,
            }))),
            "g": Out(stream.Signature(data.StructLayout({
                "data": data.ArrayLayout(data.ArrayLayout(shape_of(c.grad_fmt), S * S), N),
                "mask": N,
                "last": 1,
            }))),
            "busy": Out(1),
            **half,
        })

    # --- build-time description ------------------------------------------------------------

    @property
    def config(self) -> AAPConfig:
        """The configuration."""
        return self._config

    @property
    def commands(self) -> "AAPCommandSet":
        """The command encoding of this array (:class:`AAPCommandSet` or a subclass)."""
        return self._commands

    @property
    def command_layout(self) -> data.StructLayout:
        """Layout of a command (:attr:`AAPCommandSet.layout`)."""
        return self._commands.layout

    def command(self, op: str, **kwargs) -> dict:
        """The :attr:`cmd` payload of one operation (:meth:`AAPCommandSet.command`)."""
        return self._commands.command(op, **kwargs)

    @property
    def product_range(self) -> tuple[int, int]:
        """``(min, max)`` over the exact products of the three operations (and, in a half-mode
        build, the sums of two products of narrow activations)."""
        c = self._config
        ranges = [product_range(c.w_fmt, c.a_fmt), product_range(c.w_fmt, c.d_fmt),
                  product_range(c.d_fmt, c.a_fmt)]
        if c.half_mode:
            narrow = FixedFormat(c.narrow_width, 0)
            for left in (c.w_fmt, c.d_fmt):
                lo, hi = product_range(left, narrow)
                ranges.append((2 * lo, 2 * hi))
        return min(r[0] for r in ranges), max(r[1] for r in ranges)

    @property
    def product_shape(self) -> Shape:
        """Shape holding any product of the three operations."""
        return range_shape(*self.product_range)

    @property
    def acc_shape(self) -> Shape:
        """Column accumulators: any sum of up to ``2**bits(max(max_m, max_n) - 1)`` products
        plus a bias shifted by ``a_fmt.frac``; they cannot wrap."""
        c = self._config
        terms = 1 << max(field_bits(c.max_m - 1), field_bits(c.max_n - 1))
        lo, hi = self.product_range
        f = c.a_fmt.frac
        return range_shape(terms * lo + (c.w_fmt.min_int << f), terms * hi + (c.w_fmt.max_int << f))

    @property
    def pe_acc_shape(self) -> Shape:
        """PE accumulators (weight gradient): any sum of up to ``2**bits(max_batch - 1)``
        products; they cannot wrap."""
        lo, hi = self.product_range
        terms = 1 << field_bits(self._config.max_batch - 1)
        return range_shape(terms * lo, terms * hi)

    def _weight_lane_shape(self) -> Shape:
        """Shape of one lane of a weight tile (a ``w_fmt`` code here)."""
        return shape_of(self._config.w_fmt)

    def _multiply(self, m: Module, left: Value, right: Value) -> Value:
        """One PE's product of ``left`` (a weight lane, or ``d`` for the weight gradient) and
        ``right`` (the broadcast vector lane). The seam for other PEs (SP2 lanes, abstract
        products)."""
        return exact_product(left, right)

    def _multiply_dual(self, m: Module, left: Value, left1: Value, right: Value, half: Value
                       ) -> tuple[Value, Value]:
        """A dual-precision PE's two products (a
        :class:`~fixar_hw.arith.pe.DualPrecisionPE`); the seam for abstract products."""
        return dual_products(m, left, left1, right, half)

    # --- hardware ----------------------------------------------------------------------------

    def elaborate(self, platform) -> Module:
        m = Module()
        c = self._config
        N = c.cores
        o, g = self.o, self.g
        # the whole pipeline advances while neither output stream is stalled
        go = Signal()
        m.d.comb += go.eq((~o.valid | o.ready) & (~g.valid | g.ready))
        m.submodules.sequencer = seq = AAPSequencer(c, self.command_layout)
        wiring.connect(m, wiring.flipped(self.cmd), seq.cmd)
        for q in read_ports(c):
            rd = getattr(self, f"{q}_rd")
            for k in range(N):
                m.d.comb += [rd[k].addr.eq(seq.reads[q].addr[k]),
                             rd[k].en.eq(seq.reads[q].en[k])]
        pipe = _Tags(m, go, seq.tag, seq.busy)
        t3 = pipe.then(pipe.then(pipe.first, "2"), "3")   # operands, then products
        if c.half_mode:
            t3 = pipe.then(t3, "3h")   # dual PEs: the two products, then their sum
        grids = [self._grid(m, k, go, seq, t3) for k in range(N)]
        self._gradients(m, go, seq, pipe, t3, grids)
        self._results(m, go, seq, pipe, t3, grids)
        # occupancy: the next command waits for the pipeline to drain. ``in_flight`` is a
        # register loaded with the next value of the OR of every stage's valid bit, so the
        # command's acceptance (which fans out to every command register) starts at registers
        in_flight = Signal()
        m.d.sync += in_flight.eq(Mux(go, Cat(*pipe.inputs).any(), in_flight))
        if platform == "formal":
            m.d.comb += Assert(in_flight == Cat(*pipe.valids).any(), "in_flight is exact")
        m.d.comb += [seq.en.eq(go), seq.drained.eq(~in_flight),
                     self.busy.eq(seq.busy | in_flight)]
        return m

    def _grid(self, m: Module, k: int, go: Value, seq: AAPSequencer, t3: dict) -> PEGrid:
        """Core ``k``'s PE grid, fed by its read ports; products tagged by ``t3``."""
        c = self._config
        dual = c.pe_half_width if c.half_mode else None
        right = signed(2 * dual) if dual else self._v_shape
        grid = PEGrid(c.size, weight=self._weight_lane_shape(), vector=self._v_shape,
                      second=shape_of(c.a_fmt), left=self._left_shape, right=right,
                      product=self.product_shape, acc=self.pe_acc_shape,
                      multiply=self._multiply, dual=dual, multiply_dual=self._multiply_dual)
        m.submodules[f"grid_{k}"] = grid
        op = seq.settings.op
        if dual:
            m.d.comb += [
                grid.half.eq(seq.settings.half), grid.tile1.eq(self.w1_rd[k].data),
                grid.vec1.eq(self.v1_rd[k].data), grid.uvec1.eq(self.u1_rd[k].data),
                grid.v1mask.eq(seq.v1mask[k]), grid.u1mask.eq(seq.u1mask[k]),
            ]
        m.d.comb += [
            grid.en.eq(go), grid.is_fwd.eq(op == _FWD), grid.is_wg.eq(op == _WG),
            grid.tile.eq(self.w_rd[k].data), grid.vec.eq(self.v_rd[k].data),
            grid.uvec.eq(self.u_rd[k].data),
            grid.vmask.eq(seq.vmask[k]), grid.umask.eq(seq.umask[k]),
            grid.acc.eq(t3["v"] & (op == _WG)), grid.first.eq(t3["first"]),
            grid.close.eq(t3["last"]),
        ]
        return grid

    def _gradients(self, m: Module, go: Value, seq: AAPSequencer, pipe: "_Tags", t3: dict,
                   grids: list[PEGrid]) -> None:
        """Weight gradient: the grids' closed sums through a requantizer to :attr:`g`."""
        c, g = self._config, self.g
        t = pipe.then({"v": t3["v"] & (seq.settings.op == _WG) & t3["last"],
                       "end": t3["end"], "cv": t3["cv"]}, "g4")
        for i in range(GradientRequantizer.latency):
            t = pipe.then(t, f"g{5 + i}")
        with m.If(go):
            m.d.sync += [g.valid.eq(t["v"]), g.payload.mask.eq(t["cv"]),
                         g.payload.last.eq(t["end"])]
        pipe.track(g.valid, t["v"])
        for k, grid in enumerate(grids):
            req = GradientRequantizer(c, acc=self.pe_acc_shape)
            m.submodules[f"grad_out_{k}"] = req
            m.d.comb += [req.en.eq(go), req.left_g.eq(seq.settings.left_g),
                         req.sum.eq(grid.sum)]
            with m.If(go):
                m.d.sync += g.payload.data[k].eq(req.out)

    def _results(self, m: Module, go: Value, seq: AAPSequencer, pipe: "_Tags", t3: dict,
                 grids: list[PEGrid]) -> None:
        """Forward and backward: column sums, the cross-core sum (intra-layer), the output
        stages, :attr:`o`."""
        c, o = self._config, self.o
        S, N = c.size, c.cores
        s = seq.settings
        is_fwd = s.op == _FWD
        fb = {"v": t3["v"] & (s.op != _WG), "first": t3["first"], "last": t3["last"],
              "end": t3["end"], "cv": t3["cv"], "omask": t3["omask"]}
        # each column's side operand (bias forward, y_prev backward) alongside its sum
        aux_shape = signed(max(c.w_fmt.width, c.a_fmt.width))
        aux = [[None] * S for _ in range(N)]
        for k in range(N):
            for cc in range(S):
                side = Mux(is_fwd, self.b_rd[k].data[cc], self.u_rd[k].data[cc])
                aux[k][cc] = delay(m, go, stage(m, go, side, aux_shape, f"aux2_{k}_{cc}"),
                                   grids[k].col_latency - 1, f"aux_{k}_{cc}")
        for i in range(tree_stages(S)):
            fb = pipe.then(fb, f"c{i}")
        cols = [[grid.col[cc] for cc in range(S)] for grid in grids]
        if N > 1:
            # intra-layer: core 0 accumulates the sum over the cores
            n = tree_stages(N)
            for cc in range(S):
                reduced = tree_sum(m, go, [cols[k][cc] for k in range(N)], f"red_{cc}")
                for k in range(N):
                    own = delay(m, go, cols[k][cc], n, f"own_{k}_{cc}")
                    cols[k][cc] = Mux(s.layer, reduced, own) if k == 0 else own
                    aux[k][cc] = delay(m, go, aux[k][cc], n, f"auxr_{k}_{cc}")
            for i in range(n):
                fb = pipe.then(fb, f"x{i}")
        t = pipe.then({"v": fb["v"] & fb["last"], "end": fb["end"],
                       "cv": Mux(s.layer, 1, fb["cv"]), "omask": fb["omask"]}, "a")
        for i in range(OutputStage.latency - 1):
            t = pipe.then(t, f"o{i}")
        with m.If(go):
            m.d.sync += [o.valid.eq(t["v"]), o.payload.mask.eq(t["cv"]),
                         o.payload.last.eq(t["end"])]
        pipe.track(o.valid, t["v"])
        col_shape = signed(grids[0].col.shape().elem_shape.width + (N - 1).bit_length())
        for k in range(N):
            out = OutputStage(c, s.shape(), col=col_shape, acc=self.acc_shape,
                              out=self._o_shape)
            m.submodules[f"out_{k}"] = out
            m.d.comb += [out.en.eq(go), out.acc.eq(fb["v"]), out.first.eq(fb["first"]),
                         out.close.eq(fb["last"]), out.settings.eq(s),
                         out.tbl_wr.addr.eq(self.tbl_wr.addr),
                         out.tbl_wr.data.eq(self.tbl_wr.data), out.tbl_wr.en.eq(self.tbl_wr.en)]
            for cc in range(S):
                keep = t["omask"][cc] & t["cv"][k]
                m.d.comb += [out.col[cc].eq(cols[k][cc]), out.aux[cc].eq(aux[k][cc])]
                with m.If(go):
                    m.d.sync += o.payload.data[k][cc].eq(Mux(keep, out.out[cc], 0))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._config!r})"


class _Tags:
    """The tags of the passes in flight (valid, first/last pass of a sum, end of the op, core
    and lane masks), one set per pipeline stage; every stage's valid bit, and what it takes
    when the pipeline advances."""

    def __init__(self, m: Module, en: Value, first, issue: Value) -> None:
        self._m, self._en = m, en
        self.first = {name: getattr(first, name) for name in first.shape().members}
        self.valids: list[Value] = []
        self.inputs: list[Value] = []
        self.track(self.first["v"], issue)

    def track(self, valid: Value, source: Value) -> None:
        """Count ``valid``, a register loaded with ``source`` when the pipeline advances."""
        self.valids.append(valid)
        self.inputs.append(source)

    def then(self, prev: dict, name: str) -> dict:
        """``prev`` one stage later."""
        out = {key: stage(self._m, self._en, value, len(Value.cast(value)), f"{key}{name}")
               for key, value in prev.items()}
        self.track(out["v"], prev["v"])
        return out


class SP2PEArray(PEArray):
    """A PE array whose PEs multiply by SP2 weights with shifts and one add (MSQ's LUT lanes).

    Weight tiles hold SP2 codes of ``sp2_fmt`` (``sp2_fmt.m`` bits per lane, same tile layout);
    every PE is an :class:`~fixar_hw.arith.sp2.SP2ShiftAdd` instead of a multiplier, so the grid
    uses
    no DSP blocks. The level integer of a code is the weight as a ``sp2_fmt.level_fmt`` code, so
    results equal :func:`sw_model.arch.aap.forward` and :func:`~sw_model.arch.aap.backward` on
    ``sp2_fmt.to_int(codes)`` with ``w_fmt = sp2_fmt.level_fmt`` (biases are
    ``level_fmt`` codes too), bit for bit.

    Forward and backward both multiply a weight by a vector lane, so both run on shift-adders.
    The weight gradient multiplies two vectors (``d x^T``) and needs multipliers: this array
    does not run it (SP2 is an inference-time weight scheme: train on a :class:`PEArray`, then
    quantize the rows). Per-row MSQ scales are outside the array (fold a per-layer scale into
    the next format, or use :class:`~fixar_hw.arith.row_unit.MixedRowUnit`).

    Parameters
    ----------
    config : AAPConfig
        With ``w_fmt == sp2_fmt.level_fmt``.
    sp2_fmt : SP2Format
    """

    _command_set = SP2CommandSet

    @silence_on_error
    def __init__(self, config: AAPConfig, sp2_fmt: SP2Format) -> None:
        if not isinstance(sp2_fmt, SP2Format):
            raise TypeError(f"sp2_fmt must be an SP2Format, not {sp2_fmt!r}")
        if isinstance(config, AAPConfig) and config.w_fmt != sp2_fmt.level_fmt:
            raise ValueError(f"config.w_fmt must be {sp2_fmt.level_fmt!r} (the level integers "
                             f"of {sp2_fmt!r}), not {config.w_fmt!r}")
        if isinstance(config, AAPConfig) and config.half:
            raise ValueError("SP2PEArray multiplies with shift-adders: config.half must be "
                             "False")
        self._sp2_fmt = sp2_fmt
        super().__init__(config)

    @property
    def sp2_fmt(self) -> SP2Format:
        """The weight code format."""
        return self._sp2_fmt

    def _weight_lane_shape(self) -> Shape:
        return unsigned(self._sp2_fmt.m)

    def _multiply(self, m: Module, left: Value, right: Value) -> Value:
        lane = SP2ShiftAdd(FixedFormat(len(right), 0), self._sp2_fmt)
        m.submodules += lane
        m.d.comb += [lane.x.eq(right), lane.code.eq(left[: self._sp2_fmt.m])]
        return lane.p

    def __repr__(self) -> str:
        return f"SP2PEArray({self._config!r}, {self._sp2_fmt!r})"
