"""The linked 2-D embedding (``GET /api/embedding/<graph>?method=pca|tsne``) on a real tiny
study run: API, cache, determinism, errors, and the browser's linked scatter."""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
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
    with urllib.request.urlopen(urllib.request.Request(server.url + path, headers={"X-Advtopo-Token": server.token}), timeout=120) as r:
        return r.status, r.read()


def attacked_graph(server):
    idx = json.loads(get(server, "api/index")[1])
    e = next(g for g in idx["graphs"] if g["eps"] > 0 and not g.get("recomputed"))
    return e, json.loads(get(server, f"api/graph/{e['id']}")[1])


def test_embedding_pca_matches_sklearn_and_is_cached(server, run_root):
    from sklearn.decomposition import PCA

    from advtopo.rundir import GraphEntry, open_run

    e, g = attacked_graph(server)
    n = len(g["points"]["sample_id"])
    status, body = get(server, f"api/embedding/{e['id']}")
    emb = json.loads(body)
    assert status == 200 and emb["available"] is True and emb["method"] == "pca"
    assert len(emb["x"]) == len(emb["y"]) == n
    # equal to sklearn's PCA of the loaded cloud, up to the sign of each component
    X = open_run(run_root).point_cloud(GraphEntry.from_dict(e))
    assert X.shape[0] == n
    ref = PCA(n_components=2, random_state=0).fit_transform(X)
    for k, c in enumerate(("x", "y")):
        got = np.asarray(emb[c])
        s = 1.0 if np.dot(got, ref[:, k]) >= 0 else -1.0
        np.testing.assert_allclose(got, s * ref[:, k], atol=2e-3 * (1 + np.abs(ref[:, k]).max()))
    cache = Path(run_root) / "app-cache" / "embedding" / f"{emb['key']}.json"
    assert cache.is_file()
    mtime = cache.stat().st_mtime_ns
    again = json.loads(get(server, f"api/embedding/{e['id']}?method=pca")[1])
    assert again["x"] == emb["x"] and again["y"] == emb["y"]
    assert cache.stat().st_mtime_ns == mtime  # read from the cache, not recomputed


def test_embedding_tsne_and_errors(server, run_root):
    e, g = attacked_graph(server)
    emb = json.loads(get(server, f"api/embedding/{e['id']}?method=tsne")[1])
    assert emb["available"] is True and emb["method"] == "tsne"
    assert len(emb["x"]) == len(g["points"]["sample_id"])
    assert np.isfinite(emb["x"]).all() and np.std(emb["x"]) > 0
    # deterministic: the same coordinates computed from scratch
    from advtopo.app.embedding import embed
    from advtopo.rundir import GraphEntry, open_run

    Y = embed(open_run(run_root).point_cloud(GraphEntry.from_dict(e)), "tsne")
    np.testing.assert_allclose(np.asarray(emb["x"]), Y[:, 0], atol=1e-3)
    for bad, code in [(f"api/embedding/{e['id']}?method=umap", 400), ("api/embedding/nope", 404),
                      ("api/embedding/..%2F..%2Fetc", 404)]:
        with pytest.raises(urllib.error.HTTPError) as exc:
            get(server, bad)
        assert exc.value.code == code, bad


def test_embedding_unavailable_without_activations(tmp_path):
    run = make_fixture_run(tmp_path / "run")
    srv = serve(run, port=0, open_browser=False, block=False)
    try:
        idx = json.loads(get(srv, "api/index")[1])
        status, body = get(srv, f"api/embedding/{idx['graphs'][0]['id']}")
        info = json.loads(body)
        assert status == 200 and info["available"] is False and info["reason"]
    finally:
        srv.shutdown()


