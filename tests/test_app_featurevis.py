"""The node panel's feature visualisation on a real (tiny) study run: API, cache, errors,
and the browser view. The fixture run of the other app tests has no model: there the
endpoint answers ``available: false`` and the panel shows a note."""
from __future__ import annotations

import json
import os
import struct
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from advtopo.app import serve
from app_fixture import make_fixture_run

CHROMIUM = os.environ.get("ADVTOPO_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="module")
def run_root(study_run):  # conftest.py: a tiny real study run, shared with the other app views' tests
    return study_run


@pytest.fixture(scope="module")
def server(study_server):
    return study_server


def get(server, path):
    with urllib.request.urlopen(urllib.request.Request(server.url + path, headers={"X-Advtopo-Token": server.token}), timeout=60) as r:
        return r.status, r.headers.get("Content-Type"), r.read()


def graph_with_nodes(server, layer: str, eps: float):
    idx = json.loads(get(server, "api/index")[2])
    e = next(g for g in idx["graphs"] if g["layer"] == layer and abs(g["eps"] - eps) < 1e-9)
    g = json.loads(get(server, f"api/graph/{e['id']}")[2])
    assert g["nodes"], "the tiny study should give a graph with nodes"
    return e["id"], g


@pytest.mark.parametrize("layer", ["relu3", "relu2"])  # flatten and top_l2 summaries
def test_featurevis_api_computes_caches_and_validates(server, run_root, layer):
    gid, g = graph_with_nodes(server, layer, 0.2)
    node = max(g["nodes"], key=lambda n: n["size"])
    status, _, body = get(server, f"api/featurevis/{gid}/{node['id']}")
    info = json.loads(body)
    assert status == 200 and info["available"] is True
    assert info["layer"] == layer and info["rows"] == "clean" and 0 < info["n_rows"] <= node["size"]
    assert 0.3 < info["cosine"] <= 1.0
    cache = Path(run_root) / "app-cache" / "featurevis" / f"{info['key']}.png"
    assert cache.is_file()
    status, ctype, png = get(server, f"api/featurevis/{gid}/{node['id']}.png")
    assert status == 200 and ctype == "image/png" and png == cache.read_bytes()
    w, h = struct.unpack(">II", png[16:24])
    assert (w, h) == (8, 8)  # digits are 8x8
    # cached: the second request reads the same files, nothing is recomputed
    mtime = cache.stat().st_mtime_ns
    assert json.loads(get(server, f"api/featurevis/{gid}/{node['id']}")[2])["key"] == info["key"]
    assert cache.stat().st_mtime_ns == mtime
    # rows=all on an attacked graph averages clean and adversarial members
    allrows = json.loads(get(server, f"api/featurevis/{gid}/{node['id']}?rows=all")[2])
    assert allrows["rows"] == "all" and allrows["n_rows"] == node["size"]
    for bad, code in [(f"api/featurevis/{gid}/nope", 404), (f"api/featurevis/nope/{node['id']}", 404),
                      (f"api/featurevis/{gid}/{node['id']}?rows=some", 400),
                      (f"api/featurevis/..%2F..%2Fetc/{node['id']}", 404)]:
        with pytest.raises(urllib.error.HTTPError) as exc:
            get(server, bad)
        assert exc.value.code == code, bad


def test_featurevis_unavailable_without_a_model(tmp_path):
    run = make_fixture_run(tmp_path / "run")
    srv = serve(run, port=0, open_browser=False, block=False)
    try:
        idx = json.loads(get(srv, "api/index")[2])
        gid = idx["graphs"][0]["id"]
        g = json.loads(get(srv, f"api/graph/{gid}")[2])
        info = json.loads(get(srv, f"api/featurevis/{gid}/{g['nodes'][0]['id']}")[2])
        assert info["available"] is False and "checkpoint" in info["reason"]
    finally:
        srv.shutdown()


def test_node_panel_shows_the_feature_visualisation(server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")
    import time

    gid, g = graph_with_nodes(server, "relu3", 0.0)
    node = max(g["nodes"], key=lambda n: n["size"])
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        pg = b.new_page(viewport={"width": 1400, "height": 900})
        errors = []
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(server.url + f"#graphs={gid}")
        pg.wait_for_selector("body[data-ready='1']", timeout=20000)
        panel = pg.locator(f".panel[data-graph='{gid}']")
        if panel.count() == 0:  # pick the graph in the first panel
            pg.select_option(".panel[data-index='0'] select", gid)
        pg.click(f".panel[data-graph='{gid}'] g.node[data-id='{node['id']}']")
        end = time.monotonic() + 60
        while not pg.evaluate("(() => { const i = document.querySelector('#d-fv img'); "
                              "return !!i && i.complete && i.naturalWidth > 0; })()"):
            assert time.monotonic() < end, pg.inner_text("#d-fv")
            time.sleep(0.1)
        cos = float(pg.inner_text("#d-fv-cos"))
        assert 0.3 < cos <= 1.0
        ARTIFACTS.mkdir(exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / "app-featurevis.png"))
        b.close()
    assert errors == []
