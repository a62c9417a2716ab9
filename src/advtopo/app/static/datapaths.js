/* The Datapaths tab (only when the run has datapaths.json, docs/architecture.md): critical
 * neurons of clean inputs vs their adversarial versions compared layer by layer: overlap
 * per layer, first divergence layer, the sample list and one sample's neuron flow. */
(function (A) {
  "use strict";
  const S = A.store, $ = S.$;
  const { fmt, esc } = A.format;
  const DS = A.data.source;

  let DP = null;
  const dpState = { metric: "jaccard", split: "split", divGroup: "all", filter: "all", sample: null, eps: null };
  const DPCOL = { clean: "#2563eb", adv: "#dc2626", shared: "#334155", none: "#cbd5e1" };
  const DPKIND = { shared: "shared (clean and adversarial)", clean: "clean only", adv: "adversarial only" };

  async function load() {
    let d = null;
    try { d = DS.datapaths ? await DS.datapaths() : null; } catch (e) { d = null; }
    if (!d || d.available === false || !Array.isArray(d.layers) || !d.layers.length || !Array.isArray(d.eps) || !d.eps.length || !Array.isArray(d.samples)) return;
    DP = d;
    DP.by_layer = DP.by_layer || {}; DP.by_eps = Array.isArray(DP.by_eps) ? DP.by_eps : [];
    DP.detailById = new Map((Array.isArray(DP.detail) ? DP.detail : []).filter((x) => x && x.sample_id != null).map((x) => [+x.sample_id, x]));
    dpState.eps = +DP.eps[DP.eps.length - 1];
    $("#tab-datapaths").classList.remove("hidden");
  }
  // the value stored under an eps key ("0.1", "0.10", ...: compared numerically)
  function epsGet(obj, e) {
    if (!obj) return null;
    for (const k of Object.keys(obj)) if (Math.abs(+k - +e) < 1e-9) return obj[k];
    return null;
  }
  const dpEpsColor = (j) => A.colors.epsColor(j, DP.eps.length);
  const dpMetricLabel = () => (dpState.metric === "jaccard" ? "Jaccard" : "weighted Jaccard");
  function dpSeg(host, id, label, opts, key, after) {
    const wrap = document.createElement("div"); wrap.className = "dp-ctl";
    wrap.innerHTML = `<span class="hint">${esc(label)}</span><div class="seg" id="${id}" role="group" aria-label="${esc(label)}">` +
      opts.map(([v, t]) => `<button data-v="${esc(v)}" class="${String(dpState[key]) === String(v) ? "on" : ""}" aria-pressed="${String(dpState[key]) === String(v)}">${esc(t)}</button>`).join("") + `</div>`;
    wrap.querySelectorAll("button").forEach((b) => b.addEventListener("click", () => {
      dpState[key] = key === "eps" ? +b.dataset.v : b.dataset.v;
      wrap.querySelectorAll("button").forEach((x) => { x.classList.toggle("on", x === b); x.setAttribute("aria-pressed", String(x === b)); });
      after();
    }));
    host.appendChild(wrap);
    return wrap;
  }

  function render() {
    const host = $("#datapaths");
    if (host.dataset.done || !DP) return;
    host.dataset.done = "1";
    host.innerHTML = "";
    const p = DP.params || {}, c = DP.clean || {};
    const head = A.summary.card(host, "Critical datapaths: clean vs adversarial",
      "Datapaths (Cao et al., TVCG 2021): the neurons (channels / units) a trained sparse gate keeps to carry one input's prediction. Where do the paths of an input and of its adversarial version diverge?", true);
    head.classList.add("dp-head");
    const widths = DP.widths || {};
    head.insertAdjacentHTML("beforeend", `<div class="dp-meta">model <b>${esc(DP.model ?? "–")}</b> · attack <b>${esc(DP.attack ?? "–")}</b> · <b>${esc(DP.n_samples ?? DP.samples.length)}</b> samples · layers ${DP.layers.map((l) => `<b>${esc(l)}</b>${widths[l] != null ? ` (${esc(widths[l])})` : ""}`).join(" → ")}` +
      ` · λ ${esc(p.lam ?? "–")}, gate ≥ ${esc(p.threshold ?? "–")}, divergence at J &lt; ${esc(DP.divergence_threshold ?? "–")}</div>`);
    let t = `<table class="t dp-stats"><tr><th></th><th class="num">accuracy</th><th class="num">fooled</th><th class="num">retained acc. (hard mask)</th><th class="num">neurons kept</th>${DP.layers.map((l) => `<th class="num">mean size ${esc(l)}</th>`).join("")}</tr>`;
    t += `<tr><td>clean</td><td class="num">–</td><td class="num">–</td><td class="num">${fmt(c.retained_accuracy, 3)}</td><td class="num">${fmt(c.kept_fraction_total, 3)}</td>${DP.layers.map((l) => `<td class="num">${fmt((c.mean_size || {})[l], 1)}</td>`).join("")}</tr>`;
    DP.eps.forEach((e, j) => {
      const b = DP.by_eps.find((x) => Math.abs(+x.eps - +e) < 1e-9) || {};
      t += `<tr><td><span class="sw-line" style="background:${dpEpsColor(j)}"></span>ε = ${esc(e)}</td><td class="num">${fmt(b.accuracy, 3)}</td><td class="num">${b.n_fooled ?? "–"} / ${esc(DP.n_samples ?? DP.samples.length)}</td><td class="num">${fmt(b.retained_accuracy, 3)}</td><td class="num">${fmt(b.kept_fraction_total, 3)}</td>${DP.layers.map((l) => `<td class="num">${fmt((b.mean_size || {})[l], 1)}</td>`).join("")}</tr>`;
    });
    head.insertAdjacentHTML("beforeend", t + `</table>`);

    const over = A.summary.card(host, "Overlap of the critical sets per layer", "mean over samples; one line per attack ε; lower = the adversarial input uses other neurons");
    over.classList.add("dp-overlap");
    const ctl = document.createElement("div"); ctl.className = "dp-ctls"; over.appendChild(ctl);
    const chart = document.createElement("div"); chart.className = "dp-charts"; over.appendChild(chart);
    const drawOver = () => dpOverlapCharts(chart);
    dpSeg(ctl, "dp-metric", "overlap", [["jaccard", "Jaccard"], ["weighted_jaccard", "weighted Jaccard"]], "metric", drawOver);
    dpSeg(ctl, "dp-split", "samples", [["split", "fooled | not fooled"], ["all", "all"]], "split", drawOver);
    drawOver();

    const div = A.summary.card(host, "First divergence layer", `per attack ε: how many samples first have Jaccard < ${DP.divergence_threshold ?? 0.5} at each layer ('none': never)`);
    div.classList.add("dp-div");
    const dctl = document.createElement("div"); dctl.className = "dp-ctls"; div.appendChild(dctl);
    const dchart = document.createElement("div"); dchart.className = "dp-charts"; div.appendChild(dchart);
    const drawDiv = () => dpDivergenceCharts(dchart);
    dpSeg(dctl, "dp-divgroup", "samples", [["all", "all"], ["fooled", "fooled"], ["not_fooled", "not fooled"]], "divGroup", drawDiv);
    drawDiv();
    A.aevis.classCard(host, DP);  // AEVis's class level (aevis.js)
    A.aevis.residualCard(host, DP);  // skip connections, when residual blocks are gated

    const bottom = document.createElement("div"); bottom.className = "dp-bottom"; host.appendChild(bottom);
    const list = A.summary.card(bottom, "Samples", "click a row (or Enter) for its network-level flow");
    list.classList.add("dp-samples");
    const lctl = document.createElement("div"); lctl.className = "dp-ctls"; list.appendChild(lctl);
    const tableHost = document.createElement("div"); tableHost.className = "dp-table-wrap"; list.appendChild(tableHost);
    dpSeg(lctl, "dp-filter", "show", [["all", "all"], ["fooled", "fooled at some ε"], ["detail", "with flow detail"]], "filter", () => dpSampleTable(tableHost));
    dpSampleTable(tableHost);
    const flow = A.summary.card(bottom, "Sample flow", "");
    flow.classList.add("dp-flow"); flow.id = "dp-flow";
    const first = DP.samples.find((s) => DP.detailById.has(+s.sample_id)) || DP.samples[0];
    if (first) dpSelect(+first.sample_id, false);
  }

  function dpOverlapCharts(host) {
    host.innerHTML = "";
    const groups = dpState.split === "split" ? [["fooled", "fooled"], ["not_fooled", "not fooled"]] : [["all", "all samples"]];
    groups.forEach(([g, title]) => {
      const W = 330, H = 220, m = { l: 40, r: 12, t: 22, b: 30 };
      const box = document.createElement("div"); box.className = "dp-chart"; box.dataset.group = g; host.appendChild(box);
      const svg = d3.select(box).append("svg").attr("viewBox", `0 0 ${W} ${H}`).attr("width", W).attr("height", H)
        .attr("class", "dp-overlap-chart").attr("role", "img").attr("aria-label", `mean ${dpMetricLabel()} per layer, ${title}, one line per attack eps`);
      svg.append("title").text(`mean ${dpMetricLabel()} between clean and adversarial critical sets per layer (${title})`);
      const xs = d3.scalePoint().domain(DP.layers).range([m.l + 10, W - m.r - 10]);
      const ys = d3.scaleLinear().domain([0, 1]).range([H - m.b, m.t]);
      svg.append("g").attr("class", "grid").attr("transform", `translate(${m.l},0)`).call(d3.axisLeft(ys).ticks(5).tickSize(-(W - m.l - m.r)).tickFormat(""));
      svg.append("g").attr("class", "axis").attr("transform", `translate(0,${H - m.b})`).call(d3.axisBottom(xs));
      svg.append("g").attr("class", "axis").attr("transform", `translate(${m.l},0)`).call(d3.axisLeft(ys).ticks(5));
      svg.append("text").attr("x", m.l).attr("y", 13).attr("class", "dp-chart-title").text(title);
      svg.append("text").attr("transform", `translate(11,${(H - m.b + m.t) / 2}) rotate(-90)`).attr("text-anchor", "middle").attr("class", "axis-label").text(`mean ${dpMetricLabel()}`);
      if (dpState.metric === "jaccard" && DP.divergence_threshold != null) {
        const y = ys(+DP.divergence_threshold);
        svg.append("line").attr("x1", m.l).attr("x2", W - m.r).attr("y1", y).attr("y2", y).attr("class", "dp-threshold");
        svg.append("text").attr("x", W - m.r - 2).attr("y", y - 3).attr("text-anchor", "end").attr("class", "axis-label").text(`divergence threshold ${DP.divergence_threshold}`);
      }
      const line = d3.line().defined((p) => p[1] != null).x((p) => xs(p[0])).y((p) => ys(p[1]));
      DP.eps.forEach((e, j) => {
        const pts = DP.layers.map((l) => { const v = ((DP.by_layer[l] || {})[`${dpState.metric}_${g}`] || [])[j]; return [l, v == null ? null : +v]; });
        const col = dpEpsColor(j);
        svg.append("path").attr("class", "dp-line").attr("data-eps", e).attr("d", line(pts) || "").attr("fill", "none").attr("stroke", col).attr("stroke-width", 2.2);
        svg.append("g").selectAll("circle").data(pts.filter((p) => p[1] != null)).join("circle").attr("cx", (p) => xs(p[0])).attr("cy", (p) => ys(p[1]))
          .attr("r", 3.4).attr("fill", col).append("title").text((p) => `ε = ${e}, ${p[0]}, ${title}: mean ${dpMetricLabel()} ${fmt(p[1], 3)}`);
      });
      const b = (k) => DP.by_eps[k] || {};
      const n = DP.n_samples ?? DP.samples.length;
      box.insertAdjacentHTML("beforeend", `<div class="dp-legend">` + DP.eps.map((e, j) => {
        const nf = b(j).n_fooled, cnt = g === "fooled" ? nf : g === "not_fooled" ? (nf != null ? n - nf : null) : n;
        return `<span><span class="sw-line" style="background:${dpEpsColor(j)}"></span>ε = ${esc(e)}${cnt != null ? ` <span class="hint">(${cnt} sample${cnt === 1 ? "" : "s"})</span>` : ""}</span>`;
      }).join("") + `</div>`);
    });
  }

  function dpDivergenceCharts(host) {
    host.innerHTML = "";
    const cats = DP.layers.concat(["none"]);
    const counts = DP.eps.map((e) => { const b = DP.by_eps.find((x) => Math.abs(+x.eps - +e) < 1e-9) || {}; return ((b.divergence_counts || {})[dpState.divGroup]) || {}; });
    const hi = d3.max(counts, (c) => d3.max(cats, (k) => +c[k] || 0)) || 1;
    DP.eps.forEach((e, j) => {
      const W = 230, H = 200, m = { l: 32, r: 8, t: 22, b: 30 };
      const box = document.createElement("div"); box.className = "dp-chart"; host.appendChild(box);
      const svg = d3.select(box).append("svg").attr("viewBox", `0 0 ${W} ${H}`).attr("width", W).attr("height", H)
        .attr("class", "dp-div-chart").attr("data-eps", e).attr("role", "img").attr("aria-label", `first divergence layer at eps ${e}`);
      const xs = d3.scaleBand().domain(cats).range([m.l, W - m.r]).padding(0.22);
      const ys = d3.scaleLinear().domain([0, hi]).nice().range([H - m.b, m.t]);
      svg.append("g").attr("class", "grid").attr("transform", `translate(${m.l},0)`).call(d3.axisLeft(ys).ticks(4).tickSize(-(W - m.l - m.r)).tickFormat(""));
      svg.append("g").attr("class", "axis").attr("transform", `translate(0,${H - m.b})`).call(d3.axisBottom(xs));
      svg.append("g").attr("class", "axis").attr("transform", `translate(${m.l},0)`).call(d3.axisLeft(ys).ticks(4).tickFormat(d3.format("d")));
      svg.append("text").attr("x", m.l).attr("y", 13).attr("class", "dp-chart-title").text(`ε = ${e}`);
      const c = counts[j];
      const bars = svg.append("g").selectAll("g").data(cats).join("g");
      bars.append("rect").attr("class", (k) => "dp-bar" + (k === "none" ? " none" : "")).attr("data-layer", (k) => k)
        .attr("x", (k) => xs(k)).attr("width", xs.bandwidth()).attr("y", (k) => ys(+c[k] || 0)).attr("height", (k) => ys(0) - ys(+c[k] || 0))
        .attr("fill", (k) => (k === "none" ? DPCOL.none : dpEpsColor(j)))
        .append("title").text((k) => (k === "none" ? `ε = ${e}: ${+c[k] || 0} samples never diverge` : `ε = ${e}: ${+c[k] || 0} samples diverge first at ${k}`));
      bars.append("text").attr("x", (k) => xs(k) + xs.bandwidth() / 2).attr("y", (k) => ys(+c[k] || 0) - 3).attr("text-anchor", "middle").attr("class", "axis-label dp-count").text((k) => +c[k] || 0);
    });
  }

  function dpSampleTable(host) {
    const jcol = d3.scaleSequential(d3.interpolateViridis).domain([0, 1]);
    const rows = DP.samples.filter((s) => dpState.filter === "all" ||
      (dpState.filter === "detail" ? DP.detailById.has(+s.sample_id) : DP.eps.some((e) => (epsGet(s.eps, e) || {}).fooled)));
    let h = `<table class="t dp-table"><thead><tr><th>sample</th><th>label</th><th>clean</th>` +
      DP.eps.map((e, j) => `<th title="adversarial prediction, divergence layer and Jaccard per layer (${DP.layers.join(", ")}) at ε = ${esc(e)}"><span class="sw-line" style="background:${dpEpsColor(j)}"></span>ε = ${esc(e)}</th>`).join("") +
      `<th title="critical neuron ids and flow edges stored">flow</th></tr></thead><tbody>`;
    rows.forEach((s) => {
      const sid = +s.sample_id, img = DS.image(sid, "clean", null);
      const cw = s.clean_prediction != null && s.clean_prediction !== s.label;
      const eparts = DP.eps.map((e) => {
        const v = epsGet(s.eps, e) || {};
        const J = Array.isArray(v.jaccard) ? v.jaccard : [];
        return `<td class="dp-eps"><span class="${v.fooled ? "wrong" : ""}">→ ${esc(v.prediction != null ? S.cname(v.prediction) : "–")}${v.fooled ? " ✗" : ""}</span>` +
          `<span class="dp-cells">${DP.layers.map((l, k) => `<span class="dp-cell${v.divergence_layer === l ? " div" : ""}" style="background:${J[k] == null ? "#e5e7eb" : jcol(J[k])}" title="${esc(l)}: Jaccard ${fmt(J[k], 2)}${v.divergence_layer === l ? " (first divergence)" : ""}"></span>`).join("")}</span>` +
          `<span class="hint">${v.divergence_layer != null ? "div. " + esc(v.divergence_layer) : "no div."}</span></td>`;
      }).join("");
      const label = `sample ${sid}, label ${S.cname(s.label)}, clean prediction ${s.clean_prediction != null ? S.cname(s.clean_prediction) : "unknown"}` +
        DP.eps.map((e) => { const v = epsGet(s.eps, e) || {}; return `; eps ${e}: ${v.fooled ? "fooled" : "not fooled"}, predicted ${v.prediction != null ? S.cname(v.prediction) : "unknown"}, divergence ${v.divergence_layer || "none"}`; }).join("");
      h += `<tr class="dp-row${dpState.sample === sid ? " on" : ""}" data-sid="${sid}" tabindex="0" role="button" aria-label="${esc(label)}">` +
        `<td class="dp-sid">${img ? `<img src="${img}" alt="">` : ""}#${sid}</td><td>${esc(S.cname(s.label))}</td><td class="${cw ? "wrong" : ""}">${esc(s.clean_prediction != null ? S.cname(s.clean_prediction) : "–")}</td>` +
        eparts + `<td>${DP.detailById.has(sid) ? `<span title="critical neurons and flow edges stored">●</span>` : ""}</td></tr>`;
    });
    h += `</tbody></table>`;
    if (!rows.length) h += `<div class="hint" style="padding:8px">no sample matches</div>`;
    host.innerHTML = h;
    host.insertAdjacentHTML("afterbegin", `<div class="hint dp-cell-legend">cells: Jaccard per layer (${DP.layers.map(esc).join(" → ")}), <span class="dp-cell" style="background:${jcol(0)}"></span> 0 … <span class="dp-cell" style="background:${jcol(1)}"></span> 1, outlined = first divergence · ✗ = fooled</div>`);
    host.querySelectorAll("img").forEach((im) => im.addEventListener("error", () => { im.style.visibility = "hidden"; }));
    host.querySelectorAll("tr.dp-row").forEach((tr) => {
      tr.addEventListener("click", () => dpSelect(+tr.dataset.sid, true));
      tr.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); dpSelect(+tr.dataset.sid, true); }
        else if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
          ev.preventDefault();
          const nx = ev.key === "ArrowDown" ? tr.nextElementSibling : tr.previousElementSibling;
          if (nx) nx.focus();
        }
      });
    });
  }

  function dpSelect(sid, user) {
    dpState.sample = sid;
    document.querySelectorAll("#datapaths tr.dp-row").forEach((tr) => { const on = +tr.dataset.sid === sid; tr.classList.toggle("on", on); tr.setAttribute("aria-pressed", String(on)); });
    dpFlow($("#dp-flow"), sid);
    if (user) { const f = $("#dp-flow"); if (f && f.scrollIntoView) f.scrollIntoView({ block: "nearest" }); }
  }

  function dpFlow(host, sid) {
    const s = DP.samples.find((x) => +x.sample_id === sid);
    if (!host || !s) return;
    const e = dpState.eps, j = DP.eps.findIndex((x) => Math.abs(+x - e) < 1e-9);
    const v = epsGet(s.eps, e) || {};
    const det = DP.detailById.get(sid);
    host.innerHTML = `<h3>Sample #${esc(sid)} · ${esc(S.cname(s.label))}</h3>`;
    host.dataset.sample = sid;
    const ctl = document.createElement("div"); ctl.className = "dp-ctls"; host.appendChild(ctl);
    dpSeg(ctl, "dp-eps", "adversarial version", DP.eps.map((x) => [x, `ε = ${x}`]), "eps", () => dpFlow(host, sid));
    const loc = document.createElement("button"); loc.className = "btn small"; loc.textContent = "Locate in graphs"; loc.title = "outline this sample in the mapper graphs";
    loc.addEventListener("click", () => A.details.locate(sid)); ctl.appendChild(loc);
    // thumbnails: clean | adversarial at this eps (the node drill-down's image endpoint)
    const cimg = DS.image(sid, "clean", null), aimg = DS.image(sid, "adversarial", { model: DP.model, attack: DP.attack, eps: e });
    const cw = s.clean_prediction != null && s.clean_prediction !== s.label;
    const top = document.createElement("div"); top.className = "dp-top"; host.appendChild(top);
    top.innerHTML = `<div class="dp-thumbs">` +
      `<figure>${cimg ? `<img src="${cimg}" alt="clean image of sample ${sid}">` : `<div class="noimg">no image</div>`}<figcaption class="${cw ? "wrong" : ""}">clean → ${esc(s.clean_prediction != null ? S.cname(s.clean_prediction) : "–")}</figcaption></figure>` +
      `<figure>${aimg ? `<img src="${aimg}" alt="adversarial image of sample ${sid} at eps ${esc(e)}">` : `<div class="noimg">no image</div>`}<figcaption class="${v.fooled ? "wrong" : ""}">ε = ${esc(e)} → ${esc(v.prediction != null ? S.cname(v.prediction) : "–")}${v.fooled ? " (fooled)" : ""}</figcaption></figure></div>`;
    top.querySelectorAll("img").forEach((im) => im.addEventListener("error", () => { im.replaceWith(Object.assign(document.createElement("div"), { className: "noimg", textContent: "no image" })); }));
    // the Jaccard row of every eps (the one shown below in bold)
    let t = `<table class="t dp-jrow"><tr><th></th>${DP.layers.map((l) => `<th class="num">${esc(l)}</th>`).join("")}<th>first divergence</th></tr>`;
    DP.eps.forEach((x, k) => {
      const w = epsGet(s.eps, x) || {}, J = w.jaccard || [], WJ = w.weighted_jaccard || [];
      t += `<tr class="${k === j ? "cur" : ""}"><td><span class="sw-line" style="background:${dpEpsColor(k)}"></span>ε = ${esc(x)}${w.fooled ? ` <span class="wrong">fooled</span>` : ""}</td>` +
        DP.layers.map((l, i) => `<td class="num${w.divergence_layer === l ? " div" : ""}" title="Jaccard ${fmt(J[i], 3)}, weighted Jaccard ${fmt(WJ[i], 3)}">${fmt(J[i], 2)} <span class="hint">(${fmt(WJ[i], 2)})</span></td>`).join("") +
        `<td>${esc(w.divergence_layer || "none")}</td></tr>`;
    });
    top.insertAdjacentHTML("beforeend", `<div class="dp-jwrap">${t}</table><div class="hint">Jaccard (weighted Jaccard) of the clean and adversarial critical sets; outlined: first layer below ${esc(DP.divergence_threshold ?? 0.5)}</div></div>`);
    const adv = det ? epsGet(det.adversarial, e) : null;
    if (!det || !det.clean || !adv) {
      host.insertAdjacentHTML("beforeend", `<div class="dp-note">No critical neuron ids or flow edges are stored for this sample${det ? ` at ε = ${esc(e)}` : ""} (datapaths.json keeps them for the first ${DP.detailById.size} samples: the study's <code>n_detail</code>). Samples with a flow are marked ● in the list.</div>`);
    } else {
      dpFlowSvg(host, det.clean, adv, e);
    }
    A.aevis.layerView(host, DP, sid, e);  // AEVis's layer and neuron levels (aevis.js)
  }

  function dpFlowSvg(host, cl, adv, e) {
    const L = DP.layers, cc = cl.critical || {}, ac = adv.critical || {};
    const cols = L.map((l) => {
      const A = new Set((cc[l] || []).map(Number)), B = new Set((ac[l] || []).map(Number));
      const shared = [...A].filter((x) => B.has(x)).sort((a, b) => a - b);
      const conly = [...A].filter((x) => !B.has(x)).sort((a, b) => a - b), aonly = [...B].filter((x) => !A.has(x)).sort((a, b) => a - b);
      // clean-only on top, shared in the middle, adversarial-only at the bottom
      const nodes = conly.map((id) => ({ id, kind: "clean" })).concat(shared.map((id) => ({ id, kind: "shared" })), aonly.map((id) => ({ id, kind: "adv" })));
      return { layer: l, nodes, n: { shared: shared.length, clean: conly.length, adv: aonly.length } };
    });
    const nmax = d3.max(cols, (c) => c.nodes.length) || 1;
    // as wide as the card (columns 150-260 px apart), fixed once drawn
    const avail = host.clientWidth ? host.clientWidth - 26 : 700;
    const W = Math.max(480, Math.min(avail, 260 * L.length + 200)), m = { l: 100, r: 100, t: 46, b: 16 };
    const step = Math.max(5, Math.min(20, 560 / nmax)), H = m.t + m.b + Math.max(step * nmax, 60);
    const r = Math.max(2, Math.min(6.5, step * 0.36));
    const xs = d3.scalePoint().domain(L).range([m.l, W - m.r]);
    const pos = new Map();
    cols.forEach((c) => {
      const y0 = m.t + (H - m.t - m.b - step * (c.nodes.length - 1)) / 2;
      c.nodes.forEach((nd, i) => { nd.x = xs(c.layer); nd.y = y0 + i * step; pos.set(`${c.layer}:${nd.id}`, nd); });
    });
    // edges: top-k of the clean path, of the adversarial path; in both = dark
    const edges = new Map();
    const conn = new Map((DP.connections || []).map((x) => [`${x.source}>${x.target}`, x]));
    const gaps = [];
    [["clean", cl.flow], ["adv", adv.flow]].forEach(([who, flow]) => (flow || []).forEach((f) => {
      if (!Array.isArray(f.edges)) { gaps.push(f); return; }
      f.edges.forEach(([i, jj, w]) => {
        const k = `${f.source}:${i}>${f.target}:${jj}`;
        const ed = edges.get(k) || { k, s: pos.get(`${f.source}:${i}`), t: pos.get(`${f.target}:${jj}`), w: 0, src: f.source, tgt: f.target, i, j: jj, by: new Set() };
        ed.w = Math.max(ed.w, +w || 0); ed.by.add(who); edges.set(k, ed);
      });
    }));
    const E = [...edges.values()].filter((x) => x.s && x.t);
    E.forEach((x) => { x.kind = x.by.size === 2 ? "shared" : x.by.has("clean") ? "clean" : "adv"; });
    const wmax = d3.max(E, (x) => x.w) || 1;
    const ws = d3.scaleLinear().domain([0, wmax]).range([0.6, 4.2]);
    const box = document.createElement("div"); box.className = "dp-flow-svg"; host.appendChild(box);
    const tot = (k) => d3.sum(cols, (c) => c.n[k]);
    const nEdge = (k) => E.filter((x) => x.kind === k).length;
    box.insertAdjacentHTML("beforeend", `<div class="legend dp-flow-legend"><span class="title">neurons</span>` +
      ["shared", "clean", "adv"].map((k) => `<span class="item" data-kind="${k}"><span class="sw" style="background:${DPCOL[k]}"></span>${DPKIND[k]} (${tot(k)})</span>`).join("") +
      `<span class="sep"></span><span class="title">top-${esc((DP.params && DP.params.top_k) || "k")} flow edges</span>` +
      [["clean", "clean path"], ["adv", "adversarial path"], ["shared", "both"]].map(([k, t]) => `<span class="item"><span class="ln" style="background:${DPCOL[k]}"></span>${t} (${nEdge(k)})</span>`).join("") + `</div>`);
    const svg = d3.select(box).append("svg").attr("viewBox", `0 0 ${W} ${H}`).attr("width", W).attr("height", H).attr("class", "dp-flow-chart")
      .attr("data-eps", e).attr("role", "img").attr("aria-label", `critical neurons per layer of the clean and adversarial (eps ${e}) inputs and their strongest flow edges`);
    const link = d3.linkHorizontal().x((p) => p.x).y((p) => p.y);
    svg.append("g").attr("class", "dp-edges").selectAll("path").data(E.sort((a, b) => a.w - b.w)).join("path")
      .attr("class", (x) => `dp-edge ${x.kind}`).attr("d", (x) => link({ source: { x: x.s.x + r, y: x.s.y }, target: { x: x.t.x - r, y: x.t.y } }))
      .attr("fill", "none").attr("stroke", (x) => DPCOL[x.kind]).attr("stroke-opacity", 0.55).attr("stroke-width", (x) => ws(x.w))
      .append("title").text((x) => `${x.src} #${x.i} → ${x.tgt} #${x.j}: |W| ${fmt(x.w, 3)} (${x.kind === "shared" ? "in both paths' top edges" : x.kind === "clean" ? "clean path" : "adversarial path"})`);
    gaps.filter((f, i) => gaps.findIndex((g) => g.source === f.source && g.target === f.target) === i).forEach((f) => {
      if (xs(f.source) == null || xs(f.target) == null) return;
      const c = conn.get(`${f.source}>${f.target}`) || {};
      svg.append("text").attr("x", (xs(f.source) + xs(f.target)) / 2).attr("y", (m.t + H - m.b) / 2).attr("text-anchor", "middle").attr("class", "axis-label dp-noflow")
        .text("no flow edges").append("title").text(c.reason || "this layer pair is not joined by one Conv2d/Linear module");
    });
    cols.forEach((c) => {
      const g = svg.append("g").attr("class", "dp-col").attr("data-layer", c.layer);
      g.append("text").attr("x", xs(c.layer)).attr("y", 14).attr("text-anchor", "middle").attr("class", "dp-col-title").text(c.layer);
      const wd = (DP.widths || {})[c.layer];
      g.append("text").attr("x", xs(c.layer)).attr("y", 28).attr("text-anchor", "middle").attr("class", "axis-label")
        .text(`${c.n.shared} shared · ${c.n.clean} clean · ${c.n.adv} adv${wd != null ? ` / ${wd}` : ""}`);
      const nd = g.selectAll("g").data(c.nodes).join("g").attr("transform", (d) => `translate(${d.x},${d.y})`);
      nd.append("circle").attr("class", (d) => `dp-neuron ${d.kind === "adv" ? "adv-only" : d.kind === "clean" ? "clean-only" : "shared"}`)
        .attr("data-id", (d) => d.id).attr("r", r).attr("fill", (d) => DPCOL[d.kind]).attr("stroke", "#fff").attr("stroke-width", 0.8)
        .append("title").text((d) => `${c.layer} neuron ${d.id}: ${DPKIND[d.kind]}`);
      if (step >= 11) nd.append("text").attr("x", -r - 3).attr("y", 3.5).attr("text-anchor", "end").attr("class", "dp-nid").text((d) => d.id);
    });
  }

  A.datapaths = { load, render };
})(window.advtopo);
