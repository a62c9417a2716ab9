"""The ``Mapper`` estimator and parameter sweeps.

Pipeline: lens -> cover -> per cover element clustering -> nodes -> nerve (edges).
DBSCAN / single linkage use one shared eps-neighbour graph (see ``neighbors``); other
clusterers run per element on the element's rows.
"""
from __future__ import annotations

import inspect
import itertools
import os
from concurrent.futures import ThreadPoolExecutor
import time
import warnings
from typing import Any

import numpy as np

from advtopo.errors import AdvtopoError, check_choice, did_you_mean
from advtopo.mapper._checks import check_n_jobs, is_default
from advtopo.mapper._kernels import HAVE_NUMBA, element_dbscan
from advtopo.mapper.clusterers import GraphClusterer, SklearnClusterer, make_clusterer, sklearn_dbscan_metric
from advtopo.mapper.cover import Cover, CoverElements, make_cover
from advtopo.mapper.graph import MapperGraph, normalize_metadata
from advtopo.mapper.lenses import compute_lens, lens_name
from advtopo.mapper.neighbors import METRICS, EdgeList, EpsGraph, _as_float_matrix, auto_eps, build_eps_graph
from advtopo.mapper.params import MapperParams


class _Sorted:
    """Rows sorted by the first lens coordinate (stable), so 1-D cover elements are contiguous ranges."""

    def __init__(self, lens: np.ndarray) -> None:
        self.lens = lens
        self.order = np.argsort(lens[:, 0], kind="stable")
        self.lens_sorted = lens[self.order]
        self.l0 = self.lens_sorted[:, 0]

    def ranges(self, ce: CoverElements) -> tuple[np.ndarray, np.ndarray]:
        a = np.searchsorted(self.l0, ce.lo[:, 0], side="left")
        b = np.searchsorted(self.l0, ce.hi[:, 0], side="right")
        return a, np.maximum(a, b)

    def reach(self, covers: list[CoverElements]) -> np.ndarray:
        n = len(self.l0)
        reach = np.arange(1, n + 1, dtype=np.int64)
        for ce in covers:
            a, b = self.ranges(ce)
            for ai, bi in zip(a, b):
                if bi > ai:
                    np.maximum(reach[ai:bi], bi, out=reach[ai:bi])
        return reach

    def member_mask(self, ce: CoverElements, e: int, a: int, b: int) -> np.ndarray | None:
        """For 2-D elements: mask over positions a..b-1 of the rows inside the box (None for 1-D)."""
        if ce.lo.shape[1] == 1:
            return None
        seg = self.lens_sorted[a:b]
        return np.all((seg >= ce.lo[e]) & (seg <= ce.hi[e]), axis=1)


