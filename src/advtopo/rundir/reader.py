"""Read a run directory: ``open_run(path) -> Run``, the one reader of the study, report and web app.

Every file is reached through index.json (paths relative to the run) and :meth:`Run.safe_path`,
which refuses absolute paths, ``..`` parts and anything (symlinks included) that resolves
outside the run directory; arrays load with ``allow_pickle=False``, nothing is unpickled.
One Run is shared by the web app's request threads: its caches sit behind one lock and are
dropped when index.json changes (a study published again).
"""
from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from advtopo.errors import AdvtopoError, did_you_mean
from advtopo.rundir import confine, layout
from advtopo.rundir.errors import ArtefactInvalid, ArtefactMissing, RunNotFound, UnsupportedFormat, damaged
from advtopo.rundir.lock import describe_status
from advtopo.rundir.records import ActivationEntry, GraphEntry, RunIndex, check_document, read_index


def _choose(what: str, value: str, allowed: list[str]) -> str:
    if value not in allowed:
        raise ArtefactMissing(f"{what}={value!r} is not valid{did_you_mean(value, allowed)}; "
                              f"allowed: {', '.join(allowed)}")
    return value


class Run:
    """A finished run directory, read through its index.json (thread-safe, cached)."""

    def __init__(self, root: str | os.PathLike[str], max_cached_graphs: int = 64) -> None:
        self._lock = threading.RLock()
        self._max_graphs = max_cached_graphs
        self._index_mtime: int | None = None
        self._drop_caches()
        if not Path(root).is_dir():
            raise RunNotFound(f"run directory not found: {root}")
        self.root = Path(root).resolve()
        if not (self.root / layout.INDEX).is_file():
            status = ""
            if (self.root / layout.MANIFEST).is_file():
                written = str(self.manifest.get("status"))
                now = describe_status(self.root, written)
                status = f"; manifest status: {now if now.startswith(written) else f'{written}, but {now}'}"
            raise RunNotFound(f"{root} is not a finished run directory (no {layout.INDEX}{status}); "
                              "run a study first (advtopo run CONFIG)")
        self.index  # noqa: B018  (read and check it now: a broken index is an error at start-up)
        self._extra = self._read_extra_graphs()  # graphs the web app recomputed (app-cache/)

    def _drop_caches(self) -> None:
        self._graph_docs: OrderedDict[str, dict] = OrderedDict()
        self._arrays: dict[str, np.ndarray] = {}
        self._docs: dict[str, tuple[int, Any]] = {}
        self._clouds: OrderedDict[str, np.ndarray] = OrderedDict()
        self._samples = None

    def _repr_html_(self) -> str:
        """Notebooks show the run in the app, served from loopback in the background
        (advtopo.app.notebook; imported on use, not at load)."""
        from advtopo.app.notebook import run_view

        return run_view(self.root)._repr_html_()

    def __repr__(self) -> str:
        return f"Run({str(self.root)!r}, models={self.models}, layers={self.layers})"

    # ---- paths --------------------------------------------------------------------------
    def safe_path(self, rel: Any, *, directory: bool = False) -> Path:
        """``rel`` (as index.json names it) -> an existing file (or folder) inside the run, else
        ArtefactMissing: absolute paths, ``..``, ``~``, backslashes and symlinks leading out are refused."""
        bad = ArtefactMissing(f"no {'folder' if directory else 'file'} {rel!r} inside the run directory")
        if not isinstance(rel, str) or not rel or "\x00" in rel or "\\" in rel or rel.startswith("~"):
            raise bad
        p = PurePosixPath(rel)
        if p.is_absolute() or any(part in ("..", "") for part in p.parts):
            raise bad
        try:
            full = (self.root / p).resolve()
        except (OSError, RuntimeError):  # a symbolic-link loop
            raise bad from None
        if not full.is_relative_to(self.root) or not (full.is_dir() if directory else full.is_file()):
            raise bad
        return full

    def cache_path(self, kind: str, name: str) -> Path:
        """Where the web app caches ``name`` of ``kind`` (recompute, featurevis, embedding) in this run."""
        return self.root / layout.app_cache_path(kind, name)

    # ---- index --------------------------------------------------------------------------
    @property
    def index(self) -> dict[str, Any]:
        """index.json as stored (read again, and the caches dropped, when the file changes)."""
        path = self.root / layout.INDEX
        with self._lock:
            try:
                mtime = path.stat().st_mtime_ns
            except OSError:
                raise RunNotFound(f"{path} is gone; the run directory was removed or is being rewritten") from None
            if mtime != self._index_mtime:
                try:
                    self._raw, self._record = read_index(path)
                except UnsupportedFormat:
                    raise
                except ArtefactInvalid as exc:
                    raise damaged(self.root, str(exc)) from None
                self._index_mtime = mtime
                self._drop_caches()
            return self._raw

    @property
    def index_record(self) -> RunIndex:
        """index.json as typed records (checked when read)."""
        with self._lock:
            self.index  # noqa: B018
            return self._record

    @property
    def manifest(self) -> dict[str, Any]:
        """manifest.json (config, versions, seeds, task status), or {} when there is none."""
        try:
            doc = self._json_file(self.safe_path(layout.MANIFEST))
        except ArtefactMissing:
            return {}
        if not isinstance(doc, dict) or not isinstance(doc.get("tasks", {}), dict):
            raise damaged(self.root, f"{layout.MANIFEST} is not a run manifest (an object whose 'tasks' is an object)")
        return doc

    @property
    def status(self) -> str:
        """The study's status in words: complete, failed, ``running (pid ... on host ...)``, or
        ``interrupted`` when the process that was writing the run is gone."""
        return describe_status(self.root, self.manifest.get("status", "unknown"))

    @property
    def models(self) -> list[str]:
        return [m.name for m in self.index_record.models]

    @property
    def layers(self) -> list[str]:
        return list(self.index_record.layers)

    def checkpoint(self, model: str) -> Path:
        """The model's checkpoint.pt inside the run (ArtefactMissing when the run has none)."""
        _choose("model", model, self.models)
        rel = next(m.checkpoint for m in self.index_record.models if m.name == model)
        if not rel:
            raise ArtefactMissing(f"the run has no checkpoint for model {model!r}")
        return self.safe_path(rel)

    def accuracy(self):
        """Accuracy per (model, attack, eps) as a DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.index.get("accuracy") or [])

    # ---- graphs -------------------------------------------------------------------------
    def graph_entries(self) -> list[GraphEntry]:
        """The study's graphs (index.json), then those the web app recomputed (app-cache)."""
        with self._lock:
            return [*self.index_record.graphs, *self._extra]

    def graph_entry(self, graph_id: str) -> GraphEntry:
        entries = self.graph_entries()
        for e in entries:
            if e.id == graph_id:
                return e
        raise ArtefactMissing(f"unknown graph {graph_id!r}{did_you_mean(graph_id, [e.id for e in entries])}")

    def graph(self, graph_id: str) -> dict[str, Any]:
        """A graph's JSON (``MapperGraph.to_dict()``), the last ``max_cached_graphs`` kept; shared: do not modify."""
        with self._lock:
            if graph_id in self._graph_docs:
                self._graph_docs.move_to_end(graph_id)
                return self._graph_docs[graph_id]
        rel = self.graph_entry(graph_id).path
        path = self.safe_path(rel)
        try:
            g = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):  # RecursionError: nested too deep to parse
            raise damaged(self.root, f"graph {graph_id!r} ({rel}) is not valid JSON") from None
        from advtopo.mapper import check_graph_dict  # the graph JSON's rules (imports the mapper: lazily)

        try:
            check_graph_dict(g, points_required=False)
        except AdvtopoError as exc:
            raise damaged(self.root, f"graph {graph_id!r} ({rel}) is not a mapper graph: {exc}") from None
        g.setdefault("edges", [])
        g.setdefault("points", {})
        with self._lock:
            self._graph_docs[graph_id] = g
            while len(self._graph_docs) > self._max_graphs:
                self._graph_docs.popitem(last=False)
        return g

    def graphs(self):
        """The study's graphs with their kept statistics, one row each, as a DataFrame."""
        import pandas as pd

        return pd.DataFrame([{"id": g.id, "model": g.model, "layer": g.layer, "attack": g.attack, "eps": g.eps,
                              **(g.stats or {})} for g in self.index_record.graphs])

    def add_graph(self, entry: GraphEntry, doc: dict[str, Any]) -> GraphEntry:
        """Keep a graph the web app recomputed: its JSON and the app-cache index of such graphs are
        written atomically inside the run, so it is listed from now on and after a restart."""
        if any(g.id == entry.id for g in self.index_record.graphs):
            raise ArtefactInvalid(f"graph id {entry.id!r} belongs to the study; a recomputed graph needs another")
        rel = layout.recompute_graph_path(entry.id)
        confine.write_json(self.root, rel, doc)  # no link below the run is followed
        entry = replace(entry, path=rel, recomputed=True)
        with self._lock:
            self._extra = [g for g in self._extra if g.id != entry.id] + [entry]
            self._graph_docs.pop(entry.id, None)
            confine.write_json(self.root, layout.recompute_index_path(), [g.to_dict() for g in self._extra])
        return entry

    def drop_recomputed(self, graph_ids: list[str]) -> None:
        """Forget graphs the web app recomputed (its cache is bounded): listed no more, files removed."""
        drop = set(graph_ids)
        with self._lock:
            gone = [g for g in self._extra if g.id in drop]
            self._extra = [g for g in self._extra if g.id not in drop]
            for g in gone:
                self._graph_docs.pop(g.id, None)
            confine.write_json(self.root, layout.recompute_index_path(), [g.to_dict() for g in self._extra])
        for g in gone:
            confine.remove(self.root, g.path)

    def _read_extra_graphs(self) -> list[GraphEntry]:
        try:
            listed = json.loads(self.safe_path(layout.recompute_index_path()).read_text(encoding="utf-8"))
        except (ArtefactMissing, OSError, ValueError, RecursionError):
            return []
        study = {g.id for g in self.index_record.graphs}
        out = []
        for d in listed if isinstance(listed, list) else []:
            try:
                entry = GraphEntry.from_dict(d)
            except ArtefactInvalid:  # a cache entry from another version: skipped, not fatal
                continue
            if entry.id not in study:
                out.append(entry)
        return out

    # ---- activations and point clouds ---------------------------------------------------
    def activation_entry(self, model: str, layer: str, attack: str | None = None, eps: float = 0.0) -> ActivationEntry:
        _choose("model", model, self.models)
        _choose("layer", layer, self.layers)
        if float(eps) == 0:
            attack = "clean"
        elif attack is None:
            attack = self.index_record.attacks[0].name
        stored = [e for e in self.index_record.activations if e.model == model]
        for e in stored:
            if e.layer == layer and e.attack == attack and (attack == "clean" or layout.eps_equal(e.eps, eps)):
                return e
        have = sorted({f"{e.attack}@{layout.eps_key(e.eps)}" for e in stored})
        raise ArtefactMissing(f"no stored activations for model={model!r} layer={layer!r} attack={attack!r} "
                              f"eps={layout.eps_key(eps)}; " + (f"stored: {', '.join(have)}" if have else
                                                                "this run stores none"))

    def activations(self, model: str, layer: str, attack: str | None = None, eps: float = 0.0) -> np.ndarray:
        """N x D activations of ``layer`` for ``model`` on the clean samples (eps 0) or the
        ``attack`` samples at ``eps`` (default: the first attack); row i is sample_id i."""
        return self._read_activations(self.activation_entry(model, layer, attack, eps))

    def _read_activations(self, e: ActivationEntry) -> np.ndarray:
        from advtopo.activations import read_activations

        return read_activations(self.safe_path(e.path, directory=True), e.array)

    @staticmethod
    def row_blocks(entry: GraphEntry) -> list[tuple[str, float]]:
        """(attack, eps) of the captures whose rows a graph holds, in row order: the clean rows,
        then at eps > 0 the adversarial ones (``rows`` "adversarial" / "clean": those alone)."""
        rows = entry.rows or "both"
        blocks = [("clean", 0.0)] if entry.eps == 0 or rows != "adversarial" else []
        if entry.eps > 0 and rows != "clean":
            blocks.append((entry.attack, float(entry.eps)))
        return blocks

    def point_cloud_sources(self, entry: GraphEntry) -> list[ActivationEntry]:
        """The stored activations a graph's point cloud needs (ArtefactMissing names one the run lacks)."""
        return [self.activation_entry(entry.model, entry.layer, a, e) for a, e in self.row_blocks(entry)]

    def point_cloud(self, entry: GraphEntry) -> np.ndarray:
        """A graph's rows as the study built them (float32, row r = the graph's point r)."""
        X = [self._read_activations(e) for e in self.point_cloud_sources(entry)]  # all found before any is read
        return np.concatenate(X).astype(np.float32, copy=False)

    def cached_point_cloud(self, entry: GraphEntry, keep: int = 4) -> np.ndarray:
        """``point_cloud``, kept for the last ``keep`` graphs: the app's views of one graph (feature
        visualisation, embedding) read its activations once (3.4 s cold on the demo run)."""
        with self._lock:
            if entry.id in self._clouds:
                self._clouds.move_to_end(entry.id)
                return self._clouds[entry.id]
        X = self.point_cloud(entry)
        with self._lock:
            self._clouds[entry.id] = X
            while len(self._clouds) > keep:
                self._clouds.popitem(last=False)
        return X

    def point_metadata(self, entry: GraphEntry) -> dict[str, np.ndarray]:
        """label, prediction, is_adversarial and sample_id of each row of ``point_cloud(entry)``,
        from samples.parquet (the metadata a mapper graph of those rows is built with)."""
        df = self.samples
        parts = []
        for attack, eps in self.row_blocks(entry):
            sel = df[(df["model"] == entry.model) & (df["attack"] == entry.attack) & np.isclose(df["eps"], eps)]
            if sel.empty:
                raise ArtefactMissing(f"samples.parquet has no rows for model={entry.model!r} "
                                      f"attack={entry.attack!r} eps={layout.eps_key(eps)}")
            parts.append((sel.sort_values("sample_id"), attack != "clean"))
        return {"label": np.concatenate([p["label"].to_numpy(np.int64) for p, _ in parts]),
                "prediction": np.concatenate([p["prediction"].to_numpy(np.int64) for p, _ in parts]),
                "is_adversarial": np.concatenate([np.full(len(p), adv) for p, adv in parts]),
                "sample_id": np.concatenate([p["sample_id"].to_numpy(np.int64) for p, _ in parts])}

    # ---- tables, images, diagrams -------------------------------------------------------
    @property
    def samples(self):
        """The per-sample table (one row per sample_id, model, attack, eps); cached and shared: do not modify."""
        with self._lock:
            self.index  # noqa: B018  (drops the cache when the run was published again)
            if self._samples is None:
                self._samples = self._read_samples()
            return self._samples

    def _read_samples(self):
        import pandas as pd

        path = self.safe_path(layout.SAMPLES)
        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001  (pyarrow's errors for a damaged file have no common base)
            raise damaged(self.root, f"{layout.SAMPLES} is unreadable ({type(exc).__name__}: {exc})") from None
        missing = [c for c in layout.SAMPLES_READ_COLUMNS if c not in df.columns]
        if missing:
            raise damaged(self.root, f"{layout.SAMPLES} lacks the column(s) {', '.join(missing)}")
        return df

    def images(self, model: str | None = None, attack: str | None = None, eps: float | str = 0.0) -> np.ndarray:
        """uint8 N x H x W x C images, memory-mapped: clean (no model or eps 0), or adversarial for
        (model, attack, eps) (default: the first attack); row i = sample_id i."""
        rel = self._images_path(model, attack, eps)
        with self._lock:
            if rel not in self._arrays:
                path = self.safe_path(rel)  # outside the try: ArtefactMissing is a ValueError too
                try:
                    arr = np.load(path, mmap_mode="r", allow_pickle=False)
                except (OSError, ValueError, EOFError) as exc:  # truncated, not .npy, or pickled objects
                    raise damaged(self.root, f"image array {rel!r} is unreadable ({exc})") from None
                if not isinstance(arr, np.ndarray) or arr.ndim != 4 or arr.dtype != np.uint8:
                    raise damaged(self.root, f"image array {rel!r} is not uint8 N x H x W x C "
                                             f"(it is {arr.dtype} {' x '.join(map(str, arr.shape))})")
                self._arrays[rel] = arr
            return self._arrays[rel]

    def _images_path(self, model: str | None, attack: str | None, eps: float | str) -> str:
        images = self.index_record.images
        if model is None or float(eps) == 0:
            if not isinstance(images.get("clean"), str):
                raise ArtefactMissing("this run has no clean images")
            return images["clean"]
        attack = attack or self.index_record.attacks[0].name
        adversarial = images.get("adversarial") or {}
        for key, rel in adversarial.items():
            parts = layout.split_adversarial_images_key(key)
            if parts and parts[:2] == (model, attack) and layout.eps_equal(parts[2], eps):
                return rel
        want = layout.adversarial_images_key(model, attack, eps)
        raise ArtefactMissing(f"no adversarial images {want!r}{did_you_mean(want, adversarial)}; "
                              f"stored: {', '.join(adversarial) or 'none'}")

    def diagram(self, key: str) -> np.ndarray:
        """A persistence diagram named in index.json["persistence"]["diagrams"]: (birth, death, dim) rows."""
        diagrams = (self.index_record.persistence or {}).get("diagrams")
        rel = diagrams.get(key) if isinstance(diagrams, dict) else None
        if not isinstance(rel, str):
            raise ArtefactMissing(f"no persistence diagram {key!r}")
        path = self.safe_path(rel)
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise damaged(self.root, f"persistence diagram {key!r} ({rel}) is unreadable ({exc})") from None
        if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.shape[1] != 3:
            raise damaged(self.root, f"persistence diagram {key!r} ({rel}) is not (birth, death, dim) rows")
        return arr

    # ---- JSON documents -----------------------------------------------------------------
    def document(self, key: str) -> Any | None:
        """The JSON file index.json names under ``key`` ("vulnerability", "datapaths", "separability",
        "stability", "recovery", ...), or None when the run has none (not named, missing, or outside
        the run). Cached until the file changes; ArtefactInvalid when it is not valid JSON."""
        rel = self.index.get(key)
        try:
            doc = self._json_file(self.safe_path(rel))
        except ArtefactMissing:
            return None
        problem = check_document(key, doc)
        if problem:
            raise damaged(self.root, f"{rel} {problem}")
        return doc

    def json_file(self, rel: str) -> Any:
        """A JSON file of the run by its path (as index.json names it); cached until it changes."""
        return self._json_file(self.safe_path(rel))

    def _json_file(self, path: Path) -> Any:
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            rel = path.relative_to(self.root).as_posix()
            raise ArtefactMissing(f"no file {rel!r} inside the run directory") from None
        with self._lock:
            cached = self._docs.get(str(path))
            if cached and cached[0] == mtime:
                return cached[1]
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            raise damaged(self.root, f"{path.relative_to(self.root).as_posix()} is not valid JSON") from None
        with self._lock:
            self._docs[str(path)] = (mtime, doc)
        return doc

    def vulnerability(self) -> Any | None:
        """vulnerability.json (per-sample scores, AUC), or None when not computed."""
        return self.document("vulnerability")

    def datapaths(self) -> Any | None:
        """datapaths.json (clean vs adversarial critical datapaths), or None when not computed."""
        return self.document("datapaths")

    def separability(self) -> Any | None:
        """separability.json (k-NN / probe accuracy, silhouette with CIs), or None when not computed."""
        return self.document("separability")

    def stability(self) -> Any | None:
        """stability.json (mapper statistics over a settings grid, point-purity CIs), or None."""
        return self.document("stability")


def open_run(path: str | os.PathLike[str]) -> Run:
    """The run directory at ``path`` (RunNotFound when no study finished there)."""
    return Run(path)
