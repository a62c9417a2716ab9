"""Mapper engine: exactness vs sklearn/KeplerMapper, covers, statistics, exports, sweeps, CLI."""
from __future__ import annotations

import functools
import json

import networkx as nx
import numpy as np
import pytest
from sklearn.cluster import DBSCAN as SkDBSCAN
from sklearn.cluster import AgglomerativeClustering, KMeans

from advtopo.errors import AdvtopoError
from advtopo.mapper import (
    LENSES, Mapper, MapperGraph, build_eps_graph, compute_lens, dbscan_labels, k_distance, make_cover,
    mapper_sweep, point_purity, rank_vulnerable, roc_auc, synthetic_activations, vulnerability_auc,
    vulnerability_scores,
)

try:
    import kmapper as km
except ImportError:  # kmapper is a test dependency; only the comparison tests need it
    km = None
needs_kmapper = pytest.mark.skipif(km is None, reason="kmapper not installed")


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pa = {frozenset(np.flatnonzero(a == k).tolist()) for k in np.unique(a) if k >= 0}
    pb = {frozenset(np.flatnonzero(b == k).tolist()) for k in np.unique(b) if k >= 0}
    return pa == pb and np.array_equal(a < 0, b < 0)


def _datasets():
    from sklearn.datasets import load_digits, make_blobs, make_circles

    X1, md1 = synthetic_activations(1500, 32, seed=1)
    X2, _ = make_blobs(1200, n_features=8, centers=6, cluster_std=1.5, random_state=3)
    X3, _ = make_circles(800, noise=0.06, factor=0.5, random_state=0)
    X4 = load_digits().data[:900]
    return {"synthetic": (X1, 3.5), "blobs": (X2, 3.5), "circles": (X3, 0.08), "digits": (X4, 23.0)}


DATA = _datasets()


def _km_nodes(lens, X, n, p, clusterer):
    g = km.KeplerMapper(verbose=0).map(lens, X, clusterer=clusterer, cover=km.Cover(n_cubes=n, perc_overlap=p))
    return dict(g["nodes"]), g


# ---------------------------------------------------------------- exactness vs sklearn / kmapper

@needs_kmapper
@pytest.mark.parametrize("name", list(DATA))
@pytest.mark.parametrize("n,p,ms", [(10, 0.3, 5), (6, 0.5, 3), (15, 0.15, 8)])
def test_kmapper_exact_memberships(name, n, p, ms):
    X, eps = DATA[name]
    lens = np.sqrt((np.asarray(X, dtype=np.float64) ** 2).sum(1)) if name != "circles" else X[:, 0]
    ours = Mapper(lens=lens, cover="kmapper", n_intervals=n, overlap=p, eps=eps, min_samples=ms).fit(X)
    theirs, kg = _km_nodes(lens.reshape(-1, 1), X, n, p, SkDBSCAN(eps=eps, min_samples=ms))
    assert len(theirs) > 0
    assert ours.to_kmapper()["nodes"] == theirs
    # edges equal too
    ours_links = {k: sorted(v) for k, v in ours.to_kmapper()["links"].items()}
    assert ours_links == {k: sorted(v) for k, v in kg["links"].items() if v}


@needs_kmapper
@pytest.mark.parametrize("name", ["synthetic", "digits"])
def test_kmapper_exact_2d_lens_and_cosine(name):
    X, eps = DATA[name]
    lens = np.c_[np.asarray(X, np.float64).mean(1), np.asarray(X, np.float64).std(1)]
    ours = Mapper(lens=lens, cover="kmapper", n_intervals=(5, 4), overlap=(0.4, 0.3), eps=eps, min_samples=4).fit(X)
    theirs, _ = _km_nodes(lens, X, [5, 4], [0.4, 0.3], SkDBSCAN(eps=eps, min_samples=4))
    assert len(theirs) > 0 and ours.to_kmapper()["nodes"] == theirs
    # cosine metric, passing sklearn's DBSCAN object itself
    sk = SkDBSCAN(eps=0.02 if name == "synthetic" else 0.05, min_samples=4, metric="cosine")
    ours = Mapper(lens=lens[:, 0], cover="kmapper", n_intervals=8, overlap=0.4, clusterer=sk).fit(X)
    theirs, _ = _km_nodes(lens[:, :1], X, 8, 0.4, sk)
    assert len(theirs) > 0 and ours.to_kmapper()["nodes"] == theirs


@needs_kmapper
def test_kmapper_exact_generic_clusterer():
    X, _ = DATA["blobs"]
    lens = X[:, 0]
    est = KMeans(n_clusters=3, n_init=3, random_state=0)
    ours = Mapper(lens=lens, cover="kmapper", n_intervals=5, overlap=0.3, clusterer=est).fit(X)
    theirs, _ = _km_nodes(lens.reshape(-1, 1), X, 5, 0.3, est)
    assert ours.to_kmapper()["nodes"] == theirs


def test_dbscan_labels_equal_sklearn_labels_exactly():
    rng = np.random.default_rng(0)
    for trial in range(5):
        X = np.r_[rng.normal(0, 1, (150, 3)), rng.normal(2.2, 1, (150, 3)), rng.uniform(-4, 6, (60, 3))]
        X = X[rng.permutation(len(X))]
        eps, ms = 0.55 + 0.05 * trial, 6 + trial
        sk = SkDBSCAN(eps=eps, min_samples=ms).fit_predict(X)
        D = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))
        u, v = np.nonzero(np.triu(D <= eps, 1))
        ours = dbscan_labels(len(X), u, v, np.arange(len(X)), ms)
        assert (sk >= 0).sum() > 50 and len(np.unique(sk)) > 2
        np.testing.assert_array_equal(ours, sk)  # same labels, not only the same partition


def test_single_linkage_equals_agglomerative():
    X, _ = DATA["blobs"]
    g = Mapper(lens=X[:, 0], cover="uniform", n_intervals=1, overlap=0.0, clusterer="single", eps=0.9).fit(X)
    sk = AgglomerativeClustering(n_clusters=None, linkage="single", distance_threshold=0.9).fit_predict(X)
    ours = np.full(len(X), -1)
    for k, m in enumerate(g.members):
        ours[m] = k
    assert _same_partition(ours, sk)


def test_torch_backend_equals_numpy_backend():
    X, md = DATA["synthetic"][0], None
    a = Mapper(n_intervals=4, overlap=0.4, eps=3.5, min_samples=4).fit(X)
    b = Mapper(n_intervals=4, overlap=0.4, eps=3.5, min_samples=4, backend="torch", device="cpu").fit(X)
    assert a.n_nodes > 1
    assert [m.tolist() for m in a.members] == [m.tolist() for m in b.members]


