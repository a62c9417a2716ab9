/* The "Activation graph" view (Gebhart et al.; activation_graph.json of the study's
 * [activation_graph] stage): for one sample, the clean and the adversarial dominant subgraphs
 * drawn on the network's layers (neurons as small marks in one column per layer, edges shared /
 * clean-only / adversarial-only) and the two H0 barcodes, in a card over the page. Opened from
 * the sample locator. The pure helpers (edge classes, neuron positions, bars) also load in
 * Node (require), for tests/js/actgraph.test.js. */
(function (root, pureFactory, viewFactory) {
  const pure = pureFactory();
  if (typeof module !== "undefined" && module.exports) { module.exports = pure; return; }
  const A = (root.advtopo = root.advtopo || {});
  A.actgraph = Object.assign({}, pure, viewFactory(A, pure));
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  /** Edges [src, dst, layer, weight, persistence] of the clean and the adversarial dominant
   * subgraphs, merged: {src, dst, layer, cls ("shared" | "clean" | "adversarial"), clean,
   * adversarial (the two [weight, persistence] or null)}, in the clean list's order, then the
   * adversarial-only ones; with counts per class and the Jaccard index of the two edge sets. */
  function classifyEdges(cleanEdges, advEdges) {
    const key = (e) => e[0] + ":" + e[1];
    const adv = new Map((advEdges || []).map((e) => [key(e), e]));
    const seen = new Set();
    const edges = [];
    for (const e of cleanEdges || []) {
      const k = key(e);
      if (seen.has(k)) continue;
      seen.add(k);
      const a = adv.get(k);
      edges.push({ src: e[0], dst: e[1], layer: e[2], cls: a ? "shared" : "clean", clean: [e[3], e[4]], adversarial: a ? [a[3], a[4]] : null });
    }
    for (const e of advEdges || []) {
      const k = key(e);
      if (seen.has(k)) continue;
      seen.add(k);
      edges.push({ src: e[0], dst: e[1], layer: e[2], cls: "adversarial", clean: null, adversarial: [e[3], e[4]] });
    }
    const counts = { shared: 0, clean: 0, adversarial: 0 };
    edges.forEach((e) => { counts[e.cls] += 1; });
    const union = edges.length;
    return { edges, counts, jaccard: union ? counts.shared / union : null };
  }

  /** Index of the vertex layer ({start, stop}) holding vertex `v`, or -1. */
  function vertexLayer(v, layers) {
    let lo = 0, hi = (layers || []).length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1, L = layers[mid];
      if (v < L.start) hi = mid - 1;
      else if (v >= L.stop) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  /** Where vertex `v` is drawn: its layer's column (evenly spaced over [pad, width - pad]) and
   * its rank within the layer (top to bottom over [pad, height - pad]); null outside the layers. */
  function neuronPosition(v, layers, width, height, pad) {
    const i = vertexLayer(v, layers);
    if (i < 0) return null;
    const L = layers[i], n = Math.max(1, L.stop - L.start);
    const x = layers.length > 1 ? pad + (i * (width - 2 * pad)) / (layers.length - 1) : width / 2;
    const y = pad + ((v - L.start + 0.5) / n) * (height - 2 * pad);
    return { x, y, layer: i, index: v - L.start };
  }

  /** The `n` longest bars of [birth, death] pairs (birth >= death), longest first (ties: higher
   * birth first), as {birth, death, length}; bars of length <= 0 are left out. */
  function longestBars(bars, n) {
    return (bars || [])
      .map((b) => ({ birth: +b[0], death: +b[1], length: +b[0] - +b[1] }))
      .filter((b) => Number.isFinite(b.length) && b.length > 0)
      .sort((a, b) => b.length - a.length || b.birth - a.birth)
      .slice(0, n);
  }

  return { classifyEdges, vertexLayer, neuronPosition, longestBars };
}, function (A, P) {
  "use strict";
  const S = A.store;
  const { fmt, esc } = A.format;
  const W = 880, H = 340, PAD = 28, BAR_W = 420, BAR_H = 150, N_BARS = 50;
  let docPromise = null;

  /** activation_graph.json (the export's embedded copy, or the server's), fetched once. */
  function load() {
    if (!docPromise) {
      docPromise = S.EMBED
        ? Promise.resolve(S.EMBED.activation_graph || { available: false })
        : fetch("api/activation-graph").then((r) => (r.ok ? r.json() : { available: false })).catch(() => ({ available: false }));
    }
    return docPromise;
  }

  function sampleOf(doc, sid) {
    return doc && doc.available ? (doc.samples || []).find((s) => s.sample_id === sid) || null : null;
  }

  /** A button "Activation graph" in `host` (the locator's info box) when sample `sid` has one. */
  async function decorateLocator(host, sid) {
    const doc = await load();
    if (!sampleOf(doc, sid) || !host.isConnected || S.state.locate !== sid || host.querySelector(".ag-open")) return;
    const b = document.createElement("button");
    b.className = "btn small ag-open";
    b.textContent = "Activation graph";
    b.title = "Clean vs adversarial dominant subgraph and H0 barcodes of this sample (Gebhart et al.)";
    b.addEventListener("click", () => open(sid));
    host.appendChild(b);
  }

  function close() {
    const el = document.querySelector(".ag-overlay");
    if (el) el.remove();
    document.removeEventListener("keydown", onKey);
  }
  function onKey(ev) { if (ev.key === "Escape") close(); }

  /** Open the card of sample `sid` (adversarial version at `epsKey`, default the first eps). */
  async function open(sid, epsKey) {
    const doc = await load();
    const s = sampleOf(doc, sid);
    if (!s) { S.toast(`sample ${sid} has no activation graph in this run`, true); return; }
    const keys = Object.keys(s.adversarial || {});
    const key = keys.includes(epsKey) ? epsKey : keys[0];
    close();
    const ov = document.createElement("div");
    ov.className = "ag-overlay";
    ov.setAttribute("role", "dialog");
    ov.setAttribute("aria-modal", "true");
    ov.setAttribute("aria-label", `Activation graph of sample ${sid}`);
    ov.innerHTML = `<div class="ag-card" data-sample="${sid}" data-eps="${esc(key)}"></div>`;
    ov.addEventListener("click", (ev) => { if (ev.target === ov) close(); });
    document.body.appendChild(ov);
    document.addEventListener("keydown", onKey);
    render(ov.querySelector(".ag-card"), doc, s, key);
    const btn = ov.querySelector(".ag-close");
    if (btn) btn.focus();
  }

  function imageFor(doc, sid, key) {
    const DS = A.data.source;
    const clean = DS.image(sid, "clean", null);
    const adv = DS.image(sid, "adversarial", { model: doc.model, attack: doc.attack, eps: +key });
    return [clean, adv];
  }

  function render(card, doc, s, key) {
    card.dataset.eps = key;
    const c = s.clean, a = s.adversarial[key];
    const merged = P.classifyEdges(c.edges, a.edges);
    const name = (k) => esc(S.cname(k));
    const [imC, imA] = imageFor(doc, s.sample_id, key);
    const epsButtons = Object.keys(s.adversarial).map((k) => `<button data-v="${esc(k)}" class="${k === key ? "on" : ""}">${esc(k)}</button>`).join("");
    card.innerHTML =
      `<div class="ag-head"><b>Activation graph · sample ${s.sample_id}</b><span class="hint">${esc(doc.model)} · ${esc(doc.attack)} · dominant subgraph = the ${doc.top_k} most persistent H0 pairs' edges</span>` +
      `<button class="btn small ghost ag-close" title="Close (Esc)" aria-label="Close">✕</button></div>` +
      `<div class="ag-row"><div class="ag-thumbs">${imC ? `<img src="${imC}" alt="clean">` : ""}${imA ? `<img src="${imA}" alt="adversarial">` : ""}</div>` +
      `<div>label <b>${name(s.label)}</b> · clean → <b>${name(c.prediction)}</b> (${fmt(c.confidence, 3)}) · ` +
      `adversarial ε=${esc(key)} → <b class="${a.prediction !== s.label ? "ag-fooled" : ""}">${name(a.prediction)}</b> (${fmt(a.confidence, 3)})</div>` +
      `<label class="ag-epsl">ε <div class="seg ag-eps">${epsButtons}</div></label></div>` +
      `<div class="ag-legend"><span class="item"><i class="sw shared"></i>shared ${merged.counts.shared}</span>` +
      `<span class="item"><i class="sw clean"></i>clean only ${merged.counts.clean}</span>` +
      `<span class="item"><i class="sw adversarial"></i>adversarial only ${merged.counts.adversarial}</span>` +
      `<span class="hint">Jaccard ${fmt(merged.jaccard)} · edge width ∝ persistence</span></div>` +
      netSvg(doc, merged) +
      `<div class="ag-bars">${barcodeSvg(c, a, "clean")}${barcodeSvg(a, c, "adversarial")}</div>` +
      `<div class="ag-row ag-tables">${statsTable(c, a, key)}${detectionTable(doc, key)}</div>` +
      `<p class="hint ag-h1">${esc((doc.h1 && doc.h1.note) || "")}</p>`;
    card.querySelector(".ag-close").addEventListener("click", close);
    card.querySelectorAll(".ag-eps button").forEach((b) => b.addEventListener("click", () => render(card, doc, s, b.dataset.v)));
    card.querySelectorAll(".ag-thumbs img").forEach((im) => im.addEventListener("error", () => im.remove()));
  }

  function netSvg(doc, merged) {
    const layers = (doc.graph && doc.graph.layers) || [];
    const pos = (v) => P.neuronPosition(v, layers, W, H, PAD);
    const pmax = Math.max(1e-12, ...merged.edges.map((e) => Math.max(e.clean ? e.clean[1] : 0, e.adversarial ? e.adversarial[1] : 0)));
    const cols = layers.map((L, i) => {
      const x = layers.length > 1 ? PAD + (i * (W - 2 * PAD)) / (layers.length - 1) : W / 2;
      return `<g class="ag-col" data-layer="${esc(L.name)}"><line x1="${x}" x2="${x}" y1="${PAD}" y2="${H - PAD}"></line>` +
        `<text x="${x}" y="${PAD - 10}" text-anchor="middle">${esc(L.name)}</text>` +
        `<text class="ag-n" x="${x}" y="${H - PAD + 16}" text-anchor="middle">${(L.stop - L.start).toLocaleString()}</text></g>`;
    }).join("");
    const verts = new Map();
    const lines = merged.edges.map((e) => {
      const p = pos(e.src), q = pos(e.dst);
      if (!p || !q) return "";
      verts.set(e.src, p); verts.set(e.dst, q);
      const per = Math.max(e.clean ? e.clean[1] : 0, e.adversarial ? e.adversarial[1] : 0);
      const w = (0.8 + 3.2 * per / pmax).toFixed(2);
      const mx = (p.x + q.x) / 2;
      const tip = `${e.cls === "shared" ? "shared" : e.cls + " only"}: ${layers[p.layer].name}[${p.index}] → ${layers[q.layer].name}[${q.index}]` +
        (e.clean ? ` · clean weight ${fmt(e.clean[0], 4)}, persistence ${fmt(e.clean[1], 4)}` : "") +
        (e.adversarial ? ` · adversarial weight ${fmt(e.adversarial[0], 4)}, persistence ${fmt(e.adversarial[1], 4)}` : "");
      return `<path class="ag-edge ${e.cls}" data-src="${e.src}" data-dst="${e.dst}" stroke-width="${w}" ` +
        `d="M${p.x.toFixed(1)},${p.y.toFixed(1)} C${mx.toFixed(1)},${p.y.toFixed(1)} ${mx.toFixed(1)},${q.y.toFixed(1)} ${q.x.toFixed(1)},${q.y.toFixed(1)}"><title>${esc(tip)}</title></path>`;
    }).join("");
    const marks = [...verts.entries()].map(([v, p]) =>
      `<circle class="ag-neuron" data-v="${v}" cx="${p.x.toFixed(1)}" cy="${p.y.toFixed(1)}" r="2.6"><title>${esc(layers[p.layer].name)}[${p.index}]</title></circle>`).join("");
    return `<svg class="ag-net" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="dominant subgraphs on the network's layers">${cols}<g>${lines}</g><g>${marks}</g></svg>`;
  }

  /** One graph's H0 barcode: its N_BARS longest bars, on the weight axis shared with `other`'s. */
  function barcodeSvg(g, other, kind) {
    const top = P.longestBars(g.bars, N_BARS);
    const all = P.longestBars(g.bars, 1e9).concat(P.longestBars(other.bars, 1e9));
    const hi = Math.max(1e-12, ...all.map((b) => b.birth));
    const x = (v) => 36 + (v / hi) * (BAR_W - 48);
    const step = (BAR_H - 30) / Math.max(1, N_BARS);
    const rows = top.map((b, i) => `<line class="ag-bar ${kind}" x1="${x(b.death).toFixed(1)}" x2="${x(b.birth).toFixed(1)}" ` +
      `y1="${(18 + i * step).toFixed(1)}" y2="${(18 + i * step).toFixed(1)}"><title>birth ${fmt(b.birth, 4)} · death ${fmt(b.death, 4)}</title></line>`).join("");
    const ticks = [0, hi / 2, hi].map((v) => `<text class="ag-tick" x="${x(v).toFixed(1)}" y="${BAR_H - 2}" text-anchor="middle">${fmt(v, 3)}</text>`).join("");
    return `<svg class="ag-barcode" data-kind="${kind}" viewBox="0 0 ${BAR_W} ${BAR_H}" width="${BAR_W}" height="${BAR_H}" role="img" aria-label="${kind} H0 barcode">` +
      `<text class="ag-title" x="4" y="11">H0 barcode, ${kind}: ${top.length} longest of ${fmt(g.stats.h0_n_bars, 0)} bars (x: edge weight)</text>${rows}${ticks}</svg>`;
  }

  function statsTable(c, a, key) {
    const rows = [["h0_n_bars", "bars of positive length", 0], ["h0_total_persistence", "total persistence", 3],
      ["h0_max_persistence", "longest bar", 3], ["h0_persistent_entropy", "persistent entropy", 3],
      ["h1_essential", "essential H1 (cycle rank)", 0], ["n_positive_edges", "positive edges", 0]];
    return `<table class="ag-stats"><tr><th></th><th>clean</th><th>ε=${esc(key)}</th></tr>` +
      rows.map(([k, label, d]) => `<tr><td>${label}</td><td>${fmt(c.stats[k], d)}</td><td>${fmt(a.stats[k], d)}</td></tr>`).join("") + "</table>";
  }

  function detectionTable(doc, key) {
    const d = ((doc.detection || {}).by_eps || []).find((x) => x.eps_key === key);
    if (!d) return "";
    const ci = (m) => (m && m.auc != null ? `${fmt(m.auc, 3)} <span class="hint">[${fmt(m.lo, 3)}, ${fmt(m.hi, 3)}]</span>` : "–");
    const names = { topological: "topological features (all)", persistence_statistics: "· barcode statistics",
      dominant_subgraph: "· dominant subgraph", raw_activations: "raw activations (PCA)", confidence: "softmax confidence" };
    return `<table class="ag-detect"><tr><th>detector (clean vs ε=${esc(key)}, ${esc(doc.detection.classifier)}, ${doc.detection.cv}-fold)</th><th>ROC AUC [CI]</th></tr>` +
      Object.keys(names).filter((m) => d.methods[m]).map((m) => `<tr data-method="${m}"><td>${names[m]}</td><td>${ci(d.methods[m])}</td></tr>`).join("") + "</table>";
  }

  return { load, open, close, decorateLocator };
});
