"""ONNX export of the quantization ops: QuantizeLinear / DequantizeLinear (the QDQ format that ONNX
Runtime, OpenVINO and TensorRT's parser read). A per-tensor scale of shape (1,) is passed as a scalar,
and an omitted zero point becomes an explicit zero of the quantized type (ONNX's default is uint8)."""
from __future__ import annotations

import numpy as np

from ...ops.quantize import QTYPES
from .table import register_export


def _params(ctx, node) -> tuple[str, str, dict]:
    scale, zp = node.inputs[1], node.inputs[2] if len(node.inputs) > 2 else None
    per_channel = scale.rank == 1 and scale.shape[0] != 1
    s, z = ctx.inp(node, 1), ctx.inp(node, 2)
    if scale.rank == 1 and not per_channel:
        s = ctx.add1("Reshape", [s, ctx.ints([], "scalar_shape")])
        if zp is not None:
            z = ctx.add1("Reshape", [z, ctx.ints([], "scalar_shape")])
    attrs = {"axis": node.attrs["axis"]} if per_channel else {}
    return s, z, attrs


def _zero(ctx, node, dtype) -> str:
    scale = node.inputs[1]
    shape = scale.shape if scale.rank == 1 and scale.shape[0] != 1 else ()
    return ctx.const(np.zeros(shape, dtype.numpy), dtype, "zero_point")


def _quantize(ctx, node) -> None:
    s, z, attrs = _params(ctx, node)
    out = node.outputs[0].dtype
    if not z:
        z = _zero(ctx, node, out)
    ctx.add("QuantizeLinear", [ctx.inp(node, 0), s, z], [ctx.out(node)], **attrs)


def _dequantize(ctx, node) -> None:
    s, z, attrs = _params(ctx, node)
    if not z and node.inputs[0].dtype in QTYPES:
        z = _zero(ctx, node, node.inputs[0].dtype)
    ctx.add("DequantizeLinear", [ctx.inp(node, 0), s, z], [ctx.out(node)], **attrs)


register_export("quantize_linear", _quantize)
register_export("dequantize_linear", _dequantize)
