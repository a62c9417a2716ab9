"""Evaluate the models trained by tools/zoo_recipes.sh and pack them into the shipped zoo.

    python tools/build_zoo.py zoo-build [--names N ...] [--grid-n 1000] [--aa-n 200]

For each trained folder ``zoo-build/<name>/`` this
1. loads ``checkpoint.pt`` (the final epoch: no early stopping on test data),
2. stores it as safetensors in fp16 when fp16 changes no clean test prediction and no
   PGD-40 prediction on the grid subset (else fp32),
3. measures on the test split: clean accuracy on all 10,000 images; PGD-40 (step 0.01 for
   MNIST/Fashion-MNIST, random start) at the training eps on all 10,000 images; the same at every eps of the demo grid on a stratified subset of
   ``--grid-n`` images (with 1 and 5 restarts; 5 restarts on the full test set cost
   about 20 minutes per robust model on 2 CPU cores, a minute on a GPU); AutoAttack (standard, torchattacks) at the training eps on
   ``--aa-n`` images,
4. writes ``src/advtopo/models/pretrained/<name>.safetensors`` and its entry in
   ``index.json`` (recipe command, seed, training time and machine, SHA-256, accuracies).

Restarts are run on the survivors only: a sample counts as robust if no restart fools it,
which is what "PGD with 5 restarts" means in the robustness literature.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shlex
import time
from pathlib import Path

import torch

from advtopo.adversarial.attacks import create_attack
from advtopo.data import load_dataset
from advtopo.models import load_checkpoint
from advtopo.utils.io import atomic_write_bytes, atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "src" / "advtopo" / "models" / "pretrained"
GRID = {"mnist": [0.05, 0.1, 0.15, 0.2, 0.25, 0.3], "fashion-mnist": [0.05, 0.1, 0.15, 0.2]}
STEP = {"mnist": 0.01, "fashion-mnist": 0.01}


def recipe_command(name: str) -> str:
    """The exact `advtopo train` command of ``name``, read from tools/zoo_recipes.sh."""
    text = (ROOT / "tools" / "zoo_recipes.sh").read_text()
    base = next(ln for ln in text.splitlines() if ln.startswith("A=")).split("=", 1)[1].strip('"')
    base = base.replace(".venv/bin/advtopo", "advtopo")
    line = next(ln for ln in text.splitlines() if ln.startswith(f"R[{name}]="))
    args = line.split("=", 1)[1].strip('"')
    return f"{base} {args} --out zoo-build/{name}"


@torch.no_grad()
def predict(model, x, bs=1000):
    return torch.cat([model(x[i:i + bs]).argmax(1) for i in range(0, len(x), bs)])


class EvalCache:
    """Counts already measured for a model (``<build>/<name>/eval_cache.json``), so an interrupted
    or re-sized evaluation does not redo the expensive attacks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = json.loads(path.read_text()) if path.exists() else {}

    def get(self, key: str, fn):
        if key not in self.data:
            self.data[key] = fn()
            atomic_write_text(self.path, json.dumps(self.data, indent=1))
        return self.data[key]


def pgd_survivors(model, x, y, eps, restarts, step, seed=0, bs=500):
    """Indices (into x) still correct after each restart of PGD-40; returns [n_after_r1, ..., n_after_rR]."""
    alive = torch.nonzero(predict(model, x) == y).flatten()
    counts = []
    for r in range(restarts):
        keep = []
        for i in range(0, len(alive), bs):
            idx = alive[i:i + bs]
            atk = create_attack("pgd", model, eps=eps, steps=40, alpha=step, random_start=True,
                                seed=seed + 1000 * r + i)
            xa = atk(x[idx], y[idx])
            keep.append(idx[predict(model, xa) == y[idx]])
        alive = torch.cat(keep) if keep else alive[:0]
        counts.append(int(len(alive)))
    return counts


def autoattack_acc(model, x, y, eps, bs=100):
    correct = 0
    for i in range(0, len(x), bs):
        atk = create_attack("autoattack", model, eps=eps, seed=0)
        xa = atk(x[i:i + bs], y[i:i + bs])
        correct += int((predict(model, xa) == y[i:i + bs]).sum())
    return correct / len(x)


