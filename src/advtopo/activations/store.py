"""On-disk activations: one zarr group per capture, one chunked compressed array per layer.

Rows are written batch by batch as they are computed (chunks aligned with batches), so
memory stays at one batch whatever the number of samples. Readers get numpy arrays, or
the zarr arrays themselves for out-of-core work (Dask reads them directly).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from advtopo.errors import AdvtopoError


def _zarr():
    import zarr

    return zarr


class ActivationWriter:
    """Create ``path`` (a zarr group) with arrays ``name -> (n_rows, dim)`` and fill them in order."""

    def __init__(self, path: str | os.PathLike[str], n_rows: int, dims: dict[str, int],
                 chunk_rows: int = 256, attrs: dict[str, Any] | None = None) -> None:
        zarr = _zarr()
        self.path = Path(path)
        self.n_rows = n_rows
        self.group = zarr.open_group(str(self.path), mode="w")
        self.arrays = {}
        for name, dim in dims.items():
            # cap a chunk at ~8 MB so huge layers stay bounded too
            rows = max(1, min(chunk_rows, n_rows, (8 << 20) // max(4 * dim, 1)))
            self.arrays[name] = self.group.create_array(
                name, shape=(n_rows, dim), chunks=(rows, dim), dtype="float32", fill_value=0.0)
        self.group.attrs.update({"layers": list(dims), "n_rows": n_rows, **(attrs or {})})
        self.written = 0

    def write(self, start: int, blocks: dict[str, np.ndarray]) -> None:
        for name, block in blocks.items():
            self.arrays[name][start:start + len(block)] = np.asarray(block, dtype=np.float32)
        self.written = max(self.written, start + len(next(iter(blocks.values()))))

    def close(self) -> None:
        if self.written != self.n_rows:
            raise RuntimeError(f"activation store {self.path}: wrote {self.written} of {self.n_rows} rows")


def open_activations(path: str | os.PathLike[str]):
    """The zarr group at ``path`` (arrays by layer name)."""
    zarr = _zarr()
    if not Path(path).exists():
        raise AdvtopoError(f"activation store {path} does not exist")
    return zarr.open_group(str(path), mode="r")


def read_activations(path: str | os.PathLike[str], layer: str | None = None) -> np.ndarray | dict[str, np.ndarray]:
    """Load one layer (``N x D`` float32) or all layers of a store into memory."""
    g = open_activations(path)
    names = list(g.attrs.get("layers", [])) or sorted(g.array_keys())
    if layer is None:
        return {n: np.asarray(g[n][:]) for n in names}
    if layer not in names:
        from advtopo.errors import did_you_mean

        raise AdvtopoError(f"layer {layer!r} is not in {path}{did_you_mean(layer, names)}; stored: {', '.join(names)}")
    return np.asarray(g[layer][:])


def images_uint8(x) -> np.ndarray:
    """float [0, 1] N x C x H x W (tensor or array) -> uint8 N x H x W x C for thumbnails."""
    arr = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    arr = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr.transpose(0, 2, 3, 1))


SAMPLE_COLUMNS = ["sample_id", "dataset_index", "split", "label", "model", "attack", "eps",
                  "is_adversarial", "prediction", "correct", "confidence", "margin", "loss"]


def sample_table(sample_id, dataset_index, split: str, label, model: str, attack: str, eps: float,
                 is_adversarial: bool, prediction, confidence, margin, loss):
    """The per-sample rows for one (model, attack, eps), columns as the run-dir contract says."""
    import pandas as pd

    n = len(sample_id)
    label = np.asarray(label, dtype=np.int64)
    prediction = np.asarray(prediction, dtype=np.int64)
    return pd.DataFrame({
        "sample_id": np.asarray(sample_id, dtype=np.int64),
        "dataset_index": np.asarray(dataset_index, dtype=np.int64),
        "split": pd.Series([split] * n, dtype="string"),
        "label": label,
        "model": pd.Series([model] * n, dtype="string"),
        "attack": pd.Series([attack] * n, dtype="string"),
        "eps": np.full(n, float(eps)),
        "is_adversarial": np.full(n, bool(is_adversarial)),
        "prediction": prediction,
        "correct": prediction == label,
        "confidence": np.asarray(confidence, dtype=np.float32),
        "margin": np.asarray(margin, dtype=np.float32),
        "loss": np.asarray(loss, dtype=np.float32),
    })[SAMPLE_COLUMNS]


def write_parquet(df, path: str | os.PathLike[str]) -> None:
    from advtopo.utils import atomic_path

    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def write_npy(arr: np.ndarray, path: str | os.PathLike[str]) -> None:
    from advtopo.utils import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, arr, allow_pickle=False)


def write_json(obj: Any, path: str | os.PathLike[str]) -> None:
    from advtopo.utils import atomic_write_json

    atomic_write_json(path, obj)


def read_json(path: str | os.PathLike[str]) -> Any:
    return json.loads(Path(path).read_text())
