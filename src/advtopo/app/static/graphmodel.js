/* What the views derive from one mapper graph's JSON (nodes, edges, points): lookup tables,
 * each node's class histogram and attributes for a points mode (both / clean / adversarial),
 * connected components and shortest paths, and where a sample lies. Pure and cached on the
 * graph object: window.advtopo.graphmodel in the page, require() in Node's tests. */
(function (root, factory) {
  const api = factory();
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else (root.advtopo = root.advtopo || {}).graphmodel = api;
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  /** Lookup tables of graph `g`, computed once: nodeById (id -> index), adj (index -> [[neighbour, edge]]),
   * rowsBySample (sample id -> point rows), nodesByRow (row -> node indices). */
  function derive(g) {
    if (g._d) return g._d;
    const P = g.points || {};
    const nodeById = new Map(g.nodes.map((n, i) => [String(n.id), i]));
    const adj = g.nodes.map(() => []);
    g.edges.forEach((e, k) => {
      const a = nodeById.get(String(e.source)), b = nodeById.get(String(e.target));
      if (a == null || b == null) return;
      adj[a].push([b, k]); adj[b].push([a, k]);
    });
    const rowsBySample = new Map();
    (P.sample_id || []).forEach((s, r) => { if (!rowsBySample.has(s)) rowsBySample.set(s, []); rowsBySample.get(s).push(r); });
    const nodesByRow = new Map();
    g.nodes.forEach((n, i) => (n.members || []).forEach((r) => { if (!nodesByRow.has(r)) nodesByRow.set(r, []); nodesByRow.get(r).push(i); }));
    g._d = { nodeById, adj, rowsBySample, nodesByRow, views: {} };
    return g._d;
  }

  /** Per node, counting only the member rows of `mode` ("both", "clean", "adversarial"):
   * count, class histogram (at least nClasses long), nAdv, nMis, purity, the fractions
   * adversarial / misclassified, mean lens and L2 (the node's stored values when the rows
   * carry none) and the dominant class. Without points, the node's stored summaries. */
  function nodeView(g, mode, nClasses) {
    const d = derive(g);
    const key = `${mode}:${nClasses}`;
    if (d.views[key]) return d.views[key];
    const P = g.points || {};
    const lab = P.label || [], pred = P.prediction || [], adv = P.is_adversarial || [], lens = P.lens || [], l2 = P.l2 || [];
    const hasPts = lab.length > 0;
    const nC = Math.max(nClasses, 1);
    const out = g.nodes.map((n) => {
      const hist = new Array(nC).fill(0);
      let count = 0, nAdv = 0, nMis = 0, lsum = 0, lcnt = 0, l2sum = 0, l2cnt = 0;
      if (hasPts) {
        for (const r of n.members || []) {
          const a = !!adv[r];
          if ((mode === "clean" && a) || (mode === "adversarial" && !a)) continue;
          count++; if (a) nAdv++;
          const c = lab[r];
          if (Number.isInteger(c) && c >= hist.length) { const old = hist.length; hist.length = c + 1; hist.fill(0, old); } // a label beyond the class names
          hist[c] = (hist[c] || 0) + 1;
          if (pred[r] != null && pred[r] !== c) nMis++;
          if (lens[r] != null) { lsum += +lens[r]; lcnt++; }
          if (l2[r] != null) { l2sum += +l2[r]; l2cnt++; }
        }
      } else {
        for (const [c, v] of Object.entries(n.class_hist || {})) hist[+c] = v;
        count = n.size || (n.members || []).length;
        nAdv = Math.round((n.frac_adversarial || 0) * count);
        nMis = Math.round((n.frac_misclassified || 0) * count);
      }
      const maxc = Math.max(0, ...hist);
      return {
        count, hist, nAdv, nMis,
        purity: count ? maxc / count : 0,
        frac_adversarial: count ? nAdv / count : 0,
        frac_misclassified: count ? nMis / count : 0,
        mean_lens: lcnt ? lsum / lcnt : n.mean_lens,
        mean_l2: l2cnt ? l2sum / l2cnt : n.mean_l2,
        dominant: hist.indexOf(maxc),
      };
    });
    d.views[key] = out;
    return out;
  }

  /** The nodes and edges reachable from node index `start`; neighbours(i) -> [[j, edge index]]
   * lists the usable edges (the caller drops hidden nodes and filtered edges). */
  function component(neighbours, start) {
    const seen = new Set([start]), edges = new Set(), q = [start];
    while (q.length) {
      const u = q.shift();
      for (const [v, k] of neighbours(u)) { edges.add(k); if (!seen.has(v)) { seen.add(v); q.push(v); } }
    }
    return { nodes: seen, edges };
  }

  /** A shortest path (fewest edges) from node index a to b: {nodes (a to b), edges (their indices)}, or null. */
  function shortestPath(neighbours, a, b) {
    const prev = new Map([[a, null]]), q = [a];
    while (q.length) {
      const u = q.shift();
      if (u === b) break;
      for (const [v, k] of neighbours(u)) if (!prev.has(v)) { prev.set(v, [u, k]); q.push(v); }
    }
    if (!prev.has(b)) return null;
    const nodes = [], edges = [];
    for (let u = b; u != null;) { nodes.unshift(u); const pr = prev.get(u); if (!pr) break; edges.push(pr[1]); u = pr[0]; }
    return { nodes, edges };
  }

  /** Where sample `sid` lies in graph `g`: nodeSet (node indices holding any of its rows) and,
   * per row, whether it is adversarial, its node ids, point purity (stored, else the mean of
   * 1 / number of classes over its nodes), prediction and label. A sample in no node (noise)
   * is shown in `nearestId`, the node the vulnerability stage found nearest to it, when given
   * and in `g` (`res.nearest`). Cached per sample and nearest node. */
  function locateIn(g, sid, nearestId = null) {
    const d = derive(g);
    d.loc = d.loc || new Map();
    const key = nearestId == null ? sid : `${sid}|${nearestId}`;
    if (d.loc.has(key)) return d.loc.get(key);
    const rows = d.rowsBySample.get(sid) || [];
    const P = g.points || {}, pp = g.point_purity || [];
    const nodeSet = new Set();
    const perRow = rows.map((r) => {
      const ns = d.nodesByRow.get(r) || [];
      ns.forEach((i) => nodeSet.add(i));
      let pur = pp[r];
      if (pur == null && ns.length) pur = ns.reduce((s, i) => s + 1 / Math.max(1, Object.keys(g.nodes[i].class_hist || {}).length), 0) / ns.length;
      return { row: r, adv: !!(P.is_adversarial || [])[r], nodes: ns.map((i) => String(g.nodes[i].id)), purity: pur, pred: (P.prediction || [])[r], label: (P.label || [])[r] };
    });
    const res = { nodeSet, rows: perRow, nearest: null };
    if (!nodeSet.size && perRow.length && nearestId != null) {
      const i = g.nodes.findIndex((n) => String(n.id) === String(nearestId));
      if (i >= 0) { nodeSet.add(i); res.nearest = String(nearestId); }
    }
    d.loc.set(key, res);
    return res;
  }

  return { derive, nodeView, component, shortestPath, locateIn };
});
