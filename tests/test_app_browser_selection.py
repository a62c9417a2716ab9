"""Selection and drill-down in a real browser (Playwright driving Debian's chromium): shift-click
and lasso multi-selection and its CSV, colour / size by a per-sample column of samples.parquet,
the node panel under each Points setting (counts, fooling flows, histograms), thumbnail paging.
Every number is checked against the graph JSON and samples.parquet, computed here in Python.

Also the route behind it, /api/columns/<graph> (app/columns.py), without a browser.
"""
from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest

from advtopo.app import serve
from app_fixture import make_fixture_run
from browser_support import Page, browser, browser_test, page, wait_until  # noqa: F401  (fixtures)

GID = "cnn_std__conv2__pgd__0.1"  # clean and adversarial rows of 100 samples


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_fixture_run(tmp_path_factory.mktemp("brun-selection") / "run")


@pytest.fixture(scope="module")
def server(run_dir):
    srv = serve(run_dir, port=0, open_browser=False, block=False)
    yield srv
    srv.shutdown()


def api(server, path):
    with urllib.request.urlopen(server.url + path.lstrip("/"), timeout=10) as r:
        return json.loads(r.read())


def row_values(run_dir, graph: dict, column: str) -> list[float]:
    """What each point row of `graph` should carry: its sample's value of `column` for its kind
    (clean: eps 0; adversarial: the graph's eps), from samples.parquet."""
    df = pd.read_parquet(run_dir / "samples.parquet")
    df = df[(df["model"] == "cnn_std") & (df["attack"] == "pgd")]
    P = graph["points"]
    out = []
    for sid, adv in zip(P["sample_id"], P["is_adversarial"]):
        sel = df[(df["sample_id"] == sid) & np.isclose(df["eps"], 0.1 if adv else 0.0)]
        out.append(float(sel[column].iloc[0]))
    return out


def open_graph(page, server, gid=GID):
    pg = page.open(server.url + f"#graphs={gid}")
    wait_until(pg, f"document.querySelectorAll(\".panel[data-graph='{gid}'] g.node\").length > 0")
    return pg


def fooled(graph, r):
    P = graph["points"]
    return P["prediction"][r] != P["label"][r]


# ---------------------------------------------------------------------------------------- API
def test_columns_route_gives_each_row_its_own_kind_and_the_first_fooled_eps(server, run_dir):
    g = api(server, f"/api/graph/{GID}")
    doc = api(server, f"/api/columns/{GID}")
    assert doc["n_rows"] == len(g["points"]["sample_id"])
    assert {"confidence", "margin", "loss", "first_fooled_eps"} <= set(doc["columns"])
    assert doc["columns"]["confidence"] == pytest.approx(row_values(run_dir, g, "confidence"))
    df = pd.read_parquet(run_dir / "samples.parquet")
    df = df[(df["model"] == "cnn_std") & (df["attack"] == "pgd")]
    wrong = df[df["prediction"] != df["label"]].groupby("sample_id")["eps"].min()
    want = [float(wrong[s]) if s in wrong.index else None for s in g["points"]["sample_id"]]
    assert doc["columns"]["first_fooled_eps"] == want
    assert any(v is None for v in want) and any(v is not None for v in want)  # both cases occur
    with pytest.raises(urllib.error.HTTPError) as err:
        api(server, "/api/columns/no-such-graph")
    assert err.value.code == 404


