"""Adversarial training: standard, FGSM-AT ("fast" AT with random init, Wong et al. 2020),
PGD-AT (Madry et al. 2018) and TRADES (Zhang et al. 2019), resumable after a kill.

Files in ``out_dir``:

- ``last.pt``: resume state after each complete epoch (model, optimizer, scheduler, RNG,
  history), written then renamed, so a ``kill -9`` at any moment loses at most the
  running epoch and a re-run continues bit-for-bit where the killed run would have.
- ``metrics.csv`` / ``metrics.jsonl``: one row per epoch (rewritten from ``last.pt``).
- ``checkpoint.pt``: the final model (an advtopo checkpoint carrying arch, dataset,
  recipe, metrics, seed). When it exists for the same config, training is skipped.
- ``epoch_NNN.pt``: per-epoch model checkpoints when ``keep_epochs=True``.

Shuffling uses a generator seeded by (seed, epoch), the attacks' random starts the
global torch RNG, whose state is saved with each epoch: a resumed run ends with the same
weights as an uninterrupted one (same device and thread count).
"""
from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from advtopo.adversarial.attacks import FGSM, PGD
from advtopo.adversarial.attacks.base import eval_mode, frozen_params
from advtopo.adversarial.evaluate import check_input
from advtopo.errors import AdvtopoError, check_choice, did_you_mean
from advtopo.utils.io import atomic_write_bytes, atomic_write_text
from advtopo.utils.device import resolve_device
from advtopo.utils.seed import seed_everything

METHODS = ("standard", "fgsm", "pgd", "trades")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine", "multistep", "onecycle")
STATE_FORMAT = "advtopo-train-state-v1"
# Keys that do not change the numbers a run produces; a changed value does not start over.
_NON_RECIPE = {"device", "eval_batch_size", "keep_epochs"}


