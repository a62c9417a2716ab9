"""The front end in a real browser (Playwright driving Debian's chromium).

Screenshots go to test-artifacts/ (look at them: legends, labels, colours).
Skipped cleanly when /usr/bin/chromium or playwright is missing.
"""
from __future__ import annotations

import json

import pytest

from advtopo.app import export_html, serve
from app_fixture import make_fixture_run

from browser_support import ARTIFACTS, BROWSER_MARKS, Page, browser, page  # noqa: F401  (fixtures)

pytestmark = BROWSER_MARKS
pytest.importorskip("playwright.sync_api", reason="playwright not installed")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_fixture_run(tmp_path_factory.mktemp("brun") / "run")


@pytest.fixture(scope="module")
def index(run_dir):
    return json.loads((run_dir / "index.json").read_text())


@pytest.fixture(scope="module")
def server(run_dir):
    srv = serve(run_dir, port=0, open_browser=False, block=False)
    yield srv
    srv.shutdown()


def api(server, path):
    import urllib.request

    with urllib.request.urlopen(server.url + path.lstrip("/"), timeout=10) as r:
        return json.loads(r.read())


def wait_until(pg, js: str, timeout: float = 15.0) -> None:
    """Poll a JS expression from Python (wait_for_function's polling needs eval, which the CSP forbids)."""
    import time

    end = time.monotonic() + timeout
    while not pg.evaluate(js):
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {js}")
        time.sleep(0.05)


def panel_node_ids(pg, k):
    return pg.eval_on_selector_all(f".panel[data-index='{k}'] g.node", "els => els.map(e => e.dataset.id)")


def test_loads_without_console_errors(server, page):
    pg = page.open(server.url)
    assert pg.title() == "advtopo"
    assert pg.locator(".panel").count() >= 1
    assert pg.locator("#legend .item").count() == 10  # class legend
    assert pg.locator(".vuln").count() == 20  # vulnerable samples list with thumbnails
    wait_until(pg, "Array.from(document.querySelectorAll('.vuln img')).every(i => i.complete && i.naturalWidth > 0)")
    page.shot("overview")
    assert page.errors == []


def test_graph_renders_with_the_api_node_count(server, page, index):
    pg = page.open(server.url)
    panels = pg.eval_on_selector_all(".panel", "els => els.map(e => e.dataset.graph)")
    assert panels
    for k, gid in enumerate(panels):
        g = api(server, f"/api/graph/{gid}")
        ids = panel_node_ids(pg, k)
        assert len(ids) == len(g["nodes"]) == next(e for e in index["graphs"] if e["id"] == gid)["stats"]["n_nodes"]
        assert sorted(ids) == sorted(n["id"] for n in g["nodes"])
        n_edges = pg.locator(f".panel[data-index='{k}'] line.edge").count()
        assert n_edges == len(g["edges"])
    assert page.errors == []


def test_layout_is_deterministic(server, browser):
    positions = []
    for _ in range(2):
        p = Page(browser)
        pg = p.open(server.url)
        positions.append(pg.eval_on_selector_all(".panel[data-index='0'] g.node", "els => els.map(e => e.getAttribute('transform'))"))
        p.close()
    assert positions[0] == positions[1]


