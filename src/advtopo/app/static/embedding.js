/* The linked embedding under a graph panel (server mode): a scatter of the graph's rows
 * (PCA / t-SNE of the stored activations). Clicking a node highlights its members here;
 * brushing here outlines the nodes that hold any brushed row; the located sample's rows
 * are ringed. */
(function (A) {
  "use strict";
  const S = A.store, state = S.state, GRAPHS = S.graphs;
  const { derive } = A.graphmodel;

  function toggleEmbedding(p) {
    if (p.emb) { if (p.emb.abort) p.emb.abort.abort(); p.emb = null; const b = p.el.querySelector(".embed"); if (b) b.remove(); p.el.querySelector(".emb-toggle").classList.remove("on"); if (GRAPHS.has(p.id)) A.graphs.renderPanel(p, A.graphs.sharedScales()); return; }
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
      // another method, or the same one again after it was cancelled or failed
      if (p.emb && (p.emb.method !== b.dataset.m || ["cancelled", "unavailable"].includes(box.dataset.state))) { p.emb.method = b.dataset.m; loadEmbedding(p); }
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
    // t-SNE of a few thousand rows takes tens of seconds: show the time spent and let it be cancelled
    const name = method === "tsne" ? "t-SNE" : "PCA";
    const rows = (GRAPHS.get(p.id) && GRAPHS.get(p.id).points && (GRAPHS.get(p.id).points.sample_id || []).length) || 0;
    body.innerHTML = `<div class="emb-msg hint emb-progress"><span class="spinner"></span> computing ${name}${rows ? ` of ${rows} points` : ""}… <span class="emb-elapsed">0 s</span>
      <button class="btn small emb-cancel" title="Stop waiting for this embedding">Cancel</button></div>`;
    box.querySelector(".emb-count").textContent = "";
    if (em.abort) em.abort.abort();
    const ctl = new AbortController(); em.abort = ctl;
    const t0 = performance.now();
    const tick = setInterval(() => { const el = body.querySelector(".emb-elapsed"); if (el) el.textContent = `${Math.round((performance.now() - t0) / 1000)} s`; }, 500);
    body.querySelector(".emb-cancel").addEventListener("click", () => ctl.abort());
    let res;
    try {
      res = await A.data.source.embedding(p.id, method, ctl.signal);
    } catch (err) { res = ctl.signal.aborted ? { cancelled: true } : { available: false, reason: err.message }; }
    finally { clearInterval(tick); if (em.abort === ctl) em.abort = null; }
    if (p.emb !== em || em.method !== method || !p.el.isConnected) return;  // closed or switched meanwhile
    if (res && res.cancelled) {
      body.innerHTML = `<div class="emb-msg hint">${name} cancelled (the server may still finish it and keep it for next time)</div>`;
      box.dataset.state = "cancelled";
      return;
    }
    if (!res || !res.available) {
      body.innerHTML = `<div class="emb-msg hint"></div>`;
      body.querySelector(".emb-msg").textContent = "embedding unavailable: " + ((res && res.reason) || "unknown reason");
      box.dataset.state = "unavailable";
      return;
    }
    em.data = res;
    drawEmbedding(p);
    if (GRAPHS.has(p.id)) A.graphs.renderPanel(p, A.graphs.sharedScales());
  }
  /** The scatter's height: 210 px, less in a short panel (a 2 x 2 grid) so the graph above keeps
   * most of the panel (at least about half of it). */
  function embedHeight(p) {
    const ph = p.el.getBoundingClientRect().height || 600;
    return Math.round(Math.max(90, Math.min(210, ph * 0.28)));
  }
  function drawEmbedding(p) {
    const em = p.emb, box = p.el.querySelector(".embed"), g = GRAPHS.get(p.id);
    if (!em || !em.data || !box || !g) return;
    const body = box.querySelector(".emb-body");
    body.innerHTML = "";
    const W = Math.max(160, body.getBoundingClientRect().width || 300), H = embedHeight(p), pad = 8;
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
      .attr("fill", (r) => S.ccolor(+lab[r] || 0));
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
      if (ev.sourceEvent && A.multiselect) A.multiselect.setBrush(p, em.brushRows);  // the brushed rows as a selection (CSV)
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

  /** Stop waiting for a running embedding (Esc). True when one was running. */
  function cancelRunning() {
    let any = false;
    state.panels.forEach((p) => { if (p.emb && p.emb.abort) { p.emb.abort.abort(); any = true; } });
    return any;
  }

  A.embedding = { toggle: toggleEmbedding, open: openEmbedding, update: updateEmbedding, cancelRunning, embedHeight };
})(window.advtopo);
