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

from collections.abc import Mapping
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

    ``fit(X)`` learns the vocabulary (edge ids seen on the training inputs);
    ``transform(X)`` ignores edges outside it.
    """

    def __init__(self, graph: ActivationGraph, min_persistence: float = 0.0, percentile: float | None = None,
                 binary: bool = True) -> None:
        self.graph = graph
        self.min_persistence = min_persistence
        self.percentile = percentile
        self.binary = binary

    def edge_sets(self, X: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
        check_float("min_persistence", self.min_persistence)
        check_float("percentile", self.percentile, minimum=0.0, maximum=100.0, allow_none=True)
        sets, weights = [], []
        for x in X:
            w = self.graph.edge_weights(x)
            from advtopo.persistence.activation_graph import graph_persistence

            res = graph_persistence(self.graph.src_, self.graph.dst_, w, self.graph.n_vertices_, unique=True)
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


def recovery_scores(svm: Any, features: Any, y_true: Any, y_adv: Any) -> dict[str, float]:
    """Recovery accuracy and adversary retention of a fitted classifier on adversarial features.

    Both are also given over the successful adversarial examples only (y_adv != y_true),
    where the two are exclusive; over all inputs they overlap where the attack failed.
    """
    pred = np.asarray(svm.predict(features))
    y_true, y_adv = np.asarray(y_true), np.asarray(y_adv)
    ok = y_adv != y_true
    out = {"n": int(len(pred)), "n_successful": int(ok.sum()),
           "recovery_accuracy": float(np.mean(pred == y_true)) if len(pred) else float("nan"),
           "adversary_retention": float(np.mean(pred == y_adv)) if len(pred) else float("nan")}
    if ok.any():
        out["recovery_accuracy_successful"] = float(np.mean(pred[ok] == y_true[ok]))
        out["adversary_retention_successful"] = float(np.mean(pred[ok] == y_adv[ok]))
    return out


def recovery_experiment(graph: ActivationGraph, x_clean: Any, y_clean: Any,
                        adversarial: Mapping[str, tuple[Any, Any]], cv: int = 5, C: float = 1.0,
                        min_persistence: float = 0.0, percentile: float | None = None, seed: int = 0,
                        binary: bool = True) -> dict[str, Any]:
    """Train a linear SVM on clean bag-of-edges features (``cv``-fold accuracy reported),
    then score each adversarial set ``name -> (x_adv, y_adv_pred)`` against ``y_clean``
    (the adversarial inputs are the clean ones, attacked, in the same order)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.svm import LinearSVC

    cv = check_int("cv", cv, minimum=2)
    check_float("C", C, minimum=1e-12)
    y_clean = np.asarray(y_clean)
    feats = DominantSubgraphFeatures(graph, min_persistence, percentile, binary)
    Xc = feats.fit_transform(x_clean)
    svm = LinearSVC(C=C, max_iter=5000)
    folds = StratifiedKFold(cv, shuffle=True, random_state=seed)
    cv_acc = cross_val_score(svm, Xc, y_clean, cv=folds)
    svm.fit(Xc, y_clean)
    out: dict[str, Any] = {"n_clean": int(len(y_clean)), "n_features": int(Xc.shape[1]),
                           "mean_edges_per_input": float(Xc.getnnz(axis=1).mean()),
                           "cv_accuracy": float(cv_acc.mean()), "cv_accuracy_std": float(cv_acc.std()),
                           "attacks": {}}
    for name, (x_adv, y_adv) in adversarial.items():
        y_adv = np.asarray(y_adv)
        n = len(y_adv)
        Xa = feats.transform(x_adv)
        out["attacks"][name] = recovery_scores(svm, Xa, y_clean[:n], y_adv)
    return out
