"""``advtopo persistence ...``: diagrams, distances, layer comparison, sensitivity and
activation-graph persistence from the command line."""
from __future__ import annotations

import argparse
import time
import zipfile
from pathlib import Path

import numpy as np

from advtopo.checks import arg_input_file, arg_output_dir, arg_output_file, nonnegative_int, positive_int
from advtopo.errors import AdvtopoError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("persistence", help="persistent homology of activations (diagrams, layer distances, "
                                           "activation graphs)")
    ps = p.add_subparsers(dest="persistence_command", metavar="SUBCOMMAND", parser_class=type(p))
    p.set_defaults(func=lambda a: (p.print_help(), 0)[1])

    d = ps.add_parser("diagrams", help="Vietoris-Rips diagrams of a point cloud (.npy [N, d] or feature maps)")
    d.add_argument("file", type=arg_input_file,
                   help=".npy point cloud [N, d]; [N, C, H, W] feature maps are reduced by top-L2")
    d.add_argument("--maxdim", type=int, default=1)
    d.add_argument("--metric", default="euclidean", help="euclidean or cosine")
    d.add_argument("--threshold", type=float, default=float("inf"))
    d.add_argument("--landmarks", type=positive_int, default=None, help="compute on this many maxmin landmarks")
    d.add_argument("--out", default=None, type=arg_output_file,
                   help="write the diagrams as .npy [n, 3] (birth, death, dim)")
    d.add_argument("--png", default=None, type=arg_output_file, help="plot the diagram to this PNG")
    d.set_defaults(func=_diagrams)

    t = ps.add_parser("distance", help="distance between two stored diagrams (.npy [n, 3])")
    t.add_argument("a", type=arg_input_file)
    t.add_argument("b", type=arg_input_file)
    t.add_argument("--metric", default="sliced_wasserstein", help="sliced_wasserstein, bottleneck or wasserstein")
    t.add_argument("--dim", type=nonnegative_int, default=1, help="homology dimension compared")
    t.set_defaults(func=_distance)

    lay = ps.add_parser("layers", help="layer x layer distance matrix beside CKA/SVCCA (.npz, one array per layer)")
    lay.add_argument("file", type=arg_input_file,
                     help=".npz whose arrays (same N rows) are the layers' clouds or feature maps")
    lay.add_argument("--metric", default="sliced_wasserstein")
    lay.add_argument("--dim", type=nonnegative_int, default=1)
    lay.add_argument("--landmarks", type=positive_int, default=None)
    lay.add_argument("--scaling", default="none", help="none or mean_distance")
    lay.add_argument("--out", default=None, type=arg_output_dir,
                     help="folder for layer_distance.json and layer_distance.png")
    lay.set_defaults(func=_layers)

    s = ps.add_parser("sensitivity", help="distance to the full cloud as top principal components are removed")
    s.add_argument("file", type=arg_input_file, help=".npy point cloud [N, d]")
    s.add_argument("--steps", type=nonnegative_int, default=10, help="remove 0..STEPS components")
    s.add_argument("--metric", default="sliced_wasserstein")
    s.add_argument("--dim", type=nonnegative_int, default=1)
    s.add_argument("--out", default=None, type=arg_output_dir, help="folder for sensitivity.json and sensitivity.png")
    s.set_defaults(func=_sensitivity)

    g = ps.add_parser("activation-graph", help="H0 persistence of one input's activation graph")
    g.add_argument("--model", default="lenet5", help="model name (lenet5, cff, smallcnn)")
    g.add_argument("--checkpoint", default=None, help="weights to load (default: untrained, seeded)")
    g.add_argument("--dataset", default="mnist")
    g.add_argument("--index", type=nonnegative_int, default=0, help="test-set index of the input")
    g.add_argument("--h1", action="store_true", help="also count the essential H1 classes")
    g.add_argument("--top", type=positive_int, default=10, help="print the most persistent pairs")
    g.add_argument("--out", default=None, type=arg_output_file, help="write pairs and dominant edges as JSON")
    g.set_defaults(func=_activation_graph)


def _load_cloud(path: str) -> np.ndarray:
    from advtopo.persistence import top_l2_point_cloud

    return top_l2_point_cloud(_load_npy(path))


def _load_npy(path: str) -> np.ndarray:
    """An array from a .npy file; a damaged, pickled or non-.npy file is one line naming it."""
    arr = _np_load(path)
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise AdvtopoError(f"{path} is an .npz archive; give an .npy array")
    return arr


def _np_load(path: str):
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AdvtopoError(f"cannot read {path}: {first}") from None


def _diagrams(args: argparse.Namespace) -> int:
    from advtopo.persistence import RipsPersistence, diagram_summary, stack_diagrams

    X = _load_cloud(args.file)
    t = time.perf_counter()
    rp = RipsPersistence(maxdim=args.maxdim, metric=args.metric, threshold=args.threshold,
                         n_landmarks=args.landmarks).fit(X)
    print(f"{X.shape[0]} points x {X.shape[1]} dims ({rp.n_points_} used), {time.perf_counter() - t:.2f} s")
    for k, dg in enumerate(rp.diagrams_):
        s = diagram_summary(dg)
        print(f"H{k}: {len(dg)} bars ({int(np.isinf(dg[:, 1]).sum())} infinite), total persistence "
              f"{s['total_persistence']:.4g}, longest {s['max_persistence']:.4g}, entropy {s['persistent_entropy']:.4g}")
    if args.out:
        from advtopo.utils import atomic_path

        with atomic_path(args.out) as tmp, open(tmp, "wb") as fh:
            np.save(fh, stack_diagrams(rp.diagrams_))
        print(f"wrote {args.out}")
    if args.png:
        from advtopo.persistence.plots import plot_diagram

        plot_diagram(rp.diagrams_, args.png, title=Path(args.file).name)
        print(f"wrote {args.png}")
    return 0


