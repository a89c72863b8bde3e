# amaranth: UnusedElaboratable=no
"""The driver over other transports: a core with an AXI4-Lite control port, and a board reached
through the UART bridge's byte protocol (:class:`fixar_hw.host.driver.SerialTransport`)."""

import numpy as np
import pytest

from fixar_hw.host.driver import FixarDriver, SerialTransport
from fixar_hw.host.serial_link import BusError
from fixar_hw.sim.transport import SimTransport
from sw_model.arch import ddpg_step as ds
from sw_model.arch import engine as en
from sw_model.rl.ddpg import DDPGAgent

from .test_core import small
from .test_serial_link import FakeBridgePort

CSR_BASE = 0x1000
MEM_BASE = 0x4000


class _BoardBus:
    """The word space a board top's UART bridge sees: the control registers at ``CSR_BASE``
    and the DMA's memory at ``MEM_BASE``, both on a simulated core."""

    def __init__(self, sim: SimTransport) -> None:
        self.sim = sim

    def get(self, addr: int, default: int = 0) -> int:
        if addr >= MEM_BASE:
            return self.sim.mem_read(addr - MEM_BASE, 1)[0]
        return self.sim.csr_read(addr - CSR_BASE)

    def __setitem__(self, addr: int, value: int) -> None:
        if addr >= MEM_BASE:
            self.sim.mem_write(addr - MEM_BASE, [value])
        else:
            self.sim.csr_write(addr - CSR_BASE, value)


def _action_matches(drv: FixarDriver, config) -> None:
    e = config.engine
    agent = DDPGAgent(e.ddpg, e.obs_dim, e.act_dim, [-2.0], [2.0])
    drv.load_state(en.load_state(e, agent.weights, agent.targets, agent.opt),
                   seed=e.ddpg.seed)
    obs = np.array([0.25, -0.5, 0.75])
    got = drv.act(e.ddpg.act_fmt.from_float(obs), ds.activation_formats(e.ddpg))
    assert np.array_equal(e.ddpg.act_fmt.to_float(got), agent.explore(obs))


def test_axi_lite_control_port():
    config = small(csr_bus="axi-lite")
    tr = SimTransport(config)
    drv = FixarDriver(tr, config)
    _action_matches(drv, config)
    hole = max(r.offset for r in drv.regmap.registers) + 1
    with pytest.raises(OSError, match="bus error"):
        tr.csr_read(hole)


def test_serial_transport():
    config = small()
    sim = SimTransport(config)
    port = FakeBridgePort(_BoardBus(sim), bad={MEM_BASE + 7})
    drv = FixarDriver(SerialTransport(port, csr_base=CSR_BASE, mem_base=MEM_BASE), config,
                      ext_base=64)
    _action_matches(drv, config)
    assert all(addr >= CSR_BASE for _, addr, _ in port.commands)
    # a bus error on the link itself reaches the caller
    with pytest.raises(BusError):
        drv.transport.mem_write(7, [1, 2])
    with pytest.raises(ValueError, match="csr_base"):
        SerialTransport(port, csr_base=-1, mem_base=0)
