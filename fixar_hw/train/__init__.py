"""Training gateware: the AAP core, the PE array, memories, the vector and update units, the
scheduler, the training engine."""
