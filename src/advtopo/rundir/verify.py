"""Check a whole run directory against what was written: ``check_run(root, full) -> RunCheck``.

Every artefact is read the way its readers read it, through :class:`advtopo.rundir.Run` (so
what passes here opens in ``advtopo show``, the report and the web app): index.json parses and
its records validate; every file it names exists and parses (JSON documents, ``.npy`` with
``allow_pickle=False``, samples.parquet, mapper graphs against their rules); activation stores
have every chunk (``full``: every chunk is read and its CRC32C checked); manifest.json and
config.toml parse. The study's task cache is checked by ``advtopo.study`` (``advtopo verify``
runs both). Each problem is one :class:`Damage`: the file, what is wrong, what to run.
"""
from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advtopo.errors import AdvtopoError
from advtopo.rundir import layout
from advtopo.rundir.errors import ArtefactMissing, RunNotFound, UnsupportedFormat, repair_hint
from advtopo.rundir.lock import describe_status
from advtopo.rundir.reader import Run

REWRITE = "`advtopo run CONFIG --out {root}` rewrites it from the task cache"
RECOMPUTE = "`advtopo run CONFIG --out {root}` recomputes it"
RECOMPUTE_HASHED = ("`advtopo run CONFIG --out {root} --verify-cache` recomputes it "
                    "(its size is right, its content is not)")
RECOMPUTED_GRAPH = "delete it: the web app rebuilds a graph when asked again"


@dataclass(frozen=True)
class Damage:
    """One damaged artefact: its path (relative to the run), what is wrong, what to run."""

    path: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}" + (f"; {self.fix}" if self.fix else "")


@dataclass
class RunCheck:
    """What :func:`check_run` found: the damaged artefacts and how many artefacts it checked."""

    root: Path
    full: bool
    damage: list[Damage] = field(default_factory=list)
    checked: int = 0
    status: str | None = None  # the study's status in words (manifest + run lock), when the manifest reads

    def add(self, path: str, problem: str, fix: str) -> None:
        self.damage.append(Damage(path, problem, fix.format(root=self.root)))

    def check(self, path: str, read: Callable[[], Any], fix: str = REWRITE, *, count: bool = True) -> Any:
        """Call ``read`` (which reads ``path`` the way its readers do); a failure is a Damage.
        ``count=False``: a second look at an artefact already counted."""
        self.checked += count
        try:
            return read()
        except ArtefactMissing:
            self.add(path, "is missing (or is not a file inside the run directory)", fix)
        except UnsupportedFormat as exc:
            self.add(path, _problem(self.root, path, exc), "")  # the message says what to do
        except AdvtopoError as exc:  # ArtefactInvalid, CorruptActivations, ...
            self.add(path, _problem(self.root, path, exc), fix)
        return None


def _problem(root: Path, path: str, exc: Exception) -> str:
    """The reader's message without the repair hint (verify says what to run per artefact) and
    without the file name it starts with (the line starts with it)."""
    text = str(exc).removesuffix(f"; {repair_hint(root)}").replace(f"{root}/", "")
    return text.removeprefix(f"{path}: ").removeprefix(f"{path} ")


def check_run(root: str | os.PathLike[str], full: bool = False) -> RunCheck:
    """Every artefact of the run directory ``root`` checked (module docstring); RunNotFound when
    ``root`` is not a run directory at all."""
    root_path = Path(root)
    if not root_path.is_dir():
        raise RunNotFound(f"run directory not found: {root}")
    if not (root_path / layout.INDEX).is_file() and not (root_path / layout.MANIFEST).is_file():
        raise RunNotFound(f"{root} is not a run directory (no {layout.INDEX}, no {layout.MANIFEST})")
    result = RunCheck(root_path.resolve(), full)
    run = result.check(layout.INDEX, lambda: Run(root_path)) if (root_path / layout.INDEX).is_file() else None
    if run is not None:
        _check_index_files(run, result)
    _check_manifest(result)
    if (result.root / layout.CONFIG).is_file():
        result.check(layout.CONFIG, lambda: _read_toml(result.root / layout.CONFIG))
    return result


def _read_toml(path: Path) -> None:
    try:
        tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise AdvtopoError(f"is not valid TOML ({exc})") from None


def _check_manifest(result: RunCheck) -> None:
    path = result.root / layout.MANIFEST
    if not path.is_file():
        return
    result.checked += 1
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        result.add(layout.MANIFEST, f"is not valid JSON ({exc})", REWRITE)
        return
    if not isinstance(doc, dict) or not isinstance(doc.get("tasks", {}), dict):
        result.add(layout.MANIFEST, "is not a run manifest (an object whose 'tasks' is an object)", REWRITE)
        return
    result.status = describe_status(result.root, doc.get("status", "unknown"))


def _check_index_files(run: Run, result: RunCheck) -> None:
    idx = run.index_record
    images = idx.images
    if isinstance(images.get("clean"), str):
        result.check(images["clean"], lambda: run.images())
    for key, rel in (images.get("adversarial") or {}).items():
        parts = layout.split_adversarial_images_key(key)
        if parts is None:
            result.add(layout.INDEX, f"images.adversarial key {key!r} is not model/attack/eps", REWRITE)
            continue
        result.check(str(rel), lambda p=parts: run.images(p[0], p[1], float(p[2])))
    for entry in run.graph_entries():
        result.check(entry.path, lambda e=entry: run.graph(e.id), RECOMPUTED_GRAPH if entry.recomputed else REWRITE)
    if (result.root / layout.SAMPLES).is_file() or idx.graphs:
        result.check(layout.SAMPLES, lambda: run.samples)
    for key, rel in run.index.items():  # the documents: vulnerability.json, datapaths.json, ...
        if isinstance(rel, str) and rel.endswith(".json"):
            result.check(rel, lambda k=key, r=rel: (run.safe_path(r), run.document(k)))
    _check_persistence(run, result)
    for model in idx.models:
        if model.checkpoint:
            result.check(model.checkpoint, lambda m=model.name: run.checkpoint(m), RECOMPUTE)
    _check_activations(run, result)


def _check_persistence(run: Run, result: RunCheck) -> None:
    section = run.index_record.persistence or {}
    diagrams = section.get("diagrams")
    for key, rel in (diagrams.items() if isinstance(diagrams, dict) else []):
        result.check(str(rel), lambda k=key: run.diagram(k))
    layer_distance = section.get("layer_distance")
    json_files = [layer_distance.get("path") if isinstance(layer_distance, dict) else None,
                  section.get("clean_vs_adv_path")]
    for rel in json_files:
        if isinstance(rel, str):
            result.check(rel, lambda r=rel: run.json_file(r))
    plots = section.get("plots")
    for rel in (plots.values() if isinstance(plots, dict) else []):
        result.check(str(rel), lambda r=rel: run.safe_path(r))


def _check_activations(run: Run, result: RunCheck) -> None:
    """Each store once: every chunk present; ``full``: every array read (CRC32C of every chunk)."""
    from advtopo.activations import open_activations, read_activations

    stores: dict[str, list[str]] = {}
    for e in run.index_record.activations:
        stores.setdefault(e.path, []).append(e.array)
    for rel, arrays in stores.items():
        def read(rel: str = rel, arrays: list[str] = arrays) -> None:
            path = run.safe_path(rel, directory=True)
            open_activations(path)
            for name in dict.fromkeys(arrays) if result.full else ():
                read_activations(path, name)
        result.check(rel, read, RECOMPUTE)
