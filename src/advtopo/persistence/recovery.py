"""Gebhart et al.'s recovery experiment: do adversarial inputs keep the clean image's
dominant activation subgraph?

Each input becomes a bag of edges (the dominant subgraph of its activation graph, see
:class:`DominantSubgraphFeatures`); a linear SVM learns the true class from clean inputs;
applied to adversarial inputs it gives *recovery accuracy* (predicts the true class) and
*adversary retention* (predicts the class the attacked model output). High recovery with
low retention means the attack changed the output without taking over the dominant
structure of the original image.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from advtopo.errors import AdvtopoError
from advtopo.persistence._validation import check_float, check_int
from advtopo.persistence.activation_graph import ActivationGraph, bag_of_edges


class DominantSubgraphFeatures:
    """Inputs -> sparse bag-of-edges rows of their dominant subgraphs.

    Parameters
    ----------
    graph : a fitted :class:`ActivationGraph`.
    min_persistence : keep persistence pairs with birth - death > this (-1 keeps all the
        maximum-spanning-forest edges).
    percentile : then keep the pair edges at or above this weight percentile.
    binary : 1 for a present edge (else its weight).
    layers : only these edge layers' edges (``ActivationGraph.edge_ids``); None: every edge.

    ``fit(X)`` learns the vocabulary (edge ids seen on the training inputs);
    ``transform(X)`` ignores edges outside it.
    """

    def __init__(self, graph: ActivationGraph, min_persistence: float = 0.0, percentile: float | None = None,
                 binary: bool = True, layers: list[str] | None = None) -> None:
        self.graph = graph
        self.min_persistence = min_persistence
        self.percentile = percentile
        self.binary = binary
        self.layers = layers

    def edge_sets(self, X: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per input: the sorted dominant edge ids and their weights."""
        check_float("min_persistence", self.min_persistence)
        check_float("percentile", self.percentile, minimum=0.0, maximum=100.0, allow_none=True)
        if self.layers is not None:
            self.graph.edge_ids(self.layers)  # unknown layer names: one error before any graph
        sets, weights = [], []
        for x in X:
            w = self.graph.edge_weights(x)
            res = self.graph.persistence(x, layers=self.layers, weights=w)
            e = np.sort(res.dominant_edges(self.percentile, self.min_persistence))
            sets.append(e)
            weights.append(w[e].astype(np.float64))
        return sets, weights

    def fit(self, X: Any, y: Any = None) -> "DominantSubgraphFeatures":
        self.fit_transform(X)
        return self

    def fit_transform(self, X: Any, y: Any = None):
        sets, weights = self.edge_sets(X)
        M, self.vocabulary_ = bag_of_edges(sets, weights=None if self.binary else weights)
        return M

    def transform(self, X: Any):
        if not hasattr(self, "vocabulary_"):
            raise AdvtopoError("DominantSubgraphFeatures is not fitted: call fit(X) first")
        sets, weights = self.edge_sets(X)
        return bag_of_edges(sets, self.vocabulary_, None if self.binary else weights)[0]


def _scores(pred: np.ndarray, y_true: np.ndarray, y_adv: np.ndarray) -> dict[str, float]:
    ok = y_adv != y_true
    out = {"n": int(len(pred)), "n_successful": int(ok.sum()),
           "recovery_accuracy": float(np.mean(pred == y_true)) if len(pred) else float("nan"),
           "adversary_retention": float(np.mean(pred == y_adv)) if len(pred) else float("nan")}
    if ok.any():
        out["recovery_accuracy_successful"] = float(np.mean(pred[ok] == y_true[ok]))
        out["adversary_retention_successful"] = float(np.mean(pred[ok] == y_adv[ok]))
    return out


def recovery_scores(svm: Any, features: Any, y_true: Any, y_adv: Any) -> dict[str, float]:
    """Recovery accuracy and adversary retention of a fitted classifier on adversarial features.

    Both are also given over the successful adversarial examples only (y_adv != y_true),
    where the two are exclusive; over all inputs they overlap where the attack failed.
    """
    return _scores(np.asarray(svm.predict(features)), np.asarray(y_true), np.asarray(y_adv))


PROTOCOLS = ("paper", "cross_fitted", "both")


