"""Are the classes distinguishable in activation space? Mapper-free answers, per sample.

Each function returns one value per sample (a correctness flag or a silhouette value), so a
bootstrap over samples (:func:`advtopo.stats.bootstrap_ci`) gives its CI. scikit-learn is
imported inside the functions: importing advtopo.stats stays cheap.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from advtopo.errors import AdvtopoError, check_choice
from advtopo.utils.metrics import METRICS


def _check_xy(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise AdvtopoError(f"X must be a 2-D array (samples x features), got shape {X.shape}")
    if y.shape != (len(X),):
        raise AdvtopoError(f"y must hold one label per row of X ({len(X)}), got shape {y.shape}")
    if not np.all(np.isfinite(X)):
        raise AdvtopoError("X holds NaN or infinite values")
    return X, y


def _folds(y: np.ndarray, cv: int, seed: int):
    """Stratified, shuffled folds (seeded): the same split for k-NN and the probe."""
    from sklearn.model_selection import StratifiedKFold

    if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)) or cv < 2:
        raise AdvtopoError(f"cv={cv!r} must be an integer >= 2 (the number of folds)")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise AdvtopoError(f"cross-validated accuracy needs at least 2 classes, got {len(classes)}")
    if counts.max() < cv:
        raise AdvtopoError(f"cv={cv} folds need a class with at least {cv} samples; the largest class has "
                           f"{counts.max()}: use fewer folds or more samples")
    return StratifiedKFold(n_splits=int(cv), shuffle=True, random_state=int(seed))


def _cross_val_correct(X: np.ndarray, y: np.ndarray, make, cv: int, seed: int) -> np.ndarray:
    from threadpoolctl import threadpool_limits

    skf = _folds(y, cv, seed)
    correct = np.zeros(len(y), dtype=bool)
    # one BLAS / OpenMP thread: these fits are small, and on a busy machine spinning threads
    # made a 2,000-row probe 100x slower (6.5 s vs 0.04 s measured); results are unchanged
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        # a class with fewer members than folds is allowed (sklearn warns); it is simply
        # absent from some training folds
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        for train, test in skf.split(X, y):
            model = make().fit(X[train], y[train])
            correct[test] = model.predict(X[test]) == y[test]
    return correct


def knn_correct(X: Any, y: Any, *, k: int = 5, metric: str = "euclidean", cv: int = 5, seed: int = 0) -> np.ndarray:
    """Per sample: is the k-NN prediction (fitted on the other folds) its true label?

    Why: the paper's claim "samples become less distinguishable" read without mapper; the
    mean is scikit-learn's cross-validated KNeighborsClassifier accuracy on
    ``StratifiedKFold(cv, shuffle=True, random_state=seed)``.
    """
    from sklearn.neighbors import KNeighborsClassifier

    X, y = _check_xy(X, y)
    check_choice("metric", metric, METRICS)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise AdvtopoError(f"k={k!r} must be an integer >= 1")
    smallest_train = len(y) - int(np.ceil(len(y) / max(int(cv), 1)))
    if k > smallest_train:
        raise AdvtopoError(f"k={k} neighbours but a training fold holds only {smallest_train} samples "
                           f"({len(y)} samples, cv={cv}); use a smaller k")
    return _cross_val_correct(X, y, lambda: KNeighborsClassifier(n_neighbors=int(k), metric=metric), cv, seed)


def probe_correct(X: Any, y: Any, *, cv: int = 5, seed: int = 0, C: float = 1.0, max_iter: int = 2000) -> np.ndarray:
    """Per sample: is a cross-validated linear probe's prediction its true label?

    Why: linear separability of the classes at a layer (Alain & Bengio's probes). The probe
    is ``StandardScaler`` + multinomial ``LogisticRegression(C, lbfgs)`` on the same folds as
    :func:`knn_correct`; lbfgs is deterministic.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _check_xy(X, y)
    if isinstance(C, bool) or not isinstance(C, (int, float)) or not C > 0:
        raise AdvtopoError(f"C={C!r} must be a number > 0 (inverse regularisation strength)")

    def make():
        return make_pipeline(StandardScaler(), LogisticRegression(C=float(C), max_iter=int(max_iter)))

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported accuracy is what it is
        return _cross_val_correct(X.astype(np.float64, copy=False), y, make, cv, seed)


def silhouette_values(X: Any, y: Any, metric: str = "euclidean") -> np.ndarray:
    """Per sample silhouette with the true classes as clusters (sklearn ``silhouette_samples``).

    Why: how far each sample sits from other classes relative to its own, in [-1, 1].
    Raises AdvtopoError with fewer than 2 classes or fewer than 3 samples (silhouette is not
    defined there); a sample alone in its class gets 0, as in scikit-learn.
    """
    from sklearn.metrics import silhouette_samples

    X, y = _check_xy(X, y)
    check_choice("metric", metric, METRICS)
    n_labels = len(np.unique(y))
    if not 2 <= n_labels <= len(y) - 1:
        raise AdvtopoError(f"silhouette needs 2 <= number of classes <= samples - 1, got {n_labels} classes "
                           f"for {len(y)} samples")
    return silhouette_samples(X, y, metric=metric)


def linear_cka(X: Any, Y: Any) -> float:
    """Linear CKA of two representations of the same samples, in feature space (O(n d^2)).

    The implementation is advtopo.persistence's (one definition in the project); importing
    it loads advtopo.persistence, hence torch, on first use.
    """
    from advtopo.persistence.layers import linear_cka as _cka

    return _cka(X, Y)
