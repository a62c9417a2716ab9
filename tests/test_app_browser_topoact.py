"""TopoAct's views in a real browser (Playwright driving Debian's chromium): the cross-layer
linked highlight and its Sankey card, loops and branch points, their Summary charts, the
static export, and the feature visualisation of one sample's own activation.

Screenshots go to test-artifacts/. Skipped cleanly when /usr/bin/chromium or playwright is missing.
"""
from __future__ import annotations

import json
import urllib.request

import pytest

from advtopo.app import export_html, serve
from app_fixture import make_fixture_run

from browser_support import BROWSER_MARKS, Page, browser, page  # noqa: F401  (fixtures)

A, B = "cnn_std__conv2__pgd__0.1", "cnn_std__fc1__pgd__0.1"  # the same samples at two layers

pytestmark = BROWSER_MARKS
pytest.importorskip("playwright.sync_api", reason="playwright not installed")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_fixture_run(tmp_path_factory.mktemp("brun-topoact") / "run")


@pytest.fixture(scope="module")
def server(run_dir):
    srv = serve(run_dir, port=0, open_browser=False, block=False)
    yield srv
    srv.shutdown()


def api(server, path):
    req = urllib.request.Request(server.url + path.lstrip("/"), headers={"X-Advtopo-Token": server.token})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def wait_until(pg, js: str, timeout: float = 15.0) -> None:
    """Poll a JS expression from Python (wait_for_function's polling needs eval, which the CSP forbids)."""
    import time

    end = time.monotonic() + timeout
    while not pg.evaluate(js):
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {js}")
        time.sleep(0.05)


def shares_shown(pg, k: int) -> dict[str, float]:
    return dict(pg.eval_on_selector_all(f".panel[data-index='{k}'] g.node",
                                        "els => els.map(e => [e.dataset.id, +e.dataset.share])"))


def expected_shares(flow: dict, nid: str) -> dict[str, float]:
    i = flow["from_nodes"].index(nid)
    size = flow["from_size"][i]
    out = {n: 0.0 for n in flow["to_nodes"]}
    for a, j, c in flow["flow"]:
        if a == i:
            out[flow["to_nodes"][j]] = c / size
    return out


def check_linked_highlight(pg, flow: dict, nid: str) -> None:
    """Panel 1 shows node nid's members' shares (rounded to 4 places), outlines the nodes holding
    any, and draws those more opaque than the ones holding none."""
    wait_until(pg, f"document.querySelector(\".panel[data-index='1']\").dataset.flow === '{A}|{nid}'")
    shown = shares_shown(pg, 1)
    want = expected_shares(flow, nid)
    assert shown.keys() == want.keys()
    assert all(abs(shown[n] - want[n]) < 1e-4 for n in want), (shown, want)
    targets = set(pg.eval_on_selector_all(".panel[data-index='1'] g.node.flow-target", "els => els.map(e => e.dataset.id)"))
    assert targets == {n for n, s in want.items() if s > 0} and targets
    opacity = dict(pg.eval_on_selector_all(".panel[data-index='1'] g.node", "els => els.map(e => [e.dataset.id, +e.style.opacity])"))
    assert min(opacity[n] for n in targets) > max([opacity[n] for n in want if n not in targets] or [0])
    strongest = max(targets, key=lambda n: want[n])
    assert opacity[strongest] == max(opacity.values())


