"""Distances between persistence diagrams.

Bottleneck and Wasserstein come from gudhi (``bottleneck_distance``, ``gudhi.hera``), which
measured 10-60x faster than persim's. The sliced Wasserstein distance is a vectorised
numpy version of persim's (same directions, same diagonal projections, same value up to
float rounding; tested): persim loops in Python over points and directions.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from advtopo.persistence._validation import check_choice, check_diagram, check_float, check_int

ESSENTIAL = ("drop", "keep")


def finite_part(diagram: Any) -> np.ndarray:
    """The points of a diagram with finite birth and death (essential classes removed)."""
    D = check_diagram("diagram", diagram)
    return D[np.isfinite(D).all(axis=1)]


def _prepare(d1: Any, d2: Any, essential: str) -> tuple[np.ndarray, np.ndarray]:
    check_choice("essential", essential, ESSENTIAL)
    a, b = check_diagram("diagram_1", d1), check_diagram("diagram_2", d2)
    if essential == "drop":
        a, b = a[np.isfinite(a).all(axis=1)], b[np.isfinite(b).all(axis=1)]
    return a, b


def bottleneck_distance(d1: Any, d2: Any, essential: str = "drop", delta: float = 0.0) -> float:
    """Bottleneck distance (gudhi). ``delta`` > 0 allows that relative error for speed.

    ``essential="drop"`` compares the finite parts only (the usual choice: an H0 diagram of
    a Rips complex always has exactly one infinite bar); with "keep", essential points are
    matched among themselves and unequal counts give ``inf``.
    """
    import gudhi

    a, b = _prepare(d1, d2, essential)
    check_float("delta", delta, minimum=0.0)
    return float(gudhi.bottleneck_distance(a, b, delta if delta > 0 else None))


def wasserstein_distance(d1: Any, d2: Any, order: float = 1.0, internal_p: float = np.inf,
                         essential: str = "drop", delta: float = 0.01) -> float:
    """p-Wasserstein distance with ground metric L_q (gudhi.hera; ``delta`` = relative error).

    ``order`` is p >= 1, ``internal_p`` is q in [1, inf].
    """
    from gudhi.hera import wasserstein_distance as hera

    a, b = _prepare(d1, d2, essential)
    check_float("order", order, minimum=1.0)
    check_float("internal_p", internal_p, minimum=1.0, allow_inf=True)
    check_float("delta", delta, minimum=0.0)
    return float(hera(a, b, order=float(order), internal_p=float(internal_p), delta=float(delta)))


def sliced_wasserstein_distance(d1: Any, d2: Any, n_directions: int = 50, essential: str = "drop") -> float:
    """Sliced Wasserstein distance (Carriere, Cuturi, Oudot 2017), persim's convention.

    Each diagram is completed with the diagonal projections of the other's points, then
    both are projected on ``n_directions`` lines at angles pi/2 .. 3pi/2 and the L1 distance
    between the sorted projections is averaged. Vectorised over directions.
    """
    a, b = _prepare(d1, d2, essential)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        from advtopo.errors import AdvtopoError

        raise AdvtopoError("sliced Wasserstein needs finite diagrams: use essential='drop'")
    M = check_int("n_directions", n_directions, minimum=1)
    if len(a) == 0 and len(b) == 0:
        return 0.0
    theta = (0.5 + np.arange(M) / M) * np.pi
    dirs = np.stack([np.cos(theta), np.sin(theta)])  # [2, M]
    pa = np.repeat(a.sum(axis=1, keepdims=True) / 2.0, 2, axis=1)  # diagonal projections
    pb = np.repeat(b.sum(axis=1, keepdims=True) / 2.0, 2, axis=1)
    v1 = np.sort(np.concatenate([a, pb]) @ dirs, axis=0)
    v2 = np.sort(np.concatenate([b, pa]) @ dirs, axis=0)
    return float(np.abs(v1 - v2).sum() / M)


DISTANCES: dict[str, Callable[..., float]] = {
    "sliced_wasserstein": sliced_wasserstein_distance,
    "bottleneck": bottleneck_distance,
    "wasserstein": wasserstein_distance,
}


def diagram_distance(d1: Any, d2: Any, metric: str = "sliced_wasserstein", **params: Any) -> float:
    """Distance ``metric`` (one of :data:`DISTANCES`) between two diagrams."""
    check_choice("metric", metric, DISTANCES)
    return DISTANCES[metric](d1, d2, **params)
