"""Statistics of a mapper graph against per-row metadata (labels, predictions, adversarial flags).

Definitions (also in docs/mapper.md):

- node purity = (count of the node's most frequent true label) / size; entropy = Shannon
  entropy of the node's true-label distribution in bits.
- point purity(row) = mean over the nodes holding the row of 1 / (#distinct labels in node).
- mixing metrics: see :func:`mixing_metrics`; vulnerability: see :func:`vulnerability_scores`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from scipy.sparse import csr_matrix

from advtopo.errors import AdvtopoError
from advtopo.utils import to_jsonable


class GraphLike(Protocol):
    """What the statistics read of a graph (:class:`advtopo.mapper.MapperGraph` has it all);
    a protocol, so this module needs nothing from graph.py, which imports it."""

    members: Sequence[np.ndarray]
    metadata: Mapping[str, np.ndarray]
    n_points: int
    lens: np.ndarray | None
    row_l2: np.ndarray | None
    sizes: np.ndarray
    noise_rows: np.ndarray
    elements: list[dict]
    n_components: int

    @property
    def n_nodes(self) -> int: ...

    @property
    def n_edges(self) -> int: ...

    def incidence(self) -> csr_matrix: ...


def _key(v) -> str:
    v = to_jsonable(v)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v)


def _hist(values: np.ndarray, codes: np.ndarray, rows: np.ndarray) -> dict[str, int]:
    cnt = np.bincount(codes[rows], minlength=len(values))
    return {_key(values[k]): int(cnt[k]) for k in np.flatnonzero(cnt)}


def _entropy_bits(counts: np.ndarray) -> float:
    c = counts[counts > 0].astype(np.float64)
    if c.sum() == 0:
        return 0.0
    p = c / c.sum()
    return float(-(p * np.log2(p)).sum() + 0.0)


def _label_counts(g: GraphLike, column: str = "label"):
    """(values, per-node count matrix) for a metadata column, or None."""
    if column not in g.metadata:
        return None
    values, codes = np.unique(g.metadata[column], return_inverse=True)
    codes = codes.reshape(-1)
    M = g.incidence()
    onehot = np.zeros((g.n_points, len(values)), dtype=np.float64)
    onehot[np.arange(g.n_points), codes] = 1.0
    counts = np.rint(M @ onehot).astype(np.int64) if g.n_nodes else np.zeros((0, len(values)), dtype=np.int64)
    return values, codes, counts


def node_statistics(g: GraphLike) -> list[dict]:
    """Per node: class_hist, dominant_class, purity, entropy, frac_adversarial, frac_misclassified,
    pred_hist, n_adversarial, mean_lens, mean_l2 (None where the metadata is missing)."""
    md = g.metadata
    lab = _label_counts(g, "label")
    pred = _label_counts(g, "prediction")
    adv = md.get("is_adversarial")
    wrong = None
    if "label" in md and "prediction" in md:
        wrong = np.asarray(md["label"]) != np.asarray(md["prediction"])
    out = []
    for i, rows in enumerate(g.members):
        size = len(rows)
        st: dict = {}
        if lab is not None:
            values, codes, counts = lab
            cnt = counts[i]
            k = int(np.argmax(cnt))
            st["class_hist"] = {_key(values[j]): int(cnt[j]) for j in np.flatnonzero(cnt)}
            st["dominant_class"] = to_jsonable(values[k])
            st["purity"] = float(cnt[k] / size) if size else None
            st["entropy"] = _entropy_bits(cnt)
            st["n_classes"] = int((cnt > 0).sum())
        else:
            st.update(class_hist={}, dominant_class=None, purity=None, entropy=None, n_classes=None)
        if pred is not None:
            values, codes, counts = pred
            st["pred_hist"] = {_key(values[j]): int(counts[i][j]) for j in np.flatnonzero(counts[i])}
        else:
            st["pred_hist"] = {}
        st["n_adversarial"] = int(adv[rows].sum()) if adv is not None else 0
        st["frac_adversarial"] = float(adv[rows].mean()) if adv is not None and size else (0.0 if adv is None else None)
        st["frac_misclassified"] = float(wrong[rows].mean()) if wrong is not None and size else None
        st["mean_lens"] = float(g.lens[rows, 0].mean()) if g.lens is not None and size else None
        st["mean_l2"] = float(g.row_l2[rows].mean()) if g.row_l2 is not None and size else None
        out.append(st)
    return out


def point_purity(g: GraphLike) -> np.ndarray:
    """Per row: mean over nodes holding it of 1/#distinct labels (NaN for rows in no node or no labels)."""
    lab = _label_counts(g, "label")
    if lab is None or g.n_nodes == 0:
        return np.full(g.n_points, np.nan)
    _, _, counts = lab
    inv = 1.0 / np.maximum((counts > 0).sum(axis=1), 1)
    M = g.incidence()
    num = M.T @ inv
    den = np.asarray(M.sum(axis=0)).ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), np.nan)


