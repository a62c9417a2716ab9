"""Activation-graph persistence in the study, the run directory and the app (issue 14 part 1).

- H1: the flag complex (finite H1 bars) against gudhi's SimplexTree with expansion(2) on small
  random graphs (H0, H1, H2 diagrams equal, bottleneck distance 0); the activation graph is
  bipartite, so its flag complex is the graph (gudhi finds no triangle, the same diagrams).
- The ``[activation_graph]`` stage on a tiny real study (digits, lenet5, PGD): the stored
  file and its index key, the dominant subgraphs recomputed from the model, and the AUC
  table recomputed with scikit-learn (topological features, raw activations captured by
  forward hooks, softmax confidence) with the same bootstrap CIs.
- The app: the JSON route, the static export's embedded copy, and the view in a browser.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from advtopo.errors import AdvtopoError, ConfigErrors
from advtopo.persistence.activation_graph import (ActivationGraph, flag_persistence, graph_persistence,
                                                  is_bipartite)

pytestmark = pytest.mark.timeout(600)


# --- H1: the flag complex against gudhi ---------------------------------------------------------

def _gudhi_flag_diagrams(src, dst, w, n):
    """gudhi's persistence of the same superlevel filtration (values negated: gudhi filters by
    increasing value), flag complex up to triangles; essential deaths are -inf."""
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
    st.expansion(2)  # a triangle enters with its last (lightest) edge
    st.compute_persistence(min_persistence=-1, persistence_dim_max=True)
    dgms = [-np.asarray(st.persistence_intervals_in_dimension(d)).reshape(-1, 2) for d in range(3)]
    n_triangles = sum(1 for s, _ in st.get_skeleton(2) if len(s) == 3)
    return dgms, n_triangles


def _sorted(d):
    return np.asarray(sorted(map(tuple, np.asarray(d).tolist())))


def _simple_random_graph(seed, n, m, ties=True):
    rng = np.random.default_rng(seed)
    src, dst = rng.integers(0, n, m), rng.integers(0, n, m)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    _, first = np.unique(np.minimum(src, dst) * n + np.maximum(src, dst), return_index=True)
    src, dst = src[np.sort(first)], dst[np.sort(first)]
    w = np.round(rng.random(len(src)), 1 if ties else 9)  # one decimal: many equal weights
    w[rng.random(len(w)) < 0.1] = 0  # weight 0: not in the filtration
    return src, dst, w


@pytest.mark.parametrize("seed,n,m,ties", [(0, 30, 120, True), (1, 60, 400, True), (2, 200, 3000, True),
                                           (3, 12, 50, False), (4, 100, 900, False)])
def test_flag_complex_diagrams_equal_gudhi(seed, n, m, ties):
    import gudhi

    src, dst, w = _simple_random_graph(seed, n, m, ties)
    res = flag_persistence(src, dst, w, n)
    ref, n_tri = _gudhi_flag_diagrams(src, dst, w, n)
    assert not res.bipartite and res.n_triangles == n_tri > 0
    for dim in range(3):
        ours = res.diagram(dim, essential_death=-np.inf)
        assert ours.shape == ref[dim].shape, dim
        np.testing.assert_allclose(_sorted(ours), _sorted(ref[dim]))
        fin_o, fin_r = ours[np.isfinite(ours[:, 1])], ref[dim][np.isfinite(ref[dim][:, 1])]
        assert gudhi.bottleneck_distance(fin_o, fin_r) == 0.0
    assert len(res.h1_pairs) > 0 and (res.h1_pairs[:, 0] >= res.h1_pairs[:, 1]).all()  # finite H1 bars exist


def test_flag_complex_by_hand():
    # a square 0-1-2-3 (weights 5, 4, 3, 2) with the diagonal 0-2 (weight 1), superlevel:
    #   t=3: 2-3 joins the last vertex; t=2: 3-0 closes the square -> H1 born at 2
    #   t=1: 0-2 splits it into two triangles: it closes a second cycle (born at 1), and both
    #        triangles enter at 1, filling both cycles -> H1 bars (2, 1) and (1, 1)
    src, dst, w = np.array([0, 1, 2, 3, 0]), np.array([1, 2, 3, 0, 2]), np.array([5.0, 4, 3, 2, 1])
    res = flag_persistence(src, dst, w, 4)
    assert res.n_triangles == 2
    assert _sorted(res.h1_pairs).tolist() == [[1.0, 1.0], [2.0, 1.0]]
    assert len(res.h1_essential) == 0 and len(res.h2_essential) == 0
    assert _sorted(res.h0_pairs).tolist() == [[3.0, 3.0], [4.0, 4.0], [5.0, 5.0]] and res.h0_essential.tolist() == [5.0]
    # without the diagonal: the square is bipartite, its cycle never dies
    sq = flag_persistence(src[:4], dst[:4], w[:4], 4)
    assert sq.bipartite and sq.n_triangles == 0 and len(sq.h1_pairs) == 0 and sq.h1_essential.tolist() == [2.0]


def test_is_bipartite_and_flag_errors():
    assert is_bipartite([0, 1, 2, 3], [1, 2, 3, 0], 4)  # even cycle
    assert not is_bipartite([0, 1, 2], [1, 2, 0], 3)  # triangle
    assert not is_bipartite([0], [0], 1)  # self-loop
    assert is_bipartite([], [], 5) and is_bipartite([0, 2], [1, 3], 4)
    with pytest.raises(AdvtopoError, match="self-loops"):
        flag_persistence([0, 1], [0, 2], [1.0, 1.0], 3)
    with pytest.raises(AdvtopoError, match="max_paths"):
        src, dst, w = _simple_random_graph(0, 60, 600)
        flag_persistence(src, dst, w, 60, max_paths=10)
    with pytest.raises(AdvtopoError, match="dim must be"):
        flag_persistence([0], [1], [1.0], 2).diagram(3)


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


def test_activation_graph_is_bipartite_so_its_flag_complex_is_the_graph():
    """Every edge joins a vertex layer to the next: no triangle, all H1 essential (cycle rank)."""
    torch.manual_seed(0)
    model = _Tiny().eval()
    g = ActivationGraph(input_shape=(2, 7, 7)).fit(model)
    x = torch.rand(2, 7, 7)
    w = g.edge_weights(x)
    assert is_bipartite(g.src_, g.dst_, g.n_vertices_)
    ref, n_tri = _gudhi_flag_diagrams(g.src_, g.dst_, w, g.n_vertices_)
    assert n_tri == 0  # gudhi's expansion finds no triangle
    flag = flag_persistence(g.src_, g.dst_, w, g.n_vertices_)
    assert flag.bipartite and flag.n_triangles == 0 and len(flag.h1_pairs) == 0
    res = g.persistence(x, h1=True)
    np.testing.assert_allclose(_sorted(res.pairs), _sorted(ref[0][np.isfinite(ref[0][:, 1])]))
    np.testing.assert_allclose(np.sort(res.essential), np.sort(ref[0][~np.isfinite(ref[0][:, 1]), 0]))
    assert np.isinf(ref[1][:, 1]).all()  # gudhi: every H1 class of the activation graph is essential
    np.testing.assert_allclose(np.sort(res.h1), np.sort(ref[1][:, 0]))
    assert len(res.h1) == int((w > 0).sum()) - len(res.forest_edges)  # the cycle rank
    np.testing.assert_allclose(_sorted(flag.h0_pairs), _sorted(res.pairs))


def test_restricted_layers_and_top_pairs():
    torch.manual_seed(1)
    g = ActivationGraph(input_shape=(2, 7, 7)).fit(_Tiny().eval())
    x = torch.rand(2, 7, 7)
    w = g.edge_weights(x)
    ids = g.edge_ids(["pool", "fc"])
    assert ids.tolist() == list(range(*g.edge_layers_["pool"])) + list(range(*g.edge_layers_["fc"]))
    res = g.persistence(x, layers=["fc", "pool"])  # network order whatever the given order
    ref = graph_persistence(g.src_[ids], g.dst_[ids], w[ids], g.n_vertices_)
    np.testing.assert_allclose(_sorted(res.pairs), _sorted(ref.pairs))
    assert set(res.pair_edges.tolist()) <= set(ids.tolist())
    top = res.top_pairs(5)
    p = res.persistence
    assert (np.diff(p[top]) <= 0).all() and p[top[0]] == p.max()
    with pytest.raises(AdvtopoError, match="did you mean 'pool'"):
        g.edge_ids(["poool"])
    _, vals = g.edge_weights(x, values=True)
    with torch.no_grad():
        assert np.allclose(vals["out"], g.model_(x[None])[0].numpy(), atol=1e-6)
        assert np.allclose(vals["conv"], torch.relu(g.model_.conv(x[None])).reshape(-1).numpy(), atol=1e-6)


def test_class_typical_features_by_hand():
    from advtopo.persistence.detection import class_typical_features

    # samples 0, 1 (class 0) and 2 (class 1); rows 0-2 clean, rows 3-5 adversarial
    sets = [np.array([1, 2]), np.array([1, 3]), np.array([7, 8]), np.array([7, 2]), np.array([1, 9]), np.array([8])]
    pred = np.array([0, 0, 1, 1, 0, 0])
    out = class_typical_features(sets, pred, np.array([0, 1, 2, 0, 1, 2]), {0: 0, 1: 1, 2: 2}, {0: 0, 1: 0, 2: 1}, 2)
    # row 0 (sample 0, class 0): leave-one-out counts of class 0 = sample 1's {1, 3}; typical {1, 3}
    assert out[0].tolist() == [0.5, 0.5]
    # row 2 (sample 2, class 1): the only class-1 sample is itself -> nothing left
    assert out[2].tolist() == [0.0, 0.0]
    # row 3 (sample 0 predicted 1): class 1's counts are sample 2's {7, 8}, nothing left out
    assert out[3].tolist() == [0.5, 0.5]
    # row 5 (sample 2 predicted 0): class 0 counts {1: 2, 2: 1, 3: 1}; typical = {1, 2}; 8 is in neither
    assert out[5].tolist() == [0.0, 0.0]


# --- the study stage --------------------------------------------------------------------------

def tiny(**over) -> dict:
    d = {"name": "ag", "seed": 3, "device": "cpu",
         "dataset": {"name": "digits", "split": "test", "subset": 48, "train_subset": 400},
         "models": [{"name": "std", "arch": "lenet5",
                     "train": {"method": "standard", "eps": 0.0, "epochs": 2, "batch_size": 64,
                               "eval_subset": 20, "eval_steps": 1}}],
         "attacks": [{"name": "pgd", "eps": [0.0, 0.1, 0.3], "steps": 3}],
         "layers": [{"module": "fc1"}],
         "capture": {"batch_size": 48},
         "mapper": [{"n_intervals": 4, "overlap": 0.3, "min_samples": 2}],
         "persistence": {"enabled": False}, "vulnerability": {"enabled": False},
         "separability": {"enabled": False}, "stability": {"enabled": False},
         "activation_graph": {"enabled": True, "n_samples": 30, "top_k": 20, "cv": 3, "n_boot": 200}}
    d.update(over)
    return d


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, one_torch_thread) -> Path:
    from advtopo.study import StudyConfig, run_study

    return run_study(StudyConfig.from_dict(tiny()), out=tmp_path_factory.mktemp("actgraph") / "run", verbose=False)


@pytest.fixture(scope="module")
def doc(run_dir) -> dict:
    return json.loads((run_dir / "activation_graph.json").read_text())


def _inputs(run_dir):
    """The study's float inputs (what the stage read): clean, and per eps the adversarial ones."""
    from advtopo.study import StudyConfig, make_plan

    plan = make_plan(StudyConfig.from_dict(tiny()))
    x = np.load(plan.data.out_dir(run_dir) / "x.npy")
    adv = {eps: np.load(t.out_dir(run_dir) / "x_adv.npy") for (_, _, eps), t in plan.attacks.items()}
    return x, adv


