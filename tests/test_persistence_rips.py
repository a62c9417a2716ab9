"""Rips diagrams, diagram distances and vectorisations against ripser, gudhi and persim."""
from __future__ import annotations

import numpy as np
import pytest

from advtopo.errors import AdvtopoError
from advtopo.persistence import (RipsPersistence, betti_curve, bottleneck_distance, diagram_distance,
                                 maxmin_landmarks, persistence_image, persistence_landscape,
                                 persistent_entropy, rips_diagrams, sliced_wasserstein_distance,
                                 split_diagrams, stack_diagrams, total_persistence, wasserstein_distance)
from advtopo.persistence.rips import pairwise_distances


def _circle_cloud(n=60, seed=0, noise=0.05, dim=5):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 2 * np.pi, n)
    X = np.zeros((n, dim))
    X[:, 0], X[:, 1] = np.cos(t), np.sin(t)
    return X + noise * rng.normal(size=X.shape)


def _sorted(d):
    d = np.asarray(d, float).reshape(-1, 2)
    return d[np.lexsort((d[:, 1], d[:, 0]))]


def _assert_same_diagram(a, b):
    a, b = _sorted(a), _sorted(b)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_rips_matches_ripser(metric):
    import ripser

    X = _circle_cloud(80, seed=1) + 0.3  # shift so cosine is not degenerate
    ours = rips_diagrams(X, maxdim=2, metric=metric, n_threads=1)
    ref = ripser.ripser(X, maxdim=2, metric=metric)["dgms"]
    for a, b in zip(ours, ref):
        _assert_same_diagram(a, b)
    assert len(ours[1]) >= 1  # the circle is there


def test_rips_matches_gudhi():
    import gudhi

    X = _circle_cloud(50, seed=2)
    ours = rips_diagrams(X, maxdim=1)
    st = gudhi.RipsComplex(points=X).create_simplex_tree(max_dimension=2)
    st.compute_persistence()
    for k in (0, 1):
        _assert_same_diagram(ours[k], st.persistence_intervals_in_dimension(k))


def test_threshold_and_landmarks():
    import ripser

    X = _circle_cloud(200, seed=3)
    thr = 0.15
    ours = rips_diagrams(X, maxdim=1, threshold=thr)
    ref = ripser.ripser(X, maxdim=1, thresh=thr)["dgms"]
    for a, b in zip(ours, ref):
        _assert_same_diagram(a, b)
    assert np.isinf(ours[0][:, 1]).sum() > 1  # disconnected at this scale

    idx = maxmin_landmarks(X, 40, seed=None)
    assert len(set(idx.tolist())) == 40 and idx[0] == 0
    # maxmin is greedy farthest-first: each new landmark maximises distance to the chosen set
    D = pairwise_distances(X)
    for k in range(1, 40):
        mind = D[idx[:k]].min(axis=0)
        assert mind[idx[k]] == pytest.approx(mind.max())
    rp = RipsPersistence(maxdim=1, n_landmarks=40, landmark_seed=None).fit(X)
    assert rp.n_points_ == 40 and np.array_equal(rp.landmarks_, idx)
    assert len(rp.diagrams_[1]) >= 1


def test_stack_roundtrip_and_validation():
    dg = rips_diagrams(_circle_cloud(30), maxdim=1)
    back = split_diagrams(stack_diagrams(dg))
    for a, b in zip(dg, back):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(AdvtopoError, match="metric"):
        RipsPersistence(metric="manhattan").fit(np.zeros((3, 2)))
    with pytest.raises(AdvtopoError, match="maxdim"):
        RipsPersistence(maxdim=3).fit(np.zeros((3, 2)))
    with pytest.raises(AdvtopoError, match="2-D"):
        rips_diagrams(np.zeros(5))


def _random_diagram(rng, n):
    b = rng.uniform(0, 1, n)
    return np.column_stack([b, b + rng.exponential(0.3, n)])


