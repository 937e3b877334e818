"""TensorRT lowering of ``preprocess``: cast, a reversed-stride slice over the channels, elementwise
subtract/divide by per-channel constants, and a shuffle to the model layout."""
from __future__ import annotations

from ...graph import Node
from ...ops.preprocess import channel_values, model_perm
from ._ctx import Ctx
from .lower import register_lowering


def _preprocess(ctx: Ctx, node: Node) -> list:
    a, out = node.attrs, node.outputs[0]
    layout = a["layout"]
    c, rank = layout.index("C"), len(layout)
    E = ctx.trt.ElementWiseOperation
    dt = ctx.trt_dtype(out.dtype)
    y = ctx.cast(ctx.t(node.inputs[0]), dt, "to_float")
    if a["reverse_channels"]:
        nc = node.inputs[0].shape[c]
        if not isinstance(nc, int):
            raise ctx.unsupported("reversing a symbolic number of channels")
        start = [0] * rank
        start[c] = nc - 1
        stride = [1] * rank
        stride[c] = -1
        y = ctx.slice(y, start, [("in", i) for i in range(rank)], stride, "reverse_channels")
    if a["mean"]:
        y = ctx.ew(y, ctx.constant(channel_values(a["mean"], rank, c), dt, "mean"), E.SUB, "minus_mean")
    if a["scale"]:
        y = ctx.ew(y, ctx.constant(channel_values(a["scale"], rank, c), dt, "scale"), E.DIV, "over_scale")
    perm = model_perm(layout)
    return [ctx.shuffle_perm(y, perm) if list(perm) != sorted(perm) else y]


register_lowering("preprocess", _preprocess)
