"""A tiny one-head YOLO detector: a convolution stack, the head convolution (3 anchors x (5 + 4
classes) channels) and ``yolo_decode`` turning it into boxes (pixels, x1 y1 x2 y2) and class
scores. Seeded random weights. ``examples/yolov3_tiny.py`` uses the plugin on both of its heads.

    netdsl summary plugins/yolo_decode/example.py
    netdsl check plugins/yolo_decode/example.py --backends reference,openvino,onnx,tensorrt
"""
from __future__ import annotations

from pathlib import Path

import netdsl as nd
from netdsl import nn
from netdsl.plugins import load

yolo_decode = load(Path(__file__).parent)
ANCHORS = (10.0, 14.0, 23.0, 27.0, 37.0, 58.0)


class TinyDetector(nn.Module):
    def __init__(self, classes: int = 4) -> None:
        super().__init__()
        self.classes = classes
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.head = nn.Conv2d(32, 3 * (5 + classes), 1)

    def forward(self, x: nd.Tensor) -> tuple:
        x = nd.max_pool2d(nd.leaky_relu(self.conv1(x), 0.1), 2, 2)
        x = nd.max_pool2d(nd.leaky_relu(self.conv2(x), 0.1), 2, 2)
        return yolo_decode(self.head(x), anchors=ANCHORS, stride=4.0, num_classes=self.classes, name="yolo")


def network(batch: int | str = "N", size: int = 32, seed: int = 0) -> nd.Network:
    net = nd.Network("tiny_detector")
    boxes, scores = TinyDetector()(net.input("image", (batch, 3, size, size)))
    net.output(boxes, "boxes")
    net.output(scores, "scores")
    return net.init_random(seed)
