"""Per-sample summaries of a layer's output, so a conv map becomes one row per sample.

Dense outputs (N x D) are kept as they are whatever the summary; maps (N x C x H x W, or
N x C x L) are reduced. ``top_l2`` is the layer-topology paper's point cloud: per sample,
the channel vector at the spatial position whose L2 norm is largest. ``random_position``
picks a position per *sample id* (seeded), so a clean sample and its adversarial versions
are read at the same place and the result does not depend on batching.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from advtopo.errors import check_choice

SUMMARIES = ("flatten", "gap", "gmp", "top_l2", "random_position")


def _spatial(t: torch.Tensor) -> torch.Tensor:
    """N x C x (spatial...) -> N x C x P."""
    return t.reshape(t.shape[0], t.shape[1], -1)


def _positions(sample_ids: np.ndarray, n_positions: int, seed: int) -> np.ndarray:
    """A splitmix64 hash of (seed, sample id): deterministic, vectorised, batch-independent."""
    with np.errstate(over="ignore"):
        z = np.asarray(sample_ids, dtype=np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(n_positions)).astype(np.int64)


def summarize(t: torch.Tensor, summary: str, sample_ids: np.ndarray | None = None, seed: int = 0,
              differentiable: bool = False) -> torch.Tensor:
    """Reduce a batch of layer outputs to N x D (float32).

    ``differentiable=True`` keeps the autograd graph (feature visualisation optimises an input
    through the same summary the capture stored); the values are the same either way.
    """
    check_choice("summary", summary, SUMMARIES)
    if not differentiable:
        t = t.detach()
    if t.ndim <= 2:
        return t.reshape(t.shape[0], -1).float()
    if summary == "flatten":
        return t.reshape(t.shape[0], -1).float()
    s = _spatial(t).float()
    if summary == "gap":
        return s.mean(dim=2)
    if summary == "gmp":
        return s.amax(dim=2)
    if summary == "top_l2":
        pos = s.norm(dim=1).argmax(dim=1)  # N
    else:  # random_position
        if sample_ids is None:
            sample_ids = np.arange(t.shape[0])
        pos = torch.from_numpy(_positions(sample_ids, s.shape[2], seed)).to(s.device)
    idx = pos.view(-1, 1, 1).expand(-1, s.shape[1], 1)
    return s.gather(2, idx).squeeze(2)


def summary_dim(shape: tuple[int, ...], summary: str) -> int:
    """Width of the summary of one sample whose layer output has ``shape`` (no batch axis)."""
    if len(shape) <= 1 or summary == "flatten":
        return int(np.prod(shape)) if shape else 1
    return int(shape[0])


SummaryFn = Callable[[torch.Tensor, np.ndarray], torch.Tensor]
