"""Figures out of the app (static/figure.js): a graph panel, the whole comparison grid and a
Summary chart downloaded as SVG and PNG; the SVG parses, names its graph (model, layer, attack,
eps, mapper parameters), draws the legend, has a white background and refers to nothing outside
itself; the PNG is twice the SVG's size."""
from __future__ import annotations

import json
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from advtopo.app import serve
from app_fixture import make_fixture_run
from browser_support import BROWSER_MARKS, Page, browser  # noqa: F401  (fixtures)

pytestmark = BROWSER_MARKS
pytest.importorskip("playwright.sync_api", reason="playwright not installed")
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_fixture_run(tmp_path_factory.mktemp("fig") / "run", n_per_class=4, with_extras=True)


def open_page(browser, url: str) -> Page:
    """A 1500 x 950 page on `url` (recording console errors and failed requests), its graphs drawn."""
    p = Page(browser, 1500, 950, ready_timeout=30000)
    p.open(url).wait_for_selector(".panel g.node", timeout=30000)
    return p


@pytest.fixture(scope="module")
def page(run_dir, browser):
    srv = serve(run_dir, port=0, open_browser=False, block=False)
    p = open_page(browser, srv.url)
    yield p.page
    p.close()
    srv.shutdown()
    assert not p.errors, p.errors


def download(pg, selector: str) -> tuple[str, bytes]:
    with pg.expect_download(timeout=30000) as d:
        pg.locator(selector).first.click()
    dl = d.value
    return dl.suggested_filename, Path(dl.path()).read_bytes()


def check_svg(data: bytes) -> tuple[ET.Element, str]:
    """The parsed SVG and all its text; it refers to nothing outside itself, on white."""
    root = ET.fromstring(data)
    assert root.tag == SVG + "svg"
    for e in root.iter():
        for k, v in e.attrib.items():
            if k.endswith("href"):
                assert v.startswith(("#", "data:")), (k, v)
            assert "url(http" not in v and "url(//" not in v
    first = next(e for e in root if e.tag == SVG + "rect")
    assert first.get("fill") == "#ffffff" and first.get("width") == root.get("width")
    assert root.find(f".//{SVG}svg") is not None  # the chart itself, nested
    return root, " ".join(t.strip() for t in root.itertext() if t.strip())


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def svg_size(root: ET.Element) -> tuple[int, int]:
    return int(root.get("width")), int(root.get("height"))


def test_a_panel_as_svg_and_png(page, run_dir):
    gid = page.locator(".panel").first.get_attribute("data-graph")
    entry = next(e for e in json.loads((run_dir / "index.json").read_text())["graphs"] if e["id"] == gid)
    name, data = download(page, ".panel[data-index='0'] .fig-svg")
    assert name == f"{gid}.svg"
    root, text = check_svg(data)
    assert f"{entry['model']} · {entry['layer']} · {entry['attack']} ε = {entry['eps']:g}" in text
    assert "lens" in text and "cover" in text  # the mapper parameters
    assert "size = members" in text  # the legend
    n_nodes = page.locator(".panel[data-index='0'] g.node").count()
    assert n_nodes > 0 and len(root.findall(f".//{SVG}svg//{SVG}g")) >= n_nodes
    name, png = download(page, ".panel[data-index='0'] .fig-png")
    assert name == f"{gid}.png"
    w, h = svg_size(root)
    assert png_size(png) == (2 * w, 2 * h)


def test_the_whole_grid(page, run_dir):
    entries = {e["id"]: e for e in json.loads((run_dir / "index.json").read_text())["graphs"]}
    gids = [page.locator(".panel").nth(k).get_attribute("data-graph") for k in range(page.locator(".panel").count())]
    assert len(gids) >= 2
    _, data = download(page, "#grid-figure .fig-svg")
    root, text = check_svg(data)
    for gid in gids:
        e = entries[gid]
        assert f"{e['model']} · {e['layer']} · {e['attack']} ε = {e['eps']:g}" in text
    assert len([s for s in root.iter(SVG + "svg")]) >= len(gids) + 1
    _, png = download(page, "#grid-figure .fig-png")
    w, h = svg_size(root)
    assert png_size(png) == (2 * w, 2 * h)


def test_each_summary_chart(page):
    page.click(".tab[data-tab='summary']")
    page.wait_for_selector("#summary .card .fig-svg", timeout=30000)
    cards = page.locator("#summary .card:has(.fig-svg)")
    assert cards.count() >= 2
    for k in range(cards.count()):
        title = cards.nth(k).locator("h3").inner_text().strip()
        if not cards.nth(k).locator("svg").count():
            continue
        with page.expect_download(timeout=30000) as d:
            cards.nth(k).locator(".fig-svg").click()
        root, text = check_svg(Path(d.value.path()).read_bytes())
        assert title in text
        if k == 0:
            with page.expect_download(timeout=30000) as d:
                cards.nth(k).locator(".fig-png").click()
            w, h = svg_size(root)
            assert png_size(Path(d.value.path()).read_bytes()) == (2 * w, 2 * h)
    page.click(".tab[data-tab='graphs']")


def test_figures_from_the_static_export(run_dir, browser, tmp_path):
    from advtopo.app import export_html

    entries = {e["id"]: e for e in json.loads((run_dir / "index.json").read_text())["graphs"]}
    ids = list(entries)[:2]
    p = open_page(browser, export_html(run_dir, tmp_path / "x.html", graph_ids=ids).as_uri())
    pg = p.page
    try:
        _, data = download(pg, "#grid-figure .fig-svg")
        root, text = check_svg(data)
        for gid in ids:
            e = entries[gid]
            assert f"{e['model']} · {e['layer']} · {e['attack']} ε = {e['eps']:g}" in text
        _, png = download(pg, "#grid-figure .fig-png")
        w, h = svg_size(root)
        assert png_size(png) == (2 * w, 2 * h)
        assert not p.errors, p.errors
    finally:
        p.close()
