// The static export's payload (src/advtopo/app/static/export/payload.js): the 7-bit text, the
// pooled lists, the thumbnails' pixels (adversarial as differences from clean) and the per-row
// column values a graph gets from the per-sample tables (app/columns.py's rules).
const test = require("node:test");
const assert = require("node:assert/strict");
const pl = require("../../src/advtopo/app/static/export/payload.js");

test("from7bit: 7 bits per character, NUL / CR / '<' groups as U+0100 + value, the padding dropped", () => {
  // 0x00: groups 0000000 0(000000) -> both unsafe (0) -> U+0100 U+0100
  assert.deepEqual(Array.from(pl.from7bit("\u0100\u0100")), [0]);
  // '<' = 0x3C = 0011110 0(000000): groups 30, 0
  assert.deepEqual(Array.from(pl.from7bit("\x1e\u0100")), [0x3c]);
  // 7 bytes = 8 groups exactly: 0xFF x 7 -> 127 x 8
  assert.deepEqual(Array.from(pl.from7bit("\x7f".repeat(8))), [255, 255, 255, 255, 255, 255, 255]);
  // 0x0D 0x3C = 0000110 1001111 00(00000): groups 6, 79, 0
  assert.deepEqual(Array.from(pl.from7bit("\x06O\u0100")), [0x0d, 0x3c]);
  assert.throws(() => pl.from7bit("ab\u00e9"), /damaged/);
});

test("expandPool: increasing integer lists written as first + gaps are summed back", () => {
  assert.deepEqual(pl.expandPool([[0.5, 2], { d: [3, 2, 1, 34] }, { d: [] }]), [[0.5, 2], [3, 5, 6, 40], []]);
});

test("unpool: pooled lists come back as copies, row tables as objects", () => {
  const pool = [[1, 2, 3], [0.5, 0.25]];
  const x = { a: { "@pool": 0 }, b: { "@pool": 0 }, nodes: { "@rows": ["id", "members"], v: [["n0", { "@pool": 1 }], ["n1", [4]]] }, s: "keep", n: 3 };
  const got = pl.unpool(x, pool);
  assert.deepEqual(got, { a: [1, 2, 3], b: [1, 2, 3], nodes: [{ id: "n0", members: [0.5, 0.25] }, { id: "n1", members: [4] }], s: "keep", n: 3 });
  got.a.push(9);
  assert.deepEqual(got.b, [1, 2, 3]);  // each use its own copy: the app may change a list
  assert.deepEqual(pool[0], [1, 2, 3]);
});

test("tilePixels: a plain tile, and an adversarial one added back to its clean image mod 256", () => {
  // two 1x2 grey clean images (samples 5, 9), then one difference tile for sample 9
  const pixels = Uint8Array.from([10, 20, 250, 0, 10, 255]);
  const clean = { offset: 0, ids: [5, 9], h: 1, w: 2, c: 1 };
  const adv = { offset: 4, ids: [9], h: 1, w: 2, c: 1, base: "clean" };
  assert.deepEqual(Array.from(pl.tilePixels(pixels, clean, 1, null, null)), [250, 0]);
  const baseIndex = new Map([[5, 0], [9, 1]]);
  assert.deepEqual(Array.from(pl.tilePixels(pixels, adv, 0, clean, baseIndex)), [4, 255]);  // 250+10-256, 0+255
  assert.deepEqual(Array.from(pixels), [10, 20, 250, 0, 10, 255]);  // the payload is left as it was
  assert.throws(() => pl.tilePixels(pixels, adv, 0, clean, new Map()), /no clean image/);
  assert.throws(() => pl.tilePixels(pixels, clean, 2, null, null), /no tile 2/);
  assert.throws(() => pl.tilePixels(pixels.subarray(0, 5), adv, 0, clean, baseIndex), /truncated/);
});

test("toRGBA: grey, RGB and RGBA tiles", () => {
  assert.deepEqual(Array.from(pl.toRGBA(Uint8Array.from([3, 200]), 1)), [3, 3, 3, 255, 200, 200, 200, 255]);
  assert.deepEqual(Array.from(pl.toRGBA(Uint8Array.from([1, 2, 3]), 3)), [1, 2, 3, 255]);
  assert.deepEqual(Array.from(pl.toRGBA(Uint8Array.from([1, 2, 3, 4]), 4)), [1, 2, 3, 4]);
});

test("graphColumns: clean rows take eps 0, adversarial rows the graph's eps; first-fooled eps per sample", () => {
  const tables = {
    names: ["confidence", "correct"],
    sets: [
      { model: "m", attack: "pgd", eps: 0, sample_id: [0, 1, 2, 1], values: { confidence: [0.9, 0.8, 0.7, 0.1], correct: [1, 1, 0, 0] } },
      { model: "m", attack: "pgd", eps: 0.1, sample_id: [0, 1], values: { confidence: [0.4, null], correct: [0, 1] } },
      { model: "other", attack: "pgd", eps: 0.1, sample_id: [0, 1], values: { confidence: [0.01, 0.02], correct: [0, 0] } },
    ],
    first_fooled: [{ model: "m", attack: "pgd", sample_id: [0, 2], eps: [0.1, 0] }],
    first_fooled_name: "first_fooled_eps",
  };
  const points = { sample_id: [0, 1, 2, 0, 1, 2], is_adversarial: [false, false, false, true, true, true] };
  const got = pl.graphColumns(points, { model: "m", attack: "pgd", eps: 0.1000001 }, tables);
  assert.equal(got.n_rows, 6);
  assert.deepEqual(Object.keys(got.columns), ["confidence", "correct", "first_fooled_eps"]);
  // sample 1's second clean row is ignored (the first row counts); sample 2 has no eps-0.1 row; null stays null
  assert.deepEqual(got.columns.confidence, [0.9, 0.8, 0.7, 0.4, null, null]);
  assert.deepEqual(got.columns.correct, [1, 1, 0, 0, 1, null]);
  assert.deepEqual(got.columns.first_fooled_eps, [0.1, null, 0, 0.1, null, 0]);
  // a graph of a model the tables lack: every value null; no tables: no columns
  assert.deepEqual(pl.graphColumns(points, { model: "x", attack: "pgd", eps: 0.1 }, tables).columns.confidence, [null, null, null, null, null, null]);
  assert.deepEqual(pl.graphColumns(points, { model: "m", attack: "pgd", eps: 0.1 }, null).columns, {});
});