def _model(run_dir):
    from advtopo.models import load_checkpoint
    from advtopo.study import open_run

    model, _ = load_checkpoint(open_run(run_dir).checkpoint("std"))
    return model.eval()


def test_stage_writes_its_document_and_index_key(run_dir, doc):
    from advtopo.study import open_run

    run = open_run(run_dir)
    assert run.index["activation_graph"] == "activation_graph.json"
    assert run.document("activation_graph") == doc
    assert doc["model"] == "std" and doc["attack"] == "pgd" and doc["eps"] == [0.1, 0.3]
    assert doc["n_samples"] == 30 and len(doc["samples"]) == 30
    expected_ids = np.sort(np.random.default_rng(3).choice(48, size=30, replace=False))
    assert [s["sample_id"] for s in doc["samples"]] == expected_ids.tolist()
    layers = doc["graph"]["layers"]
    assert [la["name"] for la in layers] == ["input", "conv1", "pool1", "conv2", "pool2", "fc1", "fc2"]
    assert doc["graph"]["edge_layers"] == ["conv1", "pool1", "conv2", "pool2", "fc1", "fc2"]
    assert doc["h1"]["finite_bars"] == 0 and "bipartite" in doc["h1"]["note"]
    for s in doc["samples"]:
        for g in [s["clean"]] + list(s["adversarial"].values()):
            assert len(g["edges"]) == 20 and len(g["bars"]) <= doc["n_bars"]
            for src, dst, li, w, p in g["edges"]:  # edge layer li joins vertex layers li and li + 1
                assert layers[li]["start"] <= src < layers[li]["stop"]
                assert layers[li + 1]["start"] <= dst < layers[li + 1]["stop"]
                assert w > 0 and p > 0
            pers = [e[4] for e in g["edges"]]
            assert pers == sorted(pers, reverse=True)
    # the rows agree with the study's own predictions (samples.parquet)
    samples = run.samples
    rows = doc["rows"]
    for sid, eps, pred in zip(rows["sample_id"], rows["eps"], rows["prediction"]):
        want = samples[(samples.sample_id == sid) & (samples.eps == eps)].prediction.tolist()
        assert want == [pred]
    assert doc["timing"]["graphs"] == 90


