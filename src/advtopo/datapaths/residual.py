"""Datapaths through residual blocks: a block's output is ``act(R(x) + S(x))`` where ``R`` is the
residual branch and ``S`` the skip connection (``x`` itself, or a 1x1 conv (+ batch norm)).

Gating a block (``layers = ["layer1.0", "layer1.1", ...]``) puts one gate per output channel
of the block; this module finds a block's two parts and measures, per input and output
channel, the **skip share** ``sum|S_j| / (sum|S_j| + sum|R_j|)`` (sums over the spatial
positions): 1 = the channel only passes its input on, 0 = only the residual branch writes it.

A block is recognised when it has a child named ``shortcut`` / ``convShortcut`` (possibly
empty: identity) or none, and the last ``Conv2d`` / ``BatchNorm2d`` it calls outside that child
ends the residual branch; every measurement checks that ``R + S`` (or ``relu(R + S)``) is the
block's output and refuses the block otherwise, so an unknown block layout is an error, not a
wrong number. Works for advtopo's resnet18, preact_resnet18 and the RobustBench WideResNets.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from advtopo.errors import AdvtopoError

SHORTCUT_NAMES = ("shortcut", "convShortcut")


@dataclass
class BlockParts:
    """``residual_end``: the module (name inside the block) whose output ends the residual branch;
    ``shortcut``: the skip module's name, or None when the skip is the block's input itself."""

    residual_end: str
    shortcut: str | None


def block_parts(block: nn.Module, example: torch.Tensor) -> BlockParts:
    """The residual branch's last module and the shortcut of ``block`` (one forward on ``example``)."""
    named = dict(block.named_modules())
    sc = next((n for n in SHORTCUT_NAMES if n in named and named[n] is not None), None)
    has_sc_params = sc is not None and any(True for _ in named[sc].parameters())
    order: list[str] = []
    hooks = [m.register_forward_hook(lambda _m, _i, _o, n=n: order.append(n))
             for n, m in named.items() if n and isinstance(m, (nn.Conv2d, nn.BatchNorm2d))
             and not (sc and (n == sc or n.startswith(sc + ".")))]
    try:
        with torch.no_grad():
            block(example)
    finally:
        for h in hooks:
            h.remove()
    if not order:
        raise AdvtopoError("the block calls no Conv2d / BatchNorm2d outside its shortcut: not a residual block")
    return BlockParts(order[-1], sc if has_sc_params else None)


def _is_block(module: nn.Module) -> bool:
    names = {n for n, _ in module.named_children()}
    return bool(names & set(SHORTCUT_NAMES)) or ("conv1" in names and "conv2" in names) or \
        ("conv_0" in names and "conv_1" in names)


def skip_share(model: nn.Module, blocks: Sequence[str], x: torch.Tensor, batch_size: int = 128) -> dict[str, np.ndarray]:
    """Per block, ``(N, C)``: each output channel's skip share for each input (see module doc)."""
    named = dict(model.named_modules())
    for b in blocks:
        if b not in named or not _is_block(named[b]):
            raise AdvtopoError(f"{b!r} is not a residual block of this model (a module with a shortcut, "
                               "or conv1 and conv2)")
    p = next(model.parameters(), None)
    dev = p.device if p is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    parts: dict[str, BlockParts] = {}
    got: dict[str, dict[str, torch.Tensor]] = {b: {} for b in blocks}
    out: dict[str, list[np.ndarray]] = {b: [] for b in blocks}
    hooks = []
    try:
        for b in blocks:
            blk = named[b]
            hooks.append(blk.register_forward_hook(
                lambda _m, inp, o, b=b: got[b].update(x=inp[0].detach(), out=o.detach())))
        with torch.no_grad():
            model(x[:1].to(dev))  # find each block's parts on its real input
            for b in blocks:
                parts[b] = block_parts(named[b], got[b]["x"])
        for h in hooks:
            h.remove()
        hooks = []
        for b in blocks:
            blk = named[b]
            pb = parts[b]
            mods = dict(blk.named_modules())
            hooks.append(blk.register_forward_hook(
                lambda _m, inp, o, b=b: got[b].update(x=inp[0].detach(), out=o.detach())))
            hooks.append(mods[pb.residual_end].register_forward_hook(
                lambda _m, _i, o, b=b: got[b].update(r=o.detach())))
            if pb.shortcut is not None:
                hooks.append(mods[pb.shortcut].register_forward_hook(
                    lambda _m, _i, o, b=b: got[b].update(s=o.detach())))
        with torch.no_grad():
            for s0 in range(0, len(x), batch_size):
                for b in blocks:
                    got[b].clear()
                model(x[s0:s0 + batch_size].to(dev))
                for b in blocks:
                    g = got[b]
                    r, s = g["r"], g.get("s", g["x"])
                    total = r + s
                    if r.shape != g["out"].shape or s.shape != r.shape or not (
                            torch.allclose(total, g["out"], atol=1e-4, rtol=1e-4)
                            or torch.allclose(torch.relu(total), g["out"], atol=1e-4, rtol=1e-4)):
                        raise AdvtopoError(f"block {b!r}: its output is not (relu of) the residual branch "
                                           f"ending at {parts[b].residual_end!r} plus the skip; layout not supported")
                    rs = r.abs().flatten(2).sum(2)
                    ss = s.abs().flatten(2).sum(2)
                    den = rs + ss
                    out[b].append(torch.where(den > 0, ss / torch.where(den > 0, den, 1.0), 0.5).float().cpu().numpy())
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return {b: np.concatenate(v) for b, v in out.items()}


def critical_skip_share(share: np.ndarray, critical: np.ndarray) -> np.ndarray:
    """Per input, the mean skip share of its critical channels (NaN when it has none)."""
    s, c = np.asarray(share, np.float64), np.asarray(critical, bool)
    if s.shape != c.shape:
        raise AdvtopoError(f"share {s.shape} and critical {c.shape} differ in shape")
    n = c.sum(1)
    return np.where(n > 0, (s * c).sum(1) / np.maximum(n, 1), np.nan)
