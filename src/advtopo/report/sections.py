"""The report's sections: for each claim of the papers behind advtopo, the numbers a run holds
about it, a verdict computed from them by an explicit rule, and the figure's inputs.

Every function takes an open :class:`advtopo.study.results.Run` and returns a
:class:`Section`; a section whose inputs the run does not have says so (``missing``) and
what to enable (``enable``) instead of failing. Nothing here draws: figures are drawn in
:mod:`advtopo.report.figures` from ``Section.figure_input`` only, so the input's hash
decides whether a figure can be reused.

Verdict rules (documented in docs/report.md, applied by :func:`trend`):

* a series *falls* when the upper CI bound at its largest eps is below the lower CI bound
  at its smallest eps (no overlap); without CIs, when the last value is below the first;
* a series is *monotone* when no step between consecutive eps rises significantly (the
  later lower bound above the earlier upper bound; without CIs, any rise);
* a section *holds* when every series falls monotonically, *partly* when at least one
  series falls, and *does not hold* when none does. Sections with their own rule say so.
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

HOLDS, PARTLY, NOT_HOLD, UNJUDGED = "holds", "partly", "does not hold", "cannot be judged"
N_BOOT, LEVEL, SEED = 1000, 0.95, 0

ZHOU = "Zhou, Zhou, Ding & Wang, TAG-ML 2023 (mapper graphs under adversarial training)"
GEBHART = "Gebhart, Schrater & Hylton 2019 (persistent homology of the activation graph)"
PURVINE = "Purvine et al., AAAI 2023 workshop / arXiv 2212.00222 (topology of CNN activations)"
CAO = "Cao et al., IEEE TVCG 2021 (datapaths of adversarial examples)"


@dataclass
class Section:
    """One claim: the numbers, the verdict and the figure's inputs (JSON-able)."""

    key: str
    title: str
    claim: str
    source: str
    numbers: dict[str, Any] = field(default_factory=dict)
    verdict: str | None = None
    sentence: str = ""
    rule: str = ""
    figure_input: dict[str, Any] | None = None
    figure_arrays: dict[str, np.ndarray] = field(default_factory=dict)
    caption: str = ""
    missing: str | None = None
    enable: str | None = None

    @property
    def present(self) -> bool:
        return self.missing is None

    def to_dict(self) -> dict[str, Any]:
        d = {"key": self.key, "title": self.title, "claim": self.claim, "source": self.source,
             "status": "ok" if self.present else "not in this run"}
        if self.present:
            d.update(verdict=self.verdict, sentence=self.sentence, rule=self.rule, caption=self.caption,
                     numbers=self.numbers)
        else:
            d.update(missing=self.missing, enable=self.enable)
        return d


# --- statistics -------------------------------------------------------------------------

def bootstrap(data: tuple[np.ndarray, ...], statistic: Callable[..., float], *, groups: Any = None,
              n_boot: int = N_BOOT, level: float = LEVEL, seed: int = SEED) -> dict[str, Any]:
    """``advtopo.stats.bootstrap_ci`` of ``statistic(*data)`` as a JSON-able dict.

    Why: the report puts 95% CIs on numbers the study stores without them (accuracy, AUC,
    datapath overlap). A bound is None when resamples make the statistic undefined (an AUC
    with one class only)."""
    from advtopo.stats import bootstrap_ci

    data = tuple(np.asarray(a) for a in data)
    if len(data[0]) == 0:
        return {"value": None, "lo": None, "hi": None, "n": 0}
    ci = bootstrap_ci(data if len(data) > 1 else data[0], statistic, n_boot=n_boot, level=level, seed=seed,
                      groups=groups)
    return {"value": _num(ci.value), "lo": _num(ci.lo), "hi": _num(ci.hi), "n": int(ci.n)}


def mean_ci(values: Any, groups: Any = None) -> dict[str, Any]:
    """Mean of ``values`` (NaN rows left out) with a bootstrap CI over samples; rows sharing a
    ``groups`` id (the clean and adversarial rows of one sample) are resampled together."""
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    g = None if groups is None else np.asarray(groups)[ok]
    return bootstrap((v[ok],), np.mean, groups=g)


def trend(eps: list[float], value: list[float | None], lo: list[float | None] | None = None,
          hi: list[float | None] | None = None) -> dict[str, Any]:
    """Does a series fall from its smallest to its largest eps beyond the CIs, without a
    significant rise between consecutive eps? (the rule in the module docstring)"""
    lo = lo or [None] * len(eps)
    hi = hi or [None] * len(eps)
    pts = sorted((float(e), float(v), lo[i], hi[i]) for i, (e, v) in enumerate(zip(eps, value))
                 if v is not None and np.isfinite(v))
    if len(pts) < 2:
        return {"falls": False, "monotone": False, "holds": False, "start": None, "end": None, "judged": False}

    def low(p: tuple) -> float:
        return p[1] if p[2] is None else p[2]

    def high(p: tuple) -> float:
        return p[1] if p[3] is None else p[3]

    s, e = pts[0], pts[-1]
    falls = high(e) < low(s)
    monotone = not any(low(b) > high(a) for a, b in zip(pts, pts[1:]))
    return {"falls": bool(falls), "monotone": bool(monotone), "holds": bool(falls and monotone),
            "start": s[1], "end": e[1], "eps_start": s[0], "eps_end": e[0], "judged": True}


def series_verdict(trends: list[dict[str, Any]]) -> str:
    """holds: every judged series falls monotonically; partly: at least one falls; else does not hold."""
    judged = [t for t in trends if t.get("judged")]
    if not judged:
        return UNJUDGED
    if all(t["holds"] for t in judged):
        return HOLDS
    if any(t["falls"] for t in judged):
        return PARTLY
    return NOT_HOLD


