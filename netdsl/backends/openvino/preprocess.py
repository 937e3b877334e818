"""OpenVINO lowering of ``preprocess``: the PrePostProcessor on a model input, plain ops elsewhere.

When the op reads a network input that nothing else reads, the model gets a Parameter in the model
layout and type, and OpenVINO's PrePostProcessor puts the conversion in front of it (tensor element
type and layout as declared, convert_element_type, reverse_channels, mean, scale, layout change):
the compiled model takes the caller's layout and type natively. Anywhere else the same steps are
ordinary ops.
"""
from __future__ import annotations

from typing import Any

from ...graph import Node
from ...ops import get_op
from ...ops.preprocess import channel_values, model_layout, model_perm
from .lower import Lowering, ov_type, partial_shape, register_lowering


def _shape_is_read(ctx: Lowering, node: Node) -> bool:
    """Whether an op reads the size of this node's output at run time (its ``like`` input)."""
    out = node.outputs[0]
    return any(u is out and get_op(n.op).input_name(i) == "like"
               for n in ctx.graph.nodes for i, u in enumerate(n.inputs))


def _only_reads_an_input(ctx: Lowering, node: Node) -> int:
    """Index of the network input this node alone reads, or -1."""
    g, v = ctx.graph, node.inputs[0]
    idx = next((i for i, u in enumerate(g.inputs) if u is v), -1)
    if idx < 0 or any(o is v for o in g.outputs) or v.dtype.value == "bfloat16":
        return -1
    if node.attrs["reverse_channels"] and _shape_is_read(ctx, node) \
            and not all(isinstance(d, int) for d in node.outputs[0].shape):
        # OpenVINO 2026.4's PrePostProcessor reverse_channels on an input with dynamic spatial dims whose
        # ShapeOf feeds another op gives wrong values downstream (a conv read 1e3 off): plain ops instead
        return -1
    readers = [n for n in g.nodes if any(u is v for u in n.inputs)]
    return idx if readers == [node] else -1


def _with_ppp(ctx: Lowering, node: Node, idx: int) -> Any:
    ov, ops = ctx.ov, ctx.ops
    a, v, out = node.attrs, node.inputs[0], node.outputs[0]
    p = ops.parameter(partial_shape(out.shape, ctx.dynamic), ov_type(out.dtype), name=v.name)
    p.output(0).get_tensor().set_names({v.name})
    ctx.params[idx] = p  # the raw Parameter is dropped; the PrePostProcessor makes the caller's one

    def hook(model: Any) -> Any:
        ppp = ov.preprocess.PrePostProcessor(model)
        inp = ppp.input(v.name)
        inp.tensor().set_element_type(ov_type(v.dtype)).set_layout(ov.Layout(a["layout"]))
        inp.model().set_layout(ov.Layout(model_layout(a["layout"])))
        steps = inp.preprocess()
        steps.convert_element_type(ov_type(out.dtype))
        if a["reverse_channels"]:
            steps.reverse_channels()
        if a["mean"]:
            steps.mean(list(a["mean"]) if len(a["mean"]) > 1 else a["mean"][0])
        if a["scale"]:
            steps.scale(list(a["scale"]) if len(a["scale"]) > 1 else a["scale"][0])
        model = ppp.build()
        for param in model.get_parameters():  # the caller's Parameter: named exactly as the network input
            if v.name in param.output(0).get_tensor().get_names():
                param.set_friendly_name(v.name)
                param.output(0).get_tensor().set_names({v.name})
        return model

    ctx.model_hooks.append(hook)
    return p.output(0)


def _with_ops(ctx: Lowering, node: Node, x: Any) -> Any:
    ops, a = ctx.ops, node.attrs
    out = node.outputs[0]
    c = a["layout"].index("C")
    rank = len(a["layout"])
    y = ops.convert(x, ov_type(out.dtype)).output(0)
    if a["reverse_channels"]:
        y = ops.slice(y, ctx.i64([-1]), ctx.i64([-2 ** 62]), ctx.i64([-1]), ctx.i64([c])).output(0)
    if a["mean"]:
        y = ops.subtract(y, ctx.typed(channel_values(a["mean"], rank, c), out.dtype)).output(0)
    if a["scale"]:
        y = ops.divide(y, ctx.typed(channel_values(a["scale"], rank, c), out.dtype)).output(0)
    perm = list(model_perm(a["layout"]))
    return y if perm == sorted(perm) else ops.transpose(y, ctx.i64(perm)).output(0)


@register_lowering("preprocess")
def _preprocess(ctx: Lowering, node: Node, x: Any) -> Any:
    idx = _only_reads_an_input(ctx, node)
    return _with_ppp(ctx, node, idx) if idx >= 0 else _with_ops(ctx, node, x)
