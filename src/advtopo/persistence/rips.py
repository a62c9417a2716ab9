"""Vietoris-Rips persistence of activation point clouds, on giotto-ph.

giotto-ph (``gph.ripser_parallel``) is the fastest Rips engine measured here (1000 x 512,
H0+H1 in about 0.3 s) and gives the same diagrams as ripser and gudhi (see the tests).
``collapse_edges`` stays off by default: on dense high-dimensional clouds it made giotto-ph
15-125x slower (docs/benchmarks-persistence.md).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from advtopo.errors import AdvtopoError
from advtopo.persistence._validation import check_choice, check_float, check_int, check_point_cloud
from advtopo.utils.metrics import METRICS


def pairwise_distances(X: np.ndarray, Y: np.ndarray | None = None, metric: str = "euclidean") -> np.ndarray:
    """Dense distance matrix in float64 via the Gram trick (BLAS), clipped at 0.

    Cosine distance is ``1 - cos``; an all-zero row (a dead ReLU layer) counts as
    orthogonal to everything, as in scikit-learn.
    """
    check_choice("metric", metric, METRICS)
    X = np.asarray(X, dtype=np.float64)
    Y = X if Y is None else np.asarray(Y, dtype=np.float64)
    if metric == "cosine":
        Xn, Yn = _normalize(X), (None if Y is X else _normalize(Y))
        Yn = Xn if Yn is None else Yn
        D = 1.0 - Xn @ Yn.T
    else:
        xx = np.einsum("ij,ij->i", X, X)
        yy = xx if Y is X else np.einsum("ij,ij->i", Y, Y)
        D = xx[:, None] + yy[None, :] - 2.0 * (X @ Y.T)
        np.sqrt(np.maximum(D, 0.0, out=D), out=D)
    np.maximum(D, 0.0, out=D)
    if Y is X:
        np.fill_diagonal(D, 0.0)
        D = 0.5 * (D + D.T)  # exact symmetry, so every engine sees the same filtration
    return D


def _normalize(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)


def maxmin_landmarks(X: Any, n_landmarks: int, metric: str = "euclidean", seed: int | None = 0) -> np.ndarray:
    """Indices of ``n_landmarks`` points chosen greedily farthest-first (maxmin).

    Maxmin landmarks cover the cloud (every point is within the covering radius of one),
    so the subsample keeps the large-scale topology that uniform sampling can miss. The
    first landmark is a random point (``seed``), or point 0 when ``seed`` is None.
    O(n_points * n_landmarks * n_features) time, O(n_points) memory.
    """
    X = check_point_cloud("X", X)
    n_landmarks = check_int("n_landmarks", n_landmarks, minimum=1)
    check_choice("metric", metric, METRICS)
    n = X.shape[0]
    if n_landmarks >= n:
        return np.arange(n)
    X = X.astype(np.float64, copy=False)
    if metric == "cosine":
        X = _normalize(X)
    first = 0 if seed is None else int(np.random.default_rng(seed).integers(n))
    sq = np.einsum("ij,ij->i", X, X)
    idx = np.empty(n_landmarks, dtype=np.int64)
    idx[0] = first
    mind = np.full(n, np.inf)
    for k in range(n_landmarks):
        p = idx[k]
        if metric == "cosine":
            d = 1.0 - X @ X[p]
        else:
            d = sq + sq[p] - 2.0 * (X @ X[p])
        np.minimum(mind, d, out=mind)
        mind[idx[: k + 1]] = -np.inf  # never pick a landmark twice (duplicates in the cloud)
        if k + 1 < n_landmarks:
            idx[k + 1] = int(np.argmax(mind))
    return idx


class RipsPersistence:
    """Vietoris-Rips persistence diagrams (H0..H``maxdim``) of a point cloud.

    Parameters
    ----------
    maxdim : highest homology dimension (0, 1 or 2; H2 is costly beyond a few hundred points).
    metric : "euclidean" or "cosine".
    threshold : largest edge length in the filtration (``inf`` = full complex); bars still
        alive at the threshold are reported with death ``inf``.
    n_landmarks : if set and the cloud is larger, compute on that many maxmin landmarks.
    landmark_seed : picks the first landmark (reproducible).
    n_threads : giotto-ph threads; -1 = all cores.
    coeff : prime field coefficient.
    collapse_edges : giotto-ph's edge collapse (off: slow on dense clouds, see module doc).

    After ``fit``: ``diagrams_`` (list of [n_k, 2] float arrays, one per dimension),
    ``landmarks_`` (indices used, or None).
    """

    def __init__(self, maxdim: int = 1, metric: str = "euclidean", threshold: float = np.inf,
                 n_landmarks: int | None = None, landmark_seed: int | None = 0, n_threads: int = -1,
                 coeff: int = 2, collapse_edges: bool = False) -> None:
        self.maxdim = maxdim
        self.metric = metric
        self.threshold = threshold
        self.n_landmarks = n_landmarks
        self.landmark_seed = landmark_seed
        self.n_threads = n_threads
        self.coeff = coeff
        self.collapse_edges = collapse_edges

    def _validate(self) -> None:
        check_int("maxdim", self.maxdim, minimum=0)
        if self.maxdim > 2:
            raise AdvtopoError(f"maxdim must be 0, 1 or 2, got {self.maxdim!r}")
        check_choice("metric", self.metric, METRICS)
        check_float("threshold", self.threshold, minimum=0.0, allow_inf=True)
        check_int("n_landmarks", self.n_landmarks, minimum=2, allow_none=True)
        check_int("n_threads", self.n_threads)
        if self.n_threads == 0 or self.n_threads < -1:
            raise AdvtopoError(f"n_threads must be -1 (all cores) or >= 1, got {self.n_threads!r}")
        check_int("coeff", self.coeff, minimum=2)

    def fit(self, X: Any, y: Any = None) -> "RipsPersistence":
        import gph

        self._validate()
        X = check_point_cloud("X", X)
        self.landmarks_ = None
        if self.n_landmarks is not None and X.shape[0] > self.n_landmarks:
            self.landmarks_ = maxmin_landmarks(X, self.n_landmarks, self.metric, self.landmark_seed)
            X = X[self.landmarks_]
        n_threads = (os.cpu_count() or 1) if self.n_threads == -1 else self.n_threads
        # We pass our own distance matrix: one code path for both metrics, float64, exactly
        # symmetric, so the diagrams match ripser/gudhi fed the same matrix bit for bit.
        D = pairwise_distances(X, metric=self.metric)
        out = gph.ripser_parallel(D, metric="precomputed", maxdim=int(self.maxdim),
                                  thresh=float(self.threshold), coeff=int(self.coeff),
                                  collapse_edges=bool(self.collapse_edges), n_threads=int(n_threads))
        self.diagrams_ = [np.asarray(d, dtype=np.float64).reshape(-1, 2) for d in out["dgms"]]
        self.n_points_ = X.shape[0]
        return self

    def fit_transform(self, X: Any, y: Any = None) -> list[np.ndarray]:
        return self.fit(X).diagrams_


def rips_diagrams(X: Any, maxdim: int = 1, metric: str = "euclidean", threshold: float = np.inf,
                  n_landmarks: int | None = None, **kw: Any) -> list[np.ndarray]:
    """Shortcut for ``RipsPersistence(...).fit_transform(X)``: one [n, 2] diagram per dimension."""
    return RipsPersistence(maxdim=maxdim, metric=metric, threshold=threshold,
                           n_landmarks=n_landmarks, **kw).fit_transform(X)


def stack_diagrams(diagrams: list[np.ndarray]) -> np.ndarray:
    """List of per-dimension diagrams -> one float array [n, 3] of (birth, death, dim).

    The storage format in a run directory (one .npy per diagram set, readable anywhere).
    """
    rows = [np.column_stack([np.asarray(d, float).reshape(-1, 2), np.full(len(d), k, float)])
            for k, d in enumerate(diagrams)]
    return np.concatenate(rows, axis=0) if rows else np.zeros((0, 3))


def split_diagrams(stacked: np.ndarray, maxdim: int | None = None) -> list[np.ndarray]:
    """Inverse of :func:`stack_diagrams`."""
    stacked = np.asarray(stacked, dtype=np.float64).reshape(-1, 3)
    top = int(stacked[:, 2].max()) if maxdim is None and len(stacked) else (maxdim or 0)
    return [stacked[stacked[:, 2] == k, :2] for k in range(top + 1)]
