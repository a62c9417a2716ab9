"""First render of a 1,000-node mapper graph in headless chromium (advtopo web app).

    python benchmarks/app_render.py [--nodes 1000] [--repeat 5]

Builds a run directory holding one graph of exactly N nodes (tests/app_fixture.py), serves
it, and loads the app in a fresh browser context per repeat (nothing cached). Reports, per
load: time from navigation start to the graph drawn and painted (two animation frames after
the draw), and its parts (graph fetch, force layout, drawing). Also the static export.
Needs /usr/bin/chromium and playwright.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from app_fixture import make_large_run  # noqa: E402

from advtopo.app import export_html, serve  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAINTED = """async () => {
  // the static export starts the app once its payload is unpacked (static/export/payload.js)
  while (!(window.advtopo && window.advtopo.ready)) await new Promise(r => setTimeout(r, 5));
  await window.advtopo.ready;
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const t = window.advtopo.timings, nav = performance.timing.navigationStart;
  const layout = Object.entries(t).filter(([k]) => k.startsWith('layout:')).reduce((a, [, v]) => a + v, 0);
  const fetch = Object.entries(t).filter(([k]) => k.startsWith('fetch:')).reduce((a, [, v]) => a + v, 0);
  const unpack = (window.advtopo.payload && window.advtopo.payload.unpackMs) || 0;  // static export: its payload
  return {painted_ms: performance.now(), first_render_ms: t.firstRenderAt, render_ms: t.lastRender, layout_ms: layout,
          fetch_ms: fetch, unpack_ms: unpack, nodes: document.querySelectorAll('g.node').length, paths: document.querySelectorAll('g.node path').length,
          edges: document.querySelectorAll('line.edge').length};
}"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--nodes", type=int, default=1000, help="number of nodes (multiple of 20)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--width", type=int, default=1600)
    ap.add_argument("--height", type=int, default=900)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        run = make_large_run(Path(tmp) / "run", n_intervals=args.nodes // 20, n_strands=20)
        html = export_html(run, Path(tmp) / "export.html")
        srv = serve(run, port=0, open_browser=False, block=False)
        results = {"server": [], "static": []}
        try:
            with sync_playwright() as p:
                b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                version = b.version
                for mode, url in (("server", srv.url + "#graphs=big"), ("static", html.as_uri())):
                    for _ in range(args.repeat + 1):  # the first load warms chromium itself; not counted
                        ctx = b.new_context(viewport={"width": args.width, "height": args.height})
                        pg = ctx.new_page()
                        t = time.perf_counter()
                        pg.goto(url)
                        r = pg.evaluate(PAINTED)
                        r["wall_ms"] = (time.perf_counter() - t) * 1000
                        results[mode].append(r)
                        ctx.close()
                    results[mode] = results[mode][1:]
                b.close()
        finally:
            srv.shutdown()
    import os

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"chromium {version}, viewport {args.width}x{args.height}, {args.repeat} fresh loads each (after one warm-up); "
          f"{os.cpu_count()} CPUs, load average {load:.1f}")
    for mode, rs in results.items():
        r0 = rs[0]
        print(f"\n{mode}: {r0['nodes']} nodes drawn ({r0['paths']} pie slices), {r0['edges']} edges")
        for k in ("painted_ms", "first_render_ms", "unpack_ms", "fetch_ms", "layout_ms", "render_ms", "wall_ms"):
            vals = [r[k] for r in rs]
            print(f"  {k:16s} median {statistics.median(vals):7.0f}   min {min(vals):7.0f}   max {max(vals):7.0f}")
    print("\njson:", json.dumps({m: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for m, rs in results.items()}))


if __name__ == "__main__":
    main()
