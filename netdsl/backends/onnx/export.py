"""Export a netdsl Graph as an ONNX model (opset 17 or newer).

Weights become initializers named like the parameters, read lazily one at a time
(``graph.params[name].value()``); above 2 GB (or when asked) they are streamed to one external data
file beside the model. Inputs keep symbolic dims as named ``dim_param``s; layer names become node
names, tensor names value names, output names the DSL's. Plugins become custom-domain nodes.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Optional

import numpy as np

from ...dtypes import DType
from ...errors import NetdslError, UnsupportedOpError
from ...graph import Graph, Node, Value
from ...ops import get_op
from ..base import import_engine
from .context import ONNX_DTYPES, ExportContext, to_bfloat16_bits
from .table import TABLE

MIN_OPSET = 17
INLINE_LIMIT = 2 ** 31 - 2 ** 26  # protobuf's 2 GB message limit, with room for the graph itself
PLUGIN_DOMAIN = "netdsl.plugins"
_F32 = (None, "f32", "fp32", "float32")


def import_onnx() -> Any:
    """``import onnx`` or raise BackendUnavailable with install advice."""
    return import_engine("onnx", "the ONNX backend", "pip install onnx onnxruntime (or pip install 'netdsl[onnx]')")


def max_opset() -> int:
    """The newest default-domain opset the installed onnx knows."""
    return int(import_onnx().defs.onnx_opset_version())


def weight_bytes(graph: Graph) -> int:
    """Bytes of all parameters and constants (from declared shapes: reads no weights)."""
    total = sum(int(np.prod(p.shape, dtype=np.int64)) * p.dtype.itemsize for p in graph.params.values())
    return total + sum(n.attrs["value"].nbytes for n in graph.nodes if n.op == "constant")


class TensorSink:
    """Makes initializer TensorProtos: inline, or appended to one external data file."""

    def __init__(self, onnx: Any, external: bool, data_path: Optional[str] = None, threshold: int = 1024):
        self.onnx = onnx
        self.external = external
        self.data_path = data_path
        self.location = os.path.basename(data_path) if data_path else None
        self.threshold = threshold
        self._f = None

    def tensor(self, name: str, value: Any, dtype: DType, external_ok: bool = True) -> Any:
        data = value.read() if hasattr(value, "read") else np.asarray(value)
        t = self.onnx.TensorProto()
        t.name = name
        t.data_type = ONNX_DTYPES[dtype]
        t.dims.extend(int(d) for d in data.shape)
        if dtype == DType.bfloat16:
            raw = to_bfloat16_bits(data).tobytes()
        else:
            arr = np.ascontiguousarray(data, dtype.numpy)
            raw = (arr if sys.byteorder == "little" else arr.byteswap()).tobytes()
        if self.external and external_ok and len(raw) >= self.threshold:
            if self._f is None:
                self._f = open(self.data_path, "wb")
            offset = self._f.tell()
            self._f.write(raw)
            t.data_location = self.onnx.TensorProto.EXTERNAL
            for k, v in (("location", self.location), ("offset", str(offset)), ("length", str(len(raw)))):
                e = t.external_data.add()
                e.key, e.value = k, v
        else:
            t.raw_data = raw
        return t

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def _dims(shape: tuple) -> list:
    return [d if isinstance(d, int) else str(d) for d in shape]


def _value_info(onnx: Any, v: Value) -> Any:
    return onnx.helper.make_tensor_value_info(v.name, ONNX_DTYPES[v.dtype], _dims(v.shape))


def _plugin_node(ctx: ExportContext, node: Node) -> None:
    """Default export of a plugin op: one custom-domain node carrying the op's attributes."""
    opdef = get_op(node.op)
    plugin = opdef.plugin
    domain = getattr(plugin, "onnx_domain", None) or PLUGIN_DOMAIN
    op_type = getattr(plugin, "onnx_op", None) or node.op
    ctx.add(op_type, [ctx.inp(node, i) for i in range(len(node.inputs))], [o.name for o in node.outputs],
            domain=domain)
    ctx.domains[domain] = int(getattr(plugin, "onnx_version", 1) or 1)
    for k, val in node.attrs.items():
        a = attribute(ctx.onnx, k, val, opdef.attrs[k].kind if k in opdef.attrs else "any")
        if a is not None:
            ctx.nodes[-1].attribute.append(a)
    if getattr(plugin, "namespace", None) is not None:  # how TensorRT's ONNX parser finds the plugin creator
        ctx.nodes[-1].attribute.extend([ctx.onnx.helper.make_attribute("plugin_version", plugin.version),
                                        ctx.onnx.helper.make_attribute("plugin_namespace", plugin.namespace)])
    ctx.value_info.extend(_value_info(ctx.onnx, o) for o in node.outputs)  # types for shape inference


def attribute(onnx: Any, name: str, value: Any, kind: str = "any") -> Any:
    """An AttributeProto for a netdsl attribute value (None -> omitted, bool -> int, dtype -> str)."""
    A = onnx.AttributeProto
    if value is None:
        return None
    if isinstance(value, DType):
        return onnx.helper.make_attribute(name, value.value)
    if isinstance(value, np.ndarray):
        return onnx.helper.make_attribute(name, onnx.numpy_helper.from_array(value, name))
    if isinstance(value, (bool, np.bool_)):
        return onnx.helper.make_attribute(name, int(value))
    if isinstance(value, (tuple, list)):
        if kind == "floats" or any(isinstance(v, float) for v in value):
            return onnx.helper.make_attribute(name, [float(v) for v in value], attr_type=A.FLOATS)
        if kind == "ints" or all(isinstance(v, (int, np.integer)) for v in value):
            return onnx.helper.make_attribute(name, [int(v) for v in value], attr_type=A.INTS)
        return onnx.helper.make_attribute(name, [str(v) for v in value], attr_type=A.STRINGS)
    return onnx.helper.make_attribute(name, value)


