"""Pure, cached tasks (the executors that run them are in advtopo.study.executors).

A task is ``fn(params, inputs, out_dir) -> dict``: ``params`` is the JSON config slice it
needs, ``inputs`` maps a role ("data", "model", ...) to the finished output folder of an
upstream task, ``out_dir`` is where it writes. Its key is a hash of (stage, params,
upstream keys, code version), so a re-run skips finished work and a changed parameter
recomputes only what depends on it. A task works in ``<key>.partial/`` and becomes
finished only by writing ``DONE.json`` there and renaming the folder to ``<key>/``: a kill
at any point leaves at most a ``.partial`` folder, which is never taken as finished.
Tasks never share state, so they can run in any order or on other processes (Dask).
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advtopo import __version__
from advtopo.utils import atomic_write_json, seed_everything

# Bump a stage's version when its output for the same inputs changes: its tasks (and all
# downstream ones) are recomputed.
STAGE_VERSIONS = {"data": "1", "train": "1", "attack": "1", "capture": "1", "mapper": "3",
                  "persistence": "1", "vulnerability": "2"}

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
        return Path(root) / "tasks" / self.stage / self.key

    def spec(self) -> dict[str, Any]:
        """What a worker needs: plain data only."""
        return {"stage": self.stage, "label": self.label, "fn": self.fn, "params": self.params,
                "key": self.key, "seed": self.seed, "deps": {r: (t.stage, t.key) for r, t in self.deps.items()}}


def is_done(root: Path, stage: str, key: str) -> bool:
    return (Path(root) / "tasks" / stage / key / DONE).is_file()


def read_done(path: Path) -> dict[str, Any]:
    return json.loads((Path(path) / DONE).read_text())


def _resolve(fn: str) -> Callable[..., dict]:
    mod, _, name = fn.partition(":")
    return getattr(importlib.import_module(mod), name)


def execute_task(spec: dict[str, Any], root: str | os.PathLike[str], runtime: dict[str, Any]) -> dict[str, Any]:
    """Run one task (or return its cached result). Safe to call in any process."""
    root = Path(root)
    final = root / "tasks" / spec["stage"] / spec["key"]
    if (final / DONE).is_file():
        info = read_done(final)
        info["cached"] = True
        return info
    partial = final.with_name(final.name + ".partial")
    if partial.exists() and not spec["params"].get("_resumable", False):
        shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    inputs = {role: root / "tasks" / stage / key for role, (stage, key) in spec["deps"].items()}
    for role, path in inputs.items():
        if not (path / DONE).is_file():
            raise RuntimeError(f"task {spec['label']}: input {role} ({path}) is not finished")
    seed_everything(spec["seed"])
    t0 = time.perf_counter()
    result = _resolve(spec["fn"])(spec["params"], inputs, partial, runtime) or {}
    info = {"stage": spec["stage"], "key": spec["key"], "label": spec["label"],
            "seconds": round(time.perf_counter() - t0, 3), "result": result, "cached": False}
    atomic_write_json(partial / DONE, info)
    if final.exists():  # finished meanwhile by another worker: theirs is as good as ours
        shutil.rmtree(partial, ignore_errors=True)
    else:
        os.replace(partial, final)
    return info


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
