"""The report page: one self-contained HTML file (inline CSS, figures as inline SVG, no
script, nothing loaded from the network)."""
from __future__ import annotations

import html
import re
from typing import Any

CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;max-width:1100px;margin:0 auto;
padding:24px 28px 80px;background:#fff}
h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.25em;margin:2.2em 0 .4em;border-top:1px solid #ddd;padding-top:1em}
.meta{color:#555;font-size:.9em}.claim{border-left:4px solid #0072B2;background:#f3f7fb;margin:.6em 0;padding:.5em .9em}
.claim .src{display:block;color:#555;font-size:.85em;margin-top:.2em}
.fig{margin:.8em 0;text-align:center}.fig svg{max-width:100%;height:auto}
.cap{color:#444;font-size:.88em;margin:.2em 0 .6em}.finding{font-size:1.02em;margin:.6em 0}
.badge{display:inline-block;border-radius:3px;padding:0 .45em;font-size:.85em;font-weight:600;color:#fff;
margin-right:.4em}
.holds{background:#009E73}.partly{background:#E69F00;color:#1b1b1b}.does-not-hold{background:#D55E00}
.cannot-be-judged,.absent,.error{background:#777}
details{font-size:.85em;color:#444}table.toc{border-collapse:collapse;font-size:.92em}
table.toc td{padding:.15em .8em .15em 0;vertical-align:top}.missing{background:#fafafa;border:1px dashed #bbb;
padding:.6em .9em}code{background:#f2f2f2;padding:0 .25em;border-radius:3px;font-size:.9em}
.dl{font-size:.85em}
"""


SCALE = 1.7  # px per pt of the inline SVGs


def _cls(verdict: str | None) -> str:
    return re.sub(r"[^a-z]+", "-", (verdict or "absent").lower()).strip("-")


def inline_svg(svg: str, prefix: str) -> str:
    """matplotlib's SVG without the XML prolog, DOCTYPE and metadata (not needed inline), its
    ids prefixed so several figures in one page never share an id (glyphs, clip paths)."""
    svg = re.sub(r"<\?xml[^>]*\?>", "", svg)
    svg = re.sub(r"<!DOCTYPE[^>]*>", "", svg, flags=re.S)
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    p = re.sub(r"[^A-Za-z0-9_-]", "_", prefix)
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{p}-{m.group(1)}"', svg)
    svg = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{p}-{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{p}-{m.group(1)})", svg)
    # matplotlib sizes in pt (1 pt = 1.33 px): show figures larger, the CSS keeps them within the page
    svg = re.sub(r'<svg([^>]*?) width="([\d.]+)pt" height="([\d.]+)pt"',
                 lambda m: f'<svg{m.group(1)} width="{float(m.group(2)) * SCALE:.0f}" '
                           f'height="{float(m.group(3)) * SCALE:.0f}"', svg, count=1)
    return svg.strip()


def _code(text: str) -> str:
    """Escaped text with `backticked` parts as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def render_page(meta: dict[str, Any], sections: list[dict[str, Any]], svgs: dict[str, str]) -> str:
    """The page from findings (``sections`` as in findings.json) and each figure's SVG text."""
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width,initial-scale=1">',
           f"<title>advtopo report: {e(meta['name'])}</title><style>{CSS}</style></head><body>",
           f"<h1>advtopo report: {e(meta['name'])}</h1>",
           f"<p class='meta'>run <code>{e(meta['path'])}</code> · dataset {e(meta['dataset'])} "
           f"({meta['n_samples']} samples) · models {e(', '.join(meta['models']))} · layers "
           f"{e(', '.join(meta['layers']))} · advtopo {e(meta['version'])} · {e(meta['generated'])}</p>",
           "<p class='meta'>Each section states a claim from the papers behind advtopo, shows the figure, and "
           "gives one verdict computed from the numbers by the rule under it (holds / partly / does not hold). "
           "Every number is in <code>findings.json</code>; the figures are in <code>figures/</code> as PNG and SVG."
           "</p>", "<table class='toc'>"]
    for s in sections:
        if s["status"] == "ok":
            v = s.get("verdict")
            badge = f"<span class='badge {_cls(v) if v else 'absent'}'>{e(v or 'figure')}</span>"
        else:
            badge = f"<span class='badge {'error' if s['status'] == 'error' else 'absent'}'>{e(s['status'])}</span>"
        out.append(f"<tr><td>{badge}</td><td><a href='#{e(s['key'])}'>{e(s['title'])}</a></td></tr>")
    out.append("</table>")
    for s in sections:
        out.append(f"<h2 id='{e(s['key'])}'>{e(s['title'])}</h2>")
        out.append(f"<div class='claim'><b>Claim.</b> {e(s['claim'])}<span class='src'>{e(s['source'])}</span></div>")
        if s["status"] == "error":
            out.append(f"<div class='missing'><span class='badge error'>error</span>could not be computed: "
                       f"{e(s.get('error', ''))}</div>")
            continue
        if s["status"] != "ok":
            out.append(f"<div class='missing'><span class='badge absent'>not in this run</span>{_code(s['missing'])}. "
                       f"To produce it: {_code(s['enable'])}.</div>")
            continue
        fig = s.get("figure")
        if fig and fig["name"] in svgs:
            out.append(f"<div class='fig'>{inline_svg(svgs[fig['name']], 'fig-' + fig['name'])}</div>")
            out.append(f"<p class='cap'>{e(s.get('caption', ''))} <span class='dl'>(<a href='{e(fig['png'])}'>PNG</a>, "
                       f"<a href='{e(fig['svg'])}'>SVG</a>)</span></p>")
        v = s.get("verdict")
        badge = f"<span class='badge {_cls(v)}'>{e(v)}</span>" if v else ""
        out.append(f"<p class='finding'>{badge}{e(s.get('sentence', ''))}</p>")
        if s.get("rule"):
            out.append(f"<details><summary>verdict rule</summary>{e(s['rule'])}</details>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
