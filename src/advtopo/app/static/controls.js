/* The sidebar controls (compare presets, points mode, layout, colour, size, filters,
 * locator), the tabs, the export button, and applying view settings to all of them. */
(function (A) {
  "use strict";
  const S = A.store, state = S.state, $ = S.$;
  const { fmt, esc } = A.format;
  const renderAll = () => A.graphs.renderAll();

  // a segmented button group bound to state[key]
  function seg(id, key, after) {
    const el = $(id);
    el.querySelectorAll("button").forEach((b) => b.addEventListener("click", () => {
      el.querySelectorAll("button").forEach((x) => x.classList.toggle("on", x === b));
      state[key] = b.dataset.v;
      if (after) after();
      renderAll();
      if (state.selected) A.details.show(state.selected.gid, state.selected.nid);
    }));
  }
  function setSearch(c) {
    state.search = c;
    $("#class-search").value = c == null ? "" : String(c);
    renderAll();
  }
  function updateSizeOptions() {
    const s = $("#size-by");
    if (s.options.length === S.classes.length + 1) return;
    s.innerHTML = `<option value="members">members (all classes)</option>` + S.classes.map((c, i) => `<option value="class:${i}">members of class ${esc(c)}</option>`).join("");
  }
  function showTab(name) {
    A.legend.hideTip();
    document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.dataset.tab === name));
    $("#view-graphs").classList.toggle("hidden", name !== "graphs");
    document.querySelectorAll(".tab").forEach((t) => t.setAttribute("aria-selected", String(t.dataset.tab === name)));
    $("#view-summary").classList.toggle("hidden", name !== "summary");
    $("#view-datapaths").classList.toggle("hidden", name !== "datapaths");
    document.body.classList.toggle("tab-datapaths", name === "datapaths");
    if (name === "summary") A.summary.render();
    if (name === "datapaths") A.datapaths.render();
  }

  function wire() {
    const index = () => S.index;
    seg("#points-mode", "points");
    seg("#layout-mode", "layout");
    $("#color-by").addEventListener("change", (ev) => { state.color = ev.target.value; $("#cmap-field").style.opacity = state.color === "class" ? 0.45 : 1; renderAll(); });
    $("#cmap-field").style.opacity = 0.45;
    $("#cmap").addEventListener("change", (ev) => { state.cmap = ev.target.value; renderAll(); });
    $("#size-by").addEventListener("change", (ev) => { state.size = ev.target.value; renderAll(); });
    $("#min-size").addEventListener("input", (ev) => { state.minSize = +ev.target.value; $("#min-size-v").textContent = ev.target.value; renderAll(); });
    $("#jaccard").addEventListener("input", (ev) => { state.jaccard = +ev.target.value; $("#jaccard-v").textContent = fmt(state.jaccard); renderAll(); });
    $("#class-search").addEventListener("change", (ev) => setSearch(ev.target.value === "" ? null : +ev.target.value));
    $("#locate-btn").addEventListener("click", () => { const v = $("#locate-input").value; if (v !== "") A.details.locate(+v); });
    $("#locate-input").addEventListener("keydown", (ev) => { if (ev.key === "Enter") $("#locate-btn").click(); });
    $("#locate-clear").addEventListener("click", () => { state.locate = null; $("#locate-input").value = ""; document.querySelectorAll(".vuln.on").forEach((e) => e.classList.remove("on")); renderAll(); });
    document.querySelectorAll(".tab").forEach((t) => t.addEventListener("click", () => showTab(t.dataset.tab)));
    $("#add-panel").addEventListener("click", () => {
      const used = new Set(state.panels.map((p) => p.id));
      const next = index().graphs.find((g) => !used.has(g.id));
      if (next) A.graphs.addPanel(next.id);
    });
    const base = () => S.entry.get(state.panels.length ? state.panels[0].id : index().graphs[0].id) || index().graphs[0];
    const sameEps = (g, b) => Math.abs(g.eps - b.eps) < 1e-12 && !g.recomputed;
    $("#preset-eps").addEventListener("click", () => { const b = base(); A.graphs.setPanels(S.entriesFor({ model: b.model, layer: b.layer, attack: b.attack }).filter((g) => !g.recomputed).sort((a, c) => a.eps - c.eps).map((g) => g.id)); });
    $("#preset-models").addEventListener("click", () => { const b = base(); A.graphs.setPanels(index().graphs.filter((g) => g.layer === b.layer && g.attack === b.attack && sameEps(g, b)).map((g) => g.id)); });
    $("#preset-layers").addEventListener("click", () => { const b = base(); A.graphs.setPanels(index().graphs.filter((g) => g.model === b.model && g.attack === b.attack && sameEps(g, b)).map((g) => g.id)); });
    const ex = $("#export-btn");
    if (A.data.source.mode === "static") ex.remove();
    else ex.addEventListener("click", () => { location.href = A.urlstate.exportUrl(state.panels.map((p) => p.id), state); });
    let rt;
    window.addEventListener("resize", () => { clearTimeout(rt); rt = setTimeout(renderAll, 120); });
  }

  /** Take the valid view settings of `s` (the export's embedded state) and show them in the controls. */
  function applyState(s) {
    if (!s) return;
    Object.assign(state, A.urlstate.parseViewState(s));
    const on = (id, v) => document.querySelectorAll(`${id} button`).forEach((b) => b.classList.toggle("on", b.dataset.v === v));
    on("#points-mode", state.points); on("#layout-mode", state.layout);
    $("#color-by").value = state.color; $("#cmap").value = state.cmap; $("#size-by").value = state.size;
    $("#min-size").value = state.minSize; $("#min-size-v").textContent = state.minSize;
    $("#jaccard").value = state.jaccard; $("#jaccard-v").textContent = fmt(state.jaccard);
    $("#class-search").value = state.search == null ? "" : String(state.search);
    $("#cmap-field").style.opacity = state.color === "class" ? 0.45 : 1;
    if (state.locate != null) $("#locate-input").value = state.locate;
  }

  A.controls = { wire, applyState, setSearch, updateSizeOptions, showTab };
})(window.advtopo);
