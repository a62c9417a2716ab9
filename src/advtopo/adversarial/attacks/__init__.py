"""Attacks, one class per algorithm, all called as ``attack(x, y) -> x_adv``."""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch.nn as nn

from advtopo.adversarial.attacks.base import Attack, eval_mode, project
from advtopo.adversarial.attacks.deepfool import DeepFool
from advtopo.adversarial.attacks.gradient import FGSM, PGD, PGDL2
from advtopo.adversarial.attacks.torchattacks_adapter import TorchattacksAttack, apgd, autoattack, cw, import_torchattacks
from advtopo.errors import AdvtopoError, did_you_mean
from advtopo.registry import Registry

ATTACKS: Registry = Registry("attack")
ATTACKS.register("fgsm", help="Fast Gradient Sign Method (Linf, one step)")(FGSM)
ATTACKS.register("pgd", help="Projected Gradient Descent, Linf ball (Madry et al.)")(PGD)
ATTACKS.register("pgd_l2", help="Projected Gradient Descent, L2 ball")(PGDL2)
ATTACKS.register("deepfool", help="DeepFool, minimal perturbation, L2 or Linf (unbounded unless eps is given)")(DeepFool)
ATTACKS.register("autoattack", help="AutoAttack via torchattacks (optional dependency)")(autoattack)
ATTACKS.register("apgd", help="APGD via torchattacks (optional dependency)")(apgd)
ATTACKS.register("cw", help="Carlini-Wagner L2 via torchattacks (unbounded; optional dependency)")(cw)


def attack_params(name: str) -> dict[str, inspect.Parameter]:
    """The arguments attack ``name``'s constructor accepts (all but ``model``), read from its
    signature, as scikit-learn's ``get_params`` and torchattacks do: no hand-kept list."""
    factory = ATTACKS.get(name)
    return {p: v for p, v in inspect.signature(factory).parameters.items()
            if p not in ("self", "model") and v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD)}


def check_attack_kwargs(name: str, kwargs: Mapping[str, Any], where: str | None = None) -> None:
    """Raise AdvtopoError when ``kwargs`` holds an argument attack ``name`` does not accept,
    naming the attack and its valid arguments (``where`` prefixes the message, e.g. a config path)."""
    params = attack_params(name)
    for key in kwargs:
        if key not in params:
            prefix = f"{where}: " if where else ""
            raise AdvtopoError(f"{prefix}attack {name!r} has no option {key!r}{did_you_mean(key, params)}; "
                               f"valid options of {name!r}: {', '.join(params)}")


def supported_kwargs(name: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of ``kwargs`` that attack ``name`` accepts: for defaults a caller offers to
    every attack (a per-batch ``seed``), never for what a user asked for (check those)."""
    params = attack_params(name)
    return {k: v for k, v in kwargs.items() if k in params}


def create_attack(name: str, model: nn.Module, **kwargs: Any) -> Attack:
    """Build attack ``name`` (see ``ATTACKS.names()``) for ``model``.

    Unknown options raise an error naming the attack's accepted options.
    """
    check_attack_kwargs(name, kwargs)
    return ATTACKS.get(name)(model, **kwargs)


__all__ = ["Attack", "FGSM", "PGD", "PGDL2", "DeepFool", "TorchattacksAttack", "ATTACKS", "create_attack", "attack_params",
           "check_attack_kwargs", "supported_kwargs", "import_torchattacks",
           "autoattack", "apgd", "cw", "eval_mode", "project"]