def test_click_node_shows_members(server, page, index):
    pg = page.open(server.url)
    gid = pg.eval_on_selector(".panel[data-index='0']", "e => e.dataset.graph")
    g = api(server, f"/api/graph/{gid}")
    node = max(g["nodes"], key=lambda n: n["size"])
    pg.click(f".panel[data-index='0'] g.node[data-id='{node['id']}']")
    pg.wait_for_selector("#d-size")
    assert pg.inner_text("#d-size") == str(node["size"])
    detail = api(server, f"/api/node/{gid}/{node['id']}")
    rows = pg.eval_on_selector_all(".members-by-class tr[data-class]", "els => els.map(e => +e.dataset.class)")
    assert sorted(rows) == sorted(c["label"] for c in detail["by_class"])
    n_pairs = pg.locator("#details .pair").count()
    assert n_pairs == min(24, len(detail["sample_ids"]))
    wait_until(pg, "Array.from(document.querySelectorAll('#details img')).every(i => i.complete && i.naturalWidth > 0)")
    href = pg.get_attribute("#d-csv", "href")
    assert href.endswith(f"/{node['id']}/members.csv")
    with pg.expect_download() as dl:
        pg.click("#d-csv")
    assert dl.value.suggested_filename.endswith("_members.csv")
    # the fixture run has no model checkpoint: the feature-visualisation slot says so, without errors
    wait_until(pg, "document.querySelector('#d-fv') && /not available/.test(document.querySelector('#d-fv').textContent)")
    assert "checkpoint" in pg.inner_text("#d-fv") and pg.locator("#d-fv img").count() == 0
    # component selection highlights nodes
    pg.click("#d-comp")
    assert pg.locator(".panel[data-index='0'] g.node.hl").count() >= 1
    page.shot("node-details")
    assert page.errors == []


def test_shortest_path(server, page):
    pg = page.open(server.url)
    gid = pg.eval_on_selector(".panel[data-index='0']", "e => e.dataset.graph")
    g = api(server, f"/api/graph/{gid}")
    import networkx as nx

    G = nx.Graph()
    G.add_nodes_from(n["id"] for n in g["nodes"])
    G.add_edges_from((e["source"], e["target"]) for e in g["edges"])
    a, b = max(((s, t) for s, d in nx.all_pairs_shortest_path_length(G) for t in d), key=lambda st: nx.shortest_path_length(G, *st))
    pg.click(f".panel[data-index='0'] g.node[data-id='{a}']")
    pg.click(f".panel[data-index='0'] g.node[data-id='{b}']", modifiers=["Alt"])  # shift-click: multi-selection
    hl = pg.eval_on_selector_all(".panel[data-index='0'] g.node.hl", "els => els.map(e => e.dataset.id)")
    assert len(hl) == nx.shortest_path_length(G, a, b) + 1
    assert a in hl and b in hl
    assert page.errors == []


def test_comparison_view_shows_three_graphs(server, page, index):
    pg = page.open(server.url)
    pg.click("#preset-models")
    wait_until(pg, "document.querySelectorAll('.panel').length === 3 && document.querySelectorAll('.panel .msg:empty').length === 3")
    graphs = pg.eval_on_selector_all(".panel", "els => els.map(e => e.dataset.graph)")
    entries = [next(e for e in index["graphs"] if e["id"] == gid) for gid in graphs]
    assert len({e["model"] for e in entries}) == 3 and len({(e["layer"], e["eps"]) for e in entries}) == 1
    for k in range(3):
        assert len(panel_node_ids(pg, k)) == len(api(server, f"/api/graph/{graphs[k]}")["nodes"])
    # clean / adversarial toggle: the adversarial view of an eps>0 graph shows only nodes with adversarial points
    pg.click("#points-mode button[data-v='adversarial']")
    for k, gid in enumerate(graphs):
        g = api(server, f"/api/graph/{gid}")
        adv = g["points"]["is_adversarial"]
        want = sorted(n["id"] for n in g["nodes"] if any(adv[r] for r in n["members"]))
        assert sorted(panel_node_ids(pg, k)) == want
    pg.click("#points-mode button[data-v='both']")
    page.shot("compare-models")
    # eps sweep preset and the attribute colouring with a colour bar
    pg.click("#preset-eps")
    wait_until(pg, "document.querySelectorAll('.panel').length === 3 && document.querySelectorAll('.panel .msg:empty').length === 3")
    pg.select_option("#color-by", "frac_adversarial")
    pg.select_option("#cmap", "magma")
    assert pg.locator("#legend .colorbar svg").count() == 1
    pg.click("#layout-mode button[data-v='lens']")
    assert pg.locator(".panel .axis").count() == 3
    page.shot("compare-eps-lens")
    assert page.errors == []


