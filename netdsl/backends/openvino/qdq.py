"""OpenVINO lowering of the quantization ops, in the form OpenVINO's own ONNX frontend produces and its
low-precision transformations execute as real INT8 kernels:

    quantize_linear   -> FakeQuantize(x, (lo - zp)*s, (hi - zp)*s, lo, hi, levels=256) -> Convert(i8/u8)
    dequantize_linear -> Convert(f32) [-> Subtract(zero point)] -> Multiply(scale)

An int8 weight constant followed by dequantize_linear is OpenVINO's compressed-weight pattern; a
quantize/dequantize pair on an activation in front of a convolution or matmul is fused with it into an
INT8 kernel (see ``OpenVINOModel.runtime_precisions()``)."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ...graph import Node
from ...ops.quantize import qrange
from .lower import Lowering, ov_type, register_lowering


def _broadcastable(ctx: Lowering, node: Node, v: Any) -> Any:
    """A per-channel (C,) vector reshaped to broadcast along ``axis``; per-tensor values as they are."""
    scale = node.inputs[1]
    rank = node.inputs[0].rank
    if scale.rank == 0 or scale.shape[0] == 1:
        return v
    shape = [1] * rank
    shape[node.attrs["axis"] % rank] = -1
    return ctx.ops.reshape(v, ctx.i64(shape), False).output(0)


def _zero_point_f(ctx: Lowering, node: Node, zp: Optional[Any], like: Any) -> Optional[Any]:
    if zp is None:
        return None
    return _broadcastable(ctx, node, ctx.ops.convert(zp, like.get_element_type()).output(0))


def _fake_quantize_exact(ctx: Lowering, node: Node) -> bool:
    """FakeQuantize rounds ``x / s + zp`` as a whole: equal to ONNX's ``round(x / s) + zp`` when the zero
    point is even (ties still go to even) and its range ``(lo - zp) * s .. (hi - zp) * s`` is finite in
    float32; the CPU plugin takes per-channel ranges on axis 1 only."""
    scale = node.inputs[1]
    rank = node.inputs[0].rank
    if scale.rank == 1 and scale.shape[0] != 1 and (rank < 2 or node.attrs["axis"] % rank != 1):
        return False
    sa = _const(ctx, scale)
    if sa is not None and not np.all(np.abs(np.asarray(sa, np.float64)) * 256 < np.finfo(np.float32).max):
        return False
    zp = node.inputs[2] if len(node.inputs) > 2 else None
    if zp is None:
        return True
    a = _const(ctx, zp)
    return a is not None and bool(np.all(np.asarray(a, np.int64) % 2 == 0))


def _signed_after_concat(node: Node) -> bool:
    """An int8 quantization of a concat's output: OpenVINO 2026.4 computes that FakeQuantize wrongly when
    it runs the next layer in 8 bits (a convolution 25-30% off, from its own ONNX frontend as well;
    uint8 with a zero point is right), so it is lowered as the plain ONNX arithmetic instead."""
    p = node.inputs[0].producer
    return p is not None and p.op == "concat" and node.outputs[0].dtype.value == "int8"


def _const(ctx: Lowering, v: Any) -> Optional[np.ndarray]:
    """The data of a constant or parameter value, else None."""
    p = None if v is None else v.producer
    if p is None or p.op not in ("constant", "parameter"):
        return None
    return np.asarray(p.attrs["value"] if p.op == "constant" else ctx.graph.params[p.attrs["name"]].value())


@register_lowering("quantize_linear")
def _quantize(ctx: Lowering, node: Node, x: Any, scale: Any, zp: Optional[Any] = None) -> Any:
    ops = ctx.ops
    out_t = node.outputs[0].dtype
    lo, hi = qrange(out_t)
    s = _broadcastable(ctx, node, scale)
    z = _zero_point_f(ctx, node, zp, x)
    lo_c, hi_c = ctx.scalar(lo, x), ctx.scalar(hi, x)
    if not _fake_quantize_exact(ctx, node) or _signed_after_concat(node):  # round(x / s) + zp, clamped
        y = ops.round(ops.divide(x, s), "half_to_even").output(0)
        if z is not None:
            y = ops.add(y, z).output(0)
        return ops.convert(ops.clamp(y, float(lo), float(hi)), ov_type(out_t)).output(0)
    sa, za = _const(ctx, node.inputs[1]), _const(ctx, node.inputs[2] if len(node.inputs) > 2 else None)
    if sa is not None and (za is not None or z is None):  # constant ranges: what LPT needs to see
        zf = np.zeros_like(sa, np.float64) if za is None else np.asarray(za, np.float64)
        sh = node.inputs[1].shape
        in_lo = _broadcastable(ctx, node, ctx.const(((lo - zf) * sa).reshape(sh), np.float32))
        in_hi = _broadcastable(ctx, node, ctx.const(((hi - zf) * sa).reshape(sh), np.float32))
    else:
        in_lo = ops.multiply(lo_c if z is None else ops.subtract(lo_c, z), s).output(0)
        in_hi = ops.multiply(hi_c if z is None else ops.subtract(hi_c, z), s).output(0)
    fq = ops.fake_quantize(x, in_lo, in_hi, lo_c, hi_c, 256, name=ctx.name("fake_quantize"))
    return ops.convert(fq, ov_type(out_t)).output(0)


@register_lowering("dequantize_linear")
def _dequantize(ctx: Lowering, node: Node, q: Any, scale: Any, zp: Optional[Any] = None) -> Any:
    ops = ctx.ops
    x = ops.convert(q, scale.get_element_type(), name=ctx.name("to_float")).output(0)
    z = _zero_point_f(ctx, node, zp, x)
    if z is not None:
        x = ops.subtract(x, z).output(0)
    return ops.multiply(x, _broadcastable(ctx, node, scale)).output(0)
