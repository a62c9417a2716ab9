"""PGD-10 adversarial-training throughput: advtopo's trainer vs a plain eager PyTorch loop.

(a) lenet5 on MNIST (CPU), (b) resnet18 on CIFAR-shaped data (CUDA, when present). The
baseline is the loop everyone writes first: fp32, eager, batch 128, model in train mode.
Our numbers come from ``train_model`` itself (its per-epoch ``images_per_s``, training
only, after a warm-up epoch that absorbs torch.compile).

    python benchmarks/adversarial_training.py            # both parts where possible
    python benchmarks/adversarial_training.py --part gpu --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone

import torch
import torch.nn.functional as F

from advtopo.adversarial import TrainConfig, train_model
from advtopo.data import load_dataset
from advtopo.models import create_model


def baseline(arch: str, ds, device: torch.device, eps: float, steps: int = 10, batch: int = 128,
             iters: int = 20, warmup: int = 3) -> float:
    """Plain eager fp32 PGD-AT loop (Madry et al.); returns training images/s."""
    c, h, _ = ds.image_shape
    model = create_model(arch, num_classes=ds.num_classes, in_channels=c, input_size=h).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    alpha = 2.5 * eps / steps
    x_all, y_all = ds.x.to(device), ds.y.to(device)
    n = len(x_all)

    def step(i: int) -> None:
        idx = torch.arange(i * batch, (i + 1) * batch, device=device) % n
        x, y = x_all[idx], y_all[idx]
        delta = torch.empty_like(x).uniform_(-eps, eps)
        delta = (x + delta).clamp(0, 1) - x
        for _ in range(steps):
            delta.requires_grad_(True)
            loss = F.cross_entropy(model(x + delta), y)
            (g,) = torch.autograd.grad(loss, delta)
            delta = (delta.detach() + alpha * g.sign()).clamp(-eps, eps)
            delta = (x + delta).clamp(0, 1) - x
        loss = F.cross_entropy(model(x + delta), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for i in range(warmup):
        step(i)
    _sync(device)
    t = time.perf_counter()
    for i in range(iters):
        step(i)
    _sync(device)
    return iters * batch / (time.perf_counter() - t)


def ours(arch: str, train, test, device: torch.device, eps: float, epochs: int = 2, **cfg_kw) -> float:
    bs = cfg_kw.get("batch_size", 128)  # evaluate in one batch of the same shape (no recompile)
    cfg = TrainConfig(method="pgd", eps=eps, steps=10, epochs=epochs, optimizer="sgd", lr=0.01,
                      eval_subset=min(bs, len(test)), eval_batch_size=bs, eval_steps=1, device=str(device), **cfg_kw)
    with tempfile.TemporaryDirectory() as tmp:
        res = train_model(arch, train, test, cfg, tmp, quiet=True)
    rates = [r["images_per_s"] for r in res["history"][1:]] or [res["history"][0]["images_per_s"]]
    return max(rates)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=["cpu", "gpu", "all"], default="all")
    ap.add_argument("--cpu-images", type=int, default=4096, help="training images per epoch (CPU part)")
    ap.add_argument("--gpu-images", type=int, default=20480, help="training images per epoch (GPU part)")
    ap.add_argument("--variants", default="eager512,eager1024,compile1024",
                    help="GPU variants of our trainer: eager<batch>, compile<batch> (bf16 + channels_last)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()

    rows = []
    meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "python": platform.python_version(),
            "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads()}
    if args.part in ("cpu", "all"):
        dev = torch.device("cpu")
        try:
            train = load_dataset("mnist", "train").subset(args.cpu_images, seed=0)
            test = load_dataset("mnist", "test").subset(256, seed=0)
        except Exception as exc:  # no MNIST package: the same shapes, synthetic
            print(f"MNIST unavailable ({exc}); using synthetic 1x28x28", file=sys.stderr)
            train = load_dataset("synthetic", "train", n=args.cpu_images)
            test = load_dataset("synthetic", "test", n=256)
        base = baseline("lenet5", train, dev, 0.3, iters=8, warmup=1)
        rows.append(("lenet5/MNIST", "cpu", "baseline fp32 eager b128", base, 1.0))
        for bs in (128, 512):
            r = ours("lenet5", train, test, dev, 0.3, epochs=2, batch_size=bs)
            rows.append(("lenet5/MNIST", "cpu", f"advtopo fp32 b{bs}", r, r / base))
            print(rows[-1], flush=True)
    if args.part in ("gpu", "all"):
        if not torch.cuda.is_available():
            print("no CUDA: GPU part skipped", file=sys.stderr)
        else:
            dev = torch.device("cuda")
            meta["gpu"] = torch.cuda.get_device_name(0)
            torch.backends.cudnn.benchmark = True
            train = load_dataset("synthetic", "train", n=args.gpu_images, shape=(3, 32, 32))
            test = load_dataset("synthetic", "test", n=1024, shape=(3, 32, 32))
            base = baseline("resnet18", train, dev, 8 / 255, iters=30, warmup=5)
            rows.append(("resnet18/32x32x3", "cuda", "baseline fp32 eager b128", base, 1.0))
            print(rows[-1], flush=True)
            for v in args.variants.split(","):
                compiled = v.startswith("compile")
                bs = int(v.removeprefix("compile").removeprefix("eager"))
                try:
                    r = ours("resnet18", train, test, dev, 8 / 255, epochs=3 if compiled else 2, batch_size=bs,
                             amp_bf16=True, channels_last=True, compile=compiled)
                except Exception as exc:
                    print(f"variant {v} failed: {type(exc).__name__}: {str(exc)[:300]}", file=sys.stderr)
                    continue
                rows.append(("resnet18/32x32x3", "cuda",
                             f"advtopo bf16 channels_last {'compiled ' if compiled else ''}b{bs}", r, r / base))
                print(rows[-1], flush=True)
    print(f"\nPGD-10 adversarial training throughput ({meta['date']}, torch {meta['torch']}, "
          f"{meta.get('gpu', meta['cpu'])})")
    print(f"{'workload':18s} {'device':6s} {'trainer':42s} {'images/s':>10s} {'vs baseline':>12s}")
    for w, d, t, r, ratio in rows:
        print(f"{w:18s} {d:6s} {t:42s} {r:10.0f} {ratio:11.2f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "rows": [dict(zip(("workload", "device", "trainer", "images_per_s", "ratio"), r))
                                              for r in rows]}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
