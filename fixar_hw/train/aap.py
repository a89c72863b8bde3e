"""Adaptive array processing (AAP): a grid of PEs that runs forward, backward and weight-gradient.

FIXAR's compute engine. A ``size x size`` grid of PEs multiplies, in one cycle, one weight tile by
one vector slice: activations are broadcast along PE rows and the products summed down PE columns
into per-column accumulators (forward and backward), or each PE accumulates its own product over
a batch (weight gradient, an outer product per cycle). Closed sums go through an output stage:
requantization, bias, activation (identity, ReLU, table tanh) or the activation derivative.

The three operations use one weight memory layout, the tiles of
:func:`sw_model.arch.aap.tile_weights`
(tile ``(i, j)`` holds ``W[i*S + r, j*S + c]`` at lane ``r*S + c``), and never a transpose:

forward, ``y = act(W x + b)``
    PE ``(r, c)`` takes lane ``c*S + r`` of tile ``(i, j)``: weight row ``i*S + c`` goes down PE
    column ``c``, ``x[j*S + r]`` is broadcast along PE row ``r``; column ``c`` sums output
    ``i*S + c`` over the slice. The reduction runs over ``j``.
backward, ``d_prev = (W^T d) * act'(y_prev)``
    PE ``(r, c)`` takes lane ``r*S + c`` of the same tile: weight row ``i*S + r`` goes along PE
    row ``r``, ``d[i*S + r]`` is broadcast along it; column ``c`` sums ``e[j*S + c]``. The
    reduction runs over ``i``.
weight gradient, ``G = sum_b d_b x_b^T``
    PE ``(r, c)`` accumulates ``d_b[i*S + r] * x_b[j*S + c]`` over the batch; the closed tile
    leaves as one ``S x S`` word in the weight layout.

Results equal :func:`sw_model.arch.aap.forward`, :func:`~sw_model.arch.aap.backward` and
:func:`~sw_model.arch.aap.weight_gradient` bit for bit, and cycle counts equal
:class:`sw_model.arch.aap.CycleModel`. :class:`AAPCore` is one core;
:class:`fixar_hw.train.array.PEArray`
runs several in lockstep with intra-batch or intra-layer parallelism (the engine below is written
for ``cores`` cores; an :class:`AAPCore` is the one-core case).
"""

from dataclasses import dataclass

from amaranth.hdl import Assert, Cat, Module, Mux, Shape, Signal, Value, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import silence_on_error
from fixar_hw.arith.mac import exact_product
from fixar_hw.arith.numeric import range_shape, shape_of
from fixar_hw.train._stages import delay, stage, tree_stages, tree_sum
from fixar_hw.train.aap_output import GradientRequantizer, OutputStage
from fixar_hw.train.aap_sequencer import PORTS, AAPSequencer
from fixar_hw.train.pe_grid import PEGrid
from sw_model.arch.aap import OPS, PARALLELISM, AAPConfig
from sw_model.numerics.activation import ACTIVATIONS, TanhTable
from sw_model.numerics.fixed import FixedFormat, product_range

__all__ = ["KIND_CODES", "OP_CODES", "AAPCommandSet", "AAPCore"]

#: Encoding of the ``op`` field of a command.
OP_CODES = {"forward": 0, "backward": 1, "wgrad": 2}
#: Encoding of the ``kind`` field of a command.
KIND_CODES = {kind: code for code, kind in enumerate(ACTIVATIONS)}

_FWD, _BWD, _WG = 0, 1, 2


def _bits(n: int) -> int:
    return max(n.bit_length(), 1)


