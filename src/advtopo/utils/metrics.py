"""The distance metrics every stage supports (mapper, persistence, separability): one list,
so a metric accepted by one stage is accepted by all."""
from __future__ import annotations

METRICS: tuple[str, ...] = ("euclidean", "cosine")
