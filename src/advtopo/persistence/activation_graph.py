"""Per-input activation graph and its superlevel H0 persistence (Gebhart et al. 2019).

The graph of one input ``x``: vertices = the neurons of every layer (the input pixels, then
the output of each Conv2d, Linear and MaxPool2d); an edge i -> j for each weight that
connects them, with weight ``|W_ij * a_i|`` where ``a_i`` is the value neuron i passes on.

Conventions (documented in docs/persistence.md):

* Conv2d is unrolled exactly: output neuron (o, y, x) is joined to every input neuron
  (c, y*s - p + kh, x*s - p + kw) of its receptive field that lies inside the image
  (zero-padding positions are not neurons, so they give no edge). groups=1, dilation any.
* ReLU is folded into the neuron it follows: ``a_i`` is the post-ReLU value, so a neuron
  the ReLU switched off sends only zero-weight edges. Biases are not edges.
* MaxPool2d is a layer of vertices; each pooled neuron is joined to every neuron of its
  window, with weight ``a_i`` for the arg-max (the local derivative is 1) and 0 for the
  others. The edge set is therefore the same for every input (bag-of-edges columns line
  up), only the weights change.
* Flatten, Dropout, Identity pass values through (Flatten only renumbers).
* Edges of weight 0 enter the filtration at its very end and carry no information; they
  are left out (``drop_zero``), and so are vertices with no positive edge.

The superlevel filtration adds edges from heaviest to lightest; a vertex enters with its
heaviest edge (so every prefix is a graph). Diagram points are ``(birth, death)`` with
``birth >= death``; persistence = birth - death. Only the edges of a maximum spanning
forest can kill an H0 class, so the pairing runs on that forest; each edge outside it
closes a cycle: an essential H1 class born at its weight.

H1 (docs/persistence.md, "H1 of the activation graph"): a graph is a 1-dimensional complex,
so an H1 class born when an edge closes a cycle never dies. The usual way to get finite H1
bars is the flag (clique) complex: a triangle enters with its lightest edge and can fill a
cycle. The activation graph has no triangle: every edge joins a vertex layer to the next, so
colouring the layers even / odd makes it bipartite, and its flag complex *is* the graph.
Its H1 is therefore all essential: ``cycle rank = #positive edges - #forest edges`` classes,
born at the non-forest edge weights. :func:`flag_persistence` computes the flag complex's H0,
H1 (finite bars) and H2 for any weighted graph (equal to gudhi's SimplexTree with
``expansion(2)``, tested); on a bipartite graph it returns the graph's own diagrams at once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, dijkstra, minimum_spanning_tree

from advtopo.errors import AdvtopoError, did_you_mean
from advtopo.persistence._validation import check_float, check_int

_PASS = (nn.ReLU, nn.Flatten, nn.Dropout, nn.Identity)
_EDGE = (nn.Conv2d, nn.Linear, nn.MaxPool2d)


# --------------------------------------------------------------------------- H0 on a graph

@dataclass
class GraphPersistence:
    """H0 (and optional H1) persistence of a superlevel graph filtration.

    ``pairs``: [k, 2] finite (birth, death), birth >= death, in the order the classes die.
    ``pair_edges``: edge id of the death edge of each pair (the dominant edges).
    ``essential``: births of the H0 classes that never die (one per component).
    ``forest_edges``: ids of a maximum spanning forest (a superset of ``pair_edges``).
    ``h1``: births of the essential H1 classes (weights of the non-forest edges), if asked.
    """

    pairs: np.ndarray
    pair_edges: np.ndarray
    essential: np.ndarray
    forest_edges: np.ndarray
    n_vertices: int
    n_edges: int
    h1: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def persistence(self) -> np.ndarray:
        return self.pairs[:, 0] - self.pairs[:, 1]

    def diagram(self, essential_death: float | None = None) -> np.ndarray:
        """[k, 2] diagram; essential classes appended with death ``essential_death`` if given."""
        if essential_death is None:
            return self.pairs
        ess = np.column_stack([self.essential, np.full(len(self.essential), essential_death)])
        return np.concatenate([self.pairs, ess])

    def top_pairs(self, k: int) -> np.ndarray:
        """Indices (into ``pairs``) of the ``k`` most persistent pairs, most persistent first;
        ties go to the lower death-edge id, so the choice does not depend on the pairing order.
        Their ``pair_edges`` are the dominant subgraph of size k."""
        k = check_int("k", k, minimum=0)
        order = np.lexsort((self.pair_edges, -self.persistence))
        return order[:k]

    def dominant_edges(self, percentile: float | None = None, min_persistence: float = 0.0) -> np.ndarray:
        """Edge ids of the dominant subgraph: the death edges of the persistence pairs.

        ``min_persistence`` keeps pairs with birth - death > it (0 keeps pairs of positive
        persistence; -1 keeps all); ``percentile`` then keeps the edges whose weight (the
        death value) is at or above that percentile of the kept pairs' weights.
        """
        keep = self.persistence > min_persistence
        edges, deaths = self.pair_edges[keep], self.pairs[keep, 1]
        if percentile is not None and len(deaths):
            q = check_float("percentile", percentile, minimum=0.0, maximum=100.0)
            edges = edges[deaths >= np.percentile(deaths, q)]
        return edges


def _scipy_msf(u: np.ndarray, v: np.ndarray, w: np.ndarray, n: int, unique: bool = False) -> np.ndarray:
    """Positions (into u/v/w) of a maximum spanning forest, via scipy's Kruskal (C code).

    Parallel edges are reduced to their heaviest first (scipy would add them up), unless
    the caller knows the edges are ``unique`` (the activation graph's are).
    """
    a, b = np.minimum(u, v), np.maximum(u, v)
    if unique:
        sel = None
    else:
        key = a.astype(np.int64) * n + b
        order = np.lexsort((-w, key))
        first = np.ones(len(order), dtype=bool)
        first[1:] = key[order[1:]] != key[order[:-1]]
        sel = order[first]
        a, b, w = a[sel], b[sel], w[sel]
    if len(a) == 0:
        return np.zeros(0, dtype=np.int64)
    # The csr conversion sorts the entries by (row, col); carry each entry's position
    # through it as data, so the tree's entries (a subsequence of the canonical csr, in
    # the same order) map back to positions with one searchsorted and no argsort.
    g = coo_matrix((np.arange(1, len(a) + 1, dtype=np.float64), (a, b)), shape=(n, n)).tocsr()
    perm = g.data.astype(np.int64) - 1
    g.data = -w[perm].astype(np.float64)
    t = minimum_spanning_tree(g)
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(g.indptr))
    gkey = rows * n + g.indices
    trows = np.repeat(np.arange(n, dtype=np.int64), np.diff(t.indptr))
    at = perm[np.searchsorted(gkey, trows * n + t.indices)]
    return at if sel is None else sel[at]


_DENSE_DEDUP_CELLS = 1 << 24  # 16 M cells (64-128 MB of tables): the dense dedup's size limit


def _top_threshold(w: np.ndarray, k: int) -> float:
    """A weight t > 0 with roughly the ``k`` heaviest of the (positive) ``w`` at or above it,
    estimated on a strided sample (O(m) touches nothing but the sample)."""
    step = max(1, len(w) // 65536)
    sample = w[::step]
    i = min(len(sample) - 1, max(0, int(len(sample) * (1.0 - k / len(w)))))
    return float(np.partition(sample, i)[i])


def maximum_spanning_forest(src: np.ndarray, dst: np.ndarray, weights: np.ndarray, n_vertices: int,
                            chunk: float = 6.0, unique: bool = False) -> np.ndarray:
    """Edge ids (into src/dst/weights) of a maximum spanning forest; edges of weight <= 0 skipped.

    Filter-Kruskal: Kruskal (scipy) on the about ``chunk * n_vertices`` heaviest edges
    (all edges at or above a weight threshold estimated on a strided sample, so the heavy
    set is an exact weight prefix), then only the remaining edges that join two different
    trees can still enter, so they are contracted onto the tree labels (components that
    no remaining edge touches are dropped) and the step repeats. Same forest weight as
    Kruskal on all edges, without sorting all of them: on a lenet5 graph (4.2 M edges)
    about 0.15 s, 2.6x faster than scipy's Kruskal alone (docs/benchmarks-persistence.md).
    Contracted levels with few vertices and many parallel edges first keep the heaviest
    edge per vertex pair with a dense max table (``_DENSE_DEDUP_CELLS``).
    ``unique``: no parallel edges (skips a dedup sort).
    """
    w = np.asarray(weights)
    pos = np.flatnonzero(w > 0)
    m = len(pos)
    if m == 0:
        return pos
    if not unique and n_vertices * n_vertices <= _DENSE_DEDUP_CELLS and m > 4 * n_vertices:
        # Few vertices, many parallel edges (a contracted level): keep the heaviest edge of
        # each vertex pair with a dense max table instead of a sort.
        src, dst = np.asarray(src)[pos], np.asarray(dst)[pos]
        key = np.minimum(src, dst).astype(np.int64) * n_vertices + np.maximum(src, dst)
        wp = w[pos]
        best = np.zeros(n_vertices * n_vertices, dtype=wp.dtype)
        np.maximum.at(best, key, wp)
        cand = np.flatnonzero(wp == best[key])
        _, first = np.unique(key[cand], return_index=True)  # ties: one edge per pair
        cand = cand[first]
        sub = maximum_spanning_forest(src[cand], dst[cand], wp[cand], n_vertices, chunk, unique=True)
        return pos[cand[sub]]
    k = int(max(chunk * n_vertices, 1024))
    wp = w[pos]
    if m > 2 * k:
        heavy = wp >= _top_threshold(wp, k)
        n_heavy = int(heavy.sum())
    if m <= 2 * k or n_heavy == m or n_heavy > m // 2:
        return pos[_scipy_msf(src[pos], dst[pos], wp, n_vertices, unique)]
    top = pos[heavy]
    forest = top[_scipy_msf(src[top], dst[top], wp[heavy], n_vertices, unique)]
    g = coo_matrix((np.ones(len(forest)), (src[forest], dst[forest])), shape=(n_vertices, n_vertices))
    n_comp, lab = connected_components(g, directed=False)
    if n_comp == 1:
        return forest
    lab = lab.astype(np.int32)
    rest = pos[~heavy]
    lu, lv = lab[src[rest]], lab[dst[rest]]
    cross = lu != lv
    rest, lu, lv = rest[cross], lu[cross], lv[cross]
    if len(rest) == 0:
        return forest
    used = np.zeros(n_comp, dtype=bool)  # contract: renumber only the components still joined
    used[lu] = True
    used[lv] = True
    renum = (np.cumsum(used) - 1).astype(np.int32)
    sub = maximum_spanning_forest(renum[lu], renum[lv], w[rest], int(used.sum()), chunk)  # parallel edges
    return np.concatenate([forest, rest[sub]])


def graph_persistence(src: Any, dst: Any, weights: Any, n_vertices: int, h1: bool = False,
                      chunk: float = 6.0, unique: bool = False) -> GraphPersistence:
    """Exact H0 persistence of the superlevel filtration of an undirected weighted graph.

    Vertices enter with their heaviest edge; edges of weight <= 0 (and vertices with no
    positive edge) are not part of the filtration. Pairing follows the elder rule on the
    maximum spanning forest (union-find over its <= n-1 edges).
    """
    src = np.asarray(src)
    dst = np.asarray(dst)
    w = np.asarray(weights)
    if not (src.shape == dst.shape == w.shape) or src.ndim != 1:
        raise AdvtopoError(f"src, dst and weights must be 1-D arrays of one length, got "
                           f"{src.shape}, {dst.shape}, {w.shape}")
    if len(src) and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n_vertices):
        raise AdvtopoError(f"edge endpoints must lie in [0, n_vertices={n_vertices})")
    forest = maximum_spanning_forest(src, dst, w, n_vertices, chunk=chunk, unique=unique)
    fw = w[forest].astype(np.float64)
    order = np.argsort(-fw, kind="stable")
    forest, fw = forest[order], fw[order]
    fu, fv = src[forest].astype(np.int64), dst[forest].astype(np.int64)
    # Relabel the forest's vertices 0..k-1 so the union-find arrays stay small.
    verts, inv = np.unique(np.concatenate([fu, fv]), return_inverse=True)
    iu, iv = inv[: len(fu)], inv[len(fu):]
    vbirth = np.zeros(len(verts))
    np.maximum.at(vbirth, iu, fw)
    np.maximum.at(vbirth, iv, fw)
    parent = list(range(len(verts)))
    cbirth = vbirth.tolist()
    deaths_birth = np.empty(len(forest))
    for t, (a, b) in enumerate(zip(iu.tolist(), iv.tolist())):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        while parent[b] != b:
            parent[b] = parent[parent[b]]
            b = parent[b]
        if cbirth[a] < cbirth[b]:
            a, b = b, a
        deaths_birth[t] = cbirth[b]  # the younger class (lower birth) dies
        parent[b] = a
    pairs = np.column_stack([deaths_birth, fw]) if len(forest) else np.zeros((0, 2))
    roots = np.array([i for i in range(len(verts)) if parent[i] == i], dtype=np.int64)
    essential = np.sort(np.asarray(cbirth)[roots])[::-1] if len(roots) else np.zeros(0)
    h1_births = None
    if h1:
        mask = w > 0
        mask[forest] = False
        h1_births = np.sort(w[mask].astype(np.float64))[::-1]
    return GraphPersistence(pairs=pairs, pair_edges=forest, essential=essential, forest_edges=forest,
                            n_vertices=int(n_vertices), n_edges=int(len(w)), h1=h1_births)


def barcode_statistics(res: GraphPersistence) -> dict[str, float]:
    """Scalars of an H0 barcode (the finite pairs; bar length = birth - death): the number of
    bars of positive length, their total and largest length, and the persistent entropy of the
    lengths (natural log; 0 for <= 1 bar), as :func:`advtopo.persistence.persistent_entropy`."""
    life = res.persistence
    life = life[life > 0]
    total = float(life.sum())
    entropy = 0.0
    if len(life) > 1:
        p = life / total
        entropy = float(-np.sum(p * np.log(p)))
    return {"n_bars": int(len(life)), "total_persistence": total,
            "max_persistence": float(life.max()) if len(life) else 0.0, "persistent_entropy": entropy}


# --------------------------------------------------------------------------- H1: the flag complex

@dataclass
class FlagPersistence:
    """Persistence of the superlevel flag (clique) complex of a weighted graph, up to triangles.

    A vertex enters with its heaviest edge, an edge at its weight, a triangle with its lightest
    edge (the flag rule). Points are ``(birth, death)``, birth >= death.
    ``h0_pairs`` / ``h0_essential``: as :class:`GraphPersistence` (triangles do not change H0).
    ``h1_pairs``: [k, 2] finite H1 bars (birth = weight of the edge closing the cycle, death =
    value of the triangle that fills it). ``h1_essential``: births of the H1 classes no triangle
    fills. ``h2_essential``: values of the triangles that close a 2-cycle (a 2-complex has
    nothing to kill it). ``bipartite``: no odd cycle, so no triangle: the flag complex is the
    graph and every H1 class is essential (the activation graph's case).
    """

    h0_pairs: np.ndarray
    h0_essential: np.ndarray
    h1_pairs: np.ndarray
    h1_essential: np.ndarray
    h2_essential: np.ndarray
    n_vertices: int
    n_edges: int
    n_triangles: int
    bipartite: bool

    def diagram(self, dim: int, essential_death: float | None = None) -> np.ndarray:
        """[k, 2] diagram of dimension 0, 1 or 2; essential classes appended with death
        ``essential_death`` when given (else left out)."""
        dim = check_int("dim", dim, minimum=0)
        if dim > 2:
            raise AdvtopoError(f"dim must be 0, 1 or 2 (the complex stops at triangles), got {dim}")
        pairs = (self.h0_pairs, self.h1_pairs, np.zeros((0, 2)))[dim]
        if essential_death is None:
            return pairs
        ess = (self.h0_essential, self.h1_essential, self.h2_essential)[dim]
        return np.concatenate([pairs, np.column_stack([ess, np.full(len(ess), float(essential_death))])])


def is_bipartite(src: Any, dst: Any, n_vertices: int) -> bool:
    """Whether the undirected graph has no odd cycle (breadth-first levels from one root per
    component; an edge inside one level closes an odd cycle). A bipartite graph has no triangle."""
    src, dst = np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64)
    if (src == dst).any():
        return False
    if len(src) == 0:
        return True
    g = coo_matrix((np.ones(len(src)), (src, dst)), shape=(n_vertices, n_vertices)).tocsr()
    _, lab = connected_components(g, directed=False)
    roots = np.unique(lab, return_index=True)[1]
    level = dijkstra(g, directed=False, indices=roots, unweighted=True, min_only=True)
    return bool((level[src] != level[dst]).all())


def _simple_positive(src: np.ndarray, dst: np.ndarray, w: np.ndarray, n: int):
    """(a, b, w) with a < b: the edges of weight > 0, one per vertex pair (the heaviest)."""
    keep = w > 0
    a, b, w = np.minimum(src, dst)[keep].astype(np.int64), np.maximum(src, dst)[keep].astype(np.int64), w[keep]
    key = a * n + b
    order = np.lexsort((-w, key))
    first = np.ones(len(order), dtype=bool)
    first[1:] = key[order[1:]] != key[order[:-1]]
    sel = order[first]  # sorted by key
    return a[sel], b[sel], w[sel].astype(np.float64)


def _triangles(a: np.ndarray, b: np.ndarray, n: int, max_paths: int) -> np.ndarray:
    """[t, 3] edge positions (into a/b, sorted by key a*n+b) of every triangle u < v < w."""
    U = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)).tocsr()
    U.sort_indices()
    UT = U.T.tocsr()
    UT.sort_indices()
    indeg, outdeg = np.diff(UT.indptr), np.diff(U.indptr)
    n_paths = int((indeg * outdeg).sum())  # u < v < w paths u-v-w: the candidates
    if n_paths > max_paths:
        raise AdvtopoError(f"the flag complex needs {n_paths:,} two-edge paths checked (max_paths={max_paths:,}); "
                           "it is meant for graphs of up to about 10^5 edges, or raise max_paths")
    mids = np.flatnonzero(indeg * outdeg)
    us, vs, ws = [], [], []
    for v in mids.tolist():
        ins = UT.indices[UT.indptr[v]:UT.indptr[v + 1]]
        outs = U.indices[U.indptr[v]:U.indptr[v + 1]]
        us.append(np.repeat(ins, len(outs)))
        ws.append(np.tile(outs, len(ins)))
        vs.append(np.full(len(ins) * len(outs), v))
    if not us:
        return np.zeros((0, 3), dtype=np.int64)
    u, v, w = (np.concatenate(x).astype(np.int64) for x in (us, vs, ws))
    keys = a * n + b
    closing = u * n + w
    pos = np.minimum(np.searchsorted(keys, closing), len(keys) - 1)
    hit = keys[pos] == closing
    u, v, w = u[hit], v[hit], w[hit]
    return np.column_stack([np.searchsorted(keys, u * n + v), np.searchsorted(keys, v * n + w), pos[hit]])


def flag_persistence(src: Any, dst: Any, weights: Any, n_vertices: int, max_paths: int = 50_000_000) -> FlagPersistence:
    """H0, H1 (finite and essential) and H2 of the superlevel flag complex of a weighted graph.

    Edges of weight <= 0 are left out, parallel edges keep the heaviest, self-loops are
    refused. Edges are ordered by weight (heaviest first, ties by vertex pair), triangles by
    value, then the boundary matrix of the triangles is reduced over Z/2 (the standard
    algorithm). A bipartite graph (no triangle) is answered by :func:`graph_persistence`.
    ``max_paths`` bounds the triangle search (two-edge paths checked); cost is measured in
    docs/persistence.md.
    """
    src, dst, w = np.asarray(src), np.asarray(dst), np.asarray(weights, dtype=np.float64)
    if not (src.shape == dst.shape == w.shape) or src.ndim != 1:
        raise AdvtopoError(f"src, dst and weights must be 1-D arrays of one length, got "
                           f"{src.shape}, {dst.shape}, {w.shape}")
    if len(src) and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n_vertices):
        raise AdvtopoError(f"edge endpoints must lie in [0, n_vertices={n_vertices})")
    if ((src == dst) & (w > 0)).any():
        raise AdvtopoError("self-loops are not simplices of a flag complex; remove edges with src == dst")
    a, b, w = _simple_positive(src, dst, w, n_vertices)
    empty = np.zeros((0, 2))
    if is_bipartite(a, b, n_vertices):
        res = graph_persistence(a, b, w, n_vertices, h1=True, unique=True)
        return FlagPersistence(res.pairs, res.essential, empty, res.h1, np.zeros(0), int(n_vertices), len(a), 0, True)
    tri = _triangles(a, b, n_vertices, max_paths)
    order = np.lexsort((b, a, -w))  # the edge filtration: heaviest first
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    ws = w[order]
    # H0 (elder rule) and which edges close a cycle (the H1 births), in filtration order
    vbirth = np.zeros(n_vertices)
    np.maximum.at(vbirth, a, w)
    np.maximum.at(vbirth, b, w)
    parent = list(range(n_vertices))
    cbirth = vbirth.tolist()
    h0, closes = [], np.zeros(len(order), dtype=bool)
    for r, (x, y) in enumerate(zip(a[order].tolist(), b[order].tolist())):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        while parent[y] != y:
            parent[y] = parent[parent[y]]
            y = parent[y]
        if x == y:
            closes[r] = True
            continue
        if cbirth[x] < cbirth[y]:
            x, y = y, x
        h0.append((cbirth[y], ws[r]))
        parent[y] = x
    used = np.zeros(n_vertices, dtype=bool)
    used[a] = used[b] = True
    roots = [i for i in np.flatnonzero(used).tolist() if parent[i] == i]
    h0_ess = np.sort(np.asarray([cbirth[i] for i in roots], dtype=np.float64))[::-1]
    # H1 / H2: reduce the triangles' boundary columns (edge ranks) in filtration order
    tr = rank[tri]
    tval = w[tri].min(axis=1) if len(tri) else np.zeros(0)
    torder = np.lexsort((tr.max(axis=1) if len(tri) else tval, -tval))
    pivots: dict[int, set[int]] = {}
    h1, h2 = [], []
    for t in torder.tolist():
        col = set(tr[t].tolist())
        low = max(col)
        while low in pivots:
            col ^= pivots[low]
            if not col:
                break
            low = max(col)
        if col:
            pivots[low] = col
            h1.append((ws[low], tval[t]))
        else:
            h2.append(tval[t])
    h1_ess = [ws[r] for r in np.flatnonzero(closes).tolist() if r not in pivots]
    return FlagPersistence(np.asarray(h0, dtype=np.float64).reshape(-1, 2), h0_ess,
                           np.asarray(h1, dtype=np.float64).reshape(-1, 2),
                           np.sort(np.asarray(h1_ess, dtype=np.float64))[::-1],
                           np.sort(np.asarray(h2, dtype=np.float64))[::-1],
                           int(n_vertices), len(a), int(len(tri)), False)


# --------------------------------------------------------------------------- the unrolled network

@dataclass
class _Block:
    kind: str            # "conv", "linear", "maxpool"
    name: str
    module: nn.Module
    in_offset: int
    out_offset: int
    edge_start: int
    edge_stop: int
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    valid: np.ndarray | None = None   # conv with padding: mask over the dense (O, CKK, L) edges


class ActivationGraph:
    """The unrolled neuron graph of a feed-forward network (fixed edge set, per-input weights).

    Parameters
    ----------
    input_shape : (C, H, W) of one input.
    device : torch device for the weight computation ("cpu" is fine: it is one input).

    ``fit(model)`` records the chain of leaf modules (it must reproduce ``model(x)``:
    Conv2d/Linear/MaxPool2d/ReLU/Flatten/Dropout/Identity only, no skip connections) and
    builds the edge list: ``src_``, ``dst_`` (int32 vertex ids), ``layers_`` (name ->
    vertex range), ``edge_layers_`` (name -> edge range), ``n_vertices_``, ``n_edges_``.
    """

    def __init__(self, input_shape: tuple[int, int, int] = (1, 28, 28), device: str = "cpu") -> None:
        self.input_shape = input_shape
        self.device = device

    # -- structure
    def fit(self, model: nn.Module, y: Any = None) -> "ActivationGraph":
        shape = tuple(int(s) for s in self.input_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise AdvtopoError(f"input_shape must be (channels, height, width), got {self.input_shape!r}")
        model = model.eval().to(self.device)
        self.model_ = model
        names = {m: n for n, m in model.named_modules()}
        calls: list[nn.Module] = []
        hooks = [m.register_forward_hook(lambda m, i, o: calls.append(m))
                 for m in model.modules() if len(list(m.children())) == 0]
        x = torch.rand((1, *shape), device=self.device, generator=torch.Generator().manual_seed(0)
                       if self.device == "cpu" else None)
        try:
            with torch.no_grad():
                ref = model(x)
        finally:
            for h in hooks:
                h.remove()
        for m in calls:
            if not isinstance(m, _PASS + _EDGE):
                raise AdvtopoError(f"activation graph supports Conv2d, Linear, MaxPool2d, ReLU, Flatten, "
                                   f"Dropout and Identity layers; {names.get(m, m)!r} is {type(m).__name__}")
        try:
            with torch.no_grad():
                out = x
                for m in calls:
                    out = m(out)
            same = out.shape == ref.shape and torch.allclose(out, ref, rtol=1e-4, atol=1e-5)
        except RuntimeError:
            same = False
        if not same:
            raise AdvtopoError("the model is not a plain chain of its modules (functional ops or skip "
                               "connections in forward); the activation graph needs a feed-forward chain")
        self.chain_ = calls
        blocks: list[_Block] = []
        src_parts, dst_parts = [], []
        layers = {"input": (0, int(np.prod(shape)))}
        n_v, n_e = int(np.prod(shape)), 0
        cur_off, cur_shape = 0, shape
        with torch.no_grad():
            a = torch.zeros((1, *shape), device=self.device)
            for m in calls:
                out = m(a)
                oshape = tuple(out.shape[1:])
                if isinstance(m, _EDGE):
                    kind = {nn.Conv2d: "conv", nn.Linear: "linear", nn.MaxPool2d: "maxpool"}[type(m)]
                    s, d, valid = _block_edges(kind, m, cur_shape, oshape)
                    n_out = int(np.prod(oshape))
                    blk = _Block(kind, names.get(m, type(m).__name__), m, cur_off, n_v, n_e, n_e + len(s),
                                 cur_shape, oshape, valid)
                    blocks.append(blk)
                    src_parts.append((s + cur_off).astype(np.int32))
                    dst_parts.append((d + n_v).astype(np.int32))
                    layers[blk.name] = (n_v, n_v + n_out)
                    cur_off, n_v, n_e = n_v, n_v + n_out, n_e + len(s)
                cur_shape = oshape if not isinstance(m, nn.Flatten) else cur_shape
                a = out
        self.blocks_ = blocks
        self.src_ = np.concatenate(src_parts) if src_parts else np.zeros(0, np.int32)
        self.dst_ = np.concatenate(dst_parts) if dst_parts else np.zeros(0, np.int32)
        self.layers_ = layers
        self.edge_layers_ = {b.name: (b.edge_start, b.edge_stop) for b in blocks}
        self.n_vertices_, self.n_edges_ = n_v, n_e
        return self

    # -- weights
    def edge_weights(self, x: Any, values: bool = False) -> Any:
        """float32 [n_edges_] weights |W_ij a_i| of one input ``x`` ([C,H,W] or [1,C,H,W]).

        ``values=True`` also returns each layer's neuron values (name -> flat float32 array):
        what a neuron passes on (post-ReLU; the model's output for the last layer), the raw
        activations the weights are built from, in one forward pass."""
        self._check_fitted()
        x = torch.as_tensor(x, dtype=torch.float32, device=self.device)
        if x.dim() == 3:
            x = x[None]
        if tuple(x.shape) != (1, *self.input_shape):
            raise AdvtopoError(f"x must have shape {tuple(self.input_shape)} (one input), got {tuple(x.shape)}")
        out = np.empty(self.n_edges_, dtype=np.float32)
        vals: dict[str, np.ndarray] = {}
        it = iter(self.blocks_)
        blk, prev = next(it, None), None
        with torch.no_grad():
            a = x
            for m in self.chain_:
                if blk is not None and m is blk.module:
                    if prev is not None and values:
                        vals[prev] = a.reshape(-1).cpu().numpy().astype(np.float32)
                    w = _block_weights(blk, a[0])
                    out[blk.edge_start:blk.edge_stop] = w
                    prev, blk = blk.name, next(it, None)
                a = m(a)
            if prev is not None and values:
                vals[prev] = a.reshape(-1).cpu().numpy().astype(np.float32)
        return (out, vals) if values else out

    def edge_ids(self, layers: Any = None) -> np.ndarray:
        """int64 ids of the edges of the named edge layers (Conv2d / Linear / MaxPool2d modules,
        ``edge_layers_``); None: every edge. Unknown names are refused with the allowed ones."""
        self._check_fitted()
        if layers is None:
            return np.arange(self.n_edges_, dtype=np.int64)
        if isinstance(layers, str) or not all(isinstance(n, str) for n in layers) or not len(layers):
            raise AdvtopoError(f"layers must be a non-empty list of layer names, got {layers!r}")
        for name in layers:
            if name not in self.edge_layers_:
                raise AdvtopoError(f"layer {name!r} has no edges in the activation graph"
                                   f"{did_you_mean(name, self.edge_layers_)}; "
                                   f"edge layers (Conv2d, Linear, MaxPool2d): {', '.join(self.edge_layers_)}")
        chosen = [self.edge_layers_[n] for n in self.edge_layers_ if n in set(layers)]  # network order
        return np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in chosen])

    def persistence(self, x: Any, h1: bool = False, layers: Any = None,
                    weights: np.ndarray | None = None) -> GraphPersistence:
        """H0 (optionally the essential H1) persistence of input ``x``'s activation graph.

        ``layers``: keep only these edge layers' edges (``edge_ids``); ``pair_edges`` and
        ``forest_edges`` stay global edge ids. ``weights``: ``edge_weights(x)`` when already
        computed. The graph is bipartite (layers alternate), so H1 has no finite bars: see
        :func:`flag_persistence`."""
        w = self.edge_weights(x) if weights is None else weights
        if layers is None:
            res = graph_persistence(self.src_, self.dst_, w, self.n_vertices_, h1=h1, unique=True)
        else:
            ids = self.edge_ids(layers)
            res = graph_persistence(self.src_[ids], self.dst_[ids], w[ids], self.n_vertices_, h1=h1, unique=True)
            res.pair_edges, res.forest_edges = ids[res.pair_edges], ids[res.forest_edges]
            res.n_edges = int(len(ids))
        res.meta["weights_max"] = float(w.max()) if len(w) else 0.0
        return res

    def edge_layer(self, edge_ids: np.ndarray) -> np.ndarray:
        """Index (into ``blocks_``) of the layer each edge id belongs to."""
        starts = np.array([b.edge_start for b in self.blocks_])
        return np.searchsorted(starts, edge_ids, side="right") - 1

    def _check_fitted(self) -> None:
        if not hasattr(self, "blocks_"):
            raise AdvtopoError("ActivationGraph is not fitted: call fit(model) first")


def _block_edges(kind: str, m: nn.Module, in_shape: tuple, out_shape: tuple):
    """Static (src, dst) local vertex indices of one block, in the weight layout of _block_weights."""
    if kind == "linear":
        n_in, n_out = m.in_features, m.out_features
        if int(np.prod(in_shape)) != n_in:
            raise AdvtopoError(f"Linear layer expects {n_in} inputs, the graph has {int(np.prod(in_shape))}")
        return np.tile(np.arange(n_in), n_out), np.repeat(np.arange(n_out), n_in), None
    if len(in_shape) != 3:
        raise AdvtopoError(f"{type(m).__name__} needs a [C, H, W] input, got shape {in_shape}")
    C, H, W = in_shape
    ids = torch.arange(1, C * H * W + 1, dtype=torch.float64).view(1, C, H, W)
    if kind == "conv":
        if m.groups != 1:
            raise AdvtopoError(f"Conv2d with groups={m.groups} is not supported (groups=1 only)")
        if m.padding_mode != "zeros":
            raise AdvtopoError(f"Conv2d padding_mode={m.padding_mode!r} is not supported ('zeros' only)")
        O = m.out_channels
        cols = F.unfold(ids, m.kernel_size, dilation=m.dilation, padding=m.padding, stride=m.stride)[0]
        ckk, L = cols.shape
        cols = cols.numpy().astype(np.int64) - 1  # -1 = padding
        src = np.broadcast_to(cols[None], (O, ckk, L)).reshape(-1)
        dst = np.broadcast_to((np.arange(O)[:, None, None] * L + np.arange(L)[None, None, :]),
                              (O, ckk, L)).reshape(-1)
        valid = src >= 0
        if valid.all():
            return src.copy(), dst.copy(), None
        return src[valid], dst[valid], valid
    # maxpool: window elements -> pooled neuron, per channel
    if m.padding not in (0, (0, 0)) or m.dilation not in (1, (1, 1)) or m.ceil_mode:
        raise AdvtopoError("MaxPool2d with padding, dilation or ceil_mode is not supported")
    cols = F.unfold(ids.view(C, 1, H, W), m.kernel_size, stride=m.stride or m.kernel_size)  # [C, kk, L]
    _, kk, L = cols.shape
    src = cols.numpy().astype(np.int64).reshape(-1) - 1
    dst = np.broadcast_to(np.arange(C)[:, None, None] * L + np.arange(L)[None, None, :], (C, kk, L)).reshape(-1)
    return src, dst.copy(), None


def _block_weights(blk: _Block, a: torch.Tensor) -> np.ndarray:
    """|W_ij a_i| for one block, in the static edge order; ``a`` is the block's input [C,H,W] or [n]."""
    m = blk.module
    if blk.kind == "linear":
        return (m.weight.abs() * a.reshape(1, -1).abs()).reshape(-1).cpu().numpy()
    if blk.kind == "conv":
        cols = F.unfold(a[None], m.kernel_size, dilation=m.dilation, padding=m.padding, stride=m.stride)[0]
        w = (m.weight.reshape(m.out_channels, -1, 1).abs() * cols.abs()[None]).reshape(-1).cpu().numpy()
        return w if blk.valid is None else w[blk.valid]
    C, H, W = blk.in_shape
    k, s = m.kernel_size, m.stride or m.kernel_size
    cols = F.unfold(a.reshape(C, 1, H, W), k, stride=s)  # [C, kk, L]
    is_max = cols == cols.max(dim=1, keepdim=True).values
    first = is_max & (is_max.cumsum(dim=1) == 1)  # ties: the first, as torch's max_pool2d does
    return (cols.abs() * first).reshape(-1).cpu().numpy()


def bag_of_edges(edge_sets: list[np.ndarray], vocabulary: np.ndarray | None = None,
                 weights: list[np.ndarray] | None = None):
    """Sparse [n_inputs, n_vocab] matrix: 1 (or the given weight) where an input's subgraph has an edge.

    ``vocabulary`` = sorted edge ids that become columns (default: every edge seen); edges
    outside it are ignored (an adversarial subgraph may use edges no clean one used).
    Returns (matrix, vocabulary).
    """
    from scipy.sparse import csr_matrix

    if vocabulary is None:
        vocabulary = np.unique(np.concatenate(edge_sets)) if edge_sets else np.zeros(0, np.int64)
    rows, cols, vals = [], [], []
    for i, e in enumerate(edge_sets):
        pos = np.searchsorted(vocabulary, e)
        pos = np.minimum(pos, max(len(vocabulary) - 1, 0))
        ok = vocabulary[pos] == e if len(vocabulary) else np.zeros(len(e), bool)
        rows.append(np.full(int(ok.sum()), i))
        cols.append(pos[ok])
        vals.append(np.ones(int(ok.sum())) if weights is None else np.asarray(weights[i])[ok])
    X = csr_matrix((np.concatenate(vals) if vals else np.zeros(0),
                    (np.concatenate(rows) if rows else np.zeros(0, int),
                     np.concatenate(cols) if cols else np.zeros(0, int))),
                   shape=(len(edge_sets), len(vocabulary)))
    return X, vocabulary
