"""The tool flow: Verilog export, synthesis, place and route, board builds, sweeps."""
