// Selection and drill-down's pure parts (src/advtopo/app/static/selection.js).
const test = require("node:test");
const assert = require("node:assert/strict");
const sel = require("../../src/advtopo/app/static/selection.js");

// rows 0-2 clean, 3-5 adversarial versions of samples 10, 11, 12; row 3 fooled (0 -> 2), row 2 misclassified when clean
function graph() {
  return {
    nodes: [
      { id: "a", members: [0, 1, 3] },
      { id: "b", members: [1, 2, 4] },
      { id: "c,d", members: [5] },
    ],
    edges: [],
    points: {
      sample_id: [10, 11, 12, 10, 11, 12],
      label: [0, 1, 1, 0, 1, 1],
      prediction: [0, 1, 2, 2, 1, 1],
      is_adversarial: [false, false, false, true, true, true],
    },
  };
}

test("point in polygon: inside, outside, on a concave notch, degenerate", () => {
  const square = [[0, 0], [10, 0], [10, 10], [0, 10]];
  assert.equal(sel.pointInPolygon([5, 5], square), true);
  assert.equal(sel.pointInPolygon([15, 5], square), false);
  assert.equal(sel.pointInPolygon([-1, -1], square), false);
  const u = [[0, 0], [9, 0], [9, 9], [6, 9], [6, 3], [3, 3], [3, 9], [0, 9]];  // a U: the notch is outside
  assert.equal(sel.pointInPolygon([4.5, 6], u), false);
  assert.equal(sel.pointInPolygon([1.5, 6], u), true);
  assert.equal(sel.pointInPolygon([1, 1], [[0, 0], [5, 5]]), false);
  assert.equal(sel.pointInPolygon([1, 1], null), false);
});

test("aggregates ignore missing values; median of even and odd counts; unknown names refused", () => {
  assert.equal(sel.aggregate([1, 2, null, 6], "mean"), 3);
  assert.equal(sel.aggregate([5, 1, 3], "median"), 3);
  assert.equal(sel.aggregate([4, 1, 3, 2], "median"), 2.5);
  assert.equal(sel.aggregate([4, NaN, -1], "max"), 4);
  assert.equal(sel.aggregate([null, undefined], "mean"), null);
  assert.equal(sel.aggregate([], "max"), null);
  assert.throws(() => sel.aggregate([1], "sum"), /unknown aggregate sum: use one of mean, median, max/);
});

test("node aggregates count only the rows of the points mode", () => {
  const g = graph(), vals = [1, 2, 3, 10, 20, 30];
  assert.deepEqual(sel.nodeAggregates(g.nodes, g.points.is_adversarial, vals, "both", "mean"), [13 / 3, 25 / 3, 30]);
  assert.deepEqual(sel.nodeAggregates(g.nodes, g.points.is_adversarial, vals, "clean", "max"), [2, 3, null]);
  assert.deepEqual(sel.nodeAggregates(g.nodes, g.points.is_adversarial, vals, "adversarial", "median"), [10, 20, 30]);
});

test("selection rows: distinct rows of the selected nodes, with the nodes holding them, filtered", () => {
  const g = graph();
  const all = sel.selectionRows(g, [0, 1]);
  assert.deepEqual(all.map((m) => m.row), [0, 1, 2, 3, 4]);
  assert.deepEqual(all.find((m) => m.row === 1).nodes, ["a", "b"]);
  assert.deepEqual(sel.selectionRows(g, [0, 1], "both", "fooled").map((m) => m.row), [2, 3]);
  assert.deepEqual(sel.selectionRows(g, [0, 1], "both", "not_fooled").map((m) => m.row), [0, 1, 4]);
  assert.deepEqual(sel.selectionRows(g, [0, 1], "both", "adversarial").map((m) => m.row), [3, 4]);
  assert.deepEqual(sel.selectionRows(g, [0, 1], "both", "clean").map((m) => m.row), [0, 1, 2]);
  assert.deepEqual(sel.selectionRows(g, [0, 1], "adversarial", "fooled").map((m) => m.row), [3]);
  assert.throws(() => sel.selectionRows(g, [0], "both", "odd"), /unknown filter odd/);
});

test("row facts of brushed rows: every node holding the row, noise rows with none, filtered", () => {
  const g = graph();
  g.points.sample_id.push(13); g.points.label.push(2); g.points.prediction.push(0); g.points.is_adversarial.push(true);  // row 6: noise
  const f = sel.rowFacts(g, [6, 1, 1, 3]);
  assert.deepEqual(f.map((m) => [m.row, m.nodes]), [[1, ["a", "b"]], [3, ["a"]], [6, []]]);
  assert.deepEqual(sel.rowFacts(g, [6, 1, 3], "both", "fooled").map((m) => m.row), [3, 6]);
  assert.deepEqual(sel.rowFacts(g, [6, 1, 3], "clean").map((m) => m.row), [1]);
});

