/* Selection and drill-down, the pure parts: lasso hit test, member filters, the rows of a
 * multi-node selection and their CSV, per-node aggregates of a per-sample column, histogram
 * bins, the fooling flows (true -> predicted, off-diagonal) and thumbnail pages.
 * window.advtopo.selection in the page, require() in Node's tests. */
(function (root, factory) {
  const api = factory();
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else (root.advtopo = root.advtopo || {}).selection = api;
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  /** Is point [x, y] inside polygon [[x, y], ...] (even-odd rule; fewer than 3 vertices: never)? */
  function pointInPolygon(pt, poly) {
    if (!poly || poly.length < 3) return false;
    const [x, y] = pt;
    let inside = false;
    for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
      const [xi, yi] = poly[i], [xj, yj] = poly[j];
      if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
    }
    return inside;
  }

  const AGGREGATES = ["mean", "median", "max"];

  /** mean / median / max of the finite values (null when there are none). */
  function aggregate(values, how) {
    const v = [];
    for (const x of values || []) if (x != null && isFinite(x)) v.push(+x);
    if (!v.length) return null;
    if (how === "max") return Math.max(...v);
    if (how === "median") {
      v.sort((a, b) => a - b);
      const m = v.length >> 1;
      return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
    }
    if (how !== "mean") throw new Error(`unknown aggregate ${how}: use one of ${AGGREGATES.join(", ")}`);
    return v.reduce((s, x) => s + x, 0) / v.length;
  }

  /** Does a point row of points mode `mode` ("both", "clean", "adversarial") count? */
  function inMode(isAdv, mode) {
    return mode === "both" || (mode === "clean" ? !isAdv : isAdv);
  }

  /** Per node, the aggregate of `values` (one per point row) over its member rows of `mode`. */
  function nodeAggregates(nodes, isAdversarial, values, mode, how) {
    const adv = isAdversarial || [];
    return nodes.map((n) => aggregate((n.members || []).filter((r) => inMode(!!adv[r], mode)).map((r) => values[r]), how));
  }

  /** The member filters of a selection: name -> (row facts) -> bool. "fooled": predicted wrong. */
  const FILTERS = {
    all: () => true,
    fooled: (m) => m.prediction != null && m.prediction !== m.label,
    not_fooled: (m) => m.prediction != null && m.prediction === m.label,
    adversarial: (m) => m.adv,
    clean: (m) => !m.adv,
  };
  const FILTER_LABELS = { all: "all", fooled: "fooled", not_fooled: "not fooled", adversarial: "adversarial", clean: "clean" };

  function memberFilter(name) {
    if (!Object.prototype.hasOwnProperty.call(FILTERS, name)) throw new Error(`unknown filter ${name}: use one of ${Object.keys(FILTERS).join(", ")}`);
    return FILTERS[name];
  }

  /** The distinct member rows of node indices `nodeIdx` of graph `g` (ascending), as row facts
   * {row, sample_id, label, prediction, adv, nodes: [node ids holding it among the selected]},
   * keeping the rows of points mode `mode` that pass filter `filter`. */
  function selectionRows(g, nodeIdx, mode = "both", filter = "all") {
    const P = g.points || {}, keep = memberFilter(filter);
    const byRow = new Map();
    for (const i of nodeIdx) for (const r of g.nodes[i].members || []) {
      if (!byRow.has(r)) byRow.set(r, []);
      byRow.get(r).push(String(g.nodes[i].id));
    }
    const out = [];
    for (const r of [...byRow.keys()].sort((a, b) => a - b)) {
      const m = { row: r, sample_id: (P.sample_id || [])[r], label: (P.label || [])[r], prediction: (P.prediction || [])[r], adv: !!(P.is_adversarial || [])[r], nodes: byRow.get(r) };
      if (inMode(m.adv, mode) && keep(m)) out.push(m);
    }
    return out;
  }

  /** Row facts of the point rows `rows` (the embedding's brush; ascending, distinct), each
   * with the ids of every node holding it (none for a noise row), mode and filter applied. */
  function rowFacts(g, rows, mode = "both", filter = "all") {
    const P = g.points || {}, keep = memberFilter(filter);
    const holders = new Map();
    g.nodes.forEach((n) => (n.members || []).forEach((r) => { if (!holders.has(r)) holders.set(r, []); holders.get(r).push(String(n.id)); }));
    return [...new Set(rows)].sort((a, b) => a - b)
      .map((r) => ({ row: r, sample_id: (P.sample_id || [])[r], label: (P.label || [])[r], prediction: (P.prediction || [])[r], adv: !!(P.is_adversarial || [])[r], nodes: holders.get(r) || [] }))
      .filter((m) => inMode(m.adv, mode) && keep(m));
  }

  function csvCell(v) {
    if (v == null || (typeof v === "number" && !isFinite(v))) return "";
    const s = String(v);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  }

  /** CSV text of selection rows: graph, row, sample_id, label, prediction, is_adversarial, nodes
   * (";"-joined), then one column per entry of `columns` ({name: values per point row}). */
  function selectionCsv(gid, rows, columns = {}) {
    const names = Object.keys(columns);
    const head = ["graph", "row", "sample_id", "label", "prediction", "is_adversarial", "nodes", ...names];
    const lines = [head.join(",")];
    for (const m of rows) {
      lines.push([gid, m.row, m.sample_id, m.label, m.prediction, m.adv ? 1 : 0, m.nodes.join(";"),
        ...names.map((c) => columns[c][m.row])].map(csvCell).join(","));
    }
    return lines.join("\n") + "\n";
  }

  /** Equal-width bins of the finite values: {lo, hi, counts, n}; one bin when all are equal. */
  function histogram(values, nBins = 12) {
    const v = (values || []).filter((x) => x != null && isFinite(x)).map(Number);
    if (!v.length) return { lo: null, hi: null, counts: [], n: 0 };
    let lo = Infinity, hi = -Infinity;
    for (const x of v) { if (x < lo) lo = x; if (x > hi) hi = x; }
    const k = lo === hi ? 1 : Math.max(1, nBins | 0);
    const counts = new Array(k).fill(0);
    for (const x of v) counts[lo === hi ? 0 : Math.min(k - 1, Math.floor(((x - lo) / (hi - lo)) * k))]++;
    return { lo, hi, counts, n: v.length };
  }

  /** The off-diagonal true -> predicted counts of row facts, most frequent first:
   * [{label, prediction, n, adv, clean}]. */
  function foolingFlows(rows) {
    const m = new Map();
    for (const r of rows) {
      if (r.prediction == null || r.prediction === r.label) continue;
      const k = `${r.label}\u0000${r.prediction}`;
      const f = m.get(k) || { label: r.label, prediction: r.prediction, n: 0, adv: 0, clean: 0 };
      f.n++; r.adv ? f.adv++ : f.clean++;
      m.set(k, f);
    }
    return [...m.values()].sort((a, b) => b.n - a.n || a.label - b.label || a.prediction - b.prediction);
  }

  /** Page `page` (0-based, clamped) of `items`, `size` per page: {items, page, pages, from, to}. */
  function pageOf(items, page, size) {
    const pages = Math.max(1, Math.ceil(items.length / size));
    const p = Math.min(Math.max(0, page | 0), pages - 1);
    const from = p * size, to = Math.min(items.length, from + size);
    return { items: items.slice(from, to), page: p, pages, from, to };
  }

  return { pointInPolygon, AGGREGATES, aggregate, inMode, nodeAggregates, FILTERS, FILTER_LABELS, memberFilter, selectionRows, rowFacts, csvCell, selectionCsv, histogram, foolingFlows, pageOf };
});
