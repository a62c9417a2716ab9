"""TopoAct's views through the app's JSON API: the cross-layer flow, a graph's loops and branch
points, their counts over the run, and the feature visualisation of one sample's own
activation (on the tiny real study run of conftest.py, which has a model and activations)."""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from advtopo.app import serve
from advtopo.mapper.shape import cross_layer_flow, graph_shape
from app_fixture import make_fixture_run


def get(server, path, token=True):
    headers = {"X-Advtopo-Token": server.token} if token else {}
    with urllib.request.urlopen(urllib.request.Request(server.url + path, headers=headers), timeout=60) as r:
        return r.status, r.headers.get("Content-Type"), r.read()


def get_json(server, path):
    return json.loads(get(server, path)[2])


def status_of(server, path, token=True) -> int:
    try:
        return get(server, path, token)[0]
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory):
    return make_fixture_run(tmp_path_factory.mktemp("topoact") / "run")


@pytest.fixture(scope="module")
def server(fixture_run):
    srv = serve(fixture_run, port=0, open_browser=False, block=False)
    yield srv
    srv.shutdown()


def graph_file(run: Path, gid: str) -> dict:
    return json.loads((run / "mapper" / f"{gid}.json").read_text())


def test_flow_route_answers_the_flow_of_the_two_graph_files(server, fixture_run):
    a, b = "cnn_std__conv2__pgd__0.1", "cnn_std__fc1__pgd__0.1"
    for rows in ("all", "clean", "adversarial"):
        got = get_json(server, f"api/flow?from={a}&to={b}&rows={rows}")
        want = cross_layer_flow(graph_file(fixture_run, a), graph_file(fixture_run, b), rows)
        assert {k: got[k] for k in want} == want
        assert got["from"] == a and got["to"] == b and got["from_layer"] == "conv2" and got["to_layer"] == "fc1"
    full = get_json(server, f"api/flow?from={a}&to={b}")
    assert full["rows"] == "all" and full["n_matched_rows"] == 200  # 100 samples, clean + adversarial


@pytest.mark.parametrize("query,code", [
    ("from=cnn_std__conv2__pgd__0.1&to=cnn_std__fc1__pgd__0.3", 400),        # another eps: other samples
    ("from=cnn_std__conv2__pgd__0.1&to=cnn_adv0.1__fc1__pgd__0.1", 400),     # another model
    ("from=cnn_std__conv2__pgd__0.1&to=cnn_std__conv2__pgd__0.1", 400),      # the same graph
    ("from=cnn_std__conv2__pgd__0.1&to=cnn_std__fc1__pgd__0.1&rows=both", 400),
    ("from=cnn_std__conv2__pgd__0.1&to=nope", 404),
    ("to=cnn_std__fc1__pgd__0.1", 404),
])
def test_flow_route_refuses_what_is_not_a_pair_of_layers(server, query, code):
    assert status_of(server, f"api/flow?{query}") == code


def test_shape_route_and_summary_count_what_networkx_counts(server, fixture_run):
    index = json.loads((fixture_run / "index.json").read_text())
    summary = get_json(server, "api/shape-summary")["graphs"]
    assert [r["id"] for r in summary] == [g["id"] for g in index["graphs"]]
    for row in summary:
        g = graph_file(fixture_run, row["id"])
        G = nx.Graph()
        G.add_nodes_from(n["id"] for n in g["nodes"])
        G.add_edges_from((e["source"], e["target"]) for e in g["edges"])
        assert row["n_loops"] == len(nx.cycle_basis(G))
        assert row["n_branch_points"] == sum(1 for _, d in G.degree() if d >= 3)
        assert row["n_nodes"] == g["stats"]["n_nodes"] and row["n_components"] == g["stats"]["n_components"]
    gid = next(r["id"] for r in summary if r["n_loops"] >= 2)
    shape = get_json(server, f"api/shape/{gid}")
    assert {k: shape[k] for k in ("n_loops", "cycles", "branch_points")} == \
        {k: graph_shape(graph_file(fixture_run, gid))[k] for k in ("n_loops", "cycles", "branch_points")}
    weak = get_json(server, f"api/shape/{gid}?min_jaccard=0.2")
    assert weak["min_jaccard"] == 0.2 and weak["n_edges"] == sum(e["jaccard"] >= 0.2 for e in graph_file(fixture_run, gid)["edges"])
    for bad, code in [(f"api/shape/{gid}?min_jaccard=2", 400), (f"api/shape/{gid}?min_jaccard=x", 400),
                      ("api/shape/nope", 404), ("api/shape/..%2Findex", 404)]:
        assert status_of(server, bad) == code, bad


