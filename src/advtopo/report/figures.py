"""The report's figures: one function per figure, each drawing only from its section's
``figure_input`` (plus image arrays for the gallery), so a figure's inputs hash decides
whether it can be reused.

Style: matplotlib Agg, Okabe-Ito colours (colour-blind safe), one colour and marker per
model across every figure, labelled axes with units, 95% CIs as bands.
"""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from advtopo.utils import atomic_write_bytes

# Okabe & Ito (2008), ordered so the first colours are the most distinct on white.
OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
DASHES = ["-", "--", ":", "-."]
DPI = 200
EPS_LABEL = "attack strength ε (input scale 0–1)"

RC = {"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "legend.fontsize": 7, "xtick.labelsize": 7,
      "ytick.labelsize": 7, "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
      "grid.alpha": 0.3, "grid.linewidth": 0.5, "lines.linewidth": 1.5, "lines.markersize": 4,
      "svg.fonttype": "path", "figure.dpi": 100, "savefig.dpi": DPI}


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def model_style(models: list[str]) -> dict[str, dict[str, str]]:
    """Colour and marker per model, in the run's model order (the same in every figure)."""
    return {m: {"color": OKABE_ITO[i % len(OKABE_ITO)], "marker": MARKERS[i % len(MARKERS)]}
            for i, m in enumerate(models)}


def _st(style: dict, model: str) -> dict[str, str]:
    return style.get("models", {}).get(model, {"color": "#555555", "marker": "o"})


def _axes(n: int, ncols: int, w: float = 3.0, h: float = 2.4):
    plt = _plt()
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _arr(xs: list) -> np.ndarray:
    return np.asarray([np.nan if x is None else x for x in xs], dtype=np.float64)


def _line(ax, s: dict, y: str, style: dict, label: str | None = None, dash: str = "-") -> None:
    st = _st(style, s["model"])
    x, v = _arr(s["eps"]), _arr(s[y])
    ax.plot(x, v, dash, color=st["color"], marker=st["marker"], label=label)
    if "lo" in s and any(b is not None for b in s["lo"]):
        ax.fill_between(x, _arr(s["lo"]), _arr(s["hi"]), color=st["color"], alpha=0.18, linewidth=0)


