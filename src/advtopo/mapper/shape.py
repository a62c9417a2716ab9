"""The shapes TopoAct reads in a mapper graph, and how members move between two layers' graphs.

* **Loops**: a cycle basis (each cycle as its node ids in cycle order). Their number is the
  graph's cycle rank ``E - V + C`` whatever basis is chosen; a *minimum* basis (shortest
  cycles, networkx's de Pina algorithm) when the graph is small enough for it, else the
  fundamental cycles of a breadth-first spanning tree (each as short as the tree allows;
  linear time). ``method`` chooses.
* **Branch points**: nodes of degree >= 3, each with its branches: the connected components
  of the graph without that node that touch it (their node and member-row counts, and the
  neighbours through which they are entered). A branch point on a loop has fewer branches
  than its degree (neighbours joined around the loop are one branch).
* **Cross-layer flow**: for graphs of the *same samples* at two layers (same model, attack and
  eps), how many member rows of each node of the first graph lie in each node of the second:
  a sparse node x node matrix. Rows are matched by ``(sample_id, is_adversarial)``, so the two
  graphs need not order their rows alike. Mapper nodes overlap, so a node's shares can sum
  to more than 1; rows in no node of the second graph are counted apart (``unmapped``).

All functions take a graph in the JSON contract form (``MapperGraph.to_dict()``, what
``Run.graph`` returns) or a :class:`~advtopo.mapper.MapperGraph`. Edges weaker than
``min_jaccard`` can be left out, as the app's Jaccard slider does.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from advtopo.errors import AdvtopoError

ROWS = ("all", "clean", "adversarial")
CYCLE_METHODS = ("auto", "minimum", "fundamental")
# "auto" takes the minimum basis while (cycle rank x nodes x edges) stays under this: de Pina's
# algorithm runs one shortest-path search per node for each basis cycle (measured in docs/mapper.md)
MINIMUM_BASIS_WORK = 300_000


@dataclass
class _Structure:
    """What the shape and flow computations need of a graph, as arrays."""

    ids: list[str]
    members: list[np.ndarray]
    n_points: int
    source: np.ndarray  # edge endpoints (node indices), one entry per edge
    target: np.ndarray
    jaccard: np.ndarray
    sample_id: np.ndarray
    is_adversarial: np.ndarray

    @property
    def n_nodes(self) -> int:
        return len(self.ids)

    def incidence(self, rows: np.ndarray | None = None) -> csr_matrix:
        """(nodes x points) 0/1 membership; with ``rows`` (a boolean mask) only those rows."""
        sizes = np.array([len(m) for m in self.members], dtype=np.int64)
        idx = np.concatenate(self.members) if self.members else np.zeros(0, dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(sizes)])
        data = np.ones(len(idx), dtype=np.float64)
        if rows is not None:
            data = rows[idx].astype(np.float64)
        M = csr_matrix((data, idx, indptr), shape=(self.n_nodes, self.n_points))
        M.eliminate_zeros()
        return M


def _structure(graph: Any) -> _Structure:
    if hasattr(graph, "edge_source") and hasattr(graph, "members"):  # a MapperGraph
        md = graph.metadata
        n = graph.n_points
        return _Structure(
            ids=list(graph.node_ids), members=[np.asarray(m, dtype=np.int64) for m in graph.members], n_points=n,
            source=np.asarray(graph.edge_source, dtype=np.int64), target=np.asarray(graph.edge_target, dtype=np.int64),
            jaccard=np.asarray(graph.edge_jaccard, dtype=np.float64),
            sample_id=np.asarray(md["sample_id"], dtype=np.int64) if "sample_id" in md else np.arange(n),
            is_adversarial=np.asarray(md["is_adversarial"], dtype=bool) if "is_adversarial" in md
            else np.zeros(n, dtype=bool))
    if not isinstance(graph, Mapping) or not isinstance(graph.get("nodes"), list):
        raise AdvtopoError("a graph is a MapperGraph or its JSON dict with a 'nodes' list (MapperGraph.to_dict())")
    ids = [str(nd.get("id")) for nd in graph["nodes"]]
    position = {nid: i for i, nid in enumerate(ids)}
    if len(position) != len(ids):
        raise AdvtopoError("the graph's node ids are not unique")
    members = [np.asarray(nd.get("members") or [], dtype=np.int64).reshape(-1) for nd in graph["nodes"]]
    pts = graph.get("points") or {}
    sid = pts.get("sample_id")
    n_points = len(sid) if sid is not None else int(max((int(m.max()) + 1 for m in members if len(m)), default=0))
    for nid, m in zip(ids, members):
        if len(m) and (int(m.min()) < 0 or int(m.max()) >= n_points):
            raise AdvtopoError(f"node {nid!r} has members outside the graph's {n_points} point rows")
    src, tgt, jac = [], [], []
    for e in graph.get("edges") or []:
        a, b = position.get(str(e.get("source"))), position.get(str(e.get("target")))
        if a is None or b is None:
            raise AdvtopoError(f"edge {e.get('source')!r} - {e.get('target')!r} names a node the graph does not have")
        if a == b:
            continue
        src.append(a)
        tgt.append(b)
        j = e.get("jaccard")
        jac.append(float(j) if j is not None else 1.0)
    adv = pts.get("is_adversarial")
    return _Structure(
        ids=ids, members=members, n_points=n_points,
        source=np.asarray(src, dtype=np.int64), target=np.asarray(tgt, dtype=np.int64),
        jaccard=np.asarray(jac, dtype=np.float64),
        sample_id=np.asarray(sid, dtype=np.int64) if sid is not None else np.arange(n_points),
        is_adversarial=np.asarray([bool(v) for v in adv], dtype=bool) if adv is not None
        else np.zeros(n_points, dtype=bool))


def _check_min_jaccard(min_jaccard: float) -> float:
    try:
        v = float(min_jaccard)
    except (TypeError, ValueError):
        raise AdvtopoError(f"min_jaccard={min_jaccard!r} must be a number from 0 to 1") from None
    if not 0.0 <= v <= 1.0:
        raise AdvtopoError(f"min_jaccard={min_jaccard!r} must be a number from 0 to 1")
    return v


def _adjacency(s: _Structure, min_jaccard: float) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
    """Neighbour lists over the edges kept (jaccard >= min_jaccard, each pair once), and those edges."""
    keep = s.jaccard >= min_jaccard
    a, b = s.source[keep], s.target[keep]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    pairs = np.unique(np.stack([lo, hi], axis=1), axis=0) if len(lo) else np.zeros((0, 2), dtype=np.int64)
    adj: list[list[int]] = [[] for _ in range(s.n_nodes)]
    for u, v in pairs.tolist():
        adj[u].append(v)
        adj[v].append(u)
    return adj, pairs[:, 0], pairs[:, 1]


def _components(n: int, a: np.ndarray, b: np.ndarray) -> tuple[int, np.ndarray]:
    if n == 0:
        return 0, np.zeros(0, dtype=np.int64)
    A = csr_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    return connected_components(A, directed=False)


def shape_counts(graph: Any, min_jaccard: float = 0.0) -> dict:
    """The cheap counts (no basis): ``n_loops`` = cycle rank E - V + C, ``n_branch_points`` =
    nodes of degree >= 3, plus ``n_nodes``, ``n_edges``, ``n_components``."""
    s = _structure(graph)
    adj, a, b = _adjacency(s, _check_min_jaccard(min_jaccard))
    n_comp, _ = _components(s.n_nodes, a, b)
    return {"n_nodes": s.n_nodes, "n_edges": int(len(a)), "n_components": int(n_comp),
            "n_loops": int(len(a) - s.n_nodes + n_comp),
            "n_branch_points": int(sum(len(nb) >= 3 for nb in adj))}


def _fundamental_cycles(adj: list[list[int]]) -> list[list[int]]:
    """One cycle per non-tree edge of a breadth-first spanning forest: the tree paths from the
    edge's ends to their lowest common ancestor, closed by the edge (node order around the cycle)."""
    n = len(adj)
    parent = [-1] * n
    depth = [-1] * n
    cycles: list[list[int]] = []
    for root in range(n):
        if depth[root] >= 0:
            continue
        depth[root] = 0
        order = [root]
        q = deque([root])
        while q:
            u = q.popleft()
            for v in adj[u]:
                if depth[v] < 0:
                    depth[v], parent[v] = depth[u] + 1, u
                    q.append(v)
                    order.append(v)
        for u in order:
            for v in adj[u]:
                # each non-tree edge once: from its smaller end
                if u < v and parent[v] != u and parent[u] != v:
                    left, right = [u], [v]
                    x, y = u, v
                    while depth[x] > depth[y]:
                        x = parent[x]
                        left.append(x)
                    while depth[y] > depth[x]:
                        y = parent[y]
                        right.append(y)
                    while x != y:
                        x, y = parent[x], parent[y]
                        left.append(x)
                        right.append(y)
                    cycles.append(left + right[-2::-1])  # u .. lca .. v, then the edge v-u closes it
    return cycles