def test_selecting_a_node_highlights_where_its_members_go(server, page):
    pg = page.open(server.url + f"#graphs={A},{B}")
    flow = api(server, f"api/flow?from={A}&to={B}&rows=all")
    g = api(server, f"api/graph/{A}")
    node = max(g["nodes"], key=lambda n: n["size"])["id"]
    pg.click(f".panel[data-index='0'] g.node[data-id='{node}']")
    check_linked_highlight(pg, flow, node)
    i = flow["from_nodes"].index(node)
    line = pg.inner_text(".panel[data-index='1'] .panel-flow")
    assert f"node {node}" in line and f"in {sum(1 for a, _, _ in flow['flow'] if a == i)} node" in line
    # the node panel's Sankey card: conv2 is the first layer, so only outgoing links (and ∅ for noise)
    wait_until(pg, "document.querySelectorAll('#d-flow svg.sankey path.link').length > 0")
    n_out = sum(1 for a, _, _ in flow["flow"] if a == i)
    links = pg.eval_on_selector_all("#d-flow path.link", "els => els.map(e => e.getAttribute('class'))")
    assert len(links) == min(n_out, 6) + (n_out > 6) + (flow["unmapped"][i] > 0)
    assert all("out" in c for c in links)
    assert pg.locator("#d-flow button[data-graph]").count() == 1  # fc1 is open already: its button is disabled
    assert pg.locator("#d-flow button[data-graph]").is_disabled()
    page.shot("crosslayer")
    # the clean points only: the shares of the clean rows
    pg.click("#points-mode button[data-v='clean']")
    clean = api(server, f"api/flow?from={A}&to={B}&rows=clean")
    wait_until(pg, "(() => { const n = document.querySelector(\".panel[data-index='1'] g.node.flow-target\"); return !!n; })()")
    import time

    end = time.monotonic() + 10
    while time.monotonic() < end:  # redrawn once the clean flow arrives
        shown, want = shares_shown(pg, 1), expected_shares(clean, node)
        if shown.keys() == want.keys() and all(abs(shown[n] - want[n]) < 1e-4 for n in want):
            break
        time.sleep(0.05)
    else:
        raise AssertionError((shown, want))
    # clicking the empty background clears the highlight
    pg.click(".panel[data-index='1'] svg.graph-svg", position={"x": 3, "y": 3})
    wait_until(pg, "document.querySelector(\".panel[data-index='1']\").dataset.flow === ''")
    assert pg.locator(".panel[data-index='1'] g.node.flow-target").count() == 0
    assert page.errors == []


def test_sankey_card_opens_the_next_layer(server, page):
    pg = page.open(server.url + f"#graphs={A}")
    g = api(server, f"api/graph/{A}")
    node = max(g["nodes"], key=lambda n: n["size"])["id"]
    pg.click(f".panel[data-index='0'] g.node[data-id='{node}']")
    wait_until(pg, "!!document.querySelector('#d-flow button[data-graph]')")
    pg.click(f"#d-flow button[data-graph='{B}']")
    wait_until(pg, "document.querySelectorAll('.panel').length === 2 && document.querySelectorAll('.panel .msg:empty').length === 2")
    assert pg.eval_on_selector_all(".panel", "els => els.map(e => e.dataset.graph)") == [A, B]
    check_linked_highlight(pg, api(server, f"api/flow?from={A}&to={B}&rows=all"), node)
    assert page.errors == []