@pytest.mark.gpu
def test_torch_cuda_backend_equals_numpy_backend():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("CUDA not available")
    X = DATA["synthetic"][0]
    a = Mapper(n_intervals=8, overlap=0.4, eps=0.9, min_samples=4).fit(X)
    b = Mapper(n_intervals=8, overlap=0.4, eps=0.9, min_samples=4, backend="torch", device="cuda").fit(X)
    assert [m.tolist() for m in a.members] == [m.tolist() for m in b.members]


def test_eps_graph_small_blocks_equal_brute_force():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 20)).astype(np.float32) * 5 + 100  # large offset: cancellation-prone
    D = np.sqrt(((X[:, None].astype(np.float64) - X[None]) ** 2).sum(-1))
    eps = float(np.quantile(D[np.triu_indices(300, 1)], 0.05))
    reach = np.full(300, 300)
    g = build_eps_graph(X, reach, eps, block_bytes=4096 * 8, block_rows=17)
    mask = g.within(eps)
    got = set(zip(g.rows[mask].tolist(), g.cols[mask].tolist()))
    want = set(zip(*np.nonzero(np.triu(D <= eps, 1))))
    assert got == {(int(a), int(b)) for a, b in want}
    # thresholds a hair (1e-12 relative, far inside the float32 band) either side of a pair's distance
    def pairs(e, strict=False):
        m = g.within(e, strict=strict)
        return set(zip(g.rows[m].tolist(), g.cols[m].tolist()))

    for i, j in sorted(got)[:20]:
        e = float(D[i, j])
        assert (i, j) in pairs(e * (1 + 1e-12)) and (i, j) not in pairs(e * (1 - 1e-12))
        assert (i, j) not in pairs(e * (1 - 1e-12), strict=True)



def test_eps_graph_block_shapes_ragged_reach():
    """In-block masking (triangle, per-row reach) and the (row, col) order, for block shapes where
    the column chunk is narrower than the row block, equal to brute force; cosine too."""
    rng = np.random.default_rng(7)
    n = 700
    X = (rng.normal(size=(n, 12)) + 3).astype(np.float32)
    reach = np.minimum(n, np.arange(n) + 1 + rng.integers(0, 400, size=n))  # not monotone
    for metric in ("euclidean", "cosine"):
        if metric == "euclidean":
            D = np.sqrt(((X[:, None].astype(np.float64) - X[None]) ** 2).sum(-1))
        else:
            U = X.astype(np.float64) / np.linalg.norm(X.astype(np.float64), axis=1, keepdims=True)
            D = 1.0 - U @ U.T
        eps = float(np.quantile(D[np.triu_indices(n, 1)], 0.1))
        want = {(i, j) for i in range(n) for j in range(i + 1, int(reach[i])) if D[i, j] <= eps}
        for kw in ({}, dict(block_rows=300, block_bytes=4 * 300 * 100), dict(block_rows=33, block_bytes=4096 * 8)):
            g = build_eps_graph(X, reach, eps, metric=metric, **kw)
            assert np.all(np.diff(g.rows) >= 0) and np.array_equal(g.indptr, np.searchsorted(g.rows, np.arange(n + 1)))
            m = g.within(eps)
            assert set(zip(g.rows[m].tolist(), g.cols[m].tolist())) == want, (metric, kw)
            el = g.compact(eps, mask=m)
            assert np.all(np.diff(el.key) > 0) and len(el) == len(want)

# ---------------------------------------------------------------- covers and validation

def test_uniform_cover_arithmetic():
    lens = np.linspace(0, 10, 101)
    ce = make_cover("uniform", 4, 0.25).fit(lens)
    length = 10 / (4 - 3 * 0.25)
    np.testing.assert_allclose(ce.hi[:, 0] - ce.lo[:, 0], length)
    np.testing.assert_allclose(ce.lo[1:, 0] - ce.lo[:-1, 0], length * 0.75)
    assert ce.lo[0, 0] == 0 and ce.hi[-1, 0] == 10
    overlap = (ce.hi[:-1, 0] - ce.lo[1:, 0]) / length
    np.testing.assert_allclose(overlap, 0.25)


def test_balanced_cover_has_similar_counts():
    lens = np.random.default_rng(0).exponential(size=1000)
    ce = make_cover("balanced", 5, 0.2).fit(lens)
    counts = [ce.contains(lens, e).sum() for e in range(len(ce))]
    assert max(counts) - min(counts) <= 3
    assert np.all(np.any([ce.contains(lens, e) for e in range(len(ce))], axis=0))


@pytest.mark.parametrize("kw,match", [
    ({"overlap": 1.0}, "overlap"), ({"overlap": -0.1}, "overlap"), ({"n_intervals": 0}, "n_intervals"),
    ({"n_intervals": 2.5}, "n_intervals"), ({"n_intervals": 500}, "more than the number of points"),
])
def test_bad_cover_parameters(kw, match):
    X = np.random.default_rng(0).normal(size=(100, 4))
    with pytest.raises(AdvtopoError, match=match):
        Mapper(**{"n_intervals": 5, "overlap": 0.3, "eps": 1.0, **kw}).fit(X)


def test_constant_lens_and_bad_inputs():
    X = np.ones((50, 3))
    with pytest.raises(AdvtopoError, match="constant"):
        Mapper(eps=1.0).fit(X)
    with pytest.raises(AdvtopoError, match="metric"):
        Mapper(metric="manhattan").fit(np.random.rand(20, 3))
    with pytest.raises(AdvtopoError, match="unknown lens"):
        Mapper(lens="l3norm").fit(np.random.rand(20, 3))
    with pytest.raises(AdvtopoError, match="clusterer"):
        Mapper(clusterer="kmeanz").fit(np.random.rand(20, 3))
    with pytest.raises(AdvtopoError, match="eps"):
        Mapper(eps=-1).fit(np.random.rand(20, 3))
    with pytest.raises(AdvtopoError, match="NaN"):
        Mapper(eps=1).fit(np.array([[0.0, np.nan], [1, 2], [3, 4]]))
    with pytest.raises(AdvtopoError, match="metadata column"):
        Mapper(eps=1).fit(np.random.rand(20, 3), metadata={"label": [1, 2]})


# ---------------------------------------------------------------- lenses

