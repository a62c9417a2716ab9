"""The study config: one TOML file -> typed dataclasses, validated before any work starts.

Validation errors name the offending key with its full path (``attacks[0].eps[2]``), say
what is allowed, and suggest the closest key for typos, like scikit-learn's parameter
checks. Sections whose keys belong to another stage (a model's ``train`` recipe, a mapper
parameter set, persistence settings) are checked by that stage's own validator, imported
when validating: importing this module stays cheap (no torch, no mapper).
"""
from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advtopo.errors import AdvtopoError, check_choice, did_you_mean

if typing.TYPE_CHECKING:
    from advtopo.mapper import MapperParams

MAPPER_ROWS = ("both", "adversarial", "clean")


@dataclass
class DatasetConfig:
    """The samples studied (a subset of one split) and the data models are trained on."""

    name: str = "mnist"
    split: str = "test"
    subset: int | None = 2000
    seed: int = 0
    root: str | None = None
    train_split: str = "train"
    train_subset: int | None = None
    options: dict = field(default_factory=dict)  # extra keyword arguments of the loader


@dataclass
class ModelConfig:
    """A model to train with a recipe (``train``) or to load (``checkpoint``).

    ``arch`` is a registry name (``advtopo models``), ``"package.module:factory"`` or
    ``"path/to/file.py:factory"`` (relative to the config file's folder), called with
    ``arch_kwargs``. ``checkpoint`` is a file (same base folder) or ``"zoo:NAME"``. ``mean`` /
    ``std`` normalise the input inside the model, so attacks stay in [0, 1] pixel space.
    ``arch`` may be left out only for a model passed as an object to ``run_study(models=...)``.
    """

    arch: str | None = None
    name: str | None = None
    checkpoint: str | None = None
    train: dict = field(default_factory=dict)
    arch_kwargs: dict = field(default_factory=dict)
    mean: list[float] | None = None
    std: list[float] | None = None

    @property
    def train_eps(self) -> float:
        return float(self.train.get("eps", 0.0))


@dataclass
class AttackConfig:
    """An attack run at every eps in ``eps`` (0 means the clean samples)."""

    name: str = "pgd"
    eps: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.2, 0.3])
    # None = not set: the attack's own default applies, and the argument is sent only when
    # given (fgsm has no steps, cw no random_start: each attack gets only what it accepts)
    steps: int | None = None
    alpha: float | None = None  # step size; PGD's default is 2.5 * eps / steps
    random_start: bool | None = None
    options: dict = field(default_factory=dict)  # extra keyword arguments of the attack

    def kwargs(self) -> dict[str, Any]:
        """The constructor arguments the user set (not eps, which the study sends per run)."""
        kw = {k: getattr(self, k) for k in ("steps", "alpha", "random_start") if getattr(self, k) is not None}
        kw.update(self.options)
        return kw


@dataclass
class LayerConfig:
    """A named module of the model, reduced per sample by ``summary``.

    Same fields as ``advtopo.activations.LayerSpec`` on purpose: importing that module pulls
    in torch (1.9 s here), and this config module must stay importable without it (0.17 s)
    so that ``advtopo run`` reports config errors before any heavy import.
    """

    module: str
    summary: str = "flatten"
    name: str | None = None

    @property
    def key(self) -> str:
        return self.name or self.module


@dataclass
class CaptureConfig:
    batch_size: int = 500
    seed: int = 0  # for the random_position summary


def _default_mapper_params() -> "MapperParams":
    from advtopo.mapper import MapperParams

    return MapperParams()


