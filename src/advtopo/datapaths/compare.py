"""Clean vs adversarial datapaths, layer by layer: where they diverge and where they merge.

For each input and layer, the Jaccard similarity of the two critical sets
``|A & B| / |A | B|`` and its weighted version on the gate values
``sum min(g1, g2) / sum max(g1, g2)`` (both 1.0 when the two sets / gate vectors are
empty). The *divergence layer* of an input is the first layer (in the order given) whose
similarity falls below a threshold.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from advtopo.datapaths.extract import Datapaths
from advtopo.errors import AdvtopoError


def _pair(a: Any, b: Any, attr: str) -> tuple[list[str], dict[str, np.ndarray], dict[str, np.ndarray]]:
    if isinstance(a, Datapaths) and isinstance(b, Datapaths):
        if a.layers != b.layers:
            raise AdvtopoError(f"the two datapaths have different layers: {a.layers} vs {b.layers}")
        layers, da, db = a.layers, getattr(a, attr), getattr(b, attr)
    elif isinstance(a, Mapping) and isinstance(b, Mapping):
        if list(a) != list(b):
            raise AdvtopoError(f"the two inputs have different layers: {list(a)} vs {list(b)}")
        layers, da, db = list(a), a, b
    else:
        raise AdvtopoError("compare two Datapaths, or two {layer: array} dicts")
    for k in layers:
        if np.shape(da[k]) != np.shape(db[k]):
            raise AdvtopoError(f"layer {k!r}: shapes differ, {np.shape(da[k])} vs {np.shape(db[k])}")
    return layers, da, db


def jaccard(a: Datapaths | Mapping[str, np.ndarray], b: Datapaths | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per layer, ``(B,)`` Jaccard similarity of the critical sets of ``a`` and ``b`` (row by row).

    ``a``/``b``: Datapaths, or dicts of boolean ``(B, C)`` masks (a 1-D mask is one input).
    """
    layers, da, db = _pair(a, b, "critical")
    out = {}
    for k in layers:
        x, y = np.atleast_2d(np.asarray(da[k], bool)), np.atleast_2d(np.asarray(db[k], bool))
        inter = (x & y).sum(1)
        union = (x | y).sum(1)
        out[k] = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    return out


def weighted_jaccard(a: Datapaths | Mapping[str, np.ndarray],
                     b: Datapaths | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per layer, ``(B,)`` ``sum_c min(g1, g2) / sum_c max(g1, g2)`` on the gate values (>= 0)."""
    layers, da, db = _pair(a, b, "gates")
    out = {}
    for k in layers:
        x = np.atleast_2d(np.asarray(da[k], np.float64))
        y = np.atleast_2d(np.asarray(db[k], np.float64))
        if (x < 0).any() or (y < 0).any():
            raise AdvtopoError(f"layer {k!r}: weighted Jaccard needs non-negative gate values")
        num = np.minimum(x, y).sum(1)
        den = np.maximum(x, y).sum(1)
        out[k] = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
    return out


def divergence_layer(similarity: Mapping[str, np.ndarray], threshold: float = 0.5,
                     layers: Sequence[str] | None = None) -> np.ndarray:
    """Per input, the index (into ``layers``) of the first layer with similarity < threshold; -1 if none."""
    layers = list(layers or similarity)
    if not layers:
        raise AdvtopoError("divergence_layer needs at least one layer")
    sim = np.stack([np.asarray(similarity[k], np.float64) for k in layers], axis=1)  # (B, L)
    below = sim < threshold
    return np.where(below.any(1), below.argmax(1), -1).astype(np.int64)


def _mean(v: np.ndarray) -> float | None:
    return float(np.mean(v)) if len(v) else None


@dataclass
class DatapathComparison:
    """Per-input, per-layer similarities of two sets of datapaths of the same inputs."""

    layers: list[str]
    jaccard: dict[str, np.ndarray]
    weighted_jaccard: dict[str, np.ndarray]
    divergence: np.ndarray   # index into layers, -1 = never below the threshold
    fooled: np.ndarray       # bool (B,)
    threshold: float

    def divergence_names(self) -> list[str | None]:
        return [self.layers[i] if i >= 0 else None for i in self.divergence]

    def summary(self) -> dict[str, Any]:
        """JSON-able: per layer the mean (weighted) Jaccard over all / fooled / not-fooled inputs,
        and how many inputs diverge first at each layer."""
        groups = {"all": np.ones_like(self.fooled, bool), "fooled": self.fooled, "not_fooled": ~self.fooled}
        by_layer = {}
        for k in self.layers:
            by_layer[k] = {
                "jaccard": {g: _mean(self.jaccard[k][m]) for g, m in groups.items()},
                "weighted_jaccard": {g: _mean(self.weighted_jaccard[k][m]) for g, m in groups.items()},
            }
        div = {}
        for g, m in groups.items():
            counts = {k: int(np.sum(self.divergence[m] == i)) for i, k in enumerate(self.layers)}
            counts["none"] = int(np.sum(self.divergence[m] < 0))
            div[g] = counts
        return {"n_samples": int(len(self.fooled)), "n_fooled": int(self.fooled.sum()),
                "divergence_threshold": self.threshold, "layers": by_layer, "divergence_counts": div}


def compare_datapaths(clean: Datapaths, adversarial: Datapaths, fooled: np.ndarray | None = None,
                      threshold: float = 0.5) -> DatapathComparison:
    """Compare the datapaths of the same inputs, clean and adversarial.

    ``fooled`` (bool per input) splits the aggregates; by default an input is fooled when
    the adversarial prediction differs from the clean one.
    """
    if clean.n_samples != adversarial.n_samples:
        raise AdvtopoError(f"clean has {clean.n_samples} inputs, adversarial {adversarial.n_samples}")
    if not 0.0 <= threshold <= 1.0:
        raise AdvtopoError(f"threshold={threshold} must be in [0, 1]")
    if fooled is None:
        fooled = adversarial.prediction != clean.prediction
    fooled = np.asarray(fooled, bool)
    if fooled.shape != (clean.n_samples,):
        raise AdvtopoError(f"fooled has shape {fooled.shape}, expected ({clean.n_samples},)")
    j = jaccard(clean, adversarial)
    w = weighted_jaccard(clean, adversarial)
    return DatapathComparison(list(clean.layers), j, w, divergence_layer(j, threshold, clean.layers), fooled,
                              float(threshold))
