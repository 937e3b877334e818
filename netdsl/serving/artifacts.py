"""Writing a network's artifact into a repository folder and reading its interface back from it.

The interface a server sees is taken from the artifact itself, as its engine reads it: the IR read by
OpenVINO, the ONNX graph, the network TensorRT built the plan from. Plugin ops bring the shared
libraries the server has to load.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import NetdslError
from ..graph import Graph
from .interface import TensorInfo

# file names the servers look for by default in a version folder
FILENAMES = {"tensorrt": "model.plan", "openvino": "model.xml", "onnx": "model.onnx"}


@dataclass
class Artifact:
    """What was written for one backend: files, the tensors as the engine sees them, plugin libraries,
    and (TensorRT) the optimization profiles ``[{input: (min, opt, max)}]``."""

    backend: str
    files: list
    inputs: list
    outputs: list
    libraries: list = field(default_factory=list)
    profiles: list = field(default_factory=list)


def plugin_ops(graph: Graph) -> list:
    """(node, plugin declaration) for every plugin layer of ``graph``."""
    from ..ops import get_op
    out = []
    for n in graph.nodes:
        p = get_op(n.op).plugin
        if p is not None:
            out.append((n, p))
    return out


def _where(node: Any) -> str:
    return f"layer '{node.name}'" + (f" at {node.location}" if getattr(node, "location", "") else "")


def tensorrt_libraries(graph: Graph) -> list:
    """The compiled plugin libraries a TensorRT server must load for ``graph`` (bound with
    :func:`netdsl.plugins.bind_library`); a plugin without one cannot run outside this process."""
    libs: list = []
    for node, p in plugin_ops(graph):
        lib = p.library
        if lib is None:
            raise NetdslError(f"{p.describe()} ({_where(node)}): its TensorRT layer is netdsl's Python IPluginV3, "
                              "which a server cannot load; bind a compiled plugin library "
                              "(netdsl.plugins.bind_library) to export it")
        if lib.path is not None and lib.path not in libs:
            libs.append(lib.path)
    return libs


def openvino_libraries(graph: Graph) -> list:
    """The OpenVINO extension libraries (plugins' compiled CPU route) a server must load for ``graph``."""
    libs: list = []
    for node, p in plugin_ops(graph):
        if p.cpu is None or p.cpu.source is None:
            raise NetdslError(f"{p.describe()} ({_where(node)}): only its Python CPU route exists, which a server "
                              "cannot load; declare cpu=Cpu(source='cpu.cpp') to export it")
        from ..plugins.cpp_build import library
        path = library(p)
        if path not in libs:
            libs.append(path)
    return libs


def copy_libraries(libs: list, folder: str) -> list:
    """Copy plugin libraries into ``folder``; returns the copies' paths."""
    out = []
    if libs:
        os.makedirs(folder, exist_ok=True)
    for src in libs:
        dst = os.path.join(folder, os.path.basename(src))
        if os.path.abspath(dst) != os.path.abspath(src):
            shutil.copyfile(src, dst)
        out.append(dst)
    return out


# ---- one writer per backend --------------------------------------------------------------------
def write_openvino(graph: Graph, folder: str, filename: str = FILENAMES["openvino"], **opts: Any) -> Artifact:
    """The IR as ``folder/model.xml`` + ``model.bin``; the interface as OpenVINO reads it back."""
    from ..backends import openvino
    libs = openvino_libraries(graph)
    xml = openvino.build(graph, os.path.join(folder, filename), **opts)
    ins, outs = ir_interface(xml, libs)
    return Artifact("openvino", [xml, xml[:-4] + ".bin"], ins, outs, libs)


def ir_interface(xml: str, libraries: Optional[list] = None) -> tuple:
    """Inputs and outputs of an IR as a fresh ``ov.Core`` reads them (names, element types, dims)."""
    from ..backends.openvino.lower import import_openvino
    ov, _ = import_openvino()
    core = ov.Core()
    for lib in libraries or []:
        core.add_extension(lib)
    try:
        model = core.read_model(xml)
    except RuntimeError as e:
        raise NetdslError(f"OpenVINO cannot read back the IR {xml}: {e}") from e
    types = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "f64": "float64", "i8": "int8",
             "u8": "uint8", "i32": "int32", "i64": "int64", "boolean": "bool"}

    def info(port: Any) -> TensorInfo:
        et = port.get_element_type().get_type_name()
        if et not in types:
            raise NetdslError(f"IR {xml}: tensor '{port.get_any_name()}' has element type {et}, which servers "
                              "cannot exchange")
        dims = tuple(d.get_length() if d.is_static else -1 for d in port.get_partial_shape())
        return TensorInfo(port.get_any_name(), types[et], dims, (None,) * len(dims))

    return [info(p) for p in model.inputs], [info(p) for p in model.outputs]


