"""One way to build a graph: the web app's rebuild with the study's parameters gives the study's
graph byte for byte (every rows setting, eps 0 and > 0, a set with its own random_state), also for
runs published before graph entries recorded how they were built; and the rebuild's parameter
rules are the Mapper's."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from advtopo.app.data import BadRequest, RunData
from advtopo.app.recompute import RecomputeManager, graph_blocks, validate
from advtopo.study import StudyConfig, run_study
from advtopo.study.graphs import build_graph
from advtopo.utils import atomic_write_json

pytestmark = pytest.mark.timeout(300)


def config() -> dict:
    return {"name": "graphs", "seed": 3, "device": "cpu",
            "dataset": {"name": "digits", "split": "test", "subset": 60, "train_subset": 200},
            "models": [{"name": "std", "arch": "lenet5",
                        "train": {"method": "standard", "eps": 0.0, "epochs": 1, "batch_size": 64,
                                  "eval_subset": 20, "eval_steps": 1}}],
            "attacks": [{"name": "fgsm", "eps": [0.0, 0.2]}],
            "layers": [{"module": "fc1"}],
            "capture": {"batch_size": 50},
            "mapper": [{"name": "both", "n_intervals": 4, "overlap": 0.3, "min_samples": 2},
                       {"name": "adv", "n_intervals": 3, "overlap": 0.4, "min_samples": 2, "rows": "adversarial",
                        "metric": "cosine"},
                       {"name": "seeded", "n_intervals": 4, "overlap": 0.3, "min_samples": 3, "rows": "clean",
                        "random_state": 7}],
            "persistence": {"enabled": False}, "vulnerability": {"enabled": False},
            "separability": {"enabled": False}, "stability": {"enabled": False}}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return run_study(StudyConfig.from_dict(config()), out=tmp_path_factory.mktemp("graphs") / "run", verbose=False)


def rebuilt_bytes(run: RunData, gid: str, tmp_path: Path, request: dict | None = None) -> bytes:
    p = validate({"graph": gid, **(request or {})}, run)
    e = p["entry"]
    rows = e.rows if e.rows not in (None, "both") and e.eps > 0 else None
    doc, _ = build_graph(graph_blocks(run, e), p["params"], seed=p["seed"], rows=rows)
    out = tmp_path / f"{gid}.json"
    atomic_write_json(out, doc)  # the study's mapper task writes graph.json the same way
    return out.read_bytes()


def test_rebuild_with_the_study_parameters_is_the_study_graph(run_dir, tmp_path):
    run = RunData(run_dir)
    graphs = run.reader.graph_entries()
    assert len(graphs) == 6 and {g.rows for g in graphs} == {"both", "adversarial", "clean"}
    for g in graphs:
        assert g.build and g.build["seed"] == 3
        assert rebuilt_bytes(run, g.id, tmp_path) == (run_dir / g.path).read_bytes(), g.id


def test_runs_published_before_build_was_recorded_rebuild_the_same(run_dir, tmp_path):
    """Older index.json entries carry no "build": the stored params and the study seed suffice
    (the sets above use no non-default option the stored graph params would not tell)."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    idx = json.loads((old / "index.json").read_text())
    for g in idx["graphs"]:
        g.pop("build")
    idx.pop("format_version", None)
    (old / "index.json").write_text(json.dumps(idx))
    run = RunData(old)
    for g in run.reader.graph_entries():
        if g.mapper_set == "seeded":  # random_state=7 is not in a stored graph: only "build" knows it
            continue
        assert rebuilt_bytes(run, g.id, tmp_path) == (old / g.path).read_bytes(), g.id


def test_the_app_job_keeps_the_rebuilt_graph(run_dir):
    run = RunData(run_dir)
    gid = next(g.id for g in run.reader.graph_entries() if g.mapper_set == "both" and g.eps > 0)
    manager = RecomputeManager(run)
    job = manager.submit({"graph": gid, "n_intervals": 5})
    for _ in range(600):
        job = manager.status(job["id"])
        if job["state"] in ("done", "error"):
            break
        time.sleep(0.05)
    assert job["state"] == "done", job
    kept = run.reader.graph_entry(job["graph_id"])
    assert kept.recomputed and kept.source == gid and kept.params["n_intervals"] == 5
    assert kept.build["mapper"]["n_intervals"] == 5 and kept.build["mapper"]["random_state"] == 3
    assert run.reader.graph(kept.id)["params"]["n_intervals"] == 5
    # a rebuild of the rebuilt graph with its own parameters is itself
    again = validate({"graph": kept.id}, run)
    assert again["params"] == validate({"graph": gid, "n_intervals": 5}, run)["params"]


@pytest.mark.parametrize("request_, message", [
    ({"n_intervals": 0}, r"request\.n_intervals"),
    ({"n_intervals": 1000}, r"n_intervals.*120"),  # more intervals than the graph's 120 rows
    ({"overlap": 1.5}, r"request\.overlap"),
    ({"eps": -1}, r"request\.eps"),
    ({"n_intervals": True}, r"request\.n_intervals"),
    ({"lens": "precomputed"}, "lens must be one of"),
    ({"lens": "l2nrom"}, "lens must be one of"),
    ({"metric": "cosine"}, "unknown key.*metric.*may set lens, n_intervals, overlap, eps"),
])
def test_rebuild_requests_are_checked_by_the_mapper_rules(run_dir, request_, message):
    run = RunData(run_dir)
    gid = next(g.id for g in run.reader.graph_entries() if g.mapper_set == "both" and g.eps > 0)
    with pytest.raises(BadRequest, match=message):
        validate({"graph": gid, **request_}, run)
