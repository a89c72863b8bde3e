"""Applications: the command line, the demo, training and the bit-width search."""
