"""A small but realistic run directory in the contract's format (docs/architecture.md).

Synthetic classes in a low-dimensional "activation" space; adversarial points are pushed
towards another class by an amount that grows with the attack eps and shrinks with the
model's adversarial-training eps, so graphs mix classes more as eps grows. A tiny mapper
(lens = projection on the first axis, overlapping intervals, single-linkage clusters)
builds the graphs, so members, edges and statistics are all consistent with each other.

Also used by ``benchmarks/app_render.py`` (``make_large_graph``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

CLASS_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
MODELS = [("cnn_std", 0.0), ("cnn_adv0.1", 0.1), ("cnn_adv0.3", 0.3)]
ATTACK = "pgd"
EPS = [0.0, 0.1, 0.3]
LAYERS = ["conv2", "fc1"]
IMG = 14
# datapaths.json (docs/architecture.md): gated layers of the first model, compared at these eps
DP_LAYERS = ["relu1", "relu2", "fc1"]
DP_WIDTHS = {"relu1": 10, "relu2": 16, "fc1": 32}
DP_VIA = {("relu1", "relu2"): "conv2", ("relu2", "fc1"): "fc1"}
DP_EPS = [0.1, 0.3]


def graph_id(model: str, layer: str, attack: str, eps: float) -> str:
    return f"{model}__{layer}__{attack}__{eps}"


def _class_images(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """uint8 [N, IMG, IMG, 1]: class c is a stroke at angle c*18 degrees, plus noise."""
    yy, xx = np.mgrid[0:IMG, 0:IMG] - (IMG - 1) / 2
    out = np.zeros((len(labels), IMG, IMG, 1), dtype=np.uint8)
    for i, c in enumerate(labels):
        a = np.deg2rad(c * 18.0)
        d = np.abs(xx * np.sin(a) - yy * np.cos(a))
        ring = np.abs(np.hypot(xx, yy) - 4.5) < 0.8 if c % 2 else np.zeros_like(d, dtype=bool)
        img = np.clip(1.4 - d, 0, 1) * (np.hypot(xx, yy) < 6) + 0.8 * ring
        img = np.clip(img + rng.normal(0, 0.06, img.shape), 0, 1)
        out[i, :, :, 0] = (img * 255).astype(np.uint8)
    return out


def mini_mapper(
    X: np.ndarray,
    labels: np.ndarray,
    preds: np.ndarray,
    is_adv: np.ndarray,
    sample_ids: np.ndarray,
    n_intervals: int = 8,
    overlap: float = 0.3,
    radius: float = 1.0,
) -> dict:
    """A tiny mapper producing the ``MapperGraph.to_dict()`` layout of the contract."""
    lens = X[:, 0].astype(float)
    lo, hi = float(lens.min()), float(lens.max())
    width = (hi - lo) / (n_intervals - (n_intervals - 1) * overlap)
    step = width * (1 - overlap)
    nodes: list[dict] = []
    clustered = np.zeros(len(X), dtype=bool)
    for k in range(n_intervals):
        a = lo + k * step
        idx = np.where((lens >= a - 1e-9) & (lens <= a + width + 1e-9))[0]
        if len(idx) == 0:
            continue
        # single linkage at `radius` (union-find over the pairwise distance graph)
        parent = list(range(len(idx)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        D = np.linalg.norm(X[idx, None, :] - X[None, idx, :], axis=-1)
        for i, j in zip(*np.where(np.triu(D < radius, 1))):
            parent[find(int(i))] = find(int(j))
        groups: dict[int, list[int]] = {}
        for i in range(len(idx)):
            groups.setdefault(find(i), []).append(int(idx[i]))
        for members in sorted(groups.values(), key=lambda m: m[0]):
            if len(members) < 2:  # DBSCAN-like noise
                continue
            clustered[members] = True
            m = np.array(sorted(members))
            hist: dict[str, int] = {}
            for c in labels[m]:
                hist[str(int(c))] = hist.get(str(int(c)), 0) + 1
            counts = np.array(list(hist.values()), dtype=float)
            p = counts / counts.sum()
            dom = int(max(hist, key=lambda c: (hist[c], -int(c))))
            nodes.append({
                "id": f"n{len(nodes)}",
                "members": m.tolist(),
                "size": int(len(m)),
                "cover_element": [k],
                "class_hist": hist,
                "dominant_class": dom,
                "purity": float(counts.max() / counts.sum()),
                "entropy": float(-(p * np.log(p)).sum()),
                "frac_adversarial": float(is_adv[m].mean()),
                "frac_misclassified": float((preds[m] != labels[m]).mean()),
                "mean_lens": float(lens[m].mean()),
                "mean_l2": float(np.linalg.norm(X[m], axis=1).mean()),
            })
    edges = []
    sets = [set(n["members"]) for n in nodes]
    for i in range(len(nodes)):
        for j in range(i + 1, len(nodes)):
            inter = len(sets[i] & sets[j])
            if inter:
                edges.append({"source": nodes[i]["id"], "target": nodes[j]["id"],
                              "weight": inter, "jaccard": inter / len(sets[i] | sets[j])})
    # components (union-find over edges)
    comp = {n["id"]: n["id"] for n in nodes}

    def cfind(a: str) -> str:
        while comp[a] != a:
            a = comp[a]
        return a

    for e in edges:
        comp[cfind(e["source"])] = cfind(e["target"])
    n_comp = len({cfind(n["id"]) for n in nodes})
    # point purity: mean over the nodes holding a row of 1/#distinct labels
    acc = np.zeros(len(X))
    cnt = np.zeros(len(X))
    for n in nodes:
        acc[n["members"]] += 1.0 / len(n["class_hist"])
        cnt[n["members"]] += 1
    point_purity = np.where(cnt > 0, acc / np.maximum(cnt, 1), 0.0)
    noise_rows = np.where(~clustered)[0].tolist()
    purities = [n["purity"] for n in nodes]
    entropies = [n["entropy"] for n in nodes]
    return {
        "params": {"lens": "pca", "n_intervals": n_intervals, "overlap": overlap,
                   "clusterer": "single", "eps": radius},
        "points": {"sample_id": sample_ids.astype(int).tolist(), "label": labels.astype(int).tolist(),
                   "prediction": preds.astype(int).tolist(), "is_adversarial": is_adv.astype(bool).tolist(),
                   "lens": lens.round(6).tolist()},
        "nodes": nodes,
        "edges": edges,
        "stats": {"n_nodes": len(nodes), "n_edges": len(edges), "n_components": n_comp,
                  "n_noise": len(noise_rows), "noise_rows": noise_rows,
                  "mean_purity": float(np.mean(purities)) if purities else 0.0,
                  "mean_entropy": float(np.mean(entropies)) if entropies else 0.0},
        "point_purity": point_purity.round(6).tolist(),
    }


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _rnd(v: float | None, nd: int = 4) -> float | None:
    return None if v is None else round(float(v), nd)


def _group_mean(v: np.ndarray, mask: np.ndarray) -> float | None:
    return _rnd(v[mask].mean()) if mask.any() else None


def make_datapaths(labels: np.ndarray, sample_ids: np.ndarray, model: str = "cnn_std", attack: str = ATTACK,
                   eps_list: tuple[float, ...] = tuple(DP_EPS), n_detail: int = 3, top_k: int = 6,
                   threshold: float = 0.5, divergence_threshold: float = 0.5, seed: int = 1) -> dict:
    """A ``datapaths.json`` in the documented format (docs/architecture.md), self-consistent:
    gates -> critical sets (gate >= threshold) -> per-sample Jaccard / weighted Jaccard,
    divergence layer, fooled flag -> the aggregates; flow edges = the ``top_k`` strongest
    [source, target, |W|] between critical neurons of consecutive layers. The adversarial
    gates drift away from the clean ones more with eps, with depth and with a per-sample
    fragility, so later layers diverge more and fooled samples diverge earlier."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels, int)
    n, layers = len(labels), list(DP_LAYERS)
    fragility = rng.permutation(np.linspace(0.3, 1.6, n))
    clean_pred = labels.copy()
    wrong = int(np.argmax(fragility))  # the most fragile sample is misclassified even clean
    clean_pred[wrong] = (labels[wrong] + 3) % len(CLASS_NAMES)
    logit_c = {k: rng.normal(-0.4, 2.0, (n, DP_WIDTHS[k])) for k in layers}
    for k in layers:  # every clean path keeps at least one neuron per layer
        rows = np.arange(n)
        top = logit_c[k].argmax(1)
        logit_c[k][rows, top] = np.maximum(logit_c[k][rows, top], 0.5)
    gates_c = {k: _sigmoid(v) for k, v in logit_c.items()}
    W = {pair: rng.uniform(0.05, 1.0, (DP_WIDTHS[pair[1]], DP_WIDTHS[pair[0]])) for pair in DP_VIA}

    def state(gates: dict, pred: np.ndarray, target: np.ndarray) -> dict:
        crit = {k: gates[k] >= threshold for k in layers}
        ok = (pred == target)
        return {"retained_accuracy": _rnd(ok.mean() - 0.08 * rng.random()),
                "retained_accuracy_soft": _rnd(1.0),
                "kept_fraction": {k: _rnd(crit[k].mean()) for k in layers},
                "kept_fraction_total": _rnd(sum(crit[k].sum() for k in layers) / (n * sum(DP_WIDTHS.values()))),
                "mean_size": {k: _rnd(crit[k].sum(1).mean(), 2) for k in layers}}

    def flow(gates: dict, i: int) -> list[dict]:
        out = []
        for (a, b), w in W.items():
            src = np.flatnonzero(gates[a][i] >= threshold)
            dst = np.flatnonzero(gates[b][i] >= threshold)
            sub = w[np.ix_(dst, src)].ravel()
            order = np.argsort(-sub, kind="stable")[:top_k]
            out.append({"source": a, "target": b,
                        "edges": [[int(src[o % len(src)]), int(dst[o // len(src)]), round(float(sub[o]), 6)] for o in order]})
        return out

    adv_gates, jac, wjac, fooled, pred_adv, div = {}, {}, {}, {}, {}, {}
    for e in eps_list:
        g_a, J, WJ = {}, np.zeros((n, len(layers))), np.zeros((n, len(layers)))
        for d, k in enumerate(layers):
            mix = np.clip(e * (0.25 + 1.1 * d) * fragility * 2.2, 0, 0.95)[:, None]
            g_a[k] = _sigmoid((1 - mix) * logit_c[k] + mix * rng.normal(-0.6, 2.0, logit_c[k].shape))
            A, B = gates_c[k] >= threshold, g_a[k] >= threshold
            inter, union = (A & B).sum(1), (A | B).sum(1)
            J[:, d] = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
            mx = np.maximum(gates_c[k], g_a[k]).sum(1)
            WJ[:, d] = np.where(mx > 0, np.minimum(gates_c[k], g_a[k]).sum(1) / np.maximum(mx, 1e-12), 1.0)
        flip = e * fragility * 4 > 0.5
        pred_adv[e] = np.where(flip, (labels + 1 + np.arange(n) % 9) % len(CLASS_NAMES), clean_pred)
        fooled[e] = pred_adv[e] != labels
        below = J < divergence_threshold
        div[e] = np.where(below.any(1), below.argmax(1), -1)
        adv_gates[e], jac[e], wjac[e] = g_a, J, WJ

    groups = lambda e: {"all": np.ones(n, bool), "fooled": fooled[e], "not_fooled": ~fooled[e]}  # noqa: E731
    by_layer = {}
    for d, k in enumerate(layers):
        entry = {}
        for metric, vals in (("jaccard", jac), ("weighted_jaccard", wjac)):
            for gname in ("all", "fooled", "not_fooled"):
                entry[f"{metric}_{gname}"] = [_group_mean(vals[e][:, d], groups(e)[gname]) for e in eps_list]
        by_layer[k] = entry
    by_eps = []
    for e in eps_list:
        counts = {}
        for gname, m in groups(e).items():
            c = {k: int(np.sum(div[e][m] == d)) for d, k in enumerate(layers)}
            c["none"] = int(np.sum(div[e][m] < 0))
            counts[gname] = c
        by_eps.append({"eps": float(e), "n_fooled": int(fooled[e].sum()),
                       "accuracy": _rnd((pred_adv[e] == labels).mean()),
                       **state(adv_gates[e], pred_adv[e], pred_adv[e]), "divergence_counts": counts})
    samples = []
    for i in range(n):
        row = {"sample_id": int(sample_ids[i]), "label": int(labels[i]), "clean_prediction": int(clean_pred[i]), "eps": {}}
        for e in eps_list:
            row["eps"][f"{e:g}"] = {
                "prediction": int(pred_adv[e][i]), "fooled": bool(fooled[e][i]),
                "divergence_layer": layers[div[e][i]] if div[e][i] >= 0 else None,
                "jaccard": [_rnd(v) for v in jac[e][i]], "weighted_jaccard": [_rnd(v) for v in wjac[e][i]]}
        samples.append(row)
    detail = []
    for i in range(min(n_detail, n)):
        crit = lambda g: {k: np.flatnonzero(g[k][i] >= threshold).tolist() for k in layers}  # noqa: E731
        detail.append({"sample_id": int(sample_ids[i]),
                       "clean": {"critical": crit(gates_c), "flow": flow(gates_c, i)},
                       "adversarial": {f"{e:g}": {"critical": crit(adv_gates[e]), "flow": flow(adv_gates[e], i)}
                                       for e in eps_list}})
    return {
        "model": model, "attack": attack, "layers": layers, "widths": dict(DP_WIDTHS),
        "params": {"lam": 2.0, "steps": 150, "lr": 0.1, "threshold": threshold, "target": "prediction", "seed": 0},
        "divergence_threshold": divergence_threshold, "n_samples": n, "eps": [float(e) for e in eps_list],
        "clean": state(gates_c, clean_pred, clean_pred),
        "by_layer": by_layer, "by_eps": by_eps,
        "connections": [{"source": a, "target": b, "via": v, "supported": True, "reason": None}
                        for (a, b), v in DP_VIA.items()],
        "samples": samples, "detail": detail,
    }


def make_fixture_run(root: str | Path, n_per_class: int = 10, seed: int = 0,
                     with_extras: bool = True, with_datapaths: bool | None = None) -> Path:
    """Write a run directory under ``root`` and return its path.

    3 models (training eps 0, 0.1, 0.3) x attack eps (0, 0.1, 0.3) x 2 layers = 18 graphs.
    ``with_extras`` adds ``vulnerability.json`` and a ``persistence`` section;
    ``with_datapaths`` (default: ``with_extras``) adds ``datapaths.json`` (10 samples, one
    per class, 3 gated layers, eps 0.1 and 0.3, the first 3 with critical ids and flow).
    """
    rng = np.random.default_rng(seed)
    run = Path(root)
    run.mkdir(parents=True, exist_ok=True)
    n_cls = len(CLASS_NAMES)
    labels = np.repeat(np.arange(n_cls), n_per_class)
    N = len(labels)
    sample_ids = np.arange(N)
    dim = 4
    angles = np.linspace(0, 2 * np.pi, n_cls, endpoint=False)
    centers = np.zeros((n_cls, dim))
    centers[:, 0] = 3.2 * np.cos(angles)
    centers[:, 1] = 3.2 * np.sin(angles)
    base_noise = rng.normal(0, 1, (N, dim))
    target = (labels + 1 + rng.integers(0, n_cls - 1, N)) % n_cls  # adversarial target class
    fragility = rng.uniform(0.3, 1.6, N)  # some samples are much easier to fool

    (run / "images").mkdir(exist_ok=True)
    clean_img = _class_images(rng, labels)
    np.save(run / "images" / "clean.npy", clean_img)

    index: dict = {
        "name": "fixture", "created": "2025-01-01T00:00:00Z",
        "dataset": {"name": "synthetic-strokes", "class_names": CLASS_NAMES,
                    "image_shape": [1, IMG, IMG], "n_samples": N},
        "models": [{"name": m, "arch": "cnn", "train_eps": te, "clean_accuracy": None} for m, te in MODELS],
        "attacks": [{"name": ATTACK, "eps": EPS}],
        "layers": LAYERS,
        "accuracy": [],
        "images": {"clean": "images/clean.npy", "adversarial": {}},
        "graphs": [],
    }
    rows = []
    fooled_at: dict[int, float] = {}
    (run / "mapper").mkdir(exist_ok=True)
    for mi, (model, train_eps) in enumerate(MODELS):
        robust = 1.0 / (1.0 + 6.0 * train_eps)
        (run / "images" / model).mkdir(exist_ok=True)
        for eps in EPS:
            push = eps * 5.0 * robust * fragility  # how far towards the target class
            for li, layer in enumerate(LAYERS):
                spread = 0.55 if layer == "fc1" else 0.8
                Xc = centers[labels] + spread * base_noise + 0.1 * mi
                Xa = Xc + (centers[target] - centers[labels]) * np.clip(push, 0, 0.95)[:, None] * (0.7 + 0.3 * li)
                pred_c = np.argmin(np.linalg.norm(Xc[:, None, :2] - centers[None, :, :2], axis=-1), axis=1)
                pred_a = np.argmin(np.linalg.norm(Xa[:, None, :2] - centers[None, :, :2], axis=-1), axis=1)
                if eps > 0:
                    X = np.concatenate([Xc, Xa])
                    lab = np.concatenate([labels, labels])
                    pred = np.concatenate([pred_c, pred_a])
                    adv = np.concatenate([np.zeros(N, bool), np.ones(N, bool)])
                    sid = np.concatenate([sample_ids, sample_ids])
                else:
                    X, lab, pred, adv, sid = Xc, labels, pred_c, np.zeros(N, bool), sample_ids
                g = mini_mapper(X, lab, pred, adv, sid, n_intervals=10, overlap=0.35, radius=1.5)
                gid = graph_id(model, layer, ATTACK, eps)
                (run / "mapper" / f"{gid}.json").write_text(json.dumps(g))
                st = {k: g["stats"][k] for k in ("n_nodes", "n_edges", "n_components", "n_noise", "mean_purity", "mean_entropy")}
                index["graphs"].append({"id": gid, "model": model, "layer": layer, "attack": ATTACK,
                                        "eps": eps, "path": f"mapper/{gid}.json", "params": g["params"],
                                        "stats": st})
            # the samples table and images use the last layer's predictions (the model's output)
            if eps > 0:
                adv_img = np.clip(clean_img.astype(int) + (rng.normal(0, 255 * eps, clean_img.shape)), 0, 255).astype(np.uint8)
                rel = f"images/{model}/{ATTACK}_{eps}.npy"
                np.save(run / rel, adv_img)
                index["images"]["adversarial"][f"{model}/{ATTACK}/{eps}"] = rel
            acc = float((pred_a == labels).mean()) if eps > 0 else float((pred_c == labels).mean())
            index["accuracy"].append({"model": model, "attack": ATTACK, "eps": eps, "accuracy": acc})
            if eps == 0:
                index["models"][mi]["clean_accuracy"] = acc
            for i in range(N):
                p = int(pred_a[i] if eps > 0 else pred_c[i])
                rows.append({"sample_id": i, "dataset_index": 1000 + i, "split": "test", "label": int(labels[i]),
                             "model": model, "attack": ATTACK, "eps": eps, "is_adversarial": eps > 0,
                             "prediction": p, "correct": p == labels[i], "confidence": float(rng.uniform(0.4, 1)),
                             "margin": float(rng.normal(0, 1)), "loss": float(rng.uniform(0, 3))})
                if model == MODELS[0][0] and eps > 0 and p != labels[i] and i not in fooled_at:
                    fooled_at[i] = eps
    pd.DataFrame(rows).to_parquet(run / "samples.parquet", index=False)
    if with_extras:
        order = np.argsort(-fragility)
        vul = {"samples": [{"sample_id": int(i), "score": float(round(fragility[i], 4)),
                            "fooled_at": fooled_at.get(int(i))} for i in order[:20]]}
        (run / "vulnerability.json").write_text(json.dumps(vul))
        index["vulnerability"] = "vulnerability.json"
        L = ["conv1", "conv2", "fc1", "fc2"]
        M = np.abs(np.subtract.outer(np.arange(4), np.arange(4))) * 0.4 + 0.0
        index["persistence"] = {
            "layer_distance": {m: {"layers": L, "matrix": (M * (1 + k * 0.3)).round(3).tolist()}
                               for k, (m, _) in enumerate(MODELS)},
            "cka": {"layers": L, "matrix": (1 - M / 2).round(3).tolist()},
        }
        # persistence diagrams as the persistence stage stores them: (birth, death, dim) rows
        (run / "persistence" / "diagrams").mkdir(parents=True, exist_ok=True)
        diagrams = {}
        for k, (m, _) in enumerate(MODELS):
            for eps in (0.0, 0.3):
                births = np.r_[np.zeros(6), rng.uniform(0.5, 1.0, 4)]
                deaths = births + rng.uniform(0.1, 1.0 + eps, 10)
                dims = np.r_[np.zeros(6), np.ones(4)]
                rel = f"persistence/diagrams/{m}__fc1__pgd__{eps}.npy"
                np.save(run / rel, np.stack([births, deaths, dims], axis=1))
                diagrams[f"{m}/fc1/pgd/{eps}"] = rel
        index["persistence"]["diagrams"] = diagrams
    if with_extras if with_datapaths is None else with_datapaths:
        pick = np.linspace(0, N - 1, min(10, N)).round().astype(int)
        dp = make_datapaths(labels[pick], sample_ids[pick], model=MODELS[0][0])
        (run / "datapaths.json").write_text(json.dumps(dp))
        index["datapaths"] = "datapaths.json"
    (run / "index.json").write_text(json.dumps(index, indent=1))
    (run / "manifest.json").write_text(json.dumps({"config": {}, "fixture": True}))
    return run


def make_large_graph(n_intervals: int = 50, n_strands: int = 20, per_node: int = 12,
                     n_classes: int = 10, seed: int = 0) -> dict:
    """A graph with exactly ``n_intervals * n_strands`` nodes (1,000 by default)."""
    rng = np.random.default_rng(seed)
    nodes, edges = [], []
    labels, preds, advs, lens_v, sids = [], [], [], [], []
    prev: list[list[int]] = []
    nid = 0
    for k in range(n_intervals):
        cur = []
        for s in range(n_strands):
            rows = list(range(len(labels), len(labels) + per_node))
            base = s % n_classes
            for _ in rows:
                labels.append(base if rng.random() < 0.8 else int(rng.integers(n_classes)))
                a = bool(rng.random() < 0.5)
                advs.append(a)
                preds.append(labels[-1] if (not a or rng.random() < 0.6) else int(rng.integers(n_classes)))
                lens_v.append(k + rng.random())
                sids.append(len(sids) // 2)
            # overlap with the previous interval's node of the same strand (and sometimes a neighbour)
            shared = prev[s][-3:] if prev else []
            if prev and rng.random() < 0.15:
                shared = shared + prev[(s + 1) % n_strands][-2:]
            members = sorted(set(rows) | set(shared))
            cur.append(members)
            lab = np.array(labels)[members]
            hist: dict[str, int] = {}
            for c in lab:
                hist[str(int(c))] = hist.get(str(int(c)), 0) + 1
            nodes.append({"id": f"n{nid}", "members": members, "size": len(members), "cover_element": [k],
                          "class_hist": hist, "dominant_class": int(max(hist, key=hist.get)),
                          "purity": max(hist.values()) / len(members), "entropy": 0.0,
                          "frac_adversarial": float(np.mean(np.array(advs)[members])),
                          "frac_misclassified": float(np.mean(np.array(preds)[members] != lab)),
                          "mean_lens": float(np.mean(np.array(lens_v)[members])),
                          "mean_l2": float(rng.uniform(1, 5))})
            nid += 1
        if prev:
            for s in range(n_strands):
                for t in range(n_strands):
                    inter = len(set(prev[s]) & set(cur[t]))
                    if inter:
                        a = (k - 1) * n_strands + s
                        b = k * n_strands + t
                        edges.append({"source": f"n{a}", "target": f"n{b}", "weight": inter,
                                      "jaccard": inter / len(set(prev[s]) | set(cur[t]))})
        prev = cur
    n = len(labels)
    return {
        "params": {"lens": "l2norm", "n_intervals": n_intervals, "overlap": 0.3},
        "points": {"sample_id": sids, "label": labels, "prediction": preds, "is_adversarial": advs,
                   "lens": lens_v},
        "nodes": nodes, "edges": edges,
        "stats": {"n_nodes": len(nodes), "n_edges": len(edges), "n_components": 1, "n_noise": 0,
                  "noise_rows": [], "mean_purity": float(np.mean([x["purity"] for x in nodes])),
                  "mean_entropy": 0.0},
        "point_purity": [1.0] * n,
    }


def make_large_run(root: str | Path, **kw) -> Path:
    """A run directory holding one large graph (for the render benchmark)."""
    run = Path(root)
    (run / "mapper").mkdir(parents=True, exist_ok=True)
    g = make_large_graph(**kw)
    (run / "mapper" / "big.json").write_text(json.dumps(g))
    n = max(g["points"]["sample_id"]) + 1
    (run / "images").mkdir(exist_ok=True)
    np.save(run / "images" / "clean.npy", np.zeros((n, 8, 8, 1), np.uint8))
    index = {"name": "large", "dataset": {"name": "synthetic", "class_names": CLASS_NAMES,
                                          "image_shape": [1, 8, 8], "n_samples": n},
             "models": [{"name": "m", "arch": "cnn", "train_eps": 0.0}], "attacks": [{"name": "pgd", "eps": [0.1]}],
             "layers": ["fc1"], "accuracy": [], "images": {"clean": "images/clean.npy", "adversarial": {}},
             "graphs": [{"id": "big", "model": "m", "layer": "fc1", "attack": "pgd", "eps": 0.1,
                         "path": "mapper/big.json", "params": g["params"],
                         "stats": {k: g["stats"][k] for k in ("n_nodes", "n_edges", "n_components", "n_noise", "mean_purity")}}]}
    (run / "index.json").write_text(json.dumps(index))
    return run


if __name__ == "__main__":  # python tests/app_fixture.py OUT_DIR
    import sys

    print(make_fixture_run(sys.argv[1] if len(sys.argv) > 1 else "/tmp/advtopo-fixture"))
