"""The separability and stability stages: the study's claims measured without relying on one
mapper setting, each number with a bootstrap confidence interval.

- ``separability`` (per model, layer, attack, eps): cross-validated k-NN accuracy and
  linear-probe accuracy of the true label, and the mean silhouette with the classes as
  clusters, on the adversarial rows at eps > 0 and the clean rows at eps 0.
- ``stability`` (per model, layer, attack, eps): the graph's mean node purity and mixing
  over a grid of mapper settings (n_intervals x overlap x metric, the rest from the first
  [[mapper]] set, on that set's rows), as min / median / max; and, for every graph the
  study builds, its mean point purity with a CI over samples.

One task per (model, layer, attack, eps) (eps 0 is shared by the attacks), so a new eps adds
only its own tasks; ``publish_measures`` gathers them into ``separability.json`` and
``stability.json`` (formats in docs/study.md) when the run directory is published.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from advtopo.errors import AdvtopoError
from advtopo.rundir import layout, writer
from advtopo.rundir.layout import graph_id
from advtopo.study.stages import load_npy, mapper_rows
from advtopo.study.tasks import Task, read_done

if TYPE_CHECKING:  # the plan imports this module's plan functions
    from advtopo.study.plan import Plan

HERE = "advtopo.study.measures"


def _short(ci) -> dict[str, float | None]:
    return ci.to_dict(short=True)


_NONE = {"value": None, "lo": None, "hi": None}


def _subsample(n: int, max_samples: int | None, seed: int) -> np.ndarray:
    """The same seeded subset of sample ids for every (model, layer, attack, eps): paired rows."""
    if max_samples is None or n <= max_samples:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=int(max_samples), replace=False))


# --- separability ------------------------------------------------------------------------------

def run_separability(params: dict[str, Any], inputs: dict[str, Path], out_dir: Path, runtime: dict[str, Any]) -> dict:
    """k-NN / probe accuracy and silhouette (true labels) of one capture's rows at one layer."""
    from advtopo.activations import read_activations
    from advtopo.stats import bootstrap_ci, knn_correct, probe_correct, silhouette_values

    y = load_npy(inputs["data"] / "y.npy")
    keep = _subsample(len(y), params["max_samples"], params["seed"])
    X = np.asarray(read_activations(inputs["acts"] / "activations.zarr", params["layer"]))[keep]
    X = X.reshape(len(X), -1).astype(np.float32, copy=False)
    y = y[keep]
    boot = {"n_boot": params["n_boot"], "level": params["level"], "seed": params["seed"]}
    out: dict[str, Any] = {"n": int(len(y))}
    notes = []
    measures = {
        "knn_accuracy": lambda: knn_correct(X, y, k=params["k"], metric=params["metric"], cv=params["cv"],
                                            seed=params["seed"]),
        "probe_accuracy": lambda: probe_correct(X, y, cv=params["cv"], seed=params["seed"]),
        "silhouette": lambda: silhouette_values(X, y, metric=params["metric"]),
    }
    for key, fn in measures.items():
        try:
            per_sample = fn()
        except AdvtopoError as exc:  # too few samples / classes: the row says why, the run goes on
            out[key] = dict(_NONE)
            notes.append(f"{key}: {exc}")
            continue
        out[key] = _short(bootstrap_ci(per_sample.astype(np.float64), **boot))
        if key == "silhouette":
            out["silhouette_by_class"] = {str(c.item()): float(per_sample[y == c].mean()) for c in np.unique(y)}
    if notes:
        out["note"] = "; ".join(notes)
    return out