def test_lenses_shapes_and_values():
    X = np.random.default_rng(0).normal(size=(200, 6))
    for name in ["l2norm", "l1norm", "mean", "max", "std", "knn_distance", "density", "eccentricity"]:
        v = compute_lens(name, X)
        assert v.shape == (200, 1) and np.all(np.isfinite(v))
    assert compute_lens(("pca", {"n_components": 2}), X).shape == (200, 2)
    assert compute_lens(["l2norm", "std"], X).shape == (200, 2)
    np.testing.assert_allclose(compute_lens("l2norm", X)[:, 0], np.linalg.norm(X, axis=1))
    from sklearn.neighbors import NearestNeighbors

    d, _ = NearestNeighbors(n_neighbors=4).fit(X).kneighbors(X)
    np.testing.assert_allclose(compute_lens(("knn_distance", {"k": 3}), X)[:, 0], d[:, 3], rtol=1e-4)
    D = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))
    np.testing.assert_allclose(compute_lens(("eccentricity", {"p": 1}), X)[:, 0], D.mean(1), rtol=1e-4)
    md = {"label": np.arange(200) % 3}
    np.testing.assert_array_equal(compute_lens(("metadata", {"column": "label"}), X, md)[:, 0], md["label"])
    assert "umap" in LENSES and "tsne" in LENSES


