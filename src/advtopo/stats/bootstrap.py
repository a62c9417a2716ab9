"""Percentile bootstrap confidence intervals over samples (or over groups of rows).

Every statistic advtopo reports in a study comes with a CI from :func:`bootstrap_ci`. The
resampling is defined so that a plain Python loop can reproduce it exactly: replicate ``b``
draws ``rng.integers(0, n, size=n)`` (``n`` samples, or ``n`` groups) from
``numpy.random.default_rng(seed)``, in order ``b = 0, 1, ...``. The mean is computed for all
replicates at once (block by block, so memory stays bounded); any other statistic is called
once per replicate.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from advtopo.errors import AdvtopoError

_BLOCK_ELEMENTS = 1 << 22  # indices per vectorised block (32 MiB of int64)


@dataclass(frozen=True)
class CI:
    """A point estimate with its bootstrap interval [lo, hi] at ``level``; ``n`` samples (or
    groups) resampled ``n_boot`` times."""

    value: float
    lo: float
    hi: float
    level: float
    n: int
    n_boot: int

    def to_dict(self, short: bool = False) -> dict[str, Any]:
        """All fields, or only value / lo / hi (``short``, the form the study JSON files use:
        level and n_boot are stated once in their ``params``)."""
        d = asdict(self)
        return {k: d[k] for k in ("value", "lo", "hi")} if short else d


def _as_arrays(data: Any) -> tuple[tuple[np.ndarray, ...], bool]:
    """(arrays, is_tuple): one array, or a tuple of arrays aligned on their first axis."""
    if isinstance(data, tuple):
        arrays = tuple(np.asarray(a) for a in data)
        if not arrays:
            raise AdvtopoError("bootstrap_ci got an empty tuple; give an array or a tuple of aligned arrays")
        lens = {len(a) if a.ndim else -1 for a in arrays}
        if len(lens) != 1 or -1 in lens:
            raise AdvtopoError(f"bootstrap_ci: the arrays of the tuple must have the same number of rows, "
                               f"got {[a.shape for a in arrays]}")
        return arrays, True
    arr = np.asarray(data)
    if arr.ndim == 0:
        raise AdvtopoError("bootstrap_ci needs one value per sample (an array with at least one axis), got a scalar")
    return (arr,), False


def _interval(boot: np.ndarray, level: float) -> tuple[float, float]:
    alpha = (1.0 - level) / 2.0
    lo, hi = np.percentile(boot, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return float(lo), float(hi)


def bootstrap_ci(data: Any, statistic: Callable[..., Any] = np.mean, *, n_boot: int = 1000, level: float = 0.95,
                 seed: int = 0, groups: Any = None) -> CI:
    """Percentile bootstrap CI of ``statistic`` over the rows of ``data``.

    Why: a number measured on one subset of test images (an accuracy, a mean purity) moves
    when the subset changes; the interval says by how much, so a difference between two eps
    can be read as real or not.

    data: an array (rows are samples) or a tuple of arrays aligned on their rows; the
        statistic is called as ``statistic(rows)`` or ``statistic(*rows_of_each_array)``.
    groups: optional per-row group ids; whole groups are resampled (a cluster bootstrap),
        e.g. ``sample_id`` when a sample has a clean and an adversarial row.
    Returns ``CI(value, lo, hi, level, n, n_boot)`` where ``value`` is the statistic on all
    rows and ``n`` is the number of samples (or groups). ``statistic=np.mean`` on one array
    is vectorised.
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise AdvtopoError(f"n_boot={n_boot!r} must be an integer >= 1")
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.0 < float(level) < 1.0:
        raise AdvtopoError(f"level={level!r} must be a number in (0, 1), e.g. 0.95")
    arrays, is_tuple = _as_arrays(data)
    n_rows = len(arrays[0])
    if n_rows == 0:
        raise AdvtopoError("bootstrap_ci got no samples (0 rows); there is nothing to resample")
    rng = np.random.default_rng(seed)
    call = (lambda parts: statistic(*parts)) if is_tuple else (lambda parts: statistic(parts[0]))
    value = float(call(arrays))
    fast_mean = statistic is np.mean and not is_tuple and arrays[0].ndim == 1
    if groups is None:
        n = n_rows
        if fast_mean:
            x = arrays[0].astype(np.float64, copy=False)
            boot = np.empty(n_boot)
            per = max(1, _BLOCK_ELEMENTS // n)
            for start in range(0, n_boot, per):
                idx = np.stack([rng.integers(0, n, size=n) for _ in range(min(per, n_boot - start))])
                boot[start:start + len(idx)] = x[idx].mean(axis=1)
        else:
            boot = np.empty(n_boot)
            for b in range(n_boot):
                idx = rng.integers(0, n, size=n)  # one draw for all arrays: rows stay aligned
                boot[b] = float(call(tuple(a[idx] for a in arrays)))
    else:
        g = np.asarray(groups)
        if g.shape != (n_rows,):
            raise AdvtopoError(f"groups must hold one id per row ({n_rows}), got shape {g.shape}")
        uniq, codes = np.unique(g, return_inverse=True)
        codes = codes.reshape(-1)
        n = len(uniq)
        order = np.argsort(codes, kind="stable")
        starts = np.searchsorted(codes[order], np.arange(n + 1))
        if fast_mean:
            x = arrays[0].astype(np.float64, copy=False)
            sums = np.bincount(codes, weights=x, minlength=n)
            counts = np.bincount(codes, minlength=n).astype(np.float64)
            boot = np.empty(n_boot)
            for b in range(n_boot):
                gi = rng.integers(0, n, size=n)
                boot[b] = sums[gi].sum() / counts[gi].sum()
        else:
            boot = np.empty(n_boot)
            for b in range(n_boot):
                gi = rng.integers(0, n, size=n)
                rows = np.concatenate([order[starts[k]:starts[k + 1]] for k in gi])
                boot[b] = float(call(tuple(a[rows] for a in arrays)))
    lo, hi = _interval(boot, float(level))
    return CI(value=value, lo=lo, hi=hi, level=float(level), n=int(n), n_boot=int(n_boot))
