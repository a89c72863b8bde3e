"""Arithmetic gateware: number formats, the MAC, the SP2 shift-adder, the PE, activations, the
PRNG, the mixed-scheme row unit."""
