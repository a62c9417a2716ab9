"""The one interface every attack shares: ``Attack(model, eps=..., ...)(x, y) -> x_adv``.

Like torchattacks / Captum: one algorithm per class, the same call signature, inputs and
outputs in [0, 1] pixel space (normalisation lives inside the model). The model is put in
eval mode for the attack and its previous mode restored afterwards, so attacks can be
called from inside a training loop without touching BatchNorm statistics.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn as nn

from advtopo.errors import AdvtopoError


def check_eps(eps: float, name: str = "eps") -> float:
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        raise AdvtopoError(f"{name}={eps!r} must be a number >= 0") from None
    if not math.isfinite(eps) or eps < 0:
        raise AdvtopoError(f"{name}={eps!r} must be a finite number >= 0")
    return eps


def check_int(value: int, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise AdvtopoError(f"{name}={value!r} must be an integer >= {minimum}")
    return value


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` (and every submodule) in eval mode; restore each module's mode after."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode


@contextlib.contextmanager
def frozen_params(model: nn.Module) -> Iterator[None]:
    """Skip parameter gradients during the attack (faster; leaves .grad untouched)."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


class Attack:
    """Base class. Subclasses implement :meth:`perturb` (model already in eval mode).

    ``targeted=True`` means ``y`` passed to ``__call__`` holds the *target* classes.
    """

    name = "attack"
    norm = "Linf"

    def __init__(self, model: nn.Module, eps: float, targeted: bool = False) -> None:
        if not isinstance(model, nn.Module):
            raise AdvtopoError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.eps = check_eps(eps)
        self.targeted = bool(targeted)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise AdvtopoError(f"{self.name}: x must be N x C x H x W, got shape {tuple(x.shape)}")
        if len(x) != len(y):
            raise AdvtopoError(f"{self.name}: {len(x)} images but {len(y)} labels")
        x = x.detach()
        if self.eps == 0 or len(x) == 0:
            return x.clone()
        with eval_mode(self.model), frozen_params(self.model), torch.enable_grad():
            x_adv = self.perturb(x, y.to(x.device))
        return self.project(x_adv.detach(), x)

    def perturb(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def project(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Into the eps-ball around ``x`` and into [0, 1]."""
        return project(x_adv, x, self.eps, self.norm)

    def __repr__(self) -> str:
        keys = [k for k in vars(self) if k != "model" and not k.startswith("_")]
        return f"{type(self).__name__}(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in keys) + ")"


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    delta = x_adv - x
    if norm == "Linf":
        delta = delta.clamp(-eps, eps)
    elif norm == "L2":
        n = delta.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (x.ndim - 1))
        delta = delta * torch.clamp(eps / n, max=1.0)
    else:  # pragma: no cover - internal
        raise ValueError(norm)
    out = (x + delta).clamp(0, 1)
    if norm == "L2":  # clamping to [0,1] only shrinks |delta|, but guard float rounding
        d = out - x
        n = d.flatten(1).norm(dim=1).view(-1, *[1] * (x.ndim - 1))
        out = torch.where(n > eps, (x + d * (eps / n.clamp_min(1e-12)) * (1 - 1e-6)).clamp(0, 1), out)
    return out
