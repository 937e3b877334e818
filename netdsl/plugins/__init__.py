"""Plugins: custom ops declared once, like catalogue ops, implemented for every backend.

A plugin op has the same parts as a built-in op (inputs, typed attributes, shape inference that
works on symbolic dims, NumPy reference), so the reference backend, shape checking, summaries,
``netdsl check`` and ONNX export work for it unchanged. Its implementations come with the
declaration and netdsl generates each engine's op from them:

- TensorRT: an IPluginV3 (:mod:`.tensorrt_plugin`) whose output dims come from the declared shape
  inference through TensorRT's expression builder and whose ``enqueue`` launches ``cuda=`` (a
  :class:`~netdsl.plugins.cuda.CudaKernel`) on TensorRT's stream; or a compiled plugin library bound
  with :func:`bind_library`;
- OpenVINO: an ``openvino.Op`` running ``cpu=Cpu(python=...)`` (default: the reference), or the C++
  op built from ``cpu=Cpu(source="cpu.cpp")`` (:mod:`.cpp_build`);
- ONNX: one custom-domain node (or ``onnx=`` a decomposition into standard ONNX ops).

Example::

    from netdsl.plugins import declare, Cpu
    from netdsl.ops import Attr

    scaled_tanh = declare(
        "scaled_tanh", attrs={"alpha": Attr("float", 1.0)},
        infer=lambda x, alpha: x,
        reference=lambda x, alpha: alpha * np.tanh(x),
        cpu=Cpu(source="cpu.cpp"))
    y = scaled_tanh(x, alpha=2.0)          # in a network definition

Shipped plugins live in ``plugins/<name>/`` (declaration, kernel.cu, cpu.cpp, test, example);
:func:`load` imports one by folder or by name, ``netdsl plugin new|test`` scaffolds and checks them.
"""
from __future__ import annotations

from .declaration import ATTR_KINDS, Cpu, Plugin, PluginError, PluginOp, declare
from .loader import available, find, load, search_path
from .openvino_ops import use_route


def bind_library(op: "PluginOp | str", path: "str | None", *, name: "str | None" = None,
                 version: "str | None" = None, namespace: "str | None" = None) -> None:
    """Bind a compiled TensorRT plugin library (a ``.so`` whose creators TensorRT's registry loads) to a
    declaration: TensorRT then uses its IPluginCreatorV3One creator (found by name, version and
    namespace; defaults: the declaration's) instead of the generated IPluginV3. The creator gets the
    declared attributes as fields (int/bool INT32, float FLOAT32, str CHAR, lists as arrays).
    ``path=None`` binds a creator already registered (e.g. one of TensorRT's own plugins)."""
    from .tensorrt_plugin import bind_library as _bind
    _bind(op, path, name=name, version=version, namespace=namespace)


__all__ = ["Plugin", "PluginOp", "Cpu", "PluginError", "declare", "load", "find", "available", "search_path",
           "bind_library", "use_route", "ATTR_KINDS"]
