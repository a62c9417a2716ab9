// Pie geometry of a node's class composition (src/advtopo/app/static/pie.js).
const test = require("node:test");
const assert = require("node:assert/strict");
const d3 = require("../../src/advtopo/app/static/vendor/d3.min.js");
const { classParts, pieSlices, topParts } = require("../../src/advtopo/app/static/pie.js");

const TAU = 2 * Math.PI;

test("classParts keeps the positive counts in class order", () => {
  assert.deepEqual(classParts([0, 3, 0, 1]), [[1, 3], [3, 1]]);
  assert.deepEqual(classParts([NaN, -2, 4, 0]), [[2, 4]]);
  assert.deepEqual(classParts([]), []);
  assert.deepEqual(classParts(undefined), []);
  assert.deepEqual(classParts([0, 0]), []);
});

test("pieSlices: contiguous slices from 0 to 2π, proportional to the counts", () => {
  const s = pieSlices([[1, 3], [3, 1]]);
  assert.deepEqual(s.map((x) => x.cls), [1, 3]);
  assert.equal(s[0].startAngle, 0);
  assert.ok(Math.abs(s[0].endAngle - 0.75 * TAU) < 1e-12);
  assert.equal(s[1].startAngle, s[0].endAngle);
  assert.ok(Math.abs(s[1].endAngle - TAU) < 1e-12);
  assert.ok(s.every((x) => x.padAngle === 0));
});

test("pieSlices: one class is a full circle, none is no slice", () => {
  assert.deepEqual(pieSlices([[7, 5]]).map((x) => [x.startAngle, x.endAngle]), [[0, TAU]]);
  assert.deepEqual(pieSlices([]), []);
});

test("pieSlices matches d3.pie in data order (the angles the page drew before)", () => {
  const rnd = d3.randomLcg(3);
  for (let trial = 0; trial < 20; trial++) {
    const hist = Array.from({ length: 10 }, () => (rnd() < 0.4 ? 0 : Math.floor(rnd() * 50)));
    const parts = classParts(hist);
    const ref = d3.pie().sort(null).value((v) => v[1])(parts);
    const got = pieSlices(parts);
    assert.deepEqual(got.map((x) => [x.startAngle, x.endAngle]), ref.map((x) => [x.startAngle, x.endAngle]));
    // d3.arc draws them the same way
    const arc = d3.arc().innerRadius(0).outerRadius(10);
    assert.deepEqual(got.map(arc), ref.map(arc));
  }
});

test("topParts: the k largest, ties in class order", () => {
  assert.deepEqual(topParts([2, 5, 0, 5, 1], 3), [[1, 5], [3, 5], [0, 2]]);
  assert.deepEqual(topParts([2, 5], 10), [[1, 5], [0, 2]]);
  assert.deepEqual(topParts([2, 5], 0), []);
  assert.deepEqual(topParts([], 4), []);
});