# ---------------------------------------------------------------------------------------- browser
@browser_test
def test_shift_click_selection_and_its_csv(server, page, run_dir):
    pg = open_graph(page, server)
    g = api(server, f"/api/graph/{GID}")
    nodes = sorted(g["nodes"], key=lambda n: -len(n["members"]))[:3]
    sel = lambda n: f".panel[data-index='0'] g.node[data-id='{n['id']}']"  # noqa: E731
    pg.click(sel(nodes[0]))
    pg.click(sel(nodes[1]), modifiers=["Shift"])
    pg.click(sel(nodes[2]), modifiers=["Shift"])
    multi = pg.eval_on_selector_all("g.node.multi", "els => els.map(e => e.dataset.id)")
    assert sorted(multi) == sorted(n["id"] for n in nodes)
    rows = sorted({r for n in nodes for r in n["members"]})
    assert pg.inner_text("#ms-nodes") == "3" and pg.inner_text("#ms-rows") == str(len(rows))
    # the CSV of the fooled members, with samples.parquet's columns
    pg.select_option("#ms-filter", "fooled")
    with pg.expect_download() as dl:
        pg.click("#ms-csv")
    text = open(dl.value.path(), encoding="utf-8").read()
    got = list(csv.DictReader(io.StringIO(text)))
    want = [r for r in rows if fooled(g, r)]
    assert want and [int(x["row"]) for x in got] == want
    P = g["points"]
    conf = row_values(run_dir, g, "confidence")
    for x in got:
        r = int(x["row"])
        assert int(x["sample_id"]) == P["sample_id"][r] and int(x["label"]) == P["label"][r]
        assert int(x["prediction"]) == P["prediction"][r] and int(x["is_adversarial"]) == int(P["is_adversarial"][r])
        assert set(x["nodes"].split(";")) == {n["id"] for n in nodes if r in n["members"]}
        assert float(x["confidence"]) == pytest.approx(conf[r])
    # shift-click a selected node again: it leaves the selection
    pg.click(sel(nodes[1]), modifiers=["Shift"])
    assert pg.inner_text("#ms-nodes") == "2"
    rows2 = {r for n in (nodes[0], nodes[2]) for r in n["members"]}
    assert pg.inner_text("#ms-rows") == str(len(rows2))
    # a click on the background clears it
    box = pg.locator(".panel[data-index='0'] svg.graph-svg").bounding_box()
    pg.mouse.click(box["x"] + 3, box["y"] + 3)
    assert pg.locator("g.node.multi").count() == 0
    assert page.errors == []


def node_centres(pg):
    return pg.eval_on_selector_all(
        ".panel[data-index='0'] g.node",
        "els => els.map(e => { const b = e.querySelector('.body').getBoundingClientRect(); return [e.dataset.id, b.x + b.width / 2, b.y + b.height / 2]; })")


@browser_test
def test_lasso_selects_the_nodes_inside(server, page):
    pg = open_graph(page, server)
    box = pg.locator(".panel[data-index='0'] svg.graph-svg").bounding_box()
    # the left half of the panel, as a polygon drawn with shift held
    x0, y0, x1, y1 = box["x"] + 2, box["y"] + 2, box["x"] + box["width"] / 2, box["y"] + box["height"] - 2
    pg.keyboard.down("Shift")
    pg.mouse.move(x0, y0)
    pg.mouse.down()
    for x, y in ((x1, y0), (x1, y1), (x0, y1), (x0, y0 + 1)):
        pg.mouse.move(x, y, steps=4)
    pg.mouse.up()
    pg.keyboard.up("Shift")
    inside = sorted(i for i, x, y in node_centres(pg) if x0 < x < x1 and y0 < y < y1)
    assert 0 < len(inside) < len(node_centres(pg))
    multi = sorted(pg.eval_on_selector_all("g.node.multi", "els => els.map(e => e.dataset.id)"))
    assert multi == inside
    assert pg.inner_text("#ms-nodes") == str(len(inside))
    assert pg.locator(".lasso").count() == 0  # the outline goes when the lasso closes
    assert page.errors == []


