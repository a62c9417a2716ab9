/* Layout helpers: the deterministic node positions of a mapper graph (force-directed, or
 * x fixed to the mean lens value) and how a layout is fitted into a panel. Pure (d3's force
 * simulation and scales only): window.advtopo.layout in the page, require() in Node's tests. */
(function (root, factory) {
  if (typeof module !== "undefined" && module.exports) module.exports = factory(require("./vendor/d3.min.js"));
  else (root.advtopo = root.advtopo || {}).layout = factory(root.d3);
})(typeof self !== "undefined" ? self : this, function (d3) {
  "use strict";

  const nodeSize = (x) => x.size || (x.members || []).length;

  /** Ticks of the force simulation and how many of the last ones resolve collisions: big
   * graphs get few ticks (they start from a lens-ordered guess). */
  function tickPlan(n) {
    const ticks = n > 1500 ? 40 : n > 400 ? 50 : 300;
    return { ticks, late: n > 400 ? 8 : ticks };
  }

  /** Width of the lens axis in layout units for n nodes. */
  function lensSpan(n) {
    return Math.max(200, 22 * Math.sqrt(n) * 2.2);
  }

  /** The aspect bucket of a W x H panel (0.5 = wide, 1 = square, 2 = tall): one layout per bucket. */
  function aspectBucket(W, H) {
    return Math.pow(2, Math.max(-1, Math.min(1, Math.round(Math.log2(H / W)))));
  }

  /** A 32-bit seed from a string (FNV-1a): a graph's layout is seeded by its id, so the same
   * graph gets the same picture in every panel, grid and page load. */
  function seedOf(s) {
    let h = 0x811c9dc5;
    for (const ch of String(s == null ? "" : s)) { h ^= ch.codePointAt(0); h = Math.imul(h, 0x01000193) >>> 0; }
    return h >>> 0;
  }

  /** Node positions of graph `g` (nodes, edges with source/target ids and jaccard, mean_lens).
   * kind "lens": x is the node's mean lens value (lensExtent gives the axis); otherwise a
   * force layout for the aspect bucket (the app always passes 1: one fixed coordinate space,
   * scaled into any panel). opts.seed seeds the start (the app: seedOf(graph id));
   * opts.fixed (node index -> [x, y], force layouts only) holds those nodes in place, as a sweep
   * alignment does. Same graph, same arguments: same positions. */
  function computeLayout(g, kind, aspect, opts) {
    opts = opts || {};
    const t = performance.now();
    const n = g.nodes.length;
    const nodeById = new Map(g.nodes.map((x, i) => [String(x.id), i]));
    const maxS = d3.max(g.nodes, nodeSize) || 1;
    const nodes = g.nodes.map((x, i) => ({ i, r: 3 + 7 * Math.sqrt(nodeSize(x) / maxS), lens: x.mean_lens }));
    const links = [];
    g.edges.forEach((e) => {
      const a = nodeById.get(String(e.source)), b = nodeById.get(String(e.target));
      if (a != null && b != null) links.push({ source: a, target: b, j: e.jaccard || 0 });
    });
    // seeded initial positions: along the lens (mapper graphs are ordered by it), y from a seeded LCG;
    // a good start lets big graphs settle in few ticks
    const seed = opts.seed == null ? 7 : (opts.seed & 0x7fffffff);
    const rnd = d3.randomLcg(seed), span = Math.max(120, 26 * Math.sqrt(n));
    const lensVals = nodes.map((p) => p.lens).filter((v) => v != null && isFinite(v));
    const le = lensVals.length ? d3.extent(lensVals) : [0, 1];
    const lx = (v) => (le[1] > le[0] && v != null && isFinite(v) ? ((v - le[0]) / (le[1] - le[0]) - 0.5) * span : (rnd() - 0.5) * span);
    nodes.forEach((p) => { p.x = lx(p.lens); p.y = (rnd() - 0.5) * span; });
    const fixed = kind !== "lens" && opts.fixed ? opts.fixed : null;
    if (fixed) fixed.forEach(([x, y], i) => { if (nodes[i] && isFinite(x) && isFinite(y)) { nodes[i].x = nodes[i].fx = x; nodes[i].y = nodes[i].fy = y; } });
    const big = n > 400;
    const sim = d3.forceSimulation(nodes).randomSource(d3.randomLcg(opts.seed == null ? 42 : (seed ^ 0x2a2a2a) & 0x7fffffff))
      .force("link", d3.forceLink(links).id((p) => p.i).distance((l) => 14 + l.source.r + l.target.r).strength(0.8))
      .force("charge", d3.forceManyBody().strength(-28).distanceMax(260).theta(big ? 1.2 : 0.9))
      .stop();
    const collide = d3.forceCollide((p) => p.r + 2).iterations(1);
    let lensExtent = null, xs = null;
    if (kind === "lens") {
      lensExtent = [le[0], le[1]];
      if (lensExtent[0] === lensExtent[1]) lensExtent = [lensExtent[0] - 0.5, lensExtent[1] + 0.5];
      xs = d3.scaleLinear().domain(lensExtent).range([0, lensSpan(n)]);
      nodes.forEach((p) => { p.fx = xs(p.lens != null && isFinite(p.lens) ? p.lens : lensExtent[0]); });
      sim.force("y", d3.forceY(0).strength(0.08));
    } else {
      // a tall panel gets a tall picture: pull harder along x than y
      const ax = aspect || 1, k = big ? 0.25 : 1; // big graphs keep more of their lens-ordered start
      sim.force("x", d3.forceX(0).strength(k * 0.07 * Math.max(1, ax))).force("y", d3.forceY(0).strength(0.07 / Math.min(1, ax)));
    }
    const { ticks, late } = tickPlan(n);
    sim.alpha(1).alphaDecay(1 - Math.pow(0.001, 1 / ticks));
    for (let k = 0; k < ticks; k++) { if (k === ticks - late) sim.force("collide", collide); sim.tick(); }
    const res = { x: nodes.map((p) => p.x), y: nodes.map((p) => p.y), lensExtent, ms: performance.now() - t };
    if (kind === "lens") res.x = res.x.map((v) => xs.invert(v)); // keep the lens value itself as x (the axis is in lens units)
    return res;
  }

  /** The layout `L` with the pinned nodes of `pins` (node id -> [x, y] in layout units) moved
   * there, and L as its `base`; L itself is left as it is. Unknown ids and non-finite positions are ignored. */
  function applyPins(g, L, pins) {
    if (!pins || !Object.keys(pins).length) return L;
    const x = L.x.slice(), y = L.y.slice();
    g.nodes.forEach((n, i) => {
      const p = pins[String(n.id)];
      if (Array.isArray(p) && isFinite(p[0]) && isFinite(p[1])) { x[i] = +p[0]; y[i] = +p[1]; }
    });
    return Object.assign({}, L, { x, y, base: L });  // base: what the panel is fitted to (a pin does not rescale it)
  }

  /** For each node of graph `g`, the node of graph `ref` sharing the most member samples (by
   * sample id and clean/adversarial kind; at least one): node index of g -> node index of ref.
   * This is how a sweep's layouts are aligned (the same nodes stay in place). */
  function matchNodes(g, ref) {
    const key = (G, r) => `${(G.points.sample_id || [])[r]}:${(G.points.is_adversarial || [])[r] ? 1 : 0}`;
    const owners = new Map();
    if (!g.points || !ref.points) return new Map();
    ref.nodes.forEach((n, j) => (n.members || []).forEach((r) => {
      const k = key(ref, r); if (!owners.has(k)) owners.set(k, []); owners.get(k).push(j);
    }));
    const out = new Map();
    g.nodes.forEach((n, i) => {
      const votes = new Map();
      (n.members || []).forEach((r) => (owners.get(key(g, r)) || []).forEach((j) => votes.set(j, (votes.get(j) || 0) + 1)));
      let best = null, bestV = 0;
      votes.forEach((v, j) => { if (v > bestV || (v === bestV && j < best)) { best = j; bestV = v; } });
      if (best != null) out.set(i, best);
    });
    return out;
  }

  /** The force layout of `g` aligned to `ref`'s (refL): each node matched to a ref node starts
   * and stays at that node's position (nodes sharing a ref node are spread a little around
   * it); the rest settle around them. */
  function alignedLayout(g, ref, refL, seed) {
    const match = matchNodes(g, ref), fixed = new Map(), used = new Map();
    match.forEach((j, i) => {
      const k = used.get(j) || 0; used.set(j, k + 1);
      const a = k * 2.399963, r = k ? 6 * Math.sqrt(k) : 0;  // golden-angle spiral for the 2nd, 3rd... node on one spot
      fixed.set(i, [refL.x[j] + r * Math.cos(a), refL.y[j] + r * Math.sin(a)]);
    });
    const L = computeLayout(g, "force", 1, { seed, fixed });
    L.aligned = match.size;
    return L;
  }

  /** Largest and smallest node radius in a W x H panel showing nVis nodes. */
  function nodeRadii(nVis, W, H) {
    const n = Math.max(1, nVis);
    const rMax = Math.max(4, Math.min(24, (n > 300 ? 0.3 : 0.48) * Math.sqrt((W * H) / n)));
    return { rMax, rMin: Math.max(1.5, Math.min(4, rMax / 3)) };
  }

  /** Layout units -> panel pixels. Force layouts keep their aspect ratio and are centred with
   * a margin of pad = 8 + rMax (more at the bottom for the lens axis); lens layouts stretch x
   * over the width (fx is a d3 scale, for the axis). Returns {fx, fy}. */
  function fitToPanel(L, lensMode, W, H, rMax) {
    const pad = 8 + rMax, padB = (lensMode ? 36 : 0) + rMax + 4;
    const xExt = lensMode ? L.lensExtent : d3.extent(L.x), yExt = d3.extent(L.y);
    const dx = (xExt[1] - xExt[0]) || 1, dy = (yExt[1] - yExt[0]) || 1;
    if (lensMode) {
      const fx = d3.scaleLinear().domain(xExt).range([pad + 10, W - pad - 10]);
      const s = Math.min((H - pad - padB) / dy, 4);
      const fy = d3.scaleLinear().domain(yExt).range([pad + (H - pad - padB - dy * s) / 2, pad + (H - pad - padB + dy * s) / 2]);
      return { fx, fy };
    }
    const s = Math.min((W - 2 * pad) / dx, (H - pad - padB) / dy);
    // centred on the real extent (0 for a single node, which then sits in the middle)
    const ox = (W - (xExt[1] - xExt[0]) * s) / 2, oy = pad + (H - pad - padB - (yExt[1] - yExt[0]) * s) / 2;
    return { fx: (v) => ox + (v - xExt[0]) * s, fy: (v) => oy + (v - yExt[0]) * s };
  }

  return { tickPlan, lensSpan, aspectBucket, seedOf, computeLayout, applyPins, matchNodes, alignedLayout, nodeRadii, fitToPanel };
});
