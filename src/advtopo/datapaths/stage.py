"""Clean-vs-adversarial datapath report: the ``datapaths.json`` document of a study run
(format in docs/architecture.md) and the table the ``advtopo datapaths`` command prints."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch.nn as nn

from advtopo.datapaths.aevis import class_flow
from advtopo.datapaths.compare import compare_datapaths
from advtopo.datapaths.extract import DatapathExtractor, Datapaths
from advtopo.datapaths.flow import flow_edges, layer_connections
from advtopo.errors import AdvtopoError


def _r(v: float | None, nd: int = 4) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), nd)


def datapath_report(model: nn.Module, x: Any, y: Any, x_adv: Mapping[float, Any], extractor: DatapathExtractor,
                    divergence_threshold: float = 0.5, top_k: int = 10, n_detail: int = 10,
                    sample_ids: Sequence[int] | None = None, class_share: float = 0.5) -> dict[str, Any]:
    """Datapaths of ``x`` and of each ``x_adv[eps]`` (same rows), compared layer by layer.

    An input counts as *fooled* at eps when its adversarial prediction differs from ``y``.
    Critical neuron ids, gate values and the ``top_k`` flow edges are kept for the first
    ``n_detail`` inputs; ``class_flow[eps]`` is AEVis's class level (:func:`class_flow`, typical
    paths = neurons critical for at least ``class_share`` of a group).
    """
    if not x_adv:
        raise AdvtopoError("x_adv is empty: give at least one eps > 0")
    y = np.asarray(y, np.int64)
    n = len(y)
    ids = np.arange(n) if sample_ids is None else np.asarray(sample_ids, np.int64)
    clean = extractor.fit(model, x)
    layers = list(clean.layers)
    conns = layer_connections(model, layers, tuple(np.shape(x)[1:]))
    eps_list = sorted(float(e) for e in x_adv)
    adv: dict[float, Datapaths] = {}
    comps = {}
    for e in eps_list:
        adv[e] = extractor.fit(model, x_adv[e])
        comps[e] = compare_datapaths(clean, adv[e], fooled=adv[e].prediction != y, threshold=divergence_threshold)

    def _state(d: Datapaths) -> dict[str, Any]:
        s = d.summary()
        return {"retained_accuracy": _r(s["retained_accuracy"]), "retained_accuracy_soft": _r(s["retained_accuracy_soft"]),
                "kept_fraction": {k: _r(v) for k, v in s["kept_fraction"].items()},
                "kept_fraction_total": _r(s["kept_fraction_total"]),
                "mean_size": {k: _r(v, 2) for k, v in s["mean_size"].items()}}

    summ = {e: comps[e].summary() for e in eps_list}
    by_layer: dict[str, Any] = {}
    for k in layers:
        entry: dict[str, list] = {}
        for metric in ("jaccard", "weighted_jaccard"):
            for group in ("all", "fooled", "not_fooled"):
                entry[f"{metric}_{group}"] = [_r(summ[e]["layers"][k][metric][group]) for e in eps_list]
        by_layer[k] = entry
    by_eps = []
    for e in eps_list:
        s = summ[e]
        by_eps.append({"eps": e, "n_fooled": s["n_fooled"], "accuracy": _r(float(np.mean(adv[e].prediction == y))),
                       **_state(adv[e]), "divergence_counts": s["divergence_counts"]})
    samples = []
    for i in range(n):
        row: dict[str, Any] = {"sample_id": int(ids[i]), "label": int(y[i]), "clean_prediction": int(clean.prediction[i]),
                               "eps": {}}
        for e in eps_list:
            c = comps[e]
            row["eps"][f"{e:g}"] = {
                "prediction": int(adv[e].prediction[i]), "fooled": bool(c.fooled[i]),
                "divergence_layer": layers[c.divergence[i]] if c.divergence[i] >= 0 else None,
                "jaccard": [_r(c.jaccard[k][i]) for k in layers],
                "weighted_jaccard": [_r(c.weighted_jaccard[k][i]) for k in layers]}
        samples.append(row)
    def _gates(d: Datapaths, i: int) -> dict[str, list[float]]:
        return {k: np.round(d.gates[k][i].astype(np.float64), 3).tolist() for k in layers}

    detail = []
    for i in range(min(n_detail, n)):
        d = {"sample_id": int(ids[i]),
             "clean": {"critical": clean.critical_ids(i), "gates": _gates(clean, i),
                       "flow": flow_edges(conns, clean, i, top_k)},
             "adversarial": {f"{e:g}": {"critical": adv[e].critical_ids(i), "gates": _gates(adv[e], i),
                                        "flow": flow_edges(conns, adv[e], i, top_k)}
                             for e in eps_list}}
        detail.append(d)
    residual = _residual_section(model, layers, x, y, x_adv, clean, adv, eps_list, min(n_detail, n))
    flows = {}
    for e in eps_list:
        groups = class_flow(clean, adv[e], y, share=class_share)
        for g in groups:
            g["sample_ids"] = [int(ids[r]) for r in g["sample_ids"]]
        flows[f"{e:g}"] = groups
    params = {k: v for k, v in extractor.get_params().items() if k not in ("layers", "batch_size")}
    return {"layers": layers, "widths": clean.widths, "params": params,
            "divergence_threshold": float(divergence_threshold), "n_samples": n, "eps": eps_list,
            "clean": _state(clean), "by_layer": by_layer, "by_eps": by_eps,
            "connections": [c.to_dict() for c in conns], "samples": samples, "detail": detail,
            "class_share": float(class_share), "class_flow": flows, **residual}


def _residual_section(model: nn.Module, layers: list[str], x: Any, y: np.ndarray, x_adv: Mapping[float, Any], clean: Datapaths,
                      adv: Mapping[float, Datapaths], eps_list: list[float], n_detail: int) -> dict[str, Any]:
    """``{"residual": ...}`` when some gated layers are residual blocks (else empty): per block the
    mean skip share of the critical channels (advtopo.datapaths.residual), clean and per eps,
    over all / fooled (prediction != y) inputs, and per detail sample."""
    import torch

    from advtopo.datapaths.residual import _is_block, critical_skip_share, skip_share

    named = dict(model.named_modules())
    blocks = [k for k in layers if k in named and _is_block(named[k])]
    if not blocks:
        return {}

    def as_tensor(v: Any) -> torch.Tensor:
        return v if isinstance(v, torch.Tensor) else torch.from_numpy(np.asarray(v, np.float32))

    def mean(v: np.ndarray) -> float | None:
        v = v[np.isfinite(v)]
        return _r(float(v.mean())) if len(v) else None

    share_clean = skip_share(model, blocks, as_tensor(x))
    per_clean = {b: critical_skip_share(share_clean[b], clean.critical[b]) for b in blocks}
    out: dict[str, Any] = {"blocks": blocks, "skip_share": {}, "detail": []}
    per_adv: dict[float, dict[str, np.ndarray]] = {}
    for e in eps_list:
        sh = skip_share(model, blocks, as_tensor(x_adv[e]))
        per_adv[e] = {b: critical_skip_share(sh[b], adv[e].critical[b]) for b in blocks}
    for b in blocks:
        out["skip_share"][b] = {"clean": mean(per_clean[b]),
                                "adversarial": [mean(per_adv[e][b]) for e in eps_list],
                                "adversarial_fooled": [mean(per_adv[e][b][adv[e].prediction != y])
                                                       for e in eps_list]}
    for i in range(n_detail):
        out["detail"].append({"clean": {b: _r(per_clean[b][i]) for b in blocks},
                              "adversarial": {f"{e:g}": {b: _r(per_adv[e][b][i]) for b in blocks} for e in eps_list}})
    return {"residual": out}


def format_table(report: Mapping[str, Any]) -> str:
    """The layer-wise comparison as a text table (one block per eps)."""
    layers = report["layers"]
    c = report["clean"]
    lines = [f"clean: retained {c['retained_accuracy']:.3f} (hard mask), kept {c['kept_fraction_total']:.3f} "
             f"of {sum(report['widths'].values())} gated neurons"]
    head = f"{'layer':>12} {'width':>6} {'kept clean':>10} {'kept adv':>9} {'J all':>7} {'J fooled':>9} " \
           f"{'J not':>7} {'wJ fooled':>10} {'wJ not':>7}"
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for j, e in enumerate(report["eps"]):
        b = report["by_eps"][j]
        lines.append("")
        lines.append(f"eps {e:g}: accuracy {b['accuracy']:.3f}, fooled {b['n_fooled']}/{report['n_samples']}, "
                     f"adversarial retained {b['retained_accuracy']:.3f}")
        lines.append(head)
        for k in layers:
            bl = report["by_layer"][k]
            lines.append(f"{k:>12} {report['widths'][k]:>6} {fmt(c['kept_fraction'][k]):>10} "
                         f"{fmt(b['kept_fraction'][k]):>9} {fmt(bl['jaccard_all'][j]):>7} "
                         f"{fmt(bl['jaccard_fooled'][j]):>9} {fmt(bl['jaccard_not_fooled'][j]):>7} "
                         f"{fmt(bl['weighted_jaccard_fooled'][j]):>10} {fmt(bl['weighted_jaccard_not_fooled'][j]):>7}")
        div = b["divergence_counts"]["fooled"]
        lines.append("first layer with J < {:g} (fooled): ".format(report["divergence_threshold"])
                     + ", ".join(f"{k} {v}" for k, v in div.items()))
    return "\n".join(lines)
