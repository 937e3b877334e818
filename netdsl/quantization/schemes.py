"""Activation quantization schemes: how a calibrated range (lo, hi) becomes a quantized type, a scale
and a zero point.

* ``symmetric``: int8, zero point 0, scale ``max(|lo|, |hi|) / 127``. The only form TensorRT's
  Q/DQ layers take (explicit quantization is int8-only and symmetric): use it for TensorRT.
* ``unsigned``: as symmetric, except a tensor calibration never saw negative (after a ReLU, a
  sigmoid, a softmax ...) is uint8 with zero point 0 and scale ``hi / 255``: one more bit for it.
* ``asymmetric``: every activation is uint8 with a zero point: non-negative tensors as ``unsigned``,
  others ``(hi - lo) / 255`` with the zero point at ``-lo / scale`` (rounded to an even integer: the
  OpenVINO lowering maps a Q/DQ pair to one FakeQuantize only then, see backends/openvino/qdq.py).

OpenVINO runs all three as INT8 kernels (u8 activations times i8 weights are what VNNI and AMX
multiply) and ONNX Runtime runs all three as QDQ; TensorRT takes ``symmetric`` only (uint8 tensors
only as network inputs and outputs): ``quantize(..., target="tensorrt")`` picks it.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from ..dtypes import DType

SCHEMES = ("symmetric", "unsigned", "asymmetric")
# what ``scheme="auto"`` means for the backend a quantized network is meant for
BACKEND_SCHEME = {"tensorrt": "symmetric", "openvino": "asymmetric", "onnx": "asymmetric",
                  "reference": "asymmetric"}


class QParams(NamedTuple):
    dtype: DType
    scale: float
    zero_point: Optional[int]  # None: no zero-point input (symmetric int8)


def pick_scheme(scheme: str, target: Optional[str]) -> str:
    """The scheme ``auto`` stands for when the network is meant for backend ``target`` (None: OpenVINO
    or ONNX Runtime)."""
    from ..errors import NetdslError
    if target is not None and target not in BACKEND_SCHEME:
        raise NetdslError(f"unknown target {target!r}; choose {', '.join(BACKEND_SCHEME)}")
    if scheme == "auto":
        return BACKEND_SCHEME[target or "openvino"]
    if target == "tensorrt" and scheme in SCHEMES and scheme != "symmetric":
        raise NetdslError(f"scheme {scheme!r} makes uint8 activations, and TensorRT takes symmetric int8 ones "
                          "(uint8 tensors only as network inputs and outputs): use scheme 'symmetric' or 'auto'")
    return scheme


def qparams(lo: float, hi: float, scheme: str) -> QParams:
    """The quantized type, scale and zero point for the clipping range (lo, hi) under ``scheme``."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if scheme != "symmetric" and lo == 0.0:
        return QParams(DType.uint8, hi / 255 if hi > 0 else 1.0, 0)
    if scheme == "asymmetric" and hi > 0:
        scale = (hi - lo) / 255
        zp = int(np.clip(2 * np.rint(-lo / scale / 2), 0, 254))  # even, inside the uint8 range
        # the grid keeps 0 exact; widen it by one step where rounding the zero point cut off an end
        if (255 - zp) * scale < hi or zp * scale < -lo:
            scale = max(hi / (255 - zp), -lo / max(zp, 1))
        return QParams(DType.uint8, scale, zp)
    t = max(-lo, hi)
    return QParams(DType.int8, t / 127 if t > 0 else 1.0, None)
