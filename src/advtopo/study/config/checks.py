"""The config's rules: names, devices, eps, each section's values and cross-references, and
(with the resources) what needs the data and the models. Each adds its problems to a ``ConfigCheck``."""
from __future__ import annotations

import os
import typing
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from advtopo.checks import check_input_file, check_number, check_seed, check_template
from advtopo.errors import AdvtopoError, ConfigErrors, check_choice
from advtopo.study.config.collector import ConfigCheck
from advtopo.study.config.sections import (
    MAPPER_ROWS,
    AttackConfig,
    DatasetConfig,
    LayerConfig,
    MapperConfig,
    ModelConfig,
    PersistenceConfig,
    StabilityConfig,
)

if typing.TYPE_CHECKING:
    from advtopo.study.config.study import StudyConfig


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
    if r.models and len(set(r.models)) != len(r.models):
        check.report("recovery.models", f"recovery.models has repeated names: {r.models}")
    _check_attack_and_eps(check, cfg, "recovery", r.attack, r.eps, "attack the clean inputs with")


def _check_activation_graph(check: ConfigCheck, cfg: StudyConfig) -> None:
    """Cross-references of [activation_graph] (its values are checked when it is built; its
    layers against the model when the stage runs)."""
    a = cfg.activation_graph
    if a.model is not None:
        check.run("activation_graph.model", check_choice, "activation_graph.model", a.model, cfg.model_names,
                  needs=("models", *MODEL_NAME_KEYS))
    _check_attack_and_eps(check, cfg, "activation_graph", a.attack, a.eps, "compare the clean inputs with")


def _check_attack_and_eps(check: ConfigCheck, cfg: StudyConfig, section: str, attack_name: str | None,
                          eps: list[float] | None, purpose: str) -> None:
    """A stage's ``attack`` is one of the study's (default: the first) and its ``eps`` are that
    attack's (default: its eps > 0; at least one), matched as the plan matches them (``eps_equal``)."""
    if attack_name is not None:
        check.run(f"{section}.attack", check_choice, f"{section}.attack", attack_name, [a.name for a in cfg.attacks],
                  needs=("attacks", "attacks[*].name"))
    if check.blocked(f"{section}.attack", "attacks", "attacks[*].name", "attacks[*].eps"):
        return
    from advtopo.rundir.layout import eps_equal

    attack = next(a for a in cfg.attacks if a.name == (attack_name or cfg.attacks[0].name))
    chosen = [e for e in (eps if eps is not None else attack.eps) if e > 0]
    wrong = [e for e in chosen if not any(eps_equal(e, x) for x in attack.eps)]
    if wrong:
        check.report(f"{section}.eps", f"{section}.eps: {', '.join(_fmt(e) for e in wrong)} is not an eps of attack "
                                       f"{attack.name!r}; allowed: {', '.join(_fmt(x) for x in attack.eps if x > 0)}")
    elif not chosen:
        check.report(f"{section}.eps", f"{section}: attack {attack.name!r} has no eps > 0 to {purpose}; "
                                       f"give {section}.eps")


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
