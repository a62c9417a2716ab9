"""The run as the JSON API serves it: a thin adapter over :class:`advtopo.rundir.Run`.

Reading the run directory (path confinement, caching, point clouds) is the reader's job; the
server answers its errors as HTTP: ``ArtefactMissing`` -> 404, ``ArtefactInvalid`` and
``CorruptActivations`` (a damaged file: the message names it and what to run) -> 400. The
optional documents (vulnerability, datapaths) answer their absent shape plus ``error`` instead,
so the page still opens.
What is left here is about the answers: node details, member lists, where a sample lies, PNG
thumbnails, and the shapes the front end expects when an optional document is absent.
"""
from __future__ import annotations

import csv
import io
import json
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from advtopo.rundir import ArtefactInvalid, ArtefactMissing, Run, eps_key

from .png import encode_png


class NotFound(Exception):
    """-> HTTP 404."""


class BadRequest(Exception):
    """-> HTTP 400."""


class RunData:
    """The app's view of one run directory (thread-safe; ``reader`` is the shared :class:`Run`)."""

    def __init__(self, run_dir: str | Path, max_cached_pngs: int = 20000, max_cached_graphs: int = 64):
        self.reader = Run(run_dir, max_cached_graphs=max_cached_graphs)
        self.root = self.reader.root
        self._lock = threading.Lock()
        self._png: OrderedDict[tuple, bytes] = OrderedDict()
        self._max_png = max_cached_pngs

    def index(self) -> dict:
        """index.json, its graphs followed by the ones the app recomputed."""
        idx = self.reader.index
        extra = [g.to_dict() for g in self.reader.graph_entries() if g.recomputed]
        return {**idx, "graphs": list(idx.get("graphs") or []) + extra} if extra else idx

    def graph_text(self, graph_id: str) -> bytes:
        """The graph as JSON bytes (strict: a NaN in the file is a 400, not invalid JSON sent)."""
        return json.dumps(self.reader.graph(graph_id), separators=(",", ":"), allow_nan=False, default=float).encode()

    # ---- nodes -------------------------------------------------------------------------
    @staticmethod
    def find_node(g: dict, node_id: str) -> dict:
        for n in g["nodes"]:
            if str(n.get("id")) == node_id:
                return n
        raise NotFound(f"unknown node {node_id!r}")

    def node_members(self, graph_id: str, node_id: str) -> list[dict]:
        g = self.reader.graph(graph_id)
        node = self.find_node(g, node_id)
        pts = g.get("points", {})
        cols = {k: pts.get(k) or [] for k in ("sample_id", "label", "prediction", "is_adversarial")}
        out = []
        for r in node.get("members", []):
            r = int(r)
            out.append({"row": r, **{k: v[r] if r < len(v) else None for k, v in cols.items()}})
        return out

    def node_detail(self, graph_id: str, node_id: str) -> dict:
        node = self.find_node(self.reader.graph(graph_id), node_id)
        members = self.node_members(graph_id, node_id)
        dataset = self.reader.index_record.dataset  # optional in index.json
        names = dataset.class_names if dataset else []
        by_class: dict[str, dict] = {}
        preds: dict[str, int] = {}
        n_adv = n_mis = 0
        for m in members:
            lab = m["label"]
            name = names[lab] if isinstance(lab, int) and 0 <= lab < len(names) else str(lab)
            d = by_class.setdefault(str(lab), {"label": lab, "name": name, "clean": 0, "adversarial": 0,
                                               "misclassified": 0})
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
        ids = graph_ids or [g.id for g in self.reader.graph_entries()]
        res = {}
        for gid in ids:
            try:
                res[gid] = self.locate_in_graph(self.reader.graph(gid), sample_id)
            except ArtefactMissing:
                continue
        return {"sample_id": sample_id, "graphs": res, "samples": self.samples([sample_id])}

    # ---- tables and documents ----------------------------------------------------------
    def samples(self, ids: list[int]) -> list[dict]:
        try:
            df = self.reader.samples
        except ArtefactMissing:
            return []
        if df.empty or "sample_id" not in df.columns:
            return []
        return json.loads(df[df["sample_id"].isin(ids)].to_json(orient="records"))

    def diagram(self, key: str) -> dict:
        """A persistence diagram as JSON points (birth, death) per homology dimension."""
        arr = self.reader.diagram(key)
        arr = arr[np.isfinite(arr[:, 1])]
        dims = {str(int(d)): np.round(arr[arr[:, 2] == d][:, :2], 6).tolist() for d in np.unique(arr[:, 2]).astype(int)}
        return {"key": key, "dims": dims}

    def vulnerability(self) -> dict:
        """vulnerability.json as ``{"samples": [...], ...}``; ``{"samples": []}`` when the run has none,
        plus ``error`` (the reader's message: the file and what to run) when it is damaged."""
        try:
            data = self.reader.vulnerability()
        except ArtefactInvalid as exc:
            return {"samples": [], "error": str(exc)}
        if isinstance(data, list):
            data = {"samples": data}
        return data if isinstance(data, dict) else {"samples": []}

    def datapaths(self) -> dict:
        """datapaths.json (format in docs/architecture.md) plus ``"available": true``;
        ``{"available": false}`` when the run has none, with ``error`` (the reader's message: the
        file and what to run) when it is damaged. (Non-finite numbers become null when sent.)"""
        try:
            data = self.reader.datapaths()
        except ArtefactInvalid as exc:
            return {"available": False, "error": str(exc)}
        if data is None:
            return {"available": False}
        return {**data, "available": True}

    # ---- images ------------------------------------------------------------------------
    def image_png(self, sample_id: int, model: str | None = None, attack: str | None = None,
                  eps: float | str = 0.0) -> bytes:
        """One sample's image as PNG: clean, or adversarial for (model, attack, eps)."""
        clean = model is None or float(eps) == 0
        key = ("clean", sample_id) if clean else (model, attack, eps_key(eps), sample_id)
        with self._lock:
            if key in self._png:
                return self._png[key]
        arr = self.reader.images(model, attack, eps)
        if not 0 <= sample_id < arr.shape[0]:
            raise NotFound("sample id out of range")
        data = encode_png(np.asarray(arr[sample_id]))
        with self._lock:
            self._png[key] = data
            while len(self._png) > self._max_png:
                self._png.popitem(last=False)
        return data
