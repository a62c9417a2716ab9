"""A linked 2-D embedding of a graph's point cloud (``GET /api/embedding/<graph>?method=``).

Mapper Interactive / TopoAct's linked scatter: one (x, y) per row of the graph's
``points`` (clean rows, then adversarial rows), from the run's stored activations
(``Run.cached_point_cloud``). ``pca`` (default): sklearn PCA, 2 components; ``tsne``:
sklearn TSNE (perplexity min(30, (n-1)/3), init="pca", max_iter=500), both random_state 0
so deterministic. Computed on first request (one at a time; a few more wait, the rest are
answered 429), then cached as ``RUN_DIR/app-cache/embedding/<key>.json`` (key = hash of graph
id, method and parameters; the cache is bounded, ``AppCache``).
"""
from __future__ import annotations

import hashlib
import json
import time

import numpy as np

from .cache import AppCache
from .data import BadRequest, RunData
from .recompute import ComputeGate, RecomputeUnavailable, stored_point_cloud

METHODS = ("pca", "tsne")
PARAMS = {"pca": {"n_components": 2, "random_state": 0},
          "tsne": {"n_components": 2, "perplexity": "min(30,(n-1)/3)", "init": "pca", "random_state": 0,
                   "max_iter": 500}}


def embed(X: np.ndarray, method: str) -> np.ndarray:
    """(n, 2) coordinates of ``X`` by ``method`` (deterministic)."""
    X = np.asarray(X, dtype=np.float32)
    n = len(X)
    if n < 3:  # too few rows for either method: place them on a line
        return np.column_stack([np.arange(n, dtype=np.float64), np.zeros(n)])
    if method == "pca":
        from sklearn.decomposition import PCA

        k = min(2, X.shape[1], n)
        Y = PCA(n_components=k, random_state=0).fit_transform(X)
        if k < 2:
            Y = np.column_stack([Y, np.zeros(n)])
        return Y
    from sklearn.manifold import TSNE

    kw = dict(n_components=2, perplexity=min(30.0, (n - 1) / 3), init="pca", random_state=0)
    try:
        return TSNE(max_iter=500, **kw).fit_transform(X)
    except TypeError:  # sklearn < 1.5 names it n_iter
        return TSNE(n_iter=500, **kw).fit_transform(X)


class EmbeddingService:
    def __init__(self, run: RunData, cache: AppCache | None = None) -> None:
        self.run = run
        self.cache = cache or AppCache(run)
        self._gate = ComputeGate("an embedding")  # one at a time (t-SNE is CPU heavy), few waiting

    def get(self, graph_id: str, method: str = "pca") -> dict:
        if method not in METHODS:
            raise BadRequest(f"method={method!r} is not valid; allowed: {', '.join(METHODS)}")
        e = self.run.reader.graph_entry(graph_id)  # ArtefactMissing -> 404
        key_src = json.dumps({"graph": graph_id, "method": method, "params": PARAMS[method]}, sort_keys=True)
        key = hashlib.sha1(key_src.encode()).hexdigest()[:20]
        name = f"{key}.json"
        cached = self.cache.read_json("embedding", name)
        if cached is not None:
            return cached
        with self._gate():  # Busy (429) when too many wait
            cached = self.cache.read_json("embedding", name)
            if cached is not None:
                return cached
            X = stored_point_cloud(self.run, e)  # RecomputeUnavailable -> available: false
            g = self.run.reader.graph(graph_id)
            n_pts = len((g.get("points") or {}).get("sample_id") or (g.get("points") or {}).get("label") or [])
            if n_pts and n_pts != len(X):
                raise RecomputeUnavailable(f"the stored activations ({len(X)} rows) do not match the graph's "
                                           f"points ({n_pts})")
            t0 = time.perf_counter()
            Y = embed(X, method)
            secs = time.perf_counter() - t0
            out = {"graph": graph_id, "method": method, "n": int(len(Y)), "params": PARAMS[method],
                   "seconds": round(secs, 3), "key": key,
                   "x": [round(float(v), 4) for v in Y[:, 0]], "y": [round(float(v), 4) for v in Y[:, 1]]}
            self.cache.write_json("embedding", name, out)
            return out
