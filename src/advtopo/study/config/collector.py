"""``ConfigCheck``: gathers a config's problems so that all of them are reported at once."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from advtopo.errors import AdvtopoError, ConfigErrors


class ConfigCheck:
    """Collects a config's problems so that all of them are reported at once.

    Each check runs under the path of what it checks (``attacks[1].alpha``). It is skipped
    when that path, one below it or one it ``needs`` already failed: its message would only
    repeat the first problem, or be about a default standing in for a value the user got
    wrong. ``needs`` may use ``[*]`` for "any element" (``models[*].name``)."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.failed: list[str] = []

    def add(self, path: str, message: str) -> None:
        """A problem at ``path``."""
        if message not in self.problems:
            self.problems.append(message)
        self.fail(path)

    def report(self, path: str, message: str) -> None:
        """A problem at ``path`` found by a check that reads values already built: skipped when
        the path (or one below it) failed while building (a default stands in for its value)."""
        if not self.blocked(path):
            self.add(path, message)

    def fail(self, path: str) -> None:
        """Mark ``path`` failed without a message of its own (already reported otherwise)."""
        self.failed.append(path)

    def blocked(self, *paths: str) -> bool:
        return any(_overlaps(f, p) for f in self.failed for p in paths)

    def run(self, path: str, fn: Callable[..., Any], *args: Any, needs: tuple[str, ...] = (), **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``; an AdvtopoError becomes a problem at ``path``. Returns
        fn's result, or None when it failed or was skipped."""
        if self.blocked(path, *needs):
            return None
        try:
            return fn(*args, **kwargs)
        except ConfigErrors as exc:
            for p in exc.problems:
                self.add(path, p)
        except AdvtopoError as exc:
            self.add(path, str(exc))
        return None

    def raise_if_any(self) -> None:
        if self.problems:
            raise ConfigErrors(self.problems)


def _overlaps(failed: str, need: str) -> bool:
    """Whether a failure at ``failed`` concerns ``need``: the same path, one below it, or
    one above it (a whole list or table that failed)."""
    rx = re.escape(need).replace(r"\[\*\]", r"\[\d+\]")
    if re.fullmatch(rx + r"(?:[.\[].*)?", failed):
        return True
    generic = re.sub(r"\[\d+\]", "[*]", failed)
    return any(need.startswith(f + sep) for f in (failed, generic) for sep in (".", "["))
