"""Build Mapper graphs with ONE tool, in that tool's own virtual environment (driven by ../mapper_peers.py).

    python run_peer.py TOOL WORKDIR      # TOOL: advtopo | kmapper | giotto | tdamapper | gudhi

Why a separate script: the peers' pins conflict with advtopo's (and with each other's), so each
runs in its own interpreter; this file imports nothing but numpy and the tool itself.

WORKDIR holds ``X.npy`` (n x d float32), ``lens.npy`` (n float64, the row L2 norm, precomputed
for every tool) and ``spec.json``: ``{"eps", "min_samples", "n_jobs", "mode": "one"|"sweep",
"settings": [[n_intervals, overlap], ...]}`` (advtopo also ``"cover"``: ``"kmapper"`` or
``"explicit"``, then ``covers.npz`` gives each setting's closed intervals). The tool writes
``TOOL.json`` (seconds, version) and ``TOOL.npz``: for graph i, ``m{i}_indptr``/``m{i}_indices``
(node memberships, CSR) and, for the peers, ``c{i}_lo``/``c{i}_hi``: the lens range
[min, max] of each of its cover elements, which advtopo turns into the same cover.
Timed: everything after the data and lens are loaded (cover, clustering, graph), not imports.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import numpy as np


def _csr(members: list) -> tuple[np.ndarray, np.ndarray]:
    members = [np.sort(np.asarray(m, dtype=np.int64)) for m in members]
    indptr = np.zeros(len(members) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(m) for m in members])
    indices = np.concatenate(members) if members else np.zeros(0, dtype=np.int64)
    return indptr, indices


def _element_ranges(lens: np.ndarray, elements: list) -> tuple[np.ndarray, np.ndarray]:
    """[min, max] of the lens over each non-empty cover element (a list of row-index arrays)."""
    els = [np.asarray(e, dtype=np.int64) for e in elements if len(e)]
    lo = np.array([lens[e].min() for e in els], dtype=np.float64)
    hi = np.array([lens[e].max() for e in els], dtype=np.float64)
    order = np.argsort(lo, kind="stable")
    return lo[order], hi[order]


def _dbscan(spec: dict):
    from sklearn.cluster import DBSCAN

    return DBSCAN(eps=spec["eps"], min_samples=spec["min_samples"])


# ---------------------------------------------------------------- one function per tool
# each returns (seconds, version, [(members, cover_element_ranges or None[, noise_node_flags]) per setting])

def run_kmapper(X, lens, spec):
    import kmapper as km

    out, t0 = [], time.perf_counter()
    for n, p in spec["settings"]:
        g = km.KeplerMapper(verbose=0).map(lens.reshape(-1, 1), X, clusterer=_dbscan(spec),
                                           cover=km.Cover(n_cubes=n, perc_overlap=p))
        out.append((list(g["nodes"].values()), None))
    return time.perf_counter() - t0, km.__version__, out


def run_giotto(X, lens, spec):
    import gtda
    from gtda.mapper import CubicalCover, make_mapper_pipeline
    from sklearn.base import BaseEstimator, TransformerMixin

    column = lens.reshape(-1, 1)

    class PrecomputedLens(BaseEstimator, TransformerMixin):
        """The lens every tool gets (a plain callable would be applied row by row)."""

        def fit(self, rows, y=None):
            return self

        def transform(self, rows):
            return column

    pipe = make_mapper_pipeline(filter_func=PrecomputedLens(), cover=CubicalCover(kind="uniform"),
                                clusterer=_dbscan(spec), n_jobs=spec["n_jobs"])
    graphs, t0 = [], time.perf_counter()
    for n, p in spec["settings"]:
        pipe.set_params(cover__n_intervals=n, cover__overlap_frac=p)
        graphs.append(pipe.fit_transform(X))
    secs = time.perf_counter() - t0
    out = []
    for (n, p), g in zip(spec["settings"], graphs):
        mask = CubicalCover(kind="uniform", n_intervals=n, overlap_frac=p).fit_transform(column)
        elements = [np.flatnonzero(mask[:, j]) for j in range(mask.shape[1])]
        noise = np.asarray(g.vs["partial_cluster_label"]) == -1  # giotto-tda keeps DBSCAN noise as a node
        out.append((list(g.vs["node_elements"]), _element_ranges(lens, elements), noise))
    return secs, gtda.__version__, out


def run_tdamapper(X, lens, spec):
    from importlib.metadata import version

    from tdamapper.cover import StandardCubicalCover
    from tdamapper.learn import MapperAlgorithm

    graphs, t0 = [], time.perf_counter()
    for n, p in spec["settings"]:
        algo = MapperAlgorithm(cover=StandardCubicalCover(n_intervals=n, overlap_frac=p),
                               clustering=_dbscan(spec), n_jobs=spec["n_jobs"], verbose=False)
        graphs.append(algo.fit(X, lens).graph_)
    secs = time.perf_counter() - t0
    out = []
    for (n, p), g in zip(spec["settings"], graphs):
        elements = list(StandardCubicalCover(n_intervals=n, overlap_frac=p).apply(lens.reshape(-1, 1)))
        out.append(([g.nodes[v]["ids"] for v in g.nodes], _element_ranges(lens, elements)))
    return secs, version("tda-mapper"), out


def _gudhi_patches(f: np.ndarray, r: int, g: float) -> list:
    """The patches MapperComplex.fit bins the points into (its own arithmetic, vectorised; 1 filter)."""
    min_f, max_f = f.min(), np.nextafter(f.max(), np.inf)
    ends, step = np.linspace(min_f, max_f, num=r + 1, retstep=True)
    if g < 0.5:
        inter = []
        for j in range(1, len(ends) - 1):
            inter += [ends[j] - g * step / (2 - 2 * g), ends[j] + g * step / (2 - 2 * g)]
        a = np.digitize(f, ends).astype(np.float64)
        b = 0.5 * (np.digitize(f, inter) + 1)
        pairs = [(a, np.ones_like(a, bool)), (a + 1, b == a), (a - 1, b == a - 1)]
        patch_of = np.concatenate([p[m] for p, m in pairs])
        rows = np.concatenate([np.flatnonzero(m) for _, m in pairs])
    else:
        left = ends[:-1] - g * step / (2 - 2 * g)
        right = ends[1:] + g * step / (2 - 2 * g)
        inside = (f[:, None] >= left[None, :]) & (f[:, None] <= right[None, :])
        rows, patch_of = np.nonzero(inside)
    return [rows[patch_of == k] for k in np.unique(patch_of)]


def run_gudhi(X, lens, spec):
    import gudhi
    from gudhi.cover_complex import MapperComplex

    graphs, t0 = [], time.perf_counter()
    for n, p in spec["settings"]:
        mc = MapperComplex(input_type="point cloud", resolutions=[n], gains=[p], clustering=_dbscan(spec))
        graphs.append(mc.fit(X, filters=lens.reshape(-1, 1), colors=lens.reshape(-1, 1)))
    secs = time.perf_counter() - t0
    out = []
    for (n, p), mc in zip(spec["settings"], graphs):
        members = [info["indices"] for info in mc.node_info_.values()]
        out.append((members, _element_ranges(lens, _gudhi_patches(lens, n, p))))
    return secs, gudhi.__version__, out


def run_advtopo(X, lens, spec):
    import advtopo
    from advtopo.mapper import Mapper
    from advtopo.mapper.cover import COVERS, Cover

    kind = spec["cover"]
    if kind == "explicit":
        table = np.load(os.path.join(spec["workdir"], "covers.npz"))
        bounds = {tuple(s): (table[f"c{i}_lo"], table[f"c{i}_hi"]) for i, s in enumerate(spec["settings"])}

        class PeerCover(Cover):
            """The peer's own cover elements as closed intervals [min, max] of the lens over each."""

            kind = "peer-explicit"

            def _intervals(self, values, n, p):
                return bounds[(n, p)]

        if "peer-explicit" not in COVERS:
            COVERS.register("peer-explicit")(PeerCover)
        kind = "peer-explicit"
    common = dict(lens=lens, cover=kind, eps=spec["eps"], min_samples=spec["min_samples"], n_jobs=spec["n_jobs"])
    t0 = time.perf_counter()
    if spec["mode"] == "one":
        (n, p), = spec["settings"]
        graphs = [Mapper(n_intervals=n, overlap=p, **common).fit(X)]
    else:
        ns = sorted({s[0] for s in spec["settings"]})
        ps = sorted({s[1] for s in spec["settings"]})
        if len(ns) * len(ps) != len({tuple(s) for s in spec["settings"]}):
            raise ValueError("sweep settings must be a full grid of n_intervals x overlap "
                             "(Mapper.sweep builds the grid)")
        by_setting = {(k[0], k[1]): g for k, g in Mapper(**common).sweep(X, n_intervals=ns, overlap=ps).items()}
        graphs = [by_setting[tuple(s)] for s in spec["settings"]]
    secs = time.perf_counter() - t0
    return secs, advtopo.__version__, [(list(g.members), None) for g in graphs]


