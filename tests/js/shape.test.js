// TopoAct's derived views (src/advtopo/app/static/shape.js): cross-layer flow, shares, the
// neighbouring layer's graph, loop edges, the Sankey geometry and the Summary's series.
const test = require("node:test");
const assert = require("node:assert/strict");
const sh = require("../../src/advtopo/app/static/shape.js");

// The hand-built pair of tests/test_mapper_shape.py (layer_pair): 4 samples, clean rows then
// adversarial rows; layer B keeps its rows in another order and leaves s3 as noise.
function pair() {
  const A = {
    nodes: [{ id: "a", members: [0, 1, 2] }, { id: "b", members: [2, 3, 4] }, { id: "c", members: [5, 7] }],
    edges: [{ source: "a", target: "b", jaccard: 0.2 }],
    points: { sample_id: [0, 1, 2, 3, 0, 1, 2, 3], is_adversarial: [false, false, false, false, true, true, true, true] },
  };
  const B = {
    nodes: [{ id: "x", members: [3, 2] }, { id: "y", members: [2, 1, 4] }, { id: "z", members: [5, 6] }],
    edges: [{ source: "x", target: "y", jaccard: 0.25 }],
    points: { sample_id: [3, 2, 1, 0, 0, 1, 2, 3], is_adversarial: [false, false, false, false, true, true, true, true] },
  };
  return [A, B];
}

test("crossLayerFlow: the hand-built pair's counts, per kind of row", () => {
  const [A, B] = pair();
  const f = sh.crossLayerFlow(A, B);
  assert.deepEqual(f.from_nodes, ["a", "b", "c"]);
  assert.deepEqual(f.to_nodes, ["x", "y", "z"]);
  assert.deepEqual(f.from_size, [3, 3, 2]);
  assert.deepEqual(f.to_size, [2, 3, 2]);
  assert.deepEqual(f.flow, [[0, 0, 2], [0, 1, 2], [1, 1, 2], [2, 2, 1]]);
  assert.deepEqual(f.unmapped, [0, 1, 1]);
  assert.equal(f.n_matched_rows, 8);
  const clean = sh.crossLayerFlow(A, B, "clean");
  assert.deepEqual(clean.from_size, [3, 2, 0]);
  assert.deepEqual(clean.to_size, [2, 2, 0]);
  assert.deepEqual(clean.flow, [[0, 0, 2], [0, 1, 2], [1, 1, 1]]);
  assert.deepEqual(clean.unmapped, [0, 1, 0]);
  const adv = sh.crossLayerFlow(A, B, "adversarial");
  assert.deepEqual(adv.flow, [[1, 1, 1], [2, 2, 1]]);
  assert.deepEqual(adv.unmapped, [0, 0, 1]);
  assert.equal(adv.n_matched_rows, 4);
  assert.throws(() => sh.crossLayerFlow(A, B, "both"), /rows=both/);
});

test("crossLayerFlow: no points, no nodes, a sample absent from the other graph", () => {
  const A = { nodes: [{ id: "a", members: [0, 1] }], edges: [], points: { sample_id: [5, 6] } };
  const B = { nodes: [{ id: "x", members: [0] }], edges: [], points: { sample_id: [6] } };
  const f = sh.crossLayerFlow(A, B);
  assert.deepEqual(f.flow, [[0, 0, 1]]);
  assert.deepEqual(f.unmapped, [1]);  // sample 5 is not in B at all
  const empty = sh.crossLayerFlow({ nodes: [], edges: [] }, B);
  assert.deepEqual(empty.flow, []);
  assert.equal(empty.n_matched_rows, 0);
});

test("flowOut / flowIn: shares of the node's own rows, largest first", () => {
  const [A, B] = pair();
  const f = sh.crossLayerFlow(A, B);
  assert.deepEqual(sh.flowOut(f, 0), [{ j: 0, count: 2, share: 2 / 3 }, { j: 1, count: 2, share: 2 / 3 }]);
  assert.deepEqual(sh.flowOut(f, 2), [{ j: 2, count: 1, share: 0.5 }]);
  assert.deepEqual(sh.flowIn(f, 1), [{ i: 0, count: 2, share: 2 / 3 }, { i: 1, count: 2, share: 2 / 3 }]);
  assert.deepEqual(sh.flowIn(f, 0), [{ i: 0, count: 2, share: 1 }]);
  const none = { ...f, from_size: [0, 0, 0] };
  assert.equal(sh.flowOut(none, 0)[0].share, 0);  // no rows of that kind: share 0, not NaN
});

test("shareStyle: none is faint, all is opaque, out-of-range and NaN clamp", () => {
  assert.deepEqual(sh.shareStyle(0), { opacity: 0.12, ring: 0 });
  assert.deepEqual(sh.shareStyle(1), { opacity: 1, ring: 5 });
  assert.ok(Math.abs(sh.shareStyle(0.5).opacity - 0.65) < 1e-12 && sh.shareStyle(0.5).ring === 3);
  assert.deepEqual(sh.shareStyle(2), sh.shareStyle(1));
  assert.deepEqual(sh.shareStyle(NaN), sh.shareStyle(0));
  assert.deepEqual(sh.shareStyle(-1), sh.shareStyle(0));
  assert.ok(sh.shareStyle(0.01).opacity > sh.shareStyle(0).opacity);
});