def _check_opset(onnx: Any, opset: int) -> None:
    newest = int(onnx.defs.onnx_opset_version())
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise NetdslError(f"ONNX export: opset {opset!r} is not supported; choose {MIN_OPSET}..{newest} "
                          f"(the newest the installed onnx {onnx.__version__} knows)")


def _build(graph: Graph, opset: int, sink: TensorSink, onnx: Any, decompose_plugins: bool = False) -> Any:
    graph.validate()
    ctx = ExportContext(graph, opset, onnx, sink)
    outputs = {id(v) for v in graph.outputs}
    for node in graph.nodes:
        fn = TABLE.get(node.op)
        if fn is None:
            if get_op(node.op).plugin is None:
                raise UnsupportedOpError(
                    f"ONNX export: layer '{node.name}' ({node.op}, {node.location}) has no ONNX exporter; "
                    "add one with netdsl.backends.onnx.register_export(op, fn)")
            decomposition = getattr(get_op(node.op).plugin, "onnx", None)
            fn = decomposition if decompose_plugins and decomposition is not None else _plugin_node
        ctx.current = node
        try:
            if node.op in ("constant", "parameter") and id(node.outputs[0]) in outputs:
                _constant_output(ctx, node)
            else:
                fn(ctx, node)
        except NetdslError:
            raise
        except Exception as e:
            raise NetdslError(f"ONNX export: layer '{node.name}' ({node.op}, {node.location}) failed: "
                              f"{type(e).__name__}: {e}") from e
    ctx.current = None
    h = onnx.helper
    g = h.make_graph(ctx.nodes, graph.name, [_value_info(onnx, v) for v in graph.inputs],
                     [_value_info(onnx, v) for v in graph.outputs], initializer=ctx.initializers,
                     value_info=ctx.value_info)
    imports = [h.make_opsetid("", opset)] + [h.make_opsetid(d, v) for d, v in sorted(ctx.domains.items())]
    from ... import __version__
    model = h.make_model(g, opset_imports=imports, producer_name="netdsl", producer_version=__version__,
                         ir_version=h.find_min_ir_version_for(imports, ignore_unknown=True))
    model.doc_string = f"netdsl network '{graph.name}' (structure {graph.structure_hash()[:16]})"
    return model


def _constant_output(ctx: ExportContext, node: Node) -> None:
    """A weight or constant that is itself a graph output: a Constant node (outputs can't be initializers)."""
    from .table import _Lazy
    v = node.outputs[0]
    src = ctx.graph.params[node.attrs["name"]] if node.op == "parameter" else node.attrs["value"]
    t = TensorSink(ctx.onnx, False).tensor(v.name, _Lazy(src) if node.op == "parameter" else src, v.dtype)
    ctx.add("Constant", [], [v.name], value=t)


def to_model(graph: Graph, opset: int = MIN_OPSET, decompose_plugins: bool = False) -> Any:
    """The ``onnx.ModelProto`` of ``graph`` with every weight inline (must stay under 2 GB).

    Plugins are custom-domain nodes, or with ``decompose_plugins`` their standard-ONNX decomposition
    where the declaration has one (``onnx=``)."""
    onnx = import_onnx()
    _check_opset(onnx, opset)
    if weight_bytes(graph) > INLINE_LIMIT:
        raise NetdslError(f"network '{graph.name}' has {weight_bytes(graph) / 2**30:.2f} GB of weights: "
                          "too large for one ONNX protobuf; use export_onnx(graph, path) (external data)")
    return _build(graph, opset, TensorSink(onnx, False), onnx, decompose_plugins)


def export_onnx(graph: Graph, path: Any, opset: int = MIN_OPSET, external_data: Optional[bool] = None,
                external_threshold: int = 1024, external_location: Optional[str] = None, check: bool = True,
                precision: Optional[str] = None, decompose_plugins: bool = False, **_backend_opts: Any) -> str:
    """Write ``graph`` as an ONNX model at ``path`` and return the path.

    ``opset``: 17 up to the newest the installed onnx knows. ``external_data``: None = automatically
    above 2 GB of weights, True = always, False = never; tensors of at least ``external_threshold``
    bytes then go to ``external_location`` (default ``<model file name>.data``, beside the model).
    ``check`` runs onnx.checker (full check, strict shape inference) on the written file.
    ``decompose_plugins``: plugins with a standard-ONNX decomposition are written as that (see to_model).
    Other backend options of ``netdsl build`` (device, hint, cache_dir, workspace) do not apply and
    are ignored; ``precision`` must be f32 (the model keeps the network's dtypes).
    """
    onnx = import_onnx()
    _check_opset(onnx, opset)
    if precision not in _F32:
        raise NetdslError(f"ONNX export keeps the network's dtypes: precision {precision!r} is not supported "
                          "(cast in the network instead)")
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    external = weight_bytes(graph) > INLINE_LIMIT if external_data is None else bool(external_data)
    data_path = os.path.join(os.path.dirname(os.path.abspath(path)),
                             external_location or os.path.basename(path) + ".data")
    sink = TensorSink(onnx, external, data_path, external_threshold)
    try:
        model = _build(graph, opset, sink, onnx, decompose_plugins)
    finally:
        sink.close()
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    if check:
        try:
            onnx.checker.check_model(path, full_check=True)
        except Exception as e:
            raise NetdslError(f"ONNX export of '{graph.name}' to {path}: onnx.checker rejected the model: {e}") from e
    return path


__all__ = ["export_onnx", "to_model", "import_onnx", "max_opset", "attribute", "TensorSink"]
