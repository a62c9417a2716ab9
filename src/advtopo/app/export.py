"""Static export: one self-contained HTML file (data, code, styles and thumbnails inline).

The file makes no network request: d3, the app's scripts (all that index.html loads, in its
order) and stylesheet are inlined. The data (index, graphs, shapes, diagrams, per-sample
columns...) and the thumbnails' raw pixels travel gzip-compressed, 7 bits per character
(encode_7bit), in ``<script id="advtopo-payload">`` and ``<script id="advtopo-pixels">``;
``static/export/payload.js`` unpacks them with the browser's ``DecompressionStream`` and then
runs the app's scripts (held back as ``text/x-advtopo-deferred`` blocks). It opens from disk
in any modern browser.
"""
from __future__ import annotations

import base64
import io
import itertools
import json
import math
import re
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from advtopo.errors import AdvtopoError
from advtopo.mapper.shape import graph_shape
from advtopo.rundir import ArtefactMissing, layout
from advtopo.utils.io import atomic_path, strict_dumps

from .columns import FIRST_FOOLED, measure_columns
from .data import NotFound, RunData
from .png import encode_png

STATIC_DIR = Path(__file__).resolve().parent / "static"  # the front end (the server serves the same files)
PIXEL_BUDGET = 128 * 1024 * 1024  # raw thumbnail pixel bytes at most (the page holds them uncompressed)
PAYLOAD_ID = "advtopo-payload"  # the <script> element holding the compressed data (payload.js reads it)
PIXELS_ID = "advtopo-pixels"  # the one holding the thumbnails' compressed pixels
DEFERRED_TYPE = "text/x-advtopo-deferred"  # the app's scripts in the export: payload.js runs them once the data is in
PAYLOAD_SCRIPT = "export/payload.js"  # under static/: used by the export only (not listed in index.html)
GZIP_LEVEL = 9
POOL_MIN_LENGTH = 16  # lists of scalars at least this long are written once and referenced (see pack_lists)
POOL_KEY = "@pool"
ROWS_KEY = "@rows"  # a list of dicts with the same keys, written as {ROWS_KEY: keys, "v": [values...]}
ROWS_MIN_LENGTH = 4
DELTA_KEY = "d"  # a pooled list of increasing integers as {"d": [first, gaps...]} (pack_lists(delta=True))
POOL_FLOAT_DIGITS = 6  # significant digits of the floats in pooled lists (per-point/per-node values)
# embedded_page's (the notebook's) pooled lists put back right after its data (a copy per use: the
# app may mutate them); the run export's payload.js does the same for its payload.
UNPACK_SCRIPT = (
    "(function(){var P=window.ADVTOPO_POOL,E=window.ADVTOPO_EMBED;if(!P||!E)return;"
    "function un(x){if(Array.isArray(x)){for(var i=0;i<x.length;i++)x[i]=un(x[i]);return x}"
    "if(x&&typeof x==='object'){var k=Object.keys(x);"
    "if(k.length===1&&k[0]==='" + POOL_KEY + "')return P[x['" + POOL_KEY + "']].slice();"
    "if(k.length===2&&k[0]==='" + ROWS_KEY + "'&&k[1]==='v'){var ks=x['" + ROWS_KEY + "'];"
    "return x.v.map(function(r){var o={};for(var q=0;q<ks.length;q++)o[ks[q]]=un(r[q]);return o})}"
    "for(var j=0;j<k.length;j++)x[k[j]]=un(x[k[j]])}return x}"
    "E.graphs=un(E.graphs);E.shape=un(E.shape);delete window.ADVTOPO_POOL})();")
STYLESHEET_TAG = '<link rel="stylesheet" href="static/app.css">'
SCRIPT_TAG = re.compile(r'<script src="static/([^"]+)"></script>')  # the page's scripts, vendor/ included


def _script_json(obj: Any) -> str:
    """JSON safe to place inside <script>: no '</', no U+2028/9 surprises."""
    s = strict_dumps(obj)
    return s.replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("<!--", "<\\!--")