@browser_test
@pytest.mark.parametrize("agg", ["mean", "median", "max"])
def test_colour_by_a_samples_column_legend_range_and_hover_value(server, page, run_dir, agg):
    pg = open_graph(page, server)
    g = api(server, f"/api/graph/{GID}")
    wait_until(pg, "!!document.querySelector(\"#color-by option[value='col:confidence']\")")
    pg.select_option("#color-by", "col:confidence")
    pg.select_option("#col-agg", agg)
    conf = row_values(run_dir, g, "confidence")
    f = {"mean": np.mean, "median": np.median, "max": np.max}[agg]
    per_node = {n["id"]: float(f([conf[r] for r in n["members"]])) for n in g["nodes"]}
    wait_until(pg, f"(document.querySelector('#legend .colorbar text') || {{}}).textContent === '{agg} confidence'")
    ticks = [float(t) for t in pg.eval_on_selector_all("#legend .colorbar .tick text", "els => els.map(e => e.textContent)")]
    lo, hi = min(per_node.values()), max(per_node.values())
    assert lo - 1e-9 <= min(ticks) and max(ticks) <= hi + 1e-9  # the axis spans the nodes' values
    node = max(g["nodes"], key=lambda n: len(n["members"]))
    pg.hover(f".panel[data-index='0'] g.node[data-id='{node['id']}']")
    wait_until(pg, "!document.querySelector('#tooltip').classList.contains('hidden')")
    assert f"{agg} confidence {per_node[node['id']]:.3f}" in pg.inner_text("#tooltip")
    # the tooltip shows member images
    assert pg.locator("#tooltip .tip-thumbs img").count() > 0
    # a custom range: the colour bar's axis runs 0..1
    pg.fill("#col-lo", "0")
    pg.fill("#col-hi", "1")
    pg.press("#col-hi", "Enter")
    pg.locator("#col-hi").dispatch_event("change")
    wait_until(pg, "Array.from(document.querySelectorAll('#legend .colorbar .tick text')).map(e => +e.textContent).includes(1)")
    ticks = [float(t) for t in pg.eval_on_selector_all("#legend .colorbar .tick text", "els => els.map(e => e.textContent)")]
    assert min(ticks) == 0 and max(ticks) == 1
    assert page.errors == []


@browser_test
@pytest.mark.parametrize("points", ["both", "clean", "adversarial"])
def test_node_panel_counts_match_the_tooltip_under_each_points_setting(server, page, points):
    pg = open_graph(page, server)
    g = api(server, f"/api/graph/{GID}")
    P = g["points"]
    pg.click(f"#points-mode button[data-v='{points}']")
    keep = {"both": lambda r: True, "clean": lambda r: not P["is_adversarial"][r],
            "adversarial": lambda r: bool(P["is_adversarial"][r])}[points]
    node = max((n for n in g["nodes"] if any(keep(r) for r in n["members"])), key=lambda n: len(n["members"]))
    rows = [r for r in node["members"] if keep(r)]
    loc = f".panel[data-index='0'] g.node[data-id='{node['id']}']"
    pg.hover(loc)
    wait_until(pg, "!document.querySelector('#tooltip').classList.contains('hidden')")
    assert f"{len(rows)} members" in pg.inner_text("#tooltip")
    pg.click(loc)
    pg.wait_for_selector("#d-size")
    assert pg.inner_text("#d-size") == str(len(rows))
    # the fooling flows: every off-diagonal (true, predicted) pair of these rows
    pairs = {(P["label"][r], P["prediction"][r]) for r in rows if P["prediction"][r] != P["label"][r]}
    got = set(pg.eval_on_selector_all("#details table.flows tr[data-flow]", "els => els.map(e => e.dataset.flow)"))
    assert got == {f"{a}-{b}" for a, b in pairs}
    # histograms of the same rows
    assert pg.get_attribute("#d-hists figure.hist[data-name='lens']", "data-n") == str(len(rows))
    wait_until(pg, "!!document.querySelector(\"#d-hists figure.hist[data-name='confidence']\")")
    assert pg.get_attribute("#d-hists figure.hist[data-name='confidence']", "data-n") == str(len(rows))
    assert page.errors == []


@browser_test
def test_thumbnails_page_and_filter(server, page):
    gid = "cnn_std__conv2__pgd__0.3"
    pg = open_graph(page, server, gid)
    g = api(server, f"/api/graph/{gid}")
    P = g["points"]
    node = max(g["nodes"], key=lambda n: len({P["sample_id"][r] for r in n["members"]}))
    sids = list(dict.fromkeys(P["sample_id"][r] for r in node["members"]))
    assert len(sids) > 24, "the fixture needs a node of more than one page"
    pg.click(f".panel[data-index='0'] g.node[data-id='{node['id']}']")
    pg.wait_for_selector("#d-thumbs .pair")
    shown = lambda: [int(x) for x in pg.eval_on_selector_all("#d-thumbs .pair", "els => els.map(e => e.dataset.sid)")]  # noqa: E731
    assert shown() == sids[:24]
    pg.click("#d-thumb-next")
    assert shown() == sids[24:48]
    assert pg.inner_text("#d-thumb-page") == f"25–{min(48, len(sids))} of {len(sids)}"
    pg.click("#d-thumb-prev")
    assert shown() == sids[:24]
    pg.select_option("#d-thumb-filter", "fooled")
    want = list(dict.fromkeys(P["sample_id"][r] for r in node["members"] if P["prediction"][r] != P["label"][r]))
    assert pg.inner_text("#d-thumb-n") == str(len(want))
    assert shown() == want[:24]
    assert page.errors == []


