"""advtopo.stats against independent computations: naive resampling loops, scikit-learn's
cross-validation helpers, the Gram-matrix (HSIC) form of CKA."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import StratifiedKFold, cross_val_predict, cross_val_score

from advtopo.errors import AdvtopoError
from advtopo.stats import CI, bootstrap_ci, knn_correct, linear_cka, probe_correct, silhouette_values


def naive_percentile(values, q):
    """Linear interpolation between order statistics (numpy's default), written out."""
    s = sorted(values)
    pos = q / 100.0 * (len(s) - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def naive_bootstrap(arrays, statistic, n_boot, level, seed):
    """The documented resampling, one replicate at a time in plain Python."""
    rng = np.random.default_rng(seed)
    n = len(arrays[0])
    boot = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, size=n)
        boot.append(float(statistic(*[a[idx] for a in arrays])))
    a = (1 - level) / 2 * 100
    return naive_percentile(boot, a), naive_percentile(boot, 100 - a)


def test_bootstrap_mean_matches_a_naive_loop_exactly():
    x = np.random.default_rng(3).exponential(size=257)  # odd n, skewed
    ci = bootstrap_ci(x, n_boot=500, level=0.9, seed=11)
    lo, hi = naive_bootstrap([x], np.mean, 500, 0.9, 11)
    assert isinstance(ci, CI)
    assert ci.value == np.mean(x) and ci.n == 257 and ci.n_boot == 500 and ci.level == 0.9
    assert ci.lo == pytest.approx(lo, rel=1e-12, abs=1e-15) and ci.hi == pytest.approx(hi, rel=1e-12, abs=1e-15)
    assert ci.lo < ci.value < ci.hi
    assert ci.to_dict(short=True) == {"value": ci.value, "lo": ci.lo, "hi": ci.hi}
    assert set(ci.to_dict()) == {"value", "lo", "hi", "level", "n", "n_boot"}


def test_bootstrap_boolean_correctness_and_a_block_boundary(monkeypatch):
    """Correctness flags are bootstrapped as floats; several vectorised blocks give the same
    numbers as one (the RNG stream does not depend on the block size)."""
    import advtopo.stats.bootstrap as b

    flags = np.random.default_rng(0).random(300) < 0.7
    one = bootstrap_ci(flags, n_boot=200, seed=5)
    monkeypatch.setattr(b, "_BLOCK_ELEMENTS", 300 * 7)  # 7 replicates per block, 29 blocks
    many = bootstrap_ci(flags, n_boot=200, seed=5)
    assert one == many
    assert one.lo == pytest.approx(naive_bootstrap([flags.astype(float)], np.mean, 200, 0.95, 5)[0], rel=1e-12)


def test_bootstrap_any_statistic_and_aligned_arrays_match_a_naive_loop():
    rng = np.random.default_rng(1)
    x = rng.normal(size=80)
    y = 0.5 * x + rng.normal(size=80)
    corr = lambda a, b: np.corrcoef(a, b)[0, 1]  # noqa: E731
    ci = bootstrap_ci((x, y), corr, n_boot=300, seed=2)
    assert (ci.lo, ci.hi) == pytest.approx(naive_bootstrap([x, y], corr, 300, 0.95, 2), rel=1e-12)
    assert ci.value == pytest.approx(corr(x, y))
    med = bootstrap_ci(x, np.median, n_boot=300, seed=2)
    assert (med.lo, med.hi) == pytest.approx(naive_bootstrap([x], np.median, 300, 0.95, 2), rel=1e-12)


def test_bootstrap_over_groups_resamples_whole_groups():
    rng = np.random.default_rng(4)
    n_groups = 40
    groups = np.repeat(rng.permutation(1000)[:n_groups], 2)  # e.g. a clean and an adversarial row per sample
    x = rng.random(2 * n_groups)
    x[::2] += np.arange(n_groups) / n_groups  # rows of a group are correlated
    # naive: draw group positions (in sorted id order), take all their rows
    uniq = np.unique(groups)
    r = np.random.default_rng(9)
    boot = []
    for _ in range(400):
        gi = r.integers(0, n_groups, size=n_groups)
        rows = np.concatenate([np.flatnonzero(groups == uniq[k]) for k in gi])
        boot.append(np.mean(x[rows]))
    ci = bootstrap_ci(x, groups=groups, n_boot=400, seed=9)
    assert ci.n == n_groups
    assert ci.lo == pytest.approx(naive_percentile(boot, 2.5), rel=1e-12)
    assert ci.hi == pytest.approx(naive_percentile(boot, 97.5), rel=1e-12)
    # the generic path (any statistic) resamples the same groups
    gen = bootstrap_ci(x, lambda v: np.mean(v), groups=groups, n_boot=400, seed=9)
    assert (gen.lo, gen.hi) == pytest.approx((ci.lo, ci.hi), rel=1e-12)


def test_bootstrap_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(123)
    hits = 0
    trials = 300
    for t in range(trials):
        ci = bootstrap_ci(rng.normal(loc=2.0, size=60), n_boot=400, seed=t)
        hits += ci.lo <= 2.0 <= ci.hi
    # percentile bootstrap on n=60 normal samples: slightly under 95% (about 0.93-0.94);
    # binomial sd over 300 trials is 1.3 points
    assert 0.88 <= hits / trials <= 0.985
    wide = bootstrap_ci(rng.normal(size=60), n_boot=400, level=0.99)
    narrow = bootstrap_ci(rng.normal(size=60), n_boot=400, level=0.5)
    assert wide.hi - wide.lo > narrow.hi - narrow.lo


@pytest.mark.parametrize("kw, msg", [({"n_boot": 0}, "n_boot"), ({"level": 1.0}, "level"),
                                     ({"groups": np.arange(3)}, "groups")])
def test_bootstrap_rejects_bad_arguments(kw, msg):
    with pytest.raises(AdvtopoError, match=msg):
        bootstrap_ci(np.arange(5.0), **kw)


def test_bootstrap_rejects_empty_and_misaligned_data():
    with pytest.raises(AdvtopoError, match="no samples"):
        bootstrap_ci(np.array([]))
    with pytest.raises(AdvtopoError, match="same number of rows"):
        bootstrap_ci((np.arange(3), np.arange(4)), lambda a, b: 0.0)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    keep = rng.permutation(len(y))[:500]
    return X[keep].astype(np.float32), y[keep]


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_knn_correct_is_sklearns_cross_validated_knn(digits, metric):
    from sklearn.neighbors import KNeighborsClassifier

    X, y = digits
    got = knn_correct(X, y, k=5, metric=metric, cv=5, seed=3)
    skf = StratifiedKFold(n_splits=5, shuffle=True, random_state=3)
    clf = KNeighborsClassifier(n_neighbors=5, metric=metric)
    pred = cross_val_predict(clf, X, y, cv=skf)
    np.testing.assert_array_equal(got, pred == y)
    scores = cross_val_score(clf, X, y, cv=skf)
    sizes = np.array([len(t) for _, t in skf.split(X, y)])
    assert got.mean() == pytest.approx(float((scores * sizes).sum() / sizes.sum()), abs=1e-12)
    assert 0.8 < got.mean() <= 1.0  # digits are easy for k-NN


def test_knn_correct_sees_shuffled_labels_as_chance(digits):
    X, y = digits
    y_perm = np.random.default_rng(0).permutation(y)
    assert knn_correct(X, y_perm, k=5).mean() < 0.25  # 10 classes: chance is 0.1


def test_probe_correct_is_a_cross_validated_standardised_logistic_regression(digits):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = digits
    got = probe_correct(X, y, cv=4, seed=1, C=0.5)
    skf = StratifiedKFold(n_splits=4, shuffle=True, random_state=1)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000))
    pred = cross_val_predict(pipe, X.astype(np.float64), y, cv=skf)
    np.testing.assert_array_equal(got, pred == y)
    np.testing.assert_array_equal(got, probe_correct(X, y, cv=4, seed=1, C=0.5))  # deterministic
    assert got.mean() > 0.85


