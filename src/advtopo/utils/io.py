"""Write-then-rename file helpers: a killed process never leaves a half-written file."""
from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    """The user cache folder: ``$ADVTOPO_CACHE`` or ``~/.cache/advtopo``."""
    path = Path(os.environ.get("ADVTOPO_CACHE") or Path.home() / ".cache" / "advtopo")
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:  # make the bytes durable before the rename
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> None:
    """``obj`` as standard JSON, atomically: NaN and +-inf are written as null (``to_jsonable``),
    never as the ``NaN`` / ``Infinity`` tokens that browsers and strict parsers refuse."""
    try:
        text = json.dumps(obj, indent=indent, allow_nan=False, default=_json_default)
    except ValueError:  # a non-finite number somewhere
        text = json.dumps(to_jsonable(obj), indent=indent, allow_nan=False)
    atomic_write_text(path, text + "\n")


def to_jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON data, so a strict encoder (``allow_nan=False``) accepts it: numpy (and
    torch) scalars and arrays become Python numbers and lists, tuples lists, mapping keys text,
    NaN and +-inf None; anything else (a Path, a callable, an estimator) its ``str()``."""
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, bool, int)):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy / torch scalars and arrays
        return to_jsonable(obj.tolist())
    return str(obj)


def strict_dumps(obj: Any) -> str:
    """Compact JSON that any parser reads: NaN and +-inf as null, numpy values as numbers (the
    common case, nothing to clean, is encoded without walking ``obj`` first)."""
    try:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False, default=to_jsonable)
    except ValueError:  # a NaN or an infinity somewhere
        return json.dumps(to_jsonable(obj), separators=(",", ":"), allow_nan=False)


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
