"""TensorRT lowering of the quantization ops: explicit quantization with IQuantizeLayer /
IDequantizeLayer (int8, symmetric: zero point 0, per tensor or per channel along ``axis``), the form
TensorRT fuses into INT8 convolutions and matrix multiplies. Scales are build-time constants.

TensorRT's Q/DQ layers take no uint8 and no non-zero zero point; those cases are decomposed into
elementwise layers with the same semantics (divide, round half to even, add, clamp, cast)."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ...dtypes import DType
from ...graph import Node
from ...ops.quantize import qrange
from ._ctx import Ctx
from .lower import register_lowering


def _scale(ctx: Ctx, node: Node, like_dt: Any) -> tuple[Any, bool]:
    """The scale as a constant tensor (0-d per tensor, (C,) per channel) and whether it is per channel."""
    a = ctx.arr(node.inputs[1])
    if a is None:
        raise ctx.unsupported("the scale must be a constant or parameter (TensorRT needs build-time scales)")
    per_channel = a.ndim == 1 and a.shape[0] != 1
    if float(np.min(a)) <= 0 or not np.all(np.isfinite(a)):
        raise ctx.error(f"scales must be finite and positive, got min {float(np.min(a))}")
    return ctx.constant(a if per_channel else a.reshape(()), like_dt, "scale"), per_channel


def _zero_point(ctx: Ctx, node: Node) -> Optional[np.ndarray]:
    zp = node.inputs[2] if len(node.inputs) > 2 else None
    if zp is None:
        return None
    a = ctx.arr(zp)
    if a is None:
        raise ctx.unsupported("the zero point must be a constant or parameter")
    return a


def _channel_shaped(ctx: Ctx, node: Node, a: np.ndarray, like: Any) -> Any:
    """A per-channel (C,) or per-tensor value as a constant broadcasting along ``axis`` of ``like``."""
    r = len(like.shape)
    a = np.asarray(a, np.float64).reshape(-1)
    shape = [1] * r
    if a.size > 1:
        shape[node.attrs["axis"] % r] = a.size
    return ctx.constant(a.reshape(shape), like.dtype, "zp")


def _quantize(ctx: Ctx, node: Node) -> list:
    trt = ctx.trt
    x = ctx.t(node.inputs[0])
    out_t = node.outputs[0].dtype
    zp = _zero_point(ctx, node)
    scale, per_channel = _scale(ctx, node, x.dtype)
    if out_t is DType.int8 and (zp is None or not np.any(zp)):
        layer = ctx.net.add_quantize(x, scale, trt.int8)
        if per_channel:
            layer.axis = node.attrs["axis"] % len(x.shape)
        return [ctx.add(layer).get_output(0)]
    if out_t is DType.uint8 and all(node.outputs[0] is not o for o in ctx.graph.outputs):
        raise ctx.error("TensorRT takes uint8 tensors only as network inputs and outputs; for a network "
                        "made by netdsl.quantize use target='tensorrt' (symmetric int8 activations)")
    # uint8 or a non-zero zero point: round(x / s) + zp, clamped, cast
    E = trt.ElementWiseOperation
    s = _channel_shaped(ctx, node, ctx.arr(node.inputs[1]), x)
    y = ctx.unary(ctx.ew(x, s, E.DIV, "div"), trt.UnaryOperation.ROUND, "round")
    if zp is not None:
        y = ctx.ew(y, _channel_shaped(ctx, node, zp, y), E.SUM, "add_zero_point")
    lo, hi = qrange(out_t)
    y = ctx.ew(ctx.ew(y, ctx.scalar(lo, y), E.MAX, "clamp_lo"), ctx.scalar(hi, y), E.MIN, "clamp_hi")
    return [ctx.cast(y, ctx.trt_dtype(out_t), None)]


def _dequantize(ctx: Ctx, node: Node) -> list:
    trt = ctx.trt
    q = ctx.t(node.inputs[0])
    fdt = ctx.trt_dtype(node.outputs[0].dtype)
    zp = _zero_point(ctx, node)
    scale, per_channel = _scale(ctx, node, fdt)
    if node.inputs[0].dtype is DType.int8 and (zp is None or not np.any(zp)):
        layer = ctx.net.add_dequantize(q, scale, fdt)
        if per_channel:
            layer.axis = node.attrs["axis"] % len(q.shape)
        return [ctx.add(layer).get_output(0)]
    E = trt.ElementWiseOperation
    x = ctx.cast(q, fdt, "to_float")
    if zp is not None:
        x = ctx.ew(x, _channel_shaped(ctx, node, zp, x), E.SUB, "sub_zero_point")
    return [ctx.ew(x, _channel_shaped(ctx, node, ctx.arr(node.inputs[1]), x), E.PROD)]


register_lowering("quantize_linear", _quantize)
register_lowering("dequantize_linear", _dequantize)