def test_cross_validation_rejects_what_cannot_be_split(digits):
    X, y = digits
    with pytest.raises(AdvtopoError, match="cv=1"):
        knn_correct(X, y, cv=1)
    with pytest.raises(AdvtopoError, match="at least 2 classes"):
        probe_correct(X, np.zeros(len(y), int))
    with pytest.raises(AdvtopoError, match="k=450"):
        knn_correct(X, y, k=450)
    with pytest.raises(AdvtopoError, match="allowed: euclidean, cosine"):
        knn_correct(X, y, metric="manhatan")
    with pytest.raises(AdvtopoError, match="one label per row"):
        knn_correct(X, y[:-1])


def test_silhouette_values_are_sklearns_and_guard_degenerate_input(digits):
    from sklearn.metrics import silhouette_samples, silhouette_score

    X, y = digits
    v = silhouette_values(X, y, metric="cosine")
    np.testing.assert_allclose(v, silhouette_samples(X, y, metric="cosine"), rtol=1e-6)
    assert v.mean() == pytest.approx(silhouette_score(X, y, metric="cosine"), rel=1e-6)
    # by hand for one sample: (b - a) / max(a, b) with euclidean distances
    D = np.sqrt(((X[:, None, :].astype(np.float64) - X[None, :, :]) ** 2).sum(-1))
    i = 7
    same = (y == y[i]) & (np.arange(len(y)) != i)
    a = D[i, same].mean()
    b = min(D[i, y == c].mean() for c in np.unique(y) if c != y[i])
    assert silhouette_values(X, y)[i] == pytest.approx((b - a) / max(a, b), rel=1e-5)
    with pytest.raises(AdvtopoError, match="number of classes"):
        silhouette_values(X, np.zeros(len(y), int))


def test_linear_cka_equals_the_hsic_form_with_centred_gram_matrices():
    rng = np.random.default_rng(5)
    n = 120
    X = rng.normal(size=(n, 30))
    Y = np.tanh(X @ rng.normal(size=(30, 12))) + 0.3 * rng.normal(size=(n, 12))
    H = np.eye(n) - np.ones((n, n)) / n

    def hsic(K, L):
        return np.trace(K @ H @ L @ H) / (n - 1) ** 2

    K, L = X @ X.T, Y @ Y.T
    direct = hsic(K, L) / np.sqrt(hsic(K, K) * hsic(L, L))
    assert linear_cka(X, Y) == pytest.approx(direct, rel=1e-10)
    from advtopo.persistence import linear_cka as persistence_cka

    assert persistence_cka(X, Y) == pytest.approx(direct, rel=1e-10)
    Q, _ = np.linalg.qr(rng.normal(size=(30, 30)))
    assert linear_cka(X, 3.0 * X @ Q + 1.0) == pytest.approx(1.0, rel=1e-10)  # rotation / scale / shift
    assert linear_cka(X, rng.normal(size=(n, 12))) < 0.3
