// What the views derive from a graph's JSON (src/advtopo/app/static/graphmodel.js).
const test = require("node:test");
const assert = require("node:assert/strict");
const gm = require("../../src/advtopo/app/static/graphmodel.js");

// rows 0-2 clean, 3-5 their adversarial versions (sample ids 0, 1, 2); row 5 is noise (in no node)
function graph() {
  return {
    nodes: [
      { id: "n0", members: [0, 1, 3], size: 3, mean_lens: 9, mean_l2: 4.5, class_hist: { 0: 2, 1: 1 } },
      { id: "n1", members: [1, 2, 4], size: 3, mean_lens: 9, mean_l2: 1.5, class_hist: { 1: 3 } },
      { id: "n2", members: [4], size: 1, mean_lens: 9, mean_l2: 2.0, class_hist: { 1: 1 } },
      { id: "n3", members: [2], size: 1, mean_lens: 9, mean_l2: 3.0, class_hist: { 1: 1 } },
    ],
    edges: [
      { source: "n0", target: "n1", jaccard: 0.2 },
      { source: "n1", target: "n2", jaccard: 0.3 },
      { source: "n2", target: "gone", jaccard: 1 },
    ],
    points: {
      sample_id: [0, 1, 2, 0, 1, 2],
      label: [0, 1, 1, 0, 1, 1],
      prediction: [0, 1, 1, 1, 0, 1],
      is_adversarial: [false, false, false, true, true, true],
      lens: [0.0, 0.5, 1.0, 0.1, 0.6, 1.1],
    },
    point_purity: [1.0, 0.5, null, 0.25, 0.75, null],
  };
}

test("derive: lookup tables, edges to unknown nodes dropped, computed once", () => {
  const g = graph();
  const d = gm.derive(g);
  assert.deepEqual([...d.nodeById], [["n0", 0], ["n1", 1], ["n2", 2], ["n3", 3]]);
  assert.deepEqual(d.adj, [[[1, 0]], [[0, 0], [2, 1]], [[1, 1]], []]);
  assert.deepEqual([...d.rowsBySample], [[0, [0, 3]], [1, [1, 4]], [2, [2, 5]]]);
  assert.deepEqual(d.nodesByRow.get(1), [0, 1]);
  assert.equal(d.nodesByRow.has(5), false);
  assert.equal(gm.derive(g), d);
});

test("nodeView (both): counts, histogram, fractions and means from the member rows", () => {
  const v = gm.nodeView(graph(), "both", 2);
  assert.deepEqual(v[0].hist, [2, 1]);
  assert.equal(v[0].count, 3);
  assert.equal(v[0].nAdv, 1);
  assert.equal(v[0].nMis, 1);  // row 3: label 0, predicted 1
  assert.ok(Math.abs(v[0].purity - 2 / 3) < 1e-12);
  assert.ok(Math.abs(v[0].frac_adversarial - 1 / 3) < 1e-12);
  assert.ok(Math.abs(v[0].mean_lens - 0.6 / 3) < 1e-12);
  assert.equal(v[0].mean_l2, 4.5);  // no l2 per row: the node's stored value
  assert.equal(v[0].dominant, 0);
  assert.equal(v[1].dominant, 1);
  assert.equal(v[1].nMis, 1);  // row 4: label 1, predicted 0
});

test("nodeView (clean / adversarial): only that kind of row counts; an empty node has zeros, not NaN", () => {
  const g = graph();
  const clean = gm.nodeView(g, "clean", 2), adv = gm.nodeView(g, "adversarial", 2);
  assert.deepEqual(clean.map((x) => x.count), [2, 2, 0, 1]);
  assert.deepEqual(adv.map((x) => x.count), [1, 1, 1, 0]);
  assert.equal(clean[0].nAdv, 0);
  assert.equal(adv[0].frac_adversarial, 1);
  const empty = clean[2];
  assert.deepEqual([empty.purity, empty.frac_adversarial, empty.frac_misclassified], [0, 0, 0]);
  assert.equal(empty.mean_lens, 9);  // no rows: the node's stored mean
  assert.deepEqual(empty.hist, [0, 0]);
  assert.notEqual(gm.nodeView(g, "clean", 2), gm.nodeView(g, "both", 2));
  assert.equal(gm.nodeView(g, "clean", 2), clean);  // cached
});

test("nodeView: labels beyond the class names extend the histogram without losing counts", () => {
  const g = { nodes: [{ id: "a", members: [0, 1, 2, 3] }], edges: [], points: { label: [5, 5, 4, 7], is_adversarial: [] } };
  const [x] = gm.nodeView(g, "both", 2);
  assert.deepEqual(x.hist, [0, 0, 0, 0, 1, 2, 0, 1]);
  assert.equal(x.dominant, 5);
  assert.equal(x.purity, 0.5);
});

