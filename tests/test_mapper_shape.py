"""Loops, branch points and the cross-layer flow (advtopo.mapper.shape) against hand-built graphs
and networkx: the number of basis cycles is the cycle rank E - V + C, every listed cycle is a
cycle of the graph, the basis is independent over GF(2), the minimum basis is as short as
networkx's, and each branch is a component of the graph without its branch point."""
from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest

from advtopo.errors import AdvtopoError
from advtopo.mapper import Mapper
from advtopo.mapper.shape import branch_points, cross_layer_flow, cycle_basis, graph_shape, shape_counts


def graph_of(edges, n=None, jaccard=None, members=None, sample_id=None, is_adversarial=None) -> dict:
    """A graph dict in the contract form from an edge list over nodes 0..n-1 (ids "n<i>")."""
    nodes = sorted({u for e in edges for u in e} | set(range(n or 0)))
    n = len(nodes)
    members = members or [[i] for i in range(n)]
    n_points = 1 + max((r for m in members for r in m), default=-1)
    return {
        "nodes": [{"id": f"n{i}", "members": sorted(members[i])} for i in range(n)],
        "edges": [{"source": f"n{u}", "target": f"n{v}", "jaccard": (jaccard or {}).get((u, v), 0.5)}
                  for u, v in edges],
        "points": {"sample_id": list(sample_id if sample_id is not None else range(n_points)),
                   "is_adversarial": list(is_adversarial if is_adversarial is not None else [False] * n_points)},
    }


def nx_graph(g: dict, min_jaccard: float = 0.0) -> nx.Graph:
    G = nx.Graph()
    G.add_nodes_from(nd["id"] for nd in g["nodes"])
    G.add_edges_from((e["source"], e["target"]) for e in g["edges"] if e["jaccard"] >= min_jaccard)
    return G


def gf2_rank(vectors: list[int]) -> int:
    """Rank over GF(2) of bit vectors (Python ints)."""
    basis: dict[int, int] = {}
    for v in vectors:
        while v:
            top = v.bit_length() - 1
            if top not in basis:
                basis[top] = v
                break
            v ^= basis[top]
    return len(basis)


def check_basis(G: nx.Graph, cycles: list[list[str]]) -> None:
    """Each cycle is a simple closed walk of G; together they are independent and as many as the cycle rank."""
    edge_bit = {frozenset(e): k for k, e in enumerate(G.edges())}
    vectors = []
    for c in cycles:
        assert len(c) >= 3 and len(set(c)) == len(c), c
        v = 0
        for a, b in zip(c, c[1:] + c[:1]):
            assert G.has_edge(a, b), (c, a, b)
            v ^= 1 << edge_bit[frozenset((a, b))]
        vectors.append(v)
    rank = G.number_of_edges() - G.number_of_nodes() + nx.number_connected_components(G)
    assert len(cycles) == rank == len(nx.cycle_basis(G))
    assert gf2_rank(vectors) == rank


# two squares sharing the edge 1-2, a triangle with a pendant path, a tree, a lone node
THETA = [(0, 1), (1, 2), (2, 3), (3, 0), (1, 4), (4, 5), (5, 2)]
TRIANGLE_TAIL = [(0, 1), (1, 2), (2, 0), (2, 3), (3, 4)]
TREE = [(0, 1), (1, 2), (1, 3), (3, 4), (3, 5), (5, 6)]


@pytest.mark.parametrize("edges,rank", [(THETA, 2), (TRIANGLE_TAIL, 1), (TREE, 0),
                                        (THETA + [(6, 7), (7, 8), (8, 6), (9, 10)], 3)])
@pytest.mark.parametrize("method", ["minimum", "fundamental", "auto"])
def test_cycle_basis_of_hand_built_graphs(edges, rank, method):
    g = graph_of(edges)
    cycles, used = cycle_basis(g, method=method)
    check_basis(nx_graph(g), cycles)
    assert len(cycles) == rank == shape_counts(g)["n_loops"]
    assert used == ("fundamental" if method == "fundamental" else "minimum")


def test_the_theta_graph_has_its_two_squares():
    cycles, _ = cycle_basis(graph_of(THETA), method="minimum")
    assert cycles == [["n0", "n1", "n2", "n3"], ["n1", "n2", "n5", "n4"]]  # canonical: smallest node first


@pytest.mark.parametrize("seed", range(8))
def test_cycle_bases_of_random_graphs_match_networkx(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(6, 25))
    pairs = [p for p in itertools.combinations(range(n), 2) if rng.random() < 3.0 / n]
    g = graph_of(pairs, n=n)
    G = nx_graph(g)
    for method in ("minimum", "fundamental"):
        cycles, _ = cycle_basis(g, method=method)
        check_basis(G, cycles)
    minimum, _ = cycle_basis(g, method="minimum")
    assert sum(map(len, minimum)) == sum(map(len, nx.minimum_cycle_basis(G)))
    counts = shape_counts(g)
    assert counts["n_branch_points"] == sum(1 for _, d in G.degree() if d >= 3)
    assert counts["n_components"] == nx.number_connected_components(G)


