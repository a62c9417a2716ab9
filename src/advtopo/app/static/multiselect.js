/* Selecting several nodes of one graph panel: shift-click toggles a node, shift-drag on the
 * background draws a lasso (adds the nodes inside it), and the embedding's brush selects the
 * brushed rows. The details panel then shows the selection's combined members (a filter:
 * all / fooled / not fooled / adversarial / clean), its fooling flows and a CSV of its rows
 * (with the per-sample columns of samples.parquet when the server gives them). */
(function (A) {
  "use strict";
  const S = A.store, state = S.state, GRAPHS = S.graphs, $ = S.$;
  const { esc } = A.format, SEL = A.selection;

  // state.multi: {gid, nids: Set of node ids, rows: Set of point rows (the embedding's brush) or null, filter};
  // a view from the URL (urlstate.js) brings {gid, nids: [...]}, made whole here on first use
  state.multi = null;
  function cur() {
    const m = state.multi;
    if (m && !(m.nids instanceof Set)) state.multi = { gid: m.gid, nids: new Set((m.nids || []).map(String)), rows: null, filter: "all" };
    return state.multi;
  }

  const has = (gid, nid) => { const m = cur(); return !!(m && m.gid === gid && m.nids.has(String(nid))); };
  const any = () => { const m = cur(); return !!(m && (m.nids.size || (m.rows && m.rows.size))); };

  function ensure(gid) {
    cur();
    if (!state.multi || state.multi.gid !== gid) state.multi = { gid, nids: new Set(), rows: null, filter: "all" };
    return state.multi;
  }

  /** Add or remove node `nid` of graph `gid` (another graph's selection is dropped). */
  function toggle(gid, nid) {
    const m = ensure(gid);
    m.rows = null;
    nid = String(nid);
    // the single selected node joins the multi-selection on the first shift-click
    if (!m.nids.size && state.selected && state.selected.gid === gid && state.selected.nid !== nid) m.nids.add(state.selected.nid);
    m.nids.has(nid) ? m.nids.delete(nid) : m.nids.add(nid);
    changed();
  }

  function addNodes(gid, nids) {
    const m = ensure(gid);
    m.rows = null;
    nids.forEach((n) => m.nids.add(String(n)));
    changed();
  }

  /** The embedding's brush (embedding.js): point rows of panel p's graph, or null when cleared. */
  function setBrush(p, rows) {
    if (!rows || !rows.size) { if (state.multi && state.multi.rows) clear(true); return; }
    const m = ensure(p.id), g = GRAPHS.get(p.id), d = A.graphmodel.derive(g);
    m.rows = new Set(rows);
    m.nids = new Set();
    rows.forEach((r) => (d.nodesByRow.get(r) || []).forEach((i) => m.nids.add(String(g.nodes[i].id))));
    state.selected = null;
    show();
  }

  function clear(render = true) {
    if (!state.multi) return;
    state.multi = null;
    if (render) { A.graphs.renderAll(); $("#details").innerHTML = `<div class="empty">Click a node to see its members.</div>`; }
  }

  function changed() {
    state.selected = null; state.highlight = null;
    A.graphs.renderAll();
    if (any()) show();
    else clear(true);
  }

  /** The selection's row facts (points mode and filter applied). */
  function rows(filter) {
    const m = state.multi, g = GRAPHS.get(m.gid);
    if (!m.rows) {
      const d = A.graphmodel.derive(g);
      return SEL.selectionRows(g, [...m.nids].map((n) => d.nodeById.get(n)).filter((i) => i != null), state.points, filter);
    }
    return SEL.rowFacts(g, [...m.rows], state.points, filter);
  }

  function show() {
    const m = cur();
    if (!m || !GRAPHS.has(m.gid)) return;
    const e = S.entry.get(m.gid) || {};
    const all = rows("all"), shown = rows(m.filter);
    const nSamples = new Set(shown.map((r) => r.sample_id)).size;
    const nAdv = all.filter((r) => r.adv).length;
    let html = `<h2>Selection</h2><div class="sub">${esc(S.graphLabel(e))}</div>`;
    html += `<div class="stat-grid">
      <div class="stat"><div class="k">nodes</div><div class="v" id="ms-nodes">${m.nids.size}</div></div>
      <div class="stat"><div class="k">members</div><div class="v" id="ms-rows">${all.length}</div></div>
      <div class="stat"><div class="k">clean</div><div class="v">${all.length - nAdv}</div></div>
      <div class="stat"><div class="k">adversarial</div><div class="v adv">${nAdv}</div></div>
      <div class="stat"><div class="k">fooled</div><div class="v">${all.filter(SEL.FILTERS.fooled).length}</div></div>
      <div class="stat"><div class="k">${m.rows ? "brushed rows" : "points"}</div><div class="v">${m.rows ? m.rows.size : esc(state.points)}</div></div></div>`;
    html += `<div class="actions"><label>members <select id="ms-filter">${Object.keys(SEL.FILTERS).map((f) => `<option value="${f}"${f === m.filter ? " selected" : ""}>${SEL.FILTER_LABELS[f]}</option>`).join("")}</select></label>
      <button class="btn small" id="ms-csv">Selection CSV (<span id="ms-n">${shown.length}</span> rows, ${nSamples} samples)</button>
      <button class="btn small ghost" id="ms-clear">Clear selection</button></div>`;
    const flows = SEL.foolingFlows(shown);
    if (flows.length) {
      html += `<h4>Fooling flows (true → predicted)</h4><table class="t flows"><tr><th>true</th><th>predicted</th><th class="num">adv</th><th class="num">clean</th></tr>`;
      flows.slice(0, 12).forEach((f) => { html += `<tr><td>${esc(S.cname(f.label))}</td><td style="color:var(--adv)">${esc(S.cname(f.prediction))}</td><td class="num">${f.adv}</td><td class="num">${f.clean}</td></tr>`; });
      html += `</table>`;
    }
    html += `<h4>Nodes</h4><div class="hint ms-nodes">${[...m.nids].map(esc).join(", ") || "none (noise rows only)"}</div>`;
    html += `<div class="hint">shift-click a node to add or remove it; shift-drag on the background to lasso more</div>`;
    const box = $("#details");
    box.innerHTML = html;
    $("#ms-filter").addEventListener("change", (ev) => { m.filter = ev.target.value; show(); });
    $("#ms-clear").addEventListener("click", () => clear(true));
    $("#ms-csv").addEventListener("click", () => download());
  }

  /** The CSV of the selection's rows (filter applied), with the graph's per-sample columns. */
  function csvText() {
    const m = state.multi;
    const cols = A.samplecols.columns(m.gid) || {};
    return SEL.selectionCsv(m.gid, rows(m.filter), cols);
  }
  async function download() {
    const m = state.multi;
    await A.samplecols.load(m.gid);
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([csvText()], { type: "text/csv" }));
    a.download = `${m.gid}_selection_${m.filter}.csv`;
    document.body.appendChild(a); a.click(); a.remove();
  }

  // ------------------------------------------------------------------ lasso
  /** Shift-drag on panel p's background draws a lasso; the nodes inside join the selection.
   * The zoom ignores shift-drags (it still pans with a plain drag). */
  function attachLasso(p) {
    p.zoom.filter((ev) => !ev.shiftKey && (!ev.ctrlKey || ev.type === "wheel") && !ev.button);
    const svgEl = p.svg.node();
    let poly = null, path = null;
    p.svg.on("pointerdown.lasso", (ev) => {
      if (!ev.shiftKey || ev.button || ev.target !== svgEl) return;
      ev.preventDefault();
      poly = [d3.pointer(ev, svgEl)];
      path = p.svg.append("path").attr("class", "lasso");
      svgEl.setPointerCapture && svgEl.setPointerCapture(ev.pointerId);
    }).on("pointermove.lasso", (ev) => {
      if (!poly) return;
      poly.push(d3.pointer(ev, svgEl));
      path.attr("d", "M" + poly.map((q) => q.join(",")).join("L") + "Z");
    }).on("pointerup.lasso", () => {
      if (!poly) return;
      const pg = poly; poly = null; if (path) path.remove(); path = null;
      const hit = lassoNodes(p, pg);
      if (hit.length) addNodes(p.id, hit);
    });
  }

  /** Ids of panel p's drawn nodes whose centre (on screen, zoom applied) lies in polygon `poly`. */
  function lassoNodes(p, poly) {
    const out = [];
    p.svg.selectAll("g.node").each(function () {
      const m = this.transform.baseVal.consolidate();
      if (!m) return;
      const pt = p.transform.apply([m.matrix.e, m.matrix.f]);
      if (SEL.pointInPolygon(pt, poly)) out.push(this.dataset.id);
    });
    return out;
  }

  A.multiselect = { has, any, toggle, addNodes, setBrush, clear, show, csvText, attachLasso, lassoNodes };
})(window.advtopo);
