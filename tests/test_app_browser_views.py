"""Views that can be shared and come back the same, and the UI bugs of issue 13 part 6, in a real
browser (Playwright + Debian's chromium): the whole view in the URL (Back / Forward, pasted
links, copy link), stable layouts (same picture in 1 and 4 panels, dragged nodes pinned, eps
sweeps aligned), presets, tooltip / toast / Esc / keyboard / accessible names, the locator card,
the layer-distance heatmap, persistence diagrams in the static export, the embedding in a 2 x 2
grid and a cancellable t-SNE, a recomputed graph's parameters and its Summary row.
"""
from __future__ import annotations

import json
import math
from urllib.parse import unquote

import pytest

import app_fixture
from advtopo.app import export_html, serve
from app_fixture import make_fixture_run
from browser_support import BROWSER_MARKS, Page, browser, wait_until  # noqa: F401  (fixtures)

pytestmark = BROWSER_MARKS
pytest.importorskip("playwright.sync_api", reason="playwright not installed")

SWEEP_EPS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]  # a 0..0.3 run with 7 attack eps


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, monkeypatch_module):
    # 7 eps (the preset must reach the strongest) and a layer-distance document as the persistence stage writes it
    monkeypatch_module.setattr(app_fixture, "EPS", SWEEP_EPS)
    run = make_fixture_run(tmp_path_factory.mktemp("vrun") / "run")
    index = json.loads((run / "index.json").read_text())
    labels = [("cnn_std", "conv2"), ("cnn_std", "fc1"), ("cnn_adv0.1", "conv2"), ("cnn_adv0.1", "fc1")]
    D = [[abs(i - j) * 0.25 + (0.1 if i != j else 0) for j in range(4)] for i in range(4)]
    index["persistence"]["layer_distance"] = {
        "labels": [f"{m}/{layer}" for m, layer in labels], "models": [m for m, _ in labels],
        "layers": [layer for _, layer in labels], "metric": "sliced_wasserstein", "homology_dim": 1,
        "matrix": D, "cka": [[1 - d / 2 for d in row] for row in D], "rank_correlation_cka": -1.0}
    (run / "index.json").write_text(json.dumps(index))
    return run


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def index(run_dir):
    return json.loads((run_dir / "index.json").read_text())


@pytest.fixture(scope="module")
def server(run_dir):
    srv = serve(run_dir, port=0, open_browser=False, block=False)
    yield srv
    srv.shutdown()


def open_page(browser) -> Page:
    """The module's page: 1600 x 1000, console errors recorded (an aborted request is a test's own business)."""
    return Page(browser, 1600, 1000, ready_timeout=30000, failed_requests=False)


@pytest.fixture
def page(browser):
    p = open_page(browser)
    yield p
    p.ctx.close()
    assert not p.errors, p.errors


def gid(model, layer, eps):
    return app_fixture.graph_id(model, layer, "pgd", eps)


def view_of(pg) -> dict:
    """The hash's view as the page wrote it."""
    h = pg.evaluate("location.hash")
    return {"graphs": pg.evaluate("advtopo.urlstate.parseGraphsHash(location.hash)"),
            "view": pg.evaluate("advtopo.urlstate.parseViewHash(location.hash).view"), "hash": h}


def panel_ids(pg):
    return pg.eval_on_selector_all(".panel", "els => els.map(e => e.dataset.graph)")


def node_centres(pg, graph):
    """node id -> centre (x, y) in page pixels of panel `graph`."""
    return pg.evaluate("""g => Object.fromEntries([...document.querySelectorAll(`.panel[data-graph="${g}"] g.node`)].map(n => {
        const r = n.querySelector('.ring').getBoundingClientRect(); return [n.dataset.id, [r.x + r.width / 2, r.y + r.height / 2]]; }))""", graph)


def settled_centres(pg, graph):
    """node_centres once two reads 200 ms apart agree (a late re-fit after the side panels fill)."""
    last = node_centres(pg, graph)
    for _ in range(50):
        pg.wait_for_timeout(200)
        now = node_centres(pg, graph)
        if now == last:
            return now
        last = now
    raise AssertionError("the graph kept moving")


