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
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from advtopo.errors import AdvtopoError
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
    through :func:`advtopo.rundir.open_run` and the files index.json names. A section whose
    inputs are absent is written as "not in this run" with what to enable; a section that
    fails unexpectedly is reported as an error (the others are still written).
    """
    from advtopo.report.figures import model_style
    from advtopo.rundir import layout, open_run

    t0 = time.perf_counter()
    run = open_run(run_dir)
    out = Path(out) if out is not None else run.root / layout.REPORT_DIR
    fig_dir = out / "figures"
    if out.exists() and not out.is_dir():
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
        d, figure = _section_result(key, fn, run, style, manifest.get(key) or {}, out, quiet, say,
                                    f"[{i:2d}/{n}] {key}")
        if figure is not None:
            new_manifest[key] = figure
            svgs[key] = (out / figure["svg"]).read_text(encoding="utf-8")
        results.append(d)
    for key in set(manifest) - set(new_manifest):  # figures of sections that are gone
        for ext in ("png", "svg"):
            (fig_dir / f"{key}.{ext}").unlink(missing_ok=True)

    page = _write_report(run, out, results, svgs, new_manifest, t0)
    say(f"report: {page} ({page.stat().st_size / 1e6:.1f} MB), {len(new_manifest)} figures, "
        f"{FINDINGS_FILE}; {time.perf_counter() - t0:.1f}s")
    return page


def _section_result(key: str, fn: Callable[[Any], Section], run: Any, style: dict[str, Any],
                    old_figure: dict[str, Any], out: Path, quiet: bool, say: Callable[[str], None],
                    label: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the section as findings.json holds it, its figure's manifest entry or None). The figure
    is redrawn only when its input hash differs from ``old_figure``'s or a file of it is missing."""
    from advtopo.report.figures import input_hash, render

    ts = time.perf_counter()
    try:
        sec = fn(run)
    except Exception as exc:  # a bug or a malformed file: report it, keep the other sections
        if not quiet:
            traceback.print_exc(file=sys.stderr)
        d = {**Section(key, key, "", "").to_dict(), "status": "error", "error": f"{type(exc).__name__}: {exc}"}
        d["title"] = key.replace("_", " ").capitalize()
        say(f"{label}: error ({type(exc).__name__}: {exc})")
        return d, None
    d = sec.to_dict()
    if not (sec.present and sec.figure_input is not None):
        say(f"{label}: not in this run ({sec.missing})")
        return d, None
    h = input_hash(key, sec.figure_input, style, sec.figure_arrays)
    files = {"png": f"figures/{key}.png", "svg": f"figures/{key}.svg"}
    if old_figure.get("hash") == h and all((out / p).is_file() for p in files.values()):
        state = "reused"
    else:
        files = render(key, sec.figure_input, style, sec.figure_arrays, out / "figures")
        state = "drawn"
    d["figure"] = {"name": key, "hash": h, **files}
    verdict = f" — {sec.verdict}" if sec.verdict else ""
    say(f"{label}: figure {state} ({time.perf_counter() - ts:.1f}s){verdict}")
    return d, {"hash": h, **files}


def _write_report(run: Any, out: Path, results: list[dict[str, Any]], svgs: dict[str, str],
                  manifest: dict[str, Any], t0: float) -> Path:
    """findings.json, figures/manifest.json and report.html, readable by others; -> the page."""
    from advtopo import __version__
    from advtopo.report.html import render_page
    from advtopo.utils import atomic_write_json, atomic_write_text, to_jsonable

    idx = run.index
    dataset = run.index_record.dataset  # optional in index.json (typed, checked records)
    meta = {"name": idx.get("name", run.root.name), "path": str(run.root), "dataset": dataset.name if dataset else "?",
            "n_samples": dataset.n_samples if dataset else None, "models": run.models, "layers": run.layers,
            "version": __version__,
            "generated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    findings = {"format": FORMAT, "run": meta, "advtopo_version": __version__,
                "verdicts": {r["key"]: (r.get("verdict") if r["status"] == "ok" else r["status"]) for r in results},
                "sections": results, "seconds": round(time.perf_counter() - t0, 2)}
    manifest_path = out / "figures" / MANIFEST_FILE
    atomic_write_json(manifest_path, manifest)
    atomic_write_json(out / FINDINGS_FILE, to_jsonable(findings))  # null for NaN/Infinity: any JSON parser reads it
    page = out / REPORT_FILE
    atomic_write_text(page, render_page(meta, results, svgs))
    for p in [page, out / FINDINGS_FILE, manifest_path, *(out / f for e in manifest.values()
                                                          for f in (e["png"], e["svg"]))]:
        os.chmod(p, 0o644)  # atomic writes create 0600 temp files; a report is meant to be shared
    return page

