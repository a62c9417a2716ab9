"""The web app's caches in the run directory (``app-cache/{featurevis,embedding,recompute}``), bounded.

Feature visualisations, embeddings and recomputed graphs are kept so a second request is a
file read; without a bound, requests could fill the disk (37 recomputes wrote 15 MB). Each kind
keeps at most ``max_files`` entries and ``max_bytes`` bytes; past either, the least recently
used entries are removed (an entry is the files sharing a stem: a feature visualisation's
``.png`` and ``.json``; a recomputed graph also leaves the list of graphs). The use order is
kept in memory, started from the files' modification times, so a read does not touch a file.
Every read and write goes through :mod:`advtopo.rundir.confine`: no link below the run
directory is followed.
"""
from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass
from typing import Any

from advtopo.errors import AdvtopoError
from advtopo.rundir import confine, layout

from .data import RunData


@dataclass(frozen=True)
class CacheLimits:
    """How much each kind of app cache may hold (``advtopo serve --cache-files/--cache-mb``)."""

    max_files: int = 1000
    max_bytes: int = 256 * 2**20

    def __post_init__(self) -> None:
        for name in ("max_files", "max_bytes"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise AdvtopoError(f"cache limit {name}={v!r} must be a positive integer")


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0]


class AppCache:
    """Bounded, confined reads and writes of ``RUN_DIR/app-cache/<kind>/<name>`` (thread-safe)."""

    def __init__(self, run: RunData, limits: CacheLimits | None = None) -> None:
        self.run = run
        self.limits = limits or CacheLimits()
        self._lock = threading.Lock()
        self._clock = itertools.count(1)
        self._used: dict[str, dict[str, int]] = {kind: {} for kind in layout.APP_CACHES}  # stem -> last use

    def _rel(self, kind: str, name: str) -> str:
        return layout.app_cache_path(kind, name)

    def used(self, kind: str, name: str) -> None:
        """Note a use of the entry ``name`` (a file name or its stem), for the eviction order."""
        with self._lock:
            self._used[kind][_stem(name) if kind != "recompute" else name] = next(self._clock)

    def read(self, kind: str, name: str) -> bytes | None:
        """The cached file, or None when it is not cached."""
        data = confine.read_bytes(self.run.root, self._rel(kind, name))
        if data is not None:
            self.used(kind, name)
        return data

    def read_json(self, kind: str, name: str) -> Any | None:
        """The cached JSON file, or None when it is not cached (or unreadable: it is computed again)."""
        data = self.read(kind, name)
        try:
            return None if data is None else json.loads(data)
        except ValueError:
            return None

    def write(self, kind: str, name: str, data: bytes, keep: tuple[str, ...] = ()) -> None:
        """Cache ``data`` as ``name`` (atomically), then trim the kind to its limits (``keep``: stems
        that must stay, such as the other file of this entry)."""
        confine.write_bytes(self.run.root, self._rel(kind, name), data)
        self.used(kind, name)
        self.trim(kind, keep=(_stem(name), *keep))

    def write_json(self, kind: str, name: str, obj: Any) -> None:
        self.write(kind, name, (json.dumps(obj, allow_nan=False) + "\n").encode("utf-8"))

    def trim(self, kind: str, keep: tuple[str, ...] = ()) -> list[str]:
        """Remove the least recently used entries of ``kind`` beyond the limits; returns their stems."""
        with self._lock:
            files = confine.list_files(self.run.root, f"{layout.APP_CACHE_DIR}/{kind}")
            if kind == "recompute":
                files = [f for f in files if f[0] != "index.json"]
            entries: dict[str, list] = {}  # stem -> [names, bytes, last modified]
            for name, size, mtime in files:
                e = entries.setdefault(_stem(name), [[], 0, 0])
                e[0].append(name)
                e[1] += size
                e[2] = max(e[2], mtime)
            used = self._used[kind]
            order = sorted(entries, key=lambda s: (used.get(s, 0), entries[s][2]))  # oldest use first
            n_files, n_bytes = len(entries), sum(e[1] for e in entries.values())
            gone = []
            for stem in order:
                if n_files <= self.limits.max_files and n_bytes <= self.limits.max_bytes:
                    break
                if stem in keep:
                    continue
                gone.append(stem)
                n_files -= 1
                n_bytes -= entries[stem][1]
                used.pop(stem, None)
            if not gone:
                return []
            if kind == "recompute":
                listed = {g.id for g in self.run.reader.graph_entries() if g.recomputed}
                self.run.reader.drop_recomputed([s for s in gone if s in listed])
            for stem in gone:
                for name in entries[stem][0]:
                    confine.remove(self.run.root, self._rel(kind, name))
            return gone
