"""MTCNN face detector stages P-Net, R-Net and O-Net (Zhang et al. 2016), as shipped by facenet-pytorch.

Weights: ``facenet_pytorch/data/{pnet,rnet,onet}.pt`` inside the ``facenet-pytorch==2.6.0`` wheel,
PyTorch's legacy (pre-1.6, non-zip) pickle format, bound unchanged. Inputs are what facenet-pytorch
feeds each stage: RGB crops as float32 NCHW, normalized as ``(pixel - 127.5) / 128``.

    netdsl check examples/zoo/mtcnn.py:onet --backends reference,openvino,onnx,tensorrt
    netdsl summary examples/zoo/mtcnn.py:pnet      # P-Net is fully convolutional: any H, W >= 12

Outputs: ``boxes`` (box regression) and ``prob`` (softmax face / not-face), and for O-Net
``landmarks`` (5 points). R-Net and O-Net flatten in (W, H, C) order, as the original
``x.permute(0, 3, 2, 1)`` does.
"""
from __future__ import annotations

from typing import Optional

import netdsl as nd
from netdsl import nn

try:
    from .fetch import package_file
except ImportError:  # run as a file: netdsl check examples/zoo/mtcnn.py
    from fetch import package_file  # type: ignore[no-redef]

PACKAGE = "facenet-pytorch==2.6.0"


def weights_file(stage: str) -> str:
    return package_file(PACKAGE, f"facenet_pytorch/data/{stage}.pt")



class PNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x: nd.Tensor) -> tuple:
        x = nd.max_pool2d(self.prelu1(self.conv1(x)), 2, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), nd.softmax(self.conv4_1(x), axis=1)


class RNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x: nd.Tensor) -> tuple:
        x = nd.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = nd.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(nd.flatten(x.permute(0, 3, 2, 1), 1)))
        return self.dense5_2(x), nd.softmax(self.dense5_1(x), axis=1)


class ONet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x: nd.Tensor) -> tuple:
        x = nd.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = nd.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = nd.max_pool2d(self.prelu3(self.conv3(x)), 2, 2, ceil_mode=True)
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(nd.flatten(x.permute(0, 3, 2, 1), 1)))
        return self.dense6_2(x), self.dense6_3(x), nd.softmax(self.dense6_1(x), axis=1)


def _build(stage: str, module: nn.Module, shape: tuple, outputs: tuple, weights: Optional[str]) -> nd.Network:
    net = nd.Network(f"mtcnn_{stage}")
    outs = module(net.input("image", shape))
    for t, name in zip(outs, outputs):
        net.output(t, name)
    net.load_weights(weights or weights_file(stage))
    return net


def pnet(weights: Optional[str] = None) -> nd.Network:
    """P-Net on a whole (scaled) image: (N, 3, H, W) -> boxes (N, 4, H', W'), prob (N, 2, H', W')."""
    return _build("pnet", PNet(), ("N", 3, "H", "W"), ("boxes", "prob"), weights)


def rnet(weights: Optional[str] = None) -> nd.Network:
    """R-Net on 24x24 crops: (N, 3, 24, 24) -> boxes (N, 4), prob (N, 2)."""
    return _build("rnet", RNet(), ("N", 3, 24, 24), ("boxes", "prob"), weights)


def onet(weights: Optional[str] = None) -> nd.Network:
    """O-Net on 48x48 crops: (N, 3, 48, 48) -> boxes (N, 4), landmarks (N, 10), prob (N, 2)."""
    return _build("onet", ONet(), ("N", 3, 48, 48), ("boxes", "landmarks", "prob"), weights)


network = onet