TREND_RULE = ("holds if every series falls from the smallest to the largest eps with non-overlapping 95% CIs "
              "and no significant rise between consecutive eps; partly if at least one series falls so; "
              "does not hold if none does")


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def _f(x: float | None, nd: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{nd}f}"


def _ci_txt(d: dict[str, Any], nd: int = 2) -> str:
    if d.get("lo") is None:
        return _f(d.get("value"), nd)
    return f"{_f(d['value'], nd)} [{_f(d['lo'], nd)}, {_f(d['hi'], nd)}]"


def _ekey(e: float) -> float:
    return round(float(e), 9)


def _trend_summary(series: list[dict[str, Any]], trends: list[dict[str, Any]], name: str, nd: int = 2) -> str:
    """"<name> falls significantly in k/n series (monotonically in m): a 0.9→0.1; ...; not in: x"."""
    pairs = [(s, t) for s, t in zip(series, trends) if t.get("judged")]
    falls = sum(t["falls"] for _, t in pairs)
    mono = sum(t["holds"] for _, t in pairs)
    parts = [f"{s['label']} {_f(t['start'], nd)}→{_f(t['end'], nd)}" for s, t in pairs][:8]
    more = "" if len(pairs) <= 8 else f" (+{len(pairs) - 8} more)"
    not_falling = [s["label"] for s, t in pairs if not t["falls"]]
    tail = f"; no significant fall: {', '.join(not_falling[:6])}" if not_falling else ""
    return (f"{name} falls significantly in {falls}/{len(pairs)} series (monotonically in {mono}): "
            + "; ".join(parts) + more + tail)


# --- 1. accuracy vs eps ---------------------------------------------------------------

def accuracy_section(run: Any) -> Section:
    """Accuracy vs eps per model, with bootstrap CIs over the samples of samples.parquet."""
    sec = Section("accuracy", "Accuracy under attack",
                  "Stronger attacks make samples less distinguishable in activation space, which leads to a "
                  "lower accuracy.", ZHOU, rule=TREND_RULE)
    acc = run.index.get("accuracy") or []
    if not acc:
        sec.missing, sec.enable = "no accuracy table in index.json", "run the study's attack stage (`advtopo run`)"
        return sec
    try:
        df = run.samples
    except (OSError, ValueError, ImportError):
        df = None
    series = []
    for (model, attack) in dict.fromkeys((a["model"], a["attack"]) for a in acc):
        rows = sorted((a for a in acc if a["model"] == model and a["attack"] == attack), key=lambda a: a["eps"])
        eps, val, lo, hi, n = [], [], [], [], []
        for a in rows:
            ci = {"value": a["accuracy"], "lo": None, "hi": None, "n": None}
            if df is not None:
                sel = df[(df["model"] == model) & (df["attack"] == attack) & (np.isclose(df["eps"], a["eps"]))]
                if len(sel):
                    ci = mean_ci(sel["correct"].to_numpy(dtype=np.float64))
            eps.append(float(a["eps"]))
            val.append(_num(ci["value"]))
            lo.append(ci["lo"])
            hi.append(ci["hi"])
            n.append(ci["n"])
        series.append({"label": model if len({a["attack"] for a in acc}) == 1 else f"{model} · {attack}",
                       "model": model, "attack": attack, "eps": eps, "accuracy": val, "lo": lo, "hi": hi, "n": n})
    trends = [trend(s["eps"], s["accuracy"], s["lo"], s["hi"]) for s in series]
    sec.numbers = {"series": series, "trends": trends}
    sec.verdict = series_verdict(trends)
    sec.sentence = f"{sec.verdict.capitalize()}: " + _trend_summary(series, trends, "accuracy") + "."
    sec.figure_input = {"series": series}
    sec.caption = "Accuracy on the study's samples vs attack strength; bands: 95% bootstrap CI over samples."
    return sec


# --- 2. purity vs eps -----------------------------------------------------------------

def purity_section(run: Any) -> Section:
    """Mean point purity of every mapper graph vs eps, per model, layer and mapper set."""
    sec = Section("purity", "Class mixing in mapper graphs",
                  "Stronger attacks make samples less distinguishable in activation space: mapper nodes mix "
                  "classes (mean point purity falls).", ZHOU, rule=TREND_RULE)
    graphs = [g for g in run.index.get("graphs") or [] if not g.get("recomputed")]
    if not graphs:
        sec.missing, sec.enable = "no mapper graphs", "add a [[mapper]] set to the study config and re-run"
        return sec
    stab = run.stability() or {}
    from_stab = {g["graph_id"]: g["mean_point_purity"] for g in stab.get("graphs", []) if g.get("mean_point_purity")}
    groups: dict[tuple, list] = defaultdict(list)
    for g in graphs:
        rows = g.get("rows") or (g.get("params") or {}).get("rows", "both")
        groups[(g["model"], g["layer"], g["attack"], g.get("mapper_set", "default"), rows)].append(g)
    series = []
    for (model, layer, attack, mset, rows), gs in groups.items():
        gs.sort(key=lambda g: g["eps"])
        eps, val, lo, hi, n, noise, src = [], [], [], [], [], [], []
        for g in gs:
            if g["id"] in from_stab:
                ci = dict(from_stab[g["id"]])
                src.append("stability.json")
            else:
                gj = run.graph(g["id"])
                pp = np.asarray([np.nan if p is None else p for p in gj.get("point_purity", [])], dtype=np.float64)
                ci = mean_ci(pp, gj["points"]["sample_id"])
                src.append("bootstrap over samples")
            eps.append(float(g["eps"]))
            val.append(_num(ci.get("value")))
            lo.append(_num(ci.get("lo")))
            hi.append(_num(ci.get("hi")))
            n.append(ci.get("n"))
            noise.append((g.get("stats") or {}).get("n_noise"))
        series.append({"label": f"{model} {layer}" + (f" [{mset}]" if mset != "default" else ""),
                       "model": model, "layer": layer, "attack": attack, "mapper_set": mset, "rows": rows,
                       "graph_ids": [g["id"] for g in gs], "eps": eps, "mean_point_purity": val, "lo": lo,
                       "hi": hi, "mixing": [None if v is None else 1 - v for v in val], "n": n,
                       "n_noise": noise, "ci_source": src})
    trends = [trend(s["eps"], s["mean_point_purity"], s["lo"], s["hi"]) for s in series]
    sec.numbers = {"series": series, "trends": trends, "mixing": "1 - mean point purity"}
    sec.verdict = series_verdict(trends)
    sec.sentence = f"{sec.verdict.capitalize()}: " + _trend_summary(series, trends, "mean point purity", 3) + "."
    sec.figure_input = {"series": series}
    sec.caption = ("Mean point purity (a row's mean over its nodes of 1/#classes; mixing = 1 − purity) of each "
                   "study graph vs attack eps; bands: 95% bootstrap CI over samples (clean and adversarial rows "
                   "of a sample resampled together). Rows no node covers (DBSCAN noise) are left out.")
    return sec


