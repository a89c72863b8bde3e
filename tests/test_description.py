# amaranth: UnusedElaboratable=no
"""The engine's plain-Python description: the host's side of the engine builds no hardware.

:class:`fixar_hw.train.description.EngineDescription` encodes programs and predicts their
counters with the command sets the units themselves use (the simulated engine runs the
description's words and leaves its counters: ``tests/test_engine_hw.py``). Building a
description, a register map, or a driver and its program path creates no
:class:`amaranth.hdl.Elaboratable` at all.
"""

from collections.abc import Sequence

import pytest
from amaranth.hdl import Elaboratable

from fixar_hw._util import never_elaborated
from fixar_hw.config import CoreConfig
from fixar_hw.host.driver import FixarDriver, Transport
from fixar_hw.soc.csr import register_map
from fixar_hw.train.aap import AAPCommandSet
from fixar_hw.train.array import SP2CommandSet, SP2PEArray
from fixar_hw.train.buffers import Buffers
from fixar_hw.train.description import EngineDescription, memory_depths, memory_layouts
from fixar_hw.train.engine import TrainingEngine
from fixar_hw.train.scheduler import check_program_depth, pc_width
from fixar_hw.train.update import UpdateCommandSet, UpdateUnit, update_latency
from fixar_hw.train.vector import VectorCommandSet
from sw_model.arch import ddpg_step as ds
from sw_model.arch import engine as en
from sw_model.arch.aap import AAPConfig
from sw_model.arch.ddpg_config import DDPGConfig
from sw_model.numerics.fixed import FixedFormat
from sw_model.numerics.sp2 import SP2Format


def _config(cores: int = 2, update_units: int = 2, **kw) -> en.EngineConfig:
    cfg = DDPGConfig(hidden=(5,), precision="fixed", batch_size=4, buffer_size=32,
                     qat_delay=1, warmup_steps=0)
    return en.EngineConfig(cfg, 3, 1, size=2, cores=cores, update_units=update_units, **kw)


def _programs(ec: en.EngineConfig) -> list[list]:
    fmts = ds.activation_formats(ec.ddpg)
    return [en.compile_step(ec, fmts), en.compile_step(ec, fmts, tracking=True),
            en.compile_step(ec, fmts, optimizer="sgd"), en.compile_act(ec, fmts)]


@pytest.fixture
def elaboratables(monkeypatch) -> list[type]:
    """Every Elaboratable class instantiated while the test runs (components, memories,
    fragments: all of them go through ``MustUse.__new__``)."""
    created: list[type] = []
    original = Elaboratable.__new__

    def spy(cls, *args, **kwargs):
        created.append(cls)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(Elaboratable, "__new__", staticmethod(spy))
    return created


def test_the_spy_sees_components(elaboratables):
    """The check below would catch the old way (a component built for its Python methods)."""
    never_elaborated(Buffers(_config()))
    assert Buffers in elaboratables


def test_description_builds_no_hardware(elaboratables):
    ec = _config()
    desc = EngineDescription(ec, program_depth=512)
    for program in _programs(ec):
        assert len(desc.encode(program)) == len(program) + 1
        assert desc.cycles(program)["cycles"] > 0
    assert desc.descriptor_layout.size > 0
    assert set(desc.layouts) == set(desc.depths) == {"W", "G", "M", "V", "A"}
    assert elaboratables == []


class _Registers(Transport):
    """A core that answers the identification registers and records everything else."""

    def __init__(self, config: CoreConfig) -> None:
        rm = register_map(config)
        self.regs = {r.offset: r.reset for r in rm.registers}
        self.memory: dict[int, int] = {}

    def csr_read(self, offset: int) -> int:
        return self.regs.get(offset, 0)

    def csr_write(self, offset: int, value: int) -> None:
        self.regs[offset] = value

    def mem_write(self, addr: int, words: Sequence[int]) -> None:
        for i, w in enumerate(words):
            self.memory[addr + i] = int(w)

    def mem_read(self, addr: int, count: int) -> list[int]:
        return [self.memory.get(addr + i, 0) for i in range(count)]


