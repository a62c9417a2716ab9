"""Recompute a mapper graph on demand (``POST /api/recompute``).

The graph is built by the study's own builder (``advtopo.study.graphs.build_graph``) from the
run's stored activations, starting from the parameters the study built it with (the graph
entry's ``build``) and checked by the Mapper's rules (``MapperParams``); a run without stored
activations answers 501 with a message that names what is missing.

Results are kept by ``Run.add_graph`` under ``RUN_DIR/app-cache/recompute/`` and appear in
``/api/index`` as extra graphs (``"recomputed": true``), so they survive a restart.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from typing import Any

import numpy as np

from advtopo.errors import AdvtopoError
from advtopo.mapper import MapperParams, data_lenses
from advtopo.rundir import ArtefactMissing, GraphEntry
from advtopo.study.graphs import RowBlock, build_graph, mapper_params

from .data import BadRequest, NotFound, RunData

REQUEST_KEYS = ("lens", "n_intervals", "overlap", "eps")  # what a rebuild may change


class RecomputeUnavailable(Exception):
    """-> HTTP 501."""


def stored_point_cloud(run: RunData, entry: GraphEntry) -> np.ndarray:
    """The graph's point cloud (kept for the graphs viewed last), for the views that need a graph's
    activations (feature visualisation, embedding); RecomputeUnavailable says what the run lacks."""
    try:
        return run.reader.cached_point_cloud(entry)
    except AdvtopoError as exc:  # no stored activations, a missing chunk: 'not available' with the reason
        raise RecomputeUnavailable(f"cannot read the activations of graph {entry.id!r}: {exc}") from None


def study_params(run: RunData, entry: GraphEntry) -> tuple[MapperParams, int]:
    """The parameters and seed the study built ``entry`` with. Runs published before graph entries
    carried ``build`` fall back to the graph's stored parameters and the study's seed."""
    if entry.build:
        seed = int(entry.build["seed"])
        return mapper_params(entry.build["mapper"], seed, where="build"), seed
    seed = int((run.reader.manifest.get("seeds") or {}).get("study", 0))
    return MapperParams.from_graph_params(entry.params or {}).replace(random_state=seed % (2**31)), seed


def validate(request: dict, run: RunData) -> dict:
    """The request checked: its graph exists, it changes only REQUEST_KEYS, and the resulting
    parameters pass the Mapper's rules for this graph's number of rows (else 400 saying which)."""
    gid = request.get("graph")
    if not isinstance(gid, str):
        raise BadRequest("'graph' (a graph id) is required")
    entry = run.reader.graph_entry(gid)  # ArtefactMissing -> 404
    unknown = sorted(set(request) - {"graph", *REQUEST_KEYS})
    if unknown:
        raise BadRequest(f"unknown key(s) {', '.join(unknown)}; a rebuild may set {', '.join(REQUEST_KEYS)}")
    lens = request.get("lens")
    if lens is not None and lens not in data_lenses():
        raise BadRequest(f"lens must be one of {', '.join(data_lenses())}")
    base, seed = study_params(run, entry)
    try:
        changes = MapperParams.from_dict({k: request[k] for k in REQUEST_KEYS if k in request}, where="request")
        params = base.replace(**{k: getattr(changes, k) for k in REQUEST_KEYS if k in request})
        n_rows = len(run.reader.graph(gid).get("points", {}).get("sample_id", []))
        params.validate(n_samples=n_rows or None, where="request")
    except AdvtopoError as exc:
        raise BadRequest(str(exc)) from None
    return {"graph": gid, "entry": entry, "params": params, "seed": seed,
            "request": {k: getattr(params, k) for k in REQUEST_KEYS}}


def graph_blocks(run: RunData, entry: GraphEntry) -> list[RowBlock]:
    """The graph's rows from the run directory, as the study's builder takes them."""
    X = run.reader.point_cloud(entry)
    md = run.reader.point_metadata(entry)
    if len(md["label"]) != len(X):
        raise ValueError(f"the stored activations ({len(X)} rows) do not match the sample table "
                         f"({len(md['label'])} rows)")
    return [RowBlock(X, md["label"], md["prediction"], md["sample_id"], md["is_adversarial"])]


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
        key = json.dumps({"graph": p["graph"], **p["request"]}, sort_keys=True)
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
            blocks = graph_blocks(self.run, e)
            job.update(progress=0.3, message=f"building the graph ({len(blocks[0].X)} points)")
            rows = e.rows if e.rows not in (None, "both") and e.eps > 0 else None
            doc, stats = build_graph(blocks, p["params"], seed=p["seed"], rows=rows, where="request")
            job.update(progress=0.9, message="saving")
            build = {"mapper": p["params"].to_dict(include=("random_state",)), "seed": p["seed"]}
            self.run.reader.add_graph(GraphEntry(id=new_id, model=e.model, layer=e.layer, attack=e.attack, eps=e.eps,
                                                 path="", rows=e.rows, params=p["request"], stats=stats,
                                                 source=e.source or e.id, build=build), doc)
            job.update(state="done", progress=1.0, message="done")
        except Exception as exc:  # noqa: BLE001  (reported to the client as the job's message)
            job.update(state="error", message=f"{type(exc).__name__}: {exc}")

    def status(self, job_id: str) -> dict:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound("unknown job")
        return dict(job)
