"""AEVis's three levels in a real browser (Playwright driving Debian's chromium), on a tiny
real study run with the datapaths stage on: the class-level card, the layer-level feature maps
(sorted, critical channels marked as the API says), the neuron level (learned feature and top
images), and the static export's note; no console errors, no failed request.

Screenshots go to test-artifacts/. Skipped cleanly when /usr/bin/chromium or playwright is missing.
"""
from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from advtopo.app import export_html, serve
from browser_support import BROWSER_MARKS, Page, browser, wait_until  # noqa: F401  (fixtures)
from test_aevis import aevis_study_config, resnet_study_config

pytestmark = BROWSER_MARKS
pytest.importorskip("playwright.sync_api", reason="playwright not installed")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from advtopo.study import StudyConfig, run_study

    return Path(run_study(StudyConfig.from_dict(aevis_study_config()),
                          out=tmp_path_factory.mktemp("brun-aevis") / "run", verbose=False))


@pytest.fixture(scope="module")
def server(run_dir):
    srv = serve(run_dir, port=0, open_browser=False, block=False)
    yield srv
    srv.shutdown()


def open_page(browser) -> Page:
    """The module's page: 1600 x 1000, full-page screenshots, a longer wait for the first data."""
    return Page(browser, 1600, 1000, ready_timeout=30000, full_page_shots=True)


@pytest.fixture
def page(browser):
    p = open_page(browser)
    yield p
    p.close()


def api(server, path):
    req = urllib.request.Request(server.url + path, headers={"X-Advtopo-Token": server.token})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def test_three_levels_in_the_datapaths_tab(server, page, run_dir):
    dp = json.loads((run_dir / "datapaths.json").read_text())
    eps = f"{dp['eps'][-1]:g}"
    pg = page.open(server.url)
    wait_until(pg, "!document.querySelector('#tab-datapaths').classList.contains('hidden')")
    pg.click("#tab-datapaths")
    # class level: the largest group's stacked bars hold exactly its counts
    wait_until(pg, "!!document.querySelector('#ae-class svg.ae-class-chart')")
    g0 = dp["class_flow"][eps][0]
    for layer in dp["layers"]:
        shown = pg.eval_on_selector_all(f"#ae-class rect.ae-seg[data-layer='{layer}']",
                                        "els => Object.fromEntries(els.map(e => [e.classList[1], +e.dataset.count]))")
        assert shown == g0["layers"][layer]["counts"]
    assert pg.locator("#ae-pair option").count() == len(dp["class_flow"][eps])
    # layer level for the first sample (a detail sample): one row per channel, marked as the API says
    wait_until(pg, "document.querySelectorAll('#ae-layer .ae-grid .ae-ch').length > 0")
    sid = int(pg.get_attribute("#dp-flow", "data-sample"))
    layer = dp["layers"][0]
    want = api(server, f"api/aevis/layer?sample={sid}&layer={layer}&eps={eps}&sort=activation")
    shown = pg.eval_on_selector_all("#ae-layer .ae-ch", "els => els.map(e => +e.dataset.channel)")
    assert shown == [c["channel"] for c in want["channels"]][:len(shown)] and len(shown) == min(48, want["n_channels"])
    n_marked = pg.locator("#ae-layer canvas.ae-map.crit-clean").count()
    assert n_marked == sum(1 for c in want["channels"][:48] if c["critical_clean"])
    assert pg.locator("#ae-layer canvas.ae-map").count() == 3 * len(shown)
    pg.eval_on_selector("#ae-layer", "e => e.scrollIntoView()")
    page.shot("datapaths-aevis-layer")
    # sort by gate value: the order follows max(gate clean, gate adversarial)
    pg.click("#ae-sort button[data-v='gate']")
    want_g = api(server, f"api/aevis/layer?sample={sid}&layer={layer}&eps={eps}&sort=gate")
    first = [c["channel"] for c in want_g["channels"]][:5]
    wait_until(pg, f"JSON.stringify([...document.querySelectorAll('#ae-layer .ae-ch')].slice(0, 5).map(e => +e.dataset.channel)) === '{json.dumps(first, separators=(',', ':'))}'")
    # only the critical channels
    pg.click("#ae-show button[data-v='critical']")
    n_crit = sum(1 for c in want_g["channels"] if c["critical_clean"] or c["critical_adversarial"])
    wait_until(pg, f"document.querySelectorAll('#ae-layer .ae-ch').length === {min(n_crit, 48)}")
    # neuron level: click the first channel -> its learned feature and top images
    ch = int(pg.get_attribute("#ae-layer .ae-ch", "data-channel"))
    pg.click("#ae-layer .ae-ch")
    wait_until(pg, f"!!document.querySelector('.ae-neuron[data-channel=\"{ch}\"] .ae-feature img')")
    top = api(server, f"api/aevis/neuron?layer={layer}&channel={ch}&k=12")["top"]
    shown_top = pg.eval_on_selector_all(".ae-neuron .ae-example", "els => els.map(e => +e.dataset.sid)")
    assert shown_top == [t["sample_id"] for t in top]
    wait_until(pg, "[...document.querySelectorAll('.ae-neuron img')].every(i => i.complete && i.naturalWidth > 0)")
    pg.eval_on_selector("#ae-layer", "e => e.scrollIntoView()")
    page.shot("datapaths-aevis-neuron")
    assert not page.errors, page.errors