# --- 3. separability ------------------------------------------------------------------

SEP_MEASURES = (("knn_accuracy", "k-NN accuracy"), ("probe_accuracy", "linear-probe accuracy"),
                ("silhouette", "silhouette by class"))


def separability_section(run: Any) -> Section:
    """Mapper-independent separability (k-NN, probe, silhouette) vs eps from separability.json."""
    sec = Section("separability", "Separability without mapper",
                  "Stronger attacks make samples less distinguishable in activation space (here measured "
                  "without mapper: k-NN and linear-probe accuracy of the true class, silhouette).", ZHOU,
                  rule=TREND_RULE + " (over every measure's series)")
    sep = run.separability()
    if not sep:
        sec.missing = "no separability.json"
        sec.enable = "enable the study's [separability] stage (on by default in new configs) and re-run `advtopo run`"
        return sec
    groups: dict[tuple, list] = defaultdict(list)
    for r in sep.get("rows", []):
        groups[(r["model"], r["layer"], r["attack"])].append(r)
    series = []
    for (model, layer, attack), rs in groups.items():
        rs.sort(key=lambda r: r["eps"])
        for key, name in SEP_MEASURES:
            if not all(key in r for r in rs):
                continue
            series.append({"label": f"{model} {layer} {name}", "model": model, "layer": layer, "attack": attack,
                           "measure": key, "eps": [float(r["eps"]) for r in rs],
                           "value": [_num(r[key].get("value")) for r in rs], "lo": [_num(r[key].get("lo")) for r in rs],
                           "hi": [_num(r[key].get("hi")) for r in rs], "n": [r.get("n") for r in rs]})
    trends = [trend(s["eps"], s["value"], s["lo"], s["hi"]) for s in series]
    sec.numbers = {"params": sep.get("params", {}), "series": series, "trends": trends}
    sec.verdict = series_verdict(trends)
    per = []
    for key, name in SEP_MEASURES:
        ts = [t for s, t in zip(series, trends) if s["measure"] == key and t["judged"]]
        if ts:
            per.append(f"{name} falls in {sum(t['falls'] for t in ts)}/{len(ts)} "
                       f"(mean {np.mean([t['start'] for t in ts]):.2f}→{np.mean([t['end'] for t in ts]):.2f})")
    sec.sentence = f"{sec.verdict.capitalize()}: " + "; ".join(per) + "."
    sec.figure_input = {"series": series, "measures": [list(m) for m in SEP_MEASURES]}
    sec.caption = ("Adversarial rows at eps > 0, clean rows at eps 0, true labels; k-NN and probe accuracy are "
                   "cross-validated; bands: 95% bootstrap CI over samples.")
    return sec


# --- 4. stability over mapper settings --------------------------------------------------

