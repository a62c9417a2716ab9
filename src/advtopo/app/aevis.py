"""AEVis's layer and neuron levels in the app (``GET /api/aevis/layer``, ``GET /api/aevis/neuron``).

Both compute from the run's model checkpoint (the model of datapaths.json) and its stored
8-bit images (the exact study inputs are not kept in the run directory: a pixel may differ
from the float input by at most 1/510), so they need the page's token, like feature
visualisation. Results are kept in a bounded in-memory cache (``MAX_CACHED`` answers, least
recently used dropped first); one computation runs at a time (``ComputeGate``: more waiting
are answered 429).

Layer level: gates come from datapaths.json's ``detail`` when the sample has them, else
they are fitted for this one sample with the stage's parameters (``DatapathExtractor``;
one input at a time gives the batch's gates up to float rounding).
Class level needs no route: it is ``class_flow`` in datapaths.json.
"""
from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from advtopo.rundir import ArtefactMissing
from .data import BadRequest, NotFound, RunData
from .recompute import ComputeGate, RecomputeUnavailable

MAX_CACHED = 64
MAX_EXAMPLES = 48
MAX_POOL = 5000  # top examples are drawn from the run's first MAX_POOL clean images
FEATUREVIS = {"steps": 128, "lr": 0.05, "jitter": 1, "tv": 0.05, "cossim_pow": 1.0, "seed": 0}


def _eps_key(doc_eps: list, eps: str) -> tuple[float, str]:
    try:
        e = float(eps)
    except ValueError:
        raise BadRequest(f"eps={eps!r} is not a number; allowed: {', '.join(f'{x:g}' for x in doc_eps)}") from None
    for x in doc_eps:
        if abs(float(x) - e) < 1e-9:
            return float(x), f"{float(x):g}"
    raise BadRequest(f"eps={eps!r} is not an eps of datapaths.json; allowed: {', '.join(f'{x:g}' for x in doc_eps)}")


