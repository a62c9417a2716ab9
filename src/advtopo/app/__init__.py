"""app stage."""
