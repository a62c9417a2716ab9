"""AEVis's layer, neuron and class levels (Cao et al., TVCG 2021) on top of the datapaths.

- Layer level (:func:`layer_view`): one sample's feature maps at a gated layer, clean and
  adversarial side by side, with their difference and each datapath's critical channels.
- Neuron level (:func:`channel_means`, :func:`top_examples`): a channel's mean activation over
  the run's images and the images that drive it most (its learned feature is drawn by
  ``advtopo.activations.FeatureVisualizer`` with a one-hot direction under the ``gap`` summary).
- Class level (:func:`class_flow`): for each (true class -> adversarial class) pair of fooled
  samples, per layer, which of the group's critical neurons belong to the true class's typical
  datapath, to the adversarial class's, to both or to neither ("diverge and merge").

The feature maps are the module's own output (ungated), read with a forward hook.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from advtopo.activations import resolve_modules
from advtopo.activations.capture import LayerSpec
from advtopo.datapaths.extract import Datapaths
from advtopo.errors import AdvtopoError

SORTS = ("channel", "activation", "gate", "difference")


def images_to_input(images: np.ndarray) -> torch.Tensor:
    """uint8 N x H x W x C images (the run's stored images) -> float N x C x H x W in [0, 1]."""
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.dtype != np.uint8:
        raise AdvtopoError(f"images must be uint8 N x H x W x C, got {arr.dtype} of shape {arr.shape}")
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)).astype(np.float32) / 255.0)


def feature_maps(model: nn.Module, module: str, x: torch.Tensor, batch_size: int = 256,
                 reduce: bool = False) -> np.ndarray:
    """The output of ``module`` for inputs ``x``: ``(N, C, H, W)`` float32 (a 2-D output is
    ``(N, C, 1, 1)``: one unit = one 1 x 1 map); ``reduce=True``: ``(N, C)`` channel means,
    reduced batch by batch (memory for the means only)."""
    mod = resolve_modules(model, [LayerSpec(module)])[module]
    p = next(model.parameters(), None)
    dev = p.device if p is not None else torch.device("cpu")
    parts: list[np.ndarray] = []
    got: list[torch.Tensor] = []
    hook = mod.register_forward_hook(lambda _m, _i, out: got.append(out))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for s in range(0, len(x), batch_size):
                got.clear()
                model(x[s:s + batch_size].to(dev))
                if len(got) != 1 or not isinstance(got[0], torch.Tensor):
                    raise AdvtopoError(f"module {module!r} must be called once per forward pass with one tensor "
                                       f"output (it was called {len(got)} times)")
                out = got[0].detach().float().cpu()
                if out.dim() == 2:
                    out = out[:, :, None, None]
                elif out.dim() != 4:
                    raise AdvtopoError(f"module {module!r} gives {out.dim()}-D outputs; feature maps need "
                                       "N x C (units) or N x C x H x W (channels)")
                parts.append(out.mean(dim=(2, 3)).numpy() if reduce else out.numpy())
    finally:
        hook.remove()
        model.train(was_training)
    return np.concatenate(parts).astype(np.float32)