def build(name: str, build_dir: Path, grid_n: int, aa_n: int, full_n: int | None = None) -> dict:
    folder = build_dir / name
    model, cfg = load_checkpoint(folder / "checkpoint.pt")
    model.eval()
    dataset = cfg["dataset"] if isinstance(cfg.get("dataset"), str) else cfg["dataset"]["name"]
    recipe = cfg.get("recipe") or cfg.get("train") or {}
    train_eps = float(recipe.get("eps", 0.0))
    test = load_dataset(dataset, "test")
    x, y = test.x, test.y
    sub = test.subset(grid_n, seed=0)
    step = STEP[dataset]
    t0 = time.time()

    # fp16 storage if it changes no prediction we report
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    model16, _ = load_checkpoint(folder / "checkpoint.pt")
    model16.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in half.items()})
    model16.eval()
    same = bool(torch.equal(predict(model, x), predict(model16, x)))
    if same and train_eps > 0:
        atk = create_attack("pgd", model, eps=train_eps, steps=40, alpha=step, random_start=True, seed=0)
        xa = atk(sub.x, sub.y)
        same = bool(torch.equal(predict(model, xa), predict(model16, xa)))
    store = half if same else state
    if same:
        model = model16  # report the accuracy of exactly what ships

    acc = {"clean": float((predict(model, x) == y).float().mean())}
    n = len(y)
    cache = EvalCache(folder / "eval_cache.json")
    if train_eps > 0:
        if full_n and full_n < n:
            full = test.subset(full_n, seed=0)
            xf, yf, n = full.x, full.y, full_n
        else:
            xf, yf = x, y
        c = cache.get(f"pgd40/{train_eps}/n{n}/r1/{'fp16' if same else 'fp32'}",
                      lambda: pgd_survivors(model, xf, yf, train_eps, 1, step))
        acc["pgd40_train_eps_full"] = {"eps": train_eps, "n": n, "restarts1": c[0] / n}
        print(f"  {name} pgd40 eps {train_eps} full test set: {c[0] / n:.4f}", flush=True)
    grid = []
    for eps in GRID[dataset]:
        # 5 restarts at the training eps (where they matter most), 1 elsewhere (CPU budget);
        # a 5-restart result already measured at another eps is kept
        key = f"pgd40/{eps}/grid{len(sub)}/r%d/{'fp16' if same else 'fp32'}"
        r = 5 if (eps == train_eps or key % 5 in cache.data) else 1
        c = cache.get(key % r, lambda: pgd_survivors(model, sub.x, sub.y, eps, r, step))
        grid.append({"eps": eps, "restarts1": c[0] / len(sub), "restarts5": c[-1] / len(sub) if r == 5 else None})
        print(f"  {name} pgd40 eps {eps}: {c[0] / len(sub):.4f} / {c[-1] / len(sub):.4f}", flush=True)
    acc["pgd40_grid"] = {"n": len(sub), "clean": float((predict(model, sub.x) == sub.y).float().mean()),
                         "rows": grid}
    if train_eps > 0 and aa_n:
        aa = test.subset(aa_n, seed=0)
        acc["autoattack"] = {"eps": train_eps, "n": aa_n, "version": "standard",
                             "accuracy": cache.get(f"aa/{train_eps}/n{aa_n}",
                                                   lambda: autoattack_acc(model, aa.x, aa.y, train_eps))}

    from safetensors.torch import save

    meta = {"arch": cfg["arch"], "dataset": dataset}
    blob = save(store, metadata=meta)
    out = ZOO / f"{name}.safetensors"
    atomic_write_bytes(out, blob)
    out.chmod(0o644)  # shipped in the package: readable by every user
    hist = [json.loads(ln) for ln in (folder / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    entry = {
        "name": name, "arch": cfg["arch"], "dataset": dataset,
        "num_classes": cfg.get("num_classes", 10), "in_channels": cfg.get("in_channels", 1),
        "input_size": cfg.get("input_size", 28), "file": out.name,
        "sha256": hashlib.sha256(blob).hexdigest(), "dtype": "float16" if same else "float32",
        "train_eps": train_eps, "recipe": recipe, "command": recipe_command(name), "seed": recipe.get("seed", 0),
        "train_seconds": round(sum(h.get("time", 0.0) for h in hist), 1),
        "machine": f"{platform.machine()} {platform.processor() or ''} {torch.get_num_threads()} threads, "
                   f"torch {torch.__version__}".replace("  ", " "),
        "history": [{k: h[k] for k in ("epoch", "clean_acc", "pgd_acc", "eval_eps", "eval_n") if k in h}
                    for h in hist],
        "accuracy": acc, "eval_seconds": round(time.time() - t0, 1),
        "eval_protocol": f"test split; PGD-40 at the training eps on {n} images; step {step}, random start, "
                         f"restarts on survivors; "
                         f"grid on a stratified subset (seed 0) of {len(sub)}; AutoAttack standard on {aa_n}",
    }
    print(json.dumps({k: entry[k] for k in ("name", "dtype", "accuracy")}), flush=True)
    return entry


def markdown_table(index: dict) -> str:
    """The docs/zoo.md tables, from index.json."""
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}"  # noqa: E731
    lines = ["| name | train eps | clean (10k) | PGD-40 at train eps (n) | PGD-40, 5 restarts (subset) | "
             "AutoAttack (subset) | train time | SHA-256 (first 12) |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    grids = []
    for m in index["models"]:
        a = m["accuracy"]
        full = a.get("pgd40_train_eps_full") or {}
        g = a.get("pgd40_grid") or {}
        rows = {r["eps"]: r for r in g.get("rows", [])}
        r5 = rows.get(m["train_eps"], {}).get("restarts5")
        aa = a.get("autoattack") or {}
        lines.append(f"| `zoo:{m['name']}` | {m['train_eps']:g} | {pct(a['clean'])} | {pct(full.get('restarts1'))}{f' ({full.get(chr(110))})' if full else ''} | "
                     f"{pct(r5)}{f' (n={g.get(chr(110))})' if r5 is not None else ''} | "
                     f"{pct(aa.get('accuracy'))}{f' (n={aa.get(chr(110))})' if aa else ''} | "
                     f"{m['train_seconds'] / 60:.1f} min | `{m['sha256'][:12]}` |")
        grids.append(f"| `{m['name']}` | " + " | ".join(
            f"{pct(r['restarts1'])} / {pct(r['restarts5'])}" for r in g.get("rows", [])) + " |")
    out = "\n".join(lines) + "\n"
    for ds in sorted({m["dataset"] for m in index["models"]}):
        ms = [m for m in index["models"] if m["dataset"] == ds]
        eps = [r["eps"] for r in ms[0]["accuracy"]["pgd40_grid"]["rows"]]
        n = ms[0]["accuracy"]["pgd40_grid"]["n"]
        out += (f"\n{ds}: PGD-40 accuracy (%) over the eps grid, 1 / 5 restarts, stratified test subset of {n}:\n\n"
                "| model | " + " | ".join(f"eps {e:g}" for e in eps) + " |\n|---|" + "---:|" * len(eps) + "\n")
        out += "\n".join(g for g, m in zip(grids, index["models"]) if m["dataset"] == ds) + "\n"
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("build_dir", type=Path)
    p.add_argument("--names", nargs="*")
    p.add_argument("--grid-n", type=int, default=500)
    p.add_argument("--aa-n", type=int, default=100)
    p.add_argument("--full-n", type=lambda v: dict(kv.split("=") for kv in v.split(",")) if v else {}, default={},
                   help="NAME=N,...: PGD-40 at the training eps on a stratified subset of N test images for these "
                        "models instead of all (CPU budget)")
    p.add_argument("--index", type=Path, default=ZOO / "index.json",
                   help="index file to update (two builds at once: give the second its own, then --merge it)")
    p.add_argument("--merge", type=Path, nargs="*", default=[], help="merge these index files into --index and exit")
    p.add_argument("--table", action="store_true", help="print the docs/zoo.md tables from index.json and exit")
    a = p.parse_args()
    index_path = a.index
    index = json.loads(index_path.read_text()) if index_path.exists() else {"format": "advtopo-zoo-v1", "models": []}
    if a.merge:
        for other in a.merge:
            new = json.loads(other.read_text())["models"]
            names = {m["name"] for m in new}
            index["models"] = sorted([m for m in index["models"] if m["name"] not in names] + new,
                                     key=lambda m: m["name"])
        atomic_write_text(index_path, json.dumps(index, indent=1) + "\n")
        index_path.chmod(0o644)
        return
    if a.table:
        print(markdown_table(index))
        return
    names = a.names or sorted(d.name for d in a.build_dir.iterdir() if (d / "checkpoint.pt").exists())
    for name in names:
        print(f"== {name}", flush=True)
        entry = build(name, a.build_dir, a.grid_n, a.aa_n, int(a.full_n[name]) if name in a.full_n else None)
        index["models"] = [m for m in index["models"] if m["name"] != name] + [entry]
        index["models"].sort(key=lambda m: m["name"])
        atomic_write_text(index_path, json.dumps(index, indent=1) + "\n")


if __name__ == "__main__":
    main()