@dataclass
class MapperConfig:
    """One ``[[mapper]]`` parameter set: every (model, layer, attack, eps) gets one graph per set.

    The table holds ``name``, ``rows`` and the Mapper's parameters side by side (``n_intervals =
    15``); ``mapper`` holds the latter as one typed, validated :class:`advtopo.mapper.MapperParams`.
    Parameters may also be given under ``options = {...}`` (the older form); ``options`` records
    which, so the config and the task keys are written back as they were read.
    """

    name: str = "default"
    # the rows of a graph at eps > 0: "both" (clean + adversarial), "adversarial" or "clean";
    # eps 0 graphs hold the clean rows whatever it says
    rows: str = "both"
    mapper: "MapperParams" = field(default_factory=_default_mapper_params)
    options: tuple[str, ...] = ()  # the parameters the table gave under options

    @classmethod
    def from_table(cls, d: dict[str, Any], where: str) -> "MapperConfig":
        """A ``[[mapper]]`` table (``where``: its path, ``mapper[1]``) -> a checked set."""
        from advtopo.mapper import STUDY_KEYS, MapperParams

        table = dict(d)
        name = _coerce(str, table.pop("name", "default"), f"{where}.name")
        rows = _coerce(str, table.pop("rows", "both"), f"{where}.rows")
        options = _coerce(dict, table.pop("options", {}), f"{where}.options")
        allowed = ["name", *MapperParams.names(), "rows", "options"]
        for key in table:
            if key not in allowed:
                raise AdvtopoError(f"unknown key {f'{where}.{key}'!r}{did_you_mean(key, allowed)}; "
                                   f"allowed in {where}: {', '.join(allowed)}")
        option_names = [n for n in MapperParams.names() if n not in STUDY_KEYS]
        for key in options:
            if key in STUDY_KEYS:
                raise AdvtopoError(f"{where}.options.{key}: set {key} in the [[mapper]] table itself, not under options")
            if key not in option_names:
                raise AdvtopoError(f"unknown key {f'{where}.options.{key}'!r}{did_you_mean(key, option_names)}; "
                                   f"allowed in {where}.options: {', '.join(option_names)}")
            if key in table:
                raise AdvtopoError(f"{where}.options.{key} is also set in the [[mapper]] table; give it once")
        given = MapperParams.from_dict(options, where=f"{where}.options")
        params = MapperParams.from_dict(table, where=where).replace(**{k: getattr(given, k) for k in options})
        return cls(name=name, rows=rows, mapper=params, options=tuple(options))

    def params(self) -> dict[str, Any]:
        """The Mapper's parameters as JSON, the form in the study's task keys and graph entries
        (:meth:`MapperParams.to_dict`, plus the ``options`` given even at their default)."""
        return self.mapper.to_dict(include=self.options)

    def to_dict(self) -> dict[str, Any]:
        """The table as read: name, the parameters, rows, options."""
        params = self.params()
        return {"name": self.name, **{k: v for k, v in params.items() if k not in self.options},
                "rows": self.rows, "options": {k: params[k] for k in self.options}}


@dataclass
class SeparabilityConfig:
    """Mapper-free separability per (model, layer, attack, eps): cross-validated k-NN and
    linear-probe accuracy of the true label, and silhouette by class, with bootstrap CIs."""

    enabled: bool = True
    k: int = 5
    cv: int = 5
    n_boot: int = 1000
    level: float = 0.95
    max_samples: int | None = None  # a seeded subsample (the same rows at every eps); None: all
    metric: str = "euclidean"


@dataclass
class StabilityConfig:
    """The mapper statistics over a grid of settings (other parameters from the first
    [[mapper]] set), and bootstrap CIs of the study graphs' mean point purity."""

    enabled: bool = True
    n_intervals: list[int] = field(default_factory=lambda: [10, 20, 30])
    overlap: list[float] = field(default_factory=lambda: [0.3, 0.45, 0.6])
    metric: list[str] = field(default_factory=lambda: ["euclidean", "cosine"])
    n_boot: int = 1000
    level: float = 0.95


@dataclass
class PersistenceConfig:
    enabled: bool = True
    settings: dict = field(default_factory=dict)  # passed to advtopo.persistence


@dataclass
class VulnerabilityConfig:
    enabled: bool = True
    model: str | None = None  # default: the first model
    layer: str | None = None  # default: the last layer
    attack: str | None = None  # default: the first attack


@dataclass
class DatapathsConfig:
    """Critical datapaths of clean vs adversarial samples (advtopo.datapaths); off by default."""

    enabled: bool = False
    model: str | None = None  # default: the first model
    layers: list[str] | None = None  # gated modules (or study layer names); default: the study's layers
    attack: str | None = None  # default: the first attack
    eps: list[float] | None = None  # default: the attack's eps > 0
    n_samples: int = 100  # the first n samples of the study subset
    lam: float | None = None  # None: DatapathExtractor's defaults
    steps: int | None = None
    lr: float | None = None
    threshold: float = 0.5
    top_k: int = 10  # flow edges per layer pair in the per-sample detail
    n_detail: int = 20  # samples with critical neuron ids and flow edges in datapaths.json


