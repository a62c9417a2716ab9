// Colour encodings (src/advtopo/app/static/colors.js), checked against d3 itself.
const test = require("node:test");
const assert = require("node:assert/strict");
const d3 = require("../../src/advtopo/app/static/vendor/d3.min.js");
const colors = require("../../src/advtopo/app/static/colors.js");

test("the attributes offered match the page's colour-by options", () => {
  assert.deepEqual(Object.keys(colors.ATTRS), ["frac_adversarial", "purity", "frac_misclassified", "mean_l2", "mean_lens"]);
  for (const k of ["frac_adversarial", "purity", "frac_misclassified"]) assert.deepEqual(colors.ATTRS[k].domain, [0, 1]);
  assert.equal(colors.ATTRS.mean_l2.domain, null);
  assert.deepEqual(colors.CMAP_NAMES, ["viridis", "plasma", "magma", "cividis", "turbo", "blues", "reds", "RdYlBu"]);
});

test("cmapInterpolator: d3's maps, RdYlBu reversed (blue = low), viridis for unknown names", () => {
  for (const t of [0, 0.3, 1]) {
    assert.equal(colors.cmapInterpolator("magma")(t), d3.interpolateMagma(t));
    assert.equal(colors.cmapInterpolator("RdYlBu")(t), d3.interpolateRdYlBu(1 - t));
    assert.equal(colors.cmapInterpolator("nope")(t), d3.interpolateViridis(t));
    assert.equal(colors.cmapInterpolator("toString")(t), d3.interpolateViridis(t));
    assert.equal(colors.cmapInterpolator(undefined)(t), d3.interpolateViridis(t));
  }
});

test("attrDomain: fixed domains ignore the data and are copies", () => {
  const d = colors.attrDomain("purity", [5, 7]);
  assert.deepEqual(d, [0, 1]);
  d[0] = 99;
  assert.deepEqual(colors.ATTRS.purity.domain, [0, 1]);
});

test("attrDomain: free domains span the finite values only", () => {
  assert.deepEqual(colors.attrDomain("mean_l2", [3, null, NaN, 1, Infinity, undefined, "2"]), [1, 3]);
  assert.deepEqual(colors.attrDomain("mean_lens", [-3, -1, -2]), [-3, -1]);
});

test("attrDomain: no values gives [0, 1]; one value is widened so the scale is not degenerate", () => {
  assert.deepEqual(colors.attrDomain("mean_l2", []), [0, 1]);
  assert.deepEqual(colors.attrDomain("mean_l2", [NaN, null]), [0, 1]);
  assert.deepEqual(colors.attrDomain("mean_l2", undefined), [0, 1]);
  assert.deepEqual(colors.attrDomain("mean_l2", [2, 2]), [2 - 1e-6, 2 + 1e-6]);
  assert.deepEqual(colors.attrDomain("mean_lens", [0]), [-1e-6, 1e-6]);
});

test("classPalette: Tableau10 up to 10 classes, 31 colours beyond", () => {
  assert.deepEqual(colors.classPalette(10), d3.schemeTableau10);
  assert.deepEqual(colors.classPalette(0), d3.schemeTableau10);
  const big = colors.classPalette(11);
  assert.equal(big.length, 10 + 12 + 9);
  assert.deepEqual(big.slice(0, 10), d3.schemeTableau10);
  assert.equal(d3.schemeTableau10.length, 10); // not mutated
});

test("classColor cycles through the palette and greys what is not a class index", () => {
  const pal = ["#a", "#b", "#c"];
  const col = colors.classColor(pal);
  assert.equal(col(0), "#a");
  assert.equal(col(2), "#c");
  assert.equal(col(3), "#a");
  assert.equal(col("1"), "#b");
  for (const bad of [-1, 1.5, NaN, "x", undefined]) assert.equal(col(bad), colors.NO_CLASS, String(bad));
  assert.equal(colors.classColor([])(0), colors.NO_CLASS);
});

test("eps colours darken with the attack strength", () => {
  assert.equal(colors.epsColorPosition(0, 1), 0.8);
  assert.equal(colors.epsColorPosition(0, 3), 0.42);
  assert.ok(Math.abs(colors.epsColorPosition(2, 3) - 0.95) < 1e-12);
  const ts = [0, 1, 2, 3].map((j) => colors.epsColorPosition(j, 4));
  for (let j = 1; j < ts.length; j++) assert.ok(ts[j] > ts[j - 1]);
  assert.equal(colors.epsColor(1, 4), d3.interpolateYlOrRd(ts[1]));
});