test("nodeView: no class names still gives a histogram; without points the stored summaries are used", () => {
  const [x] = gm.nodeView({ nodes: [{ id: "a", members: [0] }], edges: [], points: { label: [0] } }, "both", 0);
  assert.deepEqual(x.hist, [1]);
  const g = { nodes: [{ id: "a", size: 4, class_hist: { 1: 3, 2: 1 }, frac_adversarial: 0.5, frac_misclassified: 0.26, mean_l2: 2 }], edges: [] };
  const [y] = gm.nodeView(g, "both", 3);
  assert.deepEqual(y.hist, [0, 3, 1]);
  assert.deepEqual([y.count, y.nAdv, y.nMis, y.purity, y.dominant, y.mean_l2], [4, 2, 1, 0.75, 1, 2]);
});

test("shortestPath and component follow the usable edges", () => {
  const g = graph(), d = gm.derive(g);
  const all = (i) => d.adj[i];
  const path = (a, b) => { const p = gm.shortestPath(all, a, b); return [p.nodes, p.edges.slice().sort()]; };
  assert.deepEqual(path(0, 2), [[0, 1, 2], [0, 1]]);
  assert.deepEqual(path(2, 0), [[2, 1, 0], [0, 1]]);
  assert.deepEqual(gm.shortestPath(all, 1, 1), { nodes: [1], edges: [] });
  assert.equal(gm.shortestPath(all, 0, 3), null);
  const c = gm.component(all, 2);
  assert.deepEqual([[...c.nodes].sort(), [...c.edges].sort()], [[0, 1, 2], [0, 1]]);
  assert.deepEqual([[...gm.component(all, 3).nodes], [...gm.component(all, 3).edges]], [[3], []]);
  // drop edge 1 (n1 - n2): n2 is cut off
  const some = (i) => d.adj[i].filter(([, k]) => k !== 1);
  assert.equal(gm.shortestPath(some, 0, 2), null);
  assert.deepEqual([...gm.component(some, 0).nodes].sort(), [0, 1]);
});

test("shortestPath finds the fewest edges when a longer route exists", () => {
  // square 0-1-2-3-0 plus a tail 2-4: from 0 to 4 via 1 or 3, then 2
  const adj = [[[1, 0], [3, 3]], [[0, 0], [2, 1]], [[1, 1], [3, 2], [4, 4]], [[2, 2], [0, 3]], [[2, 4]]];
  const p = gm.shortestPath((i) => adj[i], 0, 4);
  assert.equal(p.nodes.length, 4);
  assert.deepEqual([p.nodes[0], p.nodes[2], p.nodes[3]], [0, 2, 4]);
});

test("locateIn: the sample's rows, their nodes and point purity (stored, else from the nodes)", () => {
  const g = graph();
  const a = gm.locateIn(g, 1);
  assert.deepEqual([...a.nodeSet].sort(), [0, 1, 2]);
  assert.deepEqual(a.rows, [
    { row: 1, adv: false, nodes: ["n0", "n1"], purity: 0.5, pred: 1, label: 1 },
    { row: 4, adv: true, nodes: ["n1", "n2"], purity: 0.75, pred: 0, label: 1 },
  ]);
  const b = gm.locateIn(g, 2);  // row 2: no stored purity, nodes n1 (1 class) and n3 (1 class); row 5: noise
  assert.deepEqual(b.rows.map((r) => [r.row, r.nodes, r.purity]), [[2, ["n1", "n3"], 1], [5, [], null]]);
  assert.equal(gm.locateIn(g, 2), b);  // cached
  const none = gm.locateIn(g, 99);
  assert.deepEqual([none.nodeSet.size, none.rows], [0, []]);
});

test("locateIn: without stored point purity, the mean of 1 / classes over the row's nodes", () => {
  const g = graph();
  delete g.point_purity;
  const r = gm.locateIn(g, 1).rows[0];  // row 1 in n0 (2 classes) and n1 (1 class)
  assert.equal(r.purity, (0.5 + 1) / 2);
});

test("locateIn: a sample in no node is shown in its nearest node, only when that node is in the graph", () => {
  const g = { nodes: [{ id: "n0", members: [0] }, { id: "n1", members: [1] }], edges: [],
              points: { sample_id: [0, 1, 2], label: [0, 1, 1] } };
  const plain = gm.locateIn(g, 2);
  assert.deepEqual([plain.nodeSet.size, plain.nearest, plain.rows[0].nodes], [0, null, []]);
  const near = gm.locateIn(g, 2, "n1");
  assert.deepEqual([[...near.nodeSet], near.nearest], [[1], "n1"]);
  assert.equal(gm.locateIn(g, 2, "n9").nearest, null);  // another graph's node: nothing outlined
  assert.deepEqual([...gm.locateIn(g, 1, "n0").nodeSet], [1]);  // a covered sample keeps its own nodes
  assert.equal(gm.locateIn(g, 7, "n0").nodeSet.size, 0);  // not in the graph at all
});
