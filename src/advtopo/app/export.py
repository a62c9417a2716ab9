"""Static export: one self-contained HTML file (data, code, styles and thumbnails inline).

The file makes no network request: d3, the app's scripts (all that index.html loads, in its
order) and stylesheet are inlined, and the thumbnails are ``data:`` URIs. It opens from disk
in any modern browser.
"""
from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from advtopo.errors import AdvtopoError
from advtopo.mapper.shape import graph_shape
from advtopo.rundir import ArtefactMissing, layout
from advtopo.utils.io import atomic_write_bytes, strict_dumps

from .data import NotFound, RunData
from .png import encode_png

STATIC_DIR = Path(__file__).resolve().parent / "static"  # the front end (the server serves the same files)
IMAGE_BUDGET = 24 * 1024 * 1024  # bytes of base64 thumbnails at most
POOL_MIN_LENGTH = 16  # lists of scalars at least this long are written once and referenced (see pack_lists)
POOL_KEY = "@pool"
ROWS_KEY = "@rows"  # a list of dicts with the same keys, written as {ROWS_KEY: keys, "v": [values...]}
ROWS_MIN_LENGTH = 4
POOL_FLOAT_DIGITS = 6  # significant digits of the floats in pooled lists (per-point/per-node values)
# Runs right after the data: puts the pooled lists back (a copy per use: the app may mutate them).
UNPACK_SCRIPT = (
    "(function(){var P=window.ADVTOPO_POOL,E=window.ADVTOPO_EMBED;if(!P||!E)return;"
    "function un(x){if(Array.isArray(x)){for(var i=0;i<x.length;i++)x[i]=un(x[i]);return x}"
    "if(x&&typeof x==='object'){var k=Object.keys(x);"
    "if(k.length===1&&k[0]==='" + POOL_KEY + "')return P[x['" + POOL_KEY + "']].slice();"
    "if(k.length===2&&k[0]==='" + ROWS_KEY + "'&&k[1]==='v'){var ks=x['" + ROWS_KEY + "'];"
    "return x.v.map(function(r){var o={};for(var q=0;q<ks.length;q++)o[ks[q]]=un(r[q]);return o})}"
    "for(var j=0;j<k.length;j++)x[k[j]]=un(x[k[j]])}return x}"
    "E.graphs=un(E.graphs);E.shape=un(E.shape);delete window.ADVTOPO_POOL})();")
# Runs after the data too: each adversarial set's {sample id: tile} becomes an object whose
# properties are the tiles cropped from its sprite as PNG data: URIs (on first use, then cached),
# what data.js reads from images.adversarial[key][sid].
SPRITE_SCRIPT = (
    "(function(){var E=window.ADVTOPO_EMBED,im=E&&E.images;if(!im||!im.sprites)return;"
    "Object.keys(im.sprites).forEach(function(key){var sp=im.sprites[key],tiles=im.adversarial[key]||{},"
    "img=new Image(),cache={};img.src=sp.uri;"
    "im.adversarial[key]=new Proxy(tiles,{get:function(t,sid){"
    "if(typeof sid!=='string'||!Object.prototype.hasOwnProperty.call(t,sid))return undefined;"
    "if(cache[sid])return cache[sid];if(!img.complete||!img.naturalWidth)return undefined;"
    "var i=t[sid],c=document.createElement('canvas');c.width=sp.w;c.height=sp.h;"
    "c.getContext('2d').drawImage(img,(i%sp.cols)*sp.w,Math.floor(i/sp.cols)*sp.h,sp.w,sp.h,0,0,sp.w,sp.h);"
    "return cache[sid]=c.toDataURL('image/png')}})})})();")
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
    index = run.index()
    all_ids = [g["id"] for g in index["graphs"] if isinstance(g, dict) and "id" in g]
    ids = list(dict.fromkeys(graph_ids)) if graph_ids else all_ids
    for gid in ids:
        if gid not in all_ids:
            raise NotFound(f"unknown graph {gid!r}")
    graphs = {gid: run.reader.graph(gid) for gid in ids}
    idx = dict(index)
    idx["graphs"] = [g for g in index["graphs"] if isinstance(g, dict) and g.get("id") in graphs]
    idx["app"] = {"mode": "static", "recompute": {"available": False, "reason": "static export"}}
    vul = run.vulnerability()
    dp = run.datapaths()
    embed: dict[str, Any] = {"index": idx, "graphs": graphs, "vulnerability": vul, "images": {}}
    embed["shape"] = {gid: graph_shape(g) for gid, g in graphs.items()}  # loops and branch points (TopoAct)
    embed["diagrams"] = _diagrams(run, idx)  # the Summary's persistence diagrams
    if dp.get("available"):
        embed["datapaths"] = dp
    from advtopo.study.actgraph import app_document

    ag = app_document(run.reader)  # activation_graph.json, when the run has one
    if ag.get("available"):
        embed["activation_graph"] = ag
    if state:
        try:
            embed["state"] = json.loads(state)
        except ValueError:
            pass
    st = embed.setdefault("state", {})
    if isinstance(st, dict) and not st.get("graphs"):
        st["graphs"] = ids[:4] if graph_ids else []
    if images:
        embed["images"] = _thumbnails(run, graphs, vul, dp if dp.get("available") else None)
    return embedded_page(embed).encode("utf-8")


