"""Plugins: custom ops declared once, like catalogue ops, with per-backend implementations.

A plugin op has the same parts as a built-in op (inputs, typed attributes, shape inference, NumPy
reference), so the reference backend, shape checking, summaries and the conformance harness work
for it unchanged. Each backend finds its implementation on the declaration:

- ``openvino``: a lowering ``fn(ctx, node, *inputs) -> output(s)`` building opset nodes
  (or wrapping an ``openvino.Op`` subclass);
- ``tensorrt``: a lowering ``fn(ctx, node) -> list of ITensor`` (e.g. adding an IPluginV3 layer);
- ONNX export writes a node of domain ``onnx_domain`` (default ``netdsl.plugins``) carrying the
  attributes.

Example::

    from netdsl.plugins import declare
    from netdsl.ops import Attr

    scaled_tanh = declare(
        "scaled_tanh", attrs={"alpha": Attr("float", 1.0)},
        infer=lambda x, alpha: x,
        reference=lambda x, alpha: alpha * np.tanh(x))
    y = scaled_tanh(x, alpha=2.0)          # in a network definition
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from ..ops.registry import OpDef, register


@dataclass
class Plugin:
    """Backend implementations and export settings of a plugin op."""

    version: str = "1"
    openvino: Optional[Callable[..., Any]] = None
    tensorrt: Optional[Callable[..., Any]] = None
    onnx_domain: str = "netdsl.plugins"
    onnx_op: Optional[str] = None
    onnx_version: int = 1


class PluginOp:
    """The DSL function of a declared plugin: ``op(*tensors, name=None, **attrs)``."""

    def __init__(self, opdef: OpDef):
        self.opdef = opdef
        self.__doc__ = opdef.doc

    @property
    def name(self) -> str:
        return self.opdef.name

    def __call__(self, *inputs: Any, name: Optional[str] = None, **attrs: Any) -> Any:
        from ..functional import _net
        net = _net(*inputs)
        return net.apply(self.opdef.name, list(inputs), name=name, **attrs)


def declare(name: str, *, infer: Callable[..., Any], reference: Callable[..., Any], inputs: Sequence[str] = ("x",),
            outputs: Sequence[str] = ("y",), attrs: Optional[dict] = None, doc: str = "",
            macs: Optional[Callable[..., Any]] = None, replace: bool = False, **plugin: Any) -> PluginOp:
    """Declare (register) a plugin op; ``plugin`` keywords fill :class:`Plugin`."""
    opdef = OpDef(name=name, inputs=tuple(inputs), outputs=tuple(outputs), attrs=dict(attrs or {}), infer=infer,
                  reference=reference, category="plugin", doc=doc.strip(), macs=macs, plugin=Plugin(**plugin))
    register(opdef, replace=replace)
    return PluginOp(opdef)


__all__ = ["Plugin", "PluginOp", "declare"]
