"""AlexNet as in the original paper / Caffe's bvlc_alexnet (grouped conv2/4/5, LRN after conv1/conv2).

Caffe layer names as parameter prefixes (conv1.weight ... fc8.bias), so a converted
bvlc_alexnet.caffemodel binds by name. Input (batch, 3, 227, 227); output ``prob`` (batch, classes).

    netdsl summary examples/alexnet.py
    netdsl run examples/alexnet.py --random-weights

``width`` scales every channel count and ``fc`` the two hidden fully connected layers (tests use a
small variant; the defaults are the real network, 61M parameters).
"""
from __future__ import annotations

import netdsl as nd
from netdsl import nn


class AlexNet(nn.Module):
    def __init__(self, num_classes: int = 1000, width: float = 1.0, fc: int = 4096) -> None:
        super().__init__()
        c = [max(2, int(round(v * width)) // 2 * 2) for v in (96, 256, 384, 384, 256)]  # even: groups=2
        self.conv1 = nn.Conv2d(3, c[0], 11, stride=4)
        self.norm1 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
        self.conv2 = nn.Conv2d(c[0], c[1], 5, padding=2, groups=2)
        self.norm2 = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
        self.conv3 = nn.Conv2d(c[1], c[2], 3, padding=1)
        self.conv4 = nn.Conv2d(c[2], c[3], 3, padding=1, groups=2)
        self.conv5 = nn.Conv2d(c[3], c[4], 3, padding=1, groups=2)
        self.fc6 = nn.Linear(c[4] * 6 * 6, fc)
        self.drop6 = nn.Dropout(0.5)
        self.fc7 = nn.Linear(fc, fc)
        self.drop7 = nn.Dropout(0.5)
        self.fc8 = nn.Linear(fc, num_classes)

    def forward(self, x: nd.Tensor) -> nd.Tensor:
        x = self.norm1(nd.relu(self.conv1(x), name="relu1"))
        x = nd.max_pool2d(x, 3, 2, name="pool1")                    # 55 -> 27
        x = self.norm2(nd.relu(self.conv2(x), name="relu2"))
        x = nd.max_pool2d(x, 3, 2, name="pool2")                    # 27 -> 13
        x = nd.relu(self.conv3(x), name="relu3")
        x = nd.relu(self.conv4(x), name="relu4")
        x = nd.max_pool2d(nd.relu(self.conv5(x), name="relu5"), 3, 2, name="pool5")  # 13 -> 6
        x = self.drop6(nd.relu(self.fc6(nd.flatten(x, 1)), name="relu6"))
        x = self.drop7(nd.relu(self.fc7(x), name="relu7"))
        return nd.softmax(self.fc8(x), axis=1, name="prob")


def network(batch: int | str = "N", num_classes: int = 1000, width: float = 1.0, fc: int = 4096,
            weights: str | None = None) -> nd.Network:
    """AlexNet on (batch, 3, 227, 227) -> class probabilities ``prob``."""
    net = nd.Network("alexnet")
    x = net.input("data", (batch, 3, 227, 227))
    net.output(AlexNet(num_classes, width, fc)(x), "prob")
    if weights:
        net.load_weights(weights)
    return net


def small() -> nd.Network:
    """A quarter-width AlexNet with 256-wide fc layers and 10 classes (for tests)."""
    return network(num_classes=10, width=0.25, fc=256)