def _cycle_order(nodes: list[int], adj: list[list[int]], edges_of_cycle: list[tuple[int, int]] | None = None) -> list[int]:
    """The nodes of a cycle in the order they are walked (networkx lists them unordered)."""
    if edges_of_cycle:
        nb: dict[int, list[int]] = {}
        for u, v in edges_of_cycle:
            nb.setdefault(u, []).append(v)
            nb.setdefault(v, []).append(u)
    else:
        inside = set(nodes)
        nb = {u: [v for v in adj[u] if v in inside] for u in nodes}
    if any(len(v) != 2 for v in nb.values()):
        return sorted(nodes)
    start = min(nb)
    out, prev, cur = [start], None, start
    while True:
        a, b = nb[cur]
        nxt = a if a != prev else b
        if nxt == start:
            break
        out.append(nxt)
        prev, cur = cur, nxt
        if len(out) > len(nb):
            return sorted(nodes)
    return out


def _minimum_cycles(adj: list[list[int]], a: np.ndarray, b: np.ndarray) -> list[list[int]]:
    import networkx as nx

    G = nx.Graph()
    G.add_nodes_from(range(len(adj)))
    G.add_edges_from(zip(a.tolist(), b.tolist()))
    return [_cycle_order(c, adj) for c in nx.minimum_cycle_basis(G)]