def _inline_js(src: str) -> str:
    return src.replace("</script", "<\\/script")


def build_html(run: RunData, graph_ids: list[str] | None = None, state: str | None = None,
               images: bool = True) -> bytes:
    """The static export of ``graph_ids`` (all graphs by default) as one HTML page."""
    buf = io.BytesIO()
    write_page(buf, *_export_parts(run, graph_ids, state, images))
    return buf.getvalue()


def _export_parts(run: RunData, graph_ids: list[str] | None, state: str | None,
                  images: bool) -> tuple[dict[str, Any], list[str], list[Callable[[], np.ndarray]]]:
    """(embed, pool, pixel chunks) of an export (see write_page)."""
    index = run.index()
    all_ids = [g["id"] for g in index["graphs"] if isinstance(g, dict) and "id" in g]
    ids = list(dict.fromkeys(graph_ids)) if graph_ids else all_ids
    for gid in ids:
        if gid not in all_ids:
            raise NotFound(f"unknown graph {gid!r}")
    wanted = set(ids)
    idx = dict(index)
    idx["graphs"] = [g for g in index["graphs"] if isinstance(g, dict) and g.get("id") in wanted]
    idx["app"] = {"mode": "static", "recompute": {"available": False, "reason": "static export"}}
    pool: list[str] = []
    refs: dict[str, int] = {}
    graphs: dict[str, Any] = {}
    shapes: dict[str, Any] = {}
    sids: set[int] = set()
    for gid in ids:  # one graph at a time: only its pooled form stays (export_html's reader caches one graph)
        g = run.reader.graph(gid)
        shapes[gid] = pack_lists(graph_shape(g), pool, refs, delta=True)  # loops and branch points (TopoAct)
        graphs[gid] = pack_lists(g, pool, refs, delta=True)
        sids.update(int(s) for s in (g.get("points", {}).get("sample_id") or []))
    vul = run.vulnerability()
    dp = run.datapaths()
    embed: dict[str, Any] = {"index": idx, "graphs": graphs, "shape": shapes, "vulnerability": vul, "images": {}}
    embed["diagrams"] = _diagrams(run, idx)  # the Summary's persistence diagrams
    if dp.get("available"):
        embed["datapaths"] = dp
    from advtopo.study.actgraph import app_document

    ag = app_document(run.reader)  # activation_graph.json, when the run has one
    if ag.get("available"):
        embed["activation_graph"] = ag
    combos = {(g.model, g.attack) for g in run.reader.graph_entries() if g.id in wanted}
    columns = _column_tables(run, combos)  # colour / size by a per-sample column (static/export/payload.js)
    if columns:
        embed["columns"] = pack_lists(columns, pool, refs, delta=True)
    if state:
        try:
            embed["state"] = json.loads(state)
        except ValueError:
            pass
    st = embed.setdefault("state", {})
    if isinstance(st, dict) and not st.get("graphs"):
        st["graphs"] = ids[:4] if graph_ids else []
    chunks: list[Callable[[], np.ndarray]] = []
    if images:
        embed["images"], chunks = _thumbnails(run, wanted, sids, vul, dp if dp.get("available") else None)
    return embed, pool, chunks


_PAYLOAD_MARK = "\0payload\0"


