/* The legend above the graph panels (classes, colour bar, what size, width and rings mean)
 * and the node tooltip. */
(function (A) {
  "use strict";
  const S = A.store, state = S.state, $ = S.$;
  const { fmt, esc } = A.format;

  function render(sc) {
    const L = $("#legend");
    L.innerHTML = "";
    if (state.color === "class" || state.size !== "members") {
      const t = document.createElement("span"); t.className = "title"; t.textContent = "classes"; L.appendChild(t);
      S.classes.forEach((name, c) => {
        const it = document.createElement("span");
        it.className = "item" + (state.search != null && state.search !== c ? " off" : "");
        it.innerHTML = `<span class="sw" style="background:${S.ccolor(c)}"></span>${esc(name)}`;
        it.title = "click: dim the nodes without this class";
        it.dataset.cls = c;
        it.addEventListener("click", () => A.controls.setSearch(state.search === c ? null : c));
        L.appendChild(it);
      });
    }
    if (state.color !== "class" && sc.color) {
      if (L.children.length) { const s = document.createElement("span"); s.className = "sep"; L.appendChild(s); }
      const wrap = document.createElement("span"); wrap.className = "colorbar"; L.appendChild(wrap);
      const W = 230, svg = d3.select(wrap).append("svg").attr("width", W + 150).attr("height", 34);
      const gid = "cb-grad";
      const grad = svg.append("defs").append("linearGradient").attr("id", gid);
      d3.range(0, 1.0001, 0.1).forEach((t) => grad.append("stop").attr("offset", t).attr("stop-color", sc.color(sc.domain[0] + t * (sc.domain[1] - sc.domain[0]))));
      svg.append("text").attr("x", 0).attr("y", 16).attr("font-size", 11).attr("fill", "#374151").text(A.samplecols.isCol(state.color) ? A.samplecols.label(state.color) : A.colors.ATTRS[state.color].label);
      const g = svg.append("g").attr("transform", "translate(140,3)");
      g.append("rect").attr("width", W).attr("height", 11).attr("rx", 2).attr("fill", `url(#${gid})`);
      g.append("g").attr("class", "axis").attr("transform", "translate(0,11)").call(d3.axisBottom(d3.scaleLinear().domain(sc.domain).range([0, W])).ticks(5).tickSize(4));
    }
    const s = document.createElement("span"); s.className = "sep"; L.appendChild(s);
    const marks = document.createElement("span"); marks.className = "marks";
    const sizeText = state.size === "members" ? "members" : A.samplecols.isCol(state.size) ? A.samplecols.label(state.size) : "members of " + S.cname(+state.size.slice(6));
    marks.innerHTML = `<span title="size = ${esc(sizeText)}">● size = ${esc(sizeText)}</span>` +
      `<span>━ width = Jaccard</span>` +
      (state.locate != null ? `<span><span class="mark-ring"></span> holds sample ${state.locate}</span>` : "") +
      (state.selected || state.highlight ? `<span><span class="mark-ring sel"></span> selection</span>` : "");
    L.appendChild(marks);
  }

  // ------------------------------------------------------------------ tooltip
  // after a click the node is redrawn under a still pointer, which "enters" it again: no tooltip
  // for that node until the pointer has left a node (hideTip(node) sets this, leaveTip clears it).
  // Only the clicked node is muted: the redrawn node may never get a mouseleave (the pointer
  // left before the browser hit-tested it), and a global flag then silenced every node's tooltip.
  let muted = null;
  function showTip(ev, g, e, i, x) {
    if (muted && muted === g.nodes[i]) return;
    const n = g.nodes[i];
    const top = A.pie.topParts(x.hist, 4);
    const t = $("#tooltip");
    t.innerHTML = `<b>node ${esc(n.id)}</b> · ${x.count} members<br>` +
      `${x.count - x.nAdv} clean · <span style="color:#fca5a5">${x.nAdv} adversarial</span><br>` +
      top.map(([c, v]) => `<span class="sw" style="background:${S.ccolor(c)}"></span>${esc(S.cname(c))} ${Math.round((100 * v) / x.count)}%`).join("<br>") +
      `<br>purity ${fmt(x.purity)} · misclassified ${fmt(x.frac_misclassified)}` +
      (x.mean_l2 != null ? `<br>mean L2 ${fmt(x.mean_l2)} · lens ${fmt(x.mean_lens)}` : "") +
      [state.color, state.size].filter((k, j, a) => A.samplecols.isCol(k) && a.indexOf(k) === j)
        .map((k) => `<br><span class="tip-col">${esc(A.samplecols.label(k))} <b>${x[k] == null ? "–" : fmt(x[k], 3)}</b></span>`).join("") +
      tipThumbs(g, e, n);
    t.classList.remove("hidden");
    moveTip(ev);
  }
  // the first few members' images (clean, or adversarial in the adversarial Points mode)
  function tipThumbs(g, e, n) {
    const P = g.points || {}, adv = P.is_adversarial || [], seen = new Set(), out = [];
    for (const r of n.members || []) {
      const sid = (P.sample_id || [])[r];
      if (sid == null || !A.selection.inMode(!!adv[r], state.points) || seen.has(sid)) continue;
      seen.add(sid);
      const src = A.data.source.image(sid, adv[r] ? "adversarial" : "clean", e);
      if (src) out.push(`<img src="${src}" alt="">`);
      if (out.length === 6) break;
    }
    return out.length ? `<div class="tip-thumbs">${out.join("")}</div>` : "";
  }
  function moveTip(ev) {
    const t = $("#tooltip");
    const w = t.offsetWidth, h = t.offsetHeight;
    let x = ev.clientX + 14, y = ev.clientY + 12;
    if (x + w > innerWidth - 6) x = ev.clientX - w - 14;
    if (y + h > innerHeight - 6) y = ev.clientY - h - 12;
    t.style.left = x + "px"; t.style.top = y + "px";
  }
  function hideTip(mute) { $("#tooltip").classList.add("hidden"); if (mute && typeof mute === "object") muted = mute; }
  function leaveTip() { muted = null; hideTip(); }

  A.legend = { render, showTip, moveTip, hideTip, leaveTip };
})(window.advtopo);