def test_register_map_and_driver_build_no_hardware(elaboratables):
    config = CoreConfig(_config(), dma_addr_width=16)
    rm = register_map(config)
    desc = EngineDescription(config.engine, program_depth=config.program_depth)
    geo = {g["name"]: g for g in rm.memories}
    assert geo["P"]["bits"] == desc.descriptor_layout.size
    for name in "WGMVA":
        assert geo[name]["bits"] == desc.layouts[name].size
        assert geo[name]["depth"] == desc.depths[name]
    drv = FixarDriver(_Registers(config), config)
    program = _programs(config.engine)[0]
    assert drv.description.cycles(program) == desc.cycles(program)
    assert drv._program("step", program) == 0  # encoded and staged for the DMA
    staged = drv.transport.memory
    assert len(staged) >= len(program) + 1
    assert elaboratables == []


def test_the_engine_uses_its_description():
    """One source: the engine's units encode with the description's command sets, and the
    engine's program memory, scheduler and memories take its layouts."""
    for cores, kind in ((1, "pipelined"), (2, "iterative")):
        ec = _config(cores=cores, update_kind=kind, update_bits=4)
        engine = never_elaborated(TrainingEngine(ec, program_depth=64))
        desc = engine.description
        assert desc.program_depth == 64
        assert engine.array.commands == desc.array_commands == AAPCommandSet(ec.aap)
        assert engine.vector.commands == desc.vector_commands == VectorCommandSet(ec.vector)
        assert engine.sequencer.commands == desc.update_commands
        assert desc.update_commands.latency == engine.updates[0].latency
        assert engine.scheduler.layout is desc.descriptor_layout
        assert engine.program.shape is desc.descriptor_layout
        assert dict(desc.layouts) == engine.buffers.layouts == memory_layouts(ec)
        assert dict(desc.depths) == engine.buffers.depths == memory_depths(ec)
        assert len(engine.start.payload) == desc.pc_width == pc_width(64)
        EngineDescription(ec, program_depth=64).encode(_programs(ec)[0])


def test_descriptors_are_the_units_commands():
    ec = _config()
    desc = EngineDescription(ec, program_depth=512)
    engine = never_elaborated(TrainingEngine(ec, program_depth=512))
    for program in _programs(ec):
        for op in program:
            word = desc.descriptor(op)
            if isinstance(op, en.ArrayOp):
                assert word["array"]["cmd"] == engine.array.command(
                    op.op, m=op.m, n=op.n, batch=op.batch, kind=op.kind,
                    parallelism=op.parallelism, w_base=op.w_base, v_base=op.v_base,
                    u_base=op.u_base, b_base=op.b_base, x_fmt=op.x_fmt, out_fmt=op.out_fmt)
            elif isinstance(op, en.VectorOp):
                assert word["vector"] == engine.vector.command(op.cmd)
        want = desc.cycles(program)
        assert want["ops"] == len(program)
        # one operation after another, each in progress for its busy cycles and 2 more, the
        # first fetched in 2 cycles, the end decoded the cycle after the last one: a bound,
        # reached when no two operations run at once (one noisy action)
        units = ("array", "vector", "update")
        ticks = sum(isinstance(op, en.TickOp) for op in program)
        serial = sum(want[u] for u in units) + 2 * ticks + 3
        assert max(want[u] for u in units) < want["cycles"] <= serial
        if not any(isinstance(op, en.UpdateOp) for op in program):
            assert want["cycles"] == serial


