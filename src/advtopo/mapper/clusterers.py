"""Clusterers for the points of one cover element.

``DBSCAN`` and ``SingleLinkage`` run on the shared eps-neighbour graph (fast path, exact
sklearn semantics); ``HDBSCAN`` and any scikit-learn-compatible object run per element on
the rows themselves (generic path). Label -1 is noise; noise is always counted.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from advtopo.errors import AdvtopoError, check_choice
from advtopo.mapper._checks import check_eps, check_int_at_least
from advtopo.registry import Registry

CLUSTERERS: Registry[type] = Registry("clusterer")


class GraphClusterer:
    """A clusterer that only needs the eps-neighbour graph (computed once, shared)."""

    eps: Any
    min_samples: int
    strict: bool = False

    def get_params(self) -> dict:
        return {"clusterer": self.name, "eps": self.eps, "min_samples": self.min_samples}

    def labels_from_graph(self, m: int, u: np.ndarray, v: np.ndarray, orig: np.ndarray,
                          u_counts: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def finish(self, labels: np.ndarray) -> np.ndarray:
        """Post-process DBSCAN-style labels (single linkage drops small clusters); identity here."""
        return labels


_ONES = np.ones(0)


def _ones(k: int) -> np.ndarray:
    """A read-only float64 view of k ones (scipy's csgraph wants float64 data; no per-call allocation)."""
    global _ONES
    if len(_ONES) < k:
        _ONES = np.ones(max(k, 2 * len(_ONES)))
        _ONES.flags.writeable = False
    return _ONES[:k]


try:  # scipy's undirected kernel, fed a transpose built with 1-byte data (see _weak_components)
    from scipy.sparse._sparsetools import csr_tocsc as _csr_tocsc
    from scipy.sparse.csgraph._traversal import _connected_components_undirected as _cc_undirected
except ImportError:  # pragma: no cover - private scipy API moved
    _csr_tocsc = _cc_undirected = None

_BOOL_ONES = np.ones(0, dtype=bool)


def _bool_ones(k: int) -> np.ndarray:
    global _BOOL_ONES
    if len(_BOOL_ONES) < k:
        _BOOL_ONES = np.ones(max(k, 2 * len(_BOOL_ONES)), dtype=bool)
        _BOOL_ONES.flags.writeable = False
    return _BOOL_ONES[:k]


def _weak_components(m: int, indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Weakly connected component ids of the directed CSR graph (indptr, indices), m x m.

    Same labels as ``connected_components(csr, directed=True, connection="weak")``; that call
    transposes with float64 data (24 bytes moved per edge), the biggest per-element cost after
    the pair build. Here the transpose carries 1-byte data and goes straight to scipy's
    undirected kernel. Falls back to the public call if scipy's private names move.
    """
    nnz = len(indices)
    if _cc_undirected is None or _csr_tocsc is None:
        g = csr_matrix((_ones(nnz), indices, indptr), shape=(m, m))
        return connected_components(g, directed=True, connection="weak")[1]
    try:
        idx_t = indices.dtype
        tp = np.empty(m + 1, dtype=idx_t)
        ti = np.empty(nnz, dtype=idx_t)
        tx = np.empty(nnz, dtype=bool)
        _csr_tocsc(m, m, indptr, indices, _bool_ones(nnz), tp, ti, tx)
        labels = np.full(m, -1, dtype=np.int32)
        _cc_undirected(indices, indptr, ti, tp, labels)
        return labels
    except (TypeError, ValueError):  # pragma: no cover - private signature changed
        g = csr_matrix((_ones(nnz), indices, indptr), shape=(m, m))
        return connected_components(g, directed=True, connection="weak")[1]


def dbscan_labels(m: int, u: np.ndarray, v: np.ndarray, orig: np.ndarray, min_samples: int,
                  u_counts: np.ndarray | None = None) -> np.ndarray:
    """sklearn's DBSCAN labels for m points given their eps-neighbour pairs (u, v), u != v.

    Core points: at least ``min_samples`` neighbours counting themselves. Clusters are the
    connected components of core points, numbered in the order sklearn discovers them
    (by their smallest ``orig`` index: sklearn scans rows in ``orig`` order). A border point
    joins the first discovered cluster among its core neighbours, as sklearn's depth-first
    expansion does.

    ``u_counts`` (optional): u is sorted ascending and ``u_counts[i]`` is the number of pairs
    with u == i (the fast path of :meth:`EdgeList.restrict`).
    """
    labels = np.full(m, -1, dtype=np.int64)
    if m == 0:
        return labels
    sorted_u = u_counts is not None
    deg = np.bincount(v, minlength=m)
    deg += u_counts if sorted_u else np.bincount(u, minlength=m)
    core = deg >= min_samples - 1
    if not core.any():
        return labels
    known_sorted = sorted_u
    if core.all():  # common at the k-distance knee: every pair is core-core, no filtering
        cu = cv = None
        uc, vc = u, v
        if sorted_u:
            indptr = np.zeros(m + 1, dtype=np.int64)
            np.cumsum(u_counts, out=indptr[1:])
    else:
        cu = np.repeat(core, u_counts) if sorted_u else core[u]
        cv = core[v]
        cc = cu & cv
        uc, vc = u[cc], v[cc]  # a boolean mask keeps u's order: still sorted if u was
        sorted_u = False
    if not sorted_u:
        if not known_sorted and len(uc) > 1 and np.any(uc[1:] < uc[:-1]):
            o = np.argsort(uc, kind="stable")
            uc, vc = uc[o], vc[o]
        # rows already sorted: build the CSR directly (no COO sort / duplicate summing)
        indptr = np.searchsorted(uc, np.arange(m + 1), side="left")
    idx_t = np.int32 if len(uc) < 2**31 - 1 else np.int64
    comp = _weak_components(m, indptr.astype(idx_t, copy=False), vc.astype(idx_t, copy=False))
    core_idx = np.flatnonzero(core)
    # clusters in sklearn's discovery order: by the smallest row id among their core points
    by_orig = core_idx[np.argsort(orig[core_idx], kind="stable")]
    _, first_pos = np.unique(comp[by_orig], return_index=True)
    comps_in_order = comp[by_orig][np.sort(first_pos)]
    rank = np.full(comp.max() + 1, -1, dtype=np.int64)
    rank[comps_in_order] = np.arange(len(comps_in_order))
    labels[core_idx] = rank[comp[core_idx]]
    # border points: the smallest cluster rank among core neighbours
    if cu is None:
        return labels
    b1 = cu & ~cv
    b2 = cv & ~cu
    if b1.any() or b2.any():
        border = np.concatenate([v[b1], u[b2]])
        cand = np.concatenate([labels[u[b1]], labels[v[b2]]])
        o = np.lexsort((cand, border))
        border, cand = border[o], cand[o]
        first = np.ones(len(border), dtype=bool)
        first[1:] = border[1:] != border[:-1]
        labels[border[first]] = cand[first]
    return labels


@CLUSTERERS.register("dbscan")
class DBSCAN(GraphClusterer):
    """DBSCAN with sklearn's exact semantics; eps a number or 'auto' (k-distance knee)."""

    name = "dbscan"

    def __init__(self, eps: float | str = "auto", min_samples: int = 5) -> None:
        self.eps = check_eps(eps)
        self.min_samples = check_int_at_least(min_samples, 1, "min_samples")

    def __repr__(self) -> str:
        return f"DBSCAN(eps={self.eps!r}, min_samples={self.min_samples})"

    def labels_from_graph(self, m, u, v, orig, u_counts=None):
        return dbscan_labels(m, u, v, orig, self.min_samples, u_counts=u_counts)


@CLUSTERERS.register("single")
class SingleLinkage(GraphClusterer):
    """Single-linkage clusters cut at ``threshold`` (merge while distance < threshold).

    Same partition as sklearn's ``AgglomerativeClustering(linkage='single',
    distance_threshold=threshold, n_clusters=None)``; clusters smaller than
    ``min_cluster_size`` are counted as noise.
    """

    name = "single"
    strict = True

    def __init__(self, threshold: float | str = "auto", min_cluster_size: int = 1) -> None:
        self.eps = check_eps(threshold, "threshold")
        self.min_cluster_size = check_int_at_least(min_cluster_size, 1, "min_cluster_size")
        self.min_samples = 1

    def get_params(self) -> dict:
        return {"clusterer": self.name, "eps": self.eps, "min_cluster_size": self.min_cluster_size}

    def __repr__(self) -> str:
        return f"SingleLinkage(threshold={self.eps!r}, min_cluster_size={self.min_cluster_size})"

    def labels_from_graph(self, m, u, v, orig, u_counts=None):
        return self.finish(dbscan_labels(m, u, v, orig, 1, u_counts=u_counts))

    def finish(self, labels: np.ndarray) -> np.ndarray:
        """Clusters smaller than ``min_cluster_size`` become noise; the rest are renumbered in order."""
        if self.min_cluster_size > 1 and len(labels) and labels.max() >= 0:
            sizes = np.bincount(labels, minlength=labels.max() + 1)
            small = sizes[labels] < self.min_cluster_size
            labels[small] = -1
            keep = np.unique(labels[labels >= 0])
            remap = np.full(labels.max() + 2, -1)
            remap[keep] = np.arange(len(keep))
            labels = np.where(labels >= 0, remap[labels], -1)
        return labels


class SklearnClusterer:
    """Any object with ``fit_predict`` (or ``fit`` + ``labels_``), cloned for every cover element.

    Like KeplerMapper, elements with fewer points than the clusterer's ``n_clusters``,
    ``min_cluster_size`` or ``min_samples`` (else 2) are not clustered: their points are noise.
    """

    name = "sklearn"

    def __init__(self, estimator: Any) -> None:
        if not (hasattr(estimator, "fit_predict") or hasattr(estimator, "fit")):
            raise AdvtopoError(
                f"clusterer={estimator!r} is not valid; allowed: 'dbscan', 'single', 'hdbscan' or an "
                "object with fit_predict(X)"
            )
        self.estimator = estimator

    def get_params(self) -> dict:
        return {"clusterer": type(self.estimator).__name__, "repr": repr(self.estimator)}

    def min_cluster_samples(self) -> int:
        params = self.estimator.get_params() if hasattr(self.estimator, "get_params") else {}
        for key in ("n_clusters", "min_cluster_size", "min_samples"):
            val = params.get(key)
            if val and isinstance(val, int):
                return val
        return 2

    def fit_labels(self, X: np.ndarray) -> np.ndarray:
        try:
            from sklearn.base import clone

            est = clone(self.estimator)
        except Exception:  # not an sklearn estimator: reuse it
            est = self.estimator
        if hasattr(est, "fit_predict"):
            labels = est.fit_predict(X)
        else:
            labels = est.fit(X).labels_
        labels = np.asarray(labels)
        labels = np.where(np.isnan(labels.astype(float)), -1, labels).astype(np.int64)
        return labels


@CLUSTERERS.register("hdbscan")
def HDBSCAN(min_cluster_size: int = 5, min_samples: int | None = None, metric: str = "euclidean") -> SklearnClusterer:
    """scikit-learn's HDBSCAN, run per cover element."""
    from sklearn.cluster import HDBSCAN as _H

    kw = {"copy": True} if "copy" in _H().get_params() else {}  # silences sklearn 1.9's FutureWarning
    return SklearnClusterer(_H(min_cluster_size=min_cluster_size, min_samples=min_samples, metric=metric, **kw))


def make_clusterer(clusterer: Any = "dbscan", metric: str = "euclidean", **params: Any) -> GraphClusterer | SklearnClusterer:
    """A clusterer from a name with params, one of ours, or an sklearn-compatible object.

    An ``sklearn.cluster.DBSCAN`` instance with a supported metric is turned into the fast,
    identical, graph-based DBSCAN.
    """
    if isinstance(clusterer, (GraphClusterer, SklearnClusterer)):
        return clusterer
    if isinstance(clusterer, str):
        check_choice("clusterer", clusterer, CLUSTERERS.names())
        if clusterer == "hdbscan":
            return HDBSCAN(metric=metric, **params)
        if clusterer == "single" and "eps" in params:
            params["threshold"] = params.pop("eps")
        if clusterer == "single":
            params.pop("min_samples", None)
        try:
            return CLUSTERERS.create(clusterer, **params)
        except TypeError as exc:
            raise AdvtopoError(f"bad parameters for clusterer {clusterer!r}: {exc}") from None
    try:
        from sklearn.cluster import DBSCAN as _SkDBSCAN

        if type(clusterer) is _SkDBSCAN:
            p = clusterer.get_params()
            if p.get("metric") in ("euclidean", "cosine") or (p.get("metric") == "minkowski" and p.get("p") in (None, 2)):
                return DBSCAN(eps=p["eps"], min_samples=p["min_samples"])
    except ImportError:  # pragma: no cover
        pass
    return SklearnClusterer(clusterer)


def sklearn_dbscan_metric(clusterer: Any) -> str | None:
    """The metric of an ``sklearn.cluster.DBSCAN`` object (None for anything else)."""
    if isinstance(clusterer, (str, GraphClusterer, SklearnClusterer)) or clusterer is None:
        return None  # no sklearn import on the default path
    try:
        from sklearn.cluster import DBSCAN as _SkDBSCAN
    except ImportError:  # pragma: no cover
        return None
    if type(clusterer) is _SkDBSCAN:
        m = clusterer.get_params().get("metric")
        return "euclidean" if m == "minkowski" else m
    return None