def _canonical(cycle: list[int]) -> list[int]:
    """Start at the smallest node, go towards its smaller neighbour: one spelling per cycle."""
    k = cycle.index(min(cycle))
    c = cycle[k:] + cycle[:k]
    return [c[0]] + c[1:][::-1] if len(c) > 2 and c[-1] < c[1] else c


def cycle_basis(graph: Any, *, min_jaccard: float = 0.0, method: str = "auto") -> tuple[list[list[str]], str]:
    """``(cycles, method used)``: a cycle basis of the graph, each cycle as node ids in walking
    order (shortest cycles first). ``method``: ``minimum`` (networkx.minimum_cycle_basis),
    ``fundamental`` (breadth-first tree) or ``auto`` (minimum while cheap: MINIMUM_BASIS_WORK)."""
    if method not in CYCLE_METHODS:
        raise AdvtopoError(f"method={method!r} is not a cycle basis method; allowed: {', '.join(CYCLE_METHODS)}")
    s = _structure(graph)
    adj, a, b = _adjacency(s, _check_min_jaccard(min_jaccard))
    n_comp, _ = _components(s.n_nodes, a, b)
    rank = len(a) - s.n_nodes + n_comp
    if rank == 0:
        return [], "minimum" if method != "fundamental" else "fundamental"
    if method == "auto":
        method = "minimum" if rank * s.n_nodes * max(len(a), 1) <= MINIMUM_BASIS_WORK else "fundamental"
    cycles = _minimum_cycles(adj, a, b) if method == "minimum" else _fundamental_cycles(adj)
    cycles = sorted((_canonical(c) for c in cycles), key=lambda c: (len(c), c))
    return [[s.ids[i] for i in c] for c in cycles], method


def branch_points(graph: Any, *, min_jaccard: float = 0.0, min_degree: int = 3) -> list[dict]:
    """Nodes of degree >= ``min_degree``, each ``{"node", "degree", "branches": [{"n_nodes",
    "n_rows", "via"}]}``: the components of the graph without the node that touch it, largest
    first (``n_rows``: distinct member rows; ``via``: the node's neighbours in that branch)."""
    if isinstance(min_degree, bool) or not isinstance(min_degree, int) or min_degree < 1:
        raise AdvtopoError(f"min_degree={min_degree!r} must be a positive integer")
    s = _structure(graph)
    adj, a, b = _adjacency(s, _check_min_jaccard(min_jaccard))
    n = s.n_nodes
    M = s.incidence().tocsr() if n else None
    out = []
    for v in range(n):
        if len(adj[v]) < min_degree:
            continue
        keep = (a != v) & (b != v)
        _, label = _components(n, a[keep], b[keep])
        groups: dict[int, list[int]] = {}
        for u in adj[v]:
            groups.setdefault(int(label[u]), []).append(u)
        branches = []
        for lab, via in groups.items():
            nodes = np.flatnonzero(label == lab)
            rows = int(np.count_nonzero(np.asarray(M[nodes].sum(axis=0)).ravel()))
            branches.append({"n_nodes": int(len(nodes)), "n_rows": rows, "via": sorted(s.ids[u] for u in via)})
        branches.sort(key=lambda br: (-br["n_nodes"], -br["n_rows"], br["via"]))
        out.append({"node": s.ids[v], "degree": len(adj[v]), "n_branches": len(branches), "branches": branches})
    return out