def _cluster_cover(
    X: np.ndarray,
    srt: _Sorted,
    ce: CoverElements,
    clusterer: GraphClusterer | SklearnClusterer,
    graph: EpsGraph | None,
    edge_mask: np.ndarray | None,
    engine: Any = None,
    eps: float | None = None,
    edges: EdgeList | None = None,
    n_jobs: int = 1,
) -> tuple[list[np.ndarray], list[tuple], list[int], list[dict]]:
    """Cluster every element: returns node members, node elements, node cluster ids, element info.

    Graph clusterers take the element's edges from ``edges`` (1-D covers: exactly the
    element's edges, by binary search) or else from ``graph`` restricted by ``edge_mask``.
    """
    members, node_el, node_cl, elements = [], [], [], []
    a_all, b_all = srt.ranges(ce)
    compiled = None
    if (isinstance(clusterer, GraphClusterer) and engine is None and edges is not None and HAVE_NUMBA
            and ce.lo.shape[1] == 1):
        compiled = _compiled_labels(edges, a_all, b_all, srt.order, clusterer, n_jobs)
    for e in range(len(ce)):
        a, b = int(a_all[e]), int(b_all[e])
        mask = srt.member_mask(ce, e, a, b)
        pos = np.arange(a, b) if mask is None else a + np.flatnonzero(mask)
        m = len(pos)
        orig = srt.order[pos]
        if isinstance(clusterer, GraphClusterer) and engine is not None:
            raw = engine.labels(pos, orig, eps, clusterer.min_samples, strict=clusterer.strict)
            labels = clusterer.labels_from_graph(m, *_relabel_only(raw)) if clusterer.name == "single" and \
                getattr(clusterer, "min_cluster_size", 1) > 1 else raw
            rows_sorted = orig
        elif compiled is not None:
            labels = compiled[e]
            rows_sorted = orig
        elif isinstance(clusterer, GraphClusterer) and edges is not None and mask is None:
            u, v, counts = edges.restrict(a, b)
            labels = clusterer.labels_from_graph(m, u, v, orig, u_counts=counts)
            rows_sorted = orig
        elif isinstance(clusterer, GraphClusterer):
            lo_i, hi_i = graph.indptr[a], graph.indptr[b]
            r = graph.rows[lo_i:hi_i]
            c = graph.cols[lo_i:hi_i]
            sel = edge_mask[lo_i:hi_i] & (c < b)
            if mask is not None:
                sel &= mask[r - a] & mask[np.minimum(c, b - 1) - a]
                loc = np.full(b - a, -1, dtype=np.int64)
                loc[mask] = np.arange(m)
                u, v = loc[r[sel] - a], loc[c[sel] - a]
            else:
                u, v = r[sel] - a, c[sel] - a
            labels = clusterer.labels_from_graph(m, u, v, orig)
            rows_sorted = orig
        else:
            rows_sorted = np.sort(orig)
            if m >= clusterer.min_cluster_samples() and m > 0:
                labels = clusterer.fit_labels(np.asarray(X[rows_sorted]))
            else:
                labels = np.full(m, -1, dtype=np.int64)
        n_clusters = int(labels.max()) + 1 if m and labels.max() >= 0 else 0
        if n_clusters:
            keyed = np.lexsort((rows_sorted, labels))
            lab_sorted = labels[keyed]
            rows_k = rows_sorted[keyed]
            starts = np.searchsorted(lab_sorted, np.arange(n_clusters + 1), side="left")
            for k in range(n_clusters):
                mem = rows_k[starts[k]:starts[k + 1]]
                if len(mem):
                    members.append(mem)
                    node_el.append(ce.grid[e])
                    node_cl.append(k)
        noise = np.sort(rows_sorted[labels < 0]) if m else np.zeros(0, dtype=np.int64)
        elements.append({"element": list(ce.grid[e]), "lo": ce.lo[e].tolist(), "hi": ce.hi[e].tolist(),
                         "n_points": int(m), "n_clusters": n_clusters, "n_noise": int(len(noise)),
                         "noise_rows": noise.tolist()})
    return members, node_el, node_cl, elements


def _compiled_labels(edges: EdgeList, a_all: np.ndarray, b_all: np.ndarray, order: np.ndarray,
                     clusterer: GraphClusterer, n_jobs: int) -> list[np.ndarray]:
    """Labels of every 1-D element by the numba kernel, elements spread over ``n_jobs`` threads
    (the kernel releases the GIL; each element is independent, so the result does not depend
    on the thread count)."""
    def one(e: int) -> np.ndarray:
        a, b = int(a_all[e]), int(b_all[e])
        return clusterer.finish(element_dbscan(edges.key, edges.indptr, edges.n, a, b, order[a:b],
                                               clusterer.min_samples))

    n_el = len(a_all)
    if n_jobs <= 1 or n_el < 2:
        return [one(e) for e in range(n_el)]
    with ThreadPoolExecutor(max_workers=min(n_jobs, n_el)) as pool:
        return list(pool.map(one, range(n_el)))


def _relabel_only(labels: np.ndarray):
    """(m, u, v, orig) of a graph whose components are the given clusters (for min_cluster_size filtering)."""
    m = len(labels)
    order = np.lexsort((np.arange(m), labels))
    lab = labels[order]
    same = (lab[1:] == lab[:-1]) & (lab[1:] >= 0)
    u, v = order[:-1][same], order[1:][same]
    return m, np.minimum(u, v), np.maximum(u, v), np.arange(m)


_DEFAULT = MapperParams()  # the defaults of the signature below: one source, MapperParams