def plan_separability(plan: Plan) -> None:
    """One separability task per (model, layer, attack, eps); eps 0 tasks are shared by attacks."""
    cfg = plan.cfg
    s = cfg.separability
    plan.separability = []  # type: ignore[attr-defined]
    if not s.enabled:
        return
    base = {"k": s.k, "cv": s.cv, "n_boot": s.n_boot, "level": s.level, "max_samples": s.max_samples,
            "metric": s.metric, "seed": cfg.seed}
    for name in plan.models:
        for layer in cfg.layers:
            for a in cfg.attacks:
                for eps in a.eps:
                    label = graph_id(name, layer.key, a.name, eps)
                    t = plan.add(Task("separability", f"separability {label}", f"{HERE}:run_separability",
                                      {**base, "layer": layer.key},
                                      {"data": plan.data, "acts": plan.capture_for(name, a.name, eps)}))
                    plan.separability.append(  # type: ignore[attr-defined]
                        ({"model": name, "layer": layer.key, "attack": a.name, "eps": float(eps)}, t))


# --- stability ---------------------------------------------------------------------------------

def purity_and_mixing(graph) -> tuple[float | None, float | None]:
    """(mean node purity, mixing) of a mapper graph, with the definitions of advtopo.mapper.stats:
    mean purity = size-weighted mean over nodes of (most frequent true label count / size)
    (the graph stats' ``mean_purity``); mixing = 1 - mean point purity over the rows in some
    node (point purity = mean over a row's nodes of 1 / #distinct labels). None for an empty graph."""
    from advtopo.mapper import point_purity

    if graph.n_nodes == 0 or "label" not in graph.metadata:
        return None, None
    _, codes = np.unique(graph.metadata["label"], return_inverse=True)
    codes = codes.reshape(-1)
    M = graph.incidence()
    onehot = np.zeros((graph.n_points, int(codes.max()) + 1))
    onehot[np.arange(graph.n_points), codes] = 1.0
    counts = np.rint(M @ onehot)
    sizes = counts.sum(axis=1)
    purity = float(counts.max(axis=1).sum() / sizes.sum())
    pp = point_purity(graph)
    pp = pp[~np.isnan(pp)]
    return purity, (float(1.0 - pp.mean()) if len(pp) else None)


def _range(values: list[float | None]) -> dict[str, float | None]:
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    if not len(v):
        return {"min": None, "median": None, "max": None}
    return {"min": float(v.min()), "median": float(np.median(v)), "max": float(v.max())}


def _point_purity_cis(graph, n_boot: int, level: float, seed: int) -> dict[str, Any]:
    """Mean point purity of a study graph with a CI over samples (a sample's clean and
    adversarial rows are resampled together); rows in no node are left out (counted)."""
    from advtopo.mapper import point_purity
    from advtopo.stats import bootstrap_ci

    pp = point_purity(graph)
    sid = np.asarray(graph.metadata.get("sample_id", np.arange(graph.n_points)))
    adv = np.asarray(graph.metadata.get("is_adversarial", np.zeros(graph.n_points, bool)), bool)
    ok = ~np.isnan(pp)
    out: dict[str, Any] = {"n_rows": int(graph.n_points), "n_rows_in_nodes": int(ok.sum())}
    parts = [("mean_point_purity", ok)]
    if adv.any() and (~adv).any():
        parts += [("mean_point_purity_clean", ok & ~adv), ("mean_point_purity_adversarial", ok & adv)]
    for key, mask in parts:
        out[key] = (_short(bootstrap_ci(pp[mask], groups=sid[mask], n_boot=n_boot, level=level, seed=seed))
                    if mask.any() else dict(_NONE))
    return out


