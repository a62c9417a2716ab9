"""Adversarial stage: attacks (FGSM, PGD, PGD-L2, DeepFool, torchattacks adapter), adversarial
training (standard, FGSM-AT, PGD-AT, TRADES) with resumable checkpoints, and evaluation."""
from advtopo.adversarial.attacks import (ATTACKS, FGSM, PGD, PGDL2, Attack, TorchattacksAttack,
                                         create_attack)

__all__ = ["Attack", "FGSM", "PGD", "PGDL2", "TorchattacksAttack", "ATTACKS", "create_attack"]
from advtopo.adversarial.training import METHODS, TrainConfig, train_model  # noqa: E402

__all__ += ["TrainConfig", "train_model", "METHODS"]
from advtopo.adversarial.evaluate import attack_dataset, evaluate, predict_batch  # noqa: E402

__all__ += ["evaluate", "predict_batch", "attack_dataset"]
