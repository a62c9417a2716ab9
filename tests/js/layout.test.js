// Layout helpers (src/advtopo/app/static/layout.js): deterministic positions and panel fitting.
const test = require("node:test");
const assert = require("node:assert/strict");
const layout = require("../../src/advtopo/app/static/layout.js");

// a path n0 - n1 - n2 - n3, a triangle n4 n5 n6, an isolated n7 without a lens value, an edge to an unknown node
function graph() {
  const lens = [0.0, 0.2, 0.4, 0.6, 1.0, 0.9, 0.8, null];
  const nodes = lens.map((v, i) => ({ id: `n${i}`, size: 1 + i, members: [], mean_lens: v }));
  const edges = [[0, 1], [1, 2], [2, 3], [4, 5], [5, 6], [6, 4]].map(([a, b]) => ({ source: `n${a}`, target: `n${b}`, jaccard: 0.5 }));
  edges.push({ source: "n0", target: "gone", jaccard: 1 });
  return { nodes, edges };
}

const dist = (L, a, b) => Math.hypot(L.x[a] - L.x[b], L.y[a] - L.y[b]);

test("tickPlan: fewer ticks for bigger graphs, collisions only at the end of big ones", () => {
  assert.deepEqual(layout.tickPlan(0), { ticks: 300, late: 300 });
  assert.deepEqual(layout.tickPlan(400), { ticks: 300, late: 300 });
  assert.deepEqual(layout.tickPlan(401), { ticks: 50, late: 8 });
  assert.deepEqual(layout.tickPlan(1500), { ticks: 50, late: 8 });
  assert.deepEqual(layout.tickPlan(1501), { ticks: 40, late: 8 });
});

test("aspectBucket rounds log2(H / W) to -1, 0 or 1", () => {
  assert.equal(layout.aspectBucket(100, 100), 1);
  assert.equal(layout.aspectBucket(100, 130), 1);
  assert.equal(layout.aspectBucket(100, 300), 2);
  assert.equal(layout.aspectBucket(300, 100), 0.5);
  assert.equal(layout.aspectBucket(100, 10000), 2);
  assert.equal(layout.aspectBucket(10000, 100), 0.5);
});

test("lensSpan grows with the number of nodes, at least 200", () => {
  assert.equal(layout.lensSpan(0), 200);
  assert.equal(layout.lensSpan(1), 200);
  assert.ok(layout.lensSpan(100) > layout.lensSpan(10));
});

test("force layout: deterministic, finite, one position per node", () => {
  const a = layout.computeLayout(graph(), "force", 1), b = layout.computeLayout(graph(), "force", 1);
  assert.deepEqual([a.x, a.y], [b.x, b.y]);
  assert.equal(a.x.length, 8);
  assert.ok(a.x.concat(a.y).every(Number.isFinite));
  assert.equal(a.lensExtent, null);
  assert.ok(typeof a.ms === "number" && a.ms >= 0);
});

test("force layout: linked nodes end up closer than nodes of different components", () => {
  const L = layout.computeLayout(graph(), "force", 1);
  const linked = [[0, 1], [1, 2], [2, 3], [4, 5], [5, 6], [6, 4]].map(([a, b]) => dist(L, a, b));
  const apart = [[0, 4], [1, 5], [3, 6], [2, 5]].map(([a, b]) => dist(L, a, b));
  assert.ok(Math.max(...linked) < Math.min(...apart), `${linked} vs ${apart}`);
});

test("force layout: a tall panel gets a taller picture than a wide one", () => {
  const spread = (L, k) => Math.max(...L[k]) - Math.min(...L[k]);
  const tall = layout.computeLayout(graph(), "force", 2), wide = layout.computeLayout(graph(), "force", 0.5);
  assert.ok(spread(tall, "y") / spread(tall, "x") > spread(wide, "y") / spread(wide, "x"));
});

test("lens layout: x is the node's mean lens value; no value sits at the low end", () => {
  const L = layout.computeLayout(graph(), "lens", 1);
  assert.deepEqual(L.lensExtent, [0, 1]);
  graph().nodes.forEach((n, i) => {
    const want = n.mean_lens == null ? 0 : n.mean_lens;
    assert.ok(Math.abs(L.x[i] - want) < 1e-9, `node ${i}: ${L.x[i]} vs ${want}`);
  });
  assert.ok(L.y.every(Number.isFinite));
});

