/* Figures out of the app: a graph panel, the whole comparison grid or a Summary chart as SVG or
 * PNG (2x), styles inlined, on white, with the legend and the graph's identity (model, layer,
 * attack, eps, mapper parameters) drawn in the figure, so it stands alone in a paper.
 * The pure parts (identity lines, sizes, file names) load in Node's tests too. */
(function (root, factory) {
  const api = factory();
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else (root.advtopo = root.advtopo || {}).figure = api;
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  const SVG_NS = "http://www.w3.org/2000/svg";
  const PNG_SCALE = 2;  // device pixels per CSS pixel of the PNG
  const LINE_H = 16, PAD = 10;
  // what the page's CSS decides and an SVG file needs written on each element
  const STYLE_PROPS = ["fill", "fill-opacity", "stroke", "stroke-width", "stroke-opacity", "stroke-dasharray",
    "opacity", "font-family", "font-size", "font-weight", "text-anchor", "dominant-baseline", "visibility", "display"];

  function num(v) {
    return typeof v === "number" && !Number.isInteger(v) ? String(+v.toPrecision(4)) : String(v);
  }

  /** The lines naming a graph: what it is, then how it was built (the mapper parameters). */
  function identityLines(entry) {
    const e = entry || {};
    const p = e.params || {};
    const what = [e.model, e.layer, e.attack && `${e.attack} ε = ${num(+e.eps || 0)}`].filter(Boolean).join(" · ");
    const parts = [];
    if (p.lens) parts.push(`lens ${p.lens}`);
    if (p.cover || p.n_intervals != null) parts.push(`cover ${p.cover || "uniform"} ${p.n_intervals != null ? p.n_intervals : "?"} × ${p.overlap != null ? num(p.overlap) : "?"}`);
    if (p.clusterer) parts.push(`${p.clusterer}${p.eps != null ? ` eps ${num(p.eps)}` : ""}${p.eps_requested === "auto" ? " (auto)" : ""}${p.min_samples != null ? ` min ${p.min_samples}` : ""}`);
    if (p.metric) parts.push(`metric ${p.metric}`);
    const rows = p.rows || e.rows;
    if (rows) parts.push(`rows ${rows}`);
    if (e.mapper_set) parts.push(`set ${e.mapper_set}`);
    if (e.recomputed) parts.push("recomputed");
    return [what || String(e.id || "graph"), parts.join(" · ")].filter(Boolean);
  }

  /** A file name from free text: letters, digits, dot, dash and underscore only. */
  function fileName(stem, ext) {
    const s = String(stem || "figure").replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._]+|_+$/g, "").slice(0, 120);
    return `${s || "figure"}.${ext}`;
  }

  /** The PNG's pixel size for an SVG of w x h CSS pixels. */
  function pngSize(w, h, scale = PNG_SCALE) {
    return { width: Math.round(w * scale), height: Math.round(h * scale) };
  }

  // ------------------------------------------------------------------ DOM (browser only)
  function el(name, attrs, text) {
    const e = document.createElementNS(SVG_NS, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    return e;
  }

  /** A deep clone of `svg` whose every element carries its computed style (the page's CSS is not in the file). */
  function inlinedClone(svg) {
    const clone = svg.cloneNode(true);
    const src = [svg, ...svg.querySelectorAll("*")], dst = [clone, ...clone.querySelectorAll("*")];
    src.forEach((s, i) => {
      const cs = getComputedStyle(s);
      dst[i].setAttribute("style", STYLE_PROPS.map((k) => `${k}:${cs.getPropertyValue(k)}`).join(";"));
      dst[i].removeAttribute("class");
    });
    // nothing outside the file: images and links only as data: URIs or same-file #ids
    clone.querySelectorAll("[href], [*|href]").forEach((e) => {
      for (const a of ["href", "xlink:href"]) {
        const v = e.getAttribute(a);
        if (v && !v.startsWith("#") && !v.startsWith("data:")) e.removeAttribute(a);
      }
    });
    return clone;
  }

  function textLines(g, lines, x, y, first) {
    lines.forEach((t, k) => g.appendChild(el("text", { x, y: y + k * LINE_H, "font-family": "sans-serif",
      "font-size": k === 0 && first ? 13 : 11, "font-weight": k === 0 && first ? 600 : 400, fill: k === 0 ? "#111827" : "#4b5563" }, t)));
  }

  /** The app's legend (#legend) redrawn in SVG: class swatches, the colour bar, what marks mean. */
  function legendGroup(width) {
    const g = el("g", { class: "fig-legend" });
    const L = document.getElementById("legend");
    if (!L) return { g, height: 0 };
    let x = 0, y = 0;
    const items = [...L.querySelectorAll(".item")];
    items.forEach((it) => {
      const sw = it.querySelector(".sw");
      const label = it.textContent.trim();
      const w = 18 + label.length * 6.2;
      if (x + w > width && x > 0) { x = 0; y += LINE_H; }
      g.appendChild(el("rect", { x, y: y + 2, width: 10, height: 10, rx: 2, fill: sw ? getComputedStyle(sw).backgroundColor : "#999" }));
      g.appendChild(el("text", { x: x + 14, y: y + 11, "font-family": "sans-serif", "font-size": 11, fill: "#374151" }, label));
      x += w + 8;
    });
    if (items.length) y += LINE_H + 4;
    const bar = L.querySelector(".colorbar svg");
    if (bar) {
      const c = inlinedClone(bar);
      c.setAttribute("x", 0); c.setAttribute("y", y);
      g.appendChild(c);
      y += (+bar.getAttribute("height") || 34) + 4;
    }
    const marks = [...L.querySelectorAll(".marks > span")].map((s) => s.textContent.trim()).filter(Boolean);
    if (marks.length) { textLines(g, [marks.join("   ")], 0, y + 11, false); y += LINE_H; }
    return { g, height: y };
  }

  /**
   * One standalone SVG element: `blocks` ({svg, title: [lines]}) laid out at their on-screen
   * positions, each titled, then the legend when `legend`; white background.
   */
  function compose(blocks, legend) {
    const rects = blocks.map((b) => b.svg.getBoundingClientRect());
    const x0 = Math.min(...rects.map((r) => r.left)), y0 = Math.min(...rects.map((r) => r.top));
    const titleH = Math.max(...blocks.map((b) => b.title.length)) * LINE_H + 6;
    const rows = new Map();  // blocks on the same screen row share a title band
    rects.forEach((r) => { const k = Math.round(r.top - y0); if (!rows.has(k)) rows.set(k, rows.size); });
    let width = Math.max(...rects.map((r) => r.right - x0)) + 2 * PAD;
    const out = el("svg", { xmlns: SVG_NS, version: "1.1" });
    const body = el("g", {});
    blocks.forEach((b, i) => {
      const r = rects[i], row = rows.get(Math.round(r.top - y0));
      const x = PAD + r.left - x0, y = PAD + (r.top - y0) + (row + 1) * titleH;
      const t = el("g", { class: "fig-title" });
      textLines(t, b.title, x, y - titleH + 12, true);
      body.appendChild(t);
      const c = inlinedClone(b.svg);
      c.setAttribute("x", x); c.setAttribute("y", y);
      c.setAttribute("width", r.width); c.setAttribute("height", r.height);
      if (!c.getAttribute("viewBox")) c.setAttribute("viewBox", `0 0 ${r.width} ${r.height}`);
      c.setAttribute("overflow", "hidden");
      body.appendChild(c);
    });
    let height = PAD + Math.max(...rects.map((r) => r.bottom - y0)) + rows.size * titleH + PAD;
    if (legend) {
      const lg = legendGroup(width - 2 * PAD);
      if (lg.height) {
        lg.g.setAttribute("transform", `translate(${PAD},${height})`);
        body.appendChild(lg.g);
        height += lg.height + PAD;
      }
    }
    width = Math.ceil(width); height = Math.ceil(height);
    out.setAttribute("width", width); out.setAttribute("height", height);
    out.setAttribute("viewBox", `0 0 ${width} ${height}`);
    out.appendChild(el("rect", { x: 0, y: 0, width, height, fill: "#ffffff" }));
    out.appendChild(body);
    return { svg: out, width, height };
  }

  function svgText(svg) {
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(svg);
  }

  function download(blob, name) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }

  /** The PNG of an SVG text, PNG_SCALE device pixels per CSS pixel, drawn on white. */
  function pngBlob(text, width, height) {
    return new Promise((resolve, reject) => {
      const img = new Image();
      const url = URL.createObjectURL(new Blob([text], { type: "image/svg+xml" }));
      img.onload = () => {
        const size = pngSize(width, height);
        const canvas = document.createElement("canvas");
        canvas.width = size.width; canvas.height = size.height;
        const ctx = canvas.getContext("2d");
        ctx.fillStyle = "#ffffff"; ctx.fillRect(0, 0, size.width, size.height);
        ctx.drawImage(img, 0, 0, size.width, size.height);
        URL.revokeObjectURL(url);
        canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("the browser could not encode the PNG"))), "image/png");
      };
      img.onerror = () => { URL.revokeObjectURL(url); reject(new Error("the figure's SVG could not be drawn")); };
      img.src = url;
    });
  }

  /** Download `blocks` as `format` ("svg" or "png") under `stem`. */
  function save(blocks, legend, format, stem) {
    const fig = compose(blocks, legend);
    const text = svgText(fig.svg);
    if (format === "svg") { download(new Blob([text], { type: "image/svg+xml" }), fileName(stem, "svg")); return Promise.resolve(); }
    return pngBlob(text, fig.width, fig.height).then((b) => download(b, fileName(stem, "png")));
  }

  function store() { return self.advtopo.store; }
  function panelBlock(p) {
    const e = store().entry.get(p.id) || { id: p.id };
    return { svg: p.svg.node(), title: identityLines(e) };
  }
  function exportPanel(p, format) { return save([panelBlock(p)], true, format, p.id); }
  function exportGrid(format) {
    const panels = store().state.panels.filter((p) => p.svg && p.svg.node().isConnected);
    if (!panels.length) return Promise.resolve();
    return save(panels.map(panelBlock), true, format, "graphs-" + panels.length);
  }
  function exportCard(card, format) {
    const svgs = [...card.querySelectorAll("svg")].filter((s) => !s.closest("button"));
    if (!svgs.length) return Promise.resolve();
    const h = card.querySelector("h3"), title = h ? h.textContent.trim() : "chart";
    const run = store().index && store().index.name;
    return save(svgs.map((s, i) => ({ svg: s, title: i === 0 ? [title, run ? `run ${run}` : ""].filter(Boolean) : [] })), false, format, title);
  }

  function buttons(host, what, onExport) {
    for (const format of ["svg", "png"]) {
      const b = document.createElement("button");
      b.className = `btn small ghost fig-${format}`;
      b.textContent = format.toUpperCase();
      const label = `Download ${what} as ${format.toUpperCase()}${format === "png" ? " (2x)" : ""}`;
      b.title = label; b.setAttribute("aria-label", label);
      b.addEventListener("click", (ev) => { ev.stopPropagation(); onExport(format).catch((err) => console.warn(err)); });
      host.appendChild(b);
    }
  }
  /** Hooks: a panel's header (graphs.js), a Summary card (summary.js), the top bar (whole grid). */
  function panelButtons(head, p) { buttons(head, "this graph", (f) => exportPanel(p, f)); }
  function cardButtons(card) {
    const tools = document.createElement("div");
    tools.className = "fig-tools"; tools.style.float = "right";
    buttons(tools, "this chart", (f) => exportCard(card, f));
    card.insertBefore(tools, card.firstChild);
  }
  function gridButtons() {
    const spacer = document.querySelector("#topbar .spacer");  // the top bar's right-hand group starts after it
    if (!spacer || document.getElementById("grid-figure")) return;
    const span = document.createElement("span");
    span.id = "grid-figure"; span.className = "grid-figure"; span.title = "the comparison grid as a figure";
    buttons(span, "the comparison grid", (f) => exportGrid(f));
    spacer.after(span);
  }
  if (typeof document !== "undefined" && document.querySelector) {
    if (document.querySelector("#topbar .spacer")) gridButtons();  // the page's scripts come after the top bar
    else document.addEventListener("DOMContentLoaded", gridButtons);
  }

  return { identityLines, fileName, pngSize, PNG_SCALE, STYLE_PROPS,
    compose, exportPanel, exportGrid, exportCard, panelButtons, cardButtons, gridButtons };
});
