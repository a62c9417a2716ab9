"""TopoAct's views over a run: the cross-layer flow between two graphs of the same samples, a
graph's loops and branch points, and their counts over every graph of the run (the Summary).

The computations are :mod:`advtopo.mapper.shape`'s; this module checks what the request
names (two graphs of the same model, attack and eps; a Jaccard threshold in [0, 1]) and keeps
the answers in memory, keyed by the graph files' identity (path, size, modification time), so
a graph published again is computed again. Nothing is written to the run.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from advtopo.mapper import cross_layer_flow, graph_shape, shape_counts
from advtopo.mapper.shape import ROWS
from advtopo.rundir import ArtefactInvalid, ArtefactMissing
from advtopo.rundir.layout import eps_equal

from .data import BadRequest, RunData

MAX_CACHED = 256


def _min_jaccard(value: str | float | None) -> float:
    try:
        v = float(value if value not in (None, "") else 0.0)
    except (TypeError, ValueError):
        raise BadRequest(f"min_jaccard={value!r} must be a number from 0 to 1") from None
    if not 0.0 <= v <= 1.0:
        raise BadRequest(f"min_jaccard={value!r} must be a number from 0 to 1")
    return round(v, 4)


class TopoActService:
    """``flow(from, to, rows)``, ``shape(graph, min_jaccard)``, ``summary()`` (thread-safe)."""

    def __init__(self, run: RunData, max_cached: int = MAX_CACHED) -> None:
        self.run = run
        self._max = max_cached
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple, Any] = OrderedDict()

    def _stamp(self, graph_id: str) -> tuple:
        """What identifies the graph's current file (ArtefactMissing -> 404 for an unknown id)."""
        e = self.run.reader.graph_entry(graph_id)
        st = self.run.reader.safe_path(e.path).stat()
        return graph_id, e.path, st.st_size, st.st_mtime_ns

    def _cached(self, key: tuple, compute) -> Any:
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        value = compute()
        with self._lock:
            self._cache[key] = value
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return value

    # ---- one graph / one pair ------------------------------------------------------------
    def flow(self, from_id: str, to_id: str, rows: str = "all") -> dict:
        """How the members of each node of graph ``from_id`` spread over the nodes of ``to_id``."""
        if rows not in ROWS:
            raise BadRequest(f"rows={rows!r} is not valid; allowed: {', '.join(ROWS)}")
        if from_id == to_id:
            raise BadRequest("from and to name the same graph; the flow is between two layers' graphs")
        a, b = self.run.reader.graph_entry(from_id), self.run.reader.graph_entry(to_id)
        differ = [k for k in ("model", "attack") if getattr(a, k) != getattr(b, k)]
        if not eps_equal(a.eps, b.eps):
            differ.append("eps")
        if differ:
            raise BadRequest(f"graphs {from_id!r} and {to_id!r} differ in {', '.join(differ)}: the flow needs "
                             "two graphs of the same samples (same model, attack and eps, another layer)")
        key = ("flow", self._stamp(from_id), self._stamp(to_id), rows)

        def compute() -> dict:
            res = cross_layer_flow(self.run.reader.graph(from_id), self.run.reader.graph(to_id), rows)
            return {"from": from_id, "to": to_id, "from_layer": a.layer, "to_layer": b.layer, **res}

        return self._cached(key, compute)

    def shape(self, graph_id: str, min_jaccard: str | float | None = 0.0) -> dict:
        """The graph's loops (a cycle basis) and branch points over the edges with Jaccard >= min_jaccard."""
        mj = _min_jaccard(min_jaccard)
        key = ("shape", self._stamp(graph_id), mj)
        return self._cached(key, lambda: {"graph": graph_id, **graph_shape(self.run.reader.graph(graph_id),
                                                                              min_jaccard=mj)})

    # ---- every graph ---------------------------------------------------------------------
    def summary(self) -> dict:
        """Loops and branch points of every study graph (recomputed ones left out), one row each:
        ``{"graphs": [{id, model, layer, attack, eps, mapper_set, rows, n_nodes, n_edges,
        n_components, n_loops, n_branch_points}]}``; a graph that cannot be read has ``error`` instead
        of the counts (the reader's message: the file and what to run)."""
        out = []
        for e in self.run.reader.graph_entries():
            if e.recomputed:
                continue
            row = {"id": e.id, "model": e.model, "layer": e.layer, "attack": e.attack, "eps": e.eps,
                   "mapper_set": e.mapper_set, "rows": e.rows}
            try:
                row.update(self._cached(("counts", self._stamp(e.id)), lambda e=e: shape_counts(self.run.reader.graph(e.id))))
            except (ArtefactMissing, ArtefactInvalid) as exc:  # one missing or damaged graph: its row says so
                row["error"] = str(exc)
            out.append(row)
        return {"graphs": out}
