"""The study config: one TOML file -> typed dataclasses, validated before any work starts.

Validation errors name the offending key with its full path (``attacks[0].eps[2]``), say
what is allowed, and suggest the closest key for typos, like scikit-learn's parameter
checks. Sections whose keys belong to another stage (a model's ``train`` recipe, a mapper
parameter set, persistence settings) are checked by that stage's own validator, imported
when validating: importing this module stays cheap (no torch, no mapper).
"""
from __future__ import annotations

import codecs
import copy
import dataclasses
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advtopo.checks import check_input_file, check_number, check_output_dir, check_seed, check_template
from advtopo.errors import AdvtopoError, ConfigErrors, check_choice, did_you_mean

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
        """The recipe's eps (0 when it is not a number: the recipe check reports that)."""
        eps = self.train.get("eps", 0.0)
        return float(eps) if isinstance(eps, (int, float)) and not isinstance(eps, bool) else 0.0


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
        problems: list[str] = []

        def take(key: str, tp: type, default: Any) -> Any:
            try:
                return _coerce(tp, table.pop(key, default), f"{where}.{key}", ConfigCheck())
            except AdvtopoError as exc:
                problems.append(str(exc))
                return default

        name, rows, options = take("name", str, "default"), take("rows", str, "both"), dict(take("options", dict, {}))
        allowed = ["name", *MapperParams.names(), "rows", "options"]
        for key in list(table):
            if key not in allowed:
                problems.append(f"unknown key {f'{where}.{key}'!r}{did_you_mean(key, allowed)}; "
                                f"allowed in {where}: {', '.join(allowed)}")
                table.pop(key)
        option_names = [n for n in MapperParams.names() if n not in STUDY_KEYS]
        for key in list(options):
            if key in STUDY_KEYS:
                problems.append(f"{where}.options.{key}: set {key} in the [[mapper]] table itself, not under options")
            elif key not in option_names:
                problems.append(f"unknown key {f'{where}.options.{key}'!r}{did_you_mean(key, option_names)}; "
                                f"allowed in {where}.options: {', '.join(option_names)}")
            elif key in table:
                problems.append(f"{where}.options.{key} is also set in the [[mapper]] table; give it once")
            else:
                continue
            options.pop(key)
        def parsed(part: dict[str, Any], path: str) -> "MapperParams | None":
            try:
                return MapperParams.from_dict(part, where=path)
            except AdvtopoError as exc:  # MapperParams stops at the first problem: find each one's
                alone = []
                for key, value in part.items():
                    try:
                        MapperParams.from_dict({key: value}, where=path)
                    except AdvtopoError as one:
                        alone.append(str(one))
                problems.extend(alone or [str(exc)])  # none alone: a rule between parameters
                return None

        given, params = parsed(options, f"{where}.options"), parsed(table, where)
        if problems:
            raise ConfigErrors(problems)
        params = params.replace(**{k: getattr(given, k) for k in options})
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
class ActivationGraphConfig:
    """Activation-graph persistence of clean vs adversarial inputs and adversarial detection
    from it (advtopo.study.actgraph, docs/persistence.md); off by default."""

    enabled: bool = False
    model: str | None = None  # default: the first model
    attack: str | None = None  # default: the first attack
    eps: list[float] | None = None  # default: the attack's eps > 0
    n_samples: int = 100  # a seeded subset of the study's samples
    layers: list[str] | None = None  # edge layers (Conv2d / Linear / MaxPool2d modules); default: all
    top_k: int = 50  # edges of the dominant subgraph
    classifier: str = "logistic"  # or "gradient_boosting"
    cv: int = 5
    n_boot: int = 1000
    level: float = 0.95

    def __post_init__(self) -> None:
        for key, low in (("n_samples", 4), ("top_k", 1), ("cv", 2), ("n_boot", 1)):
            if getattr(self, key) < low:
                raise AdvtopoError(f"activation_graph.{key}={getattr(self, key)} must be >= {low}")
        check_choice("activation_graph.classifier", self.classifier, ("logistic", "gradient_boosting"))
        if not 0 < self.level < 1:
            raise AdvtopoError(f"activation_graph.level={self.level} must be in (0, 1), e.g. 0.95")


