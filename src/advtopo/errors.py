"""One exception type for user errors.

The CLI turns an :class:`AdvtopoError` into a one-line message and exit code 2 (no
traceback); anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class AdvtopoError(ValueError):
    """A user-facing error: bad input, a missing file, an unknown name."""


class ConfigErrors(AdvtopoError):
    """Every problem found in an input at once (a study config), one line each.

    Why a list: a study that fails on its third mistake after the first two were fixed one run
    at a time wastes the user's time; all problems are found before any work and reported
    together. ``problems`` holds the lines; ``str()`` joins them with newlines.
    """

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = [" ".join(str(p).split("\n")) for p in problems]
        super().__init__("\n".join(self.problems))

    def __reduce__(self):  # pickles with its list (Dask sends exceptions between processes)
        return (type(self), (self.problems,))


def did_you_mean(name: str, allowed: Iterable[str]) -> str:
    """Return ' (did you mean X?)' when a close match exists, else ''."""
    match = difflib.get_close_matches(str(name), [str(a) for a in allowed], n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def check_choice(param: str, value: str, allowed: Iterable[str]) -> str:
    """Validate that ``value`` is one of ``allowed``; raise an error naming both."""
    allowed = list(allowed)
    if value not in allowed:
        raise AdvtopoError(
            f"{param}={value!r} is not valid{did_you_mean(value, allowed)}; "
            f"allowed: {', '.join(map(str, allowed))}"
        )
    return value
