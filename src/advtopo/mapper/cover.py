"""Covers of the lens range: uniform, KeplerMapper-compatible and balanced (quantile).

Every cover is a list of closed boxes ``lo <= lens <= hi`` (one box per cover element,
1-D or 2-D). The arithmetic of each kind is spelled out in ``docs/mapper.md``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product
from typing import Any

import numpy as np

from advtopo.errors import AdvtopoError, check_choice
from advtopo.mapper._checks import check_n_intervals, check_overlap
from advtopo.registry import Registry

COVERS: Registry[type] = Registry("cover")


def _per_dim(value: Any, n_dims: int, param: str) -> list:
    if np.ndim(value) == 0:
        return [value] * n_dims
    vals = list(value)
    if len(vals) != n_dims:
        raise AdvtopoError(f"{param}={value!r} has {len(vals)} entries but the lens has {n_dims} dimensions")
    return vals


def _check_intervals_overlap(n_intervals: Any, overlap: Any, n_dims: int) -> tuple[list[int], list[float]]:
    ns = _per_dim(n_intervals, n_dims, "n_intervals")
    ps = _per_dim(overlap, n_dims, "overlap")
    return [check_n_intervals(n) for n in ns], [check_overlap(p) for p in ps]


@dataclass
class CoverElements:
    """The fitted cover: box bounds per element and the grid index of each element."""

    lo: np.ndarray  # (n_elements, n_dims) float64
    hi: np.ndarray  # (n_elements, n_dims) float64
    grid: list[tuple[int, ...]]  # grid index of each element, e.g. (k,) or (i, j)
    kind: str = "uniform"
    params: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.grid)

    def contains(self, lens: np.ndarray, e: int) -> np.ndarray:
        """Boolean mask of the rows of ``lens`` (n, n_dims) inside element ``e``."""
        lens = np.asarray(lens, dtype=np.float64).reshape(len(lens), -1)
        return np.all((lens >= self.lo[e]) & (lens <= self.hi[e]), axis=1)


def _validate_lens(lens: np.ndarray) -> np.ndarray:
    lens = np.asarray(lens, dtype=np.float64)
    if lens.ndim == 1:
        lens = lens[:, None]
    if lens.ndim != 2 or lens.shape[1] not in (1, 2):
        raise AdvtopoError(f"lens must have 1 or 2 columns (1-D or 2-D cover); got shape {lens.shape}")
    if not np.all(np.isfinite(lens)):
        raise AdvtopoError("the lens has NaN or infinite values; clean the input or choose another lens")
    return lens


def _check_not_constant(lens: np.ndarray) -> None:
    for dim in range(lens.shape[1]):
        col = lens[:, dim]
        if col.min() == col.max():
            raise AdvtopoError(
                f"the lens is constant (every point has value {col[0]:.6g} in dimension {dim}); "
                "a cover of a single value is meaningless: choose another lens"
            )


class Cover:
    """Base class: ``fit(lens) -> CoverElements``."""

    kind = "base"

    def __init__(self, n_intervals: int | tuple = 10, overlap: float | tuple = 0.3) -> None:
        self.n_intervals = n_intervals
        self.overlap = overlap

    def get_params(self) -> dict:
        return {"cover": self.kind, "n_intervals": self.n_intervals, "overlap": self.overlap}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_intervals={self.n_intervals!r}, overlap={self.overlap!r})"

    def fit(self, lens: np.ndarray) -> CoverElements:
        lens = _validate_lens(lens)
        ns, ps = _check_intervals_overlap(self.n_intervals, self.overlap, lens.shape[1])
        n_points = lens.shape[0]
        if n_points == 0:
            raise AdvtopoError("cannot build a cover of 0 points")
        for n in ns:
            if n > n_points:
                raise AdvtopoError(
                    f"n_intervals={n} is more than the number of points ({n_points}); "
                    f"allowed: 1..{n_points}"
                )
        _check_not_constant(lens)
        per_dim = [self._intervals(lens[:, d], ns[d], ps[d]) for d in range(lens.shape[1])]
        return self._product(per_dim, ns, ps)

    def _product(self, per_dim: list[tuple[np.ndarray, np.ndarray]], ns, ps) -> CoverElements:
        grid = list(product(*[range(len(lo)) for lo, _ in per_dim]))
        lo = np.array([[per_dim[d][0][g[d]] for d in range(len(g))] for g in grid], dtype=np.float64)
        hi = np.array([[per_dim[d][1][g[d]] for d in range(len(g))] for g in grid], dtype=np.float64)
        params = {"n_intervals": ns if len(ns) > 1 else ns[0], "overlap": ps if len(ps) > 1 else ps[0]}
        return CoverElements(lo=lo, hi=hi, grid=[tuple(int(i) for i in g) for g in grid], kind=self.kind, params=params)

    def _intervals(self, values: np.ndarray, n: int, p: float) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


@COVERS.register("uniform")
class UniformCover(Cover):
    """n equal closed intervals spanning [min, max]; adjacent ones share the fraction ``overlap`` of their length.

    length = (max - min) / (n - (n - 1) * overlap); step = length * (1 - overlap);
    interval k = [min + k * step, min + k * step + length], k = 0..n-1 (the last ends at max).
    """

    kind = "uniform"

    def _intervals(self, values, n, p):
        m, M = float(values.min()), float(values.max())
        length = (M - m) / (n - (n - 1) * p)
        step = length * (1.0 - p)
        k = np.arange(n, dtype=np.float64)
        lo = m + k * step
        hi = lo + length
        lo[0] = m
        hi[-1] = M  # exact ends: rounding never drops the extreme points
        return lo, hi


@COVERS.register("balanced")
class BalancedCover(Cover):
    """Uniform intervals in *rank* space: each interval holds about the same number of points.

    With sorted values v_0 <= ... <= v_{N-1}, the uniform arithmetic on [0, N-1] gives rank
    intervals [a_k, b_k]; the value interval is [v_ceil(a_k), v_floor(b_k)] (ties are included).
    """

    kind = "balanced"

    def _intervals(self, values, n, p):
        v = np.sort(values)
        N = len(v)
        length = (N - 1) / (n - (n - 1) * p)
        step = length * (1.0 - p)
        a = np.arange(n) * step
        b = a + length
        ia = np.clip(np.ceil(a - 1e-9).astype(np.int64), 0, N - 1)
        ib = np.clip(np.floor(b + 1e-9).astype(np.int64), 0, N - 1)
        ib = np.maximum(ib, ia)
        ib[-1] = N - 1
        return v[ia].astype(np.float64), v[ib].astype(np.float64)


@COVERS.register("kmapper")
class KMapperCover(Cover):
    """Bit-for-bit KeplerMapper 2.1.0 ``Cover(n_cubes=n_intervals, perc_overlap=overlap)``.

    radius = range / (2 n (1 - p)); centers = linspace(min + inset, max - inset, n) with
    inset = (range - (n-1)/n * range) / 2; element = [center - radius, center + radius].
    Elements holding no point are dropped (as KeplerMapper does) but keep their grid index.
    """

    kind = "kmapper"

    def fit(self, lens: np.ndarray) -> CoverElements:
        lens = _validate_lens(lens)
        n_dims = lens.shape[1]
        ns, ps = _check_intervals_overlap(self.n_intervals, self.overlap, n_dims)
        if lens.shape[0] == 0:
            raise AdvtopoError("cannot build a cover of 0 points")
        for n in ns:
            if n > lens.shape[0]:
                raise AdvtopoError(
                    f"n_intervals={n} is more than the number of points ({lens.shape[0]}); allowed: 1..{lens.shape[0]}"
                )
        _check_not_constant(lens)
        # mirror kmapper/cover.py line by line so the floating-point results are identical
        n_cubes = np.array(ns) if n_dims > 1 else np.repeat(ns[0], n_dims)
        perc_overlap = np.array(ps) if n_dims > 1 else np.repeat(ps[0], n_dims)
        bounds = (np.min(lens, axis=0), np.max(lens, axis=0))
        ranges = bounds[1] - bounds[0]
        inner_range = ((n_cubes - 1) / n_cubes) * ranges
        inset = (ranges - inner_range) / 2
        with np.errstate(divide="ignore"):
            radius = ranges / (2 * (n_cubes) * (1 - perc_overlap))
        zip_items = list(bounds)
        zip_items.extend([n_cubes, inset])
        centers_per_dimension = [np.linspace(b + r, c - r, num=n) for b, c, n, r in zip(*zip_items)]
        grid_ranges = [range(len(c)) for c in centers_per_dimension]
        centers = [np.array(c) for c in product(*centers_per_dimension)]
        grid = [tuple(int(i) for i in g) for g in product(*grid_ranges)]
        lo = np.array([c - radius for c in centers], dtype=np.float64)
        hi = np.array([c + radius for c in centers], dtype=np.float64)
        # drop empty cubes like kmapper's Cover.transform
        keep = [e for e in range(len(grid)) if np.any(np.all((lens >= lo[e]) & (lens <= hi[e]), axis=1))]
        params = {"n_intervals": ns if n_dims > 1 else ns[0], "overlap": ps if n_dims > 1 else ps[0]}
        return CoverElements(lo=lo[keep], hi=hi[keep], grid=[grid[e] for e in keep], kind=self.kind, params=params)


def make_cover(cover: str | Cover = "uniform", n_intervals: Any = 10, overlap: Any = 0.3) -> Cover:
    """A cover from a name (``uniform``, ``kmapper``, ``balanced``) or a Cover instance."""
    if isinstance(cover, Cover):
        return cover
    check_choice("cover", cover, COVERS.names())
    return COVERS.get(cover)(n_intervals=n_intervals, overlap=overlap)
