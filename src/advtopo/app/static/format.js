/* Number and text formatting shared by every view.
 * Pure: loaded by a <script> tag in the page (window.advtopo.format) and by require() in Node's tests. */
(function (root, factory) {
  const api = factory();
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else (root.advtopo = root.advtopo || {}).format = api;
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  /** `v` with `d` decimals; an en dash for a missing value (null, undefined, NaN). */
  function fmt(v, d = 2) {
    return v == null || Number.isNaN(v) ? "–" : (+v).toFixed(d);
  }

  const HTML_ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

  /** Text safe inside HTML (element content and quoted attributes). */
  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
  }

  /** A value of the per-graph statistics table: non-integers with 3 decimals, the rest as text. */
  function statCell(v) {
    return typeof v === "number" && !Number.isInteger(v) ? fmt(v, 3) : esc(v ?? "–");
  }

  /** A distance picked on a chart, short enough for an input box (4 significant digits). */
  function shortNumber(v) {
    return (+(+v).toPrecision(4)).toString();
  }

  return { fmt, esc, statCell, shortNumber };
});
