// URL state (src/advtopo/app/static/urlstate.js): the #graphs= hash and the export's view settings.
const test = require("node:test");
const assert = require("node:assert/strict");
const u = require("../../src/advtopo/app/static/urlstate.js");

test("graphs hash round trip, ids with commas, spaces, %, & and # included", () => {
  const ids = ["cnn_std__fc1__pgd__0.1", "a,b", "with space", "100%", "x&y=z", "#hash", "ε"];
  const h = u.graphsHash(ids);
  assert.ok(h.startsWith("#graphs="));
  assert.deepEqual(u.parseGraphsHash(h), ids);
  assert.deepEqual(u.parseGraphsHash(u.graphsHash([])), []);
});

test("parseGraphsHash ignores what is not a graphs list", () => {
  assert.deepEqual(u.parseGraphsHash(""), []);
  assert.deepEqual(u.parseGraphsHash(undefined), []);
  assert.deepEqual(u.parseGraphsHash("#other=1"), []);
  assert.deepEqual(u.parseGraphsHash("#graphs="), []);
  assert.deepEqual(u.parseGraphsHash("#graphs=a,,b,"), ["a", "b"]);
  assert.deepEqual(u.parseGraphsHash("#x=1&graphs=a,b&y=2"), ["a", "b"]);
  assert.deepEqual(u.parseGraphsHash("#graphs=a,%E0%A4%A,b%20c"), ["a", "b c"]);  // malformed escape dropped
});

const FULL = { tab: "summary", layout: "lens", color: "mean_l2", cmap: "RdYlBu", points: "adversarial", size: "class:3",
  minSize: 4, jaccard: 0.25, search: 3, locate: 17, selected: { gid: "g", nid: "n0" }, align: true,
  pins: { "g": { n0: [1.5, -2], "n,1": [0, 3.2] }, "a,b": { "7": [10, 20] } },
  agg: "median", colorRange: [-1, 2.5], multi: { gid: "g", nids: ["n0", "n,1"] } };

test("view state round trip: what the export link sends comes back unchanged", () => {
  const state = Object.assign({ panels: [{ id: "g" }], highlight: { gid: "g" } }, FULL);
  const sent = u.viewState(state);
  assert.deepEqual(sent, FULL);
  assert.deepEqual(Object.keys(sent), u.VIEW_KEYS);
  assert.deepEqual(u.parseViewState(JSON.stringify(sent)), FULL);
  assert.deepEqual(u.parseViewState(sent), FULL);
  const cleared = Object.assign({}, FULL, { search: null, locate: null, color: "class", size: "members", selected: null, pins: {} });
  assert.deepEqual(u.parseViewState(JSON.stringify(cleared)), cleared);
});

test("parseViewState keeps the valid settings and drops bad ones and unknown keys", () => {
  const bad = { layout: "grid", color: "bogus", cmap: "toString", points: 3, size: "class:x", minSize: "5",
    jaccard: 2, search: -1, locate: "5", graphs: ["a"], panels: [], __proto__x: 1 };
  assert.deepEqual(u.parseViewState(bad), {});
  assert.deepEqual(u.parseViewState({ layout: "force", jaccard: -0.1, minSize: NaN, search: 1.5, cmap: "magma" }),
    { layout: "force", cmap: "magma" });
  assert.deepEqual(u.parseViewState({ jaccard: 0, minSize: 0, search: 0, locate: 0 }), { jaccard: 0, minSize: 0, search: 0, locate: 0 });
  assert.deepEqual(u.parseViewState({ color: "constructor" }), {});
  assert.deepEqual(u.parseViewState({ tab: "nope", align: 1, selected: { gid: 3, nid: "a" }, pins: [1] }), {});
  // pins: each bad entry dropped on its own, positions rounded to 0.1
  assert.deepEqual(u.parseViewState({ pins: { g: { a: [1.04, 2], b: [NaN, 1], c: [1], d: "x" }, h: 5, k: { z: [1, Infinity] } } }),
    { pins: { g: { a: [1, 2] } } });
  assert.deepEqual(u.parseViewState({ selected: { gid: "g", nid: 12 } }), { selected: { gid: "g", nid: "12" } });
});

test("the whole view in the hash: round trip with odd ids, and old #graphs= links still open", () => {
  const ids = ["cnn__relu3__pgd__0.1", "a,b", "x&view=y", "#h"];
  const h = u.viewHash(ids, Object.assign({ panels: [] }, FULL));
  assert.ok(h.startsWith("#graphs="));
  const back = u.parseViewHash(h);
  assert.deepEqual(back.graphs, ids);
  assert.deepEqual(back.view, FULL);
  // a second round trip gives the same hash (so writing it back is a no-op)
  assert.equal(u.viewHash(back.graphs, back.view), h);
  assert.deepEqual(u.parseViewHash("#graphs=a,b"), { graphs: ["a", "b"], view: {} });
  assert.deepEqual(u.parseViewHash("#graphs=a&view=%7Bbroken"), { graphs: ["a"], view: {} });
  assert.deepEqual(u.parseViewHash("#graphs=a&view=%E0%A4%A"), { graphs: ["a"], view: {} });
  assert.deepEqual(u.parseViewHash(""), { graphs: [], view: {} });
  assert.deepEqual(u.parseViewHash("#graphs=a&view=" + encodeURIComponent(JSON.stringify({ tab: "datapaths", layout: "grid" }))),
    { graphs: ["a"], view: { tab: "datapaths" } });
});

test("parseViewState: anything but an object (or its JSON) is no settings", () => {
  for (const s of [undefined, null, "", "not json", "5", "null", "[1,2]", "\"lens\"", 5, [], [FULL], true]) {
    assert.deepEqual(u.parseViewState(s), {}, JSON.stringify(s));
  }
});

test("exportUrl carries the graph ids and the view settings", () => {
  const state = Object.assign({ panels: [] }, FULL);
  const url = u.exportUrl(["a,b", "c"], state);
  assert.ok(url.startsWith("api/export.html?graphs=a%2Cb,c&state="));  // each id encoded, then joined by commas
  const q = new URLSearchParams(url.split("?")[1]);
  assert.deepEqual(JSON.parse(q.get("state")), FULL);
  assert.deepEqual(u.parseViewState(q.get("state")), FULL);
});