def test_auto_takes_the_fundamental_basis_when_the_minimum_would_be_slow(monkeypatch):
    import advtopo.mapper.shape as shape

    g = graph_of(THETA)
    monkeypatch.setattr(shape, "MINIMUM_BASIS_WORK", 1)
    cycles, used = cycle_basis(g)
    assert used == "fundamental"
    check_basis(nx_graph(g), cycles)


def test_min_jaccard_drops_weak_edges():
    jac = {(1, 4): 0.05}  # the second square opens: one loop left
    g = graph_of(THETA, jaccard=jac)
    cycles, _ = cycle_basis(g, min_jaccard=0.1)
    check_basis(nx_graph(g, 0.1), cycles)
    assert cycles == [["n0", "n1", "n2", "n3"]]
    assert shape_counts(g, 0.1)["n_loops"] == 1
    with pytest.raises(AdvtopoError, match="min_jaccard"):
        shape_counts(g, 1.5)
    with pytest.raises(AdvtopoError, match="method"):
        cycle_basis(g, method="shortest")


def nx_branches(G: nx.Graph, v: str) -> list[int]:
    """Sizes of the components of G - v that hold a neighbour of v, largest first (networkx)."""
    H = G.copy()
    H.remove_node(v)
    nb = set(G[v])
    return sorted((len(c) for c in nx.connected_components(H) if c & nb), reverse=True)