@browser_test
def test_size_by_a_column_and_the_view_comes_back_from_the_url(server, page, browser, run_dir):
    pg = open_graph(page, server)
    g = api(server, f"/api/graph/{GID}")
    wait_until(pg, "!!document.querySelector(\"#size-by option[value='col:loss']\")")
    pg.select_option("#color-by", "col:margin")
    pg.select_option("#col-agg", "median")
    pg.select_option("#size-by", "col:loss")
    # size follows the node's mean loss: the node with the largest has the largest radius
    loss = row_values(run_dir, g, "loss")
    per_node = {n["id"]: float(np.median([loss[r] for r in n["members"]])) for n in g["nodes"]}
    radii = dict(pg.eval_on_selector_all(".panel[data-index='0'] g.node", "els => els.map(e => [e.dataset.id, +e.querySelector('circle.body').getAttribute('r')])"))
    assert max(radii, key=radii.get) == max(per_node, key=per_node.get)
    assert min(radii, key=radii.get) == min(per_node, key=per_node.get)
    assert "size = median loss" in pg.inner_text("#legend")
    pg.fill("#col-lo", "-2")
    pg.fill("#col-hi", "2")
    pg.locator("#col-hi").dispatch_event("change")
    a, b = g["nodes"][0]["id"], g["nodes"][1]["id"]
    pg.click(f".panel[data-index='0'] g.node[data-id='{a}']", modifiers=["Shift"])
    pg.click(f".panel[data-index='0'] g.node[data-id='{b}']", modifiers=["Shift"])
    wait_until(pg, "location.hash.includes('multi')")
    url = pg.url
    # the same link in a new page: colour, size, aggregate, range and the selection come back
    other = Page(browser)
    try:
        p2 = other.open(url)
        wait_until(p2, "document.querySelectorAll('g.node.multi').length === 2")
        wait_until(p2, "document.querySelector('#color-by').value === 'col:margin' && document.querySelector('#size-by').value === 'col:loss'")
        assert p2.input_value("#col-agg") == "median"
        assert (p2.input_value("#col-lo"), p2.input_value("#col-hi")) == ("-2", "2")
        assert sorted(p2.eval_on_selector_all("g.node.multi", "els => els.map(e => e.dataset.id)")) == sorted([a, b])
        assert p2.inner_text("#ms-nodes") == "2"
        wait_until(p2, "(document.querySelector('#legend .colorbar text') || {}).textContent === 'median margin'")
        ticks = [float(t.replace("\u2212", "-")) for t in p2.eval_on_selector_all("#legend .colorbar .tick text", "els => els.map(e => e.textContent)")]
        assert min(ticks) == -2 and max(ticks) == 2
        assert other.errors == []
    finally:
        other.close()
    assert page.errors == []


def test_columns_without_or_with_a_damaged_samples_table(tmp_path):
    """No samples.parquet: no columns (the menus offer none); a damaged one: the reader's error naming it."""
    from advtopo.app.columns import graph_columns
    from advtopo.rundir import ArtefactInvalid, Run

    run = make_fixture_run(tmp_path / "run")
    (run / "samples.parquet").unlink()
    doc = graph_columns(Run(run), GID)
    assert doc["columns"] == {} and doc["n_rows"] > 0
    (run / "samples.parquet").write_bytes(b"not parquet")
    with pytest.raises(ArtefactInvalid, match="samples.parquet is unreadable"):
        graph_columns(Run(run), GID)
