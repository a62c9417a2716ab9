"""Evaluation: accuracy under an attack over a list of eps values, and per-sample
predictions (confidence, margin, loss) for clean and adversarial inputs.

Attacks with a ``seed`` option are seeded (``seed + batch offset``), so the same call
gives the same numbers.
"""
from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from advtopo.adversarial.attacks import ATTACKS, create_attack
from advtopo.adversarial.attacks.base import check_eps, eval_mode
from advtopo.errors import AdvtopoError
from advtopo.utils.device import resolve_device


@torch.no_grad()
def predict_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000,
                  device: str | torch.device | None = None) -> dict[str, np.ndarray]:
    """Per-sample ``prediction``, ``correct``, ``confidence`` (max softmax), ``true_prob``,
    ``margin`` (true-class logit minus the best other logit; < 0 means misclassified) and
    ``loss`` (cross-entropy), as numpy arrays."""
    dev = _device(model, device)
    out: dict[str, list[torch.Tensor]] = {k: [] for k in ("prediction", "confidence", "true_prob", "margin", "loss")}
    with eval_mode(model):
        for i in range(0, len(x), batch_size):
            xb, yb = x[i:i + batch_size].to(dev), y[i:i + batch_size].to(dev)
            logits = model(xb).float()
            prob = logits.softmax(1)
            true_logit = logits.gather(1, yb[:, None])[:, 0]
            other = logits.scatter(1, yb[:, None], float("-inf")).amax(1)
            conf, pred = prob.max(1)
            out["prediction"].append(pred)
            out["confidence"].append(conf)
            out["true_prob"].append(prob.gather(1, yb[:, None])[:, 0])
            out["margin"].append(true_logit - other)
            out["loss"].append(F.cross_entropy(logits, yb, reduction="none"))
    res = {k: (torch.cat(v).cpu().numpy() if v else np.zeros(0)) for k, v in out.items()}
    res["correct"] = res["prediction"] == y.cpu().numpy()
    return res


def attack_dataset(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: str = "pgd", eps: float = 0.3,
                   batch_size: int = 500, attack_kwargs: dict[str, Any] | None = None,
                   device: str | torch.device | None = None, seed: int = 0) -> torch.Tensor:
    """Adversarial versions of ``x`` (on the CPU), computed batch by batch."""
    eps = check_eps(eps)
    if eps == 0:
        return x.clone()
    dev = _device(model, device)
    kw = dict(attack_kwargs or {})
    seeded = "seed" in inspect.signature(ATTACKS.get(attack)).parameters and "seed" not in kw
    out = []
    for i in range(0, len(x), batch_size):
        if seeded:
            kw["seed"] = seed + i
        atk = create_attack(attack, model, eps=eps, **kw)
        out.append(atk(x[i:i + batch_size].to(dev), y[i:i + batch_size].to(dev)).cpu())
    return torch.cat(out) if out else x.clone()


def evaluate(model: nn.Module, dataset, attack: str = "pgd", eps_list: Sequence[float] = (0.0, 0.1, 0.2, 0.3),
             batch_size: int = 500, attack_kwargs: dict[str, Any] | None = None,
             device: str | torch.device | None = None, seed: int = 0, quiet: bool = True):
    """Accuracy of ``model`` on ``dataset`` under ``attack`` at each eps (eps 0 = clean).

    Returns a pandas DataFrame with columns ``attack, eps, accuracy, n``.
    """
    import pandas as pd

    ATTACKS.get(attack)  # unknown name -> error listing the allowed ones
    eps_values = [check_eps(e) for e in eps_list]
    if not eps_values:
        raise AdvtopoError("eps_list is empty; give at least one eps (0 = clean accuracy)")
    check_input(model, dataset, _device(model, device))
    rows = []
    for eps in eps_values:
        x_adv = attack_dataset(model, dataset.x, dataset.y, attack, eps, batch_size, attack_kwargs, device, seed)
        pred = predict_batch(model, x_adv, dataset.y, batch_size=batch_size, device=device)
        rows.append({"attack": attack, "eps": float(eps), "accuracy": float(pred["correct"].mean()),
                     "n": int(len(dataset))})
        if not quiet:
            print(f"  {attack} eps={eps:g}: accuracy {rows[-1]['accuracy']:.4f}", flush=True)
    return pd.DataFrame(rows, columns=["attack", "eps", "accuracy", "n"])


def check_input(model: nn.Module, dataset, device: torch.device | None = None, name: str | None = None) -> None:
    """Raise a one-line error when ``model`` (called ``name`` in the message) cannot take ``dataset``'s images."""
    device = device or _device(model, None)
    who = f"model {name!r}" if name else "the model"
    try:
        with torch.no_grad(), eval_mode(model):
            out = model(dataset.x[:2].to(device))
    except RuntimeError as exc:
        raise AdvtopoError(f"{who} cannot take {dataset.name!r} images of shape {tuple(dataset.image_shape)} "
                           f"({str(exc).splitlines()[0][:160]})") from None
    n_classes = int(dataset.y.max()) + 1 if len(dataset) else 0
    if out.ndim != 2 or out.shape[1] < n_classes:
        raise AdvtopoError(f"{who} outputs {tuple(out.shape[1:])} logits but {dataset.name!r} has {n_classes} classes")


def _device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    if device is not None:
        dev = resolve_device(str(device))
        model.to(dev)
        return dev
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")