@dataclass
class ExecutorConfig:
    """Where the tasks run (docs/study.md, "Running on a cluster"); `advtopo run` options override it."""

    kind: str | None = None  # "sequential" or "dask"; default: dask when a scheduler is given
    scheduler: str | None = None  # an existing Dask cluster, "tcp://HOST:PORT"
    workers: int | None = None  # LocalCluster size when kind = "dask" without a scheduler
    gpu_resource: bool | None = None  # ask for GPU=1 on device stages; default: when device is cuda

    def __post_init__(self) -> None:
        from advtopo.study.executors import EXECUTORS, check_address

        if self.kind is not None:
            check_choice("executor.kind", self.kind, EXECUTORS)
        if self.scheduler is not None:
            check_address(self.scheduler, "executor.scheduler")
            if self.kind == "sequential":
                raise AdvtopoError("executor.scheduler needs kind = 'dask' (or leave kind out)")
        if self.workers is not None and self.workers < 1:
            raise AdvtopoError(f"executor.workers={self.workers} must be >= 1")


@dataclass
class StudyConfig:
    """A whole study: data, models, attacks x eps, layers, mapper sets, persistence."""

    name: str = "study"
    seed: int = 0
    device: str = "auto"
    output: str = "runs/{name}"
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    models: list[ModelConfig] = field(default_factory=list)
    attacks: list[AttackConfig] = field(default_factory=list)
    layers: list[LayerConfig] = field(default_factory=list)
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    mapper: list[MapperConfig] = field(default_factory=lambda: [MapperConfig()])
    persistence: PersistenceConfig = field(default_factory=PersistenceConfig)
    vulnerability: VulnerabilityConfig = field(default_factory=VulnerabilityConfig)
    datapaths: DatapathsConfig = field(default_factory=DatapathsConfig)
    separability: SeparabilityConfig = field(default_factory=SeparabilityConfig)
    stability: StabilityConfig = field(default_factory=StabilityConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    source_text: str | None = field(default=None, repr=False, compare=False)
    # the config file's folder: relative arch files and checkpoints are resolved against it
    base_dir: str | None = field(default=None, repr=False, compare=False)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict[str, Any], source_text: str | None = None, *,
                  base_dir: str | os.PathLike[str] | None = None,
                  model_objects: Collection[str] = ()) -> "StudyConfig":
        """Build and validate. ``model_objects``: names of models that ``run_study(models=...)``
        will pass as objects (their [[models]] entries may omit ``arch``)."""
        cfg = _build(cls, d, "")
        cfg.source_text = source_text
        cfg.base_dir = str(base_dir) if base_dir is not None else None
        cfg.validate(model_objects=model_objects)
        return cfg

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str], *, model_objects: Collection[str] = ()) -> "StudyConfig":
        path = Path(path)
        if not path.is_file():
            raise AdvtopoError(f"study config {path} does not exist")
        text = path.read_text()
        try:
            d = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise AdvtopoError(f"study config {path} is not valid TOML: {exc}") from None
        return cls.from_dict(d, source_text=text, base_dir=path.resolve().parent, model_objects=model_objects)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("source_text")
        d.pop("base_dir")
        d["mapper"] = [m.to_dict() for m in self.mapper]
        d = _drop_none(d)
        if not d.get("executor"):  # all defaults: no empty [executor] table in config.toml
            d.pop("executor", None)
        return d

    def to_toml(self) -> str:
        return dumps_toml(self.to_dict())

    # -- derived --------------------------------------------------------------------------
    def model_name(self, i: int) -> str:
        m = self.models[i]
        if m.name:
            return m.name
        arch = (m.arch or "model").rpartition(":")[2]  # "nets.py:wrn" -> "wrn"
        return f"{arch}_eps{_fmt(m.train_eps)}"

    @property
    def model_names(self) -> list[str]:
        return [self.model_name(i) for i in range(len(self.models))]

    def output_dir(self, override: str | os.PathLike[str] | None = None) -> Path:
        return Path(override) if override else Path(self.output.format(name=self.name))

    # -- validation -----------------------------------------------------------------------
    def validate(self, model_objects: Collection[str] = ()) -> None:
        """Check every key before any work; ``model_objects`` as in :meth:`from_dict`."""
        _check_name("name", self.name)
        check_choice("device", self.device.split(":")[0], ["auto", "cpu", "cuda", "mps"])
        _check_dataset(self.dataset)
        _check_models(self, model_objects)
        _check_attacks(self.attacks)
        _check_layers(self.layers)
        if self.capture.batch_size < 1:
            raise AdvtopoError(f"capture.batch_size={self.capture.batch_size} must be >= 1")
        _check_mapper_sets(self.mapper, self.dataset.subset)
        if self.persistence.enabled:
            _check_persistence(self.persistence)
        _check_vulnerability(self)
        if self.datapaths.enabled:
            _check_datapaths(self.datapaths, self.model_names, self.attacks, [la.key for la in self.layers])
        _check_measures(self)

    def check_layers_against_models(self, model_objects: dict[str, Any] | None = None,
                                    dataset: Any = None) -> None:
        """Build every model as the study will (arch, arch_kwargs, checkpoint, mean/std, the
        dataset's classes and image shape) and check that its checkpoint fits and that the
        layers exist and run once per forward; errors list the valid layers. ``dataset``: an
        ImageDataset given to ``run_study`` (else one sample of the configured dataset is read)."""
        from advtopo.models import check_layers
        from advtopo.study.stages import build_config_model, dataset_dims

        dims = dataset_dims(dataset if dataset is not None else self._probe_dataset())
        shape = tuple(dims.pop("image_shape"))
        objects = model_objects or {}
        names = self.model_names
        dp_model = (self.datapaths.model or names[0]) if self.datapaths.enabled else None
        for i, m in enumerate(self.models):
            where = f"models[{i}] ({names[i]})"
            if names[i] in objects:
                model = objects[names[i]]
            else:
                try:
                    model, _ = build_config_model(m, self.base_dir, dims)
                except AdvtopoError as exc:
                    raise AdvtopoError(f"{where}: {exc}") from None
            try:
                check_layers(model, [layer.module for layer in self.layers], shape)
            except AdvtopoError as exc:
                raise AdvtopoError(f"layers: {exc} (model {names[i]!r}, arch {m.arch!r})") from None
            if names[i] == dp_model:
                try:
                    check_layers(model, self.datapath_layers())
                except AdvtopoError as exc:
                    raise AdvtopoError(f"datapaths.layers: {exc} (model {names[i]!r}, arch {m.arch!r})") from None

    def _probe_dataset(self) -> Any:
        """One sample of the studied split: its class names and image shape size the models."""
        from advtopo.data import load_dataset

        d = self.dataset
        return load_dataset(d.name, d.split, root=d.root, subset=1, seed=d.seed, **d.options)

    def datapath_layers(self) -> list[str]:
        """The modules the datapaths stage gates (study layer names map to their modules)."""
        by_key = {la.key: la.module for la in self.layers}
        names = self.datapaths.layers if self.datapaths.layers else [la.key for la in self.layers]
        return list(dict.fromkeys(by_key.get(n, n) for n in names))


