"""The activation-graph stage (``[activation_graph]``, off by default): Gebhart et al.'s
activation-graph persistence on the study's samples, clean and adversarial, and adversarial
detection from it.

One task: for a seeded subset of ``n_samples`` samples, each input's activation graph (clean,
and adversarial at each eps of one model and attack), its H0 barcode and dominant subgraph
(the ``top_k`` most persistent pairs' edges), the topological features of
:mod:`advtopo.persistence.detection`, and per eps the ROC AUC [CI] of a cross-validated
clean-vs-adversarial classifier on those features, beside the same classifier on the raw
activations (the graph's neuron values, PCA-reduced in each fold) and on the softmax
confidence. ``publish_activation_graph`` places the task's ``activation_graph.json`` in the
run (format in docs/persistence.md) and index.json names it under ``activation_graph``.

H1: the activation graph is bipartite (every edge joins a layer to the next), so its flag
complex has no triangle and all its H1 classes are essential; the stage reports their number
(the cycle rank) and total birth weight (docs/persistence.md, "H1 of the activation graph").
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from advtopo.errors import AdvtopoError, check_choice, did_you_mean
from advtopo.rundir import layout, writer
from advtopo.rundir.layout import eps_key
from advtopo.study.stages import load_npy
from advtopo.study.tasks import Task

if TYPE_CHECKING:  # the plan imports this module's plan function
    from advtopo.rundir.reader import Run
    from advtopo.study.config import AttackConfig, StudyConfig
    from advtopo.study.plan import Plan

HERE = "advtopo.study.actgraph"
N_BARS = 50  # H0 bars kept per input in the document (the longest); statistics use all bars
RAW_PCA = 20  # principal components of the raw activations (fit in each training fold)
H1_NOTE = ("The activation graph is bipartite (each edge joins a vertex layer to the next), so its flag "
           "complex has no triangle: H1 has no finite bar. Its classes are essential, one per non-forest "
           "positive edge (count = cycle rank), born at that edge's weight.")


# --- plan ----------------------------------------------------------------------------------------

def plan_activation_graph(plan: Plan) -> None:
    """One task for the model and attack of ``[activation_graph]`` (defaults: the first model and
    attack, that attack's eps > 0); the config's references are checked here, before any work."""
    cfg = plan.cfg
    a = cfg.activation_graph
    plan.activation_graph = None  # type: ignore[attr-defined]
    if not a.enabled:
        return
    model = a.model or cfg.model_names[0]
    if model not in plan.models:
        raise AdvtopoError(f"activation_graph.model={model!r} is not a study model{did_you_mean(model, plan.models)}; "
                           f"models: {', '.join(plan.models)}")
    attack, eps_list = stage_attack_and_eps(cfg, "activation_graph", a.attack, a.eps, "compare the clean inputs with")
    deps: dict[str, Task] = {"data": plan.data, "model": plan.models[model]}
    eps_roles = []
    for e in eps_list:
        t = plan.attacks[(model, attack.name, next(float(x) for x in attack.eps if layout.eps_equal(e, x)))]
        deps[f"a_{t.key}"] = t
        eps_roles.append({"eps": e, "role": f"a_{t.key}"})
    params = {"model": model, "attack": attack.name, "eps_roles": eps_roles, "n_samples": a.n_samples,
              "layers": list(a.layers) if a.layers else None, "top_k": a.top_k, "classifier": a.classifier,
              "cv": a.cv, "n_boot": a.n_boot, "level": a.level, "seed": cfg.seed, "n_bars": N_BARS,
              "raw_pca": RAW_PCA}
    plan.activation_graph = plan.add(Task(  # type: ignore[attr-defined]
        "activation_graph", f"activation graph {model} {attack.name}", f"{HERE}:run_activation_graph", params, deps))


# --- run -----------------------------------------------------------------------------------------

def stage_attack_and_eps(cfg: StudyConfig, section: str, attack_name: str | None, eps: list[float] | None,
                         purpose: str) -> tuple[AttackConfig, list[float]]:
    """A stage's attack (default: the study's first) and its eps > 0 (default: all of the attack's),
    checked as the config check does (``eps_equal``), for the plan of a config changed after its check."""
    check_choice(f"{section}.attack", attack_name or cfg.attacks[0].name, [x.name for x in cfg.attacks])
    attack = next(x for x in cfg.attacks if x.name == (attack_name or cfg.attacks[0].name))
    eps_list = [float(e) for e in (eps if eps is not None else attack.eps) if e > 0]
    for e in eps_list:
        if not any(layout.eps_equal(e, x) for x in attack.eps):
            raise AdvtopoError(f"{section}.eps: {e:g} is not an eps of attack {attack.name!r} "
                               f"({', '.join(eps_key(x) for x in attack.eps)})")
    if not eps_list:
        raise AdvtopoError(f"{section}: attack {attack.name!r} has no eps > 0 to {purpose}; give {section}.eps")
    return attack, eps_list


def choose_samples(n: int, n_samples: int, seed: int) -> np.ndarray:
    """The seeded subset of sample ids (sorted); all when the study has at most ``n_samples``."""
    if n <= n_samples:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=int(n_samples), replace=False))


def _softmax_confidence(logits: np.ndarray) -> float:
    z = logits.astype(np.float64) - logits.max()
    p = np.exp(z) / np.exp(z).sum()
    return float(p.max())


def feature_names(edge_layers: list[str]) -> list[str]:
    """The topological feature columns, in the order of the document's ``rows.features``."""
    from advtopo.persistence.detection import STAT_FEATURES, TYPICAL_FEATURES

    return (list(STAT_FEATURES) + [f"share_{n}" for n in edge_layers] + [f"persistence_share_{n}" for n in edge_layers]
            + list(TYPICAL_FEATURES))


def run_activation_graph(params: dict[str, Any], inputs: dict[str, Path], out_dir: Path,
                         runtime: dict[str, Any]) -> dict:
    """Activation graphs, barcodes, dominant subgraphs and the detection AUCs (activation_graph.json)."""
    import torch

    from advtopo.persistence import ActivationGraph
    from advtopo.persistence.detection import STAT_FEATURES, round_sig, class_typical_features, graph_record
    from advtopo.study.stages import _load_model
    from advtopo.utils import atomic_write_json

    t0 = time.perf_counter()
    model = _load_model(inputs["model"], torch.device("cpu"), runtime)  # one input at a time: the CPU is enough
    x = load_npy(inputs["data"] / "x.npy", mmap=True)
    y = load_npy(inputs["data"] / "y.npy")
    ids = choose_samples(len(y), int(params["n_samples"]), int(params["seed"]))
    graph = ActivationGraph(input_shape=tuple(int(s) for s in x.shape[1:])).fit(model)
    layers = params["layers"]
    graph.edge_ids(layers)  # unknown layer names: one error before any graph
    edge_layers = [b.name for b in graph.blocks_ if layers is None or b.name in set(layers)]
    top_k, n_bars = int(params["top_k"]), int(params["n_bars"])
    conditions = [("clean", 0.0, None)] + [(eps_key(r["eps"]), float(r["eps"]), r["role"]) for r in params["eps_roles"]]
    adv_x = {role: load_npy(inputs[role] / "x_adv.npy", mmap=True) for _, _, role in conditions if role}
    records, row_sample, row_eps = [], [], []
    t_graphs = time.perf_counter()
    for key, eps, role in conditions:
        src = x if role is None else adv_x[role]
        for s in ids.tolist():
            records.append(graph_record(graph, np.array(src[s], dtype=np.float32), top_k, layers, n_bars))
            row_sample.append(s)
            row_eps.append(eps)
    seconds_graphs = time.perf_counter() - t_graphs
    row_sample_a, row_eps_a = np.asarray(row_sample), np.asarray(row_eps)
    pred = np.asarray([int(np.argmax(r.output)) for r in records])
    conf = round_sig(np.asarray([_softmax_confidence(r.output) for r in records]))
    labels = {int(s): int(y[s]) for s in ids}
    clean_row = {int(s): i for i, s in enumerate(ids.tolist())}  # the clean rows come first
    edge_sets = [r.edges for r in records]
    typical = class_typical_features(edge_sets, pred, row_sample_a, clean_row, labels, top_k)
    names = feature_names(edge_layers)
    feats = np.asarray([[r.stats[k] for k in STAT_FEATURES] + [r.layer_share[n] for n in edge_layers]
                        + [r.layer_persistence[n] for n in edge_layers] for r in records], dtype=np.float64)
    feats = round_sig(np.concatenate([feats, typical], axis=1))
    detection = _detection(params, records, feats, names, conf, row_sample_a, row_eps_a, ids, labels, conditions)
    retention = _retention(params, records, pred, row_sample_a, row_eps_a, ids, clean_row, labels, conditions, top_k)
    doc = {
        "model": params["model"], "attack": params["attack"], "eps": [c[1] for c in conditions[1:]],
        "n_samples": int(len(ids)), "top_k": top_k, "n_bars": n_bars,
        "params": {k: params[k] for k in ("classifier", "cv", "n_boot", "level", "seed", "raw_pca")},
        "graph": {"n_vertices": int(graph.n_vertices_), "n_edges": int(len(graph.edge_ids(layers))),
                  "edge_layers": edge_layers, "bipartite": True,
                  "layers": _vertex_layers(graph)},
        "h1": {"finite_bars": 0, "method": "essential", "note": H1_NOTE},
        "features": names,
        "rows": {"sample_id": row_sample_a.tolist(), "eps": row_eps_a.tolist(),
                 "label": [labels[s] for s in row_sample], "prediction": pred.tolist(), "confidence": conf.tolist(),
                 "features": feats.tolist()},
        "detection": detection,
        "retention": retention,
        "samples": _sample_details(records, graph, ids, labels, pred, conf, conditions),
        "timing": {"graphs": len(records), "seconds_graphs": round(seconds_graphs, 3),
                   "seconds_per_graph": round(seconds_graphs / max(1, len(records)), 4),
                   "seconds_total": round(time.perf_counter() - t0, 3)},
    }
    atomic_write_json(out_dir / "activation_graph.json", doc, indent=None)  # compact: about 1 MB for 100 samples
    return {"n_samples": int(len(ids)), "graphs": len(records), "seconds_per_graph": doc["timing"]["seconds_per_graph"],
            "auc_topological": {d["eps_key"]: d["methods"]["topological"]["auc"] for d in detection["by_eps"]}}


def _vertex_layers(graph: Any) -> list[dict[str, Any]]:
    """The vertex layers in network order: name, [start, stop) vertex ids, neuron shape."""
    shapes = {"input": list(graph.input_shape)}
    shapes.update({b.name: list(b.out_shape) for b in graph.blocks_})
    return [{"name": n, "start": int(a), "stop": int(b), "shape": shapes.get(n)} for n, (a, b) in graph.layers_.items()]


def feature_sets(names: list[str]) -> dict[str, list[int]]:
    """The topological detectors' feature columns: all of them, the barcode statistics only,
    and the dominant subgraph only (its layer shares and class typicality)."""
    from advtopo.persistence.detection import STAT_FEATURES

    stats = [i for i, n in enumerate(names) if n in STAT_FEATURES]
    return {"topological": list(range(len(names))), "persistence_statistics": stats,
            "dominant_subgraph": [i for i in range(len(names)) if i not in stats]}


def _detection(params: dict[str, Any], records: list, feats: np.ndarray, names: list[str], conf: np.ndarray,
               row_sample: np.ndarray, row_eps: np.ndarray, ids: np.ndarray, labels: dict[int, int],
               conditions: list) -> dict[str, Any]:
    """Per eps: out-of-fold P(adversarial) and ROC AUC [CI] of the topological features (all, the
    barcode statistics, the dominant subgraph), the raw activations and the softmax confidence
    (same folds, same classifier); and each feature's own AUC (no classifier) to show which
    features carry the signal."""
    from advtopo.persistence.detection import auc_with_ci, out_of_fold_scores, rank_auc, sample_folds

    seed, kind = int(params["seed"]), params["classifier"]
    folds = sample_folds(np.asarray([labels[int(s)] for s in ids]), int(params["cv"]), seed)
    raw = np.stack([r.values for r in records])
    by_eps = []
    for key, eps, role in conditions[1:]:
        rows = np.flatnonzero((row_eps == 0) | (row_eps == eps))
        is_adv = row_eps[rows] > 0
        groups = row_sample[rows]
        sets = {m: (feats[np.ix_(rows, cols)], None) for m, cols in feature_sets(names).items()}
        sets.update(raw_activations=(raw[rows], int(params["raw_pca"])), confidence=(conf[rows, None], None))
        methods, scores = {}, {}
        for name, (X, pca) in sets.items():
            s = out_of_fold_scores(X, is_adv, groups, folds, ids, kind, seed, pca)
            scores[name] = [float(v) for v in s]
            methods[name] = auc_with_ci(is_adv, s, groups, n_boot=int(params["n_boot"]),
                                        level=float(params["level"]), seed=seed)
        feature_auc = {n: rank_auc(is_adv, feats[rows, i]) for i, n in enumerate(names)}
        by_eps.append({"eps": eps, "eps_key": key, "n_rows": int(len(rows)), "rows": rows.tolist(),
                       "methods": methods, "scores": scores, "feature_auc": feature_auc})
    return {"classifier": kind, "cv": int(params["cv"]), "folds": "over samples (both rows of a sample in one fold); "
            "stratified by true label when every class has >= cv samples",
            "feature_sets": {m: [names[i] for i in cols] for m, cols in feature_sets(names).items()},
            "raw_activations": f"neuron values of the graph's layers, standardised, PCA to {params['raw_pca']} "
                               "components in each training fold",
            "confidence": "the model's softmax maximum",
            "feature_auc": "each feature's own ROC AUC (> 0.5: larger on adversarial inputs), no classifier",
            "by_eps": by_eps}


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    sa, sb = set(a.tolist()), set(b.tolist())
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def _retention(params: dict[str, Any], records: list, pred: np.ndarray, row_sample: np.ndarray, row_eps: np.ndarray,
               ids: np.ndarray, clean_row: dict[int, int], labels: dict[int, int], conditions: list,
               top_k: int) -> list[dict[str, Any]]:
    """Gebhart et al.'s question on the fooled samples: does the adversarial dominant subgraph
    keep the clean one (Jaccard), and is it closer to the true class's typical subgraph or to
    the adversarial class's? Means with bootstrap CIs over the fooled samples."""
    from advtopo.persistence.detection import class_typical_features
    from advtopo.stats import bootstrap_ci

    edge_sets = [r.edges for r in records]
    true = np.asarray([labels[int(s)] for s in row_sample])
    to_true = class_typical_features(edge_sets, true, row_sample, clean_row, labels, top_k)[:, 0]
    to_pred = class_typical_features(edge_sets, pred, row_sample, clean_row, labels, top_k)[:, 0]
    out = []
    for key, eps, _ in conditions[1:]:
        clean_correct = pred[[clean_row[int(s)] for s in row_sample]] == true
        rows = np.flatnonzero((row_eps == eps) & (pred != true) & clean_correct)
        entry: dict[str, Any] = {"eps": eps, "eps_key": key, "n_fooled": int(len(rows))}
        jaccard = [_jaccard(edge_sets[r], edge_sets[clean_row[int(row_sample[r])]]) for r in rows]
        values = {"jaccard_clean_adversarial": np.asarray(jaccard),
                  "typical_overlap_true_class": to_true[rows], "typical_overlap_adversarial_class": to_pred[rows]}
        for k, v in values.items():
            if len(v):
                ci = bootstrap_ci(v.astype(np.float64), n_boot=int(params["n_boot"]), level=float(params["level"]),
                                  seed=int(params["seed"]))
                entry[k] = {"value": ci.value, "lo": ci.lo, "hi": ci.hi}
            else:
                entry[k] = {"value": None, "lo": None, "hi": None}
        out.append(entry)
    return out


def _graph_detail(r: Any, graph: Any, prediction: int, confidence: float) -> dict[str, Any]:
    from advtopo.persistence.detection import round_sig

    layer_of = graph.edge_layer(r.edges) if len(r.edges) else np.zeros(0, int)
    edges = [[int(graph.src_[e]), int(graph.dst_[e]), int(li), float(w), float(p)]
             for e, li, w, p in zip(r.edges.tolist(), layer_of.tolist(), round_sig(r.death).tolist(),
                                    round_sig(r.persistence).tolist())]
    return {"prediction": int(prediction), "confidence": float(confidence), "edges": edges,
            "bars": round_sig(r.bars).tolist(), "stats": {k: float(round_sig(v)) for k, v in r.stats.items()}}


def _sample_details(records: list, graph: Any, ids: np.ndarray, labels: dict[int, int], pred: np.ndarray,
                    conf: np.ndarray, conditions: list) -> list[dict[str, Any]]:
    """Per sample: the clean and each adversarial graph's dominant edges [src vertex, dst vertex,
    edge layer index, weight, persistence], its longest H0 bars and its statistics."""
    n = len(ids)
    out = []
    for i, s in enumerate(ids.tolist()):
        entry = {"sample_id": int(s), "label": labels[int(s)],
                 "clean": _graph_detail(records[i], graph, pred[i], conf[i]), "adversarial": {}}
        for j, (key, _, _) in enumerate(conditions[1:], start=1):
            r = j * n + i
            entry["adversarial"][key] = _graph_detail(records[r], graph, pred[r], conf[r])
        out.append(entry)
    return out


# --- publish and read ------------------------------------------------------------------------------

def publish_activation_graph(root: Path, plan: Plan) -> str | None:
    """Place the finished task's activation_graph.json; returns its index.json entry (None: not
    planned). A disabled stage's file is removed; a stage left out of ``make_plan(stages=...)``
    keeps its file, unnamed in this index (as the measures do)."""
    task = getattr(plan, "activation_graph", None)
    if task is not None:
        return writer.place_file(root, task.out_dir(root) / "activation_graph.json", layout.ACTIVATION_GRAPH)
    if not plan.cfg.activation_graph.enabled:
        writer.write_document(root, layout.ACTIVATION_GRAPH, None)
    return None


def app_document(run: Run) -> dict[str, Any]:
    """activation_graph.json for the app plus ``"available": true``; ``{"available": false}``
    when the run has none, with ``error`` (the reader's message) when it is damaged."""
    from advtopo.rundir import ArtefactInvalid

    try:
        doc = run.document("activation_graph")
    except ArtefactInvalid as exc:
        return {"available": False, "error": str(exc)}
    if doc is None:
        return {"available": False}
    return {**doc, "available": True}