class Mapper:
    """Mapper graphs of a point cloud (scikit-learn style: configure, then ``fit``).

    Parameters
    ----------
    lens: name (see ``LENSES``), ``(name, params)``, list of two 1-D lenses, array or callable.
    cover: ``"uniform"`` | ``"kmapper"`` (KeplerMapper 2.1.0 exact) | ``"balanced"`` or a Cover.
    n_intervals, overlap: cover resolution (int or one per lens dimension); overlap in [0, 1).
    clusterer: ``"dbscan"`` | ``"single"`` | ``"hdbscan"`` or any object with ``fit_predict``.
    eps: DBSCAN eps / single-linkage threshold, a number or ``"auto"`` (k-distance knee).
    min_samples: DBSCAN min_samples (the row itself counts, as in sklearn).
    metric: ``"euclidean"`` or ``"cosine"``.
    backend/device: ``"numpy"`` (BLAS) or ``"torch"`` (``device="cuda"`` on a GPU) for the neighbour graph.
    n_jobs: threads for clustering the cover elements (-1: all cores, like the BLAS pair build;
        the graph does not depend on it).

    ``__init__`` only stores its arguments; ``fit`` checks them (:meth:`MapperParams.validate`).
    ``get_params``/``set_params`` read the signature, as scikit-learn's do, so
    ``sklearn.base.clone`` works; :meth:`from_params` / :meth:`to_params` convert from and to
    the typed :class:`MapperParams`.
    """

    def __init__(
        self,
        lens: Any = _DEFAULT.lens,
        cover: str | Cover = _DEFAULT.cover,
        clusterer: Any = _DEFAULT.clusterer,
        metric: str = _DEFAULT.metric,
        n_intervals: int | tuple = _DEFAULT.n_intervals,
        overlap: float | tuple = _DEFAULT.overlap,
        eps: float | str = _DEFAULT.eps,
        min_samples: int = _DEFAULT.min_samples,
        backend: str = _DEFAULT.backend,
        device: str | None = _DEFAULT.device,
        block_bytes: int = _DEFAULT.block_bytes,
        keep_means: bool = _DEFAULT.keep_means,
        random_state: int | None = _DEFAULT.random_state,
        verbose: bool = _DEFAULT.verbose,
        n_jobs: int = _DEFAULT.n_jobs,
    ) -> None:
        self.lens = lens
        self.cover = cover
        self.clusterer = clusterer
        self.metric = metric
        self.n_intervals = n_intervals
        self.overlap = overlap
        self.eps = eps
        self.min_samples = min_samples
        self.backend = backend
        self.device = device
        self.block_bytes = block_bytes
        self.keep_means = keep_means
        self.random_state = random_state
        self.verbose = verbose
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        """The ``__init__`` parameters, read from the signature (scikit-learn's rule: no hand-kept list)."""
        params = inspect.signature(cls.__init__).parameters.values()
        return [p.name for p in params if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Every ``__init__`` parameter and its value (``deep`` is accepted for scikit-learn's
        ``clone``; a clusterer object's own parameters are not expanded)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> "Mapper":
        """Set parameters by name (unknown names are refused with a suggestion); returns self."""
        names = self._param_names()
        for key, value in params.items():
            if key not in names:
                raise AdvtopoError(f"unknown Mapper parameter {key!r}{did_you_mean(key, names)}; "
                                   f"allowed: {', '.join(names)}")
            setattr(self, key, value)
        return self

    @classmethod
    def from_params(cls, params: MapperParams) -> "Mapper":
        """A Mapper with the parameters of ``params`` (checked by ``fit``, or before by ``params.validate``)."""
        if not isinstance(params, MapperParams):
            raise AdvtopoError(f"Mapper.from_params needs a MapperParams, got {type(params).__name__}; "
                               "use Mapper(**kwargs) or MapperParams.from_dict(d)")
        return cls(**params.kwargs())

    def to_params(self) -> MapperParams:
        """The parameters as a :class:`MapperParams`."""
        return MapperParams(**self.get_params())

    def __repr__(self) -> str:
        """The parameters that differ from the defaults, as scikit-learn prints estimators."""
        changed = {k: v for k, v in self.get_params().items() if not is_default(v, getattr(_DEFAULT, k))}
        return "Mapper(" + ", ".join(f"{k}={v!r}" for k, v in changed.items()) + ")"

    # ------------------------------------------------------------------ helpers
    def _n_jobs(self) -> int:
        n = check_n_jobs(self.n_jobs)
        if n == -1:
            try:
                return len(os.sched_getaffinity(0))
            except AttributeError:  # pragma: no cover - not on Linux
                return os.cpu_count() or 1
        return int(n)

    def _metric(self) -> str:
        metric = sklearn_dbscan_metric(self.clusterer) or self.metric
        check_choice("metric", metric, METRICS)
        return metric

    def _clusterer(self, eps: Any = None):
        if isinstance(self.clusterer, str):
            params: dict = {}
            if self.clusterer in ("dbscan", "single"):
                params["eps"] = self.eps if eps is None else eps
            if self.clusterer == "dbscan":
                params["min_samples"] = self.min_samples
            return make_clusterer(self.clusterer, metric=self._metric(), **params)
        return make_clusterer(self.clusterer, metric=self._metric())

    def _prepare(self, X, metadata, lens, n_samples: bool = True):
        """X as a float matrix, the metadata, metric and lens; every parameter is checked first
        (with the row count unless ``n_samples`` is False: a sweep checks each setting)."""
        X = _as_float_matrix(X)
        params = self.to_params() if lens is None else self.to_params().replace(lens=lens)
        params.validate(n_samples=len(X) if n_samples else None)
        md = normalize_metadata(metadata, len(X))
        metric = self._metric()
        lens_arr = compute_lens(params.lens, X, md, metric)
        return X, md, metric, lens_arr

    def _resolve_eps(self, clusterer, X, metric):
        if isinstance(clusterer, GraphClusterer) and clusterer.eps == "auto":
            k = clusterer.min_samples if clusterer.name == "dbscan" else 2
            return auto_eps(X, max(k, 2), metric, random_state=self.random_state, backend=self.backend,
                            device=self.device)
        return clusterer.eps if isinstance(clusterer, GraphClusterer) else None

    def _engine(self, X, srt, metric):
        from advtopo.mapper.neighbors import _torch_device
        from advtopo.mapper.torch_dbscan import TorchElementDBSCAN

        return TorchElementDBSCAN(X[srt.order], metric, _torch_device(self.device))

    def _graph(self, X, md, lens_arr, srt, ce, clusterer, eps_graph, edge_mask, params, engine=None,
               eps=None, edges=None) -> MapperGraph:
        members, node_el, node_cl, elements = _cluster_cover(X, srt, ce, clusterer, eps_graph, edge_mask,
                                                             engine=engine, eps=eps, edges=edges,
                                                             n_jobs=self._n_jobs())
        if getattr(self, "_row_l2_for", None) is not X:
            self._row_l2 = np.sqrt(np.einsum("ij,ij->i", X, X, dtype=np.float64))
            self._row_l2_for = X
        row_l2 = self._row_l2
        means = np.array([X[m].mean(axis=0) for m in members]) if self.keep_means and members else None
        return MapperGraph(members, node_el, len(X), lens=lens_arr, metadata=md, row_l2=row_l2, params=params,
                           elements=elements, node_cluster=node_cl, node_means=means)

    def _params(self, ce: CoverElements, clusterer, eps, metric) -> dict:
        p = {"lens": lens_name(self.lens), "cover": ce.kind, "n_intervals": ce.params["n_intervals"],
             "overlap": ce.params["overlap"], "metric": metric}
        if isinstance(clusterer, GraphClusterer):
            cp = clusterer.get_params()
            p.update(cp)
            p["eps_requested"] = cp["eps"]
            p["eps"] = float(eps)
        else:
            p.update(clusterer.get_params())
        return p

    # ------------------------------------------------------------------ public
    def fit(self, X: np.ndarray, metadata: Any = None, lens: Any = None) -> MapperGraph:
        """Build the mapper graph of the rows of X (metadata: per-row columns label/prediction/...)."""
        t0 = time.perf_counter()
        tm: dict[str, float] = {}
        X, md, metric, lens_arr = self._prepare(X, metadata, lens)
        ce = make_cover(self.cover, self.n_intervals, self.overlap).fit(lens_arr)
        clusterer = self._clusterer()
        srt = _Sorted(lens_arr)
        tm["lens_cover"] = time.perf_counter() - t0
        eps = self._resolve_eps(clusterer, X, metric)
        tm["auto_eps"] = time.perf_counter() - t0 - sum(tm.values())
        eps_graph = edge_mask = engine = edges = None
        if isinstance(clusterer, GraphClusterer) and self.backend == "torch":
            engine = self._engine(X, srt, metric)
            tm["to_device"] = time.perf_counter() - t0 - sum(tm.values())
        elif isinstance(clusterer, GraphClusterer):
            eps_graph = build_eps_graph(X[srt.order], srt.reach([ce]), eps, metric, backend=self.backend,
                                        device=self.device, block_bytes=self.block_bytes)
            tm["neighbour_graph"] = time.perf_counter() - t0 - sum(tm.values())
            edge_mask = eps_graph.within(eps, strict=clusterer.strict)
            self.n_candidate_edges_ = len(eps_graph.rows)
            self.pair_build_ = eps_graph.build_stats()
            if ce.lo.shape[1] == 1:  # 1-D cover: compact sorted edge list, the candidate arrays are freed
                edges = eps_graph.compact(eps, mask=edge_mask)
                eps_graph = edge_mask = None
            tm["threshold"] = time.perf_counter() - t0 - sum(tm.values())
        g = self._graph(X, md, lens_arr, srt, ce, clusterer, eps_graph, edge_mask, self._params(ce, clusterer, eps, metric),
                        engine=engine, eps=eps, edges=edges)
        tm["clusters_and_nerve"] = time.perf_counter() - t0 - sum(tm.values())
        self.timings_ = tm
        if g.n_nodes == 0:
            warnings.warn(f"the mapper graph is empty: all {g.n_points} rows are noise (eps={eps!r}, "
                          f"min_samples={self.min_samples}); try a larger eps or eps='auto'", stacklevel=2)
        if eps_graph is not None:
            self.n_candidate_edges_ = len(eps_graph.rows)
        elif edges is None:
            self.n_candidate_edges_ = 0
        self.graph_ = g
        self.lens_ = lens_arr
        self.eps_ = eps
        self.fit_seconds_ = time.perf_counter() - t0
        return g

    def sweep(
        self,
        X: np.ndarray,
        n_intervals: list = (10,),
        overlap: list = (0.3,),
        eps: list | None = None,
        metadata: Any = None,
        lens: Any = None,
    ) -> dict[tuple, MapperGraph]:
        """Graphs for every (n_intervals, overlap, eps) in the grid, sharing the lens, the sort and
        one neighbour graph (computed for the widest cover and the largest eps).

        Returns {(n_intervals, overlap, eps_requested): MapperGraph} in grid order.
        """
        X, md, metric, lens_arr = self._prepare(X, metadata, lens, n_samples=False)
        eps_list = list(eps) if eps is not None else [self.eps]
        if not eps_list or not list(n_intervals) or not list(overlap):
            raise AdvtopoError("sweep needs at least one value of n_intervals, overlap and eps")
        # the grid's covers are of the Mapper's cover kind, at each grid resolution: check each setting
        kind = self.cover if isinstance(self.cover, str) else getattr(self.cover, "kind", "uniform")
        grid_params = self.to_params().replace(lens=lens_arr, cover=kind)
        for n_i, ov, e in itertools.product(n_intervals, overlap, eps_list):
            grid_params.replace(n_intervals=n_i, overlap=ov, eps=e).validate(n_samples=len(X))
        srt = _Sorted(lens_arr)
        covers = {}
        for n_i, ov in itertools.product(n_intervals, overlap):
            key = (n_i if np.ndim(n_i) == 0 else tuple(n_i), ov if np.ndim(ov) == 0 else tuple(ov))
            covers[key] = make_cover(kind, n_i, ov).fit(lens_arr)
        clusterers = {e: self._clusterer(e) for e in eps_list}
        resolved = {e: self._resolve_eps(c, X, metric) for e, c in clusterers.items()}
        graph_based = all(isinstance(c, GraphClusterer) for c in clusterers.values())
        eps_graph = engine = None
        if graph_based and self.backend == "torch":
            engine = self._engine(X, srt, metric)
        elif graph_based:
            eps_graph = build_eps_graph(X[srt.order], srt.reach(list(covers.values())), max(resolved.values()),
                                        metric, backend=self.backend, device=self.device, block_bytes=self.block_bytes)
            self.pair_build_ = eps_graph.build_stats()
        out: dict[tuple, MapperGraph] = {}
        grid = [(k, e) for k in covers for e in eps_list]
        bar = None
        if self.verbose:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(grid), desc="mapper sweep")
        masks: dict = {}
        edge_lists: dict = {}
        if eps_graph is not None and all(ce.lo.shape[1] == 1 for ce in covers.values()):
            # 1-D covers: one compact sorted edge list per eps, then the candidate arrays are freed;
            # every element of every setting then reads exactly its own edges (binary search)
            for e in eps_list:
                if e not in edge_lists:
                    edge_lists[e] = eps_graph.compact(resolved[e], strict=clusterers[e].strict)
            eps_graph = None
        for (n_i, ov), e in grid:
            cl = clusterers[e]
            mask = None
            if eps_graph is not None:
                if e not in masks:
                    masks[e] = eps_graph.within(resolved[e], strict=cl.strict)
                mask = masks[e]
            ce = covers[(n_i, ov)]
            out[(n_i, ov, e)] = self._graph(X, md, lens_arr, srt, ce, cl, eps_graph, mask,
                                            self._params(ce, cl, resolved[e], metric), engine=engine, eps=resolved[e],
                                            edges=edge_lists.get(e))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        return out


def mapper_sweep(X: np.ndarray, n_intervals: list, overlap: list, eps: list | None = None,
                 metadata: Any = None, **mapper_kw: Any) -> dict[tuple, MapperGraph]:
    """Functional form of :meth:`Mapper.sweep`."""
    return Mapper(**mapper_kw).sweep(X, n_intervals=n_intervals, overlap=overlap, eps=eps, metadata=metadata)