def test_shape_is_computed_again_when_the_graph_file_changes(tmp_path):
    run = make_fixture_run(tmp_path / "run", with_extras=False)
    srv = serve(run, port=0, open_browser=False, block=False)
    try:
        gid = "cnn_std__fc1__pgd__0.0"
        before = get_json(srv, f"api/shape/{gid}")
        g = graph_file(run, gid)
        g["edges"] = []  # the graph published again, without its edges
        (run / "mapper" / f"{gid}.json").write_text(json.dumps(g))
        os.utime(run / "mapper" / f"{gid}.json", ns=(1, 1))
        st = (run / "index.json").stat()  # published again: index.json is rewritten last
        os.utime(run / "index.json", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        after = get_json(srv, f"api/shape/{gid}")
        assert before["n_edges"] > 0 and after["n_edges"] == 0 and after["n_loops"] == 0
        row = next(r for r in get_json(srv, "api/shape-summary")["graphs"] if r["id"] == gid)
        assert row["n_edges"] == 0
    finally:
        srv.shutdown()


# ------------------------------------------------------------ one sample's own activation, drawn

def test_featurevis_of_one_sample_is_the_visualisation_of_its_activation_row(study_server, study_run):
    import torch

    from advtopo.activations import FeatureVisualizer
    from advtopo.app.featurevis import PARAMS
    from advtopo.app.png import encode_png
    from advtopo.models import load_checkpoint
    from advtopo.rundir import open_run

    srv = study_server
    idx = get_json(srv, "api/index")
    e = next(g for g in idx["graphs"] if g["layer"] == "relu3" and g["eps"] > 0)
    g = get_json(srv, f"api/graph/{e['id']}")
    sid = g["points"]["sample_id"][0]
    info = get_json(srv, f"api/featurevis-sample/{e['id']}/{sid}?kind=adversarial")
    assert info["available"] is True and info["kind"] == "adversarial" and info["sample_id"] == sid
    row = info["row"]
    assert g["points"]["sample_id"][row] == sid and g["points"]["is_adversarial"][row] is True
    # the same image as FeatureVisualizer given that row of the graph's point cloud as the direction
    run = open_run(study_run)
    X = run.point_cloud(run.graph_entry(e["id"]))
    model, _ = load_checkpoint(run.checkpoint(e["model"]))
    torch.set_num_threads(1)
    res = FeatureVisualizer(model.eval(), idx["layer_modules"].get("relu3", "relu3"),
                            summary=idx["layer_summaries"].get("relu3", "flatten"), **PARAMS).fit(
        X[row][None].astype(np.float32), tuple(idx["dataset"]["image_shape"]))
    status, ctype, png = get(srv, info["png"], token=False)  # the PNG URL reads the cache: no token needed
    assert status == 200 and ctype == "image/png" and png == encode_png(res.images[0])
    assert abs(info["cosine"] - float(res.cosine[0])) < 1e-6
    # the clean row is another image; the node-average one is unchanged by all this
    clean = get_json(srv, f"api/featurevis-sample/{e['id']}/{sid}")
    assert clean["kind"] == "clean" and clean["row"] != row and clean["key"] != info["key"]
    for bad, code in [(f"api/featurevis-sample/{e['id']}/{sid}?kind=both", 400),
                      (f"api/featurevis-sample/{e['id']}/999999", 404),
                      (f"api/featurevis-sample/{e['id']}/x", 400),
                      (f"api/featurevis-sample/nope/{sid}", 404),
                      (f"api/featurevis-sample/{e['id']}/{g['points']['sample_id'][1]}.png?kind=adversarial", 404)]:
        assert status_of(srv, bad) == code, bad
    assert status_of(srv, f"api/featurevis-sample/{e['id']}/{sid}", token=False) == 403  # computes: needs the page


def test_a_missing_or_damaged_graph_is_one_row_of_the_summary(tmp_path):
    run = make_fixture_run(tmp_path / "run", with_extras=False)
    (run / "mapper" / "cnn_std__fc1__pgd__0.0.json").unlink()
    (run / "mapper" / "cnn_std__fc1__pgd__0.1.json").write_text("{not json")
    srv = serve(run, port=0, open_browser=False, block=False)
    try:
        rows = {r["id"]: r for r in get_json(srv, "api/shape-summary")["graphs"]}
        assert len(rows) == 18
        assert "n_loops" not in rows["cnn_std__fc1__pgd__0.0"] and "cnn_std__fc1__pgd__0.0" in rows["cnn_std__fc1__pgd__0.0"]["error"]
        assert "not valid JSON" in rows["cnn_std__fc1__pgd__0.1"]["error"]
        assert rows["cnn_std__conv2__pgd__0.0"]["n_loops"] >= 0 and "error" not in rows["cnn_std__conv2__pgd__0.0"]
        assert status_of(srv, "api/shape/cnn_std__fc1__pgd__0.0") == 404
        assert status_of(srv, "api/shape/cnn_std__fc1__pgd__0.1") == 400
        assert status_of(srv, "api/flow?from=cnn_std__conv2__pgd__0.1&to=cnn_std__fc1__pgd__0.1") == 400
    finally:
        srv.shutdown()
