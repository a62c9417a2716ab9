"""Fixed-length summaries of persistence diagrams (numpy, vectorised).

Conventions match ``gudhi.representations`` on a given grid (tested): a Betti curve counts
bars with ``birth <= t < death``; landscapes are the k-th largest tent
``max(0, min(t - b, d - t))`` (gudhi's values are these times sqrt(2), its rotated frame);
persistence images are sums of Gaussians in (birth, persistence) coordinates evaluated at
the pixel centres, weighted by persistence by default (Adams et al. 2017).
Essential (infinite) points are dropped by every function here.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from advtopo.persistence._validation import check_choice, check_diagram, check_float, check_int


def _finite(D: Any, name: str = "diagram") -> np.ndarray:
    D = check_diagram(name, D)
    return D[np.isfinite(D).all(axis=1)]


def _grid(diagrams: list[np.ndarray], grid: Any, resolution: int) -> np.ndarray:
    if grid is not None:
        return np.asarray(grid, dtype=np.float64).ravel()
    resolution = check_int("resolution", resolution, minimum=2)
    pts = np.concatenate([d.ravel() for d in diagrams]) if diagrams else np.zeros(0)
    lo, hi = (float(pts.min()), float(pts.max())) if pts.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    return np.linspace(lo, hi, resolution)


def betti_curve(diagram: Any, grid: Any = None, resolution: int = 100) -> np.ndarray:
    """Number of bars alive at each grid value t (``birth <= t < death``)."""
    D = _finite(diagram)
    t = _grid([D], grid, resolution)
    b = np.sort(D[:, 0])
    d = np.sort(D[:, 1])
    return (np.searchsorted(b, t, side="right") - np.searchsorted(d, t, side="right")).astype(np.int64)


def persistence_landscape(diagram: Any, n_landscapes: int = 5, grid: Any = None,
                          resolution: int = 100) -> np.ndarray:
    """The first ``n_landscapes`` landscape functions on the grid, shape [n_landscapes, len(grid)]."""
    D = _finite(diagram)
    k = check_int("n_landscapes", n_landscapes, minimum=1)
    t = _grid([D], grid, resolution)
    tents = np.maximum(np.minimum(t[:, None] - D[None, :, 0], D[None, :, 1] - t[:, None]), 0.0)
    if tents.shape[1] < k:
        tents = np.concatenate([tents, np.zeros((len(t), k - tents.shape[1]))], axis=1)
    top = -np.sort(-tents, axis=1)[:, :k]
    return top.T


def persistence_image(diagram: Any, resolution: tuple[int, int] = (20, 20), bandwidth: float = 1.0,
                      im_range: tuple[float, float, float, float] | None = None,
                      weight: str | Callable[[np.ndarray], np.ndarray] = "persistence") -> np.ndarray:
    """Persistence image, shape [resolution[1], resolution[0]] (rows = persistence axis).

    ``im_range`` = (birth_min, birth_max, pers_min, pers_max); default: the diagram's range.
    ``weight``: "persistence" (linear in persistence, so short bars fade), "uniform", or a
    function of an [n, 2] (birth, persistence) array returning n weights.
    """
    D = _finite(diagram)
    bw = check_float("bandwidth", bandwidth, minimum=1e-300)
    rx, ry = (check_int("resolution", int(r), minimum=1) for r in resolution)
    bp = np.column_stack([D[:, 0], D[:, 1] - D[:, 0]])
    if im_range is None:
        if len(bp):
            im_range = (bp[:, 0].min(), bp[:, 0].max(), bp[:, 1].min(), bp[:, 1].max())
        else:
            im_range = (0.0, 1.0, 0.0, 1.0)
    if callable(weight):
        w = np.asarray(weight(bp), dtype=np.float64).reshape(len(bp))
    else:
        check_choice("weight", weight, ("persistence", "uniform"))
        w = bp[:, 1].copy() if weight == "persistence" else np.ones(len(bp))
    xs = np.linspace(im_range[0], im_range[1], rx)
    ys = np.linspace(im_range[2], im_range[3], ry)
    gx = np.exp(-np.square(bp[:, 0, None] - xs[None, :]) / (2 * bw * bw))  # [n, rx]
    gy = np.exp(-np.square(bp[:, 1, None] - ys[None, :]) / (2 * bw * bw))  # [n, ry]
    # separable Gaussian: image[y, x] = sum_i w_i gy[i, y] gx[i, x] / (2 pi bw^2)
    return (gy * w[:, None]).T @ gx / (2 * np.pi * bw * bw)


def total_persistence(diagram: Any, p: float = 1.0) -> float:
    """Sum of (death - birth)^p over the finite bars."""
    D = _finite(diagram)
    p = check_float("p", p, minimum=0.0)
    return float(np.sum((D[:, 1] - D[:, 0]) ** p))


def persistent_entropy(diagram: Any, normalize: bool = False) -> float:
    """Shannon entropy of the bar lengths l_i / sum(l) (natural log); 0 for <= 1 bar.

    ``normalize`` divides by log(#bars), giving a value in [0, 1].
    """
    D = _finite(diagram)
    life = D[:, 1] - D[:, 0]
    life = life[life > 0]
    if len(life) <= 1:
        return 0.0
    p = life / life.sum()
    h = float(-np.sum(p * np.log(p)))
    return h / np.log(len(life)) if normalize else h


def diagram_summary(diagram: Any) -> dict[str, float]:
    """Scalars for tables and the web app: bar count, total persistence, entropy, longest bar."""
    D = _finite(diagram)
    life = D[:, 1] - D[:, 0]
    return {"n_bars": int(len(D)), "total_persistence": float(life.sum()),
            "persistent_entropy": persistent_entropy(D),
            "max_persistence": float(life.max()) if len(life) else 0.0}