def test_loops_and_branch_points_are_listed_and_highlighted(server, page):
    gid = A
    shape = api(server, f"api/shape/{gid}")
    assert shape["n_loops"] >= 2 and shape["branch_points"], "the fixture graph should have loops and branch points"
    pg = page.open(server.url + f"#graphs={gid}")
    pg.click(".panel[data-index='0'] .shape-toggle")
    wait_until(pg, "!!document.querySelector('#shape-loops')")
    assert pg.inner_text("#shape-loops") == str(shape["n_loops"])
    assert pg.inner_text("#shape-branches") == str(shape["n_branch_points"])
    assert pg.locator(".shape-loops tr[data-k]").count() == len(shape["cycles"])
    # a loop: its nodes and the edges around it are highlighted, nothing else
    cycle = shape["cycles"][-1]["nodes"]
    pg.click(f".shape-loops tr[data-k='{len(shape['cycles']) - 1}']")
    hl = pg.eval_on_selector_all(".panel[data-index='0'] g.node.hl", "els => els.map(e => e.dataset.id)")
    assert sorted(hl) == sorted(cycle)
    assert pg.locator(".panel[data-index='0'] line.edge.hl").count() == len(cycle)
    page.shot("loops")
    # a branch: the nodes left connected through that neighbour once the branch point is removed
    import networkx as nx

    g = api(server, f"api/graph/{gid}")
    G = nx.Graph()
    G.add_nodes_from(n["id"] for n in g["nodes"])
    G.add_edges_from((e["source"], e["target"]) for e in g["edges"])
    bp = shape["branch_points"][0]
    H = G.copy()
    H.remove_node(bp["node"])
    branch = nx.node_connected_component(H, bp["branches"][0]["via"][0])
    pg.click(".shape-branches tr[data-k='0'] .chip[data-b='0']")
    hl = pg.eval_on_selector_all(".panel[data-index='0'] g.node.hl", "els => els.map(e => e.dataset.id)")
    assert sorted(hl) == sorted(branch | {bp["node"]}) and len(branch) == bp["branches"][0]["n_nodes"]
    pg.click(".shape-branches tr[data-k='0'] .bp-node")
    hl = pg.eval_on_selector_all(".panel[data-index='0'] g.node.hl", "els => els.map(e => e.dataset.id)")
    assert sorted(hl) == sorted([bp["node"], *G[bp["node"]]])
    pg.click("#shape-all-loops")
    assert pg.locator(".panel[data-index='0'] g.node.hl").count() == len({n for c in shape["cycles"] for n in c["nodes"]})
    page.shot("branches")
    assert page.errors == []


def test_summary_charts_loops_and_branch_points_per_layer(server, page):
    pg = page.open(server.url)
    pg.click(".tab[data-tab='summary']")
    wait_until(pg, "document.querySelectorAll('.shape-card').length === 2")
    assert sorted(pg.eval_on_selector_all(".shape-card", "els => els.map(e => e.dataset.layer)")) == ["conv2", "fc1"]
    summary = api(server, "api/shape-summary")["graphs"]
    card = ".shape-card[data-layer='fc1']"
    assert pg.locator(f"{card} svg").count() == 2  # loops, branch points
    # one line per model, one point per eps, in each chart
    n_models = len({r["model"] for r in summary})
    assert pg.locator(f"{card} svg:first-of-type path[stroke-width='2']").count() == n_models
    titles = pg.eval_on_selector_all(f"{card} svg:first-of-type circle title", "els => els.map(e => e.textContent)")
    assert len(titles) == sum(1 for r in summary if r["layer"] == "fc1")
    std = {r["eps"]: r["n_loops"] for r in summary if r["layer"] == "fc1" and r["model"] == "cnn_std"}
    for eps, n in std.items():
        assert any(t.startswith(f"cnn_std: ε={eps:g} → {n}") for t in titles), (eps, n, titles)
    page.shot("summary-shapes")
    assert page.errors == []


def test_static_export_has_the_flow_and_the_shapes(server, run_dir, browser, tmp_path):
    out = export_html(run_dir, tmp_path / "export.html", graph_ids=[A, B])
    p = Page(browser)
    try:
        pg = p.open(out.as_uri())
        g = api(server, f"api/graph/{A}")
        node = max(g["nodes"], key=lambda n: n["size"])["id"]
        pg.click(f".panel[data-index='0'] g.node[data-id='{node}']")
        check_linked_highlight(pg, api(server, f"api/flow?from={A}&to={B}&rows=all"), node)  # computed in the page
        wait_until(pg, "document.querySelectorAll('#d-flow path.link').length > 0")
        pg.click(".panel[data-index='0'] .shape-toggle")
        wait_until(pg, "!!document.querySelector('#shape-loops')")
        assert pg.inner_text("#shape-loops") == str(api(server, f"api/shape/{A}")["n_loops"])
        assert p.errors == []
    finally:
        p.close()