def normalised(pts: dict) -> dict:
    """Positions up to translation and scale (centred, unit RMS radius)."""
    xs = [p[0] for p in pts.values()]
    ys = [p[1] for p in pts.values()]
    cx, cy = sum(xs) / len(xs), sum(ys) / len(ys)
    s = math.sqrt(sum((x - cx) ** 2 + (y - cy) ** 2 for x, y in pts.values()) / len(pts)) or 1
    return {k: ((x - cx) / s, (y - cy) / s) for k, (x, y) in pts.items()}


# ---------------------------------------------------------------------------------------- the URL


def test_the_url_holds_the_whole_view_and_a_pasted_link_restores_it(server, browser, page):
    a, b = gid("cnn_std", "fc1", 0.1), gid("cnn_std", "fc1", 0.3)
    pg = page.open(server.url + f"#graphs={a},{b}")
    pg.click("#layout-mode button[data-v='lens']")
    pg.select_option("#color-by", "frac_adversarial")
    pg.fill("#locate-input", "7")
    pg.click("#locate-btn")
    node = pg.eval_on_selector(f".panel[data-graph='{b}'] g.node", "n => n.dataset.id")
    pg.click(f".panel[data-graph='{b}'] g.node[data-id='{node}']")
    pg.click(".tab[data-tab='summary']")
    v = view_of(pg)
    assert v["graphs"] == [a, b]
    assert v["view"]["tab"] == "summary" and v["view"]["layout"] == "lens" and v["view"]["color"] == "frac_adversarial"
    assert v["view"]["locate"] == 7 and v["view"]["selected"] == {"gid": b, "nid": node}
    # the same link in a fresh page: the same view
    other = open_page(browser)
    try:
        p2 = other.open(server.url + v["hash"])
        assert panel_ids(p2) == [a, b]
        assert p2.get_attribute(".tab[data-tab='summary']", "aria-selected") == "true"
        assert not p2.is_visible("#view-graphs")
        assert p2.get_attribute("#layout-mode button.on", "data-v") == "lens"
        assert p2.input_value("#color-by") == "frac_adversarial"
        assert p2.input_value("#locate-input") == "7"
        assert p2.locator(f".panel[data-graph='{b}'] g.node.selected[data-id='{node}']").count() == 1
        assert f"node {node}" in p2.inner_text("#details").lower()
        assert view_of(p2)["hash"] == v["hash"]  # restoring writes nothing new
        assert not other.errors, other.errors
    finally:
        other.ctx.close()


def test_back_and_forward_restore_the_view(server, page):
    a = gid("cnn_std", "fc1", 0.1)
    pg = page.open(server.url + f"#graphs={a}")
    first = view_of(pg)["hash"]
    pg.click("#preset-models")  # new graphs: a history step
    wait_until(pg, "() => document.querySelectorAll('.panel').length === 3")
    models = panel_ids(pg)
    node = pg.eval_on_selector(f".panel[data-graph='{models[1]}'] g.node", "n => n.dataset.id")
    pg.click(f".panel[data-graph='{models[1]}'] g.node[data-id='{node}']")  # a selection: a step
    pg.click(".tab[data-tab='summary']")  # a tab: a step
    pg.go_back()
    wait_until(pg, "() => !document.querySelector('#view-graphs').classList.contains('hidden')")
    assert pg.locator(f".panel[data-graph='{models[1]}'] g.node.selected").count() == 1
    pg.go_back()
    wait_until(pg, "() => document.querySelectorAll('g.node.selected').length === 0")
    assert panel_ids(pg) == models
    pg.go_back()
    wait_until(pg, "() => document.querySelectorAll('.panel').length === 1")
    assert panel_ids(pg) == [a]
    assert view_of(pg)["hash"] == first
    pg.go_forward()
    wait_until(pg, "() => document.querySelectorAll('.panel').length === 3")
    assert panel_ids(pg) == models
    # a link pasted into the address bar of the open page (hashchange)
    b = gid("cnn_adv0.3", "conv2", 0.3)
    pg.evaluate("h => { location.hash = h; }", f"graphs={b}&view=" + json.dumps({"layout": "lens"}))
    wait_until(pg, f"() => document.querySelector('.panel') && document.querySelector('.panel').dataset.graph === '{b}'")
    wait_until(pg, "() => document.querySelector('#layout-mode button.on').dataset.v === 'lens'")


