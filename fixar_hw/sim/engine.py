"""Driving a :class:`~fixar_hw.train.engine.TrainingEngine` from an Amaranth simulation testbench.

:class:`EngineHost` does what a host does between programs, inside an async testbench: load
memory images (:class:`sw_model.arch.engine.EngineState`), programs, the tanh table, the step
counter and the noise seed; start a program and wait for it; read the memories back. The
memories are accessed directly through the simulator (the bus and DMA of the integration layer
will do it in hardware); everything else goes through the engine's ports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from fixar_hw.sim.testing import stream_put
from fixar_hw.train.engine import TrainingEngine
from sw_model.arch.engine import EngineState

__all__ = ["EngineHost"]

_MEMORIES = ("W", "G", "M", "V", "A")


def _never() -> bool:
    return False


class EngineHost:
    """Host-side operations on a simulated :class:`TrainingEngine` (async, for testbenches).

    Parameters
    ----------
    engine : TrainingEngine
        The design being simulated.
    """

    def __init__(self, engine: TrainingEngine) -> None:
        if not isinstance(engine, TrainingEngine):
            raise TypeError(f"engine must be a TrainingEngine, not {engine!r}")
        self.engine = engine
        self._table: np.ndarray | None = None

    def write_memories(self, ctx, state: EngineState, names: Sequence[str] = _MEMORIES
                       ) -> None:
        """Copy the images of ``state`` into the memories ``names``."""
        mems = self.engine.buffers.memories
        for name in names:
            image = getattr(state, name)
            data = mems[name].data
            for addr, row in enumerate(image.tolist()):
                ctx.set(data[addr], row)

    def read_memories(self, ctx, state: EngineState) -> EngineState:
        """``state`` with the memories' contents, the step counter and the range registers."""
        mems = self.engine.buffers.memories
        images = {}
        for name in _MEMORIES:
            ref = getattr(state, name)
            data = mems[name].data
            images[name] = np.array([[int(v) for v in ctx.get(data[a])]
                                     for a in range(ref.shape[0])], dtype=np.int64
                                    ).reshape(ref.shape)
        ranges = tuple((int(r.lo), int(r.hi)) if r.valid else None
                       for r in ctx.get(self.engine.ranges))
        return state.replace(**images, t=int(ctx.get(self.engine.t)),
                             vector=replace(state.vector, ranges=ranges))

    def load_program(self, ctx, program: Sequence, base: int = 0) -> int:
        """Write ``program`` (descriptors of :mod:`sw_model.arch.engine`, in the engine's issue
        order with their wait masks: :meth:`~fixar_hw.train.description.EngineDescription.words`)
        and its ``end`` at ``base``; returns the address after it."""
        eng = self.engine
        words = eng.description.words(program)
        if base + len(words) > eng.program.depth:
            raise ValueError(f"the program needs {len(words)} descriptors from {base}, the "
                             f"program memory holds {eng.program.depth}")
        for i, word in enumerate(words):
            ctx.set(eng.program.data[base + i], word)
        return base + len(words)

    async def load_table(self, ctx, image: np.ndarray) -> None:
        """Write the tanh table memory (through :attr:`TrainingEngine.tbl_wr`), unless it
        already holds ``image``."""
        if self._table is not None and np.array_equal(self._table, image):
            return
        port = self.engine.tbl_wr
        ctx.set(port.en, 1)
        for addr, value in enumerate(np.asarray(image).tolist()):
            ctx.set(port.addr, addr)
            ctx.set(port.data, value)
            await ctx.tick()
        ctx.set(port.en, 0)
        self._table = np.array(image)

    async def set_step(self, ctx, t: int, *, stall: Callable[[], bool] = _never) -> None:
        """Set the step counter (``stall``: producer gaps, as in
        :func:`fixar_hw.sim.testing.stream_put`)."""
        await stream_put(ctx, self.engine.t_load, t, stall=stall)

    async def seed(self, ctx, seed: int, *, stall: Callable[[], bool] = _never) -> None:
        """Reseed the exploration noise."""
        await stream_put(ctx, self.engine.seed, seed, stall=stall)

    async def run(self, ctx, base: int = 0, *, stall: Callable[[], bool] = _never
                  ) -> dict[str, int]:
        """Start the program at ``base``, wait for its end; returns the performance counters
        (cleared by the start)."""
        eng = self.engine
        await stream_put(ctx, eng.start, base, stall=stall)
        while ctx.get(eng.busy):
            await ctx.tick()
        perf = ctx.get(eng.perf)
        return {name: int(getattr(perf, name)) for name, _ in eng.perf.shape()}