def graph_shape(graph: Any, *, min_jaccard: float = 0.0, method: str = "auto", max_cycles: int = 500) -> dict:
    """Loops and branch points of one graph, as the app's card lists them: the counts
    (:func:`shape_counts`), ``cycles`` (at most ``max_cycles`` listed; ``n_loops`` counts all),
    ``cycle_method`` and ``branch_points``."""
    if isinstance(max_cycles, bool) or not isinstance(max_cycles, int) or max_cycles < 0:
        raise AdvtopoError(f"max_cycles={max_cycles!r} must be a non-negative integer")
    counts = shape_counts(graph, min_jaccard)
    cycles, used = cycle_basis(graph, min_jaccard=min_jaccard, method=method)
    return {**counts, "min_jaccard": float(min_jaccard), "cycle_method": used,
            "cycles": [{"nodes": c, "length": len(c)} for c in cycles[:max_cycles]],
            "cycles_listed": min(len(cycles), max_cycles),
            "branch_points": branch_points(graph, min_jaccard=min_jaccard)}


def _row_mask(s: _Structure, rows: str) -> np.ndarray:
    if rows not in ROWS:
        raise AdvtopoError(f"rows={rows!r} is not valid; allowed: {', '.join(ROWS)}")
    if rows == "all":
        return np.ones(s.n_points, dtype=bool)
    return s.is_adversarial.copy() if rows == "adversarial" else ~s.is_adversarial


def cross_layer_flow(graph_from: Any, graph_to: Any, rows: str = "all") -> dict:
    """How the members of each node of ``graph_from`` spread over the nodes of ``graph_to``
    (the same samples at another layer). ``rows``: ``all``, ``clean`` or ``adversarial`` rows.

    Returns ``from_nodes`` / ``to_nodes`` (ids, graph order), ``from_size`` / ``to_size``
    (member rows of that kind), ``flow`` = ``[[i, j, count], ...]`` (node indices; only the
    non-zero entries, by i then count descending), ``unmapped[i]`` (node i's rows that lie in
    no node of ``graph_to``: noise there, or absent from it) and ``n_matched_rows`` (rows of
    that kind present in both graphs)."""
    A, B = _structure(graph_from), _structure(graph_to)
    mask_a, mask_b = _row_mask(A, rows), _row_mask(B, rows)
    key_b = {(int(sid), bool(adv)): r for r, (sid, adv) in enumerate(zip(B.sample_id.tolist(), B.is_adversarial.tolist()))
             if mask_b[r]}
    to_row = np.full(A.n_points, -1, dtype=np.int64)
    for r, (sid, adv) in enumerate(zip(A.sample_id.tolist(), A.is_adversarial.tolist())):
        if mask_a[r]:
            to_row[r] = key_b.get((int(sid), bool(adv)), -1)
    matched = np.flatnonzero(to_row >= 0)
    MA = A.incidence(mask_a)
    MB = B.incidence(mask_b)
    # T (A rows x B rows): 1 where the two rows are the same sample and kind
    T = csr_matrix((np.ones(len(matched)), (matched, to_row[matched])), shape=(A.n_points, B.n_points))
    F = (MA @ T @ MB.T).tocoo()
    covered_b = np.asarray(MB.sum(axis=0)).ravel() > 0
    in_b = np.zeros(A.n_points, dtype=bool)
    in_b[matched] = covered_b[to_row[matched]]
    unmapped = np.asarray(MA @ (~in_b).astype(np.float64)).ravel()
    order = np.lexsort((F.col, -F.data, F.row))
    flow = [[int(F.row[k]), int(F.col[k]), int(round(F.data[k]))] for k in order if F.data[k] > 0]
    return {"rows": rows, "from_nodes": A.ids, "to_nodes": B.ids,
            "from_size": np.asarray(MA.sum(axis=1)).ravel().astype(int).tolist(),
            "to_size": np.asarray(MB.sum(axis=1)).ravel().astype(int).tolist(),
            "flow": flow, "unmapped": np.rint(unmapped).astype(int).tolist(), "n_matched_rows": int(len(matched))}
