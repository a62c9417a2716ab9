"""Adversarial stage: attacks (FGSM, PGD, PGD-L2, torchattacks adapter), adversarial
training (standard, FGSM-AT, PGD-AT, TRADES) with resumable checkpoints, and evaluation."""
from advtopo.adversarial.attacks import (ATTACKS, FGSM, PGD, PGDL2, Attack, TorchattacksAttack,
                                         create_attack)

__all__ = ["Attack", "FGSM", "PGD", "PGDL2", "TorchattacksAttack", "ATTACKS", "create_attack"]
