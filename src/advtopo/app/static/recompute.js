/* Rebuilding a graph with other Mapper parameters (server mode): the ⟳ box of a panel, its
 * job polling, and the k-distance curve beside the eps input. */
(function (A) {
  "use strict";
  const S = A.store;
  const { esc, shortNumber } = A.format;
  const DS = A.data.source;

  function toggle(p) {
    let box = p.el.querySelector(".recompute");
    if (box) { box.remove(); return; }
    const e = S.entry.get(p.id) || {}, pr = e.params || {};
    const eps0 = requestedEps(e);
    box = document.createElement("div"); box.className = "recompute";
    box.innerHTML = `intervals <input name="n_intervals" type="number" min="1" max="1000" value="${esc(pr.n_intervals ?? 10)}">
      overlap <input name="overlap" type="number" step="0.05" min="0" max="0.95" value="${esc(pr.overlap ?? 0.3)}">
      eps <input name="eps" value="${esc(eps0)}" title="auto: the knee of the k-distance curve (this graph's resolved eps: ${esc(pr.eps ?? "?")})"> lens <input name="lens" value="${esc(pr.lens ?? "l2norm")}">
      <button class="btn small primary">Rebuild</button><div class="progress"><div></div></div><div class="hint rc-msg"></div>`;
    p.el.insertBefore(box, p.el.querySelector(".panel-title"));
    const kd = (S.graphs.get(p.id) || {}).k_distance;
    if (kd && Array.isArray(kd.values) && kd.values.length > 1) kDistanceChart(box, kd, box.querySelector("[name=eps]"));
    box.querySelector("button").addEventListener("click", async () => {
      const v = (n) => box.querySelector(`[name=${n}]`).value;
      const eps = v("eps") === "auto" ? "auto" : +v("eps");
      const msg = box.querySelector(".rc-msg"), bar = box.querySelector(".progress div");
      try {
        let job = await DS.recompute({ graph: p.id, n_intervals: +v("n_intervals"), overlap: +v("overlap"), eps, lens: v("lens") });
        while (job.state === "queued" || job.state === "running") {
          msg.textContent = job.message; bar.style.width = `${100 * job.progress}%`;
          await new Promise((r) => setTimeout(r, 500));
          job = await DS.recomputeJob(job.id);
        }
        if (job.state !== "done") throw new Error(job.message);
        bar.style.width = "100%";
        S.clearToast();  // an earlier rebuild's error must not stay over this result
        S.setIndex(await DS.index());
        p.id = job.graph_id; A.graphs.buildPanels();
      } catch (err) { msg.textContent = err.message; S.toast("recompute: " + err.message, true); }
    });
  }

  /** The eps the graph was asked for ("auto" or a number), not the one DBSCAN resolved: the
   * build record's, else the graph params' eps_requested, else "auto" when unknown. */
  function requestedEps(e) {
    const b = e.build && e.build.mapper;
    if (b && b.eps != null) return b.eps;
    const pr = e.params || {};
    if (pr.eps_requested != null) return pr.eps_requested;
    return e.recomputed && pr.eps != null ? pr.eps : "auto";
  }

  /** "intervals 10 · overlap 0.3 · eps auto · lens l2norm": what a recomputed graph was built with. */
  function paramsLine(e) {
    const pr = e.params || {};
    const parts = [];
    if (pr.n_intervals != null) parts.push(`intervals ${pr.n_intervals}`);
    if (pr.overlap != null) parts.push(`overlap ${pr.overlap}`);
    if (pr.eps != null) parts.push(`eps ${typeof pr.eps === "number" ? shortNumber(pr.eps) : pr.eps}`);
    if (pr.lens != null) parts.push(`lens ${pr.lens}`);
    return parts.join(" · ");
  }

  // k-distance curve (k = min_samples): DBSCAN's eps is usually picked at its knee.
  // Click the curve to copy that distance into the eps input.
  function kDistanceChart(box, kd, input) {
    const W = 260, H = 90, m = { l: 38, r: 6, t: 6, b: 18 };
    const div = document.createElement("div"); div.className = "kdist";
    div.innerHTML = `<div class="hint">${kd.k}-distance curve (sorted sample) · click to set eps</div>`;
    box.appendChild(div);
    const vals = kd.values, xs = d3.scaleLinear().domain([0, 1]).range([m.l, W - m.r]);
    const ys = d3.scaleLinear().domain(d3.extent(vals)).nice().range([H - m.b, m.t]);
    const svg = d3.select(div).append("svg").attr("viewBox", `0 0 ${W} ${H}`).attr("width", W).attr("height", H);
    svg.append("g").attr("class", "axis").attr("transform", `translate(${m.l},0)`).call(d3.axisLeft(ys).ticks(3).tickFormat(d3.format(".2~g")));
    svg.append("g").attr("class", "axis").attr("transform", `translate(0,${H - m.b})`).call(d3.axisBottom(xs).ticks(2).tickFormat(d3.format(".0%")));
    const q = kd.quantiles || vals.map((_, i) => i / (vals.length - 1));
    svg.append("path").attr("fill", "none").attr("stroke", "#2563eb").attr("stroke-width", 1.5)
      .attr("d", d3.line().x((_, i) => xs(q[i])).y((v) => ys(v))(vals));
    const rule = svg.append("line").attr("x1", m.l).attr("x2", W - m.r).attr("stroke", "#dc2626").attr("stroke-dasharray", "3,2");
    const place = (v) => { const ok = isFinite(v); rule.style("display", ok ? null : "none"); if (ok) rule.attr("y1", ys(v)).attr("y2", ys(v)); };
    place(+kd.eps);
    input.addEventListener("input", () => place(+input.value));
    svg.append("rect").attr("x", m.l).attr("y", m.t).attr("width", W - m.l - m.r).attr("height", H - m.t - m.b)
      .attr("fill", "transparent").style("cursor", "crosshair").on("click", (ev) => {
        const fx = Math.max(0, Math.min(1, xs.invert(d3.pointer(ev)[0])));
        const i = Math.round(fx * (vals.length - 1));
        input.value = shortNumber(vals[i]); place(vals[i]);
      });
  }

  A.recompute = { toggle, requestedEps, paramsLine };
})(window.advtopo);
