"""Statistics with confidence intervals for the study's claims (numpy / scikit-learn only).

    from advtopo.stats import bootstrap_ci, knn_correct
    ci = bootstrap_ci(knn_correct(X, y, k=5, cv=5))   # CI(value, lo, hi, level, n, n_boot)

Per-sample measures (k-NN / linear-probe correctness, silhouette) answer "are the classes
distinguishable?" without mapper; bootstrap_ci puts a 95% interval on any statistic.
"""
from advtopo.stats.bootstrap import CI, bootstrap_ci
from advtopo.stats.separability import METRICS, knn_correct, linear_cka, probe_correct, silhouette_values

__all__ = ["CI", "bootstrap_ci", "knn_correct", "probe_correct", "silhouette_values", "linear_cka", "METRICS"]
