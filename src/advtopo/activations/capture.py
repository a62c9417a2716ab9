"""Capture the outputs of named layers with forward hooks, summarised per sample.

:func:`iter_capture` yields one batch at a time (nothing accumulates), :func:`capture`
collects into memory or streams into a zarr store. The same forward pass also gives the
predictions (class, confidence, margin, loss) so activations and the sample table agree.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from advtopo.activations.store import ActivationWriter
from advtopo.activations.summaries import SUMMARIES, summarize, summary_dim
from advtopo.errors import AdvtopoError, check_choice, did_you_mean


@dataclass(frozen=True)
class LayerSpec:
    """Capture module ``module`` reduced by ``summary``; stored under ``name``."""

    module: str
    summary: str = "flatten"
    name: str | None = None

    @property
    def key(self) -> str:
        return self.name or self.module


def as_layer_specs(layers: Any, summaries: str | Mapping[str, str] | None = None) -> list[LayerSpec]:
    """Accept ``["fc1"]``, ``{"relu2": "top_l2"}``, LayerSpecs or dicts; validate summaries."""
    if isinstance(layers, str):
        layers = [layers]
    if isinstance(layers, Mapping):
        layers = [LayerSpec(m, s) for m, s in layers.items()]
    specs = []
    for item in layers:
        if isinstance(item, LayerSpec):
            spec = item
        elif isinstance(item, Mapping):
            spec = LayerSpec(item["module"], item.get("summary", "flatten"), item.get("name"))
        else:
            s = summaries if isinstance(summaries, str) else (summaries or {}).get(item, "flatten")
            spec = LayerSpec(str(item), s)
        check_choice(f"summary of layer {spec.key!r}", spec.summary, SUMMARIES)
        specs.append(spec)
    keys = [s.key for s in specs]
    if len(set(keys)) != len(keys):
        raise AdvtopoError(f"layer names must be unique, got {keys}; give repeated modules a distinct name")
    return specs


def resolve_modules(model: nn.Module, specs: Sequence[LayerSpec]) -> dict[str, nn.Module]:
    modules = dict(model.named_modules())
    valid = [n for n in modules if n]
    out = {}
    for spec in specs:
        if spec.module not in modules or not spec.module:
            raise AdvtopoError(f"unknown layer {spec.module!r}{did_you_mean(spec.module, valid)}; "
                               f"valid layers: {', '.join(valid)}")
        out[spec.key] = modules[spec.module]
    return out


def prediction_stats(logits: torch.Tensor, y: torch.Tensor) -> dict[str, np.ndarray]:
    """prediction, confidence (max softmax), margin (true logit - best other logit), loss (CE)."""
    logits = logits.detach().float()
    y = y.to(logits.device)
    prob = logits.softmax(dim=1)
    conf, pred = prob.max(dim=1)
    true = logits.gather(1, y.view(-1, 1)).squeeze(1)
    other = logits.scatter(1, y.view(-1, 1), float("-inf")).amax(dim=1)
    loss = F.cross_entropy(logits, y, reduction="none")
    return {"prediction": pred.cpu().numpy().astype(np.int64), "confidence": conf.cpu().numpy(),
            "margin": (true - other).cpu().numpy(), "loss": loss.cpu().numpy(),
            "correct": (pred == y).cpu().numpy()}


def _as_tensors(data: Any, labels: Any = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    if hasattr(data, "x") and hasattr(data, "y"):
        return data.x, data.y
    x = data if isinstance(data, torch.Tensor) else torch.from_numpy(np.asarray(data, dtype=np.float32))
    y = None if labels is None else (labels if isinstance(labels, torch.Tensor)
                                     else torch.from_numpy(np.asarray(labels, dtype=np.int64)))
    return x, y


def iter_capture(model: nn.Module, data: Any, layers: Any, labels: Any = None, *,
                 summaries: str | Mapping[str, str] | None = None, batch_size: int = 256,
                 device: str | torch.device = "cpu", sample_ids: np.ndarray | None = None,
                 seed: int = 0) -> Iterator[tuple[int, dict[str, np.ndarray], dict[str, np.ndarray] | None]]:
    """Yield ``(start_row, {layer: N_b x D}, prediction stats or None)`` batch by batch."""
    specs = as_layer_specs(layers, summaries)
    mods = resolve_modules(model, specs)
    x, y = _as_tensors(data, labels)
    n = len(x)
    ids = np.arange(n) if sample_ids is None else np.asarray(sample_ids)
    if len(ids) != n:
        raise AdvtopoError(f"sample_ids has {len(ids)} entries for {n} samples")
    if batch_size < 1:
        raise AdvtopoError(f"batch_size={batch_size} must be >= 1")
    device = torch.device(device)
    grabbed: dict[str, torch.Tensor] = {}
    state = {"ids": ids[:0]}
    hooks = []
    for spec in specs:
        def hook(_m, _inp, out, spec=spec):
            if isinstance(out, (tuple, list)):
                out = out[0]
            if spec.key in grabbed:  # a module called twice in one forward: keep the first call
                return
            summary = summarize(out, spec.summary, state["ids"], seed)
            if summary.untyped_storage().data_ptr() == out.untyped_storage().data_ptr():
                # a view of the output: copy now, before a later in-place op (ReLU(inplace=True),
                # `out += shortcut`) overwrites it in this same forward pass
                summary = summary.clone()
            grabbed[spec.key] = summary
        hooks.append(mods[spec.key].register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, n, batch_size):
                xb = x[start:start + batch_size].to(device)
                state["ids"] = ids[start:start + len(xb)]
                grabbed.clear()
                logits = model(xb)
                blocks = {s.key: grabbed[s.key].cpu().numpy() for s in specs}
                stats = None
                if y is not None:
                    stats = prediction_stats(logits, y[start:start + len(xb)])
                yield start, blocks, stats
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)


def layer_dims(model: nn.Module, input_shape: tuple[int, ...], specs: Sequence[LayerSpec],
               device: str | torch.device = "cpu") -> dict[str, int]:
    """Width of each captured layer (one dummy forward pass)."""
    mods = resolve_modules(model, specs)
    shapes: dict[str, tuple[int, ...]] = {}
    def hook(_m, _i, out, k):
        out = out[0] if isinstance(out, (tuple, list)) else out
        shapes.setdefault(k, tuple(out.shape[1:]))  # returns None: the output is not replaced

    hooks = [mods[s.key].register_forward_hook(lambda m, i, o, k=s.key: hook(m, i, o, k)) for s in specs]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return {s.key: summary_dim(shapes[s.key], s.summary) for s in specs}


def capture(model: nn.Module, data: Any, layers: Any, labels: Any = None, *,
            summaries: str | Mapping[str, str] | None = None, batch_size: int = 256,
            device: str | torch.device = "cpu", sample_ids: np.ndarray | None = None, seed: int = 0,
            store: str | os.PathLike[str] | None = None, attrs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Capture ``layers`` of ``model`` on ``data`` (an ImageDataset, tensor or array).

    Without ``store`` returns ``{"activations": {layer: N x D}, "stats": {...}}`` in memory.
    With ``store`` (a path) streams each batch into a zarr group there and returns
    ``{"store": path, "stats": {...}}``: memory stays at one batch of activations.
    """
    specs = as_layer_specs(layers, summaries)
    x, y = _as_tensors(data, labels)
    stats_parts: dict[str, list[np.ndarray]] = {}
    writer = None
    acts: dict[str, list[np.ndarray]] = {s.key: [] for s in specs}
    if store is not None:
        dims = layer_dims(model, tuple(x.shape[1:]), specs, device)
        writer = ActivationWriter(store, len(x), dims, chunk_rows=batch_size,
                                  attrs={"summaries": {s.key: s.summary for s in specs},
                                         "modules": {s.key: s.module for s in specs}, **(attrs or {})})
    for start, blocks, stats in iter_capture(model, x, specs, y, batch_size=batch_size, device=device,
                                             sample_ids=sample_ids, seed=seed):
        if writer is not None:
            writer.write(start, blocks)
        else:
            for k, v in blocks.items():
                acts[k].append(v)
        if stats is not None:
            for k, v in stats.items():
                stats_parts.setdefault(k, []).append(v)
    stats_out = {k: np.concatenate(v) for k, v in stats_parts.items()}
    if writer is not None:
        writer.close()
        return {"store": Path(store), "stats": stats_out}
    return {"activations": {k: (np.concatenate(v) if v else np.zeros((0, 0), np.float32)) for k, v in acts.items()},
            "stats": stats_out}