def test_dominant_subgraphs_and_confidence_recomputed_from_the_model(run_dir, doc):
    model = _model(run_dir)
    x, adv = _inputs(run_dir)
    g = ActivationGraph(input_shape=tuple(x.shape[1:])).fit(model)
    for s in doc["samples"][:4]:
        for key, inp in [("clean", x)] + [(k, adv[float(k)]) for k in s["adversarial"]]:
            stored = s["clean"] if key == "clean" else s["adversarial"][key]
            res = g.persistence(inp[s["sample_id"]])
            top = res.top_pairs(20)
            got = [[int(g.src_[e]), int(g.dst_[e])] for e in res.pair_edges[top]]
            assert got == [e[:2] for e in stored["edges"]]
            np.testing.assert_allclose([e[4] for e in stored["edges"]], res.persistence[top], rtol=1e-5)
            with torch.no_grad():
                p = torch.softmax(model(torch.from_numpy(inp[s["sample_id"]][None])), 1)[0]
            assert stored["prediction"] == int(p.argmax())
            assert stored["confidence"] == pytest.approx(float(p.max()), rel=1e-5)


def _hooked_activations(model, x):
    """The neuron values the graph's layers pass on, captured by forward hooks (relu1, pool1,
    relu2, pool2, relu3, fc2 outputs), concatenated per input; one input per forward pass, as
    the stage computes them (a batched convolution rounds differently)."""
    names = ["relu1", "pool1", "relu2", "pool2", "relu3", "fc2"]
    got: dict[str, torch.Tensor] = {}
    mods = dict(model.named_modules())
    hooks = [mods[n].register_forward_hook(lambda m, i, o, n=n: got.__setitem__(n, o.detach().clone())) for n in names]
    out = []
    try:
        with torch.no_grad():
            for xi in x:
                model(torch.from_numpy(xi[None]))
                out.append(torch.cat([got[n].reshape(-1) for n in names]).numpy())
    finally:
        for h in hooks:
            h.remove()
    return np.stack(out).astype(np.float64)


