/* The Summary tab: the report link, accuracy and class mixing against attack eps, the
 * persistence charts (clean vs adversarial diagram distances, diagrams, heatmaps of every
 * stored matrix) and the per-graph statistics table. Also the chart helpers the datapaths
 * view reuses (card). */
(function (A) {
  "use strict";
  const S = A.store, $ = S.$;
  const { fmt, esc, statCell } = A.format;
  const DS = A.data.source;

  function render() {
    const host = $("#summary");
    if (host.dataset.done) return;
    host.dataset.done = "1";
    host.innerHTML = "";
    const models = S.uniq(S.index.graphs.map((g) => g.model).concat((S.index.models || []).map((m) => m.name)));
    const mcol = d3.scaleOrdinal(models, d3.schemeTableau10);
    // the report of `advtopo report RUN` (served from RUN/report/ by the app's server)
    if (S.index.app && S.index.app.mode === "server") {
      const r = card(host, "Report", "", true);
      r.id = "report-link";
      r.insertAdjacentHTML("beforeend", S.index.app.report
        ? `<a href="report/report.html" target="_blank" rel="noopener">Open the report</a> — each paper's claim, its figure, and whether it holds on this run (with 95% CIs)`
        : `<span class="hint">No report yet: run <code>advtopo report RUN</code>, then reload.</span>`);
    }
    const acc = S.index.accuracy || [];
    if (acc.length) {
      const series = S.uniq(acc.map((a) => `${a.model}|${a.attack}`)).map((k) => {
        const [m, at] = k.split("|");
        return { name: S.uniq(acc.map((a) => a.attack)).length > 1 ? `${m} · ${at}` : m, color: mcol(m),
          pts: acc.filter((a) => a.model === m && a.attack === at).map((a) => [+a.eps, +a.accuracy]).sort((a, b) => a[0] - b[0]) };
      });
      lineChart(card(host, "Accuracy vs attack ε"), series, "attack ε", "accuracy", [0, 1]);
    }
    // one mapper set at a time (a menu when the run has several): two sets' graphs at one eps
    // would join into a zigzag line of the model's colour
    const mixSets = S.uniq(S.index.graphs.filter((g) => !g.recomputed).map((g) => g.mapper_set || ""));
    S.uniq(S.index.graphs.map((g) => g.layer)).forEach((layer) => {
      const gs = S.index.graphs.filter((g) => g.layer === layer && g.stats && g.stats.mean_purity != null && !g.recomputed);
      if (!gs.length) return;
      const c = card(host, `Class mixing vs attack ε — ${layer}`, "mixing = 1 − mean node purity (higher: classes less distinguishable)");
      c.classList.add("mixing-card"); c.dataset.layer = layer;
      const charts = document.createElement("div");
      const draw = (set) => {
        charts.innerHTML = "";
        const inSet = gs.filter((g) => (g.mapper_set || "") === set);
        const series = S.uniq(inSet.map((g) => `${g.model}|${g.attack}`)).map((k) => {
          const [m, at] = k.split("|");
          return { name: m, color: mcol(m), pts: inSet.filter((g) => g.model === m && g.attack === at).map((g) => [+g.eps, 1 - g.stats.mean_purity]).sort((a, b) => a[0] - b[0]) };
        });
        if (series.length) lineChart(charts, series, "attack ε", "mixing", [0, 1]);
      };
      if (mixSets.length > 1) {
        const pick = document.createElement("select"); pick.className = "mixing-set"; pick.title = "mapper set";
        pick.innerHTML = mixSets.map((x) => `<option value="${esc(x)}">mapper set: ${esc(x || "(unnamed)")}</option>`).join("");
        pick.addEventListener("change", () => draw(pick.value));
        c.appendChild(pick);
      }
      c.appendChild(charts);
      draw(mixSets[0]);
    });
    if (A.topoact) A.topoact.summaryCards(host, mcol, lineChart);  // loops and branch points vs eps (topoact.js)
    // persistence: distance between the diagrams of clean and adversarial activations vs eps
    const cva = (S.index.persistence && S.index.persistence.clean_vs_adv) || [];
    S.uniq(cva.map((r) => r.layer)).forEach((layer) => {
      const rows = cva.filter((r) => r.layer === layer && r.distance != null);
      if (!rows.length) return;
      const series = S.uniq(rows.map((r) => r.model)).map((m) => ({ name: m, color: mcol(m),
        pts: rows.filter((r) => r.model === m).map((r) => [+r.eps, +r.distance]).sort((a, b) => a[0] - b[0]) }));
      const r0 = rows[0];
      lineChart(card(host, `Clean vs adversarial diagrams — ${layer}`,
        `${r0.metric || "distance"} between H${r0.homology_dim ?? 1} diagrams of clean and adversarial activations`),
        series, "attack ε", "distance");
    });
    // persistence diagrams: clean vs the strongest attack, for a chosen model and layer
    const dkeys = Object.keys((S.index.persistence && S.index.persistence.diagrams) || {});
    if (dkeys.length && DS.diagram) diagramCard(card(host, "Persistence diagrams",
      "Vietoris-Rips H0/H1 of the layer's point cloud: clean vs adversarial (same samples)", true), dkeys);
    // stats table
    const c = card(host, "Per-graph statistics", "click a row to open the graph", true);
    const cols = ["model", "layer", "attack", "eps", "n_nodes", "n_edges", "n_components", "n_noise", "mean_purity", "mean_entropy"];
    const heads = { model: "model", layer: "layer", attack: "attack", eps: "attack ε", n_nodes: "nodes", n_edges: "edges", n_components: "components", n_noise: "noise rows", mean_purity: "mean purity", mean_entropy: "mean entropy" };
    let html = `<table class="t stats-table"><tr>${cols.map((k) => `<th class="${k.startsWith("n_") || k.startsWith("mean") || k === "eps" ? "num" : ""}">${heads[k]}</th>`).join("")}</tr>`;
    S.index.graphs.forEach((g) => {
      const s = g.stats || {};
      // a graph the app recomputed is marked, with what it was rebuilt with (it is not the study's)
      const mark = g.recomputed ? ` <span class="recomputed-mark" title="${esc("recomputed in the app: " + A.recompute.paramsLine(g) + (g.source ? ` (from ${g.source})` : ""))}">⟳ recomputed</span>` : "";
      html += `<tr data-id="${esc(g.id)}"${g.recomputed ? ` class="recomputed"` : ""}>` + cols.map((k) => {
        const v = k in s ? s[k] : g[k];
        return `<td class="${typeof v === "number" ? "num" : ""}">${statCell(v)}${k === "model" ? mark : ""}</td>`;
      }).join("") + `</tr>`;
    });
    c.insertAdjacentHTML("beforeend", html + `</table>`);
    c.querySelectorAll("tr[data-id]").forEach((tr) => tr.addEventListener("click", () => { A.graphs.setPanels([tr.dataset.id]); A.controls.showTab("graphs"); }));
    // persistence: every {"layers"/"labels": [...], "matrix": [[...]]} found, rendered as a heatmap
    const mats = [];
    (function walk(o, path) {
      if (!o || typeof o !== "object") return;
      if (Array.isArray(o.matrix) && o.matrix.length && Array.isArray(o.matrix[0])) { mats.push([path.join(" · ") || "matrix", o]); return; }
      if (Array.isArray(o)) return;
      Object.entries(o).forEach(([k, v]) => walk(v, path.concat(k)));
    })(S.index.persistence, []);
    mats.forEach(([title, m]) => matrixCards(host, title, m));
  }
  function diagramCard(c, keys) {
    // keys look like "model/layer/attack/eps"
    const parsed = keys.map((k) => { const p = k.split("/"); return { k, eps: +p[p.length - 1], attack: p[p.length - 2], layer: p[p.length - 3], model: p.slice(0, -3).join("/") }; });
    const models = S.uniq(parsed.map((d) => d.model)), layers = S.uniq(parsed.map((d) => d.layer));
    const ctl = document.createElement("div"); ctl.className = "diag-ctl";
    const opt = (xs) => xs.map((x) => `<option>${esc(x)}</option>`).join("");
    ctl.innerHTML = `model <select class="dm">${opt(models)}</select> layer <select class="dl">${opt(layers)}</select>`;
    c.appendChild(ctl);
    const row = document.createElement("div"); row.className = "diag-row"; c.appendChild(row);
    const draw = async () => {
      const m = ctl.querySelector(".dm").value, l = ctl.querySelector(".dl").value;
      const ds = parsed.filter((d) => d.model === m && d.layer === l).sort((a, b) => a.eps - b.eps);
      const pick = ds.length > 1 ? [ds[0], ds[ds.length - 1]] : ds;
      row.innerHTML = "";
      const data = await Promise.all(pick.map((d) => DS.diagram(d.k).catch(() => null)));
      const all = data.filter(Boolean).flatMap((d) => Object.values(d.dims).flat());
      const hi = d3.max(all, (p) => p[1]) || 1;
      pick.forEach((d, i) => { if (data[i]) diagramPlot(row, data[i], hi, d.eps === 0 ? "clean" : `${d.attack} ε=${d.eps}`); });
    };
    ctl.querySelectorAll("select").forEach((s) => s.addEventListener("change", draw));
    draw();
  }
  function diagramPlot(host, dg, hi, title) {
    const W = 300, H = 270, m = { l: 40, r: 10, t: 22, b: 34 };
    const div = document.createElement("div"); div.className = "diag"; host.appendChild(div);
    const svg = d3.select(div).append("svg").attr("viewBox", `0 0 ${W} ${H}`).attr("width", W).attr("height", H).attr("class", "diagram");
    const s = d3.scaleLinear().domain([0, hi]).nice();
    const xs = s.copy().range([m.l, W - m.r]), ys = s.copy().range([H - m.b, m.t]);
    svg.append("text").attr("x", m.l).attr("y", 14).attr("class", "diag-title").text(title);
    svg.append("line").attr("x1", xs(0)).attr("y1", ys(0)).attr("x2", xs(s.domain()[1])).attr("y2", ys(s.domain()[1])).attr("stroke", "#9ca3af").attr("stroke-dasharray", "3,3");
    svg.append("g").attr("class", "axis").attr("transform", `translate(0,${H - m.b})`).call(d3.axisBottom(xs).ticks(4));
    svg.append("g").attr("class", "axis").attr("transform", `translate(${m.l},0)`).call(d3.axisLeft(ys).ticks(4));
    svg.append("text").attr("x", (W + m.l) / 2).attr("y", H - 4).attr("text-anchor", "middle").attr("class", "axis-label").text("birth");
    svg.append("text").attr("transform", `translate(11,${(H - m.b + m.t) / 2}) rotate(-90)`).attr("text-anchor", "middle").attr("class", "axis-label").text("death");
    const col = { 0: "#2563eb", 1: "#dc2626", 2: "#059669" };
    Object.entries(dg.dims).forEach(([dim, pts]) => {
      svg.append("g").selectAll("circle").data(pts).join("circle").attr("cx", (p) => xs(p[0])).attr("cy", (p) => ys(p[1]))
        .attr("r", 2).attr("fill", col[dim] || "#6b7280").attr("fill-opacity", 0.55).attr("class", `dim${dim}`);
    });
    const lg = svg.append("g").attr("transform", `translate(${W - m.r - 60},${H - m.b - 34})`);
    Object.keys(dg.dims).forEach((dim, i) => {
      lg.append("circle").attr("cx", 4).attr("cy", i * 14).attr("r", 4).attr("fill", col[dim] || "#6b7280");
      lg.append("text").attr("x", 12).attr("y", i * 14 + 4).attr("class", "axis-label").text(`H${dim} (${dg.dims[dim].length})`);
    });
  }
  function card(host, title, sub, wide) {
    const c = document.createElement("div"); c.className = "card" + (wide ? " wide" : "");
    c.innerHTML = `<h3>${esc(title)}</h3>` + (sub ? `<div class="hint" style="margin:-4px 0 6px">${esc(sub)}</div>` : "");
    if (!wide) A.figure.cardButtons(c);  // SVG / PNG of this chart (figure.js)
    host.appendChild(c);
    return c;
  }
  function lineChart(c, series, xl, yl, yDom) {
    const W = 400, H = 230, m = { l: 44, r: 110, t: 8, b: 36 };
    const svg = d3.select(c).append("svg").attr("viewBox", `0 0 ${W} ${H}`).attr("width", "100%");
    const xs = d3.scaleLinear().domain(d3.extent(series.flatMap((s) => s.pts.map((p) => p[0])))).nice().range([m.l, W - m.r]);
    const ys = d3.scaleLinear().domain(yDom || d3.extent(series.flatMap((s) => s.pts.map((p) => p[1])))).nice().range([H - m.b, m.t]);
    svg.append("g").attr("class", "grid").attr("transform", `translate(${m.l},0)`).call(d3.axisLeft(ys).ticks(5).tickSize(-(W - m.l - m.r)).tickFormat(""));
    svg.append("g").attr("class", "axis").attr("transform", `translate(0,${H - m.b})`).call(d3.axisBottom(xs).ticks(6));
    svg.append("g").attr("class", "axis").attr("transform", `translate(${m.l},0)`).call(d3.axisLeft(ys).ticks(5));
    svg.append("text").attr("x", (m.l + W - m.r) / 2).attr("y", H - 4).attr("text-anchor", "middle").text(xl);
    svg.append("text").attr("transform", `translate(12,${(H - m.b) / 2}) rotate(-90)`).attr("text-anchor", "middle").text(yl);
    const line = d3.line().x((p) => xs(p[0])).y((p) => ys(p[1]));
    series.forEach((s, k) => {
      svg.append("path").attr("d", line(s.pts)).attr("fill", "none").attr("stroke", s.color).attr("stroke-width", 2);
      svg.append("g").selectAll("circle").data(s.pts).join("circle").attr("cx", (p) => xs(p[0])).attr("cy", (p) => ys(p[1])).attr("r", 3.2).attr("fill", s.color)
        .append("title").text((p) => `${s.name}: ε=${p[0]} → ${fmt(p[1], 3)}`);
      const lg = svg.append("g").attr("transform", `translate(${W - m.r + 10},${m.t + 10 + k * 17})`);
      lg.append("rect").attr("width", 12).attr("height", 3).attr("y", -2).attr("fill", s.color);
      lg.append("text").attr("x", 16).attr("y", 4).text(s.name.length > 16 ? s.name.slice(0, 15) + "…" : s.name).append("title").text(s.name);
    });
  }
  /** The cards of one stored matrix document: its distance matrix (titled with the metric and the
   * homology dimension) and each square similarity matrix beside it (CKA, SVCCA: with the rank
   * correlation against the distances). */
  function matrixCards(host, title, m) {
    const metric = m.metric ? `${String(m.metric).replace(/_/g, " ")} distance${m.homology_dim != null ? ` between H${m.homology_dim} diagrams` : ""}` : "";
    const what = title === "layer_distance" ? "Layer distance" : title;
    heatmap(card(host, `Persistence — ${what}`, metric ? `${metric} of the clean activations of each model and layer (lower = more alike)` : ""), m);
    const n = m.matrix.length;
    Object.entries(m).forEach(([k, v]) => {
      if (k === "matrix" || !Array.isArray(v) || v.length !== n || !v.every((r) => Array.isArray(r) && r.length === n)) return;
      const rc = m[`rank_correlation_${k}`];
      heatmap(card(host, `Persistence — ${what}: ${k.toUpperCase()} similarity`,
        `${k.toUpperCase()} of the same activations (higher = more alike)` + (rc != null && isFinite(rc) ? `; rank correlation with the diagram distances ${fmt(rc, 3)}` : "")),
        Object.assign({}, m, { matrix: v, columns: undefined }));
    });
  }
  /** Row and column names of a matrix document: "model / layer" when it spans several models
   * (its "labels", else models + layers), else the layers alone. */
  function matrixLabels(m) {
    const n = m.matrix.length;
    const models = Array.isArray(m.models) && m.models.length === n ? m.models : null;
    if (models && new Set(models).size > 1) {
      if (Array.isArray(m.layers) && m.layers.length === n) return models.map((x, i) => `${x} / ${m.layers[i]}`);
    }
    if (Array.isArray(m.labels) && m.labels.length === n && (!models || new Set(models).size > 1)) return m.labels.map(String);
    if (Array.isArray(m.layers) && m.layers.length === n) return m.layers.map(String);
    if (Array.isArray(m.labels) && m.labels.length === n) return m.labels.map(String);
    return m.matrix.map((_, i) => String(i));
  }
  function heatmap(c, m) {
    const M = m.matrix, labels = matrixLabels(m);
    const n = M.length, k = M[0].length, cell = Math.max(14, Math.min(44, 340 / Math.max(n, k)));
    const longest = d3.max(labels.concat(m.columns || []), (l) => String(l).length) || 4;
    const ml = Math.min(200, 14 + 6.2 * longest), mt = 10, W = ml + k * cell + 90, H = mt + n * cell + Math.min(160, 20 + 4.6 * longest);
    const svg = d3.select(c).append("svg").attr("viewBox", `0 0 ${W} ${H}`).attr("width", Math.min(W * 1.2, 640)).attr("class", "heatmap");
    const vals = M.flat().filter((v) => v != null && isFinite(v));
    const col = d3.scaleSequential(d3.interpolateViridis).domain(d3.extent(vals));
    M.forEach((row, i) => row.forEach((v, j) => {
      svg.append("rect").attr("x", ml + j * cell).attr("y", mt + i * cell).attr("width", cell - 1).attr("height", cell - 1).attr("fill", v == null ? "#eee" : col(v))
        .append("title").text(`${labels[i]} × ${(m.columns || labels)[j]}: ${fmt(v, 3)}`);
      if (cell >= 26 && v != null && isFinite(v)) {  // the value itself, dark or light on its colour
        const lum = d3.hsl(col(v)).l;
        svg.append("text").attr("class", "hm-val").attr("x", ml + j * cell + (cell - 1) / 2).attr("y", mt + i * cell + cell / 2 + 3)
          .attr("text-anchor", "middle").attr("font-size", Math.min(11, cell / 3.4)).attr("fill", lum > 0.55 ? "#111" : "#fff").text(fmt(v, 2));
      }
    }));
    labels.forEach((l, i) => svg.append("text").attr("x", ml - 4).attr("y", mt + i * cell + cell / 2 + 4).attr("text-anchor", "end").text(l));
    (m.columns || labels).forEach((l, j) => svg.append("text").attr("transform", `translate(${ml + j * cell + cell / 2},${mt + n * cell + 6}) rotate(40)`).text(l));
    const g = svg.append("g").attr("transform", `translate(${ml + k * cell + 14},${mt})`);
    const defs = svg.append("defs").append("linearGradient").attr("id", "hm" + Math.random().toString(36).slice(2)).attr("x1", 0).attr("x2", 0).attr("y1", 1).attr("y2", 0);
    d3.range(0, 1.0001, 0.1).forEach((t) => defs.append("stop").attr("offset", t).attr("stop-color", col(col.domain()[0] + t * (col.domain()[1] - col.domain()[0]))));
    g.append("rect").attr("width", 10).attr("height", n * cell).attr("fill", `url(#${defs.attr("id")})`);
    g.append("g").attr("class", "axis").attr("transform", "translate(10,0)").call(d3.axisRight(d3.scaleLinear().domain(col.domain()).range([n * cell, 0])).ticks(4));
  }

  A.summary = { render, card };
})(window.advtopo);