test("layerNeighbour: same model, attack, eps, mapper set and rows at the next / previous layer", () => {
  const e = (model, layer, eps, extra = {}) => ({ id: `${model}_${layer}_${eps}_${extra.mapper_set || ""}`, model, layer, attack: "pgd", eps, ...extra });
  const graphs = [e("m", "l1", 0.1), e("m", "l2", 0.1), e("m", "l2", 0.3), e("n", "l3", 0.1), e("m", "l3", 0.1, { mapper_set: "adv" }),
    e("m", "l3", 0.1, { recomputed: true }), e("m", "l3", 0.1)];
  const layers = ["l1", "l2", "l3"];
  assert.equal(sh.layerNeighbour(graphs, layers, graphs[0], 1).id, "m_l2_0.1_");
  assert.equal(sh.layerNeighbour(graphs, layers, graphs[1], 1).id, "m_l3_0.1_");  // not n's, not the adv set's, not the recomputed one
  assert.equal(sh.layerNeighbour(graphs, layers, graphs[1], -1).id, "m_l1_0.1_");
  assert.equal(sh.layerNeighbour(graphs, layers, graphs[0], -1), null);
  assert.equal(sh.layerNeighbour(graphs, layers, graphs[4], -1), null);  // no l2 graph of the adv set
  assert.equal(sh.layerNeighbour(graphs, layers, graphs[2], 1), null);   // no l3 graph at eps 0.3
  assert.equal(sh.layerNeighbour(graphs, ["x"], graphs[0], 1), null);    // a layer not listed
  assert.ok(sh.sameSamples(graphs[0], graphs[1]) && !sh.sameSamples(graphs[1], graphs[2]));
});

test("cycleEdges: the edges around a loop, closing edge included", () => {
  // square 0-1-2-3 with a chord 0-2 (edges: 0:0-1, 1:1-2, 2:2-3, 3:3-0, 4:0-2)
  const E = [[0, 1], [1, 2], [2, 3], [3, 0], [0, 2]];
  const adj = (i) => E.map((e, k) => (e[0] === i ? [e[1], k] : e[1] === i ? [e[0], k] : null)).filter(Boolean);
  assert.deepEqual(sh.cycleEdges(adj, [0, 1, 2, 3]), [0, 1, 2, 3]);
  assert.deepEqual(sh.cycleEdges(adj, [0, 1, 2]), [0, 1, 4]);
  assert.deepEqual(sh.cycleEdges(adj, []), []);
});

test("sankey: one scale for all bars, the tallest column fits, the rest summed into 'other'", () => {
  const s = sh.sankey([{ id: "p", count: 6 }, { id: "q", count: 2 }], 10, [{ id: "x", count: 5 }, { id: "y", count: 3 }, { id: "z", count: 1 }],
    { width: 200, height: 108, gap: 4, top: 2 });
  const [L, M, R] = s.columns;
  assert.deepEqual(R.bars.map((b) => [b.id, b.count, b.n]), [["x", 5, 1], ["y", 3, 1], [null, 1, 1]]);
  assert.equal(M.bars[0].h, 10 * s.k);  // the node's column is the tallest (10 rows)
  assert.ok(Math.abs(s.k - (108 - 8) / 10) < 1e-12);  // height minus the gaps of the busiest side
  assert.equal(L.bars[1].y, 6 * s.k + 4);
  assert.equal(s.links.length, 5);
  assert.deepEqual(s.links.map((l) => l.side), ["in", "in", "out", "out", "out"]);
  assert.ok(s.links.every((l) => l.path.startsWith("M") && l.path.endsWith("Z") && !l.path.includes("NaN")));
  const nothing = sh.sankey([], 0, []);
  assert.equal(nothing.links.length, 0);
  assert.ok(Number.isFinite(nothing.k));
  // overlap: the outgoing counts may sum to more than the node's rows; the column grows to fit them
  const over = sh.sankey([], 2, [{ id: "x", count: 2 }, { id: "y", count: 2 }], { height: 100, gap: 0 });
  assert.equal(over.columns[1].bars[0].span, 100);
  assert.equal(over.columns[1].bars[0].h, 50);  // the node's own 2 rows, on the same scale
});

test("shapeSeries: per model (and set, when several), points sorted by eps", () => {
  const rows = [
    { model: "m", layer: "l", attack: "pgd", eps: 0.3, n_loops: 4, mapper_set: null },
    { model: "m", layer: "l", attack: "pgd", eps: 0, n_loops: 1, mapper_set: null },
    { model: "r", layer: "l", attack: "pgd", eps: 0, n_loops: 2, mapper_set: null },
    { model: "m", layer: "k", attack: "pgd", eps: 0, n_loops: 9, mapper_set: null },
  ];
  assert.deepEqual(sh.shapeSeries(rows, "l", "n_loops").map((s) => [s.name, s.pts]), [["m", [[0, 1], [0.3, 4]]], ["r", [[0, 2]]]]);
  const sets = rows.concat([{ model: "m", layer: "l", attack: "pgd", eps: 0, n_loops: 3, mapper_set: "adv" }]);
  assert.deepEqual(sh.shapeSeries(sets, "l", "n_loops").map((s) => s.name), ["m · default", "r · default", "m · adv"]);
  assert.deepEqual(sh.shapeSeries(sets, "l", "n_loops", "adv").map((s) => [s.name, s.pts]), [["m", [[0, 3]]]]);
  assert.deepEqual(sh.shapeSeries(sets, "l", "n_loops", "").map((s) => s.name), ["m", "r"]);
  assert.deepEqual(sh.shapeSeries(rows, "none", "n_loops"), []);
});
