// Pure helpers of the activation-graph view (src/advtopo/app/static/actgraph.js).
const test = require("node:test");
const assert = require("node:assert/strict");
const { classifyEdges, vertexLayer, neuronPosition, longestBars } = require("../../src/advtopo/app/static/actgraph.js");

const LAYERS = [{ name: "input", start: 0, stop: 4 }, { name: "fc1", start: 4, stop: 6 }, { name: "fc2", start: 6, stop: 7 }];

test("classifyEdges: shared, clean-only and adversarial-only by (src, dst), with the Jaccard index", () => {
  const clean = [[0, 4, 0, 0.9, 0.5], [1, 5, 0, 0.8, 0.4], [4, 6, 1, 0.7, 0.3]];
  const adv = [[4, 6, 1, 0.6, 0.2], [2, 5, 0, 0.5, 0.1]];
  const m = classifyEdges(clean, adv);
  assert.deepEqual(m.edges.map((e) => [e.src, e.dst, e.cls]), [[0, 4, "clean"], [1, 5, "clean"], [4, 6, "shared"], [2, 5, "adversarial"]]);
  assert.deepEqual(m.counts, { shared: 1, clean: 2, adversarial: 1 });
  assert.equal(m.jaccard, 1 / 4);
  const shared = m.edges[2];
  assert.deepEqual(shared.clean, [0.7, 0.3]);
  assert.deepEqual(shared.adversarial, [0.6, 0.2]);
  assert.equal(m.edges[3].clean, null);
});

test("classifyEdges: empty and missing lists, duplicates counted once", () => {
  assert.deepEqual(classifyEdges([], []).counts, { shared: 0, clean: 0, adversarial: 0 });
  assert.equal(classifyEdges([], []).jaccard, null);
  assert.equal(classifyEdges(undefined, null).edges.length, 0);
  const same = [[0, 4, 0, 1, 1]];
  assert.equal(classifyEdges(same, same).jaccard, 1);
  assert.equal(classifyEdges([[0, 4, 0, 1, 1], [0, 4, 0, 1, 1]], []).edges.length, 1);
});

test("vertexLayer: the layer holding a vertex, -1 outside", () => {
  assert.deepEqual([0, 3, 4, 5, 6].map((v) => vertexLayer(v, LAYERS)), [0, 0, 1, 1, 2]);
  assert.equal(vertexLayer(7, LAYERS), -1);
  assert.equal(vertexLayer(-1, LAYERS), -1);
  assert.equal(vertexLayer(0, []), -1);
});

test("neuronPosition: evenly spaced columns, rank within the layer top to bottom", () => {
  const p0 = neuronPosition(0, LAYERS, 220, 100, 10);
  assert.equal(p0.x, 10);
  assert.equal(p0.y, 10 + (0.5 / 4) * 80);
  const p5 = neuronPosition(5, LAYERS, 220, 100, 10);
  assert.equal(p5.x, 110);
  assert.equal(p5.y, 10 + (1.5 / 2) * 80);
  assert.equal(p5.layer, 1);
  assert.equal(p5.index, 1);
  assert.equal(neuronPosition(6, LAYERS, 220, 100, 10).x, 210);
  assert.equal(neuronPosition(99, LAYERS, 220, 100, 10), null);
  assert.equal(neuronPosition(0, [{ start: 0, stop: 1 }], 220, 100, 10).x, 110);  // one layer: centred
});

test("longestBars: longest first, zero-length and non-finite bars dropped", () => {
  const b = longestBars([[1, 0.5], [2, 2], [3, 1], [0.9, 0.4], [NaN, 0]], 10);
  assert.deepEqual(b.map((x) => x.length), [2, 0.5, 0.5]);
  assert.deepEqual(b.map((x) => x.birth), [3, 1, 0.9]);  // ties: higher birth first
  assert.equal(longestBars([[3, 1], [1, 0]], 1).length, 1);
  assert.deepEqual(longestBars(null, 5), []);
});
