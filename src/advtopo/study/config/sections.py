"""The dataclass of each config section ([dataset], [[models]], ... [executor]); a section's
own value rules run when it is built (``__post_init__``), its cross-references in ``checks``."""
from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Any

from advtopo.errors import AdvtopoError, ConfigErrors, check_choice, did_you_mean
from advtopo.study.config.coerce import _coerce
from advtopo.study.config.collector import ConfigCheck

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
