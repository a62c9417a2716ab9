"""Recompute a mapper graph on demand (``POST /api/recompute``).

Needs the run's stored activations (read by ``advtopo.rundir.Run.point_cloud``); a run
without them answers 501 with a message that names what is missing.

Results are kept by ``Run.add_graph`` under ``RUN_DIR/app-cache/recompute/`` and appear in
``/api/index`` as extra graphs (``"recomputed": true``), so they survive a restart.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import threading
import time
import uuid
from typing import Any

import numpy as np

from advtopo.errors import AdvtopoError
from advtopo.mapper import Mapper
from advtopo.rundir import ArtefactMissing, GraphEntry

from .data import BadRequest, NotFound, RunData

FALLBACK_LENSES = ("l2norm", "pca", "pc1", "mean", "max", "sum", "density")


def _lenses() -> tuple[str, ...]:
    try:
        from advtopo.mapper import LENSES  # type: ignore[attr-defined]

        return tuple(n for n in LENSES if n not in ("metadata", "precomputed"))
    except Exception:  # noqa: BLE001
        return FALLBACK_LENSES


class RecomputeUnavailable(Exception):
    """-> HTTP 501."""


def stored_point_cloud(run: RunData, entry: GraphEntry) -> np.ndarray:
    """The graph's point cloud (kept for the graphs viewed last), for the views that need a graph's
    activations (feature visualisation, embedding); RecomputeUnavailable says what the run lacks."""
    try:
        return run.reader.cached_point_cloud(entry)
    except AdvtopoError as exc:  # no stored activations, a missing chunk: 'not available' with the reason
        raise RecomputeUnavailable(f"cannot read the activations of graph {entry.id!r}: {exc}") from None


def validate(params: dict, run: RunData) -> dict:
    gid = params.get("graph")
    if not isinstance(gid, str):
        raise BadRequest("'graph' (a graph id) is required")
    entry = run.reader.graph_entry(gid)  # ArtefactMissing -> 404
    out: dict[str, Any] = {"graph": gid, "entry": entry}
    base = dict(entry.params or {})
    n = params.get("n_intervals", base.get("n_intervals", 10))
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 1000:
        raise BadRequest("n_intervals must be an integer in 1..1000")
    ov = params.get("overlap", base.get("overlap", 0.3))
    if not isinstance(ov, (int, float)) or isinstance(ov, bool) or not 0 <= ov < 1:
        raise BadRequest("overlap must be a number in [0, 1)")
    eps = params.get("eps", base.get("eps", "auto"))
    if not (eps == "auto" or (isinstance(eps, (int, float)) and not isinstance(eps, bool) and eps > 0)):
        raise BadRequest("eps must be a positive number or 'auto'")
    lens = params.get("lens", base.get("lens", "l2norm"))
    lenses = _lenses()
    if not isinstance(lens, str) or lens not in lenses:
        raise BadRequest(f"lens must be one of {', '.join(lenses)}")
    out.update(n_intervals=n, overlap=float(ov), eps=eps, lens=lens)
    return out


class RecomputeManager:
    def __init__(self, run: RunData):
        self.run = run
        self.jobs: dict[str, dict] = {}
        self._lock = threading.Lock()

    def available(self) -> dict:
        if not self.run.reader.index_record.activations:
            return {"available": False, "reason": "this run stores no activations to rebuild graphs from"}
        return {"available": True}

    def submit(self, params: dict) -> dict:
        p = validate(params, self.run)
        e = p["entry"]
        try:
            self.run.reader.point_cloud_sources(e)
        except ArtefactMissing as exc:
            raise RecomputeUnavailable(f"recompute is unavailable: {exc}") from None
        key = json.dumps({k: p[k] for k in ("graph", "n_intervals", "overlap", "eps", "lens")}, sort_keys=True)
        new_id = f"{e.source or e.id}__r{hashlib.sha1(key.encode()).hexdigest()[:8]}"
        job_id = uuid.uuid4().hex[:12]
        job = {"id": job_id, "state": "queued", "progress": 0.0, "message": "queued", "graph_id": new_id,
               "started": time.time()}
        with self._lock:
            self.jobs[job_id] = job
        threading.Thread(target=self._work, args=(job, p, new_id), daemon=True).start()
        return dict(job)

    def _work(self, job: dict, p: dict, new_id: str) -> None:
        e = p["entry"]
        try:
            if any(g.id == new_id for g in self.run.reader.graph_entries()):
                job.update(state="done", progress=1.0, message="cached")
                return
            job.update(state="running", progress=0.05, message="loading activations")
            base = self.run.reader.graph(e.id)
            pts = base.get("points", {})
            X = self.run.reader.point_cloud(e)
            md = {k: np.asarray(pts[k]) for k in ("label", "prediction", "is_adversarial", "sample_id") if k in pts}
            if any(len(v) != len(X) for v in md.values()):
                raise ValueError("the stored activations do not match the graph's points")
            job.update(progress=0.3, message=f"building the graph ({len(X)} points)")
            allowed = set(inspect.signature(Mapper).parameters)
            kw = {k: v for k, v in (base.get("params") or e.params or {}).items() if k in allowed
                  and isinstance(v, (str, int, float, bool)) and k not in ("backend", "device")}
            kw.update(lens=p["lens"], n_intervals=p["n_intervals"], overlap=p["overlap"], eps=p["eps"])
            graph = Mapper(**kw).fit(X, metadata=md)
            d = graph.to_dict() if hasattr(graph, "to_dict") else graph
            job.update(progress=0.9, message="saving")
            params = {"lens": p["lens"], "n_intervals": p["n_intervals"], "overlap": p["overlap"], "eps": p["eps"]}
            st = d.get("stats", {})
            stats = {k: st.get(k) for k in ("n_nodes", "n_edges", "n_components", "n_noise", "mean_purity",
                                            "mean_entropy") if k in st}
            self.run.reader.add_graph(GraphEntry(id=new_id, model=e.model, layer=e.layer, attack=e.attack, eps=e.eps,
                                                 path="", rows=e.rows, params=params, stats=stats,
                                                 source=e.source or e.id), d)
            job.update(state="done", progress=1.0, message="done")
        except Exception as exc:  # noqa: BLE001  (reported to the client as the job's message)
            job.update(state="error", message=f"{type(exc).__name__}: {exc}")

    def status(self, job_id: str) -> dict:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound("unknown job")
        return dict(job)
