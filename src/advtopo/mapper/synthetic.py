"""Synthetic activation-like point clouds (for tests and benchmarks when no trained model exists)."""
from __future__ import annotations

import numpy as np


def synthetic_activations(
    n: int = 2000,
    dim: int = 64,
    n_classes: int = 10,
    adversarial_fraction: float = 0.0,
    seed: int = 0,
    dtype: type = np.float32,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """ReLU'd class clusters on a low-rank manifold, plus metadata (label, prediction, is_adversarial, sample_id).

    Why this shape: real layer activations are non-negative, low intrinsic dimension, with
    class clusters of different norms; adversarial rows are pulled toward another class's
    centre and (mostly) predicted as it.
    """
    rng = np.random.default_rng(seed)
    rank = min(dim, 16)
    basis = rng.standard_normal((rank, dim)) / np.sqrt(rank)
    centers = rng.standard_normal((n_classes, rank)) * 3.0
    scales = rng.uniform(0.5, 1.5, size=n_classes)
    label = rng.integers(0, n_classes, size=n)
    latent = centers[label] + rng.standard_normal((n, rank)) * scales[label, None]
    is_adv = rng.random(n) < adversarial_fraction
    target = (label + rng.integers(1, n_classes, size=n)) % n_classes
    mix = rng.uniform(0.3, 0.8, size=n)
    latent[is_adv] = (1 - mix[is_adv, None]) * latent[is_adv] + mix[is_adv, None] * centers[target[is_adv]]
    X = np.maximum(latent @ basis + 0.05 * rng.standard_normal((n, dim)), 0.0).astype(dtype)
    prediction = label.copy()
    fooled = is_adv & (mix > 0.5)
    prediction[fooled] = target[fooled]
    md = {"label": label.astype(np.int64), "prediction": prediction.astype(np.int64),
          "is_adversarial": is_adv, "sample_id": np.arange(n, dtype=np.int64)}
    return X, md
