"""Adversarial detection from activation-graph persistence (Gebhart et al. 2019, made a test).

For each input: its activation graph's H0 barcode, the dominant subgraph (the death edges of
the ``top_k`` most persistent pairs) and a row of topological features:

* barcode statistics: bars of positive length, total / largest length, persistent entropy,
  the top-k pairs' total persistence; the essential H1 (cycle rank of the positive-weight
  graph, total weight of its non-forest edges) and the number of positive edges;
* the dominant subgraph per edge layer: its share of the top-k edges and of their persistence;
* class typicality: how much of the dominant subgraph lies in the *class-typical* subgraph of
  the predicted class (the ``top_k`` edges found most often in the clean dominant subgraphs of
  that class's samples, each sample left out of its own class's count), and the mean
  frequency of its edges there. Only clean inputs build the typical subgraphs; the detector
  needs no label it would not have (the prediction, not the true class).

:func:`detection_auc` then cross-validates a classifier (clean vs adversarial) on those
features, beside the same classifier on the raw activations and on the softmax confidence.
Folds split *samples*: a sample's clean and adversarial rows are always in the same fold.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from advtopo.errors import AdvtopoError
from advtopo.persistence._validation import check_choice, check_int
from advtopo.persistence.activation_graph import ActivationGraph, barcode_statistics

CLASSIFIERS = ("logistic", "gradient_boosting")
STAT_FEATURES = ("h0_n_bars", "h0_total_persistence", "h0_max_persistence", "h0_persistent_entropy",
                 "h0_top_k_persistence", "h1_essential", "h1_total_birth", "n_positive_edges")
TYPICAL_FEATURES = ("typical_overlap", "typical_frequency")


def round_sig(x: Any, digits: int = 6) -> Any:
    """Round to ``digits`` significant digits (numpy arrays elementwise): compact JSON, and the
    stored numbers are exactly the ones the classifiers saw."""
    a = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where(a == 0, 0, np.floor(np.log10(np.abs(np.where(a == 0, 1, a)))))
    scale = 10.0 ** (digits - 1 - mag)
    return np.round(a * scale) / scale


@dataclass
class GraphRecord:
    """One input's activation-graph summary.

    ``edges``: dominant edge ids (most persistent first), ``persistence`` / ``birth`` /
    ``death`` of their pairs, ``weight`` = death (the edge's weight); ``bars``: [b, 2] the
    ``n_bars`` longest H0 bars (birth, death); ``stats``: the scalar features; ``values``: the
    neuron values of the used layers (concatenated, the raw-activation baseline's input);
    ``output``: the model's output (logits).
    """

    edges: np.ndarray
    persistence: np.ndarray
    birth: np.ndarray
    death: np.ndarray
    bars: np.ndarray
    stats: dict[str, float]
    layer_share: dict[str, float]
    layer_persistence: dict[str, float]
    values: np.ndarray
    output: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)


def graph_record(graph: ActivationGraph, x: Any, top_k: int, layers: list[str] | None = None,
                 n_bars: int = 100) -> GraphRecord:
    """The activation graph of ``x`` (restricted to the edge ``layers``; None: all) summarised:
    dominant subgraph, longest bars and the barcode / essential-H1 statistics."""
    top_k = check_int("top_k", top_k, minimum=1)
    w, vals = graph.edge_weights(x, values=True)
    ids = graph.edge_ids(layers)
    res = graph.persistence(x, layers=layers, weights=w)
    top = res.top_pairs(top_k)
    edges = res.pair_edges[top]
    pers = res.persistence[top]
    order = res.top_pairs(n_bars)
    stats = {f"h0_{k}": v for k, v in barcode_statistics(res).items()}
    wl = w[ids].astype(np.float64)
    positive = wl > 0
    forest_weight = float(w[res.forest_edges].astype(np.float64).sum())
    stats.update(h0_top_k_persistence=float(pers.sum()),
                 h1_essential=int(positive.sum()) - len(res.forest_edges),  # cycle rank
                 h1_total_birth=max(0.0, float(wl[positive].sum()) - forest_weight),
                 n_positive_edges=int(positive.sum()))
    names = [b.name for b in graph.blocks_]
    used = names if layers is None else [n for n in names if n in set(layers)]
    of_edge = np.asarray(names)[graph.edge_layer(edges)] if len(edges) else np.zeros(0, str)
    total = float(pers.sum())
    share = {n: float((of_edge == n).sum()) / top_k for n in used}
    lpers = {n: (float(pers[of_edge == n].sum()) / total if total > 0 else 0.0) for n in used}
    values = np.concatenate([vals[n] for n in used]) if used else np.zeros(0, np.float32)
    last = graph.blocks_[-1].name
    return GraphRecord(edges=edges.astype(np.int64), persistence=pers, birth=res.pairs[top, 0],
                       death=res.pairs[top, 1], bars=res.pairs[order], stats=stats, layer_share=share,
                       layer_persistence=lpers, values=values, output=vals[last])


def class_typical_features(edge_sets: list[np.ndarray], predicted: np.ndarray, sample_of_row: np.ndarray,
                           clean_row_of_sample: dict[int, int], label_of_sample: dict[int, int],
                           top_k: int) -> np.ndarray:
    """[rows, 2] (typical_overlap, typical_frequency) of each row's dominant edge set against the
    class-typical subgraph of the row's predicted class, its own sample left out.

    The class-typical counts come from the clean rows only, grouped by true label; for row r of
    sample s, class p = predicted[r]: f(e) = #clean samples of class p other than s whose
    dominant subgraph holds e; the typical subgraph is the top_k edges by f (f > 0, ties by
    edge id). typical_overlap = |D_r & typical| / top_k; typical_frequency = mean over D_r of
    f(e) / (#clean samples of class p other than s), 0 when there is none.
    """
    counts: dict[int, Counter] = {}
    n_class: Counter = Counter()
    for s, r in clean_row_of_sample.items():
        c = int(label_of_sample[s])
        counts.setdefault(c, Counter()).update(edge_sets[r].tolist())
        n_class[c] += 1
    out = np.zeros((len(edge_sets), 2))
    for r, edges in enumerate(edge_sets):
        p, s = int(predicted[r]), int(sample_of_row[r])
        same = int(label_of_sample[s]) == p  # the sample counts in class p: leave it out
        own = set(edge_sets[clean_row_of_sample[s]].tolist()) if same else set()
        n = n_class[p] - int(same)
        f = {e: c - (e in own) for e, c in counts.get(p, Counter()).items()}
        f = {e: c for e, c in f.items() if c > 0}
        typical = set(sorted(f, key=lambda e: (-f[e], e))[:top_k])
        out[r, 0] = len(typical.intersection(edges.tolist())) / top_k
        out[r, 1] = float(np.mean([f.get(e, 0) for e in edges.tolist()])) / n if n > 0 and len(edges) else 0.0
    return out


def sample_folds(labels: np.ndarray, cv: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``cv`` (train, test) index pairs over the samples: StratifiedKFold (shuffled, seeded) on the
    true labels when every class holds at least ``cv`` samples, else on one stratum (a shuffled
    KFold). A sample's clean and adversarial rows follow it into the same fold."""
    from sklearn.model_selection import StratifiedKFold

    cv = check_int("cv", cv, minimum=2)
    labels = np.asarray(labels)
    if len(labels) < cv:
        raise AdvtopoError(f"cross-validation with cv={cv} folds needs at least {cv} samples, got {len(labels)}")
    _, counts = np.unique(labels, return_counts=True)
    strata = labels if counts.min() >= cv else np.zeros(len(labels), dtype=np.int64)
    return list(StratifiedKFold(cv, shuffle=True, random_state=seed).split(np.zeros(len(labels)), strata))


def make_classifier(kind: str, seed: int, n_features: int, n_train: int, pca: int | None = None):
    """The detection classifier: standardised features -> (PCA when ``pca``) -> logistic
    regression or gradient boosting (sklearn), seeded."""
    from sklearn.decomposition import PCA
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    check_choice("classifier", kind, CLASSIFIERS)
    steps: list[Any] = [StandardScaler()]
    if pca is not None and n_features > pca:
        steps.append(PCA(n_components=max(1, min(pca, n_train - 1)), random_state=seed))
    steps.append(LogisticRegression(max_iter=2000) if kind == "logistic"
                 else GradientBoostingClassifier(random_state=seed))
    return make_pipeline(*steps)


def out_of_fold_scores(X: np.ndarray, is_adv: np.ndarray, sample_of_row: np.ndarray,
                       folds: list[tuple[np.ndarray, np.ndarray]], samples: np.ndarray, kind: str, seed: int,
                       pca: int | None = None) -> np.ndarray:
    """P(adversarial) of each row from the classifier fit on the other folds' rows."""
    X = np.asarray(X, dtype=np.float64).reshape(len(is_adv), -1)
    scores = np.full(len(is_adv), np.nan)
    for train_s, test_s in folds:
        tr = np.isin(sample_of_row, samples[train_s])
        te = np.isin(sample_of_row, samples[test_s])
        clf = make_classifier(kind, seed, X.shape[1], int(tr.sum()), pca)
        clf.fit(X[tr], is_adv[tr])
        scores[te] = clf.predict_proba(X[te])[:, 1]
    return scores


def rank_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC by ranks (Mann-Whitney U, ties 1/2) = sklearn's roc_auc_score; NaN when only one
    class is present (a bootstrap resample)."""
    from scipy.stats import rankdata

    positive = np.asarray(positive, bool)
    n1 = int(positive.sum())
    n0 = len(positive) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float((rankdata(score)[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def auc_with_ci(is_adv: np.ndarray, scores: np.ndarray, groups: np.ndarray, *, n_boot: int, level: float,
                seed: int) -> dict[str, float | None]:
    """ROC AUC with a percentile bootstrap CI over samples (a sample's rows resampled together)."""
    from advtopo.stats import bootstrap_ci

    ci = bootstrap_ci((np.asarray(is_adv, bool), np.asarray(scores, np.float64)), rank_auc, n_boot=n_boot,
                      level=level, seed=seed, groups=groups)

    def num(v: float) -> float | None:
        return float(v) if np.isfinite(v) else None

    return {"auc": num(ci.value), "lo": num(ci.lo), "hi": num(ci.hi)}