def stability_section(run: Any) -> Section:
    """The purity finding over a grid of mapper settings (stability.json): min-max band + median."""
    sec = Section("stability", "Stability over mapper settings",
                  "Nodes mix classes under stronger attacks — a finding that should not depend on one choice "
                  "of mapper intervals, overlap and metric.", ZHOU,
                  rule=("per (model, layer): the fraction of grid settings whose mean node purity at the largest "
                        "eps is below that at eps 0; holds if every setting falls in every series, partly if the "
                        "median falls in at least one series, does not hold otherwise"))
    stab = run.stability()
    if not stab or not stab.get("rows"):
        sec.missing = "no stability.json"
        sec.enable = "enable the study's [stability] stage (mapper settings grid) and re-run `advtopo run`"
        return sec
    groups: dict[tuple, list] = defaultdict(list)
    for r in stab["rows"]:
        groups[(r["model"], r["layer"], r["attack"], r.get("rows", "both"))].append(r)
    series, verdicts = [], []
    for (model, layer, attack, rows), rs in groups.items():
        rs.sort(key=lambda r: r["eps"])
        s = {"label": f"{model} {layer}" + (f" [{rows}]" if rows != "both" else ""), "model": model,
             "layer": layer, "attack": attack, "rows": rows, "eps": [float(r["eps"]) for r in rs]}
        for stat in ("mean_purity", "mixing"):
            for q in ("min", "median", "max"):
                s[f"{stat}_{q}"] = [_num((r.get(stat) or {}).get(q)) for r in rs]
        first, last = rs[0], rs[-1]

        def key(st):
            return (st.get("n_intervals"), _ekey(st.get("overlap", 0)), st.get("metric"))
        a = {key(st): st.get("mean_purity") for st in first.get("settings", [])}
        b = {key(st): st.get("mean_purity") for st in last.get("settings", [])}
        common = [k for k in a if k in b and a[k] is not None and b[k] is not None]
        s["n_settings"] = len(common)
        s["n_settings_fall"] = int(sum(b[k] < a[k] for k in common))
        med_falls = (s["mean_purity_median"][-1] is not None and s["mean_purity_median"][0] is not None
                     and s["mean_purity_median"][-1] < s["mean_purity_median"][0])
        s["median_falls"] = bool(med_falls)
        series.append(s)
        verdicts.append((len(common) > 0 and s["n_settings_fall"] == len(common), med_falls))
    if not series or len(series[0]["eps"]) < 2:
        sec.verdict = UNJUDGED
    elif all(v[0] for v in verdicts):
        sec.verdict = HOLDS
    elif any(v[1] for v in verdicts):
        sec.verdict = PARTLY
    else:
        sec.verdict = NOT_HOLD
    tot = sum(s["n_settings"] for s in series)
    fall = sum(s["n_settings_fall"] for s in series)
    worst = min(series, key=lambda s: s["n_settings_fall"] / max(s["n_settings"], 1))
    sec.sentence = (f"{sec.verdict.capitalize()}: purity at the largest eps is below eps 0 for {fall}/{tot} "
                    f"(series, setting) pairs; weakest: {worst['label']} ({worst['n_settings_fall']}/"
                    f"{worst['n_settings']} settings).")
    sec.numbers = {"grid": stab.get("grid", {}), "series": series}
    sec.figure_input = {"series": series, "grid": stab.get("grid", {})}
    sec.caption = ("Mean node purity over the grid of mapper settings: line = median, band = min to max over "
                   f"settings (grid: {json.dumps(stab.get('grid', {}))}).")
    return sec


# --- 5. layer x layer distances beside CKA ------------------------------------------------

def layers_section(run: Any) -> Section:
    """Topological layer distance matrix beside linear CKA, and their Spearman rank correlation."""
    sec = Section("layers", "Layer distances: topology vs CKA",
                  "A distance between persistence diagrams of layer activations quantifies meaningful "
                  "differences between layers, comparable with representational similarity such as CKA.", PURVINE,
                  rule=("Spearman correlation over layer pairs between the topological distance and 1 − CKA: holds if "
                        ">= 0.5 with p < 0.05, partly if > 0, does not hold if <= 0; cannot be judged with < 3 pairs"))
    pers = run.index.get("persistence") or {}
    ld = pers.get("layer_distance")
    if not ld:
        sec.missing = "no persistence layer-distance matrix"
        sec.enable = "enable the study's [persistence] stage (`[persistence] enabled = true`) and re-run"
        return sec
    from advtopo.persistence.layers import rank_correlation

    labels = list(ld["labels"])
    D = np.asarray(ld["matrix"], dtype=np.float64)
    cka_source = "persistence stage (layer_distance.json)"
    if "cka" in ld:
        C = np.asarray(ld["cka"], dtype=np.float64)
    else:
        C = _cka_from_activations(run, ld, pers)
        cka_source = "linear CKA recomputed from the run's stored activations (top-L2 clouds)"
    rc = rank_correlation(D, C)
    per_model = {}
    models = ld.get("models") or [lab.rsplit("/", 1)[0] for lab in labels]
    for m in dict.fromkeys(models):
        idx = [i for i, mm in enumerate(models) if mm == m]
        if len(idx) >= 3:
            per_model[m] = rank_correlation(D[np.ix_(idx, idx)], C[np.ix_(idx, idx)])
    rho, p, npairs = _num(rc["spearman"]), _num(rc["pvalue"]), rc["n_pairs"]
    if rho is None or npairs < 3:
        sec.verdict = UNJUDGED
    elif rho >= 0.5 and p is not None and p < 0.05:
        sec.verdict = HOLDS
    elif rho > 0:
        sec.verdict = PARTLY
    else:
        sec.verdict = NOT_HOLD
    pm = "; ".join(f"{m} {_f(_num(r['spearman']))}" for m, r in per_model.items())
    sec.sentence = (f"{sec.verdict.capitalize()}: Spearman ρ = {_f(rho)} (p = {_f(p, 3)}, {npairs} layer pairs) "
                    f"between the {ld.get('metric', '')} H{ld.get('homology_dim', '')} distance and 1 − CKA"
                    + (f"; within each model: {pm}" if pm else "") + ".")
    numbers = {"labels": labels, "metric": ld.get("metric"), "homology_dim": ld.get("homology_dim"),
               "distance": D.tolist(), "cka": C.tolist(), "cka_source": cka_source,
               "spearman": rho, "pvalue": p, "n_pairs": npairs,
               "spearman_by_model": {m: {"spearman": _num(r["spearman"]), "pvalue": _num(r["pvalue"]),
                                         "n_pairs": r["n_pairs"]} for m, r in per_model.items()}}
    sec.numbers = numbers
    sec.figure_input = {k: numbers[k] for k in ("labels", "metric", "homology_dim", "distance", "cka", "spearman")}
    sec.caption = (f"Left: {ld.get('metric')} distance between the H{ld.get('homology_dim')} diagrams of every "
                   f"captured (model, layer) clean point cloud; right: linear CKA ({cka_source}).")
    return sec


