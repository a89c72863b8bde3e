"""Proofs of the arithmetic gateware."""
