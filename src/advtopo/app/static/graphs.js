/* The graph panels: up to four mapper graphs side by side, each with its selectors, a
 * deterministic layout (layout.js), nodes drawn as class pies or coloured by an attribute
 * (one colour and size scale shared by all panels), zoom, node selection, component and
 * shortest-path highlighting. */
(function (A) {
  "use strict";
  const S = A.store, state = S.state, GRAPHS = S.graphs, $ = S.$;
  const { fmt } = A.format, { derive, nodeView: modelView } = A.graphmodel;
  const DS = A.data.source;

  // node views; a per-sample column's aggregates are x["col:<name>"] (samplecols.js)
  const nodeView = (g, mode) => A.samplecols.annotate(g, modelView(g, mode, S.classes.length), mode);

  /** The layout of panel p's graph: computed once per graph in one fixed coordinate space
   * (aspect 1, seeded by the graph id), so the same graph has the same picture in any grid;
   * with "align sweep" on, a force layout follows the previous eps of its sweep among the
   * panels (layout.alignedLayout); pinned nodes (state.pins) go where they were dropped. */
  function layoutFor(g, kind, gid) {
    const d = derive(g);
    d.layouts = d.layouts || {};
    const ref = kind !== "lens" && state.align ? sweepPredecessor(gid) : null;
    const key = kind === "lens" ? "lens" : ref ? `aligned:${ref}` : "force";
    if (!d.layouts[key]) {
      const seed = A.layout.seedOf(gid);
      if (ref) {
        const rg = GRAPHS.get(ref);
        d.layouts[key] = A.layout.alignedLayout(g, rg, layoutFor(rg, kind, ref), seed);
      } else d.layouts[key] = A.layout.computeLayout(g, kind, 1, { seed });
      A.timings[`layout:${key}:${g._id || ""}`] = d.layouts[key].ms;
    }
    const pins = kind === "lens" ? null : (state.pins || {})[gid];
    return A.layout.applyPins(g, d.layouts[key], pins);
  }
  /** The graph shown before `gid` in its eps sweep (same model, layer, attack; next lower eps
   * among the loaded panels), or null. */
  function sweepPredecessor(gid) {
    const e = S.entry.get(gid);
    if (!e) return null;
    let best = null;
    state.panels.forEach((p) => {
      const o = S.entry.get(p.id);
      if (!o || p.id === gid || !GRAPHS.has(p.id) || o.model !== e.model || o.layer !== e.layer || o.attack !== e.attack) return;
      if (+o.eps < +e.eps && (!best || +o.eps > +S.entry.get(best).eps)) best = p.id;
    });
    return best;
  }

  // ------------------------------------------------------------------ encodings shared by all panels
  function visibleViews() {
    return state.panels.filter((p) => GRAPHS.has(p.id)).map((p) => ({ p, g: GRAPHS.get(p.id), v: nodeView(GRAPHS.get(p.id), state.points) }));
  }
  function sharedScales() {
    const vis = visibleViews();
    let maxCount = 1;
    if (A.samplecols.isCol(state.size)) {  // size by a column: its range over the panels, then 0..1
      const sv = [];
      vis.forEach(({ v }) => v.forEach((x) => { if (x.count && x[state.size] != null) sv.push(x[state.size]); }));
      state.sizeDomain = A.colors.attrDomain(state.size, sv);
    }
    const sizeOf = sizeAccessor();
    vis.forEach(({ v }) => v.forEach((x) => { maxCount = Math.max(maxCount, sizeOf(x)); }));
    let domain = null;
    if (state.color !== "class") {
      const vals = [];
      vis.forEach(({ v }) => v.forEach((x) => { if (x.count) vals.push(x[state.color]); }));
      domain = A.samplecols.domain(state.color, vals);
    }
    return { maxCount, domain, color: domain ? d3.scaleSequential(A.colors.cmapInterpolator(state.cmap)).domain(domain) : null };
  }
  function sizeAccessor() {
    if (state.size === "members") return (x) => x.count;
    if (A.samplecols.isCol(state.size)) {
      const [lo, hi] = state.sizeDomain || [0, 1];
      return (x) => (x[state.size] == null ? 0 : 0.05 + (0.95 * (x[state.size] - lo)) / (hi - lo || 1));
    }
    const c = +state.size.slice(6);
    return (x) => x.hist[c] || 0;
  }
  function visibleNode(x) {
    const s = sizeAccessor()(x);
    return x.count > 0 && x.count >= state.minSize && (state.size === "members" || A.samplecols.isCol(state.size) || s > 0);
  }

  // ------------------------------------------------------------------ panels
  function addPanel(id) {
    if (state.panels.length >= S.MAX_PANELS) { S.toast(`at most ${S.MAX_PANELS} graphs side by side`); return; }
    state.panels.push({ id, transform: d3.zoomIdentity });
    buildPanels();
  }
  function setPanels(ids) {
    state.panels = ids.slice(0, S.MAX_PANELS).map((id) => ({ id, transform: d3.zoomIdentity }));
    state.highlight = null;
    buildPanels();
  }

  // one <select> of a panel's header: switching it opens the graph of the new combination
  function headSelect(head, p, e, key, values, fmtv) {
    const s = document.createElement("select");
    s.title = key; s.dataset.key = key;
    values.forEach((v) => { const o = document.createElement("option"); o.value = String(v); o.textContent = fmtv ? fmtv(v) : v; if (String(v) === String(e[key])) o.selected = true; s.appendChild(o); });
    s.addEventListener("change", () => {
      const graphs = S.index.graphs;
      const want = { model: e.model, layer: e.layer, attack: e.attack, eps: e.eps };
      want[key] = key === "eps" ? +s.value : s.value;
      let hit = graphs.find((x) => x.model === want.model && x.layer === want.layer && x.attack === want.attack && Math.abs(+x.eps - +want.eps) < 1e-12 && !x.recomputed);
      if (!hit) hit = graphs.find((x) => x[key] === want[key] || (key === "eps" && Math.abs(+x.eps - +want.eps) < 1e-12));
      if (hit) { p.id = hit.id; p.transform = d3.zoomIdentity; buildPanels(); } else S.toast("no graph for that combination", true);
    });
    head.appendChild(s);
  }

  function headButton(head, cls, text, title, onClick) {
    const b = document.createElement("button");
    b.className = cls; b.textContent = text; b.title = title; b.setAttribute("aria-label", title);
    b.addEventListener("click", onClick);
    head.appendChild(b);
  }

  function buildPanels() {
    const host = $("#panels");
    host.innerHTML = "";
    const n = state.panels.length, graphs = S.index.graphs, uniq = S.uniq;
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
      const e = S.entry.get(p.id) || {};
      headSelect(head, p, e, "model", uniq(graphs.map((x) => x.model)));
      headSelect(head, p, e, "layer", uniq(graphs.map((x) => x.layer)));
      if (uniq(graphs.map((x) => x.attack)).length > 1) headSelect(head, p, e, "attack", uniq(graphs.map((x) => x.attack)));
      headSelect(head, p, e, "eps", uniq(graphs.filter((x) => x.attack === e.attack).map((x) => +x.eps)).sort((a, b) => a - b), (v) => `ε = ${v}`);
      if (S.index.app && S.index.app.mode === "server") {
        headButton(head, "btn small ghost", "⟳", "Recompute this graph with other parameters", () => A.recompute.toggle(p));
      }
      if (DS.embedding) {
        headButton(head, "btn small ghost emb-toggle", "⁘", "Linked 2-D embedding (PCA / t-SNE) of this graph's points", () => A.embedding.toggle(p));
      }
      if (A.topoact) A.topoact.panelTools(head, p);  // loops and branch points (topoact.js)
      // ◎, not ⌖ (no font of a stock Debian has it: an empty box) nor ⊙ (with it, two loads of
      // a page placed the nodes 14 px apart in 2 of 4 tries: a font fallback, presumably)
      headButton(head, "btn small ghost unpin", "◎", "Release this graph's pinned (dragged) nodes", () => unpinAll(p));
      A.figure.panelButtons(head, p);  // SVG / PNG of this panel (figure.js)
      headButton(head, "btn small ghost x", "✕", "Remove this graph", () => { state.panels.splice(state.panels.indexOf(p), 1); buildPanels(); });
      const title = document.createElement("div"); title.className = "panel-title"; title.textContent = S.graphLabel(e); el.appendChild(title);
      if (e.recomputed) {  // what it was rebuilt with (recompute.js)
        const pl = document.createElement("div"); pl.className = "panel-params"; pl.textContent = "recomputed: " + A.recompute.paramsLine(e);
        if (e.source) pl.title = `rebuilt from ${e.source}`;
        el.appendChild(pl);
      }
      const stats = document.createElement("div"); stats.className = "panel-stats"; el.appendChild(stats);
      const loc = document.createElement("div"); loc.className = "panel-loc"; el.appendChild(loc);
      const svg = d3.select(el).append("svg").attr("class", "graph-svg");
      const msg = document.createElement("div"); msg.className = "msg"; msg.textContent = "loading…"; el.appendChild(msg);
      p.svg = svg;
      p.zoom = d3.zoom().scaleExtent([0.2, 30]).on("zoom", (ev) => { p.transform = ev.transform; applyTransform(p); });
      svg.call(p.zoom).on("dblclick.zoom", null);
      svg.on("click", (ev) => { if (ev.target === svg.node() && !ev.shiftKey) { clearSelection(); } });
      A.multiselect.attachLasso(p);  // shift-drag on the background: lasso (multiselect.js)
      if (p.emb) { const m = p.emb.method; p.emb = null; A.embedding.open(p, m); }
    });
    S.writeHash();
    A.controls.updateSizeOptions();
    return Promise.all(state.panels.map((p) => A.data.loadGraph(p.id).then(() => true, (err) => {
      const m = p.el && p.el.querySelector(".msg"); if (m) m.textContent = "could not load: " + err.message;
      return false;
    }))).then(() => renderAll());
  }

  function renderAll() {
    const t = performance.now();
    const sc = sharedScales();
    A.legend.render(sc);  // first: its height sets the panels' (a graph fitted before it would be stale)
    state.panels.forEach((p) => { if (GRAPHS.has(p.id)) renderPanel(p, sc); });
    A.details.renderLocatePanels();
    A.timings.lastRender = performance.now() - t;
    if (!A.timings.firstRender && state.panels.some((p) => GRAPHS.has(p.id))) {
      A.timings.firstRender = performance.now() - S.T0;
      A.timings.firstRenderAt = performance.now();
    }
    document.body.dataset.rendered = String((+document.body.dataset.rendered || 0) + 1);
    S.writeHash();
  }

  function panelSize(p) {
    const r = p.svg.node().getBoundingClientRect();
    return { W: Math.max(120, r.width), H: Math.max(120, r.height) };
  }

  // a node's body: one circle for a single class, else a pie of its classes; or one circle in the attribute's colour
  function drawNodeBody(G, x, r, sc) {
    if (state.color === "class") {
      const slices = A.pie.pieSlices(A.pie.classParts(x.hist));
      if (slices.length <= 1) G.append("circle").attr("class", "body").attr("r", r).attr("fill", S.ccolor(slices.length ? slices[0].cls : 0));
      else {
        const arc = d3.arc().innerRadius(0).outerRadius(r);
        G.selectAll("path").data(slices).join("path").attr("class", "body").attr("d", arc).attr("fill", (s) => S.ccolor(s.cls));
      }
    } else {
      const v = x[state.color];
      G.append("circle").attr("class", "body").attr("r", r).attr("fill", v == null || !isFinite(v) ? "#ccc" : sc.color(v));
    }
    G.append("circle").attr("class", "ring").attr("r", r + 2.8);
  }

  function renderPanel(p, sc) {
    const g = GRAPHS.get(p.id);
    const e = S.entry.get(p.id) || {};
    const view = nodeView(g, state.points);
    const d = derive(g);
    const { W, H } = panelSize(p);
    const L = layoutFor(g, state.layout, p.id);
    const lensMode = state.layout === "lens";
    const { rMax, rMin } = A.layout.nodeRadii(view.filter(visibleNode).length, W, H);
    const xs = L.x, ys = L.y;
    const { fx, fy } = A.layout.fitToPanel(L.base || L, lensMode, W, H, rMax);  // pinned nodes do not rescale the picture
    p.fx = fx;
    const sizeOf = sizeAccessor();
    const rs = d3.scaleSqrt().domain([0, sc.maxCount]).range([0, rMax]);
    const rad = (x) => Math.max(rMin, rs(sizeOf(x)));

    const hl = state.highlight && state.highlight.gid === p.id ? state.highlight : null;
    const sel = state.selected && state.selected.gid === p.id ? state.selected.nid : null;
    const loc = state.locate != null ? A.graphmodel.locateIn(g, state.locate, A.details.nearestNode(p.id, state.locate)) : null;
    const search = state.search;

    const vis = view.map(visibleNode);
    const svg = p.svg;
    // a redraw replaces the nodes: keep the keyboard focus on the node that had it (else it falls to <body>)
    const active = typeof document !== "undefined" ? document.activeElement : null;
    const focusedId = active && active.classList && active.classList.contains("node") && svg.node().contains(active)
      ? active.getAttribute("data-id") : null;
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
    const ng = root.append("g").attr("class", "nodes").selectAll("g").data(idx).join("g")
      .attr("class", (i) => {
        const nid = String(g.nodes[i].id);
        let c = "node";
        if (dimNode(i)) c += " dim";
        if (loc && loc.nodeSet.has(i)) c += " located";
        if (sel === nid) c += " selected";
        if (A.multiselect.has(p.id, nid)) c += " multi";
        if (hl && hl.nodes.has(i)) c += " hl";
        if (p.emb && p.emb.brushNodes && p.emb.brushNodes.has(i)) c += " brushed";
        return c;
      })
      .attr("data-id", (i) => g.nodes[i].id)
      .attr("transform", (i) => `translate(${fx(xs[i])},${fy(ys[i])})`);
    ng.each(function (i) { drawNodeBody(d3.select(this), view[i], rad(view[i]), sc); });
    ng.attr("tabindex", 0).attr("role", "button")
      .attr("aria-label", (i) => `node ${g.nodes[i].id}, ${view[i].count} members` + (pinned(p.id, g.nodes[i].id) ? ", pinned" : ""))
      .classed("pinned", (i) => pinned(p.id, g.nodes[i].id))
      .on("keydown", (ev, i) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); onNodeClick(p, g, i, ev.shiftKey, ev.altKey); } });
    if (!lensMode) ng.call(nodeDrag(p, g, fx, fy, xs, ys));
    ng.on("mouseenter", (ev, i) => A.legend.showTip(ev, g, e, i, view[i]))
      .on("mousemove", A.legend.moveTip)
      .on("mouseleave", A.legend.leaveTip)
      .on("click", (ev, i) => { ev.stopPropagation(); onNodeClick(p, g, i, ev.shiftKey, ev.altKey); });
    if (A.topoact) A.topoact.decorate(p, g, ng);  // where the selected node's members lie (topoact.js)
    if (focusedId != null) {
      const again = ng.filter((i) => String(g.nodes[i].id) === focusedId).node();
      if (again) again.focus({ preventScroll: true });
    }
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
    if (p.emb) A.embedding.update(p);
  }

  function applyTransform(p) {
    if (!p.root) return;
    p.root.attr("transform", p.transform);
    if (p.axis && p.fx) {
      const zx = p.transform.rescaleX(p.fx);
      p.axis.call(d3.axisBottom(zx).ticks(6));
    }
  }

  // ------------------------------------------------------------------ dragging and pinning
  const pinned = (gid, nid) => !!(state.pins && state.pins[gid] && state.pins[gid][String(nid)]);
  /** Drag a node (force layouts): it follows the pointer and stays pinned where it is dropped
   * (state.pins, in layout units, part of the URL); its edges follow. */
  function nodeDrag(p, g, fx, fy, xs, ys) {
    // fitToPanel's force mapping is linear: layout units = (pixels - offset) / scale
    const sx = fx(1) - fx(0) || 1, sy = fy(1) - fy(0) || 1;
    const toX = (px) => (px - fx(0)) / sx, toY = (py) => (py - fy(0)) / sy;
    return d3.drag().clickDistance(3)
      .on("start", (ev) => { if (ev.sourceEvent) ev.sourceEvent.stopPropagation(); A.legend.hideTip(); })
      .on("drag", function (ev, i) {
        const [px, py] = p.transform.invert(d3.pointer(ev.sourceEvent, p.svg.node()));
        d3.select(this).attr("transform", `translate(${px},${py})`).classed("pinned", true);
        p.root.selectAll("line.edge").filter((ed) => ed.a === i).attr("x1", px).attr("y1", py);
        p.root.selectAll("line.edge").filter((ed) => ed.b === i).attr("x2", px).attr("y2", py);
        this.__drop = [toX(px), toY(py)];
      })
      .on("end", function (ev, i) {
        if (!this.__drop) return;
        const nid = String(g.nodes[i].id);
        state.pins = Object.assign({}, state.pins);
        state.pins[p.id] = Object.assign({}, state.pins[p.id], { [nid]: this.__drop });
        this.__drop = null;
        renderAll();
      });
  }
  /** Release the pinned nodes of panel p's graph. */
  function unpinAll(p) {
    if (!state.pins || !state.pins[p.id]) return;
    state.pins = Object.assign({}, state.pins); delete state.pins[p.id];
    renderAll();
  }

  // ------------------------------------------------------------------ selection, component, path
  function onNodeClick(p, g, i, shift, alt) {
    A.legend.hideTip(g.nodes[i]);  // the node is redrawn under the pointer: no tooltip of it until it leaves
    const nid = String(g.nodes[i].id);
    if (shift && !state.pathPending) { A.multiselect.toggle(p.id, nid); return; }  // multi-selection (multiselect.js)
    if ((alt || state.pathPending) && state.selected && state.selected.gid === p.id && state.selected.nid !== nid) {
      state.pathPending = false;
      const a = derive(g).nodeById.get(state.selected.nid);
      const path = A.graphmodel.shortestPath(usableEdges(g), a, i);
      if (!path) { S.toast("no path between these nodes (with the edges shown)", true); return; }
      state.highlight = { gid: p.id, nodes: new Set(path.nodes), edges: new Set(path.edges), label: `path of ${path.nodes.length - 1} edges` };
      renderAll();
      S.toast(`shortest path: ${path.nodes.map((k) => g.nodes[k].id).join(" → ")}`);
      return;
    }
    state.selected = { gid: p.id, nid };
    state.highlight = null; state.flow = null;
    renderAll();
    A.details.show(p.id, nid);
  }
  function clearSelection() {
    if (!state.selected && !state.highlight && !A.multiselect.any()) return;
    A.multiselect.clear(false);
    state.selected = null; state.highlight = null; state.pathPending = false; state.flow = null;
    renderAll();
    $("#details").innerHTML = `<div class="empty">Click a node to see its members.<br><span class="hint">Shift-click or shift-drag (lasso) to select several nodes; Alt-click a second node for the shortest path.</span></div>`;
  }
  /** node index -> [[neighbour, edge]] over the nodes and edges the filters show */
  function usableEdges(g) {
    const view = nodeView(g, state.points), vis = view.map(visibleNode), d = derive(g);
    return (i) => d.adj[i].filter(([j, k]) => vis[j] && (g.edges[k].jaccard || 0) >= state.jaccard);
  }
  function selectComponent(gid, i) {
    const c = A.graphmodel.component(usableEdges(GRAPHS.get(gid)), i);
    state.highlight = { gid, nodes: c.nodes, edges: c.edges, label: "component" };
    renderAll();
    S.toast(`component of ${c.nodes.size} nodes`);
  }

  A.graphs = { addPanel, setPanels, buildPanels, renderAll, renderPanel, sharedScales, nodeView, selectComponent, clearSelection, unpinAll };
})(window.advtopo);
