"""The persistence stage of the study pipeline: diagrams, layer-distance matrices and the
clean-vs-adversarial curves of every captured point cloud, written for the web app."""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from advtopo.errors import AdvtopoError
from advtopo.persistence._validation import check_choice, check_int
from advtopo.persistence.distances import DISTANCES, diagram_distance
from advtopo.persistence.layers import SCALINGS, LayerDistance, rank_correlation, similarity_matrix
from advtopo.persistence.pointclouds import top_l2_point_cloud
from advtopo.persistence.rips import METRICS, stack_diagrams
from advtopo.persistence.vectorize import diagram_summary
from advtopo.utils import atomic_path, atomic_write_json, to_jsonable

DEFAULT_SETTINGS: dict[str, Any] = {
    "maxdim": 1,                 # Rips diagrams H0..maxdim
    "homology_dim": 1,           # the dimension compared by the distances
    "metric": "sliced_wasserstein",
    "metric_params": {},
    "point_metric": "euclidean",
    "max_points": 1000,          # shared random subset of samples (same ids in every cloud)
    "n_landmarks": None,         # optional maxmin landmarks on top of max_points
    "scaling": "none",
    "similarity": ["cka", "svcca"],
    "seed": 0,
    "plots": True,
}


def validate_settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults filled in; unknown keys and bad values raise AdvtopoError naming the key."""
    s = dict(DEFAULT_SETTINGS)
    for k, v in (settings or {}).items():
        if k not in DEFAULT_SETTINGS:
            raise AdvtopoError(f"unknown persistence setting {k!r}; allowed: {', '.join(DEFAULT_SETTINGS)}")
        s[k] = v
    check_int("maxdim", s["maxdim"], minimum=0)
    check_int("homology_dim", s["homology_dim"], minimum=0)
    if s["homology_dim"] > s["maxdim"]:
        raise AdvtopoError(f"homology_dim ({s['homology_dim']}) must be <= maxdim ({s['maxdim']})")
    check_choice("metric", s["metric"], DISTANCES)
    check_choice("point_metric", s["point_metric"], METRICS)
    check_choice("scaling", s["scaling"], SCALINGS)
    check_int("max_points", s["max_points"], minimum=3)
    check_int("n_landmarks", s["n_landmarks"], minimum=3, allow_none=True)
    for m in s["similarity"]:
        check_choice("similarity", m, ("cka", "svcca"))
    return s


def _slug(*parts: Any) -> str:
    return "__".join(re.sub(r"[^A-Za-z0-9._-]+", "_", str(p)) for p in parts)


def persistence_stage(activations: Mapping[tuple, Any], sample_ids: Any, out_dir: str | Path,
                      settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Compute and write every persistence summary of a run; return the index.json entry.

    ``activations``: (model, layer, attack, eps) -> [N, ...] activations of the samples
    ``sample_ids`` (rows aligned across keys); feature maps are reduced with top-L2. The
    entry with eps 0 is a (model, layer)'s clean cloud. Writes into ``out_dir``:
    ``diagrams/<model>__<layer>__<attack>__<eps>.npy`` ([n, 3] birth, death, dim),
    ``layer_distance.json`` (all clean (model, layer) clouds against each other, beside
    CKA/SVCCA), ``clean_vs_adv.json`` and PNG plots. Paths in the result are relative to
    the run directory (``out_dir``'s parent).
    """
    s = validate_settings(settings)
    out_dir = Path(out_dir)
    prefix = out_dir.name
    sample_ids = np.asarray(sample_ids)
    if not activations:
        raise AdvtopoError("activations is empty: nothing to compute persistence of")
    rng = np.random.default_rng(s["seed"])
    n = len(sample_ids)
    rows = np.sort(rng.choice(n, size=s["max_points"], replace=False)) if n > s["max_points"] else np.arange(n)
    clouds = _point_clouds(activations, rows, n)

    ld = LayerDistance(homology_dim=s["homology_dim"], metric=s["metric"], metric_params=s["metric_params"],
                       point_metric=s["point_metric"], n_landmarks=s["n_landmarks"], scaling=s["scaling"])
    diagrams, diag_paths, summaries = _write_diagrams(clouds, ld, s["maxdim"], out_dir)
    # the first eps-0 cloud of each (model, layer) is its clean reference
    clean: dict[tuple, tuple] = {}
    for key in clouds:
        if float(key[3]) == 0.0:
            clean.setdefault((key[0], key[1]), key)
    result: dict[str, Any] = {"settings": to_jsonable(s), "n_points": int(len(rows)),
                              "sample_ids": sample_ids[rows].tolist(),
                              "diagrams": {gid: f"{prefix}/{rel}" for gid, rel in diag_paths.items()},
                              "summaries": summaries}
    # an undefined statistic (a rank correlation over < 2 layer pairs, a distance to an empty
    # diagram) is NaN in memory and null in the documents: JSON has no NaN (browsers refuse it)
    lay = _layer_distance(clouds, diagrams, clean, ld, s) if clean else None
    if lay is not None:
        atomic_write_json(out_dir / "layer_distance.json", to_jsonable(lay))
        result["layer_distance"] = {**to_jsonable(lay), "path": f"{prefix}/layer_distance.json"}
    curves = _clean_vs_adv(clouds, diagrams, clean, ld, s)
    atomic_write_json(out_dir / "clean_vs_adv.json", to_jsonable(curves))
    result["clean_vs_adv"] = to_jsonable(curves)
    result["clean_vs_adv_path"] = f"{prefix}/clean_vs_adv.json"
    if s["plots"]:
        result["plots"] = _plot(lay, curves, out_dir)
    return to_jsonable(result)


