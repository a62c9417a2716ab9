"""Clean vs PGD datapaths on a small MNIST model: where do they diverge, and where do the
fooled ones go? (The measurement behind docs/datapaths.md; nothing here is asserted.)

    python benchmarks/datapaths_clean_vs_adv.py [--n 200] [--eps 0.05,0.1,0.2] [--json out.json]

Model: lenet5 trained for one epoch on 5,000 MNIST images (benchmarks/datapaths.py's, cached).
For each eps: the layer table of ``advtopo datapaths``, then, for the fooled inputs, the
mean Jaccard of the adversarial datapath to the *clean* datapaths of the other inputs the
model puts in (a) the adversarial (wrong) class and (b) the input's original class: if
adversarial paths "merge" into the wrong class's paths, (a) grows towards the last layer.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from advtopo.adversarial import PGD
from advtopo.data import load_dataset
from advtopo.datapaths import DatapathExtractor, datapath_report, format_table

LAYERS = ["relu1", "relu2", "relu3"]


def pairwise_jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) Jaccard between rows of boolean a (n, C) and b (m, C)."""
    a, b = a.astype(np.float32), b.astype(np.float32)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def main() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from datapaths import trained_lenet5  # noqa: E402  (the same cached model as the speed benchmark)

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--eps", default="0.05,0.1,0.2")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    eps_list = [float(e) for e in args.eps.split(",")]
    model = trained_lenet5()
    test = load_dataset("mnist", "test", subset=args.n, seed=0)
    with torch.no_grad():
        acc = float((model(test.x).argmax(1) == test.y).float().mean())
    print(f"lenet5 (1 epoch, 5k MNIST): clean accuracy {acc:.3f} on {args.n} test images")
    x_adv = {e: PGD(model, eps=e, steps=20, seed=0)(test.x, test.y).detach() for e in eps_list}
    ext = DatapathExtractor(LAYERS)
    report = datapath_report(model, test.x, test.y.numpy(), x_adv, ext)
    print(format_table(report))
    clean = ext.fit(model, test.x)
    merge = {}
    for e in eps_list:
        adv = ext.fit(model, x_adv[e])
        fooled = np.flatnonzero(adv.prediction != test.y.numpy())
        rows = {}
        for k in LAYERS:
            J = pairwise_jaccard(adv.critical[k][fooled], clean.critical[k])
            to_wrong, to_orig, to_self = [], [], []
            for r, i in enumerate(fooled):
                wrong = np.flatnonzero(clean.prediction == adv.prediction[i])
                orig = np.flatnonzero((clean.prediction == clean.prediction[i]) & (np.arange(args.n) != i))
                if len(wrong):
                    to_wrong.append(J[r, wrong].mean())
                if len(orig):
                    to_orig.append(J[r, orig].mean())
                to_self.append(J[r, i])
            rows[k] = {"to_own_clean": float(np.mean(to_self)), "to_clean_of_original_class": float(np.mean(to_orig)),
                       "to_clean_of_adversarial_class": float(np.mean(to_wrong))}
        merge[f"{e:g}"] = rows
        print(f"\neps {e:g}, {len(fooled)} fooled: mean Jaccard of the adversarial datapath to clean datapaths")
        print(f"{'layer':>8} {'own clean':>10} {'orig class':>11} {'adv class':>10}")
        for k, r in rows.items():
            print(f"{k:>8} {r['to_own_clean']:>10.3f} {r['to_clean_of_original_class']:>11.3f} "
                  f"{r['to_clean_of_adversarial_class']:>10.3f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"clean_accuracy": acc, "report_by_layer": report["by_layer"], "by_eps": report["by_eps"],
                       "clean": report["clean"], "merge": merge}, fh, indent=2)


if __name__ == "__main__":
    main()
