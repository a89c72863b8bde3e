"""fixar-hw: Amaranth generators for fixed-point and mixed-scheme DRL training accelerators.

Every hardware part has a bit-exact NumPy twin in :mod:`sw_model`, Hypothesis tests against it,
and SymbiYosys proofs in :mod:`fixar_hw.formal`.
"""

__version__ = "0.1.0"
