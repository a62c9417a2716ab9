"""Two small public layouts, written for the tests from the state_dict keys those code bases save.

- advertorch 0.2.3 ``LeNet5`` (``advertorch_examples/trained_models/mnist_lenet5_*.pt``): keys
  ``conv1, conv2, linear1, linear2``; 3x3 convs with padding 1, 2x2 max-pools, 200 hidden units.
- TRADES ``SmallCNN`` (``models/small_cnn.py``): ``feature_extractor.{conv1..conv4}`` and
  ``classifier.{fc1,fc2,fc3}`` inside OrderedDict Sequentials; the original shares one
  ``ReLU(True)`` object between all its activations (a reused, in-place module).
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn


class AdvertorchLeNet5(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.linear1 = nn.Linear(7 * 7 * 64, 200)
        self.linear2 = nn.Linear(200, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.linear1(x.view(x.size(0), -1)))
        return self.linear2(x)


class TradesSmallCNN(nn.Module):
    def __init__(self, drop: float = 0.5) -> None:
        super().__init__()
        activ = nn.ReLU(True)  # one object for every activation, as in the original
        self.feature_extractor = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(1, 32, 3)), ("relu1", activ), ("conv2", nn.Conv2d(32, 32, 3)), ("relu2", activ),
            ("maxpool1", nn.MaxPool2d(2, 2)),
            ("conv3", nn.Conv2d(32, 64, 3)), ("relu3", activ), ("conv4", nn.Conv2d(64, 64, 3)), ("relu4", activ),
            ("maxpool2", nn.MaxPool2d(2, 2)),
        ]))
        self.classifier = nn.Sequential(OrderedDict([
            ("fc1", nn.Linear(64 * 4 * 4, 200)), ("relu1", activ), ("drop", nn.Dropout(drop)),
            ("fc2", nn.Linear(200, 200)), ("relu2", activ), ("fc3", nn.Linear(200, 10)),
        ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.feature_extractor(x)
        return self.classifier(features.view(-1, 64 * 4 * 4))
