"""The static export inlines the whole front end: every script index.html loads, in its order."""
from __future__ import annotations

import json
import re

import pytest

from advtopo.app import export_html
from advtopo.app.export import SCRIPT_TAG, _inline_js, inline_page
from advtopo.app.server import STATIC_DIR
from app_fixture import make_fixture_run


def page_scripts() -> list[str]:
    """The scripts index.html loads, in order (paths under static/)."""
    return SCRIPT_TAG.findall((STATIC_DIR / "index.html").read_text(encoding="utf-8"))


def test_index_html_loads_every_front_end_script():
    scripts = page_scripts()
    assert scripts[0] == "vendor/d3.min.js" and scripts[-1] == "app.js"
    assert len(scripts) == len(set(scripts))
    on_disk = {p.relative_to(STATIC_DIR).as_posix() for p in STATIC_DIR.rglob("*.js")}
    assert set(scripts) == on_disk  # a new .js file in static/ must be listed in index.html
    # pure modules come before the scripts that use them
    assert scripts.index("format.js") < scripts.index("state.js") < scripts.index("graphs.js")
    assert scripts.index("colors.js") < scripts.index("urlstate.js")


def _positions_in_order(html: str) -> list[int]:
    found = []
    for rel in page_scripts():
        code = _inline_js((STATIC_DIR / rel).read_text(encoding="utf-8"))
        block = f"<script>{code}</script>"
        assert html.count(block) == 1, rel
        found.append(html.index(block))
    return found


def test_inline_page_inlines_the_scripts_in_page_order():
    html = inline_page("window.ADVTOPO_EMBED={};")
    pos = _positions_in_order(html)
    assert pos == sorted(pos)
    assert html.index("<script>window.ADVTOPO_EMBED={};</script>") < pos[0]
    assert "<script src=" not in html and '<link rel="stylesheet"' not in html
    assert (STATIC_DIR / "app.css").read_text(encoding="utf-8") in html


def test_inline_page_neutralises_closing_script_tags():
    assert _inline_js('s = "</script>";') == 's = "<\\/script>";'
    html = inline_page("1;")
    # one "</script" per block (the data, then each script): no script's text ends its block early
    assert len(re.findall(r"</script", html, flags=re.IGNORECASE)) == len(page_scripts()) + 1


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    return make_fixture_run(tmp_path_factory.mktemp("export") / "run", n_per_class=3, with_extras=False)


def test_export_html_carries_the_data_then_every_script_in_order(small_run, tmp_path):
    out = export_html(small_run, tmp_path / "x.html", images=False)
    html = out.read_text(encoding="utf-8")
    pos = _positions_in_order(html)
    assert pos == sorted(pos)
    data = html.index("<script>window.ADVTOPO_EMBED=")
    assert data < pos[0]
    assert "<script src=" not in html


def test_pooled_lists_are_written_once_and_come_back():
    from advtopo.app.export import POOL_KEY, pack_lists, unpack_lists

    ids = list(range(40))
    lens = [i / 7 for i in range(40)]
    graphs = {"a": {"points": {"sample_id": ids, "lens": lens, "l2": list(lens)}, "nodes": [{"members": [1, 2]}]},
              "b": {"points": {"sample_id": list(ids), "lens": [0.5] * 40}, "params": {"eps": 0.00417715311050415}}}
    pool: list[str] = []
    packed = pack_lists(graphs, pool, {})
    assert len(pool) == 3  # ids once, the two lens columns of "a" once, b's lens
    assert packed["a"]["points"]["sample_id"] == packed["b"]["points"]["sample_id"] == {POOL_KEY: 0}
    assert packed["a"]["nodes"] == [{"members": [1, 2]}]  # short lists stay in place
    back = unpack_lists(packed, [json.loads(p) for p in pool])
    assert back["a"]["points"]["sample_id"] == ids and back["b"]["params"] == graphs["b"]["params"]
    assert back["a"]["points"]["lens"] == pytest.approx(lens, rel=1e-5) and back["a"]["points"]["lens"] != lens


def test_export_pools_the_graphs_and_the_page_unpacks_them(small_run, tmp_path):
    from advtopo.app.export import UNPACK_SCRIPT, unpack_lists
    from advtopo.rundir import Run

    html = export_html(small_run, tmp_path / "x.html", images=False).read_text(encoding="utf-8")
    pool_start = html.index("window.ADVTOPO_POOL=") + len("window.ADVTOPO_POOL=")
    pool = json.loads(html[pool_start:html.index(";" + UNPACK_SCRIPT, pool_start)])
    start = html.index("window.ADVTOPO_EMBED=") + len("window.ADVTOPO_EMBED=")
    embed = json.loads(html[start:html.index(";</script>", start)])
    assert pool and f"{UNPACK_SCRIPT}</script>" in html
    assert html.index("window.ADVTOPO_EMBED=") < pool_start < html.index(UNPACK_SCRIPT) < min(_positions_in_order(html))
    run = Run(small_run)
    for gid, g in embed["graphs"].items():
        got, want = unpack_lists(g, pool), run.graph(gid)
        assert got["points"]["sample_id"] == want["points"]["sample_id"]
        assert [n["members"] for n in got["nodes"]] == [n["members"] for n in want["nodes"]]
