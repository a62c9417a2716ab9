/* The view state that travels in URLs: the graphs shown (the page's #graphs=a,b hash) and the
 * view settings passed to the static export (?state=JSON, embedded in the exported page).
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
  /** The view settings and what each accepts. */
  const VIEW_KEYS = {
    layout: (v) => v === "force" || v === "lens",
    color: (v) => v === "class" || Object.prototype.hasOwnProperty.call(colors.ATTRS, v),
    cmap: (v) => colors.CMAP_NAMES.includes(v),
    points: (v) => v === "both" || v === "clean" || v === "adversarial",
    size: (v) => v === "members" || (typeof v === "string" && /^class:\d+$/.test(v)),
    minSize: (v) => typeof v === "number" && isFinite(v) && v >= 0,
    jaccard: (v) => typeof v === "number" && v >= 0 && v <= 1,
    search: isIndex,
    locate: isIndex,
  };

  /** The view settings of `state`, as the export link sends them. */
  function viewState(state) {
    const out = {};
    for (const k of Object.keys(VIEW_KEYS)) out[k] = state[k];
    return out;
  }

  /** The settings of `s` (an object or its JSON) that are valid; anything else is left out. */
  function parseViewState(s) {
    if (typeof s === "string") {
      try { s = JSON.parse(s); } catch (e) { return {}; }
    }
    if (!s || typeof s !== "object" || Array.isArray(s)) return {};
    const out = {};
    for (const [k, ok] of Object.entries(VIEW_KEYS)) if (s[k] !== undefined && ok(s[k])) out[k] = s[k];
    return out;
  }

  /** The server's export link for `ids` with the view settings of `state`. */
  function exportUrl(ids, state) {
    return `api/export.html?graphs=${ids.map(enc).join(",")}&state=${enc(JSON.stringify(viewState(state)))}`;
  }

  return { graphsHash, parseGraphsHash, viewState, parseViewState, exportUrl, VIEW_KEYS: Object.keys(VIEW_KEYS) };
});
