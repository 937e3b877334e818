"""A small conv net with fused_mish as its activation (seeded random weights).

    netdsl summary plugins/mish/example.py
    netdsl check plugins/mish/example.py --backends reference,openvino,onnx,tensorrt
"""
from __future__ import annotations

from pathlib import Path

import netdsl as nd
from netdsl import nn
from netdsl.plugins import load

mish = load(Path(__file__).parent)


class MishNet(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.fc = nn.Linear(32, classes)

    def forward(self, x: nd.Tensor) -> nd.Tensor:
        x = mish(self.conv1(x), name="mish1")
        x = mish(self.conv2(x), name="mish2")
        x = nd.mean(x, axis=(2, 3), name="pool")
        return self.fc(x)


def network(batch: int | str = "N", seed: int = 0) -> nd.Network:
    net = nd.Network("mish_convnet")
    image = net.input("image", (batch, 3, 32, 32))
    net.output(MishNet()(image), "logits")
    return net.init_random(seed)
