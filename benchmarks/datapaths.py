"""Batched datapath extraction vs the plain per-input loop (the paper's per-input optimisation).

    python benchmarks/datapaths.py [--n 256] [--loop-n 32] [--steps 150] [--json out.json]

Both solve the same problem per input (gates on lenet5's relu1/relu2/relu3, Adam on the
gate logits, same lam/steps/lr/init); the loop is written here from scratch (one input, its
own hooks and optimiser), so the agreement also cross-checks the batched implementation.
The loop runs on the first ``--loop-n`` inputs and its time is reported per input and
extrapolated to ``--n``. The model is lenet5 trained for one epoch on 5,000 MNIST images
(28x28) and cached in the advtopo cache folder.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from advtopo.data import load_dataset
from advtopo.datapaths import DatapathExtractor, jaccard
from advtopo.datapaths.extract import INIT_LOGIT
from advtopo.models import create_model, load_checkpoint, save_checkpoint
from advtopo.utils import cache_dir

LAYERS = ["relu1", "relu2", "relu3"]


def trained_lenet5() -> torch.nn.Module:
    path = cache_dir() / "bench_datapaths_lenet5.pt"
    if path.exists():
        return load_checkpoint(path)[0].eval()
    torch.manual_seed(0)
    train = load_dataset("mnist", "train", subset=5000)
    model = create_model("lenet5")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(train), generator=gen)
    for s in range(0, len(perm), 64):
        idx = perm[s:s + 64]
        opt.zero_grad()
        F.cross_entropy(model(train.x[idx]), train.y[idx]).backward()
        opt.step()
    save_checkpoint(path, model, {"arch": "lenet5"})
    return model.eval()


def loop_extract(model, x, lam, steps, lr, threshold) -> dict[str, np.ndarray]:
    """One input at a time: gates (1, C) per layer, Adam, cross-entropy to the model's own class."""
    mods = dict(model.named_modules())
    for p in model.parameters():
        p.requires_grad_(False)
    out = {k: [] for k in LAYERS}
    for i in range(len(x)):
        xi = x[i:i + 1]
        with torch.no_grad():
            target = model(xi).argmax(1)
        theta = {}
        handles = []
        for k in LAYERS:
            with torch.no_grad():
                width = None

                def probe(m, inp, o):
                    nonlocal width
                    width = o.shape[1]

                h = mods[k].register_forward_hook(probe)
                model(xi)
                h.remove()
            theta[k] = torch.full((1, width), INIT_LOGIT, requires_grad=True)
            handles.append(mods[k].register_forward_hook(
                lambda m, inp, o, k=k: o * torch.sigmoid(theta[k]).view(1, -1, *([1] * (o.dim() - 2)))))
        n_total = sum(t.shape[1] for t in theta.values())
        opt = torch.optim.Adam(list(theta.values()), lr=lr)
        for _ in range(steps):
            loss = F.cross_entropy(model(xi), target) + lam * sum(torch.sigmoid(t).sum() for t in theta.values()) / n_total
            opt.zero_grad()
            loss.backward()
            opt.step()
        for h in handles:
            h.remove()
        for k in LAYERS:
            out[k].append(torch.sigmoid(theta[k]).detach().numpy()[0] >= threshold)
    return {k: np.stack(v) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--loop-n", type=int, default=32)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    model = trained_lenet5()
    test = load_dataset("mnist", "test", subset=args.n, seed=1)
    ext = DatapathExtractor(LAYERS, **({"steps": args.steps} if args.steps else {}))
    p = ext.get_params()
    t0 = time.perf_counter()
    dp = ext.fit(model, test.x)
    t_batched = time.perf_counter() - t0
    m = args.loop_n
    t0 = time.perf_counter()
    loop = loop_extract(model, test.x[:m], p["lam"], p["steps"], p["lr"], p["threshold"])
    t_loop = time.perf_counter() - t0
    j = jaccard({k: dp.critical[k][:m] for k in LAYERS}, loop)
    res = {"n": args.n, "loop_n": m, "steps": p["steps"], "lam": p["lam"], "lr": p["lr"],
           "threads": torch.get_num_threads(),
           "batched_s": round(t_batched, 3), "batched_ms_per_input": round(1000 * t_batched / args.n, 2),
           "loop_s": round(t_loop, 3), "loop_ms_per_input": round(1000 * t_loop / m, 2),
           "loop_s_extrapolated_to_n": round(t_loop / m * args.n, 2),
           "speedup": round((t_loop / m) / (t_batched / args.n), 1),
           "agreement_jaccard_mean": {k: round(float(v.mean()), 4) for k, v in j.items()},
           "agreement_jaccard_min": {k: round(float(v.min()), 4) for k, v in j.items()},
           "retained_accuracy": dp.retained_accuracy, "retained_accuracy_soft": dp.retained_accuracy_soft,
           "kept_fraction": {k: round(v, 4) for k, v in dp.kept_fraction.items()},
           "kept_fraction_total": round(dp.kept_fraction_total, 4)}
    print(f"batched: {t_batched:.2f} s for {args.n} inputs ({res['batched_ms_per_input']} ms/input)")
    print(f"loop:    {t_loop:.2f} s for {m} inputs ({res['loop_ms_per_input']} ms/input; "
          f"{res['loop_s_extrapolated_to_n']} s extrapolated to {args.n})")
    print(f"speed-up per input: {res['speedup']}x")
    print(f"agreement (Jaccard of critical sets, batched vs loop): mean {res['agreement_jaccard_mean']}, "
          f"min {res['agreement_jaccard_min']}")
    print(f"retained accuracy {dp.retained_accuracy:.3f} (soft {dp.retained_accuracy_soft:.3f}), "
          f"kept {dp.kept_fraction_total:.3f}: {res['kept_fraction']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=2)


if __name__ == "__main__":
    main()
