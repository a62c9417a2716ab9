"""Write a run directory (the study's publish step): every file atomically, index.json last.

A reader never sees a half-written file: task outputs are copied (reflinked where the file
system can; never hard-linked, so an edit of a published file cannot reach the task cache)
to a temporary name and renamed into place, documents go through ``atomic_write_json``, and
index.json, which names everything else, is written after all of it.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from advtopo.rundir import layout
from advtopo.rundir.records import GraphEntry, RunIndex
from advtopo.utils.io import atomic_path, atomic_write_json


def place_file(root: Path, src: Path, rel: str) -> str:
    """Copy the task output ``src`` to ``root/rel``, atomically; returns ``rel``."""
    with atomic_path(Path(root) / rel) as tmp:
        _copy(src, tmp)
    return rel


def place_tree(root: Path, src: Path | None, rel: str) -> None:
    """Make the folder ``root/rel`` hold ``src``'s files (each replaced atomically, so a reader
    sees the old or the new version of each); files ``src`` lacks are removed; None removes all."""
    dst = Path(root) / rel
    wanted = set()
    if src is not None and src.is_dir():
        for p in sorted(src.rglob("*")):
            if p.is_file():
                wanted.add(place_file(dst, p, p.relative_to(src).as_posix()))
    if dst.is_dir():
        for p in sorted(dst.rglob("*"), reverse=True):  # a folder's files before the folder
            if p.is_dir() and not p.is_symlink():
                if not any(p.iterdir()):
                    p.rmdir()
            elif p.relative_to(dst).as_posix() not in wanted:
                p.unlink()
        if not wanted:
            shutil.rmtree(dst, ignore_errors=True)


def _copy(src: Path, dst: Path) -> None:
    """``cp --reflink=auto``: share the blocks where the file system can (btrfs, XFS), else copy."""
    import fcntl

    with open(src, "rb") as fin, open(dst, "wb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
            return
        except OSError:
            pass
    shutil.copyfile(src, dst)


_FICLONE = 0x40049409  # linux/fs.h: clone a whole file (a reflink)


def place_images(root: Path, clean: Path, adversarial: dict[tuple[str, str, float], Path]) -> dict[str, Any]:
    """The clean images and each (model, attack, eps)'s adversarial ones; returns index.json's "images"."""
    section: dict[str, Any] = {"clean": place_file(root, clean, layout.clean_images_path()), "adversarial": {}}
    for (model, attack, eps), src in adversarial.items():
        rel = place_file(root, src, layout.adversarial_images_path(model, attack, eps))
        section["adversarial"][layout.adversarial_images_key(model, attack, eps)] = rel
    return section


def place_graphs(root: Path, graphs: list[tuple[GraphEntry, Path]]) -> None:
    """Each graph's JSON at its entry's path; graphs of an older config of this run are removed."""
    keep = {Path(place_file(root, src, entry.path)).name for entry, src in graphs}
    mapper_dir = Path(root) / layout.MAPPER_DIR
    if mapper_dir.is_dir():
        for p in mapper_dir.glob("*.json"):
            if p.name not in keep:
                p.unlink()


def write_samples(root: Path, frame: Any) -> None:
    """samples.parquet (one row per sample_id, model, attack, eps; columns in docs/architecture.md)."""
    with atomic_path(Path(root) / layout.SAMPLES) as tmp:
        frame.to_parquet(tmp, index=False)


def write_document(root: Path, name: str, doc: Any | None) -> str | None:
    """A JSON document of the run (separability.json, ...); None removes it. Returns its path or None."""
    path = Path(root) / name
    if doc is None:
        path.unlink(missing_ok=True)
        return None
    atomic_write_json(path, doc)
    return name


def write_index(root: Path, index: RunIndex) -> dict[str, Any]:
    """index.json, stamped with this version's FORMAT_VERSION; write it last. Returns what was written."""
    index.format_version = layout.FORMAT_VERSION
    doc = index.to_dict()
    atomic_write_json(Path(root) / layout.INDEX, doc)
    return doc
