"""The static export inlines the whole front end: every script index.html loads, in its order."""
from __future__ import annotations

import json
import os
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
    nodes = [{"id": f"n{i}", "members": list(range(i, i + 20)), "size": 20} for i in range(5)]
    packed_nodes = pack_lists({"nodes": nodes, "mixed": [{"a": 1}, {"b": 2}, {"a": 3}, {"a": 4}]}, pool, {})
    assert packed_nodes["nodes"]["@rows"] == ["id", "members", "size"] and len(packed_nodes["nodes"]["v"]) == 5
    assert packed_nodes["mixed"] == [{"a": 1}, {"b": 2}, {"a": 3}, {"a": 4}]  # different keys: left as they are
    assert unpack_lists(packed_nodes, [json.loads(p) for p in pool])["nodes"] == nodes
    back = unpack_lists(packed, [json.loads(p) for p in pool])
    assert back["a"]["points"]["sample_id"] == ids and back["b"]["params"] == graphs["b"]["params"]
    assert back["a"]["points"]["lens"] == pytest.approx(lens, rel=1e-5) and back["a"]["points"]["lens"] != lens


def test_export_pools_the_graphs_and_the_page_unpacks_them(small_run, tmp_path):
    from advtopo.app.export import SPRITE_SCRIPT, UNPACK_SCRIPT, unpack_lists
    from advtopo.rundir import Run

    html = export_html(small_run, tmp_path / "x.html", images=False).read_text(encoding="utf-8")
    pool_start = html.index("window.ADVTOPO_POOL=") + len("window.ADVTOPO_POOL=")
    pool = json.loads(html[pool_start:html.index(";" + UNPACK_SCRIPT, pool_start)])
    start = html.index("window.ADVTOPO_EMBED=") + len("window.ADVTOPO_EMBED=")
    embed = json.loads(html[start:html.index(";</script>", start)])
    assert pool and f"{UNPACK_SCRIPT}{SPRITE_SCRIPT}</script>" in html
    assert html.index("window.ADVTOPO_EMBED=") < pool_start < html.index(UNPACK_SCRIPT) < min(_positions_in_order(html))
    run = Run(small_run)
    for gid, g in embed["graphs"].items():
        got, want = unpack_lists(g, pool), run.graph(gid)
        assert got["points"]["sample_id"] == want["points"]["sample_id"]
        assert [n["members"] for n in got["nodes"]] == [n["members"] for n in want["nodes"]]


def _png_pixels(data: bytes) -> "np.ndarray":
    """Pixels of a PNG written by advtopo.app.png (8-bit, filter 0 on every row)."""
    import struct
    import zlib

    import numpy as np

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w, h, ctype = 8, b"", 0, 0, 0
    while pos < len(data):
        n, tag = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if tag == b"IHDR":
            w, h, _, ctype = struct.unpack(">IIBB", body[:10])
        elif tag == b"IDAT":
            idat += body
        pos += 12 + n
    ch = {0: 1, 2: 3, 6: 4}[ctype]
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * ch)
    assert not rows[:, 0].any()
    return rows[:, 1:].reshape(h, w, ch)


def test_adversarial_thumbnails_are_one_sprite_per_set(tmp_path_factory):
    import base64

    from advtopo.rundir import Run

    root = make_fixture_run(tmp_path_factory.mktemp("sprite") / "run", n_per_class=3, with_extras=True)
    html = export_html(root, tmp_path_factory.mktemp("out") / "x.html").read_text(encoding="utf-8")
    start = html.index("window.ADVTOPO_EMBED=") + len("window.ADVTOPO_EMBED=")
    images = json.loads(html[start:html.index(";</script>", start)])["images"]
    run = Run(root)
    assert images["adversarial"] and set(images["sprites"]) == set(images["adversarial"])
    for key, tiles in images["adversarial"].items():
        model, attack, eps = key.split("/")
        arr = run.images(model, attack, eps)
        sp = images["sprites"][key]
        grid = _png_pixels(base64.b64decode(sp["uri"].split(",", 1)[1]))
        assert sorted(tiles.values()) == list(range(len(tiles)))
        for sid, i in tiles.items():
            r, k = divmod(i, sp["cols"])
            tile = grid[r * sp["h"]:(r + 1) * sp["h"], k * sp["w"]:(k + 1) * sp["w"]]
            assert (tile == arr[int(sid)]).all()


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(os.environ.get("ADVTOPO_CHROMIUM", "/usr/bin/chromium")),
                    reason="chromium not installed")
def test_the_page_crops_each_adversarial_thumbnail_from_its_sprite(tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api")
    from advtopo.rundir import Run

    root = make_fixture_run(tmp_path_factory.mktemp("crop") / "run", n_per_class=3, with_extras=False)
    out = export_html(root, tmp_path_factory.mktemp("out") / "x.html")
    run = Run(root)
    entry = next(g for g in run.graph_entries() if g.eps > 0)
    arr = run.images(entry.model, entry.attack, entry.eps)
    sids = [0, 7, len(arr) - 1]
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=os.environ.get("ADVTOPO_CHROMIUM", "/usr/bin/chromium"),
                              args=["--no-sandbox", "--disable-gpu"])
        pg = b.new_page()
        pg.goto(out.as_uri())
        pg.wait_for_selector("body[data-ready='1']", timeout=30000)
        pg.wait_for_function("!!advtopo.data.source.image(0, 'adversarial', "
                             + json.dumps({"model": entry.model, "attack": entry.attack, "eps": entry.eps}) + ")",
                             timeout=30000)  # the sprites decode in the background (data: URIs, milliseconds)
        got = pg.evaluate("""async ([sids, e]) => {
          const out = [];
          for (const sid of sids) {
            const uri = advtopo.data.source.image(sid, "adversarial", e);
            const img = new Image(); img.src = uri; await img.decode();
            const c = document.createElement("canvas"); c.width = img.width; c.height = img.height;
            const ctx = c.getContext("2d"); ctx.drawImage(img, 0, 0);
            const d = ctx.getImageData(0, 0, c.width, c.height).data;
            out.push({ uri: uri.slice(0, 22), w: img.width, h: img.height, red: Array.from(d.filter((_, i) => i % 4 === 0)) });
          }
          return out;
        }""", [sids, {"model": entry.model, "attack": entry.attack, "eps": entry.eps}])
        b.close()
    for sid, g in zip(sids, got):
        assert g["uri"] == "data:image/png;base64,"
        assert (g["h"], g["w"]) == arr.shape[1:3]
        assert g["red"] == arr[sid][..., 0].ravel().tolist()


def test_a_damaged_adversarial_image_file_is_an_error_naming_it(tmp_path_factory):
    from advtopo.errors import AdvtopoError

    root = make_fixture_run(tmp_path_factory.mktemp("dmg") / "run", n_per_class=3, with_extras=False)
    key, rel = next(iter(json.loads((root / "index.json").read_text())["images"]["adversarial"].items()))
    path = root / rel
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(AdvtopoError, match=f"image array '{re.escape(rel)}' is unreadable"):
        export_html(root, tmp_path_factory.mktemp("out") / "x.html")