# --- helpers -------------------------------------------------------------------------------

def _fmt(x: float) -> str:
    return f"{float(x):g}"


def _check_name(param: str, name: str) -> None:
    if not name or any(c in name for c in '/\\:*?"<>| ') or name.startswith(".") or "__" in name:
        raise AdvtopoError(f"{param}={name!r} must be a non-empty file-name-safe name "
                           "(letters, digits, '.', '-', '_'; no '/', spaces or '__')")


def _check_eps(param: str, eps: Any, norm: str = "Linf") -> None:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps):
        raise AdvtopoError(f"{param}={eps!r} must be a number")
    if norm != "Linf":  # an L2 radius may exceed 1 (2.0 is usual on MNIST)
        if float(eps) < 0:
            raise AdvtopoError(f"{param}={eps} must be >= 0 (an {norm} radius on images in [0, 1])")
        return
    if not 0.0 <= float(eps) <= 1.0:
        raise AdvtopoError(f"{param}={eps} is out of range; eps is an L-inf radius on images in [0, 1], "
                           "so it must be in [0, 1] (e.g. 8/255 = 0.031 or 0.3 for MNIST)")


def _check_dataset(d: DatasetConfig) -> None:
    """The dataset exists (did-you-mean), its options are its loader's, splits and sizes make sense."""
    from advtopo.data import DATASETS, check_dataset_options

    DATASETS.get(d.name)
    check_dataset_options(d.name, d.options)  # a misspelt option, before any work
    check_choice("dataset.split", d.split, ["train", "test"])
    check_choice("dataset.train_split", d.train_split, ["train", "test"])
    for key in ("subset", "train_subset"):
        v = getattr(d, key)
        if v is not None and v < 1:
            raise AdvtopoError(f"dataset.{key}={v} must be >= 1 (or left out for the whole split)")