def test_k_distance_and_auto_eps():
    X, _ = DATA["blobs"]
    from sklearn.neighbors import NearestNeighbors

    d, _ = NearestNeighbors(n_neighbors=5).fit(X).kneighbors(X)
    np.testing.assert_allclose(k_distance(X, 5, sample=None), np.sort(d[:, 4]), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(k_distance(X, 5, sample=None, backend="torch"), np.sort(d[:, 4]), rtol=1e-4, atol=1e-5)
    g1 = Mapper(eps="auto", min_samples=5).fit(X)
    g2 = Mapper(eps="auto", min_samples=5).fit(X)
    assert g1.params["eps"] > 0 and g1.params["eps"] == g2.params["eps"]
    assert g1.params["eps_requested"] == "auto"
    assert g1.stats()["n_noise"] < len(X) // 2  # the knee keeps most points


# ---------------------------------------------------------------- graph, stats, noise

def _toy_graph() -> MapperGraph:
    members = [[0, 1, 2], [2, 3], [3, 4, 5], [6]]
    md = {"label": [0, 0, 1, 1, 1, 2, 2, 2], "prediction": [0, 1, 1, 1, 0, 2, 2, 2],
          "is_adversarial": [False, True, False, False, True, False, False, False],
          "sample_id": [10, 10, 11, 12, 12, 13, 14, 15]}
    return MapperGraph(members, [(0,), (1,), (2,), (3,)], 8, lens=np.arange(8.0), metadata=md,
                       row_l2=np.arange(8.0), elements=[{"element": [k], "n_points": 3, "n_noise": 0} for k in range(4)])


def test_graph_structure_and_stats_by_hand():
    g = _toy_graph()
    assert g.n_edges == 2 and g.n_components == 2
    assert g.noise_rows.tolist() == [7]
    assert g.edge_weight.tolist() == [1, 1]
    np.testing.assert_allclose(g.edge_jaccard, [1 / 4, 1 / 4])
    st = g.node_stats()
    assert st[0]["class_hist"] == {"0": 2, "1": 1} and st[0]["dominant_class"] == 0
    assert st[0]["purity"] == pytest.approx(2 / 3)
    assert st[0]["entropy"] == pytest.approx(-(2 / 3) * np.log2(2 / 3) - (1 / 3) * np.log2(1 / 3))
    assert st[0]["frac_adversarial"] == pytest.approx(1 / 3) and st[0]["frac_misclassified"] == pytest.approx(1 / 3)
    assert st[2]["mean_l2"] == pytest.approx(4.0)
    pp = g.point_purity()
    assert pp[2] == pytest.approx((1 / 2 + 1) / 2) and pp[0] == pytest.approx(0.5) and pp[6] == 1.0
    assert np.isnan(pp[7])
    gs = g.stats()
    assert gs["mean_purity"] == pytest.approx((3 * 2 / 3 + 2 * 1 + 3 * 2 / 3 + 1) / 9)
    assert gs["n_noise"] == 1 and gs["noise_rows"] == [7]
    # adversarial row 1 (pred 1) sits in node 0 (dominant 0); row 4 (pred 0) in node 2 (dominant 1)
    assert gs["adv_pred_dominance"] == 0.0
    # node 0: clean labels {0,1}, fooled adv preds {1} -> shared; node 2: clean {1,2}, adv preds {0} -> not
    assert gs["shared_node_fraction"] == pytest.approx(1 / 4)
    assert g.shortest_path(0, 2) == [0, 1, 2] and g.shortest_path(0, 3) == []
    assert g.nodes_of_row(2) == [0, 1]


def test_vulnerability_and_auc():
    g = _toy_graph()
    v = vulnerability_scores(g)
    assert v[0] == pytest.approx(1 / 3) and v[7] == 1.0 and v[6] == 0.0
    assert v[2] == pytest.approx(((1 - 1 / 3) + (1 - 2 / 2)) / 2)
    ranked = rank_vulnerable(g)
    assert [r["row"] for r in ranked][:2] == [7, 5] and all(r["row"] not in (1, 4) for r in ranked)
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    s, y = rng.random(200).round(1), rng.random(200) < 0.3
    assert roc_auc(s, y) == pytest.approx(roc_auc_score(y, s))
    fooled = np.array([1, 1, 0, 0, 0, 1], bool)
    assert 0.0 <= vulnerability_auc(g, fooled) <= 1.0
    with pytest.raises(AdvtopoError):
        vulnerability_auc(g, fooled[:3])


def test_noise_is_counted_never_dropped():
    X, md = synthetic_activations(1000, 16, seed=2)
    g = Mapper(n_intervals=6, overlap=0.3, eps=0.8, min_samples=8).fit(X, md)
    covered = np.zeros(len(X), bool)
    for m in g.members:
        covered[m] = True
    assert g.stats()["n_noise"] == int((~covered).sum()) > 0
    assert set(g.stats()["noise_rows"]) == set(np.flatnonzero(~covered).tolist())
    for el in g.elements:  # every element's points are in its clusters or its noise
        in_nodes = sum(len(m) for m, e in zip(g.members, g.node_elements) if list(e) == el["element"])
        assert in_nodes + el["n_noise"] == el["n_points"]


def test_metadata_dataframe_and_stats_on_mapper_output():
    import pandas as pd

    X, md = synthetic_activations(800, 16, adversarial_fraction=0.5, seed=3)
    g = Mapper(n_intervals=5, overlap=0.3, eps="auto").fit(X, pd.DataFrame(md))
    st = g.stats()
    assert 0 < st["mean_purity"] <= 1 and st["adv_pred_dominance"] is not None
    assert st["mean_point_purity_clean"] >= st["mean_point_purity_adversarial"]


# ---------------------------------------------------------------- contract JSON and exports

CONTRACT_NODE_KEYS = {"id", "members", "size", "cover_element", "class_hist", "dominant_class", "purity", "entropy",
                      "frac_adversarial", "frac_misclassified", "mean_lens", "mean_l2"}


def test_to_dict_contract_and_roundtrip(tmp_path):
    X, md = synthetic_activations(600, 16, adversarial_fraction=0.3, seed=4)
    g = Mapper(n_intervals=6, overlap=0.3, eps="auto", min_samples=4).fit(X, md)
    d = g.to_dict()
    text = json.dumps(d, allow_nan=False)  # strict JSON: no NaN
    assert {"params", "points", "nodes", "edges", "stats", "point_purity"} <= set(d)
    assert {"sample_id", "label", "prediction", "is_adversarial", "lens"} <= set(d["points"])
    assert all(len(v) == 600 for v in d["points"].values())
    assert {"lens", "n_intervals", "overlap"} <= set(d["params"])
    assert d["nodes"] and CONTRACT_NODE_KEYS <= set(d["nodes"][0])
    assert d["edges"] and {"source", "target", "weight", "jaccard"} <= set(d["edges"][0])
    assert {"n_nodes", "n_edges", "n_components", "n_noise", "noise_rows", "mean_purity", "mean_entropy"} <= set(d["stats"])
    assert len(d["point_purity"]) == 600
    assert isinstance(d["points"]["label"][0], int) and isinstance(d["points"]["is_adversarial"][0], bool)
    g.save(tmp_path / "g.json")
    again = MapperGraph.load(tmp_path / "g.json")
    assert again.to_dict() == json.loads(text)


def test_exports_load_back(tmp_path):
    X, md = synthetic_activations(500, 16, seed=5)
    g = Mapper(n_intervals=5, overlap=0.4, eps="auto", min_samples=4, keep_means=True).fit(X, md)
    members = {f"n{i}": m.tolist() for i, m in enumerate(g.members)}
    for fmt in ["node-link", "graphml", "kmapper", "topoact", "mapper-interactive"]:
        g.save(tmp_path / f"g.{fmt}", format=fmt)
    G = nx.node_link_graph(json.loads((tmp_path / "g.node-link").read_text()), edges="links")
    assert {n: G.nodes[n]["members"] for n in G} == members and G.number_of_edges() == g.n_edges
    H = nx.read_graphml(tmp_path / "g.graphml")
    assert {n: list(map(int, H.nodes[n]["members"].split())) for n in H} == members
    assert H.number_of_edges() == g.n_edges
    kd = json.loads((tmp_path / "g.kmapper").read_text())
    assert sorted(map(sorted, kd["nodes"].values())) == sorted(members.values())
    assert sum(len(v) for v in kd["links"].values()) == g.n_edges
    ta = json.loads((tmp_path / "g.topoact").read_text())
    assert [n["membership"] for n in ta["nodes"]] == list(members.values())
    assert {"top_classes", "top_class_percents", "l2NormAvg", "average_activation"} <= set(ta["nodes"][0])
    assert len(ta["nodes"][0]["average_activation"]) == 16
    mi = json.loads((tmp_path / "g.mapper-interactive").read_text())
    assert [mi["nodes"][str(i)]["vertices"] for i in range(g.n_nodes)] == list(members.values())
    assert {"categorical_cols_summary", "avgs"} <= set(mi["nodes"]["0"]) and len(mi["edges"]) == g.n_edges
    with pytest.raises(AdvtopoError, match="format"):
        g.save(tmp_path / "x", format="pickle")


# ---------------------------------------------------------------- sweeps, determinism, 2-D, other clusterers

def test_sweep_equals_individual_fits():
    X, md = synthetic_activations(900, 16, seed=6)
    grid = mapper_sweep(X, n_intervals=[4, 7], overlap=[0.2, 0.5], eps=[0.7, 1.0], min_samples=4, metadata=md)
    assert len(grid) == 8
    for (n, p, e), g in grid.items():
        single = Mapper(n_intervals=n, overlap=p, eps=e, min_samples=4).fit(X, md)
        assert g.to_dict() == single.to_dict()


def test_edge_list_restrict_matches_brute_force():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((400, 6)).astype(np.float32)
    reach = np.minimum(np.arange(400) + rng.integers(1, 200, size=400), 400)
    g = build_eps_graph(X, reach, 2.5)
    el = g.compact(2.5)
    d = np.sqrt(((X[:, None].astype(np.float64) - X[None].astype(np.float64)) ** 2).sum(-1))
    for a, b in [(0, 400), (0, 1), (10, 150), (37, 38), (120, 399), (200, 200)]:
        u, v, counts = el.restrict(a, b)
        pairs = sorted(zip((u + a).tolist(), (v + a).tolist()))
        want = sorted((p, q) for p in range(a, b) for q in range(p + 1, min(b, reach[p])) if d[p, q] <= 2.5)
        assert pairs == want
        assert np.array_equal(np.bincount(u, minlength=b - a), counts)
        assert np.all(np.diff(u) >= 0)


def test_dbscan_labels_sorted_fast_path_equal():
    rng = np.random.default_rng(4)
    for ms in (1, 3, 6):
        m = 300
        u = rng.integers(0, m - 1, size=1500)
        v = np.minimum(u + rng.integers(1, 40, size=1500), m - 1)
        keep = v > u
        key = np.unique(u[keep] * m + v[keep])
        u, v = key // m, key % m
        orig = rng.permutation(m)
        a = dbscan_labels(m, u, v, orig, ms)
        b = dbscan_labels(m, u, v, orig, ms, u_counts=np.bincount(u, minlength=m))
        assert np.array_equal(a, b)


def test_compiled_element_dbscan_equals_numpy_labels():
    """The numba kernel (reads the sorted keys in place) gives dbscan_labels' exact labels on
    random geometric graphs, random element ranges, min_samples 1..7 and shuffled orig ids."""
    from advtopo.mapper._kernels import HAVE_NUMBA, _element_dbscan_py, element_dbscan
    from advtopo.mapper.neighbors import EdgeList

    assert HAVE_NUMBA, "numba is a dependency; the compiled path must be the one under test"
    rng = np.random.default_rng(11)
    for trial in range(200):
        n = int(rng.integers(2, 150))
        P = rng.random((n, 2))
        d = np.sqrt(((P[:, None] - P[None]) ** 2).sum(-1))
        p, q = np.nonzero(np.triu(d <= rng.uniform(0.02, 0.3), 1))
        el = EdgeList(np.sort(p.astype(np.int64) * n + q), n)
        a = int(rng.integers(0, n))
        b = int(rng.integers(a, n + 1))
        orig = rng.permutation(10 * n)[:b - a]
        ms = int(rng.integers(1, 8))
        u, v, c = el.restrict(a, b)
        want = dbscan_labels(b - a, u, v, orig, ms, u_counts=c)
        assert np.array_equal(element_dbscan(el.key, el.indptr, n, a, b, orig, ms), want), trial
        if trial < 20:  # the same function uncompiled (what numba compiles), for coverage and sanity
            got = np.empty(b - a, dtype=np.int64)
            _element_dbscan_py(el.key, el.indptr, n, a, b, orig.astype(np.int64), ms, got)
            assert np.array_equal(got, want)


def test_compiled_block_scan_equals_numpy_build():
    """The numba block scan of the pair build keeps exactly the pairs, scores and order of the
    numpy passes, across block shapes, column chunking and output growth."""
    from advtopo.mapper.neighbors import _build_numpy, _Prepared

    rng = np.random.default_rng(12)
    for trial in range(25):
        n, d = int(rng.integers(2, 2500)), int(rng.integers(1, 30))
        X = rng.normal(size=(n, d)).astype(np.float32)
        prep = _Prepared(X, "euclidean")
        reach = np.minimum(np.arange(1, n + 1) + rng.integers(0, n, size=n), n).astype(np.int64)
        thr = float(rng.uniform(0.2, 1.5)) * d
        br, cc = int(rng.integers(1, 300)), int(rng.integers(1, 700))
        a = _build_numpy(prep.left, prep.right, reach, thr, br, cc, np.int32, compiled=False)
        b = _build_numpy(prep.left, prep.right, reach, thr, br, cc, np.int32, compiled=True)
        for x, y in zip(a, b):
            assert np.array_equal(x, y), trial
    # small integer points: float32 scores are exact, so many pairs sit exactly on the threshold
    P = rng.integers(0, 4, size=(600, 3)).astype(np.float32)
    sq = (P ** 2).sum(1, keepdims=True)
    left = np.hstack([-2 * P, sq, np.ones_like(sq)]).astype(np.float32)
    right = np.hstack([P, np.ones_like(sq), sq]).astype(np.float32)
    reach = np.full(600, 600, dtype=np.int64)
    a = _build_numpy(left, right, reach, 2.0, 64, 256, np.int32, compiled=False)
    b = _build_numpy(left, right, reach, 2.0, 64, 256, np.int32, compiled=True)
    assert np.any(a[2] == 2.0)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)