def _cka_from_activations(run: Any, ld: dict[str, Any], pers: dict[str, Any]) -> np.ndarray:
    """Linear CKA between the clean top-L2 clouds of the matrix's (model, layer) labels, on
    the persistence stage's sample subset (when the stage did not store CKA)."""
    from advtopo.persistence.layers import similarity_matrix
    from advtopo.persistence.pointclouds import top_l2_point_cloud

    ids = np.asarray(pers.get("sample_ids") or [], dtype=np.int64)
    clouds = {}
    for lab, m, layer in zip(ld["labels"], ld["models"], ld["layers"]):
        X = top_l2_point_cloud(run.activations(m, layer))
        clouds[lab] = np.asarray(X[ids] if len(ids) else X, dtype=np.float64)
    return similarity_matrix(clouds, "cka")


# --- 6. clean vs adversarial diagram distance --------------------------------------------

def diagram_distance_section(run: Any) -> Section:
    """Distance between the clean and the adversarial persistence diagrams vs eps."""
    sec = Section("diagram_distance", "Topology of clean vs adversarial activations",
                  "Adversarial perturbations alter the topological structure of the activations of the "
                  "original images, more so for stronger attacks.", f"{ZHOU}; {GEBHART}",
                  rule=("per (model, layer): the distance rises with eps (Spearman ρ(eps, distance) >= 0.8 over the "
                        "eps > 0 points, or the distance at the largest eps above the smallest when only one or two); "
                        "holds if it rises in every series, partly if in some, does not hold if in none"))
    curves = (run.index.get("persistence") or {}).get("clean_vs_adv") or []
    curves = [c for c in curves if c.get("distance") is not None]
    if not any(c["eps"] > 0 for c in curves):
        sec.missing = "no clean-vs-adversarial diagram distances"
        sec.enable = "enable the study's [persistence] stage and attack at eps > 0, then re-run"
        return sec
    from scipy.stats import spearmanr

    groups: dict[tuple, list] = defaultdict(list)
    for c in curves:
        groups[(c["model"], c["layer"], c["attack"])].append(c)
    series, rises = [], []
    for (model, layer, attack), cs in groups.items():
        cs.sort(key=lambda c: c["eps"])
        eps = [float(c["eps"]) for c in cs]
        d = [_num(c["distance"]) for c in cs]
        pos = [(e, v) for e, v in zip(eps, d) if e > 0 and v is not None]
        if len(pos) >= 3:
            rho = _num(spearmanr([p[0] for p in pos], [p[1] for p in pos]).statistic)
            rise = rho is not None and rho >= 0.8
        else:
            rho = None
            rise = len(pos) >= 1 and pos[-1][1] > (pos[0][1] if len(pos) > 1 else 0.0)
        rises.append(bool(rise))
        series.append({"label": f"{model} {layer}", "model": model, "layer": layer, "attack": attack, "eps": eps,
                       "distance": d, "distance_h0": [_num(c.get("distance_h0")) for c in cs],
                       "spearman_eps": rho, "rises": bool(rise)})
    sec.verdict = HOLDS if all(rises) else PARTLY if any(rises) else NOT_HOLD
    parts = [f"{s['label']} {_f(s['distance'][-1])} at eps {s['eps'][-1]:g}" for s in series][:8]
    sec.sentence = (f"{sec.verdict.capitalize()}: the distance rises with eps in {sum(rises)}/{len(rises)} series "
                    f"({'; '.join(parts)}).")
    c0 = curves[0]
    sec.numbers = {"metric": c0.get("metric"), "homology_dim": c0.get("homology_dim"), "series": series}
    sec.figure_input = dict(sec.numbers)
    sec.caption = (f"{c0.get('metric')} distance between the H{c0.get('homology_dim')} diagram of the clean "
                   "activations and that of the adversarial activations of the same samples.")
    return sec


# --- 7. vulnerability ROC ----------------------------------------------------------------

