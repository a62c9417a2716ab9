"""Named layers of a model: output shapes and what capturing each one means.

Layers are named by their dotted module path (``layer3.1``, ``layer3.1.relu2``,
``block2.layer.3``), exactly as ``model.named_modules()`` gives them. One dummy forward
pass records, per module:

- ``reused``: the module ran more than once per forward (one ``ReLU`` object used twice).
  A hook on it would see several different tensors; advtopo refuses to capture it. Fix: give
  each use its own module (``self.relu1``, ``self.relu2``).
- ``inplace``: the module writes its output over its input (``ReLU(inplace=True)``); its
  output is still its own, correct value, but the *previous* module's output is destroyed.
- ``overwritten``: the module's output tensor was modified in place *after* it returned (by an
  in-place op such as ``ReLU(inplace=True)`` or ``out += shortcut``). Capture copies a layer's
  output inside the hook, so what advtopo stores is the value the module returned.
- ``container``: the module has children (a residual block, a Sequential). Its output is what
  its ``forward`` returns, e.g. the block's output *after* the residual addition.
- ``called``: False when the module never ran (e.g. an unused ``sub_block1``): nothing to capture.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from advtopo.errors import AdvtopoError, did_you_mean


@dataclass(frozen=True)
class LayerInfo:
    """One named module and what one forward pass showed about it."""

    name: str
    type: str
    output_shape: tuple[int, ...] | None
    n_params: int
    calls: int
    inplace: bool
    overwritten: bool
    container: bool

    @property
    def reused(self) -> bool:
        return self.calls > 1

    @property
    def called(self) -> bool:
        return self.calls > 0

    def flags(self) -> list[str]:
        out = []
        if self.container:
            out.append("block")
        if self.reused:
            out.append(f"REUSED x{self.calls}")
        if not self.called:
            out.append("not called")
        if self.inplace:
            out.append("in-place")
        if self.overwritten:
            out.append("overwritten later (captured before)")
        return out


def _first_tensor(out: object) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    return None


def list_layers(model: nn.Module, input_shape: tuple[int, ...]) -> list[LayerInfo]:
    """Every named submodule in call order (then the modules never called), from one forward pass.

    ``input_shape`` is one sample's shape (C, H, W). A shape that does not fit is a user error.
    """
    # every alias of a shared module (one ReLU object stored under two names) gets its own entry
    modules = [(n, m) for n, m in model.named_modules(remove_duplicate=False) if n]
    calls: dict[str, int] = {n: 0 for n, _ in modules}
    first: dict[str, tuple[torch.Tensor, int, tuple[int, ...]]] = {}
    order: list[str] = []
    hooks = []
    for name, mod in modules:
        def hook(m, inp, outp, name=name):
            calls[name] += 1
            t = _first_tensor(outp)
            if name not in first and t is not None:
                first[name] = (t, t._version, tuple(t.shape[1:]))
                order.append(name)

        hooks.append(mod.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            param = next(model.parameters(), None)
            device = param.device if param is not None else "cpu"
            model(torch.zeros((1, *input_shape), device=device))
    except (RuntimeError, ValueError) as exc:
        raise AdvtopoError(f"input shape {tuple(input_shape)} does not fit {type(model).__name__}: "
                           f"{str(exc).splitlines()[0]}") from None
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    by_name = dict(modules)
    out = []
    for name in order + [n for n, _ in modules if n not in first]:
        mod = by_name[name]
        shape = None
        overwritten = False
        if name in first:
            t, version, shape = first[name]
            overwritten = t._version != version
        out.append(LayerInfo(
            name=name, type=type(mod).__name__, output_shape=shape,
            n_params=sum(p.numel() for p in mod.parameters()), calls=calls[name],
            inplace=bool(getattr(mod, "inplace", False)), overwritten=overwritten,
            container=any(True for _ in mod.children())))
    return out


def layer_shapes(model: nn.Module, input_shape: tuple[int, ...]) -> list[tuple[str, str, tuple[int, ...]]]:
    """(name, module type, output shape without batch) for every called submodule, in call order."""
    return [(info.name, info.type, info.output_shape) for info in list_layers(model, input_shape)
            if info.output_shape is not None]


def check_layers(model: nn.Module, layers: list[str], input_shape: tuple[int, ...] | None = None) -> list[str]:
    """Check that ``layers`` can be captured from ``model``; return them.

    An unknown name is an error listing the valid ones (with did-you-mean). With ``input_shape``
    one dummy forward also refuses a module that runs more than once per forward (a hook would mix
    the calls) or never runs (nothing to capture), saying how to fix it.
    """
    valid = [n for n, _ in model.named_modules(remove_duplicate=False) if n]
    valid_set = set(valid)
    for layer in layers:
        if layer not in valid_set:
            raise AdvtopoError(f"unknown layer {layer!r}{did_you_mean(layer, valid)}; valid layers: {', '.join(valid)}")
    if input_shape is None:
        return list(layers)
    infos = {i.name: i for i in list_layers(model, input_shape)}
    for layer in layers:
        info = infos[layer]
        if info.reused:
            raise AdvtopoError(
                f"layer {layer!r} ({info.type}) runs {info.calls} times per forward pass (one module object used "
                f"at several places), so its captured output would mix those calls; give each use its own module "
                f"(e.g. self.relu1 = nn.ReLU(); self.relu2 = nn.ReLU()) or capture a neighbouring layer")
        if not info.called:
            raise AdvtopoError(f"layer {layer!r} ({info.type}) is never called in the forward pass, so there is "
                               f"nothing to capture; pick one of the layers that run (advtopo layers lists them)")
    return list(layers)


def format_layers(infos: list[LayerInfo]) -> str:
    """The ``advtopo layers`` table."""
    width = max([28] + [len(i.name) + 2 for i in infos])
    lines = [f"{'layer':{width}s} {'type':20s} {'output shape':18s} {'params':>10s}  notes"]
    for i in infos:
        shape = str(i.output_shape) if i.output_shape is not None else "-"
        lines.append(f"{i.name:{width}s} {i.type:20s} {shape:18s} {i.n_params:>10,d}  {', '.join(i.flags())}".rstrip())
    return "\n".join(lines)
