"""The AAP array's sequencer: command decoding, the tile-pass loops and the memory addresses.

:class:`AAPSequencer` takes an operation's command (:class:`~fixar_hw.train.aap.AAPCommandSet`),
holds its settings in registers and issues one tile pass per enabled cycle: the read enables and
addresses of every core's four memory ports, and the pass's tags one cycle later (when the
memories' read data arrives). The loops, the address arithmetic and the order of the passes are
those of :class:`sw_model.arch.aap.CycleModel` (see :class:`~fixar_hw.train.array.PEArray` for the
address formulas).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from fixar_hw._util import silence_on_error
from fixar_hw.train.aap import OP_CODES, field_bits
from sw_model.arch.aap import AAPConfig

__all__ = ["HALF_PORTS", "PORTS", "AAPSequencer", "read_ports", "settings_layout"]

#: The memory ports an AAP core reads: weights, vector operand, second vector operand, biases.
PORTS = ("w", "v", "u", "b")
#: The further ports of a half-mode build, each the second operand of its namesake: the next
#: reduction tile (forward), the next slice (forward) or batch vector's delta (weight
#: gradient), the next batch vector's input (weight gradient).
HALF_PORTS = ("w1", "v1", "u1")
_PRIMARY = {"w1": "w", "v1": "v", "u1": "u"}


def read_ports(config: AAPConfig) -> tuple[str, ...]:
    """The read ports of an AAP core of ``config``: :data:`PORTS`, and :data:`HALF_PORTS` in a
    half-mode build (:attr:`~sw_model.arch.aap.AAPConfig.half_mode`)."""
    return PORTS + HALF_PORTS if config.half_mode else PORTS

_FWD, _BWD, _WG = OP_CODES["forward"], OP_CODES["backward"], OP_CODES["wgrad"]


def settings_layout(config: AAPConfig, command: data.StructLayout) -> data.StructLayout:
    """The settings an operation's command leaves in registers for the whole operation.

    ``op``, ``kind``, ``layer``, ``x_frac``, ``o_narrow``, ``t_shift`` and ``half`` as in the
    command;
    the requantizers' left shifts (``align_runtime``), computed once so that no subtraction
    sits in front of a barrel shifter: ``left_z = a_fmt.frac - x_frac + o_frac`` (forward
    output), ``left_d = 2 (a_fmt.frac - x_frac)`` (tanh derivative), ``left_g = a_fmt.frac -
    x_frac`` (weight gradient), and ``one_y``, 1 with ``2 x_frac`` fraction bits.
    """
    af = config.a_fmt.frac
    return data.StructLayout({
        "op": 2, "kind": 2, "layer": 1,
        "x_frac": command["x_frac"].shape, "o_narrow": 1, "t_shift": command["t_shift"].shape,
        "left_z": range(2 * af + 1), "left_d": range(2 * af + 1), "left_g": range(af + 1),
        "one_y": signed(2 * af + 2), "half": 1,
    })


def tag_layout(config: AAPConfig) -> data.StructLayout:
    """A tile pass's tags: ``v`` (a pass), ``first``/``last`` (first and last pass of a sum),
    ``end`` (the operation's last pass), ``cv`` (the cores holding a real pass) and ``omask``
    (the output lanes inside the layer)."""
    return data.StructLayout({"v": 1, "first": 1, "last": 1, "end": 1,
                              "cv": config.cores, "omask": config.size})


class AAPSequencer(wiring.Component):
    """Command decoding and tile-pass issue for ``config.cores`` AAP cores in lockstep.

    A command is accepted on :attr:`cmd` when no pass is being issued and :attr:`drained` is
    high (the core's pipeline holds none). Its settings go to :attr:`settings` in the next
    cycle; from then on, each cycle with :attr:`en` high issues one tile pass, until the last:
    :attr:`reads` enables core ``k``'s read port ``q`` at its address for this pass (ports
    without use in the pass stay disabled, so their data holds), and :attr:`tag`,
    :attr:`vmask` and :attr:`umask` carry the pass's tags and the lanes of its vector operands
    that lie inside the layer (zero for an idle core) one enabled cycle later, alongside the
    memories' read data. Passes per operation:
    :meth:`sw_model.arch.aap.CycleModel.passes`; one a cycle while :attr:`en` stays high.

    Half mode (a command's ``half``, in a half-mode build): a forward pass reads two
    reduction tiles (``w`` and ``w1``, tile ``j + 1`` at the next address) and two slices
    (``v`` and ``v1``), a weight-gradient pass two batch vectors (``v``/``v1`` the deltas of
    vectors ``b`` and ``b + 1``, ``u``/``u1`` their inputs). A pair's missing second half (an
    odd count) is not read, and its lanes are masked (:attr:`v1mask`, :attr:`u1mask`).

    Parameters
    ----------
    config : AAPConfig
    command : data.StructLayout
        The command layout (:attr:`~fixar_hw.train.aap.AAPCommandSet.layout`).

    Members
    -------
    cmd : In(stream.Signature(command))
    en : In(1)
        The pipeline advances (the array's outputs can move).
    drained : In(1)
        No pass is in the pipeline behind the sequencer.
    busy : Out(1)
        Passes are left to issue.
    settings : Out(settings_layout(config, command))
    reads : Out(StructLayout({q: {"addr": ArrayLayout(addr_width, cores), "en": cores}}))
        For ``q`` in :func:`read_ports`.
    tag : Out(tag_layout(config))
    vmask, umask : Out(ArrayLayout(size, cores))
    v1mask, u1mask : Out(ArrayLayout(size, cores))
        Half-mode builds only.
    """

    @silence_on_error
    def __init__(self, config: AAPConfig, command: data.StructLayout) -> None:
        if not isinstance(config, AAPConfig):
            raise TypeError(f"config must be an AAPConfig, not {config!r}")
        if not isinstance(command, data.StructLayout):
            raise TypeError(f"command must be a StructLayout, not {command!r}")
        self._config = config
        self._ports = read_ports(config)
        port = data.StructLayout({"addr": data.ArrayLayout(unsigned(config.addr_width),
                                                           config.cores),
                                  "en": config.cores})
        masks = ("vmask", "umask", "v1mask", "u1mask") if config.half_mode else ("vmask",
                                                                                 "umask")
        super().__init__({
            "cmd": In(stream.Signature(command)),
            "en": In(1),
            "drained": In(1),
            "busy": Out(1),
            "settings": Out(settings_layout(config, command)),
            "reads": Out(data.StructLayout({q: port for q in self._ports})),
            "tag": Out(tag_layout(config)),
            **{name: Out(data.ArrayLayout(config.size, config.cores)) for name in masks},
        })

    @property
    def config(self) -> AAPConfig:
        """The configuration."""
        return self._config

    def elaborate(self, platform) -> Module:
        m = Module()
        c = self._config
        N, L = c.cores, c.size.bit_length() - 1
        p = self.cmd.payload
        ti_new = (p.m_minus_1 >> L) + 1
        tj_new = (p.n_minus_1 >> L) + 1
        tw = max(len(ti_new), len(tj_new)) + field_bits(N)
        cw = max(tw, len(p.batch_minus_1)) + field_bits(N) + 1
        r = _Registers(c, p, tw, cw, self._ports)
        accept = Signal()
        m.d.comb += [
            self.cmd.ready.eq(~self.busy & self.drained),
            accept.eq(self.cmd.valid & self.cmd.ready),
        ]
        with m.If(accept):
            self._decode(m, r, ti_new, tj_new)
        self._loop(m, r)
        self._issue(m, r)
        return m

    # --- command decoding --------------------------------------------------------------------

    def _decode(self, m: Module, r: "_Registers", ti_new: Value, tj_new: Value) -> None:
        """Registers loaded when a command is accepted."""
        c, N = self._config, self._config.cores
        p, s = self.cmd.payload, self.settings
        af, f2 = c.a_fmt.frac, 2 * c.a_fmt.frac
        op_new = p.op
        half_new = p.half if c.half_mode else Const(0, 1)
        red_new = Mux(op_new == _BWD, ti_new, tj_new)
        # half mode: the reduction tiles two a pass (forward), the batch two vectors a pass
        red_1_new = Mux(half_new, (red_new + 1) >> 1, red_new) - 1
        m.d.sync += [
            self.busy.eq(1), s.op.eq(op_new), s.kind.eq(p.kind), s.layer.eq(p.layer),
            s.x_frac.eq(p.x_frac), s.o_narrow.eq(p.o_narrow), s.t_shift.eq(p.t_shift),
            s.half.eq(half_new),
            s.left_z.eq(af - p.x_frac + p.o_frac), s.left_d.eq(f2 - (p.x_frac << 1)),
            s.left_g.eq(af - p.x_frac), s.one_y.eq(Const(1, f2 + 2) << (p.x_frac << 1)),
            r.m_1.eq(p.m_minus_1), r.n_1.eq(p.n_minus_1), r.b_1.eq(p.batch_minus_1),
        ]
        if c.half_mode:
            m.d.sync += r.tb_1.eq(Mux(half_new, p.batch_minus_1 >> 1, p.batch_minus_1))
        m.d.sync += [
            r.ti.eq(ti_new),
            r.t_red_1.eq(red_1_new),
            r.t_out_1.eq(Mux(op_new == _BWD, tj_new, ti_new) - 1),
            r.a.eq(0), r.bm.eq(0), r.t.eq(0), r.aN.eq(0), r.bN.eq(0), r.tN.eq(0),
            r.wlin.eq(0), r.wlin_last.eq(ti_new * tj_new - N),
        ]
        for k in range(N):
            i0, j0 = _advance(Const(0, r.tw), Const(0, r.tw), k, tj_new)
            m.d.sync += [r.wi[k].eq(i0), r.wj[k].eq(j0)]
        for w in range(1, N + 1):
            m.d.sync += [r.wrap_at[w - 1].eq(tj_new * w - N),
                         r.wrap_off[w - 1].eq(N - tj_new * w)]
        for k in range(N + 1):
            m.d.sync += [r.red_lim[k].eq(red_1_new - k), r.bat_lim[k].eq(p.batch_minus_1 - k)]
        for (op_k, layer_k), entry in _coefficients(c, ti_new, tj_new).items():
            with m.If((op_new == op_k) & (p.layer == layer_k)):
                for q in PORTS:
                    # half mode doubles the inner step (two tiles, slices or vectors a
                    # pass) and, intra-layer, the cores' offsets (a core takes a pair)
                    doubled = (Const(0, 1), Const(0, 1), half_new, half_new & p.layer)
                    m.d.sync += [sig.eq(Mux(dbl, val << 1, val)) for sig, val, dbl
                                 in zip(r.coef[q], entry[q], doubled, strict=True)]
        for q in PORTS:
            base = getattr(p, f"{q}_base")
            m.d.sync += [r.reg_a[q].eq(base), r.reg_b[q].eq(base), r.cur[q].eq(base)]
        # the second operands' running addresses: their primary's, one tile, slice or batch
        # vector on (the next tile or slice is the next word; the next vector's slices are
        # ``ti`` (deltas) or ``tj`` (inputs) words on)
        wg_new = op_new == _WG
        offset = {"w1": 1, "v1": Mux(wg_new, ti_new, 1), "u1": tj_new}
        for q in self._ports[len(PORTS):]:
            base = getattr(p, f"{_PRIMARY[q]}_base") + offset[q]
            m.d.sync += [r.reg_a[q].eq(base), r.reg_b[q].eq(base), r.cur[q].eq(base)]

    # --- the loops -----------------------------------------------------------------------------

    def _loop(self, m: Module, r: "_Registers") -> None:
        """The three loops over passes (inner ``t``, middle ``bm``, outer ``a``)."""
        N = self._config.cores
        with m.If(r.issue):
            with m.If(~r.last_t):
                m.d.sync += [r.t.eq(r.t + 1), r.tN.eq(r.tN + N)]
                for q in self._ports:
                    m.d.sync += r.cur[q].eq(r.cur[q] + r.coef_of(q)[2])
            with m.Elif(~r.last_b):
                m.d.sync += [r.t.eq(0), r.tN.eq(0), r.bm.eq(r.bm + 1), r.bN.eq(r.bN + N)]
                for q in self._ports:
                    nb = r.reg_b[q] + r.coef_of(q)[1]
                    m.d.sync += [r.reg_b[q].eq(nb), r.cur[q].eq(nb)]
            with m.Elif(~r.last_a):
                m.d.sync += [r.t.eq(0), r.tN.eq(0), r.bm.eq(0), r.bN.eq(0), r.a.eq(r.a + 1),
                             r.aN.eq(r.aN + N)]
                for k in range(N):
                    nxt = r.step_tiles(r.wi[k], r.wj[k])
                    m.d.sync += [r.wi[k].eq(nxt[0]), r.wj[k].eq(nxt[1])]
                m.d.sync += r.wlin.eq(r.wlin + N)
                for q in self._ports:
                    na = r.reg_a[q] + r.coef_of(q)[0]
                    m.d.sync += [r.reg_a[q].eq(na), r.reg_b[q].eq(na), r.cur[q].eq(na)]
            with m.Else():
                m.d.sync += self.busy.eq(0)

    # --- a pass's reads and tags ---------------------------------------------------------------

    def _issue(self, m: Module, r: "_Registers") -> None:
        """The pass's read enables and addresses (this cycle) and its tags (next cycle)."""
        c = self._config
        S, N = c.size, c.cores
        s = self.settings
        is_fwd, is_bwd, is_wg = s.op == _FWD, s.op == _BWD, s.op == _WG
        m.d.comb += [
            r.issue.eq(self.busy & self.en),
            r.last_t.eq(Mux(is_wg, r.t == r.tb_1,
                            Mux(s.layer, r.tN.as_signed() > r.red_lim[N], r.t == r.t_red_1))),
            r.last_b.eq(is_wg | (r.bm == r.t_out_1)),
            r.last_a.eq(Mux(is_wg, r.wlin.as_signed() >= r.wlin_last,
                            Mux(s.layer, r.a == r.b_1, r.aN.as_signed() > r.bat_lim[N]))),
        ]
        core_valid = []
        for k in range(N):
            cv = Signal(name=f"core_valid_{k}")
            m.d.comb += cv.eq(Mux(is_wg, r.wi[k] < r.ti,
                                  Mux(s.layer, r.tN.as_signed() <= r.red_lim[k],
                                      r.aN.as_signed() <= r.bat_lim[k])))
            core_valid.append(cv)
        L = S.bit_length() - 1
        half = s.half if c.half_mode else Const(0, 1)
        # half mode: the pair (of reduction tiles, forward) a core takes, and whether its
        # second half exists (tile 2 * pair + 1 of the layer; vector 2 t + 1 of the batch)
        pair = [Mux(s.layer, r.tN + k, r.t) for k in range(N)]
        second = []
        for k in range(N):
            sec = Signal(name=f"second_{k}")
            m.d.comb += sec.eq(half & Mux(
                is_wg, Cat(Const(1, 1), r.t) <= r.b_1,
                Cat(Const(0, L), Const(1, 1), pair[k]) <= r.n_1))
            second.append(sec)
        for k in range(N):
            lead = Const(int(k == 0), 1)
            uses = {
                "w": ~is_wg,
                "v": Const(1, 1),
                "u": is_wg | (is_bwd & r.last_t & (~s.layer | lead)),
                "b": is_fwd & r.last_t & (~s.layer | lead),
                "w1": is_fwd & second[k],
                "v1": second[k],
                "u1": is_wg & second[k],
            }
            for q in self._ports:
                ck_k = r.coef_of(q)[3] * k if k else Const(0, c.addr_width)
                if q in ("v", "u", "v1", "u1"):
                    ck_k = Mux(is_wg, r.wi[k] if q in ("v", "v1") else r.wj[k], ck_k)
                port = self.reads[q]
                m.d.comb += [port.addr[k].eq(r.cur[q] + ck_k),
                             port.en[k].eq(r.issue & core_valid[k] & uses[q])]

        def lane_mask(slice_index: Value, len_minus_1: Value) -> Value:
            """Lanes ``r`` of slice ``slice_index`` inside a vector of ``len_minus_1 + 1``."""
            # the lane's index, slice_index * S + r, without an adder
            return Cat(*(Cat(Const(lane, S.bit_length() - 1), slice_index) <= len_minus_1
                         for lane in range(S)))

        tag = self.tag
        with m.If(self.en):
            m.d.sync += [
                tag.v.eq(r.issue), tag.first.eq(r.t == 0), tag.last.eq(r.last_t),
                tag.end.eq(r.last_t & r.last_b & r.last_a), tag.cv.eq(Cat(*core_valid)),
                tag.omask.eq(lane_mask(r.bm, Mux(is_fwd, r.m_1, r.n_1))),
            ]
            for k in range(N):
                # a half forward pass's first slice is 2 * pair
                v_slice = Mux(is_wg, r.wi[k], Mux(half, Cat(Const(0, 1), pair[k]), pair[k]))
                v_len = Mux(is_fwd, r.n_1, r.m_1)
                u_mask = lane_mask(r.wj[k], r.n_1)
                v_mask = lane_mask(v_slice, v_len)
                # an idle core's lanes are masked too: it adds zeros to a reduction
                m.d.sync += [
                    self.vmask[k].eq(Mux(core_valid[k], v_mask, 0)),
                    self.umask[k].eq(Mux(core_valid[k], u_mask, 0)),
                ]
                if c.half_mode:
                    on = core_valid[k] & second[k]
                    v1_mask = Mux(is_wg, v_mask, lane_mask(Cat(Const(1, 1), pair[k]), r.n_1))
                    m.d.sync += [self.v1mask[k].eq(Mux(on, v1_mask, 0)),
                                 self.u1mask[k].eq(Mux(on & is_wg, u_mask, 0))]


class _Registers:
    """The sequencer's loop state, limits and address generators."""

    def __init__(self, c: AAPConfig, p, tw: int, cw: int, ports: tuple[str, ...]) -> None:
        N, aw = c.cores, c.addr_width
        self.tw = tw
        self.m_1 = Signal.like(p.m_minus_1)
        self.n_1 = Signal.like(p.n_minus_1)
        self.b_1 = Signal.like(p.batch_minus_1)
        # the weight gradient's passes - 1 (``b_1`` itself without half mode)
        self.tb_1 = Signal.like(p.batch_minus_1) if c.half_mode else self.b_1
        self.ti = Signal(tw)
        self.t_red_1 = Signal(tw)      # reduction tiles - 1 (forward, backward)
        self.t_out_1 = Signal(tw)      # output tiles - 1 (forward, backward)
        # loop counters: a (outer), bm (middle), t (inner), and their multiples of N
        self.a, self.bm, self.t = Signal(cw), Signal(cw), Signal(cw)
        self.aN, self.bN, self.tN = Signal(cw), Signal(cw), Signal(cw)
        # weight gradient: core k's gradient tile (row, column); the cores take consecutive
        # tiles in row-major order
        self.wi = [Signal(tw, name=f"wg_i_{k}") for k in range(N)]
        self.wj = [Signal(tw, name=f"wg_j_{k}") for k in range(N)]
        # the weight gradient's next tiles, without a chain of compares: the thresholds
        # ``w * tj - N`` (j wraps w times) and offsets ``N - w * tj`` are set with the
        # command, and the lead core's linear tile index ``wlin`` ends the operation at
        # ``ti * tj - N``
        sw = tw + field_bits(N) + 2
        self.wrap_at = [Signal(signed(sw), name=f"wg_wrap_at_{w}") for w in range(1, N + 1)]
        self.wrap_off = [Signal(signed(sw), name=f"wg_wrap_off_{w}") for w in range(1, N + 1)]
        self.wlin = Signal(2 * tw + 1)
        self.wlin_last = Signal(signed(2 * tw + 2))
        # the loop ends and the cores' validity compare counters with limits less k, set
        # with the command (``tN + k <= t_red_1`` is ``tN <= red_lim[k]``): no adder in front
        self.red_lim = [Signal(signed(cw + 2), name=f"red_lim_{k}") for k in range(N + 1)]
        self.bat_lim = [Signal(signed(cw + 2), name=f"bat_lim_{k}") for k in range(N + 1)]
        # address generators: (cA, cB, ct, ck) per port (a second operand's port steps as
        # its primary), running addresses
        self.coef = {q: [Signal(aw, name=f"{q}_c{x}") for x in "ABtk"] for q in PORTS}
        self.reg_a = {q: Signal(aw, name=f"{q}_reg_a") for q in ports}
        self.reg_b = {q: Signal(aw, name=f"{q}_reg_b") for q in ports}
        self.cur = {q: Signal(aw, name=f"{q}_cur") for q in ports}
        self.issue = Signal()
        self.last_t, self.last_b, self.last_a = Signal(), Signal(), Signal()

    def coef_of(self, q: str) -> list[Signal]:
        """The address coefficients of port ``q`` (a second operand's are its primary's)."""
        return self.coef[_PRIMARY.get(q, q)]

    def step_tiles(self, i: Value, j: Value) -> tuple[Value, Value]:
        """Tile ``(i, j)`` moved ``N`` tiles on in row-major order."""
        N = len(self.wrap_at)
        ni, nj = i, j + N
        for w in range(1, N + 1):  # the highest number of wraps that applies wins
            wrap = j.as_signed() >= self.wrap_at[w - 1]
            ni, nj = Mux(wrap, i + w, ni), Mux(wrap, j + self.wrap_off[w - 1], nj)
        return ni, nj


def _advance(i: Value, j: Value, step: int, tj_v: Value) -> tuple[Value, Value]:
    """Tile ``(i, j)`` moved ``step`` tiles on in row-major order (``tj_v`` columns)."""
    j = j + step
    for _ in range(step):
        wrap = j >= tj_v
        i, j = Mux(wrap, i + 1, i), Mux(wrap, j - tj_v, j)
    return i, j


def _coefficients(c: AAPConfig, ti_v: Value, tj_v: Value) -> dict:
    """(cA, cB, ct, ck) per port, for each (op, layer), of the command being accepted."""
    aw, N = c.addr_width, c.cores
    z, one, n_c = Const(0, aw), Const(1, aw), Const(N, aw)
    table = {
        (_FWD, 0): {"w": (z, tj_v, one, z), "v": (tj_v * N, z, one, tj_v),
                    "u": (z, z, z, z), "b": (z, one, z, z)},
        (_FWD, 1): {"w": (z, tj_v, n_c, one), "v": (tj_v, z, n_c, one),
                    "u": (z, z, z, z), "b": (z, one, z, z)},
        (_BWD, 0): {"w": (z, one, tj_v, z), "v": (ti_v * N, z, one, ti_v),
                    "u": (tj_v * N, one, z, tj_v), "b": (z, z, z, z)},
        (_BWD, 1): {"w": (z, one, tj_v * N, tj_v), "v": (ti_v, z, n_c, one),
                    "u": (tj_v, one, z, z), "b": (z, z, z, z)},
        (_WG, 0): {"w": (z, z, z, z), "v": (z, z, ti_v, z),
                   "u": (z, z, tj_v, z), "b": (z, z, z, z)},
    }
    table[(_WG, 1)] = table[(_WG, 0)]
    return table
