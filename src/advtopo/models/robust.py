"""Architectures whose ``state_dict`` keys are exactly those of the public robust-model zoos.

A checkpoint a user downloaded (RobustBench, TRADES, ``fast_adversarial``, DeepMind's
adversarial-robustness release) loads *strictly by name* into these: no order/shape guessing.
The forward passes compute the same function as the originals; the only liberties taken keep
keys and values unchanged:

- ReLUs are not in-place and every use has its own module (``relu1``, ``relu2``...), so that
  any layer can be captured without a later in-place op overwriting it;
- the final ``F.avg_pool2d(out, 8 or 4)`` is a :class:`GlobalAvgPool` module (``avgpool``, the
  same ``avg_pool2d`` over the whole map) followed by ``flatten``: bit-identical on 32x32 inputs,
  usable at other sizes, and capturable.

Layouts (the key names each one matches):

========================  =====================================================================
``wideresnet``            RobustBench ``WideResNet`` (= TRADES' ``wideresnet.py``): ``conv1``,
``wrn28_10``/``wrn34_10`` ``block1.layer.0.bn1``, ... ``block3``, ``bn1``, ``fc``; raw [0, 1] input
``dm_wideresnet``         RobustBench ``DMWideResNet`` (DeepMind): ``init_conv``,
``dm_wrn28_10``/``70_16`` ``layer.N.block.M.batchnorm_0`` ..., ``batchnorm``, ``logits``; CIFAR-10
                          mean/std built in (non-persistent buffers, as in the original)
``resnet18_rb``           ResNet-18 of kuangliu's pytorch-cifar, TRADES and RobustBench:
                          ``conv1``, ``bn1``, ``layer1.0.conv1`` ..., ``shortcut.0``, ``linear``
``preact_resnet18_rb``    PreAct ResNet-18 of RobustBench / ``fast_adversarial``: ``conv1``,
                          ``layer1.0.bn1`` ..., ``linear``; ``bn_before_fc=True`` adds the final
                          ``bn`` (``robust_overfitting``'s layout)
========================  =====================================================================

RobustBench models take [0, 1] inputs; codebases that normalise outside the model
(``fast_adversarial``, kuangliu) need ``mean``/``std`` given to :func:`advtopo.models.build_model`,
which applies them inside the model so attacks stay in pixel space.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from advtopo.errors import AdvtopoError
from advtopo.models.zoo import MODELS

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)


def _positive(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise AdvtopoError(f"{name} must be a positive integer, got {value!r}")
    return value


class GlobalAvgPool(nn.Module):
    """``F.avg_pool2d`` over the whole feature map (the originals' ``avg_pool2d(out, 8)`` on 32x32 inputs)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, tuple(x.shape[-2:]))


# --------------------------------------------------------------------------- WideResNet (RobustBench/TRADES)
class WRNBlock(nn.Module):
    """Pre-activation wide basic block; keys ``bn1, conv1, bn2, conv2[, convShortcut]``."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, 1, 1, bias=False)
        self.drop_rate = drop_rate
        self.equal_in_out = in_planes == out_planes
        self.convShortcut = None if self.equal_in_out else nn.Conv2d(in_planes, out_planes, 1, stride, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = self.relu1(self.bn1(x))
        # the original adds the shortcut to x itself when shapes agree, else to conv(relu(bn(x)))
        shortcut = x if self.convShortcut is None else self.convShortcut(act)
        out = self.relu2(self.bn2(self.conv1(act)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return shortcut + self.conv2(out)


class WRNGroup(nn.Module):
    """``NetworkBlock``: ``layer`` is a Sequential of blocks (keys ``blockN.layer.M...``)."""

    def __init__(self, n: int, in_planes: int, out_planes: int, stride: int, drop_rate: float) -> None:
        super().__init__()
        self.layer = nn.Sequential(*[WRNBlock(in_planes if i == 0 else out_planes, out_planes,
                                              stride if i == 0 else 1, drop_rate) for i in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    """RobustBench's / TRADES' WideResNet-depth-k with the same state_dict keys."""

    def __init__(self, depth: int = 28, widen_factor: int = 10, num_classes: int = 10, in_channels: int = 3,
                 sub_block1: bool = False, drop_rate: float = 0.0, bias_last: bool = True) -> None:
        super().__init__()
        _positive("depth", depth)
        _positive("widen_factor", widen_factor)
        if (depth - 4) % 6:
            raise AdvtopoError(f"WideResNet depth must be 6n+4 (16, 22, 28, 34, 40, 70...), got {depth}")
        n = (depth - 4) // 6
        ch = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(in_channels, ch[0], 3, 1, 1, bias=False)
        self.block1 = WRNGroup(n, ch[0], ch[1], 1, drop_rate)
        if sub_block1:  # present (and unused) in some TRADES-era checkpoints, e.g. Carmon et al. 2019
            self.sub_block1 = WRNGroup(n, ch[0], ch[1], 1, drop_rate)
        self.block2 = WRNGroup(n, ch[1], ch[2], 2, drop_rate)
        self.block3 = WRNGroup(n, ch[2], ch[3], 2, drop_rate)
        self.bn1 = nn.BatchNorm2d(ch[3])
        self.relu = nn.ReLU()
        self.avgpool = GlobalAvgPool()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(ch[3], num_classes, bias=bias_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = self.relu(self.bn1(out))
        return self.fc(self.flatten(self.avgpool(out)))


@MODELS.register("wideresnet", help="RobustBench/TRADES WideResNet (keys conv1, block1.layer.0.bn1, ..., bn1, fc); "
                                    "kwargs depth, widen_factor, sub_block1, bias_last; [0,1] input")
def wideresnet(num_classes: int = 10, in_channels: int = 3, input_size: int = 32, depth: int = 28,
               widen_factor: int = 10, sub_block1: bool = False, drop_rate: float = 0.0,
               bias_last: bool = True) -> nn.Module:
    """Generic RobustBench-layout WideResNet (``input_size`` is accepted for the registry's contract)."""
    return WideResNet(depth, widen_factor, num_classes, in_channels, sub_block1, drop_rate, bias_last)


@MODELS.register("wrn28_10", help="RobustBench/TRADES WideResNet-28-10 (36.5M params; conv1, block1.layer.0..., fc)")
def wrn28_10(num_classes: int = 10, in_channels: int = 3, input_size: int = 32, sub_block1: bool = False,
             bias_last: bool = True) -> nn.Module:
    """WideResNet-28-10 in RobustBench's layout (Carmon2019, Gowal2020 non-DM, ...)."""
    return WideResNet(28, 10, num_classes, in_channels, sub_block1, 0.0, bias_last)


@MODELS.register("wrn34_10", help="RobustBench/TRADES WideResNet-34-10 (46.2M params; TRADES, MART, AWP...)")
def wrn34_10(num_classes: int = 10, in_channels: int = 3, input_size: int = 32, sub_block1: bool = False,
             bias_last: bool = True) -> nn.Module:
    """WideResNet-34-10 in RobustBench's / TRADES' layout."""
    return WideResNet(34, 10, num_classes, in_channels, sub_block1, 0.0, bias_last)


# --------------------------------------------------------------------------- DMWideResNet (DeepMind / RobustBench)
class Swish(nn.Module):
    """x * sigmoid(x) (DeepMind's Swish; same values, autograd's own backward)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


_ACTIVATIONS = {"relu": nn.ReLU, "swish": Swish, "silu": nn.SiLU}


class DMBlock(nn.Module):
    """DeepMind's wide block with explicit 'SAME' padding; keys ``batchnorm_0, conv_0, batchnorm_1, conv_1[, shortcut]``."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, act: type[nn.Module]) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise AdvtopoError(f"DMWideResNet blocks support stride 1 or 2, got {stride}")
        self.batchnorm_0 = nn.BatchNorm2d(in_planes)
        self.relu_0 = act()
        self.conv_0 = nn.Conv2d(in_planes, out_planes, 3, stride, 0, bias=False)
        self.batchnorm_1 = nn.BatchNorm2d(out_planes)
        self.relu_1 = act()
        self.conv_1 = nn.Conv2d(out_planes, out_planes, 3, 1, 1, bias=False)
        self.has_shortcut = in_planes != out_planes
        self.shortcut = nn.Conv2d(in_planes, out_planes, 1, stride, 0, bias=False) if self.has_shortcut else None
        self._pad = (1, 1, 1, 1) if stride == 1 else (0, 1, 0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = self.relu_0(self.batchnorm_0(x))
        shortcut = self.shortcut(act) if self.shortcut is not None else x
        out = self.conv_0(F.pad(act, self._pad))
        out = self.conv_1(self.relu_1(self.batchnorm_1(out)))
        return shortcut + out


class DMBlockGroup(nn.Module):
    """``_BlockGroup``: keys ``block.M...``."""

    def __init__(self, n: int, in_planes: int, out_planes: int, stride: int, act: type[nn.Module]) -> None:
        super().__init__()
        self.block = nn.Sequential(*[DMBlock(in_planes if i == 0 else out_planes, out_planes,
                                             stride if i == 0 else 1, act) for i in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class DMWideResNet(nn.Module):
    """RobustBench's ``DMWideResNet`` with the same keys; mean/std are non-persistent buffers, as there."""

    def __init__(self, num_classes: int = 10, depth: int = 28, width: int = 10, activation: str = "relu",
                 mean: tuple[float, ...] | list[float] = CIFAR10_MEAN, std: tuple[float, ...] | list[float] = CIFAR10_STD,
                 padding: int = 0, in_channels: int = 3) -> None:
        super().__init__()
        _positive("depth", depth)
        _positive("width", width)
        if (depth - 4) % 6:
            raise AdvtopoError(f"DMWideResNet depth must be 6n+4 (28, 34, 70, 106...), got {depth}")
        if activation not in _ACTIVATIONS:
            raise AdvtopoError(f"DMWideResNet activation {activation!r} is not valid; allowed: {', '.join(_ACTIVATIONS)}")
        act = _ACTIVATIONS[activation]
        if len(mean) != in_channels or len(std) != in_channels:
            raise AdvtopoError(f"DMWideResNet mean/std need {in_channels} values (one per input channel), "
                               f"got {len(mean)} and {len(std)}")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(in_channels, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(in_channels, 1, 1), persistent=False)
        self.padding = padding
        n = (depth - 4) // 6
        ch = [16, 16 * width, 32 * width, 64 * width]
        self.init_conv = nn.Conv2d(in_channels, ch[0], 3, 1, 1, bias=False)
        self.layer = nn.Sequential(DMBlockGroup(n, ch[0], ch[1], 1, act), DMBlockGroup(n, ch[1], ch[2], 2, act),
                                   DMBlockGroup(n, ch[2], ch[3], 2, act))
        self.batchnorm = nn.BatchNorm2d(ch[3])
        self.relu = act()
        self.avgpool = GlobalAvgPool()
        self.flatten = nn.Flatten()
        self.logits = nn.Linear(ch[3], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding > 0:
            x = F.pad(x, (self.padding,) * 4)
        out = self.init_conv((x - self.mean) / self.std)
        out = self.relu(self.batchnorm(self.layer(out)))
        return self.logits(self.flatten(self.avgpool(out)))


@MODELS.register("dm_wideresnet", help="RobustBench DMWideResNet (DeepMind; init_conv, layer.N.block.M..., logits), "
                                       "CIFAR-10 mean/std inside; kwargs depth, width, activation, mean, std")
def dm_wideresnet(num_classes: int = 10, in_channels: int = 3, input_size: int = 32, depth: int = 28, width: int = 10,
                  activation: str = "relu", mean: list[float] | None = None, std: list[float] | None = None,
                  padding: int = 0) -> nn.Module:
    """DeepMind-layout WideResNet; ``mean``/``std`` default to CIFAR-10's, as in RobustBench."""
    return DMWideResNet(num_classes, depth, width, activation, tuple(mean or CIFAR10_MEAN), tuple(std or CIFAR10_STD),
                        padding, in_channels)


@MODELS.register("dm_wrn28_10", help="RobustBench DMWideResNet-28-10 (Gowal2020/Rebuffi2021-style keys), "
                                     "CIFAR-10 mean/std inside")
def dm_wrn28_10(num_classes: int = 10, in_channels: int = 3, input_size: int = 32, activation: str = "relu",
                mean: list[float] | None = None, std: list[float] | None = None) -> nn.Module:
    """DMWideResNet-28-10 (``activation='swish'`` for the Swish variants)."""
    return dm_wideresnet(num_classes, in_channels, input_size, 28, 10, activation, mean, std)


@MODELS.register("dm_wrn70_16", help="RobustBench DMWideResNet-70-16 (267M params), CIFAR-10 mean/std inside")
def dm_wrn70_16(num_classes: int = 10, in_channels: int = 3, input_size: int = 32, activation: str = "relu",
                mean: list[float] | None = None, std: list[float] | None = None) -> nn.Module:
    """DMWideResNet-70-16 (the strongest RobustBench CIFAR entries use this shape)."""
    return dm_wideresnet(num_classes, in_channels, input_size, 70, 16, activation, mean, std)


# --------------------------------------------------------------------------- ResNet-18 / PreAct ResNet-18 (kuangliu layout)
class KLBasicBlock(nn.Module):
    """kuangliu/TRADES BasicBlock: keys ``conv1, bn1, conv2, bn2, shortcut.0, shortcut.1``."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class KLPreActBlock(nn.Module):
    """Pre-activation block: keys ``bn1, conv1, bn2, conv2[, shortcut.0]`` (shortcut from ``x``)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(x))
        # RobustBench's/kuangliu's PreActBlock takes the shortcut from x (out_shortcut=False)
        shortcut = self.shortcut(x) if hasattr(self, "shortcut") else x
        out = self.conv2(self.relu2(self.bn2(self.conv1(out))))
        return out + shortcut


class KLResNet(nn.Module):
    """CIFAR ResNet in kuangliu's layout (``conv1``, ``layer1..4``, ``linear``); no normalisation inside."""

    def __init__(self, block: type[nn.Module], num_blocks: list[int], num_classes: int = 10, in_channels: int = 3,
                 preact: bool = False, bn_before_fc: bool = False) -> None:
        super().__init__()
        self.preact = preact
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        if not preact:
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU()
        in_planes = 64
        for i, (planes, stride) in enumerate(zip((64, 128, 256, 512), (1, 2, 2, 2))):
            blocks = []
            for s in [stride] + [1] * (num_blocks[i] - 1):
                blocks.append(block(in_planes, planes, s))
                in_planes = planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.bn_before_fc = bn_before_fc
        if bn_before_fc:
            self.bn = nn.BatchNorm2d(512)
            self.relu_final = nn.ReLU()
        self.avgpool = GlobalAvgPool()
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        if not self.preact:
            out = self.relu(self.bn1(out))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        if self.bn_before_fc:
            out = self.relu_final(self.bn(out))
        return self.linear(self.flatten(self.avgpool(out)))


@MODELS.register("resnet18_rb", help="ResNet-18 in kuangliu/TRADES/RobustBench layout (conv1, bn1, layer1.0.conv1, "
                                     "..., shortcut.0, linear); no normalisation inside")
def resnet18_rb(num_classes: int = 10, in_channels: int = 3, input_size: int = 32) -> nn.Module:
    """The CIFAR ResNet-18 most robust-training code bases save (``linear`` head)."""
    return KLResNet(KLBasicBlock, [2, 2, 2, 2], num_classes, in_channels)


@MODELS.register("preact_resnet18_rb", help="PreAct ResNet-18 in RobustBench/fast_adversarial layout (conv1, "
                                            "layer1.0.bn1, ..., linear); bn_before_fc=true adds 'bn' "
                                            "(robust_overfitting); no normalisation inside")
def preact_resnet18_rb(num_classes: int = 10, in_channels: int = 3, input_size: int = 32,
                       bn_before_fc: bool = False) -> nn.Module:
    """PreAct ResNet-18 as RobustBench's ``PreActResNet18`` (Wong2020Fast) or, with ``bn_before_fc``, Rice2020's."""
    return KLResNet(KLPreActBlock, [2, 2, 2, 2], num_classes, in_channels, preact=True, bn_before_fc=bn_before_fc)


#: input shape each registry model is meant for (C, H, W), for ``advtopo layers`` defaults
INPUT_SHAPES: dict[str, tuple[int, int, int]] = {
    name: (3, 32, 32) for name in ("wideresnet", "wrn28_10", "wrn34_10", "dm_wideresnet", "dm_wrn28_10",
                                   "dm_wrn70_16", "resnet18_rb", "preact_resnet18_rb", "resnet18", "preact_resnet18")
}