def test_a_members_own_activation_is_visualised_beside_the_node_average(study_server, browser):
    """On the tiny real study run (a model and stored activations): from the node panel and from the locator."""
    srv = study_server
    idx = api(srv, "api/index")
    e = next(g for g in idx["graphs"] if g["layer"] == "relu3" and g["eps"] > 0)
    g = api(srv, f"api/graph/{e['id']}")
    node = max(g["nodes"], key=lambda n: n["size"])
    p = Page(browser, 1500, 950)
    try:
        pg = p.open(srv.url + f"#graphs={e['id']}")
        pg.click(f".panel[data-index='0'] g.node[data-id='{node['id']}']")
        wait_until(pg, "!!document.querySelector('#d-fv-pick')")
        first = pg.eval_on_selector("#d-fv-pick", "s => s.value")
        sid, kind = first.split("|")
        pg.click("#d-fv-go")
        wait_until(pg, "(() => { const i = document.querySelector('#d-fv-out img'); return !!i && i.complete && i.naturalWidth > 0; })()", 90)
        info = api(srv, f"api/featurevis-sample/{e['id']}/{sid}?kind={kind}")
        assert float(pg.inner_text("#d-fv-out .fv-cos")) == pytest.approx(info["cosine"], abs=0.006)
        wait_until(pg, "(() => { const i = document.querySelector('#d-fv img'); return !!i && i.complete && i.naturalWidth > 0; })()", 90)
        assert pg.locator(".fv-row > .fv").count() == 2  # the node's average and the member's own, side by side
        p.shot("featurevis-sample")
        # the locator: the located sample's own activation in the graph shown
        pg.fill("#locate-input", sid)
        pg.click("#locate-btn")
        wait_until(pg, "!!document.querySelector('#locate-fv-pick')")
        options = pg.eval_on_selector_all("#locate-fv-pick option", "els => els.map(e => e.value)")
        assert options == [f"{e['id']}|clean", f"{e['id']}|adversarial"]
        pg.select_option("#locate-fv-pick", f"{e['id']}|adversarial")
        pg.click("#locate-fv-go")
        wait_until(pg, "(() => { const i = document.querySelector('#locate-fv-out img'); return !!i && i.complete && i.naturalWidth > 0; })()", 90)
        assert "adversarial" in pg.inner_text("#locate-fv-out")
        assert p.errors == []
    finally:
        p.close()


def test_summary_shows_one_mapper_set_at_a_time(browser, tmp_path):
    """With several mapper sets the lines would share the models' colours: the card picks one set."""
    run = make_fixture_run(tmp_path / "run", with_extras=False)
    index = json.loads((run / "index.json").read_text())
    extra = [{**g, "id": g["id"] + "__b", "mapper_set": "b"} for g in index["graphs"] if g["layer"] == "fc1" and g["eps"] > 0]
    for g in index["graphs"]:
        g["mapper_set"] = "a"
    index["graphs"] += extra
    (run / "index.json").write_text(json.dumps(index))
    srv = serve(run, port=0, open_browser=False, block=False)
    p = Page(browser)
    try:
        pg = p.open(srv.url)
        pg.click(".tab[data-tab='summary']")
        wait_until(pg, "document.querySelectorAll('.shape-card').length === 2")
        card = ".shape-card[data-layer='fc1']"
        assert pg.eval_on_selector_all(f"{card} select.shape-set option", "els => els.map(e => e.value)") == ["a", "b"]
        n_points = lambda: pg.locator(f"{card} svg:first-of-type circle").count()  # noqa: E731
        assert n_points() == sum(1 for g in index["graphs"] if g["layer"] == "fc1" and g["mapper_set"] == "a")
        pg.select_option(f"{card} select.shape-set", "b")
        assert n_points() == len(extra) == 6
        assert p.errors == []
    finally:
        p.close()
        srv.shutdown()
