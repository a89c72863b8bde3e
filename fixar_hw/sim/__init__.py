"""Simulation: stream and bus test helpers, array and engine harnesses, Verilator runners."""