@dataclass
class RecoveryConfig:
    """Gebhart et al.'s recovery vs retention (advtopo.persistence.recovery_experiment, both
    protocols) per model and eps, with bootstrap CIs (advtopo.study.recovery); off by default."""

    enabled: bool = False
    models: list[str] | None = None  # default: the first model
    attack: str | None = None  # default: the first attack
    eps: list[float] | None = None  # default: the attack's eps > 0
    n_samples: int = 100  # a seeded subset of the study's samples (the activation_graph stage's choice)
    layers: list[str] | None = None  # edge layers (Conv2d / Linear / MaxPool2d modules); default: all
    cv: int = 5  # folds of the cross-fitted protocol (and of the clean SVM's accuracy)
    C: float = 1.0  # the linear SVM's regularisation
    min_persistence: float = 0.0  # dominant subgraph: pairs with persistence > this (-1: the whole forest)
    percentile: float | None = None  # then the pair edges at or above this weight percentile
    binary: bool = True  # bag of edges: 1 per present edge (False: its weight)
    n_boot: int = 1000
    level: float = 0.95

    def __post_init__(self) -> None:
        for key, low in (("n_samples", 4), ("cv", 2), ("n_boot", 1)):
            if getattr(self, key) < low:
                raise AdvtopoError(f"recovery.{key}={getattr(self, key)} must be >= {low}")
        if self.n_samples < self.cv:
            raise AdvtopoError(f"recovery.n_samples={self.n_samples} must be >= recovery.cv={self.cv} "
                               "(each fold holds out at least one sample)")
        if not self.C > 0:
            raise AdvtopoError(f"recovery.C={self.C} must be > 0")
        if self.percentile is not None and not 0 <= self.percentile <= 100:
            raise AdvtopoError(f"recovery.percentile={self.percentile} must be in [0, 100] (or left out)")
        if not 0 < self.level < 1:
            raise AdvtopoError(f"recovery.level={self.level} must be in (0, 1), e.g. 0.95")
        if self.models is not None and not self.models:
            raise AdvtopoError("recovery.models is empty; leave it out for the first model")
        if self.layers is not None and not self.layers:
            raise AdvtopoError("recovery.layers is empty; leave it out for every edge layer")


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
    activation_graph: ActivationGraphConfig = field(default_factory=ActivationGraphConfig)
    recovery: RecoveryConfig = field(default_factory=RecoveryConfig)
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
        """Build and validate; every problem is reported at once (:class:`ConfigErrors`).
        ``model_objects``: names of models that ``run_study(models=...)`` will pass as objects
        (their [[models]] entries may omit ``arch``)."""
        check = ConfigCheck()
        cfg = _parse_dict(d, check, source_text=source_text, base_dir=base_dir, model_objects=model_objects)
        check.raise_if_any()
        return cfg

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str], *, model_objects: Collection[str] = ()) -> "StudyConfig":
        d, text = read_config_file(path)
        return cls.from_dict(d, source_text=text, base_dir=Path(path).resolve().parent, model_objects=model_objects)

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
        """The run directory: ``override`` (``--out``), else ``output`` with ``{name}`` filled in."""
        path = Path(override) if override else Path(check_template("output", self.output, {"name": self.name}))
        return path.expanduser()

    # -- validation -----------------------------------------------------------------------
    def validate(self, model_objects: Collection[str] = ()) -> None:
        """Check every key before any work; ``model_objects`` as in :meth:`from_dict`. Raises
        :class:`ConfigErrors` listing every problem found."""
        check = ConfigCheck()
        self.validate_into(check, model_objects)
        check.raise_if_any()

    def validate_into(self, check: "ConfigCheck", model_objects: Collection[str] = ()) -> None:
        """The checks of :meth:`validate`, each problem added to ``check`` (nothing raised).

        What is checked without touching data or models: types (when built), names, seeds,
        numbers and their ranges, choices, cross-references between sections, every attack's
        options against that attack (built once on a stand-in model), every train recipe, the
        persistence settings and the mapper parameter sets."""
        run = check.run
        run("name", _check_name, "name", self.name)
        run("seed", check_seed, "seed", self.seed)
        run("device", _check_device, "device", self.device)
        run("output", _check_output, self.output, self.name, needs=("name",))
        _check_dataset(check, self.dataset)
        _check_models(check, self, model_objects)
        _check_attacks(check, self.attacks)
        _check_layers(check, self.layers)
        _at_least(check, "capture.batch_size", self.capture.batch_size, 1)
        run("capture.seed", check_seed, "capture.seed", self.capture.seed)
        _check_mapper_sets(check, self.mapper, self.dataset.subset)
        run("names", _check_graph_file_names, self, needs=(*MODEL_NAME_KEYS, "models", "layers", "attacks", "mapper"))
        if self.persistence.enabled:
            run("persistence.settings", _check_persistence, self.persistence)
        _check_vulnerability(check, self)
        if self.datapaths.enabled:
            _check_datapaths(check, self)
        if self.recovery.enabled:
            _check_recovery(check, self)
        _check_measures(check, self)

    def check_resources(self, check: "ConfigCheck", model_objects: dict[str, Any] | None = None,
                        dataset: Any = None, out: str | os.PathLike[str] | None = None,
                        device: str | None = None) -> None:
        """What needs the machine, the data and the models, each problem added to ``check``:
        the run directory can be written, the device exists, the dataset loads with its
        options, the mapper parameters and measures fit its sample count, and every model
        builds as the study will (arch, arch_kwargs, checkpoint loaded strictly, mean/std) and
        has the study's layers. ``dataset``: an ImageDataset given to ``run_study``."""
        run = check.run
        where = "--out" if out else "output"
        run(where, lambda: check_output_dir(where, self.output_dir(out)), needs=() if out else ("name", "output"))
        if device is not None:
            run("--device", _check_device, "--device", device)
        where = "--device" if device is not None else "device"
        run(where, _resolve_device, device or self.device)
        probe = run("dataset.data", self._probe_dataset, dataset, needs=DATA_KEYS)
        if probe is None:
            return
        one, n_split = probe
        subset = self.dataset.subset
        n_rows = min(subset, n_split) if subset else n_split  # the fewest rows a graph has
        _check_row_counts(check, self, n_rows, n_split)
        self._check_models_build(check, _dataset_dims(one), model_objects or {})

    def _check_models_build(self, check: "ConfigCheck", dims: dict[str, Any], objects: dict[str, Any]) -> None:
        """Each model built as the study builds it, its checkpoint loaded strictly; the layers
        checked once per distinct architecture (the same message for each model would repeat)."""
        from advtopo.models import check_layers
        from advtopo.study.stages import build_config_model

        shape = tuple(dims["image_shape"])
        names = self.model_names
        dp_model = (self.datapaths.model or names[0]) if self.datapaths.enabled and names else None
        layers_checked: set[str] = set()
        for i, m in enumerate(self.models):
            where = f"models[{i}] ({names[i]})"
            if names[i] in objects:
                model = objects[names[i]]
            else:
                if m.mean is not None and len(m.mean) != dims["in_channels"]:
                    check.report(f"models[{i}].mean", f"{where}: mean and std have {len(m.mean)} values but the "
                                                      f"images have {dims['in_channels']} channel(s)")
                built = check.run(f"models[{i}]", _prefixed, where, build_config_model, m, self.base_dir, dims)
                if built is None:
                    continue
                model = built[0]
            same_layers = names[i] if names[i] in objects else repr((m.arch, sorted(m.arch_kwargs.items()), m.mean))
            if same_layers not in layers_checked:
                layers_checked.add(same_layers)
                check.run(f"models[{i}].layers", _prefixed_layers, "layers", check_layers, model,
                          [layer.module for layer in self.layers], shape, model_name=names[i], arch=m.arch,
                          needs=("layers[*].module",))
            if names[i] == dp_model:
                check.run("datapaths.layers", _prefixed_layers, "datapaths.layers", check_layers, model,
                          self.datapath_layers(), None, model_name=names[i], arch=m.arch,
                          needs=("datapaths.layers", "layers[*].module", "layers[*].name"))

    def check_layers_against_models(self, model_objects: dict[str, Any] | None = None,
                                    dataset: Any = None) -> None:
        """Build every model as the study will (arch, arch_kwargs, checkpoint, mean/std, the
        dataset's classes and image shape) and check that its checkpoint fits and that the
        layers exist and run once per forward; errors list the valid layers. ``dataset``: an
        ImageDataset given to ``run_study`` (else one sample of the configured dataset is read)."""
        check = ConfigCheck()
        probe = check.run("dataset", self._probe_dataset, dataset)
        if probe is not None:
            self._check_models_build(check, _dataset_dims(probe[0]), model_objects or {})
        check.raise_if_any()

    def _probe_dataset(self, dataset: Any = None) -> tuple[Any, int]:
        """(one sample of the studied split, the split's size): the sample sizes the models, the
        size bounds the mapper parameters. Loaders that read single rows decode only one."""
        if dataset is not None:
            return dataset, len(dataset)
        from advtopo.data import probe_dataset

        d = self.dataset
        return probe_dataset(d.name, d.split, root=d.root, seed=d.seed, **d.options)

    def datapath_layers(self) -> list[str]:
        """The modules the datapaths stage gates (study layer names map to their modules)."""
        by_key = {la.key: la.module for la in self.layers}
        names = self.datapaths.layers if self.datapaths.layers else [la.key for la in self.layers]
        return list(dict.fromkeys(by_key.get(n, n) for n in names))


