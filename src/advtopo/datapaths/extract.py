"""Critical datapaths (Cao et al., TVCG 2021): which neurons carry one input's prediction.

A gate ``g = sigmoid(theta)`` per neuron (a channel of a conv layer, a unit of a linear
layer) multiplies that neuron's output through a forward hook. With the network frozen,
the gates of each input are trained to keep the prediction while an L1 penalty pushes
them to zero::

    loss_b = fit(f(x_b; g_b), target_b) + lam * mean_{l, c} g_b[l, c]

``fit`` is the cross-entropy to the originally predicted class (``target="prediction"``,
the default), to a given label (``"label"``) or the KL divergence to the original output
distribution (``"distribution"``). The critical neurons are those with ``g >= threshold``.

Many inputs are optimised at once: the gates of layer ``l`` form a ``(B, C_l)`` tensor and
the summed loss gives each input's gates exactly the gradient of its own loss (the model is
in eval mode, so inputs do not interact), so a batch gives the same gates as one input at
a time, up to float rounding.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from advtopo.activations import as_layer_specs, resolve_modules
from advtopo.errors import AdvtopoError, check_choice

TARGETS = ("prediction", "label", "distribution")
INIT_LOGIT = 3.0  # every gate starts at sigmoid(3) = 0.953: the whole network is on
FORMAT = "advtopo-datapaths-v1"


@dataclass
class Datapaths:
    """Gates of ``n_samples`` inputs at ``layers``; critical neurons are ``gates >= threshold``.

    ``prediction``: the model's class for each input without gates; ``target``: the class
    the gates were trained to keep; ``gated_prediction``: the class with only the critical
    neurons on (hard 0/1 mask); ``soft_prediction``: the class with the trained gates.
    """

    layers: list[str]
    gates: dict[str, np.ndarray]
    prediction: np.ndarray
    target: np.ndarray
    gated_prediction: np.ndarray
    soft_prediction: np.ndarray
    threshold: float = 0.5
    params: dict[str, Any] = field(default_factory=dict)

    # -- derived -------------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        return int(len(self.prediction))

    @property
    def widths(self) -> dict[str, int]:
        return {k: int(self.gates[k].shape[1]) for k in self.layers}

    @property
    def critical(self) -> dict[str, np.ndarray]:
        """Boolean masks ``(B, C_l)``: the neurons on the datapath."""
        return {k: self.gates[k] >= self.threshold for k in self.layers}

    @property
    def sizes(self) -> dict[str, np.ndarray]:
        """Number of critical neurons per input and layer, ``(B,)`` int."""
        return {k: v.sum(axis=1).astype(np.int64) for k, v in self.critical.items()}

    @property
    def kept_fraction(self) -> dict[str, float]:
        """Mean fraction of each layer's neurons that are critical."""
        return {k: float(v.mean()) if v.size else float("nan") for k, v in self.critical.items()}

    @property
    def kept_fraction_total(self) -> float:
        """Fraction of all gated neurons (all layers together) that are critical, averaged over inputs."""
        total = sum(self.widths.values())
        kept = sum(self.sizes[k] for k in self.layers)
        return float(np.mean(kept / total)) if self.n_samples else float("nan")

    @property
    def retained(self) -> np.ndarray:
        """Per input: does the network with only the critical neurons still give the target class?"""
        return self.gated_prediction == self.target

    @property
    def retained_accuracy(self) -> float:
        """Fraction of inputs whose hard-masked network still predicts the target class."""
        return float(self.retained.mean()) if self.n_samples else float("nan")

    @property
    def retained_accuracy_soft(self) -> float:
        return float((self.soft_prediction == self.target).mean()) if self.n_samples else float("nan")

    def critical_ids(self, i: int) -> dict[str, list[int]]:
        """The critical neuron ids of input ``i``, per layer."""
        return {k: np.flatnonzero(v[i]).tolist() for k, v in self.critical.items()}

    def subset(self, index: Any) -> "Datapaths":
        idx = np.asarray(index)
        return Datapaths(list(self.layers), {k: self.gates[k][idx] for k in self.layers}, self.prediction[idx],
                         self.target[idx], self.gated_prediction[idx], self.soft_prediction[idx],
                         self.threshold, dict(self.params))

    def with_threshold(self, threshold: float) -> "Datapaths":
        """The same gates read at another threshold (``gated_prediction`` is not recomputed)."""
        _check_threshold(threshold)
        d = self.subset(slice(None))
        d.threshold = float(threshold)
        return d

    def summary(self) -> dict[str, Any]:
        """JSON-able: retained accuracy, kept fractions and mean sizes per layer."""
        return {"n_samples": self.n_samples, "layers": list(self.layers), "widths": self.widths,
                "threshold": self.threshold, "retained_accuracy": self.retained_accuracy,
                "retained_accuracy_soft": self.retained_accuracy_soft,
                "kept_fraction": self.kept_fraction, "kept_fraction_total": self.kept_fraction_total,
                "mean_size": {k: float(v.mean()) if len(v) else float("nan") for k, v in self.sizes.items()},
                "params": dict(self.params)}

    # -- files ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``<path>.npz`` (arrays) and ``<path>.json`` (layers, params); no pickle."""
        from advtopo.utils import atomic_path, atomic_write_json

        stem = _stem(path)
        arrays = {f"gates_{i}": self.gates[k].astype(np.float32) for i, k in enumerate(self.layers)}
        arrays.update(prediction=self.prediction, target=self.target, gated_prediction=self.gated_prediction,
                      soft_prediction=self.soft_prediction)
        npz = stem.with_name(stem.name + ".npz")
        with atomic_path(npz) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        meta = {"format": FORMAT, "layers": list(self.layers), "threshold": self.threshold,
                "params": self.params, "summary": self.summary()}
        js = stem.with_name(stem.name + ".json")
        atomic_write_json(js, meta)
        return npz, js

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Datapaths":
        stem = _stem(path)
        npz, js = stem.with_name(stem.name + ".npz"), stem.with_name(stem.name + ".json")
        for p in (npz, js):
            if not p.is_file():
                raise AdvtopoError(f"datapaths file {p} does not exist (save() writes .npz + .json)")
        meta = json.loads(js.read_text())
        if meta.get("format") != FORMAT:
            raise AdvtopoError(f"{js} is not a datapaths file (format {meta.get('format')!r}, expected {FORMAT!r})")
        with np.load(npz, allow_pickle=False) as f:
            gates = {k: f[f"gates_{i}"] for i, k in enumerate(meta["layers"])}
            arr = {k: f[k] for k in ("prediction", "target", "gated_prediction", "soft_prediction")}
        return cls(list(meta["layers"]), gates, threshold=float(meta["threshold"]), params=meta.get("params", {}),
                   **arr)