def write_page(out: BinaryIO, embed: dict[str, Any], pool: list[str], chunks: list[Callable[[], np.ndarray]]) -> None:
    """Write the export's page to ``out``: the JSON header ``{"pool", "embed"}`` (``embed``'s
    lists pooled in ``pool``, see pack_lists) gzip-compressed in the PAYLOAD_ID element, the
    pixels its images point into (``chunks``: each gives one image set's bytes) gzip-compressed
    in the PIXELS_ID element, both 7 bits per character (encode_7bit); the app's scripts wait
    for static/export/payload.js to unpack them. Two streams because deflate's run-length
    strategy suits the pixels (demo: 7.7 MB in 0.2 s vs 8.2 MB in 11 s at level 9) and not the
    JSON. Streamed: neither is ever whole in memory."""
    loader = (f'<script type="application/octet-stream" id="{PAYLOAD_ID}">{_PAYLOAD_MARK}</script>\n'
              f'<script type="application/octet-stream" id="{PIXELS_ID}">{_PAYLOAD_MARK}</script>\n'
              f"<script>{_inline_js(_static_text(PAYLOAD_SCRIPT))}\nadvtopo.payload.load();</script>\n")
    head, middle, tail = inline_page("", before_scripts=loader, deferred=True).split(_PAYLOAD_MARK)
    out.write(head.encode("utf-8"))
    text = _SevenBitWriter(out)
    gz = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # wbits 31: the gzip container DecompressionStream reads
    # the header {"pool": [...], "embed": ...}, the pool fed a list at a time (not joined: ~7 MB on the demo run)
    text.write(gz.compress(b'{"pool":['))
    for i, item in enumerate(pool):  # the pool's texts are ASCII (_script_json escapes the rest)
        text.write(gz.compress((b"," if i else b"") + item.encode("ascii")))
    text.write(gz.compress(b'],"embed":' + strict_dumps(embed).encode("utf-8") + b"}"))
    text.write(gz.flush())
    text.close()
    out.write(middle.encode("utf-8"))
    text = _SevenBitWriter(out)
    gz = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31, 9, zlib.Z_RLE)
    for chunk in chunks:  # one image set in memory at a time
        text.write(gz.compress(np.ascontiguousarray(chunk(), dtype=np.uint8).tobytes()))
    text.write(gz.flush())
    text.close()
    out.write(tail.encode("utf-8"))


# Characters a script element's raw text changes or ends on: NUL (becomes U+FFFD), CR (becomes
# LF) and '<' (may start "</script"). A 7-bit group with one of these values is written as the
# 2-byte character U+0100 + value instead.
UNSAFE_7BIT = (0, 13, 60)
_SEVEN_BIT_WEIGHTS = np.array([64, 32, 16, 8, 4, 2, 1], dtype=np.uint8)


def encode_7bit(data: bytes) -> bytes:
    """``data`` as UTF-8 text carrying 7 bits per character (decode_7bit, payload.js's
    from7bit undo it): the bits in order, cut into 7-bit groups (the last padded with zeros),
    each group the ASCII character of its value, or U+0100 + value for the UNSAFE_7BIT ones.
    Why: base64 carries 6 bits per byte (+33 %); this about 6.84 (+17 %) and stays valid UTF-8
    that the HTML parser leaves as it is. Chunks of a stream must be multiples of 7 bytes."""
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    bits = np.concatenate([bits, np.zeros(-len(bits) % 7, dtype=np.uint8)])
    groups = bits.reshape(-1, 7) @ _SEVEN_BIT_WEIGHTS if len(bits) else np.zeros(0, dtype=np.uint8)
    unsafe = np.isin(groups, UNSAFE_7BIT)
    ends = np.cumsum(1 + unsafe)
    starts = ends - (1 + unsafe)
    out = np.empty(int(ends[-1]) if len(ends) else 0, dtype=np.uint8)
    out[starts[~unsafe]] = groups[~unsafe]
    code = 0x100 + groups[unsafe].astype(np.int32)  # UTF-8 110xxxxx 10xxxxxx
    out[starts[unsafe]] = 0xC0 | (code >> 6)
    out[starts[unsafe] + 1] = 0x80 | (code & 0x3F)
    return out.tobytes()