def channel_means(model: nn.Module, module: str, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """``(N, C)``: each channel's mean activation (over its spatial positions) per input."""
    return feature_maps(model, module, x, batch_size, reduce=True)


def top_examples(means: np.ndarray, channel: int, k: int = 12,
                 sample_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """The ``k`` inputs with the highest mean activation of ``channel`` (highest first; ties by row)."""
    m = np.asarray(means)
    if m.ndim != 2 or not 0 <= channel < m.shape[1]:
        raise AdvtopoError(f"channel {channel} is not in 0..{(m.shape[1] - 1) if m.ndim == 2 else '?'}")
    ids = np.arange(len(m)) if sample_ids is None else np.asarray(sample_ids)
    order = np.argsort(-m[:, channel], kind="stable")[:max(1, int(k))]
    return [{"sample_id": int(ids[i]), "activation": round(float(m[i, channel]), 6)} for i in order]


def _r(a: np.ndarray, nd: int = 4) -> list:
    return np.round(np.asarray(a, np.float64), nd).tolist()


def layer_view(clean_maps: np.ndarray, adv_maps: np.ndarray, clean_gates: np.ndarray | None,
               adv_gates: np.ndarray | None, threshold: float = 0.5, sort: str = "activation",
               clean_critical: np.ndarray | None = None, adv_critical: np.ndarray | None = None) -> dict[str, Any]:
    """One sample's channels at one layer, clean vs adversarial (JSON-able).

    ``clean_maps`` / ``adv_maps``: ``(C, H, W)``; gates: ``(C,)`` or None. Channels are listed in
    ``sort`` order: ``channel`` (index), ``activation`` (max of the clean and adversarial mean
    activation, highest first), ``gate`` (max of the two gates, highest first) or ``difference``
    (mean |adversarial - clean|, highest first). A channel is critical when its gate is
    ``>= threshold``, or as ``clean_critical`` / ``adv_critical`` (boolean ``(C,)``) say when
    given (stored critical sets, which rounded gates could contradict at the threshold).
    """
    if sort not in SORTS:
        raise AdvtopoError(f"sort={sort!r} is not valid; allowed: {', '.join(SORTS)}")
    c, a = np.asarray(clean_maps, np.float32), np.asarray(adv_maps, np.float32)
    if c.shape != a.shape or c.ndim != 3:
        raise AdvtopoError(f"clean and adversarial maps must both be C x H x W, got {c.shape} and {a.shape}")
    n = c.shape[0]
    gc = None if clean_gates is None else np.asarray(clean_gates, np.float32)
    ga = None if adv_gates is None else np.asarray(adv_gates, np.float32)
    for g in (gc, ga, clean_critical, adv_critical):
        if g is not None and np.shape(g) != (n,):
            raise AdvtopoError(f"gates must have one value per channel ({n}), got shape {np.shape(g)}")
    crit = {"clean": None if gc is None else (gc >= threshold if clean_critical is None else np.asarray(clean_critical, bool)),
            "adversarial": None if ga is None else (ga >= threshold if adv_critical is None else np.asarray(adv_critical, bool))}
    diff = a - c
    mean_c, mean_a = c.mean(axis=(1, 2)), a.mean(axis=(1, 2))
    key = {"channel": -np.arange(n, dtype=np.float64),
           "activation": np.maximum(mean_c, mean_a),
           "gate": (np.maximum(gc, ga) if gc is not None and ga is not None else np.zeros(n)),
           "difference": np.abs(diff).mean(axis=(1, 2))}[sort]
    order = np.argsort(-key, kind="stable")
    channels = []
    for i in order:
        row: dict[str, Any] = {"channel": int(i), "mean_clean": round(float(mean_c[i]), 6),
                               "mean_adversarial": round(float(mean_a[i]), 6),
                               "mean_abs_difference": round(float(np.abs(diff[i]).mean()), 6),
                               "clean": _r(c[i]), "adversarial": _r(a[i]), "difference": _r(diff[i])}
        for name, g in (("clean", gc), ("adversarial", ga)):
            row[f"gate_{name}"] = None if g is None else round(float(g[i]), 4)
            row[f"critical_{name}"] = None if g is None else bool(crit[name][i])
        channels.append(row)
    return {"n_channels": n, "height": int(c.shape[1]), "width": int(c.shape[2]), "sort": sort,
            "threshold": float(threshold),
            "range": {"activation": round(float(max(np.abs(c).max(initial=0), np.abs(a).max(initial=0))), 6),
                      "difference": round(float(np.abs(diff).max(initial=0)), 6)},
            "channels": channels}


def typical_path(critical: np.ndarray, rows: np.ndarray, share: float = 0.5) -> np.ndarray | None:
    """Neurons critical in at least ``share`` of the datapaths ``rows`` (boolean ``(C,)``); None if no rows."""
    rows = np.asarray(rows)
    if rows.dtype == bool:
        rows = np.flatnonzero(rows)
    if len(rows) == 0:
        return None
    return np.asarray(critical)[rows].mean(axis=0) >= share


def _jac(a: np.ndarray, b: np.ndarray) -> float:
    u = int((a | b).sum())
    return 1.0 if u == 0 else int((a & b).sum()) / u


def class_flow(clean: Datapaths, adversarial: Datapaths, y: Any, share: float = 0.5,
               max_pairs: int = 12) -> list[dict[str, Any]]:
    """Aggregated flow per (true class -> adversarial class) of fooled inputs (JSON-able).

    Fooled = the adversarial prediction differs from the label ``y``. Per layer:
    ``fooled`` = the group's aggregated adversarial datapath (neurons critical for at least
    ``share`` of its inputs); ``true`` / ``adversarial`` = the typical *clean* datapath of the
    inputs of that class the model gets right (label = clean prediction = class). The counts
    split the group's neurons into shared with the true class only, with the adversarial class
    only, with both, or with neither; ``jaccard_true`` / ``jaccard_adversarial`` are the mean,
    over the group's inputs, of the Jaccard of each input's adversarial datapath with the two
    typical paths. The ``max_pairs`` largest groups are kept (largest first).
    """
    if not 0 < share <= 1:
        raise AdvtopoError(f"share={share} must be in (0, 1]")
    y = np.asarray(y, np.int64)
    if len(y) != clean.n_samples or adversarial.n_samples != clean.n_samples:
        raise AdvtopoError(f"{len(y)} labels, {clean.n_samples} clean and {adversarial.n_samples} adversarial datapaths")
    ccrit, acrit = clean.critical, adversarial.critical
    fooled = adversarial.prediction != y
    correct = clean.prediction == y
    pairs: dict[tuple[int, int], list[int]] = {}
    for i in np.flatnonzero(fooled):
        pairs.setdefault((int(y[i]), int(adversarial.prediction[i])), []).append(int(i))
    ranked = sorted(pairs.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:max(1, int(max_pairs))]
    out = []
    for (t, a), rows in ranked:
        rows_arr = np.asarray(rows)
        layers = {}
        for k in clean.layers:
            f = typical_path(acrit[k], rows_arr, share)
            tp = typical_path(ccrit[k], correct & (y == t), share)
            ap = typical_path(ccrit[k], correct & (y == a), share)
            entry: dict[str, Any] = {"fooled": np.flatnonzero(f).tolist(),
                                     "true": None if tp is None else np.flatnonzero(tp).tolist(),
                                     "adversarial": None if ap is None else np.flatnonzero(ap).tolist()}
            tpm = tp if tp is not None else np.zeros_like(f)
            apm = ap if ap is not None else np.zeros_like(f)
            entry["counts"] = {"true_only": int((f & tpm & ~apm).sum()), "adversarial_only": int((f & apm & ~tpm).sum()),
                               "both": int((f & tpm & apm).sum()), "neither": int((f & ~tpm & ~apm).sum())}
            entry["jaccard_true"] = (None if tp is None else
                                     round(float(np.mean([_jac(acrit[k][i], tp) for i in rows])), 4))
            entry["jaccard_adversarial"] = (None if ap is None else
                                            round(float(np.mean([_jac(acrit[k][i], ap) for i in rows])), 4))
            layers[k] = entry
        out.append({"true": t, "adversarial": a, "n": len(rows), "sample_ids": rows,
                    "n_true_class": int((correct & (y == t)).sum()), "n_adversarial_class": int((correct & (y == a)).sum()),
                    "layers": layers})
    return out