def test_filters(server, page):
    pg = page.open(server.url)
    n0 = len(panel_node_ids(pg, 0))
    pg.eval_on_selector("#min-size", "e => { e.value = 8; e.dispatchEvent(new Event('input')); }")
    n1 = len(panel_node_ids(pg, 0))
    assert n1 < n0
    sizes = pg.eval_on_selector_all(".panel[data-index='0'] g.node", "els => els.length")
    assert sizes == n1
    pg.eval_on_selector("#jaccard", "e => { e.value = 0.99; e.dispatchEvent(new Event('input')); }")
    assert pg.locator(".panel[data-index='0'] line.edge").count() == 0
    pg.select_option("#class-search", "3")
    dim = pg.locator(".panel g.node.dim").count()
    assert dim > 0
    pg.select_option("#size-by", "class:3")
    assert page.errors == []


def test_locator_outlines_the_right_nodes(server, page):
    pg = page.open(server.url)
    sid = 5
    pg.fill("#locate-input", str(sid))
    pg.click("#locate-btn")
    graphs = pg.eval_on_selector_all(".panel", "els => els.map(e => e.dataset.graph)")
    want = api(server, f"/api/locate/{sid}")["graphs"]
    for k, gid in enumerate(graphs):
        got = pg.eval_on_selector_all(f".panel[data-index='{k}'] g.node.located", "els => els.map(e => e.dataset.id)")
        assert sorted(got) == sorted(want[gid]["nodes"]), gid
        text = pg.inner_text(f".panel[data-index='{k}'] .panel-loc")
        for r in want[gid]["rows"]:
            if r["nodes"]:
                assert f"point purity {r['point_purity']:.2f}" in text
    page.shot("locator")
    # clicking a vulnerable sample locates it
    first = pg.get_attribute(".vuln >> nth=0", "data-sid")
    pg.click(".vuln >> nth=0")
    assert pg.input_value("#locate-input") == first
    want = api(server, f"/api/locate/{first}")["graphs"]
    got = pg.eval_on_selector_all(".panel[data-index='0'] g.node.located", "els => els.map(e => e.dataset.id)")
    assert sorted(got) == sorted(want[graphs[0]]["nodes"])
    assert page.errors == []


def test_summary_panels(server, page, index):
    pg = page.open(server.url)
    pg.click(".tab[data-tab='summary']")
    assert pg.locator("#summary .card").count() >= 4
    assert pg.locator(".stats-table tr[data-id]").count() == len(index["graphs"])
    assert pg.locator("#summary .card h3", has_text="Persistence —").count() == 4  # heatmaps
    # diagrams: clean and the strongest attack, side by side, H0 and H1 points from the .npy
    pg.wait_for_selector("svg.diagram >> nth=1")
    assert pg.locator("svg.diagram").count() == 2
    assert pg.locator("svg.diagram >> nth=0").locator("circle.dim1").count() == 4
    page.page.set_viewport_size({"width": 1600, "height": 1400})
    page.shot("summary")
    pg.click(".stats-table tr[data-id] >> nth=4")
    assert pg.locator(".panel").count() == 1
    assert page.errors == []


