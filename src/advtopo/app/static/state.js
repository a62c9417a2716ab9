/* The page's shared state: the run's index and classes, the loaded graphs, the view settings
 * (window.advtopo.state), and the queries and URL hash built on them. Every other script
 * reads and changes the state through window.advtopo.store. */
(function (A) {
  "use strict";
  const EMBED = window.ADVTOPO_EMBED || null;

  const state = {
    panels: [],               // [{id, el, zoom, transform}]
    layout: "force", color: "class", cmap: "viridis", points: "both", size: "members",
    minSize: 1, jaccard: 0, search: null, locate: null,
    tab: "graphs",            // the tab shown
    align: false,             // align the layouts of an eps sweep (layout.alignedLayout)
    pins: {},                 // graph id -> node id -> [x, y]: dragged nodes (layout units)
    selected: null,           // {gid, nid}
    highlight: null,          // {gid, nodes:Set, edges:Set, label}
  };
  const store = {
    T0: performance.now(),
    EMBED,                    // the static export's data, or null when a server answers
    MAX_PANELS: 4,
    index: null,              // index.json (graphs filtered to entries with an id)
    entry: new Map(),         // graph id -> index entry
    classes: [],              // class names
    ccolor: () => "#999",     // class index -> colour
    graphs: new Map(),        // graph id -> graph json (+ derived caches)
    state,
  };
  // the page's public handle (tests and benchmarks read these)
  A.store = store;
  A.state = state;
  A.GRAPHS = store.graphs;
  A.timings = {};
  A.ready = null;

  const $ = (s) => document.querySelector(s);
  const cname = (c) => (store.classes[c] != null ? store.classes[c] : String(c));
  const uniq = (a) => [...new Set(a)];

  function toast(msg, err) {
    const t = $("#toast"); t.textContent = msg; t.className = "toast" + (err ? " err" : "");
    clearTimeout(toast._t); toast._t = setTimeout(() => t.classList.add("hidden"), err ? 6000 : 3000);
  }
  function clearToast() { clearTimeout(toast._t); $("#toast").classList.add("hidden"); }

  /** "model · layer · attack ε=eps": the model only when the run has several. */
  function graphLabel(e) {
    if (!e) return "";
    const nModels = (store.index.models || []).length;
    const parts = [];
    if (nModels !== 1) parts.push(e.model);
    parts.push(e.layer);
    parts.push(`${e.attack} ε=${e.eps}`);
    if (store.manySets && e.mapper_set) parts.push(`set ${e.mapper_set}`);  // else two sets' graphs read the same
    if (e.recomputed) parts.push("(recomputed)");
    return parts.join(" · ");
  }

  function setIndex(index) {
    store.index = index;
    store.entry = new Map(index.graphs.map((g) => [g.id, g]));
    store.manySets = uniq(index.graphs.map((g) => g.mapper_set).filter((x) => x != null)).length > 1;
  }

  function entriesFor(filter) {
    return store.index.graphs.filter((e) => Object.entries(filter).every(([k, v]) => e[k] === v));
  }

  /** Put the whole view in the URL hash (urlstate.viewHash). A new set of graphs, tab, selected
   * node or located sample is a history step (Back returns to it); other settings replace the
   * current entry. The static export (file:) keeps its URL. */
  function writeHash() {
    if (location.protocol === "file:" || !store.index) return;
    const ids = state.panels.map((p) => p.id);
    const h = A.urlstate.viewHash(ids, state);
    if (location.hash === h) return;
    const cur = A.urlstate.parseViewHash(location.hash), v = cur.view;
    const step = location.hash.length > 1 && (cur.graphs.join("\n") !== ids.join("\n") || (v.tab || "graphs") !== state.tab ||
      JSON.stringify(v.selected || null) !== JSON.stringify(state.selected || null) || (v.locate ?? null) !== (state.locate ?? null));
    store.lastHash = h;
    if (step) history.pushState(null, "", h); else history.replaceState(null, "", h);
  }

  /** The graphs to open: the URL hash's, else the export's, else the paper's view (the first
   * model, the deepest layer, every attack eps; at most 3). */
  function defaultPanels() {
    const fromHash = A.urlstate.parseGraphsHash(location.hash).filter((id) => store.entry.has(id));
    if (fromHash.length) return fromHash;
    const fromEmbed = EMBED && EMBED.state && Array.isArray(EMBED.state.graphs) ? EMBED.state.graphs.filter((id) => store.entry.has(id)) : [];
    if (fromEmbed.length) return fromEmbed;
    const index = store.index;
    if (!index.graphs.length) return [];
    const layers = index.layers && index.layers.length ? index.layers : uniq(index.graphs.map((g) => g.layer));
    const first = index.graphs[0];
    const layer = layers[layers.length - 1];
    // one mapper set (the first graph's): with two, the sweep showed eps 0 twice (both sets' graphs)
    const want = { model: first.model, layer, attack: first.attack };
    if (first.mapper_set != null) want.mapper_set = first.mapper_set;
    const sweep = entriesFor(want).sort((a, b) => a.eps - b.eps).map((g) => g.id);
    return (sweep.length ? sweep : [first.id]).slice(0, 3);
  }

  Object.assign(store, { $, cname, uniq, toast, clearToast, graphLabel, setIndex, entriesFor, writeHash, defaultPanels });
})(window.advtopo = window.advtopo || {});