def test_copy_link_puts_the_view_on_the_clipboard(server, browser):
    p = open_page(browser)
    try:
        p.ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url.rstrip("/"))
        pg = p.open(server.url)
        pg.click("#layout-mode button[data-v='lens']")
        assert pg.get_attribute("#copy-link", "title")
        pg.click("#copy-link")
        wait_until(pg, "() => !document.querySelector('#toast').classList.contains('hidden')")
        copied = pg.evaluate("navigator.clipboard.readText()")
        assert copied == pg.evaluate("location.href")
        assert json.loads(unquote(copied.split("view=")[1]))["layout"] == "lens"
        assert not p.errors, p.errors
    finally:
        p.ctx.close()


# ---------------------------------------------------------------------------------------- layouts


def test_a_graph_has_the_same_layout_in_one_and_in_four_panels(server, page):
    a = gid("cnn_std", "fc1", 0.1)
    others = [gid("cnn_std", "fc1", 0.3), gid("cnn_std", "conv2", 0.1), gid("cnn_adv0.3", "fc1", 0.1)]
    pg = page.open(server.url + f"#graphs={a}")
    one = normalised(settled_centres(pg, a))
    pg.evaluate("ids => advtopo.setPanels(ids)", [a] + others)
    wait_until(pg, "() => document.querySelectorAll('.panel[data-nodes]').length === 4")
    four = normalised(settled_centres(pg, a))
    assert one.keys() == four.keys() and len(one) > 3
    worst = max(math.dist(one[k], four[k]) for k in one)
    assert worst < 0.02, worst  # the same picture, scaled (pixel rounding only)


def test_dragged_nodes_stay_pinned_and_travel_in_the_link(server, browser, page):
    a = gid("cnn_std", "fc1", 0.3)
    pg = page.open(server.url + f"#graphs={a}")
    before = settled_centres(pg, a)
    nid = sorted(before)[0]
    x, y = before[nid]
    box = pg.locator(f".panel[data-graph='{a}'] svg.graph-svg").bounding_box()
    tx, ty = box["x"] + 40, box["y"] + 40  # a corner no layout puts a node in
    pg.mouse.move(x, y)
    pg.mouse.down()
    pg.mouse.move((x + tx) / 2, (y + ty) / 2, steps=4)
    pg.mouse.move(tx, ty, steps=4)
    pg.mouse.up()
    pg.wait_for_selector(f".panel[data-graph='{a}'] g.node.pinned[data-id='{nid}']")
    after = node_centres(pg, a)
    assert math.dist(after[nid], (tx, ty)) < 2
    assert all(after[k] == before[k] for k in before if k != nid)  # the others did not move
    assert pg.locator(f".panel[data-graph='{a}'] g.node.selected").count() == 0  # a drag is not a click
    pins = view_of(pg)["view"]["pins"]
    assert list(pins) == [a] and list(pins[a]) == [nid]
    # the link opens with the node where it was dropped (same viewport)
    other = open_page(browser)
    try:
        p2 = other.open(server.url + view_of(pg)["hash"])
        assert math.dist(settled_centres(p2, a)[nid], (tx, ty)) < 2
        assert not other.errors, other.errors
    finally:
        other.ctx.close()
    # released: back to the layout's own place
    pg.click(f".panel[data-graph='{a}'] .unpin")
    wait_until(pg, f"() => document.querySelectorAll('.panel[data-graph=\"{a}\"] g.node.pinned').length === 0")
    assert math.dist(node_centres(pg, a)[nid], before[nid]) < 1
    assert "pins" not in view_of(pg)["view"] or not view_of(pg)["view"]["pins"]


