"""On-chip memories of the training engine: parameters, gradients, Adam's moments, activations.

:class:`Buffers` holds the five memories of :class:`sw_model.arch.engine.MemoryPlan` on
``amaranth.lib.memory`` and exposes their ports; the layout (which tensor or vector region
lives where) is the plan's, computed from the :class:`~sw_model.arch.engine.EngineConfig`, and a
network that does not fit the configured capacities is rejected there with a ``ValueError``.

========  ==========================  ====================================  =====================
memory    word                        read ports                            write ports
========  ==========================  ====================================  =====================
``W``     ``size**2`` weight lanes    ``2 * cores`` (tiles, biases), and    1 (update unit)
                                      the update unit's two
                                      (``update_ports="own"``), and
                                      ``cores`` second tiles (half mode)
``G``     ``size**2`` gradients       1 (update unit)                       ``cores`` (array)
``M``     ``size**2`` ``grad_fmt``    1                                     1
``V``     ``size**2`` 63-bit          1                                     1
``A``     ``size`` activations        ``2 * cores`` (two operands), and     ``cores``, per lane
                                      ``2 * cores`` second ones (half mode)
========  ==========================  ====================================  =====================

Every read port has one cycle of latency and an enable (data holds while disabled). The PE array
and the vector unit share the activation memory's ports: the vector unit uses read ports 0 and
``cores`` and write port 0, and the scheduler never runs the two at once. The update unit has
ports of its own (``W`` read ports ``2 * cores`` and ``2 * cores + 1``, the others), so it runs
while the array or the vector unit works; with ``update_ports="shared"`` it reads ``W`` through
the array's ports 0 and ``cores`` instead, and the scheduler never runs it beside the array.

Write ports of ``A`` have one enable per lane (the vector unit writes single elements); the
array enables all lanes of a word.
"""

from amaranth.hdl import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import Out

from fixar_hw._util import silence_on_error
from fixar_hw.train.description import memory_depths, memory_layouts, memory_ports
from sw_model.arch.engine import EngineConfig

__all__ = ["Buffers"]


class Buffers(wiring.Component):
    """The engine's memories (see the module docs).

    Parameters
    ----------
    config : EngineConfig
        The build; the depths come from its :class:`~sw_model.arch.engine.MemoryPlan`.

    Members
    -------
    w_rd : Out(memory.ReadPort.Signature(...)).array(2 * cores + 2)
        (``2 * cores`` with ``update_ports="shared"``; ``cores`` more in a half-mode build)
    w_wr : Out(memory.WritePort.Signature(...))
    g_rd, m_rd, v_rd : Out(memory.ReadPort.Signature(...))
    g_wr : Out(memory.WritePort.Signature(...)).array(cores)
    m_wr, v_wr : Out(memory.WritePort.Signature(...))
    a_rd : Out(memory.ReadPort.Signature(...)).array(2 * cores)
        (``4 * cores`` in a half-mode build)
    a_wr : Out(memory.WritePort.Signature(..., granularity=lane)).array(cores)

    Attributes
    ----------
    layouts : dict of str to amaranth.lib.data.ArrayLayout
        Word layouts (:func:`fixar_hw.train.description.memory_layouts`).
    depths : dict of str to int
        Words the plan uses (:func:`fixar_hw.train.description.memory_depths`).
    memories : dict of str to amaranth.lib.memory.Memory
        ``"W"``, ``"G"``, ``"M"``, ``"V"``, ``"A"``; their ``data`` is what a simulation
        testbench reads and writes directly (``ctx.get(mem.data[addr])``).
    """

    @silence_on_error
    def __init__(self, config: EngineConfig) -> None:
        if not isinstance(config, EngineConfig):
            raise TypeError(f"config must be an EngineConfig, not {config!r}")
        self._config = config
        aw = config.addr_width
        ports = memory_ports(config)
        self.layouts = memory_layouts(config)
        self.depths = memory_depths(config)
        rd, wr = memory.ReadPort.Signature, memory.WritePort.Signature

        def r(name):
            return rd(addr_width=aw, shape=self.layouts[name])

        def w(name, **kw):
            return wr(addr_width=aw, shape=self.layouts[name], **kw)

        super().__init__({
            "w_rd": Out(r("W")).array(ports["W"][0]),
            "w_wr": Out(w("W")),
            "g_rd": Out(r("G")),
            "g_wr": Out(w("G")).array(ports["G"][1]),
            "m_rd": Out(r("M")),
            "m_wr": Out(w("M")),
            "v_rd": Out(r("V")),
            "v_wr": Out(w("V")),
            "a_rd": Out(r("A")).array(ports["A"][0]),
            "a_wr": Out(w("A", granularity=1)).array(ports["A"][1]),
        })
        self.memories = {name: memory.Memory(shape=self.layouts[name],
                                             depth=max(self.depths[name], 2), init=[])
                         for name in self.layouts}

    @property
    def config(self) -> EngineConfig:
        """The build."""
        return self._config

    def elaborate(self, platform) -> Module:
        m = Module()
        for name, mem in self.memories.items():
            m.submodules[name] = mem
        reads = {"W": list(self.w_rd), "G": [self.g_rd], "M": [self.m_rd], "V": [self.v_rd],
                 "A": list(self.a_rd)}
        writes = {"W": [self.w_wr], "G": list(self.g_wr), "M": [self.m_wr], "V": [self.v_wr],
                  "A": list(self.a_wr)}
        for name, mem in self.memories.items():
            for port in writes[name]:
                gran = {"granularity": 1} if name == "A" else {}
                mp = mem.write_port(**gran)
                m.d.comb += [mp.addr.eq(port.addr), mp.data.eq(port.data), mp.en.eq(port.en)]
            for port in reads[name]:
                mp = mem.read_port(domain="sync")
                m.d.comb += [mp.addr.eq(port.addr), mp.en.eq(port.en), port.data.eq(mp.data)]
        return m
