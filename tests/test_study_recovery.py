"""The ``[recovery]`` study stage (issue 11 part 4: Gebhart's recovery vs retention with CIs).

On a tiny real study (digits, two lenet5 models, PGD at two eps):
- the stored numbers equal a direct call of ``recovery_experiment`` on the same inputs (the
  run's samples, its adversarial images, the model's predictions from samples.parquet);
- every stored CI equals a naive bootstrap loop over the per-sample 0/1 outcomes (same seed);
- a re-run reuses the cached tasks, a changed parameter recomputes only the recovery tasks,
  disabling the stage removes recovery.json and its index key;
- the report's section 9 renders the stored numbers and CIs with the rule's verdict;
- config and plan errors name the key; ``advtopo verify`` checks recovery.json.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from advtopo.errors import AdvtopoError, ConfigErrors

pytestmark = pytest.mark.timeout(600)

SEED, N_SAMPLES, CV, N_BOOT = 3, 30, 3, 200


def tiny(**over) -> dict:
    train = {"method": "standard", "eps": 0.0, "batch_size": 64, "eval_subset": 20, "eval_steps": 1}
    d = {"name": "rec", "seed": SEED, "device": "cpu",
         "dataset": {"name": "digits", "split": "test", "subset": 48, "train_subset": 400},
         "models": [{"name": "std", "arch": "lenet5", "train": {**train, "epochs": 2}},
                    {"name": "short", "arch": "lenet5", "train": {**train, "epochs": 1}}],
         "attacks": [{"name": "pgd", "eps": [0.0, 0.1, 0.3], "steps": 3}],
         "layers": [{"module": "fc1"}],
         "capture": {"batch_size": 48},
         "mapper": [{"n_intervals": 4, "overlap": 0.3, "min_samples": 2}],
         "persistence": {"enabled": False}, "vulnerability": {"enabled": False},
         "separability": {"enabled": False}, "stability": {"enabled": False},
         "recovery": {"enabled": True, "models": ["std", "short"], "n_samples": N_SAMPLES, "cv": CV,
                      "n_boot": N_BOOT}}
    d.update(over)
    return d


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, one_torch_thread) -> Path:
    from advtopo.study import StudyConfig, run_study

    return run_study(StudyConfig.from_dict(tiny()), out=tmp_path_factory.mktemp("recovery") / "run", verbose=False)


@pytest.fixture(scope="module")
def doc(run_dir) -> dict:
    return json.loads((run_dir / "recovery.json").read_text())


def _inputs(run_dir: Path, model: str):
    """What the stage read: the clean inputs and labels, and per eps the model's adversarial inputs."""
    from advtopo.study import StudyConfig, make_plan

    plan = make_plan(StudyConfig.from_dict(tiny()))
    x = np.load(plan.data.out_dir(run_dir) / "x.npy")
    y = np.load(plan.data.out_dir(run_dir) / "y.npy")
    adv = {eps: np.load(t.out_dir(run_dir) / "x_adv.npy") for (m, _, eps), t in plan.attacks.items() if m == model}
    return x, y, adv


def test_stage_writes_recovery_json_named_by_the_index(run_dir, doc):
    from advtopo.study import open_run

    run = open_run(run_dir)
    assert run.index["recovery"] == "recovery.json"
    assert run.document("recovery") == doc
    assert doc["models"][0]["model"] == "std" and doc["models"][1]["model"] == "short"
    assert [(r["model"], r["eps"]) for r in doc["rows"]] == [("std", 0.1), ("std", 0.3), ("short", 0.1),
                                                             ("short", 0.3)]
    assert doc["params"]["n_boot"] == N_BOOT and doc["params"]["cv"] == CV and doc["protocols"] == ["paper",
                                                                                                    "cross_fitted"]
    want_ids = np.sort(np.random.default_rng(SEED).choice(48, size=N_SAMPLES, replace=False)).tolist()
    samples = run.samples
    for m in doc["models"]:
        assert m["sample_ids"] == want_ids  # the activation-graph stage's seeded choice
    for r in doc["rows"]:  # the attacked model's output is the study's own prediction
        sel = samples[(samples.model == r["model"]) & np.isclose(samples.eps, r["eps"])].set_index("sample_id")
        assert r["adversarial_prediction"] == sel.loc[want_ids, "prediction"].tolist()
        for proto in ("paper", "cross_fitted"):
            e = r[proto]
            assert e["n"] == N_SAMPLES and 0 <= e["n_successful"] <= N_SAMPLES
            for k in ("recovery_accuracy", "adversary_retention"):
                assert e[k]["lo"] <= e[k]["value"] <= e[k]["hi"]


