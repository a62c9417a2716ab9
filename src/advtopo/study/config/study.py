"""``StudyConfig``: the whole study, its derived names, and its validation (the rules are in ``checks``)."""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from advtopo.checks import check_output_dir, check_seed, check_template
from advtopo.errors import AdvtopoError
from advtopo.study.config.checks import (
    DATA_KEYS,
    MODEL_NAME_KEYS,
    _at_least,
    _check_activation_graph,
    _check_attacks,
    _check_datapaths,
    _check_dataset,
    _check_device,
    _check_graph_file_names,
    _check_layers,
    _check_mapper_sets,
    _check_measures,
    _check_models,
    _check_name,
    _check_output,
    _check_persistence,
    _check_recovery,
    _check_row_counts,
    _check_vulnerability,
    _dataset_dims,
    _fmt,
    _prefixed,
    _prefixed_layers,
    _resolve_device,
)
from advtopo.study.config.coerce import _build
from advtopo.study.config.collector import ConfigCheck
from advtopo.study.config.sections import (
    ActivationGraphConfig,
    AttackConfig,
    CaptureConfig,
    DatapathsConfig,
    DatasetConfig,
    ExecutorConfig,
    LayerConfig,
    MapperConfig,
    ModelConfig,
    PersistenceConfig,
    RecoveryConfig,
    SeparabilityConfig,
    StabilityConfig,
    VulnerabilityConfig,
)
from advtopo.study.config.toml import _drop_none, dumps_toml, read_config_file


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
        if self.activation_graph.enabled:
            _check_activation_graph(check, self)
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
