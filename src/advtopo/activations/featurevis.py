"""Feature visualisation of activation directions (TopoAct's view of a mapper node).

Why: a mapper node is a cluster of activation vectors; TopoAct shows what its *average*
activation "looks like" by optimising an input image whose (summarised) layer activation
points in that direction. Objective, as Lucid's ``direction_neuron_cossim``, per image k
with target direction d_k and a = summarize(layer(jitter(x_k))):

    maximise  <a, d_k / |d_k|> * cos(a, d_k) ** cossim_pow  -  tv * TV(x_k)  -  l1 * mean(x_k)

with x_k = sigmoid(p_k) (pixels stay in the data range [0, 1]), random integer jitter of up
to ``jitter`` pixels per step, Adam on the logits p. All K images are optimised at once
(one batch; the loss is a sum, so each image gets only its own gradient) and the result is
deterministic for a seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from advtopo.activations.capture import LayerSpec, resolve_modules
from advtopo.activations.summaries import SUMMARIES, summarize, summary_dim
from advtopo.errors import AdvtopoError, check_choice


@dataclass
class FeatureVisResult:
    images: np.ndarray  # (K, C, H, W) float32 in [0, 1]
    cosine: np.ndarray  # (K,) cosine between the final image's activation and its direction


class FeatureVisualizer:
    """Images whose activation at ``layer`` (reduced by ``summary``) points along given directions."""

    def __init__(self, model: nn.Module, layer: str, summary: str = "flatten", steps: int = 128,
                 lr: float = 0.05, jitter: int = 1, tv: float = 0.05, l1: float = 0.0, cossim_pow: float = 1.0,
                 seed: int = 0, device: str = "cpu") -> None:
        self.model = model
        self.layer = layer
        self.summary = summary
        self.steps = steps
        self.lr = lr
        self.jitter = jitter
        self.tv = tv
        self.l1 = l1
        self.cossim_pow = cossim_pow
        self.seed = seed
        self.device = device

    def _validate(self) -> nn.Module:
        check_choice("summary", self.summary, SUMMARIES)
        if isinstance(self.steps, bool) or not isinstance(self.steps, (int, np.integer)) or self.steps < 1:
            raise AdvtopoError(f"steps={self.steps!r} is not valid; allowed: an integer >= 1")
        if not (self.lr > 0):
            raise AdvtopoError(f"lr={self.lr!r} is not valid; allowed: a number > 0")
        if int(self.jitter) < 0 or self.tv < 0 or self.l1 < 0 or self.cossim_pow < 0:
            raise AdvtopoError(f"jitter={self.jitter!r}, tv={self.tv!r}, cossim_pow={self.cossim_pow!r}: "
                               "allowed: numbers >= 0")
        return resolve_modules(self.model, [LayerSpec(self.layer)])[self.layer]

    def fit(self, directions: np.ndarray, input_shape: tuple[int, int, int]) -> FeatureVisResult:
        """Optimise one image (``input_shape`` = C, H, W) per row of ``directions`` (K, D)."""
        module = self._validate()
        d = np.asarray(directions, dtype=np.float32)
        if d.ndim == 1:
            d = d[None]
        if d.ndim != 2 or len(d) == 0 or not np.all(np.isfinite(d)):
            raise AdvtopoError(f"directions must be a finite (K, D) array with K >= 1; got shape {d.shape}")
        model = self.model.eval()
        dev = torch.device(self.device)
        captured: list[torch.Tensor] = []
        hook = module.register_forward_hook(lambda _m, _i, out: captured.append(out))
        try:
            with torch.no_grad():
                captured.clear()
                model(torch.zeros((1, *input_shape), device=dev))
            width = summary_dim(tuple(captured[0].shape[1:]), self.summary)
            if d.shape[1] != width:
                raise AdvtopoError(f"directions have {d.shape[1]} columns but layer {self.layer!r} with summary "
                                   f"{self.summary!r} gives {width}")
            target = torch.from_numpy(d).to(dev)
            unit = target / target.norm(dim=1, keepdim=True).clamp_min(1e-12)
            # per-image init noise from (seed, k) and jitter from the seed alone: image k does not
            # depend on how many images share its batch
            init = np.stack([np.random.default_rng([int(self.seed), k]).normal(0.0, 0.01, input_shape)
                             for k in range(len(d))]).astype(np.float32)
            logits = torch.from_numpy(init).to(dev).requires_grad_(True)
            gen = torch.Generator(device="cpu").manual_seed(int(self.seed))
            opt = torch.optim.Adam([logits], lr=self.lr)
            params = [p.requires_grad for p in model.parameters()]
            for p in model.parameters():
                p.requires_grad_(False)
            try:
                shifts = torch.randint(-int(self.jitter), int(self.jitter) + 1, (self.steps, 2), generator=gen)
                for step in range(self.steps):
                    x = torch.sigmoid(logits)
                    dy, dx = int(shifts[step, 0]), int(shifts[step, 1])
                    xj = torch.roll(x, shifts=(dy, dx), dims=(2, 3)) if (dy or dx) else x
                    captured.clear()
                    model(xj)
                    a = summarize(captured[0], self.summary, differentiable=True)
                    loss = -self._objective(a, unit).sum() + self.tv * _total_variation(x).sum() \
                        + self.l1 * x.mean(dim=(1, 2, 3)).sum()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
            finally:
                for p, r in zip(model.parameters(), params):
                    p.requires_grad_(r)
            with torch.no_grad():
                x = torch.sigmoid(logits)
                captured.clear()
                model(x)
                a = summarize(captured[0], self.summary)
                cos = torch.nn.functional.cosine_similarity(a, unit, dim=1)
        finally:
            hook.remove()
        return FeatureVisResult(images=x.detach().cpu().numpy().astype(np.float32), cosine=cos.cpu().numpy())

    def _objective(self, a: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
        dot = (a * unit).sum(dim=1)
        if self.cossim_pow == 0:
            return dot
        cos = torch.nn.functional.cosine_similarity(a, unit, dim=1).clamp_min(0.1)  # as Lucid
        return dot * cos ** self.cossim_pow


def _total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbouring pixels, per image (smooth, readable images)."""
    dh = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().mean(dim=(1, 2, 3))
    dw = (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean(dim=(1, 2, 3))
    return dh + dw
