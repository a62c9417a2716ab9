"""study stage."""
