"""Adapter to the adversarial stage's trainer, with a small built-in fallback.

The study calls :func:`train` only. When ``advtopo.adversarial.train_model`` exists it is
used (recipe -> ``TrainConfig.from_dict``); otherwise a minimal trainer runs standard or
FGSM-with-random-init adversarial training (Wong et al. 2020), checkpointing each epoch so
a killed run resumes.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from advtopo.errors import AdvtopoError, did_you_mean

FALLBACK_KEYS = {"method": "standard", "eps": 0.0, "alpha": None, "epochs": 1, "batch_size": 128,
                 "lr": 1e-3, "weight_decay": 0.0, "steps": 7, "seed": 0}


def _have_trainer() -> bool:
    try:
        from advtopo.adversarial import TrainConfig, train_model  # noqa: F401
    except ImportError:
        return False
    return True


def check_recipe(recipe: dict[str, Any]) -> None:
    if _have_trainer():
        from advtopo.adversarial import TrainConfig

        TrainConfig.from_dict(dict(recipe))
        return
    for k in recipe:
        if k not in FALLBACK_KEYS:
            raise AdvtopoError(f"unknown training key {k!r}{did_you_mean(k, FALLBACK_KEYS)}; "
                               f"allowed: {', '.join(FALLBACK_KEYS)}")
    if recipe.get("method", "standard") not in ("standard", "fgsm", "pgd"):
        raise AdvtopoError(f"method={recipe['method']!r} is not valid; allowed: standard, fgsm, pgd")


def train(model: nn.Module, arch: str, train_ds, test_ds, recipe: dict[str, Any], out_dir: Path,
          device: torch.device, quiet: bool = False) -> dict[str, Any]:
    """Train ``model`` into ``out_dir/checkpoint.pt``; return metrics."""
    if _have_trainer():
        from advtopo.adversarial import TrainConfig, train_model

        # the device is a run-time choice, not part of the recipe (nor of the task hash)
        cfg = TrainConfig.from_dict({**recipe, "device": str(device)})
        res = train_model(model, train_ds, test_ds, cfg, out_dir, quiet=quiet, arch=arch)
        return dict(res or {})
    return _fallback_train(model, arch, train_ds, recipe, out_dir, device, quiet)


def _fallback_train(model, arch, train_ds, recipe, out_dir, device, quiet):
    from advtopo.models import save_checkpoint

    r = {**FALLBACK_KEYS, **recipe}
    eps = float(r["eps"])
    method = r["method"] if eps > 0 else "standard"
    alpha = float(r["alpha"]) if r["alpha"] is not None else 1.25 * eps
    model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=r["lr"], weight_decay=r["weight_decay"])
    state_path = out_dir / "train_state.pt"
    start_epoch = 0
    if state_path.exists():  # resume after a kill
        st = torch.load(state_path, map_location=device, weights_only=True)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        start_epoch = int(st["epoch"])
    history = json.loads((out_dir / "history.json").read_text()) if (out_dir / "history.json").exists() else []
    for epoch in range(start_epoch, int(r["epochs"])):
        model.train()
        t0, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
        gen = torch.Generator().manual_seed(int(r["seed"]) * 1000 + epoch)
        for xb, yb in train_ds.loader(int(r["batch_size"]), shuffle=True, seed=int(gen.initial_seed())):
            xb, yb = xb.to(device), yb.to(device)
            if method == "fgsm":
                delta = (torch.rand_like(xb) * 2 - 1) * eps
                delta.requires_grad_(True)
                loss = F.cross_entropy(model((xb + delta).clamp(0, 1)), yb)
                (g,) = torch.autograd.grad(loss, delta)
                delta = (delta + alpha * g.sign()).clamp(-eps, eps).detach()
                xb = (xb + delta).clamp(0, 1)
            elif method == "pgd":
                steps = int(r["steps"])
                a = 2.5 * eps / steps
                x0 = xb
                xa = (x0 + (torch.rand_like(x0) * 2 - 1) * eps).clamp(0, 1)
                for _ in range(steps):
                    xa.requires_grad_(True)
                    (g,) = torch.autograd.grad(F.cross_entropy(model(xa), yb), xa)
                    xa = torch.min(torch.max(xa.detach() + a * g.sign(), x0 - eps), x0 + eps).clamp(0, 1)
                xb = xa.detach()
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += len(yb)
            loss_sum += float(loss) * len(yb)
            correct += int((out.argmax(1) == yb).sum())
        history.append({"epoch": epoch + 1, "loss": loss_sum / max(seen, 1), "train_accuracy": correct / max(seen, 1),
                        "seconds": round(time.perf_counter() - t0, 2)})
        if not quiet:
            h = history[-1]
            print(f"    epoch {epoch + 1}/{r['epochs']}: loss {h['loss']:.3f}, train acc {h['train_accuracy']:.3f}, "
                  f"{h['seconds']:.1f}s", flush=True)
        from advtopo.utils import atomic_path, atomic_write_json

        with atomic_path(state_path) as tmp:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch + 1}, tmp)
        atomic_write_json(out_dir / "history.json", history)
    model.eval()
    save_checkpoint(out_dir / "checkpoint.pt", model, {"arch": arch, "recipe": r, "history": history})
    state_path.unlink(missing_ok=True)
    return {"history": history, "trainer": "advtopo.study fallback"}
