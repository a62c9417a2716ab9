"""Recompute a mapper graph on demand (``POST /api/recompute``).

The graph is built by the study's own builder (``advtopo.study.graphs.build_graph``) from the
run's stored activations, starting from the parameters the study built it with (the graph
entry's ``build``) and checked by the Mapper's rules (``MapperParams``); a run without stored
activations answers 501 with a message that names what is missing.

Rebuilds are jobs run by two threads; at most ``max_queued`` wait (more are answered 429), each
answer says the job's place in line. Results are kept by ``Run.add_graph`` under
``RUN_DIR/app-cache/recompute/`` and appear in ``/api/index`` as extra graphs
(``"recomputed": true``), so they survive a restart; that cache is bounded (``AppCache``).
"""
from __future__ import annotations

import hashlib
import json
import queue
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from advtopo.errors import AdvtopoError
from advtopo.mapper import MapperParams, data_lenses
from advtopo.rundir import ArtefactMissing, GraphEntry
from advtopo.study.graphs import RowBlock, build_graph, mapper_params

from .cache import AppCache
from .data import BadRequest, NotFound, RunData

REQUEST_KEYS = ("lens", "n_intervals", "overlap", "eps")  # what a rebuild may change


class RecomputeUnavailable(Exception):
    """-> HTTP 501."""


def stored_point_cloud(run: RunData, entry: GraphEntry) -> np.ndarray:
    """The graph's point cloud (kept for the graphs viewed last), for the views that need a graph's
    activations (feature visualisation, embedding); RecomputeUnavailable says what the run lacks.
    Damaged activations (a missing or corrupt chunk) are an error naming the chunk, not 'unavailable'."""
    try:
        return run.reader.cached_point_cloud(entry)
    except ArtefactMissing as exc:  # this run stores no such activations: 'not available' with the reason
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


SAFE_ID = re.compile(r"[\w+=@-][\w.+=@-]*")  # what a graph id may hold to name a cache file
MAX_ID_BYTES = 200


def check_cache_id(graph_id: str) -> str:
    """``graph_id`` when it can name a file of the app's cache (letters, digits, ``. _ + = @ -``, not
    starting with '.', at most 200 bytes), else BadRequest: index.json's ids are not trusted as paths."""
    if not (isinstance(graph_id, str) and SAFE_ID.fullmatch(graph_id) and len(graph_id.encode()) <= MAX_ID_BYTES):
        raise BadRequest(f"graph id {str(graph_id)[:80]!r} cannot name a cache file: a rebuild needs an id of "
                         f"letters, digits and . _ + = @ - (not starting with '.', at most {MAX_ID_BYTES} bytes)")
    return graph_id


class Busy(Exception):
    """-> HTTP 429: the server is computing as much as it takes; the client may try again later."""


class ComputeGate:
    """At most one computation at a time, and at most ``max_waiting`` requests waiting for it (the
    others are answered Busy at once, so slow computations cannot tie up the server's workers)."""

    def __init__(self, what: str, max_waiting: int = 4) -> None:
        self.what = what
        self._slots = threading.BoundedSemaphore(max_waiting + 1)
        self._lock = threading.Lock()

    @contextmanager
    def __call__(self) -> Iterator[None]:
        if not self._slots.acquire(blocking=False):
            raise Busy(f"the server is busy computing {self.what}; try again in a few seconds")
        try:
            with self._lock:
                yield
        finally:
            self._slots.release()


class RecomputeManager:
    """Rebuilds run as jobs on ``workers`` threads; at most ``max_queued`` wait (more: Busy, 429).
    The same rebuild asked again while queued or running is the same job; finished jobs are kept
    for ``GET /api/recompute/<job>`` (the last ``max_jobs``)."""

    def __init__(self, run: RunData, cache: AppCache | None = None, workers: int = 2, max_queued: int = 32,
                 max_jobs: int = 256) -> None:
        self.run = run
        self.cache = cache or AppCache(run)
        self.jobs: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._waiting: list[str] = []  # queued job ids, first in line first
        self._workers = workers
        self._threads: list[threading.Thread] = []
        self.max_queued = max_queued
        self.max_jobs = max_jobs

    def available(self) -> dict:
        if not self.run.reader.index_record.activations:
            return {"available": False, "reason": "this run stores no activations to rebuild graphs from"}
        return {"available": True}

    def submit(self, params: dict) -> dict:
        """Queue a rebuild (checked first: BadRequest / NotFound / RecomputeUnavailable / Busy)."""
        p = validate(params, self.run)
        e = p["entry"]
        check_cache_id(e.source or e.id)  # index.json's ids are not trusted as file names
        try:
            self.run.reader.point_cloud_sources(e)
        except ArtefactMissing as exc:
            raise RecomputeUnavailable(f"recompute is unavailable: {exc}") from None
        key = json.dumps({"graph": p["graph"], **p["request"]}, sort_keys=True)
        new_id = f"{e.source or e.id}__r{hashlib.sha1(key.encode()).hexdigest()[:8]}"
        with self._lock:
            for job in self.jobs.values():
                if job["graph_id"] == new_id and job["state"] in ("queued", "running"):
                    return self._view(job)
            if len(self._waiting) >= self.max_queued:
                raise Busy(f"{len(self._waiting)} rebuilds are waiting already; try again when one has finished")
            job = {"id": uuid.uuid4().hex[:12], "state": "queued", "progress": 0.0, "message": "queued",
                   "graph_id": new_id, "started": time.time()}
            self.jobs[job["id"]] = job
            self._waiting.append(job["id"])
            self._forget_old_jobs()
            while len(self._threads) < self._workers:
                t = threading.Thread(target=self._run_jobs, name="advtopo-recompute", daemon=True)
                t.start()
                self._threads.append(t)
            view = self._view(job)
        self._queue.put((job, p, new_id))
        return view

    def _view(self, job: dict) -> dict:
        out = dict(job)
        if job["state"] == "queued" and job["id"] in self._waiting:
            out["position"] = self._waiting.index(job["id"]) + 1  # 1: next to run
        return out

    def _forget_old_jobs(self) -> None:
        done = [j for j, job in self.jobs.items() if job["state"] in ("done", "error")]
        for j in done[: max(0, len(self.jobs) - self.max_jobs)]:
            del self.jobs[j]

    def _run_jobs(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            job, p, new_id = item
            with self._lock:
                self._waiting.remove(job["id"])
            self._work(job, p, new_id)

    def close(self) -> None:
        """Stop the job threads after the jobs already queued."""
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)

    def _work(self, job: dict, p: dict, new_id: str) -> None:
        e = p["entry"]
        try:
            if any(g.id == new_id for g in self.run.reader.graph_entries()):
                self.cache.used("recompute", new_id)
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
            self.cache.used("recompute", new_id)
            self.cache.trim("recompute", keep=(new_id,))
            job.update(state="done", progress=1.0, message="done")
        except Exception as exc:  # noqa: BLE001  (reported to the client as the job's message)
            job.update(state="error", message=f"{type(exc).__name__}: {exc}")

    def status(self, job_id: str) -> dict:
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                raise NotFound("unknown job")
            return self._view(job)
