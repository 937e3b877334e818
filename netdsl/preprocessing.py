"""How an input arrives, declared once with the input (Keras/OpenVINO-style preprocessing)::

    x = net.input("image", ("N", 224, 224, 3), "uint8", layout="NHWC",
                  preprocess=nd.Preprocess(mean=(123.675, 116.28, 103.53), scale=(58.395, 57.12, 57.375)))
    # x is float32 (N, 3, 224, 224): the model is written for NCHW; callers feed NHWC uint8 images

The feed keeps the declared shape, dtype and layout; the network body sees ``dtype`` in the model
layout (N, C, then the other axes) after ``(x[channels reversed if asked] - mean) / scale``. Each
backend does this natively (see :mod:`netdsl.ops.preprocess` for the exact semantics).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence, Union

Values = Union[float, Sequence[float], None]


@dataclass(frozen=True)
class Preprocess:
    """mean / scale: one value or one per channel, in the model's channel order (after any reversal);
    ``(x - mean) / scale``. ``reverse_channels``: RGB <-> BGR. ``dtype``: what the network body sees."""

    mean: Values = None
    scale: Values = None
    reverse_channels: bool = False
    dtype: Any = "float32"

    @staticmethod
    def values(v: Values) -> tuple:
        if v is None:
            return ()
        if isinstance(v, (int, float)):
            return (float(v),)
        return tuple(float(a) for a in v)

    def attrs(self) -> dict:
        """The ``preprocess`` op's attributes (without the layout)."""
        return {"mean": self.values(self.mean), "scale": self.values(self.scale),
                "reverse_channels": bool(self.reverse_channels), "dtype": self.dtype}
