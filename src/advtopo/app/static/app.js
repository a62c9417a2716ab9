/* advtopo web app: plain JS + d3 (vendored), no build step. index.html loads the scripts in
 * order (docs/architecture.md lists them); they share window.advtopo. This last one starts
 * the page: load the index, set up classes and controls, open the first graphs. */
(function (A) {
  "use strict";
  const S = A.store, $ = S.$, DS = A.data.source;
  const { esc } = A.format;

  async function main() {
    let index;
    try {
      index = await DS.index();
    } catch (err) {
      $("#run-info").textContent = "could not load the run: " + err.message;
      throw err;
    }
    index.graphs = (index.graphs || []).filter((g) => g && g.id);
    S.setIndex(index);
    const ds = index.dataset || {};
    S.classes = (ds.class_names || []).map(String);
    if (!S.classes.length) S.classes = d3.range(10).map(String);
    S.ccolor = A.colors.classColor(A.colors.classPalette(S.classes.length));
    $("#run-info").textContent = `${index.name || "run"} · ${ds.name || "dataset"}${ds.n_samples ? ` · ${ds.n_samples} samples` : ""} · ${index.graphs.length} graphs${DS.mode === "static" ? " · static export" : ""}`;
    $("#class-search").insertAdjacentHTML("beforeend", S.classes.map((c, i) => `<option value="${i}">${esc(c)}</option>`).join(""));
    A.controls.updateSizeOptions();
    A.controls.wire();
    if (S.EMBED && S.EMBED.state) A.controls.applyState(S.EMBED.state);
    A.controls.applyState(A.urlstate.parseViewHash(location.hash).view);  // a shared link's view (urlstate.js)
    A.details.loadVulnerable();
    const dpReady = A.datapaths.load();
    const ids = S.defaultPanels();
    if (!ids.length) { $("#panels").innerHTML = `<div class="hint" style="padding:30px">This run has no mapper graphs yet.</div>`; await dpReady; return; }
    S.state.panels = ids.map((id) => ({ id, transform: d3.zoomIdentity }));
    await A.graphs.buildPanels();
    await dpReady;
    A.controls.restoreView();
  }

  A.ready = main().then(() => { document.body.dataset.ready = "1"; }, (err) => { document.body.dataset.ready = "error"; console.warn(err); });
  A.locate = A.details.locate;
  A.setPanels = A.graphs.setPanels;
})(window.advtopo);
