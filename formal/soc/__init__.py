"""Proofs of the system gateware."""