def vulnerability_section(run: Any) -> Section:
    """ROC of the mapper vulnerability score for "fooled at eps <= e", recomputed with sklearn."""
    sec = Section("vulnerability", "Vulnerable samples from the mapper graph",
                  "The mapper graph of clean activations identifies the vulnerable samples (those an attack "
                  "fools first).", ZHOU,
                  rule=("ROC AUC of the vulnerability score for 'fooled at eps <= auc_eps' (the eps at which about "
                        "half the samples are fooled): holds if the 95% CI lies above 0.5, partly if the AUC is above "
                        "0.5 but its CI reaches 0.5, does not hold otherwise"))
    v = run.vulnerability()
    if not v or not v.get("samples"):
        sec.missing = "no vulnerability.json"
        sec.enable = "enable the study's [vulnerability] section (model, layer, attack) and re-run"
        return sec
    from sklearn.metrics import roc_auc_score, roc_curve

    ids = np.asarray([s["sample_id"] for s in v["samples"]])
    score = np.asarray([np.nan if s["score"] is None else s["score"] for s in v["samples"]], dtype=np.float64)
    fooled = np.asarray([np.inf if s.get("fooled_at") is None else s["fooled_at"] for s in v["samples"]])
    keep = np.isfinite(score)
    if all("clean_correct" in x for x in v["samples"]):  # samples misclassified when clean predict nothing
        keep &= np.asarray([x["clean_correct"] for x in v["samples"]], bool)
    curves = []
    for ek in (v.get("auc_by_eps") or {}):
        e = float(ek)
        pos = fooled[keep] <= e + 1e-9
        if pos.all() or not pos.any():
            continue
        fpr, tpr, _ = roc_curve(pos, score[keep])
        auc = float(roc_auc_score(pos, score[keep]))

        ci = bootstrap((pos, score[keep]), _auc)
        curves.append({"eps": e, "auc": auc, "lo": ci["lo"], "hi": ci["hi"], "n_positive": int(pos.sum()),
                       "n": int(len(pos)), "stored_auc": _num((v.get("auc_by_eps") or {}).get(ek)),
                       "fpr": np.round(fpr, 5).tolist(), "tpr": np.round(tpr, 5).tolist()})
    main_eps = v.get("auc_eps")
    main = next((c for c in curves if main_eps is not None and abs(c["eps"] - main_eps) < 1e-9), None)
    if main is None:
        sec.verdict = UNJUDGED
        sec.sentence = ("Cannot be judged: at no eps are some samples fooled and others not.")
    else:
        sec.verdict = HOLDS if (main["lo"] or 0) > 0.5 else PARTLY if main["auc"] > 0.5 else NOT_HOLD
        sec.sentence = (f"{sec.verdict.capitalize()}: AUC {main['auc']:.2f} [{_f(main['lo'])}, {_f(main['hi'])}] "
                        f"for 'fooled at eps <= {main['eps']:g}' ({main['n_positive']}/{main['n']} samples fooled), "
                        f"model {v.get('model')}, layer {v.get('layer')}.")
    sec.numbers = {"model": v.get("model"), "layer": v.get("layer"), "attack": v.get("attack"),
                   "graph": v.get("graph"), "auc_eps": main_eps, "auc": None if main is None else main["auc"],
                   "stored_auc": _num(v.get("auc")), "curves": curves,
                   "n_samples": int(len(ids))}
    baselines = _vulnerability_baselines(v, main_eps)
    if baselines:
        sec.numbers["baselines"] = baselines
        sec.sentence += " " + baselines["sentence"]
    sec.figure_input = {"curves": curves, "auc_eps": main_eps, "model": v.get("model"), "layer": v.get("layer")}
    sec.caption = ("ROC of the vulnerability score (from the clean mapper graph) for 'fooled at eps <= e', one curve "
                   "per eps, recomputed with sklearn.metrics.roc_curve; AUC with a 95% bootstrap CI over samples.")
    return sec


