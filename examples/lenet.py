"""LeNet as in TensorRT's sampleMNISTAPI, with weights bound from a checkpoint file.

    conv 20@5x5 -> maxpool 2/2 -> conv 50@5x5 -> maxpool 2/2 -> fc 500 -> relu -> fc 10 -> softmax

    netdsl summary examples/lenet.py
    netdsl run examples/lenet.py --backend reference
    netdsl check examples/lenet.py --backends reference,openvino

The checkpoint ``examples/weights/lenet.npz`` holds seeded (untrained) weights named like the
network's parameters; ``--weights`` binds another file (npz, HDF5, safetensors, PyTorch, .wts ...).
"""
from __future__ import annotations

import os

import netdsl as nd
from netdsl import nn

WEIGHTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights", "lenet.npz")


class LeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.pool2 = nn.MaxPool2d(2, 2)
        self.ip1 = nn.Linear(50 * 4 * 4, 500)
        self.relu = nn.ReLU()
        self.ip2 = nn.Linear(500, 10)

    def forward(self, x: nd.Tensor) -> nd.Tensor:
        x = self.pool1(self.conv1(x))
        x = self.pool2(self.conv2(x))
        x = self.relu(self.ip1(nd.flatten(x)))
        return nd.softmax(self.ip2(x), axis=1, name="prob")


def network(batch: int | str = 1, weights: str | None = WEIGHTS) -> nd.Network:
    net = nd.Network("lenet")
    data = net.input("data", (batch, 1, 28, 28))
    net.output(LeNet()(data), "prob")
    if weights and os.path.exists(weights):
        net.load_weights(weights)
    return net


def make_weights(path: str = WEIGHTS, seed: int = 0) -> None:
    """Write the demo checkpoint (seeded weights) that network() binds."""
    import numpy as np
    from netdsl.weights.random import random_array

    net = network(weights=None)
    arrays = {p.name: random_array(p, seed) for p in net.graph.params.values()}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez(path, **arrays)


if __name__ == "__main__":
    make_weights()
    print(f"wrote {WEIGHTS}")
