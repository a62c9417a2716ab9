"""The one way to build a mapper graph of a run: the study's mapper stage and the app's rebuild
both call :func:`build_graph`, so a rebuild with the study's parameters is the study's graph,
byte for byte (tests/test_study_graphs.py).

A graph's rows come in blocks (:class:`RowBlock`): the clean activations of its model and layer,
then at attack eps > 0 the adversarial ones of the same samples (``rows`` in a ``[[mapper]]`` set
keeps only one of the two; :func:`advtopo.rundir.layout.row_blocks` says which). The study reads
the blocks from its capture tasks, the app from the run directory; the assembly, the parameter
rules (:class:`advtopo.mapper.MapperParams`), the fit and the kept statistics are here only.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# The statistics of a graph kept in its index entry (the app's tables and the report read them).
GRAPH_STATS = ("n_nodes", "n_edges", "n_components", "n_noise", "mean_purity", "mean_entropy", "weighted_entropy",
               "adv_pred_dominance", "shared_node_fraction", "mean_point_purity_clean",
               "mean_point_purity_adversarial")


@dataclass(frozen=True)
class RowBlock:
    """One capture's rows of a graph: activations (N x D) and, per row, label, prediction, sample id."""

    X: np.ndarray
    label: np.ndarray
    prediction: np.ndarray
    sample_id: np.ndarray
    is_adversarial: bool


def point_cloud(blocks: Sequence[RowBlock]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(X, metadata) of a graph: the blocks one after another (float32), with the per-row
    label, prediction, is_adversarial and sample_id the mapper engine summarises per node."""
    if not blocks:
        raise ValueError("a graph needs at least one block of rows")
    X = np.concatenate([np.asarray(b.X) for b in blocks]).astype(np.float32, copy=False)
    md = {"label": np.concatenate([np.asarray(b.label) for b in blocks]),
          "prediction": np.concatenate([np.asarray(b.prediction) for b in blocks]),
          "is_adversarial": np.concatenate([np.full(len(b.X), b.is_adversarial) for b in blocks]),
          "sample_id": np.concatenate([np.asarray(b.sample_id) for b in blocks])}
    return X, md


def mapper_params(mapper: Mapping[str, Any] | Any, seed: int, where: str = "mapper"):
    """The parameters a graph is fitted with: a ``[[mapper]]`` set's JSON form (or a
    MapperParams) with, unless the set gives one, ``random_state`` from the study's seed."""
    from advtopo.mapper import MapperParams

    if isinstance(mapper, MapperParams):
        return mapper
    p = MapperParams.from_dict(mapper, where=where)
    return p if "random_state" in mapper else p.replace(random_state=int(seed) % (2**31))


def build_graph(blocks: Sequence[RowBlock], mapper: Mapping[str, Any] | Any, *, seed: int,
                rows: str | None = None, where: str = "mapper") -> tuple[dict[str, Any], dict[str, Any]]:
    """Assemble, check, fit: returns (the graph's JSON document, its kept statistics).

    ``mapper``: the set's JSON form (``MapperConfig.params()``) or a MapperParams; ``rows`` is
    recorded in the document when given (the study gives it only for a set that is not "both",
    so default graphs keep their bytes). Parameter errors are AdvtopoErrors naming ``where``.
    """
    from advtopo.mapper import Mapper

    X, md = point_cloud(blocks)
    params = mapper_params(mapper, seed, where).validate(n_samples=len(X), where=where)
    doc = Mapper.from_params(params).fit(X, metadata=md).to_dict()
    if rows is not None:
        doc["params"]["rows"] = rows
    if params.clusterer == "dbscan" and doc["stats"].get("n_points", len(X)) > 1:
        doc["k_distance"] = k_distance_curve(X, params, doc["params"])
    stats = doc.get("stats", {})
    return doc, {k: stats.get(k) for k in GRAPH_STATS if k in stats}


def k_distance_curve(X: np.ndarray, params: Any, graph_params: Mapping[str, Any], points: int = 100) -> dict:
    """The k-distance curve (k = min_samples) the app draws beside the eps input, so users can
    pick DBSCAN's eps at the knee; 100 quantiles of a 1,000-row sample keep the JSON small."""
    from advtopo.mapper import k_distance

    k = max(2, min(int(params.min_samples), len(X)))
    curve = k_distance(X, k, str(params.metric), sample=1000, random_state=int(params.random_state or 0))
    q = np.quantile(curve, np.linspace(0.0, 1.0, points))
    return {"k": k, "quantiles": np.linspace(0.0, 1.0, points).round(4).tolist(),
            "values": q.astype(float).tolist(), "eps": graph_params.get("eps")}
