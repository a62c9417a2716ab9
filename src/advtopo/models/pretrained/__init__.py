"""The built-in model zoo: checkpoints trained by ``advtopo train`` and shipped in the package.

Each entry of ``index.json`` (written by ``tools/build_zoo.py``) records the exact training
command, seed, training time and machine, the file's SHA-256 and the accuracies measured
on the test split. Use an entry anywhere a checkpoint is accepted as ``zoo:NAME``
(``checkpoint = "zoo:mnist-lenet5-pgd0.3"`` in a study, ``advtopo evaluate --checkpoint
zoo:...``); ``advtopo zoo`` lists them.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from advtopo.errors import AdvtopoError, did_you_mean

HERE = Path(__file__).resolve().parent
PREFIX = "zoo:"


@dataclass(frozen=True)
class PretrainedEntry:
    """One shipped checkpoint and what was measured on it."""

    name: str
    arch: str
    dataset: str
    file: str
    sha256: str
    train_eps: float
    command: str
    num_classes: int = 10
    in_channels: int = 1
    input_size: int = 28
    dtype: str = "float32"
    seed: int = 0
    train_seconds: float = 0.0
    machine: str = ""
    accuracy: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def path(self) -> Path:
        return HERE / self.file

    def model_kwargs(self) -> dict[str, int]:
        return {"num_classes": self.num_classes, "in_channels": self.in_channels, "input_size": self.input_size}


@lru_cache(maxsize=1)
def _index() -> dict[str, PretrainedEntry]:
    path = HERE / "index.json"
    if not path.exists():
        return {}
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:
        raise AdvtopoError(f"the zoo index {path} is damaged ({exc}); reinstall advtopo") from None
    names = {f.name for f in PretrainedEntry.__dataclass_fields__.values()} - {"raw"}
    out = {}
    for m in doc.get("models", []):
        out[m["name"]] = PretrainedEntry(**{k: v for k, v in m.items() if k in names}, raw=m)
    return out


def list_pretrained() -> list[PretrainedEntry]:
    """All shipped checkpoints, sorted by name."""
    return [_index()[k] for k in sorted(_index())]


def get_pretrained(name: str) -> PretrainedEntry:
    """The entry called ``name`` (with or without the ``zoo:`` prefix); did-you-mean on typos."""
    name = name.removeprefix(PREFIX)
    index = _index()
    if name not in index:
        raise AdvtopoError(f"unknown zoo checkpoint {name!r}{did_you_mean(name, index)}; "
                           f"available: {', '.join(sorted(index)) or 'none'} (advtopo zoo lists them)")
    return index[name]


def resolve_pretrained(name: str, verify: bool = True) -> Path:
    """Path of the shipped file of ``name``; checks its SHA-256 so a damaged install is named."""
    entry = get_pretrained(name)
    path = entry.path
    if not path.is_file():
        raise AdvtopoError(f"zoo checkpoint {entry.name!r}: file {path} is missing; reinstall advtopo")
    if verify and _sha256(path) != entry.sha256:
        raise AdvtopoError(f"zoo checkpoint {entry.name!r}: {path} does not match its recorded SHA-256 "
                           "(damaged install); reinstall advtopo")
    return path


def is_pretrained_ref(ref: object) -> bool:
    return isinstance(ref, str) and ref.startswith(PREFIX)


@lru_cache(maxsize=32)
def _sha256_cached(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sha256(path: Path) -> str:
    st = path.stat()
    return _sha256_cached(str(path), st.st_mtime_ns, st.st_size)


def load_pretrained(name: str):
    """``(model, entry)``: the shipped model in eval mode, weights in float32 (strict load by name)."""
    from advtopo.models.spec import build_model

    entry = get_pretrained(name)
    model, _info = build_model(entry.arch, checkpoint=PREFIX + entry.name, **entry.model_kwargs())
    return model.eval(), entry


__all__ = ["PretrainedEntry", "list_pretrained", "get_pretrained", "resolve_pretrained", "load_pretrained",
           "is_pretrained_ref", "PREFIX"]
