"""The separability and stability stages and the mapper sets' ``rows`` option, on a tiny real
study (digits, lenet5, PGD): the JSON files against direct recomputations with scikit-learn
and advtopo.mapper, caching, and the index entries."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from advtopo.errors import AdvtopoError
from advtopo.study import StudyConfig, make_plan, open_run, run_study

pytestmark = pytest.mark.timeout(300)

GRID = {"n_intervals": [4, 6], "overlap": [0.3, 0.5], "metric": ["euclidean", "cosine"], "n_boot": 200}


def tiny(**over) -> dict:
    d = {"name": "tiny", "seed": 1, "device": "cpu",
         "dataset": {"name": "digits", "split": "test", "subset": 100, "train_subset": 300},
         "models": [{"name": "std", "arch": "lenet5",
                     "train": {"method": "standard", "eps": 0.0, "epochs": 1, "batch_size": 64,
                               "eval_subset": 20, "eval_steps": 1}}],
         "attacks": [{"name": "pgd", "eps": [0.0, 0.3], "steps": 2}],
         "layers": [{"module": "relu2", "summary": "top_l2"}, {"module": "fc1"}],
         "capture": {"batch_size": 50},
         "mapper": [{"name": "both", "n_intervals": 4, "overlap": 0.3, "min_samples": 2},
                    {"name": "adv", "n_intervals": 4, "overlap": 0.3, "min_samples": 2, "rows": "adversarial"},
                    {"name": "clean", "n_intervals": 4, "overlap": 0.3, "min_samples": 2, "rows": "clean"}],
         "persistence": {"enabled": False}, "vulnerability": {"enabled": False},
         "separability": {"k": 3, "cv": 4, "n_boot": 200},
         "stability": GRID}
    d.update(over)
    return d


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return run_study(StudyConfig.from_dict(tiny()), out=tmp_path_factory.mktemp("measures") / "run", verbose=False)


def _labels(run) -> np.ndarray:
    s = run.samples
    s = s[(s.model == "std") & (s.eps == 0)].sort_values("sample_id")
    return s.label.to_numpy()


# --- rows ----------------------------------------------------------------------------------------

def test_rows_both_is_todays_graph_byte_for_byte(run_dir):
    """The default set's graphs are what the mapper stage wrote before ``rows`` existed: clean
    rows then adversarial rows, no ``rows`` key in the graph or the task parameters."""
    from advtopo.mapper import Mapper
    from advtopo.mapper import MapperParams
    from advtopo.study.graphs import k_distance_curve
    from advtopo.study.stages import _json

    run = open_run(run_dir)
    y = _labels(run)
    pred = {e: run.samples.query("eps == @e").sort_values("sample_id").prediction.to_numpy() for e in (0.0, 0.3)}
    for layer in ("relu2", "fc1"):
        X = np.concatenate([run.activations("std", layer), run.activations("std", layer, "pgd", 0.3)])
        md = {"label": np.tile(y, 2), "prediction": np.concatenate([pred[0.0], pred[0.3]]),
              "is_adversarial": np.repeat([False, True], len(y)), "sample_id": np.tile(np.arange(len(y)), 2)}
        mp = {"lens": "l2norm", "cover": "uniform", "n_intervals": 4, "overlap": 0.3, "clusterer": "dbscan",
              "eps": "auto", "min_samples": 2, "metric": "euclidean", "random_state": 1}
        d = Mapper(**mp).fit(X.astype(np.float32), metadata=md).to_dict()
        d["k_distance"] = k_distance_curve(X.astype(np.float32), MapperParams.from_dict(mp), d["params"])
        out = run_dir / f"expected_{layer}.json"
        _json(out, d)
        assert out.read_bytes() == (run_dir / "mapper" / f"std__{layer}__pgd__0.3__both.json").read_bytes()
    plan = make_plan(StudyConfig.from_dict(tiny()))
    t, info = plan.graphs["std__fc1__pgd__0.3__both"]
    assert "rows" not in t.params and info["rows"] == "both"


def test_rows_adversarial_and_clean_hold_only_those_rows(run_dir):
    run = open_run(run_dir)
    idx = {g["id"]: g for g in run.index["graphs"]}
    assert {g["rows"] for g in idx.values()} == {"both", "adversarial", "clean"}
    adv = run.graph("std__fc1__pgd__0.3__adv")
    assert len(adv["points"]["sample_id"]) == 100 and all(adv["points"]["is_adversarial"])
    assert adv["params"]["rows"] == "adversarial" and idx["std__fc1__pgd__0.3__adv"]["params"]["rows"] == "adversarial"
    adv_pred = run.samples.query("eps == 0.3").sort_values("sample_id").prediction.tolist()
    assert adv["points"]["prediction"] == adv_pred
    clean = run.graph("std__fc1__pgd__0.3__clean")
    base = run.graph("std__fc1__pgd__0__both")
    assert clean["params"]["rows"] == "clean" and not any(clean["points"]["is_adversarial"])
    assert clean["nodes"] == base["nodes"] and clean["points"] == base["points"]
    # eps 0 graphs hold the clean rows whatever rows says: one graph, the same bytes
    for s in ("adv", "clean"):
        assert (run_dir / "mapper" / f"std__fc1__pgd__0__{s}.json").read_bytes() == \
            (run_dir / "mapper" / "std__fc1__pgd__0__both.json").read_bytes()


def test_rows_and_measures_config_errors_say_what_is_allowed():
    with pytest.raises(AdvtopoError, match=r"mapper\[0\].rows='adv' is not valid.*allowed: both, adversarial, clean"):
        StudyConfig.from_dict(tiny(mapper=[{"rows": "adv"}]))
    with pytest.raises(AdvtopoError, match="separability.cv=1 must be >= 2"):
        StudyConfig.from_dict(tiny(separability={"cv": 1}))
    with pytest.raises(AdvtopoError, match=r"separability.metric='l1'.*allowed: euclidean, cosine"):
        StudyConfig.from_dict(tiny(separability={"metric": "l1"}))
    with pytest.raises(AdvtopoError, match=r"stability.metric\[1\]='cosin'.*did you mean 'cosine'"):
        StudyConfig.from_dict(tiny(stability={"metric": ["euclidean", "cosin"]}))
    with pytest.raises(AdvtopoError, match=r"stability.overlap\[0\]=1.0 must be in \[0, 1\)"):
        StudyConfig.from_dict(tiny(stability={"overlap": [1.0]}))
    with pytest.raises(AdvtopoError, match="stability.n_intervals is empty"):
        StudyConfig.from_dict(tiny(stability={"n_intervals": []}))
    with pytest.raises(AdvtopoError, match="unknown key 'separability.kk'"):
        StudyConfig.from_dict(tiny(separability={"kk": 3}))
    cfg = StudyConfig.from_dict({k: v for k, v in tiny().items() if k not in ("separability", "stability")})
    assert cfg.separability.enabled and (cfg.separability.k, cfg.separability.cv, cfg.separability.n_boot) == (5, 5, 1000)
    assert (cfg.stability.n_intervals, cfg.stability.overlap, cfg.stability.metric) == \
        ([10, 20, 30], [0.3, 0.45, 0.6], ["euclidean", "cosine"])


# --- separability --------------------------------------------------------------------------------

def test_separability_json_matches_a_direct_sklearn_computation(run_dir):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import silhouette_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    run = open_run(run_dir)
    assert run.index["separability"] == "separability.json"
    doc = run.separability()
    assert doc["params"]["k"] == 3 and doc["params"]["cv"] == 4 and doc["params"]["n_boot"] == 200
    assert doc["params"]["level"] == 0.95 and doc["params"]["metric"] == "euclidean"
    rows = {(r["layer"], r["eps"]): r for r in doc["rows"]}
    assert len(doc["rows"]) == 4 and all(r["model"] == "std" and r["attack"] == "pgd" for r in doc["rows"])
    y = _labels(run)
    skf = StratifiedKFold(n_splits=4, shuffle=True, random_state=1)
    for (layer, eps), r in rows.items():
        X = run.activations("std", layer, "pgd", eps)  # adversarial rows at eps > 0, clean at 0
        assert r["n"] == len(y) == 100
        knn = (cross_val_predict(KNeighborsClassifier(n_neighbors=3), X, y, cv=skf) == y).mean()
        probe = (cross_val_predict(make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
                                   X.astype(np.float64), y, cv=skf) == y).mean()
        assert r["knn_accuracy"]["value"] == pytest.approx(knn, abs=1e-12)
        assert r["probe_accuracy"]["value"] == pytest.approx(probe, abs=1e-12)
        assert r["silhouette"]["value"] == pytest.approx(silhouette_score(X, y), abs=1e-5)
        for key in ("knn_accuracy", "probe_accuracy", "silhouette"):
            ci = r[key]
            assert set(ci) == {"value", "lo", "hi"} and ci["lo"] <= ci["value"] <= ci["hi"] and ci["lo"] < ci["hi"]
        assert set(r["silhouette_by_class"]) == {str(c) for c in np.unique(y)}
    # the attack moves the adversarial rows towards other classes at the model's last hidden layer
    assert rows[("fc1", 0.3)]["knn_accuracy"]["value"] < rows[("fc1", 0.0)]["knn_accuracy"]["value"]


def test_show_prints_the_separability_table(run_dir, capsys):
    from advtopo.cli import main

    assert main(["show", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "separability of the true classes" in out and "k-NN accuracy under pgd" in out
    rows = open_run(run_dir).separability()["rows"]
    fc1 = {r["eps"]: r for r in rows if r["layer"] == "fc1"}
    block = out[out.index("linear-probe accuracy under pgd"):]
    line = next(ln for ln in block.splitlines() if ln.startswith("std / fc1"))
    assert line.split()[-2:] == [f"{fc1[0.0]['probe_accuracy']['value']:.3f}", f"{fc1[0.3]['probe_accuracy']['value']:.3f}"]


# --- stability -----------------------------------------------------------------------------------

def test_stability_json_matches_graphs_built_directly(run_dir):
    from advtopo.mapper import Mapper, MapperGraph, graph_statistics, point_purity

    run = open_run(run_dir)
    assert run.index["stability"] == "stability.json"
    doc = run.stability()
    assert doc["grid"] == {"n_intervals": [4, 6], "overlap": [0.3, 0.5], "metric": ["euclidean", "cosine"]}
    assert len(doc["rows"]) == 4
    r = next(r for r in doc["rows"] if r["layer"] == "relu2" and r["eps"] == 0.3)
    assert r["rows"] == "both" and r["model"] == "std" and r["attack"] == "pgd"
    assert [(s["n_intervals"], s["overlap"], s["metric"]) for s in r["settings"]] == \
        [(n, o, m) for n in (4, 6) for o in (0.3, 0.5) for m in ("euclidean", "cosine")]
    # one setting rebuilt from the stored activations with a plain Mapper.fit (no sweep)
    y = _labels(run)
    X = np.concatenate([run.activations("std", "relu2"), run.activations("std", "relu2", "pgd", 0.3)])
    # (euclidean is the first set's metric: the stage reuses that graph's resolved eps="auto")
    for setting in ((6, 0.5, "cosine"), (4, 0.3, "euclidean")):
        s = next(s for s in r["settings"] if (s["n_intervals"], s["overlap"], s["metric"]) == setting)
        g = Mapper(n_intervals=setting[0], overlap=setting[1], metric=setting[2], min_samples=2, random_state=1).fit(
            X.astype(np.float32), metadata={"label": np.tile(y, 2)})
        assert s["n_nodes"] == g.n_nodes and s["n_noise"] == len(g.noise_rows)
        assert s["mean_purity"] == pytest.approx(graph_statistics(g)["mean_purity"], abs=1e-12)
        assert s["mixing"] == pytest.approx(1 - np.nanmean(point_purity(g)), abs=1e-12)
    for key in ("mean_purity", "mixing"):
        vals = [x[key] for x in r["settings"]]
        assert r[key] == pytest.approx({"min": min(vals), "median": float(np.median(vals)), "max": max(vals)})
    # the point-purity CIs of every study graph
    by_id = {e["graph_id"]: e for e in doc["graphs"]}
    assert set(by_id) == {g["id"] for g in run.index["graphs"]}
    for gid, e in by_id.items():
        stored = MapperGraph.from_dict(run.graph(gid))
        pp = point_purity(stored)
        ci = e["mean_point_purity"]
        assert ci["value"] == pytest.approx(np.nanmean(pp), abs=1e-12) and ci["lo"] <= ci["value"] <= ci["hi"]
        stats = run.graph(gid)["stats"]
        if "mean_point_purity_adversarial" in e:  # the mapper's own clean / adversarial split
            assert e["mean_point_purity_clean"]["value"] == pytest.approx(stats["mean_point_purity_clean"])
            assert e["mean_point_purity_adversarial"]["value"] == pytest.approx(stats["mean_point_purity_adversarial"])
    assert "mean_point_purity_adversarial" in by_id["std__fc1__pgd__0.3__both"]


def test_second_run_is_cached_and_a_grid_change_recomputes_only_stability(run_dir, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(run_dir, root)
    before = (root / "separability.json").read_text()
    run_study(StudyConfig.from_dict(tiny()), out=root, verbose=False)
    m = json.loads((root / "manifest.json").read_text())
    assert {t["status"] for t in m["tasks"].values()} == {"cached"}
    assert (root / "separability.json").read_text() == before
    run_study(StudyConfig.from_dict(tiny(stability={**GRID, "overlap": [0.4]})), out=root, verbose=False)
    m = json.loads((root / "manifest.json").read_text())
    done = {t["stage"] for t in m["tasks"].values() if t["status"] == "done"}
    assert done == {"stability"}
    assert json.loads((root / "stability.json").read_text())["grid"]["overlap"] == [0.4]
    # disabled stages: no file, no index entry
    run_study(StudyConfig.from_dict(tiny(separability={"enabled": False}, stability={"enabled": False})),
              out=root, verbose=False)
    idx = json.loads((root / "index.json").read_text())
    assert "separability" not in idx and "stability" not in idx
    assert not (root / "separability.json").exists() and not (root / "stability.json").exists()
