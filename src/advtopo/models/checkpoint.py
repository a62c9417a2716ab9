"""Checkpoints: advtopo's own (they carry their config) and foreign weight files, read with
``weights_only=True`` (no arbitrary pickle).

Foreign files load **strictly by name** (:func:`load_weights`): the usual wrappers
(``{"state_dict": ...}``, ``{"model_state_dict": ...}``, ``{"model": ...}``, ``{"net": ...}``,
nested once more), a ``module.`` (DataParallel) or ``_orig_mod.`` (``torch.compile``) prefix
and ``.safetensors`` files are handled by :func:`read_state_dict`; a few *known layouts* of
other code bases are translated by name (:data:`KNOWN_LAYOUTS`, e.g. advertorch's LeNet5
``linear1/linear2`` -> ``fc1/fc2``). Anything else that does not fit is an error naming the
first missing key, unexpected key or tensor whose shape differs. Matching by order and shape
(the old behaviour) is kept only as an explicit opt-in, ``match="order"``.
"""
from __future__ import annotations

import io
import json
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from advtopo.errors import AdvtopoError, check_choice
from advtopo.utils.io import atomic_write_bytes

FORMAT = "advtopo-checkpoint-v1"
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "state_dict_ema", "model_ema")
PREFIXES = ("module.", "_orig_mod.")
MATCH_MODES = ("name", "order")


