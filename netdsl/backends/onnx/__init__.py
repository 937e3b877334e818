"""ONNX backend: export a Graph as an ONNX model; run it in ONNX Runtime (CPU).

``onnx`` and ``onnxruntime`` are optional (``pip install onnx onnxruntime``, or the ``onnx`` extra):
they are imported on first use only, and their absence raises :class:`BackendUnavailable`.

* :func:`export_onnx` / :func:`build` write a ``.onnx`` file (external data above 2 GB).
* :func:`compile` returns a :class:`~netdsl.backends.base.CompiledModel` running the exported model
  in ONNX Runtime.
* :func:`register_export` maps an op (e.g. a plugin) to a function emitting ONNX nodes.
"""
from __future__ import annotations

from typing import Any

from ...graph import Graph
from .table import TABLE, register_export  # noqa: F401  (imports no onnx)
from . import preprocess, ranges  # noqa: F401,E402  (register preprocess, arange, slice_to)


def export_onnx(graph: Graph, path: Any, opset: int = 17, **options: Any) -> str:
    """Write ``graph`` as an ONNX model at ``path``; returns the path (see :mod:`.export`)."""
    from .export import export_onnx as _export
    return _export(graph, path, opset=opset, **options)


def to_model(graph: Graph, opset: int = 17, **options: Any) -> Any:
    """The ``onnx.ModelProto`` for ``graph`` (weights inline)."""
    from .export import to_model as _to_model
    return _to_model(graph, opset=opset, **options)


def build(graph: Graph, path: Any, **options: Any) -> str:
    """Backend API: write the ``.onnx`` artifact (``netdsl build MODEL.py --backend onnx -o m.onnx``)."""
    return export_onnx(graph, path, **options)


def compile(graph: Graph, **options: Any) -> Any:  # noqa: A001
    """Backend API: export ``graph`` and run it in ONNX Runtime on the CPU."""
    from .runtime import OnnxRuntimeModel
    return OnnxRuntimeModel(graph, **options)


__all__ = ["export_onnx", "to_model", "build", "compile", "register_export", "TABLE"]


def supported_ops() -> set[str]:
    """Ops the exporter maps (plugins become custom-domain nodes on top of these)."""
    return set(TABLE)
