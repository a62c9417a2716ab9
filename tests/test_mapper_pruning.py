"""The pivot-pruned pair build (issue 16): it skips GEMM tiles that the triangle inequality with a
few pivots proves empty, and must find exactly the pairs of the plain build, of brute force and of
KeplerMapper, on the inputs where a bound could go wrong: ties at exactly eps, duplicate rows,
clusters exactly eps apart, the cosine metric (with zero rows), the l2norm lens, empty intervals."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import DBSCAN as SkDBSCAN

import advtopo.mapper.neighbors as nb
from advtopo.mapper import Mapper, build_eps_graph, synthetic_activations

try:
    import kmapper as km
except ImportError:  # kmapper is a test dependency; only the comparison tests need it
    km = None
needs_kmapper = pytest.mark.skipif(km is None, reason="kmapper not installed")


def _pairs(g, eps: float, strict: bool = False) -> set:
    m = g.within(eps, strict=strict)
    return set(zip(g.rows[m].tolist(), g.cols[m].tolist()))


def _scores(X: np.ndarray, metric: str) -> np.ndarray:
    """Exact pair scores in float64 (differences first): distance, or cosine distance (zero rows at 1)."""
    X64 = np.asarray(X, dtype=np.float64)
    if metric == "euclidean":
        return np.sqrt(((X64[:, None] - X64[None]) ** 2).sum(-1))
    nr = np.linalg.norm(X64, axis=1)
    nr[nr == 0] = 1.0
    U = X64 / nr[:, None]
    return 1.0 - U @ U.T


def _brute(D: np.ndarray, reach: np.ndarray, eps: float, strict: bool = False) -> set:
    inside = D < eps if strict else D <= eps
    return {(i, j) for i in range(len(D)) for j in range(i + 1, int(reach[i])) if inside[i, j]}


def _blobs(n: int, d: int, seed: int, centers: int = 8, spread: float = 1.0, sep: float = 12.0) -> np.ndarray:
    """Tight clusters far apart (the pivots can prune between them), rows in random order."""
    rng = np.random.default_rng(seed)
    C = rng.normal(size=(centers, d)) * sep
    return (C[rng.integers(0, centers, n)] + rng.normal(size=(n, d)) * spread).astype(np.float32)


def _check_same(X, reach, eps_list, metric="euclidean", block=64, pivots=6):
    """The pruned build prunes, and gives the plain build's and brute force's pairs at every eps."""
    max_eps = max(eps_list)
    plain = build_eps_graph(X, reach, max_eps, metric=metric, prune="none")
    pruned = build_eps_graph(X, reach, max_eps, metric=metric, prune="pivots", prune_block_rows=block,
                             n_pivots=pivots)
    n = len(X)
    assert pruned.pruned and not plain.pruned
    assert np.all(np.diff(pruned.rows) >= 0)
    assert np.array_equal(pruned.indptr, np.searchsorted(pruned.rows, np.arange(n + 1)))
    D = _scores(X, metric)
    for eps in eps_list:
        for strict in (False, True):
            want = _brute(D, reach, eps, strict)
            assert _pairs(pruned, eps, strict) == want == _pairs(plain, eps, strict), (eps, strict)
        assert np.array_equal(pruned.compact(eps).key, plain.compact(eps).key)
    return plain, pruned


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pruned_build_equals_plain_build_and_brute_force(metric, dtype):
    rng = np.random.default_rng(3)
    n = 900
    X = _blobs(n, 24, seed=1).astype(dtype)
    if metric == "cosine":
        X = np.abs(X) + rng.uniform(0, 0.05, size=X.shape).astype(dtype)  # directions differ by cluster
    reach = np.minimum(n, np.arange(n) + 1 + rng.integers(0, 500, size=n))  # ragged, not monotone
    D = _scores(X, metric)
    q = np.quantile(D[np.triu_indices(n, 1)], [0.02, 0.08])
    plain, pruned = _check_same(X, reach, [float(q[0]), float(q[1])], metric)
    assert pruned.gemm_pairs < 0.7 * pruned.plain_pairs  # the bound really skipped tiles
    assert len(pruned.rows) <= len(plain.rows)


def test_ties_at_exactly_eps_on_an_integer_lattice():
    """Integer coordinates: many pairs at exactly eps (float32 and float64 exact); kept with <=, dropped
    with <; clusters of the lattice far apart, so tiles are pruned."""
    rng = np.random.default_rng(5)
    base = rng.integers(0, 3, size=(600, 6)).astype(np.float32)
    offsets = np.array([[0] * 6, [40] * 6, [0, 80, 0, 0, 0, 0], [0, 0, 0, 120, 0, 0]], dtype=np.float32)
    X = base + offsets[rng.integers(0, 4, 600)]
    n = len(X)
    reach = np.full(n, n)
    D = _scores(X, "euclidean")
    for eps in (1.0, 2.0, 3.0):
        assert np.count_nonzero(np.triu(D == eps, 1)) > 100  # ties present
    for dtype in (np.float32, np.float64):
        _, pruned = _check_same(X.astype(dtype), reach, [1.0, 2.0, 3.0], block=50, pivots=4)
        assert pruned.gemm_pairs < pruned.plain_pairs


def test_clusters_exactly_eps_apart_and_duplicate_rows():
    """Each cluster is copies of one point, the clusters exactly eps apart (and a far third one): the
    tile between the two near clusters has a pivot gap of exactly eps and must be computed (the
    rounding margin), every duplicate pair (distance 0) is kept, the far cluster is pruned."""
    eps = 3.0
    a = np.zeros((150, 5), dtype=np.float32)
    b = a.copy()
    b[:, 0] = eps
    far = a + 100.0
    X = np.concatenate([a, b, far, a[:40], b[:40]])  # duplicates again at the end
    order = np.random.default_rng(0).permutation(len(X))
    X = X[order]
    n = len(X)
    reach = np.full(n, n)
    _, pruned = _check_same(X, reach, [eps, 0.5 * eps], block=64, pivots=3)
    assert pruned.gemm_pairs < pruned.plain_pairs
    D = _scores(X, "euclidean")
    assert len(_pairs(pruned, eps)) == len(_brute(D, reach, eps)) > 0
    assert len(_pairs(pruned, eps, strict=True)) < len(_pairs(pruned, eps))  # the cross pairs sit at eps


def test_cosine_with_zero_rows_at_distance_one():
    """Zero rows are at cosine distance exactly 1 from every row (sklearn), but at |u - v| <= 1 in the
    pivots' space: the bound must still never drop them (eps = 1 ties with every zero-row pair)."""
    rng = np.random.default_rng(2)
    X = np.abs(_blobs(500, 10, seed=4))
    X[rng.choice(500, 25, replace=False)] = 0.0
    reach = np.full(500, 500)
    _check_same(X, reach, [0.01, 0.05], metric="cosine", block=40, pivots=5)
    _check_same(X, reach, [1.0], metric="cosine", block=40, pivots=5)


