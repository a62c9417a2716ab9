/* Colour and size nodes by a per-sample column of samples.parquet (the data source's columns():
 * the server's /api/columns, or the static export's per-sample tables):
 * each graph's per-row values are loaded once, aggregated per node (mean / median / max over
 * the members of the Points setting) and put on the node views as x["col:<name>"], which the
 * colour and size encodings of graphs.js read like any node attribute. Adds the aggregate
 * and the custom colour range controls under "Colour nodes by". */
(function (A) {
  "use strict";
  const S = A.store, state = S.state, GRAPHS = S.graphs, $ = S.$;
  const DS = A.data.source;
  const SEL = A.selection;
  state.agg = state.agg || "mean";
  state.colorRange = state.colorRange || null;  // [lo, hi] or null: the data's range

  const LOADED = new Map();   // graph id -> {name: values per point row}
  const PENDING = new Map();  // graph id -> promise
  let NAMES = [];             // the columns the run offers (from the first graph loaded)
  const LABELS = { first_fooled_eps: "first-fooled eps", confidence: "confidence", margin: "margin", loss: "loss", correct: "correct (0/1)" };

  const isCol = (key) => typeof key === "string" && key.startsWith("col:");
  const colName = (key) => key.slice(4);
  function label(key) {
    const n = colName(key);
    return `${state.agg} ${LABELS[n] || n.replace(/_/g, " ")}`;
  }
  function active() { return [state.color, state.size].filter(isCol).map(colName); }

  /** The per-row values of graph `gid` ({name: [...]}, or null until loaded). */
  function columns(gid) { return LOADED.get(gid) || null; }

  function load(gid) {
    if (!DS.columns) return Promise.resolve(null);
    if (LOADED.has(gid)) return Promise.resolve(LOADED.get(gid));
    if (!PENDING.has(gid)) {
      PENDING.set(gid, DS.columns(gid).then((doc) => {
        LOADED.set(gid, doc.columns || {});
        PENDING.delete(gid);
        if (!NAMES.length && Object.keys(doc.columns || {}).length) { NAMES = Object.keys(doc.columns); addOptions(); }
        return LOADED.get(gid);
      }, () => { PENDING.delete(gid); return null; }));
    }
    return PENDING.get(gid);
  }

  /** Put the active columns' node aggregates on `view` (nodeView's array for `mode`); returns it. */
  function annotate(g, view, mode) {
    const want = active();
    if (!g._id) return view;
    if (!NAMES.length && !LOADED.has(g._id)) load(g._id);  // fills the menus
    if (!want.length) return view;
    const cols = LOADED.get(g._id);
    if (!cols) { load(g._id).then((c) => { if (c) A.graphs.renderAll(); }); return view; }
    const adv = (g.points || {}).is_adversarial || [];
    for (const name of want) {
      const vals = cols[name];
      const agg = vals ? SEL.nodeAggregates(g.nodes, adv, vals, mode, state.agg) : g.nodes.map(() => null);
      view.forEach((x, i) => { x["col:" + name] = agg[i]; });
    }
    return view;
  }

  /** The colour domain: the custom range when set, else the values' range. */
  function domain(key, values) {
    if (isCol(key) && state.colorRange) return state.colorRange.slice();
    return A.colors.attrDomain(key, values);
  }

  // ------------------------------------------------------------------ controls
  function addOptions() {
    const sel = $("#color-by"), size = $("#size-by");
    if (!sel || sel.querySelector("optgroup.cols")) return;
    const og = document.createElement("optgroup");
    og.className = "cols"; og.label = "per-sample column (samples.parquet)";
    NAMES.forEach((n) => { const o = document.createElement("option"); o.value = "col:" + n; o.textContent = LABELS[n] || n; og.appendChild(o); });
    sel.appendChild(og);
    if (size) {
      const og2 = og.cloneNode(true); og2.className = "cols"; size.appendChild(og2);
    }
    const field = document.createElement("div");
    field.className = "field col-opts"; field.id = "col-opts";
    field.innerHTML = `<label>aggregate <select id="col-agg">${SEL.AGGREGATES.map((a) => `<option${a === state.agg ? " selected" : ""}>${a}</option>`).join("")}</select></label>
      <label title="leave empty for the data's range">range <input id="col-lo" type="number" step="any" placeholder="min" style="width:5em">
      – <input id="col-hi" type="number" step="any" placeholder="max" style="width:5em"></label>`;
    const after = $("#cmap-field");
    after.parentNode.insertBefore(field, after.nextSibling);
    const sync = () => { field.style.display = active().length ? "" : "none"; };
    syncControls();
    sync();
    sel.addEventListener("change", sync);
    if (size) size.addEventListener("change", sync);
    $("#col-agg").addEventListener("change", (ev) => { state.agg = ev.target.value; rerender(); });
    const range = () => {
      const lo = $("#col-lo").value, hi = $("#col-hi").value;
      const r = lo !== "" && hi !== "" && +lo < +hi ? [+lo, +hi] : null;
      if (JSON.stringify(r) === JSON.stringify(state.colorRange)) return;  // a second change event (blur): no redraw under a click
      state.colorRange = r;
      rerender();
    };
    $("#col-lo").addEventListener("change", range);
    $("#col-hi").addEventListener("change", range);
  }
  /** Show the state's column, aggregate and range in the controls (a view from the URL). */
  function syncControls() {
    const sel = $("#color-by"), size = $("#size-by"), agg = $("#col-agg");
    if (sel && isCol(state.color)) sel.value = state.color;
    if (size && isCol(state.size)) size.value = state.size;
    if (agg) agg.value = state.agg;
    if ($("#col-lo")) { $("#col-lo").value = state.colorRange ? state.colorRange[0] : ""; $("#col-hi").value = state.colorRange ? state.colorRange[1] : ""; }
    const f = $("#col-opts"); if (f) f.style.display = active().length ? "" : "none";
  }
  function rerender() {
    A.graphs.renderAll();
    if (state.selected && A.details) A.details.show(state.selected.gid, state.selected.nid);
  }

  /** Load the columns of the graphs shown (the first one also fills the menus). */
  function prefetch() { state.panels.forEach((p) => { if (GRAPHS.has(p.id)) load(p.id); }); }

  A.samplecols = { isCol, label, columns, load, annotate, domain, prefetch, syncControls };
})(window.advtopo);
