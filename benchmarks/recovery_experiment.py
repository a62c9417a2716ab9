"""Gebhart et al.'s recovery experiment on MNIST with lenet5 and cff (a few CPU minutes).

    python benchmarks/recovery_experiment.py [--n-train 12000] [--json out.json]

Trains each model briefly (1 epoch, Adam, on a training subset), attacks clean test
images with FGSM and PGD (Linf), builds each input's activation graph, keeps the dominant
subgraph (edges of H0 pairs with positive persistence), trains a linear SVM on the clean
bags of edges (5-fold CV accuracy) and reports recovery accuracy / adversary retention on
the adversarial ones, under two protocols (``--protocol both``, the default):

* ``attacks`` -- the paper's: one SVM trained on all clean images, scored on the
  adversarial versions of those same images (can memorise them);
* ``attacks_cross_fitted`` -- 5-fold cross-fitted: each adversarial image is scored by
  the SVM of the fold that held its clean original out.

Numbers go to docs/persistence.md.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from advtopo.adversarial import FGSM, PGD
from advtopo.data import load_dataset
from advtopo.models import create_model
from advtopo.persistence import ActivationGraph, recovery_experiment


def train(model, x, y, epochs=1, batch=128, lr=1e-3, seed=0):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model.eval()


def predict(model, x, batch=500):
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch]).argmax(1) for i in range(0, len(x), batch)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-train", type=int, default=12000)
    ap.add_argument("--n-clean", type=str, default="cff=1000,lenet5=250")
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--min-persistence", type=float, default=0.0)
    ap.add_argument("--percentile", type=float, default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cv", type=int, default=5)
    ap.add_argument("--protocol", choices=("paper", "cross_fitted", "both"), default="both")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tr, te = load_dataset("mnist", "train"), load_dataset("mnist", "test")
    rng = np.random.default_rng(0)
    itr = rng.choice(len(tr.y), args.n_train, replace=False)
    xtr, ytr = torch.as_tensor(tr.x[itr]), torch.as_tensor(tr.y[itr]).long()
    sizes = dict(kv.split("=") for kv in args.n_clean.split(","))
    results = {"settings": vars(args), "models": {}}
    for name, n in sizes.items():
        n = int(n)
        t0 = time.perf_counter()
        model = train(create_model(name), xtr, ytr)
        ite = rng.choice(len(te.y), n, replace=False)
        x, y = torch.as_tensor(te.x[ite]), torch.as_tensor(te.y[ite]).long()
        clean_acc = float((predict(model, x) == y).float().mean())
        t_train = time.perf_counter() - t0
        adv = {}
        attack_acc = {}
        for aname, atk in (("fgsm", FGSM(model, eps=args.eps)),
                           ("pgd", PGD(model, eps=args.eps, steps=20, seed=0))):
            xa = atk(x, y).detach()
            ya = predict(model, xa)
            adv[f"{aname}_eps{args.eps}"] = (xa.numpy(), ya.numpy())
            attack_acc[aname] = float((ya == y).float().mean())
        t1 = time.perf_counter()
        graph = ActivationGraph(input_shape=tuple(x.shape[1:])).fit(model)
        torch.set_num_threads(1)  # one small input at a time: threads only add overhead
        res = recovery_experiment(graph, x.numpy(), y.numpy(), adv, cv=args.cv,
                                  min_persistence=args.min_persistence, percentile=args.percentile,
                                  protocol=args.protocol)
        torch.set_num_threads(args.threads)
        res.update({"clean_accuracy": clean_acc, "adversarial_accuracy": attack_acc,
                    "n_vertices": graph.n_vertices_, "n_edges": graph.n_edges_,
                    "train_s": round(t_train, 1), "graphs_s": round(time.perf_counter() - t1, 1)})
        results["models"][name] = res
        print(name, json.dumps(res, indent=1), flush=True)
    results["date"] = time.strftime("%Y-%m-%d %H:%M")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
