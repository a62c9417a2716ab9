"""Recompute a mapper graph on demand (``POST /api/recompute``).

Needs the mapper engine (``advtopo.mapper.Mapper``) and the run's stored activations
(read through ``advtopo.study.open_run``). Both are imported lazily and guarded: when
either is missing the API answers 501 with a message that says which.

Results are written under ``RUN_DIR/app-cache/recompute/<graph_id>.json`` and appear in
``/api/index`` as extra graphs (``"recomputed": true``), so they are cached in the run.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from typing import Any

from .data import BadRequest, NotFound, RunData

LENSES = ("l2norm", "pca", "pc1", "mean", "max", "sum", "density", "tsne", "umap")


class RecomputeUnavailable(Exception):
    """-> HTTP 501."""


def _engine():
    try:
        from advtopo.mapper import Mapper  # type: ignore[attr-defined]
    except ImportError:
        return None
    return Mapper


def _open_run():
    try:
        from advtopo.study import open_run  # type: ignore[attr-defined]
    except ImportError:
        return None
    return open_run


def validate(params: dict, run: RunData) -> dict:
    gid = params.get("graph")
    if not isinstance(gid, str):
        raise BadRequest("'graph' (a graph id) is required")
    entry = run.graph_entry(gid)  # NotFound -> 404
    out: dict[str, Any] = {"graph": gid, "entry": entry}
    base = dict(entry.get("params") or {})
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
    if not isinstance(lens, str) or lens not in LENSES:
        raise BadRequest(f"lens must be one of {', '.join(LENSES)}")
    out.update(n_intervals=n, overlap=float(ov), eps=eps, lens=lens)
    return out


class RecomputeManager:
    def __init__(self, run: RunData):
        self.run = run
        self.jobs: dict[str, dict] = {}
        self._lock = threading.Lock()

    def available(self) -> dict:
        if _engine() is None:
            return {"available": False, "reason": "the mapper engine (advtopo.mapper.Mapper) is not installed"}
        open_run = _open_run()
        if open_run is None:
            return {"available": False, "reason": "advtopo.study.open_run is not available to read activations"}
        return {"available": True}

    def submit(self, params: dict) -> dict:
        p = validate(params, self.run)
        Mapper, open_run = _engine(), _open_run()
        if Mapper is None:
            raise RecomputeUnavailable("recompute needs the mapper engine (advtopo.mapper.Mapper), which is not available")
        if open_run is None:
            raise RecomputeUnavailable("recompute needs advtopo.study.open_run to read activations, which is not available")
        try:
            handle = open_run(self.run.root)
        except Exception as exc:  # noqa: BLE001
            raise RecomputeUnavailable(f"cannot open the run to read activations: {exc}") from None
        loader = getattr(handle, "activations", None) or getattr(handle, "load_activations", None)
        if loader is None:
            raise RecomputeUnavailable("this run does not expose its activations; recompute is unavailable")
        e = p["entry"]
        key = json.dumps({k: p[k] for k in ("graph", "n_intervals", "overlap", "eps", "lens")}, sort_keys=True)
        new_id = f"{e['id']}__r{hashlib.sha1(key.encode()).hexdigest()[:8]}"
        job_id = uuid.uuid4().hex[:12]
        job = {"id": job_id, "state": "queued", "progress": 0.0, "message": "queued", "graph_id": new_id,
               "started": time.time()}
        with self._lock:
            self.jobs[job_id] = job
        threading.Thread(target=self._work, args=(job, p, Mapper, loader, new_id), daemon=True).start()
        return {k: v for k, v in job.items()}

    def _work(self, job: dict, p: dict, Mapper, loader, new_id: str) -> None:  # noqa: N803
        e = p["entry"]
        try:
            job.update(state="running", progress=0.1, message="loading activations")
            acts = loader(model=e["model"], layer=e["layer"], attack=e.get("attack"), eps=e.get("eps"))
            X, meta = acts if isinstance(acts, tuple) else (acts, None)
            job.update(progress=0.4, message="building the graph")
            mapper = Mapper(lens=p["lens"], cover={"n_intervals": p["n_intervals"], "overlap": p["overlap"]},
                            clusterer={"name": "dbscan", "eps": p["eps"]})
            graph = mapper.fit(X, metadata=meta)
            d = graph.to_dict() if hasattr(graph, "to_dict") else graph
            job.update(progress=0.9, message="saving")
            rel = f"app-cache/recompute/{new_id}.json"
            from advtopo.utils.io import atomic_write_json

            atomic_write_json(self.run.root / rel, d, indent=None)
            params = {"lens": p["lens"], "n_intervals": p["n_intervals"], "overlap": p["overlap"], "eps": p["eps"]}
            self.run.add_extra_graph({**{k: e.get(k) for k in ("model", "layer", "attack", "eps")}, "id": new_id,
                                      "path": rel, "params": params, "stats": d.get("stats", {}), "recomputed": True,
                                      "source": e["id"]})
            job.update(state="done", progress=1.0, message="done")
        except Exception as exc:  # noqa: BLE001
            job.update(state="error", message=f"{type(exc).__name__}: {exc}")

    def status(self, job_id: str) -> dict:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound("unknown job")
        return dict(job)