@dataclass
class TrainConfig:
    """A training recipe. ``eps``/``alpha`` are in [0, 1] pixel units (Linf).

    ``alpha=None`` picks the usual step: 1.25*eps for FGSM-AT, 2.5*eps/steps for PGD and
    TRADES. ``lr=None`` picks 0.1 for SGD, 1e-3 for Adam. ``eval_eps=None`` evaluates at
    ``eps``. ``train_subset`` trains on a stratified subset (demos, tests).
    """

    method: str = "pgd"
    eps: float = 0.3
    alpha: float | None = None
    steps: int = 10
    epochs: int = 10
    batch_size: int = 128
    lr: float | None = None
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    milestones: tuple[float, ...] = (0.5, 0.75)  # fractions of training (multistep)
    eps_warmup_epochs: float = 0.0
    trades_beta: float = 6.0
    grad_clip: float | None = None
    seed: int = 0
    device: str = "auto"
    amp_bf16: bool = False
    channels_last: bool = False
    compile: bool = False
    train_subset: int | None = None
    eval_subset: int | None = 1000
    eval_eps: float | None = None
    eval_steps: int = 10
    eval_batch_size: int = 500
    keep_epochs: bool = False

    def __post_init__(self) -> None:
        check_choice("method", self.method, METHODS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        self.milestones = tuple(float(m) for m in self.milestones)

        def num(name: str, lo: float, hi: float = math.inf, allow_none: bool = False, lo_open: bool = False) -> None:
            v = getattr(self, name)
            if v is None and allow_none:
                return
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or v < lo or v > hi or (lo_open and v == lo):
                rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
                raise AdvtopoError(f"{name}={v!r} must be a number in {rng}")

        num("eps", 0, 1)
        num("alpha", 0, 1, allow_none=True, lo_open=True)
        num("lr", 0, 10, allow_none=True, lo_open=True)
        num("momentum", 0, 1)
        num("weight_decay", 0, 1)
        num("eps_warmup_epochs", 0)
        num("trades_beta", 0)
        num("grad_clip", 0, allow_none=True, lo_open=True)
        num("eval_eps", 0, 1, allow_none=True)
        for name, lo in (("steps", 1), ("epochs", 1), ("batch_size", 1), ("eval_steps", 1),
                         ("eval_batch_size", 1), ("seed", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise AdvtopoError(f"{name}={v!r} must be an integer >= {lo}")
        for name in ("train_subset", "eval_subset"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise AdvtopoError(f"{name}={v!r} must be a positive integer or None (all)")
        if any(not 0 < m < 1 for m in self.milestones):
            raise AdvtopoError(f"milestones={self.milestones!r} must be fractions of training in (0, 1)")
        if self.method != "standard" and self.eps == 0:
            raise AdvtopoError(f"method={self.method!r} needs eps > 0 (use method='standard' for eps 0)")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Build from a dict (config file); unknown keys raise an error naming the valid ones."""
        names = [f.name for f in dataclasses.fields(cls)]
        for key in d:
            if key not in names:
                raise AdvtopoError(f"unknown training option {key!r}{did_you_mean(key, names)}; "
                                   f"options: {', '.join(names)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @property
    def step_size(self) -> float:
        if self.alpha is not None:
            return self.alpha
        return 1.25 * self.eps if self.method == "fgsm" else 2.5 * self.eps / self.steps

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (0.1 if self.optimizer == "sgd" else 1e-3)


# --- pieces --------------------------------------------------------------------------------

def _make_optimizer(model: nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    kw: dict[str, Any] = {}
    if device.type == "cuda":
        kw["fused"] = True  # one kernel for the whole update
    for attempt in (kw, {}):
        try:
            if cfg.optimizer == "sgd":
                return torch.optim.SGD(params, lr=cfg.learning_rate, momentum=cfg.momentum,
                                       weight_decay=cfg.weight_decay, nesterov=cfg.momentum > 0, **attempt)
            return torch.optim.Adam(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay, **attempt)
        except (RuntimeError, TypeError):
            continue
    raise AssertionError("unreachable")


def lr_factor(cfg: TrainConfig, step: int, total: int) -> float:
    """LR multiplier at optimizer step ``step`` of ``total`` (stepped per batch)."""
    t = step / max(total, 1)
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * t))
    if cfg.schedule == "multistep":
        return 0.1 ** sum(t >= m for m in cfg.milestones)
    # onecycle (Smith; as in Wong et al.'s fast AT): 0 -> lr over the first 40%, -> 0 at the end
    return t / 0.4 if t < 0.4 else max(0.0, (1 - t) / 0.6)


def eps_at(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Training eps after linear warm-up over ``eps_warmup_epochs`` epochs (per batch)."""
    if cfg.eps_warmup_epochs <= 0:
        return cfg.eps
    return cfg.eps * min(1.0, (step + 1) / (cfg.eps_warmup_epochs * steps_per_epoch))


def _trades_adv(model: nn.Module, x: torch.Tensor, eps: float, alpha: float, steps: int) -> torch.Tensor:
    """TRADES inner maximisation: maximise KL(f(x') || f(x)) in the Linf ball."""
    with eval_mode(model), frozen_params(model), torch.enable_grad():
        with torch.no_grad():
            p_clean = F.softmax(model(x).float(), dim=1)
        x_adv = (x + 0.001 * torch.randn_like(x)).clamp(0, 1)
        for _ in range(steps):
            x_adv = x_adv.detach().requires_grad_(True)
            loss = F.kl_div(F.log_softmax(model(x_adv).float(), dim=1), p_clean, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x_adv)
            x_adv = torch.min(torch.max(x_adv.detach() + alpha * grad.sign(), x - eps), x + eps).clamp(0, 1)
    return x_adv.detach()


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, autocast) -> float:
    correct = 0
    for i in range(0, len(x), batch):
        with autocast():
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / max(len(x), 1)


def _robust_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int,
                     batch: int, seed: int, autocast) -> float:
    """PGD accuracy with a seeded attack (does not touch the global RNG the trainer uses)."""
    correct = 0
    for i in range(0, len(x), batch):
        atk = PGD(model, eps=eps, steps=steps, seed=seed + i)
        with autocast():
            xa = atk(x[i:i + batch], y[i:i + batch])
            with torch.no_grad():
                correct += (model(xa).argmax(1) == y[i:i + batch]).sum().item()
    return correct / max(len(x), 1)


def _rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _save_torch(path: Path, obj: Any) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def _write_metrics(out_dir: Path, history: list[dict[str, Any]]) -> None:
    if not history:
        return
    cols = list(history[0])
    lines = [",".join(cols)] + [",".join("" if r.get(c) is None else f"{r[c]:.6g}" if isinstance(r[c], float)
                                         else str(r[c]) for c in cols) for r in history]
    atomic_write_text(out_dir / "metrics.csv", "\n".join(lines) + "\n")
    atomic_write_text(out_dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))


def _recipe(cfg: TrainConfig) -> dict[str, Any]:
    return {k: v for k, v in cfg.to_dict().items() if k not in _NON_RECIPE}


# --- the trainer -----------------------------------------------------------------------------

@dataclass
class _Tensors:
    """The training and evaluation samples, on the training device."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_eval: torch.Tensor
    y_eval: torch.Tensor


@dataclass
class _EpochResult:
    loss: float
    train_acc: float
    seen: int
    seconds: float
    eps: float  # the training eps of the epoch's last batch (after warm-up)


def train_model(arch_or_model: str | nn.Module, train_ds, test_ds, config: TrainConfig | dict[str, Any],
                out_dir: str | os.PathLike[str], quiet: bool = False, arch: str | None = None) -> dict[str, Any]:
    """Train ``arch_or_model`` on ``train_ds``; evaluate each epoch on a subset of ``test_ds``.

    Returns a summary: ``{"checkpoint", "epochs", "metrics" (last row), "history", "skipped",
    "resumed_from"}``. Re-running with the same ``out_dir`` resumes or skips.
    """
    from advtopo.models import save_checkpoint

    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(dict(config))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    model, arch, fresh_model = _given_model(arch_or_model, arch, train_ds)
    c, h, _ = train_ds.image_shape
    ckpt_config = {"arch": arch, "dataset": train_ds.name, "num_classes": train_ds.num_classes, "in_channels": c,
                   "input_size": h, "seed": cfg.seed, "recipe": _recipe(cfg)}
    final = out / "checkpoint.pt"
    done = _finished_run(final, ckpt_config, cfg, quiet)
    if done is not None:
        return done

    if test_ds.image_shape != train_ds.image_shape:
        raise AdvtopoError(f"train images {train_ds.image_shape} and test images {test_ds.image_shape} differ in shape")
    seed_everything(cfg.seed)
    if fresh_model:  # re-create under the seed so the initial weights depend on it only
        model = _create(arch, train_ds)
    model.to(device)
    check_input(model, train_ds, device, name=arch)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    data = _device_tensors(train_ds, test_ds, cfg, device)

    opt = _make_optimizer(model, cfg, device)
    steps_per_epoch = math.ceil(len(data.x_train) / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(cfg, s, total_steps))
    history, start_epoch = _resume(out, model, opt, sched, device, ckpt_config, cfg, quiet)

    fwd = torch.compile(model) if cfg.compile else model
    use_amp = cfg.amp_bf16

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp)

    eval_eps = cfg.eps if cfg.eval_eps is None else cfg.eval_eps
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        ep = _train_epoch(fwd, model, opt, sched, cfg, data, epoch, steps_per_epoch, device, autocast, quiet)
        model.eval()
        clean = _accuracy(fwd, data.x_eval, data.y_eval, cfg.eval_batch_size, autocast)
        robust = (_robust_accuracy(fwd, data.x_eval, data.y_eval, eval_eps, cfg.eval_steps, cfg.eval_batch_size,
                                   cfg.seed, autocast) if eval_eps > 0 else clean)
        row = {"epoch": epoch + 1, "loss": ep.loss, "train_acc": ep.train_acc, "clean_acc": clean, "pgd_acc": robust,
               "eval_eps": eval_eps, "eval_n": len(data.x_eval),
               "train_eps": ep.eps if cfg.method != "standard" else 0.0,
               "lr": float(opt.param_groups[0]["lr"]), "time": ep.seconds,
               "images_per_s": ep.seen / ep.seconds if ep.seconds > 0 else float("nan")}
        history.append(row)
        _commit_epoch(out, epoch, model, opt, sched, device, ckpt_config, history, cfg.keep_epochs)
        if not quiet:
            print(f"epoch {epoch + 1}/{cfg.epochs}: loss {row['loss']:.4f}  clean {clean:.4f}  "
                  f"pgd@{eval_eps:g} {robust:.4f}  ({row['images_per_s']:.0f} img/s, {ep.seconds:.1f}s)", flush=True)

    metrics = history[-1] if history else {}
    save_checkpoint(final, model.cpu(), {**ckpt_config, "metrics": metrics, "history": history})
    model.to(device)
    return {"checkpoint": str(final), "epochs": cfg.epochs, "metrics": metrics, "history": history,
            "skipped": False, "resumed_from": start_epoch}


def _create(arch: str, train_ds) -> nn.Module:
    from advtopo.models import create_model

    c, h, _ = train_ds.image_shape
    return create_model(arch, num_classes=train_ds.num_classes, in_channels=c, input_size=h)


def _given_model(arch_or_model: str | nn.Module, arch: str | None, train_ds) -> tuple[nn.Module, str, bool]:
    """(model, arch name, whether the trainer built it): a registry name is built here (and
    rebuilt under the seed before training), a module is trained as given."""
    if isinstance(arch_or_model, str):
        return _create(arch_or_model, train_ds), arch_or_model, True
    if isinstance(arch_or_model, nn.Module):
        return arch_or_model, arch or type(arch_or_model).__name__.lower(), False
    raise AdvtopoError(f"arch_or_model must be a model name or a torch.nn.Module, got {type(arch_or_model).__name__}")


def _finished_run(final: Path, ckpt_config: dict[str, Any], cfg: TrainConfig, quiet: bool) -> dict[str, Any] | None:
    """The summary of a finished training with the same config in ``final``'s folder, or None
    (no final checkpoint, or one this trainer did not write)."""
    if not final.exists():
        return None
    prev = _read_state_config(final)
    if prev is None:
        return None
    out = final.parent
    _check_same(prev, ckpt_config, out)
    if not quiet:
        print(f"{out}: training already complete; skipped (delete {final.name} to retrain)")
    return {"checkpoint": str(final), "epochs": cfg.epochs, "metrics": prev.get("metrics", {}),
            "history": prev.get("history", []), "skipped": True, "resumed_from": cfg.epochs}


def _device_tensors(train_ds, test_ds, cfg: TrainConfig, device: torch.device) -> _Tensors:
    train = train_ds.subset(cfg.train_subset, seed=cfg.seed) if cfg.train_subset else train_ds
    evalset = test_ds.subset(cfg.eval_subset, seed=cfg.seed) if cfg.eval_subset else test_ds
    mf = torch.channels_last if cfg.channels_last else torch.contiguous_format
    x_train = train.x.to(device).contiguous(memory_format=mf)
    y_train = train.y.to(device)
    x_eval, y_eval = evalset.x.to(device).contiguous(memory_format=mf), evalset.y.to(device)
    return _Tensors(x_train, y_train, x_eval, y_eval)


def _resume(out: Path, model: nn.Module, opt: torch.optim.Optimizer, sched, device: torch.device,
            ckpt_config: dict[str, Any], cfg: TrainConfig, quiet: bool) -> tuple[list[dict[str, Any]], int]:
    """(history, first epoch to run): the state of ``out/last.pt`` loaded into model, optimizer,
    scheduler and RNG when a killed run left one, else ([], 0)."""
    state_path = out / "last.pt"
    if not state_path.exists():
        return [], 0
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # written-then-renamed, so this means a foreign/corrupt file
        raise AdvtopoError(f"{state_path} is not a readable training state ({str(exc).splitlines()[0]}); "
                           f"delete it to start over") from None
    _check_same(json.loads(state["config"]), ckpt_config, out)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    _set_rng_state(state["rng"], device)
    history = json.loads(state["history"])
    start_epoch = int(state["epoch"])
    _write_metrics(out, history)
    if not quiet:
        print(f"{out}: resuming after epoch {start_epoch}/{cfg.epochs}")
    return history, start_epoch


def _train_epoch(fwd: nn.Module, model: nn.Module, opt: torch.optim.Optimizer, sched, cfg: TrainConfig,
                 data: _Tensors, epoch: int, steps_per_epoch: int, device: torch.device, autocast,
                 quiet: bool) -> _EpochResult:
    """One pass over the shuffled training set, one optimizer step per batch."""
    perm = torch.randperm(len(data.x_train), generator=torch.Generator().manual_seed(cfg.seed * 100003 + epoch))
    perm = perm.to(device)
    t0 = time.perf_counter()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    seen = 0
    bar = _progress(steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}", quiet)
    for b in range(steps_per_epoch):
        idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
        x, y = data.x_train[idx], data.y_train[idx]
        gstep = epoch * steps_per_epoch + b
        eps = eps_at(cfg, gstep, steps_per_epoch)
        alpha = cfg.step_size * (eps / cfg.eps if cfg.eps > 0 else 1.0)
        with autocast():
            loss, logits = _loss(fwd, cfg, x, y, eps, alpha)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        loss_sum += loss.detach() * len(y)
        correct += (logits.detach().argmax(1) == y).sum()
        seen += len(y)
        if bar is not None:
            bar.update(1)
            if b % 10 == 0 or b == steps_per_epoch - 1:
                bar.set_postfix(refresh=False, loss=f"{loss.item():.3f}", eps=f"{eps:.3g}",
                                img_s=f"{seen / (time.perf_counter() - t0):.0f}")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    return _EpochResult(loss=float(loss_sum.item() / seen), train_acc=float(correct.item() / seen), seen=seen,
                        seconds=seconds, eps=eps)


def _commit_epoch(out: Path, epoch: int, model: nn.Module, opt: torch.optim.Optimizer, sched, device: torch.device,
                  ckpt_config: dict[str, Any], history: list[dict[str, Any]], keep_epochs: bool) -> None:
    """Write the resume state (the commit point of an epoch), the metrics files and, with
    ``keep_epochs``, the epoch's checkpoint."""
    from advtopo.models import save_checkpoint

    state = {"format": STATE_FORMAT, "epoch": epoch + 1, "config": json.dumps(ckpt_config),
             "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
             "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
             "rng": _rng_state(device), "history": json.dumps(history)}
    _save_torch(out / "last.pt", state)
    _write_metrics(out, history)
    if keep_epochs:
        save_checkpoint(out / f"epoch_{epoch + 1:03d}.pt", model, {**ckpt_config, "metrics": history[-1],
                                                                   "epoch": epoch + 1})


def _loss(model: nn.Module, cfg: TrainConfig, x: torch.Tensor, y: torch.Tensor, eps: float,
          alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
    if cfg.method == "standard" or eps == 0:
        logits = model(x)
        return F.cross_entropy(logits.float(), y), logits
    if cfg.method == "fgsm":
        x_adv = FGSM(model, eps=eps, random_start=True, alpha=alpha)(x, y)
    elif cfg.method == "pgd":
        x_adv = PGD(model, eps=eps, alpha=alpha, steps=cfg.steps, random_start=True)(x, y)
    else:  # trades
        x_adv = _trades_adv(model, x, eps, alpha, cfg.steps)
        both = model(torch.cat([x, x_adv]))
        clean, adv = both[: len(x)].float(), both[len(x):].float()
        kl = F.kl_div(F.log_softmax(adv, dim=1), F.softmax(clean, dim=1), reduction="batchmean")
        return F.cross_entropy(clean, y) + cfg.trades_beta * kl, clean
    logits = model(x_adv)
    return F.cross_entropy(logits.float(), y), logits


def _progress(total: int, desc: str, quiet: bool):
    if quiet:
        return None
    from tqdm.auto import tqdm  # imported when drawn: it looks for notebook widgets

    # in a log file (not a terminal) redraw every 30 s instead of many times a second
    interactive = getattr(sys.stderr, "isatty", lambda: False)()
    return tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True,
                mininterval=0.1 if interactive else 30.0)


def _read_state_config(path: Path) -> dict[str, Any] | None:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
        return json.loads(obj["config"])
    except Exception:
        return None


def _check_same(prev: dict[str, Any], now: dict[str, Any], out: Path) -> None:
    keys = ("arch", "dataset", "num_classes", "in_channels", "input_size", "recipe")
    diffs = []
    for k in keys:
        a, b = prev.get(k), now.get(k)
        if k == "recipe" and isinstance(a, dict) and isinstance(b, dict):
            diffs += [f"{kk}: {a.get(kk)!r} -> {b.get(kk)!r}" for kk in sorted(set(a) | set(b))
                      if kk not in _NON_RECIPE and a.get(kk) != b.get(kk)]
        elif a != b:
            diffs.append(f"{k}: {a!r} -> {b!r}")
    if diffs:
        raise AdvtopoError(f"{out} holds a training run with a different config ({'; '.join(diffs[:4])}); "
                           f"use another output folder or delete it")