def test_aligned_sweep_keeps_matching_nodes_in_place(server, page):
    ids = [gid("cnn_std", "fc1", e) for e in (0.0, 0.1, 0.3)]
    pg = page.open(server.url + "#graphs=" + ",".join(ids))
    pg.check("#align-sweep")
    wait_until(pg, "() => advtopo.urlstate.parseViewHash(location.hash).view.align === true")
    # in layout units: every node of the eps-0.1 graph matched (by shared members) to a node of the
    # eps-0 graph sits where that node sits (or at most a few units aside when several share it)
    res = pg.evaluate("""ids => {
        const [a, b] = ids.map(id => advtopo.GRAPHS.get(id));
        const La = a._d.layouts['force'], Lb = b._d.layouts['aligned:' + ids[0]];
        const m = advtopo.layout.matchNodes(b, a);
        const d = [...m.entries()].map(([i, j]) => Math.hypot(Lb.x[i] - La.x[j], Lb.y[i] - La.y[j]));
        return { matched: m.size, n: b.nodes.length, worst: Math.max(...d), exact: d.filter(v => v === 0).length };
    }""", ids[:2])
    assert res["matched"] >= res["n"] // 2 and res["exact"] >= 1 and res["worst"] <= 6 * math.sqrt(res["n"]), res
    pg.uncheck("#align-sweep")
    wait_until(pg, "() => advtopo.urlstate.parseViewHash(location.hash).view.align === false")


def test_the_eps_sweep_preset_reaches_the_strongest_attack(server, page):
    pg = page.open(server.url + f"#graphs={gid('cnn_std', 'fc1', 0.1)}")
    pg.click("#preset-eps")
    wait_until(pg, "() => document.querySelectorAll('.panel').length === 4")
    eps = [float(i.rsplit("__", 1)[1]) for i in panel_ids(pg)]
    assert eps[0] == min(SWEEP_EPS) and eps[-1] == max(SWEEP_EPS) and eps == sorted(eps), eps


# ---------------------------------------------------------------------------------------- bugs


def test_tooltip_goes_on_click_and_esc_closes_tooltip_then_selection(server, page):
    a = gid("cnn_std", "fc1", 0.1)
    pg = page.open(server.url + f"#graphs={a}")
    node = pg.locator(f".panel[data-graph='{a}'] g.node").first
    node.hover()
    pg.wait_for_selector("#tooltip:not(.hidden)")
    node.click()
    assert pg.locator("#tooltip.hidden").count() == 1  # was left over the page after a click
    assert pg.locator("g.node.selected").count() == 1
    x, y = pg.evaluate("() => { const r = document.querySelector('g.node.selected .body').getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }")
    pg.mouse.move(x + 1, y)  # still on the (redrawn) node
    assert pg.locator("#tooltip.hidden").count() == 1
    pg.mouse.move(1, 1)  # leave the node first: another node's centre may lie under the selected one's disc
    other = pg.locator(f".panel[data-graph='{a}'] g.node:not(.selected)").first
    other.dispatch_event("mouseenter")  # a hover at its centre may land on an overlapping node
    pg.wait_for_selector("#tooltip:not(.hidden)")
    pg.keyboard.press("Escape")
    assert pg.locator("#tooltip.hidden").count() == 1
    assert pg.locator("g.node.selected").count() == 1  # one thing at a time
    pg.keyboard.press("Escape")
    assert pg.locator("g.node.selected").count() == 0
    assert "Click a node" in pg.inner_text("#details")


def test_graph_nodes_are_reachable_by_keyboard(server, page):
    a = gid("cnn_std", "fc1", 0.1)
    pg = page.open(server.url + f"#graphs={a}")
    nodes = pg.locator(f".panel[data-graph='{a}'] g.node")
    assert nodes.first.get_attribute("tabindex") == "0" and nodes.first.get_attribute("role") == "button"
    assert nodes.first.get_attribute("aria-label").startswith("node ")
    nid = nodes.nth(2).get_attribute("data-id")
    nodes.nth(2).focus()
    pg.keyboard.press("Enter")
    pg.wait_for_selector(f"g.node.selected[data-id='{nid}']")
    assert f"node {nid}" in pg.inner_text("#details").lower()
    # the selected node keeps the focus through the redraws its selection causes
    wait_until(pg, f"() => document.activeElement.matches(\"g.node[data-id='{nid}']\")")
    # Tab moves focus from node to node
    pg.keyboard.press("Tab")
    assert pg.evaluate("document.activeElement.classList.contains('node')")
    # any later redraw keeps the focus on the node that had it
    focused = pg.evaluate("document.activeElement.dataset.id")
    pg.evaluate("advtopo.graphs.renderAll()")
    assert pg.evaluate("document.activeElement.dataset.id") == focused