class AevisService:
    def __init__(self, run: RunData) -> None:
        self.run = run
        self._gate = ComputeGate("a datapath view")
        self._models: dict[str, Any] = {}
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    # ---- helpers ---------------------------------------------------------------------------
    def _doc(self) -> dict:
        doc = self.run.reader.datapaths()  # ArtefactInvalid -> 400 with the reader's message
        if doc is None:
            raise RecomputeUnavailable("this run has no datapaths.json; enable the study's [datapaths] stage")
        return doc

    def _model(self, name: str):
        if name not in self._models:
            from advtopo.models import load_checkpoint

            try:
                path = self.run.reader.checkpoint(name)
            except ArtefactMissing as exc:
                raise RecomputeUnavailable(f"{exc}; the datapath views need the model") from None
            model, _cfg = load_checkpoint(path)
            self._models[name] = model.eval()
        return self._models[name]

    def _cached(self, key: tuple) -> Any:
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        return None

    def _store(self, key: tuple, value: Any) -> Any:
        with self._lock:
            self._cache[key] = value
            self._cache.move_to_end(key)
            while len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)
        return value

    def _layer_of(self, doc: dict, layer: str) -> str:
        layers = list(doc.get("layers") or [])
        if layer not in layers:
            raise BadRequest(f"layer={layer!r} is not a gated layer of datapaths.json; allowed: {', '.join(layers)}")
        return layer

    def _images(self, doc: dict, eps: float | None) -> np.ndarray:
        try:
            if eps is None:
                return self.run.reader.images()
            return self.run.reader.images(doc.get("model"), doc.get("attack"), eps)
        except ArtefactMissing as exc:
            raise RecomputeUnavailable(f"{exc}; the datapath views need the run's images") from None

    # ---- layer level -----------------------------------------------------------------------
    def layer(self, sample: str, layer: str, eps: str, sort: str = "activation") -> dict:
        """One sample's feature maps at ``layer``, clean vs adversarial at ``eps`` (AEVis's layer level)."""
        from advtopo.datapaths.aevis import SORTS, layer_view

        if sort not in SORTS:
            raise BadRequest(f"sort={sort!r} is not valid; allowed: {', '.join(SORTS)}")
        doc = self._doc()
        layer = self._layer_of(doc, layer)
        e, ekey = _eps_key(list(doc.get("eps") or []), eps)
        try:
            sid = int(sample)
        except ValueError:
            raise BadRequest(f"sample={sample!r} is not a sample id (an integer)") from None
        key = ("layer", sid, layer, ekey)
        got = self._cached(key)
        if got is None:
            got = self._store(key, self._compute_layer(doc, sid, layer, e, ekey))
        maps_c, maps_a, gates_c, gates_a, source, skip, crit = got
        threshold = float((doc.get("params") or {}).get("threshold", 0.5))
        view = layer_view(maps_c, maps_a, gates_c, gates_a, threshold, sort, *crit)
        if skip is not None:  # a residual block: each channel's skip share (advtopo.datapaths.residual)
            for row in view["channels"]:
                row["skip_share_clean"] = round(float(skip[0, row["channel"]]), 4)
                row["skip_share_adversarial"] = round(float(skip[1, row["channel"]]), 4)
        view["residual_block"] = skip is not None
        return {"sample_id": sid, "layer": layer, "eps": e, "model": doc.get("model"), "attack": doc.get("attack"),
                "gates_from": source, **view}

    def _compute_layer(self, doc: dict, sid: int, layer: str, e: float, ekey: str):
        from advtopo.datapaths.aevis import feature_maps, images_to_input

        clean_imgs, adv_imgs = self._images(doc, None), self._images(doc, e)
        if not 0 <= sid < min(len(clean_imgs), len(adv_imgs)):
            raise NotFound(f"sample {sid} is not in this run (ids 0..{min(len(clean_imgs), len(adv_imgs)) - 1})")
        x = images_to_input(np.stack([clean_imgs[sid], adv_imgs[sid]]))
        detail = next((d for d in doc.get("detail") or [] if d.get("sample_id") == sid), None)
        with self._gate():
            model = self._model(doc.get("model"))
            maps = feature_maps(model, layer, x)
            skip = None
            if layer in (doc.get("residual") or {}).get("blocks", []):
                from advtopo.datapaths.residual import skip_share

                skip = skip_share(model, [layer], x)[layer]
            stored = None
            if detail is not None:
                adv_d = next((v for k, v in (detail.get("adversarial") or {}).items() if abs(float(k) - e) < 1e-9), None)
                gc = ((detail.get("clean") or {}).get("gates") or {}).get(layer)
                ga = ((adv_d or {}).get("gates") or {}).get(layer)
                if gc is not None and ga is not None and len(gc) == len(ga) == maps.shape[1]:
                    crit = []
                    for ids in (((detail.get("clean") or {}).get("critical") or {}).get(layer),
                                ((adv_d or {}).get("critical") or {}).get(layer)):
                        mask = None
                        if isinstance(ids, list) and all(isinstance(i, int) and 0 <= i < len(gc) for i in ids):
                            mask = np.zeros(len(gc), bool)
                            mask[ids] = True
                        crit.append(mask)
                    stored = (np.asarray(gc, np.float32), np.asarray(ga, np.float32), tuple(crit))
            if stored is not None:
                return maps[0], maps[1], stored[0], stored[1], "datapaths.json", skip, stored[2]
            from advtopo.datapaths import DatapathExtractor

            params = {k: v for k, v in (doc.get("params") or {}).items()
                      if k in ("lam", "steps", "lr", "threshold", "target", "seed")}
            if params.get("target") == "label":
                raise RecomputeUnavailable("gates fitted to the label are stored for the detail samples only")
            ext = DatapathExtractor(list(doc["layers"]), **params)
            dp = ext.fit(model, x)
            return maps[0], maps[1], dp.gates[layer][0], dp.gates[layer][1], "fitted now", skip, (None, None)

    # ---- neuron level ----------------------------------------------------------------------
    def neuron(self, layer: str, channel: str, k: str = "12") -> dict:
        """A channel's learned feature (feature visualisation) and its top activating clean images
        (among the run's first ``MAX_POOL``)."""
        doc = self._doc()
        layer = self._layer_of(doc, layer)
        try:
            ch, kk = int(channel), int(k)
        except ValueError:
            raise BadRequest(f"channel={channel!r} and k={k!r} must be integers") from None
        width = int((doc.get("widths") or {}).get(layer, 0))
        if not 0 <= ch < width:
            raise BadRequest(f"channel={ch} is not valid; allowed: 0..{width - 1} (layer {layer!r})")
        if not 1 <= kk <= MAX_EXAMPLES:
            raise BadRequest(f"k={kk} is not valid; allowed: 1..{MAX_EXAMPLES}")
        key = ("neuron", layer, ch)
        got = self._cached(key)
        if got is None:
            got = self._store(key, self._compute_neuron(doc, layer, ch))
        from advtopo.datapaths.aevis import top_examples

        means, fv = got
        return {"layer": layer, "channel": ch, "model": doc.get("model"), "n_images": int(len(means)),
                "top": top_examples(means, ch, kk), **fv}

    def _means(self, doc: dict, layer: str) -> np.ndarray:
        from advtopo.datapaths.aevis import channel_means, images_to_input

        key = ("means", layer)
        got = self._cached(key)
        if got is None:
            x = images_to_input(np.asarray(self._images(doc, None)[:MAX_POOL]))
            got = self._store(key, channel_means(self._model(doc.get("model")), layer, x))
        return got

    def _compute_neuron(self, doc: dict, layer: str, ch: int):
        from advtopo.activations import FeatureVisualizer
        from advtopo.app.png import encode_png

        shape = (self.run.reader.index.get("dataset") or {}).get("image_shape")
        with self._gate():
            means = self._means(doc, layer)
            if not shape or len(shape) != 3:
                return means, {"feature": None, "feature_reason": "the run's index.json gives no dataset image_shape"}
            direction = np.zeros((1, means.shape[1]), np.float32)
            direction[0, ch] = 1.0
            res = FeatureVisualizer(self._model(doc.get("model")), layer, summary="gap", **FEATUREVIS).fit(
                direction, tuple(int(s) for s in shape))
            png = encode_png(res.images[0])
            return means, {"feature": "data:image/png;base64," + base64.b64encode(png).decode(),
                           "feature_cosine": round(float(res.cosine[0]), 4), "feature_params": FEATUREVIS}