def mixing_metrics(g: GraphLike) -> dict:
    """Numbers that grow as clean/adversarial classes become indistinguishable.

    - ``weighted_entropy``: size-weighted mean node entropy of true labels (bits).
    - ``adv_pred_dominance``: over successful adversarial rows (is_adversarial, prediction !=
      label) that lie in some node, the mean over their nodes of [dominant true class of the
      node == the row's (wrong) prediction].
    - ``shared_node_fraction``: fraction of nodes holding, for some class c, a clean row of
      label c and a successful adversarial row predicted as c.
    - ``mean_point_purity_clean`` / ``_adversarial``: mean point purity over clean / adversarial rows.
    """
    md = g.metadata
    out: dict = {"weighted_entropy": None, "adv_pred_dominance": None, "shared_node_fraction": None,
                 "mean_point_purity_clean": None, "mean_point_purity_adversarial": None}
    lab = _label_counts(g, "label")
    if lab is None or g.n_nodes == 0:
        return out
    values, codes, counts = lab
    sizes = g.sizes.astype(np.float64)
    ent = np.array([_entropy_bits(c) for c in counts])
    out["weighted_entropy"] = float((ent * sizes).sum() / sizes.sum())
    pp = point_purity(g)
    adv = md.get("is_adversarial", np.zeros(g.n_points, dtype=bool))
    for name, mask in (("mean_point_purity_clean", ~adv), ("mean_point_purity_adversarial", adv)):
        vals = pp[mask]
        vals = vals[~np.isnan(vals)]
        out[name] = float(vals.mean()) if len(vals) else None
    if "prediction" in md:
        pred = np.asarray(md["prediction"])
        label = np.asarray(md["label"])
        fooled = adv & (pred != label)
        dominant = values[np.argmax(counts, axis=1)]
        M = g.incidence().tocsc()
        rows = np.flatnonzero(fooled)
        per_row = []
        for r in rows:
            nodes = M.indices[M.indptr[r]:M.indptr[r + 1]]
            if len(nodes):
                per_row.append(float(np.mean(dominant[nodes] == pred[r])))
        out["adv_pred_dominance"] = float(np.mean(per_row)) if per_row else None
        shared = 0
        for rows_i in g.members:
            clean_labels = set(label[rows_i][~adv[rows_i]].tolist())
            f = fooled[rows_i]
            adv_preds = set(pred[rows_i][f].tolist())
            shared += bool(clean_labels & adv_preds)
        out["shared_node_fraction"] = shared / g.n_nodes
    return out


def graph_statistics(g: GraphLike) -> dict:
    """The ``stats`` block of the graph JSON."""
    lab = _label_counts(g, "label")
    sizes = g.sizes.astype(np.float64)
    mean_purity = mean_entropy = None
    if lab is not None and g.n_nodes:
        counts = lab[2]
        purity = counts.max(axis=1) / np.maximum(sizes, 1)
        ent = np.array([_entropy_bits(c) for c in counts])
        mean_purity = float((purity * sizes).sum() / sizes.sum())
        mean_entropy = float((ent * sizes).sum() / sizes.sum())
    element_noise = int(sum(e.get("n_noise", 0) for e in g.elements))
    st = {
        "n_nodes": g.n_nodes, "n_edges": g.n_edges, "n_components": int(g.n_components),
        "n_noise": int(len(g.noise_rows)), "noise_rows": g.noise_rows.tolist(),
        "mean_purity": mean_purity, "mean_entropy": mean_entropy,
        "n_points": g.n_points, "n_cover_elements": len(g.elements),
        "n_noise_in_elements": element_noise,
        "mean_node_size": float(sizes.mean()) if g.n_nodes else 0.0,
    }
    st.update(mixing_metrics(g))
    return st


def vulnerability_scores(g: GraphLike) -> np.ndarray:
    """Per row: mean over the nodes holding it of the fraction of members whose true label differs.

    A clean sample sitting in nodes dominated by other classes is close (in activation space)
    to other classes' samples, so a small perturbation is likely to move it across.
    Rows in no node get 1.0 (no same-class support at all). NaN without a ``label`` column.
    """
    if "label" not in g.metadata:
        return np.full(g.n_points, np.nan)
    values, codes, counts = _label_counts(g, "label")
    M = g.incidence().tocsc()
    sizes = g.sizes.astype(np.float64)
    out = np.ones(g.n_points)
    for r in range(g.n_points):
        nodes = M.indices[M.indptr[r]:M.indptr[r + 1]]
        if len(nodes):
            out[r] = float(np.mean(1.0 - counts[nodes, codes[r]] / sizes[nodes]))
    return out


def rank_vulnerable(g: GraphLike, top: int | None = None, clean_only: bool = True) -> list[dict]:
    """Rows ranked by vulnerability score (highest first; ties by row), clean rows only by default."""
    scores = vulnerability_scores(g)
    rows = np.arange(g.n_points)
    if clean_only and "is_adversarial" in g.metadata:
        rows = rows[~g.metadata["is_adversarial"]]
    order = rows[np.lexsort((rows, -np.nan_to_num(scores[rows], nan=-1.0)))]
    if top is not None:
        order = order[:top]
    sid = g.metadata.get("sample_id", np.arange(g.n_points))
    return [{"row": int(r), "sample_id": to_jsonable(sid[r]), "score": to_jsonable(scores[r])} for r in order]


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC of ``scores`` for the binary labels ``positive`` (Mann-Whitney, ties count 1/2).

    Use with vulnerability scores of clean samples and ``positive`` = "fooled at eps".
    NaN when one class is empty.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positive).astype(bool)
    if s.shape != y.shape:
        raise AdvtopoError(f"scores and labels differ in shape: {s.shape} vs {y.shape}")
    keep = ~np.isnan(s)
    s, y = s[keep], y[keep]
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(s)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def vulnerability_auc(g: GraphLike, fooled: np.ndarray) -> float:
    """ROC AUC of the vulnerability score of the graph's clean rows against ``fooled`` (one per clean row)."""
    scores = vulnerability_scores(g)
    if "is_adversarial" in g.metadata:
        scores = scores[~g.metadata["is_adversarial"]]
    fooled = np.asarray(fooled).astype(bool)
    if len(fooled) != len(scores):
        raise AdvtopoError(f"fooled has {len(fooled)} entries; the graph has {len(scores)} clean rows")
    return roc_auc(scores, fooled)