def save_checkpoint(path: str | os.PathLike[str], model: nn.Module, config: dict[str, Any],
                    extra: dict[str, Any] | None = None) -> None:
    """Write ``{format, config (JSON text), state_dict, extra}`` atomically.

    ``config`` must hold at least ``arch``; store dataset, recipe, metrics, seed there too.
    The config is stored as JSON text so that ``weights_only=True`` can load it.
    """
    if "arch" not in config:
        raise ValueError("checkpoint config needs 'arch'")
    payload = {"format": FORMAT, "config": json.dumps(config, default=str),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    if extra:
        payload.update(extra)
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


def _torch_load(path: Path) -> Any:
    if path.stat().st_size == 0:
        raise AdvtopoError(f"checkpoint {path} is empty (0 bytes)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise AdvtopoError(f"checkpoint {path} cannot be loaded safely (torch.load weights_only=True: "
                           f"{_unpickler_reason(exc)}); it is not a checkpoint, or it holds pickled objects "
                           "other than tensors and plain containers") from None
    except Exception as exc:  # noqa: BLE001 -- any failure to parse the file: torch raises RuntimeError,
        # EOFError, IndexError, struct.error, OSError... on truncated or damaged files (no code runs:
        # weights_only=True)
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise AdvtopoError(f"checkpoint {path} is not a readable torch file (truncated or damaged?): "
                           f"{type(exc).__name__}: {first}") from None


def _unpickler_reason(exc: Exception) -> str:
    """The useful part of torch's weights_only message (what it refused), without its advice
    to load unsafely."""
    text = str(exc)
    _, found, rest = text.partition("WeightsUnpickler error:")
    if found:
        reason = " ".join(rest.split("Check the documentation")[0].split())
        if reason:
            return reason
    return text.splitlines()[0] if text else type(exc).__name__


def _tensor_dict(obj: Any) -> dict[str, torch.Tensor] | None:
    """``obj`` itself, one wrapper key deep, or two: the first dict holding tensors by name."""
    for _ in range(3):
        if not isinstance(obj, dict):
            return None
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:  # a state_dict never holds dicts: these are the weights
            return {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)} or None
        obj = inner
    return None


def strip_prefixes(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Drop a ``module.``/``_orig_mod.`` prefix that *every* key carries (DataParallel, torch.compile)."""
    stripped = []
    changed = True
    while changed and tensors:
        changed = False
        for p in PREFIXES:
            if all(k.startswith(p) for k in tensors):
                tensors = {k[len(p):]: v for k, v in tensors.items()}
                stripped.append(p)
                changed = True
    return tensors, stripped


def _read(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None, list[str]]:
    path = Path(path)
    if not path.exists():
        raise AdvtopoError(f"checkpoint {path} does not exist")
    if not path.is_file():
        raise AdvtopoError(f"checkpoint {path} is not a file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        if path.stat().st_size == 0:
            raise AdvtopoError(f"checkpoint {path} is empty (0 bytes)")
        try:
            tensors = load_file(str(path))
        except Exception as exc:
            raise AdvtopoError(f"checkpoint {path} is not a valid safetensors file ({exc})") from None
        tensors, stripped = strip_prefixes(tensors)
        return tensors, None, stripped
    obj = _torch_load(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        return _advtopo_parts(path, obj)
    tensors = _tensor_dict(obj)
    if not tensors:
        keys = list(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise AdvtopoError(f"checkpoint {path} holds no state_dict (a dict of tensors by name); found {keys}")
    tensors, stripped = strip_prefixes(tensors)
    return tensors, None, stripped


def _advtopo_parts(path: Path, obj: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any], list[str]]:
    """An advtopo checkpoint's tensors and config; a damaged one is an error naming what is wrong."""
    tensors, config_text = obj.get("state_dict"), obj.get("config")
    if not isinstance(tensors, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                for k, v in tensors.items()):
        raise AdvtopoError(f"checkpoint {path} is damaged: its state_dict is missing or not a dict of tensors by name")
    try:
        config = json.loads(config_text) if isinstance(config_text, str) else None
    except ValueError:
        config = None
    if not isinstance(config, dict):
        raise AdvtopoError(f"checkpoint {path} is damaged: its config is missing or not a JSON object")
    return dict(tensors), config, []


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file by name, unwrapped and with DataParallel/compile prefixes removed.

    Reads advtopo checkpoints, plain state_dicts, ``{"state_dict"|"model_state_dict"|"model"|"net": ...}``
    (nested up to twice) and ``.safetensors``; always ``torch.load(weights_only=True)``.
    """
    return _read(path)[0]


# --------------------------------------------------------------------------- known layouts
@dataclass(frozen=True)
class KnownLayout:
    """Another code base's names for one of our architectures: key-prefix renames (theirs -> ours)."""

    name: str
    applies: Callable[[nn.Module], bool]
    renames: tuple[tuple[str, str], ...]

    def translate(self, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for k, v in tensors.items():
            for theirs, ours in self.renames:
                if k.startswith(theirs):
                    k = ours + k[len(theirs):]
                    break
            out[k] = v
        return out


def _is(cls_name: str) -> Callable[[nn.Module], bool]:
    return lambda m: type(m).__name__ == cls_name and type(m).__module__ == "advtopo.models.zoo"


#: translations tried (by name, never by order) when a checkpoint's keys differ from the model's
KNOWN_LAYOUTS: list[KnownLayout] = [
    KnownLayout("advertorch LeNet5 (linear1, linear2)", _is("LeNet5"), (("linear1.", "fc1."), ("linear2.", "fc2."))),
    KnownLayout("TRADES SmallCNN (feature_extractor.*, classifier.*)", _is("SmallCNN"),
                (("feature_extractor.", ""), ("classifier.", ""))),
]

#: RobustBench wrappers register the input normalisation as persistent buffers with these names
NORMALIZATION_KEYS = (("mu", "sigma"), ("mean", "std"))


def _first_diff(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> str | None:
    missing = [k for k in ours if k not in theirs]
    unexpected = [k for k in theirs if k not in ours]
    parts = []
    if missing:
        parts.append(f"missing key {missing[0]!r}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    if unexpected:
        parts.append(f"unexpected key {unexpected[0]!r}"
                     + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""))
    if parts:
        return "; ".join(parts)
    for k, o in ours.items():
        if tuple(theirs[k].shape) != tuple(o.shape):
            return f"tensor {k!r} has shape {tuple(theirs[k].shape)} in the checkpoint but {tuple(o.shape)} in the model"
    return None


def load_weights(model: nn.Module, state_dict: dict[str, torch.Tensor], *, match: str = "name",
                 source: str = "checkpoint") -> dict[str, Any]:
    """Load ``state_dict`` into ``model`` strictly by name; return what was translated.

    ``match="name"`` (default): keys must be exactly the model's after removing DataParallel /
    compile prefixes, BatchNorm ``num_batches_tracked`` counters (some code bases drop them),
    a known layout's renames (:data:`KNOWN_LAYOUTS`) and RobustBench's normalisation buffers
    (``mu``/``sigma`` kept in ``report["normalization"]`` for the caller to apply). A mismatch is an
    error naming the first missing key, unexpected key or shape difference.
    ``match="order"``: the old behaviour, tensors paired by order and shape (explicit opt-in).

    Returns ``{"translation": name or None, "renamed": [(theirs, ours)], "stripped": [prefixes],
    "normalization": {"mean", "std"} or None}``.
    """
    check_choice("match", match, MATCH_MODES)
    report: dict[str, Any] = {"translation": None, "renamed": [], "stripped": [], "normalization": None}
    theirs, report["stripped"] = strip_prefixes(dict(state_dict))
    ours_all = model.state_dict()
    if match == "order":
        state, renames = match_state_dict(model, theirs)
        model.load_state_dict(state)
        report["renamed"] = renames
        report["translation"] = "order" if renames else None
        return report
    ours = {k: v for k, v in ours_all.items() if not k.endswith("num_batches_tracked")}
    counters = {k for k in ours_all if k.endswith("num_batches_tracked")}
    theirs = {k: v for k, v in theirs.items() if not (k.endswith("num_batches_tracked") and k not in counters)}
    for m_key, s_key in NORMALIZATION_KEYS:
        if m_key in theirs and s_key in theirs and m_key not in ours and s_key not in ours:
            report["normalization"] = {"mean": theirs.pop(m_key).flatten().tolist(),
                                       "std": theirs.pop(s_key).flatten().tolist(), "keys": [m_key, s_key]}
            break
    compare = {k: v for k, v in theirs.items() if not k.endswith("num_batches_tracked")}
    problem = _first_diff(ours, compare)
    if problem is not None:
        for layout in KNOWN_LAYOUTS:
            if not layout.applies(model):
                continue
            translated = layout.translate(theirs)
            if _first_diff(ours, {k: v for k, v in translated.items() if not k.endswith("num_batches_tracked")}) is None:
                report["translation"] = layout.name
                report["renamed"] = [(a, b) for a, b in zip(theirs, translated) if a != b]
                theirs, problem = translated, None
                break
    if problem is not None:
        raise AdvtopoError(
            f"{source} does not fit {type(model).__name__} by name: {problem} "
            f"(checkpoint: {len(compare)} tensors, model: {len(ours)}). Check the architecture and its "
            f"arch_kwargs; to pair tensors by order and shape instead, load with match='order'")
    state = {k: v.to(ours_all[k].dtype) if v.is_floating_point() else v for k, v in theirs.items()}
    for k in counters:
        state.setdefault(k, ours_all[k])
    model.load_state_dict(state, strict=True)
    return report


def match_state_dict(model: nn.Module, tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[tuple[str, str]]]:
    """Map foreign tensors onto ``model``'s names: by name where all names match, else by
    order and shape (the ``match="order"`` opt-in). Returns the state_dict and the (theirs -> ours) renames."""
    ours = model.state_dict()
    # ignore BatchNorm counters, which some codebases drop
    ours_keys = [k for k in ours if not k.endswith("num_batches_tracked")]
    theirs = {k.removeprefix("module.").removeprefix("_orig_mod."): v for k, v in tensors.items()
              if not k.endswith("num_batches_tracked")}
    if set(theirs) == set(ours_keys):
        pairs = [(k, k) for k in ours_keys]
    else:
        if len(theirs) != len(ours_keys):
            raise AdvtopoError(f"checkpoint has {len(theirs)} tensors, model {type(model).__name__} expects "
                               f"{len(ours_keys)}; first ours: {ours_keys[:3]}, first theirs: {list(theirs)[:3]}")
        pairs = list(zip(theirs.keys(), ours_keys))
    out: dict[str, torch.Tensor] = {}
    renames = []
    for t_name, o_name in pairs:
        t, o = theirs[t_name], ours[o_name]
        if tuple(t.shape) != tuple(o.shape):
            raise AdvtopoError(f"checkpoint tensor {t_name!r} has shape {tuple(t.shape)} but model tensor "
                               f"{o_name!r} expects {tuple(o.shape)} (first mismatch, matched by order)")
        out[o_name] = t.to(o.dtype)
        if t_name != o_name:
            renames.append((t_name, o_name))
    for k, v in ours.items():
        if k.endswith("num_batches_tracked") and k not in out:
            out[k] = v
    return out, renames


def load_checkpoint(path: str | os.PathLike[str], arch: str | None = None, verbose: bool = False,
                    match: str = "auto", **model_kwargs: Any) -> tuple[nn.Module, dict[str, Any]]:
    """Load a model. advtopo checkpoints know their architecture; foreign files need ``arch``.

    ``arch`` (or the checkpoint config's) may be any spec :func:`advtopo.models.build_model` takes;
    the config's ``arch_kwargs``, ``base_dir``, ``mean``/``std`` are honoured, so a model saved with
    input normalisation comes back with it. ``match``: ``"name"`` is strict (see :func:`load_weights`);
    ``"order"`` pairs tensors by order and shape; ``"auto"`` (this legacy API's default, kept for the
    ``--arch`` CLIs) tries by name first and falls back to order, saying so
    (``config['translation'] == 'order'``). :func:`advtopo.models.build_model`, the study's path, is
    strict by default. Returns
    ``(model in eval mode, config)``; ``config['renamed']`` lists the (theirs -> ours) renames and
    ``config['translation']`` the layout applied.
    """
    from advtopo.models.spec import add_input_normalization, build_model

    check_choice("match", match, (*MATCH_MODES, "auto"))
    zoo_config: dict[str, Any] = {}
    if isinstance(path, str) and path.startswith("zoo:"):  # a shipped checkpoint: advtopo zoo lists them
        from advtopo.models.pretrained import get_pretrained, resolve_pretrained

        entry = get_pretrained(path)
        zoo_config = {"arch": entry.arch, "zoo": entry.name, **entry.model_kwargs()}
        path = resolve_pretrained(path)
    path = Path(path)
    tensors, config, _stripped = _read(path)
    config = {**zoo_config, **dict(config or {})}
    arch = arch or config.get("arch")
    if not arch:
        raise AdvtopoError(f"checkpoint {path} is a plain state_dict; say which architecture it is (arch=/--arch)")
    kw = {k: config[k] for k in ("num_classes", "in_channels", "input_size") if k in config}
    kw.update(model_kwargs)
    arch_kwargs = config.get("arch_kwargs") or {}
    if not isinstance(arch_kwargs, dict):
        raise AdvtopoError(f"checkpoint {path} is damaged: its config's arch_kwargs is not a table")
    arch_kwargs = dict(arch_kwargs)
    arch_kwargs.update({k: v for k, v in kw.items() if k not in ("num_classes", "in_channels", "input_size")})
    model, _info = build_model(arch, arch_kwargs, base_dir=config.get("base_dir"), num_classes=kw.get("num_classes"),
                               in_channels=kw.get("in_channels"), input_size=kw.get("input_size"))
    fallback = None
    try:
        report = load_weights(model, tensors, match="name" if match == "auto" else match, source=f"checkpoint {path}")
    except AdvtopoError as exc:
        if match != "auto":
            raise
        fallback = str(exc).split(" by name: ")[-1].split(" (checkpoint:")[0]
        report = load_weights(model, tensors, match="order", source=f"checkpoint {path}")
    norm = report["normalization"]
    mean, std = config.get("mean"), config.get("std")
    if mean is None and norm is not None:
        mean, std = norm["mean"], norm["std"]
    if mean is not None and std is not None:
        add_input_normalization(model, mean, std)
    config.setdefault("arch", arch)
    config["source"] = str(path)
    config["renamed"] = report["renamed"]
    config["translation"] = report["translation"]
    if verbose and report["renamed"]:
        if report["translation"] == "order":
            why = f" because the names differ ({fallback}); pass match='name' to refuse instead" if fallback else ""
            print(f"matched {len(report['renamed'])} tensors by order and shape{why}:")
        else:
            print(f"renamed {len(report['renamed'])} tensors as {report['translation']}:")
        for a, b in report["renamed"]:
            print(f"  {a} -> {b}")
    model.eval()
    return model, config
