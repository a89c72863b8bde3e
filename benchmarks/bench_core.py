"""Benchmark: FixarCore through its buses: DMA throughput, bus overhead of a training step.

Drives a :class:`fixar_hw.soc.core.FixarCore` with :class:`fixar_hw.host.driver.FixarDriver` over
the
Amaranth simulator (:class:`fixar_hw.sim.transport.SimTransport`; ``--transport verilator`` uses the
exported Verilog in Verilator when it is available) and prints:

* DMA throughput: bus beats per DMA cycle (counters ``dma_beats`` / ``dma_cycles``) writing the
  parameter image, for 0, 1 and 3 wait states on the external memory and 1 or 4 outstanding
  requests, next to the documented ``min(1, outstanding / (2 + wait))``;
* one training step through the bus (batch in by DMA, program run): the core's busy cycles,
  the engine's cycles (``EngineDescription.cycles``, which the counters equal) and the overhead;
  the same for one noisy action (observation in, run, action out);
* the transport's speed in simulated cycles per second (median of ``--repeat`` steps).

The network is Pendulum's 3-16-16-1 (actor) / 4-16-16-1 (critic) at batch 8 on a 4x4 grid with
2 cores; ``--quick`` uses 3-5-1 at batch 4 on 2x2.

Reproduce with::

    python benchmarks/bench_core.py
    python benchmarks/bench_core.py --quick --repeat 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from fixar_hw.config import CoreConfig
from fixar_hw.host.driver import FixarDriver
from fixar_hw.sim.transport import SimTransport
from sw_model.arch import ddpg_step as ds
from sw_model.arch import engine as en
from sw_model.arch.ddpg_config import DDPGConfig
from sw_model.rl.ddpg import DDPGAgent


def make_config(quick: bool, outstanding: int = 4) -> CoreConfig:
    if quick:
        cfg = DDPGConfig(hidden=(5,), precision="fixed", batch_size=4, buffer_size=16)
        ec = en.EngineConfig(cfg, 3, 1, size=2, cores=2)
    else:
        cfg = DDPGConfig(hidden=(16, 16), precision="fixed", batch_size=8, buffer_size=64)
        ec = en.EngineConfig(cfg, 3, 1, size=4, cores=2, update_units=4)
    return CoreConfig(ec, dma_addr_width=20, max_outstanding=outstanding)


def make_transport(kind: str, config: CoreConfig, wait: int = 0):
    if kind == "verilator":
        from fixar_hw.sim.core_verilator import VerilatorTransport

        return VerilatorTransport(config, wait_states=wait)
    return SimTransport(config, wait=lambda: wait)


def dma_rate(kind: str, quick: bool, wait: int, outstanding: int) -> tuple[float, int]:
    config = make_config(quick, outstanding)
    drv = FixarDriver(make_transport(kind, config, wait), config)
    plan = config.engine.plan
    image = np.zeros((plan.w_words, config.engine.size ** 2), dtype=np.int64)
    drv.write("CTRL", 1)  # clear the DMA counters (an empty run)
    drv.run_queue()
    drv.write_memory("W", 0, image)
    c = drv.counters()
    return c["dma_beats"] / c["dma_cycles"], c["dma_beats"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny build (CI)")
    parser.add_argument("--repeat", type=int, default=3, help="timed steps (median)")
    parser.add_argument("--transport", choices=("sim", "verilator"), default="sim")
    args = parser.parse_args()
    kind = args.transport
    if kind == "verilator":
        from fixar_hw.sim.core_verilator import VerilatorTransport

        if not VerilatorTransport.available():
            print("Verilator is not available", file=sys.stderr)
            return 1

    print("DMA throughput, parameter image in (beats per DMA cycle)")
    print(f"{'wait states':>11} {'outstanding':>11} {'beats':>7} {'measured':>9} "
          f"{'documented':>10}")
    for wait in (0, 1, 3):
        for outstanding in (1, 4):
            rate, beats = dma_rate(kind, args.quick, wait, outstanding)
            doc = min(1.0, outstanding / (2 + wait))
            print(f"{wait:>11} {outstanding:>11} {beats:>7} {rate:>9.3f} {doc:>10.3f}")

    config = make_config(args.quick)
    e = config.engine
    cfg = e.ddpg
    tr = make_transport(kind, config)
    drv = FixarDriver(tr, config)
    agent = DDPGAgent(cfg, e.obs_dim, e.act_dim, [-2.0], [2.0])
    t0 = time.perf_counter()
    drv.load_state(en.load_state(e, agent.weights, agent.targets, agent.opt), seed=cfg.seed)
    load_s = time.perf_counter() - t0
    fmts = ds.activation_formats(cfg)
    program = en.compile_step(e, fmts)
    engine_cycles = drv.description.cycles(program)["cycles"]
    act_cycles = drv.description.cycles(en.compile_act(e, fmts))["cycles"]
    rng = np.random.default_rng(0)

    def batch():
        f = cfg.act_fmt
        b = cfg.batch_size
        return ds.Batch(f.from_float(rng.uniform(-1, 1, (b, e.obs_dim))),
                        f.from_float(rng.uniform(-1, 1, (b, e.act_dim))),
                        f.from_float(rng.uniform(-8, 0, b)),
                        f.from_float(rng.uniform(-1, 1, (b, e.obs_dim))), rng.integers(0, 2, b))

    drv.train_step(fmts, batch=batch())  # loads the program and the tanh table once
    drv.act(np.zeros(e.obs_dim, dtype=np.int64), fmts)
    steps, acts, speeds = [], [], []
    for _ in range(max(1, args.repeat)):
        start_cycles = getattr(tr, "cycles", 0)
        t = time.perf_counter()
        c = drv.train_step(fmts, batch=batch())
        seconds = time.perf_counter() - t
        assert c["cycles"] == engine_cycles, (c["cycles"], engine_cycles)
        steps.append(c["busy_cycles"])
        if isinstance(start_cycles, int) and getattr(tr, "cycles", None) is not None:
            speeds.append((tr.cycles - start_cycles) / seconds)
        drv.act(np.zeros(e.obs_dim, dtype=np.int64), fmts)
        acts.append(drv.counters()["busy_cycles"])
    step = statistics.median(steps)
    act = statistics.median(acts)
    print()
    sizes = f"{'-'.join(map(str, e.sizes('actor')))} / {'-'.join(map(str, e.sizes('critic')))}"
    print(f"one training step through the bus: actor/critic {sizes}, batch {cfg.batch_size}, "
          f"{e.size}x{e.size} x {e.cores} cores, {kind}")
    print(f"  busy cycles (batch DMA + run): {step:,.0f}; engine: {engine_cycles:,}; "
          f"overhead {100 * (step - engine_cycles) / engine_cycles:.1f}%")
    print(f"  one noisy action (observation in, run, action out): {act:,.0f} busy cycles; "
          f"engine: {act_cycles:,}")
    if speeds:
        print(f"  transport speed: {statistics.median(speeds):,.0f} simulated cycles/s "
              f"(median of {len(speeds)}, host polling included); state load {load_s:.1f} s")
    cmd = "python benchmarks/bench_core.py" + (" --quick" if args.quick else "") + \
        (f" --repeat {args.repeat}" if args.repeat != 3 else "") + \
        (f" --transport {kind}" if kind != "sim" else "")
    print(f"reproduce: {cmd}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
