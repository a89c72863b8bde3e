"""Reinforcement learning: the DDPG agent and loop, environments, weight images."""
