/* Pie geometry of a node's class composition: which classes it holds and the angle of each
 * slice (d3.pie with the classes in their own order). Pure: window.advtopo.pie in the page,
 * require() in Node's tests. */
(function (root, factory) {
  const api = factory();
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else (root.advtopo = root.advtopo || {}).pie = api;
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  /** [class, count] for every class with a positive count, in class order. */
  function classParts(hist) {
    const parts = [];
    (hist || []).forEach((v, c) => { if (v > 0) parts.push([c, v]); });
    return parts;
  }

  /** The slices of a pie over `parts`: {cls, value, startAngle, endAngle, padAngle} clockwise
   * from 12 o'clock, the angles proportional to the counts and summing to 2π. */
  function pieSlices(parts) {
    const total = parts.reduce((s, p) => s + p[1], 0);
    const k = total > 0 ? (2 * Math.PI) / total : 0;
    let a0 = 0;
    return parts.map(([cls, value]) => {
      const a1 = a0 + value * k;
      const slice = { cls, value, startAngle: a0, endAngle: a1, padAngle: 0 };
      a0 = a1;
      return slice;
    });
  }

  /** The `k` largest [class, count] parts, largest first (ties: lower class first). */
  function topParts(hist, k) {
    return classParts(hist).sort((a, b) => b[1] - a[1]).slice(0, k);
  }

  return { classParts, pieSlices, topParts };
});
