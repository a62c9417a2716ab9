"""``MapperGraph``: nodes (clusters of rows inside one cover element), edges, statistics, exports.

``to_dict()`` is the JSON contract the web app reads (docs/architecture.md); ``from_dict``
reloads it. Other exports: networkx node-link JSON, GraphML, a KeplerMapper-style dict,
TopoAct-style JSON and Mapper Interactive-style JSON.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix, triu
from scipy.sparse.csgraph import connected_components

from advtopo.errors import AdvtopoError
from advtopo.mapper.stats import graph_statistics, node_statistics, point_purity
from advtopo.utils import to_jsonable

META_COLUMNS = ("sample_id", "label", "prediction", "is_adversarial")


def _list(a: Any) -> list:
    return to_jsonable(np.asarray(a)) if a is not None else []


def normalize_metadata(metadata: Any, n: int) -> dict[str, np.ndarray]:
    """A dict / DataFrame of per-row columns -> dict of length-n numpy arrays (validated)."""
    if metadata is None:
        return {}
    if hasattr(metadata, "to_dict") and hasattr(metadata, "columns"):  # pandas DataFrame
        metadata = {c: metadata[c].to_numpy() for c in metadata.columns}
    if not isinstance(metadata, Mapping):
        raise AdvtopoError(f"metadata must be a dict or DataFrame of per-row columns; got {type(metadata).__name__}")
    out = {}
    for key, col in metadata.items():
        if col is None:
            continue
        arr = np.asarray(col)
        if arr.ndim != 1 or len(arr) != n:
            raise AdvtopoError(f"metadata column {key!r} has shape {arr.shape}; expected ({n},) (one value per row)")
        if key == "is_adversarial":
            arr = arr.astype(bool)
        out[str(key)] = arr
    return out


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _check_member_range(members: list[np.ndarray], n_points: int) -> None:
    """Every member a row index in [0, n_points): an index outside would make scipy's sparse
    products read and write out of bounds (a segfault, or silently wrong statistics)."""
    for i, m in enumerate(members):
        if len(m) and (m.min() < 0 or m.max() >= n_points):
            bad = int(m.min()) if m.min() < 0 else int(m.max())
            raise AdvtopoError(f"node n{i}: member {bad} is not a row of the graph's {n_points} points "
                               f"(allowed: 0 to {n_points - 1})")


def check_graph_dict(d: Any, *, points_required: bool = True) -> None:
    """Check a graph JSON (``MapperGraph.to_dict()``, docs/architecture.md) before anything indexes
    with it: ``points`` columns of one length n, nodes with a unique ``id`` and ``members`` that
    are distinct integer rows in [0, n), integer ``cover_element`` / ``cluster``, edges between
    existing nodes. Raises an AdvtopoError naming the node or key that is wrong.
    ``points_required=False`` (the web app, which shows a graph without its points too): a graph
    without ``points.sample_id`` passes, its members then unchecked against a row count."""
    if not isinstance(d, Mapping):
        raise AdvtopoError(f"a mapper graph must be a JSON object, got {type(d).__name__}")
    pts = d.get("points", {} if not points_required else None)
    if not isinstance(pts, Mapping):
        raise AdvtopoError("a mapper graph needs points (an object of per-point lists)")
    if not isinstance(pts.get("sample_id"), list) and (points_required or "sample_id" in pts):
        raise AdvtopoError("a mapper graph needs points.sample_id (a list, one entry per point)")
    n = len(pts["sample_id"]) if "sample_id" in pts else None
    for key in (*META_COLUMNS, "lens", "lens_2d", "l2"):
        col = pts.get(key)
        if n is not None and col is not None and (not isinstance(col, list) or len(col) != n):
            raise AdvtopoError(f"points.{key} must be a list of {n} values (one per point), "
                               f"got {len(col) if isinstance(col, list) else type(col).__name__}")
    nodes = d.get("nodes")
    if not isinstance(nodes, list):
        raise AdvtopoError("a mapper graph needs nodes (a list)")
    ids: set[str] = set()
    for i, nd in enumerate(nodes):
        if not isinstance(nd, Mapping):
            raise AdvtopoError(f"nodes[{i}] must be an object, got {type(nd).__name__}")
        name = nd.get("id", f"nodes[{i}]")
        where = f"node {name!r} (nodes[{i}])"
        if not isinstance(nd.get("id"), str) or nd["id"] in ids:
            raise AdvtopoError(f"{where}: 'id' must be a string no other node has")
        ids.add(nd["id"])
        members = nd.get("members")
        if not isinstance(members, list) or not all(_is_int(v) for v in members):
            raise AdvtopoError(f"{where}: 'members' must be a list of integer row indices")
        bad = next((v for v in members if v < 0 or (n is not None and v >= n)), None)
        if bad is not None:
            raise AdvtopoError(f"{where}: member {bad} is not a row of the graph's {n} points "
                               f"(allowed: 0 to {n - 1})" if n is not None else f"{where}: member {bad} is negative")
        if len(set(members)) != len(members):
            raise AdvtopoError(f"{where}: 'members' lists a row twice")
        for key in ("cover_element",):
            if key in nd and (not isinstance(nd[key], list) or not all(_is_int(v) for v in nd[key])):
                raise AdvtopoError(f"{where}: {key!r} must be a list of integers")
        if "cluster" in nd and not _is_int(nd["cluster"]):
            raise AdvtopoError(f"{where}: 'cluster' must be an integer")
    edges = d.get("edges", [])
    if not isinstance(edges, list):
        raise AdvtopoError("a mapper graph's edges must be a list")
    for j, e in enumerate(edges):
        if not isinstance(e, Mapping):
            raise AdvtopoError(f"edges[{j}] must be an object, got {type(e).__name__}")
        for end in ("source", "target"):
            if e.get(end) not in ids:
                raise AdvtopoError(f"edges[{j}].{end} {e.get(end)!r} names no node of the graph")


class MapperGraph:
    """A fitted mapper graph. ``members[i]`` are the (sorted) row indices of node i."""

    def __init__(
        self,
        members: list[np.ndarray],
        node_elements: list[tuple[int, ...]],
        n_points: int,
        lens: np.ndarray | None = None,
        metadata: Mapping | None = None,
        row_l2: np.ndarray | None = None,
        params: dict | None = None,
        elements: list[dict] | None = None,
        node_cluster: list[int] | None = None,
        node_means: np.ndarray | None = None,
    ) -> None:
        self.members = [np.asarray(m, dtype=np.int64).reshape(-1) for m in members]
        self.node_elements = [tuple(int(i) for i in e) for e in node_elements]
        self.n_points = int(n_points)
        _check_member_range(self.members, self.n_points)  # the sparse kernels below do not check bounds
        self.lens = None if lens is None else np.asarray(lens, dtype=np.float64).reshape(self.n_points, -1)
        self.metadata = normalize_metadata(metadata, self.n_points)
        self.row_l2 = None if row_l2 is None else np.asarray(row_l2, dtype=np.float64)
        self.params = dict(params or {})
        self.elements = list(elements or [])
        self.node_cluster = list(node_cluster) if node_cluster is not None else [0] * len(self.members)
        self.node_means = node_means
        self._build_edges()

    # ------------------------------------------------------------------ structure
    def __len__(self) -> int:
        return len(self.members)

    def __repr__(self) -> str:
        return (f"MapperGraph(n_nodes={self.n_nodes}, n_edges={self.n_edges}, n_points={self.n_points}, "
                f"n_noise={len(self.noise_rows)})")

    @property
    def n_nodes(self) -> int:
        return len(self.members)

    @property
    def n_edges(self) -> int:
        return len(self.edge_source)

    @property
    def node_ids(self) -> list[str]:
        return [f"n{i}" for i in range(self.n_nodes)]

    def incidence(self) -> csr_matrix:
        """Sparse (n_nodes x n_points) 0/1 membership matrix."""
        sizes = np.array([len(m) for m in self.members], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(sizes)])
        idx = np.concatenate(self.members) if self.members else np.zeros(0, dtype=np.int64)
        return csr_matrix((np.ones(len(idx), dtype=np.float64), idx, indptr), shape=(self.n_nodes, self.n_points))

    def _build_edges(self) -> None:
        M = self.incidence()
        self.sizes = np.array([len(m) for m in self.members], dtype=np.int64)
        inter = triu(M @ M.T, k=1).tocoo()
        order = np.lexsort((inter.col, inter.row))
        self.edge_source = inter.row[order].astype(np.int64)
        self.edge_target = inter.col[order].astype(np.int64)
        self.edge_weight = np.rint(inter.data[order]).astype(np.int64)
        union = self.sizes[self.edge_source] + self.sizes[self.edge_target] - self.edge_weight
        self.edge_jaccard = self.edge_weight / np.maximum(union, 1)
        adj = csr_matrix((np.ones(self.n_edges), (self.edge_source, self.edge_target)), shape=(self.n_nodes,) * 2)
        if self.n_nodes:
            self.n_components, self.node_component = connected_components(adj, directed=False)
        else:
            self.n_components, self.node_component = 0, np.zeros(0, dtype=np.int64)
        covered = np.zeros(self.n_points, dtype=bool)
        if self.members:
            covered[np.concatenate(self.members)] = True
        self.noise_rows = np.flatnonzero(~covered)

    def components(self) -> list[list[int]]:
        """Node indices of each connected component (largest first, ties by first node)."""
        comps: dict[int, list[int]] = {}
        for i, c in enumerate(self.node_component):
            comps.setdefault(int(c), []).append(i)
        return sorted(comps.values(), key=lambda c: (-len(c), c[0]))

    def to_networkx(self, members: bool = True):
        """An undirected networkx graph; node attrs: members, size, cover_element; edge: weight, jaccard."""
        import networkx as nx

        G = nx.Graph()
        for i, nid in enumerate(self.node_ids):
            attrs = {"size": int(self.sizes[i]), "cover_element": list(self.node_elements[i])}
            if members:
                attrs["members"] = self.members[i].tolist()
            G.add_node(nid, **attrs)
        for s, t, w, j in zip(self.edge_source, self.edge_target, self.edge_weight, self.edge_jaccard):
            G.add_edge(f"n{s}", f"n{t}", weight=int(w), jaccard=float(j), distance=1.0 - float(j))
        return G

    def shortest_path(self, source: int | str, target: int | str, weight: str | None = None) -> list[int]:
        """Node indices on a shortest path (weight None = hops, 'distance' = 1 - Jaccard); [] if none."""
        import networkx as nx

        s = source if isinstance(source, str) else f"n{source}"
        t = target if isinstance(target, str) else f"n{target}"
        try:
            path = nx.shortest_path(self.to_networkx(members=False), s, t, weight=weight)
        except nx.NetworkXNoPath:
            return []
        except nx.NodeNotFound as exc:
            raise AdvtopoError(str(exc)) from None
        return [int(p[1:]) for p in path]

    def simplices2(self) -> list[tuple[int, int, int]]:
        """2-simplices of the nerve: node triples whose three memberships share a row."""
        M = self.incidence().tocsc()
        out = set()
        for r in range(self.n_points):
            nodes = M.indices[M.indptr[r]:M.indptr[r + 1]]
            if len(nodes) >= 3:
                nodes = np.sort(nodes)
                for a in range(len(nodes)):
                    for b in range(a + 1, len(nodes)):
                        for c in range(b + 1, len(nodes)):
                            out.add((int(nodes[a]), int(nodes[b]), int(nodes[c])))
        return sorted(out)

    def nodes_of_row(self, row: int) -> list[int]:
        """The nodes holding a row (the app's sample locator)."""
        return [i for i, m in enumerate(self.members) if np.searchsorted(m, row) < len(m) and m[np.searchsorted(m, row)] == row]

    # ------------------------------------------------------------------ statistics
    def _codes(self, column: str) -> tuple[np.ndarray, np.ndarray] | None:
        if column not in self.metadata:
            return None
        values, codes = np.unique(self.metadata[column], return_inverse=True)
        return values, codes.reshape(-1)

    def node_stats(self) -> list[dict]:
        """Per node: size, class histogram, dominant class, purity, entropy, adversarial/misclassified fractions..."""
        return node_statistics(self)

    def point_purity(self) -> np.ndarray:
        """Per row: mean over the nodes holding it of 1 / #distinct labels in the node (NaN if in no node)."""
        return point_purity(self)

    def stats(self) -> dict:
        """Per graph: counts, noise, size-weighted purity/entropy and the mixing metrics."""
        return graph_statistics(self)

    # ------------------------------------------------------------------ contract JSON
    def _repr_html_(self) -> str:
        """Notebooks show the graph in the app (advtopo.app.notebook; imported on use, not at load)."""
        from advtopo.app.notebook import graph_view

        return graph_view(self)._repr_html_()

    def to_dict(self) -> dict:
        """The web app's graph JSON (docs/architecture.md); extra keys are additive."""
        n = self.n_points
        md = self.metadata
        points: dict[str, Any] = {
            "sample_id": _list(md["sample_id"]) if "sample_id" in md else list(range(n)),
            "label": _list(md["label"]) if "label" in md else [None] * n,
            "prediction": _list(md["prediction"]) if "prediction" in md else [None] * n,
            "is_adversarial": _list(md["is_adversarial"]) if "is_adversarial" in md else [False] * n,
            "lens": _list(self.lens[:, 0]) if self.lens is not None else [None] * n,
        }
        if self.lens is not None and self.lens.shape[1] > 1:
            points["lens_2d"] = to_jsonable(self.lens)
        if self.row_l2 is not None:
            points["l2"] = _list(self.row_l2)
        nodes = []
        for i, st in enumerate(self.node_stats()):
            node = {"id": f"n{i}", "members": self.members[i].tolist(), "size": int(self.sizes[i]),
                    "cover_element": list(self.node_elements[i]), "cluster": int(self.node_cluster[i]),
                    "component": int(self.node_component[i])}
            node.update(st)
            nodes.append(node)
        edges = [{"source": f"n{s}", "target": f"n{t}", "weight": int(w), "jaccard": float(j)}
                 for s, t, w, j in zip(self.edge_source, self.edge_target, self.edge_weight, self.edge_jaccard)]
        return {
            "params": to_jsonable(self.params),
            "points": points,
            "nodes": nodes,
            "edges": edges,
            "stats": self.stats(),
            "point_purity": _list(self.point_purity()),
            "cover_elements": to_jsonable(self.elements),
            "components": self.components(),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "MapperGraph":
        """Reload a graph written by ``to_dict`` (statistics are recomputed from members + points).
        The dict is checked first (:func:`check_graph_dict`): an AdvtopoError names what is wrong."""
        check_graph_dict(d)
        pts = d["points"]
        n = len(pts["sample_id"])
        md = {}
        for key in META_COLUMNS:
            col = pts.get(key)
            if col is not None and any(v is not None for v in col):
                md[key] = np.asarray(col)
        lens = None
        if "lens_2d" in pts:
            lens = np.asarray(pts["lens_2d"], dtype=np.float64)
        elif pts.get("lens") and all(v is not None for v in pts["lens"]):
            lens = np.asarray(pts["lens"], dtype=np.float64)
        members = [np.sort(np.asarray(nd["members"], dtype=np.int64)) for nd in d["nodes"]]
        elements = [tuple(nd.get("cover_element", [0])) for nd in d["nodes"]]
        clusters = [int(nd.get("cluster", 0)) for nd in d["nodes"]]
        return cls(members, elements, n, lens=lens, metadata=md,
                   row_l2=np.asarray(pts["l2"], dtype=np.float64) if "l2" in pts else None,
                   params=dict(d.get("params", {})), elements=list(d.get("cover_elements", [])),
                   node_cluster=clusters)

    def save(self, path: str | Path, format: str = "json") -> Path:
        """Write the graph in one of: json (the contract), node-link, graphml, kmapper, topoact, mapper-interactive."""
        from advtopo.utils.io import atomic_write_json, atomic_path

        path = Path(path)
        writers = {"json": self.to_dict, "node-link": self.to_node_link, "kmapper": self.to_kmapper,
                   "topoact": self.to_topoact, "mapper-interactive": self.to_mapper_interactive}
        if format == "graphml":
            import networkx as nx

            with atomic_path(path) as tmp:
                nx.write_graphml(self.to_graphml_graph(), tmp)
            return path
        if format not in writers:
            raise AdvtopoError(f"format={format!r} is not valid; allowed: {', '.join(list(writers) + ['graphml'])}")
        atomic_write_json(path, writers[format](), indent=None)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "MapperGraph":
        """Read a graph written by ``save(path, format='json')``."""
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise AdvtopoError(f"no such file: {path}") from None

    # ------------------------------------------------------------------ other exports
    def to_node_link(self) -> dict:
        """networkx node-link JSON (nodes/links), with per-node statistics."""
        import networkx as nx

        G = self.to_networkx()
        for i, st in enumerate(self.node_stats()):
            G.nodes[f"n{i}"].update({k: v for k, v in st.items()})
        return nx.node_link_data(G, edges="links")

    def to_graphml_graph(self):
        """A networkx graph with GraphML-safe (scalar) attributes: members as a space-separated string."""
        import networkx as nx

        G = nx.Graph()
        for i, st in enumerate(self.node_stats()):
            attrs = {"members": " ".join(map(str, self.members[i].tolist())), "size": int(self.sizes[i]),
                     "cover_element": " ".join(map(str, self.node_elements[i]))}
            for k, v in st.items():
                if isinstance(v, (dict, list)):
                    attrs[k] = json.dumps(v)
                elif v is not None:
                    attrs[k] = v
            G.add_node(f"n{i}", **attrs)
        for s, t, w, j in zip(self.edge_source, self.edge_target, self.edge_weight, self.edge_jaccard):
            G.add_edge(f"n{s}", f"n{t}", weight=int(w), jaccard=float(j))
        return G

    def kmapper_ids(self) -> list[str]:
        """KeplerMapper node names ``cube{i}_cluster{j}`` (i counts the non-empty cover elements)."""
        nonempty = [tuple(e["element"]) for e in self.elements if e.get("n_points", 1) > 0]
        pos = {g: i for i, g in enumerate(nonempty)}
        return [f"cube{pos.get(self.node_elements[i], 0)}_cluster{self.node_cluster[i]}" for i in range(self.n_nodes)]

    def to_kmapper(self) -> dict:
        """A KeplerMapper-style graph dict: nodes {id: members}, links {id: [ids]}, simplices, meta_data."""
        ids = self.kmapper_ids()
        nodes = {ids[i]: self.members[i].tolist() for i in range(self.n_nodes)}
        links: dict[str, list[str]] = {}
        for s, t in zip(self.edge_source, self.edge_target):
            links.setdefault(ids[s], []).append(ids[t])
        simplices = [[k] for k in ids] + [[ids[s], ids[t]] for s, t in zip(self.edge_source, self.edge_target)]
        return {"nodes": nodes, "links": links, "simplices": simplices,
                "meta_data": to_jsonable({"projection": self.params.get("lens"),
                                        "n_cubes": self.params.get("n_intervals"),
                                        "perc_overlap": self.params.get("overlap"),
                                        "clusterer": self.params.get("clusterer"),
                                        "nerve_min_intersection": 1}),
                "meta_nodes": {}}

    def to_topoact(self, top: int = 5) -> dict:
        """TopoAct-style JSON: nodes with membership, top_classes, top_class_percents, l2NormAvg."""
        stats = self.node_stats()
        nodes = []
        for i, st in enumerate(stats):
            hist = st.get("class_hist") or {}
            ranked = sorted(hist.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
            node = {"id": f"n{i}", "membership": self.members[i].tolist(),
                    "top_classes": [k for k, _ in ranked],
                    "top_class_percents": [100.0 * v / max(int(self.sizes[i]), 1) for _, v in ranked],
                    "l2NormAvg": st.get("mean_l2")}
            if self.node_means is not None:
                node["average_activation"] = np.asarray(self.node_means[i]).tolist()
            nodes.append(node)
        links = [{"source": f"n{s}", "target": f"n{t}", "weight": float(j), "intersection": int(w)}
                 for s, t, w, j in zip(self.edge_source, self.edge_target, self.edge_weight, self.edge_jaccard)]
        return {"nodes": nodes, "links": links, "params": to_jsonable(self.params)}

    def to_mapper_interactive(self) -> dict:
        """Mapper Interactive-style JSON: nodes {id: {vertices, categorical_cols_summary, avgs}}, edges."""
        stats = self.node_stats()
        nodes = {}
        for i, st in enumerate(stats):
            cats = {}
            if st.get("class_hist"):
                cats["label"] = st["class_hist"]
            if st.get("pred_hist"):
                cats["prediction"] = st["pred_hist"]
            avgs = {"lens": st.get("mean_lens"), "l2norm": st.get("mean_l2")}
            if st.get("frac_adversarial") is not None:
                avgs["is_adversarial"] = st["frac_adversarial"]
            nodes[str(i)] = {"id": str(i), "vertices": self.members[i].tolist(), "size": int(self.sizes[i]),
                             "categorical_cols_summary": cats, "avgs": avgs}
        edges = [{"source": str(s), "target": str(t), "intersection": int(w)}
                 for s, t, w in zip(self.edge_source, self.edge_target, self.edge_weight)]
        return {"nodes": nodes, "edges": edges}

