"""The value rules of the mapper's parameters, one function each.

Used by :class:`advtopo.mapper.MapperParams` (which checks every parameter before any work)
and by the components that can be built on their own (covers, clusterers), so a rule and
its message live in one place. ``key`` is the name the message gives the value
(``"overlap"``, or ``"mapper[1].overlap"`` for a study config).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from advtopo.errors import AdvtopoError


def is_int(value: Any) -> bool:
    """An integer (Python or numpy), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_number(value: Any) -> bool:
    """A real number (int or float, Python or numpy), not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def check_n_intervals(value: Any, key: str = "n_intervals") -> int:
    """An integer >= 1 (an integral float such as 10.0 is accepted, as the covers always did)."""
    if not is_number(value) or not math.isfinite(float(value)) or not float(value).is_integer() or value < 1:
        raise AdvtopoError(f"{key}={value!r} is not valid; allowed: an integer >= 1")
    return int(value)


def check_overlap(value: Any, key: str = "overlap") -> float:
    if not is_number(value) or not (0.0 <= float(value) < 1.0):
        raise AdvtopoError(f"{key}={value!r} is not valid; allowed: a number in [0, 1)")
    return float(value)


def check_eps(value: Any, key: str = "eps") -> float | str:
    """DBSCAN's eps / single linkage's threshold: a finite number > 0 or ``"auto"``."""
    if isinstance(value, str) and value == "auto":
        return value
    if not is_number(value) or not math.isfinite(float(value)) or not float(value) > 0:
        raise AdvtopoError(f"{key}={value!r} is not valid; allowed: a number > 0 or 'auto'")
    return float(value)


def check_int_at_least(value: Any, low: int, key: str) -> int:
    """An integer >= ``low`` (an integral float is accepted)."""
    if not is_number(value) or not math.isfinite(float(value)) or int(value) != value or value < low:
        raise AdvtopoError(f"{key}={value!r} is not valid; allowed: an integer >= {low}")
    return int(value)


def check_n_jobs(value: Any, key: str = "n_jobs") -> int:
    if not is_int(value) or value == 0 or value < -1:
        raise AdvtopoError(f"{key}={value!r} is not valid; allowed: -1 (all cores) or an integer >= 1")
    return int(value)


def is_default(value: Any, default: Any) -> bool:
    """``value`` is the default itself (same type and value); arrays and objects never are.
    What ``MapperParams.to_dict`` leaves out and ``repr(Mapper)`` does not print."""
    if value is None or default is None:
        return value is default
    return isinstance(value, (str, bool, int, float)) and type(value) is type(default) and value == default
