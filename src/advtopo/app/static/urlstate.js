/* The view state that travels in URLs: the page's hash (#graphs=a,b&view=JSON: the graphs, the
 * tab, the view settings, the selected node, pinned positions) and the view settings passed to
 * the static export (?state=JSON, embedded in the exported page).
 * Parsing ignores what it does not understand. Pure: window.advtopo.urlstate in the page,
 * require() in Node's tests. */
(function (root, factory) {
  if (typeof module !== "undefined" && module.exports) module.exports = factory(require("./colors.js"));
  else (root.advtopo = root.advtopo || {}).urlstate = factory(root.advtopo.colors);
})(typeof self !== "undefined" ? self : this, function (colors) {
  "use strict";

  const enc = encodeURIComponent;

  /** "#graphs=a,b": each id percent-encoded, so an id may hold commas. */
  function graphsHash(ids) {
    return "#graphs=" + ids.map(enc).join(",");
  }

  /** The graph ids of a location hash ("#graphs=a,b"); [] without one. Empty and badly
   * encoded ids are dropped. */
  function parseGraphsHash(hash) {
    const m = String(hash || "").match(/graphs=([^&]*)/);
    if (!m) return [];
    const ids = [];
    for (const part of m[1].split(",")) {
      if (!part) continue;
      try { ids.push(decodeURIComponent(part)); } catch (e) { /* malformed %-escape: skip it */ }
    }
    return ids;
  }

  const isIndex = (v) => v === null || (Number.isInteger(v) && v >= 0);
  const keep = (ok) => (v) => (ok(v) ? v : undefined);
  const isFiniteNum = (v) => typeof v === "number" && isFinite(v);
  const round1 = (v) => Math.round(v * 10) / 10;

  /** pins: graph id -> node id -> [x, y] (layout units, finite); bad entries are dropped one by one. */
  function cleanPins(v) {
    if (!v || typeof v !== "object" || Array.isArray(v)) return undefined;
    const out = {};
    for (const [gid, nodes] of Object.entries(v)) {
      if (!nodes || typeof nodes !== "object" || Array.isArray(nodes)) continue;
      const m = {};
      for (const [nid, xy] of Object.entries(nodes)) {
        if (Array.isArray(xy) && xy.length === 2 && isFiniteNum(xy[0]) && isFiniteNum(xy[1])) m[nid] = [round1(xy[0]), round1(xy[1])];
      }
      if (Object.keys(m).length) out[gid] = m;
    }
    return out;
  }
  /** selected: {gid, nid} (strings), or null. */
  function cleanSelected(v) {
    if (v === null) return null;
    if (v && typeof v === "object" && typeof v.gid === "string" && (typeof v.nid === "string" || typeof v.nid === "number")) return { gid: v.gid, nid: String(v.nid) };
    return undefined;
  }

  // a samples.parquet column as colour / size ("col:<name>", samplecols.js)
  const isColumn = (v) => typeof v === "string" && /^col:[A-Za-z0-9_.-]{1,64}$/.test(v);
  /** colorRange: [lo, hi] finite with lo < hi, or null (the data's range). */
  function cleanRange(v) {
    if (v === null) return null;
    return Array.isArray(v) && v.length === 2 && isFiniteNum(v[0]) && isFiniteNum(v[1]) && v[0] < v[1] ? [v[0], v[1]] : undefined;
  }
  /** multi: the multi-selection {gid, nids: [node ids]} (a Set is listed; at most 2,000 ids), or null. */
  function cleanMulti(v) {
    if (v === null) return null;
    if (!v || typeof v !== "object" || typeof v.gid !== "string") return undefined;
    if (v.rows && v.rows.size) return undefined;  // the embedding's brush selects rows: not carried
    const ids = v.nids instanceof Set ? [...v.nids] : v.nids;
    if (!Array.isArray(ids) || !ids.length || ids.length > 2000) return undefined;
    const nids = ids.filter((x) => typeof x === "string" || Number.isInteger(x)).map(String);
    return nids.length ? { gid: v.gid, nids } : undefined;
  }

  /** The view settings and what each accepts (each cleaner returns the value to keep, or
   * undefined to drop it). */
  const VIEW_KEYS = {
    tab: keep((v) => v === "graphs" || v === "summary" || v === "datapaths"),
    layout: keep((v) => v === "force" || v === "lens"),
    color: keep((v) => v === "class" || Object.prototype.hasOwnProperty.call(colors.ATTRS, v) || isColumn(v)),
    cmap: keep((v) => colors.CMAP_NAMES.includes(v)),
    points: keep((v) => v === "both" || v === "clean" || v === "adversarial"),
    size: keep((v) => v === "members" || (typeof v === "string" && /^class:\d+$/.test(v)) || isColumn(v)),
    minSize: keep((v) => typeof v === "number" && isFinite(v) && v >= 0),
    jaccard: keep((v) => typeof v === "number" && v >= 0 && v <= 1),
    search: keep(isIndex),
    locate: keep(isIndex),
    selected: cleanSelected,
    align: keep((v) => typeof v === "boolean"),
    pins: cleanPins,
    agg: keep((v) => v === "mean" || v === "median" || v === "max"),  // samplecols.js
    colorRange: cleanRange,
    multi: cleanMulti,  // multiselect.js
  };

  /** The view settings of `state`, as the URL and the export link carry them. */
  function viewState(state) {
    const out = {};
    for (const k of Object.keys(VIEW_KEYS)) {
      if (state[k] === undefined) continue;
      const v = VIEW_KEYS[k](state[k]);
      if (v !== undefined) out[k] = v;
    }
    return out;
  }

  /** The settings of `s` (an object or its JSON) that are valid; anything else is left out. */
  function parseViewState(s) {
    if (typeof s === "string") {
      try { s = JSON.parse(s); } catch (e) { return {}; }
    }
    if (!s || typeof s !== "object" || Array.isArray(s)) return {};
    const out = {};
    for (const [k, clean] of Object.entries(VIEW_KEYS)) {
      if (s[k] === undefined) continue;
      const v = clean(s[k]);
      if (v !== undefined) out[k] = v;
    }
    return out;
  }

  /** The whole view as a location hash: "#graphs=a,b&view=<JSON>" (the graphs list first, so
   * an old "#graphs=" link still opens its graphs). */
  function viewHash(ids, state) {
    return graphsHash(ids) + "&view=" + enc(JSON.stringify(viewState(state)));
  }

  /** {graphs, view} of a location hash; a missing or bad part is empty. */
  function parseViewHash(hash) {
    const m = String(hash || "").match(/[#&]view=([^&]*)/);
    let view = {};
    if (m) { try { view = parseViewState(decodeURIComponent(m[1])); } catch (e) { view = {}; } }
    return { graphs: parseGraphsHash(hash), view };
  }

  /** The server's export link for `ids` with the view settings of `state`. */
  function exportUrl(ids, state) {
    return `api/export.html?graphs=${ids.map(enc).join(",")}&state=${enc(JSON.stringify(viewState(state)))}`;
  }

  return { graphsHash, parseGraphsHash, viewState, parseViewState, viewHash, parseViewHash, exportUrl, VIEW_KEYS: Object.keys(VIEW_KEYS) };
});