def decode_7bit(text: str) -> bytes:
    """The bytes encode_7bit wrote as ``text``."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    if (codes >= 0x180).any() or ((codes >= 0x80) & (codes < 0x100)).any():
        raise AdvtopoError("the export's payload holds a character that 7-bit text never has: the file is damaged")
    groups = np.where(codes >= 0x100, codes - 0x100, codes).astype(np.uint8)
    bits = np.unpackbits(groups[:, None], axis=1)[:, 1:].ravel()
    return np.packbits(bits[:len(bits) // 8 * 8]).tobytes()


class _SevenBitWriter:
    """encode_7bit of the bytes written to it, streamed to ``out`` (whole 7-byte groups as they come)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out, self.rest = out, b""

    BLOCK = 7 * 65536  # bytes encoded at a time (the bit arrays are 8-16x that)

    def write(self, data: bytes) -> None:
        data = self.rest + data
        cut = len(data) - len(data) % 7
        for start in range(0, cut, self.BLOCK):
            self.out.write(encode_7bit(data[start:min(cut, start + self.BLOCK)]))
        self.rest = data[cut:]

    def close(self) -> None:
        self.out.write(encode_7bit(self.rest))
        self.rest = b""


def embedded_data(html: str | bytes) -> dict[str, Any]:
    """What an export page's ``window.ADVTOPO_EMBED`` holds once static/export/payload.js has
    unpacked it: lists unpooled, ``images.clean`` / ``images.adversarial[key]`` as
    {sample id: PNG data: URI}. For tests and for reading an export back in Python."""
    text = html.decode("utf-8") if isinstance(html, bytes) else html
    found = {}
    for key in (PAYLOAD_ID, PIXELS_ID):
        m = re.search(f'<script type="application/octet-stream" id="{key}">([^<]*)</script>', text)
        if m is None:
            raise AdvtopoError(f"this page holds no advtopo export payload (no {key!r} element)")
        found[key] = zlib.decompress(decode_7bit(m.group(1)), 31)
    meta = json.loads(found[PAYLOAD_ID].decode("utf-8"))
    pixels = np.frombuffer(found[PIXELS_ID], dtype=np.uint8)
    embed = unpack_lists(meta["embed"], expand_pool(meta.get("pool") or []))
    im = embed.get("images") or {}
    px = im.pop("pixels", None)
    if px:
        sets = px.get("sets") or {}
        tiles = {key: _set_tiles(pixels, st, sets.get(st.get("base"))) for key, st in sets.items()}
        im["clean"] = tiles.pop("clean", {})
        im["adversarial"] = tiles
    return embed


def _set_tiles(pixels: np.ndarray, st: dict, base: dict | None) -> dict[str, str]:
    h, w, c = st["h"], st["w"], st["c"]
    size = h * w * c
    arr = pixels[st["offset"]:st["offset"] + len(st["ids"]) * size].reshape(-1, h, w, c)
    if base is not None:
        pos = {sid: i for i, sid in enumerate(base["ids"])}
        b = pixels[base["offset"]:base["offset"] + len(base["ids"]) * size].reshape(-1, h, w, c)
        arr = arr + b[[pos[s] for s in st["ids"]]]  # uint8: wraps mod 256, as the page does
    return {str(sid): "data:image/png;base64," + base64.b64encode(encode_png(arr[i])).decode("ascii")
            for i, sid in enumerate(st["ids"])}


def embedded_page(embed: dict[str, Any]) -> str:
    """A self-contained page for ``embed`` (window.ADVTOPO_EMBED: index, graphs, shape, ...) as
    plain JSON, its graphs' and shapes' long lists pooled (pack_lists); no images. Used by
    advtopo.app.notebook (one graph in an iframe's srcdoc); the run export is build_html."""
    pool: list[str] = []
    refs: dict[str, int] = {}
    embed = dict(embed)
    embed["graphs"] = pack_lists(embed.get("graphs") or {}, pool, refs)
    embed["shape"] = pack_lists(embed.get("shape") or {}, pool, refs)
    return inline_page(f"window.ADVTOPO_EMBED={_script_json(embed)};",
                       after_data=f"window.ADVTOPO_POOL=[{','.join(pool)}];{UNPACK_SCRIPT}")