def test_branch_points_of_a_y_and_of_a_loop_with_a_tail():
    # Y: centre 0 with arms of 3, 2 and 1 nodes (rows: node i holds row i)
    y = graph_of([(0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (0, 6)])
    (bp,) = branch_points(y)
    assert bp["node"] == "n0" and bp["degree"] == 3 and bp["n_branches"] == 3
    assert [b["n_nodes"] for b in bp["branches"]] == [3, 2, 1]
    assert [b["via"] for b in bp["branches"]] == [["n1"], ["n4"], ["n6"]]
    assert [b["n_rows"] for b in bp["branches"]] == [3, 2, 1]
    # a node on a triangle with a tail: degree 3 but two branches (its loop neighbours are one)
    (bp,) = branch_points(graph_of(TRIANGLE_TAIL))
    assert bp["node"] == "n2" and bp["degree"] == 3 and bp["n_branches"] == 2
    assert bp["branches"][0] == {"n_nodes": 2, "n_rows": 2, "via": ["n0", "n1"]}
    assert bp["branches"][1] == {"n_nodes": 2, "n_rows": 2, "via": ["n3"]}


@pytest.mark.parametrize("seed", range(5))
def test_branch_points_match_networkx(seed):
    rng = np.random.default_rng(100 + seed)
    n = 20
    pairs = [p for p in itertools.combinations(range(n), 2) if rng.random() < 0.12]
    g = graph_of(pairs, n=n)
    G = nx_graph(g)
    found = branch_points(g)
    assert [bp["node"] for bp in found] == [v for v in (f"n{i}" for i in range(n)) if G.degree(v) >= 3]
    for bp in found:
        assert bp["degree"] == G.degree(bp["node"])
        assert [b["n_nodes"] for b in bp["branches"]] == nx_branches(G, bp["node"])
        assert sorted(u for b in bp["branches"] for u in b["via"]) == sorted(G[bp["node"]])


def test_branch_rows_count_distinct_members():
    # branch {1, 2} of node 0 shares rows between its nodes and with node 0: distinct rows only
    g = graph_of([(0, 1), (1, 2), (0, 3), (0, 4)], members=[[0, 1], [1, 2], [2, 3], [0, 4], [0, 5]])
    (bp,) = branch_points(g)
    assert bp["branches"][0] == {"n_nodes": 2, "n_rows": 3, "via": ["n1"]}


def test_graph_shape_and_mapper_graph_input_agree():
    rng = np.random.default_rng(0)
    t = rng.uniform(0, 2 * np.pi, 400)
    X = np.c_[np.cos(t), np.sin(t)] + rng.normal(0, 0.05, (400, 2))  # a circle: mapper sees one loop
    mg = Mapper(lens="pca", n_intervals=8, overlap=0.3, clusterer="dbscan", eps=0.3, min_samples=3).fit(X)
    d = mg.to_dict()
    from_obj, from_dict = graph_shape(mg), graph_shape(d)
    assert from_obj == from_dict
    assert from_dict["n_loops"] == 1 and len(from_dict["cycles"]) == 1
    check_basis(mg.to_networkx(members=False), [c["nodes"] for c in from_dict["cycles"]])
    assert graph_shape(d, max_cycles=0)["cycles"] == [] and graph_shape(d, max_cycles=0)["n_loops"] == 1


# --------------------------------------------------------------------------- cross-layer flow

def layer_pair() -> tuple[dict, dict]:
    """Two graphs of the same 4 samples, clean rows then adversarial rows, the second graph's rows
    in another order. Layer A: a = {s0, s1, s2} clean, b = {s2, s3} clean + s0 adversarial,
    c = {s1, s3} adversarial. Layer B (rows: s3c, s2c, s1c, s0c, s0a, s1a, s2a, s3a):
    x = {s0c, s1c}, y = {s1c, s2c, s0a}, z = {s1a, s2a}; s3 (clean and adversarial) is noise."""
    A = {"nodes": [{"id": "a", "members": [0, 1, 2]}, {"id": "b", "members": [2, 3, 4]},
                   {"id": "c", "members": [5, 7]}],
         "edges": [{"source": "a", "target": "b", "jaccard": 0.2}],
         "points": {"sample_id": [0, 1, 2, 3, 0, 1, 2, 3], "is_adversarial": [False] * 4 + [True] * 4}}
    B = {"nodes": [{"id": "x", "members": [3, 2]}, {"id": "y", "members": [2, 1, 4]}, {"id": "z", "members": [5, 6]}],
         "edges": [{"source": "x", "target": "y", "jaccard": 0.25}],
         "points": {"sample_id": [3, 2, 1, 0, 0, 1, 2, 3], "is_adversarial": [False] * 4 + [True] * 4}}
    return A, B


def test_cross_layer_flow_of_a_hand_built_pair():
    A, B = layer_pair()
    f = cross_layer_flow(A, B)
    assert f["from_nodes"] == ["a", "b", "c"] and f["to_nodes"] == ["x", "y", "z"]
    assert f["from_size"] == [3, 3, 2] and f["to_size"] == [2, 3, 2]
    # a: s0c -> x; s1c -> x, y; s2c -> y.  b: s2c -> y; s3c -> nowhere; s0a -> y.  c: s1a -> z; s3a -> nowhere
    assert f["flow"] == [[0, 0, 2], [0, 1, 2], [1, 1, 2], [2, 2, 1]]
    assert f["unmapped"] == [0, 1, 1]
    assert f["n_matched_rows"] == 8
    clean = cross_layer_flow(A, B, rows="clean")
    assert clean["from_size"] == [3, 2, 0] and clean["to_size"] == [2, 2, 0]
    assert clean["flow"] == [[0, 0, 2], [0, 1, 2], [1, 1, 1]] and clean["unmapped"] == [0, 1, 0]
    adv = cross_layer_flow(A, B, rows="adversarial")
    assert adv["flow"] == [[1, 1, 1], [2, 2, 1]] and adv["unmapped"] == [0, 0, 1] and adv["n_matched_rows"] == 4
    # backwards: where the members of the next layer's nodes came from
    back = cross_layer_flow(B, A)
    assert sorted((i, j, c) for i, j, c in back["flow"]) == sorted((j, i, c) for i, j, c in f["flow"])
    with pytest.raises(AdvtopoError, match="rows"):
        cross_layer_flow(A, B, rows="both")


def test_cross_layer_flow_equals_the_membership_products():
    """On mapper graphs of two random 'layers' of the same rows: flow[i][j] = |members_i & members_j|."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 3))
    meta = {"sample_id": np.r_[np.arange(150), np.arange(150)], "is_adversarial": np.r_[np.zeros(150), np.ones(150)] > 0}
    ga = Mapper(lens="pca", n_intervals=6, overlap=0.4, clusterer="dbscan", eps=0.8, min_samples=3).fit(X, meta)
    perm = rng.permutation(300)  # the second layer keeps its rows in another order
    Y = np.tanh(X @ rng.normal(size=(3, 4)))[perm]
    gb = Mapper(lens="pca", n_intervals=5, overlap=0.3, clusterer="dbscan", eps=0.5, min_samples=3).fit(
        Y, {k: v[perm] for k, v in meta.items()})
    f = cross_layer_flow(ga, gb)
    inv = np.argsort(perm)  # row r of the first graph is row inv[r] of the second
    want = {}
    for i, ma in enumerate(ga.members):
        mapped = set(inv[ma].tolist())
        for j, mb in enumerate(gb.members):
            k = len(mapped & set(mb.tolist()))
            if k:
                want[(i, j)] = k
    assert {(i, j): c for i, j, c in f["flow"]} == want
    covered = set(np.concatenate(gb.members).tolist())
    assert f["unmapped"] == [sum(1 for r in ma if inv[r] not in covered) for ma in ga.members]


@pytest.mark.parametrize("graph,match", [
    ({"nodes": [{"id": "a", "members": [0]}], "edges": [{"source": "a", "target": "b"}], "points": {"sample_id": [0]}},
     "names a node"),
    ({"nodes": [{"id": "a", "members": [0, 5]}], "edges": [], "points": {"sample_id": [0, 1]}}, "outside"),
    ({"nodes": [{"id": "a", "members": [0]}, {"id": "a", "members": [0]}], "edges": []}, "not unique"),
    ({"edges": []}, "'nodes' list"),
    ([1, 2], "'nodes' list"),
])
def test_malformed_graphs_are_one_line_errors(graph, match):
    for f in (shape_counts, graph_shape, branch_points, lambda g: cross_layer_flow(g, g)):
        with pytest.raises(AdvtopoError, match=match):
            f(graph)