TOOLS = {"advtopo": run_advtopo, "kmapper": run_kmapper, "giotto": run_giotto, "tdamapper": run_tdamapper,
         "gudhi": run_gudhi}


def _atomic_write(path: str, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".part")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _save_npz(path: str, arrays: dict) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _save_text(path: str, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)


def main(argv: list[str]) -> int:
    tool, workdir = argv
    with open(os.path.join(workdir, "spec.json")) as fh:
        spec = json.load(fh)
    spec["workdir"] = workdir
    if tool != "advtopo":
        import sklearn.cluster  # noqa: F401  (every peer clusters with it; importing it is not part of the time)
    X = np.load(os.path.join(workdir, "X.npy"))
    lens = np.load(os.path.join(workdir, "lens.npy"))
    secs, version, graphs = TOOLS[tool](X, lens, spec)
    arrays = {}
    for i, (members, ranges, *noise) in enumerate(graphs):
        arrays[f"m{i}_indptr"], arrays[f"m{i}_indices"] = _csr(members)
        if ranges is not None:
            arrays[f"c{i}_lo"], arrays[f"c{i}_hi"] = ranges
        if noise:
            arrays[f"n{i}_noise"] = noise[0]
    _atomic_write(os.path.join(workdir, f"{tool}.npz"), lambda path: _save_npz(path, arrays))
    result = {"tool": tool, "version": version, "seconds": secs, "n_graphs": len(graphs),
              "n_nodes": [len(g[0]) for g in graphs], "python": sys.version.split()[0], "numpy": np.__version__}
    _atomic_write(os.path.join(workdir, f"{tool}.json"), lambda path: _save_text(path, json.dumps(result)))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