test("lens layout: one lens value for all nodes widens the axis by 0.5 each side", () => {
  const g = graph();
  g.nodes.forEach((n) => { n.mean_lens = 3; });
  const L = layout.computeLayout(g, "lens", 1);
  assert.deepEqual(L.lensExtent, [2.5, 3.5]);
  assert.ok(L.x.every((x) => Math.abs(x - 3) < 1e-9));
});

test("an empty graph lays out to nothing", () => {
  for (const kind of ["force", "lens"]) {
    const L = layout.computeLayout({ nodes: [], edges: [] }, kind, 1);
    assert.deepEqual([L.x, L.y], [[], []]);
  }
});

test("nodeRadii: rMax within [4, 24], rMin within [1.5, 4], smaller with more nodes", () => {
  let prev = Infinity;
  for (const n of [0, 1, 10, 100, 300, 301, 5000]) {
    const { rMax, rMin } = layout.nodeRadii(n, 600, 400);
    assert.ok(rMax >= 4 && rMax <= 24 && rMin >= 1.5 && rMin <= 4 && rMin <= rMax, `${n}: ${rMax} ${rMin}`);
    assert.ok(rMax <= prev);
    prev = rMax;
  }
  assert.deepEqual(layout.nodeRadii(0, 600, 400), layout.nodeRadii(1, 600, 400));
});

test("fitToPanel (force): everything inside the margins, same scale on both axes", () => {
  const L = layout.computeLayout(graph(), "force", 1), W = 500, H = 300, rMax = 10;
  const { fx, fy } = layout.fitToPanel(L, false, W, H, rMax);
  const pad = 8 + rMax, padB = rMax + 4;
  L.x.forEach((x, i) => {
    assert.ok(fx(x) >= pad - 1e-9 && fx(x) <= W - pad + 1e-9, `x ${fx(x)}`);
    assert.ok(fy(L.y[i]) >= pad - 1e-9 && fy(L.y[i]) <= H - padB + 1e-9, `y ${fy(L.y[i])}`);
  });
  const sx = (fx(L.x[1]) - fx(L.x[0])) / (L.x[1] - L.x[0]), sy = (fy(L.y[1]) - fy(L.y[0])) / (L.y[1] - L.y[0]);
  assert.ok(Math.abs(sx - sy) < 1e-9);
});

test("fitToPanel (force): a single node is centred", () => {
  const { fx, fy } = layout.fitToPanel({ x: [5], y: [-2], lensExtent: null }, false, 400, 200, 10);
  assert.equal(fx(5), 200);
  assert.equal(fy(-2), 18 + (200 - 18 - 14) / 2);
});

test("fitToPanel (lens): the lens range spans the width and fx is a scale (for the axis)", () => {
  const L = layout.computeLayout(graph(), "lens", 1), W = 500, H = 300, rMax = 10;
  const { fx, fy } = layout.fitToPanel(L, true, W, H, rMax);
  assert.equal(fx(0), 8 + rMax + 10);
  assert.equal(fx(1), W - (8 + rMax) - 10);
  assert.equal(typeof fx.invert, "function");
  assert.ok(L.y.every((y) => fy(y) >= 8 + rMax - 1e-9 && fy(y) <= H - (36 + rMax + 4) + 1e-9));
});

test("seedOf: a stable 32-bit number per string; different ids, different seeds", () => {
  assert.equal(layout.seedOf("cnn__relu3__pgd__0.1"), layout.seedOf("cnn__relu3__pgd__0.1"));
  assert.notEqual(layout.seedOf("a"), layout.seedOf("b"));
  for (const s of ["", "x", "ε", null]) { const v = layout.seedOf(s); assert.ok(Number.isInteger(v) && v >= 0 && v < 2 ** 32); }
});

