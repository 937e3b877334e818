"""Silero VAD v6 (voice activity detection, 16 kHz), as shipped by the ``silero-vad`` package for tinygrad.

Weights: ``silero_vad/data/silero_vad_16k.safetensors`` inside the ``silero-vad==6.2.3`` wheel, the file
the package's ``TinySileroVAD`` (``silero_vad/tinygrad_model.py``) loads, bound unchanged: module names are
that class's attributes (``stft_conv``, ``conv1`` ... ``conv4``, ``lstm_cell``, ``final_conv``).

The model runs once per 512-sample chunk: a short-time Fourier transform as a strided convolution with a
fixed basis (``stft_conv``, 258 = 2 x 129 bins), the magnitude, four 1-d convolutions, one LSTM step whose
state the caller carries from chunk to chunk, and a sigmoid.

Inputs: ``audio`` (N, 576) float: the chunk's 512 samples after the last 64 samples of the previous chunk
(zeros for the first), and ``state`` (2, N, 128): the LSTM's (h, c) after the previous chunk (zeros for
the first). Outputs: ``speech`` (N, 1), the probability of speech, and ``state_out`` (2, N, 128).

    netdsl check examples/zoo/silero_vad.py --backends reference,openvino,onnx,tensorrt --dim N=2
"""
from __future__ import annotations

from typing import Optional

import netdsl as nd
from netdsl import nn

try:
    from .fetch import package_file
except ImportError:  # run as a file
    from fetch import package_file  # type: ignore[no-redef]

PACKAGE = "silero-vad==6.2.3"
MEMBER = "silero_vad/data/silero_vad_16k.safetensors"
CONTEXT, CHUNK, BINS = 64, 512, 129


class SileroVAD(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stft_conv = nn.Conv1d(1, 2 * BINS, 256, stride=128, bias=False)   # real and imaginary basis rows
        self.conv1 = nn.Conv1d(BINS, 128, 3, padding=1)
        self.conv2 = nn.Conv1d(128, 64, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(64, 64, 3, stride=2, padding=1)
        self.conv4 = nn.Conv1d(64, 128, 3, padding=1)
        self.lstm_cell = nn.LSTMCell(128, 128)
        self.final_conv = nn.Conv1d(128, 1, 1)

    def forward(self, audio: nd.Tensor, state: nd.Tensor) -> tuple:
        x = nd.pad(audio, (0, CONTEXT), mode="reflect").unsqueeze(1)          # (N, 1, 640)
        x = self.stft_conv(x)                                                 # (N, 258, 4)
        re, im = x[:, :BINS], x[:, BINS:]
        x = nd.sqrt(re * re + im * im)
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            x = nd.relu(conv(x))
        h, c = self.lstm_cell(x.squeeze(-1), (state[0], state[1]))            # (N, 128) each
        y = nd.sigmoid(self.final_conv(nd.relu(h.unsqueeze(-1))))             # (N, 1, 1)
        return nd.mean(y.squeeze(1), dim=1, keepdim=True), nd.stack([h, c])


def network(weights: Optional[str] = None) -> nd.Network:
    net = nd.Network("silero_vad")
    audio = net.input("audio", ("N", CONTEXT + CHUNK))
    state = net.input("state", (2, "N", 128))
    speech, state_out = SileroVAD()(audio, state)
    net.output(speech, "speech")
    net.output(state_out, "state_out")
    net.load_weights(weights or package_file(PACKAGE, MEMBER))
    return net
