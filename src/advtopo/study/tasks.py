"""Pure, cached tasks (the executors that run them are in advtopo.study.executors).

A task is ``fn(params, inputs, out_dir) -> dict``: ``params`` is the JSON config slice it
needs, ``inputs`` maps a role ("data", "model", ...) to the finished output folder of an
upstream task, ``out_dir`` is where it writes. Its key is a hash of (stage, params,
upstream keys, code version), so a re-run skips finished work and a changed parameter
recomputes only what depends on it. Tasks never share state, so they can run in any order
or on other processes (Dask).

Finishing is atomic: a task works in ``<key>.partial/``, writes its completion record
``DONE.json`` there last (atomically), and the folder becomes ``<key>/`` by one rename; a kill
at any point leaves at most a ``.partial`` folder, which is never taken as finished.

One process at a time: a task is computed only under its lock ``<key>.lock`` (advtopo.rundir.lock,
an flock that dies with its process), so a process never deletes or writes into the
``.partial`` of another live process; it waits for it instead, and then finds the task done.
The ``.partial`` of a dead process is deleted (or resumed, for ``_resumable`` tasks).

Integrity: the record lists every file of the folder with its size and SHA-256. A cached task
is used only if its record parses and its files verify (:func:`verify_task`: the cheap check,
by default, compares the file list and sizes; ``full=True`` also the hashes); otherwise it is
recomputed with a warning naming the file. A record written before the file list existed
(format 1) is accepted as it is and the list of the files found is added to it, so
an existing run is not recomputed wholesale and later damage to it is detected. The record's
contents are not part of the task key: changing them recomputes nothing.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advtopo import __version__
from advtopo.rundir import layout
from advtopo.rundir.lock import LockHeld, acquire, describe_holder, holder, lock_metadata
from advtopo.utils import atomic_write_json, seed_everything

# Bump a stage's version when its output for the same inputs changes: its tasks (and all
# downstream ones) are recomputed.
STAGE_VERSIONS = {"data": "1", "train": "1", "attack": "1", "capture": "2", "mapper": "3",
                  "persistence": "1", "vulnerability": "3", "recovery": "1"}

DONE = "DONE.json"


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


@dataclass
class Task:
    """One unit of work. ``fn`` is 'module:function' so that it pickles by name."""

    stage: str
    label: str  # human-readable, e.g. "attack lenet5_eps0.1 pgd eps=0.1"
    fn: str
    params: dict[str, Any]
    deps: dict[str, "Task"] = field(default_factory=dict)
    key: str = ""

    def __post_init__(self) -> None:
        payload = {"stage": self.stage, "params": self.params,
                   "deps": {role: t.key for role, t in sorted(self.deps.items())},
                   "code": STAGE_VERSIONS.get(self.stage, "0"), "advtopo": __version__}
        self.key = hashlib.sha256(_canonical(payload).encode()).hexdigest()[:20]

    @property
    def seed(self) -> int:
        """A per-task seed: results do not depend on which tasks ran before."""
        return int(self.key[:8], 16)

    def out_dir(self, root: Path) -> Path:
        return Path(root) / layout.task_dir(self.stage, self.key)

    def spec(self) -> dict[str, Any]:
        """What a worker needs: plain data only."""
        return {"stage": self.stage, "label": self.label, "fn": self.fn, "params": self.params,
                "key": self.key, "seed": self.seed, "deps": {r: (t.stage, t.key) for r, t in self.deps.items()}}


def is_done(root: Path, stage: str, key: str) -> bool:
    """Whether the task has a completion record (:func:`execute_task` verifies its files)."""
    return (Path(root) / layout.task_dir(stage, key) / DONE).is_file()


def read_done(path: Path) -> dict[str, Any]:
    return json.loads((Path(path) / DONE).read_text())


# --- integrity of a finished task ----------------------------------------------------------------

RECORD_FORMAT = 2  # DONE.json lists the task's files ("files"); format 1 (no "format" key) did not
HASH = "sha256"  # ~1 GB/s here (SHA-NI); blake2b measured 0.42 GB/s


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, HASH).hexdigest()


def _task_files(folder: Path) -> dict[str, Path]:
    """Every file under ``folder`` but its record, by path relative to it ('/'-separated)."""
    out: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            rel = p.relative_to(folder).as_posix()
            if rel != DONE:
                out[rel] = p
    return out


def record_files(folder: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """``{relative path: {"size", "sha256"}}`` of every file of a task folder (DONE.json aside)."""
    return {rel: {"size": p.stat().st_size, HASH: file_sha256(p)} for rel, p in _task_files(Path(folder)).items()}


def verify_task(folder: str | os.PathLike[str], full: bool = False) -> list[str]:
    """What is wrong with a finished task folder (empty: it can be trusted).

    Cheap check (default): the record parses, and the files are exactly those it lists with
    the sizes it lists. ``full=True`` also compares each file's SHA-256. A record without a
    file list (written before advtopo recorded one) passes when it parses. Each problem names
    the file, relative to ``folder``."""
    folder = Path(folder)
    try:
        record = json.loads((folder / DONE).read_text())
    except FileNotFoundError:
        return [f"{DONE} is missing"]
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: nested too deep to parse
        return [f"{DONE} cannot be read ({type(exc).__name__}: {exc})"]
    if not isinstance(record, dict) or not isinstance(record.get("result", {}), dict):
        return [f"{DONE} is not a task record"]
    if record.get("key", folder.name) != folder.name:
        return [f"{DONE} is the record of task {record.get('key')!r}, not of {folder.name!r}"]
    files = record.get("files")
    if files is None:
        return []  # a format-1 record: accepted (module docstring)
    if not isinstance(files, dict):
        return [f"{DONE}: its file list is not a mapping"]
    problems = []
    present = _task_files(folder)
    for rel, want in files.items():
        p = present.pop(rel, None)
        want = want if isinstance(want, dict) else {}
        if p is None:
            problems.append(f"{rel} is missing")
        elif (size := p.stat().st_size) != want.get("size"):
            problems.append(f"{rel} has {size} bytes, the record says {want.get('size')}")
        elif full and file_sha256(p) != want.get(HASH):
            problems.append(f"{rel} differs from what the task wrote ({HASH} mismatch)")
    problems += [f"{rel} was not written by the task" for rel in sorted(present)]
    return problems


def verify_tasks(root: str | os.PathLike[str], full: bool = False) -> dict[str, list[str]]:
    """:func:`verify_task` for every finished task of a run: ``{"tasks/<stage>/<key>": problems}``,
    damaged tasks only (for ``advtopo verify``)."""
    root = Path(root)
    out: dict[str, list[str]] = {}
    for folder in sorted((root / layout.TASKS_DIR).glob("*/*")):
        if folder.is_dir() and "." not in folder.name:
            problems = verify_task(folder, full)
            if problems:
                out[folder.relative_to(root).as_posix()] = problems
    return out


# --- running one task -------------------------------------------------------------------------------

def _resolve(fn: str) -> Callable[..., dict]:
    mod, _, name = fn.partition(":")
    return getattr(importlib.import_module(mod), name)


def _cached_info(final: Path) -> dict[str, Any]:
    record = read_done(final)
    info = {k: v for k, v in record.items() if k not in ("files", "format")}
    info["cached"] = True
    return info


def execute_task(spec: dict[str, Any], root: str | os.PathLike[str], runtime: dict[str, Any]) -> dict[str, Any]:
    """Run one task (or return its cached result). Safe to call in any process, at the same
    time as other processes running the same task: one computes it, the others wait and use it.
    A cached result is checked first (``runtime["full_verify"]``: hashes too, else sizes)."""
    root = Path(root)
    final = root / layout.task_dir(spec["stage"], spec["key"])
    full = bool(runtime.get("full_verify", False))
    if final.is_dir() and _has_file_list(final) and not verify_task(final, full):
        return _cached_info(final)
    final.parent.mkdir(parents=True, exist_ok=True)

    def waiting(holder: dict[str, Any]) -> None:
        log(f"task {spec['label']}: waiting for {describe_holder(holder)}, which is computing it")

    with acquire(final.with_name(final.name + ".lock"), lock_metadata(task=spec["label"]), wait=True,
                 on_wait=waiting):
        if final.is_dir():  # finished (or repaired) by another process while we waited, or damaged
            problems = verify_task(final, full)
            if not problems:
                if not _has_file_list(final):  # a format-1 record: add the list of what is there
                    _upgrade_record(final)
                return _cached_info(final)
            shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
            log(f"warning: task {spec['label']}: its cached output {final} is damaged ({shown}); recomputing it")
            _discard(final)
        return _compute(spec, root, final, runtime)


def _compute(spec: dict[str, Any], root: Path, final: Path, runtime: dict[str, Any]) -> dict[str, Any]:
    """Compute a task into its ``.partial`` folder and rename it into place (under its lock)."""
    partial = final.with_name(final.name + ".partial")
    if partial.exists() and not spec["params"].get("_resumable", False):
        shutil.rmtree(partial)  # left by a dead process: we hold the task's lock
    partial.mkdir(parents=True, exist_ok=True)
    inputs = {role: root / layout.task_dir(stage, key) for role, (stage, key) in spec["deps"].items()}
    for role, path in inputs.items():
        if not (path / DONE).is_file():
            raise RuntimeError(f"task {spec['label']}: input {role} ({path}) is not finished")
    seed_everything(spec["seed"])
    t0 = time.perf_counter()
    result = _resolve(spec["fn"])(spec["params"], inputs, partial, runtime) or {}
    info = {"stage": spec["stage"], "key": spec["key"], "label": spec["label"],
            "seconds": round(time.perf_counter() - t0, 3), "result": result, "cached": False}
    atomic_write_json(partial / DONE, {**info, "format": RECORD_FORMAT, "files": record_files(partial)})
    if final.exists():  # written meanwhile by a process that does not take task locks (an older advtopo)
        shutil.rmtree(partial, ignore_errors=True)
    else:
        os.replace(partial, final)
    return info


def _has_file_list(folder: Path) -> bool:
    try:
        return "files" in read_done(folder)
    except (OSError, ValueError, TypeError):
        return False


def _upgrade_record(folder: Path) -> None:
    record = read_done(folder)
    atomic_write_json(folder / DONE, {**record, "format": RECORD_FORMAT, "files": record_files(folder)})


def _discard(folder: Path) -> None:
    """Remove a damaged task folder: renamed aside first, so its name vanishes at once."""
    aside = folder.with_name(f"{folder.name}.damaged-{secrets.token_hex(4)}")
    os.replace(folder, aside)
    shutil.rmtree(aside, ignore_errors=True)


def clean_leftovers(root: str | os.PathLike[str], keep: Iterable[str] = ()) -> None:
    """Remove what dead processes left in a run directory: under ``tasks/`` stale task locks,
    damaged folders set aside, and ``.partial`` folders of tasks not in ``keep`` (those in
    ``keep`` are resumed or replaced when they run); temporary files (``.*.tmp``) beside the
    published files (older advtopo left one hard link per file and re-run). Call with the run
    directory's lock held: no other process writes there then (the web app writes only to
    app-cache/)."""
    root = Path(root)
    for folder, pattern in ((root, ".*.tmp"), (root / "images", "**/.*.tmp"), (root / "mapper", ".*.tmp"),
                            (root / "persistence", "**/.*.tmp")):
        for p in folder.glob(pattern) if folder.is_dir() else ():
            if p.is_file():
                p.unlink(missing_ok=True)
    keep = set(keep)
    tasks_dir = root / layout.TASKS_DIR
    if not tasks_dir.is_dir():
        return
    for stage_dir in sorted(p for p in tasks_dir.iterdir() if p.is_dir()):
        for p in sorted(stage_dir.iterdir()):
            name = p.name
            if name.endswith(".lock") and not name.startswith("."):
                try:
                    acquire(p, wait=False).release()  # takes over a dead process's lock, then drops it
                except LockHeld:
                    pass
            elif ".damaged-" in name:
                shutil.rmtree(p, ignore_errors=True)
            elif name.endswith(".partial") and name[: -len(".partial")] not in keep:
                if holder(stage_dir / (name[: -len(".partial")] + ".lock")) is None:
                    shutil.rmtree(p, ignore_errors=True)


def topo_order(tasks: Iterable[Task]) -> list[Task]:
    """Unique tasks (by key), every task after its inputs."""
    seen: dict[str, Task] = {}

    def visit(t: Task) -> None:
        if t.key in seen:
            return
        for d in t.deps.values():
            visit(d)
        seen[t.key] = t

    for t in tasks:
        visit(t)
    return list(seen.values())


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
