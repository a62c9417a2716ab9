"""Run torchattacks' AutoAttack, APGD and CW through advtopo's ``Attack`` interface.

torchattacks is optional (install it with ``pip install --no-deps torchattacks==3.5.1``):
it is imported only when one of these attacks is created.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from advtopo.adversarial.attacks.base import Attack, check_int
from advtopo.checks import check_number, check_seed
from advtopo.errors import AdvtopoError, check_choice


def import_torchattacks():
    """The torchattacks module, or an AdvtopoError that says how to install it."""
    try:
        import torchattacks
    except ImportError:
        raise AdvtopoError("this attack needs torchattacks: pip install --no-deps torchattacks==3.5.1") from None
    return torchattacks


class TorchattacksAttack(Attack):
    """Wrap a torchattacks class. ``eps`` keeps advtopo's meaning (Linf or L2 radius)."""

    name = "torchattacks"

    def __init__(self, model: nn.Module, cls_name: str, eps: float, norm: str = "Linf",
                 targeted: bool = False, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(model, eps, targeted)
        check_choice("norm", norm, ("Linf", "L2"))  # checked here: torchattacks checks only when it runs
        if seed is not None:
            check_seed("seed", seed)
        self.cls_name = cls_name
        self.norm = norm
        self.seed = seed
        self.kwargs = kwargs
        self.name = cls_name.lower()

    def _build(self):
        ta = import_torchattacks()
        cls = getattr(ta, self.cls_name)
        kw = dict(self.kwargs)
        if self.cls_name != "CW":
            kw["eps"] = self.eps
            kw["norm"] = self.norm
        if self.seed is not None and self.cls_name in ("AutoAttack", "APGD", "APGDT"):
            kw.setdefault("seed", int(self.seed))
        try:
            atk = cls(self.model, **kw)
        except TypeError as exc:
            raise AdvtopoError(f"{self.cls_name}: bad option ({exc})") from None
        if self.targeted:
            atk.set_mode_targeted_by_label(quiet=True)
        return atk

    def perturb(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        atk = self._build()
        # torchattacks toggles eval/train itself and checks inputs are in [0, 1]
        with torch.enable_grad():
            return atk(x, y).detach()

    def project(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.cls_name == "CW":  # CW is unbounded (minimal perturbation): clamp only
            return x_adv.clamp(0, 1)
        return super().project(x_adv, x)


def autoattack(model: nn.Module, eps: float = 8 / 255, norm: str = "Linf", version: str = "standard",
               n_classes: int = 10, seed: int | None = 0, targeted: bool = False) -> TorchattacksAttack:
    """AutoAttack (Croce & Hein 2020) via torchattacks."""
    check_choice("version", version, ("standard", "plus", "rand"))
    check_int(n_classes, "n_classes", 2)
    return TorchattacksAttack(model, "AutoAttack", eps, norm=norm, version=version,
                              n_classes=n_classes, seed=seed, targeted=targeted)


def apgd(model: nn.Module, eps: float = 8 / 255, norm: str = "Linf", steps: int = 10,
         n_restarts: int = 1, loss: str = "ce", seed: int | None = 0, targeted: bool = False) -> TorchattacksAttack:
    """APGD (Croce & Hein 2020) via torchattacks."""
    check_choice("loss", loss, ("ce", "dlr"))
    check_int(steps, "steps")
    check_int(n_restarts, "n_restarts")
    return TorchattacksAttack(model, "APGD", eps, norm=norm, steps=steps, n_restarts=n_restarts,
                              loss=loss, seed=seed, targeted=targeted)


def cw(model: nn.Module, eps: float = 1.0, c: float = 1.0, kappa: float = 0.0, steps: int = 50,
       lr: float = 0.01, targeted: bool = False) -> TorchattacksAttack:
    """Carlini-Wagner L2 via torchattacks. CW looks for a minimal perturbation and is not
    bounded by ``eps``: any eps > 0 runs it (eps=0 returns x, as for every attack)."""
    check_number("c", c, 0, lo_open=True)
    check_number("kappa", kappa, 0)
    check_int(steps, "steps")
    check_number("lr", lr, 0, lo_open=True)
    return TorchattacksAttack(model, "CW", eps, norm="L2", c=c, kappa=kappa,
                              steps=steps, lr=lr, targeted=targeted)
