"""``advtopo verify RUN [--full]``: every damaged artefact of a run directory, one line each.

The run directory's own files are checked by :func:`advtopo.rundir.verify.check_run`; the
study's task cache (what ``advtopo run`` reuses) by :func:`advtopo.study.tasks.verify_tasks`.
Exit code 0: nothing damaged; 1: something is (each line says what to run); 2: not a run.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from advtopo.rundir import ArtefactInvalid, Run, layout
from advtopo.rundir.verify import RECOMPUTE, RECOMPUTE_HASHED, RunCheck, check_run
from advtopo.study.results import DOCUMENT_SECTIONS, document_section
from advtopo.study.tasks import verify_tasks


def verify_run(root: str | os.PathLike[str], full: bool = False) -> RunCheck:
    """``check_run``, the documents ``advtopo show`` prints, and the task cache: a task whose files
    do not match its completion record (``full``: by SHA-256, else by name and size) is one
    Damage naming its folder and files."""
    result = check_run(root, full)
    _check_summary_sections(result)
    result.checked += sum(1 for p in (result.root / layout.TASKS_DIR).glob("*/*") if p.is_dir() and "." not in p.name)
    used = _manifest_tasks(result.root)
    for folder, problems in verify_tasks(result.root, full).items():
        shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
        if used is not None and folder.rsplit("/", 1)[-1] not in used:
            fix = f"the last run did not use it (an older config's task): `rm -r {result.root / folder}` removes it"
        else:
            fix = RECOMPUTE_HASHED if all("mismatch" in p for p in problems) else RECOMPUTE
        result.add(folder, f"cached task output damaged ({shown})", fix)
    return result


def _manifest_tasks(root: Path) -> set[str] | None:
    """The task keys the last run used (manifest.json), or None when the manifest does not read."""
    try:
        tasks = json.loads((root / layout.MANIFEST).read_text(encoding="utf-8")).get("tasks")
    except (OSError, ValueError, RecursionError, AttributeError):
        return None
    return set(tasks) if isinstance(tasks, dict) else None


def _check_summary_sections(result: RunCheck) -> None:
    """A document that parses but lacks what its section of ``advtopo show`` prints is damaged
    (a document that does not parse was reported by check_run already)."""
    if any(d.path == layout.INDEX for d in result.damage) or not (result.root / layout.INDEX).is_file():
        return
    run = Run(result.root)
    for key in DOCUMENT_SECTIONS:
        try:
            doc = run.document(key)
        except ArtefactInvalid:
            continue
        if doc:
            result.check(run.index[key], lambda k=key, d=doc: document_section(run, k, d), count=False)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="check every artefact of a run directory; list the damaged ones",
                       description="Checks index.json, every file it names (JSON, .npy, parquet, mapper graphs, "
                                   "activation stores), manifest.json and the task cache. One line per damaged "
                                   "artefact with what to run; exit code 1 if any, 0 if none.")
    p.add_argument("run", help="run directory")
    p.add_argument("--full", action="store_true",
                   help="also read every activation chunk (CRC32C) and hash every cached task file (SHA-256); "
                        "default: presence and sizes")
    p.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    result = verify_run(args.run, full=args.full)
    how = "full check: chunks read, task files hashed" if args.full else \
        "cheap check: presence and sizes; --full reads every chunk and hashes every task file"
    status = result.status
    if status and not status.startswith("complete"):
        print(f"note: the study is {status}")
    for d in result.damage:
        print(f"damaged: {d}")
    if result.damage:
        print(f"{args.run}: {len(result.damage)} damaged of {result.checked} artefacts checked ({how})")
        return 1
    print(f"{args.run}: all {result.checked} artefacts verify ({how})")
    return 0
