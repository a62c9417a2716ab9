"""Gradient attacks: FGSM (Goodfellow et al. 2015), PGD-Linf (Madry et al. 2018), PGD-L2.

All maximise the cross-entropy of the true class (untargeted) or minimise that of the
target class (targeted), in [0, 1] pixel space. ``seed`` makes random starts reproducible
call by call; ``seed=None`` draws from torch's global RNG (seeded by the trainer).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from advtopo.adversarial.attacks.base import Attack, check_eps, check_int, project
from advtopo.errors import AdvtopoError


def _loss_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor, targeted: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of the (signed) summed cross-entropy w.r.t. x, and per-sample losses."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    losses = F.cross_entropy(logits.float(), y, reduction="none")
    objective = -losses.sum() if targeted else losses.sum()
    (grad,) = torch.autograd.grad(objective, x)
    return grad.detach(), losses.detach()


def _generator(seed: int | None, device: torch.device) -> torch.Generator | None:
    if seed is None:
        return None
    return torch.Generator(device=device).manual_seed(int(seed))


class FGSM(Attack):
    """Fast Gradient Sign Method: one step of size ``eps`` along the sign of the gradient.

    ``random_start=True`` first moves to a uniform point of the eps-ball (as in "fast"
    adversarial training, Wong et al. 2020), then steps by ``alpha`` (default eps) and
    projects back.
    """

    name = "fgsm"

    def __init__(self, model: nn.Module, eps: float = 8 / 255, random_start: bool = False,
                 targeted: bool = False, alpha: float | None = None, seed: int | None = None) -> None:
        super().__init__(model, eps, targeted)
        self.random_start = bool(random_start)
        self.alpha = self.eps if alpha is None else check_eps(alpha, "alpha")
        self.seed = seed

    def perturb(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x0 = x
        if self.random_start:
            gen = _generator(self.seed, x.device)
            noise = torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype)
            x0 = (x + (2 * noise - 1) * self.eps).clamp(0, 1)
        grad, _ = _loss_grad(self.model, x0, y, self.targeted)
        return x0 + self.alpha * grad.sign()


class PGD(Attack):
    """Projected gradient descent in the Linf ball (Madry et al. 2018).

    ``alpha`` defaults to ``2.5 * eps / steps`` (Madry et al.'s rule, so the walk can cross
    the ball). With ``restarts > 1`` each sample keeps the restart with the highest loss
    among those that succeed, so more restarts never make the attack weaker.
    """

    name = "pgd"
    norm = "Linf"

    def __init__(self, model: nn.Module, eps: float = 8 / 255, alpha: float | None = None, steps: int = 10,
                 random_start: bool = True, restarts: int = 1, targeted: bool = False,
                 seed: int | None = None) -> None:
        super().__init__(model, eps, targeted)
        self.steps = check_int(steps, "steps", 1)
        self.alpha = 2.5 * self.eps / self.steps if alpha is None else check_eps(alpha, "alpha")
        self.random_start = bool(random_start)
        self.restarts = check_int(restarts, "restarts", 1)
        if self.restarts > 1 and not self.random_start:
            raise AdvtopoError("restarts > 1 needs random_start=True (otherwise every restart is the same)")
        self.seed = seed

    def _init(self, x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        noise = torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        return (x + (2 * noise - 1) * self.eps).clamp(0, 1)

    def _step(self, x_adv: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return x_adv + self.alpha * grad.sign()

    def _run(self, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        x_adv = self._init(x, gen) if self.random_start else x.clone()
        for _ in range(self.steps):
            grad, _ = _loss_grad(self.model, x_adv, y, self.targeted)
            x_adv = project(self._step(x_adv, grad), x, self.eps, self.norm)
        return x_adv

    def perturb(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gen = _generator(self.seed, x.device)
        best = self._run(x, y, gen)
        if self.restarts == 1:
            return best
        best_score = self._score(best, y)
        for _ in range(self.restarts - 1):
            cand = self._run(x, y, gen)
            score = self._score(cand, y)
            better = score > best_score
            best = torch.where(better.view(-1, 1, 1, 1), cand, best)
            best_score = torch.maximum(best_score, score)
        return best

    @torch.no_grad()
    def _score(self, x_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Success first (a large bonus), then loss (untargeted) or -loss (targeted)."""
        logits = self.model(x_adv).float()
        loss = F.cross_entropy(logits, y, reduction="none")
        pred = logits.argmax(1)
        success = (pred == y) if self.targeted else (pred != y)
        return success.float() * 1e6 + (-loss if self.targeted else loss)


class PGDL2(PGD):
    """Projected gradient descent in the L2 ball: steps along the normalised gradient.

    ``alpha`` defaults to ``2.5 * eps / steps``; the random start is uniform in the ball.
    """

    name = "pgd_l2"
    norm = "L2"

    def _init(self, x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
        n = len(x)
        d = x[0].numel()
        direction = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        direction = direction / direction.flatten(1).norm(dim=1).clamp_min(1e-12).view(n, 1, 1, 1)
        radius = torch.rand(n, generator=gen, device=x.device, dtype=x.dtype) ** (1.0 / d) * self.eps
        return (x + direction * radius.view(n, 1, 1, 1)).clamp(0, 1)

    def _step(self, x_adv: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        g = grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
        return x_adv + self.alpha * g
