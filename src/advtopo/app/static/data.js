/* Data access: one interface over two sources, the local server's JSON API or the data the
 * static export embeds (window.ADVTOPO_EMBED), so every view works the same in both. */
(function (A) {
  "use strict";
  const S = A.store, EMBED = S.EMBED;
  const enc = encodeURIComponent;

  // the session token the server puts in index.html: requests that compute (feature visualisation,
  // embedding, recompute) are refused without it unless the browser marks them same-origin
  const tokenMeta = typeof document !== "undefined" ? document.querySelector('meta[name="advtopo-token"]') : null;
  const TOKEN = tokenMeta ? tokenMeta.getAttribute("content") : null;

  const api = {
    async json(url, opts) {
      opts = Object.assign({}, opts);
      if (TOKEN) opts.headers = Object.assign({ "X-Advtopo-Token": TOKEN }, opts.headers || {});
      const r = await fetch(url, opts);
      let body = null;
      try { body = await r.json(); } catch (e) { body = null; }
      if (!r.ok) throw new Error((body && body.error) || `${r.status} ${r.statusText}`);
      return body;
    },
  };

  /** The index.json key of a graph entry's adversarial images ("model/attack/eps"), or null. */
  function advKey(entry) {
    if (!entry || !(+entry.eps > 0)) return null;
    const adv = (S.index.images && S.index.images.adversarial) || {};
    for (const k of Object.keys(adv)) {
      const p = k.split("/");
      if (p.length === 3 && p[0] === entry.model && p[1] === entry.attack && Math.abs(+p[2] - +entry.eps) < 1e-12) return k;
    }
    return null;
  }

  const source = EMBED ? {
    mode: "static",
    index: async () => EMBED.index,
    graph: async (id) => { if (!EMBED.graphs[id]) throw new Error("graph not in this export"); return EMBED.graphs[id]; },
    vulnerability: async () => EMBED.vulnerability || { samples: [] },
    datapaths: async () => EMBED.datapaths || { available: false },
    image(sid, kind, g) {
      const im = EMBED.images || {};
      if (kind === "clean") return (im.clean || {})[sid] || null;
      const key = advKey(g);
      return key && im.adversarial && im.adversarial[key] ? im.adversarial[key][sid] || null : null;
    },
    csvUrl: null,
    // TopoAct's shapes as the export embeds them (full graphs); the flow is computed in the page (shape.js)
    shape: async (id) => (EMBED.shape || {})[id] || null,
    // the persistence diagrams the export embeds (export.py: per model and layer, the lowest and highest eps)
    diagram: async (key) => { const d = (EMBED.diagrams || {})[key]; if (!d) throw new Error("diagram not in this export"); return d; },
    shapeSummary: async () => ({ graphs: EMBED.index.graphs.filter((e) => (EMBED.shape || {})[e.id]).map((e) => ({ ...e, ...EMBED.shape[e.id] })) }),
    // per-row samples.parquet columns from the export's per-sample tables (static/export/payload.js)
    columns: async (id) => (EMBED.columns && A.payload && EMBED.graphs[id]
      ? A.payload.graphColumns(EMBED.graphs[id].points, S.entry.get(id), EMBED.columns) : { columns: {} }),
  } : {
    mode: "server",
    index: () => api.json("api/index"),
    graph: (id) => api.json("api/graph/" + encodeURIComponent(id)),
    vulnerability: () => api.json("api/vulnerability"),
    datapaths: () => api.json("api/datapaths"),
    diagram: (key) => api.json("api/diagram?key=" + encodeURIComponent(key)),
    image(sid, kind, g) {
      if (kind === "clean") return S.index.images && S.index.images.clean ? `api/image/clean/${sid}.png` : null;
      if (!advKey(g)) return null;
      return `api/image/adversarial/${enc(g.model)}/${enc(g.attack)}/${enc(String(g.eps))}/${sid}.png`;
    },
    csvUrl: (gid, nid) => `api/node/${enc(gid)}/${enc(nid)}/members.csv`,
    columns: (id) => fetch("api/columns/" + enc(id)).then((r) => (r.ok ? r.json() : { columns: {} })),
    featurevis: (gid, nid) => api.json(`api/featurevis/${enc(gid)}/${enc(nid)}`),
    embedding: (gid, method, signal) => api.json(`api/embedding/${enc(gid)}?method=${enc(method)}`, signal ? { signal } : undefined),
    recompute: (params) => api.json("api/recompute", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(params) }),
    recomputeJob: (id) => api.json("api/recompute/" + id),
    // TopoAct's views (topoact.js)
    flow: (from, to, rows) => api.json(`api/flow?from=${enc(from)}&to=${enc(to)}&rows=${enc(rows)}`),
    shape: (gid, minJaccard) => api.json(`api/shape/${enc(gid)}?min_jaccard=${enc(String(minJaccard || 0))}`),
    shapeSummary: () => api.json("api/shape-summary"),
    featurevisSample: (gid, sid, kind) => api.json(`api/featurevis-sample/${enc(gid)}/${enc(String(sid))}?kind=${enc(kind)}`),
  };

  /** Graph `id` (fetched once, then cached in the store). */
  async function loadGraph(id) {
    if (S.graphs.has(id)) return S.graphs.get(id);
    const t = performance.now();
    const g = await source.graph(id);
    A.timings["fetch:" + id] = performance.now() - t;
    g.nodes = g.nodes || []; g.edges = g.edges || [];
    Object.defineProperty(g, "_id", { value: id, enumerable: false });
    S.graphs.set(id, g);
    return g;
  }

  A.data = { source, loadGraph, advKey };
})(window.advtopo);