def _exact_wasserstein(a, b, p, q):
    """Reference: optimal assignment on the diagonal-augmented cost matrix (Hungarian)."""
    from scipy.optimize import linear_sum_assignment

    n, m = len(a), len(b)
    big = 1e300
    C = np.zeros((n + m, n + m))
    if n and m:
        C[:n, :m] = np.linalg.norm(a[:, None, :] - b[None, :, :], ord=q, axis=2) ** p
    to_diag = lambda d: ((d[:, 1] - d[:, 0]) / 2 * (2 ** (1 / q) if np.isfinite(q) else 1.0)) ** p
    C[:n, m:] = big
    C[n:, :m] = big
    C[np.arange(n), m + np.arange(n)] = to_diag(a)
    C[n + np.arange(m), np.arange(m)] = to_diag(b)
    r, c = linear_sum_assignment(C)
    return C[r, c].sum() ** (1 / p)


def test_distances_match_gudhi_and_persim():
    import gudhi
    import persim

    rng = np.random.default_rng(0)
    for n1, n2 in ((20, 25), (5, 40), (0, 7)):
        a, b = _random_diagram(rng, n1), _random_diagram(rng, n2)
        # bottleneck: gudhi (exact) and persim agree with ours
        assert bottleneck_distance(a, b) == pytest.approx(gudhi.bottleneck_distance(a, b), abs=1e-9)
        if n1 and n2:
            assert bottleneck_distance(a, b) == pytest.approx(persim.bottleneck(a, b), abs=1e-9)
        # wasserstein: exact optimal transport (gudhi's POT backend) within hera's delta
        for order, q in ((1, np.inf), (2, 2.0), (1, 1.0)):
            exact = _exact_wasserstein(a, b, order, q)
            assert wasserstein_distance(a, b, order=order, internal_p=q, delta=1e-6) == pytest.approx(
                exact, rel=1e-5, abs=1e-9)
        if n1 and n2:
            # persim's wasserstein is order 1 with the euclidean ground metric
            assert wasserstein_distance(a, b, order=1, internal_p=2, delta=1e-6) == pytest.approx(
                persim.wasserstein(a, b), rel=1e-5)
            # sliced wasserstein: persim (float32 directions) to float precision
            assert sliced_wasserstein_distance(a, b, n_directions=50) == pytest.approx(
                persim.sliced_wasserstein(a, b, M=50), rel=1e-5)
    a = _random_diagram(rng, 10)
    assert diagram_distance(a, a, "bottleneck") == pytest.approx(0, abs=1e-12)
    assert diagram_distance(a, a) == 0
    with pytest.raises(AdvtopoError, match="metric"):
        diagram_distance(a, a, "heat")


def test_essential_points_dropped_by_default():
    a = np.array([[0, 1.0], [0, np.inf]])
    b = np.array([[0, 1.0]])
    assert bottleneck_distance(a, b) == pytest.approx(0, abs=1e-12)
    assert bottleneck_distance(a, b, essential="keep") == np.inf
    assert sliced_wasserstein_distance(a, b) == 0


def test_vectorisations_match_gudhi():
    from gudhi.representations import BettiCurve, Entropy, Landscape, PersistenceImage

    rng = np.random.default_rng(4)
    D = _random_diagram(rng, 30)
    grid = np.linspace(0, 2, 57)
    ref_bc = BettiCurve(predefined_grid=grid).fit_transform([D])[0]
    np.testing.assert_array_equal(betti_curve(D, grid=grid), ref_bc)

    ls = Landscape(num_landscapes=4, resolution=57, sample_range=[0, 2], keep_endpoints=True)
    ref_ls = ls.fit_transform([D])[0].reshape(4, 57)
    np.testing.assert_allclose(np.sqrt(2) * persistence_landscape(D, 4, grid=ls.grid_), ref_ls, atol=1e-12)

    rng_ = (0.0, 1.0, 0.0, 1.5)
    pi = PersistenceImage(bandwidth=0.1, resolution=[15, 12], im_range=list(rng_),
                          weight=lambda x: x[1]).fit_transform([D])[0]
    ours = persistence_image(D, resolution=(15, 12), bandwidth=0.1, im_range=rng_)
    np.testing.assert_allclose(ours.ravel(), pi, rtol=1e-10, atol=1e-12)

    life = D[:, 1] - D[:, 0]
    assert total_persistence(D) == pytest.approx(life.sum())
    assert total_persistence(D, p=2) == pytest.approx((life ** 2).sum())
    ref_h = Entropy(mode="scalar").fit_transform([D])[0, 0]
    assert persistent_entropy(D) == pytest.approx(ref_h)
    assert persistent_entropy(np.array([[0, 1.0], [0, 1.0]]), normalize=True) == pytest.approx(1.0)