def _diagrams(run: RunData, index: dict) -> dict[str, dict]:
    """The persistence diagrams the Summary's card draws (per model and layer: the lowest and the
    highest eps), so the card shows in the export too. A diagram the run lacks is left out; a
    damaged one is an error naming it."""
    listed = (index.get("persistence") or {}).get("diagrams") or {}
    groups: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for key in listed if isinstance(listed, dict) else []:
        parts = key.split("/")
        try:
            eps = float(parts[-1])
        except ValueError:
            continue
        if len(parts) >= 4:
            groups.setdefault(("/".join(parts[:-3]), parts[-3]), []).append((eps, key))
    out: dict[str, dict] = {}
    for items in groups.values():
        items.sort()
        for _, key in dict.fromkeys([items[0], items[-1]]):
            try:
                out[key] = run.diagram(key)
            except ArtefactMissing:
                continue
    return out


def pack_lists(obj: Any, pool: list[str], refs: dict[str, int], delta: bool = False) -> Any:
    """``obj`` with every list of scalars of POOL_MIN_LENGTH items or more replaced by
    ``{POOL_KEY: i}``, ``pool[i]`` its JSON text, each distinct list written once.

    Why: the graphs of one (model, layer, attack, eps) share their points' columns (ids, labels,
    predictions, flags, lens), and many graphs share them across layers: written once, the
    demo run's export drops most of its graph bytes. A list of dicts with the same keys (nodes,
    edges) is written as its keys once and each dict's values. Floats in pooled lists (lens, L2,
    purities, k-distances: float32 data shown with 2-4 digits) keep POOL_FLOAT_DIGITS
    significant digits; the rest is exact (UNPACK_SCRIPT undoes the pooling). ``delta``: a
    list of increasing integers (node members, sample ids) is pooled as ``{DELTA_KEY: [first,
    gaps...]}`` (expand_pool undoes it): small gaps compress better (demo: 2.0 -> 1.4 MB)."""
    if isinstance(obj, dict):
        return {k: pack_lists(v, pool, refs, delta) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        if len(obj) >= POOL_MIN_LENGTH and not any(isinstance(v, (dict, list, tuple)) for v in obj):
            values = [_round(v) for v in obj]
            if delta and all(type(v) is int for v in values) and all(a < b for a, b in itertools.pairwise(values)):
                text = _script_json({DELTA_KEY: values[:1] + [b - a for a, b in itertools.pairwise(values)]})
            else:
                text = _script_json(values)
            i = refs.get(text)
            if i is None:
                i = refs[text] = len(pool)
                pool.append(text)
            return {POOL_KEY: i}
        if (len(obj) >= ROWS_MIN_LENGTH and all(isinstance(v, dict) for v in obj)
                and all(list(v) == list(obj[0]) for v in obj)):
            keys = list(obj[0])
            return {ROWS_KEY: keys, "v": [[pack_lists(v[k], pool, refs, delta) for k in keys] for v in obj]}
        return [pack_lists(v, pool, refs, delta) for v in obj]
    return obj


def expand_pool(pool: list[Any]) -> list[list]:
    """The parsed pool of pack_lists(delta=True) with each ``{DELTA_KEY: ...}`` list summed back."""
    return [list(itertools.accumulate(p[DELTA_KEY])) if isinstance(p, dict) else p for p in pool]


def _round(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.{POOL_FLOAT_DIGITS}g}")
    return value


def unpack_lists(obj: Any, pool: list[Any]) -> Any:
    """The inverse of pack_lists, ``pool`` holding the parsed lists (what UNPACK_SCRIPT does)."""
    if isinstance(obj, dict):
        if len(obj) == 1 and POOL_KEY in obj:
            return list(pool[obj[POOL_KEY]])
        if list(obj) == [ROWS_KEY, "v"]:
            return [{k: unpack_lists(v, pool) for k, v in zip(obj[ROWS_KEY], row)} for row in obj["v"]]
        return {k: unpack_lists(v, pool) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unpack_lists(v, pool) for v in obj]
    return obj


def inline_page(data_script: str, after_data: str = "", before_scripts: str = "", deferred: bool = False) -> str:
    """index.html with its stylesheet and every script it loads inlined, in the order the page
    lists them (index.html is the one list of the front end's files); ``data_script`` (then
    ``after_data``, in a script of its own; each left out when empty), then the ``before_scripts``
    markup, come before the first of them. ``deferred``: the scripts are written as
    DEFERRED_TYPE blocks, which the browser does not run (static/export/payload.js runs them)."""
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    if STYLESHEET_TAG not in html:
        raise RuntimeError(f"index.html lacks {STYLESHEET_TAG!r}")
    css = (STATIC_DIR / "app.css").read_text(encoding="utf-8")
    html = html.replace(STYLESHEET_TAG, f"<style>\n{css}\n</style>")
    first = SCRIPT_TAG.search(html)
    if first is None:
        raise RuntimeError("index.html loads no script from static/")
    opening = f'<script type="{DEFERRED_TYPE}">' if deferred else "<script>"
    scripts = SCRIPT_TAG.sub(lambda m: f"{opening}{_inline_js(_static_text(m.group(1)))}</script>", html[first.start():])
    head = f"<script>{data_script}</script>\n" if data_script else ""
    head += f"<script>{_inline_js(after_data)}</script>\n" if after_data else ""
    return html[:first.start()] + head + before_scripts + scripts


def _static_text(rel: str) -> str:
    path = (STATIC_DIR / rel).resolve()
    if not path.is_relative_to(STATIC_DIR.resolve()) or not path.is_file():
        raise RuntimeError(f"index.html loads static/{rel}, which is not a file in {STATIC_DIR}")
    return path.read_text(encoding="utf-8")


def _thumbnails(run: RunData, graph_ids: set[str], sids: set[int], vul: dict,
                datapaths: dict | None = None) -> tuple[dict, list[Callable[[], np.ndarray]]]:
    """The thumbnails as raw pixels: ``({"pixels": {"sets": {key: {offset, ids, h, w, c[, base]}}}},
    chunks)`` (each chunk gives one set's bytes when called), one set for the clean images of
    every sample in the graphs (``sids``, plus the vulnerable and datapaths samples) and one per
    adversarial (model, attack, eps) of the exported graphs and of the datapaths. An adversarial set whose samples all have a clean
    image holds each image minus its clean one, mod 256 (``base: "clean"``): PGD's noise leaves
    deflate little, the differences a little more (demo: 9.4 -> 8.0 MB compressed). At most
    PIXEL_BUDGET bytes (then ``truncated``); a set the run lacks is skipped, a damaged image file
    is an error naming it."""
    want_clean = set(sids)
    for s in vul.get("samples", [])[:100] if isinstance(vul.get("samples"), list) else []:
        if isinstance(s, dict) and isinstance(s.get("sample_id"), int):
            want_clean.add(s["sample_id"])
    dp_sids: set[int] = set()
    dp_combos: set[tuple] = set()
    if datapaths:
        dp_sids = {int(s["sample_id"]) for s in datapaths.get("samples") or []
                   if isinstance(s, dict) and isinstance(s.get("sample_id"), int) and s["sample_id"] >= 0}
        dp_combos = {(datapaths.get("model"), datapaths.get("attack"), e) for e in datapaths.get("eps") or []}
    want_clean |= dp_sids
    combos = {(g.model, g.attack, g.eps) for g in run.reader.graph_entries() if g.id in graph_ids}
    sets: dict[str, dict] = {}
    chunks: list[Callable[[], np.ndarray]] = []
    out: dict[str, Any] = {"pixels": {"sets": sets}}
    used = 0

    def add(key: str, arr: np.ndarray, ids: list[int], base: dict | None) -> bool:
        nonlocal used
        h, w, c = (int(v) for v in arr.shape[1:])
        nbytes = len(ids) * h * w * c
        if used + nbytes > PIXEL_BUDGET:
            out["truncated"] = True
            return False
        sets[key] = {"offset": used, "ids": ids, "h": h, "w": w, "c": c, **({"base": "clean"} if base else {})}

        def tiles() -> np.ndarray:
            got = np.asarray(arr[ids], dtype=np.uint8)
            if base is None:
                return got
            return got - np.asarray(base["array"][ids], dtype=np.uint8)  # mod 256: the page adds it back

        chunks.append(tiles)
        used += nbytes
        return True

    base = None
    try:
        clean = run.reader.images()
    except ArtefactMissing:  # no clean images in this run
        clean = None
    if clean is not None:
        ids = [i for i in sorted(want_clean) if 0 <= i < clean.shape[0]]
        if ids and add("clean", clean, ids, None):
            base = {"array": clean, "ids": set(ids), "shape": clean.shape[1:]}
    for key in (run.reader.index.get("images") or {}).get("adversarial") or {}:
        parts = layout.split_adversarial_images_key(key)
        if parts is None:
            continue
        match = lambda cs: any((m, a) == parts[:2] and layout.eps_equal(eps, parts[2]) for m, a, eps in cs)  # noqa: E731
        want = (sids if match(combos) else set()) | (dp_sids if match(dp_combos) else set())
        if not want:
            continue
        try:
            arr = run.reader.images(*parts)
        except ArtefactMissing:  # not in this run; a damaged image file is an error
            continue
        ids = [i for i in sorted(want) if 0 <= i < arr.shape[0]]
        if not ids:
            continue
        diff = base if base is not None and base["shape"] == arr.shape[1:] and base["ids"].issuperset(ids) else None
        if not add(key, arr, ids, diff):
            break
    return out, chunks


def _column_tables(run: RunData, combos: set[tuple[str, str]]) -> dict[str, Any] | None:
    """samples.parquet's measures per (model, attack, eps) of the exported graphs' (model, attack)
    and each sample's first-fooled eps, from which static/export/payload.js gives a graph the
    per-row columns the server's /api/columns gives (app/columns.py: colour / size by a column).
    Why per sample and not per row: the graphs share their samples (demo: 28,000 sample rows
    for 168 graphs of up to 8,000 rows). None when the run has no samples.parquet."""
    try:
        df = run.reader.samples
    except ArtefactMissing:
        return None
    if df.empty:
        return None
    names = measure_columns(df)
    sets: list[dict] = []
    first_fooled: list[dict] = []
    for (model, attack), mine in df.groupby(["model", "attack"], sort=True):
        if (model, attack) not in combos:
            continue
        for eps, part in mine.groupby("eps", sort=True):
            part = part.drop_duplicates("sample_id")
            sets.append({"model": model, "attack": attack, "eps": float(eps),
                         "sample_id": [int(v) for v in part["sample_id"]],
                         "values": {n: _finite_or_none(part[n].to_numpy(dtype=float)) for n in names}})
        first = mine[mine["prediction"] != mine["label"]].groupby("sample_id")["eps"].min()
        first_fooled.append({"model": model, "attack": attack, "sample_id": [int(v) for v in first.index],
                             "eps": _finite_or_none(first.to_numpy(dtype=float))})
    if not sets:
        return None
    return {"names": names, "sets": sets, "first_fooled": first_fooled, "first_fooled_name": FIRST_FOOLED}


def _finite_or_none(values: np.ndarray) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values]


def export_html(run_dir: str | Path, out_path: str | Path, graph_ids: list[str] | None = None,
                images: bool = True) -> Path:
    """Write one self-contained HTML file for ``graph_ids`` (all graphs by default)."""
    run = RunData(run_dir, max_cached_graphs=1)  # each graph is read once (the demo's 168 parsed: ~50 MB)
    try:
        parts = _export_parts(run, graph_ids, None, images)
    except NotFound as exc:
        raise AdvtopoError(str(exc)) from None
    out = Path(out_path)
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        write_page(fh, *parts)
    return out