@pytest.mark.parametrize("model", ["std", "short"])
def test_numbers_equal_a_direct_recovery_experiment(run_dir, doc, model):
    from advtopo.models import load_checkpoint
    from advtopo.persistence import ActivationGraph, recovery_experiment
    from advtopo.study import open_run

    net, _ = load_checkpoint(open_run(run_dir).checkpoint(model))
    net.eval()
    x, y, adv = _inputs(run_dir, model)
    entry = next(m for m in doc["models"] if m["model"] == model)
    ids = np.asarray(entry["sample_ids"])
    rows = [r for r in doc["rows"] if r["model"] == model]
    adversarial = {r["eps_key"]: (adv[r["eps"]][ids], np.asarray(r["adversarial_prediction"])) for r in rows}
    graph = ActivationGraph(input_shape=tuple(x.shape[1:])).fit(net)
    want = recovery_experiment(graph, x[ids], y[ids], adversarial, cv=CV, seed=SEED, protocol="both")
    assert entry["labels"] == y[ids].tolist()
    assert entry["cv_accuracy"] == want["cv_accuracy"] and entry["n_features"] == want["n_features"]
    for r in rows:
        for proto, key in (("paper", "attacks"), ("cross_fitted", "attacks_cross_fitted")):
            w = want[key][r["eps_key"]]
            got = r[proto]
            assert (got["n"], got["n_successful"]) == (w["n"], w["n_successful"])
            for metric in ("recovery_accuracy", "adversary_retention", "recovery_accuracy_successful",
                           "adversary_retention_successful"):
                assert got[metric]["value"] == w.get(metric), (proto, metric)


