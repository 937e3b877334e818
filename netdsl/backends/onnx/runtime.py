"""Run an exported network in ONNX Runtime (CPU): the ``onnx`` backend's CompiledModel."""
from __future__ import annotations

import os
import tempfile
from typing import Any, Optional, Sequence

from ...errors import NetdslError
from ...graph import Graph
from ..base import CompiledModel, import_engine, layer_context
from . import export as _export
from .export import MIN_OPSET, export_onnx, to_model, weight_bytes


def import_ort() -> Any:
    return import_engine("onnxruntime", "running the ONNX backend",
                         "pip install onnxruntime (or pip install 'netdsl[onnx]')")


class OnnxRuntimeModel(CompiledModel):
    """The graph exported to ONNX and run by an ONNX Runtime CPU session."""

    backend = "onnx"

    def __init__(self, graph: Graph, opset: int = MIN_OPSET, threads: Optional[int] = None,
                 custom_op_libraries: Sequence[str] = (), precision: Optional[str] = None,
                 device: Optional[str] = None, **_ignored: Any):
        super().__init__(graph)
        if precision not in (None, "f32", "fp32", "float32"):
            raise NetdslError(f"onnx backend runs the network's own dtypes; precision {precision!r} is not supported")
        if device not in (None, "cpu", "CPU"):
            raise NetdslError(f"onnx backend runs on the CPU only, not {device!r}")
        ort = import_ort()
        so = ort.SessionOptions()
        if threads:
            so.intra_op_num_threads = int(threads)
        for lib in custom_op_libraries:
            so.register_custom_ops_library(os.fspath(lib))
        self._tmp = None
        if not custom_op_libraries:
            _refuse_custom_plugins(graph)
        if weight_bytes(graph) > _export.INLINE_LIMIT:  # external data: go through a file
            self._tmp = tempfile.TemporaryDirectory(prefix="netdsl-onnx-")
            src: Any = export_onnx(graph, os.path.join(self._tmp.name, "model.onnx"), opset=opset,
                                   external_data=True, check=False, decompose_plugins=True)
        else:
            self.model_proto = to_model(graph, opset=opset, decompose_plugins=True)
            src = self.model_proto.SerializeToString()
        try:
            self.session = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
        except Exception as e:
            proto = getattr(self, "model_proto", None)
            custom = sorted({n.domain for n in proto.graph.node if n.domain}) if proto is not None else []
            hint = (f"; custom-domain ops ({', '.join(custom)}) need their ONNX Runtime library: "
                    "compile(..., custom_op_libraries=[...])") if custom else ""
            raise NetdslError(f"ONNX Runtime could not load network '{graph.name}': {e}{hint}") from e

    def run(self, feeds: dict) -> dict:
        try:
            outs = self.session.run(self.output_names, feeds)
        except Exception as e:  # ONNX Runtime names the node, which is the netdsl layer
            raise NetdslError(f"ONNX Runtime failed running network '{self.graph.name}'"
                              f"{layer_context(self.graph, str(e))}: {e}") from e
        return dict(zip(self.output_names, outs))


def _refuse_custom_plugins(graph: Graph) -> None:
    """ONNX Runtime runs a plugin only through its standard-ONNX decomposition (or a custom-op library)."""
    from ...errors import UnsupportedOpError
    from ...ops import get_op
    from .table import TABLE
    for node in graph.nodes:
        p = get_op(node.op).plugin
        if p is not None and getattr(p, "onnx", None) is None and node.op not in TABLE:
            raise UnsupportedOpError(
                f"onnx backend: plugin '{node.op}' (layer '{node.name}'{', ' + node.location if node.location else ''})"
                " has no standard-ONNX decomposition (declare onnx=fn), so ONNX Runtime cannot run it; its "
                "export is a custom-domain node (netdsl.export_onnx), which runs with an ONNX Runtime custom-op "
                "library: compile(..., custom_op_libraries=[...])")


__all__ = ["OnnxRuntimeModel", "import_ort"]
