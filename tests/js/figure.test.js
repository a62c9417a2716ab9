// The pure parts of static/figure.js: what a figure says about its graph, its file name, the PNG's size.
const test = require("node:test");
const assert = require("node:assert");
const F = require("../../src/advtopo/app/static/figure.js");

test("identity names the graph and how it was built", () => {
  const lines = F.identityLines({
    id: "m__relu3__pgd__0.1", model: "lenet5_eps0.1", layer: "relu3", attack: "pgd", eps: 0.1, mapper_set: "default",
    params: { lens: "l2norm", cover: "uniform", n_intervals: 15, overlap: 0.5, metric: "cosine", clusterer: "dbscan",
      eps: 0.004055440425872803, min_samples: 5, eps_requested: "auto" },
  });
  assert.strictEqual(lines[0], "lenet5_eps0.1 · relu3 · pgd ε = 0.1");
  assert.strictEqual(lines[1], "lens l2norm · cover uniform 15 × 0.5 · dbscan eps 0.004055 (auto) min 5 · metric cosine · set default");
});

test("identity of a clean graph and of an entry without parameters", () => {
  assert.deepStrictEqual(F.identityLines({ model: "m", layer: "fc1", attack: "pgd", eps: 0 }), ["m · fc1 · pgd ε = 0"]);
  assert.deepStrictEqual(F.identityLines({ id: "g1" }), ["g1"]);
  assert.ok(F.identityLines({ model: "m", layer: "l", recomputed: true, params: { rows: "clean" } })[1].endsWith("rows clean · recomputed"));
});

test("file names keep only safe characters", () => {
  assert.strictEqual(F.fileName("lenet5_eps0.1__relu3__pgd__0.1", "svg"), "lenet5_eps0.1__relu3__pgd__0.1.svg");
  assert.strictEqual(F.fileName("Accuracy vs attack ε / x", "png"), "Accuracy_vs_attack_x.png");
  assert.strictEqual(F.fileName("../..", "svg"), "figure.svg");
  assert.strictEqual(F.fileName("", "png"), "figure.png");
});

test("the PNG has twice the SVG's size", () => {
  assert.strictEqual(F.PNG_SCALE, 2);
  assert.deepStrictEqual(F.pngSize(640.4, 300), { width: 1281, height: 600 });
});
