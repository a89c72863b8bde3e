"""The architecture's golden model: the array's ops, the vector unit, the DDPG step, the engine."""
