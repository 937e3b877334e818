"""Resemblyzer's speaker encoder (GE2E, a 3-layer LSTM over mel frames), as shipped by ``resemblyzer``.

Weights: ``resemblyzer/pretrained.pt`` inside the ``Resemblyzer==0.1.4`` wheel, a legacy (pre-zip) PyTorch
checkpoint ``{"model_state": ..., "optimizer_state": ...}``, bound unchanged: ``prefix="model_state."``
keeps the model's tensors and strips the prefix; the two ``similarity_*`` scalars (used only by the
training loss) are ignored. Module names are ``VoiceEncoder``'s: ``lstm`` (``nn.LSTM(40, 256, 3,
batch_first=True)``), ``linear``.

Input: ``mels`` (N, 160, 40) float: 160 frames of a 40-channel log-mel spectrogram (resemblyzer's partial
utterance). Output: ``embedding`` (N, 256): ReLU of the linear layer on the last layer's final hidden
state, L2-normalized. The LSTM is unrolled over the frames (``network(frames=...)``); ``small()`` takes 32
frames (the stored reference's length: the CPU proof of TensorRT on 3 x 160 unrolled steps takes minutes).

    netdsl check examples/zoo/resemblyzer.py:small --backends reference,openvino,onnx,tensorrt --dim N=2
"""
from __future__ import annotations

from typing import Optional

import netdsl as nd
from netdsl import nn

try:
    from .fetch import package_file
except ImportError:  # run as a file
    from fetch import package_file  # type: ignore[no-redef]

PACKAGE = "Resemblyzer==0.1.4"
MEMBER = "resemblyzer/pretrained.pt"
FRAMES, MELS, HIDDEN = 160, 40, 256


class VoiceEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(MELS, HIDDEN, 3, batch_first=True)
        self.linear = nn.Linear(HIDDEN, HIDDEN)

    def forward(self, mels: nd.Tensor) -> nd.Tensor:
        _, (hidden, _) = self.lstm(mels)
        e = nd.relu(self.linear(hidden[-1]))
        return e / nd.sqrt(nd.sum(e * e, dim=1, keepdim=True))


def network(weights: Optional[str] = None, frames: int = FRAMES) -> nd.Network:
    net = nd.Network("resemblyzer")
    mels = net.input("mels", ("N", frames, MELS))
    net.output(VoiceEncoder()(mels), "embedding")
    net.load_weights(weights or package_file(PACKAGE, MEMBER), prefix="model_state.", ignore=[r"similarity_"])
    return net


def small() -> nd.Network:
    """The encoder on 32 frames, as the stored reference was made."""
    return network(frames=32)
