"""Proofs of the training gateware."""
