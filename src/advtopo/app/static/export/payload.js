/* The static export's payload (app/export.py): the run's data and per-sample columns
 * (<script id="advtopo-payload">) and the thumbnails' pixels (<script id="advtopo-pixels">),
 * each gzip-compressed and written 7 bits per character. The export writes the app's scripts
 * as <script type="text/x-advtopo-deferred"> blocks; load() decodes and decompresses both with the browser's DecompressionStream (no library, offline),
 * puts window.ADVTOPO_EMBED together (pooled lists back in place, thumbnails drawn from raw
 * pixels into PNG data: URIs on first use), then runs those scripts in order. Why: the demo
 * run's export was 22.9 MB of JSON and base64 PNGs; compressed whole it is a fraction of that.
 * The pure parts (7-bit text, unpool, tiles, columns) load in Node for
 * tests/js/payload.test.js. */
(function (root, factory) {
  const api = factory();
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else (root.advtopo = root.advtopo || {}).payload = api;
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";
  const POOL_KEY = "@pool", ROWS_KEY = "@rows", DELTA_KEY = "d";  // export.py's pack_lists

  /** The header's pool with each list of increasing integers written as {d: [first, gaps...]}
   * (export.py's pack_lists(delta=True)) summed back. */
  function expandPool(pool) {
    return pool.map((p) => {
      if (Array.isArray(p)) return p;
      const d = p[DELTA_KEY], out = new Array(d.length);
      let acc = 0;
      for (let i = 0; i < d.length; i++) out[i] = acc += d[i];
      return out;
    });
  }

  /** `x` with every {"@pool": i} replaced by a copy of pool[i] and every {"@rows": keys, v: rows}
   * by its list of objects (the inverse of export.py's pack_lists); changes `x` in place. */
  function unpool(x, pool) {
    if (Array.isArray(x)) { for (let i = 0; i < x.length; i++) x[i] = unpool(x[i], pool); return x; }
    if (x && typeof x === "object") {
      const k = Object.keys(x);
      if (k.length === 1 && k[0] === POOL_KEY) return pool[x[POOL_KEY]].slice();
      if (k.length === 2 && k[0] === ROWS_KEY && k[1] === "v") {
        const keys = x[ROWS_KEY];
        return x.v.map((r) => { const o = {}; keys.forEach((q, j) => { o[q] = unpool(r[j], pool); }); return o; });
      }
      for (const key of k) x[key] = unpool(x[key], pool);
    }
    return x;
  }

  /** The pixels (h * w * c bytes, row-major) of tile `i` of image set `set` ({offset, ids, h, w,
   * c, base}). A set with a `base` holds each image minus the base set's image of the same
   * sample, mod 256 (adversarial images as differences from the clean ones: they compress
   * better); `baseSet` and `baseIndex` (sample id -> tile of the base set) undo that. */
  function tilePixels(pixels, set, i, baseSet, baseIndex) {
    const size = set.h * set.w * set.c, start = set.offset + i * size;
    if (!(i >= 0 && i < set.ids.length)) throw new Error(`no tile ${i} in this image set`);
    if (start + size > pixels.length) throw new Error("the export's thumbnails are truncated");
    const out = pixels.slice(start, start + size);
    if (set.base) {
      const j = baseIndex ? baseIndex.get(set.ids[i]) : undefined;
      if (j == null) throw new Error(`sample ${set.ids[i]} has no ${set.base} image to add to`);
      const b = baseSet.offset + j * size;
      for (let k = 0; k < size; k++) out[k] = (out[k] + pixels[b + k]) & 255;
    }
    return out;
  }

  /** RGBA bytes (for ImageData) of a tile with c = 1 (grey), 3 (RGB) or 4 (RGBA) channels. */
  function toRGBA(tile, c) {
    const n = tile.length / c, out = new Uint8ClampedArray(n * 4);
    for (let p = 0; p < n; p++) {
      const s = p * c, d = p * 4;
      if (c === 1) { out[d] = out[d + 1] = out[d + 2] = tile[s]; out[d + 3] = 255; }
      else { out[d] = tile[s]; out[d + 1] = tile[s + 1]; out[d + 2] = tile[s + 2]; out[d + 3] = c === 4 ? tile[s + 3] : 255; }
    }
    return out;
  }

  const close = (a, b) => Math.abs(a - b) <= 1e-8 + 1e-5 * Math.abs(b);  // numpy.isclose, as app/columns.py

  /** The per-point-row values of every column for one graph, as the server's /api/columns gives
   * them (app/columns.py): a clean row takes its sample's value at eps 0 of the graph's model and
   * attack, an adversarial row its value at the graph's eps; first_fooled_eps per sample of the
   * model and attack. `tables` is the export's embed.columns. */
  function graphColumns(points, entry, tables) {
    const sids = (points && points.sample_id) || [], adv = (points && points.is_adversarial) || [];
    const out = { n_rows: sids.length, columns: {} };
    if (!tables || !sids.length || !entry) return out;
    const find = (eps) => (tables.sets || []).find((s) => s.model === entry.model && s.attack === entry.attack && close(+s.eps, eps));
    const position = (set) => {
      const m = new Map();
      if (set) set.sample_id.forEach((sid, i) => { if (!m.has(sid)) m.set(sid, i); });  // the first row, like drop_duplicates
      return m;
    };
    const clean = find(0), attacked = find(+entry.eps || 0);
    const pc = position(clean), pa = position(attacked);
    const finite = (v) => (v == null || !Number.isFinite(+v) ? null : +v);
    for (const name of tables.names || []) {
      out.columns[name] = sids.map((sid, r) => {
        const set = adv[r] ? attacked : clean, pos = adv[r] ? pa : pc;
        const i = set ? pos.get(sid) : undefined;
        return i == null ? null : finite(set.values[name][i]);
      });
    }
    if (tables.first_fooled) {
      const ff = (tables.first_fooled || []).find((f) => f.model === entry.model && f.attack === entry.attack);
      const pf = position(ff);
      out.columns[tables.first_fooled_name || "first_fooled_eps"] = sids.map((sid) => {
        const i = ff ? pf.get(sid) : undefined;
        return i == null ? null : finite(ff.eps[i]);
      });
    }
    return out;
  }

  // ------------------------------------------------------------------ the page (browser only)
  /** An object whose property `sid` is the PNG data: URI of that sample's tile in `set` (drawn on
   * first use, then kept), what data.js reads from images.clean / images.adversarial[key]. */
  function imageTable(pixels, set, baseSet) {
    const index = new Map(set.ids.map((sid, i) => [String(sid), i]));
    const baseIndex = baseSet ? new Map(baseSet.ids.map((sid, i) => [sid, i])) : null;
    const cache = new Map();
    function uri(key) {
      if (cache.has(key)) return cache.get(key);
      const rgba = toRGBA(tilePixels(pixels, set, index.get(key), baseSet, baseIndex), set.c);
      const canvas = document.createElement("canvas");
      canvas.width = set.w; canvas.height = set.h;
      canvas.getContext("2d").putImageData(new ImageData(rgba, set.w, set.h), 0, 0);
      const u = canvas.toDataURL("image/png");
      cache.set(key, u);
      return u;
    }
    return new Proxy({}, {
      get: (t, key) => (typeof key === "string" && index.has(key) ? uri(key) : undefined),
      has: (t, key) => index.has(key),
      ownKeys: () => [...index.keys()],
      getOwnPropertyDescriptor: (t, key) => (index.has(key) ? { value: uri(key), enumerable: true, configurable: true } : undefined),
    });
  }

  /** window.ADVTOPO_EMBED from the parsed header ({pool, embed}) and the pixel bytes: lists
   * unpooled, thumbnails as image tables. */
  function assemble(meta, pixels) {
    const embed = unpool(meta.embed, expandPool(meta.pool || []));
    const im = embed.images || {}, px = im.pixels;
    if (px) {
      const sets = px.sets || {}, clean = sets.clean;
      if (clean) im.clean = imageTable(pixels, clean, null);
      im.adversarial = {};
      for (const key of Object.keys(sets)) {
        if (key === "clean") continue;
        im.adversarial[key] = imageTable(pixels, sets[key], sets[key].base ? sets[sets[key].base] : null);
      }
      delete im.pixels;
    }
    return embed;
  }

  async function gunzip(bytes) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  /** The bytes export.py's encode_7bit wrote as `text`: each character 7 bits (its code, or its
   * code - 0x100 for the characters standing for NUL, CR and '<'), in order; the last byte's
   * padding dropped. */
  function from7bit(text) {
    const n = text.length, out = new Uint8Array(Math.floor((n * 7) / 8));
    let acc = 0, bits = 0, o = 0;
    for (let i = 0; i < n; i++) {
      let c = text.charCodeAt(i);
      if (c >= 0x100 && c < 0x180) c -= 0x100;
      else if (c >= 0x80) throw new Error(`the export's data holds a character 7-bit text never has (U+${c.toString(16)} at ${i}): the file is damaged`);
      acc = ((acc << 7) | c) & 0x7fff;
      bits += 7;
      if (bits >= 8) { bits -= 8; out[o++] = (acc >> bits) & 255; }
    }
    return out.subarray(0, o);
  }

  /** Run the app's scripts (held back as text/x-advtopo-deferred blocks), in page order, once
   * the page is parsed. */
  function runDeferred() {
    if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", runDeferred, { once: true }); return; }
    for (const held of document.querySelectorAll('script[type="text/x-advtopo-deferred"]')) {
      const s = document.createElement("script");
      s.textContent = held.textContent;
      held.replaceWith(s);
    }
  }

  function fail(message) {
    const info = document.getElementById("run-info");
    if (info) info.textContent = message;
    document.body.dataset.ready = "error";
    console.error(message);
  }

  /** Decode the payload, set window.ADVTOPO_EMBED, start the app. */
  async function load() {
    const el = document.getElementById("advtopo-payload"), px = document.getElementById("advtopo-pixels");
    if (!el) return;
    if (typeof DecompressionStream === "undefined") {
      fail("This export needs a browser with DecompressionStream (Chrome/Edge 80+, Firefox 113+, Safari 16.4+) to unpack its data.");
      return;
    }
    let embed;
    const t0 = performance.now();
    try {
      const [header, pixels] = await Promise.all([gunzip(from7bit(el.textContent)),
        px ? gunzip(from7bit(px.textContent)) : new Uint8Array(0)]);
      embed = assemble(JSON.parse(new TextDecoder("utf-8").decode(header)), pixels);
      api.unpackMs = performance.now() - t0;  // read by benchmarks/app_render.py
    } catch (err) {
      fail("could not unpack the export's data: " + err.message);
      return;
    }
    el.textContent = "";  // the texts are no longer needed
    if (px) px.textContent = "";
    window.ADVTOPO_EMBED=embed;  // (the tests look for this assignment)
    runDeferred();
  }

  const api = { POOL_KEY, ROWS_KEY, from7bit, expandPool, unpool, tilePixels, toRGBA, graphColumns, imageTable, assemble, load, unpackMs: null };
  return api;
});