def test_icon_only_buttons_have_an_accessible_name(server, page):
    pg = page.open(server.url + "#graphs=" + gid("cnn_std", "fc1", 0.1))
    node = pg.eval_on_selector("g.node", "n => n.dataset.id")
    pg.click(f"g.node[data-id='{node}']")  # the node panel's buttons too
    unnamed = pg.evaluate("""() => [...document.querySelectorAll('button')].filter(b => b.offsetParent !== null)
        .filter(b => !/[\\p{L}\\p{N}]/u.test(b.textContent) && !(b.getAttribute('aria-label') || '').trim())
        .map(b => b.outerHTML.slice(0, 80))""")
    assert unnamed == []
    assert pg.get_attribute("#locate-clear", "aria-label")
    assert pg.locator(".panel-head button.x[aria-label]").count() == 1


def test_locating_an_id_outside_the_run_asks_for_no_image(server, page, index):
    """Its thumbnail's 404 was a console error; the locator says which ids the run has."""
    pg = page.open(server.url + "#graphs=" + gid("cnn_std", "fc1", 0.1))
    n = index["dataset"]["n_samples"]
    for sid in (n, n + 1000):
        pg.fill("#locate-input", str(sid))
        pg.click("#locate-btn")
        wait_until(pg, f"() => document.querySelector('#locate-info').textContent.includes('sample {sid}')")
        assert f"not in this run (its sample ids are 0–{n - 1})" in pg.inner_text("#locate-info")
        assert pg.locator("#locate-info img").count() == 0
    pg.fill("#locate-input", str(n - 1))  # the last id in the run: its image
    pg.click("#locate-btn")
    wait_until(pg, "() => { const i = document.querySelector('#locate-info img'); return !!i && i.complete && i.naturalWidth > 0; }")
    assert "not in this run" not in pg.inner_text("#locate-info")
    # the page fixture asserts that nothing was logged as an error


def test_locating_from_the_vulnerable_list_keeps_the_clicked_item_in_place(server, browser):
    p = open_page(browser)
    try:
        pg = p.open(server.url)
        pg.wait_for_selector("#vuln-list .vuln")
        items = pg.locator("#vuln-list .vuln")
        assert items.count() >= 6
        for k in (2, 5):
            it = items.nth(k)
            it.scroll_into_view_if_needed()
            sid = it.get_attribute("data-sid")
            top = it.bounding_box()["y"]
            it.click()
            wait_until(pg, "() => document.querySelector('#locate-info img') === null || document.querySelector('#locate-info img').complete")
            pg.wait_for_timeout(150)  # the observer's frame
            assert abs(items.nth(k).bounding_box()["y"] - top) < 2
            # a second click at the same place hits the same sample, not its neighbour
            box = items.nth(k).bounding_box()
            hit = pg.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('.vuln').dataset.sid",
                              [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2])
            assert hit == sid
            assert pg.input_value("#locate-input") == sid
        assert not p.errors, p.errors
    finally:
        p.ctx.close()


def two_set_run(root) -> tuple:
    """The fixture run with a second mapper set "b" (fc1's graphs again, another mean purity),
    as the demo has "default" and "adv": (run directory, its index)."""
    run = make_fixture_run(root, with_extras=False)
    index = json.loads((run / "index.json").read_text())
    extra = [{**g, "id": g["id"] + "__b", "mapper_set": "b", "stats": {**g["stats"], "mean_purity": 0.25}}
             for g in index["graphs"] if g["layer"] == "fc1"]
    for g in index["graphs"]:
        g["mapper_set"] = "a"
    index["graphs"] += extra
    (run / "index.json").write_text(json.dumps(index))
    return run, index


