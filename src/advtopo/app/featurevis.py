"""Feature visualisation of a mapper node's mean activation (``GET /api/featurevis/...``).

TopoAct's node view: the image whose summarised activation at the graph's layer points
along the node's mean activation (``advtopo.activations.FeatureVisualizer``). Needs the
run's model checkpoint and stored activations (both named in index.json) and torch;
computed on first request (~0.2 s for lenet5 on 2 CPU cores; one at a time, a few more wait,
the rest are answered 429), then cached as ``RUN_DIR/app-cache/featurevis/<key>.png`` +
``.json`` (key = hash of graph, node, rows and parameters; the cache is bounded, ``AppCache``),
so a second request is a file read. The ``.png`` URL only reads the cache.

``rows``: ``auto`` (default: the node's clean members when it has any, else all), ``clean``,
``adversarial`` or ``all`` — a node of an attacked graph mixes clean and adversarial rows.

TopoAct's individual view (``GET /api/featurevis-sample/<graph>/<sample_id>?kind=clean``): the
same optimisation with the direction = one sample's own activation (its clean or adversarial
row of the graph), cached the same way.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import quote

import numpy as np

from advtopo.rundir import ArtefactMissing
from .cache import AppCache
from .data import BadRequest, NotFound, RunData
from .recompute import ComputeGate, RecomputeUnavailable, stored_point_cloud

ROWS = ("auto", "clean", "adversarial", "all")
SAMPLE_KINDS = ("clean", "adversarial")
PARAMS = {"steps": 128, "lr": 0.05, "jitter": 1, "tv": 0.05, "cossim_pow": 1.0, "seed": 0}


class FeatureVisService:
    def __init__(self, run: RunData, cache: AppCache | None = None) -> None:
        self.run = run
        self.cache = cache or AppCache(run)
        self._gate = ComputeGate("a feature visualisation")  # one optimisation at a time: the model is shared
        self._models: dict[str, Any] = {}

    def _model(self, name: str):
        if name not in self._models:
            from advtopo.models import load_checkpoint

            try:
                path = self.run.reader.checkpoint(name)
            except ArtefactMissing as exc:
                raise RecomputeUnavailable(f"{exc}; feature visualisation needs the model") from None
            model, _cfg = load_checkpoint(path)
            self._models[name] = model.eval()
        return self._models[name]

    def _rows(self, graph_id: str, node_id: str, rows: str) -> tuple[str, np.ndarray, str]:
        """(the rows used, the node's rows of that kind, the cache key)."""
        if rows not in ROWS:
            raise BadRequest(f"rows={rows!r} is not valid; allowed: {', '.join(ROWS)}")
        self.run.reader.graph_entry(graph_id)  # ArtefactMissing -> 404
        g = self.run.reader.graph(graph_id)
        node = self.run.find_node(g, node_id)
        members = np.asarray(node.get("members", []), dtype=np.int64)
        if len(members) == 0:
            raise NotFound(f"node {node_id!r} has no members")
        adv = np.asarray(g.get("points", {}).get("is_adversarial") or [], dtype=bool)
        is_adv = adv[members] if len(adv) > int(members.max()) else np.zeros(len(members), dtype=bool)
        used = rows
        if rows == "auto":
            used = "clean" if (~is_adv).any() else "all"
        sel = {"clean": members[~is_adv], "adversarial": members[is_adv], "all": members}[used]
        if len(sel) == 0:
            raise NotFound(f"node {node_id!r} has no {used} members")
        key_src = json.dumps({"graph": graph_id, "node": node_id, "rows": used, "params": PARAMS,
                              "members": hashlib.sha1(sel.tobytes()).hexdigest()}, sort_keys=True)
        return used, sel, hashlib.sha1(key_src.encode()).hexdigest()[:20]

    def info(self, graph_id: str, node_id: str, rows: str = "auto") -> dict:
        """Compute (or read from the cache) the node's image; returns its metadata."""
        used, sel, key = self._rows(graph_id, node_id, rows)
        png = f"api/featurevis/{quote(graph_id, safe='')}/{quote(node_id, safe='')}.png?rows={rows}"
        return self._image(graph_id, sel, key, {"graph": graph_id, "node": node_id, "rows": used,
                                                "n_rows": int(len(sel))}, png)

    def _sample_row(self, graph_id: str, sample_id: int, kind: str) -> tuple[int, str]:
        """(the graph's row of the sample's clean or adversarial version, the cache key)."""
        if kind not in SAMPLE_KINDS:
            raise BadRequest(f"kind={kind!r} is not valid; allowed: {', '.join(SAMPLE_KINDS)}")
        self.run.reader.graph_entry(graph_id)  # ArtefactMissing -> 404
        pts = self.run.reader.graph(graph_id).get("points", {})
        sids, adv = pts.get("sample_id") or [], pts.get("is_adversarial") or []
        want = kind == "adversarial"
        rows = [r for r, s in enumerate(sids) if s == sample_id and bool(adv[r] if r < len(adv) else False) == want]
        if not rows:
            raise NotFound(f"sample {sample_id} has no {kind} row in graph {graph_id!r}")
        key_src = json.dumps({"graph": graph_id, "sample": sample_id, "kind": kind, "row": rows[0],
                              "params": PARAMS}, sort_keys=True)
        return rows[0], hashlib.sha1(key_src.encode()).hexdigest()[:20]

    def sample_info(self, graph_id: str, sample_id: int, kind: str = "clean") -> dict:
        """Compute (or read from the cache) the image of one sample's own activation at the graph's
        layer (its ``kind`` row: clean or adversarial); returns its metadata."""
        row, key = self._sample_row(graph_id, sample_id, kind)
        png = f"api/featurevis-sample/{quote(graph_id, safe='')}/{int(sample_id)}.png?kind={kind}"
        return self._image(graph_id, np.array([row]), key, {"graph": graph_id, "sample_id": int(sample_id),
                                                            "kind": kind, "row": row, "n_rows": 1}, png)

    def sample_png(self, graph_id: str, sample_id: int, kind: str = "clean") -> bytes:
        """The sample's image when computed already (as :meth:`png`: this URL computes nothing)."""
        _row, key = self._sample_row(graph_id, sample_id, kind)
        data = self.cache.read("featurevis", f"{key}.png")
        if data is None:
            raise NotFound(f"no feature visualisation of sample {sample_id} yet: "
                           f"GET api/featurevis-sample/<graph>/<sample_id> computes it")
        return data

    def _image(self, graph_id: str, sel: np.ndarray, key: str, meta: dict, png: str) -> dict:
        """Optimise the image for the mean activation of rows ``sel`` (or read it from the cache)."""
        cached = self.cache.read_json("featurevis", f"{key}.json")
        if cached is not None:
            return cached
        e = self.run.reader.graph_entry(graph_id)
        index = self.run.reader.index
        layer = e.layer
        summary = (index.get("layer_summaries") or {}).get(layer, "flatten")
        module = (index.get("layer_modules") or {}).get(layer, layer)
        shape = (index.get("dataset") or {}).get("image_shape")
        if not shape or len(shape) != 3:
            raise RecomputeUnavailable("the run's index.json gives no dataset image_shape [C, H, W]")
        with self._gate():  # Busy (429) when too many wait
            cached = self.cache.read_json("featurevis", f"{key}.json")
            if cached is not None:
                return cached
            from advtopo.activations import FeatureVisualizer
            from advtopo.app.png import encode_png

            model = self._model(e.model)
            X = stored_point_cloud(self.run, e)
            if int(sel.max()) >= len(X):
                raise RecomputeUnavailable("the stored activations do not match the graph's points")
            mean = X[sel].mean(axis=0, dtype=np.float64).astype(np.float32)
            fv = FeatureVisualizer(model, module, summary=summary,
                                   **{k: v for k, v in PARAMS.items()})
            res = fv.fit(mean[None], tuple(int(s) for s in shape))
            self.cache.write("featurevis", f"{key}.png", encode_png(res.images[0]))
            meta = {**meta, "cosine": float(res.cosine[0]), "layer": layer, "summary": summary, "params": PARAMS,
                    "png": png, "key": key}
            self.cache.write_json("featurevis", f"{key}.json", meta)
            return meta

    def png(self, graph_id: str, node_id: str, rows: str = "auto") -> bytes:
        """The node's image when computed already (``info`` computes it: only that request needs
        the page's token, so an <img> of this URL computes nothing)."""
        _used, _sel, key = self._rows(graph_id, node_id, rows)
        data = self.cache.read("featurevis", f"{key}.png")
        if data is None:
            raise NotFound(f"no feature visualisation of node {node_id!r} yet: "
                           f"GET api/featurevis/<graph>/<node> computes it")
        return data