def _naive_ci(values: np.ndarray, n_boot: int, level: float, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(values), size=len(values))
        means.append(values[idx].mean())
    alpha = (1 - level) / 2
    lo, hi = np.percentile(means, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


def test_cis_equal_a_naive_bootstrap_loop(doc):
    labels = {m["model"]: np.asarray(m["labels"]) for m in doc["models"]}
    checked = 0
    for r in doc["rows"]:
        y_true, y_adv = labels[r["model"]], np.asarray(r["adversarial_prediction"])
        ok = y_adv != y_true
        for proto in ("paper", "cross_fitted"):
            pred = np.asarray(r[proto]["svm_prediction"])
            outcomes = {"recovery_accuracy": pred == y_true, "adversary_retention": pred == y_adv}
            outcomes.update({f"{k}_successful": v[ok] for k, v in list(outcomes.items())})
            for metric, v in outcomes.items():
                stored = r[proto][metric]
                if not len(v):
                    assert stored == {"value": None, "lo": None, "hi": None}
                    continue
                v = v.astype(float)
                assert stored["value"] == pytest.approx(v.mean(), abs=1e-12)
                assert (stored["lo"], stored["hi"]) == pytest.approx(_naive_ci(v, N_BOOT, 0.95, SEED), abs=1e-12)
                checked += 1
    assert checked >= 8 * 2


def test_rerun_reuses_the_cache_and_a_changed_parameter_recomputes_only_recovery(run_dir, tmp_path):
    from advtopo.rundir.records import RunIndex
    from advtopo.study import StudyConfig, open_run, run_study

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    before = (copy / "recovery.json").read_bytes()
    recovery_dirs = sorted(p.name for p in (copy / "tasks" / "recovery").iterdir())
    assert len(recovery_dirs) == 2  # one task per model
    run_study(StudyConfig.from_dict(tiny()), out=copy, verbose=False)
    manifest = json.loads((copy / "manifest.json").read_text())
    assert {t["status"] for t in manifest["tasks"].values()} == {"cached"}
    assert (copy / "recovery.json").read_bytes() == before
    # a changed bootstrap: the recovery tasks recompute, nothing upstream does
    over = tiny()
    over["recovery"] = {**over["recovery"], "n_boot": 100}
    run_study(StudyConfig.from_dict(over), out=copy, verbose=False)
    manifest = json.loads((copy / "manifest.json").read_text())
    fresh = {t["stage"] for t in manifest["tasks"].values() if t["status"] != "cached"}
    assert fresh == {"recovery"}
    assert json.loads((copy / "recovery.json").read_text())["params"]["n_boot"] == 100
    run_study(StudyConfig.from_dict(tiny(recovery={"enabled": False})), out=copy, verbose=False)
    assert not (copy / "recovery.json").exists()
    assert "recovery" not in open_run(copy).index and "recovery" not in RunIndex().to_dict()


def test_report_section_renders_the_stored_cis_with_a_verdict(run_dir, doc):
    from advtopo.report.sections import HOLDS, NOT_HOLD, PARTLY, recovery_section
    from advtopo.study import open_run

    sec = recovery_section(open_run(run_dir))
    assert sec.present and sec.verdict in (HOLDS, PARTLY, NOT_HOLD)
    bars = sec.numbers["bars"]
    stored = [(r, p) for r in doc["rows"] for p in ("paper", "cross_fitted") if r[p]["n_successful"]]
    assert len(bars) == len(stored)
    for b, (r, p) in zip(bars, stored):
        assert b["protocol"] == {"paper": "paper", "cross_fitted": "cross-fitted"}[p]
        assert b["recovery"] == r[p]["recovery_accuracy_successful"]
        assert b["retention"] == r[p]["adversary_retention_successful"]
    # the verdict follows the rule from the stored CIs
    wins = {}
    for b in bars:
        wins.setdefault(b["protocol"], []).append(b["recovery"]["lo"] > b["retention"]["hi"])
    good = [all(v) for v in wins.values()]
    assert sec.verdict == (HOLDS if all(good) else PARTLY if any(good) else NOT_HOLD)
    b = bars[0]
    assert (f"recovery {b['recovery']['value']:.2f} [{b['recovery']['lo']:.2f}, {b['recovery']['hi']:.2f}] vs "
            f"retention {b['retention']['value']:.2f}") in sec.sentence
    assert sec.sentence.startswith(sec.verdict.capitalize())


class _Doc:
    def __init__(self, doc):
        self.doc = doc

    def document(self, key):
        return self.doc if key == "recovery" else None


def _row(eps, paper, cross):
    def proto(rec, ret):
        return {"n": 50, "n_successful": 40, "recovery_accuracy_successful": rec,
                "adversary_retention_successful": ret}
    return {"model": "m", "attack": "pgd", "eps": eps, "eps_key": f"{eps:g}", "paper": proto(*paper),
            "cross_fitted": proto(*cross)}


def test_report_verdict_rule_on_stored_cis():
    from advtopo.report.sections import HOLDS, NOT_HOLD, PARTLY, recovery_section

    hi = {"value": 0.8, "lo": 0.7, "hi": 0.9}
    lo = {"value": 0.2, "lo": 0.1, "hi": 0.3}
    mid = {"value": 0.5, "lo": 0.25, "hi": 0.75}
    assert recovery_section(_Doc({"rows": [_row(0.1, (hi, lo), (hi, lo))]})).verdict == HOLDS
    assert recovery_section(_Doc({"rows": [_row(0.1, (hi, lo), (mid, lo))]})).verdict == PARTLY
    assert recovery_section(_Doc({"rows": [_row(0.1, (hi, lo), (hi, lo)),
                                            _row(0.3, (mid, lo), (lo, hi))]})).verdict == NOT_HOLD
    # a document without a successful example is a missing section, not a verdict
    empty = _row(0.1, (hi, lo), (hi, lo))
    empty["paper"]["n_successful"] = empty["cross_fitted"]["n_successful"] = 0
    sec = recovery_section(_Doc({"rows": [empty]}))
    assert not sec.present and "[recovery]" in sec.enable
    # recovery_experiment's own output (no stored CIs): CIs rebuilt from the proportions
    raw = {"attacks": {"pgd": {"n": 20, "n_successful": 10, "recovery_accuracy_successful": 0.9,
                               "adversary_retention_successful": 0.1}},
           "attacks_cross_fitted": {"pgd": {"n": 20, "n_successful": 10, "recovery_accuracy_successful": 0.3,
                                            "adversary_retention_successful": 0.6}}}
    sec = recovery_section(_Doc(raw))
    assert sec.verdict == PARTLY and sec.numbers["bars"][0]["recovery"]["value"] == pytest.approx(0.9)
    rebuilt = sec.numbers["bars"][0]["recovery"]
    assert rebuilt["lo"] < 0.9 and rebuilt["hi"] == pytest.approx(1.0)  # 9 of 10 recovered


def test_config_and_plan_checks():
    from advtopo.study import StudyConfig, make_plan

    assert StudyConfig().recovery.enabled is False
    r = StudyConfig.from_dict(tiny()).recovery
    assert (r.n_samples, r.cv, r.C, r.binary, r.percentile) == (N_SAMPLES, CV, 1.0, True, None)
    with pytest.raises(ConfigErrors, match=r"recovery.cv=1 must be >= 2"):
        StudyConfig.from_dict(tiny(recovery={"enabled": True, "cv": 1}))
    with pytest.raises(ConfigErrors, match=r"recovery.n_samples=4 must be >= recovery.cv=5"):
        StudyConfig.from_dict(tiny(recovery={"enabled": True, "n_samples": 4}))
    with pytest.raises(ConfigErrors, match=r"recovery.C=0"):
        StudyConfig.from_dict(tiny(recovery={"enabled": True, "C": 0.0}))
    with pytest.raises(ConfigErrors, match="unknown key 'recovery.nsamples'"):
        StudyConfig.from_dict(tiny(recovery={"enabled": True, "nsamples": 5}))
    # cross-references: reported by the config check (`advtopo run --check`), before any work
    with pytest.raises(ConfigErrors, match=r"recovery.models='stdd' is not valid \(did you mean 'std'"):
        StudyConfig.from_dict(tiny(recovery={"enabled": True, "models": ["stdd"]}))
    with pytest.raises(ConfigErrors, match="recovery.eps: 0.2 is not an eps of attack 'pgd'; allowed: 0.1, 0.3"):
        StudyConfig.from_dict(tiny(recovery={"enabled": True, "eps": [0.2]}))
    with pytest.raises(ConfigErrors, match="recovery.attack='fgsm' is not valid"):
        StudyConfig.from_dict(tiny(recovery={"enabled": True, "attack": "fgsm"}))
    # and again by the plan, for a config changed after it was checked
    cfg = StudyConfig.from_dict(tiny())
    cfg.recovery.models = ["stdd"]
    with pytest.raises(AdvtopoError, match="recovery.models: 'stdd' is not a study model"):
        make_plan(cfg)
    plan = make_plan(StudyConfig.from_dict(tiny(recovery={"enabled": True, "eps": [0.3]})))
    assert [t.params["model"] for t in plan.recovery] == ["std"]  # default: the first model
    t = plan.recovery[0]
    assert [r["eps"] for r in t.params["eps_roles"]] == [0.3]
    assert set(t.deps) == {"data", "model", t.params["eps_roles"][0]["role"]}
    assert make_plan(StudyConfig.from_dict(tiny(recovery={"enabled": False}))).recovery == []


def test_unknown_layer_stops_the_task_with_the_allowed_names(run_dir, tmp_path):
    from advtopo.study import StudyConfig, run_study

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    over = tiny()
    over["recovery"] = {**over["recovery"], "layers": ["fc9"]}
    with pytest.raises(AdvtopoError, match=r"layer 'fc9' has no edges.*edge layers .*conv1"):
        run_study(StudyConfig.from_dict(over), out=copy, verbose=False)


def test_verify_checks_recovery_json(run_dir, tmp_path):
    from advtopo.rundir.verify import check_run

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    assert not check_run(copy).damage
    doc = json.loads((copy / "recovery.json").read_text())
    doc["rows"][1]["cross_fitted"]["recovery_accuracy"]["lo"] = "low"
    (copy / "recovery.json").write_text(json.dumps(doc))
    damage = check_run(copy).damage
    assert [d.path for d in damage] == ["recovery.json"]
    assert "rows[1].cross_fitted.recovery_accuracy must hold numbers or nulls" in damage[0].problem
    (copy / "recovery.json").write_text("{")
    assert "not valid JSON" in check_run(copy).damage[0].problem