def test_auc_table_recomputed_with_sklearn(run_dir, doc):
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from advtopo.stats import bootstrap_ci

    rows = doc["rows"]
    sid = np.asarray(rows["sample_id"])
    eps_of_row = np.asarray(rows["eps"])
    feats = np.asarray(rows["features"])
    conf = np.asarray(rows["confidence"])
    assert feats.shape == (90, len(doc["features"]))
    ids = np.asarray([s["sample_id"] for s in doc["samples"]])
    labels = np.asarray([s["label"] for s in doc["samples"]])
    strata = labels if np.unique(labels, return_counts=True)[1].min() >= 3 else np.zeros(len(labels))
    folds = list(StratifiedKFold(3, shuffle=True, random_state=3).split(np.zeros(len(ids)), strata))
    model = _model(run_dir)
    x, adv = _inputs(run_dir)
    raw = np.concatenate([_hooked_activations(model, x[ids])]
                         + [_hooked_activations(model, adv[e][ids]) for e in doc["eps"]])
    assert len(doc["detection"]["by_eps"]) == 2
    for d in doc["detection"]["by_eps"]:
        sel = np.flatnonzero((eps_of_row == 0) | (eps_of_row == d["eps"]))
        assert d["rows"] == sel.tolist()
        y = eps_of_row[sel] > 0
        groups = sid[sel]
        cols = {m: [doc["features"].index(n) for n in fs] for m, fs in doc["detection"]["feature_sets"].items()}
        assert [doc["features"][i] for i in cols["persistence_statistics"]] == [
            "h0_n_bars", "h0_total_persistence", "h0_max_persistence", "h0_persistent_entropy", "h0_top_k_persistence",
            "h1_essential", "h1_total_birth", "n_positive_edges"]
        assert sorted(cols["persistence_statistics"] + cols["dominant_subgraph"]) == cols["topological"]
        for name, i in zip(doc["features"], range(feats.shape[1])):
            assert d["feature_auc"][name] == pytest.approx(roc_auc_score(y, feats[sel, i]), abs=1e-12)
        sets = [(m, feats[np.ix_(sel, c)], False) for m, c in cols.items()]
        for method, X, pca in sets + [("confidence", conf[sel, None], False), ("raw_activations", raw[sel], True)]:
            scores = np.full(len(sel), np.nan)
            for tr_s, te_s in folds:
                tr, te = np.isin(groups, ids[tr_s]), np.isin(groups, ids[te_s])
                steps = [StandardScaler()] + ([PCA(n_components=20, random_state=3)] if pca else [])
                clf = make_pipeline(*steps, LogisticRegression(max_iter=2000)).fit(X[tr], y[tr])
                scores[te] = clf.predict_proba(X[te])[:, 1]
            stored = np.asarray(d["scores"][method])
            np.testing.assert_allclose(stored, scores, atol=1e-9, err_msg=method)
            m = d["methods"][method]
            assert m["auc"] == pytest.approx(roc_auc_score(y, stored), abs=1e-12)
            ci = bootstrap_ci((y, stored), lambda a, b: roc_auc_score(a, b), n_boot=200, level=0.95, seed=3,
                              groups=groups)
            assert (m["lo"], m["hi"]) == pytest.approx((ci.lo, ci.hi), abs=1e-12)
            assert m["lo"] <= m["auc"] <= m["hi"]