def _check_models(cfg: StudyConfig, model_objects: Collection[str]) -> None:
    """Each [[models]] entry (arch, checkpoint or train recipe) and unique, file-safe names."""
    if not cfg.models:
        raise AdvtopoError("the study needs at least one [[models]] entry (arch = 'lenet5', ...)")
    for i, m in enumerate(cfg.models):
        _check_model(i, m, cfg.base_dir, m.name is not None and m.name in model_objects)
        if m.checkpoint and m.train:
            raise AdvtopoError(f"models[{i}] has both 'checkpoint' and 'train'; a model is either loaded or trained")
        _check_eps(f"models[{i}].train.eps", m.train.get("eps", 0.0))
        _check_train_recipe(i, m.train)
    names = cfg.model_names
    for n in names:
        _check_name("models[].name", n)
    if len(set(names)) != len(names):
        raise AdvtopoError(f"model names must be unique, got {names}; set name = '...' on each [[models]]")


def _check_attacks(attacks: list[AttackConfig]) -> None:
    """Known attacks with unique names, the arguments each accepts, eps in its norm's range."""
    from advtopo.adversarial import ATTACKS

    if not attacks:
        raise AdvtopoError("the study needs at least one [[attacks]] entry (name = 'pgd', eps = [...])")
    attack_names = [a.name for a in attacks]
    if len(set(attack_names)) != len(attack_names):
        raise AdvtopoError(f"attack names must be unique, got {attack_names}")
    for i, a in enumerate(attacks):
        ATTACKS.get(a.name)
        _check_name(f"attacks[{i}].name", a.name)
        if not a.eps:
            raise AdvtopoError(f"attacks[{i}].eps is empty; give a list such as [0.0, 0.1, 0.3]")
        if a.steps is not None and a.steps < 1:
            raise AdvtopoError(f"attacks[{i}].steps={a.steps} must be >= 1")
        if a.alpha is not None and not a.alpha > 0:
            raise AdvtopoError(f"attacks[{i}].alpha={a.alpha} must be > 0")
        norm = _check_attack_args(i, a)
        for j, e in enumerate(a.eps):
            _check_eps(f"attacks[{i}].eps[{j}]", e, norm)
        if len(set(a.eps)) != len(a.eps):
            raise AdvtopoError(f"attacks[{i}].eps has repeated values: {a.eps}")


def _check_layers(layers: list[LayerConfig]) -> None:
    """Known summaries and unique, file-safe layer names (the modules are checked against the
    models by :meth:`StudyConfig.check_layers_against_models`)."""
    from advtopo.activations import SUMMARIES

    if not layers:
        raise AdvtopoError("the study needs at least one [[layers]] entry (module = 'fc1', summary = 'flatten')")
    for i, layer in enumerate(layers):
        check_choice(f"layers[{i}].summary", layer.summary, SUMMARIES)
        _check_name(f"layers[{i}].name", layer.key)
    keys = [layer.key for layer in layers]
    if len(set(keys)) != len(keys):
        raise AdvtopoError(f"layer names must be unique, got {keys}; give repeated modules a distinct name = '...'")


def _check_mapper_sets(sets: list[MapperConfig], subset: int | None) -> None:
    """Unique set names, the rows choice, and the Mapper's own rules (MapperParams.validate);
    a graph has at least ``subset`` rows, so n_intervals may not exceed it."""
    names = [m.name for m in sets]
    if len(set(names)) != len(names):
        raise AdvtopoError(f"mapper parameter set names must be unique, got {names}")
    for i, m in enumerate(sets):
        _check_name(f"mapper[{i}].name", m.name)
        check_choice(f"mapper[{i}].rows", m.rows, MAPPER_ROWS)
        m.mapper.validate(where=f"mapper[{i}]")
        if subset is not None:
            try:  # only the row count can fail now
                m.mapper.validate(n_samples=subset, where=f"mapper[{i}]")
            except AdvtopoError as exc:
                raise AdvtopoError(f"{exc}: a graph has at least dataset.subset = {subset} rows") from None