def test_update_commands():
    fmt = FixedFormat(16, 10)
    cs = UpdateCommandSet(fmt, lanes=4, units=2, addr_width=6)
    unit = UpdateUnit(fmt, fmt)
    assert cs.latency == update_latency(fmt) == unit.latency == 39 + 16
    assert cs.cycles(3) == 3 * (4 // 2) + cs.latency + 2  # the next word read with the last group
    assert cs.command("soft", net="critic", lo=1, count=2) == {"op": 2, "net": 1, "lo": 1,
                                                               "count": 2}
    assert {name for name, _ in cs.layout} == {"op", "net", "lo", "count"}
    with pytest.raises(ValueError, match=r"^update op must be one of \['adam', 'sgd', 'soft'\], "
                                         r"not 'rmsprop'$"):
        cs.command("rmsprop", net="actor", lo=0, count=1)
    with pytest.raises(ValueError, match=r"^units must be a power of two dividing 4, not 3$"):
        UpdateCommandSet(fmt, lanes=4, units=3, addr_width=6)
    with pytest.raises(TypeError, match=r"^w_fmt must be a FixedFormat, not 16$"):
        update_latency(16)
    # iterative units: a group of elements every element latency, the next word read meanwhile
    it = UpdateCommandSet(fmt, lanes=4, units=2, addr_width=6, kind="iterative", bits=2)
    assert it.latency == it.element_latency("adam") == 9 + 16 + 8
    assert it.element_latency("soft") == it.element_latency("sgd") == 5
    assert it.cycles(3, "adam") == 3 * 2 * 33 + 3 and it.cycles(3, "soft") == 3 * 2 * 5 + 3
    with pytest.raises(ValueError, match=r"^kind must be one of \('pipelined', 'iterative'\), "
                                         r"not 'serial'$"):
        UpdateCommandSet(fmt, lanes=4, units=2, addr_width=6, kind="serial")
    with pytest.raises(ValueError, match=r"^bits must be one of \(1, 2, 4\), not 3$"):
        update_latency(fmt, kind="iterative", bits=3)
    with pytest.raises(TypeError, match=r"^bits must be an integer, not 2\.0$"):
        update_latency(fmt, kind="iterative", bits=2.0)
    with pytest.raises(ValueError, match=r"^op must be one of \['adam', 'sgd', 'soft'\], "
                                         r"not 'nag'$"):
        update_latency(fmt, op="nag")


def test_sp2_command_set():
    sp2 = SP2Format(4, 2)
    config = AAPConfig(size=2, w_fmt=sp2.level_fmt, max_m=2, max_n=2, max_batch=2)
    array = SP2PEArray(config, sp2)
    assert array.commands == SP2CommandSet(config)
    assert array.command_layout == AAPCommandSet(config).layout
    with pytest.raises(ValueError, match=r"^SP2PEArray runs 'forward' and 'backward', "):
        SP2CommandSet(config).command("wgrad", m=1, n=1, batch=1)
    assert SP2CommandSet(config).command("forward", m=1, n=1, batch=1) \
        == AAPCommandSet(config).command("forward", m=1, n=1, batch=1)


def test_errors():
    with pytest.raises(TypeError, match=r"^config must be an EngineConfig, not 3$"):
        EngineDescription(3)
    with pytest.raises(TypeError, match=r"^config must be an EngineConfig, not 3$"):
        memory_layouts(3)
    with pytest.raises(ValueError, match=r"^program_depth must be an integer of at least 2, "
                                         r"not True$"):
        EngineDescription(_config(), program_depth=True)
    with pytest.raises(ValueError, match=r"^program_depth must be an integer of at least 2"):
        check_program_depth(1)
    with pytest.raises(TypeError, match=r"^config must be an AAPConfig, not None$"):
        AAPCommandSet(None)
    with pytest.raises(TypeError, match=r"^spec must be a VectorSpec, not None$"):
        VectorCommandSet(None)
    desc = EngineDescription(_config())
    with pytest.raises(TypeError, match=r"^c must be a VectorCommand, not 'fill'$"):
        desc.vector_commands.cycles("fill")
    assert repr(desc).startswith("EngineDescription(EngineConfig(")
