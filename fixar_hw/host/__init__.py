"""The host's side: the driver, the agent and the serial link."""
