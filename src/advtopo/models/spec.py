"""Any PyTorch model by *spec*: a registry name, ``"package.module:factory"`` or ``"path/to/file.py:factory"``.

:func:`build_model` turns a spec, its ``arch_kwargs``, an optional checkpoint and an optional input
normalisation into a model in eval mode plus an ``info`` dict that records what was done (for the
study's manifest and for reproducibility).

Input normalisation is applied *inside* the model so attacks stay in [0, 1] pixel space. It is a
forward pre-hook on the user's model itself, with the mean/std kept as (non-persistent) buffers of a
small submodule named ``input_normalize``: every dotted layer name of the user's model
(``layer3.1.relu``, ``block2.layer.3``) stays exactly as it was, and the state_dict is unchanged,
so public checkpoints still load strictly by name.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from advtopo.checks import check_number
from advtopo.errors import AdvtopoError
from advtopo.models.zoo import MODELS, Normalize

NORMALIZE_NAME = "input_normalize"
ZOO_PREFIX = "zoo:"


def _is_file_spec(target: str) -> bool:
    return target.endswith(".py") or "/" in target or os.sep in target


def arch_file(spec: str, base_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The absolute path of the file a ``"path/to/file.py:factory"`` arch names (a relative
    path is taken from ``base_dir``, else the working directory); None for a registry name or
    a module. The study hashes this file, so editing a user's model recomputes its results."""
    target, sep, _ = spec.rpartition(":")
    if not sep or not _is_file_spec(target):
        return None
    path = Path(target).expanduser()
    return (path if path.is_absolute() else Path(base_dir or Path.cwd()) / path).resolve()


def _callables(module: Any) -> list[str]:
    names = []
    for name, obj in vars(module).items():
        if name.startswith("_") or not callable(obj):
            continue
        if getattr(obj, "__module__", None) != module.__name__:  # imported names (torch, nn...) are noise
            continue
        names.append(name)
    return sorted(names)


def _load_file_module(path: Path) -> Any:
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    mod_name = f"advtopo_user_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise AdvtopoError(f"arch file {path} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # dataclasses, pickling and typing need the module registered
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(mod_name, None)
        raise AdvtopoError(f"arch file {path} failed to import: {type(exc).__name__}: {exc}") from None
    return module


def resolve_arch(spec: str, base_dir: str | os.PathLike[str] | None = None) -> Callable[..., nn.Module]:
    """The factory named by ``spec``.

    - a registry name (``lenet5``, ``wrn28_10``; see ``MODELS``), with did-you-mean on typos;
    - ``"package.module:factory"``: imported with importlib (the package must be importable);
    - ``"path/to/file.py:factory"``: loaded by file path, relative to ``base_dir`` (the config file's
      folder; default the working directory), under a unique module name.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise AdvtopoError(f"arch must be a registry name, 'package.module:factory' or 'path/to/file.py:factory', "
                           f"got {spec!r}")
    spec = spec.strip()
    if ":" not in spec:
        if spec.endswith(".py"):
            raise AdvtopoError(f"arch {spec!r} names a file but no factory; write 'path/to/file.py:factory'")
        if spec not in MODELS:
            try:
                MODELS.get(spec)
            except AdvtopoError as exc:
                raise AdvtopoError(f"{exc}; or give 'package.module:factory' or 'path/to/file.py:factory'") from None
        return MODELS.get(spec)
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise AdvtopoError(f"arch {spec!r} must look like 'package.module:factory' or 'path/to/file.py:factory'")
    path = arch_file(spec, base_dir)
    if path is not None:
        if not path.is_file():
            raise AdvtopoError(f"arch file {path} does not exist (from arch {spec!r}"
                               + (f", relative to {base_dir}" if base_dir and not Path(target).is_absolute() else "")
                               + ")")
        module = _load_file_module(path)
        where = f"file {path}"
    else:
        try:
            module = importlib.import_module(target)
        except Exception as exc:
            raise AdvtopoError(f"arch module {target!r} cannot be imported: {type(exc).__name__}: {exc} "
                               "(is it installed or on PYTHONPATH?)") from None
        where = f"module {target!r}"
    if not hasattr(module, attr):
        avail = _callables(module)
        from advtopo.errors import did_you_mean

        raise AdvtopoError(f"{where} has no attribute {attr!r}{did_you_mean(attr, avail)}; "
                           f"callables defined there: {', '.join(avail) or 'none'}")
    factory = getattr(module, attr)
    if not callable(factory):
        raise AdvtopoError(f"{attr!r} in {where} is a {type(factory).__name__}, not a callable that builds a model")
    return factory


def _accepted(factory: Callable[..., Any]) -> tuple[set[str], bool]:
    """Keyword names the factory accepts and whether it takes ``**kwargs``."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return set(), True
    names = {n for n, p in sig.parameters.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n != "self"}
    var_kw = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    return names, var_kw


