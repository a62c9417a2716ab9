"""``advtopo report RUN``: the papers' claims measured on a run, as one self-contained HTML
page, a ``figures/`` folder (PNG dpi 200 + SVG) and ``findings.json`` (every number shown).

    from advtopo.report import build_report
    build_report("runs/demo")            # -> runs/demo/report/report.html

Re-running redraws only the figures whose inputs changed (their SHA-256 is kept in
``figures/manifest.json`` and findings.json). Every file is written atomically.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from advtopo.report.sections import SECTIONS, Section

__all__ = ["build_report", "SECTIONS", "Section", "REPORT_FILE", "FINDINGS_FILE"]

REPORT_FILE = "report.html"
FINDINGS_FILE = "findings.json"
MANIFEST_FILE = "manifest.json"  # inside figures/
FORMAT = 1


def build_report(run_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, *,
                 quiet: bool = False) -> Path:
    """Write the report of ``run_dir`` into ``out`` (default ``RUN/report/``); return the HTML path.

    Why one call: the report is the run's findings in publishable form; it reads the run only
    through :func:`advtopo.study.open_run` and the files index.json names. A section whose
    inputs are absent is written as "not in this run" with what to enable; a section that
    fails unexpectedly is reported as an error (the others are still written).
    """
    from advtopo import __version__
    from advtopo.report.figures import input_hash, model_style, render
    from advtopo.report.html import render_page
    from advtopo.study import open_run
    from advtopo.utils import atomic_write_json, atomic_write_text

    t0 = time.perf_counter()
    run = open_run(run_dir)
    out = Path(out) if out is not None else run.root / "report"
    fig_dir = out / "figures"
    if out.exists() and not out.is_dir():
        from advtopo.errors import AdvtopoError

        raise AdvtopoError(f"--out {out} is a file; give a folder (default: RUN/report)")
    fig_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = fig_dir / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    except ValueError:
        manifest = {}
    style = {"models": model_style(run.models)}

    def say(msg: str) -> None:
        if not quiet:
            print(msg, flush=True)

    results, svgs, new_manifest = [], {}, {}
    n = len(SECTIONS)
    for i, (key, fn) in enumerate(SECTIONS, 1):
        ts = time.perf_counter()
        try:
            sec = fn(run)
        except Exception as exc:  # a bug or a malformed file: report it, keep the other sections
            if not quiet:
                traceback.print_exc(file=sys.stderr)
            sec = Section(key, key, "", "")
            d = {**sec.to_dict(), "status": "error", "error": f"{type(exc).__name__}: {exc}"}
            d["title"] = key.replace("_", " ").capitalize()
            results.append(d)
            say(f"[{i:2d}/{n}] {key}: error ({type(exc).__name__}: {exc})")
            continue
        d = sec.to_dict()
        if sec.present and sec.figure_input is not None:
            h = input_hash(key, sec.figure_input, style, sec.figure_arrays)
            old = manifest.get(key) or {}
            files = {"png": f"figures/{key}.png", "svg": f"figures/{key}.svg"}
            if old.get("hash") == h and all((out / p).is_file() for p in files.values()):
                state = "reused"
            else:
                files = render(key, sec.figure_input, style, sec.figure_arrays, fig_dir)
                state = "drawn"
            new_manifest[key] = {"hash": h, **files}
            d["figure"] = {"name": key, "hash": h, **files}
            svgs[key] = (out / files["svg"]).read_text(encoding="utf-8")
            verdict = f" — {sec.verdict}" if sec.verdict else ""
            say(f"[{i:2d}/{n}] {key}: figure {state} ({time.perf_counter() - ts:.1f}s){verdict}")
        else:
            say(f"[{i:2d}/{n}] {key}: not in this run ({sec.missing})")
        results.append(d)
    for key in set(manifest) - set(new_manifest):  # figures of sections that are gone
        for ext in ("png", "svg"):
            (fig_dir / f"{key}.{ext}").unlink(missing_ok=True)

    idx = run.index
    meta = {"name": idx.get("name", run.root.name), "path": str(run.root), "dataset": idx["dataset"]["name"],
            "n_samples": idx["dataset"].get("n_samples"), "models": run.models, "layers": run.layers,
            "version": __version__,
            "generated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    findings = {"format": FORMAT, "run": meta, "advtopo_version": __version__,
                "verdicts": {r["key"]: (r.get("verdict") if r["status"] == "ok" else r["status"]) for r in results},
                "sections": results, "seconds": round(time.perf_counter() - t0, 2)}
    atomic_write_json(manifest_path, new_manifest)
    atomic_write_json(out / FINDINGS_FILE, _strict(findings))
    page = out / REPORT_FILE
    atomic_write_text(page, render_page(meta, results, svgs))
    for p in [page, out / FINDINGS_FILE, manifest_path, *(out / f for e in new_manifest.values()
                                                          for f in (e["png"], e["svg"]))]:
        os.chmod(p, 0o644)  # atomic writes create 0600 temp files; a report is meant to be shared
    say(f"report: {page} ({page.stat().st_size / 1e6:.1f} MB), {len(new_manifest)} figures, "
        f"{FINDINGS_FILE}; {time.perf_counter() - t0:.1f}s")
    return page


def _strict(obj: Any) -> Any:
    """JSON without NaN/Infinity (null instead), so any JSON parser reads findings.json."""
    if isinstance(obj, dict):
        return {str(k): _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        try:
            return _strict(obj.item())
        except (TypeError, ValueError):
            return obj
    return obj
