"""The accuracy goal: PGD-AT of lenet5 on full MNIST at eps 0.3, then PGD-40 (step 0.01)
on the full test set. Resumable (re-run with the same --out continues).

    python benchmarks/mnist_pgd_at.py --out runs/mnist_pgd40 [--epochs 20] [--steps 40]
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from advtopo.adversarial import TrainConfig, attack_dataset, predict_batch, train_model
from advtopo.data import load_dataset
from advtopo.models import load_checkpoint


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--method", default="pgd")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--schedule", default="cosine")
    ap.add_argument("--warmup", type=float, default=2.0, help="eps warm-up epochs")
    ap.add_argument("--subset", type=int, default=None)
    ap.add_argument("--eval-subset", type=int, default=None, help="final evaluation on N test images (default all)")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    cfg = TrainConfig(method=args.method, eps=0.3, alpha=args.alpha, steps=args.steps, epochs=args.epochs,
                      batch_size=args.batch_size, optimizer="adam", lr=args.lr, schedule=args.schedule,
                      eps_warmup_epochs=args.warmup, train_subset=args.subset, eval_subset=1000, eval_steps=20,
                      compile=args.compile, device=args.device, seed=0)
    train, test = load_dataset("mnist", "train"), load_dataset("mnist", "test")
    t = time.time()
    res = train_model("lenet5", train, test, cfg, args.out, quiet=True)
    train_s = time.time() - t
    for row in res["history"]:
        print(json.dumps(row), flush=True)
    model, _ = load_checkpoint(res["checkpoint"])
    dev = torch.device("cuda" if torch.cuda.is_available() and args.device != "cpu" else "cpu")
    test_eval = test.subset(args.eval_subset, seed=1) if args.eval_subset else test
    t = time.time()
    model.to(dev)
    clean = predict_batch(model, test_eval.x, test_eval.y, device=dev)["correct"].mean()
    x_adv = attack_dataset(model, test_eval.x, test_eval.y, "pgd", 0.3, batch_size=1000,
                           attack_kwargs={"steps": 40, "alpha": 0.01}, device=dev)
    robust = predict_batch(model, x_adv, test_eval.y, device=dev)["correct"].mean()
    summary = {"recipe": cfg.to_dict(), "train_seconds": train_s, "eval_seconds": time.time() - t,
               "clean": float(clean), "pgd40": float(robust), "n": len(test_eval)}
    print(json.dumps(summary))
    with open(f"{args.out}/final_eval.json", "w") as fh:
        json.dump(summary, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
