"""Read-only access to a run directory, confined to that directory.

Every file the app reads is named by ``index.json`` (paths relative to the run
directory) and goes through :meth:`RunData.safe_path`, which refuses absolute paths,
``..`` parts and anything (symlinks included) that resolves outside the run directory.
Arrays are loaded with ``allow_pickle=False``; nothing is unpickled.
"""
from __future__ import annotations

import csv
import io
import json
import math
import threading
from collections import OrderedDict
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from advtopo.errors import AdvtopoError

from .png import encode_png


class NotFound(Exception):
    """-> HTTP 404."""


class BadRequest(Exception):
    """-> HTTP 400."""


def _eps_equal(a: Any, b: Any) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    except (TypeError, ValueError):
        return False


def _finite(obj: Any) -> Any:
    """``obj`` with NaN / +-inf floats replaced by None (nested dicts and lists)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


class RunData:
    """The run directory as the app sees it (thread-safe, cached)."""

    def __init__(self, run_dir: str | Path, max_cached_graphs: int = 64):
        root = Path(run_dir)
        if not root.is_dir():
            raise AdvtopoError(f"run directory not found: {run_dir}")
        self.root = root.resolve()
        if not (self.root / "index.json").is_file():
            raise AdvtopoError(f"{run_dir} is not a run directory (no index.json); run a study first")
        self._lock = threading.RLock()
        self._graphs: OrderedDict[str, dict] = OrderedDict()
        self._max_graphs = max_cached_graphs
        self._arrays: dict[str, np.ndarray] = {}
        self._png: OrderedDict[tuple, bytes] = OrderedDict()
        self._samples = None
        self._datapaths: tuple | None = None  # ((path, mtime_ns), data)
        self._index_mtime = None
        self._index: dict = {}
        self._extra: list[dict] = []  # graphs recomputed by the app (app-cache/), not in index.json
        self.index()
        self._load_extra()  # validate now: a broken index is a user error at start-up

    # ---- paths -------------------------------------------------------------------------
    def safe_path(self, rel: Any) -> Path:
        """``rel`` (from index.json) -> an existing file inside the run dir, else NotFound."""
        if not isinstance(rel, str) or not rel or "\x00" in rel or "\\" in rel:
            raise NotFound("not found")
        p = PurePosixPath(rel)
        if p.is_absolute() or any(part in ("..", "") for part in p.parts) or rel.startswith("~"):
            raise NotFound("not found")
        full = (self.root / p).resolve()
        try:
            full.relative_to(self.root)
        except ValueError:
            raise NotFound("not found") from None
        if not full.is_file():
            raise NotFound("not found")
        return full

    # ---- index -------------------------------------------------------------------------
    def index(self) -> dict:
        path = self.root / "index.json"
        with self._lock:
            mtime = path.stat().st_mtime_ns
            if mtime != self._index_mtime:
                try:
                    idx = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError) as exc:
                    raise AdvtopoError(f"cannot read {path}: {exc}") from exc
                if not isinstance(idx, dict):
                    raise AdvtopoError(f"{path}: expected a JSON object")
                if not isinstance(idx.get("graphs"), list):
                    idx["graphs"] = []
                self._index, self._index_mtime = idx, mtime
                self._graphs.clear()
            if self._extra:
                known = {g.get("id") for g in self._index["graphs"] if isinstance(g, dict)}
                return {**self._index, "graphs": self._index["graphs"] + [g for g in self._extra if g["id"] not in known]}
            return self._index

    def _load_extra(self) -> None:
        try:
            extra = json.loads(self.safe_path("app-cache/recompute/index.json").read_text(encoding="utf-8"))
        except (NotFound, OSError, ValueError):
            return
        if isinstance(extra, list):
            self._extra = [g for g in extra if isinstance(g, dict) and isinstance(g.get("id"), str)
                           and isinstance(g.get("path"), str)]

    def extra_graphs(self) -> list[dict]:
        with self._lock:
            return list(self._extra)

    def add_extra_graph(self, entry: dict) -> None:
        with self._lock:
            self._extra = [g for g in self._extra if g["id"] != entry["id"]] + [entry]
            self._graphs.pop(entry["id"], None)

    def graph_entry(self, graph_id: str) -> dict:
        for g in self.index().get("graphs", []):
            if isinstance(g, dict) and g.get("id") == graph_id:
                return g
        raise NotFound(f"unknown graph {graph_id!r}")

    def graph(self, graph_id: str) -> dict:
        with self._lock:
            if graph_id in self._graphs:
                self._graphs.move_to_end(graph_id)
                return self._graphs[graph_id]
        entry = self.graph_entry(graph_id)
        path = self.safe_path(entry.get("path"))
        try:
            g = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise BadRequest(f"graph {graph_id!r} is not valid JSON") from exc
        if not isinstance(g, dict) or not isinstance(g.get("nodes"), list):
            raise BadRequest(f"graph {graph_id!r} lacks nodes")
        g.setdefault("edges", [])
        g.setdefault("points", {})
        with self._lock:
            self._graphs[graph_id] = g
            while len(self._graphs) > self._max_graphs:
                self._graphs.popitem(last=False)
        return g

    def graph_text(self, graph_id: str) -> bytes:
        """The graph as JSON bytes (validated: a broken file is a 400, not a 200)."""
        g = self.graph(graph_id)
        return json.dumps(g, separators=(",", ":"), allow_nan=False, default=float).encode()

    # ---- nodes -------------------------------------------------------------------------
    @staticmethod
    def _find_node(g: dict, node_id: str) -> dict:
        for n in g["nodes"]:
            if str(n.get("id")) == node_id:
                return n
        raise NotFound(f"unknown node {node_id!r}")

    def node_members(self, graph_id: str, node_id: str) -> list[dict]:
        g = self.graph(graph_id)
        node = self._find_node(g, node_id)
        pts = g.get("points", {})
        cols = {k: pts.get(k) or [] for k in ("sample_id", "label", "prediction", "is_adversarial")}
        out = []
        for r in node.get("members", []):
            r = int(r)
            row = {"row": r}
            for k, v in cols.items():
                row[k] = v[r] if r < len(v) else None
            out.append(row)
        return out

    def node_detail(self, graph_id: str, node_id: str) -> dict:
        g = self.graph(graph_id)
        node = self._find_node(g, node_id)
        members = self.node_members(graph_id, node_id)
        names = self.index().get("dataset", {}).get("class_names") or []
        by_class: dict[str, dict] = {}
        preds: dict[str, int] = {}
        n_adv = n_mis = 0
        for m in members:
            lab = m["label"]
            key = str(lab)
            d = by_class.setdefault(key, {"label": lab, "name": names[lab] if isinstance(lab, int) and 0 <= lab < len(names) else key,
                                          "clean": 0, "adversarial": 0, "misclassified": 0})
            adv = bool(m["is_adversarial"])
            d["adversarial" if adv else "clean"] += 1
            n_adv += adv
            if m["prediction"] is not None and m["prediction"] != lab:
                d["misclassified"] += 1
                n_mis += 1
            preds[str(m["prediction"])] = preds.get(str(m["prediction"]), 0) + 1
        attrs = {k: v for k, v in node.items() if k != "members"}
        return {"graph": graph_id, "node": node_id, "attributes": attrs, "size": len(members),
                "n_clean": len(members) - n_adv, "n_adversarial": n_adv, "n_misclassified": n_mis,
                "by_class": sorted(by_class.values(), key=lambda d: (-(d["clean"] + d["adversarial"]), str(d["label"]))),
                "predictions": preds, "members": members,
                "sample_ids": sorted({m["sample_id"] for m in members if m["sample_id"] is not None})}

    def members_csv(self, graph_id: str, node_id: str) -> bytes:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["graph", "node", "row", "sample_id", "label", "prediction", "is_adversarial"])
        for m in self.node_members(graph_id, node_id):
            w.writerow([graph_id, node_id, m["row"], m["sample_id"], m["label"], m["prediction"],
                        int(bool(m["is_adversarial"]))])
        return buf.getvalue().encode("utf-8")

    # ---- locate ------------------------------------------------------------------------
    @staticmethod
    def locate_in_graph(g: dict, sample_id: int) -> dict:
        sids = g.get("points", {}).get("sample_id") or []
        rows = [i for i, s in enumerate(sids) if s == sample_id]
        adv = g.get("points", {}).get("is_adversarial") or []
        labels = g.get("points", {}).get("label") or []
        pp = g.get("point_purity") or []
        rowset = set(rows)
        nodes: dict[str, list[int]] = {}
        for n in g["nodes"]:
            hit = [r for r in n.get("members", []) if r in rowset]
            if hit:
                nodes[str(n["id"])] = hit
        out_rows = []
        for r in rows:
            holding = [nid for nid, hit in nodes.items() if r in hit]
            if r < len(pp):
                purity = pp[r]
            else:  # mean over the nodes holding the row of 1/#distinct labels
                vals = [1.0 / max(1, len(n.get("class_hist") or {l: 1 for l in {labels[x] for x in n["members"]}}))
                        for n in g["nodes"] if str(n["id"]) in holding]
                purity = float(np.mean(vals)) if vals else None
            out_rows.append({"row": r, "is_adversarial": bool(adv[r]) if r < len(adv) else False,
                             "nodes": holding, "point_purity": purity})
        return {"nodes": sorted(nodes), "rows": out_rows}

    def locate(self, sample_id: int, graph_ids: list[str] | None = None) -> dict:
        ids = graph_ids or [g["id"] for g in self.index()["graphs"] if isinstance(g, dict) and "id" in g]
        res = {}
        for gid in ids:
            try:
                res[gid] = self.locate_in_graph(self.graph(gid), sample_id)
            except NotFound:
                continue
        return {"sample_id": sample_id, "graphs": res, "samples": self.samples([sample_id])}

    # ---- samples -----------------------------------------------------------------------
    def _samples_df(self):
        with self._lock:
            if self._samples is None:
                import pandas as pd

                try:
                    path = self.safe_path("samples.parquet")
                except NotFound:
                    self._samples = pd.DataFrame()
                else:
                    self._samples = pd.read_parquet(path)
            return self._samples

    def samples(self, ids: list[int]) -> list[dict]:
        df = self._samples_df()
        if df.empty or "sample_id" not in df.columns:
            return []
        sub = df[df["sample_id"].isin(ids)]
        return json.loads(sub.to_json(orient="records"))

    def diagram(self, key: str) -> dict:
        """A persistence diagram named in index.json["persistence"]["diagrams"] ((birth, death, dim)
        rows, stored as .npy by the persistence stage) as JSON points per homology dimension."""
        import numpy as np

        diagrams = (self.index().get("persistence") or {}).get("diagrams") or {}
        rel = diagrams.get(key) if isinstance(diagrams, dict) else None
        if not isinstance(rel, str):
            raise NotFound("no such diagram")
        try:
            arr = np.load(self.safe_path(rel), allow_pickle=False)
        except (ValueError, OSError):
            raise NotFound("diagram file unreadable") from None
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise NotFound("diagram file has an unexpected shape")
        arr = arr[np.isfinite(arr[:, 1])]
        out: dict[str, list] = {}
        for dim in np.unique(arr[:, 2]).astype(int):
            pts = arr[arr[:, 2] == dim][:, :2]
            out[str(int(dim))] = np.round(pts, 6).tolist()
        return {"key": key, "dims": out}

    def vulnerability(self) -> dict:
        rel = self.index().get("vulnerability") or "vulnerability.json"
        try:
            path = self.safe_path(rel if isinstance(rel, str) else "vulnerability.json")
        except NotFound:
            return {"samples": []}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            return {"samples": [], "error": "vulnerability.json is not valid JSON"}
        if isinstance(data, list):
            data = {"samples": data}
        return data if isinstance(data, dict) else {"samples": []}

    def datapaths(self) -> dict:
        """``datapaths.json`` (the optional datapaths stage, format in docs/architecture.md) plus
        ``"available": true``; ``{"available": false}`` (with ``error`` when the file is broken)
        when the run has none. Same confinement as every other file: the path named by
        index.json ``"datapaths"`` (default ``datapaths.json``) must lie inside the run dir.
        Non-finite numbers become null (the JSON we send is strict)."""
        rel = self.index().get("datapaths") or "datapaths.json"
        try:
            path = self.safe_path(rel if isinstance(rel, str) else "datapaths.json")
        except NotFound:
            return {"available": False}
        key = (str(path), path.stat().st_mtime_ns)
        with self._lock:
            if self._datapaths and self._datapaths[0] == key:
                return self._datapaths[1]
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            out: dict = {"available": False, "error": "datapaths.json is not valid JSON"}
        else:
            if not isinstance(data, dict) or not isinstance(data.get("layers"), list) \
                    or not isinstance(data.get("samples"), list) or not isinstance(data.get("eps"), list):
                out = {"available": False, "error": "datapaths.json lacks layers / eps / samples"}
            else:
                out = {**_finite(data), "available": True}
        with self._lock:
            self._datapaths = (key, out)
        return out

    # ---- images ------------------------------------------------------------------------
    def image_relpath(self, kind: str, model: str | None = None, attack: str | None = None,
                      eps: str | None = None) -> str:
        images = self.index().get("images") or {}
        if kind == "clean":
            rel = images.get("clean")
        elif kind == "adversarial":
            rel = None
            for key, val in (images.get("adversarial") or {}).items():
                parts = str(key).split("/")
                if len(parts) == 3 and parts[0] == model and parts[1] == attack and _eps_equal(parts[2], eps):
                    rel = val
                    break
        else:
            raise NotFound("unknown image kind")
        if not rel:
            raise NotFound("no such image set")
        return rel

    def _array(self, rel: str) -> np.ndarray:
        with self._lock:
            if rel not in self._arrays:
                path = self.safe_path(rel)
                try:
                    arr = np.load(path, mmap_mode="r", allow_pickle=False)
                except ValueError as exc:
                    raise NotFound("image array unreadable") from exc
                if not isinstance(arr, np.ndarray) or arr.ndim < 3:
                    raise NotFound("image array has the wrong shape")
                self._arrays[rel] = arr
            return self._arrays[rel]

    def image_png(self, rel: str, sample_id: int) -> bytes:
        key = (rel, sample_id)
        with self._lock:
            if key in self._png:
                return self._png[key]
        arr = self._array(rel)
        if not 0 <= sample_id < arr.shape[0]:
            raise NotFound("sample id out of range")
        data = encode_png(np.asarray(arr[sample_id]))
        with self._lock:
            self._png[key] = data
            while len(self._png) > 20000:
                self._png.popitem(last=False)
        return data
