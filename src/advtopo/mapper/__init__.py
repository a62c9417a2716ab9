"""mapper stage."""