test("a graph's layout depends on its seed only, not on how many panels show it", () => {
  // the app lays out every graph at aspect 1 with seedOf(id): the same positions whatever the panel size
  const seed = layout.seedOf("g1");
  const a = layout.computeLayout(graph(), "force", 1, { seed }), b = layout.computeLayout(graph(), "force", 1, { seed });
  assert.deepEqual(a.x, b.x); assert.deepEqual(a.y, b.y);
  const other = layout.computeLayout(graph(), "force", 1, { seed: layout.seedOf("g2") });
  assert.notDeepEqual(other.x, a.x);
  // fitted into a 1-panel (1200 x 700) and a 4-panel (600 x 350) cell: the same picture, scaled
  const f1 = layout.fitToPanel(a, false, 1200, 700, 10), f4 = layout.fitToPanel(a, false, 600, 350, 10);
  const rel = (f, W, H) => a.x.map((x, i) => [(f.fx(x) - W / 2), (f.fy(a.y[i]) - H / 2)]);
  const r1 = rel(f1, 1200, 700), r4 = rel(f4, 600, 350);
  const k = Math.hypot(r1[0][0] - r1[1][0], r1[0][1] - r1[1][1]) / Math.hypot(r4[0][0] - r4[1][0], r4[0][1] - r4[1][1]);
  r1.forEach(([x, y], i) => { for (let j = 0; j < r1.length; j++) {
    const d1 = Math.hypot(x - r1[j][0], y - r1[j][1]), d4 = Math.hypot(r4[i][0] - r4[j][0], r4[i][1] - r4[j][1]);
    assert.ok(Math.abs(d1 - k * d4) < 1e-6 * Math.max(1, d1));
  } });
});

test("applyPins moves pinned nodes only and leaves the layout itself alone", () => {
  const L = layout.computeLayout(graph(), "force", 1, { seed: 3 });
  const before = L.x.slice();
  const P = layout.applyPins(graph(), L, { n2: [100, -50], nope: [1, 1], n3: [NaN, 1] });
  assert.deepEqual([P.x[2], P.y[2]], [100, -50]);
  assert.equal(P.x[3], L.x[3]);
  assert.deepEqual(L.x, before);
  assert.equal(P.base, L);  // the panel is fitted to the unpinned layout
  assert.equal(layout.applyPins(graph(), L, {}), L);
});

// a graph with points: node k holds the clean rows of samples `members[k]`
function sweepGraph(members, edges) {
  const sample_id = [], is_adversarial = [];
  const nodes = members.map((ms, k) => ({ id: `m${k}`, size: ms.length, mean_lens: k, members: ms.map((s) => { sample_id.push(s); is_adversarial.push(false); return sample_id.length - 1; }) }));
  return { nodes, edges: edges.map(([a, b]) => ({ source: `m${a}`, target: `m${b}`, jaccard: 0.3 })), points: { sample_id, is_adversarial } };
}

test("matchNodes pairs nodes by shared members; alignedLayout keeps matched nodes where the reference has them", () => {
  const ref = sweepGraph([[1, 2, 3], [4, 5], [6, 7, 8]], [[0, 1], [1, 2]]);
  // the next eps: nodes in another order, one node split, one new node of unseen samples
  const g = sweepGraph([[6, 7], [1, 2, 3], [8], [4, 5, 9], [20, 21]], [[1, 3], [3, 0], [0, 2], [3, 4]]);
  const m = layout.matchNodes(g, ref);
  assert.deepEqual([...m.entries()].sort(), [[0, 2], [1, 0], [2, 2], [3, 1]]);
  const refL = layout.computeLayout(ref, "force", 1, { seed: 1 });
  const L = layout.alignedLayout(g, ref, refL, 5);
  assert.equal(L.aligned, 4);
  assert.deepEqual([L.x[1], L.y[1]], [refL.x[0], refL.y[0]]);
  assert.deepEqual([L.x[3], L.y[3]], [refL.x[1], refL.y[1]]);
  assert.deepEqual([L.x[0], L.y[0]], [refL.x[2], refL.y[2]]);
  assert.ok(Math.hypot(L.x[2] - refL.x[2], L.y[2] - refL.y[2]) <= 6 + 1e-9);  // shares its spot, a little aside
  assert.ok(L.x.every(Number.isFinite) && L.y.every(Number.isFinite));
  assert.equal(layout.alignedLayout(g, ref, refL, 5).x[4], L.x[4]);  // deterministic
});