def _stem(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".npz", ".json") else p


def _check_threshold(threshold: Any) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < threshold < 1.0:
        raise AdvtopoError(f"threshold={threshold!r} must be a number in (0, 1), e.g. 0.5")


@contextlib.contextmanager
def _frozen_eval(model: nn.Module) -> Iterator[None]:
    """Eval mode (no batch statistics: inputs do not interact) and no parameter gradients."""
    was_training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)
        model.train(was_training)


class DatapathExtractor:
    """Find the critical datapath of each input (Cao et al. 2021), many inputs at once.

    Parameters
    ----------
    layers : module names of the model whose outputs are gated (channels of 4-D outputs,
        units of 2-D outputs), as in :mod:`advtopo.activations` (``["relu1", "relu2", "relu3"]``).
    lam : weight of the sparsity penalty ``lam * mean gate`` (>= 0). Larger = smaller paths.
    steps : Adam steps per input (>= 1).
    lr : Adam learning rate on the gate logits (> 0).
    threshold : a neuron is critical when its gate is >= threshold, in (0, 1).
    target : ``"prediction"`` (CE to the model's own class), ``"label"`` (CE to ``y``) or
        ``"distribution"`` (KL to the model's own output distribution).
    batch_size : inputs optimised together (memory only; results do not depend on it).
    seed : seeds torch's RNG while fitting (the objective itself draws no random numbers).
    device : where to compute ("cpu", "cuda", "auto"); ``fit`` moves the model there.
    verbose : show a tqdm progress bar.
    """

    def __init__(self, layers: Sequence[str] | str, lam: float = 2.0, steps: int = 150, lr: float = 0.1,
                 threshold: float = 0.5, target: str = "prediction", batch_size: int = 256, seed: int = 0,
                 device: str = "cpu", verbose: bool = False) -> None:
        self.layers = layers
        self.lam = lam
        self.steps = steps
        self.lr = lr
        self.threshold = threshold
        self.target = target
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.verbose = verbose

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("layers", "lam", "steps", "lr", "threshold", "target",
                                              "batch_size", "seed")}

    def _validate(self) -> list[str]:
        layers = [self.layers] if isinstance(self.layers, str) else list(self.layers or [])
        if not layers or not all(isinstance(x, str) and x for x in layers):
            raise AdvtopoError(f"layers={self.layers!r} must be a non-empty list of module names, e.g. ['relu2', 'fc1']")
        if len(set(layers)) != len(layers):
            raise AdvtopoError(f"layers={layers} has repeated names")
        for name in ("lam", "lr"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise AdvtopoError(f"{name}={v!r} must be a finite number")
        if self.lam < 0:
            raise AdvtopoError(f"lam={self.lam} must be >= 0 (the weight of the sparsity penalty)")
        if not self.lr > 0:
            raise AdvtopoError(f"lr={self.lr} must be > 0")
        for name in ("steps", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise AdvtopoError(f"{name}={v!r} must be an integer >= 1")
        _check_threshold(self.threshold)
        check_choice("target", self.target, TARGETS)
        return layers

    def validate(self) -> "DatapathExtractor":
        """Check the parameters (without a model); raises AdvtopoError naming the parameter."""
        self._validate()
        return self

    # -- the work ------------------------------------------------------------------------
    def fit(self, model: nn.Module, x: Any, y: Any = None) -> Datapaths:
        """Datapaths of the inputs ``x`` (tensor/array ``[N, C, H, W]`` or an ImageDataset)."""
        from advtopo.utils import resolve_device

        layers = self._validate()
        if hasattr(x, "x") and hasattr(x, "y"):
            x, y = x.x, (x.y if y is None else y)
        x = _tensor(x, torch.float32, "x")
        if x.dim() < 2 or len(x) == 0:
            raise AdvtopoError(f"x must be a non-empty batch [N, ...], got shape {tuple(x.shape)}")
        if self.target == "label":
            if y is None:
                raise AdvtopoError("target='label' needs the labels y")
        if y is not None:
            y = _tensor(y, torch.int64, "y")
            if len(y) != len(x):
                raise AdvtopoError(f"y has {len(y)} entries for {len(x)} inputs")
        device = resolve_device(self.device)
        modules = resolve_modules(model, as_layer_specs(layers))
        model = model.to(device)
        widths = self._probe(model, modules, x[:1].to(device))
        n = len(x)
        gates = {k: np.zeros((n, widths[k]), np.float32) for k in layers}
        out = {k: np.zeros(n, np.int64) for k in ("prediction", "target", "gated_prediction", "soft_prediction")}
        state: dict[str, Any] = {"gates": None}

        def hook(_m, _inp, output, key):
            g = state["gates"]
            if g is None:
                return None
            g = g[key]
            return output * g.view(g.shape[0], g.shape[1], *([1] * (output.dim() - 2)))

        hooks = [modules[k].register_forward_hook(lambda m, i, o, k=k: hook(m, i, o, k)) for k in layers]
        bar = _progress(n * self.steps, self.verbose)
        try:
            with _frozen_eval(model), torch.random.fork_rng(devices=[] if device.type == "cpu" else [device]):
                torch.manual_seed(self.seed)
                for start in range(0, n, self.batch_size):
                    xb = x[start:start + self.batch_size].to(device)
                    yb = None if y is None else y[start:start + self.batch_size].to(device)
                    res = self._fit_batch(model, xb, yb, layers, widths, state, bar)
                    stop = start + len(xb)
                    for k in layers:
                        gates[k][start:stop] = res["gates"][k]
                    for k in out:
                        out[k][start:stop] = res[k]
        finally:
            for h in hooks:
                h.remove()
            if bar is not None:
                bar.close()
        params = {k: v for k, v in self.get_params().items() if k != "batch_size"}
        params["layers"] = layers
        return Datapaths(layers, gates, threshold=float(self.threshold), params=params, **out)

    extract = fit

    def _probe(self, model: nn.Module, modules: dict[str, nn.Module], x1: torch.Tensor) -> dict[str, int]:
        """Output width of each gated module; each must be called once per forward."""
        seen: dict[str, list[tuple[int, ...]]] = {k: [] for k in modules}
        hooks = [m.register_forward_hook(lambda _m, _i, o, k=k: seen[k].append(
            tuple(o.shape) if isinstance(o, torch.Tensor) else ())) for k, m in modules.items()]
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                model(x1)
        except RuntimeError as exc:
            raise AdvtopoError(f"input shape {tuple(x1.shape[1:])} does not fit {type(model).__name__}: "
                               f"{str(exc).splitlines()[0]}") from None
        finally:
            for h in hooks:
                h.remove()
            model.train(was_training)
        widths = {}
        for k, shapes in seen.items():
            if len(shapes) != 1:
                raise AdvtopoError(f"layer {k!r} is called {len(shapes)} times in one forward pass; "
                                   "gate a module that is called exactly once")
            if len(shapes[0]) < 2:
                raise AdvtopoError(f"layer {k!r} does not output a [N, C, ...] tensor; cannot gate it")
            widths[k] = int(shapes[0][1])
        return widths

    def _fit_batch(self, model, xb, yb, layers, widths, state, bar) -> dict[str, Any]:
        b = len(xb)
        state["gates"] = None
        with torch.no_grad():
            logits0 = model(xb).float()
        pred0 = logits0.argmax(1)
        tgt = yb if self.target == "label" else pred0
        logp0 = F.log_softmax(logits0, 1)
        theta = {k: torch.full((b, widths[k]), INIT_LOGIT, device=xb.device, requires_grad=True) for k in layers}
        opt = torch.optim.Adam(list(theta.values()), lr=float(self.lr))
        n_total = float(sum(widths.values()))
        lam = float(self.lam)
        for _ in range(self.steps):
            g = {k: torch.sigmoid(t) for k, t in theta.items()}
            state["gates"] = g
            out = model(xb).float()
            if self.target == "distribution":
                fit = (logp0.exp() * (logp0 - F.log_softmax(out, 1))).sum(1)
            else:
                fit = F.cross_entropy(out, tgt, reduction="none")
            l1 = torch.stack([gk.sum(1) for gk in g.values()]).sum(0) / n_total
            # summed over inputs: each input's gates get exactly the gradient of its own loss
            loss = (fit + lam * l1).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if bar is not None:
                bar.update(b)
        with torch.no_grad():
            g = {k: torch.sigmoid(t).detach() for k, t in theta.items()}
            state["gates"] = g
            soft = model(xb).argmax(1)
            state["gates"] = {k: (v >= self.threshold).to(v.dtype) for k, v in g.items()}
            hard = model(xb).argmax(1)
        state["gates"] = None
        return {"gates": {k: v.cpu().numpy().astype(np.float32) for k, v in g.items()},
                "prediction": pred0.cpu().numpy(), "target": tgt.cpu().numpy(),
                "gated_prediction": hard.cpu().numpy(), "soft_prediction": soft.cpu().numpy()}


def _tensor(v: Any, dtype: torch.dtype, name: str) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        return v.detach().to(dtype)
    try:
        return torch.from_numpy(np.asarray(v)).to(dtype)
    except (TypeError, ValueError):
        raise AdvtopoError(f"{name} must be a tensor or an array, got {type(v).__name__}") from None


def _progress(total: int, verbose: bool):
    if not verbose:
        return None
    from tqdm.auto import tqdm  # a dependency

    return tqdm(total=total, desc="datapaths", unit="input-step", leave=False, dynamic_ncols=True)
