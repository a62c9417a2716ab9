"""Small shared argument checks: every message names the parameter and what it allows."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from advtopo.errors import AdvtopoError


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    allowed = list(allowed)
    if value not in allowed:
        raise AdvtopoError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def check_int(name: str, value: Any, minimum: int | None = None, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise AdvtopoError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise AdvtopoError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def check_float(name: str, value: Any, minimum: float | None = None, maximum: float | None = None,
                allow_none: bool = False, allow_inf: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise AdvtopoError(f"{name} must be a number, got {value!r}") from None
    if np.isnan(f) or (np.isinf(f) and not allow_inf):
        raise AdvtopoError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and f < minimum:
        raise AdvtopoError(f"{name} must be >= {minimum}, got {value!r}")
    if maximum is not None and f > maximum:
        raise AdvtopoError(f"{name} must be <= {maximum}, got {value!r}")
    return f


def check_point_cloud(name: str, X: Any, min_points: int = 1) -> np.ndarray:
    """A 2-D finite float array with at least ``min_points`` rows (torch tensors accepted)."""
    if hasattr(X, "detach"):
        X = X.detach().cpu().numpy()
    X = np.asarray(X)
    if X.ndim != 2:
        raise AdvtopoError(f"{name} must be a 2-D array [n_points, n_features], got shape {X.shape}")
    if X.shape[0] < min_points:
        raise AdvtopoError(f"{name} must have at least {min_points} point(s), got {X.shape[0]}")
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float64)
    if not np.all(np.isfinite(X)):
        raise AdvtopoError(f"{name} must hold finite values (found NaN or inf)")
    return X


def check_diagram(name: str, D: Any) -> np.ndarray:
    """A persistence diagram: float array [n, 2] of (birth, death); empty allowed."""
    D = np.asarray(D, dtype=np.float64)
    if D.size == 0:
        return np.zeros((0, 2))
    if D.ndim != 2 or D.shape[1] != 2:
        raise AdvtopoError(f"{name} must be an array of shape [n, 2] (birth, death), got {D.shape}")
    if np.isnan(D).any():
        raise AdvtopoError(f"{name} must not contain NaN")
    return D
