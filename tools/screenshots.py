"""Screenshots of the web app's views on a run, for the docs (docs/img/).

    python tools/screenshots.py RUN OUTDIR [--only NAME ...] [--list] [--chromium PATH]

Serves RUN in-process (`advtopo.app.serve`), drives chromium through Playwright at 1600 x 1000
through every view and saves one PNG per view under a stable name (`--list` prints them):
the graphs grid (an eps sweep), the node panel, the cross-layer flow (TopoAct), loops and
branch points, one sample's own feature visualisation, AEVis's layer, neuron and class levels
in the Datapaths tab (and the skip-connection card when the run has residual blocks), the
activation-graph card (when the run has activation_graph.json) and the Summary tab.

The pictures are chosen from the run, not hard-coded (the first model, the deepest layer, the
first attack, eps 0.1 or the nearest, the largest node ...), so the same run gives the same
pictures. The script fails (exit 1, naming them) on any console error, page error, failed
request or HTTP error status. Each PNG is cropped to its view and reduced to a 256-colour
palette (Pillow). Needs playwright and a chromium
(`ADVTOPO_CHROMIUM`, default /usr/bin/chromium); run with the project's virtualenv.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable

VIEWPORT = {"width": 1600, "height": 1000}


class ScreenshotError(RuntimeError):
    """The page logged an error, a request failed, or a view did not appear."""


class Session:
    """One served run and one chromium page that records every error."""

    def __init__(self, run: Path, out: Path, chromium: str):
        from playwright.sync_api import sync_playwright

        from advtopo.app import serve

        self.run, self.out = run, out
        self.server = serve(run, port=0, open_browser=False, block=False)
        self.pw = sync_playwright().start()
        self.browser = self.pw.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        self.errors: list[str] = []
        self.index = self.api("api/index")
        self.page = None

    def close(self) -> None:
        self.browser.close()
        self.pw.stop()
        self.server.shutdown()

    # ------------------------------------------------------------------ the page and the API
    def api(self, path: str):
        req = urllib.request.Request(self.server.url + path, headers={"X-Advtopo-Token": self.server.token})
        with urllib.request.urlopen(req, timeout=300) as r:
            return json.loads(r.read())

    def open(self, hash_: str = ""):
        """A fresh page (a new context: no state from the previous view) on the run, `#hash_`."""
        if self.page is not None:
            self.page.context.close()
        ctx = self.browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
        pg = ctx.new_page()
        pg.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        pg.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        pg.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url} ({r.failure})"))
        pg.on("response", lambda r: self.errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
        pg.goto(self.server.url + (f"#{hash_}" if hash_ else ""))
        pg.wait_for_selector("body[data-ready='1']", timeout=60000)
        self.page = pg
        return pg

    def wait(self, js: str, what: str, timeout: float = 120.0) -> None:
        """Poll a JS expression until truthy (the app's CSP forbids wait_for_function's eval)."""
        end = time.monotonic() + timeout
        while not self.page.evaluate(js):
            if time.monotonic() > end:
                raise ScreenshotError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.1)

    def images_loaded(self, scope: str, what: str) -> None:
        self.wait(f"(() => {{ const im = [...document.querySelectorAll({json.dumps(scope + ' img')})];"
                  " return im.length > 0 && im.every(i => i.complete && i.naturalWidth > 0); })()", what)

    def settle(self) -> None:
        """No tooltip, no hover: the pointer in a corner of the top bar, a moment for transitions."""
        self.page.mouse.move(2, 2)
        self.page.evaluate("document.querySelector('#tooltip') && document.querySelector('#tooltip').classList.add('hidden')")
        self.page.wait_for_timeout(400)

    # ------------------------------------------------------------------ saving
    def box(self, selectors: list[str], pad: int) -> dict:
        """The union of the selectors' first elements' boxes, `pad` pixels around, in page coordinates."""
        boxes = []
        for sel in selectors:
            loc = self.page.locator(sel).first
            loc.scroll_into_view_if_needed()
            boxes.append(loc.bounding_box())
        if any(b is None for b in boxes):
            raise ScreenshotError(f"nothing visible for {selectors}")
        x0 = max(0, min(b["x"] for b in boxes) - pad)
        y0 = max(0, min(b["y"] for b in boxes) - pad)
        x1 = min(VIEWPORT["width"], max(b["x"] + b["width"] for b in boxes) + pad)
        y1 = max(b["y"] + b["height"] for b in boxes) + pad
        return {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0}

    def save(self, name: str, selectors: list[str] | None = None, pad: int = 6) -> Path:
        """Screenshot the union of `selectors`' boxes (the viewport when None), then shrink it.
        A view taller than the window (the app's panes scroll inside a fixed page) gets a
        taller window for the picture."""
        self.check()
        self.settle()
        path, raw = self.out / f"{name}.png", self.out / f".{name}.raw.png"
        if selectors is None:
            self.page.screenshot(path=str(raw))
        else:
            clip = self.box(selectors, pad)
            for _ in range(4):
                height = self.page.viewport_size["height"]
                if clip["y"] + clip["height"] <= height:
                    break
                self.page.set_viewport_size({"width": VIEWPORT["width"], "height": int(clip["y"] + clip["height"]) + 2})
                self.page.wait_for_timeout(300)
                clip = self.box(selectors, pad)
            self.page.screenshot(path=str(raw), clip=clip)
            self.page.set_viewport_size(VIEWPORT)
        shrink(raw, path)
        self.check()
        return path

    def check(self) -> None:
        if self.errors:
            raise ScreenshotError("the page reported errors:\n  " + "\n  ".join(self.errors))

    # ------------------------------------------------------------------ choosing what to show
    def graphs(self, **match) -> list[dict]:
        """The index's graphs of the first mapper set matching every key of `match`."""
        sets = [g.get("mapper_set") for g in self.index["graphs"]]
        first_set = next((s for s in sets if s is not None), None)
        return [g for g in self.index["graphs"] if g.get("mapper_set") == first_set
                and all(g.get(k) == v for k, v in match.items())]

    def pick(self) -> dict:
        """The first model and attack, the deepest layer, the eps nearest 0.1 above 0."""
        gs = self.graphs(model=self.index["models"][0]["name"], attack=self.index["attacks"][0]["name"])
        eps = sorted({g["eps"] for g in gs if g["eps"] > 0}, key=lambda e: (abs(e - 0.1), e))
        if not eps:
            raise ScreenshotError("the run has no graph of an attacked model (eps > 0)")
        return {"model": gs[0]["model"], "attack": gs[0]["attack"], "layer": self.index["layers"][-1],
                "eps": eps[0], "layers": self.index["layers"]}

    def graph_id(self, model: str, layer: str, attack: str, eps: float) -> str:
        g = self.graphs(model=model, layer=layer, attack=attack, eps=eps)
        if not g:
            raise ScreenshotError(f"no graph {model} / {layer} / {attack} / eps {eps}")
        return g[0]["id"]

    def largest_node(self, gid: str) -> str:
        g = self.api(f"api/graph/{gid}")
        return max(g["nodes"], key=lambda n: (n["size"], -int(str(n["id"]).lstrip("n") or 0)))["id"]

    def wait_panels(self, n: int) -> None:
        self.wait(f"document.querySelectorAll('.panel').length === {n} && "
                  f"document.querySelectorAll('.panel g.node').length > 0 && "
                  f"document.querySelectorAll('.panel .msg:empty').length === {n}", f"{n} graph panels")

    def click_node(self, k: int, nid: str) -> None:
        """Select a node; wait for its panel and its feature visualisation (or the note why there is none)."""
        self.page.click(f".panel[data-index='{k}'] g.node[data-id='{nid}']")
        self.wait("!!document.querySelector('#details .stat')", "the node panel")
        self.wait("(() => { const f = document.querySelector('#d-fv'); if (!f) return true;"
                  " const im = [...f.querySelectorAll('img')];"
                  " return (im.length > 0 && im.every(i => i.complete && i.naturalWidth > 0))"
                  " || /not available|needs the model/.test(f.textContent); })()",
                  "the node's feature visualisation")


def shrink(raw: Path, path: Path) -> None:
    """`raw` as a 256-colour palette PNG at `path` (Pillow's median-cut quantizer, no dithering:
    the app's flat colours survive it), written atomically; `raw` is removed."""
    from PIL import Image

    tmp = path.with_name(f".{path.name}.tmp")
    with Image.open(raw) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(tmp, format="PNG", optimize=True)
    os.replace(tmp, path)
    raw.unlink()


# ---------------------------------------------------------------------------------------- views
def shot_eps_sweep(s: Session) -> str:
    """Graphs grid: the first model's deepest layer at the four smallest eps."""
    p = s.pick()
    eps = sorted({g["eps"] for g in s.graphs(model=p["model"], layer=p["layer"], attack=p["attack"])})[:4]
    ids = [s.graph_id(p["model"], p["layer"], p["attack"], e) for e in eps]
    s.open("graphs=" + ",".join(ids))
    s.wait_panels(len(ids))
    s.save("app-eps-sweep")
    return f"{p['model']} {p['layer']} {p['attack']} eps {', '.join(f'{e:g}' for e in eps)}"


def shot_node_panel(s: Session) -> str:
    """The node panel of the largest node (members, fooling flows, histograms, thumbnails)."""
    p = s.pick()
    gid = s.graph_id(p["model"], p["layer"], p["attack"], p["eps"])
    nid = s.largest_node(gid)
    s.open(f"graphs={gid}")
    s.wait_panels(1)
    s.click_node(0, nid)
    s.images_loaded("#details .thumbs", "the member thumbnails")
    s.save("app-node-panel", ["#view-graphs", "#details"], pad=0)
    return f"{gid} node {nid}"


def shot_crosslayer(s: Session) -> str:
    """TopoAct's cross-layer flow: the largest node of the second-deepest layer, the deepest beside it."""
    p = s.pick()
    if len(p["layers"]) < 2:
        return "skipped: one layer"
    a = s.graph_id(p["model"], p["layers"][-2], p["attack"], p["eps"])
    b = s.graph_id(p["model"], p["layers"][-1], p["attack"], p["eps"])
    nid = s.largest_node(a)
    s.open(f"graphs={a},{b}")
    s.wait_panels(2)
    s.click_node(0, nid)
    s.wait(f"document.querySelector(\".panel[data-index='1']\").dataset.flow === '{a}|{nid}'", "the linked highlight")
    s.wait("document.querySelectorAll('#d-flow svg.sankey path.link').length > 0", "the Sankey card")
    s.save("app-crosslayer-demo", ["#view-graphs", "#details"], pad=0)
    return f"{a} node {nid} -> {b}"


def shot_loops(s: Session) -> str:
    """Loops and branch points: the deepest layer's graph with the most loops, its longest listed loop highlighted."""
    p = s.pick()
    rows = [r for r in s.api("api/shape-summary")["graphs"] if r.get("layer") == p["layer"] and r.get("n_loops") is not None]
    ids = {g["id"] for g in s.graphs(layer=p["layer"])}
    rows = [r for r in rows if r.get("id") in ids]
    if not rows:
        return "skipped: no loop counts"
    best = max(rows, key=lambda r: (r["n_loops"], r["n_branch_points"], -r["eps"]))
    gid = best["id"]
    shape = s.api(f"api/shape/{gid}")
    s.open(f"graphs={gid}")
    s.wait_panels(1)
    s.page.click(".panel[data-index='0'] .shape-toggle")
    s.wait("!!document.querySelector('#shape-loops')", "the loops card")
    k = max(range(len(shape["cycles"])), key=lambda i: (len(shape["cycles"][i]["nodes"]), -i)) if shape["cycles"] else None
    if k is not None:
        s.page.click(f".shape-loops tr[data-k='{k}']")
    s.save("app-loops-demo", ["#view-graphs", "#details"], pad=0)
    return f"{gid}: {shape['n_loops']} loops, {shape['n_branch_points']} branch points, loop {k} highlighted"


def shot_featurevis_sample(s: Session) -> str:
    """One member's own activation visualised beside the node's average (TopoAct's individual view)."""
    p = s.pick()
    gid = s.graph_id(p["model"], p["layer"], p["attack"], p["eps"])
    nid = s.largest_node(gid)
    s.open(f"graphs={gid}")
    s.wait_panels(1)
    s.click_node(0, nid)
    if not s.page.locator("#d-fv img").count():
        return "skipped: " + s.page.inner_text("#d-fv").strip()
    s.wait("!!document.querySelector('#d-fv-pick')", "the member picker")
    options = s.page.eval_on_selector_all("#d-fv-pick option", "els => els.map(e => e.value)")
    choice = next((o for o in options if o.endswith("|adversarial")), options[0])
    s.page.select_option("#d-fv-pick", choice)
    s.page.click("#d-fv-go")
    s.images_loaded("#d-fv", "the node's feature visualisation")
    s.images_loaded("#d-fv-out", "the member's feature visualisation")
    s.save("app-featurevis-sample", ["#details .fv-row"], pad=10)
    return f"{gid} node {nid}, member {choice}"


def open_datapaths(s: Session) -> dict:
    dp = s.api("api/datapaths")
    if not dp.get("available"):
        raise ScreenshotError("the run has no datapaths.json")
    s.open()
    s.wait("!document.querySelector('#tab-datapaths').classList.contains('hidden')", "the Datapaths tab")
    s.page.click("#tab-datapaths")
    s.wait("!!document.querySelector('#dp-flow')", "the sample flow")
    return dp


def datapaths_sample(dp: dict) -> tuple[int, str]:
    """A detail sample fooled at the eps nearest 0.1 (else the first detail sample) and that eps."""
    eps = min(dp["eps"], key=lambda e: (abs(e - 0.1), e))
    key = next(k for k in dp["samples"][0]["eps"] if abs(float(k) - eps) < 1e-9)
    detail = {d["sample_id"] for d in dp.get("detail", [])}
    fooled = [x["sample_id"] for x in dp["samples"] if x["sample_id"] in detail and x["eps"][key]["fooled"]]
    return (fooled or sorted(detail))[0], f"{eps:g}"


def shot_aevis_layer_neuron(s: Session) -> str:
    """AEVis's layer level (feature maps, critical channels, sorted by gate) and neuron level (learned feature, top images)."""
    if not s.api("api/datapaths").get("available"):
        return "skipped: no datapaths.json"
    dp = s.api("api/datapaths")
    sid, eps = datapaths_sample(dp)
    layer = dp["layers"][len(dp["layers"]) // 2]
    probe = s.api(f"api/aevis/layer?sample={sid}&layer={layer}&eps={eps}&sort=gate")
    if probe.get("available") is False:
        return f"skipped: the layer level is not available ({probe.get('reason')})"
    open_datapaths(s)
    s.page.click(f"#datapaths tr.dp-row[data-sid='{sid}']")
    s.wait(f"document.querySelector('#dp-flow').dataset.sample === '{sid}'", f"sample {sid}'s flow")
    s.page.click(f"#dp-eps button[data-v='{eps}']")
    s.wait("document.querySelectorAll('#ae-layer .ae-grid .ae-ch').length > 0", "the feature maps")
    s.page.click(f"#ae-layer-pick button[data-v='{layer}']")
    s.page.click("#ae-sort button[data-v='gate']")
    s.page.click("#ae-show button[data-v='critical']")
    s.wait(f"(document.querySelector('#ae-layer .ae-maps') || {{}}).dataset.want === '{sid}|{layer}|{eps}|gate|critical'"
           " && document.querySelectorAll('#ae-layer .ae-grid .ae-ch').length > 0", "the sorted critical channels")
    ch = s.page.get_attribute("#ae-layer .ae-ch", "data-channel")
    s.page.click("#ae-layer .ae-ch")
    s.wait(f"!!document.querySelector('.ae-neuron[data-channel=\"{ch}\"] .ae-feature img')", "the neuron level")
    s.images_loaded(".ae-neuron", "the neuron's images")
    s.save("app-aevis-layer-neuron", ["#ae-layer"])
    return f"{dp['model']} sample {sid}, {layer}, {dp['attack']} eps {eps}, channel {ch}"


def shot_aevis_class(s: Session) -> str:
    """AEVis's class level: the largest true -> adversarial group at the strongest eps."""
    if not s.api("api/datapaths").get("available"):
        return "skipped: no datapaths.json"
    dp = open_datapaths(s)
    if not dp.get("class_flow"):
        return "skipped: no class_flow in datapaths.json"
    s.wait("!!document.querySelector('#ae-class svg.ae-class-chart')", "the class-level chart")
    key = max(dp["class_flow"], key=float)
    g = dp["class_flow"][key][0]
    s.save("app-aevis-class", ["#ae-class"])
    return f"{dp['model']} {dp['attack']} eps {key}: {g['true']} -> {g['adversarial']} ({g['n']} fooled)"


def shot_aevis_residual(s: Session) -> str:
    """The skip-connection card (only runs whose gated layers are residual blocks)."""
    dp = s.api("api/datapaths")
    if not dp.get("available") or not dp.get("residual"):
        return "skipped: no residual blocks among the datapaths' layers"
    open_datapaths(s)
    s.wait("!!document.querySelector('#ae-residual table')", "the skip-connection card")
    s.save("app-aevis-residual", ["#ae-residual"])
    return f"{dp['model']} blocks {', '.join(dp['residual']['blocks'])}"


def shot_actgraph(s: Session) -> str:
    """The activation-graph card of the first sample fooled at the stage's eps nearest 0.1."""
    doc = s.api("api/activation-graph")
    if not doc.get("available"):
        return "skipped: no activation_graph.json"
    key = min(doc["samples"][0]["adversarial"], key=lambda k: (abs(float(k) - 0.1), float(k)))
    sample = next((x for x in doc["samples"] if x["adversarial"][key]["prediction"] != x["label"]), doc["samples"][0])
    sid = sample["sample_id"]
    s.open()
    s.page.fill("#locate-input", str(sid))
    s.page.click("#locate-btn")
    s.wait("!!document.querySelector('#locate-info .ag-open')", "the Activation graph button")
    s.page.click("#locate-info .ag-open")
    s.wait("!!document.querySelector('.ag-card svg.ag-net')", "the activation-graph card")
    s.page.click(f".ag-eps button[data-v='{key}']")
    s.images_loaded(".ag-card", "the card's thumbnails")
    s.save("app-actgraph", [".ag-card"], pad=0)
    return (f"{doc['model']} {doc['attack']} eps {key}, sample {sid} (label {sample['label']}, "
            f"adversarial prediction {sample['adversarial'][key]['prediction']})")


def shot_summary(s: Session) -> str:
    """The Summary tab as it opens (accuracy and class mixing vs eps)."""
    s.open()
    s.page.click(".tab[data-tab='summary']")
    s.wait("document.querySelectorAll('#summary .card svg').length > 1", "the Summary charts")
    s.save("app-summary")
    return "top of the Summary tab"


def shot_shapes_summary(s: Session) -> str:
    """The Summary's loops and branch points vs eps for the deepest layer."""
    layer = s.index["layers"][-1]
    s.open()
    s.page.click(".tab[data-tab='summary']")
    s.wait(f"!!document.querySelector(\".shape-card[data-layer='{layer}'] svg\")", "the loops card")
    s.save("app-shapes-summary-demo", [f".shape-card[data-layer='{layer}']"])
    return f"layer {layer}"


SHOTS: dict[str, Callable[[Session], str]] = {
    "app-eps-sweep": shot_eps_sweep,
    "app-node-panel": shot_node_panel,
    "app-crosslayer-demo": shot_crosslayer,
    "app-loops-demo": shot_loops,
    "app-featurevis-sample": shot_featurevis_sample,
    "app-aevis-layer-neuron": shot_aevis_layer_neuron,
    "app-aevis-class": shot_aevis_class,
    "app-aevis-residual": shot_aevis_residual,
    "app-actgraph": shot_actgraph,
    "app-summary": shot_summary,
    "app-shapes-summary-demo": shot_shapes_summary,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, nargs="?", help="run directory (a copy: the app writes its caches into it)")
    ap.add_argument("outdir", type=Path, nargs="?", help="where the PNGs go (e.g. docs/img)")
    ap.add_argument("--only", nargs="+", choices=sorted(SHOTS), metavar="NAME", help="only these views")
    ap.add_argument("--list", action="store_true", help="print the views' names and what each shows")
    ap.add_argument("--chromium", default=os.environ.get("ADVTOPO_CHROMIUM", "/usr/bin/chromium"))
    args = ap.parse_args(argv)
    if args.list:
        for name, fn in SHOTS.items():
            print(f"{name}.png  {fn.__doc__}")
        return 0
    if args.run is None or args.outdir is None:
        ap.error("RUN and OUTDIR are required (or --list)")
    if not (args.run / "index.json").is_file():
        ap.error(f"{args.run} is not a finished run directory (no index.json)")
    if not os.path.exists(args.chromium):
        ap.error(f"{args.chromium} not found (apt-get install chromium, or --chromium PATH)")
    args.outdir.mkdir(parents=True, exist_ok=True)
    session = Session(args.run, args.outdir, args.chromium)
    failed = 0
    try:
        for name in args.only or SHOTS:
            t0 = time.monotonic()
            try:
                what = SHOTS[name](session)
            except Exception as e:  # noqa: BLE001  (one view's failure is reported, the others still run)
                failed += 1
                session.errors.clear()
                print(f"FAILED {name}: {type(e).__name__}: {e}", file=sys.stderr)
                continue
            png = args.outdir / f"{name}.png"
            size = f"{png.stat().st_size / 1024:.0f} KB" if not what.startswith("skipped") else "-"
            print(f"{name}.png  {size}  {time.monotonic() - t0:.1f} s  {what}")
    finally:
        session.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
