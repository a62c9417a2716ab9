"""Files the web app writes (and reads back) inside a run directory, confined to it.

Every path is relative to the run directory and walked one folder at a time with
``O_NOFOLLOW`` directory handles (``openat``): a symbolic link anywhere below the run
directory (``app-cache`` itself, ``app-cache/embedding``, the file) is refused, never followed,
so nothing is written or read outside the run even when the folders change meanwhile. Writes
are atomic (a temporary file in the same folder, fsync, rename), reads open regular files only
(a FIFO would block). The run directory itself may be reached through a link: the user chose it.
"""
from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from advtopo.rundir.errors import ArtefactInvalid
from advtopo.utils.io import strict_dumps

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(ArtefactInvalid):
    """A path below the run directory is a symbolic link (or not a plain file / folder)."""


def _parts(rel: str) -> list[str]:
    """``rel`` split into plain names (no absolute path, ``..``, ``.``, empty part, backslash or NUL)."""
    if not isinstance(rel, str) or not rel or "\x00" in rel or "\\" in rel:
        raise UnsafePath(f"{rel!r} is not a relative path inside the run directory")
    p = PurePosixPath(rel)
    if p.is_absolute() or any(part in ("..", ".", "") for part in rel.split("/")):
        raise UnsafePath(f"{rel!r} is not a relative path inside the run directory")
    return list(p.parts)


def _refuse(root: Path, parts: list[str], what: str) -> UnsafePath:
    return UnsafePath(f"{'/'.join(parts)} in {root} is {what}; the app only uses plain folders and files "
                      "inside the run directory (remove it, and app-cache/ is made again)")


@contextmanager
def _folder(root: Path, parts: list[str], create: bool) -> Iterator[int | None]:
    """A directory handle of ``root/parts`` (each part opened without following links);
    None when a folder is missing and ``create`` is false."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, name in enumerate(parts):
            try:
                nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    os.close(fd)
                    fd = -1
                    yield None
                    return
                try:
                    os.mkdir(name, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
                nxt = _open_dir_or_refuse(root, parts[: i + 1], name, fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _kind_error(root, parts[: i + 1], name, fd) from None
                raise
            os.close(fd)
            fd = nxt
        yield fd
    finally:
        if fd >= 0:
            os.close(fd)


def _open_dir_or_refuse(root: Path, shown: list[str], name: str, parent: int) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _kind_error(root, shown, name, parent) from None
        raise


def _kind_error(root: Path, shown: list[str], name: str, parent: int) -> UnsafePath:
    try:
        mode = os.lstat(name, dir_fd=parent).st_mode
    except OSError:
        mode = 0
    return _refuse(root, shown, "a symbolic link" if stat.S_ISLNK(mode) else "not a folder")


def write_bytes(root: str | os.PathLike[str], rel: str, data: bytes, mode: int = 0o644) -> None:
    """``root/rel`` holds ``data`` (atomically; missing folders made; a link on the way refused)."""
    root, parts = Path(root), _parts(rel)
    with _folder(root, parts[:-1], create=True) as fd:
        tmp = f".{secrets.token_hex(8)}.tmp"
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=fd)
        try:
            with os.fdopen(out, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, parts[-1], src_dir_fd=fd, dst_dir_fd=fd)  # a link there is replaced, not followed
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=fd)
            except OSError:
                pass
            raise


def write_json(root: str | os.PathLike[str], rel: str, obj: Any, mode: int = 0o644) -> None:
    """``obj`` as compact strict JSON (NaN and infinities as null) at ``root/rel``, atomically and confined."""
    write_bytes(root, rel, (strict_dumps(obj) + "\n").encode("utf-8"), mode)


def read_bytes(root: str | os.PathLike[str], rel: str) -> bytes | None:
    """The bytes of the regular file ``root/rel``, or None when it does not exist; a link refused."""
    root, parts = Path(root), _parts(rel)
    with _folder(root, parts[:-1], create=False) as fd:
        if fd is None:
            return None
        try:
            fh = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _refuse(root, parts, "a symbolic link") from None
            raise
        with os.fdopen(fh, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise _refuse(root, parts, "not a plain file")
            return f.read()


def remove(root: str | os.PathLike[str], rel: str) -> None:
    """Remove the file ``root/rel`` if it is there (a link is removed itself, never its target)."""
    root, parts = Path(root), _parts(rel)
    with _folder(root, parts[:-1], create=False) as fd:
        if fd is not None:
            try:
                os.unlink(parts[-1], dir_fd=fd)
            except FileNotFoundError:
                pass


def list_files(root: str | os.PathLike[str], rel_dir: str) -> list[tuple[str, int, int]]:
    """``(name, size, mtime_ns)`` of the plain files in the folder ``root/rel_dir`` (none when missing;
    links and hidden temporary files left out)."""
    root, parts = Path(root), _parts(rel_dir)
    with _folder(root, parts, create=False) as fd:
        if fd is None:
            return []
        out = []
        for name in os.listdir(fd):
            if name.startswith("."):
                continue
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISREG(st.st_mode):
                out.append((name, st.st_size, st.st_mtime_ns))
        return out