def test_two_mapper_sets_default_view_and_titles(browser, tmp_path):
    """The default sweep is one set's (it opened eps 0 twice on the demo run: "default" and
    "adv"), and a panel's title names its set when the run has several."""
    run, index = two_set_run(tmp_path / "run")
    srv = serve(run, port=0, open_browser=False, block=False)
    p = open_page(browser)
    try:
        pg = p.open(srv.url)
        wait_until(pg, "() => document.querySelectorAll('.panel .panel-title').length > 0")
        first = index["graphs"][0]
        want = sorted((g for g in index["graphs"] if g["model"] == first["model"] and g["layer"] == index["layers"][-1]
                       and g["attack"] == first["attack"] and g["mapper_set"] == "a"), key=lambda g: g["eps"])[:3]
        assert panel_ids(pg) == [g["id"] for g in want]
        titles = pg.eval_on_selector_all(".panel .panel-title", "els => els.map(e => e.textContent)")
        assert all(t.endswith(" · set a") for t in titles), titles
        b = next(g for g in index["graphs"] if g["mapper_set"] == "b")
        pg.evaluate("ids => advtopo.setPanels(ids)", [b["id"]])
        wait_until(pg, f"() => (document.querySelector('.panel .panel-title') || {{}}).textContent === '{b['model']} · {b['layer']} · {b['attack']} ε={b['eps']:g} · set b'")
        assert not p.errors, p.errors
    finally:
        p.close()
        srv.shutdown()


def test_class_mixing_shows_one_mapper_set_at_a_time(browser, tmp_path):
    """With two mapper sets a model's line joined both sets' graphs at each eps (a zigzag, seen
    on the demo run's relu3): each card shows one set, chosen from a menu."""
    run, index = two_set_run(tmp_path / "run")
    srv = serve(run, port=0, open_browser=False, block=False)
    p = open_page(browser)
    try:
        pg = p.open(srv.url)
        pg.click(".tab[data-tab='summary']")
        wait_until(pg, "() => document.querySelectorAll('.mixing-card').length === 2")
        card = ".mixing-card[data-layer='fc1']"
        assert pg.eval_on_selector_all(f"{card} select.mixing-set option", "els => els.map(e => e.value)") == ["a", "b"]

        def shown() -> dict[str, list[str]]:
            titles = pg.eval_on_selector_all(f"{card} svg circle title", "els => els.map(e => e.textContent)")
            out: dict[str, list[str]] = {}
            for t in titles:
                model, rest = t.split(": ε=")
                out.setdefault(model, []).append(rest)
            return out

        def expected(set_name: str) -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for g in sorted((g for g in index["graphs"] if g["layer"] == "fc1" and g["mapper_set"] == set_name),
                            key=lambda g: g["eps"]):
                out.setdefault(g["model"], []).append(f"{g['eps']:g} → {1 - g['stats']['mean_purity']:.3f}")
            return out

        assert shown() == expected("a")  # one point per eps and model: no second set's point
        pg.select_option(f"{card} select.mixing-set", "b")
        assert shown() == expected("b")
        assert pg.locator(".mixing-card[data-layer='conv2'] svg circle").count() == sum(
            1 for g in index["graphs"] if g["layer"] == "conv2")  # conv2 has set a only: its points
        assert not p.errors, p.errors
    finally:
        p.close()
        srv.shutdown()


def test_layer_distance_heatmap_names_models_metric_and_values(server, page):
    pg = page.open(server.url)
    pg.click(".tab[data-tab='summary']")
    card = pg.locator(".card", has_text="Layer distance").first
    card.wait_for()
    text = card.inner_text()
    assert "sliced wasserstein distance between H1 diagrams" in text
    labels = card.locator("svg.heatmap > text:not(.hm-val)").evaluate_all("els => els.map(e => e.textContent)")
    assert "cnn_std / conv2" in labels and "cnn_adv0.1 / fc1" in labels
    assert len(set(labels)) == 4  # rows == columns: each of the 4 clouds once per axis
    values = card.locator("text.hm-val").evaluate_all("els => els.map(e => e.textContent)")
    assert len(values) == 16 and "0.35" in values
    cka = pg.locator(".card", has_text="CKA similarity").first
    assert "rank correlation with the diagram distances -1" in cka.inner_text()