def test_numpy_fallback_without_numba_gives_the_same_graphs(monkeypatch):
    """Where numba cannot be imported the numpy path runs; it must give the same graphs."""
    import advtopo.mapper.mapper as mm
    import advtopo.mapper.neighbors as nb

    X, md = synthetic_activations(1800, 16, seed=14)
    grid = dict(n_intervals=[5, 9], overlap=[0.25, 0.5], eps=[0.8, 1.1])
    compiled = Mapper(min_samples=4).sweep(X, metadata=md, **grid)
    monkeypatch.setattr(mm, "HAVE_NUMBA", False)
    monkeypatch.setattr(nb, "HAVE_NUMBA", False)
    monkeypatch.setattr(nb, "_build_numpy", functools.partial(nb._build_numpy, compiled=False))
    fallback = Mapper(min_samples=4).sweep(X, metadata=md, **grid)
    assert list(compiled) == list(fallback)
    assert any(g.n_nodes > 2 for g in compiled.values())
    for key, g in compiled.items():
        assert g.to_dict() == fallback[key].to_dict(), key


def test_n_jobs_does_not_change_the_graph_and_is_validated():
    X, md = synthetic_activations(2000, 16, seed=13)
    one = Mapper(n_intervals=9, overlap=0.4, eps=1.0, n_jobs=1).fit(X, md)
    two = Mapper(n_intervals=9, overlap=0.4, eps=1.0, n_jobs=2).fit(X, md)
    assert one.n_nodes > 3 and one.to_dict() == two.to_dict()
    for bad in (0, -2, 1.5, "all"):
        with pytest.raises(AdvtopoError, match="n_jobs"):
            Mapper(n_jobs=bad).fit(X)


@needs_kmapper
def test_kmapper_sweep_equals_fits_and_kmapper():
    """A sweep (one shared compact edge list, every element restricted by binary search)
    gives exactly the individually fitted graphs and KeplerMapper's, at the knee eps (every
    point core: the fast path) and at a small eps (noise and border points)."""
    X, md = synthetic_activations(1500, 24, seed=9)
    lens = np.sqrt(np.einsum("ij,ij->i", X.astype(np.float64), X.astype(np.float64)))
    knee = Mapper(eps="auto", min_samples=5)._resolve_eps(Mapper(eps="auto")._clusterer(), X, "euclidean")
    for eps in (float(knee), 0.5 * float(knee)):
        grid = Mapper(lens=lens, cover="kmapper", eps=eps, min_samples=5).sweep(
            X, n_intervals=[3, 8, 13], overlap=[0.2, 0.5])
        for (n, p, _e), g in grid.items():
            single = Mapper(lens=lens, cover="kmapper", n_intervals=n, overlap=p, eps=eps, min_samples=5).fit(X)
            assert g.to_dict() == single.to_dict()
            kg = km.KeplerMapper(verbose=0).map(lens.reshape(-1, 1), X,
                                                clusterer=SkDBSCAN(eps=eps, min_samples=5),
                                                cover=km.Cover(n_cubes=n, perc_overlap=p))
            assert g.to_kmapper()["nodes"] == dict(kg["nodes"])
    sl = Mapper(lens=lens, cover="kmapper", clusterer="single", eps=0.5 * float(knee)).sweep(
        X, n_intervals=[4, 9], overlap=[0.3])
    for (n, p, e), g in sl.items():
        one = Mapper(lens=lens, cover="kmapper", clusterer="single", n_intervals=n, overlap=p, eps=e).fit(X)
        assert g.to_dict() == one.to_dict()


def test_deterministic():
    X, md = synthetic_activations(700, 16, seed=7)
    a = Mapper(lens=("pca", {"n_components": 2}), n_intervals=(4, 3), overlap=0.3, eps="auto").fit(X, md).to_dict()
    b = Mapper(lens=("pca", {"n_components": 2}), n_intervals=(4, 3), overlap=0.3, eps="auto").fit(X, md).to_dict()
    assert a == b and a["nodes"] and len(a["nodes"][0]["cover_element"]) == 2


def test_2d_uniform_cover_matches_per_element_sklearn():
    X, _ = DATA["blobs"]
    lens = X[:, :2]
    g = Mapper(lens=lens, cover="balanced", n_intervals=(3, 3), overlap=0.3, eps=1.3, min_samples=4).fit(X)
    ce = make_cover("balanced", (3, 3), 0.3).fit(lens)
    want = []
    for e in range(len(ce)):
        rows = np.flatnonzero(ce.contains(lens, e))
        lab = SkDBSCAN(eps=1.3, min_samples=4).fit_predict(X[rows])
        want += [rows[lab == k].tolist() for k in np.unique(lab) if k >= 0]
    assert [m.tolist() for m in g.members] == want


