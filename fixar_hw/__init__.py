"""fixar-hw: Amaranth generators for fixed-point and mixed-scheme DRL training accelerators.

Every hardware part has a bit-exact NumPy twin in :mod:`sw_model`, Hypothesis tests against it,
and SymbiYosys proofs in :mod:`fixar_hw.formal`.

The names in ``__all__`` are the parts an FPGA engineer instantiates, from small to large, plus the
configuration and the host driver. They load on first use, so ``import fixar_hw`` imports
neither Amaranth nor the tool flows until one of them is touched; each is the object of its home
module (``fixar_hw.FixedMAC is fixar_hw.arith.mac.FixedMAC``).

The table of parts, with their ports and proofs, is in the documentation (``docs/``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_HOMES = {
    "FixedMAC": "fixar_hw.arith.mac",
    "SP2ShiftAdd": "fixar_hw.arith.sp2",
    "MixedRowUnit": "fixar_hw.arith.row_unit",
    "DualPrecisionPE": "fixar_hw.arith.pe",
    "ActivationUnit": "fixar_hw.arith.activation",
    "PEArray": "fixar_hw.train.array",
    "TrainingEngine": "fixar_hw.train.engine",
    "FixarCore": "fixar_hw.soc.core",
    "FixarSoC": "fixar_hw.soc.system",
    "CoreConfig": "fixar_hw.config",
    "FixarDriver": "fixar_hw.host.driver",
}

__all__ = [
    "ActivationUnit",
    "CoreConfig",
    "DualPrecisionPE",
    "FixarCore",
    "FixarDriver",
    "FixarSoC",
    "FixedMAC",
    "MixedRowUnit",
    "PEArray",
    "SP2ShiftAdd",
    "TrainingEngine",
    "__version__",
]

if TYPE_CHECKING:
    from fixar_hw.arith.activation import ActivationUnit
    from fixar_hw.arith.mac import FixedMAC
    from fixar_hw.arith.pe import DualPrecisionPE
    from fixar_hw.arith.row_unit import MixedRowUnit
    from fixar_hw.arith.sp2 import SP2ShiftAdd
    from fixar_hw.config import CoreConfig
    from fixar_hw.host.driver import FixarDriver
    from fixar_hw.soc.core import FixarCore
    from fixar_hw.soc.system import FixarSoC
    from fixar_hw.train.array import PEArray
    from fixar_hw.train.engine import TrainingEngine


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'fixar_hw' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
