"""The OpenVINO backend: lower a netdsl Graph to an OpenVINO opset graph, compile, run, save IR.

    model = netdsl.compile(net, "openvino", precision="f32", hint="latency")
    outputs = model(data=x)                       # dict of NumPy arrays, thread-safe
    outputs = model.run_many([feeds1, feeds2])    # AsyncInferQueue
    build(net.graph, "m.xml")                     # OpenVINO IR; load_ir("m.xml") runs it again

``import netdsl`` does not import openvino: it is imported when a model is lowered. Without it,
:class:`~netdsl.errors.BackendUnavailable` says ``pip install openvino`` (or ``netdsl[openvino]``).
"""
from __future__ import annotations

from typing import Any, Optional

from .lower import LOWERINGS, register_lowering, supported_ops  # noqa: F401
from . import preprocess, ranges  # noqa: F401,E402  (register preprocess, arange, slice_to)


def compile(graph: Any, **options: Any) -> Any:  # noqa: A001
    """Lower and compile (see :func:`netdsl.backends.openvino.runtime.compile` for the options)."""
    from ...passes.precision import apply_layer_precision
    from .runtime import compile as _compile
    return _compile(apply_layer_precision(getattr(graph, "graph", graph), options), **options)


def build(graph: Any, path: Any, compress_to_fp16: bool = False, precision: Optional[str] = None,
          dynamic: Optional[dict] = None, **runtime_options: Any) -> str:
    """Write OpenVINO IR (``path`` .xml + .bin). ``precision="f16"`` compresses weights to fp16;
    ``layer_precision={pattern: "float32"}`` marks layers to stay f32 under bf16/f16 inference; runtime
    options (device, hint, cache_dir, num_streams) are accepted and not stored."""
    from ...passes.precision import apply_layer_precision
    from .ir import save_ir
    graph = apply_layer_precision(getattr(graph, "graph", graph), runtime_options)  # float32 islands by pattern
    if precision is not None and str(precision).lower() in ("f16", "fp16", "float16"):
        compress_to_fp16 = True
    return save_ir(getattr(graph, "graph", graph), path, compress_to_fp16=compress_to_fp16, dynamic=dynamic)


def load_ir(path: Any, **options: Any) -> Any:
    """Load an IR written by :func:`build` (or any OpenVINO IR) for inference."""
    from .ir import load_ir as _load
    return _load(path, **options)


def save_ir(model: Any, path: Any, **options: Any) -> str:
    from .ir import save_ir as _save
    return _save(model, path, **options)


def to_ov_model(graph: Any, dynamic: Optional[dict] = None) -> Any:
    """The ``ov.Model`` for ``graph`` (lowered, not compiled)."""
    from .lower import lower as _lower
    return _lower(getattr(graph, "graph", graph), dynamic=dynamic)


def can_execute() -> tuple[bool, str]:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False, "openvino is not installed (pip install openvino)"
    return True, ""


__all__ = ["compile", "build", "load_ir", "save_ir", "to_ov_model", "register_lowering", "supported_ops", "LOWERINGS"]
