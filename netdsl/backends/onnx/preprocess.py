"""ONNX export of ``preprocess``: Cast, Slice (reversed channels), Sub, Div, Transpose."""
from __future__ import annotations

from ...ops.preprocess import channel_values, model_perm
from .table import register_export


def _preprocess(ctx, node):
    a, out = node.attrs, node.outputs[0]
    c, rank = a["layout"].index("C"), len(a["layout"])
    y = ctx.add1("Cast", [ctx.inp(node, 0)], to=ctx.dtype(out.dtype))
    if a["reverse_channels"]:
        y = ctx.add1("Slice", [y, ctx.ints([-1], "starts"), ctx.ints([-2 ** 63], "ends"), ctx.ints([c], "axes"),
                               ctx.ints([-1], "steps")])
    if a["mean"]:
        y = ctx.add1("Sub", [y, ctx.const(channel_values(a["mean"], rank, c), out.dtype, "mean")])
    if a["scale"]:
        y = ctx.add1("Div", [y, ctx.const(channel_values(a["scale"], rank, c), out.dtype, "scale")])
    perm = list(model_perm(a["layout"]))
    ctx.add("Transpose" if perm != sorted(perm) else "Identity", [y], [ctx.out(node)],
            perm=perm if perm != sorted(perm) else None)


register_export("preprocess", _preprocess)
