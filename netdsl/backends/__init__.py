"""Backends: each lowers a Graph for one engine. Engines are imported on first use only.

A backend module exposes ``compile(graph, **options) -> CompiledModel`` and may expose
``build(graph, path, **options)`` (write a deployable artifact) and ``check(graph, inputs, **options)``
(a backend-specific proof used by ``netdsl check`` when the model cannot run here).
"""
from __future__ import annotations

import importlib
from typing import Any

from ..errors import NetdslError
from ..graph import Graph

BACKENDS = {
    "reference": "netdsl.backends.reference",
    "openvino": "netdsl.backends.openvino",
    "tensorrt": "netdsl.backends.tensorrt",
    "onnx": "netdsl.backends.onnx",
}


def get_backend(name: str) -> Any:
    """Import and return the backend module called ``name``."""
    if name not in BACKENDS:
        raise NetdslError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    return importlib.import_module(BACKENDS[name])


def compile(graph: Any, backend: str = "reference", **options: Any) -> Any:  # noqa: A001
    """Compile a Graph (or Network) with the named backend; returns a callable CompiledModel.
    ``layer_precision={"*/layer_norm*": "float32"}`` keeps matching layers in that type."""
    g = getattr(graph, "graph", graph)
    if not isinstance(g, Graph):
        raise TypeError(f"expected a Network or Graph, got {type(graph).__name__}")
    from ..passes.precision import apply_layer_precision  # those layers run in that type at reduced precision
    return get_backend(backend).compile(apply_layer_precision(g, options), **options)
