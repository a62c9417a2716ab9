"""Model definitions. Inputs are in [0, 1]; any normalisation lives inside the model.

Layer names are stable (``conv1``, ``fc1``, ...) because configs refer to them for
activation capture.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from advtopo.registry import Registry

MODELS: Registry = Registry("model")


class Normalize(nn.Module):
    """Per-channel (x - mean) / std inside the model, so attacks work in [0, 1] pixel space."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


@MODELS.register("lenet5", help="MNIST CNN of the robustness literature: 2 conv(3x3)+pool, fc 200, fc 10")
class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        side = input_size // 4
        self.fc1 = nn.Linear(64 * side * side, 200)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(200, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = self.relu3(self.fc1(self.flatten(x)))
        return self.fc2(x)


@MODELS.register("cff", help="Gebhart et al.'s tiny net: conv 5x(5x5) -> fc 50 -> fc 10, ReLU, no bias")
class CFF(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 5, 5, bias=False)
        self.relu1 = nn.ReLU()
        self.flatten = nn.Flatten()
        side = input_size - 4
        self.fc1 = nn.Linear(5 * side * side, 50, bias=False)
        self.relu2 = nn.ReLU()
        self.fc2 = nn.Linear(50, num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(self.relu1(self.conv1(x)))
        return self.fc2(self.relu2(self.fc1(x)))


@MODELS.register("smallcnn", help="4 conv + 2 fc CNN (TRADES' SmallCNN) for MNIST-sized inputs")
class SmallCNN(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 28) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 3)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(32, 32, 3)
        self.relu2 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(32, 64, 3)
        self.relu3 = nn.ReLU()
        self.conv4 = nn.Conv2d(64, 64, 3)
        self.relu4 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        side = ((input_size - 4) // 2 - 4) // 2
        self.fc1 = nn.Linear(64 * side * side, 200)
        self.relu5 = nn.ReLU()
        self.fc2 = nn.Linear(200, 200)
        self.relu6 = nn.ReLU()
        self.fc3 = nn.Linear(200, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu2(self.conv2(self.relu1(self.conv1(x)))))
        x = self.pool2(self.relu4(self.conv4(self.relu3(self.conv3(x)))))
        x = self.relu6(self.fc2(self.relu5(self.fc1(self.flatten(x)))))
        return self.fc3(x)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class PreActBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


CIFAR_MEAN = [0.4914, 0.4822, 0.4465]
CIFAR_STD = [0.2471, 0.2435, 0.2616]


class _ResNet(nn.Module):
    """CIFAR ResNet-18 (3x3 stem, no max-pool); layer names layer1..layer4, avgpool, fc."""

    def __init__(self, block, preact: bool, num_classes: int = 10, in_channels: int = 3,
                 input_size: int = 32, normalize: bool = True) -> None:
        super().__init__()
        if normalize and in_channels == 3:
            self.normalize = Normalize(CIFAR_MEAN, CIFAR_STD)
        else:
            self.normalize = nn.Identity()
        self.preact = preact
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.Identity() if preact else nn.BatchNorm2d(64)
        self.relu = nn.Identity() if preact else nn.ReLU()
        in_planes = 64
        layers = []
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks = []
            for s in (stride, 1):
                blocks.append(block(in_planes, planes, s))
                in_planes = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.bn_final = nn.BatchNorm2d(512) if preact else nn.Identity()
        self.relu_final = nn.ReLU() if preact else nn.Identity()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(self.normalize(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.relu_final(self.bn_final(x))
        return self.fc(self.flatten(self.avgpool(x)))


@MODELS.register("resnet18", help="CIFAR ResNet-18 (3x3 stem), normalisation inside")
def resnet18(num_classes: int = 10, in_channels: int = 3, input_size: int = 32) -> nn.Module:
    return _ResNet(BasicBlock, False, num_classes, in_channels, input_size)


@MODELS.register("preact_resnet18", help="Pre-activation ResNet-18 (CIFAR), normalisation inside")
def preact_resnet18(num_classes: int = 10, in_channels: int = 3, input_size: int = 32) -> nn.Module:
    return _ResNet(PreActBlock, True, num_classes, in_channels, input_size)


def create_model(name: str, num_classes: int = 10, in_channels: int | None = None,
                 input_size: int | None = None, **arch_kwargs: Any) -> nn.Module:
    """Build model ``name`` from the registry (see ``advtopo layers --help``).

    ``in_channels``/``input_size`` default to the model's own (1x28 for MNIST nets, 3x32 for resnets);
    ``arch_kwargs`` go to the factory (e.g. ``depth``/``widen_factor`` of ``wideresnet``).
    """
    import inspect

    from advtopo.errors import AdvtopoError

    factory = MODELS.get(name)
    if arch_kwargs:
        params = inspect.signature(factory).parameters
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            bad = sorted(set(arch_kwargs) - set(params))
            if bad:
                raise AdvtopoError(f"model {name!r} does not accept {', '.join(map(repr, bad))}; "
                                   f"its arguments: {', '.join(p for p in params if p != 'self')}")
    kwargs: dict[str, Any] = {"num_classes": num_classes}
    if in_channels is not None:
        kwargs["in_channels"] = in_channels
    if input_size is not None:
        kwargs["input_size"] = input_size
    for param, value in kwargs.items():
        if not isinstance(value, int) or value < 1:
            raise AdvtopoError(f"{param} must be a positive integer, got {value!r}")
    if name == "lenet5" and input_size is not None and input_size % 4:
        raise AdvtopoError(f"lenet5 needs input_size divisible by 4 (two 2x2 pools), got {input_size}")
    if name == "smallcnn" and input_size is not None and input_size < 16:
        raise AdvtopoError(f"smallcnn needs input_size >= 16, got {input_size}")
    if name == "cff" and input_size is not None and input_size < 5:
        raise AdvtopoError(f"cff needs input_size >= 5 (5x5 conv), got {input_size}")
    try:
        return MODELS.create(name, **kwargs, **arch_kwargs)
    except (TypeError, AssertionError) as exc:
        raise AdvtopoError(f"model {name!r} cannot be built with {kwargs | arch_kwargs}: {exc}") from None
