"""Attacks, one class per algorithm, all called as ``attack(x, y) -> x_adv``."""
from __future__ import annotations

from typing import Any

import torch.nn as nn

from advtopo.adversarial.attacks.base import Attack, eval_mode, project
from advtopo.adversarial.attacks.gradient import FGSM, PGD, PGDL2
from advtopo.adversarial.attacks.torchattacks_adapter import TorchattacksAttack, apgd, autoattack, cw
from advtopo.registry import Registry

ATTACKS: Registry = Registry("attack")
ATTACKS.register("fgsm", help="Fast Gradient Sign Method (Linf, one step)")(FGSM)
ATTACKS.register("pgd", help="Projected Gradient Descent, Linf ball (Madry et al.)")(PGD)
ATTACKS.register("pgd_l2", help="Projected Gradient Descent, L2 ball")(PGDL2)
ATTACKS.register("autoattack", help="AutoAttack via torchattacks (optional dependency)")(autoattack)
ATTACKS.register("apgd", help="APGD via torchattacks (optional dependency)")(apgd)
ATTACKS.register("cw", help="Carlini-Wagner L2 via torchattacks (unbounded; optional dependency)")(cw)


def create_attack(name: str, model: nn.Module, **kwargs: Any) -> Attack:
    """Build attack ``name`` (see ``ATTACKS.names()``) for ``model``.

    Unknown options raise an error naming the attack's accepted options.
    """
    import inspect

    from advtopo.errors import AdvtopoError, did_you_mean

    factory = ATTACKS.get(name)
    params = [p for p in inspect.signature(factory).parameters if p not in ("self", "model")]
    for key in kwargs:
        if key not in params:
            raise AdvtopoError(f"attack {name!r} has no option {key!r}{did_you_mean(key, params)}; "
                               f"options: {', '.join(params)}")
    return factory(model, **kwargs)


__all__ = ["Attack", "FGSM", "PGD", "PGDL2", "TorchattacksAttack", "ATTACKS", "create_attack",
           "autoattack", "apgd", "cw", "eval_mode", "project"]
