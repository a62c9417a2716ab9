/* Colour encodings: the node attributes a colour map can show, the colour maps, the class
 * palette and the colour of an attack eps. Pure (d3's interpolators and schemes only):
 * window.advtopo.colors in the page, require() in Node's tests. */
(function (root, factory) {
  if (typeof module !== "undefined" && module.exports) module.exports = factory(require("./vendor/d3.min.js"));
  else (root.advtopo = root.advtopo || {}).colors = factory(root.d3);
})(typeof self !== "undefined" ? self : this, function (d3) {
  "use strict";

  /** Node attributes "colour nodes by" offers besides the class pie: label and fixed domain (null: the data's range). */
  const ATTRS = {
    frac_adversarial: { label: "fraction adversarial", domain: [0, 1] },
    purity: { label: "purity", domain: [0, 1] },
    frac_misclassified: { label: "misclassification rate", domain: [0, 1] },
    mean_l2: { label: "mean L2 norm", domain: null },
    mean_lens: { label: "mean lens value", domain: null },
  };

  const CMAPS = {
    viridis: d3.interpolateViridis, plasma: d3.interpolatePlasma, magma: d3.interpolateMagma,
    cividis: d3.interpolateCividis, turbo: d3.interpolateTurbo, blues: d3.interpolateBlues,
    reds: d3.interpolateReds, RdYlBu: (t) => d3.interpolateRdYlBu(1 - t),
  };
  const CMAP_NAMES = Object.keys(CMAPS);

  /** The interpolator of a colour map name (viridis for an unknown name). RdYlBu runs blue to red. */
  function cmapInterpolator(name) {
    return Object.prototype.hasOwnProperty.call(CMAPS, name) ? CMAPS[name] : d3.interpolateViridis;
  }

  /** The domain of a sequential colour scale for `attr`: its fixed domain, else the range of the
   * finite values (widened a little when they are all equal, [0, 1] when there are none). */
  function attrDomain(attr, values) {
    const a = ATTRS[attr];
    if (a && a.domain) return a.domain.slice();
    const vals = (values || []).filter((v) => v != null && isFinite(v)).map(Number);
    if (!vals.length) return [0, 1];
    let lo = Infinity, hi = -Infinity;
    for (const v of vals) { if (v < lo) lo = v; if (v > hi) hi = v; }
    return lo === hi ? [lo - 1e-6, hi + 1e-6] : [lo, hi];
  }

  /** The class palette: Tableau10 up to 10 classes, then Set3 and Pastel1 appended. */
  function classPalette(nClasses) {
    return nClasses <= 10 ? d3.schemeTableau10.slice() : d3.schemeTableau10.concat(d3.schemeSet3, d3.schemePastel1);
  }

  const NO_CLASS = "#999";

  /** class index -> colour, cycling through `palette`; grey for what is not a class index. */
  function classColor(palette) {
    return (c) => {
      const k = +c;
      return Number.isInteger(k) && k >= 0 && palette.length ? palette[k % palette.length] : NO_CLASS;
    };
  }

  /** Where on YlOrRd the j-th of n attack eps sits (stronger attack: darker). */
  function epsColorPosition(j, n) {
    return n === 1 ? 0.8 : 0.42 + (0.53 * j) / (n - 1);
  }

  function epsColor(j, n) {
    return d3.interpolateYlOrRd(epsColorPosition(j, n));
  }

  return { ATTRS, CMAP_NAMES, NO_CLASS, cmapInterpolator, attrDomain, classPalette, classColor, epsColorPosition, epsColor };
});
