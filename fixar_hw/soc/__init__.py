"""System gateware: buses, bridges, the DMA, the control registers, the core top and the SoC."""
