"""What ``advtopo runs`` and ``advtopo show`` print; reading a run is :mod:`advtopo.rundir`'s job
(``Run`` and ``open_run`` are re-exported here for older imports)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from advtopo.rundir import Run, layout, open_run
from advtopo.rundir.lock import run_status

__all__ = ["Run", "open_run", "list_runs", "format_summary"]


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
            m = json.loads(mf.read_text())
        except (OSError, ValueError):
            out.append({"path": str(p), "name": p.name, "status": "unreadable manifest"})
            continue
        tasks = m.get("tasks", {}).values()
        finished = sum(1 for t in tasks if t.get("status") in ("done", "cached"))
        out.append({"path": str(p), "name": m.get("name", p.name), "status": run_status(p, m.get("status")),
                    "started": m.get("started"), "seconds": m.get("seconds"),
                    "tasks": f"{finished}/{len(m.get('tasks', {}))}"})
    out.sort(key=lambda r: r.get("started") or "", reverse=True)
    return out


def format_summary(run: Run) -> str:
    """The accuracy-vs-eps table and per-graph statistics, as text."""
    idx = run.index
    lines = [f"run {idx['name']!r} at {run.root}",
             f"dataset {idx['dataset']['name']} ({idx['dataset']['n_samples']} samples), layers {', '.join(idx['layers'])}"]
    m = run.manifest
    if m:
        lines.append(f"status {run_status(run.root, m.get('status'))}, {m.get('seconds', '?')}s, device {m.get('device')}")
    for att in idx["attacks"]:
        eps_list = att["eps"]
        lines.append("")
        lines.append(f"accuracy under {att['name']} (rows: model, columns: eps)")
        w = max([8] + [len(f"{e:g}") + 2 for e in eps_list])  # 8/255 prints as 0.0313725: keep a gap
        lines.append(f"{'model':24s}" + "".join(f"{e:>{w}g}" for e in eps_list))
        for model in run.models:
            acc = {round(a["eps"], 9): a["accuracy"] for a in idx["accuracy"]
                   if a["model"] == model and a["attack"] == att["name"]}
            lines.append(f"{model:24s}" + "".join(f"{acc.get(round(e, 9), float('nan')):{w}.3f}" for e in eps_list))
    if idx.get("graphs"):
        lines.append("")
        lines.append(f"{'graph':44s} {'nodes':>6s} {'edges':>6s} {'comps':>6s} {'noise':>6s} {'purity':>7s}")
        for g in idx["graphs"]:
            s = g.get("stats") or {}
            pur = s.get("mean_purity")
            lines.append(f"{g['id']:44s} {s.get('n_nodes', 0):6d} {s.get('n_edges', 0):6d} "
                         f"{s.get('n_components', 0):6d} {s.get('n_noise', 0):6d} "
                         f"{(pur if pur is not None else float('nan')):7.3f}")
    v = run.vulnerability()
    if v:
        top = ", ".join(str(s["sample_id"]) for s in v["samples"][:10])
        auc = v.get("auc")
        lines.append("")
        head = f"vulnerability ({v.get('model')}, {v.get('layer')}, clean mapper graph): "
        lines.append(head + (f"AUC {auc:.3f} for 'fooled at eps <= {v.get('auc_eps'):g}'" if auc is not None
                             else "AUC n/a (every sample or none is fooled)"))
        lines.append(f"most vulnerable samples: {top}")
    d = run.datapaths()
    if d:
        from advtopo.datapaths import format_table  # a stage to the left of the study

        lines.append("")
        lines.append(f"datapaths ({d.get('model')}, {d.get('attack')}): clean vs adversarial critical neurons, "
                     f"Jaccard per layer")
        lines.append(format_table(d))
    sep = run.separability()
    if sep:
        from advtopo.study.measures import format_separability

        lines.append("")
        lines.append(format_separability(sep))
    return "\n".join(lines)
