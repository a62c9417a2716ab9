"""Shared helpers: atomic file writes, seeding, device selection, cache folder."""
from advtopo.utils.io import atomic_write_bytes, atomic_write_json, atomic_write_text, atomic_path, cache_dir, to_jsonable
from advtopo.utils.seed import seed_everything
from advtopo.utils.device import resolve_device

__all__ = [
    "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "atomic_path",
    "cache_dir", "to_jsonable", "seed_everything", "resolve_device",
]
