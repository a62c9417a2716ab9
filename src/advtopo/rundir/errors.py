"""What reading a run directory can go wrong with; all are user errors (AdvtopoError).

The web app answers :class:`ArtefactMissing` with 404 and :class:`ArtefactInvalid` with 400.
"""
from __future__ import annotations

import os

from advtopo.errors import AdvtopoError


class RunError(AdvtopoError):
    """A run directory cannot be read as asked."""


class RunNotFound(RunError):
    """The folder does not exist or holds no index.json (no study finished there)."""


class UnsupportedFormat(RunError):
    """index.json is in a format version this advtopo does not read."""


class ArtefactMissing(RunError):
    """The run has no such graph, array or file, or its index names a path outside the run."""


class ArtefactInvalid(RunError):
    """A file of the run exists but is not what the format says (broken JSON, wrong shape)."""


def repair_hint(root: str | os.PathLike[str]) -> str:
    """What to run about a damaged run directory (the end of every damage message)."""
    return (f"`advtopo verify {root}` lists every damaged file; `advtopo run CONFIG --out {root}` "
            "rewrites them (CONFIG: the study's config, copied to config.toml in the run)")


def damaged(root: str | os.PathLike[str], message: str) -> ArtefactInvalid:
    """ArtefactInvalid: ``message`` (which names the file) and what to run about it."""
    return ArtefactInvalid(f"{message}; {repair_hint(root)}")