def _vulnerability_baselines(v: dict, eps: float | None) -> dict | None:
    """The study's baselines at the headline eps (same samples, same run): AUC [CI] per method,
    and whether the mapper score beats the clean margin (paired bootstrap CI of the difference)."""
    methods = v.get("methods")
    if not methods or eps is None:
        return None
    key = f"{eps:g}"
    cells = {m: (d.get("auc_by_eps") or {}).get(key) or {} for m, d in methods.items()}
    diff = (v.get("mapper_minus_margin") or {}).get(key) or {}
    parts = [f"{m} {_f(c.get('auc'))} [{_f(c.get('lo'))}, {_f(c.get('hi'))}]" for m, c in cells.items()]
    if v.get("beats_margin") is None:
        verdict = "Whether it beats the clean margin cannot be judged here."
    elif v["beats_margin"]:
        verdict = "It beats the clean softmax margin"
    else:
        verdict = "It does not beat the clean softmax margin"
    if diff:
        verdict += f" (AUC difference {_f(diff.get('diff'))} [{_f(diff.get('lo'))}, {_f(diff.get('hi'))}])."
    return {"eps": eps, "auc": {m: {k: c.get(k) for k in ("auc", "lo", "hi")} for m, c in cells.items()},
            "mapper_minus_margin": diff, "beats_margin": v.get("beats_margin"),
            "sentence": f"Same samples, AUC at eps {key}: " + "; ".join(parts) + ". " + verdict}


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC by ranks (Mann-Whitney U, ties 1/2): equal to roc_auc_score, fast enough to
    bootstrap; NaN when a resample holds one class only."""
    from scipy.stats import rankdata

    y = np.asarray(y, dtype=bool)
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(s)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


# --- 8. datapaths -----------------------------------------------------------------------

def datapaths_section(run: Any) -> Section:
    """Clean-vs-adversarial datapath overlap (Jaccard) per layer, fooled vs not fooled, with CIs."""
    sec = Section("datapaths", "Datapaths of fooled and not-fooled samples",
                  "The datapaths (critical neurons) of adversarial examples diverge from those of their "
                  "originals as the prediction is formed, which explains the misclassification.", CAO,
                  rule=("per eps with both groups: at the deepest layer the fooled samples' Jaccard is below the "
                        "not-fooled samples' with non-overlapping 95% CIs, and the fooled Jaccard falls from the "
                        "first to the last layer; holds if so at every eps, partly if the deepest-layer gap is "
                        "significant at some eps, does not hold otherwise"))
    d = run.datapaths()
    if not d or not d.get("samples"):
        sec.missing = "no datapaths.json"
        sec.enable = "enable the study's [datapaths] section (model, layers, attack, eps) and re-run"
        return sec
    layers = list(d["layers"])
    panels, ok_all, ok_any = [], [], []
    for e in d["eps"]:
        ek = None
        rows = {"fooled": [], "not_fooled": []}
        for s in d["samples"]:
            entry = s.get("eps", {})
            ek = next((k for k in entry if abs(float(k) - float(e)) < 1e-9), None)
            if ek is None or entry[ek].get("jaccard") is None:
                continue
            rows["fooled" if entry[ek]["fooled"] else "not_fooled"].append(entry[ek]["jaccard"])
        panel = {"eps": float(e), "layers": layers}
        for grp, vals in rows.items():
            A = np.asarray([[np.nan if x is None else x for x in r] for r in vals], dtype=np.float64).reshape(-1, len(layers))
            cis = [mean_ci(A[:, j]) for j in range(len(layers))]
            panel[grp] = {"n": int(len(A)), "value": [c["value"] for c in cis], "lo": [c["lo"] for c in cis],
                          "hi": [c["hi"] for c in cis]}
        f, nf = panel["fooled"], panel["not_fooled"]
        if f["n"] and nf["n"] and f["hi"][-1] is not None and nf["lo"][-1] is not None:
            gap = f["hi"][-1] < nf["lo"][-1]
            falls = f["value"][-1] is not None and f["value"][0] is not None and f["value"][-1] < f["value"][0]
            panel["deep_gap_significant"] = bool(gap)
            panel["fooled_falls_with_depth"] = bool(falls)
            ok_all.append(gap and falls)
            ok_any.append(gap)
        panels.append(panel)
    if not ok_all:
        sec.verdict = UNJUDGED
    else:
        sec.verdict = HOLDS if all(ok_all) else PARTLY if any(ok_any) else NOT_HOLD
    parts = [f"eps {p['eps']:g}: {layers[-1]} fooled {_ci_txt({k: p['fooled'][k][-1] for k in ('value', 'lo', 'hi')})}"
             f" (n={p['fooled']['n']}) vs not fooled {_ci_txt({k: p['not_fooled'][k][-1] for k in ('value', 'lo', 'hi')})}"
             f" (n={p['not_fooled']['n']})" for p in panels]
    sec.sentence = f"{sec.verdict.capitalize()}: " + "; ".join(parts) + "."
    sec.numbers = {"model": d.get("model"), "attack": d.get("attack"), "layers": layers, "panels": panels,
                   "n_samples": d.get("n_samples")}
    sec.figure_input = {"panels": panels, "layers": layers, "model": d.get("model")}
    sec.caption = (f"Jaccard overlap of the clean and adversarial critical neurons per layer (model {d.get('model')}, "
                   "Cao et al.'s datapaths); bands: 95% bootstrap CI over samples.")
    return sec


# --- 9. Gebhart's recovery ---------------------------------------------------------------

RECOVERY_HOW = ("enable the study's [recovery] section (models, attack, eps, n_samples) and re-run; it stores "
                "recovery.json with both protocols and bootstrap CIs (see docs/report.md)")
_RECOVERY_PROTOCOLS = (("paper", "attacks", "paper"), ("cross_fitted", "attacks_cross_fitted", "cross-fitted"))


def _recovery_bars(rec: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Any]]:
    """(bars, cv accuracies): one bar per (model, eps or attack, protocol) over the successful
    adversarial examples. The study's rows carry their bootstrap CIs; a document written by
    ``recovery_experiment`` itself (keys ``attacks`` / ``attacks_cross_fitted``) gets CIs
    rebuilt from its proportions."""
    rows = rec.get("rows") if isinstance(rec.get("rows"), list) else [rec]
    bars, cv_acc = [], []
    for ent in rows:
        if not isinstance(ent, dict):
            continue
        if any(isinstance(ent.get(p), dict) for p, _, _ in _RECOVERY_PROTOCOLS):  # the study's stage
            label = f"{ent.get('model', '')} ε={float(ent['eps']):g}".strip() if ent.get("eps") is not None \
                else str(ent.get("model", ""))
            for proto, _, name in _RECOVERY_PROTOCOLS:
                sc = ent.get(proto)
                if isinstance(sc, dict) and sc.get("n_successful"):
                    bars.append({"label": label, "model": ent.get("model"), "eps": _num(ent.get("eps")),
                                 "protocol": name, "n": sc.get("n"), "n_successful": sc["n_successful"],
                                 "recovery": _stored_ci(sc.get("recovery_accuracy_successful")),
                                 "retention": _stored_ci(sc.get("adversary_retention_successful"))})
            continue
        cv_acc.append(ent.get("cv_accuracy"))
        prefix = " ".join(str(ent[k]) for k in ("model", "layer") if ent.get(k) is not None)
        for _, key, name in _RECOVERY_PROTOCOLS:
            for attack, sc in (ent.get(key) or {}).items():
                n = sc.get("n_successful") or 0
                if n:
                    bars.append({"label": f"{prefix} {attack}".strip(), "model": ent.get("model"), "eps": None,
                                 "protocol": name, "n": sc.get("n"), "n_successful": n,
                                 "recovery": _prop_ci(sc.get("recovery_accuracy_successful"), n),
                                 "retention": _prop_ci(sc.get("adversary_retention_successful"), n)})
    return bars, cv_acc


def recovery_section(run: Any) -> Section:
    """Recovery accuracy vs adversary retention of the dominant-subgraph SVM, both protocols."""
    sec = Section("recovery", "Recovery vs retention (dominant activation subgraphs)",
                  "Adversarial examples keep the dominant activation structure of the original image rather "
                  "than adding the adversarial class's structure: an SVM on clean dominant subgraphs recovers "
                  "the true class more often than it retains the adversarial one.", GEBHART,
                  rule=("over the successful adversarial examples: holds if recovery accuracy exceeds adversary "
                        "retention with non-overlapping 95% CIs at every (model, eps) under both protocols (paper "
                        "and cross-fitted), partly if under one, does not hold otherwise"))
    rec = run.document("recovery")
    if not rec:
        sec.missing = "no recovery results in this run"
        sec.enable = RECOVERY_HOW
        return sec
    bars, cv_acc = _recovery_bars(rec)
    if not bars:
        sec.missing = "recovery.json holds no successful adversarial example to score"
        sec.enable = RECOVERY_HOW
        return sec
    for m in rec.get("models") or []:
        if isinstance(m, dict):
            cv_acc.append(m.get("cv_accuracy"))
    ok: dict[str, list[bool]] = {name: [] for _, _, name in _RECOVERY_PROTOCOLS}
    for b in bars:
        r, a = b["recovery"], b["retention"]
        if r["lo"] is not None and a["hi"] is not None:
            ok[b["protocol"]].append(r["lo"] > a["hi"])
    good = [bool(v) and all(v) for v in ok.values()]
    sec.verdict = HOLDS if all(good) else PARTLY if any(good) else NOT_HOLD
    sec.sentence = f"{sec.verdict.capitalize()}: " + "; ".join(
        f"{b['label']} ({b['protocol']}, n={b['n_successful']}) recovery {_ci_txt(b['recovery'])} vs retention "
        f"{_ci_txt(b['retention'])}" for b in bars[:8]) + ("; ..." if len(bars) > 8 else "") + "."
    sec.numbers = {"bars": bars, "cv_accuracy": cv_acc, "params": rec.get("params")}
    sec.figure_input = {"bars": bars}
    sec.caption = ("Over the successful adversarial examples: recovery = the clean-trained SVM predicts the true "
                   "class; retention = it predicts the adversarial class; paper = one SVM trained on all clean "
                   "inputs, cross-fitted = each input scored by an SVM that never saw its clean original; 95% "
                   "bootstrap CIs over samples.")
    return sec


def _stored_ci(d: Any) -> dict[str, Any]:
    """A stored {value, lo, hi} (the recovery stage's), numbers or None."""
    d = d if isinstance(d, dict) else {}
    return {k: _num(d.get(k)) for k in ("value", "lo", "hi")}


def _prop_ci(p: float | None, n: int) -> dict[str, Any]:
    """CI of a stored proportion: the 0/1 outcomes are exactly round(p*n) ones out of n."""
    if p is None or not n:
        return {"value": _num(p), "lo": None, "hi": None, "n": int(n or 0)}
    k = int(round(p * n))
    return mean_ci(np.r_[np.ones(k), np.zeros(n - k)])


# --- 10. gallery ------------------------------------------------------------------------

def gallery_section(run: Any, k: int = 8) -> Section:
    """The k most vulnerable samples: clean image beside its adversarial version."""
    sec = Section("gallery", "The most vulnerable samples",
                  "The tool identifies vulnerable samples that may be useful in improving model robustness.", ZHOU,
                  rule="no verdict: the images show what the score ranks first")
    v = run.vulnerability()
    if not v or not v.get("samples"):
        sec.missing = "no vulnerability.json (the gallery shows its top-ranked samples)"
        sec.enable = "enable the study's [vulnerability] section and re-run"
        return sec
    model, attack = v.get("model"), v.get("attack") or run.index["attacks"][0]["name"]
    eps_all = sorted(e for a in run.index["attacks"] if a["name"] == attack for e in a["eps"] if e > 0)
    if not eps_all:
        sec.missing, sec.enable = "no adversarial images", "attack at some eps > 0 and re-run"
        return sec
    clean = run.images()
    try:
        df = run.samples
        df = df[(df["model"] == model) & (df["attack"] == attack)]
    except (OSError, ValueError, ImportError):
        df = None
    items, imgs_c, imgs_a, adv_cache = [], [], [], {}
    for s in v["samples"][:k]:
        sid = int(s["sample_id"])
        fa = s.get("fooled_at")
        e = min((x for x in eps_all if fa is not None and x >= fa - 1e-9), default=eps_all[-1])
        if e not in adv_cache:
            adv_cache[e] = run.images(model, attack, e)
        adv = adv_cache[e]
        item = {"sample_id": sid, "score": _num(s.get("score")), "fooled_at": fa, "eps": float(e)}
        if df is not None:
            r0 = df[(df["sample_id"] == sid) & np.isclose(df["eps"], 0.0)]
            r1 = df[(df["sample_id"] == sid) & np.isclose(df["eps"], e)]
            if len(r0):
                item["label"] = int(r0["label"].iloc[0])
                item["clean_prediction"] = int(r0["prediction"].iloc[0])
            if len(r1):
                item["adv_prediction"] = int(r1["prediction"].iloc[0])
        items.append(item)
        imgs_c.append(clean[sid])
        imgs_a.append(adv[sid])
    names = run.index.get("dataset", {}).get("class_names")
    sec.verdict = None
    sec.sentence = (f"The {len(items)} highest vulnerability scores (model {model}, layer {v.get('layer')}); "
                    f"{sum(1 for i in items if i['fooled_at'] is not None)} of them are fooled at some eps.")
    sec.numbers = {"model": model, "attack": attack, "samples": items}
    sec.figure_input = {"samples": items, "class_names": names, "attack": attack}
    sec.figure_arrays = {"clean": np.stack(imgs_c), "adversarial": np.stack(imgs_a)}
    sec.caption = ("Top: clean image (true label, clean prediction); bottom: its adversarial version at the smallest "
                   "eps that fools the model (or the largest eps), with the attacked prediction.")
    return sec


SECTIONS: list[tuple[str, Callable[[Any], Section]]] = [
    ("accuracy", accuracy_section),
    ("purity", purity_section),
    ("separability", separability_section),
    ("stability", stability_section),
    ("layers", layers_section),
    ("diagram_distance", diagram_distance_section),
    ("vulnerability", vulnerability_section),
    ("datapaths", datapaths_section),
    ("recovery", recovery_section),
    ("gallery", gallery_section),
]
