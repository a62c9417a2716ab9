"""PNG figures (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from advtopo.utils import atomic_path


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return path


def plot_heatmap(matrix: Any, labels: list[str], path: str | Path, title: str = "", cmap: str = "viridis") -> Path:
    """One labelled matrix as a heatmap with a colour bar."""
    plt = _plt()
    M = np.asarray(matrix, float)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * len(labels), 0.6 + 0.5 * len(labels)))
    im = ax.imshow(M, cmap=cmap)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


def plot_layer_matrices(layer_distance: dict, path: str | Path) -> Path:
    """The topological distance matrix beside the CKA/SVCCA matrices present in the dict."""
    plt = _plt()
    labels = layer_distance["labels"]
    panels = [("matrix", f"{layer_distance.get('metric', '')} H{layer_distance.get('homology_dim', '')}", "viridis")]
    panels += [(m, f"linear {m.upper()}", "magma") for m in ("cka", "svcca") if m in layer_distance]
    L = len(labels)
    fig, axes = plt.subplots(1, len(panels), figsize=(len(panels) * (1.5 + 0.5 * L), 1.0 + 0.5 * L), squeeze=False)
    for ax, (key, title, cmap) in zip(axes[0], panels):
        im = ax.imshow(np.asarray(layer_distance[key], float), cmap=cmap)
        ax.set_xticks(range(L), labels, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(L), labels, fontsize=7)
        rc = layer_distance.get(f"rank_correlation_{key}")
        defined = rc and rc.get("n_pairs", 0) >= 2 and rc.get("spearman") is not None  # < 2 layer pairs: none
        ax.set_title(title + (f"\nSpearman vs topo: {rc['spearman']:.2f}" if defined else ""), fontsize=8)
        fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


def plot_clean_vs_adv(curves: list[dict], path: str | Path) -> Path:
    """Diagram distance clean -> adversarial against attack eps, one line per model/layer/attack."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    groups: dict[tuple, list] = {}
    for r in curves:
        groups.setdefault((r["model"], r["layer"], r["attack"]), []).append((r["eps"], r["distance"]))
    for (m, l, a), pts in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{m} {l} {a}")
    ax.set_xlabel("attack eps")
    metric = curves[0].get("metric", "") if curves else ""
    ax.set_ylabel(f"{metric} distance to clean")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_curve(x: Any, ys: dict[str, Any], path: str | Path, xlabel: str = "", ylabel: str = "",
               title: str = "") -> Path:
    """Generic line plot (e.g. the PCA-removal sensitivity curve)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, y in ys.items():
        ax.plot(x, y, marker="o", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    if len(ys) > 1:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_diagram(diagrams: list[np.ndarray], path: str | Path, title: str = "") -> Path:
    """Persistence diagram(s), one colour per dimension; infinite deaths drawn at the top."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4, 4))
    fin = [d[np.isfinite(d).all(axis=1)] for d in diagrams if len(d)]
    top = max([float(np.abs(d).max()) for d in fin if len(d)] + [1.0]) * 1.05
    for k, d in enumerate(diagrams):
        d = np.asarray(d, float).reshape(-1, 2)
        dd = np.where(np.isfinite(d), d, top)
        ax.scatter(dd[:, 0], dd[:, 1], s=8, label=f"H{k}")
    ax.plot([0, top], [0, top], color="grey", lw=0.8)
    ax.set_xlabel("birth")
    ax.set_ylabel("death")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return _save(fig, path)
