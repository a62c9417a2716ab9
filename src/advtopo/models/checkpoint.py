"""Checkpoints that carry their config, loaded with ``weights_only=True`` (no arbitrary pickle).

Foreign weights (a plain state_dict .pt/.pth or a .safetensors file from another codebase)
are accepted for the same architecture: tensors whose names differ are matched by order
and shape, and the mapping is reported.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from advtopo.errors import AdvtopoError
from advtopo.models.zoo import create_model
from advtopo.utils.io import atomic_write_bytes

FORMAT = "advtopo-checkpoint-v1"


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


def _read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None, dict[str, Any]]:
    if not path.exists():
        raise AdvtopoError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path)), None, {}
        except Exception as exc:
            raise AdvtopoError(f"checkpoint {path} is not a valid safetensors file ({exc})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise AdvtopoError(f"checkpoint {path} could not be loaded safely (weights_only=True): "
                           f"{str(exc).splitlines()[0]}") from None
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        return obj["state_dict"], json.loads(obj["config"]), obj
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model", "net"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors, None, {}
    raise AdvtopoError(f"checkpoint {path} holds no state_dict (a dict of tensors)")


def match_state_dict(model: nn.Module, tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[tuple[str, str]]]:
    """Map foreign tensors onto ``model``'s names: by name where all names match, else by
    order and shape. Returns the state_dict to load and the (theirs -> ours) renames."""
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
                    **model_kwargs: Any) -> tuple[nn.Module, dict[str, Any]]:
    """Load a model. advtopo checkpoints know their architecture; foreign files need ``arch``.

    Returns ``(model, config)``; for foreign files ``config['renamed']`` lists the mapping.
    """
    path = Path(path)
    tensors, config, _ = _read_tensors(path)
    config = dict(config or {})
    arch = arch or config.get("arch")
    if not arch:
        raise AdvtopoError(f"checkpoint {path} is a plain state_dict; say which architecture it is (arch=/--arch)")
    kw = {k: config[k] for k in ("num_classes", "in_channels", "input_size") if k in config}
    kw.update(model_kwargs)
    model = create_model(arch, **kw)
    state, renames = match_state_dict(model, tensors)
    model.load_state_dict(state)
    config.setdefault("arch", arch)
    config["source"] = str(path)
    config["renamed"] = renames
    if verbose and renames:
        print(f"matched {len(renames)} tensors by order and shape:")
        for a, b in renames:
            print(f"  {a} -> {b}")
    model.eval()
    return model, config