def test_stage_is_cached_and_disabling_removes_the_file(run_dir, tmp_path):
    import shutil

    from advtopo.rundir.records import RunIndex
    from advtopo.study import StudyConfig, open_run, run_study

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    before = (copy / "activation_graph.json").read_bytes()
    run_study(StudyConfig.from_dict(tiny()), out=copy, verbose=False)  # every task cached
    assert (copy / "activation_graph.json").read_bytes() == before
    run_study(StudyConfig.from_dict(tiny(activation_graph={"enabled": False})), out=copy, verbose=False)
    assert not (copy / "activation_graph.json").exists()
    assert "activation_graph" not in open_run(copy).index
    assert "activation_graph" not in RunIndex().to_dict()


def test_config_and_plan_checks():
    from advtopo.study import StudyConfig, make_plan

    assert StudyConfig().activation_graph.enabled is False
    a = StudyConfig.from_dict(tiny()).activation_graph
    assert (a.n_samples, a.top_k, a.classifier) == (30, 20, "logistic")
    with pytest.raises(ConfigErrors, match=r"activation_graph.top_k=0 must be >= 1"):
        StudyConfig.from_dict(tiny(activation_graph={"enabled": True, "top_k": 0}))
    with pytest.raises(ConfigErrors, match="svm"):
        StudyConfig.from_dict(tiny(activation_graph={"enabled": True, "classifier": "svm"}))
    with pytest.raises(ConfigErrors, match="unknown key 'activation_graph.topk'"):
        StudyConfig.from_dict(tiny(activation_graph={"enabled": True, "topk": 5}))
    # cross-references: reported by the config check (`advtopo run --check`), before any work
    with pytest.raises(ConfigErrors, match=r"activation_graph.model='stdd' is not valid \(did you mean 'std'"):
        StudyConfig.from_dict(tiny(activation_graph={"enabled": True, "model": "stdd"}))
    with pytest.raises(ConfigErrors, match="activation_graph.eps: 0.2 is not an eps of attack 'pgd'; allowed: 0.1, 0.3"):
        StudyConfig.from_dict(tiny(activation_graph={"enabled": True, "eps": [0.2]}))
    with pytest.raises(ConfigErrors, match=r"activation_graph.attack='pgdd' is not valid \(did you mean 'pgd'"):
        StudyConfig.from_dict(tiny(activation_graph={"enabled": True, "attack": "pgdd"}))
    with pytest.raises(ConfigErrors, match="activation_graph: attack 'pgd' has no eps > 0 to compare the clean inputs "
                                           "with; give activation_graph.eps"):
        StudyConfig.from_dict(tiny(attacks=[{"name": "pgd", "eps": [0.0], "steps": 3}]))
    with pytest.raises(ConfigErrors) as caught:  # every problem at once, each named once
        StudyConfig.from_dict(tiny(activation_graph={"enabled": True, "model": "stdd", "attack": "fgsm",
                                                     "eps": [0.2]}))
    assert len(caught.value.problems) == 2  # the eps are not checked against an attack the study lacks
    # a disabled stage's references are not checked (the stage does not run)
    StudyConfig.from_dict(tiny(activation_graph={"enabled": False, "model": "stdd"}))
    # and again by the plan, for a config changed after it was checked
    for key, value, message in (("model", "stdd", "did you mean 'std'"),
                                ("eps", [0.2], "0.2 is not an eps of attack 'pgd'")):
        cfg = StudyConfig.from_dict(tiny())
        setattr(cfg.activation_graph, key, value)
        with pytest.raises(AdvtopoError, match=message):
            make_plan(cfg)
    plan = make_plan(StudyConfig.from_dict(tiny(activation_graph={"enabled": True, "eps": [0.3]})))
    t = plan.activation_graph
    assert [r["eps"] for r in t.params["eps_roles"]] == [0.3]
    assert set(t.deps) == {"data", "model", t.params["eps_roles"][0]["role"]}


