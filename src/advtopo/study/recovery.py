"""The recovery stage (``[recovery]``, off by default): Gebhart et al.'s recovery accuracy vs
adversary retention on the study's own samples, per model and eps, with bootstrap CIs.

One task per model: for a seeded subset of ``n_samples`` samples (the same choice as the
activation-graph stage), :func:`advtopo.persistence.recovery_experiment` with
``protocol="both"`` on the clean inputs (true labels) and, per eps of one attack, the study's
adversarial versions of the same samples (labelled with the model's prediction on them). Each
(model, eps, protocol) row stores n, n_successful, recovery accuracy and adversary retention
(over all inputs and over the successful adversarial examples) as ``{"value", "lo", "hi"}``:
the value is recovery_experiment's, [lo, hi] a percentile bootstrap CI over the samples of the
per-sample 0/1 outcomes (:func:`advtopo.stats.bootstrap_ci`; the ``_successful`` CIs resample
the successful examples). The CIs hold the fitted SVMs fixed: they measure which samples were
drawn, not the SVMs' training variability.

``publish_recovery`` merges the tasks' rows into the run's ``recovery.json`` (format in
docs/report.md) named by index.json's ``"recovery"``; the report's section 9 reads it.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from advtopo.errors import AdvtopoError, did_you_mean
from advtopo.rundir import layout, writer
from advtopo.rundir.layout import eps_key
from advtopo.study.actgraph import choose_samples, stage_attack_and_eps
from advtopo.study.stages import load_npy
from advtopo.study.tasks import Task, log

if TYPE_CHECKING:  # the plan imports this module's plan function
    from advtopo.study.plan import Plan

HERE = "advtopo.study.recovery"
TASK_FILE = "recovery.json"  # each task's part: its model's entry and rows
FORMAT = 1
# recovery_experiment's output keys -> the document's protocol names
PROTOCOL_KEYS = {"paper": "attacks", "cross_fitted": "attacks_cross_fitted"}
METRICS = ("recovery_accuracy", "adversary_retention", "recovery_accuracy_successful",
           "adversary_retention_successful")
SVM_PARAMS = ("cv", "C", "min_persistence", "percentile", "binary")
NOTE = ("recovery = the SVM predicts the true class; retention = it predicts the class the attacked model "
        "output; _successful: over the inputs whose prediction the attack changed from the true class "
        "(y_adv != y_true). paper: one SVM trained on all clean inputs, scored on their adversarial versions; "
        "cross_fitted: each adversarial input scored by an SVM trained on the clean inputs of the other folds. "
        "value: recovery_experiment's; [lo, hi]: percentile bootstrap over samples of the 0/1 outcomes, SVMs "
        "held fixed.")


# --- plan ----------------------------------------------------------------------------------------

def plan_recovery(plan: Plan) -> None:
    """One task per model of ``[recovery]`` (default: the first model); the config's references
    (models, attack, eps) are checked here, before any work."""
    cfg = plan.cfg
    r = cfg.recovery
    plan.recovery = []  # type: ignore[attr-defined]
    if not r.enabled:
        return
    models = list(r.models) if r.models else [cfg.model_names[0]]
    for model in models:
        if model not in plan.models:
            raise AdvtopoError(f"recovery.models: {model!r} is not a study model{did_you_mean(model, plan.models)}; "
                               f"models: {', '.join(plan.models)}")
    if len(set(models)) != len(models):
        raise AdvtopoError(f"recovery.models has repeated names: {models}")
    attack, eps_list = stage_attack_and_eps(cfg, "recovery", r.attack, r.eps, "attack the clean inputs with")
    svm = {k: getattr(r, k) for k in SVM_PARAMS}
    for model in models:
        deps: dict[str, Task] = {"data": plan.data, "model": plan.models[model]}
        eps_roles = []
        for e in eps_list:
            t = plan.attacks[(model, attack.name, next(float(x) for x in attack.eps if layout.eps_equal(e, x)))]
            deps[f"a_{t.key}"] = t
            eps_roles.append({"eps": e, "role": f"a_{t.key}"})
        params = {"model": model, "attack": attack.name, "eps_roles": eps_roles, "n_samples": r.n_samples,
                  "layers": list(r.layers) if r.layers else None, **svm, "n_boot": r.n_boot, "level": r.level,
                  "seed": cfg.seed}
        plan.recovery.append(plan.add(Task(  # type: ignore[attr-defined]
            "recovery", f"recovery {model} {attack.name}", f"{HERE}:run_recovery", params, deps)))


# --- run -----------------------------------------------------------------------------------------

def _predict(model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The model's class for each input (CPU, batched): the attacked model's output."""
    import torch

    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            out.append(model(torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size]))).argmax(1).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def outcome_cis(svm_pred: np.ndarray, y_true: np.ndarray, y_adv: np.ndarray, n_boot: int, level: float,
                seed: int) -> dict[str, Any]:
    """n, n_successful and each metric of :data:`METRICS` as ``{"value", "lo", "hi"}``: the mean
    of the per-sample 0/1 outcome with its bootstrap CI (over the successful examples for the
    ``_successful`` ones; all None when there are none)."""
    from advtopo.stats import bootstrap_ci

    ok = y_adv != y_true
    outcomes = {"recovery_accuracy": svm_pred == y_true, "adversary_retention": svm_pred == y_adv}
    outcomes.update({f"{k}_successful": v[ok] for k, v in list(outcomes.items())})
    out: dict[str, Any] = {"n": len(y_true), "n_successful": int(ok.sum())}
    for k in METRICS:
        v = outcomes[k].astype(np.float64)
        out[k] = (bootstrap_ci(v, n_boot=n_boot, level=level, seed=seed).to_dict(short=True) if len(v)
                  else {"value": None, "lo": None, "hi": None})
    return out


