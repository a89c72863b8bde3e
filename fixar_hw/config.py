"""The configuration of a whole accelerator (:class:`CoreConfig`), with its JSON round trip.

One frozen, validated object describes a :class:`fixar_hw.soc.core.FixarCore` build: the training
engine (:class:`sw_model.arch.engine.EngineConfig`: the agent, formats, array shape, cores, memory
capacities) and the integration parameters (bus widths, descriptor queue, program memory). The
hardware, the register map (:mod:`fixar_hw.soc.csr`), the driver and the generated documentation all
read it; ``fixar-hw export --config cfg.json`` reads it from JSON (:meth:`CoreConfig.from_json`).
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fixar_hw._util import check_int
from sw_model.arch.ddpg_config import DDPGConfig
from sw_model.arch.engine import EngineConfig
from sw_model.jsonio import dumps_config, loads_config

__all__ = ["CSR_BUSES", "CoreConfig"]

#: Control-port buses :class:`CoreConfig` accepts.
CSR_BUSES = ("wishbone", "axi-lite")

_ENGINE_FIELDS = ("obs_dim", "act_dim", "size", "cores", "tanh_index_bits", "w_words", "a_words",
                  "max_batch", "update_units", "update_kind", "update_bits", "update_ports",
                  "half")


@dataclass(frozen=True)
class CoreConfig:
    """One build of :class:`fixar_hw.soc.core.FixarCore`.

    Parameters
    ----------
    engine : EngineConfig
        The training engine (agent, formats, PE array, memories).
    csr_bus : {"wishbone", "axi-lite"}
        The control port's bus (32-bit data either way).
    dma_addr_width : int
        Word-address bits of the DMA's Wishbone master (32-bit words): it reaches
        ``4 * 2**dma_addr_width`` bytes of external memory.
    queue_depth : int
        Descriptors the command queue holds (2 to 255).
    program_depth : int
        Descriptors the engine's program memory holds (a power of two, 2 to 65536).
    max_outstanding : int
        Bus requests the DMA keeps in flight (1 to 16).
    """

    engine: EngineConfig
    csr_bus: str = "wishbone"
    dma_addr_width: int = 30
    queue_depth: int = 16
    program_depth: int = 256
    max_outstanding: int = 4

    def __post_init__(self) -> None:
        if not isinstance(self.engine, EngineConfig):
            raise TypeError(f"CoreConfig engine must be an EngineConfig, not {self.engine!r}")
        if self.csr_bus not in CSR_BUSES:
            raise ValueError(f"CoreConfig csr_bus must be one of {CSR_BUSES}, not "
                             f"{self.csr_bus!r}")
        for name, lo, hi in (("dma_addr_width", 8, 62), ("queue_depth", 2, 255),
                             ("program_depth", 2, 65536), ("max_outstanding", 1, 16)):
            object.__setattr__(self, name, check_int(getattr(self, name), name, minimum=lo,
                                                     maximum=hi, owner="CoreConfig"))
        if self.program_depth & (self.program_depth - 1):
            raise ValueError(f"CoreConfig program_depth must be a power of two, not "
                             f"{self.program_depth!r}")

    @property
    def data_width(self) -> int:
        """Data bits of both buses."""
        return 32

    def replace(self, **changes: Any) -> CoreConfig:
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    # --- serialisation ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict: ``{"engine": {..., "ddpg": {...}}, "csr_bus": ..., ...}``."""
        e = self.engine
        engine = {"ddpg": e.ddpg.to_dict(), **{k: getattr(e, k) for k in _ENGINE_FIELDS}}
        return {"engine": engine, "csr_bus": self.csr_bus,
                "dma_addr_width": self.dma_addr_width, "queue_depth": self.queue_depth,
                "program_depth": self.program_depth, "max_outstanding": self.max_outstanding}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CoreConfig:
        """Inverse of :meth:`to_dict`; missing integration keys take their defaults.

        Raises
        ------
        TypeError
            If ``data`` or its ``engine`` entry is not a dict.
        ValueError
            For unknown keys, a missing ``engine`` or ``engine.ddpg``, or bad values.
        """
        if not isinstance(data, dict):
            raise TypeError(f"CoreConfig data must be a dict, not {data!r}")
        top = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - top)
        if unknown:
            raise ValueError(f"CoreConfig has no field {unknown[0]!r}")
        if "engine" not in data:
            raise ValueError("CoreConfig data needs an 'engine' entry")
        eng = data["engine"]
        if not isinstance(eng, dict):
            raise TypeError(f"CoreConfig engine must be a dict, not {eng!r}")
        unknown = sorted(set(eng) - {"ddpg", *_ENGINE_FIELDS})
        if unknown:
            raise ValueError(f"CoreConfig engine has no field {unknown[0]!r}")
        if "ddpg" not in eng:
            raise ValueError("CoreConfig engine needs a 'ddpg' entry")
        engine = EngineConfig(DDPGConfig.from_dict(eng["ddpg"]),
                              **{k: v for k, v in eng.items() if k != "ddpg"})
        return cls(engine, **{k: v for k, v in data.items() if k != "engine"})

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, indented)."""
        return dumps_config(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> CoreConfig:
        """Inverse of :meth:`to_json`.

        Raises
        ------
        ConfigError
            If ``text`` is not JSON or describes an invalid configuration (a ``ValueError``;
            see :func:`sw_model.jsonio.loads_config`).
        """
        return loads_config(cls, text, "CoreConfig")

    @classmethod
    def load(cls, path: str | Path) -> CoreConfig:
        """Read a JSON file (:meth:`from_json`)."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def summary(self) -> str:
        """A few lines on the build: the PE array and its precision modes (whether a
        half-mode build can use half mode, and why not), the update units, the memories."""
        e = self.engine
        d, aap = e.ddpg, e.aap
        pes = e.cores * e.size ** 2
        return "\n".join([
            f"PE array: {e.cores} core(s) of {e.size}x{e.size} PEs ({pes} PEs); weights "
            f"{d.weight_fmt.width}-bit, activations {d.act_fmt.width}-bit "
            f"({d.act16_fmt.width}-bit after the switch), deltas {d.delta_fmt.width}-bit",
            f"PE precision: {aap.half_note}",
            f"update: {e.update_units} {e.update_kind} unit(s), parameter ports "
            f"{e.update_ports!r}",
            f"networks: actor {'-'.join(map(str, e.sizes('actor')))}, critic "
            f"{'-'.join(map(str, e.sizes('critic')))}, batch {e.batch} (up to "
            f"{e.batch_capacity})",
        ])

    @property
    def config_id(self) -> int:
        """CRC-32 of the canonical compact JSON: the ``CONFIG_ID`` register."""
        text = dumps_config(self.to_dict(), compact=True)
        return zlib.crc32(text.encode("ascii"))