@dataclass(frozen=True)
class AAPCommandSet:
    """The command encoding of an AAP array (:class:`AAPCore`,
    :class:`~fixar_hw.train.array.PEArray`) for one :class:`~sw_model.arch.aap.AAPConfig`: plain
    Python, shared by the hardware and the host (a program's descriptors are encoded without
    building an array).

    Parameters
    ----------
    config : AAPConfig

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`~sw_model.arch.aap.AAPConfig`.
    """

    config: AAPConfig

    def __post_init__(self) -> None:
        if not isinstance(self.config, AAPConfig):
            raise TypeError(f"config must be an AAPConfig, not {self.config!r}")

    @property
    def layout(self) -> data.StructLayout:
        """Layout of a command: dimensions are stored minus one, so none can be 0."""
        c = self.config
        return data.StructLayout({
            "op": 2,
            "kind": 2,
            "layer": 1,
            "m_minus_1": _bits(c.max_m - 1),
            "n_minus_1": _bits(c.max_n - 1),
            "batch_minus_1": _bits(c.max_batch - 1),
            "w_base": c.addr_width,
            "v_base": c.addr_width,
            "u_base": c.addr_width,
            "b_base": c.addr_width,
            "x_frac": _bits(c.a_fmt.frac),
            "o_frac": _bits(c.a_fmt.frac),
            "o_narrow": 1,
            "t_shift": _bits(self.max_t_shift),
        })

    @property
    def max_t_shift(self) -> int:
        """The largest table shift a command holds: ``|z| >> shift`` indexes the table, and
        beyond ``a_fmt.width`` bits every index clamps."""
        return self.config.a_fmt.width

    def command(self, op: str, *, m: int, n: int, batch: int, kind: str = "identity",
                parallelism: str = "batch", w_base: int = 0, v_base: int = 0,
                u_base: int = 0, b_base: int = 0, x_fmt: FixedFormat | None = None,
                out_fmt: FixedFormat | None = None, table: TanhTable | None = None) -> dict:
        """The command payload (a dict for :attr:`layout`) of one operation on an ``m x n``
        weight matrix.

        ``x_fmt`` is the format of the activation operand (forward ``x``, backward
        ``y_prev``, weight-gradient ``x``) and ``out_fmt`` that of a forward output, each a
        run-time format of the build (default ``a_fmt``); ``table`` is the tanh table of a
        forward tanh layer (default :meth:`~sw_model.arch.aap.AAPConfig.table_for` the output
        format, or the initial table when ``out_fmt`` is omitted).

        Raises
        ------
        TypeError
            For a dimension or base address that is no integer.
        ValueError
            For an unknown ``op``/``kind``/``parallelism``, a dimension outside
            ``1..config.max_*``, a base address that does not fit ``addr_width``, or a format
            or table the build cannot take.
        """
        c = self.config
        if op not in OPS:
            raise ValueError(f"op must be one of {', '.join(map(repr, OPS))}, not {op!r}")
        if kind not in ACTIVATIONS:
            raise ValueError(f"kind must be one of {', '.join(map(repr, ACTIVATIONS))}, "
                             f"not {kind!r}")
        if parallelism not in PARALLELISM:
            raise ValueError(f"parallelism must be 'batch' or 'layer', not {parallelism!r}")
        for name, value, hi in (("m", m, c.max_m), ("n", n, c.max_n),
                                ("batch", batch, c.max_batch)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            if not 1 <= value <= hi:
                raise ValueError(f"{name} must be from 1 to {hi}, not {value!r}")
        bases = {"w_base": w_base, "v_base": v_base, "u_base": u_base, "b_base": b_base}
        for name, value in bases.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            if not 0 <= value < 1 << c.addr_width:
                raise ValueError(f"{name} must be from 0 to {(1 << c.addr_width) - 1}, "
                                 f"not {value!r}")
        x_frac, _ = c.act_fields(x_fmt)
        o_frac, o_narrow = c.act_fields(out_fmt)
        if table is None:
            table = c.table if out_fmt is None else c.table_for(out_fmt)
        c.table_image(table)  # raises for a table the memory cannot hold
        out = out_fmt or c.a_fmt
        if table.out_fmt != out:
            raise ValueError(f"table format {table.out_fmt!r} differs from the output format "
                             f"{out!r}")
        return {"op": OP_CODES[op], "kind": KIND_CODES[kind],
                "layer": int(parallelism == "layer"), "m_minus_1": m - 1,
                "n_minus_1": n - 1, "batch_minus_1": batch - 1, **bases,
                "x_frac": x_frac, "o_frac": o_frac, "o_narrow": int(o_narrow),
                "t_shift": min(table.shift, self.max_t_shift)}

    def cycles(self, op: str, m: int, n: int, batch: int, parallelism: str = "batch") -> int:
        """Cycles from the command transfer to the last result transfer (outputs always
        accepted): :meth:`sw_model.arch.aap.CycleModel.cycles`."""
        return self.config.cycle_model.cycles(op, m, n, batch, parallelism)


class AAPCore(wiring.Component):
    """One AAP core: a ``size x size`` PE grid with its sequencer and output stage.

    An operation starts with a command on :attr:`cmd` (see :meth:`command`); the core then
    reads its memories through the read ports (one tile or slice per port per cycle, addresses
    below) and emits results on :attr:`o` (forward, backward) or :attr:`g` (weight gradient).
    It accepts the next command once the last result has left.

    Memories (read ports with one cycle of latency, as ``amaranth.lib.memory`` gives; ``en`` is
    low whenever the port is not read, so the data stays put):

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

    Results: :attr:`o` carries one output slice per beat (``data[k]`` for core ``k``; here
    ``k = 0``), for each vector in order, slices in order; lanes beyond the layer are 0.
    Forward emits ``y`` (``a_fmt``), backward ``d_prev`` (``d_fmt``). :attr:`g` carries one
    gradient tile per beat (``grad_fmt``, lanes as in the weight layout), tiles in row-major
    order. ``mask`` flags the cores whose data is real; ``last`` marks the operation's final
    beat.

    Timing: one tile pass per cycle per core (``size**2`` MACs). With outputs always accepted,
    an operation takes :meth:`sw_model.arch.aap.CycleModel.cycles` cycles from the command transfer
    to the last result transfer. A stalled output stalls the whole pipeline; nothing is lost.
    The pipeline is :meth:`~sw_model.arch.aap.CycleModel.fill` stages deep, each at most one
    adder, one multiplier or one barrel shifter: read, operands, products, the column adder
    trees (a register every two adder levels), the cross-core sum, accumulate, bias, align,
    round, saturate, table index, table read, table word, activation (forward and backward);
    read, operands, products, accumulate, align, round, saturate (weight gradient). The run-time
    shift amounts are registers set with the command.

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
        Grid size, formats and limits; ``config.cores`` must be 1 (see
        :class:`fixar_hw.train.array.PEArray` for several cores).

    Members
    -------
    cmd : In(stream.Signature(command_layout))
    w_rd, v_rd, u_rd, b_rd : In(memory.ReadPort.Signature(...)).array(cores)
    tbl_wr : Out(memory.WritePort.Signature(addr_width=tanh_index_bits, shape=a_fmt))
        The table memories' write port (driven from outside, like a memory's).
    o : Out(stream.Signature({data, mask, last}))
    g : Out(stream.Signature({data, mask, last}))
    busy : Out(1)
        High from the command transfer to the last result transfer.
    """

    _max_cores = 1
    #: The command encoding (a subclass may restrict it).
    _command_set: type[AAPCommandSet] = AAPCommandSet

    @silence_on_error
    def __init__(self, config: AAPConfig) -> None:
        if not isinstance(config, AAPConfig):
            raise TypeError(f"config must be an AAPConfig, not {config!r}")
        if config.cores > self._max_cores:
            raise ValueError(f"{type(self).__name__} has one core, not config.cores = "
                             f"{config.cores!r} (use fixar_hw.train.array.PEArray)")
        self._config = c = config
        self._commands = self._command_set(config)
        S, N = c.size, c.cores
        self._left_shape = signed(max(c.w_fmt.width, c.d_fmt.width))
        self._v_shape = signed(max(c.a_fmt.width, c.d_fmt.width))
        self._o_shape = self._v_shape
        aw = c.addr_width
        port = memory.ReadPort.Signature
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
        """``(min, max)`` over the exact products of the three operations."""
        c = self._config
        ranges = [product_range(c.w_fmt, c.a_fmt), product_range(c.w_fmt, c.d_fmt),
                  product_range(c.d_fmt, c.a_fmt)]
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
        terms = 1 << max(_bits(c.max_m - 1), _bits(c.max_n - 1))
        lo, hi = self.product_range
        f = c.a_fmt.frac
        return range_shape(terms * lo + (c.w_fmt.min_int << f), terms * hi + (c.w_fmt.max_int << f))

    @property
    def pe_acc_shape(self) -> Shape:
        """PE accumulators (weight gradient): any sum of up to ``2**bits(max_batch - 1)``
        products; they cannot wrap."""
        lo, hi = self.product_range
        terms = 1 << _bits(self._config.max_batch - 1)
        return range_shape(terms * lo, terms * hi)

    def _weight_lane_shape(self) -> Shape:
        """Shape of one lane of a weight tile (a ``w_fmt`` code here)."""
        return shape_of(self._config.w_fmt)

    def _multiply(self, m: Module, left: Value, right: Value) -> Value:
        """One PE's product of ``left`` (a weight lane, or ``d`` for the weight gradient) and
        ``right`` (the broadcast vector lane). The seam for other PEs (SP2 lanes, abstract
        products)."""
        return exact_product(left, right)

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
        rd = {"w": self.w_rd, "v": self.v_rd, "u": self.u_rd, "b": self.b_rd}
        for q in PORTS:
            for k in range(N):
                m.d.comb += [rd[q][k].addr.eq(seq.reads[q].addr[k]),
                             rd[q][k].en.eq(seq.reads[q].en[k])]
        pipe = _Tags(m, go, seq.tag, seq.busy)
        t3 = pipe.then(pipe.then(pipe.first, "2"), "3")   # operands, then products
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
        grid = PEGrid(c.size, weight=self._weight_lane_shape(), vector=self._v_shape,
                      second=shape_of(c.a_fmt), left=self._left_shape, right=self._v_shape,
                      product=self.product_shape, acc=self.pe_acc_shape,
                      multiply=self._multiply)
        m.submodules[f"grid_{k}"] = grid
        op = seq.settings.op
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
