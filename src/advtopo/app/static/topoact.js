/* TopoAct's views (Rathore et al., CGF 2021) in the page:
 * - the cross-layer view: selecting a node highlights, in every other panel showing the same
 *   samples (same model, attack, eps), the nodes its members lie in (opacity and outline in
 *   proportion to the share), and the node panel gets a small Sankey of where the node's
 *   members come from (previous layer) and go (next layer);
 * - the feature visualisation of one sample's own activation, beside the node-average one
 *   (node panel) and from the sample locator (server mode);
 * - a graph's loops (a cycle basis) and branch points, listed and highlightable (the ◯ button
 *   of a panel), and their counts vs attack eps in the Summary.
 * The numbers come from the server (/api/flow, /api/shape, /api/shape-summary: advtopo.mapper.shape);
 * the static export computes the flow in the page (shape.js) and embeds the shapes. */
(function (A) {
  "use strict";
  const S = A.store, state = S.state, GRAPHS = S.graphs, $ = S.$;
  const { fmt, esc } = A.format, SH = A.shape, { derive } = A.graphmodel;
  const DS = A.data.source;

  const rowsMode = () => (state.points === "both" ? "all" : state.points);
  const entry = (gid) => S.entry.get(gid) || {};

  // ------------------------------------------------------------------ flow between two graphs
  const FLOWS = new Map();  // "from|to|rows" -> Promise of the flow
  function getFlow(from, to, rows) {
    const key = `${from}|${to}|${rows}`;
    if (!FLOWS.has(key)) {
      const p = DS.flow ? DS.flow(from, to, rows)
        : Promise.all([A.data.loadGraph(from), A.data.loadGraph(to)]).then(([a, b]) => SH.crossLayerFlow(a, b, rows));
      FLOWS.set(key, p.catch((err) => { FLOWS.delete(key); throw err; }));
    }
    return FLOWS.get(key);
  }

  /** The panels showing the same samples as the selection (another graph of its model, attack and eps). */
  function linkedPanels(F) {
    const e = entry(F.gid);
    return state.panels.filter((p) => p.id !== F.gid && SH.sameSamples(entry(p.id), e));
  }

  /** Fetch the flows the linked panels need (once per panel and points mode); each answer renders again. */
  function ensureTargets() {
    const F = state.flow;
    if (!F) return;
    if (F.rows !== rowsMode()) { F.rows = rowsMode(); F.targets.clear(); }
    linkedPanels(F).forEach((p) => {
      if (F.targets.has(p.id)) return;
      F.targets.set(p.id, null);  // pending
      getFlow(F.gid, p.id, F.rows).then((fl) => {
        if (state.flow !== F || F.rows !== fl.rows) return;
        F.targets.set(p.id, fl);
        A.graphs.renderAll();
      }).catch((err) => {
        if (state.flow !== F) return;
        F.targets.set(p.id, err);
        S.toast(`cross-layer flow: ${err.message}`, true);
      });
    });
  }

  /** Called by graphs.js after it drew panel `p`'s nodes (`ng`: one <g> per node index): in a
   * panel linked to the selected node, each node's opacity and outline follow its share of the
   * selected node's members, and a line under the panel's title sums it up. */
  function decorate(p, g, ng) {
    const F = state.flow;
    let line = p.el.querySelector(".panel-flow");
    if (!line) {
      line = document.createElement("div"); line.className = "panel-flow";
      p.el.querySelector(".panel-loc").after(line);
    }
    line.textContent = ""; p.el.dataset.flow = "";
    if (!F || p.id === F.gid) return;
    ensureTargets();  // a new panel, or another points mode: fetched, then drawn again
    const fl = F.targets.get(p.id);
    if (!fl || fl instanceof Error) return;
    const out = new Map(SH.flowOut(fl, F.i).map((x) => [x.j, x]));
    ng.each(function (j) {
      const x = out.get(j), st = SH.shareStyle(x ? x.share : 0);
      this.style.opacity = st.opacity;
      this.classList.toggle("flow-target", !!x);
      this.dataset.share = x ? x.share.toFixed(4) : "0";
      d3.select(this).select(".ring").style("stroke", x ? "var(--flow)" : null).style("stroke-width", x ? st.ring : null);
    });
    const size = fl.from_size[F.i] || 0, lost = fl.unmapped[F.i] || 0;
    const se = entry(F.gid);
    line.innerHTML = `members of node <b>${esc(F.nid)}</b> (${esc(se.layer)}): ` + (size
      ? `in <b>${out.size}</b> node${out.size === 1 ? "" : "s"} here` + (lost ? ` · <b>${lost}</b> (${fmt(lost / size, 2)}) in none` : "")
      : `none of the ${esc(fl.rows)} rows shown`);
    p.el.dataset.flow = `${F.gid}|${F.nid}`;
  }

  // ------------------------------------------------------------------ node panel: Sankey + own activation
  /** Called by details.js once the node panel is drawn: starts the linked highlight and adds the
   * cross-layer card and, in server mode, the feature visualisation of one member's activation. */
  function nodeCards(box, gid, nid, inMode) {
    const g = GRAPHS.get(gid);
    const i = derive(g).nodeById.get(nid);
    state.flow = { gid, nid, i, rows: rowsMode(), targets: new Map() };
    ensureTargets();
    if (DS.featurevisSample) sampleFeatureVis(box, gid, inMode);
    const h = document.createElement("h4"); h.textContent = "Across layers (where the members come from and go)";
    const card = document.createElement("div"); card.id = "d-flow"; card.className = "flow-card";
    card.innerHTML = `<span class="muted">…</span>`;
    const after = box.querySelector(".members-by-class");
    const anchor = after ? after.previousElementSibling : null;  // its "Members by class" heading
    if (anchor) { box.insertBefore(h, anchor); box.insertBefore(card, anchor); } else { box.appendChild(h); box.appendChild(card); }
    flowCard(card, gid, i);
  }

  async function flowCard(card, gid, i) {
    const e = entry(gid), layers = S.index.layers && S.index.layers.length ? S.index.layers : S.uniq(S.index.graphs.map((x) => x.layer));
    const prev = SH.layerNeighbour(S.index.graphs, layers, e, -1), next = SH.layerNeighbour(S.index.graphs, layers, e, 1);
    if (!prev && !next) { card.innerHTML = `<span class="muted">no graph of the same samples at another layer in this ${S.EMBED ? "export" : "run"}</span>`; return; }
    const rows = rowsMode();
    let fin = null, fout = null;
    try {
      [fin, fout] = await Promise.all([prev ? getFlow(prev.id, gid, rows) : null, next ? getFlow(gid, next.id, rows) : null]);
    } catch (err) {
      if (card.isConnected) card.innerHTML = `<span class="muted">not available: ${esc(err.message)}</span>`;
      return;
    }
    if (!card.isConnected) return;
    const left = fin ? SH.flowIn(fin, i).map((x) => ({ id: fin.from_nodes[x.i], count: x.count })) : [];
    const right = fout ? SH.flowOut(fout, i).map((x) => ({ id: fout.to_nodes[x.j], count: x.count })) : [];
    if (fout && fout.unmapped[i]) right.push({ id: "∅", count: fout.unmapped[i] });
    const size = fout ? fout.from_size[i] : fin ? fin.to_size[i] : 0;
    const W = 300, H = 150, top = 6;
    const geo = SH.sankey(left, size, right, { width: W - 100, height: H, top });
    const svg = d3.select(card).html("").append("svg").attr("class", "sankey").attr("viewBox", `-48 -16 ${W} ${H + 24}`).attr("width", W).attr("height", H + 24);
    svg.append("text").attr("class", "col-label").attr("x", 0).attr("y", -5).text(prev ? prev.layer : "");
    svg.append("text").attr("class", "col-label").attr("x", geo.columns[1].x).attr("y", -5).attr("text-anchor", "middle").text(e.layer);
    svg.append("text").attr("class", "col-label").attr("x", geo.columns[2].x + 10).attr("y", -5).attr("text-anchor", "end").text(next ? next.layer : "");
    svg.append("g").selectAll("path").data(geo.links).join("path").attr("class", (l) => `link ${l.side}` + (l.id === "∅" ? " none" : ""))
      .attr("d", (l) => l.path).append("title").text((l) => `${l.side === "in" ? `from ${l.id ?? "other nodes"}` : l.id === "∅" ? "in no node" : `to ${l.id ?? "other nodes"}`}: ${l.count}`);
    const mid = geo.columns[1].bars[0];
    if (mid.span > mid.h + 0.5) {  // links need more room than the node's rows: rows lying in several nodes
      svg.append("rect").attr("class", "span").attr("x", geo.columns[1].x).attr("y", 0).attr("width", 10).attr("height", mid.span)
        .append("title").text("members lying in several nodes of the other layer count once per node");
    }
    geo.columns.forEach((c, k) => {
      const gcol = svg.append("g").attr("class", `col col${k}`);
      gcol.selectAll("rect").data(c.bars).join("rect").attr("x", c.x).attr("y", (b) => b.y).attr("width", 10).attr("height", (b) => Math.max(1, b.h))
        .attr("class", (b) => (b.id === "∅" ? "none" : k === 1 ? "self" : "")).attr("data-id", (b) => b.id ?? "")
        .append("title").text((b) => (b.id == null ? `${b.n} other nodes: ${b.count}` : b.id === "∅" ? `in no node: ${b.count}` : `${b.id === "node" ? "this node" : "node " + b.id}: ${b.count}`));
      if (k !== 1) {
        gcol.selectAll("text").data(c.bars.filter((b) => b.h >= 9)).join("text").attr("class", "bar-label")
          .attr("x", k === 0 ? c.x - 3 : c.x + 13).attr("y", (b) => b.y + b.h / 2 + 4).attr("text-anchor", k === 0 ? "end" : "start")
          .text((b) => (b.id == null ? `+${b.n}` : b.id === "∅" ? `∅ ${b.count}` : `${b.id} ${b.count}`));
      }
    });
    const note = document.createElement("div"); note.className = "hint";
    note.textContent = `${size} ${rows === "all" ? "" : rows + " "}member rows; bar = rows shared with a node of the other layer (rows in several nodes count in each); ∅ = in no node there.`;
    card.appendChild(note);
    const acts = document.createElement("div"); acts.className = "actions";
    [[prev, "◀ open previous layer"], [next, "open next layer ▶"]].forEach(([x, label]) => {
      if (!x) return;
      const b = document.createElement("button"); b.className = "btn small"; b.textContent = label; b.dataset.graph = x.id;
      b.disabled = state.panels.some((p) => p.id === x.id);
      b.addEventListener("click", () => { if (!state.panels.some((p) => p.id === x.id)) A.graphs.addPanel(x.id); b.disabled = true; });
      acts.appendChild(b);
    });
    card.appendChild(acts);
  }

  // one member's own activation, visualised (TopoAct's individual activation view)
  function sampleFeatureVis(box, gid, inMode) {
    const fv = box.querySelector("#d-fv");
    if (!fv || !inMode.length) return;
    const row = document.createElement("div"); row.className = "fv-row";
    fv.before(row); row.appendChild(fv);
    const own = document.createElement("div"); own.className = "fv fv-sample"; own.id = "d-fv-sample";
    const opts = inMode.slice(0, 500).map((m) => `<option value="${m.sample_id}|${m.adv ? "adversarial" : "clean"}">#${m.sample_id} ${esc(S.cname(m.label))}${m.adv ? " (adv)" : ""}</option>`).join("");
    own.innerHTML = `<div><div class="hint">one member's own activation</div><select id="d-fv-pick" title="the member whose activation is visualised">${opts}</select>
      <button class="btn small" id="d-fv-go">Visualise</button><div id="d-fv-out"></div></div>`;
    row.appendChild(own);
    own.querySelector("#d-fv-go").addEventListener("click", () => {
      const [sid, kind] = own.querySelector("#d-fv-pick").value.split("|");
      showSampleFV(own.querySelector("#d-fv-out"), gid, +sid, kind);
    });
  }

  function showSampleFV(out, gid, sid, kind) {
    out.innerHTML = `<span class="spinner"></span> <span class="muted">optimising…</span>`;
    DS.featurevisSample(gid, sid, kind).then((fv) => {
      if (!out.isConnected) return;
      if (!fv.available) { out.innerHTML = `<span class="muted">not available: ${esc(fv.reason || "")}</span>`; return; }
      out.innerHTML = `<img class="fv-img" src="${fv.png}" alt="feature visualisation of sample ${sid}" width="112" height="112">
        <div class="fv-cap">sample <b>#${sid}</b>'s own ${esc(fv.kind)} activation at <b>${esc(fv.layer)}</b>; cosine <b class="fv-cos">${fv.cosine.toFixed(2)}</b></div>`;
    }).catch((err) => { if (out.isConnected) out.innerHTML = `<span class="muted">not available: ${esc(err.message)}</span>`; });
  }

  /** Called by details.js each time the locator is drawn: under it, the located sample's own
   * activation can be visualised in one of the graphs shown (server mode). */
  function locateTools(sid) {
    let host = $("#locate-fv");
    if (!host) {
      host = document.createElement("div"); host.id = "locate-fv"; host.className = "locate-fv";
      $("#locate-info").after(host);
    }
    const holding = sid == null || !DS.featurevisSample ? [] : state.panels.filter((p) => GRAPHS.has(p.id) && derive(GRAPHS.get(p.id)).rowsBySample.has(sid));
    const key = `${sid}|${holding.map((p) => p.id).join(",")}`;
    if (host.dataset.key === key) return;
    host.dataset.key = key;
    if (!holding.length) { host.innerHTML = ""; return; }
    const opts = holding.flatMap((p) => {
      const g = GRAPHS.get(p.id), P = g.points || {};
      return derive(g).rowsBySample.get(sid).map((r) => {
        const kind = (P.is_adversarial || [])[r] ? "adversarial" : "clean";
        return `<option value="${esc(p.id)}|${kind}">${esc(S.graphLabel(entry(p.id)))} · ${kind}</option>`;
      });
    }).join("");
    host.innerHTML = `<div class="hint">its own activation, visualised:</div><select id="locate-fv-pick">${opts}</select>
      <button class="btn small" id="locate-fv-go">Visualise</button><div class="fv" id="locate-fv-out"></div>`;
    host.querySelector("#locate-fv-go").addEventListener("click", () => {
      const v = host.querySelector("#locate-fv-pick").value, k = v.lastIndexOf("|");
      showSampleFV(host.querySelector("#locate-fv-out"), v.slice(0, k), sid, v.slice(k + 1));
    });
  }

  // ------------------------------------------------------------------ loops and branch points
  /** The ◯ button of a panel's header (graphs.js calls this while building the header). */
  function panelTools(head, p) {
    if (!DS.shape) return;
    const b = document.createElement("button");
    b.className = "btn small ghost shape-toggle"; b.textContent = "◯";
    b.title = "Loops and branch points of this graph (TopoAct's shapes)";
    b.addEventListener("click", () => showShape(p.id));
    head.appendChild(b);
  }

  async function showShape(gid) {
    const box = $("#details");
    const mj = state.jaccard || 0;
    box.innerHTML = `<h2>Loops and branches</h2><div class="sub">${esc(S.graphLabel(entry(gid)))}</div><div id="shape-card"><span class="spinner"></span></div>`;
    const card = $("#shape-card");
    let sh, g;
    try {
      [sh, g] = await Promise.all([DS.shape(gid, mj), A.data.loadGraph(gid)]);
    } catch (err) {
      if (card.isConnected) card.innerHTML = `<span class="muted">not available: ${esc(err.message)}</span>`;
      return;
    }
    if (!card.isConnected) return;
    if (!sh) { card.innerHTML = `<span class="muted">not in this export</span>`; return; }
    const d = derive(g);
    const idx = (id) => d.nodeById.get(String(id));
    const usable = (skip) => (u) => d.adj[u].filter(([v, k]) => v !== skip && (g.edges[k].jaccard || 0) >= sh.min_jaccard);
    const method = sh.cycle_method === "minimum" ? "a minimum cycle basis (shortest loops)" : "the fundamental cycles of a breadth-first tree (the graph is too large for a minimum basis)";
    let html = `<div class="stat-grid">
      <div class="stat"><div class="k">loops</div><div class="v" id="shape-loops">${sh.n_loops}</div></div>
      <div class="stat"><div class="k">branch points</div><div class="v" id="shape-branches">${sh.n_branch_points}</div></div>
      <div class="stat"><div class="k">components</div><div class="v">${sh.n_components}</div></div></div>
      <div class="hint">${sh.n_nodes} nodes, ${sh.n_edges} edges with Jaccard ≥ ${fmt(sh.min_jaccard, 2)}${S.EMBED ? " (the export holds the shapes of the full graph)" : " (the slider's value when opened)"}.
      loops = cycle rank E − V + C, listed as ${method}; a branch point has degree ≥ 3, its branches are what is left connected when it is removed.</div>`;
    html += `<h4>Loops (${sh.n_loops}${sh.cycles_listed < sh.n_loops ? `, first ${sh.cycles_listed} listed` : ""}) <button class="btn small" id="shape-all-loops">highlight all</button></h4>`;
    html += `<table class="t shape-loops"><tr><th>#</th><th class="num">length</th><th>nodes</th></tr>` +
      sh.cycles.map((c, k) => `<tr data-k="${k}" tabindex="0"><td>${k + 1}</td><td class="num">${c.length}</td><td class="ids">${esc(c.nodes.slice(0, 12).join(" → "))}${c.nodes.length > 12 ? " …" : ""}</td></tr>`).join("") + `</table>`;
    html += `<h4>Branch points (${sh.n_branch_points}) <button class="btn small" id="shape-all-branches">highlight all</button></h4>`;
    html += `<table class="t shape-branches"><tr><th>node</th><th class="num">degree</th><th>branches: nodes (rows)</th></tr>` +
      sh.branch_points.map((bp, k) => `<tr data-k="${k}"><td><a href="#" class="bp-node">${esc(bp.node)}</a></td><td class="num">${bp.degree}</td><td>` +
        bp.branches.map((br, b) => `<button class="chip" data-b="${b}" title="highlight this branch (entered through ${esc(br.via.join(", "))})">${br.n_nodes} (${br.n_rows})</button>`).join("") + `</td></tr>`).join("") + `</table>`;
    card.innerHTML = html;
    const highlight = (nodes, edges, label) => {
      state.selected = null; state.flow = null;
      state.highlight = { gid, nodes: new Set(nodes), edges: new Set(edges), label };
      A.graphs.renderAll();
    };
    const loopSets = (c) => { const ns = c.nodes.map(idx); return [ns, SH.cycleEdges(usable(-1), ns)]; };
    card.querySelectorAll(".shape-loops tr[data-k]").forEach((tr) => {
      const go = () => { const [ns, es] = loopSets(sh.cycles[+tr.dataset.k]); highlight(ns, es, `loop of ${ns.length} nodes`); mark(tr); };
      tr.addEventListener("click", go);
      tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); go(); } });
    });
    $("#shape-all-loops").addEventListener("click", () => {
      const ns = [], es = [];
      sh.cycles.forEach((c) => { const [a, b] = loopSets(c); ns.push(...a); es.push(...b); });
      highlight(ns, es, "all loops");
    });
    const star = (bp) => { const u = idx(bp.node); const nb = usable(-1)(u); return [[u, ...nb.map(([v]) => v)], nb.map(([, k]) => k)]; };
    card.querySelectorAll(".shape-branches tr[data-k]").forEach((tr) => {
      const bp = sh.branch_points[+tr.dataset.k];
      tr.querySelector(".bp-node").addEventListener("click", (ev) => { ev.preventDefault(); const [ns, es] = star(bp); highlight(ns, es, `branch point ${bp.node}`); mark(tr); });
      tr.querySelectorAll(".chip").forEach((chip) => chip.addEventListener("click", () => {
        const br = bp.branches[+chip.dataset.b], u = idx(bp.node);
        const c = A.graphmodel.component(usable(u), idx(br.via[0]));
        const entryEdges = d.adj[u].filter(([v]) => c.nodes.has(v)).map(([, k]) => k);
        highlight([u, ...c.nodes], [...c.edges, ...entryEdges], `branch of ${bp.node}: ${br.n_nodes} nodes`);
        mark(tr);
      }));
    });
    $("#shape-all-branches").addEventListener("click", () => {
      const ns = [], es = [];
      sh.branch_points.forEach((bp) => { const [a, b] = star(bp); ns.push(...a); es.push(...b); });
      highlight(ns, es, "all branch points");
    });
  }
  function mark(tr) {
    tr.closest("#shape-card").querySelectorAll("tr.on").forEach((x) => x.classList.remove("on"));
    tr.classList.add("on");
  }

  // ------------------------------------------------------------------ Summary: counts vs eps
  /** Called by summary.js: one card per layer with loops and branch points vs attack eps. */
  function summaryCards(host, mcol, lineChart) {
    if (!DS.shapeSummary) return;
    const slot = document.createElement("div"); slot.id = "shape-summary"; slot.style.display = "contents";
    host.appendChild(slot);
    DS.shapeSummary().then((res) => {
      const rows = (res && res.graphs) || [];
      if (!rows.length) return;
      const sets = S.uniq(rows.map((r) => r.mapper_set || ""));
      S.uniq(rows.map((r) => r.layer)).forEach((layer) => {
        const c = A.summary.card(slot, `Loops and branch points vs attack ε — ${layer}`,
          `loops = cycle rank E − V + C of each graph; branch points = nodes of degree ≥ 3${S.EMBED ? " (the exported graphs only)" : ""}`);
        c.classList.add("shape-card"); c.dataset.layer = layer;
        const charts = document.createElement("div");
        const draw = (set) => {
          charts.innerHTML = "";
          [["n_loops", "loops"], ["n_branch_points", "branch points"]].forEach(([m, label]) => {
            const series = SH.shapeSeries(rows, layer, m, set).map((s) => ({ ...s, color: mcol(s.model) }));
            if (series.length) lineChart(charts, series, "attack ε", label);
          });
        };
        if (sets.length > 1) {  // one mapper set at a time: their lines would share the models' colours
          const pick = document.createElement("select"); pick.className = "shape-set"; pick.title = "mapper set";
          pick.innerHTML = sets.map((x) => `<option value="${esc(x)}">mapper set: ${esc(x || "(unnamed)")}</option>`).join("");
          pick.addEventListener("change", () => draw(pick.value));
          c.appendChild(pick);
        }
        c.appendChild(charts);
        draw(sets[0]);
      });
    }).catch((err) => { slot.innerHTML = `<div class="card hint">loops and branch points: ${esc(err.message)}</div>`; });
  }

  A.topoact = { decorate, nodeCards, locateTools, panelTools, showShape, summaryCards, getFlow };
})(window.advtopo);
