/* The node details panel (members by class, adversarial predictions, thumbnails, feature
 * visualisation, CSV) and the sample locator (outline a sample in every graph, the list of
 * the most vulnerable samples). */
(function (A) {
  "use strict";
  const S = A.store, state = S.state, GRAPHS = S.graphs, $ = S.$;
  const { fmt, esc } = A.format, { derive, locateIn } = A.graphmodel;
  const DS = A.data.source;
  const THUMB_LIMIT = 24;

  function nodeDetail(g, nid) {
    const i = derive(g).nodeById.get(nid);
    const n = g.nodes[i], P = g.points || {};
    const members = (n.members || []).map((r) => ({ row: r, sample_id: (P.sample_id || [])[r], label: (P.label || [])[r], prediction: (P.prediction || [])[r], adv: !!(P.is_adversarial || [])[r] }));
    return { i, n, members };
  }

  // the "Members by class" and "Adversarial predictions" tables
  function classTables(members) {
    const byClass = new Map();
    members.forEach((m) => { const b = byClass.get(m.label) || { c: m.label, clean: 0, adv: 0 }; m.adv ? b.adv++ : b.clean++; byClass.set(m.label, b); });
    const rows = [...byClass.values()].sort((a, b) => b.clean + b.adv - (a.clean + a.adv) || a.c - b.c);
    const maxB = d3.max(rows, (r) => r.clean + r.adv) || 1;
    const flowRows = A.selection.foolingFlows(members);
    let html = `<h4>Members by class</h4><table class="t members-by-class"><tr><th>class</th><th class="num">clean</th><th class="num">adv</th><th></th></tr>`;
    rows.forEach((r) => {
      html += `<tr data-class="${r.c}"><td><span class="bar" style="width:9px;background:${S.ccolor(r.c)};border-radius:50%"></span> ${esc(S.cname(r.c))}</td>
        <td class="num">${r.clean}</td><td class="num">${r.adv}</td>
        <td style="width:40%"><span class="bar" style="width:${(70 * r.clean) / maxB}%;background:${S.ccolor(r.c)}"></span><span class="bar adv" style="width:${(70 * r.adv) / maxB}%;background-color:${S.ccolor(r.c)}"></span></td></tr>`;
    });
    html += `</table>`;
    if (flowRows.length) {  // the off-diagonal of true -> predicted: where the fooled members went
      html += `<h4>Fooling flows (true → predicted, ${flowRows.length} pair${flowRows.length === 1 ? "" : "s"})</h4><table class="t flows"><tr><th>true</th><th>predicted</th><th class="num">adv</th><th class="num">clean</th></tr>`;
      flowRows.forEach((f) => { html += `<tr data-flow="${f.label}-${f.prediction}"><td>${esc(S.cname(f.label))}</td><td style="color:var(--adv)">${esc(S.cname(f.prediction))}</td><td class="num">${f.adv}</td><td class="num">${f.clean}</td></tr>`; });
      html += `</table>`;
    }
    return html;
  }

  // thumbnails: clean next to adversarial, per sample
  // which page and filter of the thumbnails (kept while the same node is shown)
  const THUMBS = { key: null, page: 0, filter: "all" };
  function thumbnails(g, e, inMode) {
    const keep = A.selection.memberFilter(THUMBS.filter);
    const sids = [...new Set(inMode.filter(keep).map((m) => m.sample_id))];
    const pg = A.selection.pageOf(sids, THUMBS.page, THUMB_LIMIT);
    THUMBS.page = pg.page;
    let html = `<h4>Samples (<span id="d-thumb-n">${sids.length}</span>) — clean | adversarial</h4>`;
    html += `<div class="thumb-tools"><select id="d-thumb-filter" title="which members' samples">${Object.keys(A.selection.FILTERS).map((f) => `<option value="${f}"${f === THUMBS.filter ? " selected" : ""}>${A.selection.FILTER_LABELS[f]}</option>`).join("")}</select>
      <button class="btn small ghost" id="d-thumb-prev" aria-label="previous page"${pg.page ? "" : " disabled"}>‹</button>
      <span id="d-thumb-page">${sids.length ? `${pg.from + 1}–${pg.to} of ${sids.length}` : "none"}</span>
      <button class="btn small ghost" id="d-thumb-next" aria-label="next page"${pg.page < pg.pages - 1 ? "" : " disabled"}>›</button></div><div class="thumbs">`;
    const d = derive(g), P = g.points || {};
    pg.items.forEach((sid) => {
      const rws = d.rowsBySample.get(sid) || [];
      const rc = rws.find((r) => !(P.is_adversarial || [])[r]), ra = rws.find((r) => !!(P.is_adversarial || [])[r]);
      const lab = (P.label || [])[rws[0]];
      const cimg = DS.image(sid, "clean", e), aimg = ra != null ? DS.image(sid, "adversarial", e) : null;
      const pc = rc != null ? (P.prediction || [])[rc] : null, pa = ra != null ? (P.prediction || [])[ra] : null;
      html += `<div class="pair" data-sid="${sid}" title="sample ${sid}: click to locate it in every graph"><div class="imgs">`;
      html += `<figure>${cimg ? `<img src="${cimg}" alt="clean ${sid}">` : ""}<figcaption class="${pc != null && pc !== lab ? "wrong" : ""}">${pc != null ? "→ " + esc(S.cname(pc)) : "clean"}</figcaption></figure>`;
      if (ra != null) html += `<figure>${aimg ? `<img src="${aimg}" alt="adversarial ${sid}">` : ""}<figcaption class="${pa !== lab ? "wrong" : ""}">→ ${esc(S.cname(pa))}</figcaption></figure>`;
      html += `</div><div class="sid">#${sid} · ${esc(S.cname(lab))}</div></div>`;
    });
    return html + `</div>`;
  }

  function wireThumbs(g, e, inMode) {
    const host = $("#d-thumbs");
    host.querySelectorAll("img").forEach((im) => im.addEventListener("error", () => { im.style.visibility = "hidden"; }));
    host.querySelectorAll(".pair").forEach((el) => el.addEventListener("click", () => locate(+el.dataset.sid)));
    const redo = () => { host.innerHTML = thumbnails(g, e, inMode); wireThumbs(g, e, inMode); };
    $("#d-thumb-filter").addEventListener("change", (ev) => { THUMBS.filter = ev.target.value; THUMBS.page = 0; redo(); });
    $("#d-thumb-prev").addEventListener("click", () => { THUMBS.page--; redo(); });
    $("#d-thumb-next").addEventListener("click", () => { THUMBS.page++; redo(); });
  }

  // small histograms of the members' lens, L2 and confidence (samples.parquet, server mode)
  function histograms(g, gid, inMode) {
    const P = g.points || {}, cols = A.samplecols.columns(gid) || {};
    const series = [["lens", P.lens], ["L2", P.l2], ["confidence", cols.confidence]];
    return series.filter(([, v]) => v && v.length).map(([name, v]) => histSvg(name, inMode.map((m) => v[m.row]))).join("") ||
      `<span class="muted">no per-row lens, L2 or confidence in this graph</span>`;
  }
  function histSvg(name, values) {
    const h = A.selection.histogram(values, 12);
    if (!h.n) return "";
    const W = 104, H = 36, bw = W / h.counts.length, top = Math.max(...h.counts);
    const bars = h.counts.map((c, k) => `<rect x="${(k * bw).toFixed(1)}" y="${(H - (H * c) / top).toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${((H * c) / top).toFixed(1)}" fill="#6b7280"><title>${c}</title></rect>`).join("");
    return `<figure class="hist" data-name="${esc(name)}" data-n="${h.n}"><svg width="${W}" height="${H}" role="img" aria-label="histogram of ${esc(name)}">${bars}</svg>` +
      `<figcaption>${esc(name)} <span class="muted">${fmt(h.lo)}–${fmt(h.hi)}, n=${h.n}</span></figcaption></figure>`;
  }

  function show(gid, nid) {
    const g = GRAPHS.get(gid), e = S.entry.get(gid) || {};
    const { i, n, members } = nodeDetail(g, nid);
    const box = $("#details");
    // the Points setting counts the same rows as the node's tooltip and size
    const inMode = members.filter((m) => A.selection.inMode(m.adv, state.points));
    const nAdv = inMode.filter((m) => m.adv).length;
    const nMis = inMode.filter((m) => m.prediction != null && m.prediction !== m.label).length;
    const key = `${gid}|${nid}|${state.points}`;
    if (THUMBS.key !== key) { THUMBS.key = key; THUMBS.page = 0; }
    let html = `<h2>Node ${esc(n.id)}</h2><div class="sub">${esc(S.graphLabel(e))}</div>`;
    html += `<div class="stat-grid">
      <div class="stat"><div class="k">members${state.points === "both" ? "" : ` (${esc(state.points)})`}</div><div class="v" id="d-size">${inMode.length}</div></div>
      <div class="stat"><div class="k">clean</div><div class="v">${inMode.length - nAdv}</div></div>
      <div class="stat"><div class="k">adversarial</div><div class="v adv">${nAdv}</div></div>
      <div class="stat"><div class="k">purity</div><div class="v">${fmt(n.purity)}</div></div>
      <div class="stat"><div class="k">misclassified</div><div class="v">${nMis}</div></div>
      <div class="stat"><div class="k">mean lens</div><div class="v">${fmt(n.mean_lens)}</div></div></div>`;
    html += `<div class="actions">`;
    if (DS.csvUrl) html += `<a class="btn small" id="d-csv" href="${DS.csvUrl(gid, nid)}" download>Members CSV</a>`;
    else html += `<button class="btn small" id="d-csv">Members CSV</button>`;
    html += `<button class="btn small" id="d-comp">Select component</button><button class="btn small" id="d-path">Shortest path to…</button></div>`;
    html += `<h4>Feature visualisation</h4><div class="fv" id="d-fv">`;
    html += DS.featurevis ? `<span class="spinner"></span> <span class="muted">optimising an image for the node's mean activation…</span>`
      : `<span class="muted">feature visualisation needs the model: open the run with <code>advtopo serve</code></span>`;
    html += `</div>`;
    html += classTables(inMode) + `<h4>Distributions</h4><div class="hists" id="d-hists">${histograms(g, gid, inMode)}</div>` + `<div id="d-thumbs">${thumbnails(g, e, inMode)}</div>`;
    box.innerHTML = html;
    wireThumbs(g, e, inMode);
    if (A.samplecols.columns(gid) == null) A.samplecols.load(gid).then((c) => { const h = $("#d-hists"); if (c && h && h.isConnected && THUMBS.key === key) h.innerHTML = histograms(g, gid, inMode); });
    box.querySelectorAll("img").forEach((im) => im.addEventListener("error", () => { im.style.visibility = "hidden"; }));
    if (!DS.csvUrl) $("#d-csv").addEventListener("click", () => {
      const lines = ["graph,node,row,sample_id,label,prediction,is_adversarial"].concat(members.map((m) => [gid, nid, m.row, m.sample_id, m.label, m.prediction, m.adv ? 1 : 0].join(",")));
      const a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([lines.join("\n") + "\n"], { type: "text/csv" }));
      a.download = `${gid}_${nid}_members.csv`; a.click();
    });
    if (DS.featurevis) {
      const fvBox = $("#d-fv");
      DS.featurevis(gid, nid).then((fv) => {
        if (!fvBox.isConnected) return;  // another node was opened meanwhile
        if (!fv.available) { fvBox.innerHTML = `<span class="muted">not available: ${esc(fv.reason || "")}</span>`; return; }
        fvBox.innerHTML = `<img class="fv-img" src="${fv.png}" alt="feature visualisation of node ${esc(nid)}" width="112" height="112">
          <div class="fv-cap">the input whose <b>${esc(fv.layer)}</b> activation (${esc(fv.summary)}) points along the node's mean activation
          over its ${fv.n_rows} ${esc(fv.rows)} members; cosine <b id="d-fv-cos">${fv.cosine.toFixed(2)}</b></div>`;
      }).catch((err) => {
        if (fvBox.isConnected) fvBox.innerHTML = `<span class="muted">not available: ${esc(err.message)}</span>`;
      });
    }
    $("#d-comp").addEventListener("click", () => A.graphs.selectComponent(gid, i));
    $("#d-path").addEventListener("click", () => { state.pathPending = true; S.toast("click another node in the same graph (or Alt-click)"); });
    if (A.topoact) A.topoact.nodeCards(box, gid, nid, inMode);  // cross-layer flow, one member's activation (topoact.js)
  }

  // ------------------------------------------------------------------ locator
  function locate(sid) {
    if (sid == null || Number.isNaN(sid)) return;
    state.locate = sid;
    $("#locate-input").value = sid;
    document.querySelectorAll(".vuln").forEach((el) => el.classList.toggle("on", +el.dataset.sid === sid));
    A.graphs.renderAll();
    A.controls.showTab("graphs");
  }
  function renderLocatePanels() {
    const info = $("#locate-info");
    state.panels.forEach((p) => {
      const el = p.el && p.el.querySelector(".panel-loc");
      if (!el) return;
      if (state.locate == null || !GRAPHS.has(p.id)) { el.textContent = ""; return; }
      const L = locateIn(GRAPHS.get(p.id), state.locate, nearestNode(p.id, state.locate));
      if (!L.rows.length) { el.textContent = `sample ${state.locate}: not in this graph`; return; }
      el.innerHTML = L.rows.map((r) => `${r.adv ? "adversarial" : "clean"} in <b>${r.nodes.length}</b> node${r.nodes.length === 1 ? "" : "s"}` +
        (r.nodes.length ? ` (point purity ${fmt(r.purity)})` : L.nearest ? ` (noise; its nearest node ${esc(L.nearest)} is outlined)` : " (noise)") +
        (r.pred != null ? `, predicted ${esc(S.cname(r.pred))}` : "")).join(" · ");
      el.dataset.located = [...L.nodeSet].map((i) => GRAPHS.get(p.id).nodes[i].id).join(",");
    });
    if (A.topoact) A.topoact.locateTools(state.locate);  // the located sample's own activation (topoact.js)
    if (state.locate == null) { info.innerHTML = ""; return; }
    const sid = state.locate;
    const anyG = state.panels.map((p) => GRAPHS.get(p.id)).find((g) => g && derive(g).rowsBySample.has(sid));
    const lab = anyG ? (anyG.points.label || [])[derive(anyG).rowsBySample.get(sid)[0]] : null;
    // an id outside the run asks for no image (its 404 was a console error)
    const n = ((S.index || {}).dataset || {}).n_samples;
    const inRun = !(Number.isInteger(n) && (sid < 0 || sid >= n));
    const img = inRun ? DS.image(sid, "clean", null) : null;
    info.innerHTML = (img ? `<img src="${img}" alt="sample ${sid}">` : "") +
      `<div><b>sample ${sid}</b>${lab != null ? ` · ${esc(S.cname(lab))}` : ""}</div>` +
      `<div class="hint">${anyG ? "outlined in every graph that holds it" : inRun ? "not in the graphs shown" : `not in this run (its sample ids are 0–${n - 1})`}</div><div style="clear:both"></div>`;
    const im = info.querySelector("img"); if (im) im.addEventListener("error", () => im.remove());
    if (A.actgraph) A.actgraph.decorateLocator(info, sid);  // "Activation graph" button (actgraph.js)
  }

  // vulnerability.json's nearest nodes of noise samples, for its graph only: graph id -> sid -> node id
  const NEAREST = new Map();
  function nearestNode(gid, sid) { const m = NEAREST.get(gid); return m ? m.get(sid) ?? null : null; }

  const SCORE_HELP = "Vulnerability score: the mean, over the mapper nodes holding the clean sample, of the fraction " +
    "of members of another class (a sample in no node is scored from its nearest covered sample's nodes). " +
    "Higher = closer to other classes in this layer; ties are broken by k-NN class disagreement.";

  async function loadVulnerable() {
    let v;
    try { v = await DS.vulnerability(); } catch (e) { v = { samples: [] }; }
    const all = (v && Array.isArray(v.samples) ? v.samples : []).filter((s) => s && s.sample_id != null);
    if (v && v.graph) NEAREST.set(v.graph, new Map(all.filter((s) => s.noise && s.nearest_node).map((s) => [+s.sample_id, s.nearest_node])));
    // the stage's order (misclassified-when-clean last, ties broken); older files: by score
    const list = (all.some((s) => "clean_correct" in s) ? all : [...all].sort((a, b) => (b.score ?? -Infinity) - (a.score ?? -Infinity))).slice(0, 100);
    const host = $("#vuln-list");
    if (!list.length) { host.innerHTML = `<div class="hint">none in this run (vulnerability.json)</div>`; return; }
    host.innerHTML = "";
    const head = document.createElement("div");
    head.className = "hint vuln-verdict";
    head.textContent = vulnerabilityVerdict(v);
    if (head.textContent) host.appendChild(head);
    list.forEach((s, k) => {
      const el = document.createElement("div");
      el.className = "vuln" + (s.clean_correct === false ? " flagged" : ""); el.dataset.sid = s.sample_id;
      el.tabIndex = 0;
      el.title = SCORE_HELP;
      const img = DS.image(s.sample_id, "clean", null);
      const pred = s.prediction != null && s.prediction !== s.label ? ` → ${esc(S.cname(s.prediction))}` : "";
      el.innerHTML = `<span class="rk">${k + 1}</span>${img ? `<img src="${img}" alt="">` : ""}<div class="meta"><div><b>#${esc(s.sample_id)}</b>${s.label != null ? " · " + esc(S.cname(s.label)) + pred : ""}</div>` +
        `<div class="s">score ${fmt(s.score, 3)}${s.fooled_at != null ? ` · first fooled at ε=${esc(s.fooled_at)}` : " · never fooled"}` +
        `${s.noise ? " · noise" : ""}${s.clean_correct === false ? " · misclassified when clean" : ""}</div></div>`;
      el.addEventListener("click", () => locate(+s.sample_id));
      el.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); locate(+s.sample_id); } });
      const im = el.querySelector("img"); if (im) im.addEventListener("error", () => { im.style.visibility = "hidden"; });
      host.appendChild(el);
    });
  }

  /** One line: does the mapper score beat the clean margin at the headline eps (same samples)? */
  function vulnerabilityVerdict(v) {
    if (!v || !v.methods || v.auc_eps == null) return "";
    const keys = Object.keys((v.methods.mapper || {}).auc_by_eps || {});
    const key = keys.find((k) => Math.abs(+k - v.auc_eps) < 1e-6);  // the study writes eps keys with %g
    if (key == null) return "";
    const cell = (m) => ((v.methods[m] || {}).auc_by_eps || {})[key] || {};
    const a = cell("mapper"), b = cell("margin");
    if (a.auc == null || b.auc == null) return "";
    const verdict = v.beats_margin ? "beats" : "does not beat";
    return `At ε=${key}: mapper score AUC ${fmt(a.auc, 2)} [${fmt(a.lo, 2)}, ${fmt(a.hi, 2)}] ${verdict} the clean ` +
      `softmax margin's ${fmt(b.auc, 2)} [${fmt(b.lo, 2)}, ${fmt(b.hi, 2)}]` + (cell("mapper+margin").auc != null ?
      `; combined ${fmt(cell("mapper+margin").auc, 2)}` : "") + ".";
  }

  A.details = { show, locate, renderLocatePanels, loadVulnerable, nearestNode };
})(window.advtopo);
