"""netdsl: describe a network once in Python; run it in NumPy, OpenVINO, TensorRT or ONNX.

``import netdsl`` imports no engine (tensorrt, openvino, pycuda, onnx): each backend imports its
engine on first use and says what to install when it is missing.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import functional, layers, ops  # noqa: F401
from . import layers as nn  # noqa: F401
from .dsl import Network, Tensor  # noqa: F401
from .dtypes import DType, as_dtype  # noqa: F401
from .errors import (AttrError, BackendUnavailable, GraphError, ModuleError, NetdslError,  # noqa: F401
                     ShapeError, UnknownOpError, UnsupportedOpError, WeightError)
from .functional import *  # noqa: F401,F403
from .graph import Graph  # noqa: F401
from .shapes import Sym  # noqa: F401

if TYPE_CHECKING:  # at run time netdsl.Preprocess is imported on first use (module __getattr__ below)
    from .preprocessing import Preprocess  # noqa: F401

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``netdsl.Preprocess`` is imported on first use (most networks never need it)."""
    if name == "Preprocess":
        from .preprocessing import Preprocess
        return Preprocess
    raise AttributeError(f"module 'netdsl' has no attribute {name!r}")


def compile(network: Any, backend: str = "reference", **options: Any) -> Any:  # noqa: A001
    """Compile a Network/Graph with a backend ('reference', 'openvino', 'tensorrt', 'onnx')."""
    from .backends import compile as _compile
    return _compile(network, backend=backend, **options)


def export_onnx(network: Any, path: Any, opset: int = 17, **options: Any) -> Any:
    """Write the network as an ONNX model (needs the ``onnx`` extra)."""
    from .backends.onnx import export_onnx as _export
    return _export(getattr(network, "graph", network), path, opset=opset, **options)


def quantize(network: Any, calibration_batches: Any, method: str = "mse", **options: Any) -> Any:
    """INT8 post-training quantization (see :func:`netdsl.quantization.quantize`)."""
    from .quantization import quantize as _quantize
    return _quantize(network, calibration_batches, method=method, **options)


def summary(network: Any) -> str:
    from .summary import summary as _summary
    return _summary(getattr(network, "graph", network))


def compare_layers(network: Any, backends: Any = ("openvino",), inputs: Any = None, **options: Any) -> Any:
    """Every layer's output on each backend against the float64 reference; ``.backends[b].first_divergence``
    names the first layer that differs (see :func:`netdsl.layerwise.compare_layers`)."""
    from .layerwise import compare_layers as _compare
    return _compare(network, backends, inputs, **options)
