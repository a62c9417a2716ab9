"""Typed entries of index.json, checked when a run is read and used when one is written.

Each record's fields are the keys of its JSON object (docs/architecture.md, "Run directory");
``from_dict`` checks every key it knows (a clear error names the bad one) and keeps the keys
it does not know in ``extra``, so ``to_dict`` gives them back: a newer writer's additions
survive a round trip. ``read_index`` reads index.json, refusing a format version newer than
this advtopo reads (a run without the key is version 1).
"""
from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from advtopo import __version__
from advtopo.rundir.errors import ArtefactInvalid, UnsupportedFormat
from advtopo.rundir.layout import FORMAT_VERSION


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# annotation text -> (check, what the value must be)
_SCALARS = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "float": (_is_number, "a number"),
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "dict": (lambda v: isinstance(v, dict), "an object"),
    "Any": (lambda v: True, "anything"),
}
_RECORDS: dict[str, type[Record]] = {}


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _parse(kind: str, value: Any, where: str) -> Any:
    """``value`` checked against a field's annotation text ('float | None', 'list[GraphEntry]', ...)."""
    if kind.endswith(" | None"):
        return None if value is None else _parse(kind[: -len(" | None")], value, where)
    if kind.startswith("list["):
        if not isinstance(value, list):
            raise ArtefactInvalid(f"{where} must be a list, got {_show(value)}")
        return [_parse(kind[5:-1], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if kind in _RECORDS:
        return _RECORDS[kind].from_dict(value, where)
    ok, what = _SCALARS[kind]
    if not ok(value):
        raise ArtefactInvalid(f"{where} must be {what}, got {_show(value)}")
    return value


def _plain(v: Any) -> Any:
    if isinstance(v, Record):
        return v.to_dict()
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


@dataclass(kw_only=True)
class Record:
    """Base of the index records: checked ``from_dict``, ``to_dict`` in field order."""

    OMIT_WHEN_DEFAULT: ClassVar[tuple[str, ...]] = ()  # keys left out of to_dict at their default
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        _RECORDS[cls.__name__] = cls

    @classmethod
    def from_dict(cls, d: Any, where: str = "") -> Any:
        """The record of JSON object ``d``; ArtefactInvalid names the key at ``where`` that is wrong."""
        if not isinstance(d, dict):
            raise ArtefactInvalid(f"{where or cls.__name__} must be an object, got {_show(d)}")
        kw, known = {}, set()
        for f in fields(cls):
            if f.name == "extra":
                continue
            known.add(f.name)
            if f.name in d:
                kw[f.name] = _parse(str(f.type), d[f.name], f"{where}.{f.name}" if where else f.name)
            elif f.default is MISSING and f.default_factory is MISSING:
                raise ArtefactInvalid(f"{where or cls.__name__} lacks the key {f.name!r}")
        return cls(**kw, extra={k: v for k, v in d.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or (f.name in self.OMIT_WHEN_DEFAULT and value == f.default):
                continue
            out[f.name] = _plain(value)
        return {**out, **self.extra}


@dataclass(kw_only=True)
class DatasetEntry(Record):
    name: str
    split: str | None = None
    class_names: list[str] = field(default_factory=list)
    image_shape: list[int] | None = None  # [C, H, W]
    n_samples: int | None = None


@dataclass(kw_only=True)
class ModelEntry(Record):
    name: str
    arch: str | None = None
    train_eps: float | None = None
    train: dict | None = None  # the training recipe; None for a loaded checkpoint
    checkpoint: str | None = None  # relative path of checkpoint.pt
    clean_accuracy: float | None = None


@dataclass(kw_only=True)
class AttackEntry(Record):
    name: str
    eps: list[float] = field(default_factory=list)
    steps: int | None = None


@dataclass(kw_only=True)
class AccuracyEntry(Record):
    model: str
    attack: str
    eps: float
    accuracy: float | None


@dataclass(kw_only=True)
class GraphEntry(Record):
    """One mapper graph: what it was built from, where its JSON lies, its kept statistics."""

    OMIT_WHEN_DEFAULT: ClassVar[tuple[str, ...]] = ("mapper_set", "rows", "recomputed", "source", "build")
    id: str
    model: str
    layer: str
    attack: str
    eps: float
    path: str
    mapper_set: str | None = None
    rows: str | None = None  # "both" (clean then adversarial), "adversarial" or "clean"; None: both
    params: dict | None = None
    stats: dict | None = None
    recomputed: bool = False  # built by the web app (app-cache/recompute), not by the study
    source: str | None = None  # the study graph a recomputed one started from
    # what advtopo.study.graphs.build_graph was given: {"mapper": the set's parameters (JSON), "seed": ...};
    # a rebuild starts from it (runs published before it existed: None)
    build: dict | None = None


@dataclass(kw_only=True)
class ActivationEntry(Record):
    """One layer's stored activations for one capture (model, attack, eps); eps 0 is "clean"."""

    model: str
    layer: str
    attack: str
    eps: float
    is_adversarial: bool = False
    summary: str | None = None
    path: str  # a zarr store
    array: str  # the array in it


@dataclass(kw_only=True)
class RunIndex(Record):
    """index.json. Every key is optional on read (partial runs and hand-made fixtures open)."""

    OMIT_WHEN_DEFAULT: ClassVar[tuple[str, ...]] = (
        "persistence", "vulnerability", "datapaths", "separability", "stability", "activation_graph", "recovery")
    format_version: int = 1  # runs written before the key existed are version 1
    name: str = ""
    created: str | None = None
    dataset: DatasetEntry | None = None
    models: list[ModelEntry] = field(default_factory=list)
    attacks: list[AttackEntry] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)
    layer_summaries: dict = field(default_factory=dict)
    layer_modules: dict = field(default_factory=dict)
    accuracy: list[AccuracyEntry] = field(default_factory=list)
    images: dict = field(default_factory=dict)  # {"clean": path, "adversarial": {key: path}}
    graphs: list[GraphEntry] = field(default_factory=list)
    activations: list[ActivationEntry] = field(default_factory=list)
    persistence: dict | None = None  # written by the persistence stage
    # relative paths of the optional stages' files; anything but a path reads as "not computed"
    vulnerability: Any = None
    datapaths: Any = None
    separability: Any = None
    stability: Any = None
    activation_graph: Any = None  # activation_graph.json (advtopo.study.actgraph)
    recovery: Any = None  # recovery.json (advtopo.study.recovery)


def read_index(path: Path) -> tuple[dict[str, Any], RunIndex]:
    """index.json as stored and as records; UnsupportedFormat for a newer format version."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: nested too deep to parse
        raise ArtefactInvalid(f"cannot read {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ArtefactInvalid(f"{path}: expected a JSON object")
    version = raw.get("format_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ArtefactInvalid(f"{path}: format_version must be a positive integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise UnsupportedFormat(
            f"{path} is in run-directory format {version}, but advtopo {__version__} reads formats up to "
            f"{FORMAT_VERSION}: upgrade advtopo (pip install -U advtopo), or rewrite the run with this "
            "version (advtopo run CONFIG)")
    try:
        return raw, RunIndex.from_dict(raw)
    except ArtefactInvalid as exc:
        raise ArtefactInvalid(f"{path} is not a valid run index: {exc}") from None


def _vulnerability_problem(doc: Any) -> str | None:
    samples = doc.get("samples") if isinstance(doc, dict) else doc  # a bare list: written by early versions
    if not isinstance(samples, list):
        return "lacks 'samples' (a list of {sample_id, score, ...})"
    for i, r in enumerate(samples):
        if not isinstance(r, dict) or not _SCALARS["int"][0](r.get("sample_id")):
            return f"samples[{i}] lacks an integer 'sample_id'"
        if r.get("score") is not None and not _is_number(r["score"]):
            return f"samples[{i}].score must be a number or null, got {_show(r['score'])}"
    if isinstance(doc, dict):
        for key in ("auc", "auc_eps"):
            if doc.get(key) is not None and not _is_number(doc[key]):
                return f"{key} must be a number or null, got {_show(doc[key])}"
    return None


def _datapaths_problem(doc: Any) -> str | None:
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("layers", "samples", "eps")):
        return "lacks layers / eps / samples (lists)"
    return None


def _recovery_problem(doc: Any) -> str | None:
    """recovery.json (advtopo.study.recovery): rows whose protocols hold an integer n and metrics
    {value, lo, hi} of numbers or nulls; a document without rows (one recovery_experiment output) passes."""
    if not isinstance(doc, dict):
        return f"must be a JSON object, got {_show(doc)}"
    rows = doc.get("rows")
    if rows is None:
        return None
    if not isinstance(rows, list):
        return f"rows must be a list, got {_show(rows)}"
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            return f"rows[{i}] is not an object"
        for proto in ("paper", "cross_fitted"):
            e = r.get(proto)
            if e is None:
                continue
            if not isinstance(e, dict) or not _SCALARS["int"][0](e.get("n")):
                return f"rows[{i}].{proto} lacks an integer 'n'"
            for k, m in e.items():
                if isinstance(m, dict) and not all(m.get(x) is None or _is_number(m[x]) for x in ("value", "lo", "hi")):
                    return f"rows[{i}].{proto}.{k} must hold numbers or nulls (value, lo, hi), got {_show(m)}"
    return None


# what each optional document must look like for its readers (`advtopo show`, the app, the report)
_DOCUMENT_CHECKS = {"vulnerability": _vulnerability_problem, "datapaths": _datapaths_problem,
                    "recovery": _recovery_problem}


def check_document(key: str, doc: Any) -> str | None:
    """What is wrong with the JSON document index.json names under ``key`` (None: nothing): the
    layout its readers rely on; documents other than vulnerability and datapaths must be objects."""
    check = _DOCUMENT_CHECKS.get(key)
    if check is not None:
        return check(doc)
    return None if isinstance(doc, dict) else f"must be a JSON object, got {_show(doc)}"
