"""Activation-graph filtration: hand-computed pairs, gudhi, brute-force unrolled conv."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from advtopo.errors import AdvtopoError
from advtopo.persistence import ActivationGraph, bag_of_edges, graph_persistence


def test_hand_computed_h0_pairs():
    # edges:        0-1   2-3   1-2   0-2   0-3   4-5   5-6
    src = np.array([0, 2, 1, 0, 0, 4, 5])
    dst = np.array([1, 3, 2, 2, 3, 5, 6])
    w = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.5, 0.0])
    # By hand (superlevel, a vertex enters with its heaviest edge):
    #   t=5: v0, v1 enter; 0-1 joins them -> pair (5, 5)
    #   t=4: v2, v3 enter; 2-3 joins them -> pair (4, 4)
    #   t=3: 1-2 joins {0,1} (born 5) and {2,3} (born 4): the younger dies -> pair (4, 3)
    #   t=2, t=1: 0-2 and 0-3 close cycles -> essential H1 born at 2 and 1
    #   t=0.5: v4, v5 enter; 4-5 -> pair (0.5, 0.5); a second component born at 0.5
    #   5-6 has weight 0: not in the filtration, nor is v6
    res = graph_persistence(src, dst, w, n_vertices=7, h1=True)
    got = sorted(map(tuple, res.pairs.tolist()))
    assert got == sorted([(5.0, 5.0), (4.0, 4.0), (4.0, 3.0), (0.5, 0.5)])
    np.testing.assert_array_equal(res.essential, [5.0, 0.5])
    np.testing.assert_array_equal(res.h1, [2.0, 1.0])
    assert sorted(res.forest_edges.tolist()) == [0, 1, 2, 5]
    assert res.dominant_edges().tolist() == [2]  # only 1-2 has positive persistence
    assert sorted(res.dominant_edges(min_persistence=-1).tolist()) == [0, 1, 2, 5]
    assert sorted(res.dominant_edges(percentile=50, min_persistence=-1).tolist()) == [0, 1]
    assert res.diagram(essential_death=0.0).shape == (6, 2)


def _gudhi_graph_diagrams(src, dst, w, n):
    import gudhi

    st = gudhi.SimplexTree()
    vb = np.zeros(n)
    np.maximum.at(vb, src, w)
    np.maximum.at(vb, dst, w)
    for v in range(n):
        if vb[v] > 0:
            st.insert([v], -vb[v])
    for a, b, x in zip(src, dst, w):
        if x > 0:
            st.insert([int(a), int(b)], -float(x))
    st.compute_persistence(min_persistence=-1, persistence_dim_max=True)
    d0 = -np.asarray(st.persistence_intervals_in_dimension(0)).reshape(-1, 2)
    d1 = -np.asarray(st.persistence_intervals_in_dimension(1)).reshape(-1, 2)
    return d0, d1


@pytest.mark.parametrize("seed,n,m", [(0, 300, 3000), (1, 2000, 60000), (2, 50, 40)])
@pytest.mark.parametrize("path", ["default", "unique", "no_dense_dedup"])
def test_graph_h0_matches_gudhi(seed, n, m, path, monkeypatch):
    rng = np.random.default_rng(seed)
    src, dst = rng.integers(0, n, m), rng.integers(0, n, m)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    _, first = np.unique(np.minimum(src, dst) * n + np.maximum(src, dst), return_index=True)
    src, dst = src[np.sort(first)], dst[np.sort(first)]  # a simple graph, as gudhi sees it
    w = rng.random(len(src))
    w[rng.random(len(w)) < 0.1] = 0
    w[:10] = w[10]  # ties
    if path == "no_dense_dedup":  # contracted levels: sampled-threshold filter on parallel edges
        import advtopo.persistence.activation_graph as ag

        monkeypatch.setattr(ag, "_DENSE_DEDUP_CELLS", 0)
    # chunk=1 exercises filter-Kruskal levels
    res = graph_persistence(src, dst, w, n, h1=True, chunk=1.0, unique=path == "unique")
    d0, d1 = _gudhi_graph_diagrams(src, dst, w, n)
    fin = d0[np.isfinite(d0[:, 1])]
    np.testing.assert_allclose(np.sort(res.pairs, axis=0), np.sort(fin, axis=0))
    np.testing.assert_allclose(np.sort(res.essential), np.sort(d0[~np.isfinite(d0[:, 1]), 0]))
    np.testing.assert_allclose(np.sort(res.h1), np.sort(d1[:, 0]))


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, stride=2, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(3 * 2 * 2, 4)
        self.relu2 = nn.ReLU()
        self.out = nn.Linear(4, 3, bias=False)

    def forward(self, x):
        return self.out(self.relu2(self.fc(self.flatten(self.pool(self.relu(self.conv(x)))))))


def _brute_force_edges(model, x):
    """Every edge by explicit loops over neurons: {(src_vertex, dst_vertex): weight}."""
    C, H, W = x.shape
    conv = model.conv
    Wc = conv.weight.detach().numpy()
    O, _, K, _ = Wc.shape
    s, p = conv.stride[0], conv.padding[0]
    Ho = (H + 2 * p - K) // s + 1
    xn = x.numpy()
    edges = {}
    in_id = lambda c, i, j: c * H * W + i * W + j
    off1 = C * H * W
    conv_id = lambda o, i, j: off1 + o * Ho * Ho + i * Ho + j
    for o in range(O):
        for i in range(Ho):
            for j in range(Ho):
                for c in range(C):
                    for kh in range(K):
                        for kw in range(K):
                            yi, xj = i * s - p + kh, j * s - p + kw
                            if 0 <= yi < H and 0 <= xj < W:
                                edges[(in_id(c, yi, xj), conv_id(o, i, j))] = abs(Wc[o, c, kh, kw] * xn[c, yi, xj])
    with torch.no_grad():
        a1 = torch.relu(conv(x[None]))[0].numpy()
    off2 = off1 + O * Ho * Ho
    Hp = Ho // 2
    pooled = np.zeros((O, Hp, Hp))
    for o in range(O):
        for i in range(Hp):
            for j in range(Hp):
                win = [(2 * i + di, 2 * j + dj) for di in range(2) for dj in range(2)]
                vals = [a1[o, y, xx] for y, xx in win]
                am = int(np.argmax(vals))
                pooled[o, i, j] = vals[am]
                for k, (y, xx) in enumerate(win):
                    edges[(conv_id(o, y, xx), off2 + o * Hp * Hp + i * Hp + j)] = abs(vals[k]) if k == am else 0.0
    off3 = off2 + O * Hp * Hp
    a2 = pooled.reshape(-1)
    Wf = model.fc.weight.detach().numpy()
    for jj in range(Wf.shape[0]):
        for ii in range(Wf.shape[1]):
            edges[(off2 + ii, off3 + jj)] = abs(Wf[jj, ii] * a2[ii])
    with torch.no_grad():
        a3 = torch.relu(model.fc(torch.as_tensor(a2, dtype=torch.float32)[None]))[0].numpy()
    off4 = off3 + Wf.shape[0]
    Wo = model.out.weight.detach().numpy()
    for jj in range(Wo.shape[0]):
        for ii in range(Wo.shape[1]):
            edges[(off3 + ii, off4 + jj)] = abs(Wo[jj, ii] * a3[ii])
    return edges, off4 + Wo.shape[0]


def test_unrolled_conv_matches_brute_force():
    torch.manual_seed(0)
    model = _Tiny().eval()
    x = torch.rand(2, 7, 7)
    g = ActivationGraph(input_shape=(2, 7, 7)).fit(model)
    ref, n_vertices = _brute_force_edges(model, x)
    assert g.n_vertices_ == n_vertices
    assert g.n_edges_ == len(ref)
    w = g.edge_weights(x)
    got = {(int(a), int(b)): float(c) for a, b, c in zip(g.src_, g.dst_, w)}
    assert got.keys() == ref.keys()
    np.testing.assert_allclose([got[k] for k in ref], [ref[k] for k in ref], rtol=1e-5, atol=1e-7)
    assert list(g.layers_) == ["input", "conv", "pool", "fc", "out"]
    res = g.persistence(x)
    assert len(res.pairs) + len(res.essential) == len(np.unique(np.concatenate(
        [g.src_[w > 0], g.dst_[w > 0]])))


def test_lenet5_and_cff_graph_sizes():
    from advtopo.models import create_model

    g = ActivationGraph().fit(create_model("cff"))
    assert g.n_vertices_ == 784 + 5 * 24 * 24 + 50 + 10
    assert g.n_edges_ == 5 * 24 * 24 * 25 + 5 * 24 * 24 * 50 + 500
    res = g.persistence(torch.rand(1, 28, 28), h1=True)
    assert len(res.pairs) > 0 and (res.persistence >= 0).all()
    g5 = ActivationGraph().fit(create_model("lenet5"))
    assert g5.n_edges_ > 4_000_000


def test_graph_rejects_unsupported_models():
    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            x = x.flatten(1)
            return self.fc(x) + x

    with pytest.raises(AdvtopoError, match="chain"):
        ActivationGraph(input_shape=(1, 2, 2)).fit(Skip())
    bn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    with pytest.raises(AdvtopoError, match="BatchNorm2d"):
        ActivationGraph(input_shape=(1, 5, 5)).fit(bn)
    g = ActivationGraph(input_shape=(1, 5, 5)).fit(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()))
    with pytest.raises(AdvtopoError, match="shape"):
        g.edge_weights(torch.zeros(1, 6, 6))


def test_bag_of_edges():
    X, vocab = bag_of_edges([np.array([5, 9]), np.array([9, 2])])
    assert vocab.tolist() == [2, 5, 9]
    assert X.toarray().tolist() == [[0, 1, 1], [1, 0, 1]]
    Y, _ = bag_of_edges([np.array([7, 2])], vocabulary=vocab)  # 7 is unknown: ignored
    assert Y.toarray().tolist() == [[1, 0, 0]]


def test_recovery_scores_by_hand():
    from advtopo.persistence import recovery_scores

    class Fixed:
        def predict(self, X):
            return np.array([0, 1, 2, 3])

    out = recovery_scores(Fixed(), None, y_true=[0, 1, 5, 3], y_adv=[0, 7, 2, 9])
    assert out["recovery_accuracy"] == 0.75 and out["adversary_retention"] == 0.5
    assert out["n_successful"] == 3
    assert out["recovery_accuracy_successful"] == pytest.approx(2 / 3)
    assert out["adversary_retention_successful"] == pytest.approx(1 / 3)


def test_recovery_experiment_runs_on_a_tiny_model():
    from advtopo.persistence import recovery_experiment

    torch.manual_seed(0)
    model = _Tiny().eval()
    g = ActivationGraph(input_shape=(2, 7, 7)).fit(model)
    rng = np.random.default_rng(0)
    x = rng.random((30, 2, 7, 7)).astype(np.float32)
    y = np.arange(30) % 3
    res = recovery_experiment(g, x, y, {"noise": (x + 0.01, y)}, cv=3, min_persistence=-1)
    assert 0 <= res["cv_accuracy"] <= 1 and res["n_features"] > 0
    att = res["attacks"]["noise"]
    assert att["n"] == 30 and att["recovery_accuracy"] == att["adversary_retention"]  # y_adv == y here


def test_cli_commands(tmp_path, capsys):
    from advtopo.cli import main

    rng = np.random.default_rng(0)
    t = rng.uniform(0, 2 * np.pi, 60)
    X = np.column_stack([np.cos(t), np.sin(t)]) + 0.05 * rng.normal(size=(60, 2))
    np.save(tmp_path / "c.npy", X)
    np.savez(tmp_path / "l.npz", a=X @ rng.normal(size=(2, 5)), b=rng.normal(size=(60, 3)))
    assert main(["persistence", "diagrams", str(tmp_path / "c.npy"), "--out", str(tmp_path / "d.npy")]) == 0
    assert "H1:" in capsys.readouterr().out
    assert main(["persistence", "distance", str(tmp_path / "d.npy"), str(tmp_path / "d.npy")]) == 0
    assert float(capsys.readouterr().out) == 0
    assert main(["persistence", "layers", str(tmp_path / "l.npz"), "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "layer_distance.png").exists()
    assert main(["persistence", "sensitivity", str(tmp_path / "c.npy"), "--steps", "1"]) == 0
    assert main(["persistence", "diagrams", str(tmp_path / "missing.npy")]) == 2
    assert main(["persistence", "diagrams", str(tmp_path / "c.npy"), "--metric", "manhattan"]) == 2
    assert "metric" in capsys.readouterr().err


def test_cross_fitted_folds_hold_each_input_out_once():
    from advtopo.persistence import cross_fitted_folds

    y = np.arange(53) % 4
    folds = cross_fitted_folds(y, n_splits=5, seed=3)
    assert len(folds) == 5
    held = np.concatenate([te for _, te in folds])
    assert sorted(held.tolist()) == list(range(53))  # every input evaluated exactly once
    for tr, te in folds:
        assert not set(tr.tolist()) & set(te.tolist())  # never trained on in its own fold
        assert sorted(np.concatenate([tr, te]).tolist()) == list(range(53))
    with pytest.raises(AdvtopoError, match="n_splits"):
        cross_fitted_folds(np.arange(3), n_splits=5)


def test_recovery_cross_fitted_protocol_does_not_memorise():
    """Random labels, adversarial = clean: the paper protocol scores the SVM on its own
    training inputs (memorised: recovery 1), the cross-fitted one never does."""
    from advtopo.persistence import recovery_experiment

    torch.manual_seed(0)
    g = ActivationGraph(input_shape=(2, 7, 7)).fit(_Tiny().eval())
    rng = np.random.default_rng(1)
    x = rng.random((40, 2, 7, 7)).astype(np.float32)
    y = rng.integers(0, 4, 40)
    res = recovery_experiment(g, x, y, {"same": (x, y)}, cv=4, min_persistence=-1, binary=False)
    assert res["attacks"]["same"]["recovery_accuracy"] == 1.0  # memorised
    cf = res["attacks_cross_fitted"]["same"]
    assert cf["n"] == 40 and cf["recovery_accuracy"] < 0.75
    assert "paper" in res["protocols"]["attacks"] and "cross-fitted" in res["protocols"]["attacks_cross_fitted"]
    res_cf = recovery_experiment(g, x, y, {"same": (x[:25], y[:25])}, cv=4, min_persistence=-1,
                                 protocol="cross_fitted")
    assert "attacks" not in res_cf and res_cf["attacks_cross_fitted"]["same"]["n"] == 25
    with pytest.raises(AdvtopoError, match="protocol"):
        recovery_experiment(g, x, y, {}, protocol="transductive")