def test_hdbscan_runs_and_counts_noise():
    X, _ = DATA["blobs"]
    g = Mapper(n_intervals=4, overlap=0.3, clusterer="hdbscan").fit(X)
    assert g.n_nodes > 0 and g.stats()["n_noise_in_elements"] >= 0
    assert g.params["clusterer"] == "HDBSCAN"


def test_simplices_and_components():
    g = MapperGraph([[0, 1], [1, 2], [1, 3], [5]], [(0,), (1,), (2,), (3,)], 6)
    assert g.simplices2() == [(0, 1, 2)]
    assert g.components() == [[0, 1, 2], [3]]


# ---------------------------------------------------------------- CLI

def test_cli(tmp_path, capsys):
    from advtopo.cli import main

    X, md = synthetic_activations(400, 8, seed=8)
    np.save(tmp_path / "x.npy", X)
    import pandas as pd

    pd.DataFrame(md).to_csv(tmp_path / "md.csv", index=False)
    rc = main(["mapper", str(tmp_path / "x.npy"), "--metadata", str(tmp_path / "md.csv"), "--n-intervals", "5",
               "--overlap", "0.3", "--out", str(tmp_path / "g.json")])
    assert rc == 0
    d = json.loads((tmp_path / "g.json").read_text())
    assert d["params"]["n_intervals"] == 5 and d["nodes"]
    rc = main(["mapper", str(tmp_path / "x.npy"), "--overlap", "1.5", "--out", str(tmp_path / "h.json")])
    assert rc == 2 and "overlap" in capsys.readouterr().err
    rc = main(["mapper", str(tmp_path / "nope.npy"), "--out", str(tmp_path / "h.json")])
    assert rc == 2


@needs_kmapper
@pytest.mark.parametrize("metric,eps", [("euclidean", 3.5), ("cosine", 0.02)])
def test_torch_element_dbscan_equals_kmapper(metric, eps):
    X, _ = DATA["synthetic"]
    lens = np.sqrt((np.asarray(X, np.float64) ** 2).sum(1))
    m = Mapper(lens=lens, cover="kmapper", n_intervals=7, overlap=0.4, eps=eps, min_samples=5, metric=metric,
               backend="torch", device="cpu")
    ours = m.fit(X)
    theirs, _ = _km_nodes(lens.reshape(-1, 1), X, 7, 0.4, SkDBSCAN(eps=eps, min_samples=5, metric=metric))
    assert len(theirs) > 0 and ours.to_kmapper()["nodes"] == theirs


def test_torch_element_dbscan_small_blocks_and_sweep():
    from advtopo.mapper.torch_dbscan import TorchElementDBSCAN

    X, _ = DATA["blobs"]
    order = np.argsort(X[:, 0], kind="stable")
    eng = TorchElementDBSCAN(X[order], "euclidean", "cpu", block_rows=160, block_cols=400)
    got = eng.labels(np.arange(len(X)), order, 1.0, 6)
    want = SkDBSCAN(eps=1.0, min_samples=6).fit_predict(X[np.sort(order)])
    ours = np.full(len(X), -1)
    ours[order] = got
    np.testing.assert_array_equal(ours, want)
    a = Mapper(min_samples=4, backend="torch").sweep(X, n_intervals=[3, 5], overlap=[0.3], eps=[2.0])
    b = Mapper(min_samples=4).sweep(X, n_intervals=[3, 5], overlap=[0.3], eps=[2.0])
    assert all(g.n_nodes > 1 for g in b.values())
    assert all(a[k].to_dict() == b[k].to_dict() for k in a)


def test_projected_bounds_path_is_exact():
    """Large low-rank clouds take the PCA-bound path; the kept pairs are still exactly dist <= eps."""
    from advtopo.mapper.neighbors import choose_projection

    X, _ = synthetic_activations(2500, 256, seed=9)
    eps = 10.0
    assert choose_projection(X, eps) is not None
    g = build_eps_graph(X, np.full(len(X), len(X)), eps, project=True)
    assert g.prepared.r.max() > 0
    m = g.within(eps)
    got = set(zip(g.rows[m].tolist(), g.cols[m].tolist()))
    X64 = X.astype(np.float64)
    sq = (X64 ** 2).sum(1)
    D2 = sq[:, None] + sq[None] - 2 * X64 @ X64.T
    want = {(int(a), int(b)) for a, b in zip(*np.nonzero(np.triu(D2 <= eps ** 2, 1)))}
    assert len(want) > 1000 and got == want
    m2 = g.within(8.0)
    want2 = {(int(a), int(b)) for a, b in zip(*np.nonzero(np.triu(D2 <= 8.0 ** 2, 1)))}
    assert set(zip(g.rows[m2].tolist(), g.cols[m2].tolist())) == want2
    if km is not None:  # the default (unprojected) path on the same data
        lens = np.sqrt(sq)
        ours = Mapper(lens=lens, cover="kmapper", n_intervals=8, overlap=0.4, eps=eps, min_samples=5).fit(X)
        theirs, _ = _km_nodes(lens.reshape(-1, 1), X, 8, 0.4, SkDBSCAN(eps=eps, min_samples=5))
        assert len(theirs) > 0 and ours.to_kmapper()["nodes"] == theirs


def test_to_dict_without_metadata_is_strict_json():
    X = np.random.default_rng(0).normal(size=(300, 5))
    g = Mapper(n_intervals=4, eps="auto").fit(X)
    d = g.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert d["points"]["sample_id"] == list(range(300)) and d["points"]["label"][0] is None
    assert d["stats"]["mean_purity"] is None and d["nodes"][0]["purity"] is None
    assert MapperGraph.from_dict(json.loads(text)).to_dict() == json.loads(text)


