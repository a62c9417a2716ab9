"""What ``advtopo runs`` and ``advtopo show`` print; reading a run is :mod:`advtopo.rundir`'s job
(``Run`` and ``open_run`` are re-exported here for older imports).

A damaged run is one line, never a traceback: the reader raises ArtefactInvalid naming the file
and what to run, and a document that parses but lacks what a section prints (a hand-edited
datapaths.json) is reported the same way.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from advtopo.rundir import Run, layout, open_run
from advtopo.rundir.errors import damaged
from advtopo.rundir.lock import run_status

__all__ = ["Run", "open_run", "list_runs", "format_summary", "document_section", "DOCUMENT_SECTIONS"]


def list_runs(base: str | os.PathLike[str] = "runs") -> list[dict[str, Any]]:
    """Run directories under ``base`` (any folder holding manifest.json), newest first."""
    base = Path(base)
    out = []
    if not base.is_dir():
        return out
    cands = [base] if (base / layout.MANIFEST).is_file() else sorted(p for p in base.iterdir() if p.is_dir())
    for p in cands:
        mf = p / layout.MANIFEST
        if not mf.is_file():
            continue
        try:
            m = json.loads(mf.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            m = None
        tasks = m.get("tasks") if isinstance(m, dict) else None
        if not isinstance(tasks, dict) or not all(isinstance(t, dict) for t in tasks.values()):
            out.append({"path": str(p), "name": p.name, "status": "unreadable manifest"})
            continue
        finished = sum(1 for t in tasks.values() if t.get("status") in ("done", "cached"))
        out.append({"path": str(p), "name": str(m.get("name", p.name)), "status": run_status(p, m.get("status")),
                    "started": m.get("started"), "seconds": m.get("seconds"), "tasks": f"{finished}/{len(tasks)}"})
    out.sort(key=lambda r: str(r.get("started") or ""), reverse=True)
    return out


def _num(v: Any, spec: str, width: int) -> str:
    """``v`` formatted with ``spec``, or '?' right-aligned when it is not a number."""
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and (spec.endswith("f") or isinstance(v, int))
    return format(v, spec) if ok else f"{'?':>{width}}"


def format_summary(run: Run) -> str:
    """The accuracy-vs-eps table and per-graph statistics, as text."""
    idx = run.index_record
    ds = idx.dataset
    lines = [f"run {idx.name!r} at {run.root}",
             f"dataset {ds.name if ds else '?'} ({ds.n_samples if ds and ds.n_samples is not None else '?'} samples), "
             f"layers {', '.join(idx.layers)}"]
    m = run.manifest
    if m:
        lines.append(f"status {run.status}, {m.get('seconds', '?')}s, device {m.get('device')}")
    for att in idx.attacks:
        lines.append("")
        lines.append(f"accuracy under {att.name} (rows: model, columns: eps)")
        w = max([8] + [len(f"{e:g}") + 2 for e in att.eps])  # 8/255 prints as 0.0313725: keep a gap
        lines.append(f"{'model':24s}" + "".join(f"{e:>{w}g}" for e in att.eps))
        for model in run.models:
            acc = {round(a.eps, 9): a.accuracy for a in idx.accuracy if a.model == model and a.attack == att.name}
            lines.append(f"{model:24s}" + "".join(_num(acc.get(round(e, 9), float("nan")), f"{w}.3f", w)
                                                  for e in att.eps))
    if idx.graphs:
        lines.append("")
        lines.append(f"{'graph':44s} {'nodes':>6s} {'edges':>6s} {'comps':>6s} {'noise':>6s} {'purity':>7s}")
        for g in idx.graphs:
            s = g.stats or {}
            pur = s.get("mean_purity")
            lines.append(f"{g.id:44s} " + " ".join(_num(s.get(k, 0), "6d", 6)
                                                   for k in ("n_nodes", "n_edges", "n_components", "n_noise"))
                         + " " + _num(pur if pur is not None else float("nan"), "7.3f", 7))
    for key in DOCUMENT_SECTIONS:
        doc = run.document(key)
        if doc:
            lines.append("")
            lines.append(document_section(run, key, doc))
    return "\n".join(lines)


def document_section(run: Run, key: str, doc: Any) -> str:
    """The summary's section of document ``key``; a document that parses but lacks what the
    section prints is damaged (ArtefactInvalid naming the file)."""
    try:
        return DOCUMENT_SECTIONS[key](doc)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise damaged(run.root, f"{run.index.get(key)} does not have the layout advtopo writes "
                                f"({type(exc).__name__}: {exc})") from None


def _vulnerability_text(v: Any) -> str:
    samples = v["samples"] if isinstance(v, dict) else v
    v = v if isinstance(v, dict) else {}
    top = ", ".join(str(s["sample_id"]) for s in samples[:10])
    auc = v.get("auc")
    head = f"vulnerability ({v.get('model')}, {v.get('layer')}, clean mapper graph): "
    return (head + (f"AUC {auc:.3f} for 'fooled at eps <= {v.get('auc_eps'):g}'" if auc is not None
                    else "AUC n/a (every sample or none is fooled)")
            + f"\nmost vulnerable samples: {top}")


def _datapaths_text(d: Any) -> str:
    from advtopo.datapaths import format_table  # a stage to the left of the study

    return (f"datapaths ({d.get('model')}, {d.get('attack')}): clean vs adversarial critical neurons, "
            f"Jaccard per layer\n{format_table(d)}")


def _separability_text(sep: Any) -> str:
    from advtopo.study.measures import format_separability

    return format_separability(sep)


# the documents `advtopo show` prints, in order: index.json key -> its section's text
DOCUMENT_SECTIONS: dict[str, Callable[[Any], str]] = {
    "vulnerability": _vulnerability_text, "datapaths": _datapaths_text, "separability": _separability_text}