def _check_persistence(p: PersistenceConfig) -> None:
    from advtopo.persistence import validate_settings

    try:
        validate_settings(p.settings)
    except AdvtopoError as exc:
        raise AdvtopoError(f"persistence.settings: {exc}") from None


def _check_vulnerability(cfg: StudyConfig) -> None:
    """[vulnerability]'s model, layer and attack name ones the study has."""
    v = cfg.vulnerability
    if v.model is not None:
        check_choice("vulnerability.model", v.model, cfg.model_names)
    if v.layer is not None:
        check_choice("vulnerability.layer", v.layer, [la.key for la in cfg.layers])
    if v.attack is not None:
        check_choice("vulnerability.attack", v.attack, [a.name for a in cfg.attacks])


def _check_model(i: int, m: ModelConfig, base_dir: str | None, is_object: bool) -> None:
    """The arch resolves (the factory imports, did-you-mean for registry names), the checkpoint
    exists, mean/std fit; whether the checkpoint's tensors fit is checked by
    :meth:`StudyConfig.check_layers_against_models`, which builds the model."""
    from advtopo.models import resolve_arch

    where = f"models[{i}]" + (f" ({m.name})" if m.name else "")
    if (m.mean is None) != (m.std is None):
        raise AdvtopoError(f"{where}: give both mean and std (one value per input channel) or neither")
    if m.mean is not None and (len(m.mean) != len(m.std) or not m.mean or any(v <= 0 for v in m.std)):
        raise AdvtopoError(f"{where}: mean={m.mean} and std={m.std} need one value per channel each, std > 0")
    if is_object:
        if m.arch or m.checkpoint or m.train or m.arch_kwargs:
            raise AdvtopoError(f"{where} is passed as an object to run_study(models=...) and is used as is; "
                               "leave out arch, arch_kwargs, checkpoint and train (mean/std are allowed)")
        return
    if not m.arch:
        raise AdvtopoError(f"{where} needs arch: a registry name (advtopo models), 'package.module:factory' or "
                           "'path/to/file.py:factory'; or pass the model object to run_study(models={name: model})")
    try:
        resolve_arch(m.arch, base_dir)
    except AdvtopoError as exc:
        raise AdvtopoError(f"{where}.arch: {exc}") from None
    if m.checkpoint:
        try:
            path = resolve_checkpoint(m.checkpoint, base_dir)
        except AdvtopoError as exc:
            raise AdvtopoError(f"{where}.checkpoint: {exc}") from None
        if not path.is_file():
            raise AdvtopoError(f"{where}.checkpoint: {path} does not exist"
                               + (f" (relative to the config's folder {base_dir})" if base_dir
                                  and not Path(m.checkpoint).expanduser().is_absolute() else ""))


def resolve_checkpoint(checkpoint: str, base_dir: str | os.PathLike[str] | None) -> Path:
    """A model's checkpoint as an absolute file path: ``zoo:NAME`` from the built-in zoo, else a
    path (relative paths against the config file's folder)."""
    from advtopo.models import resolve_checkpoint as resolve

    return Path(resolve(checkpoint, base_dir)).resolve()


