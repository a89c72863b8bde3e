"""Bit-width search: the hardware cost model and the PPO search."""