def test_weak_components_equal_scipy_public_call():
    """The 1-byte-transpose path into scipy's undirected kernel gives the same partition."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    from advtopo.mapper.clusterers import _weak_components

    rng = np.random.default_rng(3)
    for m, k in [(1, 0), (7, 0), (50, 30), (400, 500), (2000, 1500)]:
        u = np.sort(rng.integers(0, m, k))
        v = rng.integers(0, m, k)
        keep = u < v
        u, v = u[keep], v[keep].astype(np.int32)
        indptr = np.searchsorted(u, np.arange(m + 1)).astype(np.int32)
        ours = _weak_components(m, indptr, v)
        g = csr_matrix((np.ones(len(v)), v, indptr), shape=(m, m))
        _, ref = connected_components(g, directed=True, connection="weak")
        # same partition: a bijection between the two labellings
        pairs = np.unique(np.stack([ours, ref]), axis=1)
        assert len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]


# --- MapperParams: the typed parameters and their one set of rules ---------------------------

def test_mapper_params_are_the_mappers_signature_and_get_params_lists_every_parameter():
    import inspect

    from advtopo.mapper import MapperParams

    signature = {name: p.default for name, p in inspect.signature(Mapper).parameters.items()}
    assert list(MapperParams.names()) == list(signature) == list(Mapper().get_params())
    assert MapperParams().kwargs() == signature  # the same defaults
    m = Mapper(n_intervals=7, metric="cosine", n_jobs=2)
    assert m.get_params()["n_intervals"] == 7 and m.get_params(deep=False)["n_jobs"] == 2
    assert m.to_params() == MapperParams(n_intervals=7, metric="cosine", n_jobs=2)
    assert Mapper.from_params(m.to_params()).get_params() == m.get_params()
    assert repr(m) == "Mapper(metric='cosine', n_intervals=7, n_jobs=2)"
    assert m.set_params(overlap=0.4) is m and m.overlap == 0.4
    with pytest.raises(AdvtopoError, match=r"unknown Mapper parameter 'overlpa' \(did you mean 'overlap'\?\)"):
        m.set_params(overlpa=0.4)
    with pytest.raises(AdvtopoError, match="needs a MapperParams"):
        Mapper.from_params({"n_intervals": 3})


def test_sklearn_clone_gives_equal_params_and_the_identical_graph():
    from sklearn.base import clone

    X, md = synthetic_activations(600, 8, seed=4)
    m = Mapper(n_intervals=6, overlap=0.35, eps="auto", min_samples=4, metric="cosine", random_state=3)
    c = clone(m)
    assert c is not m and c.get_params() == m.get_params()
    g = m.fit(X, md)
    assert g.n_nodes > 2 and clone(m).fit(X, md).to_dict() == g.to_dict()


@pytest.mark.parametrize("changes,match", [
    ({"lens": "l3norm"}, r"lens='l3norm' is not valid: unknown lens \(did you mean 'l2norm'\?\)"),
    ({"lens": "precomputed"}, r"lens='precomputed' needs the values"),
    ({"lens": ("pcaa", {"n_components": 2})}, r"lens\[0\]='pcaa' is not valid: unknown lens \(did you mean 'pca'\?\)"),
    ({"lens": ["l2norm", "std", "mean"]}, r"lens is a list of 3 lenses; allowed: one or two"),
    ({"lens": 42}, r"lens=42 is not valid; allowed: one of "),
    ({"lens": np.zeros((4, 3))}, r"lens is an array of shape \(4, 3\)"),
    ({"cover": "unifrom"}, r"cover='unifrom' is not valid: unknown cover \(did you mean 'uniform'\?\)"),
    ({"clusterer": "dbscn"}, r"clusterer='dbscn' is not valid: unknown clusterer \(did you mean 'dbscan'\?\)"),
    ({"clusterer": 42}, r"clusterer=42 is not valid"),
    ({"metric": "cosin"}, r"metric='cosin' is not valid \(did you mean 'cosine'\?\); allowed: euclidean, cosine"),
    ({"n_intervals": 0}, r"n_intervals=0 is not valid; allowed: an integer >= 1"),
    ({"n_intervals": 2.5}, r"n_intervals=2.5 is not valid"),
    ({"n_intervals": True}, r"n_intervals=True is not valid"),
    ({"n_intervals": (3, 4)}, r"n_intervals=\(3, 4\) has 2 entries but the lens has 1 dimensions"),
    ({"overlap": 1.0}, r"overlap=1.0 is not valid; allowed: a number in \[0, 1\)"),
    ({"overlap": -0.1}, r"overlap=-0.1 is not valid"),
    ({"overlap": "0.3"}, r"overlap='0.3' is not valid"),
    ({"eps": 0}, r"eps=0 is not valid; allowed: a number > 0 or 'auto'"),
    ({"eps": "knee"}, r"eps='knee' is not valid"),
    ({"eps": float("inf")}, r"eps=inf is not valid"),
    ({"min_samples": 0}, r"min_samples=0 is not valid; allowed: an integer >= 1"),
    ({"backend": "jax"}, r"backend='jax' is not valid; allowed: numpy, torch"),
    ({"device": "gpu"}, r"device='gpu' is not valid.*allowed: auto, cpu, cuda, mps"),
    ({"block_bytes": 0}, r"block_bytes=0 is not valid; allowed: an integer >= 1"),
    ({"keep_means": "yes"}, r"keep_means='yes' is not valid; allowed: true or false"),
    ({"verbose": 1}, r"verbose=1 is not valid; allowed: true or false"),
    ({"random_state": -1}, r"random_state=-1 is not valid; allowed: an integer >= 0"),
    ({"n_jobs": 0}, r"n_jobs=0 is not valid; allowed: -1 \(all cores\) or an integer >= 1"),
])
def test_mapper_params_rules(changes, match):
    from advtopo.mapper import MapperParams

    p = MapperParams().replace(**changes)
    with pytest.raises(AdvtopoError, match=match):
        p.validate()
    with pytest.raises(AdvtopoError, match=r"mapper\[1\]\." + match.split("=")[0].split(" ")[0]):
        p.validate(where="mapper[1]")  # the errors name the key where it was given
    with pytest.raises(AdvtopoError, match=match):
        Mapper.from_params(p).fit(np.random.default_rng(0).normal(size=(40, 3)))  # fit holds the same rules


def test_mapper_params_rules_that_need_the_row_count_and_valid_specs():
    from sklearn.cluster import KMeans

    from advtopo.mapper import MapperParams, UniformCover

    p = MapperParams(n_intervals=30)
    assert p.validate() is p and p.validate(n_samples=30) is p
    with pytest.raises(AdvtopoError, match=r"n_intervals=30 is more than the number of points \(29\); allowed: 1..29"):
        p.validate(n_samples=29)
    with pytest.raises(AdvtopoError, match=r"lens has 5 values but X has 6 rows"):
        MapperParams(lens=np.zeros(5)).validate(n_samples=6)
    with pytest.raises(AdvtopoError, match=r"at least 1 row"):
        MapperParams().validate(n_samples=0)
    for ok in (MapperParams(lens=("pca", {"n_components": 2}), n_intervals=(3, 4), overlap=(0.2, 0.3)),
               MapperParams(lens=["pca", "std"], n_intervals=[3, 4], cover="balanced"),
               MapperParams(lens=np.zeros((6, 2)), n_intervals=(2, 2)),
               MapperParams(lens=lambda X: X[:, 0], cover=UniformCover(3, 0.2), clusterer=KMeans(2), eps=0.5),
               MapperParams(device="cuda:1", backend="torch", random_state=None, keep_means=np.True_, n_intervals=6)):
        ok.validate(n_samples=6)
    with pytest.raises(AdvtopoError, match=r"cover.n_intervals=8 is more than the number of points \(6\)"):
        MapperParams(cover=UniformCover(8, 0.2), n_intervals=2).validate(n_samples=6)  # the cover's own resolution
    X = np.random.default_rng(0).normal(size=(50, 3))
    with pytest.raises(AdvtopoError, match=r"n_intervals=80 is more than the number of points \(50\)"):
        Mapper().sweep(X, n_intervals=[3, 80])  # a sweep checks every setting of its grid
    with pytest.raises(AdvtopoError, match=r"eps=-1 is not valid"):
        Mapper().sweep(X, n_intervals=[3], eps=[0.5, -1])
    assert len(Mapper(n_intervals=80, eps=1.0).sweep(X, n_intervals=[3, 4], overlap=[0.3])) == 2
    # a sweep uses the cover's kind at the grid's resolution, not a Cover object's own resolution
    assert len(Mapper(cover=UniformCover(80, 0.3), eps=1.0).sweep(X, n_intervals=[3], overlap=[0.3])) == 1


def test_mapper_params_from_dict_refuses_unknown_keys_and_wrong_types():
    from advtopo.mapper import MapperParams

    with pytest.raises(AdvtopoError, match=r"unknown key 'mapper.n_intervalz' \(did you mean 'n_intervals'\?\); "
                                           r"allowed in mapper: lens, cover, clusterer"):
        MapperParams.from_dict({"n_intervalz": 3})
    with pytest.raises(AdvtopoError, match=r"unknown key 'request.lenz' \(did you mean 'lens'\?\)"):
        MapperParams.from_dict({"lenz": "pca"}, where="request")
    with pytest.raises(AdvtopoError, match=r"mapper.n_intervals='ten' has the wrong type; expected integer"):
        MapperParams.from_dict({"n_intervals": "ten"})
    with pytest.raises(AdvtopoError, match=r"mapper.overlap=True has the wrong type; expected number"):
        MapperParams.from_dict({"overlap": True})
    with pytest.raises(AdvtopoError, match=r"mapper.keep_means=1 has the wrong type; expected true/false"):
        MapperParams.from_dict({"keep_means": 1})
    with pytest.raises(AdvtopoError, match=r"mapper.overlap=1.5 is not valid"):  # values are checked too
        MapperParams.from_dict({"overlap": 1.5})
    with pytest.raises(AdvtopoError, match=r"must be a table of parameters"):
        MapperParams.from_dict([("n_intervals", 3)])
    p = MapperParams.from_dict({"overlap": 0, "eps": 1, "n_intervals": [3, 4], "lens": ["pca", "std"]})
    assert p.overlap == 0.0 and isinstance(p.overlap, float) and p.eps == 1.0 and isinstance(p.eps, float)
    assert p.n_intervals == (3, 4) and p.lens == ["pca", "std"]
    with pytest.raises(AdvtopoError, match=r"unknown Mapper parameter 'eps_requested'"):
        p.replace(eps_requested="auto")


def test_mapper_params_to_dict_round_trip():
    from advtopo.mapper import STUDY_KEYS, MapperParams

    d = {"lens": "pca", "n_intervals": 12, "overlap": 0.45, "metric": "cosine", "eps": 0.7, "n_jobs": 2}
    p = MapperParams.from_dict(d)
    out = p.to_dict()
    assert list(out) == [*STUDY_KEYS, "n_jobs"]  # the study keys always, the rest when not the default
    assert MapperParams.from_dict(out) == p and MapperParams.from_dict(json.loads(json.dumps(out))) == p
    assert MapperParams().to_dict() == {"lens": "l2norm", "cover": "uniform", "n_intervals": 10, "overlap": 0.3,
                                        "clusterer": "dbscan", "eps": "auto", "min_samples": 5,
                                        "metric": "euclidean"}
    assert MapperParams().to_dict(include=["n_jobs"])["n_jobs"] == -1
    assert MapperParams(n_intervals=(3, 4)).to_dict()["n_intervals"] == [3, 4]
    for not_json in (MapperParams(lens=np.zeros(4)), MapperParams(lens=("pca", {"n_components": 2})),
                     MapperParams(clusterer=SkDBSCAN())):
        with pytest.raises(AdvtopoError, match="cannot be written as JSON"):
            not_json.to_dict()


@pytest.mark.parametrize("eps", ["auto", 1.2])
def test_mapper_params_round_trip_through_a_graphs_stored_params(eps):
    """A graph's stored "params" hold the study keys as given (eps as eps_requested, the resolved
    eps as eps): read back, they are the same parameters and rebuild the identical graph."""
    from advtopo.mapper import MapperParams

    X, md = synthetic_activations(700, 8, seed=6)
    p = MapperParams.from_dict({"n_intervals": 6, "overlap": 0.4, "min_samples": 4, "metric": "cosine",
                                "eps": eps if eps == "auto" else 0.05})
    g = Mapper.from_params(p).fit(X, md).to_dict()
    stored = json.loads(json.dumps(g["params"]))
    wanted = p.to_dict()
    assert {k: stored[k] for k in wanted if k != "eps"} == {k: v for k, v in wanted.items() if k != "eps"}
    assert stored["eps_requested"] == wanted["eps"] and isinstance(stored["eps"], float)
    again = MapperParams.from_graph_params(stored)
    assert again == p and again.to_dict() == wanted
    assert Mapper.from_params(again).fit(X, md).to_dict() == g
    assert MapperParams.from_graph_params({**stored, "rows": "adversarial"}) == p  # the study's own key is left out


def test_mapper_modules_import_no_cycle():
    """advtopo.mapper's modules import one another without a cycle (graph.py -> stats.py, not back),
    counting imports inside functions too."""
    import ast
    from pathlib import Path

    import advtopo.mapper as pkg

    folder = Path(pkg.__file__).parent
    deps = {}
    for path in folder.glob("*.py"):
        if path.name == "__init__.py":
            continue
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("advtopo.mapper."):
                found.add(node.module.rsplit(".", 1)[1])
        deps[path.stem] = found

    def reaches(start: str, goal: str, seen: set) -> bool:
        return any(d == goal or (d not in seen and reaches(d, goal, seen | {d})) for d in deps.get(start, ()))

    assert "stats" in deps["graph"]
    assert [m for m in deps if reaches(m, m, set())] == []
