"""Named layers of a model and their output shapes, for choosing what to capture."""
from __future__ import annotations

import torch
import torch.nn as nn

from advtopo.errors import AdvtopoError, did_you_mean


def layer_shapes(model: nn.Module, input_shape: tuple[int, ...]) -> list[tuple[str, str, tuple[int, ...]]]:
    """(name, module type, output shape without batch) for every named submodule, in call order."""
    out: list[tuple[str, str, tuple[int, ...]]] = []
    hooks = []
    for name, mod in model.named_modules():
        if not name:
            continue

        def hook(m, inp, outp, name=name):
            if isinstance(outp, torch.Tensor):
                out.append((name, type(m).__name__, tuple(outp.shape[1:])))

        hooks.append(mod.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            param = next(model.parameters(), None)
            device = param.device if param is not None else "cpu"
            model(torch.zeros((1, *input_shape), device=device))
    except RuntimeError as exc:
        raise AdvtopoError(f"input shape {tuple(input_shape)} does not fit {type(model).__name__}: "
                           f"{str(exc).splitlines()[0]}") from None
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return out


def check_layers(model: nn.Module, layers: list[str]) -> list[str]:
    """Raise an error listing valid names if any of ``layers`` is not a module of ``model``."""
    valid = [n for n, _ in model.named_modules() if n]
    for layer in layers:
        if layer not in valid:
            raise AdvtopoError(f"unknown layer {layer!r}{did_you_mean(layer, valid)}; valid layers: {', '.join(valid)}")
    return layers