# --- collecting problems ---------------------------------------------------------------------

class ConfigCheck:
    """Collects a config's problems so that all of them are reported at once.

    Each check runs under the path of what it checks (``attacks[1].alpha``). It is skipped
    when that path, one below it or one it ``needs`` already failed: its message would only
    repeat the first problem, or be about a default standing in for a value the user got
    wrong. ``needs`` may use ``[*]`` for "any element" (``models[*].name``)."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.failed: list[str] = []

    def add(self, path: str, message: str) -> None:
        """A problem at ``path``."""
        if message not in self.problems:
            self.problems.append(message)
        self.fail(path)

    def report(self, path: str, message: str) -> None:
        """A problem at ``path`` found by a check that reads values already built: skipped when
        the path (or one below it) failed while building (a default stands in for its value)."""
        if not self.blocked(path):
            self.add(path, message)

    def fail(self, path: str) -> None:
        """Mark ``path`` failed without a message of its own (already reported otherwise)."""
        self.failed.append(path)

    def blocked(self, *paths: str) -> bool:
        return any(_overlaps(f, p) for f in self.failed for p in paths)

    def run(self, path: str, fn: Callable[..., Any], *args: Any, needs: tuple[str, ...] = (), **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``; an AdvtopoError becomes a problem at ``path``. Returns
        fn's result, or None when it failed or was skipped."""
        if self.blocked(path, *needs):
            return None
        try:
            return fn(*args, **kwargs)
        except ConfigErrors as exc:
            for p in exc.problems:
                self.add(path, p)
        except AdvtopoError as exc:
            self.add(path, str(exc))
        return None

    def raise_if_any(self) -> None:
        if self.problems:
            raise ConfigErrors(self.problems)


def _overlaps(failed: str, need: str) -> bool:
    """Whether a failure at ``failed`` concerns ``need``: the same path, one below it, or
    one above it (a whole list or table that failed)."""
    rx = re.escape(need).replace(r"\[\*\]", r"\[\d+\]")
    if re.fullmatch(rx + r"(?:[.\[].*)?", failed):
        return True
    generic = re.sub(r"\[\d+\]", "[*]", failed)
    return any(need.startswith(f + sep) for f in (failed, generic) for sep in (".", "["))


def _dataset_dims(ds: Any) -> dict[str, Any]:
    from advtopo.study.stages import dataset_dims

    return dataset_dims(ds)


