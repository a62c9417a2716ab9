"""The peers benchmark's own logic on tiny cases (no peer is installed here; no timings):
the membership comparison, and advtopo rebuilt on a peer's cover given as closed lens intervals."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from advtopo.mapper import Mapper
from advtopo.mapper.cover import KMapperCover

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


peers = _load("mapper_peers_under_test", BENCH / "mapper_peers.py")
runner = _load("run_peer_under_test", BENCH / "peers" / "run_peer.py")


def test_identical_graphs_compare_equal_whatever_node_order_and_member_order():
    ours = [np.array([0, 1, 2]), np.array([3, 4]), np.array([4, 5, 6])]
    theirs = [[6, 5, 4], [2, 0, 1], [4, 3]]
    result = peers.compare_memberships(ours, theirs)
    assert result == {"identical": True, "nodes_ours": 3, "nodes_theirs": 3, "common": 3, "only_ours": 0,
                      "only_theirs": 0}


def test_a_border_point_in_another_node_and_an_extra_node_are_counted():
    ours = [[0, 1, 2], [3, 4], [4, 5, 6]]
    theirs = [[0, 1, 2], [3], [4, 5, 6], [9]]  # row 4 left one node; a noise node [9] added
    result = peers.compare_memberships(ours, theirs)
    assert not result["identical"]
    assert (result["common"], result["only_ours"], result["only_theirs"]) == (2, 1, 2)


def test_duplicate_nodes_count_as_a_multiset():
    assert not peers.compare_memberships([[1, 2], [1, 2]], [[1, 2]])["identical"]


def test_advtopo_on_a_peers_cover_elements_rebuilds_the_same_graph(tmp_path):
    """The benchmark hands advtopo a peer's cover as [min, max] of the lens over each element; on
    KeplerMapper's cover elements that must give exactly advtopo's cover="kmapper" graph."""
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(0, 0.3, (150, 4)), rng.normal(3, 0.3, (150, 4))]).astype(np.float32)
    lens = np.sqrt(np.einsum("ij,ij->i", X.astype(np.float64), X.astype(np.float64)))
    settings = [[6, 0.3], [6, 0.5], [8, 0.3], [8, 0.5]]  # a full grid, as Mapper.sweep builds
    covers = {}
    for i, (n, p) in enumerate(settings):
        ce = KMapperCover(n_intervals=n, overlap=p).fit(lens)
        elements = [np.flatnonzero(ce.contains(lens, e)) for e in range(len(ce))]
        covers[f"c{i}_lo"], covers[f"c{i}_hi"] = runner._element_ranges(lens, elements)
    np.savez(tmp_path / "covers.npz", **covers)
    spec = {"eps": 0.6, "min_samples": 5, "n_jobs": 1, "mode": "sweep", "settings": settings, "cover": "explicit",
            "workdir": str(tmp_path)}
    json.dumps(spec)  # the spec the driver writes is plain JSON
    _secs, _version, graphs = runner.run_advtopo(X, lens, spec)
    for (n, p), (members, _ranges) in zip(settings, graphs):
        expected = Mapper(lens=lens, cover="kmapper", n_intervals=n, overlap=p, eps=0.6, min_samples=5).fit(X)
        assert expected.n_nodes > 2
        assert peers.compare_memberships(members, expected.members)["identical"]