def run_stability(params: dict[str, Any], inputs: dict[str, Path], out_dir: Path, runtime: dict[str, Any]) -> dict:
    """Mean purity and mixing over the settings grid for one (model, layer, attack, eps), and
    the point-purity CIs of the study graphs given as inputs g0, g1, ..."""
    import json

    from advtopo.mapper import Mapper, MapperGraph

    grid = params["grid"]
    X, md = mapper_rows(inputs, params["layer"], params["rows"])
    mp = {k: v for k, v in params["mapper"].items() if k not in ("n_intervals", "overlap", "metric")}
    mp.setdefault("random_state", params["seed"] % (2**31))
    docs = {role: json.loads((inputs[role] / "graph.json").read_text())
            for role in sorted(r for r in inputs if r.startswith("g"))}
    known_eps = {}
    if "g0" in docs and mp.get("eps", "auto") == "auto" and docs["g0"]["params"].get("eps_requested") == "auto":
        # the first set's graph holds these rows and resolved eps="auto" for its metric already:
        # reuse that number (the same knee) instead of a second k-distance pass (~20% of the task)
        known_eps[docs["g0"]["params"]["metric"]] = float(docs["g0"]["params"]["eps"])
    settings = []
    for metric in grid["metric"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an empty graph is a result here (n_nodes 0), not a problem
            mapper = Mapper(**{**mp, "eps": known_eps.get(metric, mp.get("eps", "auto"))}, metric=metric)
            graphs = mapper.sweep(X, n_intervals=grid["n_intervals"], overlap=grid["overlap"], metadata=md)
        for (n_i, ov, _), g in graphs.items():
            purity, mixing = purity_and_mixing(g)
            settings.append({"n_intervals": n_i, "overlap": ov, "metric": metric, "mean_purity": purity,
                             "mixing": mixing, "n_nodes": int(g.n_nodes), "n_noise": int(len(g.noise_rows))})
    settings.sort(key=lambda r: (grid["n_intervals"].index(r["n_intervals"]), grid["overlap"].index(r["overlap"]),
                                 grid["metric"].index(r["metric"])))  # grid order
    graphs_ci = {}
    for role, doc in docs.items():
        graphs_ci[inputs[role].name] = _point_purity_cis(MapperGraph.from_dict(doc), params["n_boot"],
                                                         params["level"], params["seed"])
    return {"settings": settings, "mean_purity": _range([r["mean_purity"] for r in settings]),
            "mixing": _range([r["mixing"] for r in settings]), "graphs": graphs_ci}


def plan_stability(plan: Plan) -> None:
    """One stability task per (model, layer, attack, eps) on the rows of the first mapper set."""
    cfg = plan.cfg
    st = cfg.stability
    plan.stability = []  # type: ignore[attr-defined]
    if not st.enabled:
        return
    ms0 = cfg.mapper[0]
    grid = {"n_intervals": list(st.n_intervals), "overlap": [float(o) for o in st.overlap], "metric": list(st.metric)}
    for name in plan.models:
        for layer in cfg.layers:
            for a in cfg.attacks:
                for eps in a.eps:
                    deps: dict[str, Task] = {"data": plan.data, "clean": plan.captures[(name, "clean", 0.0)]}
                    if eps > 0 and ms0.rows != "clean":
                        deps["adv"] = plan.captures[(name, a.name, float(eps))]
                    for i, ms in enumerate(cfg.mapper):  # the study's graphs, when the mapper stage is planned
                        set_name = ms.name if len(cfg.mapper) > 1 else None
                        g = plan.graphs.get(graph_id(name, layer.key, a.name, eps, set_name))
                        if g is not None:
                            deps[f"g{i}"] = g[0]
                    params = {"layer": layer.key, "mapper": ms0.params(), "rows": ms0.rows if eps > 0 else "clean",
                              "grid": grid, "n_boot": st.n_boot, "level": st.level, "seed": cfg.seed}
                    label = graph_id(name, layer.key, a.name, eps)
                    t = plan.add(Task("stability", f"stability {label}", f"{HERE}:run_stability", params, deps))
                    plan.stability.append(  # type: ignore[attr-defined]
                        ({"model": name, "layer": layer.key, "attack": a.name, "eps": float(eps), "rows": ms0.rows},
                         t))


# --- publishing --------------------------------------------------------------------------------

def publish_measures(root: Path, plan: Plan) -> dict[str, str]:
    """Write separability.json / stability.json from finished tasks; returns their index.json
    entries (a disabled stage's file is removed; a stage left out of ``make_plan(stages=...)``
    keeps its file, unnamed in this index)."""
    root = Path(root)
    entries: dict[str, str] = {}
    cfg = plan.cfg
    sep = getattr(plan, "separability", None) or []
    if sep:
        s = cfg.separability
        rows = [{**info, **read_done(t.out_dir(root))["result"]} for info, t in sep]
        doc = {"params": {"k": s.k, "cv": s.cv, "n_boot": s.n_boot, "metric": s.metric, "level": s.level,
                          "max_samples": s.max_samples, "seed": cfg.seed,
                          "rows_measured": "adversarial at eps > 0, clean at eps 0; true labels"},
               "rows": rows}
        entries["separability"] = writer.write_document(root, layout.SEPARABILITY, doc)
    elif not cfg.separability.enabled:
        writer.write_document(root, layout.SEPARABILITY, None)
    stab = getattr(plan, "stability", None) or []
    if stab:
        st = cfg.stability
        rows, cis = [], {}
        for info, t in stab:
            res = read_done(t.out_dir(root))["result"]
            rows.append({**info, "settings": res["settings"], "mean_purity": res["mean_purity"],
                         "mixing": res["mixing"]})
            cis.update(res["graphs"])
        graphs = [{"graph_id": gid, "rows": info.get("rows", "both"), **cis[t.key]}
                  for gid, (t, info) in plan.graphs.items() if t.key in cis]
        doc = {"grid": {"n_intervals": list(st.n_intervals), "overlap": [float(o) for o in st.overlap],
                        "metric": list(st.metric)},
               "params": {"n_boot": st.n_boot, "level": st.level, "seed": cfg.seed,
                          "mapper_set": cfg.mapper[0].name,
                          "mixing": "1 - mean point purity over the rows in some node",
                          "mean_purity": "size-weighted mean node purity (graph stats' mean_purity)"},
               "rows": rows, "graphs": graphs}
        entries["stability"] = writer.write_document(root, layout.STABILITY, doc)
    elif not cfg.stability.enabled:
        writer.write_document(root, layout.STABILITY, None)
    return entries


def format_separability(doc: dict[str, Any]) -> str:
    """A short text table of separability.json (for ``advtopo show``): per attack and measure,
    a row per (model, layer) and a column per eps, with the widest CI half-width in the title."""
    p = doc.get("params", {})
    rows = doc.get("rows", [])
    lines = [f"separability of the true classes (adversarial rows at eps > 0; {p.get('cv')}-fold CV, "
             f"k={p.get('k')}, {p.get('metric')}; {100 * p.get('level', 0.95):g}% bootstrap CIs in separability.json)"]
    for attack in dict.fromkeys(r["attack"] for r in rows):
        ra = [r for r in rows if r["attack"] == attack]
        eps_list = sorted({r["eps"] for r in ra})
        for key, title in (("knn_accuracy", "k-NN accuracy"), ("probe_accuracy", "linear-probe accuracy"),
                           ("silhouette", "silhouette")):
            cis = [r[key] for r in ra if r.get(key) and r[key].get("value") is not None]
            half = max(((c["hi"] - c["lo"]) / 2 for c in cis), default=float("nan"))
            lines.append("")
            lines.append(f"{title} under {attack} (rows: model / layer, columns: eps; CI half-width <= {half:.3f})")
            lines.append(f"{'model / layer':32s}" + "".join(f"{e:>8g}" for e in eps_list))
            for model, layer in dict.fromkeys((r["model"], r["layer"]) for r in ra):
                val = {r["eps"]: (r.get(key) or {}).get("value") for r in ra
                       if r["model"] == model and r["layer"] == layer}
                cells = "".join(f"{val[e]:8.3f}" if val.get(e) is not None else f"{'n/a':>8s}" for e in eps_list)
                lines.append(f"{(model + ' / ' + layer)[:32]:32s}" + cells)
    return "\n".join(lines)