def test_linked_embedding_in_the_browser(server):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")
    e, g = attacked_graph(server)
    gid, n = e["id"], len(g["points"]["sample_id"])
    node = max(g["nodes"], key=lambda x: x["size"])
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        pg = b.new_page(viewport={"width": 1400, "height": 900})
        errors = []
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda ex: errors.append(str(ex)))
        pg.goto(server.url + f"#graphs={gid}")
        pg.wait_for_selector("body[data-ready='1']", timeout=20000)
        if pg.locator(f".panel[data-graph='{gid}']").count() == 0:
            pg.select_option(".panel[data-index='0'] select", gid)
        panel = f".panel[data-graph='{gid}']"
        assert pg.locator(f"{panel} .embed").count() == 0  # closed by default
        pg.click(f"{panel} .emb-toggle")
        pg.wait_for_selector(f"{panel} .embed[data-state='ready']", timeout=60000)
        assert pg.locator(f"{panel} .embed .pt").count() == n
        n_adv = sum(1 for a in g["points"]["is_adversarial"] if a)
        assert pg.locator(f"{panel} .embed .pt.adv").count() == n_adv
        # click a node -> its members are highlighted in the scatter, the others dimmed
        pg.click(f"{panel} g.node[data-id='{node['id']}']")
        hl = sorted(int(r) for r in pg.eval_on_selector_all(f"{panel} .embed .pt.hl", "els => els.map(e => e.dataset.row)"))
        assert hl == sorted(node["members"])
        assert pg.locator(f"{panel} .embed .pt.dim").count() == n - len(node["members"])
        # brush the left half of the scatter -> every node holding a brushed row is outlined
        box = pg.locator(f"{panel} .embed svg.emb-svg").bounding_box()
        pg.mouse.move(box["x"] + 2, box["y"] + 2)
        pg.mouse.down()
        pg.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] - 2, steps=5)
        pg.mouse.up()
        rows = {int(r) for r in pg.eval_on_selector_all(f"{panel} .embed .pt.inbrush", "els => els.map(e => e.dataset.row)")}
        assert 0 < len(rows) < n
        want = {str(x["id"]) for x in g["nodes"] if rows & set(x["members"])}
        got = set(pg.eval_on_selector_all(f"{panel} g.node.brushed", "els => els.map(e => e.dataset.id)"))
        assert got == want and len(want) > 0
        assert f"{len(rows)} points, {len(want)} nodes" in pg.inner_text(f"{panel} .emb-count")
        # the brushed rows are the rows whose PCA coordinates lie in the left half (checked in Python)
        emb = json.loads(get(server, f"api/embedding/{gid}")[1])
        xs = np.asarray(emb["x"])
        mid, tol = xs.min() + 0.5 * (xs.max() - xs.min()), 0.01 * (xs.max() - xs.min())
        assert {r for r in range(n) if xs[r] < mid - tol} <= rows <= {r for r in range(n) if xs[r] <= mid + tol}
        # t-SNE: switch method, spinner then a new scatter with the same number of marks
        pg.click(f"{panel} .emb-method button[data-m='tsne']")
        pg.wait_for_selector(f"{panel} .embed[data-state='ready'] .emb-method button.on[data-m='tsne']", timeout=60000)
        assert pg.locator(f"{panel} .embed .pt").count() == n
        # locate a sample: its rows are ringed in the scatter
        sid = g["points"]["sample_id"][0]
        pg.fill("#locate-input", str(sid))
        pg.press("#locate-input", "Enter")
        pg.wait_for_timeout(300)
        loc = {int(r) for r in pg.eval_on_selector_all(f"{panel} .embed .pt.located", "els => els.map(e => e.dataset.row)")}
        assert loc == {r for r, s in enumerate(g["points"]["sample_id"]) if s == sid}
        ARTIFACTS.mkdir(exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / "app-embedding.png"))
        # closing the embedding restores the panel
        pg.click(f"{panel} .emb-toggle")
        assert pg.locator(f"{panel} .embed").count() == 0
        assert pg.locator(f"{panel} g.node.brushed").count() == 0
        b.close()
    assert errors == []


def test_embedding_unavailable_and_static_export_in_the_browser(tmp_path):
    """Without activations the scatter shows the reason (no console error); the static
    export has no server to compute with, so the control is not shown."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")
    from advtopo.app import export_html

    run = make_fixture_run(tmp_path / "run")
    srv = serve(run, port=0, open_browser=False, block=False)
    try:
        with sync_api.sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            pg = b.new_page(viewport={"width": 1200, "height": 800})
            errors = []
            pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            pg.on("pageerror", lambda ex: errors.append(str(ex)))
            pg.goto(srv.url)
            pg.wait_for_selector("body[data-ready='1']", timeout=20000)
            pg.click(".panel[data-index='0'] .emb-toggle")
            pg.wait_for_selector(".panel[data-index='0'] .embed[data-state='unavailable']", timeout=20000)
            assert "embedding unavailable" in pg.inner_text(".panel[data-index='0'] .embed")
            idx = json.loads(get(srv, "api/index")[1])
            out = export_html(run, tmp_path / "export.html", graph_ids=[idx["graphs"][0]["id"]])
            pg.goto(out.as_uri())
            pg.wait_for_selector("body[data-ready='1']", timeout=20000)
            assert pg.locator(".panel").count() >= 1 and pg.locator(".emb-toggle").count() == 0
            b.close()
        assert errors == []
    finally:
        srv.shutdown()
