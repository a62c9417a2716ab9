/* What TopoAct's views derive, pure: the cross-layer flow of two graphs of the same samples
 * (the same counts as advtopo.mapper.shape.cross_layer_flow, for the static export, which has
 * no server), one node's outgoing / incoming flow with shares, the encoding of a share, the
 * graph of the same samples at the neighbouring layer, the edges around a loop, the geometry
 * of the flow card (a three-column Sankey) and the Summary's loop / branch-point series.
 * window.advtopo.shape in the page, require() in Node's tests. */
(function (root, factory) {
  const api = factory();
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else (root.advtopo = root.advtopo || {}).shape = api;
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  const ROWS = ["all", "clean", "adversarial"];

  /** How the members of each node of graph `ga` spread over the nodes of graph `gb` (rows
   * matched by sample id and clean / adversarial; `rows`: "all", "clean" or "adversarial"):
   * {rows, from_nodes, to_nodes, from_size, to_size, flow: [[i, j, count]] (by i, then count
   * descending, then j), unmapped, n_matched_rows} — the server's /api/flow answer. */
  function crossLayerFlow(ga, gb, rows = "all") {
    if (!ROWS.includes(rows)) throw new Error(`rows=${rows} is not valid; allowed: ${ROWS.join(", ")}`);
    const kindOk = (adv) => rows === "all" || (rows === "adversarial") === !!adv;
    const pa = ga.points || {}, pb = gb.points || {};
    const sidOf = (P, r) => (P.sample_id && P.sample_id[r] != null ? P.sample_id[r] : r);
    const advOf = (P, r) => !!(P.is_adversarial || [])[r];
    // rows of gb (of the kind) by key, and the nodes of gb holding each of its rows
    const nB = (pb.sample_id || []).length;
    const keyB = new Map();
    for (let r = 0; r < nB; r++) if (kindOk(advOf(pb, r))) keyB.set(`${sidOf(pb, r)}|${advOf(pb, r) ? 1 : 0}`, r);
    const nodesOfB = new Map();
    const toSize = gb.nodes.map((n, j) => {
      let c = 0;
      for (const r of n.members || []) {
        if (!kindOk(advOf(pb, r))) continue;
        c++;
        if (!nodesOfB.has(r)) nodesOfB.set(r, []);
        nodesOfB.get(r).push(j);
      }
      return c;
    });
    const nA = (pa.sample_id || []).length;
    let matched = 0;
    const toRow = new Map();
    for (let r = 0; r < nA; r++) {
      if (!kindOk(advOf(pa, r))) continue;
      const rb = keyB.get(`${sidOf(pa, r)}|${advOf(pa, r) ? 1 : 0}`);
      if (rb != null) { toRow.set(r, rb); matched++; }
    }
    const flow = [], unmapped = [], fromSize = [];
    ga.nodes.forEach((n, i) => {
      const counts = new Map();
      let size = 0, lost = 0;
      for (const r of n.members || []) {
        if (!kindOk(advOf(pa, r))) continue;
        size++;
        const rb = toRow.get(r);
        const js = rb != null ? nodesOfB.get(rb) : null;
        if (!js || !js.length) { lost++; continue; }
        for (const j of js) counts.set(j, (counts.get(j) || 0) + 1);
      }
      fromSize.push(size); unmapped.push(lost);
      [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]).forEach(([j, c]) => flow.push([i, j, c]));
    });
    return { rows, from_nodes: ga.nodes.map((n) => String(n.id)), to_nodes: gb.nodes.map((n) => String(n.id)),
      from_size: fromSize, to_size: toSize, flow, unmapped, n_matched_rows: matched };
  }

  /** Node i's outgoing flow: [{j, count, share}] by count descending; share = count / i's rows. */
  function flowOut(F, i) {
    const size = F.from_size[i] || 0;
    return F.flow.filter((f) => f[0] === i).map(([, j, c]) => ({ j, count: c, share: size ? c / size : 0 }))
      .sort((a, b) => b.count - a.count || a.j - b.j);
  }

  /** Node j's incoming flow (j a node of the flow's target graph): [{i, count, share}]; share = count / j's rows. */
  function flowIn(F, j) {
    const size = F.to_size[j] || 0;
    return F.flow.filter((f) => f[1] === j).map(([i, , c]) => ({ i, count: c, share: size ? c / size : 0 }))
      .sort((a, b) => b.count - a.count || a.i - b.i);
  }

  /** The opacity of a node holding `share` of the selected node's members: 0.12 for none, else
   * from 0.3 up to 1 in proportion; and the width of its outline (0 for none, up to 5 px). */
  function shareStyle(share) {
    const s = Math.max(0, Math.min(1, +share || 0));
    return s > 0 ? { opacity: 0.3 + 0.7 * s, ring: 1 + 4 * s } : { opacity: 0.12, ring: 0 };
  }

  const sameSamples = (a, b) => a && b && a.model === b.model && a.attack === b.attack && Math.abs(+a.eps - +b.eps) < 1e-12;

  /** The graph of the same samples (model, attack, eps; same mapper set and rows when given) at
   * the layer `step` places after (1) or before (-1) `entry`'s in `layers`; null when none. */
  function layerNeighbour(graphs, layers, entry, step) {
    const k = layers.indexOf(entry.layer) + step;
    if (k < 0 || k >= layers.length || layers.indexOf(entry.layer) < 0) return null;
    const hits = graphs.filter((g) => g.layer === layers[k] && sameSamples(g, entry) && !g.recomputed &&
      (g.mapper_set || null) === (entry.mapper_set || null) && (g.rows || null) === (entry.rows || null));
    return hits.length ? hits[0] : null;
  }

  /** The edge indices around a loop given as node indices in walking order; adj(i) -> [[j, edge]]. */
  function cycleEdges(adj, nodes) {
    const out = [];
    nodes.forEach((u, k) => {
      const v = nodes[(k + 1) % nodes.length];
      const hit = adj(u).find(([w]) => w === v);
      if (hit) out.push(hit[1]);
    });
    return out;
  }

  /** A three-column Sankey: `left` (incoming: [{id, count}]), the node (`size` rows) and `right`
   * (outgoing: [{id, count}]); at most `top` bars per side (the rest summed into one "other"
   * bar, id null). One scale for all bars: `height` fits the largest column. Returns {columns:
   * [{x, bars: [{id, count, y, h, n}]}], links: [{side, id, count, path, w}], k (px per row)};
   * the node's bar also has `span`, the height its links take (more than h when they overlap). */
  function sankey(left, size, right, { width = 300, height = 200, barW = 10, gap = 4, top = 6 } = {}) {
    const trim = (xs) => {
      const s = [...xs].sort((a, b) => b.count - a.count);
      if (s.length <= top) return s.map((x) => ({ ...x, n: 1 }));
      const rest = s.slice(top);
      return s.slice(0, top).map((x) => ({ ...x, n: 1 })).concat([{ id: null, count: rest.reduce((t, x) => t + x.count, 0), n: rest.length }]);
    };
    const L = trim(left), R = trim(right);
    const sum = (xs) => xs.reduce((t, x) => t + x.count, 0);
    const gaps = (xs) => Math.max(0, xs.length - 1) * gap;
    const need = Math.max(sum(L), size, sum(R), 1);
    const k = Math.max(0, (height - Math.max(gaps(L), gaps(R))) / need);
    const stack = (xs) => { let y = 0; return xs.map((x) => { const b = { ...x, y, h: x.count * k }; y += b.h + gap; return b; }); };
    const xL = 0, xM = (width - barW) / 2, xR = width - barW;
    // the node's bar is its own rows; the links may need more room (rows in several nodes count in each): span
    const mid = { id: "node", count: size, y: 0, h: size * k, span: Math.max(size, sum(L), sum(R)) * k, n: 1 };
    const cols = [{ x: xL, bars: stack(L) }, { x: xM, bars: [mid] }, { x: xR, bars: stack(R) }];
    const band = (x0, y0, x1, y1, w) => {
      const c = (x0 + x1) / 2;
      return `M${x0},${y0}C${c},${y0} ${c},${y1} ${x1},${y1}L${x1},${y1 + w}C${c},${y1 + w} ${c},${y0 + w} ${x0},${y0 + w}Z`;
    };
    const links = [];
    let yIn = 0, yOut = 0;
    cols[0].bars.forEach((b) => { links.push({ side: "in", id: b.id, count: b.count, w: b.h, path: band(xL + barW, b.y, xM, yIn, b.h) }); yIn += b.h; });
    cols[2].bars.forEach((b) => { links.push({ side: "out", id: b.id, count: b.count, w: b.h, path: band(xM + barW, yOut, xR, b.y, b.h) }); yOut += b.h; });
    return { columns: cols, links, k };
  }

  /** The Summary's series for one layer: per model (and mapper set when the run has several and
   * `mapperSet` does not pick one: "" is the unnamed set), [eps, value] of `measure` ("n_loops"
   * or "n_branch_points") sorted by eps. */
  function shapeSeries(rows, layer, measure, mapperSet) {
    if (mapperSet != null) rows = rows.filter((r) => (r.mapper_set || "") === mapperSet);
    const sets = new Set(rows.map((r) => r.mapper_set || ""));
    const attacks = new Set(rows.map((r) => r.attack));
    const out = new Map();
    rows.filter((r) => r.layer === layer && r[measure] != null).forEach((r) => {
      const parts = [r.model];
      if (attacks.size > 1) parts.push(r.attack);
      if (sets.size > 1) parts.push(r.mapper_set || "default");
      const name = parts.join(" · ");
      if (!out.has(name)) out.set(name, { name, model: r.model, pts: [] });
      out.get(name).pts.push([+r.eps, +r[measure]]);
    });
    return [...out.values()].map((s) => ({ ...s, pts: s.pts.sort((a, b) => a[0] - b[0]) }));
  }

  return { ROWS, crossLayerFlow, flowOut, flowIn, shareStyle, sameSamples, layerNeighbour, cycleEdges, sankey, shapeSeries };
});