def _check_train_recipe(i: int, recipe: dict) -> None:
    from advtopo.adversarial import TrainConfig

    try:
        TrainConfig.from_dict(dict(recipe))
    except AdvtopoError as exc:
        raise AdvtopoError(f"models[{i}].train: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise AdvtopoError(f"models[{i}].train: {exc}") from None


def _check_attack_args(i: int, a: AttackConfig) -> str:
    """Each attack gets only the arguments its constructor accepts; anything else the user set
    is an error now, not after hours of training. Values are checked by building the attack
    once on a stand-in module (attacks only store and check their arguments when built).
    Returns the attack's norm ("Linf" or "L2"), which decides the valid eps range."""
    import torch.nn as nn

    from advtopo.adversarial.attacks import TorchattacksAttack, check_attack_kwargs, create_attack, import_torchattacks

    kw = a.kwargs()
    for bad in ("eps", "model"):
        if bad in a.options:
            raise AdvtopoError(f"attacks[{i}].options.{bad}: set by the study, not an option "
                               f"({'use attacks[].eps' if bad == 'eps' else 'the study passes each model'})")
    check_attack_kwargs(a.name, kw, where=f"attacks[{i}]")
    try:
        atk = create_attack(a.name, nn.Identity(), eps=0.0, **kw)
    except AdvtopoError as exc:
        raise AdvtopoError(f"attacks[{i}] ({a.name}): {exc}") from None
    except (TypeError, ValueError) as exc:
        raise AdvtopoError(f"attacks[{i}] ({a.name}): {exc}") from None
    if isinstance(atk, TorchattacksAttack):
        try:
            import_torchattacks()
        except AdvtopoError as exc:
            raise AdvtopoError(f"attacks[{i}] ({a.name}): {exc}") from None
    return str(getattr(atk, "norm", "Linf"))


def _check_datapaths(d: "DatapathsConfig", models: list[str], attacks: list[AttackConfig], layer_keys: list[str]) -> None:
    """Cross-references and values of [datapaths]; the extractor checks its own parameters."""
    if d.model is not None:
        check_choice("datapaths.model", d.model, models)
    if d.attack is not None:
        check_choice("datapaths.attack", d.attack, [a.name for a in attacks])
    attack = next(a for a in attacks if a.name == (d.attack or attacks[0].name))
    if d.eps is not None:
        for j, e in enumerate(d.eps):
            _check_eps(f"datapaths.eps[{j}]", e)
            if not e > 0:
                raise AdvtopoError(f"datapaths.eps[{j}]={e} must be > 0 (the clean datapaths are always computed)")
            if float(e) not in [float(x) for x in attack.eps]:
                raise AdvtopoError(f"datapaths.eps[{j}]={e} is not an eps of attack {attack.name!r}; "
                                   f"allowed: {', '.join(_fmt(x) for x in attack.eps if x > 0)}")
    elif not any(e > 0 for e in attack.eps):
        raise AdvtopoError(f"datapaths: attack {attack.name!r} has no eps > 0 to compare against")
    if d.layers is not None and not d.layers:
        raise AdvtopoError("datapaths.layers is empty; leave it out to gate the study's layers")
    for key in ("n_samples", "top_k"):
        if getattr(d, key) < 1:
            raise AdvtopoError(f"datapaths.{key}={getattr(d, key)} must be >= 1")
    if d.n_detail < 0:
        raise AdvtopoError(f"datapaths.n_detail={d.n_detail} must be >= 0")
    from advtopo.datapaths import DatapathExtractor

    kw = {k: getattr(d, k) for k in ("lam", "steps", "lr") if getattr(d, k) is not None}
    try:
        DatapathExtractor(d.layers or layer_keys, threshold=d.threshold, **kw).validate()
    except AdvtopoError as exc:
        raise AdvtopoError(f"datapaths: {exc}") from None


def _check_measures(cfg: "StudyConfig") -> None:
    """[separability] and [stability] (advtopo.study.measures)."""
    from advtopo.utils.metrics import METRICS as metrics  # here: importing advtopo.utils loads numpy
    s = cfg.separability
    for key, low in (("k", 1), ("cv", 2), ("n_boot", 1)):
        if getattr(s, key) < low:
            raise AdvtopoError(f"separability.{key}={getattr(s, key)} must be >= {low}")
    if s.max_samples is not None and s.max_samples < 3:
        raise AdvtopoError(f"separability.max_samples={s.max_samples} must be >= 3 (or left out for all samples)")
    check_choice("separability.metric", s.metric, metrics)
    st = cfg.stability
    if st.n_boot < 1:
        raise AdvtopoError(f"stability.n_boot={st.n_boot} must be >= 1")
    for sec, level in (("separability", s.level), ("stability", st.level)):
        if not 0 < level < 1:
            raise AdvtopoError(f"{sec}.level={level} must be in (0, 1), e.g. 0.95")
    for key in ("n_intervals", "overlap", "metric"):
        values = getattr(st, key)
        if not values:
            raise AdvtopoError(f"stability.{key} is empty; give at least one value (e.g. {getattr(StabilityConfig(), key)})")
        if len(set(values)) != len(values):
            raise AdvtopoError(f"stability.{key} has repeated values: {values}")
    for j, v in enumerate(st.n_intervals):
        if v < 1:
            raise AdvtopoError(f"stability.n_intervals[{j}]={v} must be >= 1")
    for j, v in enumerate(st.overlap):
        if not 0 <= v < 1:
            raise AdvtopoError(f"stability.overlap[{j}]={v} must be in [0, 1)")
    for j, v in enumerate(st.metric):
        check_choice(f"stability.metric[{j}]", v, metrics)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    return {type(None): "none", float: "number", int: "integer", str: "string", bool: "true/false",
            dict: "table"}.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(tp: Any, value: Any, path: str) -> Any:
    """Check ``value`` against annotation ``tp``; ints are accepted where floats are."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _coerce(arg, value, path)
            except AdvtopoError:
                continue
        raise AdvtopoError(f"{path}={value!r} has the wrong type; expected {_type_name(tp)}")
    if origin is list:
        if not isinstance(value, list):
            raise AdvtopoError(f"{path}={value!r} has the wrong type; expected {_type_name(tp)}")
        (arg,) = typing.get_args(tp)
        return [_coerce(arg, v, f"{path}[{j}]") for j, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise AdvtopoError(f"{path} must be a table ([{path}]), got {value!r}")
        if hasattr(tp, "from_table"):  # a section that reads its own keys (MapperConfig)
            return tp.from_table(value, path)
        return _build(tp, value, path)
    if tp is type(None):
        if value is None:
            return None
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(value, tp):
        return value
    raise AdvtopoError(f"{path}={value!r} has the wrong type; expected {_type_name(tp)}")


def _build(cls: type, d: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in ("source_text", "base_dir")}
    kwargs = {}
    for key, value in d.items():
        path = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            raise AdvtopoError(f"unknown key {path!r}{did_you_mean(key, fields)}; "
                               f"allowed in {prefix or 'the top level'}: {', '.join(fields)}")
        tp = hints[key]
        if typing.get_origin(tp) is list and dataclasses.is_dataclass(typing.get_args(tp)[0]):
            if isinstance(value, dict) and key in ("mapper",):
                value = [value]
            if not isinstance(value, list):
                raise AdvtopoError(f"{path} must be an array of tables ([[{path}]]), got {value!r}")
            kwargs[key] = [_coerce(typing.get_args(tp)[0], v, f"{path}[{j}]") for j, v in enumerate(value)]
        else:
            kwargs[key] = _coerce(tp, value, path)
    missing = [n for n, f in fields.items() if f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING and n not in kwargs]
    if missing:
        where = prefix or "the top level"
        raise AdvtopoError(f"{where} is missing required key(s): {', '.join(missing)}")
    return cls(**kwargs)


def _drop_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_drop_none(v) for v in obj]
    return obj


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else _toml_value(k)


def dumps_toml(d: dict[str, Any]) -> str:
    """A minimal TOML writer for configs (tables, arrays of tables, inline sub-tables)."""
    lines: list[str] = []
    scalars = {k: v for k, v in d.items() if not isinstance(v, dict)
               and not (isinstance(v, list) and v and isinstance(v[0], dict))}
    for k, v in scalars.items():
        lines.append(f"{_key(k)} = {_toml_value(v)}")
    for k, v in d.items():
        if isinstance(v, dict):
            lines.append(f"\n[{_key(k)}]")
            lines.extend(f"{_key(kk)} = {_toml_value(vv)}" for kk, vv in v.items())
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for item in v:
                lines.append(f"\n[[{_key(k)}]]")
                lines.extend(f"{_key(kk)} = {_toml_value(vv)}" for kk, vv in item.items())
    return "\n".join(lines) + "\n"


def load_config(source: str | os.PathLike[str] | dict | StudyConfig,
                model_objects: Collection[str] = ()) -> StudyConfig:
    """A StudyConfig from a path, a dict or a StudyConfig (validated)."""
    if isinstance(source, StudyConfig):
        source.validate(model_objects=model_objects)
        return source
    if isinstance(source, dict):
        return StudyConfig.from_dict(source, model_objects=model_objects)
    return StudyConfig.from_toml(source, model_objects=model_objects)


def demo_config_path(train: bool = False) -> Path:
    """The built-in demo: the zoo's pretrained models, or (``train=True``) models trained from scratch."""
    return Path(__file__).with_name("demo_train.toml" if train else "demo.toml")