def write_onnx(graph: Graph, folder: str, filename: str = FILENAMES["onnx"], **opts: Any) -> Artifact:
    """The ONNX model as ``folder/model.onnx``; the interface as the ONNX graph declares it."""
    from ..backends import onnx as onnx_backend
    for node, p in plugin_ops(graph):
        if p.onnx is None:
            raise NetdslError(f"{p.describe()} ({_where(node)}): exported as a custom-domain ONNX node, which "
                              "ONNX Runtime runs only with a custom-op library; declare onnx=fn (a decomposition)")
    path = onnx_backend.build(graph, os.path.join(folder, filename), decompose_plugins=True, **opts)
    ins, outs = onnx_interface(path)
    files = [os.path.join(folder, f) for f in sorted(os.listdir(folder))]
    return Artifact("onnx", files, ins, outs)


def onnx_interface(path: str) -> tuple:
    """Inputs and outputs declared by an ONNX model's graph (dim_param / unknown dims as -1)."""
    import onnx
    m = onnx.load(path, load_external_data=False)
    types = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16",
             onnx.TensorProto.BFLOAT16: "bfloat16", onnx.TensorProto.DOUBLE: "float64",
             onnx.TensorProto.INT8: "int8", onnx.TensorProto.UINT8: "uint8", onnx.TensorProto.INT32: "int32",
             onnx.TensorProto.INT64: "int64", onnx.TensorProto.BOOL: "bool"}
    init = {i.name for i in m.graph.initializer}

    def info(vi: Any) -> TensorInfo:
        tt = vi.type.tensor_type
        if tt.elem_type not in types:
            raise NetdslError(f"ONNX model {path}: tensor '{vi.name}' has element type "
                              f"{onnx.TensorProto.DataType.Name(tt.elem_type)}, which servers cannot exchange")
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim)
        return TensorInfo(vi.name, types[tt.elem_type], dims, (None,) * len(dims))

    return [info(v) for v in m.graph.input if v.name not in init], [info(v) for v in m.graph.output]


def write_tensorrt(graph: Graph, folder: str, filename: str = FILENAMES["tensorrt"], **opts: Any) -> Artifact:
    """The raw plan as ``folder/model.plan`` (exactly TensorRT's serialized engine) and netdsl's metadata
    beside it (``model.plan.json``); the interface is the network's inputs and outputs as TensorRT built
    them."""
    from ..backends import tensorrt
    from ..backends.tensorrt.builder import build
    from ..backends.tensorrt.plan_file import write_plan
    from ..passes.precision import apply_layer_precision
    libs = tensorrt_libraries(graph)
    graph = apply_layer_precision(graph, opts)  # float32 islands by pattern, as tensorrt.build takes them
    opts = tensorrt.options(opts)
    opts.pop("device", None)
    res = build(graph, keep_network=True, **opts)
    net = res.lowered.network
    path = os.path.join(folder, filename)
    write_plan(path, res.plan, res.meta)
    types = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "UINT8": "uint8",
             "INT32": "int32", "INT64": "int64", "BOOL": "bool"}

    def info(t: Any) -> TensorInfo:
        dt = getattr(t.dtype, "name", str(t.dtype).rsplit(".", 1)[-1])
        if dt not in types:
            raise NetdslError(f"TensorRT network '{graph.name}': tensor '{t.name}' has type {dt}, which servers "
                              "cannot exchange")
        dims = tuple(int(d) for d in t.shape)
        return TensorInfo(t.name, types[dt], dims, (None,) * len(dims))

    ins = [info(net.get_input(i)) for i in range(net.num_inputs)]
    outs = [info(net.get_output(i)) for i in range(net.num_outputs)]
    return Artifact("tensorrt", [path, path + ".json"], ins, outs, libs, list(res.profiles))


WRITERS = {"tensorrt": write_tensorrt, "openvino": write_openvino, "onnx": write_onnx}