def test_auto_keeps_the_plain_build_when_the_pivots_would_not_help(monkeypatch):
    """One round Gaussian blob at a large eps: no tile can be skipped, so "auto" runs the plain build."""
    monkeypatch.setattr(nb, "PRUNE_MIN_ROWS", 0)
    X = np.random.default_rng(0).normal(size=(800, 16)).astype(np.float32)
    g = build_eps_graph(X, np.full(800, 800), 6.0)
    assert not g.pruned and g.gemm_pairs == g.plain_pairs
    clustered = build_eps_graph(_blobs(800, 16, seed=2), np.full(800, 800), 3.0)
    assert clustered.pruned and clustered.gemm_pairs < 0.6 * clustered.plain_pairs


@pytest.fixture
def always_prune(monkeypatch):
    """Every numpy pair build of the Mapper takes the pruned path, in small blocks (tests' sizes)."""
    monkeypatch.setattr(nb, "PRUNE_MIN_ROWS", 0)
    monkeypatch.setattr(nb, "PRUNE_MAX_AREA", float("inf"))
    monkeypatch.setattr(nb, "PRUNE_BLOCK_ROWS", 64)
    monkeypatch.setattr(nb, "PRUNE_PIVOTS", 6)


def _never_prune(monkeypatch):
    monkeypatch.setattr(nb, "PRUNE_MIN_ROWS", 1 << 62)


@needs_kmapper
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_mapper_graphs_with_pruning_equal_kmapper_l2norm_lens(always_prune, monkeypatch, metric):
    """The named l2norm lens (the lens the issue's bound is about) on clustered activations, one graph
    and a sweep, euclidean and cosine: identical to KeplerMapper and to the unpruned graphs."""
    X, md = synthetic_activations(1500, 24, seed=9)
    eps = 2.5 if metric == "euclidean" else 0.02
    kw = {"lens": "l2norm", "cover": "kmapper", "eps": eps, "min_samples": 5, "metric": metric}
    mp = Mapper(n_intervals=8, overlap=0.4, **kw)
    g = mp.fit(X, md)
    assert mp.pair_build_["pruned"] and mp.pair_build_["gemm_pairs"] < mp.pair_build_["plain_pairs"]
    lens = np.sqrt(np.einsum("ij,ij->i", X.astype(np.float64), X.astype(np.float64))).reshape(-1, 1)
    kg = km.KeplerMapper(verbose=0).map(lens, X, clusterer=SkDBSCAN(eps=eps, min_samples=5, metric=metric),
                                        cover=km.Cover(n_cubes=8, perc_overlap=0.4))
    assert g.n_nodes > 3 and g.to_kmapper()["nodes"] == dict(kg["nodes"])
    swept = Mapper(**kw).sweep(X, n_intervals=[5, 11], overlap=[0.2, 0.5], eps=[eps, 0.6 * eps], metadata=md)
    _never_prune(monkeypatch)
    plain = Mapper(**kw).sweep(X, n_intervals=[5, 11], overlap=[0.2, 0.5], eps=[eps, 0.6 * eps], metadata=md)
    assert all(swept[k].to_dict() == plain[k].to_dict() for k in plain)
    assert Mapper(n_intervals=8, overlap=0.4, **kw).fit(X, md).to_dict() == g.to_dict()


