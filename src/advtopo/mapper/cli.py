"""``advtopo mapper``: a mapper graph from a .npy/.npz/.csv array, written as JSON (or another export)."""
from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path

import numpy as np

from advtopo.checks import arg_input_file, arg_int, arg_output_file, positive_int
from advtopo.errors import AdvtopoError

FORMATS = ("json", "node-link", "graphml", "kmapper", "topoact", "mapper-interactive")


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _load_array(path: str) -> np.ndarray:
    p = Path(path)
    if not p.exists():
        raise AdvtopoError(f"no such file: {path}")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(p, allow_pickle=False)
        if suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                if not z.files:
                    raise AdvtopoError(f"{path} holds no arrays")
                return z[z.files[0]]
        if suffix == ".csv":
            return np.loadtxt(p, delimiter=",", ndmin=2)
    except AdvtopoError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:  # damaged, truncated, pickled, not numbers
        raise AdvtopoError(f"cannot read {path}: {_first_line(exc)}") from None
    raise AdvtopoError(f"unsupported file type {suffix!r} for {path}; allowed: .npy, .npz, .csv")


def _load_metadata(path: str | None, n: int) -> dict | None:
    if not path:
        return None
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise AdvtopoError(f"no such file: {path}")
    if p.suffix.lower() not in (".csv", ".parquet"):
        raise AdvtopoError(f"--metadata {path}: unsupported file type {p.suffix!r}; allowed: .csv, .parquet")
    try:
        df = pd.read_parquet(p) if p.suffix.lower() == ".parquet" else pd.read_csv(p)
    except (ValueError, OSError) as exc:  # not UTF-8, not CSV, not parquet, truncated
        raise AdvtopoError(f"cannot read --metadata {path}: {_first_line(exc)}") from None
    if len(df) != n:
        raise AdvtopoError(f"metadata {path} has {len(df)} rows; the array has {n}")
    return {c: df[c].to_numpy() for c in df.columns}


def _num_or_auto(value: str):
    if value == "auto":
        return value
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {value!r}") from None


def _lens_spec(args: argparse.Namespace):
    names = args.lens.split("+")
    specs = []
    for name in names:
        params: dict = {}
        if name == "pca":
            params["n_components"] = args.pca_components
        if name == "knn_distance":
            params["k"] = args.k
        if name == "metadata":
            params["column"] = args.lens_column
        specs.append((name, params) if params else name)
    return specs if len(specs) > 1 else specs[0]


def run_mapper(args: argparse.Namespace) -> int:
    from advtopo.mapper import Mapper

    X = _load_array(args.file)
    if X.ndim != 2:
        raise AdvtopoError(f"{args.file} holds an array of shape {X.shape}; expected (n_samples, n_features)")
    md = _load_metadata(args.metadata, len(X))
    mapper = Mapper(lens=_lens_spec(args), cover=args.cover, clusterer=args.clusterer, metric=args.metric,
                    n_intervals=args.n_intervals, overlap=args.overlap, eps=args.eps, min_samples=args.min_samples,
                    backend=args.backend, device=args.device, n_jobs=args.n_jobs)
    graph = mapper.fit(X, md)
    out = Path(args.out)
    graph.save(out, format=args.format)
    st = graph.stats()
    print(json.dumps({"out": str(out), "n_nodes": st["n_nodes"], "n_edges": st["n_edges"],
                      "n_components": st["n_components"], "n_noise": st["n_noise"], "eps": mapper.eps_,
                      "seconds": round(mapper.fit_seconds_, 3)}))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("mapper", help="build a mapper graph from an activation array (.npy/.npz/.csv)",
                              description=__doc__)
    p.add_argument("file", type=arg_input_file,
                   help="array of shape (n_samples, n_features): .npy, .npz (first array) or .csv")
    p.add_argument("--metadata", type=arg_input_file,
                   help="per-row columns (label, prediction, is_adversarial, sample_id): .csv or .parquet")
    p.add_argument("--lens", default="l2norm",
                   help="lens name, or two joined by '+' for a 2-D cover (default l2norm); see docs/mapper.md")
    p.add_argument("--pca-components", type=arg_int(1, 2), default=1, help="components of the pca lens (1 or 2)")
    p.add_argument("--k", type=positive_int, default=5, help="k of the knn_distance lens")
    p.add_argument("--lens-column", default="label", help="metadata column of the 'metadata' lens")
    p.add_argument("--cover", default="uniform", help="uniform | kmapper | balanced")
    p.add_argument("--n-intervals", type=int, default=10)
    p.add_argument("--overlap", type=float, default=0.3, help="in [0, 1)")
    p.add_argument("--clusterer", default="dbscan", help="dbscan | single | hdbscan")
    p.add_argument("--eps", type=_num_or_auto, default="auto", help="DBSCAN eps / single-linkage threshold, or 'auto'")
    p.add_argument("--min-samples", type=int, default=5)
    p.add_argument("--metric", default="euclidean", help="euclidean | cosine")
    p.add_argument("--backend", default="numpy", help="numpy | torch")
    p.add_argument("--device", default="cpu", help="torch device for --backend torch (cpu, cuda, auto)")
    p.add_argument("--n-jobs", type=int, default=-1, help="threads clustering the cover elements (-1: all cores)")
    p.add_argument("--format", default="json", choices=FORMATS)
    p.add_argument("--out", required=True, type=arg_output_file, help="output file")
    p.set_defaults(func=run_mapper)