def _prefixed(where: str, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except AdvtopoError as exc:
        raise AdvtopoError(f"{where}: {exc}") from None


def _prefixed_layers(what: str, check_layers: Callable[..., Any], model: Any, names: list[str],
                     shape: tuple[int, ...] | None, *, model_name: str, arch: str | None) -> None:
    try:
        check_layers(model, names, shape)
    except AdvtopoError as exc:
        raise AdvtopoError(f"{what}: {exc} (model {model_name!r}, arch {arch!r})") from None


# --- helpers -------------------------------------------------------------------------------

def _fmt(x: float) -> str:
    return f"{float(x):g}"


NAME_MAX = 64  # a name is part of file names (mapper/<model>__<layer>__<attack>__<eps>.json) and URLs
GRAPH_FILE_MAX = 200  # of a graph's file name: 255 is the usual limit, the app's cache names add to it


def _check_name(param: str, name: str) -> None:
    if not name or any(c in name for c in '/\\:*?"<>| ') or name.startswith(".") or "__" in name \
            or not name.isprintable():
        raise AdvtopoError(f"{param}={name!r} must be a non-empty file-name-safe name "
                           "(letters, digits, '.', '-', '_'; no '/', spaces or '__')")
    if len(name) > NAME_MAX:
        raise AdvtopoError(f"{param}={name[:20]!r}... has {len(name)} characters; at most {NAME_MAX} "
                           "(it is part of file names)")


def _check_graph_file_names(cfg: StudyConfig) -> None:
    """The longest graph file name the study will write fits a file system's limit."""
    from advtopo.rundir.layout import graph_id

    def longest(names: list[str]) -> str:
        return max(names, key=len) if names else ""

    attack = max(((a.name, e) for a in cfg.attacks for e in a.eps), key=lambda p: len(p[0]) + len(_fmt(p[1])),
                 default=("", 0.0))
    gid = graph_id(longest(cfg.model_names), longest([la.key for la in cfg.layers]), attack[0], attack[1],
                   longest([m.name for m in cfg.mapper]) if len(cfg.mapper) > 1 else None)
    if len(gid) + len(".json") > GRAPH_FILE_MAX:
        raise AdvtopoError(f"graph file name {gid[:40]}....json would have {len(gid) + 5} characters; at most "
                           f"{GRAPH_FILE_MAX}: shorten the model, layer, attack or [[mapper]] set names")


def _check_output(output: str, name: str) -> None:
    """The run directory template: only ``{name}``, and not empty (which would mean the working directory)."""
    if not check_template("output", output, {"name": name}).strip():
        raise AdvtopoError(f"output={output!r} is empty; give the run directory (e.g. 'runs/{{name}}')")


def _check_device(param: str, device: str) -> None:
    """auto, cpu, mps, cuda or cuda:N (whether it exists here is checked with the resources)."""
    kind, sep, index = device.partition(":")
    check_choice(param, kind, ["auto", "cpu", "cuda", "mps"])
    if sep and (kind != "cuda" or not index.isdigit()):
        raise AdvtopoError(f"{param}={device!r} is not valid; allowed: auto, cpu, mps, cuda or cuda:N (N a GPU index)")


def _resolve_device(device: str) -> None:
    from advtopo.utils import resolve_device

    resolve_device(device)


def _check_eps(param: str, eps: Any, norm: str | None = "Linf") -> None:
    """An attack radius: Linf in [0, 1] on images in [0, 1]; another norm's (L2) any number
    >= 0; ``norm=None`` (not known yet) checks only >= 0."""
    check_number(param, eps)
    if norm != "Linf":  # an L2 radius may exceed 1 (2.0 is usual on MNIST)
        if float(eps) < 0:
            raise AdvtopoError(f"{param}={eps} must be >= 0 (an {norm or 'attack'} radius on images in [0, 1])")
        return
    if not 0.0 <= float(eps) <= 1.0:
        raise AdvtopoError(f"{param}={eps} is out of range; eps is an L-inf radius on images in [0, 1], "
                           "so it must be in [0, 1] (e.g. 8/255 = 0.031 or 0.3 for MNIST)")


def _check_dataset(check: ConfigCheck, d: DatasetConfig) -> None:
    """The dataset exists (did-you-mean), its options are its loader's, splits, sizes and seed
    make sense; option values are checked by the loader itself when the resources are."""
    from advtopo.data import DATASETS, check_dataset_options

    check.run("dataset.name", DATASETS.get, d.name)
    check.run("dataset.options", check_dataset_options, d.name, d.options, needs=("dataset.name",))
    check.run("dataset.split", check_choice, "dataset.split", d.split, ["train", "test"])
    check.run("dataset.train_split", check_choice, "dataset.train_split", d.train_split, ["train", "test"])
    check.run("dataset.seed", check_seed, "dataset.seed", d.seed)
    for key in ("subset", "train_subset"):
        v = getattr(d, key)
        if v is not None and v < 1:
            check.report(f"dataset.{key}", f"dataset.{key}={v} must be >= 1 (or left out for the whole split)")


# what reading the studied data depends on (an unknown key in [dataset] does not stop it; a
# dataset object run_study could not read fails "dataset.object")
DATA_KEYS = ("dataset.name", "dataset.split", "dataset.root", "dataset.options", "dataset.seed", "dataset.object")
MODEL_NAME_KEYS = ("models[*].name", "models[*].arch", "models[*].train")  # what a model's name comes from


def _check_models(check: ConfigCheck, cfg: StudyConfig, model_objects: Collection[str]) -> None:
    """Each [[models]] entry (arch, checkpoint or train recipe) and unique, file-safe names."""
    if not cfg.models:
        check.report("models", "the study needs at least one [[models]] entry (arch = 'lenet5', ...)")
        return
    for i, m in enumerate(cfg.models):
        is_object = m.name is not None and m.name in model_objects
        _check_model(check, i, m, cfg.base_dir, is_object)
        if m.checkpoint and m.train:
            check.report(f"models[{i}].train", f"models[{i}] has both 'checkpoint' and 'train'; "
                                            "a model is either loaded or trained")
        check.run(f"models[{i}].train", _check_train_recipe, i, m.train)
    names = cfg.model_names
    for i, n in enumerate(names):
        check.run(f"models[{i}].name", _check_name, f"models[{i}].name", n, needs=MODEL_NAME_KEYS)
    if len(set(names)) != len(names) and not check.blocked(*MODEL_NAME_KEYS):
        check.report("models", f"model names must be unique, got {names}; set name = '...' on each [[models]]")


def _check_attacks(check: ConfigCheck, attacks: list[AttackConfig]) -> None:
    """Known attacks with unique names, the arguments each accepts, eps in its norm's range."""
    from advtopo.adversarial import ATTACKS

    if not attacks:
        check.report("attacks", "the study needs at least one [[attacks]] entry (name = 'pgd', eps = [...])")
        return
    attack_names = [a.name for a in attacks]
    if len(set(attack_names)) != len(attack_names):
        check.report("attacks", f"attack names must be unique, got {attack_names}")
    for i, a in enumerate(attacks):
        p = f"attacks[{i}]"
        check.run(f"{p}.name", lambda a=a, p=p: (ATTACKS.get(a.name), _check_name(f"{p}.name", a.name)))
        if not a.eps:
            check.report(f"{p}.eps", f"{p}.eps is empty; give a list such as [0.0, 0.1, 0.3]")
        elif len(set(a.eps)) != len(a.eps):
            check.report(f"{p}.eps", f"{p}.eps has repeated values: {a.eps}")
        if a.steps is not None and a.steps < 1:
            check.report(f"{p}.steps", f"{p}.steps={a.steps} must be >= 1")
        if a.alpha is not None and not a.alpha > 0:
            check.report(f"{p}.alpha", f"{p}.alpha={a.alpha} must be > 0")
        norm = check.run(p, _check_attack_args, i, a, needs=(f"{p}.name", f"{p}.steps", f"{p}.alpha",
                                                             f"{p}.random_start", f"{p}.options"))
        for j, e in enumerate(a.eps):
            check.run(f"{p}.eps[{j}]", _check_eps, f"{p}.eps[{j}]", e, norm)


def _check_layers(check: ConfigCheck, layers: list[LayerConfig]) -> None:
    """Known summaries and unique, file-safe layer names (the modules are checked against the
    models with the resources)."""
    from advtopo.activations import SUMMARIES

    if not layers:
        check.report("layers", "the study needs at least one [[layers]] entry (module = 'fc1', summary = 'flatten')")
        return
    for i, layer in enumerate(layers):
        check.run(f"layers[{i}].summary", check_choice, f"layers[{i}].summary", layer.summary, SUMMARIES)
        if not layer.module.strip():
            check.report(f"layers[{i}].module", f"layers[{i}].module is empty; give a module name "
                                                "(advtopo layers ARCH lists them)")
        check.run(f"layers[{i}].name", _check_name, f"layers[{i}].name", layer.key, needs=(f"layers[{i}].module",))
    keys = [layer.key for layer in layers]
    if len(set(keys)) != len(keys) and not check.blocked("layers[*].name", "layers[*].module"):
        check.report("layers", f"layer names must be unique, got {keys}; give repeated modules a distinct name = '...'")


def _check_mapper_sets(check: ConfigCheck, sets: list[MapperConfig], subset: int | None) -> None:
    """Unique set names, the rows choice, and the Mapper's own rules (MapperParams.validate);
    a graph has at least ``subset`` rows, so n_intervals may not exceed it."""
    if not sets:
        check.report("mapper", "mapper is empty; give at least one [[mapper]] parameter set "
                            "(or leave the key out for the default one)")
        return
    names = [m.name for m in sets]
    if len(set(names)) != len(names):
        check.report("mapper", f"mapper parameter set names must be unique, got {names}")
    for i, m in enumerate(sets):
        check.run(f"mapper[{i}].name", _check_name, f"mapper[{i}].name", m.name)
        check.run(f"mapper[{i}].rows", check_choice, f"mapper[{i}].rows", m.rows, MAPPER_ROWS)
        check.run(f"mapper[{i}]", m.mapper.validate, where=f"mapper[{i}]")
        if subset is not None:  # only the row count can fail now
            check.run(f"mapper[{i}]", _check_mapper_rows, m, i, subset, f"dataset.subset = {subset}",
                      needs=("dataset.subset",))


def _check_mapper_rows(m: MapperConfig, i: int, n_rows: int, why: str) -> None:
    try:
        m.mapper.validate(n_samples=n_rows, where=f"mapper[{i}]")
    except AdvtopoError as exc:
        raise AdvtopoError(f"{exc}: a graph has at least {why} rows") from None


def _check_row_counts(check: ConfigCheck, cfg: StudyConfig, n_rows: int, n_split: int) -> None:
    """What depends on the number of studied samples, known once the dataset is read: the
    mapper parameters (a graph has at least ``n_rows`` rows), the stability grid and the
    separability folds."""
    d = cfg.dataset
    why = (f"{n_rows} (the {n_split} samples of {d.name}/{d.split})" if not d.subset or d.subset > n_split
           else f"dataset.subset = {n_rows}")
    for i, m in enumerate(cfg.mapper):
        check.run(f"mapper[{i}]", _check_mapper_rows, m, i, n_rows, why, needs=("dataset.subset",))
    st = cfg.stability
    if st.enabled and cfg.mapper:
        for j, k in enumerate(st.n_intervals):
            if k > n_rows:
                check.report(f"stability.n_intervals[{j}]",
                          f"stability.n_intervals[{j}]={k} is more than the {n_rows} rows of a graph ({why}); "
                          f"allowed: 1..{n_rows}")
        base = cfg.mapper[0].mapper
        for k in st.n_intervals:  # the other rules of each grid setting (with mapper[0]'s other parameters)
            for ov in st.overlap:
                for metric in st.metric:
                    check.run("stability.grid", lambda k=k, ov=ov, metric=metric: base.replace(
                        n_intervals=k, overlap=ov, metric=metric).validate(n_samples=n_rows, where="stability"),
                        needs=("stability", "mapper[0]"))
    s = cfg.separability
    if s.enabled:
        n = min(n_rows, s.max_samples) if s.max_samples else n_rows
        smallest_train = n - -(-n // max(s.cv, 1))
        if s.cv > n:
            check.report("separability.cv", f"separability.cv={s.cv} folds but only {n} samples; use cv <= {n}")
        elif s.k > smallest_train:
            check.report("separability.k", f"separability.k={s.k} neighbours but a training fold holds only "
                                        f"{smallest_train} samples ({n} samples, cv={s.cv}); use k <= {smallest_train}")


def _check_persistence(p: PersistenceConfig) -> None:
    from advtopo.persistence import validate_settings

    try:
        validate_settings(p.settings)
    except AdvtopoError as exc:
        raise AdvtopoError(f"persistence.settings: {exc}") from None


def _check_vulnerability(check: ConfigCheck, cfg: StudyConfig) -> None:
    """[vulnerability]'s model, layer and attack name ones the study has."""
    v = cfg.vulnerability
    if v.model is not None:
        check.run("vulnerability.model", check_choice, "vulnerability.model", v.model, cfg.model_names,
                  needs=("models", *MODEL_NAME_KEYS))
    if v.layer is not None:
        check.run("vulnerability.layer", check_choice, "vulnerability.layer", v.layer, [la.key for la in cfg.layers],
                  needs=("layers", "layers[*].name", "layers[*].module"))
    if v.attack is not None:
        check.run("vulnerability.attack", check_choice, "vulnerability.attack", v.attack,
                  [a.name for a in cfg.attacks], needs=("attacks", "attacks[*].name"))


def _check_model(check: ConfigCheck, i: int, m: ModelConfig, base_dir: str | None, is_object: bool) -> None:
    """The arch resolves (the factory imports, did-you-mean for registry names), the checkpoint
    exists, mean/std fit; whether the checkpoint's tensors fit is checked with the resources,
    which build the model."""
    from advtopo.models import resolve_arch

    where = f"models[{i}]" + (f" ({m.name})" if m.name else "")
    check.run(f"models[{i}].mean", _check_mean_std, where, m.mean, m.std, needs=(f"models[{i}].std",))
    if is_object:
        if m.arch or m.checkpoint or m.train or m.arch_kwargs:
            check.report(f"models[{i}]", f"{where} is passed as an object to run_study(models=...) and is used as is; "
                                      "leave out arch, arch_kwargs, checkpoint and train (mean/std are allowed)")
        return
    if not m.arch:
        check.report(f"models[{i}].arch", f"{where} needs arch: a registry name (advtopo models), "
                                       "'package.module:factory' or 'path/to/file.py:factory'; or pass the model "
                                       "object to run_study(models={name: model})")
        return
    check.run(f"models[{i}].arch", _prefixed, f"{where}.arch", resolve_arch, m.arch, base_dir)
    if m.checkpoint:
        check.run(f"models[{i}].checkpoint", _check_checkpoint_file, f"{where}.checkpoint", m.checkpoint, base_dir)


def _check_mean_std(where: str, mean: list[float] | None, std: list[float] | None) -> None:
    if (mean is None) != (std is None):
        raise AdvtopoError(f"{where}: give both mean and std (one value per input channel) or neither")
    if mean is not None and (len(mean) != len(std) or not mean or any(v <= 0 for v in std)):
        raise AdvtopoError(f"{where}: mean={mean} and std={std} need one value per channel each, std > 0")


def _check_checkpoint_file(where: str, checkpoint: str, base_dir: str | None) -> None:
    """The checkpoint resolves (zoo names, relative paths) to a readable, non-empty file."""
    path = _prefixed(where, resolve_checkpoint, checkpoint, base_dir)
    relative = base_dir and not checkpoint.startswith("zoo:") and not Path(checkpoint).expanduser().is_absolute()
    try:
        check_input_file(where, path)
    except AdvtopoError as exc:
        raise AdvtopoError(f"{exc}" + (f" (relative to the config's folder {base_dir})" if relative else "")) from None
    if path.stat().st_size == 0:
        raise AdvtopoError(f"{where}: {path} is empty (0 bytes)")


def resolve_checkpoint(checkpoint: str, base_dir: str | os.PathLike[str] | None) -> Path:
    """A model's checkpoint as an absolute file path: ``zoo:NAME`` from the built-in zoo, else a
    path (relative paths against the config file's folder)."""
    from advtopo.models import resolve_checkpoint as resolve

    return Path(resolve(checkpoint, base_dir)).resolve()


def _check_train_recipe(i: int, recipe: dict) -> None:
    from advtopo.adversarial import TrainConfig

    _check_eps(f"models[{i}].train.eps", recipe.get("eps", 0.0))
    if "seed" in recipe:
        check_seed(f"models[{i}].train.seed", recipe["seed"])
    try:
        TrainConfig.from_dict(dict(recipe))
    except (AdvtopoError, TypeError, ValueError) as exc:
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
    if "seed" in a.options:
        check_seed(f"attacks[{i}].options.seed", a.options["seed"])
    check_attack_kwargs(a.name, kw, where=f"attacks[{i}]")
    try:
        atk = create_attack(a.name, nn.Identity(), eps=0.0, **kw)
    except (AdvtopoError, TypeError, ValueError) as exc:
        raise AdvtopoError(f"attacks[{i}] ({a.name}): {exc}") from None
    if isinstance(atk, TorchattacksAttack):
        try:
            import_torchattacks()
        except AdvtopoError as exc:
            raise AdvtopoError(f"attacks[{i}] ({a.name}): {exc}") from None
    return str(getattr(atk, "norm", "Linf"))


def _check_datapaths(check: ConfigCheck, cfg: StudyConfig) -> None:
    """Cross-references and values of [datapaths]; the extractor checks its own parameters."""
    d = cfg.datapaths
    if d.model is not None:
        check.run("datapaths.model", check_choice, "datapaths.model", d.model, cfg.model_names,
                  needs=("models", *MODEL_NAME_KEYS))
    if d.attack is not None:
        check.run("datapaths.attack", check_choice, "datapaths.attack", d.attack, [a.name for a in cfg.attacks],
                  needs=("attacks", "attacks[*].name"))
    if not check.blocked("datapaths.attack", "attacks", "attacks[*].name", "attacks[*].eps"):
        attack = next(a for a in cfg.attacks if a.name == (d.attack or cfg.attacks[0].name))
        check.run("datapaths.eps", _check_datapaths_eps, d.eps, attack)
    if d.layers is not None and not d.layers:
        check.report("datapaths.layers", "datapaths.layers is empty; leave it out to gate the study's layers")
    for key, low in (("n_samples", 1), ("top_k", 1), ("n_detail", 0)):
        _at_least(check, f"datapaths.{key}", getattr(d, key), low)
    from advtopo.datapaths import DatapathExtractor

    kw = {k: getattr(d, k) for k in ("lam", "steps", "lr") if getattr(d, k) is not None}
    layers = d.layers or [la.key for la in cfg.layers]
    check.run("datapaths", _prefixed, "datapaths",
              lambda: DatapathExtractor(layers, threshold=d.threshold, **kw).validate(), needs=("datapaths.layers", "layers"))


def _check_datapaths_eps(eps: list[float] | None, attack: AttackConfig) -> None:
    if eps is None:
        if not any(e > 0 for e in attack.eps):
            raise AdvtopoError(f"datapaths: attack {attack.name!r} has no eps > 0 to compare against")
        return
    problems = []
    for j, e in enumerate(eps):
        if not e > 0:
            problems.append(f"datapaths.eps[{j}]={e} must be > 0 (the clean datapaths are always computed)")
        elif float(e) not in [float(x) for x in attack.eps]:
            problems.append(f"datapaths.eps[{j}]={e} is not an eps of attack {attack.name!r}; "
                            f"allowed: {', '.join(_fmt(x) for x in attack.eps if x > 0)}")
    if problems:
        raise ConfigErrors(problems)


def _check_recovery(check: ConfigCheck, cfg: StudyConfig) -> None:
    """Cross-references of [recovery] (its values are checked when it is built)."""
    r = cfg.recovery
    for j, model in enumerate(r.models or []):
        check.run(f"recovery.models[{j}]", check_choice, "recovery.models", model, cfg.model_names,
                  needs=("models", *MODEL_NAME_KEYS))
    if r.attack is not None:
        check.run("recovery.attack", check_choice, "recovery.attack", r.attack, [a.name for a in cfg.attacks],
                  needs=("attacks", "attacks[*].name"))
    if not check.blocked("recovery.attack", "attacks", "attacks[*].name", "attacks[*].eps"):
        attack = next(a for a in cfg.attacks if a.name == (r.attack or cfg.attacks[0].name))
        eps = [e for e in (r.eps if r.eps is not None else attack.eps) if e > 0]
        wrong = [e for e in eps if float(e) not in [float(x) for x in attack.eps]]
        if wrong:
            check.report("recovery.eps", f"recovery.eps: {', '.join(_fmt(e) for e in wrong)} is not an eps of attack "
                                         f"{attack.name!r}; allowed: {', '.join(_fmt(x) for x in attack.eps if x > 0)}")
        elif not eps:
            check.report("recovery.eps", f"recovery: attack {attack.name!r} has no eps > 0 to attack the clean "
                                         "inputs with; give recovery.eps")


def _at_least(check: ConfigCheck, path: str, value: int, low: int) -> None:
    if value < low:
        check.report(path, f"{path}={value} must be >= {low}")


def _check_measures(check: ConfigCheck, cfg: "StudyConfig") -> None:
    """[separability] and [stability] (advtopo.study.measures)."""
    from advtopo.utils.metrics import METRICS as metrics  # here: importing advtopo.utils loads numpy
    s = cfg.separability
    for key, low in (("k", 1), ("cv", 2), ("n_boot", 1)):
        _at_least(check, f"separability.{key}", getattr(s, key), low)
    if s.max_samples is not None and s.max_samples < 3:
        check.report("separability.max_samples",
                  f"separability.max_samples={s.max_samples} must be >= 3 (or left out for all samples)")
    check.run("separability.metric", check_choice, "separability.metric", s.metric, metrics)
    st = cfg.stability
    _at_least(check, "stability.n_boot", st.n_boot, 1)
    for sec, level in (("separability", s.level), ("stability", st.level)):
        if not 0 < level < 1:
            check.report(f"{sec}.level", f"{sec}.level={level} must be in (0, 1), e.g. 0.95")
    for key in ("n_intervals", "overlap", "metric"):
        values = getattr(st, key)
        if not values:
            check.report(f"stability.{key}", f"stability.{key} is empty; give at least one value "
                                          f"(e.g. {getattr(StabilityConfig(), key)})")
        elif len(set(values)) != len(values):
            check.report(f"stability.{key}", f"stability.{key} has repeated values: {values}")
    for j, v in enumerate(st.n_intervals):
        _at_least(check, f"stability.n_intervals[{j}]", v, 1)
    for j, v in enumerate(st.overlap):
        if not 0 <= v < 1:
            check.report(f"stability.overlap[{j}]", f"stability.overlap[{j}]={v} must be in [0, 1)")
    for j, v in enumerate(st.metric):
        check.run(f"stability.metric[{j}]", check_choice, f"stability.metric[{j}]", v, metrics)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    return {type(None): "none", float: "number", int: "integer", str: "string", bool: "true/false",
            dict: "table"}.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(tp: Any, value: Any, path: str, check: ConfigCheck) -> Any:
    """Check ``value`` against annotation ``tp``; ints are accepted where floats are, NaN and
    inf are not. Raises AdvtopoError for this value; a nested table adds its own problems to
    ``check`` (and raises ConfigErrors() without lines when it cannot be built)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return _coerce(arg, value, path, check)
            except AdvtopoError as exc:
                if _same_kind(arg, value):  # the right kind of value, a wrong one inside: say which
                    errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise AdvtopoError(f"{path}={value!r} has the wrong type; expected {_type_name(tp)}")
    if origin is list:
        if not isinstance(value, list):
            raise AdvtopoError(f"{path}={value!r} has the wrong type; expected {_type_name(tp)}")
        (arg,) = typing.get_args(tp)
        items, problems = [], []
        for j, v in enumerate(value):
            try:
                items.append(_coerce(arg, v, f"{path}[{j}]", check))
            except AdvtopoError as exc:
                problems.append(str(exc))
        if problems:
            raise ConfigErrors(problems)
        return items
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise AdvtopoError(f"{path} must be a table ([{path}]), got {value!r}")
        if hasattr(tp, "from_table"):  # a section that reads its own keys (MapperConfig)
            return tp.from_table(value, path)
        built = _build(tp, value, path, check)
        if built is None:
            raise ConfigErrors([])
        return built
    if tp is type(None):
        if value is None:
            return None
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise AdvtopoError(f"{path}={value} must be a finite number")
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is dict:
        if isinstance(value, dict):
            _check_free_table(value, path)
            return value
    elif isinstance(value, tp):
        return value
    raise AdvtopoError(f"{path}={value!r} has the wrong type; expected {_type_name(tp)}")


def _same_kind(tp: Any, value: Any) -> bool:
    """Whether ``value`` is the kind of value ``tp`` describes (a list for a list type, a
    number for a number type), so that an error checking it is the one to report."""
    origin = typing.get_origin(tp) or tp
    if origin is list:
        return isinstance(value, list)
    if origin is float:
        return isinstance(value, float)
    return False


def _check_free_table(table: dict[str, Any], path: str) -> None:
    """A table whose keys another stage checks (options, train, arch_kwargs, settings): what is
    never valid anywhere is refused here, where the key's full path is known: NaN, and a
    ``seed`` outside [0, 2**32)."""
    problems = []

    def walk(value: Any, where: str) -> None:
        if isinstance(value, float) and math.isnan(value):
            problems.append(f"{where}=nan must be a number")
        elif isinstance(value, dict):
            for k, v in value.items():
                key_path = f"{where}.{k}"
                if k == "seed" and not isinstance(v, dict):
                    try:
                        check_seed(key_path, v)
                    except AdvtopoError as exc:
                        problems.append(str(exc))
                        continue
                walk(v, key_path)
        elif isinstance(value, list):
            for j, v in enumerate(value):
                walk(v, f"{where}[{j}]")

    walk(table, path)
    if problems:
        raise ConfigErrors(problems)


def _build(cls: type, d: dict[str, Any], prefix: str, check: ConfigCheck) -> Any:
    """``cls`` from table ``d``; each bad key is a problem in ``check`` (its default stands in,
    and the key's path is marked failed so later checks do not build on it). None when the
    table cannot be built at all (a required key is missing or bad)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in ("source_text", "base_dir")}
    kwargs = {}
    for key, value in d.items():
        path = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            check.add(path, f"unknown key {path!r}{did_you_mean(key, fields)}; "
                            f"allowed in {prefix or 'the top level'}: {', '.join(fields)}")
            continue
        tp = hints[key]
        try:
            if typing.get_origin(tp) is list and dataclasses.is_dataclass(typing.get_args(tp)[0]):
                kwargs[key] = _build_list(typing.get_args(tp)[0], key, value, path, check)
            else:
                kwargs[key] = _coerce(tp, value, path, check)
        except ConfigErrors as exc:
            for p in exc.problems:
                check.add(path, p)
            check.fail(path)
        except AdvtopoError as exc:
            check.add(path, str(exc))
    missing = [n for n, f in fields.items() if f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING and n not in kwargs]
    if missing:
        check.add(prefix, f"{prefix or 'the top level'} is missing required key(s): {', '.join(missing)}")
        return None
    try:
        return cls(**kwargs)
    except AdvtopoError as exc:  # a section's own checks (ExecutorConfig)
        check.add(prefix, str(exc))
        return None


def _build_list(item_type: type, key: str, value: Any, path: str, check: ConfigCheck) -> list[Any]:
    """An array of tables (``[[models]]``); each element is built on its own, so a mistake in
    one does not hide those of the others. An element that cannot be built at all fails the
    whole list (its index would shift the others')."""
    if isinstance(value, dict) and key in ("mapper",):
        value = [value]
    if not isinstance(value, list):
        raise AdvtopoError(f"{path} must be an array of tables ([[{path}]]), got {value!r}")
    items = []
    for j, v in enumerate(value):
        try:
            item = _coerce(item_type, v, f"{path}[{j}]", check)
        except ConfigErrors as exc:
            for p in exc.problems:
                check.add(f"{path}[{j}]", p)
            item = None
        except AdvtopoError as exc:
            check.add(f"{path}[{j}]", str(exc))
            item = None
        if item is None:
            check.fail(path)
        else:
            items.append(item)
    return items


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


def read_config_file(path: str | os.PathLike[str]) -> tuple[dict[str, Any], str]:
    """A study config file -> (its table, its text). Every way a file can be unreadable is one
    line: missing, a folder, no permission, not UTF-8 (UTF-16 and UTF-32 named as such; a UTF-8
    byte-order mark is accepted and dropped), not TOML."""
    path = Path(path)
    what = f"study config {path}"
    if not os.path.lexists(path):
        raise AdvtopoError(f"{what} does not exist")
    if path.is_dir():
        raise AdvtopoError(f"{what} is a folder; give the TOML file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AdvtopoError(f"{what} cannot be read: {exc.strerror or exc}") from None
    for bom, name in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                      (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):
        if raw.startswith(bom):
            raise AdvtopoError(f"{what} is {name} encoded; TOML files are UTF-8: save it as UTF-8 "
                               f"(e.g. iconv -f {name} -t UTF-8)")
    raw = raw.removeprefix(codecs.BOM_UTF8)
    if b"\x00" in raw[:4096]:
        raise AdvtopoError(f"{what} holds NUL bytes: it is not a text file (or it is UTF-16 without a "
                           "byte-order mark); save it as UTF-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise AdvtopoError(f"{what} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); "
                           "save it as UTF-8") from None
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AdvtopoError(f"{what} is not valid TOML: {exc}") from None
    except RecursionError:
        raise AdvtopoError(f"{what} nests arrays or tables too deeply to read") from None
    return d, text


def _parse_dict(d: Any, check: ConfigCheck, *, source_text: str | None = None,
                base_dir: str | os.PathLike[str] | None = None,
                model_objects: Collection[str] = ()) -> StudyConfig:
    """Build a StudyConfig from a table and validate it, every problem added to ``check``
    (bad keys get their defaults, so the rest can still be checked)."""
    if not isinstance(d, dict):
        raise AdvtopoError(f"a study config is a table of keys, got {type(d).__name__}")
    cfg = _build(StudyConfig, d, "", check)
    cfg.source_text = source_text
    cfg.base_dir = str(base_dir) if base_dir is not None else None
    cfg.validate_into(check, model_objects=model_objects)
    return cfg


def parse_config(source: str | os.PathLike[str] | dict | StudyConfig, check: ConfigCheck,
                 model_objects: Collection[str] = ()) -> StudyConfig:
    """A StudyConfig from a path, a dict or a StudyConfig, its problems added to ``check``.
    ``model_objects``: names of models ``run_study(models=...)`` passes as objects; a name
    without a [[models]] entry gets one. An unreadable file raises at once (nothing to check)."""
    names = list(model_objects)
    if isinstance(source, StudyConfig):
        cfg = source
        if names:  # a copy with an entry for each object the config does not name
            cfg = copy.copy(source)
            have = {m.name for m in cfg.models}
            cfg.models = list(cfg.models) + [ModelConfig(name=n) for n in names if n not in have]
        cfg.validate_into(check, model_objects=names)
        return cfg
    text, base_dir = None, None
    if isinstance(source, dict):
        d = dict(source)
    elif not isinstance(source, (str, os.PathLike)):
        raise AdvtopoError(f"a study config is a TOML file's path, a dict or a StudyConfig; got {type(source).__name__}")
    else:
        d, text = read_config_file(source)
        base_dir = Path(source).resolve().parent
    if names and isinstance(d.get("models", []), list):
        entries = list(d.get("models", []))
        have = {e.get("name") for e in entries if isinstance(e, dict)}
        d["models"] = entries + [{"name": n} for n in names if n not in have]
    return _parse_dict(d, check, source_text=text, base_dir=base_dir, model_objects=names)


def check_config(source: str | os.PathLike[str] | dict | StudyConfig, *,
                 out: str | os.PathLike[str] | None = None, device: str | None = None,
                 model_objects: dict[str, Any] | None = None, dataset: Any = None) -> StudyConfig:
    """Everything ``run_study`` checks before its first task, all at once: the config
    (:meth:`StudyConfig.validate`) and what it names (:meth:`StudyConfig.check_resources`: the
    run directory, the device, the dataset, every model and checkpoint, the layers). Raises
    :class:`ConfigErrors` listing every problem; returns the config when there is none.
    ``advtopo check CONFIG`` runs only this."""
    check = ConfigCheck()
    cfg = parse_config(source, check, list(model_objects or ()))
    cfg.check_resources(check, model_objects=model_objects, dataset=dataset, out=out, device=device)
    check.raise_if_any()
    return cfg


def load_config(source: str | os.PathLike[str] | dict | StudyConfig,
                model_objects: Collection[str] = ()) -> StudyConfig:
    """A StudyConfig from a path, a dict or a StudyConfig, validated (no data or models are
    read: :func:`check_config` also checks those). Raises :class:`ConfigErrors`."""
    check = ConfigCheck()
    cfg = parse_config(source, check, model_objects)
    check.raise_if_any()
    return cfg




def demo_config_path(train: bool = False) -> Path:
    """The built-in demo: the zoo's pretrained models, or (``train=True``) models trained from scratch."""
    return Path(__file__).with_name("demo_train.toml" if train else "demo.toml")