def run_recovery(params: dict[str, Any], inputs: dict[str, Path], out_dir: Path,
                 runtime: dict[str, Any]) -> dict:
    """recovery_experiment (both protocols) on the model's clean and adversarial samples, with CIs."""
    import torch

    from advtopo.persistence import ActivationGraph
    from advtopo.persistence.recovery import recovery_experiment
    from advtopo.study.stages import _load_model
    from advtopo.utils import atomic_write_json

    t0, cpu0 = time.perf_counter(), time.process_time()
    model = _load_model(inputs["model"], torch.device("cpu"), runtime)  # one input at a time: the CPU is enough
    x = load_npy(inputs["data"] / "x.npy", mmap=True)
    y = load_npy(inputs["data"] / "y.npy")
    ids = choose_samples(len(y), int(params["n_samples"]), int(params["seed"]))
    if len(ids) < int(params["cv"]):
        raise AdvtopoError(f"recovery: the study has {len(ids)} samples, fewer than recovery.cv={params['cv']}")
    graph = ActivationGraph(input_shape=tuple(int(s) for s in x.shape[1:])).fit(model)
    x_clean, y_clean = np.asarray(x[ids], dtype=np.float32), y[ids]
    adversarial, keys = {}, {}
    for r in params["eps_roles"]:
        x_adv = np.asarray(load_npy(inputs[r["role"]] / "x_adv.npy", mmap=True)[ids], dtype=np.float32)
        keys[eps_key(r["eps"])] = float(r["eps"])
        adversarial[eps_key(r["eps"])] = (x_adv, _predict(model, x_adv))
    verbose = bool(runtime.get("verbose", False))
    t_sets = time.perf_counter()

    def progress(name: str, n: int) -> None:
        if verbose:
            what = "clean" if name == "clean" else f"eps={name}"
            log(f"  recovery {params['model']}: dominant subgraphs of {n} {what} inputs "
                f"({time.perf_counter() - t_sets:.1f}s)")

    res = recovery_experiment(graph, x_clean, y_clean, adversarial, protocol="both", layers=params["layers"],
                              seed=int(params["seed"]), return_predictions=True, progress=progress,
                              **{k: params[k] for k in SVM_PARAMS})
    n_boot, level, seed = int(params["n_boot"]), float(params["level"]), int(params["seed"])
    rows = []
    for key, eps in keys.items():
        y_adv = adversarial[key][1]
        row: dict[str, Any] = {"model": params["model"], "attack": params["attack"], "eps": eps, "eps_key": key,
                               "adversarial_prediction": [int(v) for v in y_adv]}
        for proto, res_key in PROTOCOL_KEYS.items():
            pred = np.asarray(res["predictions"][res_key][key])
            entry = outcome_cis(pred, y_clean, y_adv, n_boot, level, seed)
            for k, v in res[res_key][key].items():  # the values are recovery_experiment's own
                if k in METRICS:
                    entry[k]["value"] = v
                elif entry[k] != v:
                    raise RuntimeError(f"recovery: {k} {entry[k]} != recovery_experiment's {v}")
            entry["svm_prediction"] = [int(v) for v in pred]
            row[proto] = entry
        rows.append(row)
    seconds = time.perf_counter() - t0
    entry = {"model": params["model"], "attack": params["attack"], "n_clean": res["n_clean"],
             "sample_ids": [int(s) for s in ids], "labels": [int(v) for v in y_clean],
             "n_features": res["n_features"], "mean_edges_per_input": res["mean_edges_per_input"],
             "cv_accuracy": res["cv_accuracy"], "cv_accuracy_std": res["cv_accuracy_std"],
             "protocols": {p: res["protocols"][k] for p, k in PROTOCOL_KEYS.items()},
             # cpu_seconds: this process's CPU time, what the wall time would be on an idle core
             "timing": {"graphs": len(ids) * (1 + len(keys)), "seconds_total": round(seconds, 3),
                        "cpu_seconds": round(time.process_time() - cpu0, 3)}}
    atomic_write_json(out_dir / TASK_FILE, {"model": entry, "rows": rows}, indent=None)
    return {"n_samples": len(ids), "graphs": entry["timing"]["graphs"], "cv_accuracy": res["cv_accuracy"],
            "recovery_successful": {r["eps_key"]: {p: r[p]["recovery_accuracy_successful"]["value"]
                                                   for p in PROTOCOL_KEYS} for r in rows}}