def embedded_page(embed: dict[str, Any]) -> str:
    """The self-contained page for ``embed`` (window.ADVTOPO_EMBED: index, graphs, shape, ...),
    its graphs' and shapes' long lists pooled (pack_lists). Also used by advtopo.app.notebook."""
    pool: list[str] = []
    refs: dict[str, int] = {}
    embed = dict(embed)
    embed["graphs"] = pack_lists(embed.get("graphs") or {}, pool, refs)
    embed["shape"] = pack_lists(embed.get("shape") or {}, pool, refs)
    return inline_page(f"window.ADVTOPO_EMBED={_script_json(embed)};",
                       after_data=f"window.ADVTOPO_POOL=[{','.join(pool)}];{UNPACK_SCRIPT}{SPRITE_SCRIPT}")


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


def pack_lists(obj: Any, pool: list[str], refs: dict[str, int]) -> Any:
    """``obj`` with every list of scalars of POOL_MIN_LENGTH items or more replaced by
    ``{POOL_KEY: i}``, ``pool[i]`` its JSON text, each distinct list written once.

    Why: the graphs of one (model, layer, attack, eps) share their points' columns (ids, labels,
    predictions, flags, lens), and many graphs share them across layers: written once, the
    demo run's export drops most of its graph bytes. A list of dicts with the same keys (nodes,
    edges) is written as its keys once and each dict's values. Floats in pooled lists (lens, L2, purities,
    k-distances: float32 data shown with 2-4 digits) keep POOL_FLOAT_DIGITS significant digits;
    the rest is exact (UNPACK_SCRIPT undoes the pooling)."""
    if isinstance(obj, dict):
        return {k: pack_lists(v, pool, refs) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        if len(obj) >= POOL_MIN_LENGTH and not any(isinstance(v, (dict, list, tuple)) for v in obj):
            text = _script_json([_round(v) for v in obj])
            i = refs.get(text)
            if i is None:
                i = refs[text] = len(pool)
                pool.append(text)
            return {POOL_KEY: i}
        if (len(obj) >= ROWS_MIN_LENGTH and all(isinstance(v, dict) for v in obj)
                and all(list(v) == list(obj[0]) for v in obj)):
            keys = list(obj[0])
            return {ROWS_KEY: keys, "v": [[pack_lists(v[k], pool, refs) for k in keys] for v in obj]}
        return [pack_lists(v, pool, refs) for v in obj]
    return obj


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


def inline_page(data_script: str, after_data: str = "") -> str:
    """index.html with its stylesheet and every script it loads inlined, in the order the page
    lists them (index.html is the one list of the front end's files); ``data_script`` (then
    ``after_data``, in a script of its own) runs before the first of them."""
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    if STYLESHEET_TAG not in html:
        raise RuntimeError(f"index.html lacks {STYLESHEET_TAG!r}")
    css = (STATIC_DIR / "app.css").read_text(encoding="utf-8")
    html = html.replace(STYLESHEET_TAG, f"<style>\n{css}\n</style>")
    first = SCRIPT_TAG.search(html)
    if first is None:
        raise RuntimeError("index.html loads no script from static/")
    extra = f"<script>{_inline_js(after_data)}</script>\n" if after_data else ""
    html = html[:first.start()] + f"<script>{data_script}</script>\n" + extra + html[first.start():]
    return SCRIPT_TAG.sub(lambda m: f"<script>{_inline_js(_static_text(m.group(1)))}</script>", html)


def _static_text(rel: str) -> str:
    path = (STATIC_DIR / rel).resolve()
    if not path.is_relative_to(STATIC_DIR.resolve()) or not path.is_file():
        raise RuntimeError(f"index.html loads static/{rel}, which is not a file in {STATIC_DIR}")
    return path.read_text(encoding="utf-8")


def _thumbnails(run: RunData, graphs: dict[str, dict], vul: dict, datapaths: dict | None = None) -> dict:
    """data: URIs for the clean images of every sample in the graphs (and of the vulnerable
    and datapaths samples), then the adversarial images of the exported (model, attack, eps)
    combinations and of the datapaths' (model, attack, eps) as one sprite per set (_sprite),
    within IMAGE_BUDGET."""
    sids: set[int] = set()
    for g in graphs.values():
        sids.update(int(s) for s in (g.get("points", {}).get("sample_id") or []))
    for s in vul.get("samples", [])[:100] if isinstance(vul.get("samples"), list) else []:
        if isinstance(s, dict) and isinstance(s.get("sample_id"), int):
            sids.add(s["sample_id"])
    dp_sids: set[int] = set()
    dp_combos: set[tuple] = set()
    if datapaths:
        dp_sids = {int(s["sample_id"]) for s in datapaths.get("samples") or []
                   if isinstance(s, dict) and isinstance(s.get("sample_id"), int) and s["sample_id"] >= 0}
        dp_combos = {(datapaths.get("model"), datapaths.get("attack"), e) for e in datapaths.get("eps") or []}
    out: dict[str, Any] = {"clean": {}, "adversarial": {}}
    used = 0
    sets: list[tuple[str, tuple, set[int]]] = [("clean", (), sids | dp_sids)]  # (key, (model, attack, eps), ids)
    combos = {(g.model, g.attack, g.eps) for g in run.reader.graph_entries() if g.id in graphs}
    for key in (run.reader.index.get("images") or {}).get("adversarial") or {}:
        parts = layout.split_adversarial_images_key(key)
        if parts is None:
            continue
        match = lambda cs: any((m, a) == parts[:2] and layout.eps_equal(eps, parts[2]) for m, a, eps in cs)  # noqa: E731
        want = (sids if match(combos) else set()) | (dp_sids if match(dp_combos) else set())
        if want:
            sets.append((key, parts, want))
    for key, parts, want in sets:
        if key != "clean":  # adversarial sets: one sprite each (SPRITE_SCRIPT crops it in the page)
            sprite = _sprite(run, parts, want)
            if sprite is None:
                continue
            tiles, uri, meta = sprite
            used += len(uri)
            if used > IMAGE_BUDGET:
                out["truncated"] = True
                return out
            out["adversarial"][key] = tiles
            out.setdefault("sprites", {})[key] = {"uri": uri, **meta}
            continue
        target = out["clean"]
        for sid in sorted(want):
            try:
                png = run.image_png(sid, *parts)
            except (NotFound, ArtefactMissing):  # not in this run; a damaged image file is an error
                continue
            uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
            used += len(uri)
            if used > IMAGE_BUDGET:
                out["truncated"] = True
                return out
            target[str(sid)] = uri
    return out


def _sprite(run: RunData, parts: tuple, want: set[int]) -> tuple[dict[str, int], str, dict] | None:
    """The images ``want`` of one adversarial set as one PNG grid: ({sample id: tile}, data URI,
    {w, h, cols}); None when the run lacks the set. Why: 1,000 separate 28 x 28 PNGs cost 25 %
    more than one sprite (a header and a zlib stream each)."""
    try:
        arr = run.reader.images(*parts)
    except ArtefactMissing:  # not in this run; a damaged image file is an error
        return None
    sids = [sid for sid in sorted(want) if 0 <= sid < arr.shape[0]]
    if not sids:
        return None
    n, (h, w, c) = len(sids), arr.shape[1:]
    cols = max(1, math.ceil(math.sqrt(n)))
    grid = np.zeros((math.ceil(n / cols) * h, cols * w, c), dtype=np.uint8)
    for i, sid in enumerate(sids):
        r, k = divmod(i, cols)
        grid[r * h:(r + 1) * h, k * w:(k + 1) * w] = arr[sid]
    uri = "data:image/png;base64," + base64.b64encode(encode_png(grid)).decode("ascii")
    return {str(sid): i for i, sid in enumerate(sids)}, uri, {"w": int(w), "h": int(h), "cols": cols}


def export_html(run_dir: str | Path, out_path: str | Path, graph_ids: list[str] | None = None,
                images: bool = True) -> Path:
    """Write one self-contained HTML file for ``graph_ids`` (all graphs by default)."""
    run = RunData(run_dir)
    try:
        data = build_html(run, graph_ids, images=images)
    except NotFound as exc:
        raise AdvtopoError(str(exc)) from None
    out = Path(out_path)
    atomic_write_bytes(out, data)
    return out
