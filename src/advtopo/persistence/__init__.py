"""persistence stage."""
