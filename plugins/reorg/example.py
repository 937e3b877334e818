"""YOLOv2's passthrough layer: a fine 2x-resolution feature map folded by ``reorg`` (darknet order)
and concatenated with the coarse one, as darknet's ``[reorg] stride=2`` + ``[route]`` do; then a
YOLOv5-style Focus stem on the same image. Seeded random weights.

    netdsl summary plugins/reorg/example.py
    netdsl check plugins/reorg/example.py --backends reference,openvino,onnx,tensorrt
"""
from __future__ import annotations

from pathlib import Path

import netdsl as nd
from netdsl import nn
from netdsl.plugins import load

reorg = load(Path(__file__).parent)


class Passthrough(nn.Module):
    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.focus = nn.Conv2d(12, 8, 3, padding=1)
        self.head = nn.Conv2d(64 + 32 + 8, classes, 1)

    def forward(self, x: nd.Tensor) -> nd.Tensor:
        fine = nd.max_pool2d(nd.leaky_relu(self.conv1(x), 0.1), 2, 2)            # (N, 16, H/2, W/2)
        coarse = nd.max_pool2d(nd.leaky_relu(self.conv2(fine), 0.1), 2, 2)       # (N, 32, H/4, W/4)
        folded = reorg(fine, block=2, mode="darknet", name="reorg")              # (N, 64, H/4, W/4)
        stem = reorg(x, block=2, mode="focus", name="focus")                     # (N, 12, H/2, W/2)
        stem = nd.max_pool2d(nd.leaky_relu(self.focus(stem), 0.1), 2, 2)         # (N, 8, H/4, W/4)
        return self.head(nd.concat([folded, coarse, stem], axis=1, name="route"))


def network(batch: int | str = "N", size: int = 32, seed: int = 0) -> nd.Network:
    net = nd.Network("reorg_passthrough")
    image = net.input("image", (batch, 3, size, size))
    net.output(Passthrough()(image), "logits")
    return net.init_random(seed)