# --- publish -------------------------------------------------------------------------------------

def recovery_document(root: Path, plan: Plan) -> dict[str, Any]:
    """recovery.json from the finished tasks: the parameters, one entry per model, one row per
    (model, eps) holding both protocols."""
    import json

    tasks = plan.recovery  # type: ignore[attr-defined]
    parts = [json.loads((t.out_dir(root) / TASK_FILE).read_text()) for t in tasks]
    first = tasks[0].params
    return {"format": FORMAT, "method": "Gebhart et al. 2019: linear SVM on bags of dominant-subgraph edges",
            "params": {"attack": first["attack"], "n_samples": first["n_samples"], "layers": first["layers"],
                       **{k: first[k] for k in SVM_PARAMS}, "n_boot": first["n_boot"], "level": first["level"],
                       "seed": first["seed"]},
            "protocols": list(PROTOCOL_KEYS), "metrics": list(METRICS), "note": NOTE,
            "models": [p["model"] for p in parts], "rows": [r for p in parts for r in p["rows"]]}


def publish_recovery(root: Path, plan: Plan) -> str | None:
    """Write recovery.json from the finished tasks; returns its index.json entry (None: not
    planned). A disabled stage's file is removed; a stage left out of ``make_plan(stages=...)``
    keeps its file, unnamed in this index (as the activation-graph stage does)."""
    if getattr(plan, "recovery", None):
        return writer.write_document(root, layout.RECOVERY, recovery_document(root, plan))
    if not plan.cfg.recovery.enabled:
        writer.write_document(root, layout.RECOVERY, None)
    return None
