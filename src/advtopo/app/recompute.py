"""Recompute a mapper graph on demand (``POST /api/recompute``).

Needs the mapper engine (``advtopo.mapper.Mapper``) and the run's stored activations
(read through ``advtopo.study.open_run``). Both are imported lazily and guarded: when
either is missing the API answers 501 with a message that says which.

Results are written under ``RUN_DIR/app-cache/recompute/<graph_id>.json`` (listed in
``app-cache/recompute/index.json``) and appear in ``/api/index`` as extra graphs
(``"recomputed": true``), so they are cached in the run and survive a restart.
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

from advtopo.utils.io import atomic_write_json

from .data import BadRequest, NotFound, RunData

CACHE_DIR = "app-cache/recompute"
FALLBACK_LENSES = ("l2norm", "pca", "pc1", "mean", "max", "sum", "density")


def _lenses() -> tuple[str, ...]:
    try:
        from advtopo.mapper import LENSES  # type: ignore[attr-defined]

        return tuple(n for n in LENSES if n not in ("metadata", "precomputed"))
    except Exception:  # noqa: BLE001
        return FALLBACK_LENSES


def _missing_activations(index: dict, e: dict) -> str | None:
    """A description of the activations the graph needs that the run's index lacks, else None."""
    have = [a for a in index.get("activations", []) or [] if isinstance(a, dict)
            and a.get("model") == e.get("model") and a.get("layer") == e.get("layer")]
    need = [("clean", 0.0)]
    if float(e.get("eps") or 0) > 0:
        need.append((e.get("attack"), float(e["eps"])))
    for attack, eps in need:
        ok = any(a.get("attack") == attack and (attack == "clean" or abs(float(a.get("eps", -1)) - eps) < 1e-9)
                 for a in have)
        if not ok:
            return f"model={e.get('model')} layer={e.get('layer')} {attack}" + ("" if attack == "clean" else f"@{eps:g}")
    return None


def point_cloud(handle: Any, e: dict) -> np.ndarray:
    """A graph's rows as the study built them: the clean activations of its model and layer,
    then (eps > 0) the adversarial ones of the same samples. ``handle``: ``open_run(...)``."""
    eps = float(e.get("eps") or 0)
    X = [np.asarray(handle.activations(e["model"], e["layer"], eps=0.0))]
    if eps > 0:
        X.append(np.asarray(handle.activations(e["model"], e["layer"], attack=e.get("attack"), eps=eps)))
    return np.concatenate(X).astype(np.float32, copy=False)


class RecomputeUnavailable(Exception):
    """-> HTTP 501."""


_CLOUDS: dict[tuple[str, str], np.ndarray] = {}  # (run root, graph id) -> cloud, the last 4
_CLOUDS_LOCK = threading.Lock()


def cached_point_cloud(run: RunData, e: dict) -> np.ndarray:
    """``point_cloud`` of a graph entry, read once and kept for the last 4 graphs, shared by
    the views that need a graph's activations (feature visualisation, embedding): opening
    both on one graph reads the activations once (3.4 s cold on the demo run)."""
    key = (str(run.root), e["id"])
    with _CLOUDS_LOCK:
        if key in _CLOUDS:
            return _CLOUDS[key]
    from advtopo.study import open_run

    try:
        X = point_cloud(open_run(run.root), e)
    except Exception as exc:  # noqa: BLE001  (missing activations -> 'not available' with the reason)
        raise RecomputeUnavailable(f"cannot read the activations of graph {e['id']!r}: {exc}") from None
    with _CLOUDS_LOCK:
        if len(_CLOUDS) >= 4:
            _CLOUDS.pop(next(iter(_CLOUDS)))
        _CLOUDS[key] = X
    return X


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
        e = p["entry"]
        missing = _missing_activations(self.run.index(), e)
        if missing:
            raise RecomputeUnavailable(f"this run holds no stored activations for {missing}; recompute is unavailable")
        try:
            handle = open_run(self.run.root)
        except Exception as exc:  # noqa: BLE001
            raise RecomputeUnavailable(f"cannot open the run to read activations: {exc}") from None
        key = json.dumps({k: p[k] for k in ("graph", "n_intervals", "overlap", "eps", "lens")}, sort_keys=True)
        new_id = f"{e.get('source', e['id'])}__r{hashlib.sha1(key.encode()).hexdigest()[:8]}"
        job_id = uuid.uuid4().hex[:12]
        job = {"id": job_id, "state": "queued", "progress": 0.0, "message": "queued", "graph_id": new_id,
               "started": time.time()}
        with self._lock:
            self.jobs[job_id] = job
        threading.Thread(target=self._work, args=(job, p, Mapper, handle, new_id), daemon=True).start()
        return dict(job)

    def _work(self, job: dict, p: dict, Mapper, handle, new_id: str) -> None:  # noqa: N803
        e = p["entry"]
        try:
            if any(g.get("id") == new_id for g in self.run.index()["graphs"]):
                job.update(state="done", progress=1.0, message="cached")
                return
            job.update(state="running", progress=0.05, message="loading activations")
            base = self.run.graph(e["id"])
            pts = base.get("points", {})
            X = point_cloud(handle, e)
            md = {k: np.asarray(pts[k]) for k in ("label", "prediction", "is_adversarial", "sample_id") if k in pts}
            if any(len(v) != len(X) for v in md.values()):
                raise ValueError("the stored activations do not match the graph's points")
            job.update(progress=0.3, message=f"building the graph ({len(X)} points)")
            allowed = set(inspect.signature(Mapper).parameters)
            kw = {k: v for k, v in (base.get("params") or e.get("params") or {}).items() if k in allowed
                  and isinstance(v, (str, int, float, bool)) and k not in ("backend", "device")}
            kw.update(lens=p["lens"], n_intervals=p["n_intervals"], overlap=p["overlap"], eps=p["eps"])
            graph = Mapper(**kw).fit(X, metadata=md)
            d = graph.to_dict() if hasattr(graph, "to_dict") else graph
            job.update(progress=0.9, message="saving")
            rel = f"{CACHE_DIR}/{new_id}.json"
            atomic_write_json(self.run.root / rel, d, indent=None)
            params = {"lens": p["lens"], "n_intervals": p["n_intervals"], "overlap": p["overlap"], "eps": p["eps"]}
            st = d.get("stats", {})
            entry = {**{k: e.get(k) for k in ("model", "layer", "attack", "eps")}, "id": new_id, "path": rel,
                     "params": params, "recomputed": True, "source": e.get("source", e["id"]),
                     "stats": {k: st.get(k) for k in ("n_nodes", "n_edges", "n_components", "n_noise", "mean_purity",
                                                     "mean_entropy") if k in st}}
            self.run.add_extra_graph(entry)
            atomic_write_json(self.run.root / CACHE_DIR / "index.json", self.run.extra_graphs())
            job.update(state="done", progress=1.0, message="done")
        except Exception as exc:  # noqa: BLE001  (reported to the client as the job's message)
            job.update(state="error", message=f"{type(exc).__name__}: {exc}")

    def status(self, job_id: str) -> dict:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFound("unknown job")
        return dict(job)
