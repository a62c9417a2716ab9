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
    if (s.querySelectorAll(":scope > option").length === S.classes.length + 1) return;  // (the column optgroup: samplecols.js)
    s.innerHTML = `<option value="members">members (all classes)</option>` + S.classes.map((c, i) => `<option value="class:${i}">members of class ${esc(c)}</option>`).join("");
  }
  function showTab(name) {
    if (!["graphs", "summary", "datapaths"].includes(name)) name = "graphs";
    state.tab = name;
    A.legend.hideTip();
    document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.dataset.tab === name));
    $("#view-graphs").classList.toggle("hidden", name !== "graphs");
    document.querySelectorAll(".tab").forEach((t) => t.setAttribute("aria-selected", String(t.dataset.tab === name)));
    $("#view-summary").classList.toggle("hidden", name !== "summary");
    $("#view-datapaths").classList.toggle("hidden", name !== "datapaths");
    document.body.classList.toggle("tab-datapaths", name === "datapaths");
    if (name === "summary") A.summary.render();
    if (name === "datapaths") A.datapaths.render();
    S.writeHash();
  }

  /** Up to `max` of `items` (sorted), spread evenly and always keeping the first and the last:
   * a sweep preset on a 7-eps run shows eps 0 and the strongest attack. */
  function spread(items, max) {
    if (items.length <= max) return items;
    const out = [];
    for (let k = 0; k < max; k++) out.push(items[Math.round((k * (items.length - 1)) / (max - 1))]);
    return out;
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
    $("#preset-eps").addEventListener("click", () => { const b = base(); A.graphs.setPanels(spread(S.entriesFor({ model: b.model, layer: b.layer, attack: b.attack }).filter((g) => !g.recomputed).sort((a, c) => a.eps - c.eps).map((g) => g.id), S.MAX_PANELS)); });
    $("#align-sweep").addEventListener("change", (ev) => { state.align = ev.target.checked; renderAll(); });
    $("#copy-link").addEventListener("click", copyLink);
    document.addEventListener("keydown", onEscape);
    window.addEventListener("popstate", followUrl);
    window.addEventListener("hashchange", followUrl);
    labelIconButtons(document.body);
    keepVulnerableInPlace();
    new MutationObserver((ms) => ms.forEach((m) => m.addedNodes.forEach((n) => { if (n.nodeType === 1) labelIconButtons(n); })))
      .observe(document.body, { childList: true, subtree: true });
    $("#preset-models").addEventListener("click", () => { const b = base(); A.graphs.setPanels(index().graphs.filter((g) => g.layer === b.layer && g.attack === b.attack && sameEps(g, b)).map((g) => g.id)); });
    $("#preset-layers").addEventListener("click", () => { const b = base(); A.graphs.setPanels(index().graphs.filter((g) => g.model === b.model && g.attack === b.attack && sameEps(g, b)).map((g) => g.id)); });
    const ex = $("#export-btn");
    if (A.data.source.mode === "static") ex.remove();
    else ex.addEventListener("click", () => { location.href = A.urlstate.exportUrl(state.panels.map((p) => p.id), state); });
    let rt;
    window.addEventListener("resize", () => { clearTimeout(rt); rt = setTimeout(renderAll, 120); });
    // the panels' own size can change without the window's (the side panels' content, a scrollbar):
    // re-fit then too, so a drawn graph never keeps a stale size
    let lastSize = "";
    new ResizeObserver((es) => {
      const r = es[0].contentRect, key = `${Math.round(r.width)}x${Math.round(r.height)}`;
      if (key === lastSize) return;
      const first = !lastSize; lastSize = key;
      if (!first) { clearTimeout(rt); rt = setTimeout(renderAll, 120); }
    }).observe($("#panels"));
  }

  /** The page's URL with the whole view (the hash is kept up to date by store.writeHash). */
  async function copyLink() {
    S.writeHash();
    const url = location.href;
    try { await navigator.clipboard.writeText(url); S.toast("link to this view copied"); }
    catch (e) { window.prompt("Copy this link to the view:", url); }
  }

  /** Esc closes, one at a time: the tooltip, a rebuild box or the embedding's t-SNE run, then
   * the node selection. (The activation-graph dialog closes itself.) */
  function onEscape(ev) {
    if (ev.key !== "Escape" || document.querySelector(".ag-overlay")) return;
    const tip = $("#tooltip");
    if (tip && !tip.classList.contains("hidden")) { A.legend.hideTip(); return; }
    const rc = document.querySelector(".recompute");
    if (rc) { rc.remove(); return; }
    if (A.embedding && A.embedding.cancelRunning()) return;
    if (state.selected || state.highlight) { A.graphs.clearSelection(); return; }
    S.clearToast();
  }

  /** An icon-only button (no letter or digit in its text) gets its title as accessible name. */
  function labelIconButtons(root) {
    const bs = root.matches && root.matches("button") ? [root] : root.querySelectorAll ? root.querySelectorAll("button") : [];
    bs.forEach((b) => {
      if (b.hasAttribute("aria-label") || /[\p{L}\p{N}]/u.test(b.textContent || "")) return;
      b.setAttribute("aria-label", b.title || "button");
    });
  }

  /** The locator card sits above the vulnerable list and grows when a sample is located (its
   * image loads later): the list item just clicked is kept where it was (the list, then the
   * sidebar, scrolled by the growth), so the next click does not land on its neighbour. */
  function keepVulnerableInPlace() {
    let keep = null;
    const list = $("#vuln-list"), side = $("#sidebar");
    const mark = (ev) => { const el = ev.target.closest && ev.target.closest(".vuln"); if (el) keep = { el, top: el.getBoundingClientRect().top, until: performance.now() + 3000 }; };
    list.addEventListener("pointerdown", mark, true);
    list.addEventListener("keydown", mark, true);
    const settle = () => {
      if (!keep || !keep.el.isConnected || performance.now() > keep.until) return;
      let d = keep.el.getBoundingClientRect().top - keep.top;
      for (const sc of [list, side]) {
        if (Math.abs(d) < 1) break;
        const before = sc.scrollTop; sc.scrollTop = before + d; d -= sc.scrollTop - before;
      }
    };
    new ResizeObserver(settle).observe($("#locate-info"));
    list.addEventListener("click", () => requestAnimationFrame(settle));
  }

  /** The URL changed (a pasted link, Back / Forward): show the view it holds. */
  async function followUrl() {
    if (location.hash === S.lastHash || !S.index) return;
    const { graphs, view } = A.urlstate.parseViewHash(location.hash);
    S.lastHash = location.hash;
    const ids = graphs.filter((id) => S.entry.has(id));
    applyState(Object.assign({ selected: null, locate: null, pins: {}, align: false, tab: "graphs", multi: null, colorRange: null }, view));
    if (ids.length && ids.join("\n") !== state.panels.map((p) => p.id).join("\n")) {
      state.panels = ids.slice(0, S.MAX_PANELS).map((id) => ({ id, transform: d3.zoomIdentity }));
      state.highlight = null;
      await A.graphs.buildPanels();
    } else renderAll();
    restoreView();
  }

  /** After the panels are built: the tab and the selected node of the view. */
  function restoreView() {
    showTab(state.tab);
    const sel = state.selected;
    if (sel && S.graphs.has(sel.gid) && state.panels.some((p) => p.id === sel.gid)) {
      A.graphs.renderAll();
      A.details.show(sel.gid, sel.nid);
    } else if (A.multiselect.any()) A.multiselect.show();  // the URL's multi-selection (multiselect.js)
    else if (!sel) $("#details").innerHTML = `<div class="empty">Click a node to see its members.<br><span class="hint">Shift-click or shift-drag (lasso) to select several nodes; Alt-click a second node for the shortest path.</span></div>`;
  }

  /** Take the valid view settings of `s` (the export's embedded state, the URL's view) and show them in the controls. */
  function applyState(s) {
    if (!s) return;
    Object.assign(state, A.urlstate.parseViewState(s));
    $("#align-sweep").checked = !!state.align;
    const on = (id, v) => document.querySelectorAll(`${id} button`).forEach((b) => b.classList.toggle("on", b.dataset.v === v));
    on("#points-mode", state.points); on("#layout-mode", state.layout);
    $("#color-by").value = state.color; $("#cmap").value = state.cmap; $("#size-by").value = state.size;
    $("#min-size").value = state.minSize; $("#min-size-v").textContent = state.minSize;
    $("#jaccard").value = state.jaccard; $("#jaccard-v").textContent = fmt(state.jaccard);
    $("#class-search").value = state.search == null ? "" : String(state.search);
    $("#cmap-field").style.opacity = state.color === "class" ? 0.45 : 1;
    $("#locate-input").value = state.locate != null ? state.locate : "";
    A.samplecols.syncControls();  // column colour / size, aggregate, range (samplecols.js)
    document.querySelectorAll(".vuln").forEach((el) => el.classList.toggle("on", +el.dataset.sid === state.locate));
  }

  A.controls = { wire, applyState, setSearch, updateSizeOptions, showTab, followUrl, restoreView, spread };
})(window.advtopo);
