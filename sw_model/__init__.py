"""The bit-exact golden model of fixar-hw: NumPy only, no Amaranth.

Subpackages: :mod:`sw_model.numerics` (fixed point, SP2, MSQ, activations, the PRNG, the
optimizers, QAT), :mod:`sw_model.arch` (the array's ops, the vector unit, the DDPG step, the
engine's programs), :mod:`sw_model.rl` (DDPG in NumPy, environments, weight images) and
:mod:`sw_model.search` (the hardware cost model and the bit-width search).

The names in ``__all__`` are the ones the documentation's examples use; they load on first use
(``import sw_model`` stays light) and each is the object of its home module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_HOMES = {
    "FixedFormat": "sw_model.numerics.fixed",
    "requantize": "sw_model.numerics.fixed",
    "dot": "sw_model.numerics.fixed",
    "matmul": "sw_model.numerics.fixed",
    "SP2Format": "sw_model.numerics.sp2",
    "LaneBudget": "sw_model.numerics.msq",
    "quantize_matrix": "sw_model.numerics.msq",
    "matvec": "sw_model.numerics.msq",
    "TanhTable": "sw_model.numerics.activation",
    "AAPConfig": "sw_model.arch.aap",
    "CycleModel": "sw_model.arch.aap",
    "DDPGConfig": "sw_model.arch.ddpg_config",
    "FORMAT_SETS": "sw_model.arch.ddpg_config",
    "EngineConfig": "sw_model.arch.engine",
    "compile_step": "sw_model.arch.engine",
    "compile_act": "sw_model.arch.engine",
    "DDPGAgent": "sw_model.rl.ddpg",
    "WeightImage": "sw_model.rl.image",
}

__all__ = [
    "FORMAT_SETS",
    "AAPConfig",
    "CycleModel",
    "DDPGAgent",
    "DDPGConfig",
    "EngineConfig",
    "FixedFormat",
    "LaneBudget",
    "SP2Format",
    "TanhTable",
    "WeightImage",
    "compile_act",
    "compile_step",
    "dot",
    "matmul",
    "matvec",
    "quantize_matrix",
    "requantize",
]

if TYPE_CHECKING:
    from sw_model.arch.aap import AAPConfig, CycleModel
    from sw_model.arch.ddpg_config import FORMAT_SETS, DDPGConfig
    from sw_model.arch.engine import EngineConfig, compile_act, compile_step
    from sw_model.numerics.activation import TanhTable
    from sw_model.numerics.fixed import FixedFormat, dot, matmul, requantize
    from sw_model.numerics.msq import LaneBudget, matvec, quantize_matrix
    from sw_model.numerics.sp2 import SP2Format
    from sw_model.rl.ddpg import DDPGAgent
    from sw_model.rl.image import WeightImage


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'sw_model' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})
