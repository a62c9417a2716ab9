"""The static export inlines the whole front end (every script index.html loads, in its order)
and carries the run's data and thumbnails as one gzip-compressed payload that
static/export/payload.js unpacks in the page."""
from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest

from advtopo.app import export_html
from advtopo.errors import AdvtopoError
from advtopo.app.export import DEFERRED_TYPE, PAYLOAD_ID, PAYLOAD_SCRIPT, SCRIPT_TAG, _inline_js, embedded_data, inline_page
from advtopo.app.server import STATIC_DIR
from app_fixture import make_fixture_run
from browser_support import Page, browser, browser_test, wait_until  # noqa: F401  (fixtures)


def page_scripts() -> list[str]:
    """The scripts index.html loads, in order (paths under static/)."""
    return SCRIPT_TAG.findall((STATIC_DIR / "index.html").read_text(encoding="utf-8"))


def test_index_html_loads_every_front_end_script():
    scripts = page_scripts()
    assert scripts[0] == "vendor/d3.min.js" and scripts[-1] == "app.js"
    assert len(scripts) == len(set(scripts))
    on_disk = {p.relative_to(STATIC_DIR).as_posix() for p in STATIC_DIR.rglob("*.js")}
    # a new .js file in static/ must be listed in index.html, but for static/export/ (export.py inlines those)
    assert set(scripts) == {p for p in on_disk if not p.startswith("export/")}
    assert PAYLOAD_SCRIPT in on_disk and PAYLOAD_SCRIPT not in scripts
    # pure modules come before the scripts that use them
    assert scripts.index("format.js") < scripts.index("state.js") < scripts.index("graphs.js")
    assert scripts.index("colors.js") < scripts.index("urlstate.js")


def _positions_in_order(html: str, deferred: bool = False) -> list[int]:
    found = []
    opening = f'<script type="{DEFERRED_TYPE}">' if deferred else "<script>"
    for rel in page_scripts():
        code = _inline_js((STATIC_DIR / rel).read_text(encoding="utf-8"))
        block = f"{opening}{code}</script>"
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
    pos = _positions_in_order(html, deferred=True)  # held back until the payload is unpacked
    assert pos == sorted(pos)
    data = html.index(f'<script type="application/octet-stream" id="{PAYLOAD_ID}">')
    loader = html.index(f"<script>{_inline_js((STATIC_DIR / PAYLOAD_SCRIPT).read_text(encoding='utf-8'))}")
    assert data < loader < pos[0]
    assert "<script src=" not in html
    outside = re.sub(f'<script type="{DEFERRED_TYPE}">.*?</script>', "", html, flags=re.DOTALL)
    assert outside.count("<script>") == 1  # the loader: no other script runs before the data is in


def _payload(html: str) -> tuple[dict, np.ndarray]:
    """The export's payload as stored: (header {"pool", "embed"} with its lists pooled, pixel bytes)."""
    import zlib

    from advtopo.app.export import PIXELS_ID, decode_7bit

    found = []
    for key in (PAYLOAD_ID, PIXELS_ID):
        start = html.index(f'id="{key}">') + len(f'id="{key}">')
        text = html[start:html.index("</script>", start)]
        assert not set(text) & {"\0", "\r", "<"}  # what the HTML parser would change or stop at
        found.append(zlib.decompress(decode_7bit(text), 31))  # a gzip stream
    return json.loads(found[0]), np.frombuffer(found[1], np.uint8)