# --- the app ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(run_dir):
    from advtopo.app import serve

    srv = serve(run_dir, port=0, open_browser=False, block=False)
    yield srv
    srv.shutdown()


def _get(url):
    import urllib.request

    with urllib.request.urlopen(url, timeout=20) as r:
        return json.loads(r.read())


def test_api_route_and_static_export(server, run_dir, doc, tmp_path):
    from advtopo.app import export_html
    from advtopo.app.export import embedded_data

    got = _get(server.url + "api/activation-graph")
    assert got["available"] is True and got["samples"] == doc["samples"] and got["detection"] == doc["detection"]
    out = export_html(run_dir, tmp_path / "e.html", images=False)
    html = out.read_text()
    embed = embedded_data(html)  # the compressed payload, as the page unpacks it
    assert embed["activation_graph"]["samples"] == doc["samples"]


def test_api_route_without_the_document(study_run):
    from advtopo.app import serve

    srv = serve(study_run, port=0, open_browser=False, block=False)
    try:
        assert _get(srv.url + "api/activation-graph") == {"available": False}
    finally:
        srv.shutdown()


CHROMIUM = os.environ.get("ADVTOPO_CHROMIUM", "/usr/bin/chromium")


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed")
def test_view_in_a_browser(server, doc):
    import time

    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    s = next(x for x in doc["samples"] if x["adversarial"]["0.3"]["prediction"] != x["label"]) if any(
        x["adversarial"]["0.3"]["prediction"] != x["label"] for x in doc["samples"]) else doc["samples"][0]
    sid = s["sample_id"]
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            pg = b.new_page(viewport={"width": 1500, "height": 1100})
            pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            pg.on("pageerror", lambda e: errors.append(str(e)))
            pg.goto(server.url)
            pg.wait_for_selector("body[data-ready='1']", timeout=30000)
            pg.fill("#locate-input", str(sid))
            pg.click("#locate-btn")
            pg.wait_for_selector("#locate-info .ag-open", timeout=10000)
            pg.click("#locate-info .ag-open")
            pg.wait_for_selector(".ag-card svg.ag-net")
            for key in ("0.1", "0.3"):
                pg.click(f".ag-eps button[data-v='{key}']")
                assert pg.get_attribute(".ag-card", "data-eps") == key
                clean = {tuple(e[:2]) for e in s["clean"]["edges"]}
                adv = {tuple(e[:2]) for e in s["adversarial"][key]["edges"]}
                for cls, want in (("shared", clean & adv), ("clean", clean - adv), ("adversarial", adv - clean)):
                    got = pg.eval_on_selector_all(f"path.ag-edge.{cls}",
                                                  "els => els.map(e => [+e.dataset.src, +e.dataset.dst])")
                    assert {tuple(x) for x in got} == want, (key, cls)
                n_bars = [sum(1 for b_, d_ in g["bars"] if b_ > d_) for g in (s["clean"], s["adversarial"][key])]
                assert pg.locator("svg.ag-barcode[data-kind='clean'] line.ag-bar").count() == min(50, n_bars[0])
                assert pg.locator("svg.ag-barcode[data-kind='adversarial'] line.ag-bar").count() == min(50, n_bars[1])
                assert pg.locator(".ag-detect tr[data-method]").count() == 5
            Path("test-artifacts").mkdir(exist_ok=True)
            time.sleep(0.2)
            pg.screenshot(path="test-artifacts/app-actgraph.png")
            pg.keyboard.press("Escape")
            assert pg.locator(".ag-overlay").count() == 0
        finally:
            b.close()
    assert errors == []


