"""Lenses (filter functions): one or two numbers per row, on which the cover is laid.

A lens spec is a name (``"l2norm"``), a ``(name, params)`` pair, a list of 1-D specs
(stacked into a 2-D lens), a precomputed array, or a callable ``f(X) -> array``.
O(n^2) lenses (knn_distance, density, eccentricity) are blocked, so memory stays bounded,
but their time grows with n^2: use them up to a few tens of thousands of rows.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from advtopo.errors import AdvtopoError
from advtopo.registry import Registry
from advtopo.mapper.neighbors import _blocked_scores

LENSES: Registry[Callable[..., np.ndarray]] = Registry("lens")


@LENSES.register("l2norm")
def l2norm(X, metadata=None, **kw):
    """L2 norm of each row (TopoAct's node colour; the default lens)."""
    X = np.asarray(X, dtype=np.float64)
    return np.sqrt(np.einsum("ij,ij->i", X, X))


@LENSES.register("l1norm")
def l1norm(X, metadata=None, **kw):
    """L1 norm of each row."""
    return np.abs(np.asarray(X, dtype=np.float64)).sum(axis=1)


@LENSES.register("mean")
def mean(X, metadata=None, **kw):
    """Mean activation of each row."""
    return np.asarray(X, dtype=np.float64).mean(axis=1)


@LENSES.register("max")
def max_(X, metadata=None, **kw):
    """Largest activation of each row."""
    return np.asarray(X, dtype=np.float64).max(axis=1)


@LENSES.register("std")
def std(X, metadata=None, **kw):
    """Standard deviation of each row's activations."""
    return np.asarray(X, dtype=np.float64).std(axis=1)


@LENSES.register("pca")
def pca(X, metadata=None, n_components: int = 1, random_state: int = 0, **kw):
    """Projection on the first 1 or 2 principal components."""
    from sklearn.decomposition import PCA

    if n_components not in (1, 2):
        raise AdvtopoError(f"n_components={n_components!r} is not valid for lens 'pca'; allowed: 1, 2")
    Xf = np.asarray(X, dtype=np.float64)
    if Xf.shape[1] < n_components:
        raise AdvtopoError(f"lens 'pca' with n_components={n_components} needs at least that many features")
    out = PCA(n_components=n_components, random_state=random_state).fit_transform(Xf)
    # fix the sign so the result is deterministic across BLAS builds
    for j in range(out.shape[1]):
        if out[np.argmax(np.abs(out[:, j])), j] < 0:
            out[:, j] *= -1
    return out[:, 0] if n_components == 1 else out


@LENSES.register("knn_distance")
def knn_distance(X, metadata=None, k: int = 5, metric: str = "euclidean", **kw):
    """Distance to the k-th nearest other row (large = sparse region / outlier)."""
    X = np.asarray(X)
    n = len(X)
    if not (1 <= int(k) < n):
        raise AdvtopoError(f"k={k!r} is not valid for lens 'knn_distance'; allowed: 1..{n - 1}")
    out = np.empty(n)
    for sl, D in _blocked_scores(X, np.arange(n), metric):
        out[sl] = np.partition(D, int(k), axis=1)[:, int(k)]  # position 0 is the row itself
    return out


@LENSES.register("density")
def density(X, metadata=None, bandwidth: float | str = "auto", metric: str = "euclidean", **kw):
    """Gaussian kernel density: mean_j exp(-d(i,j)^2 / (2 h^2)); h='auto' is the median 5-NN distance."""
    X = np.asarray(X)
    n = len(X)
    if bandwidth == "auto":
        kd = knn_distance(X, k=min(5, n - 1), metric=metric) if n > 1 else np.ones(1)
        h = float(np.median(kd)) or 1.0
    else:
        h = float(bandwidth)
        if not h > 0:
            raise AdvtopoError(f"bandwidth={bandwidth!r} is not valid for lens 'density'; allowed: a number > 0 or 'auto'")
    out = np.empty(n)
    for sl, D in _blocked_scores(X, np.arange(n), metric):
        out[sl] = np.exp(-(D**2) / (2 * h * h)).mean(axis=1)
    return out


@LENSES.register("eccentricity")
def eccentricity(X, metadata=None, p: float = 2.0, metric: str = "euclidean", **kw):
    """(mean_j d(i,j)^p)^(1/p); p='inf' gives the largest distance. Large = far from the bulk."""
    X = np.asarray(X)
    n = len(X)
    out = np.empty(n)
    pinf = str(p) == "inf" or p == np.inf
    if not pinf and not float(p) > 0:
        raise AdvtopoError(f"p={p!r} is not valid for lens 'eccentricity'; allowed: a number > 0 or 'inf'")
    for sl, D in _blocked_scores(X, np.arange(n), metric):
        out[sl] = D.max(axis=1) if pinf else np.mean(D ** float(p), axis=1) ** (1.0 / float(p))
    return out


@LENSES.register("metadata")
def metadata_column(X, metadata=None, column: str = "label", **kw):
    """A per-row metadata column (e.g. 'label', 'prediction', a confidence) as the lens."""
    if metadata is None or column not in metadata:
        have = sorted(metadata) if metadata is not None else []
        raise AdvtopoError(f"lens 'metadata' needs metadata column {column!r}; available: {', '.join(map(str, have)) or 'none'}")
    return np.asarray(metadata[column], dtype=np.float64)


@LENSES.register("precomputed")
def precomputed(X, metadata=None, values: Any = None, **kw):
    """A lens array computed elsewhere (n values, or n x 2)."""
    if values is None:
        raise AdvtopoError("lens 'precomputed' needs values=<array of one or two numbers per row>")
    return np.asarray(values, dtype=np.float64)


@LENSES.register("umap")
def umap_lens(X, metadata=None, n_components: int = 1, random_state: int = 0, **kw):
    """UMAP embedding (optional extra ``umap-learn``; slow first import)."""
    try:
        import umap  # noqa: PLC0415
    except ImportError:
        raise AdvtopoError("lens 'umap' needs the optional package umap-learn (pip install 'advtopo[umap]')") from None
    return umap.UMAP(n_components=n_components, random_state=random_state, **kw).fit_transform(np.asarray(X))


@LENSES.register("tsne")
def tsne_lens(X, metadata=None, n_components: int = 1, random_state: int = 0, **kw):
    """t-SNE embedding (scikit-learn; slow, O(n log n) per iteration)."""
    from sklearn.manifold import TSNE

    return TSNE(n_components=n_components, random_state=random_state, init="pca", **kw).fit_transform(
        np.asarray(X, dtype=np.float64)
    )


def data_lenses() -> tuple[str, ...]:
    """The lens names computed from the point cloud alone: all but ``metadata`` (needs a column
    of per-row values) and ``precomputed`` (needs the values). What the app offers for a rebuild."""
    return tuple(name for name in LENSES.names() if name not in ("metadata", "precomputed"))


def lens_name(spec: Any) -> str:
    """A short JSON-friendly name for a lens spec."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        params = ",".join(f"{k}={v}" for k, v in spec[1].items() if k != "values")
        return f"{spec[0]}({params})" if params else spec[0]
    if isinstance(spec, list):
        return "+".join(lens_name(s) for s in spec)
    if isinstance(spec, np.ndarray):
        return "precomputed"
    return getattr(spec, "__name__", type(spec).__name__)


def compute_lens(spec: Any, X: np.ndarray, metadata: Mapping | None = None, metric: str = "euclidean") -> np.ndarray:
    """Evaluate a lens spec to an (n, 1) or (n, 2) float64 array, checking its shape."""
    n = len(X)
    if isinstance(spec, list):
        cols = [compute_lens(s, X, metadata, metric) for s in spec]
        out = np.concatenate(cols, axis=1)
    else:
        if isinstance(spec, np.ndarray) or (isinstance(spec, (list, tuple)) and spec and not isinstance(spec[0], str)):
            val = np.asarray(spec, dtype=np.float64)
        elif isinstance(spec, str):
            val = LENSES.get(spec)(X, metadata, metric=metric)
        elif isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
            params = dict(spec[1])
            params.setdefault("metric", metric)
            val = LENSES.get(spec[0])(X, metadata, **params)
        elif callable(spec):
            val = spec(X)
        else:
            raise AdvtopoError(
                f"lens={spec!r} is not valid; allowed: one of {', '.join(LENSES.names())}, "
                "(name, params), a list of two lenses, an array or a callable"
            )
        out = np.asarray(val, dtype=np.float64)
        if out.ndim == 1:
            out = out[:, None]
    if out.shape[0] != n:
        raise AdvtopoError(f"the lens has {out.shape[0]} rows but X has {n}")
    if out.shape[1] not in (1, 2):
        raise AdvtopoError(f"the lens has {out.shape[1]} columns; allowed: 1 or 2 (1-D or 2-D covers)")
    if not np.all(np.isfinite(out)):
        raise AdvtopoError("the lens has NaN or infinite values")
    return out