def test_static_export_opens_offline(run_dir, index, browser, tmp_path):
    ids = [e["id"] for e in index["graphs"] if e["model"] == "cnn_std" and e["layer"] == "fc1"]
    out = export_html(run_dir, tmp_path / "export.html", graph_ids=ids)
    p = Page(browser)
    blocked = []

    def block(route):
        if route.request.url.startswith(("file:", "data:", "blob:")):
            return route.continue_()
        blocked.append(route.request.url)
        return route.abort()

    p.ctx.route("**/*", block)
    p.ctx.set_offline(True)
    try:
        pg = p.open(out.as_uri())
        assert pg.locator(".panel").count() == 3
        for k, gid in enumerate(ids):
            g = json.loads((run_dir / f"mapper/{gid}.json").read_text())
            assert len(panel_node_ids(pg, k)) == len(g["nodes"])
        assert pg.locator("#export-btn").count() == 0
        node = pg.locator(".panel[data-index='2'] g.node >> nth=0")
        node.click()
        pg.wait_for_selector("#d-size")
        wait_until(pg, "Array.from(document.querySelectorAll('#details img')).every(i => i.complete && i.naturalWidth > 0)")
        # no torch in a static page: the feature visualisation is a note, not an image
        assert "advtopo serve" in pg.inner_text("#d-fv") and pg.locator("#d-fv img").count() == 0
        pg.fill("#locate-input", "5")
        pg.click("#locate-btn")
        assert pg.locator("g.node.located").count() > 0
        p.shot("static-export")
        # the datapaths view works offline too: charts, flow, embedded thumbnails
        dp = json.loads((run_dir / "datapaths.json").read_text())
        pg.click("#tab-datapaths")
        assert pg.locator("svg.dp-overlap-chart >> nth=0").locator("path.dp-line").count() == len(dp["eps"])
        sid = dp["detail"][0]["sample_id"]
        pg.click(f"tr.dp-row[data-sid='{sid}']")
        sets, edges = _flow_sets(dp, sid, f"{dp['eps'][-1]:g}")
        assert pg.locator("svg.dp-flow-chart circle.dp-neuron").count() == sum(len(v) for k in sets.values() for v in k.values())
        assert pg.locator("svg.dp-flow-chart path.dp-edge").count() == len(edges)
        srcs = pg.eval_on_selector_all(".dp-thumbs img", "els => els.map(e => e.getAttribute('src'))")
        assert len(srcs) == 2 and all(s.startswith("data:image/png;base64,") for s in srcs)
        wait_until(pg, "Array.from(document.querySelectorAll('.dp-thumbs img')).every(i => i.complete && i.naturalWidth > 0)")
        p.shot("static-export-datapaths")
        assert blocked == []
        assert p.errors == []
    finally:
        p.close()


# ------------------------------------------------------------------------------ datapaths
def _flow_sets(dp, sid, eps_key):
    """What the flow view of sample ``sid`` at ``eps_key`` must draw: per layer the shared /
    clean-only / adversarial-only neuron ids, and the union of the clean and adversarial
    top-k edges."""
    det = next(d for d in dp["detail"] if d["sample_id"] == sid)
    cl, adv = det["clean"], det["adversarial"][eps_key]
    sets = {}
    for layer in dp["layers"]:
        a, b = set(cl["critical"][layer]), set(adv["critical"][layer])
        sets[layer] = {"shared": a & b, "clean-only": a - b, "adv-only": b - a}
    edges = {(f["source"], i, f["target"], j) for flow in (cl["flow"], adv["flow"]) for f in flow
             for i, j, _ in (f["edges"] or [])}
    return sets, edges