def _point_clouds(activations: Mapping[tuple, Any], rows: np.ndarray, n: int) -> dict[tuple, np.ndarray]:
    """Each key's [len(rows), d] float64 point cloud (feature maps reduced by top-L2)."""
    clouds: dict[tuple, np.ndarray] = {}
    for key, A in activations.items():
        if len(key) != 4:
            raise AdvtopoError(f"activation keys must be (model, layer, attack, eps), got {key!r}")
        X = top_l2_point_cloud(A)
        if X.shape[0] != n:
            raise AdvtopoError(f"activations {key!r} have {X.shape[0]} rows, sample_ids has {n}")
        clouds[key] = np.asarray(X[rows], dtype=np.float64)
    return clouds


def _write_diagrams(clouds: dict[tuple, np.ndarray], ld: LayerDistance, maxdim: int,
                    out_dir: Path) -> tuple[dict[tuple, list[np.ndarray]], dict[str, str], list[dict[str, Any]]]:
    """(diagrams H0..maxdim by key, "model/layer/attack/eps" -> file relative to ``out_dir``,
    one summary row per key and dimension); each cloud's diagrams saved as one .npy."""
    diagrams, diag_paths, summaries = {}, {}, []
    for key, X in clouds.items():
        model, layer, attack, eps = key
        dg = ld.diagrams(X)
        dg = dg + [np.zeros((0, 2))] * (maxdim + 1 - len(dg))
        dg = dg[: maxdim + 1]
        diagrams[key] = dg
        rel = f"diagrams/{_slug(model, layer, attack, eps)}.npy"
        with atomic_path(out_dir / rel) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, stack_diagrams(dg))
        diag_paths["/".join(map(str, key))] = rel
        for k, d in enumerate(dg):
            summaries.append({"model": model, "layer": layer, "attack": attack, "eps": float(eps), "dim": k,
                              **diagram_summary(d)})
    return diagrams, diag_paths, summaries


def _layer_distance(clouds: dict[tuple, np.ndarray], diagrams: dict[tuple, list[np.ndarray]],
                    clean: dict[tuple, tuple], ld: LayerDistance, s: dict[str, Any]) -> dict[str, Any]:
    """Diagram distances between all clean (model, layer) clouds, beside CKA/SVCCA and the
    rank correlation of each similarity with the distances."""
    labels = list(clean)
    D = np.zeros((len(labels), len(labels)))
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            D[i, j] = D[j, i] = ld.distance(diagrams[clean[labels[i]]], diagrams[clean[labels[j]]])
    lay = {"labels": ["/".join(map(str, k)) for k in labels], "models": [k[0] for k in labels],
           "layers": [k[1] for k in labels], "metric": s["metric"], "homology_dim": s["homology_dim"],
           "matrix": D.tolist()}
    ordered = {k: clouds[clean[k]] for k in labels}
    for m in s["similarity"]:
        S = similarity_matrix(ordered, m)
        lay[m] = S.tolist()
        lay[f"rank_correlation_{m}"] = rank_correlation(D, S)
    return lay


def _clean_vs_adv(clouds: dict[tuple, np.ndarray], diagrams: dict[tuple, list[np.ndarray]],
                  clean: dict[tuple, tuple], ld: LayerDistance, s: dict[str, Any]) -> list[dict[str, Any]]:
    """Each cloud's diagram distance to its (model, layer)'s clean cloud, sorted by
    (model, layer, attack, eps); clouds without a clean reference are left out."""
    curves = []
    for key in clouds:
        model, layer, attack, eps = key
        ref = clean.get((model, layer))
        if ref is None:
            continue
        a, b = diagrams[ref], diagrams[key]
        row = {"model": model, "layer": layer, "attack": attack, "eps": float(eps),
               "distance": ld.distance(a, b) if key != ref else 0.0,
               "metric": s["metric"], "homology_dim": s["homology_dim"]}
        row["distance_h0"] = diagram_distance(a[0], b[0], s["metric"], **s["metric_params"]) if key != ref else 0.0
        curves.append(row)
    curves.sort(key=lambda r: (str(r["model"]), str(r["layer"]), str(r["attack"]), r["eps"]))
    return curves


def _plot(layer_distance: dict[str, Any] | None, curves: list[dict[str, Any]], out_dir: Path) -> dict[str, str]:
    """The layer-distance and clean-vs-adversarial PNGs that have data; name -> path from the run dir."""
    from advtopo.persistence import plots

    prefix = out_dir.name
    pngs = {}
    if layer_distance is not None:
        plots.plot_layer_matrices(layer_distance, out_dir / "layer_distance.png")
        pngs["layer_distance"] = f"{prefix}/layer_distance.png"
    if any(r["eps"] > 0 for r in curves):
        plots.plot_clean_vs_adv(curves, out_dir / "clean_vs_adv.png")
        pngs["clean_vs_adv"] = f"{prefix}/clean_vs_adv.png"
    return pngs
