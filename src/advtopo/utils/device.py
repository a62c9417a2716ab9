"""Device selection: 'auto' picks CUDA when present, else CPU."""
from __future__ import annotations

from advtopo.errors import AdvtopoError


def resolve_device(device: str | None = "auto"):
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise AdvtopoError(f"device={device!r} is not valid; allowed: auto, cpu, cuda, cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise AdvtopoError(f"device={device!r} requested but CUDA is not available; use device='cpu' or 'auto'")
    return dev
