"""Small networks shared by the checkpoint tests: a netdsl CNN and its PyTorch / Keras twins."""
from __future__ import annotations


import numpy as np

import netdsl.functional as F
from netdsl.dsl import Network
from netdsl import layers as nn


class NdCNN(nn.Module):
    """conv/bn/relu/pool/conv/bn/relu/pool/flatten/linear/relu/linear (names match TorchCNN's state_dict)."""

    def __init__(self, eps: float = 1e-5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8, eps=eps)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16, eps=eps)
        self.fc1 = nn.Linear(16 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = F.max_pool(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool(F.relu(self.bn2(self.conv2(x))), 2)
        x = F.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


def nd_cnn(eps: float = 1e-5) -> Network:
    return NdCNN(eps).build({"x": ("N", 3, 16, 16)}, outputs=("y",), name="cnn")


try:
    import torch
    from torch import nn as tnn
except ImportError:  # the tests that need torch skip themselves
    torch = None

if torch is not None:
    class TorchCNN(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(3, 8, 3, padding=1)
            self.bn1 = tnn.BatchNorm2d(8)
            self.conv2 = tnn.Conv2d(8, 16, 3, padding=1)
            self.bn2 = tnn.BatchNorm2d(16)
            self.fc1 = tnn.Linear(16 * 4 * 4, 32)
            self.fc2 = tnn.Linear(32, 10)

        def forward(self, x):
            x = torch.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
            x = torch.max_pool2d(torch.relu(self.bn2(self.conv2(x))), 2)
            return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


def torch_cnn(seed: int = 0):
    torch.manual_seed(seed)
    m = TorchCNN()
    with torch.no_grad():  # non-trivial batch-norm statistics
        for bn in (m.bn1, m.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    return m.eval()


def run_reference(net: Network, x: np.ndarray) -> np.ndarray:
    from netdsl.backends import reference
    out = reference.run(net.graph, {"x": x}, dtype="float64")
    return np.asarray(list(out.values())[0])
