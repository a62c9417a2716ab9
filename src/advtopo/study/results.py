"""Read a run back without knowing its file layout: ``open_run(path) -> Run``."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from advtopo.errors import AdvtopoError, check_choice


class Run:
    """A finished (or partial) run directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        if not (self.root / "index.json").is_file():
            status = ""
            if (self.root / "manifest.json").is_file():
                status = f" (manifest status: {self.manifest.get('status')})"
            raise AdvtopoError(f"{root} is not a finished run directory: no index.json{status}; run a study first")
        self.index: dict[str, Any] = json.loads((self.root / "index.json").read_text())

    def __repr__(self) -> str:
        return f"Run({str(self.root)!r}, models={self.models}, layers={self.layers})"

    @property
    def manifest(self) -> dict[str, Any]:
        p = self.root / "manifest.json"
        return json.loads(p.read_text()) if p.is_file() else {}

    @property
    def models(self) -> list[str]:
        return [m["name"] for m in self.index["models"]]

    @property
    def layers(self) -> list[str]:
        return list(self.index["layers"])

    @property
    def samples(self):
        """The per-sample table (one row per sample_id, model, attack, eps) as a DataFrame."""
        import pandas as pd

        return pd.read_parquet(self.root / "samples.parquet")

    def accuracy(self):
        import pandas as pd

        return pd.DataFrame(self.index["accuracy"])

    def activations(self, model: str, layer: str, attack: str | None = None, eps: float = 0.0) -> np.ndarray:
        """N x D activations of ``layer`` for ``model`` on the clean samples (eps 0) or the
        ``attack`` samples at ``eps``; row i is sample_id i."""
        from advtopo.activations import read_activations

        check_choice("model", model, self.models)
        check_choice("layer", layer, self.layers)
        if eps == 0:
            attack = "clean"
        elif attack is None:
            attack = self.index["attacks"][0]["name"]
        for e in self.index.get("activations", []):
            if e["model"] == model and e["layer"] == layer and e["attack"] == attack and \
                    (attack == "clean" or abs(e["eps"] - float(eps)) < 1e-9):
                return read_activations(self.root / e["path"], e["array"])
        have = sorted({f"{e['attack']}@{e['eps']:g}" for e in self.index.get("activations", [])
                       if e["model"] == model})
        raise AdvtopoError(f"no activations for model={model!r} attack={attack!r} eps={eps}; available: {', '.join(have)}")

    def graph(self, graph_id: str) -> dict[str, Any]:
        ids = {g["id"]: g for g in self.index["graphs"]}
        check_choice("graph_id", graph_id, ids)
        return json.loads((self.root / ids[graph_id]["path"]).read_text())

    def graphs(self):
        import pandas as pd

        rows = [{**{k: g[k] for k in ("id", "model", "layer", "attack", "eps")}, **(g.get("stats") or {})}
                for g in self.index["graphs"]]
        return pd.DataFrame(rows)

    def images(self, model: str | None = None, attack: str | None = None, eps: float = 0.0) -> np.ndarray:
        """uint8 N x H x W x C images: clean, or adversarial for (model, attack, eps)."""
        if eps == 0 or model is None:
            return np.load(self.root / self.index["images"]["clean"], allow_pickle=False)
        attack = attack or self.index["attacks"][0]["name"]
        key = f"{model}/{attack}/{float(eps):g}"
        adv = self.index["images"]["adversarial"]
        check_choice("images (model/attack/eps)", key, adv)
        return np.load(self.root / adv[key], allow_pickle=False)

    def vulnerability(self) -> dict[str, Any] | None:
        rel = self.index.get("vulnerability")
        return json.loads((self.root / rel).read_text()) if rel else None

    def datapaths(self) -> dict[str, Any] | None:
        """datapaths.json (clean vs adversarial critical datapaths), or None when not computed."""
        rel = self.index.get("datapaths")
        return json.loads((self.root / rel).read_text()) if rel else None

    def separability(self) -> dict[str, Any] | None:
        """separability.json (k-NN / probe accuracy, silhouette with CIs), or None when not computed."""
        rel = self.index.get("separability")
        return json.loads((self.root / rel).read_text()) if rel else None

    def stability(self) -> dict[str, Any] | None:
        """stability.json (mapper statistics over a settings grid, point-purity CIs), or None."""
        rel = self.index.get("stability")
        return json.loads((self.root / rel).read_text()) if rel else None


def open_run(path: str | os.PathLike[str]) -> Run:
    return Run(path)


def list_runs(base: str | os.PathLike[str] = "runs") -> list[dict[str, Any]]:
    """Run directories under ``base`` (any folder holding manifest.json), newest first."""
    base = Path(base)
    out = []
    if not base.is_dir():
        return out
    cands = [base] if (base / "manifest.json").is_file() else sorted(p for p in base.iterdir() if p.is_dir())
    for p in cands:
        mf = p / "manifest.json"
        if not mf.is_file():
            continue
        try:
            m = json.loads(mf.read_text())
        except (OSError, ValueError):
            out.append({"path": str(p), "name": p.name, "status": "unreadable manifest"})
            continue
        tasks = m.get("tasks", {}).values()
        finished = sum(1 for t in tasks if t.get("status") in ("done", "cached"))
        out.append({"path": str(p), "name": m.get("name", p.name), "status": m.get("status"),
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
        lines.append(f"status {m.get('status')}, {m.get('seconds', '?')}s, device {m.get('device')}")
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