def test_datapaths_view(server, page, run_dir):
    dp = json.loads((run_dir / "datapaths.json").read_text())
    pg = page.open(server.url)
    wait_until(pg, "!document.querySelector('#tab-datapaths').classList.contains('hidden')")
    pg.click("#tab-datapaths")
    assert pg.is_visible("#view-datapaths") and not pg.is_visible("#view-graphs")
    assert pg.get_attribute("#tab-datapaths", "aria-selected") == "true"
    # layer-wise overlap: fooled | not fooled small multiples, one line per eps in each
    charts = pg.locator("svg.dp-overlap-chart")
    assert charts.count() == 2
    for k in range(2):
        eps = charts.nth(k).locator("path.dp-line").evaluate_all("els => els.map(e => +e.dataset.eps)")
        assert eps == dp["eps"]
    # points = the non-null values of by_layer (a null = no sample in that group is a gap)
    n_pts = sum(v is not None for layer in dp["layers"] for g in ("fooled", "not_fooled")
                for v in dp["by_layer"][layer][f"jaccard_{g}"])
    assert pg.locator("svg.dp-overlap-chart circle").count() == n_pts
    d_j = pg.get_attribute("svg.dp-overlap-chart >> nth=0 >> path.dp-line >> nth=0", "d")
    pg.click("#dp-metric button[data-v='weighted_jaccard']")
    assert pg.get_attribute("svg.dp-overlap-chart >> nth=0 >> path.dp-line >> nth=0", "d") != d_j
    pg.click("#dp-split button[data-v='all']")
    assert charts.count() == 1 and charts.nth(0).locator("path.dp-line").count() == len(dp["eps"])
    pg.click("#dp-split button[data-v='split']")
    pg.click("#dp-metric button[data-v='jaccard']")
    # divergence layer: one bar chart per eps, bars = layers + 'none' with the stored counts
    div = pg.locator("svg.dp-div-chart")
    assert div.count() == len(dp["eps"])
    for k, b in enumerate(dp["by_eps"]):
        labels = div.nth(k).locator("text.dp-count").evaluate_all("els => els.map(e => e.textContent)")
        assert [int(x) for x in labels] == [b["divergence_counts"]["all"][c] for c in dp["layers"] + ["none"]]
    pg.click("#dp-divgroup button[data-v='fooled']")
    labels = div.nth(1).locator("text.dp-count").evaluate_all("els => els.map(e => e.textContent)")
    assert [int(x) for x in labels] == [dp["by_eps"][1]["divergence_counts"]["fooled"][c] for c in dp["layers"] + ["none"]]
    # the sample list: one focusable row per sample
    rows = pg.locator("tr.dp-row")
    assert rows.count() == len(dp["samples"])
    assert rows.nth(0).get_attribute("tabindex") == "0" and rows.nth(0).get_attribute("aria-label")
    # clicking a sample with detail draws its flow: circles = the critical sets, edges = the top-k union
    sid = dp["detail"][1]["sample_id"]
    pg.click(f"tr.dp-row[data-sid='{sid}']")
    for j, e in enumerate(dp["eps"]):
        key = f"{e:g}"
        pg.click(f"#dp-eps button[data-v='{e}']")
        assert pg.get_attribute("svg.dp-flow-chart", "data-eps") == str(e)
        sets, edges = _flow_sets(dp, sid, key)
        for layer, kinds in sets.items():
            for kind, ids in kinds.items():
                got = pg.locator(f"svg.dp-flow-chart g.dp-col[data-layer='{layer}'] circle.dp-neuron.{kind}") \
                    .evaluate_all("els => els.map(e => +e.dataset.id)")
                assert sorted(got) == sorted(ids), (e, layer, kind)
        total = sum(len(ids) for kinds in sets.values() for ids in kinds.values())
        assert pg.locator("svg.dp-flow-chart circle.dp-neuron").count() == total
        assert pg.locator("svg.dp-flow-chart path.dp-edge").count() == len(edges)
        # the clean | adversarial thumbnails come from the image endpoint
        srcs = pg.eval_on_selector_all(".dp-thumbs img", "els => els.map(e => e.getAttribute('src'))")
        assert srcs == [f"api/image/clean/{sid}.png", f"api/image/adversarial/{dp['model']}/{dp['attack']}/{e}/{sid}.png"]
        wait_until(pg, "Array.from(document.querySelectorAll('.dp-thumbs img')).every(i => i.complete && i.naturalWidth > 0)")
    assert pg.locator(".dp-flow-legend .item").count() == 6  # 3 neuron kinds + 3 edge kinds
    page.page.set_viewport_size({"width": 1600, "height": 1300})
    page.shot("datapaths")
    # keyboard: a sample without detail, opened with Enter, shows its Jaccard row and a note
    nodet = next(s["sample_id"] for s in dp["samples"] if s["sample_id"] not in {d["sample_id"] for d in dp["detail"]})
    pg.focus(f"tr.dp-row[data-sid='{nodet}']")
    pg.keyboard.press("Enter")
    wait_until(pg, f"document.querySelector('#dp-flow').dataset.sample === '{nodet}'")
    assert pg.locator(".dp-note").count() == 1 and pg.locator("svg.dp-flow-chart").count() == 0
    assert pg.locator(".dp-jrow tr").count() == 1 + len(dp["eps"])
    assert pg.get_attribute(f"tr.dp-row[data-sid='{nodet}']", "aria-pressed") == "true"
    page.shot("datapaths-no-detail")
    # other tabs still work, the datapaths view hides the graph sidebar only while shown
    pg.click(".tab[data-tab='graphs']")
    assert pg.is_visible("#sidebar") and pg.locator(".panel").count() >= 1
    assert page.errors == []


