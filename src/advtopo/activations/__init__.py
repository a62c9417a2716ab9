"""activations stage."""
