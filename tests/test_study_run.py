"""End-to-end runs of a tiny study: outputs, cache hits, targeted invalidation, resume after kill -9."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from advtopo.study import StudyConfig, open_run, run_study
from advtopo.study.tasks import DONE

pytestmark = pytest.mark.timeout(300)


def tiny(**over) -> dict:
    d = {"name": "tiny", "seed": 1, "device": "cpu",
         "dataset": {"name": "digits", "split": "test", "subset": 60, "train_subset": 300},
         "models": [{"name": "std", "arch": "lenet5",
                     "train": {"method": "standard", "eps": 0.0, "epochs": 1, "batch_size": 64,
                               "eval_subset": 20, "eval_steps": 1}},
                    {"name": "at", "arch": "lenet5",
                     "train": {"method": "fgsm", "eps": 0.2, "epochs": 1, "batch_size": 64,
                               "eval_subset": 20, "eval_steps": 1}}],
         "attacks": [{"name": "pgd", "eps": [0.0, 0.1, 0.3], "steps": 2}],
         "layers": [{"module": "relu2", "summary": "top_l2"}, {"module": "fc1"}],
         "capture": {"batch_size": 25},
         "mapper": [{"n_intervals": 4, "overlap": 0.3, "min_samples": 2}],
         "persistence": {"enabled": False}}
    for k, v in over.items():
        d[k] = v
    return d


def statuses(root: Path) -> dict[str, set[str]]:
    m = json.loads((root / "manifest.json").read_text())
    out: dict[str, set[str]] = {}
    for t in m["tasks"].values():
        out.setdefault(t["stage"], set()).add(t["status"])
    return out


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("study") / "run"
    run_study(StudyConfig.from_dict(tiny()), out=root, verbose=False)
    return root


def test_run_directory_follows_the_contract(first_run):
    idx = json.loads((first_run / "index.json").read_text())
    assert idx["dataset"]["n_samples"] == 60 and idx["dataset"]["image_shape"] == [1, 8, 8]
    assert [m["name"] for m in idx["models"]] == ["std", "at"]
    assert idx["layers"] == ["relu2", "fc1"]
    assert len(idx["accuracy"]) == 2 * 3
    clean = np.load(first_run / idx["images"]["clean"])
    assert clean.dtype == np.uint8 and clean.shape == (60, 8, 8, 1)
    assert set(idx["images"]["adversarial"]) == {f"{m}/pgd/{e}" for m in ("std", "at") for e in ("0.1", "0.3")}
    for rel in idx["images"]["adversarial"].values():
        adv = np.load(first_run / rel)
        assert adv.shape == clean.shape and np.abs(adv.astype(int) - clean).max() <= round(0.3 * 255) + 1
    assert len(idx["graphs"]) == 2 * 2 * 3
    for g in idx["graphs"]:
        doc = json.loads((first_run / g["path"]).read_text())
        n_rows = len(doc["points"]["sample_id"])
        assert n_rows == (60 if g["eps"] == 0 else 120)
        assert sum(doc["points"]["is_adversarial"]) == (0 if g["eps"] == 0 else 60)
        assert {"nodes", "edges", "stats", "params"} <= set(doc)
        kd = doc["k_distance"]  # the curve the app draws beside the eps input
        assert kd["k"] == doc["params"]["min_samples"] and len(kd["values"]) == 100
        assert np.all(np.diff(kd["values"]) >= 0) and kd["eps"] == doc["params"]["eps"]
        assert g["id"] == f"{g['model']}__{g['layer']}__{g['attack']}__{g['eps']:g}"
    df = pd.read_parquet(first_run / "samples.parquet")
    assert list(df.columns) == ["sample_id", "dataset_index", "split", "label", "model", "attack", "eps",
                                "is_adversarial", "prediction", "correct", "confidence", "margin", "loss"]
    assert len(df) == 60 * 2 * 3
    acc = df.groupby(["model", "eps"])["correct"].mean()
    for a in idx["accuracy"]:
        assert acc[(a["model"], a["eps"])] == pytest.approx(a["accuracy"])
    vul = json.loads((first_run / idx["vulnerability"]).read_text())
    assert len(vul["samples"]) == 60 and "auc" in vul
    s = {r["sample_id"]: r for r in vul["samples"]}
    wrong = df[(df.model == "std") & ~df.correct]
    for sid, grp in wrong.groupby("sample_id"):
        assert s[sid]["fooled_at"] == pytest.approx(grp["eps"].min())
    m = json.loads((first_run / "manifest.json").read_text())
    assert m["status"] == "complete" and m["versions"]["torch"] and m["seeds"]["study"] == 1


def test_open_run_reads_arrays_and_tables(first_run):
    run = open_run(first_run)
    a = run.activations("at", "relu2", "pgd", 0.3)
    assert a.shape == (60, 64) and a.dtype == np.float32
    assert run.activations("at", "fc1").shape == (60, 200)
    assert len(run.samples) == 360
    assert run.images("std", "pgd", 0.1).shape == (60, 8, 8, 1)
    assert run.graph("std__fc1__pgd__0.1")["stats"]["n_nodes"] >= 0
    from advtopo.errors import AdvtopoError

    with pytest.raises(AdvtopoError, match="did you mean 'std'"):
        run.activations("sdt", "fc1")


def test_second_run_is_all_cache_hits_and_identical(first_run):
    before = (first_run / "samples.parquet").read_bytes()
    graph_before = (first_run / "mapper" / "at__relu2__pgd__0.3.json").read_text()
    run_study(StudyConfig.from_dict(tiny()), out=first_run, verbose=False)
    assert all(s == {"cached"} for s in statuses(first_run).values())
    assert pd.read_parquet(first_run / "samples.parquet").equals(pd.read_parquet(__import__("io").BytesIO(before)))
    assert (first_run / "mapper" / "at__relu2__pgd__0.3.json").read_text() == graph_before


def test_changing_a_mapper_parameter_recomputes_only_mapper_and_downstream(first_run, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(first_run, root)
    cfg = tiny(mapper=[{"n_intervals": 6, "overlap": 0.3, "min_samples": 2}])
    run_study(StudyConfig.from_dict(cfg), out=root, verbose=False)
    st = statuses(root)
    assert st["data"] == st["train"] == st["attack"] == st["capture"] == {"cached"}
    assert st["mapper"] == {"done"} and st["vulnerability"] == {"done"}
    g = json.loads((root / "mapper" / "std__fc1__pgd__0.json").read_text())
    assert g["params"]["n_intervals"] == 6
    # changing one attack eps adds only that eps's attack/capture/mapper tasks
    cfg2 = tiny(attacks=[{"name": "pgd", "eps": [0.0, 0.1, 0.2], "steps": 2}])
    run_study(StudyConfig.from_dict(cfg2), out=root, verbose=False)
    m = json.loads((root / "manifest.json").read_text())
    done = sorted(t["label"] for t in m["tasks"].values() if t["status"] == "done")
    assert all("eps=0.2" in lbl or "__0.2" in lbl or lbl.startswith("vulnerability std") for lbl in done), done
    assert not (root / "mapper" / "std__fc1__pgd__0.3.json").exists()


def test_same_config_same_numbers(first_run, tmp_path):
    root = tmp_path / "again"
    run_study(StudyConfig.from_dict(tiny()), out=root, verbose=False)
    a, b = open_run(first_run), open_run(root)
    assert a.samples.equals(b.samples)
    np.testing.assert_array_equal(a.activations("std", "fc1", "pgd", 0.3), b.activations("std", "fc1", "pgd", 0.3))


def test_a_partial_task_folder_is_never_taken_as_finished(first_run, tmp_path):
    import shutil

    root = tmp_path / "partial"
    shutil.copytree(first_run, root)
    cap = next(p for p in (root / "tasks" / "capture").iterdir() if p.is_dir())
    # simulate a kill between writing outputs and the DONE marker: outputs without DONE.json
    partial = cap.with_name(cap.name + ".partial")
    os.replace(cap, partial)
    (partial / DONE).unlink()
    (partial / "stats.npz").write_bytes(b"garbage")
    run_study(StudyConfig.from_dict(tiny()), out=root, verbose=False)
    assert (cap / DONE).is_file() and not partial.exists()
    assert open_run(root).samples.equals(open_run(first_run).samples)


def test_resume_after_kill_9_gives_the_same_outputs(first_run, tmp_path):
    root = tmp_path / "killed"
    cfg_path = tmp_path / "tiny.toml"
    from advtopo.study.config import dumps_toml

    cfg_path.write_text(dumps_toml(tiny()))
    import torch

    # the killed process must compute with this process's thread count: float reductions (and so
    # the numbers compared below) depend on it, and other test modules may have changed ours
    threads = str(torch.get_num_threads())
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    proc = subprocess.Popen([sys.executable, "-m", "advtopo.cli", "run", str(cfg_path), "--out", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:  # kill once some attacks are done
            if len(list((root / "tasks" / "attack").glob(f"*/{DONE}"))) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (root / "index.json").exists()
    assert json.loads((root / "manifest.json").read_text())["status"] == "running"  # died without a word
    run_study(StudyConfig.from_toml(cfg_path), out=root, verbose=False)
    st = statuses(root)
    assert "cached" in st["attack"] and "done" in st["mapper"]
    a, b = open_run(first_run), open_run(root)
    assert a.samples.equals(b.samples)
    for g in a.index["graphs"]:
        assert (first_run / g["path"]).read_text() == (root / g["path"]).read_text()


def test_cli_run_show_runs(first_run, tmp_path, capsys):
    from advtopo.cli import main

    assert main(["show", str(first_run)]) == 0
    out = capsys.readouterr().out
    assert "accuracy under pgd" in out and "std__fc1__pgd__0.1" in out
    assert main(["runs", str(first_run.parent)]) == 0
    assert "complete" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[dataset]\nnme = "digits"\n')
    assert main(["run", str(bad)]) == 2
    assert "did you mean 'name'" in capsys.readouterr().err


def test_dask_executor_gives_the_same_results(first_run, tmp_path):
    pytest.importorskip("dask.distributed")
    from advtopo.study import DaskExecutor

    root = tmp_path / "dask"
    run_study(StudyConfig.from_dict(tiny()), out=root, executor=DaskExecutor(n_workers=2), verbose=False)
    a, b = open_run(first_run).samples, open_run(root).samples
    assert json.loads((root / "manifest.json").read_text())["executor"] == "dask"
    # one BLAS thread per worker may round differently from the two-thread run
    pd.testing.assert_frame_equal(a.drop(columns=["confidence", "margin", "loss"]),
                                  b.drop(columns=["confidence", "margin", "loss"]))
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-3, atol=1e-4)


def test_export_activations_reproduces_the_study_graph(first_run, tmp_path):
    """`advtopo export-activations` + `advtopo mapper` rebuild exactly the graph the study stored."""
    from advtopo.cli import main

    out = tmp_path / "acts.npy"
    assert main(["export-activations", str(first_run), "--model", "at", "--layer", "relu2", "--eps", "0.3",
                 "--out", str(out)]) == 0
    X, md = np.load(out), pd.read_csv(out.with_suffix(".csv"))
    assert X.shape[0] == 120 and len(md) == 120 and md.is_adversarial.sum() == 60
    assert list(md.sample_id[:60]) == list(range(60)) == list(md.sample_id[60:])
    stored = json.loads((first_run / "mapper" / "at__relu2__pgd__0.3.json").read_text())
    assert list(md.label) == stored["points"]["label"] and list(md.prediction) == stored["points"]["prediction"]
    p = stored["params"]
    assert main(["mapper", str(out), "--metadata", str(out.with_suffix(".csv")), "--out", str(tmp_path / "g.json"),
                 "--n-intervals", str(p["n_intervals"]), "--overlap", str(p["overlap"]), "--eps", str(p["eps"]),
                 "--min-samples", str(p["min_samples"]), "--metric", p["metric"], "--lens", p["lens"]]) == 0
    rebuilt = json.loads((tmp_path / "g.json").read_text())
    assert [n["members"] for n in rebuilt["nodes"]] == [n["members"] for n in stored["nodes"]]
    assert main(["export-activations", str(first_run), "--model", "nope", "--layer", "relu2", "--out",
                 str(out)]) == 2
