"""Numerics: fixed point, SP2, MSQ, activations, the PRNG, the optimizers, QAT."""