def cross_fitted_folds(y: Any, n_splits: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_splits`` (train, held-out) index pairs over the clean inputs (stratified, shuffled).

    Each input is held out exactly once and is never in the training part of its own fold:
    the cross-fitted protocol trains on the clean inputs of ``train`` and scores the
    adversarial versions of the ``held-out`` inputs. The same folds give ``cv_accuracy``.
    A class with fewer than ``n_splits`` inputs (common in a small study subset) is spread over
    as many folds as it has inputs; scikit-learn's warning about it is not shown.
    """
    import warnings

    from sklearn.model_selection import StratifiedKFold

    n_splits = check_int("n_splits", n_splits, minimum=2)
    y = np.asarray(y)
    if len(y) < n_splits:
        raise AdvtopoError(f"need at least n_splits={n_splits} clean inputs, got {len(y)}")
    folds = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        return [(np.sort(tr), np.sort(te)) for tr, te in folds.split(np.zeros(len(y)), y)]


def recovery_experiment(graph: ActivationGraph, x_clean: Any, y_clean: Any,
                        adversarial: Mapping[str, tuple[Any, Any]], cv: int = 5, C: float = 1.0,
                        min_persistence: float = 0.0, percentile: float | None = None, seed: int = 0,
                        binary: bool = True, protocol: str = "both", layers: list[str] | None = None,
                        return_predictions: bool = False,
                        progress: Callable[[str, int], None] | None = None) -> dict[str, Any]:
    """Recovery accuracy / adversary retention of a linear SVM on dominant-subgraph bags of edges.

    ``adversarial``: ``name -> (x_adv, y_adv_pred)``, the clean inputs attacked, in the same
    order (possibly only the first ``len(x_adv)``); scores use ``y_clean`` as the true class.

    ``protocol``:

    * ``"paper"`` (Gebhart et al.): one SVM trained on *all* clean inputs (its stratified
      ``cv``-fold accuracy is reported as ``cv_accuracy``), applied to the adversarial
      versions of those same inputs -> ``out["attacks"]``. With many more edges than
      inputs the SVM can memorise its training subgraphs, which inflates recovery.
    * ``"cross_fitted"``: the same ``cv`` folds (:func:`cross_fitted_folds`); for each fold
      an SVM (vocabulary included) is fit on the clean inputs of the other folds and
      predicts the adversarial versions of the held-out fold's inputs, so no adversarial
      input is scored by an SVM that saw its clean original -> ``out["attacks_cross_fitted"]``.
    * ``"both"`` (default): both; the dominant subgraphs are computed once.

    ``layers``: the dominant subgraphs of these edge layers only (None: the whole network).
    ``seed`` fixes the folds and the SVMs' coordinate order, so a call is reproducible.
    ``return_predictions``: also ``out["predictions"][protocol key][name]``, the SVM's class
    for each adversarial input (what the scores count; the study bootstraps CIs from them).
    ``progress(name, n_inputs)`` is called after each set's dominant subgraphs ("clean" first).
    """
    from sklearn.svm import LinearSVC

    cv = check_int("cv", cv, minimum=2)
    check_float("C", C, minimum=1e-12)
    if protocol not in PROTOCOLS:
        raise AdvtopoError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    y_clean = np.asarray(y_clean)
    folds = cross_fitted_folds(y_clean, cv, seed)
    feats = DominantSubgraphFeatures(graph, min_persistence, percentile, binary, layers)
    sets_c, w_c = feats.edge_sets(x_clean)
    if progress is not None:
        progress("clean", len(sets_c))
    adv: dict[str, tuple[list, list, np.ndarray]] = {}
    for name, (x_adv, y_adv) in adversarial.items():
        y_adv = np.asarray(y_adv)
        if len(y_adv) > len(y_clean) or len(x_adv) != len(y_adv):
            raise AdvtopoError(f"adversarial set {name!r}: {len(x_adv)} inputs and {len(y_adv)} labels for "
                               f"{len(y_clean)} clean inputs")
        adv[name] = (*feats.edge_sets(x_adv), y_adv)
        if progress is not None:
            progress(name, len(y_adv))

    def bags(sets, weights, vocab=None):
        return bag_of_edges(sets, vocab, None if binary else weights)

    Xc, vocab = bags(sets_c, w_c)
    cv_acc, fold_preds = [], {name: np.full(len(a[2]), -1, dtype=y_clean.dtype) for name, a in adv.items()}
    for tr, te in folds:
        Xtr, voc = bags([sets_c[i] for i in tr], [w_c[i] for i in tr])
        svm = LinearSVC(C=C, max_iter=5000, random_state=seed).fit(Xtr, y_clean[tr])
        Xte = bags([sets_c[i] for i in te], [w_c[i] for i in te], voc)[0]
        cv_acc.append(float(np.mean(svm.predict(Xte) == y_clean[te])))
        if protocol in ("cross_fitted", "both"):
            for name, (sets_a, w_a, y_adv) in adv.items():
                held = te[te < len(y_adv)]
                if len(held):
                    Xa = bags([sets_a[i] for i in held], [w_a[i] for i in held], voc)[0]
                    fold_preds[name][held] = svm.predict(Xa)
    cv_acc = np.asarray(cv_acc)
    out: dict[str, Any] = {"n_clean": int(len(y_clean)), "n_features": int(Xc.shape[1]),
                           "mean_edges_per_input": float(Xc.getnnz(axis=1).mean()) if len(y_clean) else 0.0,
                           "cv_accuracy": float(cv_acc.mean()), "cv_accuracy_std": float(cv_acc.std()),
                           "protocol": protocol, "protocols": {}}
    predictions: dict[str, dict[str, np.ndarray]] = {}
    if protocol in ("paper", "both"):
        svm = LinearSVC(C=C, max_iter=5000, random_state=seed).fit(Xc, y_clean)
        out["protocols"]["attacks"] = ("paper: SVM trained on all clean inputs, scored on the adversarial "
                                       "versions of those same inputs")
        predictions["attacks"] = {name: np.asarray(svm.predict(bags(s, w, vocab)[0]))
                                  for name, (s, w, _) in adv.items()}
        out["attacks"] = {name: _scores(predictions["attacks"][name], y_clean[:len(ya)], ya)
                          for name, (_, _, ya) in adv.items()}
    if protocol in ("cross_fitted", "both"):
        out["protocols"]["attacks_cross_fitted"] = (f"cross-fitted ({cv} folds): each adversarial input scored "
                                                    f"by an SVM trained on the clean inputs of the other folds")
        predictions["attacks_cross_fitted"] = fold_preds
        out["attacks_cross_fitted"] = {name: _scores(fold_preds[name], y_clean[:len(ya)], ya)
                                       for name, (_, _, ya) in adv.items()}
    if return_predictions:
        out["predictions"] = {key: {name: [int(v) for v in p] for name, p in by_name.items()}
                              for key, by_name in predictions.items()}
    return out