def test_persistence_diagrams_show_in_the_static_export(run_dir, browser, tmp_path):
    out = tmp_path / "export.html"
    export_html(run_dir, out)
    p = open_page(browser)
    try:
        pg = p.open(out.as_uri())
        pg.click(".tab[data-tab='summary']")
        pg.wait_for_selector("svg.diagram")
        wait_until(pg, "() => document.querySelectorAll('svg.diagram').length === 2")
        assert pg.locator("svg.diagram circle.dim1").count() > 0
        assert not p.errors, p.errors
    finally:
        p.ctx.close()


# ------------------------------------------------------------- server mode on a real (tiny) study run


@pytest.fixture(scope="module")
def study_copy(study_run, tmp_path_factory):
    """A copy of conftest's tiny study run (a rebuild here adds a graph; the shared run stays as it is)."""
    import shutil

    dst = tmp_path_factory.mktemp("views-study") / "run"
    shutil.copytree(study_run, dst, ignore=shutil.ignore_patterns("app-cache"))
    srv = serve(dst, port=0, open_browser=False, block=False)
    yield srv
    srv.shutdown()


def study_ids(pg):
    return pg.evaluate("() => advtopo.store.index.graphs.filter(g => !g.recomputed).map(g => g.id)")


def test_the_embedding_leaves_the_graph_room_in_a_2x2_grid(study_copy, page):
    pg = page.open(study_copy.url)
    ids = study_ids(pg)[:4]
    assert len(ids) == 4
    pg.evaluate("ids => advtopo.setPanels(ids)", ids)
    wait_until(pg, "() => document.querySelectorAll('.panel[data-nodes]').length === 4")
    panel = f".panel[data-graph='{ids[0]}']"
    pg.click(f"{panel} .emb-toggle")
    pg.wait_for_selector(f"{panel} .embed[data-state='ready']", timeout=60000)
    ph = pg.locator(panel).bounding_box()["height"]
    gh = pg.locator(f"{panel} svg.graph-svg").bounding_box()["height"]
    eh = pg.locator(f"{panel} svg.emb-svg").bounding_box()["height"]
    assert gh >= 0.35 * ph and gh > eh, (ph, gh, eh)  # was a ~90 px strip under a 210 px scatter


def test_tsne_shows_its_time_and_can_be_cancelled_and_retried(study_copy, page):
    held = []
    pg = page.page
    pg.route("**/api/embedding/**method=tsne*", lambda route: held.append(route))  # the answer is held back
    pg = page.open(study_copy.url)
    gid0 = study_ids(pg)[-1]
    pg.evaluate("ids => advtopo.setPanels(ids)", [gid0])
    panel = f".panel[data-graph='{gid0}']"
    wait_until(pg, f"() => document.querySelector(\"{panel}[data-nodes]\") !== null")
    pg.click(f"{panel} .emb-toggle")
    pg.wait_for_selector(f"{panel} .embed[data-state='ready']", timeout=60000)  # PCA first
    pg.click(f"{panel} .emb-method button[data-m='tsne']")
    pg.wait_for_selector(f"{panel} .emb-progress .emb-elapsed")
    assert "t-SNE" in pg.inner_text(f"{panel} .emb-progress")
    wait_until(pg, f"() => document.querySelector(\"{panel} .emb-elapsed\").textContent !== '0 s'")  # the time runs
    pg.click(f"{panel} .emb-cancel")
    pg.wait_for_selector(f"{panel} .embed[data-state='cancelled']")
    assert "cancelled" in pg.inner_text(f"{panel} .embed")
    # again, and Esc cancels it
    pg.click(f"{panel} .emb-method button[data-m='tsne']")
    pg.wait_for_selector(f"{panel} .embed[data-state='loading']")
    pg.keyboard.press("Escape")
    pg.wait_for_selector(f"{panel} .embed[data-state='cancelled']")
    assert len(held) == 2
    # let it through: the third try draws the scatter
    pg.unroute("**/api/embedding/**method=tsne*")
    pg.click(f"{panel} .emb-method button[data-m='tsne']")
    pg.wait_for_selector(f"{panel} .embed[data-state='ready']", timeout=120000)
    assert "t-SNE" in pg.inner_text(f"{panel} .emb-count")


