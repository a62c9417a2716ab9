"""Static export: one self-contained HTML file (data, code, styles and thumbnails inline).

The file makes no network request: d3, the app's scripts (all that index.html loads, in its
order) and stylesheet are inlined, and the thumbnails are ``data:`` URIs. It opens from disk
in any modern browser.
"""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

from advtopo.errors import AdvtopoError
from advtopo.mapper.shape import graph_shape
from advtopo.rundir import ArtefactMissing, layout
from advtopo.utils.io import atomic_write_bytes, strict_dumps

from .data import NotFound, RunData

STATIC_DIR = Path(__file__).resolve().parent / "static"  # the front end (the server serves the same files)
IMAGE_BUDGET = 24 * 1024 * 1024  # bytes of base64 thumbnails at most
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
    return inline_page(f"window.ADVTOPO_EMBED={_script_json(embed)};").encode("utf-8")


def inline_page(data_script: str) -> str:
    """index.html with its stylesheet and every script it loads inlined, in the order the page
    lists them (index.html is the one list of the front end's files); ``data_script`` runs
    before the first of them."""
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    if STYLESHEET_TAG not in html:
        raise RuntimeError(f"index.html lacks {STYLESHEET_TAG!r}")
    css = (STATIC_DIR / "app.css").read_text(encoding="utf-8")
    html = html.replace(STYLESHEET_TAG, f"<style>\n{css}\n</style>")
    first = SCRIPT_TAG.search(html)
    if first is None:
        raise RuntimeError("index.html loads no script from static/")
    html = html[:first.start()] + f"<script>{data_script}</script>\n" + html[first.start():]
    return SCRIPT_TAG.sub(lambda m: f"<script>{_inline_js(_static_text(m.group(1)))}</script>", html)


def _static_text(rel: str) -> str:
    path = (STATIC_DIR / rel).resolve()
    if not path.is_relative_to(STATIC_DIR.resolve()) or not path.is_file():
        raise RuntimeError(f"index.html loads static/{rel}, which is not a file in {STATIC_DIR}")
    return path.read_text(encoding="utf-8")


def _thumbnails(run: RunData, graphs: dict[str, dict], vul: dict, datapaths: dict | None = None) -> dict:
    """data: URIs for the clean images of every sample in the graphs (and of the vulnerable
    and datapaths samples), then the adversarial images of the exported (model, attack, eps)
    combinations and of the datapaths' (model, attack, eps), within IMAGE_BUDGET."""
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
        target = out["clean"] if key == "clean" else out["adversarial"].setdefault(key, {})
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
