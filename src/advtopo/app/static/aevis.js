/* AEVis's layer, neuron and class levels in the Datapaths tab (docs/datapaths.md):
 * - layer level: one sample's feature maps at a gated layer, clean | adversarial | difference,
 *   the critical channels of each datapath marked, sortable (GET api/aevis/layer: computes);
 * - neuron level: a channel's learned feature and its top activating images (GET api/aevis/neuron);
 * - class level: the aggregated flow of fooled samples per (true -> adversarial class), from
 *   datapaths.json's class_flow (no request).
 * The two computing views need the server (the static export shows a note). */
(function (A) {
  "use strict";
  const S = A.store;
  const { fmt, esc } = A.format;
  const enc = encodeURIComponent;
  const COL = { clean: "#2563eb", adv: "#dc2626", both: "#7c3aed", neither: "#94a3b8" };
  const tokenMeta = document.querySelector('meta[name="advtopo-token"]');
  const TOKEN = tokenMeta ? tokenMeta.getAttribute("content") : null;
  const state = { layer: null, sort: "activation", show: "all", limit: 48, classEps: null, pair: 0 };

  async function getJSON(url) {
    const r = await fetch(url, { headers: TOKEN ? { "X-Advtopo-Token": TOKEN } : {} });
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok) throw new Error((body && body.error) || `${r.status} ${r.statusText}`);
    return body;
  }
  const isStatic = () => A.data.source.mode !== "server";

  function injectStyle() {
    if (document.getElementById("aevis-style")) return;
    const st = document.createElement("style"); st.id = "aevis-style";
    st.textContent = `
.ae-card { margin-top: 12px; }
.ae-row { display: flex; flex-wrap: wrap; gap: 12px 24px; align-items: flex-start; }
.ae-maps { flex: 0 1 auto; max-width: 560px; }
.ae-neuron-wrap { flex: 1 1 320px; min-width: 280px; }
.ae-neuron-wrap h3 { margin-top: 0; }
.ae-grid { display: grid; grid-template-columns: max-content max-content max-content max-content; gap: 4px 10px; align-items: center; max-height: 620px; overflow-y: auto; }
.ae-grid .ae-h { font-size: 11px; color: #4b5563; position: sticky; top: 0; background: var(--panel, #fff); }
.ae-ch { font-size: 12px; cursor: pointer; white-space: nowrap; padding: 2px 4px; border-radius: 3px; }
.ae-ch:hover, .ae-ch.on { background: #e0e7ff; }
.ae-ch .ae-g { display: inline-block; min-width: 34px; margin-left: 4px; padding: 0 3px; border-radius: 3px; font-size: 11px; text-align: center; }
.ae-ch .ae-g.crit-clean { background: ${COL.clean}; color: #fff; }
.ae-ch .ae-g.crit-adv { background: ${COL.adv}; color: #fff; }
.ae-map { image-rendering: pixelated; border: 2px solid transparent; display: block; }
.ae-map.crit-clean { border-color: ${COL.clean}; }
.ae-map.crit-adv { border-color: ${COL.adv}; }
.ae-neuron { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; margin-top: 10px; }
.ae-neuron img { image-rendering: pixelated; width: 64px; height: 64px; border: 1px solid #d1d5db; }
.ae-neuron figure { margin: 0; text-align: center; font-size: 11px; }
.ae-examples { display: flex; flex-wrap: wrap; gap: 6px; }
.ae-note { color: #4b5563; font-size: 12px; margin: 6px 0; }
.ae-class svg { display: block; }
.ae-legend { display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; }
.ae-legend .sw { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 4px; vertical-align: -2px; }`;
    document.head.appendChild(st);
  }

  function seg(host, id, label, opts, value, onPick) {
    const wrap = document.createElement("div"); wrap.className = "dp-ctl";
    wrap.innerHTML = `<span class="hint">${esc(label)}</span><div class="seg" id="${id}" role="group" aria-label="${esc(label)}">` +
      opts.map(([v, t]) => `<button data-v="${esc(v)}" class="${String(value) === String(v) ? "on" : ""}" aria-pressed="${String(value) === String(v)}">${esc(t)}</button>`).join("") + `</div>`;
    wrap.querySelectorAll("button").forEach((b) => b.addEventListener("click", () => {
      wrap.querySelectorAll("button").forEach((x) => { x.classList.toggle("on", x === b); x.setAttribute("aria-pressed", String(x === b)); });
      onPick(b.dataset.v);
    }));
    host.appendChild(wrap);
  }

  // one map as a canvas: values -> colours (activation: 0..hi on a sequential scale; difference: -hi..hi diverging)
  function mapCanvas(values, kind, hi, cls, title) {
    const h = values.length, w = h ? values[0].length : 0;
    const cv = document.createElement("canvas"); cv.width = Math.max(1, w); cv.height = Math.max(1, h);
    const px = Math.max(3, Math.min(12, Math.floor(72 / Math.max(w, h, 1))));
    cv.style.width = `${w * px}px`; cv.style.height = `${h * px}px`;
    cv.className = "ae-map" + (cls ? " " + cls : ""); cv.title = title;
    const ctx = cv.getContext("2d"), img = ctx.createImageData(cv.width, cv.height);
    const top = hi > 0 ? hi : 1;
    const seq = d3.interpolateMagma, div = d3.interpolateRdBu;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const v = +values[y][x];
      const c = d3.rgb(kind === "difference" ? div(0.5 - Math.max(-1, Math.min(1, v / top)) / 2) : seq(Math.max(0, Math.min(1, v / top))));
      const o = 4 * (y * w + x);
      img.data[o] = c.r; img.data[o + 1] = c.g; img.data[o + 2] = c.b; img.data[o + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    return cv;
  }

  /** The layer-level card for sample `sid` at eps `e` (appended to `host`, the Sample flow card). */
  function layerView(host, DP, sid, e) {
    injectStyle();
    const card = document.createElement("div"); card.className = "ae-card ae-layer"; card.id = "ae-layer";
    card.innerHTML = `<h3>Feature maps of sample #${esc(sid)} (layer level)</h3>`;
    host.appendChild(card);
    if (isStatic()) {
      card.insertAdjacentHTML("beforeend", `<div class="ae-note">The feature maps are computed from the model by <code>advtopo serve</code>; this static export has no server.</div>`);
      return;
    }
    if (!state.layer || !DP.layers.includes(state.layer)) state.layer = DP.layers[0];
    const ctl = document.createElement("div"); ctl.className = "dp-ctls"; card.appendChild(ctl);
    const row = document.createElement("div"); row.className = "ae-row"; card.appendChild(row);
    const body = document.createElement("div"); body.className = "ae-maps"; row.appendChild(body);
    const neuron = document.createElement("div"); neuron.className = "ae-neuron-wrap"; row.appendChild(neuron);
    neuron.innerHTML = `<div class="ae-note">Click a channel for its learned feature and the images that activate it most (neuron level).</div>`;
    const draw = () => drawLayer(body, neuron, DP, sid, e);
    seg(ctl, "ae-layer-pick", "layer", DP.layers.map((l) => [l, l]), state.layer, (v) => { state.layer = v; draw(); });
    seg(ctl, "ae-sort", "sort by", [["activation", "activation"], ["gate", "gate value"], ["difference", "difference"], ["channel", "index"]], state.sort, (v) => { state.sort = v; draw(); });
    seg(ctl, "ae-show", "channels", [["all", "all"], ["critical", "critical in either path"]], state.show, (v) => { state.show = v; draw(); });
    draw();
  }

  async function drawLayer(body, neuron, DP, sid, e) {
    const want = `${sid}|${state.layer}|${e}|${state.sort}|${state.show}`;
    body.dataset.want = want;
    body.innerHTML = `<div class="ae-note">computing the feature maps…</div>`;
    let v;
    try {
      v = await getJSON(`api/aevis/layer?sample=${enc(sid)}&layer=${enc(state.layer)}&eps=${enc(e)}&sort=${enc(state.sort)}`);
    } catch (err) {
      if (body.dataset.want === want) body.innerHTML = `<div class="ae-note">feature maps unavailable: ${esc(err.message)}</div>`;
      return;
    }
    if (body.dataset.want !== want) return;  // another choice was made meanwhile
    if (!v || v.available === false) { body.innerHTML = `<div class="ae-note">feature maps unavailable: ${esc((v && v.reason) || "no data")}</div>`; return; }
    let chans = v.channels || [];
    if (state.show === "critical") chans = chans.filter((c) => c.critical_clean || c.critical_adversarial);
    const nc = (v.channels || []).filter((c) => c.critical_clean).length, na = (v.channels || []).filter((c) => c.critical_adversarial).length;
    body.innerHTML = `<div class="ae-note">${esc(v.n_channels)} ${v.height * v.width === 1 ? "units" : `channels of ${esc(v.height)}×${esc(v.width)}`} at <b>${esc(v.layer)}</b>; critical (gate ≥ ${esc(v.threshold)}): <span style="color:${COL.clean}">■</span> clean path ${nc}, <span style="color:${COL.adv}">■</span> adversarial path ${na} (gates ${esc(v.gates_from)}); colour scales shared by all channels: activation 0…${fmt(v.range.activation, 3)}, difference ±${fmt(v.range.difference, 3)} (adversarial − clean). Click a channel for its learned feature.</div>`;
    if (v.residual_block) {
      const mean = (k, who) => { const cs = (v.channels || []).filter((c) => c[who]); return cs.length ? d3.mean(cs, (c) => c[k]) : null; };
      body.insertAdjacentHTML("beforeend", `<div class="ae-note ae-skip">residual block: share of each channel's output that the skip connection carries (Σ|skip| / (Σ|skip| + Σ|residual branch|)), mean over the critical channels: clean path ${fmt(mean("skip_share_clean", "critical_clean"), 2)}, adversarial path ${fmt(mean("skip_share_adversarial", "critical_adversarial"), 2)}; per channel in the label.</div>`);
    }
    const grid = document.createElement("div"); grid.className = "ae-grid"; body.appendChild(grid);
    grid.innerHTML = `<span class="ae-h">channel · gates (clean, adv.)</span><span class="ae-h">clean</span><span class="ae-h">adversarial ε = ${esc(e)}</span><span class="ae-h">difference</span>`;
    chans.slice(0, state.limit).forEach((c) => {
      const lab = document.createElement("span"); lab.className = "ae-ch"; lab.dataset.channel = c.channel; lab.tabIndex = 0; lab.setAttribute("role", "button");
      const g = (val, crit, who) => `<span class="ae-g ${crit ? "crit-" + who : ""}" title="${who === "clean" ? "clean" : "adversarial"} gate ${fmt(val, 3)}${crit ? " (critical)" : ""}">${val == null ? "–" : fmt(val, 2)}</span>`;
      lab.innerHTML = `#${esc(c.channel)}${g(c.gate_clean, c.critical_clean, "clean")}${g(c.gate_adversarial, c.critical_adversarial, "adv")}` +
        (c.skip_share_clean != null ? `<span class="hint ae-skipv" title="skip connection's share of this channel: clean ${fmt(c.skip_share_clean, 2)}, adversarial ${fmt(c.skip_share_adversarial, 2)}"> skip ${fmt(c.skip_share_clean, 2)}/${fmt(c.skip_share_adversarial, 2)}</span>` : "");
      lab.title = `channel ${c.channel}: mean activation clean ${fmt(c.mean_clean, 3)}, adversarial ${fmt(c.mean_adversarial, 3)}, mean |difference| ${fmt(c.mean_abs_difference, 3)}`;
      const pick = () => { grid.querySelectorAll(".ae-ch").forEach((x) => x.classList.toggle("on", x === lab)); neuronView(neuron, DP, state.layer, c.channel); };
      lab.addEventListener("click", pick);
      lab.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); pick(); } });
      grid.appendChild(lab);
      grid.appendChild(mapCanvas(c.clean, "activation", v.range.activation, c.critical_clean ? "crit-clean" : "", `clean, channel ${c.channel}: mean ${fmt(c.mean_clean, 3)}`));
      grid.appendChild(mapCanvas(c.adversarial, "activation", v.range.activation, c.critical_adversarial ? "crit-adv" : "", `adversarial, channel ${c.channel}: mean ${fmt(c.mean_adversarial, 3)}`));
      grid.appendChild(mapCanvas(c.difference, "difference", v.range.difference, "", `adversarial − clean, channel ${c.channel}: mean |difference| ${fmt(c.mean_abs_difference, 3)}`));
    });
    if (chans.length > state.limit) {
      const more = document.createElement("button"); more.className = "btn small"; more.textContent = `show all ${chans.length} channels`;
      more.addEventListener("click", () => { state.limit = 100000; drawLayer(body, neuron, DP, sid, e); });
      body.appendChild(more);
    }
    if (!chans.length) body.insertAdjacentHTML("beforeend", `<div class="ae-note">no channel is critical in either path</div>`);
  }

  /** The neuron level: `channel` of `layer`, its learned feature and top activating images. */
  async function neuronView(host, DP, layer, channel) {
    const want = `${layer}|${channel}`;
    host.dataset.want = want;
    host.innerHTML = `<h3>Neuron ${esc(layer)} #${esc(channel)} (neuron level)</h3><div class="ae-note">computing its learned feature…</div>`;
    let v;
    try { v = await getJSON(`api/aevis/neuron?layer=${enc(layer)}&channel=${enc(channel)}&k=12`); } catch (err) {
      if (host.dataset.want === want) host.innerHTML += `<div class="ae-note">unavailable: ${esc(err.message)}</div>`;
      return;
    }
    if (host.dataset.want !== want) return;
    if (!v || v.available === false) { host.innerHTML += `<div class="ae-note">unavailable: ${esc((v && v.reason) || "no data")}</div>`; return; }
    const box = document.createElement("div"); box.className = "ae-neuron"; box.dataset.channel = channel;
    box.innerHTML = `<figure class="ae-feature">${v.feature ? `<img src="${v.feature}" alt="learned feature of ${esc(layer)} channel ${esc(channel)}">` : `<div class="noimg">none</div>`}` +
      `<figcaption>learned feature<br><span class="hint">cosine ${fmt(v.feature_cosine, 2)}</span></figcaption></figure>` +
      `<div><div class="ae-note">top ${esc(v.top.length)} of the run's ${esc(v.n_images)} clean images by mean activation</div><div class="ae-examples">` +
      v.top.map((t) => `<figure class="ae-example" data-sid="${esc(t.sample_id)}"><img src="api/image/clean/${enc(t.sample_id)}.png" alt="sample ${esc(t.sample_id)}"><figcaption>#${esc(t.sample_id)} · ${fmt(t.activation, 3)}</figcaption></figure>`).join("") + `</div></div>`;
    host.querySelector(".ae-note").remove();
    host.appendChild(box);
  }

  /** The class level: the diverge-and-merge picture of one (true -> adversarial class) group. */
  function classCard(host, DP) {
    injectStyle();
    const flows = DP.class_flow;
    const card = A.summary.card(host, "Class level: where fooled samples' paths go",
      "per (true class → adversarial class) group of fooled samples: the group's aggregated adversarial datapath per layer, split by which class's typical clean datapath holds each neuron", true);
    card.classList.add("ae-class"); card.id = "ae-class";
    if (!flows || typeof flows !== "object" || !Object.keys(flows).length) {
      card.insertAdjacentHTML("beforeend", `<div class="ae-note">This run's datapaths.json has no <code>class_flow</code> (written by advtopo's datapaths stage from this version on): re-run the datapaths stage.</div>`);
      return;
    }
    const keys = Object.keys(flows).sort((a, b) => +a - +b);
    if (state.classEps == null || !keys.includes(state.classEps)) state.classEps = keys[keys.length - 1];
    const ctl = document.createElement("div"); ctl.className = "dp-ctls"; card.appendChild(ctl);
    const body = document.createElement("div"); card.appendChild(body);
    seg(ctl, "ae-class-eps", "ε", keys.map((k) => [k, `ε = ${k}`]), state.classEps, (v) => { state.classEps = v; state.pair = 0; drawPairs(); });
    const pairHost = document.createElement("div"); pairHost.className = "dp-ctl"; ctl.appendChild(pairHost);
    function drawPairs() {
      const groups = flows[state.classEps] || [];
      pairHost.innerHTML = groups.length ? `<label class="hint" for="ae-pair">group</label> <select id="ae-pair">${groups.map((g, i) => `<option value="${i}"${i === state.pair ? " selected" : ""}>${esc(S.cname(g.true))} → ${esc(S.cname(g.adversarial))} (${esc(g.n)} fooled)</option>`).join("")}</select>` : "";
      const sel = pairHost.querySelector("select");
      if (sel) sel.addEventListener("change", () => { state.pair = +sel.value; drawClass(body, DP, groups[state.pair]); });
      drawClass(body, DP, groups[state.pair]);
    }
    drawPairs();
  }

  function drawClass(body, DP, g) {
    body.innerHTML = "";
    if (!g) { body.innerHTML = `<div class="ae-note">no sample is fooled at this ε</div>`; return; }
    const L = DP.layers.filter((l) => g.layers && g.layers[l]);
    const kinds = [["true_only", "true class only", COL.clean], ["both", "both classes", COL.both], ["adversarial_only", "adversarial class only", COL.adv], ["neither", "neither", COL.neither]];
    const W = Math.max(420, 170 * L.length + 120), H = 250, m = { l: 44, r: 44, t: 26, b: 32 };
    const xs = d3.scaleBand().domain(L).range([m.l, W - m.r]).padding(0.45);
    const tot = (l) => d3.sum(kinds, ([k]) => +(g.layers[l].counts || {})[k] || 0);
    const hiCount = d3.max(L, tot) || 1;
    const yc = d3.scaleLinear().domain([0, hiCount]).nice().range([H - m.b, m.t]);
    const yj = d3.scaleLinear().domain([0, 1]).range([H - m.b, m.t]);
    const svg = d3.select(body).append("svg").attr("viewBox", `0 0 ${W} ${H}`).attr("width", W).attr("height", H).attr("class", "ae-class-chart")
      .attr("role", "img").attr("aria-label", `aggregated datapath of ${g.n} samples of class ${S.cname(g.true)} fooled into ${S.cname(g.adversarial)}, per layer`);
    svg.append("g").attr("class", "axis").attr("transform", `translate(0,${H - m.b})`).call(d3.axisBottom(xs));
    svg.append("g").attr("class", "axis").attr("transform", `translate(${m.l},0)`).call(d3.axisLeft(yc).ticks(5).tickFormat(d3.format("d")));
    svg.append("g").attr("class", "axis").attr("transform", `translate(${W - m.r},0)`).call(d3.axisRight(yj).ticks(5));
    svg.append("text").attr("transform", `translate(11,${(H - m.b + m.t) / 2}) rotate(-90)`).attr("text-anchor", "middle").attr("class", "axis-label").text("neurons of the group's path");
    svg.append("text").attr("transform", `translate(${W - 6},${(H - m.b + m.t) / 2}) rotate(90)`).attr("text-anchor", "middle").attr("class", "axis-label").text("mean Jaccard to the typical path");
    L.forEach((l) => {
      const c = g.layers[l].counts || {};
      let y0 = 0;
      kinds.forEach(([k, label, col]) => {
        const n = +c[k] || 0;
        svg.append("rect").attr("class", `ae-seg ${k}`).attr("data-layer", l).attr("data-count", n).attr("x", xs(l)).attr("width", xs.bandwidth())
          .attr("y", yc(y0 + n)).attr("height", yc(y0) - yc(y0 + n)).attr("fill", col).attr("fill-opacity", 0.4)
          .append("title").text(`${l}: ${n} of the group's critical neurons are in ${label === "neither" ? "neither typical path" : `the typical path of ${label}`}`);
        y0 += n;
      });
    });
    const line = d3.line().defined((p) => p[1] != null).x((p) => xs(p[0]) + xs.bandwidth() / 2).y((p) => yj(p[1]));
    [["jaccard_true", COL.clean, `to class ${S.cname(g.true)} (true)`], ["jaccard_adversarial", COL.adv, `to class ${S.cname(g.adversarial)} (adversarial)`]].forEach(([k, col, what]) => {
      const pts = L.map((l) => [l, g.layers[l][k] == null ? null : +g.layers[l][k]]);
      svg.append("path").attr("class", `ae-line ${k}`).attr("d", line(pts) || "").attr("fill", "none").attr("stroke", col).attr("stroke-width", 2.6);
      svg.append("g").selectAll("circle").data(pts.filter((p) => p[1] != null)).join("circle").attr("cx", (p) => xs(p[0]) + xs.bandwidth() / 2).attr("cy", (p) => yj(p[1])).attr("r", 4).attr("fill", col).attr("stroke", "#fff").attr("stroke-width", 1.2)
        .append("title").text((p) => `${p[0]}: mean Jaccard of the fooled samples' adversarial paths ${what}: ${fmt(p[1], 3)}`);
    });
    body.insertAdjacentHTML("beforeend", `<div class="ae-legend">` + kinds.map(([k, label, col]) => `<span><span class="sw" style="background:${col};opacity:0.4"></span>${esc(label)}</span>`).join("") +
      `<span>lines: mean Jaccard to the typical path of the <span style="color:${COL.clean}">true</span> / <span style="color:${COL.adv}">adversarial</span> class</span></div>` +
      `<div class="ae-note">${esc(g.n)} samples of class ${esc(S.cname(g.true))} fooled into ${esc(S.cname(g.adversarial))} (#${g.sample_ids.slice(0, 20).map(esc).join(", #")}${g.sample_ids.length > 20 ? ", …" : ""}); typical path of a class = neurons critical for at least ${esc(DP.class_share ?? 0.5)} of the clean samples of that class the model gets right (${esc(g.n_true_class)} and ${esc(g.n_adversarial_class)} samples)${g.n_true_class && g.n_adversarial_class ? "" : "; a class without such samples has no typical path"}.</div>`);
  }

  /** Residual blocks among the gated layers: how much of the critical channels' output the skip carries. */
  function residualCard(host, DP) {
    const res = DP.residual;
    if (!res || !Array.isArray(res.blocks) || !res.blocks.length) return;
    const card = A.summary.card(host, "Skip connections of the gated residual blocks",
      "per block: the share of its critical channels' output that the skip connection carries (Σ|skip| / (Σ|skip| + Σ|residual branch|)), mean over samples", false);
    card.classList.add("ae-residual"); card.id = "ae-residual";
    const sk = res.skip_share || {};
    let t = `<table class="t"><tr><th>block</th><th class="num">clean</th>${DP.eps.map((e) => `<th class="num">adv. ε = ${esc(e)}</th><th class="num">fooled ε = ${esc(e)}</th>`).join("")}</tr>`;
    res.blocks.forEach((b) => {
      const v = sk[b] || {};
      t += `<tr data-block="${esc(b)}"><td>${esc(b)}</td><td class="num">${fmt(v.clean, 3)}</td>` +
        DP.eps.map((e, j) => `<td class="num">${fmt((v.adversarial || [])[j], 3)}</td><td class="num">${fmt((v.adversarial_fooled || [])[j], 3)}</td>`).join("") + `</tr>`;
    });
    card.insertAdjacentHTML("beforeend", t + `</table><div class="ae-note">Flow edges between consecutive gated blocks chain the block's two convs and add the skip (identity or its 1×1 conv); the per-channel share is in the layer view's labels.</div>`);
  }

  A.aevis = { layerView, neuronView, classCard, residualCard };
})(window.advtopo);
