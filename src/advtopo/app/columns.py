"""Per-row values of samples.parquet's numeric columns for one graph (colour / size by a column).

A graph's point rows are clean rows (samples.parquet's rows of the graph's model and attack at
eps 0) and adversarial rows (its model, attack and eps); each row takes the value of its own
sample and kind, so a node's mean confidence of its adversarial members is the confidence of
the adversarial images. ``first_fooled_eps`` is derived: the smallest eps of the graph's model
and attack (0 included) at which the sample's prediction is wrong, null when it never is.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from advtopo.rundir import ArtefactMissing, Run

# columns that identify a row rather than measure it
_NOT_MEASURES = {"sample_id", "dataset_index", "label", "prediction", "eps", "is_adversarial"}
FIRST_FOOLED = "first_fooled_eps"


def _finite_or_none(values: np.ndarray) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values.astype(float)]


def measure_columns(df: Any) -> list[str]:
    """The numeric and boolean columns of samples.parquet that measure a row (not its identity)."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    return [c for c in df.columns if c not in _NOT_MEASURES and (is_numeric_dtype(df[c]) or is_bool_dtype(df[c]))]


def graph_columns(reader: Run, graph_id: str) -> dict[str, Any]:
    """``{"graph", "n_rows", "columns": {name: [value or None per point row]}}``; no columns
    when the run has no samples.parquet or the graph no points."""
    entry = reader.graph_entry(graph_id)
    points = reader.graph(graph_id).get("points") or {}
    sids = np.asarray(points.get("sample_id") or [], dtype=np.int64)
    adv = np.asarray(points.get("is_adversarial") or [False] * len(sids), dtype=bool)
    out: dict[str, Any] = {"graph": graph_id, "n_rows": int(len(sids)), "columns": {}}
    try:
        df = reader.samples
    except ArtefactMissing:
        return out
    if not len(sids) or df.empty:
        return out
    mine = df[(df["model"] == entry.model) & (df["attack"] == entry.attack)]
    measures = measure_columns(mine)
    clean = mine[np.isclose(mine["eps"].astype(float), 0.0)].drop_duplicates("sample_id").set_index("sample_id")
    attacked = mine[np.isclose(mine["eps"].astype(float), float(entry.eps))].drop_duplicates("sample_id").set_index("sample_id")
    for name in measures:
        vals = np.full(len(sids), np.nan)
        for table, which in ((clean, ~adv), (attacked, adv)):
            if which.any() and len(table):
                vals[which] = table[name].astype(float).reindex(sids[which]).to_numpy()
        out["columns"][name] = _finite_or_none(vals)
    wrong = mine[mine["prediction"] != mine["label"]]
    first = wrong.groupby("sample_id")["eps"].min()
    out["columns"][FIRST_FOOLED] = _finite_or_none(first.reindex(sids).to_numpy(dtype=float))
    return out
