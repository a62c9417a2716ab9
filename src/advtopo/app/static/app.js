/* advtopo web app: plain JS + d3 (vendored), no build step.
 * Two data sources with one interface: the local server's JSON API, or the data embedded
 * by the static export (window.ADVTOPO_EMBED). Everything the views need is derived from
 * a graph's JSON (nodes, edges, points), so the export behaves like the server. */
(function () {
  "use strict";
  const T0 = performance.now();
  const EMBED = window.ADVTOPO_EMBED || null;
  const MAX_PANELS = 4;
  const ATTRS = {
    frac_adversarial: { label: "fraction adversarial", domain: [0, 1] },
    purity: { label: "purity", domain: [0, 1] },
    frac_misclassified: { label: "misclassification rate", domain: [0, 1] },
    mean_l2: { label: "mean L2 norm", domain: null },
    mean_lens: { label: "mean lens value", domain: null },
  };
  const CMAPS = {
    viridis: d3.interpolateViridis, plasma: d3.interpolatePlasma, magma: d3.interpolateMagma,
    cividis: d3.interpolateCividis, turbo: d3.interpolateTurbo, blues: d3.interpolateBlues,
    reds: d3.interpolateReds, RdYlBu: (t) => d3.interpolateRdYlBu(1 - t),
  };

  // ------------------------------------------------------------------ data source
  const api = {
    async json(url, opts) {
      const r = await fetch(url, opts);
      let body = null;
      try { body = await r.json(); } catch (e) { body = null; }
      if (!r.ok) throw new Error((body && body.error) || `${r.status} ${r.statusText}`);
      return body;
    },
  };
  const DS = EMBED ? {
    mode: "static",
    index: async () => EMBED.index,
    graph: async (id) => { if (!EMBED.graphs[id]) throw new Error("graph not in this export"); return EMBED.graphs[id]; },
    vulnerability: async () => EMBED.vulnerability || { samples: [] },
    datapaths: async () => EMBED.datapaths || { available: false },
    image(sid, kind, g) {
      const im = EMBED.images || {};
      if (kind === "clean") return (im.clean || {})[sid] || null;
      const key = advKey(g);
      return key && im.adversarial && im.adversarial[key] ? im.adversarial[key][sid] || null : null;
    },
    csvUrl: null,
  } : {
    mode: "server",
    index: () => api.json("api/index"),
    graph: (id) => api.json("api/graph/" + encodeURIComponent(id)),
    vulnerability: () => api.json("api/vulnerability"),
    datapaths: () => api.json("api/datapaths"),
    diagram: (key) => api.json("api/diagram?key=" + encodeURIComponent(key)),
    image(sid, kind, g) {
      if (kind === "clean") return INDEX.images && INDEX.images.clean ? `api/image/clean/${sid}.png` : null;
      if (!advKey(g)) return null;
      return `api/image/adversarial/${enc(g.model)}/${enc(g.attack)}/${enc(String(g.eps))}/${sid}.png`;
    },
    csvUrl: (gid, nid) => `api/node/${enc(gid)}/${enc(nid)}/members.csv`,
    featurevis: (gid, nid) => api.json(`api/featurevis/${enc(gid)}/${enc(nid)}`),
    embedding: (gid, method) => api.json(`api/embedding/${enc(gid)}?method=${enc(method)}`),
  };
  const enc = encodeURIComponent;
  function advKey(entry) {
    if (!entry || !(+entry.eps > 0)) return null;
    const adv = (INDEX.images && INDEX.images.adversarial) || {};
    for (const k of Object.keys(adv)) {
      const p = k.split("/");
      if (p.length === 3 && p[0] === entry.model && p[1] === entry.attack && Math.abs(+p[2] - +entry.eps) < 1e-12) return k;
    }
    return null;
  }

  // ------------------------------------------------------------------ state
  let INDEX = null, CLASSES = [], CCOLOR = () => "#999", ENTRY = new Map();
  const GRAPHS = new Map();   // id -> graph json (+ derived caches)
  const state = {
    panels: [],               // [{id, el, zoom, transform}]
    layout: "force", color: "class", cmap: "viridis", points: "both", size: "members",
    minSize: 1, jaccard: 0, search: null, locate: null,
    selected: null,           // {gid, nid}
    highlight: null,          // {gid, nodes:Set, edges:Set, label}
  };
  window.advtopo = { state, GRAPHS, timings: {}, ready: null };

  // ------------------------------------------------------------------ helpers
  const $ = (s) => document.querySelector(s);
  const fmt = (v, d = 2) => (v == null || Number.isNaN(v) ? "–" : (+v).toFixed(d));
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const cname = (c) => (CLASSES[c] != null ? CLASSES[c] : String(c));
  function toast(msg, err) {
    const t = $("#toast"); t.textContent = msg; t.className = "toast" + (err ? " err" : "");
    clearTimeout(toast._t); toast._t = setTimeout(() => t.classList.add("hidden"), err ? 6000 : 3000);
  }
  function graphLabel(e) {
    if (!e) return "";
    const nModels = (INDEX.models || []).length;
    const parts = [];
    if (nModels !== 1) parts.push(e.model);
    parts.push(e.layer);
    parts.push(`${e.attack} ε=${e.eps}`);
    if (e.recomputed) parts.push("(recomputed)");
    return parts.join(" · ");
  }

  // derived per-graph data ----------------------------------------------------------
  function derive(g) {
    if (g._d) return g._d;
    const P = g.points || {};
    const nodeById = new Map(g.nodes.map((n, i) => [String(n.id), i]));
    const adj = g.nodes.map(() => []);
    g.edges.forEach((e, k) => {
      const a = nodeById.get(String(e.source)), b = nodeById.get(String(e.target));
      if (a == null || b == null) return;
      adj[a].push([b, k]); adj[b].push([a, k]);
    });
    const rowsBySample = new Map();
    (P.sample_id || []).forEach((s, r) => { if (!rowsBySample.has(s)) rowsBySample.set(s, []); rowsBySample.get(s).push(r); });
    const nodesByRow = new Map();
    g.nodes.forEach((n, i) => (n.members || []).forEach((r) => { if (!nodesByRow.has(r)) nodesByRow.set(r, []); nodesByRow.get(r).push(i); }));
    g._d = { nodeById, adj, rowsBySample, nodesByRow, views: {} };
    return g._d;
  }

  // per node, for a points mode: class histogram, counts, attributes
  function nodeView(g, mode) {
    const d = derive(g);
    if (d.views[mode]) return d.views[mode];
    const P = g.points || {};
    const lab = P.label || [], pred = P.prediction || [], adv = P.is_adversarial || [], lens = P.lens || [], l2 = P.l2 || [];
    const hasPts = lab.length > 0;
    const nC = Math.max(CLASSES.length, 1);
    const out = g.nodes.map((n) => {
      const hist = new Array(nC).fill(0);
      let count = 0, nAdv = 0, nMis = 0, lsum = 0, lcnt = 0, l2sum = 0, l2cnt = 0;
      if (hasPts) {
        for (const r of n.members || []) {
          const a = !!adv[r];
          if ((mode === "clean" && a) || (mode === "adversarial" && !a)) continue;
          count++; if (a) nAdv++;
          const c = lab[r];
          if (c >= hist.length) hist.length = c + 1, hist.fill(0, nC);
          hist[c] = (hist[c] || 0) + 1;
          if (pred[r] != null && pred[r] !== c) nMis++;
          if (lens[r] != null) { lsum += +lens[r]; lcnt++; }
          if (l2[r] != null) { l2sum += +l2[r]; l2cnt++; }
        }
      } else {
        for (const [c, v] of Object.entries(n.class_hist || {})) hist[+c] = v;
        count = n.size || (n.members || []).length;
        nAdv = Math.round((n.frac_adversarial || 0) * count);
        nMis = Math.round((n.frac_misclassified || 0) * count);
      }
      const maxc = Math.max(0, ...hist);
      return {
        count, hist, nAdv, nMis,
        purity: count ? maxc / count : 0,
        frac_adversarial: count ? nAdv / count : 0,
        frac_misclassified: count ? nMis / count : 0,
        mean_lens: lcnt ? lsum / lcnt : n.mean_lens,
        mean_l2: l2cnt ? l2sum / l2cnt : n.mean_l2,
        dominant: hist.indexOf(maxc),
      };
    });
    d.views[mode] = out;
    return out;
  }

  // ------------------------------------------------------------------ layouts (deterministic)
  function layoutFor(g, kind, aspect) {
    const d = derive(g);
    d.layouts = d.layouts || {};
    if (kind !== "lens") kind = `force:${aspect}`;
    if (d.layouts[kind]) return d.layouts[kind];
    const t = performance.now();
    const n = g.nodes.length;
    const maxS = d3.max(g.nodes, (x) => x.size || (x.members || []).length) || 1;
    const nodes = g.nodes.map((x, i) => {
      const s = x.size || (x.members || []).length;
      return { i, r: 3 + 7 * Math.sqrt(s / maxS), lens: x.mean_lens };
    });
    const links = [];
    g.edges.forEach((e) => {
      const a = d.nodeById.get(String(e.source)), b = d.nodeById.get(String(e.target));
      if (a != null && b != null) links.push({ source: a, target: b, j: e.jaccard || 0 });
    });
    // seeded initial positions: along the lens (mapper graphs are ordered by it), y from a seeded LCG;
    // a good start lets big graphs settle in few ticks
    const rnd = d3.randomLcg(7), span = Math.max(120, 26 * Math.sqrt(n));
    const lensVals = nodes.map((p) => p.lens).filter((v) => v != null && isFinite(v));
    const le = lensVals.length ? d3.extent(lensVals) : [0, 1];
    const lx = (v) => (le[1] > le[0] && v != null && isFinite(v) ? ((v - le[0]) / (le[1] - le[0]) - 0.5) * span : (rnd() - 0.5) * span);
    nodes.forEach((p) => { p.x = lx(p.lens); p.y = (rnd() - 0.5) * span; });
    const big = n > 400;
    const sim = d3.forceSimulation(nodes).randomSource(d3.randomLcg(42))
      .force("link", d3.forceLink(links).id((p) => p.i).distance((l) => 14 + l.source.r + l.target.r).strength(0.8))
      .force("charge", d3.forceManyBody().strength(-28).distanceMax(260).theta(big ? 1.2 : 0.9))
      .stop();
    const collide = d3.forceCollide((p) => p.r + 2).iterations(1);
    let lensExtent = null;
    if (kind === "lens") {
      lensExtent = [le[0], le[1]];
      if (lensExtent[0] === lensExtent[1]) lensExtent = [lensExtent[0] - 0.5, lensExtent[1] + 0.5];
      const xs = d3.scaleLinear().domain(lensExtent).range([0, Math.max(200, 22 * Math.sqrt(n) * 2.2)]);
      nodes.forEach((p) => { p.fx = xs(p.lens != null && isFinite(p.lens) ? p.lens : lensExtent[0]); });
      sim.force("y", d3.forceY(0).strength(0.08));
    } else {
      // a tall panel gets a tall picture: pull harder along x than y
      const ax = aspect || 1, k = big ? 0.25 : 1; // big graphs keep more of their lens-ordered start
      sim.force("x", d3.forceX(0).strength(k * 0.07 * Math.max(1, ax))).force("y", d3.forceY(0).strength(0.07 / Math.min(1, ax)));
    }
    const ticks = n > 1500 ? 40 : n > 400 ? 50 : 300, late = n > 400 ? 8 : ticks;
    sim.alpha(1).alphaDecay(1 - Math.pow(0.001, 1 / ticks));
    for (let k = 0; k < ticks; k++) { if (k === ticks - late) sim.force("collide", collide); sim.tick(); }
    const res = { x: nodes.map((p) => p.x), y: nodes.map((p) => p.y), lensExtent, ms: performance.now() - t };
    if (kind === "lens") { // keep the lens value itself as x (the axis is in lens units)
      const xs = d3.scaleLinear().domain(lensExtent).range([0, Math.max(200, 22 * Math.sqrt(n) * 2.2)]);
      res.x = res.x.map((v) => xs.invert(v));
    }
    d.layouts[kind] = res;
    window.advtopo.timings[`layout:${kind}:${g._id || ""}`] = res.ms;
    return res;
  }

  // ------------------------------------------------------------------ encodings shared by all panels
  function visibleViews() {
    return state.panels.filter((p) => GRAPHS.has(p.id)).map((p) => ({ p, g: GRAPHS.get(p.id), v: nodeView(GRAPHS.get(p.id), state.points) }));
  }
  function sharedScales() {
    const vis = visibleViews();
    let maxCount = 1;
    const sizeOf = sizeAccessor();
    vis.forEach(({ v }) => v.forEach((x) => { maxCount = Math.max(maxCount, sizeOf(x)); }));
    let domain = null;
    if (state.color !== "class") {
      const a = ATTRS[state.color];
      if (a.domain) domain = a.domain;
      else {
        const vals = [];
        vis.forEach(({ v }) => v.forEach((x) => { if (x.count && x[state.color] != null && isFinite(x[state.color])) vals.push(+x[state.color]); }));
        domain = vals.length ? d3.extent(vals) : [0, 1];
        if (domain[0] === domain[1]) domain = [domain[0] - 1e-6, domain[1] + 1e-6];
      }
    }
    return { maxCount, domain, color: domain ? d3.scaleSequential(CMAPS[state.cmap] || d3.interpolateViridis).domain(domain) : null };
  }
  function sizeAccessor() {
    if (state.size === "members") return (x) => x.count;
    const c = +state.size.slice(6);
    return (x) => x.hist[c] || 0;
  }
  function visibleNode(x) {
    const s = sizeAccessor()(x);
    return x.count > 0 && x.count >= state.minSize && (state.size === "members" || s > 0);
  }

  // ------------------------------------------------------------------ panels
  function entriesFor(filter) { return INDEX.graphs.filter((e) => Object.entries(filter).every(([k, v]) => e[k] === v)); }
  function uniq(a) { return [...new Set(a)]; }

  function addPanel(id) {
    if (state.panels.length >= MAX_PANELS) { toast(`at most ${MAX_PANELS} graphs side by side`); return; }
    const panel = { id, transform: d3.zoomIdentity };
    state.panels.push(panel);
    buildPanels();
  }
  function setPanels(ids) {
    state.panels = ids.slice(0, MAX_PANELS).map((id) => ({ id, transform: d3.zoomIdentity }));
    state.highlight = null;
    buildPanels();
  }

  function buildPanels() {
    const host = $("#panels");
    host.innerHTML = "";
    const n = state.panels.length;
    host.style.gridTemplateColumns = `repeat(${n <= 1 ? 1 : n === 4 ? 2 : n}, minmax(0, 1fr))`;
    state.panels.forEach((p, k) => {
      const el = document.createElement("div");
      el.className = "panel";
      el.dataset.graph = p.id;
      el.dataset.index = k;
      p.el = el;
      host.appendChild(el);
      const head = document.createElement("div");
      head.className = "panel-head";
      el.appendChild(head);
      const e = ENTRY.get(p.id) || {};
      const mk = (key, values, fmtv) => {
        const s = document.createElement("select");
        s.title = key; s.dataset.key = key;
        values.forEach((v) => { const o = document.createElement("option"); o.value = String(v); o.textContent = fmtv ? fmtv(v) : v; if (String(v) === String(e[key])) o.selected = true; s.appendChild(o); });
        s.addEventListener("change", () => {
          const want = { model: e.model, layer: e.layer, attack: e.attack, eps: e.eps };
          want[key] = key === "eps" ? +s.value : s.value;
          let hit = INDEX.graphs.find((x) => x.model === want.model && x.layer === want.layer && x.attack === want.attack && Math.abs(+x.eps - +want.eps) < 1e-12 && !x.recomputed);
          if (!hit) hit = INDEX.graphs.find((x) => x[key] === want[key] || (key === "eps" && Math.abs(+x.eps - +want.eps) < 1e-12));
          if (hit) { p.id = hit.id; p.transform = d3.zoomIdentity; buildPanels(); } else toast("no graph for that combination", true);
        });
        head.appendChild(s);
      };
      mk("model", uniq(INDEX.graphs.map((x) => x.model)));
      mk("layer", uniq(INDEX.graphs.map((x) => x.layer)));
      if (uniq(INDEX.graphs.map((x) => x.attack)).length > 1) mk("attack", uniq(INDEX.graphs.map((x) => x.attack)));
      mk("eps", uniq(INDEX.graphs.filter((x) => x.attack === e.attack).map((x) => +x.eps)).sort((a, b) => a - b), (v) => `ε = ${v}`);
      if (INDEX.app && INDEX.app.mode === "server") {
        const rb = document.createElement("button");
        rb.className = "btn small ghost"; rb.textContent = "⟳"; rb.title = "Recompute this graph with other parameters";
        rb.addEventListener("click", () => toggleRecompute(p));
        head.appendChild(rb);
      }
      if (DS.embedding) {
        const eb = document.createElement("button");
        eb.className = "btn small ghost emb-toggle"; eb.textContent = "⁘"; eb.title = "Linked 2-D embedding (PCA / t-SNE) of this graph's points";
        eb.addEventListener("click", () => toggleEmbedding(p));
        head.appendChild(eb);
      }
      const x = document.createElement("button");
      x.className = "btn small ghost x"; x.textContent = "✕"; x.title = "Remove this graph";
      x.addEventListener("click", () => { state.panels.splice(state.panels.indexOf(p), 1); buildPanels(); });
      head.appendChild(x);
      const title = document.createElement("div"); title.className = "panel-title"; title.textContent = graphLabel(e); el.appendChild(title);
      const stats = document.createElement("div"); stats.className = "panel-stats"; el.appendChild(stats);
      const loc = document.createElement("div"); loc.className = "panel-loc"; el.appendChild(loc);
      const svg = d3.select(el).append("svg").attr("class", "graph-svg");
      const msg = document.createElement("div"); msg.className = "msg"; msg.textContent = "loading…"; el.appendChild(msg);
      p.svg = svg;
      p.zoom = d3.zoom().scaleExtent([0.2, 30]).on("zoom", (ev) => { p.transform = ev.transform; applyTransform(p); });
      svg.call(p.zoom).on("dblclick.zoom", null);
      svg.on("click", (ev) => { if (ev.target === svg.node()) { clearSelection(); } });
      if (p.emb) { const m = p.emb.method; p.emb = null; openEmbedding(p, m); }
    });
    writeHash();
    updateSizeOptions();
    return Promise.all(state.panels.map((p) => loadGraph(p.id).then(() => true, (err) => {
      const m = p.el && p.el.querySelector(".msg"); if (m) m.textContent = "could not load: " + err.message;
      return false;
    }))).then(() => renderAll());
  }

  async function loadGraph(id) {
    if (GRAPHS.has(id)) return GRAPHS.get(id);
    const t = performance.now();
    const g = await DS.graph(id);
    window.advtopo.timings["fetch:" + id] = performance.now() - t;
    g.nodes = g.nodes || []; g.edges = g.edges || [];
    Object.defineProperty(g, "_id", { value: id, enumerable: false });
    GRAPHS.set(id, g);
    return g;
  }

  function renderAll() {
    const t = performance.now();
    const sc = sharedScales();
    state.panels.forEach((p) => { if (GRAPHS.has(p.id)) renderPanel(p, sc); });
    renderLegend(sc);
    renderLocatePanels();
    window.advtopo.timings.lastRender = performance.now() - t;
    if (!window.advtopo.timings.firstRender && state.panels.some((p) => GRAPHS.has(p.id))) {
      window.advtopo.timings.firstRender = performance.now() - T0;
      window.advtopo.timings.firstRenderAt = performance.now();
    }
    document.body.dataset.rendered = String((+document.body.dataset.rendered || 0) + 1);
  }

  function panelSize(p) {
    const r = p.svg.node().getBoundingClientRect();
    return { W: Math.max(120, r.width), H: Math.max(120, r.height) };
  }

  function renderPanel(p, sc) {
    const g = GRAPHS.get(p.id);
    const e = ENTRY.get(p.id) || {};
    const view = nodeView(g, state.points);
    const d = derive(g);
    const { W, H } = panelSize(p);
    // aspect bucket (1 = square, 2 = tall, 0.5 = wide): the layout is deterministic for each bucket
    const aspect = Math.pow(2, Math.max(-1, Math.min(1, Math.round(Math.log2(H / W)))));
    const L = layoutFor(g, state.layout, aspect);
    const lensMode = state.layout === "lens";
    const nVis = view.filter(visibleNode).length || 1;
    const rMax = Math.max(4, Math.min(24, (nVis > 300 ? 0.3 : 0.48) * Math.sqrt((W * H) / nVis)));
    const rMin = Math.max(1.5, Math.min(4, rMax / 3));
    const pad = 8 + rMax, padB = (lensMode ? 36 : 0) + rMax + 4;
    const xs = L.x, ys = L.y;
    const xExt = lensMode ? L.lensExtent : d3.extent(xs), yExt = d3.extent(ys);
    const dx = (xExt[1] - xExt[0]) || 1, dy = (yExt[1] - yExt[0]) || 1;
    let fx, fy;
    if (lensMode) {
      fx = d3.scaleLinear().domain(xExt).range([pad + 10, W - pad - 10]);
      const s = Math.min((H - pad - padB) / dy, 4);
      fy = d3.scaleLinear().domain(yExt).range([pad + (H - pad - padB - dy * s) / 2, pad + (H - pad - padB + dy * s) / 2]);
    } else {
      const s = Math.min((W - 2 * pad) / dx, (H - pad - padB) / dy);
      const ox = (W - dx * s) / 2, oy = pad + (H - pad - padB - dy * s) / 2;
      fx = (v) => ox + (v - xExt[0]) * s; fy = (v) => oy + (v - yExt[0]) * s;
    }
    p.fx = fx;
    const sizeOf = sizeAccessor();
    const rs = d3.scaleSqrt().domain([0, sc.maxCount]).range([0, rMax]);
    const rad = (x) => Math.max(rMin, rs(sizeOf(x)));

    const hl = state.highlight && state.highlight.gid === p.id ? state.highlight : null;
    const sel = state.selected && state.selected.gid === p.id ? state.selected.nid : null;
    const loc = state.locate != null ? locateIn(g, state.locate) : null;
    const search = state.search;

    const vis = view.map(visibleNode);
    const svg = p.svg;
    svg.selectAll("*").remove();
    const root = svg.append("g").attr("class", "zoom-root");
    p.root = root;
    // edges
    const wScale = d3.scaleLinear().domain([0, 1]).range([0.6, 6]).clamp(true);
    const edgeData = [];
    g.edges.forEach((ed, k) => {
      const a = d.nodeById.get(String(ed.source)), b = d.nodeById.get(String(ed.target));
      if (a == null || b == null || !vis[a] || !vis[b]) return;
      if ((ed.jaccard || 0) < state.jaccard) return;
      edgeData.push({ k, a, b, j: ed.jaccard || 0 });
    });
    const dimNode = (i) => (search != null && !(view[i].hist[search] > 0)) || (hl && !hl.nodes.has(i));
    root.append("g").attr("class", "edges").selectAll("line").data(edgeData).join("line")
      .attr("class", (ed) => "edge" + (hl && hl.edges.has(ed.k) ? " hl" : (hl || search != null) && (dimNode(ed.a) || dimNode(ed.b)) ? " dim" : ""))
      .attr("x1", (ed) => fx(xs[ed.a])).attr("y1", (ed) => fy(ys[ed.a]))
      .attr("x2", (ed) => fx(xs[ed.b])).attr("y2", (ed) => fy(ys[ed.b]))
      .attr("stroke-width", (ed) => wScale(ed.j));
    // nodes
    const idx = d3.range(g.nodes.length).filter((i) => vis[i]);
    const pie = d3.pie().sort(null).value((v) => v[1]);
    const arc = d3.arc().innerRadius(0);
    const ng = root.append("g").attr("class", "nodes").selectAll("g").data(idx).join("g")
      .attr("class", (i) => {
        const nid = String(g.nodes[i].id);
        let c = "node";
        if (dimNode(i)) c += " dim";
        if (loc && loc.nodeSet.has(i)) c += " located";
        if (sel === nid) c += " selected";
        if (hl && hl.nodes.has(i)) c += " hl";
        if (p.emb && p.emb.brushNodes && p.emb.brushNodes.has(i)) c += " brushed";
        return c;
      })
      .attr("data-id", (i) => g.nodes[i].id)
      .attr("transform", (i) => `translate(${fx(xs[i])},${fy(ys[i])})`);
    ng.each(function (i) {
      const x = view[i], r = rad(x), G = d3.select(this);
      if (state.color === "class") {
        const parts = [];
        x.hist.forEach((v, c) => { if (v > 0) parts.push([c, v]); });
        if (parts.length <= 1) G.append("circle").attr("class", "body").attr("r", r).attr("fill", CCOLOR(parts.length ? parts[0][0] : 0));
        else {
          const a = arc.outerRadius(r);
          G.selectAll("path").data(pie(parts)).join("path").attr("class", "body").attr("d", a).attr("fill", (s) => CCOLOR(s.data[0]));
        }
      } else {
        const v = x[state.color];
        G.append("circle").attr("class", "body").attr("r", r).attr("fill", v == null || !isFinite(v) ? "#ccc" : sc.color(v));
      }
      G.append("circle").attr("class", "ring").attr("r", r + 2.8);
    });
    ng.on("mouseenter", (ev, i) => showTip(ev, g, e, i, view[i]))
      .on("mousemove", moveTip)
      .on("mouseleave", hideTip)
      .on("click", (ev, i) => { ev.stopPropagation(); onNodeClick(p, g, i, ev.shiftKey); });
    // lens axis
    if (lensMode) {
      const ax = svg.append("g").attr("class", "axis").attr("transform", `translate(0,${H - 30})`);
      p.axis = ax;
      svg.append("text").attr("class", "axis-label").attr("x", W / 2).attr("y", H - 3).attr("text-anchor", "middle")
        .text(`mean lens value (${(g.params && g.params.lens) || (e.params && e.params.lens) || "lens"})`);
    } else p.axis = null;
    applyTransform(p);
    // header stats
    const st = g.stats || {};
    const shown = idx.length;
    p.el.querySelector(".panel-stats").innerHTML =
      `<b>${shown}</b>${shown !== g.nodes.length ? ` of ${g.nodes.length}` : ""} nodes · <b>${edgeData.length}</b> edges · ` +
      `${st.n_components != null ? `<b>${st.n_components}</b> components · ` : ""}` +
      `purity <b>${fmt(st.mean_purity)}</b>` + (st.n_noise ? ` · <span title="rows DBSCAN left as noise (not in any node)">noise <b>${st.n_noise}</b></span>` : "");
    const m = p.el.querySelector(".msg");
    m.textContent = g.nodes.length ? (shown ? "" : "no node passes the filters") : "empty graph";
    p.el.dataset.nodes = String(shown);
    if (p.emb) updateEmbedding(p);
  }

  function applyTransform(p) {
    if (!p.root) return;
    p.root.attr("transform", p.transform);
    if (p.axis && p.fx) {
      const zx = p.transform.rescaleX(p.fx);
      p.axis.call(d3.axisBottom(zx).ticks(6));
    }
  }

  // ------------------------------------------------------------------ tooltip
  function showTip(ev, g, e, i, x) {
    const n = g.nodes[i];
    const top = x.hist.map((v, c) => [c, v]).filter((a) => a[1] > 0).sort((a, b) => b[1] - a[1]).slice(0, 4);
    const t = $("#tooltip");
    t.innerHTML = `<b>node ${esc(n.id)}</b> · ${x.count} members<br>` +
      `${x.count - x.nAdv} clean · <span style="color:#fca5a5">${x.nAdv} adversarial</span><br>` +
      top.map(([c, v]) => `<span class="sw" style="background:${CCOLOR(c)}"></span>${esc(cname(c))} ${Math.round((100 * v) / x.count)}%`).join("<br>") +
      `<br>purity ${fmt(x.purity)} · misclassified ${fmt(x.frac_misclassified)}` +
      (x.mean_l2 != null ? `<br>mean L2 ${fmt(x.mean_l2)} · lens ${fmt(x.mean_lens)}` : "");
    t.classList.remove("hidden");
    moveTip(ev);
  }
  function moveTip(ev) {
    const t = $("#tooltip");
    const w = t.offsetWidth, h = t.offsetHeight;
    let x = ev.clientX + 14, y = ev.clientY + 12;
    if (x + w > innerWidth - 6) x = ev.clientX - w - 14;
    if (y + h > innerHeight - 6) y = ev.clientY - h - 12;
    t.style.left = x + "px"; t.style.top = y + "px";
  }
  function hideTip() { $("#tooltip").classList.add("hidden"); }

  // ------------------------------------------------------------------ legend
  function renderLegend(sc) {
    const L = $("#legend");
    L.innerHTML = "";
    if (state.color === "class" || state.size !== "members") {
      const t = document.createElement("span"); t.className = "title"; t.textContent = "classes"; L.appendChild(t);
      CLASSES.forEach((name, c) => {
        const it = document.createElement("span");
        it.className = "item" + (state.search != null && state.search !== c ? " off" : "");
        it.innerHTML = `<span class="sw" style="background:${CCOLOR(c)}"></span>${esc(name)}`;
        it.title = "click: dim the nodes without this class";
        it.dataset.cls = c;
        it.addEventListener("click", () => setSearch(state.search === c ? null : c));
        L.appendChild(it);
      });
    }
    if (state.color !== "class" && sc.color) {
      if (L.children.length) { const s = document.createElement("span"); s.className = "sep"; L.appendChild(s); }
      const wrap = document.createElement("span"); wrap.className = "colorbar"; L.appendChild(wrap);
      const W = 230, svg = d3.select(wrap).append("svg").attr("width", W + 150).attr("height", 34);
      const gid = "cb-grad";
      const grad = svg.append("defs").append("linearGradient").attr("id", gid);
      d3.range(0, 1.0001, 0.1).forEach((t) => grad.append("stop").attr("offset", t).attr("stop-color", sc.color(sc.domain[0] + t * (sc.domain[1] - sc.domain[0]))));
      svg.append("text").attr("x", 0).attr("y", 16).attr("font-size", 11).attr("fill", "#374151").text(ATTRS[state.color].label);
      const g = svg.append("g").attr("transform", "translate(140,3)");
      g.append("rect").attr("width", W).attr("height", 11).attr("rx", 2).attr("fill", `url(#${gid})`);
      g.append("g").attr("class", "axis").attr("transform", "translate(0,11)").call(d3.axisBottom(d3.scaleLinear().domain(sc.domain).range([0, W])).ticks(5).tickSize(4));
    }
    const s = document.createElement("span"); s.className = "sep"; L.appendChild(s);
    const marks = document.createElement("span"); marks.className = "marks";
    marks.innerHTML = `<span title="size = ${state.size === "members" ? "members" : "members of one class"}">● size = ${state.size === "members" ? "members" : "members of " + esc(cname(+state.size.slice(6)))}</span>` +
      `<span>━ width = Jaccard</span>` +
      (state.locate != null ? `<span><span class="mark-ring"></span> holds sample ${state.locate}</span>` : "") +
      (state.selected || state.highlight ? `<span><span class="mark-ring sel"></span> selection</span>` : "");
    L.appendChild(marks);
  }

  // ------------------------------------------------------------------ selection, component, path
  function onNodeClick(p, g, i, shift) {
    const nid = String(g.nodes[i].id);
    if ((shift || state.pathPending) && state.selected && state.selected.gid === p.id && state.selected.nid !== nid) {
      state.pathPending = false;
      const a = derive(g).nodeById.get(state.selected.nid);
      const path = shortestPath(g, a, i);
      if (!path) { toast("no path between these nodes (with the edges shown)", true); return; }
      state.highlight = { gid: p.id, nodes: new Set(path.nodes), edges: new Set(path.edges), label: `path of ${path.nodes.length - 1} edges` };
      renderAll();
      toast(`shortest path: ${path.nodes.map((k) => g.nodes[k].id).join(" → ")}`);
      return;
    }
    state.selected = { gid: p.id, nid };
    state.highlight = null;
    renderAll();
    showDetails(p.id, nid);
  }
  function clearSelection() {
    if (!state.selected && !state.highlight) return;
    state.selected = null; state.highlight = null; state.pathPending = false;
    renderAll();
    $("#details").innerHTML = `<div class="empty">Click a node to see its members.<br><span class="hint">Shift-click a second node for the shortest path.</span></div>`;
  }
  function usableEdges(g) {
    const view = nodeView(g, state.points), vis = view.map(visibleNode), d = derive(g);
    return (i) => d.adj[i].filter(([j, k]) => vis[j] && (g.edges[k].jaccard || 0) >= state.jaccard);
  }
  function component(g, start) {
    const nb = usableEdges(g), seen = new Set([start]), edges = new Set(), q = [start];
    while (q.length) { const u = q.shift(); for (const [v, k] of nb(u)) { edges.add(k); if (!seen.has(v)) { seen.add(v); q.push(v); } } }
    return { nodes: seen, edges };
  }
  function shortestPath(g, a, b) {
    const nb = usableEdges(g), prev = new Map([[a, null]]), q = [a];
    while (q.length) {
      const u = q.shift();
      if (u === b) break;
      for (const [v, k] of nb(u)) if (!prev.has(v)) { prev.set(v, [u, k]); q.push(v); }
    }
    if (!prev.has(b)) return null;
    const nodes = [], edges = [];
    for (let u = b; u != null;) { nodes.unshift(u); const pr = prev.get(u); if (!pr) break; edges.push(pr[1]); u = pr[0]; }
    return { nodes, edges };
  }

  // ------------------------------------------------------------------ details panel
  function nodeDetail(g, nid) {
    const i = derive(g).nodeById.get(nid);
    const n = g.nodes[i], P = g.points || {};
    const members = (n.members || []).map((r) => ({ row: r, sample_id: (P.sample_id || [])[r], label: (P.label || [])[r], prediction: (P.prediction || [])[r], adv: !!(P.is_adversarial || [])[r] }));
    return { i, n, members };
  }
  function showDetails(gid, nid) {
    const g = GRAPHS.get(gid), e = ENTRY.get(gid) || {};
    const { i, n, members } = nodeDetail(g, nid);
    const box = $("#details");
    const inMode = members.filter((m) => state.points === "both" || (state.points === "clean" ? !m.adv : m.adv));
    const nAdv = members.filter((m) => m.adv).length;
    const nMis = members.filter((m) => m.prediction != null && m.prediction !== m.label).length;
    const byClass = new Map();
    members.forEach((m) => { const b = byClass.get(m.label) || { c: m.label, clean: 0, adv: 0 }; m.adv ? b.adv++ : b.clean++; byClass.set(m.label, b); });
    const rows = [...byClass.values()].sort((a, b) => b.clean + b.adv - (a.clean + a.adv) || a.c - b.c);
    const maxB = d3.max(rows, (r) => r.clean + r.adv) || 1;
    const flows = new Map();
    members.filter((m) => m.adv).forEach((m) => { const k = `${m.label}→${m.prediction}`; flows.set(k, (flows.get(k) || 0) + 1); });
    const flowRows = [...flows.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8);
    let html = `<h2>Node ${esc(n.id)}</h2><div class="sub">${esc(graphLabel(e))}</div>`;
    html += `<div class="stat-grid">
      <div class="stat"><div class="k">members</div><div class="v" id="d-size">${members.length}</div></div>
      <div class="stat"><div class="k">clean</div><div class="v">${members.length - nAdv}</div></div>
      <div class="stat"><div class="k">adversarial</div><div class="v adv">${nAdv}</div></div>
      <div class="stat"><div class="k">purity</div><div class="v">${fmt(n.purity)}</div></div>
      <div class="stat"><div class="k">misclassified</div><div class="v">${nMis}</div></div>
      <div class="stat"><div class="k">mean lens</div><div class="v">${fmt(n.mean_lens)}</div></div></div>`;
    html += `<div class="actions">`;
    if (DS.csvUrl) html += `<a class="btn small" id="d-csv" href="${DS.csvUrl(gid, nid)}" download>Members CSV</a>`;
    else html += `<button class="btn small" id="d-csv">Members CSV</button>`;
    html += `<button class="btn small" id="d-comp">Select component</button><button class="btn small" id="d-path">Shortest path to…</button></div>`;
    html += `<h4>Feature visualisation</h4><div class="fv" id="d-fv">`;
    html += DS.featurevis ? `<span class="spinner"></span> <span class="muted">optimising an image for the node's mean activation…</span>`
      : `<span class="muted">feature visualisation needs the model: open the run with <code>advtopo serve</code></span>`;
    html += `</div>`;
    html += `<h4>Members by class</h4><table class="t members-by-class"><tr><th>class</th><th class="num">clean</th><th class="num">adv</th><th></th></tr>`;
    rows.forEach((r) => {
      html += `<tr data-class="${r.c}"><td><span class="bar" style="width:9px;background:${CCOLOR(r.c)};border-radius:50%"></span> ${esc(cname(r.c))}</td>
        <td class="num">${r.clean}</td><td class="num">${r.adv}</td>
        <td style="width:40%"><span class="bar" style="width:${(70 * r.clean) / maxB}%;background:${CCOLOR(r.c)}"></span><span class="bar adv" style="width:${(70 * r.adv) / maxB}%;background-color:${CCOLOR(r.c)}"></span></td></tr>`;
    });
    html += `</table>`;
    if (flowRows.length) {
      html += `<h4>Adversarial predictions (true → predicted)</h4><table class="t"><tr><th>true</th><th>predicted</th><th class="num">n</th></tr>`;
      flowRows.forEach(([k, v]) => { const [a, b] = k.split("→"); html += `<tr><td>${esc(cname(+a))}</td><td style="color:${a === b ? "inherit" : "var(--adv)"}">${esc(cname(+b))}</td><td class="num">${v}</td></tr>`; });
      html += `</table>`;
    }
    // thumbnails: clean next to adversarial, per sample
    const sids = [...new Set(inMode.map((m) => m.sample_id))];
    const LIMIT = 24;
    html += `<h4>Samples (${sids.length}${sids.length > LIMIT ? `, first ${LIMIT}` : ""}) — clean | adversarial</h4><div class="thumbs">`;
    const d = derive(g), P = g.points || {};
    sids.slice(0, LIMIT).forEach((sid) => {
      const rws = d.rowsBySample.get(sid) || [];
      const rc = rws.find((r) => !(P.is_adversarial || [])[r]), ra = rws.find((r) => !!(P.is_adversarial || [])[r]);
      const lab = (P.label || [])[rws[0]];
      const cimg = DS.image(sid, "clean", e), aimg = ra != null ? DS.image(sid, "adversarial", e) : null;
      const pc = rc != null ? (P.prediction || [])[rc] : null, pa = ra != null ? (P.prediction || [])[ra] : null;
      html += `<div class="pair" data-sid="${sid}" title="sample ${sid}: click to locate it in every graph"><div class="imgs">`;
      html += `<figure>${cimg ? `<img src="${cimg}" alt="clean ${sid}">` : ""}<figcaption class="${pc != null && pc !== lab ? "wrong" : ""}">${pc != null ? "→ " + esc(cname(pc)) : "clean"}</figcaption></figure>`;
      if (ra != null) html += `<figure>${aimg ? `<img src="${aimg}" alt="adversarial ${sid}">` : ""}<figcaption class="${pa !== lab ? "wrong" : ""}">→ ${esc(cname(pa))}</figcaption></figure>`;
      html += `</div><div class="sid">#${sid} · ${esc(cname(lab))}</div></div>`;
    });
    html += `</div>`;
    box.innerHTML = html;
    box.querySelectorAll("img").forEach((im) => im.addEventListener("error", () => { im.style.visibility = "hidden"; }));
    box.querySelectorAll(".pair").forEach((el) => el.addEventListener("click", () => locate(+el.dataset.sid)));
    if (!DS.csvUrl) $("#d-csv").addEventListener("click", () => {
      const lines = ["graph,node,row,sample_id,label,prediction,is_adversarial"].concat(members.map((m) => [gid, nid, m.row, m.sample_id, m.label, m.prediction, m.adv ? 1 : 0].join(",")));
      const a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([lines.join("\n") + "\n"], { type: "text/csv" }));
      a.download = `${gid}_${nid}_members.csv`; a.click();
    });
    if (DS.featurevis) {
      const fvBox = $("#d-fv");
      DS.featurevis(gid, nid).then((fv) => {
        if (!fvBox.isConnected) return;  // another node was opened meanwhile
        if (!fv.available) { fvBox.innerHTML = `<span class="muted">not available: ${esc(fv.reason || "")}</span>`; return; }
        fvBox.innerHTML = `<img class="fv-img" src="${fv.png}" alt="feature visualisation of node ${esc(nid)}" width="112" height="112">
          <div class="fv-cap">the input that points layer <b>${esc(fv.layer)}</b> (${esc(fv.summary)}) along the node's mean activation
          over its ${fv.n_rows} ${esc(fv.rows)} members; cosine <b id="d-fv-cos">${fv.cosine.toFixed(2)}</b></div>`;
      }).catch((err) => {
        if (fvBox.isConnected) fvBox.innerHTML = `<span class="muted">not available: ${esc(err.message)}</span>`;
      });
    }
    $("#d-comp").addEventListener("click", () => {
      const c = component(g, i);
      state.highlight = { gid, nodes: c.nodes, edges: c.edges, label: "component" };
      renderAll();
      toast(`component of ${c.nodes.size} nodes`);
    });
    $("#d-path").addEventListener("click", () => { state.pathPending = true; toast("click another node in the same graph (or shift-click)"); });
  }

  // ------------------------------------------------------------------ locator
  function locateIn(g, sid) {
    const d = derive(g);
    d.loc = d.loc || new Map();
    if (d.loc.has(sid)) return d.loc.get(sid);
    const rows = d.rowsBySample.get(sid) || [];
    const P = g.points || {}, pp = g.point_purity || [];
    const nodeSet = new Set();
    const perRow = rows.map((r) => {
      const ns = d.nodesByRow.get(r) || [];
      ns.forEach((i) => nodeSet.add(i));
      let pur = pp[r];
      if (pur == null && ns.length) pur = d3.mean(ns, (i) => 1 / Math.max(1, Object.keys(g.nodes[i].class_hist || {}).length));
      return { row: r, adv: !!(P.is_adversarial || [])[r], nodes: ns.map((i) => String(g.nodes[i].id)), purity: pur, pred: (P.prediction || [])[r], label: (P.label || [])[r] };
    });
    const res = { nodeSet, rows: perRow };
    d.loc.set(sid, res);
    return res;
  }
  function locate(sid) {
    if (sid == null || Number.isNaN(sid)) return;
    state.locate = sid;
    $("#locate-input").value = sid;
    document.querySelectorAll(".vuln").forEach((el) => el.classList.toggle("on", +el.dataset.sid === sid));
    renderAll();
    showTab("graphs");
  }
  function renderLocatePanels() {
    const info = $("#locate-info");
    state.panels.forEach((p) => {
      const el = p.el && p.el.querySelector(".panel-loc");
      if (!el) return;
      if (state.locate == null || !GRAPHS.has(p.id)) { el.textContent = ""; return; }
      const L = locateIn(GRAPHS.get(p.id), state.locate);
      if (!L.rows.length) { el.textContent = `sample ${state.locate}: not in this graph`; return; }
      el.innerHTML = L.rows.map((r) => `${r.adv ? "adversarial" : "clean"} in <b>${r.nodes.length}</b> node${r.nodes.length === 1 ? "" : "s"}` +
        (r.nodes.length ? ` (point purity ${fmt(r.purity)})` : " (noise)") + (r.pred != null ? `, predicted ${esc(cname(r.pred))}` : "")).join(" · ");
      el.dataset.located = [...L.nodeSet].map((i) => GRAPHS.get(p.id).nodes[i].id).join(",");
    });
    if (state.locate == null) { info.innerHTML = ""; return; }
    const sid = state.locate;
    const anyG = state.panels.map((p) => GRAPHS.get(p.id)).find((g) => g && derive(g).rowsBySample.has(sid));
    const lab = anyG ? (anyG.points.label || [])[derive(anyG).rowsBySample.get(sid)[0]] : null;
    const img = DS.image(sid, "clean", null);
    info.innerHTML = (img ? `<img src="${img}" alt="sample ${sid}">` : "") +
      `<div><b>sample ${sid}</b>${lab != null ? ` · ${esc(cname(lab))}` : ""}</div>` +
      `<div class="hint">${anyG ? "outlined in every graph that holds it" : "not in the graphs shown"}</div><div style="clear:both"></div>`;
    const im = info.querySelector("img"); if (im) im.addEventListener("error", () => im.remove());
  }

  // ------------------------------------------------------------------ vulnerable samples
  async function loadVulnerable() {
    let v;
    try { v = await DS.vulnerability(); } catch (e) { v = { samples: [] }; }
    const list = (v && Array.isArray(v.samples) ? v.samples : []).filter((s) => s && s.sample_id != null)
      .sort((a, b) => (b.score ?? -Infinity) - (a.score ?? -Infinity)).slice(0, 100);
    const host = $("#vuln-list");
    if (!list.length) { host.innerHTML = `<div class="hint">none in this run (vulnerability.json)</div>`; return; }
    host.innerHTML = "";
    list.forEach((s, k) => {
      const el = document.createElement("div");
      el.className = "vuln"; el.dataset.sid = s.sample_id;
      const img = DS.image(s.sample_id, "clean", null);
      el.innerHTML = `<span class="rk">${k + 1}</span>${img ? `<img src="${img}" alt="">` : ""}<div class="meta"><div><b>#${esc(s.sample_id)}</b>${s.label != null ? " · " + esc(cname(s.label)) : ""}</div>` +
        `<div class="s">score ${fmt(s.score, 3)}${s.fooled_at != null ? ` · fooled at ε=${esc(s.fooled_at)}` : ""}</div></div>`;
      el.addEventListener("click", () => locate(+s.sample_id));
      const im = el.querySelector("img"); if (im) im.addEventListener("error", () => { im.style.visibility = "hidden"; });
      host.appendChild(el);
    });
  }

  // ------------------------------------------------------------------ summary view
  function renderSummary() {
    const host = $("#summary");
    if (host.dataset.done) return;
    host.dataset.done = "1";
    host.innerHTML = "";
    const models = uniq(INDEX.graphs.map((g) => g.model).concat((INDEX.models || []).map((m) => m.name)));
    const mcol = d3.scaleOrdinal(models, d3.schemeTableau10);
    // the report of `advtopo report RUN` (served from RUN/report/ by the app's server)
    if (INDEX.app && INDEX.app.mode === "server") {
      const r = card(host, "Report", "", true);
      r.id = "report-link";
      r.insertAdjacentHTML("beforeend", INDEX.app.report
        ? `<a href="report/report.html" target="_blank" rel="noopener">Open the report</a> — each paper's claim, its figure, and whether it holds on this run (with 95% CIs)`
        : `<span class="hint">No report yet: run <code>advtopo report RUN</code>, then reload.</span>`);
    }
    const acc = INDEX.accuracy || [];
    if (acc.length) {
      const series = uniq(acc.map((a) => `${a.model}|${a.attack}`)).map((k) => {
        const [m, at] = k.split("|");
        return { name: uniq(acc.map((a) => a.attack)).length > 1 ? `${m} · ${at}` : m, color: mcol(m),
          pts: acc.filter((a) => a.model === m && a.attack === at).map((a) => [+a.eps, +a.accuracy]).sort((a, b) => a[0] - b[0]) };
      });
      lineChart(card(host, "Accuracy vs attack ε"), series, "attack ε", "accuracy", [0, 1]);
    }
    uniq(INDEX.graphs.map((g) => g.layer)).forEach((layer) => {
      const gs = INDEX.graphs.filter((g) => g.layer === layer && g.stats && g.stats.mean_purity != null && !g.recomputed);
      if (!gs.length) return;
      const series = uniq(gs.map((g) => `${g.model}|${g.attack}`)).map((k) => {
        const [m, at] = k.split("|");
        return { name: m, color: mcol(m), pts: gs.filter((g) => g.model === m && g.attack === at).map((g) => [+g.eps, 1 - g.stats.mean_purity]).sort((a, b) => a[0] - b[0]) };
      });
      lineChart(card(host, `Class mixing vs attack ε — ${layer}`, "mixing = 1 − mean node purity (higher: classes less distinguishable)"), series, "attack ε", "mixing", [0, 1]);
    });
    // persistence: distance between the diagrams of clean and adversarial activations vs eps
    const cva = (INDEX.persistence && INDEX.persistence.clean_vs_adv) || [];
    uniq(cva.map((r) => r.layer)).forEach((layer) => {
      const rows = cva.filter((r) => r.layer === layer && r.distance != null);
      if (!rows.length) return;
      const series = uniq(rows.map((r) => r.model)).map((m) => ({ name: m, color: mcol(m),
        pts: rows.filter((r) => r.model === m).map((r) => [+r.eps, +r.distance]).sort((a, b) => a[0] - b[0]) }));
      const r0 = rows[0];
      lineChart(card(host, `Clean vs adversarial diagrams — ${layer}`,
        `${r0.metric || "distance"} between H${r0.homology_dim ?? 1} diagrams of clean and adversarial activations`),
        series, "attack ε", "distance");
    });
    // persistence diagrams: clean vs the strongest attack, for a chosen model and layer
    const dkeys = Object.keys((INDEX.persistence && INDEX.persistence.diagrams) || {});
    if (dkeys.length && DS.diagram) diagramCard(card(host, "Persistence diagrams",
      "Vietoris-Rips H0/H1 of the layer's point cloud: clean vs adversarial (same samples)", true), dkeys);
    // stats table
    const c = card(host, "Per-graph statistics", "click a row to open the graph", true);
    const cols = ["model", "layer", "attack", "eps", "n_nodes", "n_edges", "n_components", "n_noise", "mean_purity", "mean_entropy"];
    const heads = { model: "model", layer: "layer", attack: "attack", eps: "attack ε", n_nodes: "nodes", n_edges: "edges", n_components: "components", n_noise: "noise rows", mean_purity: "mean purity", mean_entropy: "mean entropy" };
    let html = `<table class="t stats-table"><tr>${cols.map((k) => `<th class="${k.startsWith("n_") || k.startsWith("mean") || k === "eps" ? "num" : ""}">${heads[k]}</th>`).join("")}</tr>`;
    INDEX.graphs.forEach((g) => {
      const s = g.stats || {};
      html += `<tr data-id="${esc(g.id)}">` + cols.map((k) => {
        const v = k in s ? s[k] : g[k];
        return `<td class="${typeof v === "number" ? "num" : ""}">${typeof v === "number" && !Number.isInteger(v) ? fmt(v, 3) : esc(v ?? "–")}</td>`;
      }).join("") + `</tr>`;
    });
    c.insertAdjacentHTML("beforeend", html + `</table>`);
    c.querySelectorAll("tr[data-id]").forEach((tr) => tr.addEventListener("click", () => { setPanels([tr.dataset.id]); showTab("graphs"); }));
    // persistence: every {"layers"/"labels": [...], "matrix": [[...]]} found, rendered as a heatmap
    const mats = [];
    (function walk(o, path) {
      if (!o || typeof o !== "object") return;
      if (Array.isArray(o.matrix) && o.matrix.length && Array.isArray(o.matrix[0])) { mats.push([path.join(" · ") || "matrix", o]); return; }
      if (Array.isArray(o)) return;
      Object.entries(o).forEach(([k, v]) => walk(v, path.concat(k)));
    })(INDEX.persistence, []);
    mats.forEach(([title, m]) => heatmap(card(host, `Persistence — ${title}`), m));
  }
  function diagramCard(c, keys) {
    // keys look like "model/layer/attack/eps"
    const parsed = keys.map((k) => { const p = k.split("/"); return { k, eps: +p[p.length - 1], attack: p[p.length - 2], layer: p[p.length - 3], model: p.slice(0, -3).join("/") }; });
    const models = uniq(parsed.map((d) => d.model)), layers = uniq(parsed.map((d) => d.layer));
    const ctl = document.createElement("div"); ctl.className = "diag-ctl";
    const opt = (xs) => xs.map((x) => `<option>${esc(x)}</option>`).join("");
    ctl.innerHTML = `model <select class="dm">${opt(models)}</select> layer <select class="dl">${opt(layers)}</select>`;
    c.appendChild(ctl);
    const row = document.createElement("div"); row.className = "diag-row"; c.appendChild(row);
    const draw = async () => {
      const m = ctl.querySelector(".dm").value, l = ctl.querySelector(".dl").value;
      const ds = parsed.filter((d) => d.model === m && d.layer === l).sort((a, b) => a.eps - b.eps);
      const pick = ds.length > 1 ? [ds[0], ds[ds.length - 1]] : ds;
      row.innerHTML = "";
      const data = await Promise.all(pick.map((d) => DS.diagram(d.k).catch(() => null)));
      const all = data.filter(Boolean).flatMap((d) => Object.values(d.dims).flat());
      const hi = d3.max(all, (p) => p[1]) || 1;
      pick.forEach((d, i) => { if (data[i]) diagramPlot(row, data[i], hi, d.eps === 0 ? "clean" : `${d.attack} ε=${d.eps}`); });
    };
    ctl.querySelectorAll("select").forEach((s) => s.addEventListener("change", draw));
    draw();
  }
  function diagramPlot(host, dg, hi, title) {
    const W = 300, H = 270, m = { l: 40, r: 10, t: 22, b: 34 };
    const div = document.createElement("div"); div.className = "diag"; host.appendChild(div);
    const svg = d3.select(div).append("svg").attr("viewBox", `0 0 ${W} ${H}`).attr("width", W).attr("height", H).attr("class", "diagram");
    const s = d3.scaleLinear().domain([0, hi]).nice();
    const xs = s.copy().range([m.l, W - m.r]), ys = s.copy().range([H - m.b, m.t]);
    svg.append("text").attr("x", m.l).attr("y", 14).attr("class", "diag-title").text(title);
    svg.append("line").attr("x1", xs(0)).attr("y1", ys(0)).attr("x2", xs(s.domain()[1])).attr("y2", ys(s.domain()[1])).attr("stroke", "#9ca3af").attr("stroke-dasharray", "3,3");
    svg.append("g").attr("class", "axis").attr("transform", `translate(0,${H - m.b})`).call(d3.axisBottom(xs).ticks(4));
    svg.append("g").attr("class", "axis").attr("transform", `translate(${m.l},0)`).call(d3.axisLeft(ys).ticks(4));
    svg.append("text").attr("x", (W + m.l) / 2).attr("y", H - 4).attr("text-anchor", "middle").attr("class", "axis-label").text("birth");
    svg.append("text").attr("transform", `translate(11,${(H - m.b + m.t) / 2}) rotate(-90)`).attr("text-anchor", "middle").attr("class", "axis-label").text("death");
    const col = { 0: "#2563eb", 1: "#dc2626", 2: "#059669" };
    Object.entries(dg.dims).forEach(([dim, pts]) => {
      svg.append("g").selectAll("circle").data(pts).join("circle").attr("cx", (p) => xs(p[0])).attr("cy", (p) => ys(p[1]))
        .attr("r", 2).attr("fill", col[dim] || "#6b7280").attr("fill-opacity", 0.55).attr("class", `dim${dim}`);
    });
    const lg = svg.append("g").attr("transform", `translate(${W - m.r - 60},${H - m.b - 34})`);
    Object.keys(dg.dims).forEach((dim, i) => {
      lg.append("circle").attr("cx", 4).attr("cy", i * 14).attr("r", 4).attr("fill", col[dim] || "#6b7280");
      lg.append("text").attr("x", 12).attr("y", i * 14 + 4).attr("class", "axis-label").text(`H${dim} (${dg.dims[dim].length})`);
    });
  }
  function card(host, title, sub, wide) {
    const c = document.createElement("div"); c.className = "card" + (wide ? " wide" : "");
    c.innerHTML = `<h3>${esc(title)}</h3>` + (sub ? `<div class="hint" style="margin:-4px 0 6px">${esc(sub)}</div>` : "");
    host.appendChild(c);
    return c;
  }
  function lineChart(c, series, xl, yl, yDom) {
    const W = 400, H = 230, m = { l: 44, r: 110, t: 8, b: 36 };
    const svg = d3.select(c).append("svg").attr("viewBox", `0 0 ${W} ${H}`).attr("width", "100%");
    const xs = d3.scaleLinear().domain(d3.extent(series.flatMap((s) => s.pts.map((p) => p[0])))).nice().range([m.l, W - m.r]);
    const ys = d3.scaleLinear().domain(yDom || d3.extent(series.flatMap((s) => s.pts.map((p) => p[1])))).nice().range([H - m.b, m.t]);
    svg.append("g").attr("class", "grid").attr("transform", `translate(${m.l},0)`).call(d3.axisLeft(ys).ticks(5).tickSize(-(W - m.l - m.r)).tickFormat(""));
    svg.append("g").attr("class", "axis").attr("transform", `translate(0,${H - m.b})`).call(d3.axisBottom(xs).ticks(6));
    svg.append("g").attr("class", "axis").attr("transform", `translate(${m.l},0)`).call(d3.axisLeft(ys).ticks(5));
    svg.append("text").attr("x", (m.l + W - m.r) / 2).attr("y", H - 4).attr("text-anchor", "middle").text(xl);
    svg.append("text").attr("transform", `translate(12,${(H - m.b) / 2}) rotate(-90)`).attr("text-anchor", "middle").text(yl);
    const line = d3.line().x((p) => xs(p[0])).y((p) => ys(p[1]));
    series.forEach((s, k) => {
      svg.append("path").attr("d", line(s.pts)).attr("fill", "none").attr("stroke", s.color).attr("stroke-width", 2);
      svg.append("g").selectAll("circle").data(s.pts).join("circle").attr("cx", (p) => xs(p[0])).attr("cy", (p) => ys(p[1])).attr("r", 3.2).attr("fill", s.color)
        .append("title").text((p) => `${s.name}: ε=${p[0]} → ${fmt(p[1], 3)}`);
      const lg = svg.append("g").attr("transform", `translate(${W - m.r + 10},${m.t + 10 + k * 17})`);
      lg.append("rect").attr("width", 12).attr("height", 3).attr("y", -2).attr("fill", s.color);
      lg.append("text").attr("x", 16).attr("y", 4).text(s.name.length > 16 ? s.name.slice(0, 15) + "…" : s.name).append("title").text(s.name);
    });
  }
  function heatmap(c, m) {
    const M = m.matrix, labels = m.layers || m.labels || M.map((_, i) => String(i));
    const n = M.length, k = M[0].length, cell = Math.max(14, Math.min(40, 300 / Math.max(n, k)));
    const ml = 70, mt = 10, W = ml + k * cell + 90, H = mt + n * cell + 60;
    const svg = d3.select(c).append("svg").attr("viewBox", `0 0 ${W} ${H}`).attr("width", Math.min(W * 1.2, 520));
    const vals = M.flat().filter((v) => v != null && isFinite(v));
    const col = d3.scaleSequential(d3.interpolateViridis).domain(d3.extent(vals));
    M.forEach((row, i) => row.forEach((v, j) => {
      svg.append("rect").attr("x", ml + j * cell).attr("y", mt + i * cell).attr("width", cell - 1).attr("height", cell - 1).attr("fill", v == null ? "#eee" : col(v))
        .append("title").text(`${labels[i]} × ${(m.columns || labels)[j]}: ${fmt(v, 3)}`);
    }));
    labels.forEach((l, i) => svg.append("text").attr("x", ml - 4).attr("y", mt + i * cell + cell / 2 + 4).attr("text-anchor", "end").text(l));
    (m.columns || labels).forEach((l, j) => svg.append("text").attr("transform", `translate(${ml + j * cell + cell / 2},${mt + n * cell + 6}) rotate(40)`).text(l));
    const g = svg.append("g").attr("transform", `translate(${ml + k * cell + 14},${mt})`);
    const defs = svg.append("defs").append("linearGradient").attr("id", "hm" + Math.random().toString(36).slice(2)).attr("x1", 0).attr("x2", 0).attr("y1", 1).attr("y2", 0);
    d3.range(0, 1.0001, 0.1).forEach((t) => defs.append("stop").attr("offset", t).attr("stop-color", col(col.domain()[0] + t * (col.domain()[1] - col.domain()[0]))));
    g.append("rect").attr("width", 10).attr("height", n * cell).attr("fill", `url(#${defs.attr("id")})`);
    g.append("g").attr("class", "axis").attr("transform", "translate(10,0)").call(d3.axisRight(d3.scaleLinear().domain(col.domain()).range([n * cell, 0])).ticks(4));
  }

  // ------------------------------------------------------------------ datapaths view
  // datapaths.json (docs/architecture.md): critical neurons of clean inputs vs their adversarial
  // versions, compared layer by layer. The tab exists only when the run has one.
  let DP = null;
  const dpState = { metric: "jaccard", split: "split", divGroup: "all", filter: "all", sample: null, eps: null };
  const DPCOL = { clean: "#2563eb", adv: "#dc2626", shared: "#334155", none: "#cbd5e1" };
  const DPKIND = { shared: "shared (clean and adversarial)", clean: "clean only", adv: "adversarial only" };

  async function loadDatapaths() {
    let d = null;
    try { d = DS.datapaths ? await DS.datapaths() : null; } catch (e) { d = null; }
    if (!d || d.available === false || !Array.isArray(d.layers) || !d.layers.length || !Array.isArray(d.eps) || !d.eps.length || !Array.isArray(d.samples)) return;
    DP = d;
    DP.by_layer = DP.by_layer || {}; DP.by_eps = Array.isArray(DP.by_eps) ? DP.by_eps : [];
    DP.detailById = new Map((Array.isArray(DP.detail) ? DP.detail : []).filter((x) => x && x.sample_id != null).map((x) => [+x.sample_id, x]));
    dpState.eps = +DP.eps[DP.eps.length - 1];
    $("#tab-datapaths").classList.remove("hidden");
  }
  // the value stored under an eps key ("0.1", "0.10", ...: compared numerically)
  function epsGet(obj, e) {
    if (!obj) return null;
    for (const k of Object.keys(obj)) if (Math.abs(+k - +e) < 1e-9) return obj[k];
    return null;
  }
  const dpEpsColor = (j) => d3.interpolateYlOrRd(DP.eps.length === 1 ? 0.8 : 0.42 + (0.53 * j) / (DP.eps.length - 1));
  const dpMetricLabel = () => (dpState.metric === "jaccard" ? "Jaccard" : "weighted Jaccard");
  function dpSeg(host, id, label, opts, key, after) {
    const wrap = document.createElement("div"); wrap.className = "dp-ctl";
    wrap.innerHTML = `<span class="hint">${esc(label)}</span><div class="seg" id="${id}" role="group" aria-label="${esc(label)}">` +
      opts.map(([v, t]) => `<button data-v="${esc(v)}" class="${String(dpState[key]) === String(v) ? "on" : ""}" aria-pressed="${String(dpState[key]) === String(v)}">${esc(t)}</button>`).join("") + `</div>`;
    wrap.querySelectorAll("button").forEach((b) => b.addEventListener("click", () => {
      dpState[key] = key === "eps" ? +b.dataset.v : b.dataset.v;
      wrap.querySelectorAll("button").forEach((x) => { x.classList.toggle("on", x === b); x.setAttribute("aria-pressed", String(x === b)); });
      after();
    }));
    host.appendChild(wrap);
    return wrap;
  }

  function renderDatapaths() {
    const host = $("#datapaths");
    if (host.dataset.done || !DP) return;
    host.dataset.done = "1";
    host.innerHTML = "";
    const p = DP.params || {}, c = DP.clean || {};
    const head = card(host, "Critical datapaths: clean vs adversarial",
      "Datapaths (Cao et al., TVCG 2021): the neurons (channels / units) a trained sparse gate keeps to carry one input's prediction. Where do the paths of an input and of its adversarial version diverge?", true);
    head.classList.add("dp-head");
    const widths = DP.widths || {};
    head.insertAdjacentHTML("beforeend", `<div class="dp-meta">model <b>${esc(DP.model ?? "–")}</b> · attack <b>${esc(DP.attack ?? "–")}</b> · <b>${esc(DP.n_samples ?? DP.samples.length)}</b> samples · layers ${DP.layers.map((l) => `<b>${esc(l)}</b>${widths[l] != null ? ` (${esc(widths[l])})` : ""}`).join(" → ")}` +
      ` · λ ${esc(p.lam ?? "–")}, gate ≥ ${esc(p.threshold ?? "–")}, divergence at J &lt; ${esc(DP.divergence_threshold ?? "–")}</div>`);
    let t = `<table class="t dp-stats"><tr><th></th><th class="num">accuracy</th><th class="num">fooled</th><th class="num">retained acc. (hard mask)</th><th class="num">neurons kept</th>${DP.layers.map((l) => `<th class="num">mean size ${esc(l)}</th>`).join("")}</tr>`;
    t += `<tr><td>clean</td><td class="num">–</td><td class="num">–</td><td class="num">${fmt(c.retained_accuracy, 3)}</td><td class="num">${fmt(c.kept_fraction_total, 3)}</td>${DP.layers.map((l) => `<td class="num">${fmt((c.mean_size || {})[l], 1)}</td>`).join("")}</tr>`;
    DP.eps.forEach((e, j) => {
      const b = DP.by_eps.find((x) => Math.abs(+x.eps - +e) < 1e-9) || {};
      t += `<tr><td><span class="sw-line" style="background:${dpEpsColor(j)}"></span>ε = ${esc(e)}</td><td class="num">${fmt(b.accuracy, 3)}</td><td class="num">${b.n_fooled ?? "–"} / ${esc(DP.n_samples ?? DP.samples.length)}</td><td class="num">${fmt(b.retained_accuracy, 3)}</td><td class="num">${fmt(b.kept_fraction_total, 3)}</td>${DP.layers.map((l) => `<td class="num">${fmt((b.mean_size || {})[l], 1)}</td>`).join("")}</tr>`;
    });
    head.insertAdjacentHTML("beforeend", t + `</table>`);

    const over = card(host, "Overlap of the critical sets per layer", "mean over samples; one line per attack ε; lower = the adversarial input uses other neurons");
    over.classList.add("dp-overlap");
    const ctl = document.createElement("div"); ctl.className = "dp-ctls"; over.appendChild(ctl);
    const chart = document.createElement("div"); chart.className = "dp-charts"; over.appendChild(chart);
    const drawOver = () => dpOverlapCharts(chart);
    dpSeg(ctl, "dp-metric", "overlap", [["jaccard", "Jaccard"], ["weighted_jaccard", "weighted Jaccard"]], "metric", drawOver);
    dpSeg(ctl, "dp-split", "samples", [["split", "fooled | not fooled"], ["all", "all"]], "split", drawOver);
    drawOver();

    const div = card(host, "First divergence layer", `per attack ε: how many samples first have Jaccard < ${DP.divergence_threshold ?? 0.5} at each layer ('none': never)`);
    div.classList.add("dp-div");
    const dctl = document.createElement("div"); dctl.className = "dp-ctls"; div.appendChild(dctl);
    const dchart = document.createElement("div"); dchart.className = "dp-charts"; div.appendChild(dchart);
    const drawDiv = () => dpDivergenceCharts(dchart);
    dpSeg(dctl, "dp-divgroup", "samples", [["all", "all"], ["fooled", "fooled"], ["not_fooled", "not fooled"]], "divGroup", drawDiv);
    drawDiv();

    const bottom = document.createElement("div"); bottom.className = "dp-bottom"; host.appendChild(bottom);
    const list = card(bottom, "Samples", "click a row (or Enter) for its network-level flow");
    list.classList.add("dp-samples");
    const lctl = document.createElement("div"); lctl.className = "dp-ctls"; list.appendChild(lctl);
    const tableHost = document.createElement("div"); tableHost.className = "dp-table-wrap"; list.appendChild(tableHost);
    dpSeg(lctl, "dp-filter", "show", [["all", "all"], ["fooled", "fooled at some ε"], ["detail", "with flow detail"]], "filter", () => dpSampleTable(tableHost));
    dpSampleTable(tableHost);
    const flow = card(bottom, "Sample flow", "");
    flow.classList.add("dp-flow"); flow.id = "dp-flow";
    const first = DP.samples.find((s) => DP.detailById.has(+s.sample_id)) || DP.samples[0];
    if (first) dpSelect(+first.sample_id, false);
  }

  function dpOverlapCharts(host) {
    host.innerHTML = "";
    const groups = dpState.split === "split" ? [["fooled", "fooled"], ["not_fooled", "not fooled"]] : [["all", "all samples"]];
    groups.forEach(([g, title]) => {
      const W = 330, H = 220, m = { l: 40, r: 12, t: 22, b: 30 };
      const box = document.createElement("div"); box.className = "dp-chart"; box.dataset.group = g; host.appendChild(box);
      const svg = d3.select(box).append("svg").attr("viewBox", `0 0 ${W} ${H}`).attr("width", W).attr("height", H)
        .attr("class", "dp-overlap-chart").attr("role", "img").attr("aria-label", `mean ${dpMetricLabel()} per layer, ${title}, one line per attack eps`);
      svg.append("title").text(`mean ${dpMetricLabel()} between clean and adversarial critical sets per layer (${title})`);
      const xs = d3.scalePoint().domain(DP.layers).range([m.l + 10, W - m.r - 10]);
      const ys = d3.scaleLinear().domain([0, 1]).range([H - m.b, m.t]);
      svg.append("g").attr("class", "grid").attr("transform", `translate(${m.l},0)`).call(d3.axisLeft(ys).ticks(5).tickSize(-(W - m.l - m.r)).tickFormat(""));
      svg.append("g").attr("class", "axis").attr("transform", `translate(0,${H - m.b})`).call(d3.axisBottom(xs));
      svg.append("g").attr("class", "axis").attr("transform", `translate(${m.l},0)`).call(d3.axisLeft(ys).ticks(5));
      svg.append("text").attr("x", m.l).attr("y", 13).attr("class", "dp-chart-title").text(title);
      svg.append("text").attr("transform", `translate(11,${(H - m.b + m.t) / 2}) rotate(-90)`).attr("text-anchor", "middle").attr("class", "axis-label").text(`mean ${dpMetricLabel()}`);
      if (dpState.metric === "jaccard" && DP.divergence_threshold != null) {
        const y = ys(+DP.divergence_threshold);
        svg.append("line").attr("x1", m.l).attr("x2", W - m.r).attr("y1", y).attr("y2", y).attr("class", "dp-threshold");
        svg.append("text").attr("x", W - m.r - 2).attr("y", y - 3).attr("text-anchor", "end").attr("class", "axis-label").text(`divergence threshold ${DP.divergence_threshold}`);
      }
      const line = d3.line().defined((p) => p[1] != null).x((p) => xs(p[0])).y((p) => ys(p[1]));
      DP.eps.forEach((e, j) => {
        const pts = DP.layers.map((l) => { const v = ((DP.by_layer[l] || {})[`${dpState.metric}_${g}`] || [])[j]; return [l, v == null ? null : +v]; });
        const col = dpEpsColor(j);
        svg.append("path").attr("class", "dp-line").attr("data-eps", e).attr("d", line(pts) || "").attr("fill", "none").attr("stroke", col).attr("stroke-width", 2.2);
        svg.append("g").selectAll("circle").data(pts.filter((p) => p[1] != null)).join("circle").attr("cx", (p) => xs(p[0])).attr("cy", (p) => ys(p[1]))
          .attr("r", 3.4).attr("fill", col).append("title").text((p) => `ε = ${e}, ${p[0]}, ${title}: mean ${dpMetricLabel()} ${fmt(p[1], 3)}`);
      });
      const b = (k) => DP.by_eps[k] || {};
      const n = DP.n_samples ?? DP.samples.length;
      box.insertAdjacentHTML("beforeend", `<div class="dp-legend">` + DP.eps.map((e, j) => {
        const nf = b(j).n_fooled, cnt = g === "fooled" ? nf : g === "not_fooled" ? (nf != null ? n - nf : null) : n;
        return `<span><span class="sw-line" style="background:${dpEpsColor(j)}"></span>ε = ${esc(e)}${cnt != null ? ` <span class="hint">(${cnt} sample${cnt === 1 ? "" : "s"})</span>` : ""}</span>`;
      }).join("") + `</div>`);
    });
  }

  function dpDivergenceCharts(host) {
    host.innerHTML = "";
    const cats = DP.layers.concat(["none"]);
    const counts = DP.eps.map((e) => { const b = DP.by_eps.find((x) => Math.abs(+x.eps - +e) < 1e-9) || {}; return ((b.divergence_counts || {})[dpState.divGroup]) || {}; });
    const hi = d3.max(counts, (c) => d3.max(cats, (k) => +c[k] || 0)) || 1;
    DP.eps.forEach((e, j) => {
      const W = 230, H = 200, m = { l: 32, r: 8, t: 22, b: 30 };
      const box = document.createElement("div"); box.className = "dp-chart"; host.appendChild(box);
      const svg = d3.select(box).append("svg").attr("viewBox", `0 0 ${W} ${H}`).attr("width", W).attr("height", H)
        .attr("class", "dp-div-chart").attr("data-eps", e).attr("role", "img").attr("aria-label", `first divergence layer at eps ${e}`);
      const xs = d3.scaleBand().domain(cats).range([m.l, W - m.r]).padding(0.22);
      const ys = d3.scaleLinear().domain([0, hi]).nice().range([H - m.b, m.t]);
      svg.append("g").attr("class", "grid").attr("transform", `translate(${m.l},0)`).call(d3.axisLeft(ys).ticks(4).tickSize(-(W - m.l - m.r)).tickFormat(""));
      svg.append("g").attr("class", "axis").attr("transform", `translate(0,${H - m.b})`).call(d3.axisBottom(xs));
      svg.append("g").attr("class", "axis").attr("transform", `translate(${m.l},0)`).call(d3.axisLeft(ys).ticks(4).tickFormat(d3.format("d")));
      svg.append("text").attr("x", m.l).attr("y", 13).attr("class", "dp-chart-title").text(`ε = ${e}`);
      const c = counts[j];
      const bars = svg.append("g").selectAll("g").data(cats).join("g");
      bars.append("rect").attr("class", (k) => "dp-bar" + (k === "none" ? " none" : "")).attr("data-layer", (k) => k)
        .attr("x", (k) => xs(k)).attr("width", xs.bandwidth()).attr("y", (k) => ys(+c[k] || 0)).attr("height", (k) => ys(0) - ys(+c[k] || 0))
        .attr("fill", (k) => (k === "none" ? DPCOL.none : dpEpsColor(j)))
        .append("title").text((k) => (k === "none" ? `ε = ${e}: ${+c[k] || 0} samples never diverge` : `ε = ${e}: ${+c[k] || 0} samples diverge first at ${k}`));
      bars.append("text").attr("x", (k) => xs(k) + xs.bandwidth() / 2).attr("y", (k) => ys(+c[k] || 0) - 3).attr("text-anchor", "middle").attr("class", "axis-label dp-count").text((k) => +c[k] || 0);
    });
  }

  function dpSampleTable(host) {
    const jcol = d3.scaleSequential(d3.interpolateViridis).domain([0, 1]);
    const rows = DP.samples.filter((s) => dpState.filter === "all" ||
      (dpState.filter === "detail" ? DP.detailById.has(+s.sample_id) : DP.eps.some((e) => (epsGet(s.eps, e) || {}).fooled)));
    let h = `<table class="t dp-table"><thead><tr><th>sample</th><th>label</th><th>clean</th>` +
      DP.eps.map((e, j) => `<th title="adversarial prediction, divergence layer and Jaccard per layer (${DP.layers.join(", ")}) at ε = ${esc(e)}"><span class="sw-line" style="background:${dpEpsColor(j)}"></span>ε = ${esc(e)}</th>`).join("") +
      `<th title="critical neuron ids and flow edges stored">flow</th></tr></thead><tbody>`;
    rows.forEach((s) => {
      const sid = +s.sample_id, img = DS.image(sid, "clean", null);
      const cw = s.clean_prediction != null && s.clean_prediction !== s.label;
      const eparts = DP.eps.map((e) => {
        const v = epsGet(s.eps, e) || {};
        const J = Array.isArray(v.jaccard) ? v.jaccard : [];
        return `<td class="dp-eps"><span class="${v.fooled ? "wrong" : ""}">→ ${esc(v.prediction != null ? cname(v.prediction) : "–")}${v.fooled ? " ✗" : ""}</span>` +
          `<span class="dp-cells">${DP.layers.map((l, k) => `<span class="dp-cell${v.divergence_layer === l ? " div" : ""}" style="background:${J[k] == null ? "#e5e7eb" : jcol(J[k])}" title="${esc(l)}: Jaccard ${fmt(J[k], 2)}${v.divergence_layer === l ? " (first divergence)" : ""}"></span>`).join("")}</span>` +
          `<span class="hint">${v.divergence_layer != null ? "div. " + esc(v.divergence_layer) : "no div."}</span></td>`;
      }).join("");
      const label = `sample ${sid}, label ${cname(s.label)}, clean prediction ${s.clean_prediction != null ? cname(s.clean_prediction) : "unknown"}` +
        DP.eps.map((e) => { const v = epsGet(s.eps, e) || {}; return `; eps ${e}: ${v.fooled ? "fooled" : "not fooled"}, predicted ${v.prediction != null ? cname(v.prediction) : "unknown"}, divergence ${v.divergence_layer || "none"}`; }).join("");
      h += `<tr class="dp-row${dpState.sample === sid ? " on" : ""}" data-sid="${sid}" tabindex="0" role="button" aria-label="${esc(label)}">` +
        `<td class="dp-sid">${img ? `<img src="${img}" alt="">` : ""}#${sid}</td><td>${esc(cname(s.label))}</td><td class="${cw ? "wrong" : ""}">${esc(s.clean_prediction != null ? cname(s.clean_prediction) : "–")}</td>` +
        eparts + `<td>${DP.detailById.has(sid) ? `<span title="critical neurons and flow edges stored">●</span>` : ""}</td></tr>`;
    });
    h += `</tbody></table>`;
    if (!rows.length) h += `<div class="hint" style="padding:8px">no sample matches</div>`;
    host.innerHTML = h;
    host.insertAdjacentHTML("afterbegin", `<div class="hint dp-cell-legend">cells: Jaccard per layer (${DP.layers.map(esc).join(" → ")}), <span class="dp-cell" style="background:${jcol(0)}"></span> 0 … <span class="dp-cell" style="background:${jcol(1)}"></span> 1, outlined = first divergence · ✗ = fooled</div>`);
    host.querySelectorAll("img").forEach((im) => im.addEventListener("error", () => { im.style.visibility = "hidden"; }));
    host.querySelectorAll("tr.dp-row").forEach((tr) => {
      tr.addEventListener("click", () => dpSelect(+tr.dataset.sid, true));
      tr.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); dpSelect(+tr.dataset.sid, true); }
        else if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
          ev.preventDefault();
          const nx = ev.key === "ArrowDown" ? tr.nextElementSibling : tr.previousElementSibling;
          if (nx) nx.focus();
        }
      });
    });
  }

  function dpSelect(sid, user) {
    dpState.sample = sid;
    document.querySelectorAll("#datapaths tr.dp-row").forEach((tr) => { const on = +tr.dataset.sid === sid; tr.classList.toggle("on", on); tr.setAttribute("aria-pressed", String(on)); });
    dpFlow($("#dp-flow"), sid);
    if (user) { const f = $("#dp-flow"); if (f && f.scrollIntoView) f.scrollIntoView({ block: "nearest" }); }
  }

  function dpFlow(host, sid) {
    const s = DP.samples.find((x) => +x.sample_id === sid);
    if (!host || !s) return;
    const e = dpState.eps, j = DP.eps.findIndex((x) => Math.abs(+x - e) < 1e-9);
    const v = epsGet(s.eps, e) || {};
    const det = DP.detailById.get(sid);
    host.innerHTML = `<h3>Sample #${esc(sid)} · ${esc(cname(s.label))}</h3>`;
    host.dataset.sample = sid;
    const ctl = document.createElement("div"); ctl.className = "dp-ctls"; host.appendChild(ctl);
    dpSeg(ctl, "dp-eps", "adversarial version", DP.eps.map((x) => [x, `ε = ${x}`]), "eps", () => dpFlow(host, sid));
    const loc = document.createElement("button"); loc.className = "btn small"; loc.textContent = "Locate in graphs"; loc.title = "outline this sample in the mapper graphs";
    loc.addEventListener("click", () => locate(sid)); ctl.appendChild(loc);
    // thumbnails: clean | adversarial at this eps (the node drill-down's image endpoint)
    const cimg = DS.image(sid, "clean", null), aimg = DS.image(sid, "adversarial", { model: DP.model, attack: DP.attack, eps: e });
    const cw = s.clean_prediction != null && s.clean_prediction !== s.label;
    const top = document.createElement("div"); top.className = "dp-top"; host.appendChild(top);
    top.innerHTML = `<div class="dp-thumbs">` +
      `<figure>${cimg ? `<img src="${cimg}" alt="clean image of sample ${sid}">` : `<div class="noimg">no image</div>`}<figcaption class="${cw ? "wrong" : ""}">clean → ${esc(s.clean_prediction != null ? cname(s.clean_prediction) : "–")}</figcaption></figure>` +
      `<figure>${aimg ? `<img src="${aimg}" alt="adversarial image of sample ${sid} at eps ${esc(e)}">` : `<div class="noimg">no image</div>`}<figcaption class="${v.fooled ? "wrong" : ""}">ε = ${esc(e)} → ${esc(v.prediction != null ? cname(v.prediction) : "–")}${v.fooled ? " (fooled)" : ""}</figcaption></figure></div>`;
    top.querySelectorAll("img").forEach((im) => im.addEventListener("error", () => { im.replaceWith(Object.assign(document.createElement("div"), { className: "noimg", textContent: "no image" })); }));
    // the Jaccard row of every eps (the one shown below in bold)
    let t = `<table class="t dp-jrow"><tr><th></th>${DP.layers.map((l) => `<th class="num">${esc(l)}</th>`).join("")}<th>first divergence</th></tr>`;
    DP.eps.forEach((x, k) => {
      const w = epsGet(s.eps, x) || {}, J = w.jaccard || [], WJ = w.weighted_jaccard || [];
      t += `<tr class="${k === j ? "cur" : ""}"><td><span class="sw-line" style="background:${dpEpsColor(k)}"></span>ε = ${esc(x)}${w.fooled ? ` <span class="wrong">fooled</span>` : ""}</td>` +
        DP.layers.map((l, i) => `<td class="num${w.divergence_layer === l ? " div" : ""}" title="Jaccard ${fmt(J[i], 3)}, weighted Jaccard ${fmt(WJ[i], 3)}">${fmt(J[i], 2)} <span class="hint">(${fmt(WJ[i], 2)})</span></td>`).join("") +
        `<td>${esc(w.divergence_layer || "none")}</td></tr>`;
    });
    top.insertAdjacentHTML("beforeend", `<div class="dp-jwrap">${t}</table><div class="hint">Jaccard (weighted Jaccard) of the clean and adversarial critical sets; outlined: first layer below ${esc(DP.divergence_threshold ?? 0.5)}</div></div>`);
    const adv = det ? epsGet(det.adversarial, e) : null;
    if (!det || !det.clean || !adv) {
      host.insertAdjacentHTML("beforeend", `<div class="dp-note">No critical neuron ids or flow edges are stored for this sample${det ? ` at ε = ${esc(e)}` : ""} (datapaths.json keeps them for the first ${DP.detailById.size} samples: the study's <code>n_detail</code>). Samples with a flow are marked ● in the list.</div>`);
      return;
    }
    dpFlowSvg(host, det.clean, adv, e);
  }

  function dpFlowSvg(host, cl, adv, e) {
    const L = DP.layers, cc = cl.critical || {}, ac = adv.critical || {};
    const cols = L.map((l) => {
      const A = new Set((cc[l] || []).map(Number)), B = new Set((ac[l] || []).map(Number));
      const shared = [...A].filter((x) => B.has(x)).sort((a, b) => a - b);
      const conly = [...A].filter((x) => !B.has(x)).sort((a, b) => a - b), aonly = [...B].filter((x) => !A.has(x)).sort((a, b) => a - b);
      // clean-only on top, shared in the middle, adversarial-only at the bottom
      const nodes = conly.map((id) => ({ id, kind: "clean" })).concat(shared.map((id) => ({ id, kind: "shared" })), aonly.map((id) => ({ id, kind: "adv" })));
      return { layer: l, nodes, n: { shared: shared.length, clean: conly.length, adv: aonly.length } };
    });
    const nmax = d3.max(cols, (c) => c.nodes.length) || 1;
    // as wide as the card (columns 150-260 px apart), fixed once drawn
    const avail = host.clientWidth ? host.clientWidth - 26 : 700;
    const W = Math.max(480, Math.min(avail, 260 * L.length + 200)), m = { l: 100, r: 100, t: 46, b: 16 };
    const step = Math.max(5, Math.min(20, 560 / nmax)), H = m.t + m.b + Math.max(step * nmax, 60);
    const r = Math.max(2, Math.min(6.5, step * 0.36));
    const xs = d3.scalePoint().domain(L).range([m.l, W - m.r]);
    const pos = new Map();
    cols.forEach((c) => {
      const y0 = m.t + (H - m.t - m.b - step * (c.nodes.length - 1)) / 2;
      c.nodes.forEach((nd, i) => { nd.x = xs(c.layer); nd.y = y0 + i * step; pos.set(`${c.layer}:${nd.id}`, nd); });
    });
    // edges: top-k of the clean path, of the adversarial path; in both = dark
    const edges = new Map();
    const conn = new Map((DP.connections || []).map((x) => [`${x.source}>${x.target}`, x]));
    const gaps = [];
    [["clean", cl.flow], ["adv", adv.flow]].forEach(([who, flow]) => (flow || []).forEach((f) => {
      if (!Array.isArray(f.edges)) { gaps.push(f); return; }
      f.edges.forEach(([i, jj, w]) => {
        const k = `${f.source}:${i}>${f.target}:${jj}`;
        const ed = edges.get(k) || { k, s: pos.get(`${f.source}:${i}`), t: pos.get(`${f.target}:${jj}`), w: 0, src: f.source, tgt: f.target, i, j: jj, by: new Set() };
        ed.w = Math.max(ed.w, +w || 0); ed.by.add(who); edges.set(k, ed);
      });
    }));
    const E = [...edges.values()].filter((x) => x.s && x.t);
    E.forEach((x) => { x.kind = x.by.size === 2 ? "shared" : x.by.has("clean") ? "clean" : "adv"; });
    const wmax = d3.max(E, (x) => x.w) || 1;
    const ws = d3.scaleLinear().domain([0, wmax]).range([0.6, 4.2]);
    const box = document.createElement("div"); box.className = "dp-flow-svg"; host.appendChild(box);
    const tot = (k) => d3.sum(cols, (c) => c.n[k]);
    const nEdge = (k) => E.filter((x) => x.kind === k).length;
    box.insertAdjacentHTML("beforeend", `<div class="legend dp-flow-legend"><span class="title">neurons</span>` +
      ["shared", "clean", "adv"].map((k) => `<span class="item" data-kind="${k}"><span class="sw" style="background:${DPCOL[k]}"></span>${DPKIND[k]} (${tot(k)})</span>`).join("") +
      `<span class="sep"></span><span class="title">top-${esc((DP.params && DP.params.top_k) || "k")} flow edges</span>` +
      [["clean", "clean path"], ["adv", "adversarial path"], ["shared", "both"]].map(([k, t]) => `<span class="item"><span class="ln" style="background:${DPCOL[k]}"></span>${t} (${nEdge(k)})</span>`).join("") + `</div>`);
    const svg = d3.select(box).append("svg").attr("viewBox", `0 0 ${W} ${H}`).attr("width", W).attr("height", H).attr("class", "dp-flow-chart")
      .attr("data-eps", e).attr("role", "img").attr("aria-label", `critical neurons per layer of the clean and adversarial (eps ${e}) inputs and their strongest flow edges`);
    const link = d3.linkHorizontal().x((p) => p.x).y((p) => p.y);
    svg.append("g").attr("class", "dp-edges").selectAll("path").data(E.sort((a, b) => a.w - b.w)).join("path")
      .attr("class", (x) => `dp-edge ${x.kind}`).attr("d", (x) => link({ source: { x: x.s.x + r, y: x.s.y }, target: { x: x.t.x - r, y: x.t.y } }))
      .attr("fill", "none").attr("stroke", (x) => DPCOL[x.kind]).attr("stroke-opacity", 0.55).attr("stroke-width", (x) => ws(x.w))
      .append("title").text((x) => `${x.src} #${x.i} → ${x.tgt} #${x.j}: |W| ${fmt(x.w, 3)} (${x.kind === "shared" ? "in both paths' top edges" : x.kind === "clean" ? "clean path" : "adversarial path"})`);
    gaps.filter((f, i) => gaps.findIndex((g) => g.source === f.source && g.target === f.target) === i).forEach((f) => {
      if (xs(f.source) == null || xs(f.target) == null) return;
      const c = conn.get(`${f.source}>${f.target}`) || {};
      svg.append("text").attr("x", (xs(f.source) + xs(f.target)) / 2).attr("y", (m.t + H - m.b) / 2).attr("text-anchor", "middle").attr("class", "axis-label dp-noflow")
        .text("no flow edges").append("title").text(c.reason || "this layer pair is not joined by one Conv2d/Linear module");
    });
    cols.forEach((c) => {
      const g = svg.append("g").attr("class", "dp-col").attr("data-layer", c.layer);
      g.append("text").attr("x", xs(c.layer)).attr("y", 14).attr("text-anchor", "middle").attr("class", "dp-col-title").text(c.layer);
      const wd = (DP.widths || {})[c.layer];
      g.append("text").attr("x", xs(c.layer)).attr("y", 28).attr("text-anchor", "middle").attr("class", "axis-label")
        .text(`${c.n.shared} shared · ${c.n.clean} clean · ${c.n.adv} adv${wd != null ? ` / ${wd}` : ""}`);
      const nd = g.selectAll("g").data(c.nodes).join("g").attr("transform", (d) => `translate(${d.x},${d.y})`);
      nd.append("circle").attr("class", (d) => `dp-neuron ${d.kind === "adv" ? "adv-only" : d.kind === "clean" ? "clean-only" : "shared"}`)
        .attr("data-id", (d) => d.id).attr("r", r).attr("fill", (d) => DPCOL[d.kind]).attr("stroke", "#fff").attr("stroke-width", 0.8)
        .append("title").text((d) => `${c.layer} neuron ${d.id}: ${DPKIND[d.kind]}`);
      if (step >= 11) nd.append("text").attr("x", -r - 3).attr("y", 3.5).attr("text-anchor", "end").attr("class", "dp-nid").text((d) => d.id);
    });
  }

  // ------------------------------------------------------------------ linked embedding
  // A scatter of the graph's rows (PCA / t-SNE of the stored activations, server mode):
  // clicking a node highlights its members here; brushing here outlines the nodes that hold
  // any brushed row; the located sample's rows are ringed.
  function toggleEmbedding(p) {
    if (p.emb) { p.emb = null; const b = p.el.querySelector(".embed"); if (b) b.remove(); p.el.querySelector(".emb-toggle").classList.remove("on"); if (GRAPHS.has(p.id)) renderPanel(p, sharedScales()); return; }
    openEmbedding(p, "pca");
  }
  function openEmbedding(p, method) {
    p.emb = { method, data: null, brushNodes: null, brushRows: null };
    p.el.querySelector(".emb-toggle").classList.add("on");
    const box = document.createElement("div"); box.className = "embed";
    box.innerHTML = `<div class="emb-head"><span class="emb-method"><button data-m="pca">PCA</button><button data-m="tsne">t-SNE</button></span>
      <span class="emb-legend"><svg width="10" height="10"><circle cx="5" cy="5" r="3.5" fill="#888"/></svg> clean
      <svg width="10" height="10"><path d="M5,1L9,9L1,9Z" fill="#888"/></svg> adversarial</span>
      <span class="emb-count hint"></span></div><div class="emb-body"><div class="emb-msg hint"></div></div>`;
    p.el.insertBefore(box, p.el.querySelector("svg.graph-svg"));
    box.querySelectorAll(".emb-method button").forEach((b) => b.addEventListener("click", () => {
      if (p.emb && p.emb.method !== b.dataset.m) { p.emb.method = b.dataset.m; loadEmbedding(p); }
    }));
    loadEmbedding(p);
  }
  async function loadEmbedding(p) {
    const em = p.emb, box = p.el.querySelector(".embed");
    if (!em || !box) return;
    const method = em.method;
    box.querySelectorAll(".emb-method button").forEach((b) => b.classList.toggle("on", b.dataset.m === method));
    em.data = null; em.brushNodes = null; em.brushRows = null; em.marks = null;
    box.dataset.state = "loading";
    p.svg.selectAll("g.node").classed("brushed", false);
    const body = box.querySelector(".emb-body");
    body.innerHTML = `<div class="emb-msg hint"><span class="spinner"></span> computing ${method === "tsne" ? "t-SNE" : "PCA"}…</div>`;
    box.querySelector(".emb-count").textContent = "";
    let res;
    try {
      res = await DS.embedding(p.id, method);
    } catch (err) { res = { available: false, reason: err.message }; }
    if (p.emb !== em || em.method !== method || !p.el.isConnected) return;  // closed or switched meanwhile
    if (!res || !res.available) {
      body.innerHTML = `<div class="emb-msg hint"></div>`;
      body.querySelector(".emb-msg").textContent = "embedding unavailable: " + ((res && res.reason) || "unknown reason");
      box.dataset.state = "unavailable";
      return;
    }
    em.data = res;
    drawEmbedding(p);
    if (GRAPHS.has(p.id)) renderPanel(p, sharedScales());
  }
  function drawEmbedding(p) {
    const em = p.emb, box = p.el.querySelector(".embed"), g = GRAPHS.get(p.id);
    if (!em || !em.data || !box || !g) return;
    const body = box.querySelector(".emb-body");
    body.innerHTML = "";
    const W = Math.max(160, body.getBoundingClientRect().width || 300), H = 210, pad = 8;
    const X = em.data.x, Y = em.data.y, P = g.points || {};
    const adv = P.is_adversarial || [], lab = P.label || [];
    const sx = d3.scaleLinear().domain(d3.extent(X)).range([pad, W - pad]);
    const sy = d3.scaleLinear().domain(d3.extent(Y)).range([H - pad, pad]);
    em.sx = sx; em.sy = sy;
    const svg = d3.select(body).append("svg").attr("class", "emb-svg").attr("width", W).attr("height", H);
    const tri = d3.symbol(d3.symbolTriangle, 22)();
    const rows = d3.range(X.length);
    const marks = svg.append("g").attr("class", "emb-marks").selectAll(".pt").data(rows).join((en) => en.append((r) =>
      document.createElementNS("http://www.w3.org/2000/svg", adv[r] ? "path" : "circle")))
      .attr("class", (r) => "pt" + (adv[r] ? " adv" : ""))
      .attr("data-row", (r) => r)
      .attr("fill", (r) => CCOLOR(+lab[r] || 0));
    marks.filter((r) => !adv[r]).attr("cx", (r) => sx(X[r])).attr("cy", (r) => sy(Y[r])).attr("r", 2.4);
    marks.filter((r) => !!adv[r]).attr("d", tri).attr("transform", (r) => `translate(${sx(X[r])},${sy(Y[r])})`);
    em.marks = marks;
    const brush = d3.brush().extent([[0, 0], [W, H]]).on("end", (ev) => {
      const d = derive(g);
      if (!ev.selection) { em.brushNodes = null; em.brushRows = null; }
      else {
        const [[x0, y0], [x1, y1]] = ev.selection;
        em.brushRows = new Set(rows.filter((r) => { const a = sx(X[r]), b = sy(Y[r]); return a >= x0 && a <= x1 && b >= y0 && b <= y1; }));
        em.brushNodes = new Set();
        em.brushRows.forEach((r) => (d.nodesByRow.get(r) || []).forEach((i) => em.brushNodes.add(i)));
      }
      updateEmbedding(p);
      p.svg.selectAll("g.node").classed("brushed", (i) => !!(em.brushNodes && em.brushNodes.has(i)));
    });
    svg.append("g").attr("class", "emb-brush").call(brush);
    box.dataset.state = "ready";
    box.dataset.n = String(X.length);
    updateEmbedding(p);
  }
  function updateEmbedding(p) {
    const em = p.emb, box = p.el.querySelector(".embed");
    if (!em || !em.marks || !box) return;
    const g = GRAPHS.get(p.id), d = derive(g);
    const sel = state.selected && state.selected.gid === p.id ? d.nodeById.get(state.selected.nid) : null;
    const selRows = sel != null ? new Set(g.nodes[sel].members || []) : null;
    const locRows = state.locate != null ? new Set(d.rowsBySample.get(state.locate) || []) : null;
    const br = em.brushRows;
    em.marks.attr("class", (r) => "pt" + ((g.points.is_adversarial || [])[r] ? " adv" : "") +
      (selRows ? (selRows.has(r) ? " hl" : " dim") : "") + (br && br.has(r) ? " inbrush" : "") +
      (br && !selRows && !br.has(r) ? " dim" : "") + (locRows && locRows.has(r) ? " located" : ""));
    em.marks.filter(".hl, .located, .inbrush").raise();
    const c = box.querySelector(".emb-count");
    const parts = [`${em.data.x.length} points · ${em.data.method === "tsne" ? "t-SNE" : "PCA"}`];
    if (selRows) parts.push(`node ${state.selected.nid}: ${selRows.size} highlighted`);
    if (br) parts.push(`${br.size} points, ${em.brushNodes.size} nodes`);
    c.textContent = parts.join(" · ");
  }

  // ------------------------------------------------------------------ recompute
  function toggleRecompute(p) {
    let box = p.el.querySelector(".recompute");
    if (box) { box.remove(); return; }
    const e = ENTRY.get(p.id) || {}, pr = e.params || {};
    box = document.createElement("div"); box.className = "recompute";
    box.innerHTML = `intervals <input name="n_intervals" type="number" min="1" max="1000" value="${esc(pr.n_intervals ?? 10)}">
      overlap <input name="overlap" type="number" step="0.05" min="0" max="0.95" value="${esc(pr.overlap ?? 0.3)}">
      eps <input name="eps" value="${esc(pr.eps ?? "auto")}"> lens <input name="lens" value="${esc(pr.lens ?? "l2norm")}">
      <button class="btn small primary">Rebuild</button><div class="progress"><div></div></div><div class="hint rc-msg"></div>`;
    p.el.insertBefore(box, p.el.querySelector(".panel-title"));
    const kd = (GRAPHS.get(p.id) || {}).k_distance;
    if (kd && Array.isArray(kd.values) && kd.values.length > 1) kDistanceChart(box, kd, box.querySelector("[name=eps]"));
    box.querySelector("button").addEventListener("click", async () => {
      const v = (n) => box.querySelector(`[name=${n}]`).value;
      const eps = v("eps") === "auto" ? "auto" : +v("eps");
      const msg = box.querySelector(".rc-msg"), bar = box.querySelector(".progress div");
      try {
        let job = await api.json("api/recompute", { method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ graph: p.id, n_intervals: +v("n_intervals"), overlap: +v("overlap"), eps, lens: v("lens") }) });
        while (job.state === "queued" || job.state === "running") {
          msg.textContent = job.message; bar.style.width = `${100 * job.progress}%`;
          await new Promise((r) => setTimeout(r, 500));
          job = await api.json("api/recompute/" + job.id);
        }
        if (job.state !== "done") throw new Error(job.message);
        bar.style.width = "100%";
        INDEX = await DS.index(); indexEntries();
        p.id = job.graph_id; buildPanels();
      } catch (err) { msg.textContent = err.message; toast("recompute: " + err.message, true); }
    });
  }

  // k-distance curve (k = min_samples): DBSCAN's eps is usually picked at its knee.
  // Click the curve to copy that distance into the eps input.
  function kDistanceChart(box, kd, input) {
    const W = 260, H = 90, m = { l: 38, r: 6, t: 6, b: 18 };
    const div = document.createElement("div"); div.className = "kdist";
    div.innerHTML = `<div class="hint">${kd.k}-distance curve (sorted sample) · click to set eps</div>`;
    box.appendChild(div);
    const vals = kd.values, xs = d3.scaleLinear().domain([0, 1]).range([m.l, W - m.r]);
    const ys = d3.scaleLinear().domain(d3.extent(vals)).nice().range([H - m.b, m.t]);
    const svg = d3.select(div).append("svg").attr("viewBox", `0 0 ${W} ${H}`).attr("width", W).attr("height", H);
    svg.append("g").attr("class", "axis").attr("transform", `translate(${m.l},0)`).call(d3.axisLeft(ys).ticks(3).tickFormat(d3.format(".2~g")));
    svg.append("g").attr("class", "axis").attr("transform", `translate(0,${H - m.b})`).call(d3.axisBottom(xs).ticks(2).tickFormat(d3.format(".0%")));
    const q = kd.quantiles || vals.map((_, i) => i / (vals.length - 1));
    svg.append("path").attr("fill", "none").attr("stroke", "#2563eb").attr("stroke-width", 1.5)
      .attr("d", d3.line().x((_, i) => xs(q[i])).y((v) => ys(v))(vals));
    const rule = svg.append("line").attr("x1", m.l).attr("x2", W - m.r).attr("stroke", "#dc2626").attr("stroke-dasharray", "3,2");
    const place = (v) => { const ok = isFinite(v); rule.style("display", ok ? null : "none"); if (ok) rule.attr("y1", ys(v)).attr("y2", ys(v)); };
    place(+kd.eps);
    input.addEventListener("input", () => place(+input.value));
    svg.append("rect").attr("x", m.l).attr("y", m.t).attr("width", W - m.l - m.r).attr("height", H - m.t - m.b)
      .attr("fill", "transparent").style("cursor", "crosshair").on("click", (ev) => {
        const fx = Math.max(0, Math.min(1, xs.invert(d3.pointer(ev)[0])));
        const i = Math.round(fx * (vals.length - 1));
        input.value = (+vals[i].toPrecision(4)).toString(); place(vals[i]);
      });
  }

  // ------------------------------------------------------------------ controls
  function seg(id, key, after) {
    const el = $(id);
    el.querySelectorAll("button").forEach((b) => b.addEventListener("click", () => {
      el.querySelectorAll("button").forEach((x) => x.classList.toggle("on", x === b));
      state[key] = b.dataset.v;
      if (after) after();
      renderAll();
      if (state.selected) showDetails(state.selected.gid, state.selected.nid);
    }));
  }
  function setSearch(c) {
    state.search = c;
    $("#class-search").value = c == null ? "" : String(c);
    renderAll();
  }
  function updateSizeOptions() {
    const s = $("#size-by");
    if (s.options.length === CLASSES.length + 1) return;
    s.innerHTML = `<option value="members">members (all classes)</option>` + CLASSES.map((c, i) => `<option value="class:${i}">members of class ${esc(c)}</option>`).join("");
  }
  function showTab(name) {
    hideTip();
    document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.dataset.tab === name));
    $("#view-graphs").classList.toggle("hidden", name !== "graphs");
    document.querySelectorAll(".tab").forEach((t) => t.setAttribute("aria-selected", String(t.dataset.tab === name)));
    $("#view-summary").classList.toggle("hidden", name !== "summary");
    $("#view-datapaths").classList.toggle("hidden", name !== "datapaths");
    document.body.classList.toggle("tab-datapaths", name === "datapaths");
    if (name === "summary") renderSummary();
    if (name === "datapaths") renderDatapaths();
  }
  function writeHash() {
    const ids = state.panels.map((p) => p.id);
    const h = "#graphs=" + ids.map(enc).join(",");
    if (location.protocol !== "file:" && location.hash !== h) history.replaceState(null, "", h);
  }
  function wire() {
    seg("#points-mode", "points");
    seg("#layout-mode", "layout");
    $("#color-by").addEventListener("change", (ev) => { state.color = ev.target.value; $("#cmap-field").style.opacity = state.color === "class" ? 0.45 : 1; renderAll(); });
    $("#cmap-field").style.opacity = 0.45;
    $("#cmap").addEventListener("change", (ev) => { state.cmap = ev.target.value; renderAll(); });
    $("#size-by").addEventListener("change", (ev) => { state.size = ev.target.value; renderAll(); });
    $("#min-size").addEventListener("input", (ev) => { state.minSize = +ev.target.value; $("#min-size-v").textContent = ev.target.value; renderAll(); });
    $("#jaccard").addEventListener("input", (ev) => { state.jaccard = +ev.target.value; $("#jaccard-v").textContent = fmt(state.jaccard); renderAll(); });
    $("#class-search").addEventListener("change", (ev) => setSearch(ev.target.value === "" ? null : +ev.target.value));
    $("#locate-btn").addEventListener("click", () => { const v = $("#locate-input").value; if (v !== "") locate(+v); });
    $("#locate-input").addEventListener("keydown", (ev) => { if (ev.key === "Enter") $("#locate-btn").click(); });
    $("#locate-clear").addEventListener("click", () => { state.locate = null; $("#locate-input").value = ""; document.querySelectorAll(".vuln.on").forEach((e) => e.classList.remove("on")); renderAll(); });
    document.querySelectorAll(".tab").forEach((t) => t.addEventListener("click", () => showTab(t.dataset.tab)));
    $("#add-panel").addEventListener("click", () => {
      const used = new Set(state.panels.map((p) => p.id));
      const next = INDEX.graphs.find((g) => !used.has(g.id));
      if (next) addPanel(next.id);
    });
    const base = () => ENTRY.get(state.panels.length ? state.panels[0].id : INDEX.graphs[0].id) || INDEX.graphs[0];
    $("#preset-eps").addEventListener("click", () => { const b = base(); setPanels(entriesFor({ model: b.model, layer: b.layer, attack: b.attack }).filter((g) => !g.recomputed).sort((a, c) => a.eps - c.eps).map((g) => g.id)); });
    $("#preset-models").addEventListener("click", () => { const b = base(); setPanels(INDEX.graphs.filter((g) => g.layer === b.layer && g.attack === b.attack && Math.abs(g.eps - b.eps) < 1e-12 && !g.recomputed).map((g) => g.id)); });
    $("#preset-layers").addEventListener("click", () => { const b = base(); setPanels(INDEX.graphs.filter((g) => g.model === b.model && g.attack === b.attack && Math.abs(g.eps - b.eps) < 1e-12 && !g.recomputed).map((g) => g.id)); });
    const ex = $("#export-btn");
    if (DS.mode === "static") ex.remove();
    else ex.addEventListener("click", () => {
      const st = JSON.stringify({ layout: state.layout, color: state.color, cmap: state.cmap, points: state.points, size: state.size, minSize: state.minSize, jaccard: state.jaccard, search: state.search, locate: state.locate });
      location.href = `api/export.html?graphs=${state.panels.map((p) => enc(p.id)).join(",")}&state=${enc(st)}`;
    });
    let rt;
    window.addEventListener("resize", () => { clearTimeout(rt); rt = setTimeout(renderAll, 120); });
  }
  function applyState(s) {
    if (!s) return;
    ["layout", "color", "cmap", "points", "size", "minSize", "jaccard", "search", "locate"].forEach((k) => { if (s[k] !== undefined) state[k] = s[k]; });
    const on = (id, v) => document.querySelectorAll(`${id} button`).forEach((b) => b.classList.toggle("on", b.dataset.v === v));
    on("#points-mode", state.points); on("#layout-mode", state.layout);
    $("#color-by").value = state.color; $("#cmap").value = state.cmap; $("#size-by").value = state.size;
    $("#min-size").value = state.minSize; $("#min-size-v").textContent = state.minSize;
    $("#jaccard").value = state.jaccard; $("#jaccard-v").textContent = fmt(state.jaccard);
    $("#class-search").value = state.search == null ? "" : String(state.search);
    $("#cmap-field").style.opacity = state.color === "class" ? 0.45 : 1;
    if (state.locate != null) $("#locate-input").value = state.locate;
  }
  function indexEntries() {
    ENTRY = new Map(INDEX.graphs.map((g) => [g.id, g]));
  }

  function defaultPanels() {
    const fromHash = decodeURIComponent((location.hash.match(/graphs=([^&]*)/) || [])[1] || "").split(",").filter((id) => ENTRY.has(id));
    if (fromHash.length) return fromHash;
    const fromEmbed = EMBED && EMBED.state && Array.isArray(EMBED.state.graphs) ? EMBED.state.graphs.filter((id) => ENTRY.has(id)) : [];
    if (fromEmbed.length) return fromEmbed;
    if (!INDEX.graphs.length) return [];
    // the paper's view: one model (the first), the deepest layer, every attack eps
    const layers = INDEX.layers && INDEX.layers.length ? INDEX.layers : uniq(INDEX.graphs.map((g) => g.layer));
    const first = INDEX.graphs[0];
    const layer = layers[layers.length - 1];
    const sweep = entriesFor({ model: first.model, layer, attack: first.attack }).sort((a, b) => a.eps - b.eps).map((g) => g.id);
    return (sweep.length ? sweep : [first.id]).slice(0, 3);
  }

  async function main() {
    try {
      INDEX = await DS.index();
    } catch (err) {
      $("#run-info").textContent = "could not load the run: " + err.message;
      throw err;
    }
    INDEX.graphs = (INDEX.graphs || []).filter((g) => g && g.id);
    indexEntries();
    const ds = INDEX.dataset || {};
    CLASSES = (ds.class_names || []).map(String);
    if (!CLASSES.length) {
      const mx = d3.max(INDEX.graphs, () => 0) || 0; CLASSES = d3.range(Math.max(mx + 1, 10)).map(String);
    }
    const palette = CLASSES.length <= 10 ? d3.schemeTableau10 : d3.schemeTableau10.concat(d3.schemeSet3, d3.schemePastel1);
    CCOLOR = (c) => palette[c % palette.length];
    $("#run-info").textContent = `${INDEX.name || "run"} · ${ds.name || "dataset"}${ds.n_samples ? ` · ${ds.n_samples} samples` : ""} · ${INDEX.graphs.length} graphs${DS.mode === "static" ? " · static export" : ""}`;
    $("#class-search").insertAdjacentHTML("beforeend", CLASSES.map((c, i) => `<option value="${i}">${esc(c)}</option>`).join(""));
    updateSizeOptions();
    wire();
    if (EMBED && EMBED.state) applyState(EMBED.state);
    loadVulnerable();
    const dpReady = loadDatapaths();
    const ids = defaultPanels();
    if (!ids.length) { $("#panels").innerHTML = `<div class="hint" style="padding:30px">This run has no mapper graphs yet.</div>`; await dpReady; return; }
    state.panels = ids.map((id) => ({ id, transform: d3.zoomIdentity }));
    await buildPanels();
    await dpReady;
  }
  window.advtopo.ready = main().then(() => { document.body.dataset.ready = "1"; }, (err) => { document.body.dataset.ready = "error"; console.warn(err); });
  window.advtopo.locate = locate;
  window.advtopo.setPanels = setPanels;
})();
