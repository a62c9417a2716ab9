"""Locks that die with their process: one writer per run directory, one worker per task.

A lock is a file whose content says who holds it (pid, host, since when, command) and which
its holder keeps ``flock``-ed. The kernel drops an flock when its process dies, however it
dies, so a ``kill -9`` never leaves a lock that blocks the next run: the file stays, but the
next process can lock it, knows its holder is gone (a *stale* lock), and takes it over.

The holder's file appears at the lock's path only whole: it is written beside it, locked,
then ``link``-ed (free lock) or ``rename``-d over a stale one, so a reader never sees half the
metadata. Releasing unlinks the path first, then drops the flock; a process that locked a
file which is no longer at the path starts over.

Network file systems: Linux emulates flock with POSIX record locks on NFS, which work across
machines but belong to a process, not a file handle (and closing any handle of the file in
that process drops them). advtopo never probes a lock from the process that holds it, so this
keeps working; storage without lock support is refused with a message saying so.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import platform
import secrets
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from advtopo.errors import AdvtopoError
from advtopo.rundir.layout import RUN_LOCK

# A reader probes a lock by taking a shared lock for an instant; a process that finds the lock
# busy looks again for this long before it believes a live process holds it.
_BUSY_GRACE_S = 0.3


class LockHeld(AdvtopoError):
    """The lock belongs to a live process; ``holder`` is its metadata."""

    def __init__(self, message: str, holder: dict[str, Any]) -> None:
        super().__init__(message)
        self.holder = holder


def lock_metadata(**extra: Any) -> dict[str, Any]:
    """Who is taking a lock: this process's pid, host, the time and its command line."""
    return {"pid": os.getpid(), "host": platform.node(),
            "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": _command_line(), **extra}


def _command_line() -> str:
    """``advtopo run study.toml`` (also for ``python -m advtopo.cli``), else the program's argv."""
    if not sys.argv or not sys.argv[0]:
        return "python"
    prog = Path(sys.argv[0])
    name = "advtopo" if prog.parent.name == "advtopo" and prog.name in ("cli.py", "__main__.py") else prog.name
    return shlex.join([name, *sys.argv[1:]])


def describe_holder(holder: dict[str, Any]) -> str:
    """``pid 123 on host h since 2025-01-01T10:00:00+00:00 (advtopo run study.toml)``."""
    text = f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} since {holder.get('since', '?')}"
    return f"{text} ({holder['command']})" if holder.get("command") else text


class FileLock:
    """A held lock; ``release()`` (or leaving a ``with`` block) gives it back."""

    def __init__(self, path: Path, fd: int, metadata: dict[str, Any], stale: dict[str, Any] | None) -> None:
        self.path = path
        self.metadata = metadata
        self.stale = stale  # the metadata of a dead holder this lock was taken over from, else None
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            if _same_file(self._fd, self.path):  # nobody else can replace it while we hold the flock
                os.unlink(self.path)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def acquire(path: str | os.PathLike[str], metadata: dict[str, Any] | None = None, *, wait: bool = False,
            on_wait: Callable[[dict[str, Any]], None] | None = None) -> FileLock:
    """Take the lock at ``path``, writing ``metadata`` (default :func:`lock_metadata`) into it.

    A lock whose holder died is taken over (``FileLock.stale`` then names that holder). A live
    holder: ``wait=False`` raises :class:`LockHeld`; ``wait=True`` calls ``on_wait(holder)``
    once and blocks until it is free."""
    path = Path(path)
    metadata = metadata if metadata is not None else lock_metadata()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, (json.dumps(metadata) + "\n").encode())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else has it
        except OSError as exc:
            raise AdvtopoError(f"cannot lock {path}: its file system does not support file locks ({exc}); "
                               "use a local disk or a network file system with locking (NFSv4)") from None
        told = False
        while True:
            try:
                os.link(tmp, path)  # free: our file (already locked) becomes the lock
                return FileLock(path, fd, metadata, None)
            except FileExistsError:
                pass
            try:
                other = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue  # released meanwhile
            try:
                if not _flock_briefly(other):
                    holder = _read(other)
                    if not wait:
                        raise LockHeld(f"{path} is held by {describe_holder(holder)}", holder)
                    if on_wait and not told:
                        on_wait(holder)
                        told = True
                    fcntl.flock(other, fcntl.LOCK_EX)  # until the holder releases it or dies
                if not _same_file(other, path):
                    continue  # the holder released (unlinked) it, or another process took it over first
                stale = _read(other)  # we hold the file at `path` and nobody wrote it since: a dead holder's
                os.replace(tmp, path)
                return FileLock(path, fd, metadata, stale)
            finally:
                os.close(other)
    except BaseException:
        os.close(fd)
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def holder(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The metadata of the live process holding the lock at ``path``, or None when it is free
    (no file, or a file no live process holds). Takes nothing: a shared lock for an instant."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


# --- the run directory's lock -----------------------------------------------------------------

def lock_run(root: str | os.PathLike[str], *, wait: bool = False,
             log: Callable[[str], None] | None = None) -> FileLock:
    """Lock the run directory ``root`` for this process (the only one that writes it).

    Another live writer: an :class:`AdvtopoError` naming it (pid, host, since when, command),
    or with ``wait=True`` a message and a wait until it finishes. A lock left by a killed
    process is taken over with a warning through ``log``."""
    root = Path(root)
    path = root / RUN_LOCK

    def waiting(h: dict[str, Any]) -> None:
        if log:
            log(f"run directory {root} is in use by {describe_holder(h)}; waiting for it to finish")

    try:
        lock = acquire(path, lock_metadata(), wait=wait, on_wait=waiting)
    except PermissionError as exc:
        raise AdvtopoError(f"cannot write the run directory {root} ({exc.strerror}); choose another with --out") from None
    except LockHeld as exc:
        raise LockHeld(f"run directory {root} is in use by {describe_holder(exc.holder)}; wait for it to finish "
                       "(or pass --wait), or write to another directory with --out", exc.holder) from None
    if lock.stale is not None and log:
        log(f"warning: taking over the lock of a run that did not finish ({describe_holder(lock.stale)}; "
            "that process is gone)")
    return lock


def run_status(root: str | os.PathLike[str], status: Any) -> Any:
    """What a manifest's ``status`` means now: ``running`` while a process holds the run's lock,
    ``interrupted`` when the process that wrote ``running`` is gone (killed without cleanup)."""
    if status == "running" and holder(Path(root) / RUN_LOCK) is None:
        return "interrupted"
    return status


def describe_status(root: str | os.PathLike[str], status: Any) -> str:
    """``run_status`` in words: ``running (pid 123 on host h since ..., advtopo run study.toml)``,
    ``interrupted (...; advtopo run CONFIG resumes it)``, else the status as written."""
    if status != "running":
        return str(status)
    held_by = holder(Path(root) / RUN_LOCK)
    if held_by is None:
        return "interrupted (the process that wrote it is gone; `advtopo run CONFIG` resumes it)"
    return f"running ({describe_holder(held_by)})"


# --- helpers ------------------------------------------------------------------------------------

def _flock_briefly(fd: int) -> bool:
    """An exclusive flock, retried for a moment (a reader's probe holds a shared one for an instant)."""
    deadline = time.monotonic() + _BUSY_GRACE_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (own.st_dev, own.st_ino) == (st.st_dev, st.st_ino)


def _read(fd: int) -> dict[str, Any]:
    try:
        doc = json.loads(os.pread(fd, 1 << 16, 0).decode())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