def test_static_export_shows_the_class_level_and_a_note(run_dir, browser, tmp_path):
    out = export_html(run_dir, tmp_path / "export.html")
    p = open_page(browser)
    try:
        pg = p.open(Path(out).as_uri())
        pg.click("#tab-datapaths")
        wait_until(pg, "!!document.querySelector('#ae-class svg.ae-class-chart')")
        wait_until(pg, "!!document.querySelector('#ae-layer .ae-note')")
        assert "static export" in pg.inner_text("#ae-layer")
        pg.eval_on_selector("#ae-class", "e => e.scrollIntoView()")
        p.shot("datapaths-aevis-class")
        assert not p.errors, p.errors
    finally:
        p.close()


def test_residual_blocks_show_the_skip_share(browser, tmp_path_factory):
    from advtopo.study import StudyConfig, run_study

    run = Path(run_study(StudyConfig.from_dict(resnet_study_config()),
                         out=tmp_path_factory.mktemp("brun-aevis-res") / "run", verbose=False))
    dp = json.loads((run / "datapaths.json").read_text())
    srv = serve(run, port=0, open_browser=False, block=False)
    p = open_page(browser)
    try:
        pg = p.open(srv.url)
        wait_until(pg, "!document.querySelector('#tab-datapaths').classList.contains('hidden')")
        pg.click("#tab-datapaths")
        wait_until(pg, "!!document.querySelector('#ae-residual table')")
        for block in dp["residual"]["blocks"]:
            cells = pg.eval_on_selector_all(f"#ae-residual tr[data-block='{block}'] td.num", "els => els.map(e => e.textContent)")
            assert cells[0] == f"{dp['residual']['skip_share'][block]['clean']:.3f}"
        # the layer view's labels carry each channel's skip share, as the API gives it
        wait_until(pg, "document.querySelectorAll('#ae-layer .ae-ch .ae-skipv').length > 0")
        sid = int(pg.get_attribute("#dp-flow", "data-sample"))
        v = api(srv, f"api/aevis/layer?sample={sid}&layer={dp['layers'][0]}&eps=0.2&sort=activation")
        c0 = v["channels"][0]
        assert pg.inner_text("#ae-layer .ae-ch .ae-skipv").strip() == f"skip {c0['skip_share_clean']:.2f}/{c0['skip_share_adversarial']:.2f}"
        assert "residual block" in pg.inner_text("#ae-layer .ae-skip")
        pg.eval_on_selector("#ae-residual", "e => e.scrollIntoView()")
        p.shot("datapaths-aevis-residual")
        assert not p.errors, p.errors
    finally:
        p.close()
        srv.shutdown()
