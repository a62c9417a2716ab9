"""What is read is what was written: a damaged run directory is reported, never a crash.

Mapper graph JSON is checked before anything indexes with it (an out-of-range member used to
segfault scipy's sparse products); JSON documents never hold NaN; ``advtopo verify`` names each
damaged artefact of a real tiny run; ``advtopo show`` and the web app answer one line naming the
file and what to run."""
from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pytest

from advtopo.errors import AdvtopoError
from advtopo.mapper import Mapper, MapperGraph, check_graph_dict
from advtopo.mapper.stats import vulnerability_scores

pytestmark = pytest.mark.timeout(600)


# --- mapper graph JSON -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def graph_doc() -> dict:
    X = np.random.default_rng(0).normal(size=(80, 3))
    return Mapper(n_intervals=4, overlap=0.3, min_samples=2).fit(X, {"label": np.arange(80) % 3}).to_dict()


def _damaged(doc: dict, change) -> dict:
    d = copy.deepcopy(doc)
    change(d)
    return d


def _first_node_with_members(d: dict) -> dict:
    return next(n for n in d["nodes"] if n["members"])


GRAPH_DAMAGE = {
    "member beyond the last row": (lambda d: _first_node_with_members(d)["members"].append(10**6),
                                   r"node 'n\d+' \(nodes\[\d+\]\): member 1000000 is not a row of the graph's 80 points"),
    "member equal to the row count": (lambda d: _first_node_with_members(d)["members"].append(80),
                                      r"member 80 is not a row of the graph's 80 points \(allowed: 0 to 79\)"),
    "negative member": (lambda d: _first_node_with_members(d)["members"].insert(0, -5), r"member -5 is not a row"),
    "huge member": (lambda d: _first_node_with_members(d)["members"].append(10**20), r"member 10+ is not a row"),
    "float member": (lambda d: _first_node_with_members(d)["members"].append(1.5), "integer row indices"),
    "bool member": (lambda d: _first_node_with_members(d)["members"].append(True), "integer row indices"),
    "text member": (lambda d: _first_node_with_members(d)["members"].append("3"), "integer row indices"),
    "members not a list": (lambda d: d["nodes"][0].__setitem__("members", 3), "integer row indices"),
    "repeated member": (lambda d: _first_node_with_members(d)["members"].append(_first_node_with_members(d)["members"][0]),
                        "lists a row twice"),
    "duplicate node id": (lambda d: d["nodes"][1].__setitem__("id", d["nodes"][0]["id"]), "no other node has"),
    "edge to an unknown node": (lambda d: d["edges"].append({"source": "n0", "target": "n999"}),
                                r"edges\[\d+\]\.target 'n999' names no node"),
    "text cover element": (lambda d: d["nodes"][0].__setitem__("cover_element", ["a"]), "'cover_element' must be"),
    "points column too short": (lambda d: d["points"]["label"].pop(), "points.label must be a list of 80 values"),
    "no points": (lambda d: d.pop("points"), "needs points.sample_id"),
    "nodes not a list": (lambda d: d.__setitem__("nodes", {}), "needs nodes"),
}


@pytest.mark.parametrize("case", list(GRAPH_DAMAGE))
def test_a_damaged_graph_dict_is_refused_naming_what_is_wrong(graph_doc, case):
    change, message = GRAPH_DAMAGE[case]
    d = _damaged(graph_doc, change)
    with pytest.raises(AdvtopoError, match=message):
        check_graph_dict(d)
    with pytest.raises(AdvtopoError, match=message):
        MapperGraph.from_dict(d)


def test_an_intact_graph_dict_reloads_to_the_same_graph(graph_doc):
    check_graph_dict(graph_doc)
    assert MapperGraph.from_dict(graph_doc).to_dict() == graph_doc


def test_a_graph_built_with_an_out_of_range_member_is_refused():
    with pytest.raises(AdvtopoError, match=r"node n1: member 12 is not a row of the graph's 10 points"):
        MapperGraph([[0, 1], [2, 12]], [(0,), (1,)], 10)
    with pytest.raises(AdvtopoError, match=r"node n0: member -1 is not a row"):
        MapperGraph([[-1, 3]], [(0,)], 10)


CRASH_SCRIPT = """
import json, sys
from advtopo.errors import AdvtopoError
from advtopo.mapper import MapperGraph
from advtopo.mapper.stats import vulnerability_scores
d = json.loads(sys.stdin.read())
try:
    vulnerability_scores(MapperGraph.from_dict(d))
except AdvtopoError as exc:
    print("refused:", exc)
"""


@pytest.mark.parametrize("member", [-5, 60, 61, 10**10])
def test_an_out_of_range_member_no_longer_crashes_the_process(graph_doc, member):
    """Before the check these values segfaulted or aborted (heap corruption) the interpreter."""
    d = _damaged(graph_doc, lambda d: _first_node_with_members(d)["members"].append(member))
    d["points"] = {k: v[:60] for k, v in d["points"].items()}
    for n in d["nodes"]:
        n["members"] = [m for m in n["members"] if m < 60 or m == member]
    d["edges"] = []
    proc = subprocess.run([sys.executable, "-c", CRASH_SCRIPT], input=json.dumps(d), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"member {member} is not a row of the graph's 60 points" in proc.stdout


def test_vulnerability_scores_of_a_reloaded_graph_match_the_fitted_one(graph_doc):
    scores = vulnerability_scores(MapperGraph.from_dict(graph_doc))
    assert scores.shape == (80,) and np.all((scores >= 0) & (scores <= 1))