def test_7bit_text_carries_any_bytes_in_characters_the_page_keeps():
    from advtopo.app.export import UNSAFE_7BIT, _SevenBitWriter, decode_7bit, encode_7bit

    rng = np.random.default_rng(0)
    cases = [b"", b"\0", b"<", b"\r<", bytes(range(256)), b"\0" * 50] + [rng.bytes(n) for n in range(1, 30)]
    for data in cases:
        text = encode_7bit(data).decode("utf-8")
        assert decode_7bit(text) == data
        assert not set(text) & {"\0", "\r", "<"}
        assert all(ord(ch) < 0x80 or ord(ch) - 0x100 in UNSAFE_7BIT for ch in text)
        assert len(text) == -(-len(data) * 8 // 7)  # one character per 7 bits
    big = rng.bytes(7 * 70000 + 5)
    buf = io.BytesIO()
    writer = _SevenBitWriter(buf)
    for start in range(0, len(big), 100_003):  # pieces of any size, as the compressor gives them
        writer.write(big[start:start + 100_003])
    writer.close()
    assert decode_7bit(buf.getvalue().decode("utf-8")) == big
    with pytest.raises(AdvtopoError, match="damaged"):
        decode_7bit("ab\u00e9")


def test_pooled_lists_are_written_once_and_come_back():
    from advtopo.app.export import DELTA_KEY, POOL_KEY, expand_pool, pack_lists, unpack_lists

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
    # delta=True: increasing integer lists as first + gaps (not the lens, not a list that goes down)
    pool2: list[str] = []
    members = [3, 5, 6, 40] + list(range(100, 112))
    packed2 = pack_lists({"m": members, "ids": ids, "down": ids[::-1], "lens": lens}, pool2, {}, delta=True)
    raw = [json.loads(p) for p in pool2]
    assert raw[packed2["m"][POOL_KEY]] == {DELTA_KEY: [3, 2, 1, 34, 60] + [1] * 11}
    assert raw[packed2["ids"][POOL_KEY]] == {DELTA_KEY: [0] + [1] * 39}
    assert isinstance(raw[packed2["down"][POOL_KEY]], list) and isinstance(raw[packed2["lens"][POOL_KEY]], list)
    back2 = unpack_lists(packed2, expand_pool(raw))
    assert back2["m"] == members and back2["ids"] == ids and back2["down"] == ids[::-1]


def test_export_pools_the_graphs_and_the_page_unpacks_them(small_run, tmp_path):
    from advtopo.app.export import DELTA_KEY, POOL_KEY, expand_pool, unpack_lists
    from advtopo.rundir import Run

    html = export_html(small_run, tmp_path / "x.html", images=False).read_text(encoding="utf-8")
    header, pixels = _payload(html)
    assert any(isinstance(p, dict) and list(p) == [DELTA_KEY] for p in header["pool"])  # sample ids, members
    pool = expand_pool(header["pool"])
    assert pool and len(pixels) == 0
    assert any(v == {POOL_KEY: i} for g in header["embed"]["graphs"].values()
               for v in g["points"].values() for i in range(len(pool)))  # the graphs' columns are pooled
    run = Run(small_run)
    embed = embedded_data(html)
    assert sorted(embed["graphs"]) == sorted(e.id for e in run.graph_entries())
    for gid, g in header["embed"]["graphs"].items():
        for got in (unpack_lists(g, pool), embed["graphs"][gid]):
            want = run.graph(gid)
            assert got["points"]["sample_id"] == want["points"]["sample_id"]
            assert [n["members"] for n in got["nodes"]] == [n["members"] for n in want["nodes"]]


def _png_pixels(data: bytes) -> np.ndarray:
    """Pixels of a PNG written by advtopo.app.png (8-bit, filter 0 on every row)."""
    import struct
    import zlib

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


def test_the_thumbnails_are_the_runs_pixels_adversarial_ones_as_differences(tmp_path_factory):
    import base64

    from advtopo.rundir import Run

    root = make_fixture_run(tmp_path_factory.mktemp("pixels") / "run", n_per_class=3, with_extras=True)
    html = export_html(root, tmp_path_factory.mktemp("out") / "x.html").read_text(encoding="utf-8")
    header, pixels = _payload(html)
    sets = header["embed"]["images"]["pixels"]["sets"]
    run = Run(root)
    clean = run.images()
    cs = sets["clean"]
    size = cs["h"] * cs["w"] * cs["c"]
    clean_tiles = pixels[cs["offset"]:cs["offset"] + len(cs["ids"]) * size].reshape(-1, cs["h"], cs["w"], cs["c"])
    assert (clean_tiles == clean[cs["ids"]]).all()
    adversarial = {k: v for k, v in sets.items() if k != "clean"}
    assert adversarial and set(adversarial) == set(json.loads((root / "index.json").read_text())["images"]["adversarial"])
    for key, st in adversarial.items():
        model, attack, eps = key.split("/")
        arr = run.images(model, attack, eps)
        assert st["base"] == "clean" and st["ids"] == sorted(st["ids"])
        diff = pixels[st["offset"]:st["offset"] + len(st["ids"]) * size].reshape(-1, st["h"], st["w"], st["c"])
        pos = {sid: i for i, sid in enumerate(cs["ids"])}
        assert ((diff + clean_tiles[[pos[s] for s in st["ids"]]]) == arr[st["ids"]]).all()  # uint8: mod 256
    # read back as the page sees them: one PNG data: URI per sample and set, the run's pixels
    embed = embedded_data(html)
    for key, uris in [("clean", embed["images"]["clean"])] + list(embed["images"]["adversarial"].items()):
        arr = clean if key == "clean" else run.images(*key.split("/"))
        assert sorted(map(int, uris)) == sets[key]["ids"]
        for sid, uri in uris.items():
            assert uri.startswith("data:image/png;base64,")
            assert (_png_pixels(base64.b64decode(uri.split(",", 1)[1])) == np.asarray(arr[int(sid)])).all()


def test_the_export_carries_the_per_sample_columns(tmp_path_factory):
    import pandas as pd

    root = make_fixture_run(tmp_path_factory.mktemp("cols") / "run", n_per_class=3, with_extras=False)
    cols = embedded_data(export_html(root, tmp_path_factory.mktemp("out") / "x.html", images=False)
                         .read_text(encoding="utf-8"))["columns"]
    df = pd.read_parquet(root / "samples.parquet")
    assert cols["names"] == ["correct", "confidence", "margin", "loss"] and cols["first_fooled_name"] == "first_fooled_eps"
    assert len(cols["sets"]) == len(df.groupby(["model", "attack", "eps"]))
    for st in cols["sets"]:
        part = df[(df.model == st["model"]) & (df.attack == st["attack"]) & (df.eps == st["eps"])]
        assert st["sample_id"] == part["sample_id"].tolist()
        for name in cols["names"]:
            assert np.allclose(st["values"][name], part[name].astype(float), rtol=1e-5)
    for ff in cols["first_fooled"]:
        mine = df[(df.model == ff["model"]) & (df.attack == ff["attack"])]
        first = mine[mine.prediction != mine.label].groupby("sample_id")["eps"].min()
        assert ff["sample_id"] == first.index.tolist() and ff["eps"] == pytest.approx(first.tolist())


@browser_test
def test_the_page_draws_each_thumbnail_from_the_payloads_pixels(tmp_path_factory, browser):
    from advtopo.rundir import Run

    root = make_fixture_run(tmp_path_factory.mktemp("crop") / "run", n_per_class=3, with_extras=False)
    out = export_html(root, tmp_path_factory.mktemp("out") / "x.html")
    run = Run(root)
    entry = next(g for g in run.graph_entries() if g.eps > 0)
    arr = run.images(entry.model, entry.attack, entry.eps)
    sids = [0, 7, len(arr) - 1]
    p = Page(browser)
    try:
        pg = p.open(out.as_uri())
        got = pg.evaluate("""async ([sids, e]) => {
          const out = [];
          for (const [sid, kind] of sids.flatMap((s) => [[s, "adversarial"], [s, "clean"]])) {
            const uri = advtopo.data.source.image(sid, kind, e);
            const img = new Image(); img.src = uri; await img.decode();
            const c = document.createElement("canvas"); c.width = img.width; c.height = img.height;
            const ctx = c.getContext("2d"); ctx.drawImage(img, 0, 0);
            const d = ctx.getImageData(0, 0, c.width, c.height).data;
            out.push({ uri: uri.slice(0, 22), w: img.width, h: img.height, red: Array.from(d.filter((_, i) => i % 4 === 0)) });
          }
          return out;
        }""", [sids, {"model": entry.model, "attack": entry.attack, "eps": entry.eps}])
        assert p.errors == []
    finally:
        p.close()
    clean = run.images()
    for (sid, image), g in zip([(s, a) for s in sids for a in (arr, clean)], got):
        assert g["uri"] == "data:image/png;base64,"
        assert (g["h"], g["w"]) == image.shape[1:3]
        assert g["red"] == image[sid][..., 0].ravel().tolist()


@browser_test
def test_the_export_opens_offline_with_graphs_thumbnails_diagrams_and_column_colouring(tmp_path_factory, browser):
    """The whole static view from the compressed payload, every network request refused: the
    graphs drawn, a node's member thumbnails (clean and adversarial), the Summary's persistence
    diagrams, and colour by a samples.parquet column with the values the server gives."""
    from advtopo.app.columns import graph_columns
    from advtopo.rundir import Run

    root = make_fixture_run(tmp_path_factory.mktemp("full") / "run", n_per_class=3, with_extras=True)
    run = Run(root)
    gid = next(g.id for g in run.graph_entries() if g.eps > 0)
    out = export_html(root, tmp_path_factory.mktemp("out") / "x.html", graph_ids=[gid])
    p = Page(browser)
    blocked: list[str] = []

    def block(route):
        if route.request.url.startswith(("file:", "data:", "blob:")):
            return route.continue_()
        blocked.append(route.request.url)
        return route.abort()

    p.ctx.route("**/*", block)
    p.ctx.set_offline(True)
    try:
        pg = p.open(out.as_uri())
        g = run.graph(gid)
        assert pg.locator(".panel").count() == 1
        assert pg.locator(".panel[data-index='0'] g.node").count() == len(g["nodes"])
        # a node's members: clean and adversarial thumbnails, all decoded
        node = max(g["nodes"], key=lambda n: len(n["members"]))
        pg.click(f".panel[data-index='0'] g.node[data-id='{node['id']}']")
        pg.wait_for_selector("#details img")
        wait_until(pg, "Array.from(document.querySelectorAll('#details img')).every(i => i.complete && i.naturalWidth > 0)")
        srcs = pg.eval_on_selector_all("#details img", "els => els.map(e => e.getAttribute('src'))")
        assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
        # colour by a per-sample column: the options, the per-row values of /api/columns, the legend
        want = graph_columns(run, gid)["columns"]
        wait_until(pg, "!!document.querySelector(\"#color-by option[value='col:confidence']\")")
        options = pg.eval_on_selector_all("#color-by optgroup.cols option", "els => els.map(e => e.value)")
        assert options == [f"col:{n}" for n in want]
        pg.select_option("#color-by", "col:confidence")
        wait_until(pg, "(document.querySelector('#legend .colorbar text') || {}).textContent === 'mean confidence'")
        got = pg.evaluate(f"advtopo.samplecols.columns({json.dumps(gid)})")
        assert list(got) == list(want)
        for name, values in want.items():
            assert [v is None for v in got[name]] == [v is None for v in values], name
            assert [v for v in got[name] if v is not None] == pytest.approx([v for v in values if v is not None], rel=1e-5), name
        fills = pg.eval_on_selector_all(".panel[data-index='0'] g.node circle.body",
                                        "els => new Set(els.map(e => e.getAttribute('fill'))).size")
        assert fills > 1  # coloured by the values, not one colour
        # the Summary's persistence diagrams
        pg.click("button.tab[data-tab='summary']")
        wait_until(pg, "document.querySelectorAll('svg.diagram').length > 0")
        assert pg.locator("svg.diagram circle").count() > 0
        assert blocked == [] and p.errors == []
    finally:
        p.close()


@browser_test
def test_a_browser_without_decompressionstream_is_told_so(small_run, tmp_path, browser):
    out = export_html(small_run, tmp_path / "x.html", images=False)
    p = Page(browser)
    try:
        p.page.add_init_script("delete window.DecompressionStream;")
        p.page.goto(out.as_uri())
        p.page.wait_for_selector("body[data-ready='error']")
        assert "DecompressionStream" in p.page.inner_text("#run-info")
        assert p.page.evaluate("typeof window.advtopo.store") == "undefined"  # the app did not start half-way
    finally:
        p.close()


def test_the_export_without_or_with_a_damaged_samples_table(tmp_path_factory):
    """No samples.parquet: an export without column tables (the menus offer none); a damaged
    one: the reader's error naming it (as for a damaged image file)."""
    root = make_fixture_run(tmp_path_factory.mktemp("nosamples") / "run", n_per_class=3, with_extras=False)
    (root / "samples.parquet").unlink()
    out = tmp_path_factory.mktemp("out")
    embed = embedded_data(export_html(root, out / "x.html", images=False).read_text(encoding="utf-8"))
    assert "columns" not in embed and embed["graphs"]
    (root / "samples.parquet").write_bytes(b"not parquet")
    with pytest.raises(AdvtopoError, match="samples.parquet is unreadable"):
        export_html(root, out / "y.html", images=False)
    assert not (out / "y.html").exists()


def test_a_damaged_adversarial_image_file_is_an_error_naming_it(tmp_path_factory):
    root = make_fixture_run(tmp_path_factory.mktemp("dmg") / "run", n_per_class=3, with_extras=False)
    key, rel = next(iter(json.loads((root / "index.json").read_text())["images"]["adversarial"].items()))
    path = root / rel
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(AdvtopoError, match=f"image array '{re.escape(rel)}' is unreadable"):
        export_html(root, tmp_path_factory.mktemp("out") / "x.html")
