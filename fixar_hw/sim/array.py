"""Running AAP operations in simulation: memory images, a harness, and result unpacking.

An :class:`ArrayJob` is one layer operation with its data (integer codes). :func:`memory_images`
lays the data out as the core reads it (:mod:`sw_model.arch.aap` layouts), :class:`ArrayHarness`
wraps an :class:`~fixar_hw.train.array.PEArray` with
memories
holding those images (each core reads its own copy), :func:`simulate` runs it in Amaranth's
simulator with random stalls, and :func:`unpack` turns the output beats back into the result
matrix, checking the stream's order, masks, ``last`` flag and zero padding on the way.
:func:`expected` is the golden result. The Verilator benchmark uses the same images and
unpacking.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from amaranth.hdl import Elaboratable

from fixar_hw.sim.testing import stream_get, stream_monitor, stream_put
from fixar_hw.train.aap_sequencer import read_ports
from fixar_hw.train.array import PEArray
from sw_model.arch.aap import AAPConfig, slice_vectors, tile_weights
from sw_model.numerics.activation import TanhTable
from sw_model.numerics.fixed import FixedFormat

__all__ = ["ArrayHarness", "ArrayJob", "expected", "memory_images", "simulate", "unpack"]


def _never() -> bool:
    return False


@dataclass(frozen=True, eq=False)
class ArrayJob:
    """One layer operation and its operands (codes, as NumPy int arrays).

    ``w`` is ``(m, n)``; forward uses ``b`` ``(m,)`` and ``x`` ``(batch, n)``; backward ``d``
    ``(batch, m)`` and ``y_prev`` ``(batch, n)``; wgrad ``d`` and ``x``. ``w_codes``, when
    given, is what the weight memory holds instead of ``w`` (the SP2 codes of an
    :class:`~fixar_hw.train.array.SP2PEArray`, whose level integers are ``w``). ``x_fmt`` (the
    activation operand: ``x`` or ``y_prev``), ``out_fmt`` (forward output) and ``table`` (tanh)
    are run-time formats of the build (:meth:`sw_model.arch.aap.AAPConfig.act_format`), default
    ``a_fmt`` and the initial table. ``half`` runs it in half mode
    (:meth:`sw_model.arch.aap.AAPConfig.half_for`).
    """

    op: str
    m: int
    n: int
    batch: int
    kind: str = "identity"
    parallelism: str = "batch"
    w: np.ndarray | None = None
    b: np.ndarray | None = None
    x: np.ndarray | None = None
    d: np.ndarray | None = None
    y_prev: np.ndarray | None = None
    w_codes: np.ndarray | None = None
    x_fmt: FixedFormat | None = None
    out_fmt: FixedFormat | None = None
    table: TanhTable | None = None
    half: bool = False

    def command_fields(self) -> dict[str, Any]:
        """Keyword arguments of :meth:`fixar_hw.train.array.PEArray.command` for this job."""
        return dict(m=self.m, n=self.n, batch=self.batch, kind=self.kind,
                    parallelism=self.parallelism, x_fmt=self.x_fmt, out_fmt=self.out_fmt,
                    table=self.table, half=self.half)

    def cycles(self, config: AAPConfig) -> int:
        """Cycles of the job on ``config``'s array, never stalled
        (:meth:`sw_model.arch.aap.CycleModel.cycles`)."""
        return config.cycle_model.cycles(self.op, self.m, self.n, self.batch,
                                         self.parallelism, self.half)

    def table_image(self, config: AAPConfig) -> np.ndarray | None:
        """The tanh table memory contents the job needs, or None for the initial ones."""
        if self.op != "forward" or self.kind != "tanh" or (
                self.table is None and self.out_fmt is None):
            return None
        return config.table_image(self.table or config.table_for(self.out_fmt))


def expected(config: AAPConfig, job: ArrayJob) -> np.ndarray:
    """The golden result of ``job`` (:mod:`sw_model.arch.aap`)."""
    if job.op == "forward":
        return config.forward(job.w, job.b, job.x, job.kind, x_fmt=job.x_fmt,
                              out_fmt=job.out_fmt, table=job.table)
    if job.op == "backward":
        return config.backward(job.w, job.d, job.y_prev, job.kind, y_fmt=job.x_fmt)
    return config.weight_gradient(job.d, job.x, x_fmt=job.x_fmt)


def memory_images(config: AAPConfig, job: ArrayJob) -> dict[str, list[list[int]]]:
    """Words of the ``w``, ``v``, ``u`` and ``b`` memories (bases 0) for ``job``; a half-mode
    build's second ports (``w1``, ``v1``, ``u1``) read their namesakes' images."""
    S = config.size
    zero_slice = [[0] * S]
    images = {"w": [[0] * (S * S)], "v": zero_slice, "u": zero_slice, "b": zero_slice}
    if job.op != "wgrad":
        images["w"] = tile_weights(job.w if job.w_codes is None else job.w_codes, S).tolist()
    if job.op == "forward":
        images["v"] = slice_vectors(job.x, S).tolist()
        images["b"] = slice_vectors(np.asarray(job.b)[None, :], S).tolist()
    elif job.op == "backward":
        images["v"] = slice_vectors(job.d, S).tolist()
        images["u"] = slice_vectors(job.y_prev, S).tolist()
    else:
        images["v"] = slice_vectors(job.d, S).tolist()
        images["u"] = slice_vectors(job.x, S).tolist()
    for q in ("w", "v", "u"):
        images[f"{q}1"] = images[q]
    return images


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def unpack(config: AAPConfig, job: ArrayJob, beats: Sequence[tuple[list, int, int]]
           ) -> np.ndarray:
    """The result matrix from output beats ``(data, mask, last)`` in arrival order.

    Raises
    ------
    AssertionError
        If the beats break the output contract: wrong count, order-implied mask, a ``last``
        flag anywhere but the final beat, or a nonzero lane beyond the layer.
    """
    S, N = config.size, config.cores
    ti, tj = _ceil(job.m, S), _ceil(job.n, S)
    slots: list[tuple[int, list[tuple[int, Any]]]] = []
    if job.op == "wgrad":
        out = np.zeros((ti * S, tj * S), dtype=object)
        for grp in range(_ceil(ti * tj, N)):
            slots.append((grp, [(k, divmod(grp * N + k, tj)) for k in range(N)
                                if grp * N + k < ti * tj]))
    else:
        rows = job.m if job.op == "forward" else job.n
        t_out = _ceil(rows, S)
        out = np.zeros((job.batch, t_out * S), dtype=object)
        if job.parallelism == "batch":
            for grp in range(_ceil(job.batch, N)):
                for o in range(t_out):
                    slots.append((o, [(k, (grp * N + k, o)) for k in range(N)
                                      if grp * N + k < job.batch]))
        else:
            for b in range(job.batch):
                for o in range(t_out):
                    slots.append((o, [(0, (b, o))]))
    if len(beats) != len(slots):
        raise AssertionError(f"{len(beats)} output beats, expected {len(slots)}")
    for n_beat, ((data, mask, last), (_, cores)) in enumerate(zip(beats, slots, strict=True)):
        want_mask = sum(1 << k for k, _ in cores)
        if mask != want_mask:
            raise AssertionError(f"beat {n_beat}: mask {mask:#x}, expected {want_mask:#x}")
        if bool(last) != (n_beat == len(slots) - 1):
            raise AssertionError(f"beat {n_beat}: last = {last}")
        for k in range(N):
            lanes = list(data[k])
            if not mask >> k & 1:
                if any(lanes):
                    raise AssertionError(f"beat {n_beat}: idle core {k} has nonzero lanes")
                continue
            where = dict(cores)[k]
            if job.op == "wgrad":
                i, j = where
                out[i * S:(i + 1) * S, j * S:(j + 1) * S] = np.array(lanes).reshape(S, S)
            else:
                b, o = where
                out[b, o * S:(o + 1) * S] = lanes
    if job.op == "wgrad":
        result, pad = out[:job.m, :job.n], (out[job.m:, :], out[:, job.n:])
    else:
        cols = job.m if job.op == "forward" else job.n
        result, pad = out[:, :cols], (out[:, cols:],)
    if any(np.any(p != 0) for p in pad):
        raise AssertionError("nonzero lanes beyond the layer")
    return result.astype(np.int64)


class ArrayHarness(Elaboratable):
    """``dut`` with read-only memories holding ``images`` (one copy per core and port)."""

    def __init__(self, dut: PEArray, images: dict[str, list[list[int]]]) -> None:
        self.dut = dut
        self.images = images

    def elaborate(self, platform):
        from amaranth.hdl import Module
        from amaranth.lib import memory

        m = Module()
        m.submodules.dut = dut = self.dut
        for q in read_ports(dut.config):
            ports = getattr(dut, f"{q}_rd")
            for k, port in enumerate(ports):
                shape = port.data.shape()
                words = self.images[q]
                mem = memory.Memory(shape=shape, depth=max(len(words), 2), init=words)
                m.submodules[f"{q}_mem_{k}"] = mem
                rp = mem.read_port(domain="sync")
                m.d.comb += [rp.addr.eq(port.addr), rp.en.eq(port.en), port.data.eq(rp.data)]
        return m


def _payload_tuple(payload) -> tuple[list, int, int]:
    data = [[int(v) for v in core] for core in payload.data]
    return data, int(payload.mask), int(payload.last)


def simulate(dut: PEArray, job: ArrayJob, *,
             cmd_stall: Callable[[], bool] = _never,
             o_stall: Callable[[], bool] = _never,
             g_stall: Callable[[], bool] = _never,
             vcd: str | None = None) -> tuple[np.ndarray, int]:
    """Run ``job`` on ``dut`` in Amaranth's simulator.

    Returns
    -------
    tuple of (numpy.ndarray, int)
        The unpacked result, and the cycles from the command transfer to the last result
        transfer.
    """
    from amaranth.sim import Simulator

    harness = ArrayHarness(dut, memory_images(dut.config, job))
    cmd = dut.command(job.op, **job.command_fields())
    table = job.table_image(dut.config)
    stream = dut.g if job.op == "wgrad" else dut.o
    stall = g_stall if job.op == "wgrad" else o_stall
    beats: list[tuple[list, int, int]] = []
    times = {}

    async def producer(ctx) -> None:
        if table is not None:  # load the tanh table while idle
            ctx.set(dut.tbl_wr.en, 1)
            for addr, value in enumerate(table.tolist()):
                ctx.set(dut.tbl_wr.addr, addr)
                ctx.set(dut.tbl_wr.data, value)
                await ctx.tick()
            ctx.set(dut.tbl_wr.en, 0)
        await stream_put(ctx, dut.cmd, cmd, stall=cmd_stall)

    async def consumer(ctx) -> None:
        while True:
            beat = _payload_tuple(await stream_get(ctx, stream, stall=stall))
            beats.append(beat)
            if beat[2]:
                return

    async def timer(ctx) -> None:
        edge = 0
        async for _, _, cv, cr, ov, orr, last in ctx.tick().sample(
                dut.cmd.valid, dut.cmd.ready, stream.valid, stream.ready, stream.payload.last):
            if cv and cr:
                times["cmd"] = edge
            if ov and orr and last:
                times["last"] = edge
            edge += 1

    async def other_quiet(ctx) -> None:
        other = dut.o if job.op == "wgrad" else dut.g
        async for _, _, valid in ctx.tick().sample(other.valid):
            if valid:
                raise AssertionError("the other output stream became valid")

    sim = Simulator(harness)
    sim.add_clock(1e-8)
    sim.add_process(timer)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.add_process(stream_monitor(stream, name="o"))
    sim.add_process(other_quiet)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return unpack(dut.config, job, beats), times["last"] - times["cmd"]