test("selection CSV: header, one line per row, quoted node ids, extra columns by row", () => {
  const g = graph();
  const csv = sel.selectionCsv("g1", sel.selectionRows(g, [1, 2]), { confidence: [0.1, 0.2, 0.3, 0.4, 0.5, null] });
  const lines = csv.trimEnd().split("\n");
  assert.equal(lines[0], "graph,row,sample_id,label,prediction,is_adversarial,nodes,confidence");
  assert.equal(lines.length, 1 + 4);
  assert.equal(lines[1], "g1,1,11,1,1,0,b,0.2");
  assert.equal(lines[3], "g1,4,11,1,1,1,b,0.5");
  assert.equal(lines[4], 'g1,5,12,1,1,1,"c,d",');
  assert.equal(sel.csvCell('say "hi"'), '"say ""hi"""');
});

test("histogram: equal-width bins, max in the last bin, constant values in one bin", () => {
  const h = sel.histogram([0, 1, 2, 3, 4, 10, null, NaN], 5);
  assert.deepEqual([h.lo, h.hi, h.n], [0, 10, 6]);
  assert.deepEqual(h.counts, [2, 2, 1, 0, 1]);
  assert.deepEqual(sel.histogram([2, 2, 2], 5).counts, [3]);
  assert.deepEqual(sel.histogram([], 5), { lo: null, hi: null, counts: [], n: 0 });
});

test("fooling flows: only true != predicted, most frequent first, split by kind", () => {
  const rows = [
    { label: 0, prediction: 2, adv: true }, { label: 0, prediction: 2, adv: false }, { label: 0, prediction: 2, adv: true },
    { label: 1, prediction: 1, adv: true }, { label: 3, prediction: 1, adv: true }, { label: 4, prediction: null, adv: true },
  ];
  assert.deepEqual(sel.foolingFlows(rows), [
    { label: 0, prediction: 2, n: 3, adv: 2, clean: 1 },
    { label: 3, prediction: 1, n: 1, adv: 1, clean: 0 },
  ]);
});

test("pages: clamped page numbers, the last page short, one page when empty", () => {
  const items = Array.from({ length: 50 }, (_, i) => i);
  const p = sel.pageOf(items, 2, 24);
  assert.deepEqual([p.page, p.pages, p.from, p.to, p.items.length], [2, 3, 48, 50, 2]);
  assert.equal(sel.pageOf(items, 9, 24).page, 2);
  assert.equal(sel.pageOf(items, -3, 24).page, 0);
  assert.deepEqual(sel.pageOf([], 0, 24), { items: [], page: 0, pages: 1, from: 0, to: 0 });
});

const u = require("../../src/advtopo/app/static/urlstate.js");

test("the URL carries a column colour / size, its aggregate and range, and the multi-selection", () => {
  const state = { color: "col:confidence", size: "col:first_fooled_eps", agg: "max", colorRange: [0, 0.5], multi: { gid: "g", nids: new Set(["a", "b,c"]), rows: null, filter: "fooled" } };
  const sent = u.viewState(state);
  assert.deepEqual(sent, { color: "col:confidence", size: "col:first_fooled_eps", agg: "max", colorRange: [0, 0.5], multi: { gid: "g", nids: ["a", "b,c"] } });
  assert.deepEqual(u.parseViewState(JSON.stringify(sent)), sent);
  // the embedding's brush selects rows: not a node selection, not carried
  assert.equal(u.viewState({ multi: { gid: "g", nids: new Set(["a"]), rows: new Set([1]) } }).multi, undefined);
  assert.deepEqual(u.parseViewState({ color: "col:", size: "col:a b", agg: "sum", colorRange: [1, 1] }), {});
  assert.deepEqual(u.parseViewState({ colorRange: [0, Infinity] }), {});
  assert.deepEqual(u.parseViewState({ colorRange: null, multi: null }), { colorRange: null, multi: null });
  assert.deepEqual(u.parseViewState({ multi: { gid: "g", nids: [] } }), {});
  assert.deepEqual(u.parseViewState({ multi: { gid: 1, nids: ["a"] } }), {});
  assert.deepEqual(u.parseViewState({ multi: { gid: "g", nids: [3, {}, "x"] } }), { multi: { gid: "g", nids: ["3", "x"] } });
});