# --- bad inputs -----------------------------------------------------------------------------------

def test_unknown_layer_stops_the_stage_with_the_allowed_names(run_dir, tmp_path):
    import shutil

    from advtopo.study import StudyConfig, run_study

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    cfg = tiny(activation_graph={"enabled": True, "n_samples": 30, "top_k": 20, "cv": 3, "n_boot": 200,
                                 "layers": ["conv9"]})
    with pytest.raises(AdvtopoError, match=r"'conv9' has no edges in the activation graph.*conv1, pool1"):
        run_study(StudyConfig.from_dict(cfg), out=copy, verbose=False)


def test_damaged_document_reads_as_unavailable_with_the_reason(run_dir, tmp_path):
    import shutil

    from advtopo.study import open_run
    from advtopo.study.actgraph import app_document

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    for text in ("[1, 2]", "{not json"):
        (copy / "activation_graph.json").write_text(text)
        got = app_document(open_run(copy))
        assert got["available"] is False and "activation_graph.json" in got["error"]
    (copy / "activation_graph.json").unlink()
    assert app_document(open_run(copy)) == {"available": False}


def test_sample_choice_and_folds_edge_cases():
    from advtopo.persistence.detection import sample_folds
    from advtopo.study.actgraph import choose_samples

    assert choose_samples(10, 100, 0).tolist() == list(range(10))  # fewer samples than asked: all
    ids = choose_samples(50, 20, 1)
    assert len(ids) == 20 and (np.diff(ids) > 0).all() and choose_samples(50, 20, 1).tolist() == ids.tolist()
    with pytest.raises(AdvtopoError, match="needs at least 5 samples"):
        sample_folds(np.arange(4), 5, 0)
    folds = sample_folds(np.array([0, 0, 0, 1, 1, 1, 2]), 3, 0)  # class 2 has one sample: unstratified
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(7))