def _model_legend(fig, style: dict, models: list[str]) -> None:
    from matplotlib.lines import Line2D

    hs = [Line2D([], [], color=_st(style, m)["color"], marker=_st(style, m)["marker"], label=m) for m in models]
    if hs:
        fig.legend(handles=hs, loc="lower center", ncol=min(len(hs), 4), frameon=False,
                   bbox_to_anchor=(0.5, -0.02))
        fig.tight_layout(rect=(0, 0.06 + 0.03 * ((len(hs) - 1) // 4), 1, 1))


def _models(series: list[dict]) -> list[str]:
    return list(dict.fromkeys(s["model"] for s in series))


# --- one function per figure -----------------------------------------------------------

def fig_accuracy(inp: dict, style: dict, arrays: dict) -> Any:
    """Accuracy vs eps per model (one panel per attack)."""
    attacks = list(dict.fromkeys(s["attack"] for s in inp["series"]))
    fig, axes = _axes(len(attacks), 3, 3.4, 2.6)
    for ax, att in zip(axes, attacks):
        for s in inp["series"]:
            if s["attack"] == att:
                _line(ax, s, "accuracy", style)
        ax.set(xlabel=f"{EPS_LABEL}, {att}", ylabel="accuracy (fraction correct)", ylim=(-0.02, 1.02),
               title=f"accuracy under {att}")
    _model_legend(fig, style, _models(inp["series"]))
    return fig


def fig_purity(inp: dict, style: dict, arrays: dict) -> Any:
    """Mean point purity vs eps, a panel per (layer, mapper set), a line per model."""
    keys = list(dict.fromkeys((s["layer"], s["mapper_set"], s["rows"]) for s in inp["series"]))
    fig, axes = _axes(len(keys), 3)
    for ax, (layer, mset, rows) in zip(axes, keys):
        for s in inp["series"]:
            if (s["layer"], s["mapper_set"], s["rows"]) == (layer, mset, rows):
                _line(ax, s, "mean_point_purity", style)
        extra = "" if mset == "default" and rows == "both" else f" [{mset}, rows={rows}]"
        ax.set(xlabel=EPS_LABEL, ylabel="mean point purity (0–1)", ylim=(0, 1.02), title=f"{layer}{extra}")
    _model_legend(fig, style, _models(inp["series"]))
    return fig


def fig_separability(inp: dict, style: dict, arrays: dict) -> Any:
    """k-NN / probe accuracy / silhouette vs eps: a row per measure, a column per layer."""
    measures = [m for m in inp["measures"] if any(s["measure"] == m[0] for s in inp["series"])]
    layers = list(dict.fromkeys(s["layer"] for s in inp["series"]))
    plt = _plt()
    fig, axes = plt.subplots(len(measures), len(layers), figsize=(3.0 * len(layers), 2.3 * len(measures)),
                             squeeze=False)
    for i, (key, name) in enumerate(measures):
        for j, layer in enumerate(layers):
            ax = axes[i][j]
            for s in inp["series"]:
                if s["measure"] == key and s["layer"] == layer:
                    _line(ax, s, "value", style)
            unit = "(fraction correct)" if "accuracy" in key else "(−1 to 1)"
            ax.set(xlabel=EPS_LABEL if i == len(measures) - 1 else "", ylabel=f"{name}\n{unit}")
            if i == 0:
                ax.set_title(layer)
            if "accuracy" in key:
                ax.set_ylim(-0.02, 1.02)
    _model_legend(fig, style, _models(inp["series"]))
    return fig


def fig_stability(inp: dict, style: dict, arrays: dict) -> Any:
    """Median mean node purity over the mapper grid with its min-max band, per layer."""
    keys = list(dict.fromkeys((s["layer"], s["rows"]) for s in inp["series"]))
    fig, axes = _axes(len(keys), 3)
    for ax, (layer, rows) in zip(axes, keys):
        for s in inp["series"]:
            if (s["layer"], s["rows"]) != (layer, rows):
                continue
            st = _st(style, s["model"])
            x = _arr(s["eps"])
            ax.fill_between(x, _arr(s["mean_purity_min"]), _arr(s["mean_purity_max"]), color=st["color"],
                            alpha=0.18, linewidth=0)
            ax.plot(x, _arr(s["mean_purity_median"]), color=st["color"], marker=st["marker"])
        ax.set(xlabel=EPS_LABEL, ylabel="mean node purity (0–1)\nmedian, min–max over settings", ylim=(0, 1.02),
               title=layer + ("" if rows == "both" else f" [rows={rows}]"))
    _model_legend(fig, style, _models(inp["series"]))
    return fig


def fig_layers(inp: dict, style: dict, arrays: dict) -> Any:
    """Topological layer distance matrix beside the linear CKA matrix."""
    plt = _plt()
    labels = inp["labels"]
    L = len(labels)
    size = 1.6 + 0.38 * L
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1.2, size), squeeze=False)
    panels = [(inp["distance"], f"{inp.get('metric')} distance, H{inp.get('homology_dim')}", "viridis",
               "distance (activation units)"),
              (inp["cka"], "linear CKA", "magma", "CKA (0–1)")]
    for ax, (M, title, cmap, unit) in zip(axes[0], panels):
        M = np.asarray([[np.nan if v is None else v for v in r] for r in M], dtype=np.float64)
        im = ax.imshow(M, cmap=cmap)
        ax.grid(False)
        ax.set_xticks(range(L), labels, rotation=60, ha="right")
        ax.set_yticks(range(L), labels)
        ax.set_title(title)
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        cb.set_label(unit)
        if L <= 12:
            for i in range(L):
                for j in range(L):
                    if np.isfinite(M[i, j]):
                        r, g, b, _ = im.cmap(im.norm(M[i, j]))
                        ax.text(j, i, f"{M[i, j]:.2f}", ha="center", va="center", fontsize=5.5,
                                color="black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white")
    rho = inp.get("spearman")
    fig.suptitle(f"Spearman ρ(distance, 1 − CKA) = {'n/a' if rho is None else f'{rho:.2f}'}", fontsize=9)
    fig.tight_layout()
    return fig


def fig_diagram_distance(inp: dict, style: dict, arrays: dict) -> Any:
    """Clean-vs-adversarial diagram distance vs eps, a panel per layer."""
    layers = list(dict.fromkeys(s["layer"] for s in inp["series"]))
    fig, axes = _axes(len(layers), 3)
    for ax, layer in zip(axes, layers):
        for s in inp["series"]:
            if s["layer"] == layer:
                _line(ax, s, "distance", style)
        ax.set(xlabel=EPS_LABEL, ylabel=f"{inp.get('metric')} distance\nH{inp.get('homology_dim')} (activation units)",
               title=layer)
        ax.set_ylim(bottom=0)
    _model_legend(fig, style, _models(inp["series"]))
    return fig


def fig_vulnerability(inp: dict, style: dict, arrays: dict) -> Any:
    """ROC curves of the vulnerability score, one per eps; the headline eps drawn thick."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.8, 3.4))
    ax.plot([0, 1], [0, 1], color="#999999", lw=0.8, ls="--", label="chance (AUC 0.5)")
    cmap = plt.get_cmap("cividis")
    n = len(inp["curves"])
    for i, c in enumerate(inp["curves"]):
        main = inp.get("auc_eps") is not None and abs(c["eps"] - inp["auc_eps"]) < 1e-9
        ci = "" if c.get("lo") is None else f" [{c['lo']:.2f}, {c['hi']:.2f}]"
        ax.plot(c["fpr"], c["tpr"], color=cmap(i / max(n - 1, 1) * 0.9), lw=2.4 if main else 1.0,
                label=f"fooled at ε ≤ {c['eps']:g}: AUC {c['auc']:.2f}{ci}")
    ax.set(xlabel="false-positive rate (not-fooled samples flagged)", ylabel="true-positive rate (fooled samples flagged)",
           xlim=(0, 1), ylim=(0, 1.01), title=f"vulnerability score, {inp.get('model')} {inp.get('layer')}")
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=6)
    fig.tight_layout()
    return fig


def fig_datapaths(inp: dict, style: dict, arrays: dict) -> Any:
    """Clean-vs-adversarial datapath Jaccard per layer, fooled vs not fooled, a panel per eps."""
    fig, axes = _axes(len(inp["panels"]), 3)
    groups = [("fooled", OKABE_ITO[1], "s", "fooled"), ("not_fooled", OKABE_ITO[0], "o", "not fooled")]
    x = np.arange(len(inp["layers"]))
    for ax, p in zip(axes, inp["panels"]):
        for key, color, marker, name in groups:
            g = p[key]
            if not g["n"]:
                continue
            ax.plot(x, _arr(g["value"]), color=color, marker=marker, label=f"{name} (n={g['n']})")
            ax.fill_between(x, _arr(g["lo"]), _arr(g["hi"]), color=color, alpha=0.18, linewidth=0)
        ax.set_xticks(x, inp["layers"])
        ax.set(xlabel="layer (input → output)", ylabel="Jaccard overlap, clean vs adversarial\ncritical neurons (0–1)",
               ylim=(0, 1.02), title=f"ε = {p['eps']:g}")
        ax.legend(loc="lower left")
    fig.tight_layout()
    return fig


def fig_recovery(inp: dict, style: dict, arrays: dict) -> Any:
    """Recovery accuracy vs adversary retention per attack, for both protocols."""
    plt = _plt()
    bars = inp["bars"]
    fig, ax = plt.subplots(figsize=(max(3.5, 0.9 * len(bars) + 1.5), 3.2))
    x = np.arange(len(bars))
    for off, key, color, name in ((-0.18, "recovery", OKABE_ITO[2], "recovery (true class)"),
                                  (0.18, "retention", OKABE_ITO[1], "retention (adversarial class)")):
        v = _arr([b[key]["value"] for b in bars])
        lo, hi = _arr([b[key]["lo"] for b in bars]), _arr([b[key]["hi"] for b in bars])
        ax.bar(x + off, v, 0.34, color=color, label=name,
               yerr=np.vstack([np.nan_to_num(v - lo), np.nan_to_num(hi - v)]), capsize=2)
    ax.set_xticks(x, [f"{b['label']}\n{b['protocol']}" for b in bars], rotation=30, ha="right")
    ax.set(ylabel="fraction of successful\nadversarial examples", ylim=(0, 1.02))
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)  # above: bars reach 1
    fig.tight_layout()
    return fig


def fig_gallery(inp: dict, style: dict, arrays: dict) -> Any:
    """Clean (top) and adversarial (bottom) images of the most vulnerable samples."""
    plt = _plt()
    clean, adv = arrays["clean"], arrays["adversarial"]
    k = len(clean)
    names = inp.get("class_names") or []

    def cname(i: Any) -> str:
        return "?" if i is None else (names[i] if 0 <= i < len(names) else str(i))
    fig, axes = plt.subplots(2, k, figsize=(1.15 * k, 2.75), squeeze=False)
    for j, s in enumerate(inp["samples"]):
        for i, (img, txt) in enumerate(((clean[j], f"#{s['sample_id']}\ntrue {cname(s.get('label'))}, "
                                         f"pred {cname(s.get('clean_prediction'))}"),
                                        (adv[j], f"ε={s['eps']:g}: pred {cname(s.get('adv_prediction'))}"))):
            ax = axes[i][j]
            im = np.asarray(img)
            if im.ndim == 3 and im.shape[-1] == 1:
                im = im[..., 0]
            ax.imshow(im, cmap="gray" if im.ndim == 2 else None, vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            ax.set_title(txt, fontsize=6)
    axes[0][0].set_ylabel("clean", fontsize=7)
    axes[1][0].set_ylabel("adversarial", fontsize=7)
    fig.tight_layout()
    return fig


FIGURES: dict[str, Callable[[dict, dict, dict], Any]] = {
    "accuracy": fig_accuracy, "purity": fig_purity, "separability": fig_separability,
    "stability": fig_stability, "layers": fig_layers, "diagram_distance": fig_diagram_distance,
    "vulnerability": fig_vulnerability, "datapaths": fig_datapaths, "recovery": fig_recovery,
    "gallery": fig_gallery,
}


# --- hashing and writing ----------------------------------------------------------------

def input_hash(name: str, inp: dict, style: dict, arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 of everything a figure is drawn from: its inputs, the style, the image arrays,
    this module's source and matplotlib's version (a new drawing code redraws)."""
    import matplotlib

    h = hashlib.sha256()
    h.update(name.encode())
    h.update(json.dumps(inp, sort_keys=True, default=str).encode())
    h.update(json.dumps(style, sort_keys=True).encode())
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    h.update(Path(__file__).read_bytes())
    h.update(matplotlib.__version__.encode())
    return h.hexdigest()


def render(name: str, inp: dict, style: dict, arrays: dict[str, np.ndarray], out_dir: Path) -> dict[str, str]:
    """Draw figure ``name`` and write ``out_dir/<name>.png`` (dpi 200) and ``.svg`` atomically."""
    import matplotlib

    plt = _plt()
    rc = dict(RC, **{"svg.hashsalt": f"advtopo-{name}"})  # deterministic, figure-unique SVG ids
    with matplotlib.rc_context(rc):
        fig = FIGURES[name](inp, style, arrays)
        try:
            png, svg = io.BytesIO(), io.BytesIO()
            fig.savefig(png, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
            fig.savefig(svg, format="svg", bbox_inches="tight", metadata={"Date": None})
        finally:
            plt.close(fig)
    atomic_write_bytes(out_dir / f"{name}.png", png.getvalue())
    atomic_write_bytes(out_dir / f"{name}.svg", svg.getvalue())
    return {"png": f"figures/{name}.png", "svg": f"figures/{name}.svg"}
