"""The entry points: a StudyConfig from a path, a dict or a StudyConfig, checked (``load_config``)
or checked with what it names (``check_config``); the built-in demo configs."""
from __future__ import annotations

import copy
import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

from advtopo.errors import AdvtopoError
from advtopo.study.config.collector import ConfigCheck
from advtopo.study.config.sections import ModelConfig
from advtopo.study.config.study import StudyConfig, _parse_dict
from advtopo.study.config.toml import read_config_file


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
    return Path(__file__).parent.parent / ("demo_train.toml" if train else "demo.toml")  # in advtopo/study