def _normalize_input(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Forward pre-hook: normalise the first positional input with ``module.input_normalize``."""
    if not args:
        return args
    return (getattr(module, NORMALIZE_NAME)(args[0]), *args[1:])


def _channel_values(name: str, values: Any) -> list[float]:
    """mean or std: finite numbers, one per input channel (a list, tuple, array or tensor)."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise AdvtopoError(f"{name}={values!r} must be a list of numbers, one per input channel")
    return [check_number(f"{name}[{j}]", v.item() if hasattr(v, "item") else v) for j, v in enumerate(values)]


def add_input_normalization(model: nn.Module, mean: list[float], std: list[float]) -> nn.Module:
    """Apply ``(x - mean) / std`` before ``model``'s forward, in place; layer names stay unchanged.

    The statistics live as non-persistent buffers of a submodule ``input_normalize`` (so they move
    with ``.to(device)`` and the state_dict is unchanged); a forward pre-hook calls it.
    """
    mean, std = _channel_values("mean", mean), _channel_values("std", std)
    if len(mean) != len(std) or not mean:
        raise AdvtopoError(f"mean and std need the same number of values (one per channel), got {len(mean)} and {len(std)}")
    if any(s <= 0 for s in std):
        raise AdvtopoError(f"std values must be > 0, got {std}")
    if hasattr(model, NORMALIZE_NAME):
        raise AdvtopoError(f"model {type(model).__name__} already has an attribute {NORMALIZE_NAME!r}; "
                           "it is normalised already (give mean/std once)")
    norm = Normalize(mean, std)
    # non-persistent: the state_dict stays the user's own, so checkpoints still load strictly
    for name in ("mean", "std"):
        buf = getattr(norm, name)
        del norm._buffers[name]
        norm.register_buffer(name, buf, persistent=False)
    param = next(model.parameters(), None)
    if param is not None:
        norm = norm.to(param.device)
    model.add_module(NORMALIZE_NAME, norm)
    model.register_forward_pre_hook(_normalize_input)
    return model


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_checkpoint(checkpoint: str | os.PathLike[str], base_dir: str | os.PathLike[str] | None) -> Path:
    """A checkpoint as a file: ``zoo:NAME`` from the built-in zoo (SHA-256 checked), else a path
    (a relative one against ``base_dir``, the config file's folder); existence is not checked."""
    if isinstance(checkpoint, str) and checkpoint.startswith(ZOO_PREFIX):
        name = checkpoint[len(ZOO_PREFIX):]
        if importlib.util.find_spec("advtopo.models.pretrained") is None:
            raise AdvtopoError(f"unknown zoo checkpoint {name!r}: this advtopo has no built-in zoo")
        from advtopo.models.pretrained import resolve_pretrained

        return Path(resolve_pretrained(name))
    path = Path(checkpoint).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def _call_factory(arch: str, build: Callable[[], Any], kwargs: dict[str, Any], accepted: set[str]) -> Any:
    """Run a model factory; whatever it raises on its arguments (a TypeError for a missing or
    wrong-typed one, a ValueError or assertion for a bad value) is a user error naming the
    factory, the arguments given and the ones it takes."""
    try:
        return build()
    except AdvtopoError:
        raise
    except Exception as exc:  # noqa: BLE001 -- user code: any exception means these arguments do not build it
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise AdvtopoError(f"arch {arch!r} failed to build with {kwargs}: {type(exc).__name__}: {first}; "
                           f"its arguments: {', '.join(sorted(accepted)) or 'none'}") from None


def build_model(arch: str, arch_kwargs: dict[str, Any] | None = None, *,
                checkpoint: str | os.PathLike[str] | None = None, mean: list[float] | None = None,
                std: list[float] | None = None, base_dir: str | os.PathLike[str] | None = None,
                num_classes: int | None = None, in_channels: int | None = None,
                input_size: int | None = None, match: str = "name") -> tuple[nn.Module, dict[str, Any]]:
    """Build ``arch`` (see :func:`resolve_arch`) with ``arch_kwargs``, load ``checkpoint``, add normalisation.

    Registry models also get ``num_classes``/``in_channels``/``input_size`` when given (as
    ``create_model``); an external factory gets only ``arch_kwargs`` (plus ``num_classes`` when its
    signature accepts it and ``arch_kwargs`` does not set it). ``checkpoint`` may be a path (relative
    to ``base_dir``) or ``"zoo:NAME"``; it loads strictly by name (:func:`load_weights`). With
    ``mean``/``std`` the model normalises its input itself (:func:`add_input_normalization`); a
    checkpoint that carries RobustBench's ``mu``/``sigma`` buffers gets them applied the same way.

    Returns ``(model in eval mode, info)``; ``info`` holds arch, arch_kwargs, checkpoint, sha256,
    mean, std, translation, renamed, stripped and normalization_source.
    """
    from advtopo.models.checkpoint import _read, load_weights
    from advtopo.models.zoo import create_model

    arch_kwargs = dict(arch_kwargs or {})
    if (mean is None) != (std is None):
        raise AdvtopoError("give both mean and std (one value per input channel) or neither")
    factory = resolve_arch(arch, base_dir)
    accepted, var_kw = _accepted(factory)
    info: dict[str, Any] = {"arch": arch, "arch_kwargs": dict(arch_kwargs), "checkpoint": None, "sha256": None,
                            "mean": None, "std": None, "translation": None, "renamed": [], "stripped": [],
                            "normalization_source": None}
    unknown = sorted(k for k in arch_kwargs if k not in accepted) if not var_kw else []
    if unknown:
        raise AdvtopoError(f"arch {arch!r} does not accept {', '.join(map(repr, unknown))}; "
                           f"its arguments: {', '.join(sorted(accepted)) or 'none'}")
    registry = ":" not in arch
    if registry:
        explicit = {"num_classes": num_classes, "in_channels": in_channels, "input_size": input_size}
        for k, v in explicit.items():
            if v is not None and k in arch_kwargs and arch_kwargs[k] != v:
                raise AdvtopoError(f"arch_kwargs sets {k}={arch_kwargs[k]!r} but the data needs {k}={v!r}")
        base = {k: arch_kwargs.pop(k, v) for k, v in explicit.items()}
        kwargs = {"num_classes": base["num_classes"] or 10, "in_channels": base["in_channels"],
                  "input_size": base["input_size"], **arch_kwargs}
        model = _call_factory(arch, lambda: create_model(arch, **kwargs), kwargs, accepted)
    else:
        kwargs = dict(arch_kwargs)
        if num_classes is not None and "num_classes" not in kwargs and ("num_classes" in accepted):
            kwargs["num_classes"] = num_classes
        model = _call_factory(arch, lambda: factory(**kwargs), kwargs, accepted)
    if not isinstance(model, nn.Module):
        raise AdvtopoError(f"arch {arch!r} returned a {type(model).__name__}, not a torch.nn.Module")
    if checkpoint is not None:
        path = resolve_checkpoint(checkpoint, base_dir)
        tensors, _config, stripped = _read(path)
        report = load_weights(model, tensors, match=match, source=f"checkpoint {path}")
        info.update(checkpoint=str(checkpoint), sha256=_sha256(path), translation=report["translation"],
                    renamed=report["renamed"], stripped=stripped + report["stripped"])
        if report["normalization"] is not None and mean is None:
            mean, std = report["normalization"]["mean"], report["normalization"]["std"]
            info["normalization_source"] = f"checkpoint buffers {report['normalization']['keys']}"
    if mean is not None and std is not None:
        add_input_normalization(model, mean, std)
        info["mean"], info["std"] = [float(v) for v in mean], [float(v) for v in std]
        info["normalization_source"] = info["normalization_source"] or "given"
    model.eval()
    return model, info


def check_input_shape(model: nn.Module, input_shape: tuple[int, ...]) -> None:
    """One dummy forward: a shape that does not fit is a user error naming the shape."""
    param = next(model.parameters(), None)
    device = param.device if param is not None else "cpu"
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device))
    except (RuntimeError, ValueError) as exc:
        raise AdvtopoError(f"input shape {tuple(input_shape)} does not fit {type(model).__name__}: "
                           f"{str(exc).splitlines()[0]}") from None
    finally:
        model.train(was_training)
