"""Layer comparison: CKA/SVCCA against direct computations, distance matrices, the stage."""
from __future__ import annotations

import json

import numpy as np
import pytest

from advtopo.errors import AdvtopoError
from advtopo.persistence import (LayerDistance, compare_layers, linear_cka, pca_removal_sensitivity,
                                 persistence_stage, rank_correlation, rips_diagrams, sliced_wasserstein_distance,
                                 svcca, top_l2_point_cloud)
from advtopo.persistence.rips import split_diagrams


def _gram_cka(X, Y):
    """CKA from the n x n Gram matrices: HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))."""
    n = len(X)
    H = np.eye(n) - np.ones((n, n)) / n
    K, L = H @ (X @ X.T) @ H, H @ (Y @ Y.T) @ H
    return np.sum(K * L) / np.sqrt(np.sum(K * K) * np.sum(L * L))


def test_linear_cka_equals_gram_computation():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 12))
    Y = X @ rng.normal(size=(12, 30)) + 0.5 * rng.normal(size=(80, 30))
    assert linear_cka(X, Y) == pytest.approx(_gram_cka(X, Y), rel=1e-10)
    assert linear_cka(X, X) == pytest.approx(1.0)
    Q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    assert linear_cka(X, 3 * X @ Q + 1) == pytest.approx(1.0)  # invariant to rotation and scale
    with pytest.raises(AdvtopoError, match="same samples"):
        linear_cka(X, Y[:10])


def test_svcca_equals_direct_cca():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 6))
    Y = np.column_stack([X[:, :3] @ rng.normal(size=(3, 3)), rng.normal(size=(200, 4))])
    # keep_variance=1: plain CCA; reference via whitened cross-covariance
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    def inv_sqrt(C):
        w, V = np.linalg.eigh(C)
        return V @ np.diag(w ** -0.5) @ V.T
    M = inv_sqrt(Xc.T @ Xc) @ (Xc.T @ Yc) @ inv_sqrt(Yc.T @ Yc)
    rho = np.linalg.svd(M, compute_uv=False)
    assert svcca(X, Y, keep_variance=1.0) == pytest.approx(rho.mean(), rel=1e-8)
    assert svcca(X, X) == pytest.approx(1.0)


def test_top_l2_point_cloud():
    rng = np.random.default_rng(2)
    A = rng.normal(size=(5, 3, 4, 4))
    P = top_l2_point_cloud(A)
    for i in range(5):
        norms = np.linalg.norm(A[i].reshape(3, -1), axis=0)
        np.testing.assert_array_equal(P[i], A[i].reshape(3, -1)[:, norms.argmax()])
    assert top_l2_point_cloud(P) is P
    with pytest.raises(AdvtopoError, match="feature_map"):
        top_l2_point_cloud(np.zeros(3))


def _clouds(seed=0, n=60):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 2 * np.pi, n)
    circle = np.column_stack([np.cos(t), np.sin(t)])
    return {"a": circle @ rng.normal(size=(2, 8)) + 0.05 * rng.normal(size=(n, 8)),
            "b": rng.normal(size=(n, 5)),
            "c": circle @ rng.normal(size=(2, 6)) + 0.05 * rng.normal(size=(n, 6))}


def test_layer_distance_matrix_and_compare():
    clouds = _clouds()
    ld = LayerDistance().fit(clouds)
    M = ld.matrix_
    assert M.shape == (3, 3) and np.allclose(M, M.T) and np.all(np.diag(M) == 0)
    ref = sliced_wasserstein_distance(rips_diagrams(clouds["a"])[1], rips_diagrams(clouds["b"])[1])
    assert M[0, 1] == pytest.approx(ref)
    out = compare_layers(clouds, metric="bottleneck")
    assert out["labels"] == ["a", "b", "c"] and np.asarray(out["cka"]).shape == (3, 3)
    assert -1 <= out["rank_correlation_cka"]["spearman"] <= 1
    json.dumps(out)
    rc = rank_correlation(np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0]]), np.array([[1, .9, .8], [.9, 1, .7], [.8, .7, 1]]))
    assert rc["spearman"] == pytest.approx(1.0)
    with pytest.raises(AdvtopoError, match="metric"):
        LayerDistance(metric="nope").fit(clouds)


def test_pca_removal_sensitivity():
    X = _clouds(n=50)["a"]
    out = pca_removal_sensitivity(X, n_removed=[0, 1, 2, 5], metric="bottleneck")
    assert out["n_removed"] == [0, 1, 2, 5] and out["distance"][0] == 0
    assert out["distance"][2] > 0  # removing the circle's plane destroys the loop
    assert out["explained_variance_removed"][2] > 0.9


def test_persistence_stage_writes_run_files(tmp_path):
    rng = np.random.default_rng(3)
    n = 40
    acts = {}
    for model in ("m1", "m2"):
        base = {"conv": rng.normal(size=(n, 4, 3, 3)), "fc": rng.normal(size=(n, 10))}
        for layer, A in base.items():
            for eps in (0.0, 0.1, 0.3):
                acts[(model, layer, "pgd", eps)] = A + eps * rng.normal(size=A.shape)
    out_dir = tmp_path / "persistence"
    res = persistence_stage(acts, np.arange(100, 100 + n), out_dir, {"max_points": 30})
    json.dumps(res)
    assert res["n_points"] == 30 and len(res["sample_ids"]) == 30
    assert len(res["diagrams"]) == 12
    path = res["diagrams"]["m1/conv/pgd/0.1"]
    assert path.startswith("persistence/diagrams/")
    dg = split_diagrams(np.load(tmp_path / path))
    assert len(dg[0]) == 30  # 29 finite H0 bars + 1 infinite
    lay = res["layer_distance"]
    assert lay["labels"] == ["m1/conv", "m1/fc", "m2/conv", "m2/fc"]
    assert np.asarray(lay["matrix"]).shape == (4, 4) and np.asarray(lay["svcca"]).shape == (4, 4)
    assert json.loads((out_dir / "layer_distance.json").read_text())["labels"] == lay["labels"]
    curves = res["clean_vs_adv"]
    assert len(curves) == 12 and {r["eps"] for r in curves} == {0.0, 0.1, 0.3}
    assert all(r["distance"] == 0 for r in curves if r["eps"] == 0)
    assert (out_dir / "clean_vs_adv.png").stat().st_size > 1000
    assert (out_dir / "layer_distance.png").stat().st_size > 1000
    with pytest.raises(AdvtopoError, match="unknown persistence setting"):
        persistence_stage(acts, np.arange(n), out_dir, {"bogus": 1})
    with pytest.raises(AdvtopoError, match="metric"):
        persistence_stage(acts, np.arange(n), out_dir, {"metric": "heat"})