@needs_kmapper
def test_mapper_with_pruning_and_empty_intervals_equals_kmapper(always_prune):
    """A lens with a wide gap (two populations of very different norms): several cover elements hold
    no row, blocks straddle the gap; DBSCAN noise and border rows at a small eps."""
    rng = np.random.default_rng(11)
    X = np.concatenate([_blobs(500, 12, seed=6, spread=0.8), 60 + _blobs(400, 12, seed=7, spread=0.8)])
    X = X[rng.permutation(len(X))]
    lens = np.sqrt(np.einsum("ij,ij->i", X.astype(np.float64), X.astype(np.float64)))
    for eps, ms in ((4.0, 5), (3.0, 3)):
        mp = Mapper(lens=lens, cover="kmapper", n_intervals=25, overlap=0.3, eps=eps, min_samples=ms)
        g = mp.fit(X)
        assert mp.pair_build_["pruned"]
        kg = km.KeplerMapper(verbose=0).map(lens.reshape(-1, 1), X, clusterer=SkDBSCAN(eps=eps, min_samples=ms),
                                            cover=km.Cover(n_cubes=25, perc_overlap=0.3))
        assert len(g.elements) < 25  # empty elements dropped, as KeplerMapper does
        assert g.n_nodes > 0 and g.to_kmapper()["nodes"] == dict(kg["nodes"])


def test_single_linkage_and_2d_cover_with_pruning_equal_unpruned(always_prune, monkeypatch):
    """The other consumers of the pair list: single linkage (strict threshold) and a 2-D cover (the
    masked candidate path)."""
    X, md = synthetic_activations(1200, 20, seed=4)
    a = Mapper(clusterer="single", eps=1.5, n_intervals=7, overlap=0.3).fit(X, md).to_dict()
    b = Mapper(lens=("pca", {"n_components": 2}), n_intervals=(4, 3), overlap=0.3, eps=2.0).fit(X, md).to_dict()
    _never_prune(monkeypatch)
    assert Mapper(clusterer="single", eps=1.5, n_intervals=7, overlap=0.3).fit(X, md).to_dict() == a
    assert Mapper(lens=("pca", {"n_components": 2}), n_intervals=(4, 3), overlap=0.3, eps=2.0).fit(X, md).to_dict() == b


def test_compiled_compact_equals_numpy_compact(monkeypatch):
    """The one-pass compiled key compaction gives the numpy passes' sorted keys (strict and not)."""
    rng = np.random.default_rng(8)
    n = 1500
    X = _blobs(n, 12, seed=3)
    reach = np.minimum(n, np.arange(n) + 1 + rng.integers(0, 700, size=n))
    g = build_eps_graph(X, reach, 4.0, prune="pivots", prune_block_rows=128, n_pivots=5)
    compiled = [g.compact(e, strict=s).key for e in (4.0, 2.5) for s in (False, True)]
    monkeypatch.setattr(nb, "HAVE_NUMBA", False)
    fallback = [g.compact(e, strict=s).key for e in (4.0, 2.5) for s in (False, True)]
    assert len(compiled[0]) > 1000
    for a, b in zip(compiled, fallback):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_tiny_inputs_and_rows_without_candidates():
    """1, 2, 3 and 17 rows; every reach ending at the row itself (no candidate pair at all) or at the end."""
    for n in (1, 2, 3, 17):
        X = np.random.default_rng(n).normal(size=(n, 4)).astype(np.float32)
        for reach in (np.arange(1, n + 1), np.full(n, n)):
            a = build_eps_graph(X, reach, 1.5, prune="pivots", prune_block_rows=4, n_pivots=3)
            b = build_eps_graph(X, reach, 1.5, prune="none")
            assert a.pruned and _pairs(a, 1.5) == _pairs(b, 1.5) == _brute(_scores(X, "euclidean"), reach, 1.5)
            assert np.array_equal(a.compact(1.5).key, b.compact(1.5).key)
