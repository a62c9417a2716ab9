"""Network-level flow along a datapath: how strongly the critical neurons of consecutive
gated layers are wired together.

Two consecutive gated layers ``l -> l+1`` are *directly connected* when, in the order the
forward pass calls the model's modules, exactly one ``Conv2d`` (groups = 1) or ``Linear``
lies between them and everything else in between only acts channel by channel (ReLU and
other activations, pooling, flatten, batch norm, dropout, identity). The strength between
neuron ``i`` of ``l`` and neuron ``j`` of ``l+1`` is then ``|W[j, i]|`` summed over the
kernel (conv) or over the spatial positions that ``nn.Flatten`` maps channel ``i`` to
(linear after a conv layer).

Residual blocks: when ``l+1`` is a residual block (advtopo.datapaths.residual) fed directly
by ``l`` (both gated at their outputs), the strength is the block's two branch convs chained,
``|W2| @ |W1|`` (each summed over its kernel), plus the skip: the identity, or ``|W_s|`` of its
1x1 shortcut conv (``skip`` says which). Other pairs joined by more than one weight module or
by functional calls the hooks cannot see are *not supported*: they get no edges and a
``reason``. (Only modules are traced; ``F.relu`` inside ``forward`` is invisible, which is
harmless for channel-wise ops.)
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from advtopo.activations import as_layer_specs, resolve_modules
from advtopo.datapaths.extract import Datapaths
from advtopo.datapaths.residual import _is_block
from advtopo.errors import AdvtopoError

CHANNELWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.MaxPool1d,
               nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten,
               nn.Identity, nn.Dropout, nn.Dropout2d, nn.BatchNorm1d, nn.BatchNorm2d)


@dataclass
class Connection:
    """``strength[j, i]``: wiring from neuron i of ``source`` to neuron j of ``target`` (None if unsupported)."""

    source: str
    target: str
    via: str | None
    strength: np.ndarray | None
    reason: str | None = None
    skip: str | None = None  # residual block pairs: "identity" or "conv" (the shortcut's kind)

    def to_dict(self) -> dict[str, Any]:
        d = {"source": self.source, "target": self.target, "via": self.via,
             "supported": self.strength is not None, "reason": self.reason}
        if self.skip is not None:
            d["skip"] = self.skip
        return d


def layer_connections(model: nn.Module, layers: Sequence[str], input_shape: Sequence[int]) -> list[Connection]:
    """The connection of each consecutive pair of ``layers`` (one dummy forward pass on zeros)."""
    layers = list(layers)
    mods = resolve_modules(model, as_layer_specs(layers))
    named = dict(model.named_modules())
    leaves = {n for n, m in named.items() if n and not any(True for _ in m.children())}
    events: list[str] = []
    widths: dict[str, int] = {}
    hooks = []
    for n, m in named.items():
        if not n:
            continue

        def hook(_m, _i, out, n=n):
            events.append(n)
            if n in mods and n not in widths and isinstance(out, torch.Tensor) and out.dim() >= 2:
                widths[n] = int(out.shape[1])

        hooks.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters(), None)
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=p.device if p is not None else "cpu"))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    out = []
    for src, dst in zip(layers, layers[1:]):
        out.append(_connect(named, leaves, events, widths, src, dst))
    return out


def _connect(named, leaves, events, widths, src, dst) -> Connection:
    if src not in events or dst not in events:
        return Connection(src, dst, None, None, "a layer is not called in the forward pass")
    i0, i1 = events.index(src), events.index(dst)
    if i1 <= i0:
        return Connection(src, dst, None, None, f"{dst!r} runs before {src!r}")
    between = [n for n in events[i0 + 1:i1 + 1] if n in leaves]
    if _is_block(named[dst]) and between and all(n.startswith(dst + ".") for n in between):
        return _connect_block(named, between, widths, src, dst)
    weights = [n for n in between if isinstance(named[n], (nn.Conv2d, nn.Linear))]
    others = [n for n in between if n not in weights and not isinstance(named[n], CHANNELWISE)]
    if len(weights) != 1 or others:
        why = (f"{len(weights)} weight modules between them" if len(weights) != 1
               else f"module(s) {', '.join(others)} between them mix channels")
        return Connection(src, dst, None, None, f"not directly connected ({why}); only pairs joined by one "
                                                "Conv2d/Linear are supported")
    via = weights[0]
    mod = named[via]
    w = mod.weight.detach().abs().float().cpu()
    c_in, c_out = widths[src], widths[dst]
    if isinstance(mod, nn.Conv2d):
        if mod.groups != 1 or mod.in_channels != c_in:
            return Connection(src, dst, via, None, f"{via} (groups={mod.groups}, in_channels={mod.in_channels}) "
                                                   f"does not read the {c_in} channels of {src!r} one to one")
        s = w.sum(dim=(2, 3))
    else:
        if mod.in_features % c_in:
            return Connection(src, dst, via, None, f"{via}.in_features={mod.in_features} is not a multiple of "
                                                   f"the {c_in} channels of {src!r}")
        s = w.view(mod.out_features, c_in, mod.in_features // c_in).sum(2)
    if s.shape[0] != c_out:
        return Connection(src, dst, via, None, f"{via} has {s.shape[0]} outputs but {dst!r} has {c_out} channels")
    return Connection(src, dst, via, s.numpy().astype(np.float32))


def _connect_block(named, between, widths, src, dst) -> Connection:
    """``src`` feeds residual block ``dst`` directly: strength = the residual branch's two convs
    chained (``|W2| @ |W1|``, each summed over its kernel; batch norm and activations in between
    act channel by channel and are left out) plus the skip (identity, or ``|W_s|`` of a 1x1 conv)."""
    from advtopo.datapaths.residual import SHORTCUT_NAMES

    sc_prefixes = tuple(f"{dst}.{n}" for n in SHORTCUT_NAMES)
    convs = [n for n in between if isinstance(named[n], nn.Conv2d)]
    branch = [n for n in convs if not n.startswith(sc_prefixes)]
    skip = [n for n in convs if n.startswith(sc_prefixes)]
    others = [n for n in between if not isinstance(named[n], (nn.Conv2d, *CHANNELWISE))
              and not (n.startswith(sc_prefixes) and isinstance(named[n], nn.Sequential))]  # an empty shortcut
    c_in, c_out = widths[src], widths[dst]
    if len(branch) != 2 or len(skip) > 1 or others or any(named[n].groups != 1 for n in convs):
        return Connection(src, dst, dst, None, f"residual block {dst!r}: only blocks of two Conv2d (groups 1) "
                                                "and an identity or one-conv shortcut are supported")
    w1 = named[branch[0]].weight.detach().abs().float().cpu().sum(dim=(2, 3))  # (mid, c_in)
    w2 = named[branch[1]].weight.detach().abs().float().cpu().sum(dim=(2, 3))  # (c_out, mid)
    if w1.shape[1] != c_in or w2.shape != (c_out, w1.shape[0]):
        return Connection(src, dst, dst, None, f"residual block {dst!r}: its convs do not map the {c_in} channels "
                                                f"of {src!r} to its {c_out}")
    strength = w2 @ w1
    if skip:
        ws = named[skip[0]].weight.detach().abs().float().cpu().sum(dim=(2, 3))
        if ws.shape != (c_out, c_in):
            return Connection(src, dst, dst, None, f"residual block {dst!r}: shortcut {skip[0]} is {tuple(ws.shape)}")
        strength = strength + ws
    elif c_in == c_out:
        strength = strength + torch.eye(c_out)
    else:
        return Connection(src, dst, dst, None, f"residual block {dst!r}: identity skip but {c_in} -> {c_out} channels")
    return Connection(src, dst, dst, strength.numpy().astype(np.float32), skip="conv" if skip else "identity")


def flow_edges(connections: Sequence[Connection], datapaths: Datapaths, index: int,
               top_k: int = 10) -> list[dict[str, Any]]:
    """Input ``index``'s strongest ``top_k`` edges between critical neurons, per layer pair.

    Returns ``[{"source": l, "target": l+1, "edges": [[i, j, strength], ...]}]`` (strongest
    first; ``edges`` is None for unsupported pairs).
    """
    if top_k < 1:
        raise AdvtopoError(f"top_k={top_k} must be >= 1")
    crit = datapaths.critical
    res = []
    for c in connections:
        if c.strength is None:
            res.append({"source": c.source, "target": c.target, "edges": None})
            continue
        src = np.flatnonzero(crit[c.source][index])
        dst = np.flatnonzero(crit[c.target][index])
        sub = c.strength[np.ix_(dst, src)]  # (|dst|, |src|)
        flat = sub.ravel()
        k = min(top_k, flat.size)
        order = np.argsort(-flat, kind="stable")[:k]
        edges = [[int(src[o % len(src)]), int(dst[o // len(src)]), round(float(flat[o]), 6)] for o in order]
        res.append({"source": c.source, "target": c.target, "edges": edges})
    return res