def test_datapaths_tab_hidden_without_datapaths(browser, tmp_path_factory):
    run = make_fixture_run(tmp_path_factory.mktemp("nodp") / "run", n_per_class=3, with_datapaths=False)
    assert not (run / "datapaths.json").exists()
    with serve(run, port=0, open_browser=False, block=False) as srv:
        assert api(srv, "/api/datapaths") == {"available": False}
        p = Page(browser)
        try:
            pg = p.open(srv.url)
            assert pg.locator("#tab-datapaths").count() == 1 and not pg.is_visible("#tab-datapaths")
            pg.click(".tab[data-tab='summary']")
            assert pg.locator("#summary .card").count() >= 1
            assert p.errors == []
        finally:
            p.close()


def test_vulnerable_list_flags_and_locates_noise_samples_in_their_nearest_node(browser, tmp_path):
    """The list says label -> prediction, first-fooled eps, noise / misclassified, and the verdict
    against the margin; a noise sample is located in the nearest node the stage found."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(make_fixture_run(tmp_path / "src"), run)
    idx = json.loads((run / "index.json").read_text())
    gid = idx["graphs"][0]["id"]
    g = json.loads((run / idx["graphs"][0]["path"]).read_text())
    covered = {m for n in g["nodes"] for m in n["members"]}
    noise_sid = next(g["points"]["sample_id"][r] for r in range(len(g["points"]["sample_id"])) if r not in covered)
    near = g["nodes"][3]["id"]
    cell = {"auc": 0.61, "lo": 0.55, "hi": 0.66}
    vul = {"graph": gid, "auc_eps": 0.1, "beats_margin": False,
           "methods": {"mapper": {"auc_by_eps": {"0.1": cell}}, "margin": {"auc_by_eps": {"0.1": {"auc": 0.8, "lo": 0.75, "hi": 0.85}}},
                       "mapper+margin": {"auc_by_eps": {"0.1": {"auc": 0.79, "lo": 0.74, "hi": 0.84}}}},
           "samples": [{"sample_id": noise_sid, "score": 0.9, "fooled_at": 0.1, "label": 1, "prediction": 1,
                        "clean_correct": True, "noise": True, "nearest_node": near},
                       {"sample_id": 5, "score": 0.2, "fooled_at": None, "label": 2, "prediction": 7,
                        "clean_correct": False, "noise": False, "nearest_node": None}]}
    (run / "vulnerability.json").write_text(json.dumps(vul))
    srv = serve(run, port=0, open_browser=False, block=False)
    page = Page(browser)
    try:
        pg = page.open(srv.url + f"#graphs={gid}")
        pg.wait_for_selector(".vuln")
        assert "does not beat the clean softmax margin's 0.80 [0.75, 0.85]" in pg.inner_text(".vuln-verdict")
        first, second = pg.inner_text(".vuln >> nth=0"), pg.inner_text(".vuln >> nth=1")
        assert "first fooled at ε=0.1" in first and "noise" in first
        assert "never fooled" in second and "misclassified when clean" in second and "→" in second
        assert "Vulnerability score" in pg.get_attribute(".vuln >> nth=0", "title")
        pg.focus(".vuln >> nth=0")
        pg.keyboard.press("Enter")  # reachable by keyboard
        assert pg.input_value("#locate-input") == str(noise_sid)
        pg.wait_for_selector(".panel[data-index='0'] g.node.located")
        got = pg.eval_on_selector_all(".panel[data-index='0'] g.node.located", "els => els.map(e => e.dataset.id)")
        assert got == [near]
        assert f"nearest node {near} is outlined" in pg.inner_text(".panel[data-index='0'] .panel-loc")
        assert page.errors == []
    finally:
        page.close()
        srv.shutdown()