def _distance(args: argparse.Namespace) -> int:
    from advtopo.persistence import diagram_distance, split_diagrams

    dgs = []
    for f in (args.a, args.b):
        arr = _load_npy(f)
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise AdvtopoError(f"{f} must hold a diagram array [n, 3] (birth, death, dim), got {arr.shape}")
        dgs.append(split_diagrams(arr, maxdim=args.dim))
    print(f"{diagram_distance(dgs[0][args.dim], dgs[1][args.dim], args.metric):.6g}")
    return 0


def _layers(args: argparse.Namespace) -> int:
    from advtopo.persistence import compare_layers, top_l2_point_cloud

    z = _np_load(args.file)
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise AdvtopoError(f"{args.file} is not an .npz archive; give one array per layer (np.savez)")
    with z:
        clouds = {k: top_l2_point_cloud(z[k]) for k in z.files}
    out = compare_layers(clouds, metric=args.metric, homology_dim=args.dim, n_landmarks=args.landmarks,
                         scaling=args.scaling)
    labels = out["labels"]
    w = max(len(x) for x in labels) + 2
    print(f"{args.metric} H{args.dim} distance:")
    print(" " * w + "".join(f"{x[:9]:>10s}" for x in labels))
    for lab, row in zip(labels, out["matrix"]):
        print(f"{lab:{w}s}" + "".join(f"{v:10.4g}" for v in row))
    for m in ("cka", "svcca"):
        rc = out[f"rank_correlation_{m}"]
        print(f"Spearman(topological distance, 1 - {m}) = {rc['spearman']:.3f} over {rc['n_pairs']} pairs")
    if args.out:
        from advtopo.persistence.plots import plot_layer_matrices
        from advtopo.utils import atomic_write_json

        atomic_write_json(Path(args.out) / "layer_distance.json", out)
        plot_layer_matrices(out, Path(args.out) / "layer_distance.png")
        print(f"wrote {args.out}/layer_distance.json and .png")
    return 0


def _sensitivity(args: argparse.Namespace) -> int:
    from advtopo.persistence import pca_removal_sensitivity

    X = _load_cloud(args.file)
    steps = list(range(0, min(args.steps, X.shape[1] - 1) + 1))
    out = pca_removal_sensitivity(X, steps, metric=args.metric, homology_dim=args.dim)
    for k, d, v in zip(out["n_removed"], out["distance"], out["explained_variance_removed"]):
        print(f"removed {k:3d} components ({100 * v:5.1f}% variance): distance {d:.4g}")
    if args.out:
        from advtopo.persistence.plots import plot_curve
        from advtopo.utils import atomic_write_json

        atomic_write_json(Path(args.out) / "sensitivity.json", out)
        plot_curve(out["n_removed"], {"distance": out["distance"]}, Path(args.out) / "sensitivity.png",
                   "principal components removed", f"{args.metric} H{args.dim} distance to full cloud")
        print(f"wrote {args.out}/sensitivity.json and .png")
    return 0


def _activation_graph(args: argparse.Namespace) -> int:
    import torch

    from advtopo.data import load_dataset
    from advtopo.models import create_model, load_checkpoint
    from advtopo.persistence import ActivationGraph

    ds = load_dataset(args.dataset, "test")
    if not 0 <= args.index < len(ds.y):
        raise AdvtopoError(f"--index must be in [0, {len(ds.y)}), got {args.index}")
    shape = tuple(int(s) for s in ds.x.shape[1:])
    if args.checkpoint:
        model, _ = load_checkpoint(args.checkpoint, arch=args.model)
    else:
        torch.manual_seed(0)
        model = create_model(args.model, in_channels=shape[0], input_size=shape[1])
    torch.set_num_threads(1)
    g = ActivationGraph(input_shape=shape).fit(model)
    t = time.perf_counter()
    res = g.persistence(ds.x[args.index], h1=args.h1)
    dt = time.perf_counter() - t
    pers = res.persistence
    print(f"{args.model}: {g.n_vertices_} vertices, {g.n_edges_} edges; layers "
          + ", ".join(f"{k} {b - a}" for k, (a, b) in g.layers_.items()))
    print(f"input {args.index} (label {int(ds.y[args.index])}): {len(res.pairs)} H0 pairs "
          f"({int((pers > 0).sum())} with positive persistence), {len(res.essential)} essential"
          + (f", {len(res.h1)} essential H1" if res.h1 is not None else "") + f" in {dt:.3f} s")
    order = np.argsort(-pers)[: args.top]
    names = list(g.edge_layers_)
    for i in order:
        e = int(res.pair_edges[i])
        print(f"  birth {res.pairs[i, 0]:.4g} death {res.pairs[i, 1]:.4g}  edge {int(g.src_[e])}->{int(g.dst_[e])} "
              f"({names[int(g.edge_layer(np.array([e]))[0])]})")
    if args.out:
        from advtopo.utils import atomic_write_json

        atomic_write_json(args.out, {"model": args.model, "index": args.index, "pairs": res.pairs.tolist(),
                                     "pair_edges": res.pair_edges.tolist(), "essential": res.essential.tolist(),
                                     "dominant_edges": res.dominant_edges().tolist()})
        print(f"wrote {args.out}")
    return 0
