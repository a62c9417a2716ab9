"""Layer x layer comparisons: topological distances beside CKA/SVCCA, and PCA sensitivity.

Point clouds are given as a mapping ``label -> [N, d]`` over the same N samples (rows
aligned); a label can be a layer name or a ``(model, layer)`` tuple, so one call compares
layers within a model or across models (e.g. standard vs adversarially trained).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from advtopo.errors import AdvtopoError
from advtopo.persistence._validation import check_choice, check_float, check_int, check_point_cloud
from advtopo.persistence.distances import DISTANCES, diagram_distance
from advtopo.persistence.rips import METRICS, RipsPersistence, pairwise_distances

SCALINGS = ("none", "mean_distance")
SIMILARITIES = ("cka", "svcca")


def _centered(X: Any, name: str) -> np.ndarray:
    X = check_point_cloud(name, X).astype(np.float64)
    return X - X.mean(axis=0, keepdims=True)


def linear_cka(X: Any, Y: Any) -> float:
    """Linear CKA (Kornblith et al. 2019) in feature space.

    ``||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` equals the Gram-matrix (HSIC) form
    but costs O(N d^2) instead of O(N^2 d); 0 when a cloud is constant.
    """
    Xc, Yc = _centered(X, "X"), _centered(Y, "Y")
    if Xc.shape[0] != Yc.shape[0]:
        raise AdvtopoError(f"X and Y must hold the same samples (rows), got {Xc.shape[0]} and {Yc.shape[0]}")
    num = np.linalg.norm(Yc.T @ Xc) ** 2
    den = np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc)
    return float(num / den) if den > 0 else 0.0


def svcca(X: Any, Y: Any, keep_variance: float = 0.99, eps: float = 1e-10) -> float:
    """SVCCA (Raghu et al. 2017): mean canonical correlation after keeping the top singular
    directions that explain ``keep_variance`` of each cloud's variance."""
    keep_variance = check_float("keep_variance", keep_variance, minimum=1e-9, maximum=1.0)
    Xc, Yc = _centered(X, "X"), _centered(Y, "Y")
    if Xc.shape[0] != Yc.shape[0]:
        raise AdvtopoError(f"X and Y must hold the same samples (rows), got {Xc.shape[0]} and {Yc.shape[0]}")

    def reduce(A: np.ndarray) -> np.ndarray:
        U, s, _ = np.linalg.svd(A, full_matrices=False)
        if s.size == 0 or s[0] <= eps:
            return np.zeros((A.shape[0], 0))
        var = np.cumsum(s ** 2) / np.sum(s ** 2)
        k = int(np.searchsorted(var, keep_variance - 1e-12) + 1)
        return U[:, :k]  # orthonormal basis of the kept subspace (whitened)

    Qx, Qy = reduce(Xc), reduce(Yc)
    if Qx.shape[1] == 0 or Qy.shape[1] == 0:
        return 0.0
    # canonical correlations = singular values of Qx^T Qy (both orthonormal bases)
    rho = np.linalg.svd(Qx.T @ Qy, compute_uv=False)
    return float(np.mean(np.clip(rho, 0.0, 1.0)[: min(Qx.shape[1], Qy.shape[1])]))


def similarity_matrix(clouds: Mapping[Any, Any], measure: str = "cka", **params: Any) -> np.ndarray:
    """Symmetric [L, L] matrix of ``measure`` ("cka" or "svcca") between the clouds."""
    check_choice("measure", measure, SIMILARITIES)
    fn = linear_cka if measure == "cka" else svcca
    arrs = list(clouds.values())
    L = len(arrs)
    S = np.eye(L)
    for i in range(L):
        for j in range(i + 1, L):
            S[i, j] = S[j, i] = fn(arrs[i], arrs[j], **params)
    return S


def rank_correlation(distance: Any, similarity: Any) -> dict[str, float]:
    """Spearman correlation between a distance matrix and a dissimilarity (1 - similarity),
    over the upper-triangle entries: do the topological and the representational views
    rank layer pairs alike?"""
    from scipy.stats import spearmanr

    D, S = np.asarray(distance, float), np.asarray(similarity, float)
    if D.shape != S.shape or D.ndim != 2 or D.shape[0] != D.shape[1]:
        raise AdvtopoError(f"distance and similarity must be square matrices of one shape, got {D.shape}, {S.shape}")
    iu = np.triu_indices(D.shape[0], k=1)
    if len(iu[0]) < 2:
        return {"spearman": float("nan"), "pvalue": float("nan"), "n_pairs": len(iu[0])}
    r = spearmanr(D[iu], 1.0 - S[iu])
    return {"spearman": float(r.statistic), "pvalue": float(r.pvalue), "n_pairs": int(len(iu[0]))}


def _scale(X: np.ndarray, scaling: str, metric: str, seed: int = 0) -> np.ndarray:
    if scaling == "none":
        return X
    rng = np.random.default_rng(seed)
    sub = X[rng.choice(len(X), size=min(len(X), 500), replace=False)]
    m = pairwise_distances(sub, metric=metric)
    mean = m[np.triu_indices(len(sub), 1)].mean() if len(sub) > 1 else 0.0
    return X / mean if mean > 0 else X


class LayerDistance:
    """Layer x layer distance matrix between the persistence diagrams of point clouds.

    Parameters
    ----------
    homology_dim : the dimension compared (1 = H1, the layer-topology paper's choice).
    metric : diagram distance, one of "sliced_wasserstein", "bottleneck", "wasserstein".
    metric_params : extra arguments for the distance (e.g. ``{"n_directions": 100}``).
    point_metric : "euclidean" or "cosine", the metric inside each cloud.
    n_landmarks, threshold : passed to :class:`RipsPersistence`.
    scaling : "none", or "mean_distance" (divide each cloud by its mean pairwise distance,
        so layers of different magnitude compare by shape rather than scale).

    After ``fit(clouds)``: ``labels_``, ``diagrams_`` (label -> list of diagrams),
    ``matrix_`` [L, L].
    """

    def __init__(self, homology_dim: int = 1, metric: str = "sliced_wasserstein",
                 metric_params: dict[str, Any] | None = None, point_metric: str = "euclidean",
                 n_landmarks: int | None = None, threshold: float = np.inf, scaling: str = "none",
                 n_threads: int = -1) -> None:
        self.homology_dim = homology_dim
        self.metric = metric
        self.metric_params = metric_params
        self.point_metric = point_metric
        self.n_landmarks = n_landmarks
        self.threshold = threshold
        self.scaling = scaling
        self.n_threads = n_threads

    def _validate(self) -> None:
        check_int("homology_dim", self.homology_dim, minimum=0)
        check_choice("metric", self.metric, DISTANCES)
        check_choice("point_metric", self.point_metric, METRICS)
        check_choice("scaling", self.scaling, SCALINGS)

    def diagrams(self, X: Any) -> list[np.ndarray]:
        """The diagrams of one cloud under this configuration."""
        self._validate()
        X = _scale(check_point_cloud("cloud", X), self.scaling, self.point_metric)
        return RipsPersistence(maxdim=max(1, self.homology_dim), metric=self.point_metric,
                               threshold=self.threshold, n_landmarks=self.n_landmarks,
                               n_threads=self.n_threads).fit_transform(X)

    def distance(self, d1: list[np.ndarray], d2: list[np.ndarray]) -> float:
        return diagram_distance(d1[self.homology_dim], d2[self.homology_dim], self.metric,
                                **(self.metric_params or {}))

    def fit(self, clouds: Mapping[Any, Any], y: Any = None) -> "LayerDistance":
        self._validate()
        if not isinstance(clouds, Mapping) or len(clouds) == 0:
            raise AdvtopoError("clouds must be a non-empty mapping label -> [N, d] point cloud")
        self.labels_ = list(clouds)
        self.diagrams_ = {k: self.diagrams(v) for k, v in clouds.items()}
        L = len(self.labels_)
        M = np.zeros((L, L))
        for i in range(L):
            for j in range(i + 1, L):
                M[i, j] = M[j, i] = self.distance(self.diagrams_[self.labels_[i]], self.diagrams_[self.labels_[j]])
        self.matrix_ = M
        return self

    def fit_transform(self, clouds: Mapping[Any, Any], y: Any = None) -> np.ndarray:
        return self.fit(clouds).matrix_


def layer_distance_matrix(clouds: Mapping[Any, Any], **params: Any) -> np.ndarray:
    """Shortcut for ``LayerDistance(**params).fit_transform(clouds)``."""
    return LayerDistance(**params).fit_transform(clouds)


def compare_layers(clouds: Mapping[Any, Any], similarity: Sequence[str] = ("cka", "svcca"),
                   **params: Any) -> dict[str, Any]:
    """Topological distance matrix, CKA/SVCCA matrices and their rank correlations, as
    plain data (JSON-ready) for the run directory and the web app."""
    ld = LayerDistance(**params).fit(clouds)
    out: dict[str, Any] = {"labels": [_label(k) for k in ld.labels_], "matrix": ld.matrix_.tolist(),
                           "metric": ld.metric, "homology_dim": ld.homology_dim}
    for measure in similarity:
        S = similarity_matrix(clouds, measure)
        out[measure] = S.tolist()
        out[f"rank_correlation_{measure}"] = rank_correlation(ld.matrix_, S)
    return out


def _label(k: Any) -> str:
    return "/".join(map(str, k)) if isinstance(k, tuple) else str(k)


def pca_removal_sensitivity(X: Any, n_removed: Sequence[int] | None = None, **params: Any) -> dict[str, list]:
    """Distance between the diagram of the full cloud and of the cloud with its top-k
    principal components removed, for each k in ``n_removed`` (default 0..min(10, d-1)).

    A topological summary that is robust tracks the dominant directions smoothly; this
    is the layer-topology paper's sensitivity test. ``params`` configure
    :class:`LayerDistance` (homology_dim, metric, ...).
    """
    X = check_point_cloud("X", X, min_points=2).astype(np.float64)
    ld = LayerDistance(**params)
    Xc = X - X.mean(axis=0)
    _, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    if n_removed is None:
        n_removed = list(range(0, min(10, Vt.shape[0] - 1) + 1))
    for k in n_removed:
        check_int("n_removed", k, minimum=0)
        if k > Vt.shape[0]:
            raise AdvtopoError(f"n_removed values must be <= {Vt.shape[0]} (the cloud's rank bound), got {k}")
    full = ld.diagrams(Xc)
    dist, var = [], []
    total = float(np.sum(s ** 2)) or 1.0
    for k in n_removed:
        V = Vt[:k]
        Xk = Xc - (Xc @ V.T) @ V
        dist.append(ld.distance(full, ld.diagrams(Xk)) if k else 0.0)
        var.append(float(np.sum(s[:k] ** 2) / total))
    return {"n_removed": [int(k) for k in n_removed], "distance": dist, "explained_variance_removed": var}