def test_recompute_form_toast_panel_and_summary(study_copy, page):
    pg = page.open(study_copy.url)
    gid0 = study_ids(pg)[-1]
    pg.evaluate("ids => advtopo.setPanels(ids)", [gid0])
    panel = f".panel[data-graph='{gid0}']"
    wait_until(pg, f"() => document.querySelector(\"{panel}[data-nodes]\") !== null")
    pg.click(f"{panel} button[title='Recompute this graph with other parameters']")
    assert pg.input_value(f"{panel} .recompute [name=eps]") == "auto"  # not the resolved number
    # a bad request: an error toast
    pg.fill(f"{panel} .recompute [name=n_intervals]", "0")
    pg.click(f"{panel} .recompute button")
    pg.wait_for_selector("#toast.err:not(.hidden)")
    # a good one: the new graph, no error left over it, its parameters on its panel
    pg.fill(f"{panel} .recompute [name=n_intervals]", "5")
    pg.click(f"{panel} .recompute button")
    wait_until(pg, "() => advtopo.state.panels.length === 1 && (advtopo.store.entry.get(advtopo.state.panels[0].id) || {}).recomputed === true", timeout=120)
    new = pg.evaluate("() => advtopo.state.panels[0].id")
    assert pg.locator("#toast.err:not(.hidden)").count() == 0
    params = pg.inner_text(f".panel[data-graph='{new}'] .panel-params")
    assert "recomputed" in params and "intervals 5" in params and "eps" in params
    # the Summary marks it
    pg.click(".tab[data-tab='summary']")
    row = pg.locator(f".stats-table tr[data-id='{new}']")
    row.wait_for()
    assert "recomputed" in (row.get_attribute("class") or "") and "recomputed" in row.inner_text()
    assert pg.locator(".stats-table tr.recomputed").count() == 1
    # the one console error is the browser's note on the refused (400) request, which was the point
    assert sum("status of 400" in e for e in page.errors) == 1
    page.errors[:] = [e for e in page.errors if "status of 400" not in e]


def test_pinned_positions_and_alignment_travel_in_the_export_link(run_dir, browser, tmp_path):
    from advtopo.app.data import RunData
    from advtopo.app.export import build_html

    a, b = gid("cnn_std", "fc1", 0.0), gid("cnn_std", "fc1", 0.3)
    state = {"layout": "force", "align": True, "pins": {b: {"n0": [5.0, -7.5]}}}
    out = tmp_path / "pinned.html"
    out.write_bytes(build_html(RunData(run_dir), [a, b], state=json.dumps(state)))
    p = open_page(browser)
    try:
        pg = p.open(out.as_uri())
        assert panel_ids(pg) == [a, b]
        assert pg.is_checked("#align-sweep")
        assert pg.locator(f".panel[data-graph='{b}'] g.node.pinned").count() == 1
        assert pg.get_attribute(f".panel[data-graph='{b}'] g.node.pinned", "data-id") == "n0"
        # the eps-0.3 graph is laid out aligned to eps 0, and its node n0 drawn where its pin maps
        res = pg.evaluate("""g => { const p = advtopo.state.panels[1], t = p.el.querySelector('g.node.pinned').getAttribute('transform');
            return [Object.keys(advtopo.GRAPHS.get(g)._d.layouts), t, p.fx(5.0)]; }""", b)
        assert f"aligned:{a}" in res[0]
        assert abs(float(res[1].split("(")[1].split(",")[0]) - res[2]) < 1e-6
        assert not p.errors, p.errors
    finally:
        p.ctx.close()
