"""TensorRT IPluginV3 generated from a plugin declaration, its creator, and compiled plugin libraries.

One Python class implements the core, build and runtime capabilities (``IPluginV3OneCore`` /
``IPluginV3OneBuild`` / ``IPluginV3OneRuntime``):

- output dims: the node's shape program (:mod:`.shape_program`, traced from the declared inference)
  built with TensorRT's ``IExprBuilder``, so symbolic dims stay symbolic in the engine;
- types and formats: linear tensors; the compute type ``T`` (one of the declared dtypes) for the
  tensors that follow the first input, fixed types for the others;
- serialization: the declared attributes as plugin fields (int and bool -> INT32, float -> FLOAT32,
  str -> CHAR, ints -> INT32[], floats -> FLOAT32[]: the types TensorRT's ONNX parser produces from
  ONNX attributes), plus ``netdsl_shapes`` and ``netdsl_type`` (CHAR);
- ``enqueue``: :func:`netdsl.plugins.cuda.launch` of the declared kernel with TensorRT's stream and
  device pointers (cuda-python/cupy can launch on a foreign stream; pycuda cannot).

The creator (``IPluginCreatorV3One``) is registered in TensorRT's plugin registry under the plugin's
name, version and namespace; both the network builder and a plan's deserializer find it there.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Optional

import numpy as np

from ..errors import NetdslError
from .declaration import Plugin, PluginError, PluginOp
from .shape_program import ShapeProgram, fold

_lock = threading.RLock()
_creators: dict[tuple, Any] = {}      # (trt module name, plugin key) -> creator (kept alive)
_classes: dict[str, tuple] = {}       # trt module name -> (plugin class, creator class)
_libraries: dict[str, Any] = {}        # loaded plugin library paths

TRT_TYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16", "int8": "int8",
             "uint8": "uint8", "int32": "int32", "int64": "int64", "bool": "bool"}
INT32 = (-2 ** 31, 2 ** 31 - 1)


def trt_type(trt: Any, name: str) -> Any:
    return getattr(trt, TRT_TYPES[name])


def dtype_name(trt: Any, t: Any) -> str:
    for n in TRT_TYPES:
        if getattr(trt, TRT_TYPES[n]) == t:
            return n
    raise NetdslError(f"TensorRT type {t} has no netdsl dtype")


# ---- fields ----------------------------------------------------------------------------------------
def field_types(trt: Any, p: Plugin) -> dict:
    """Field name -> PluginFieldType of the declared attributes (and netdsl's own fields)."""
    F = trt.PluginFieldType
    kinds = {"int": F.INT32, "bool": F.INT32, "float": F.FLOAT32, "str": F.CHAR, "ints": F.INT32,
             "floats": F.FLOAT32}
    out = {k: kinds[a.kind] for k, a in p.opdef.attrs.items()}  # type: ignore[union-attr]
    out["netdsl_shapes"] = F.CHAR
    out["netdsl_type"] = F.CHAR
    return out


def check_int32(p: Plugin, attrs: dict, where: str) -> None:
    for k, a in p.opdef.attrs.items():  # type: ignore[union-attr]
        vals = attrs.get(k)
        if a.kind in ("int", "ints") and vals is not None:
            for v in (vals if a.kind == "ints" else [vals]):
                if not INT32[0] <= int(v) <= INT32[1]:
                    raise PluginError(f"{p.describe()} at {where}: attribute '{k}' = {v} does not fit the INT32 "
                                      "plugin field TensorRT uses for ints")


def encode_fields(trt: Any, p: Plugin, attrs: dict, program: str = "", compute: str = "",
                  keep: Optional[list] = None) -> Any:
    """A PluginFieldCollection of the attributes (+ shape program and compute type when given). TensorRT
    reads the fields' memory without owning it: the arrays are appended to ``keep``, which the caller
    holds for as long as the collection is used."""
    types = field_types(trt, p)
    F = trt.PluginFieldType
    fields = []
    for k, a in p.opdef.attrs.items():  # type: ignore[union-attr]
        v = attrs.get(k)
        if a.kind in ("int", "bool"):
            data = np.array([int(v)], np.int32)
        elif a.kind == "float":
            data = np.array([v], np.float32)
        elif a.kind == "ints":
            data = np.array(list(v or ()), np.int32)
        elif a.kind == "floats":
            data = np.array(list(v or ()), np.float32)
        else:
            data = np.frombuffer(("" if v is None else str(v)).encode() + b"\0", np.int8)
        fields.append((k, data, types[k]))
    for k, v in (("netdsl_shapes", program), ("netdsl_type", compute)):
        if v:
            fields.append((k, np.frombuffer(v.encode() + b"\0", np.int8), F.CHAR))
    if keep is not None:
        keep.extend(d for _, d, _ in fields)
    return trt.PluginFieldCollection([trt.PluginField(k, d, t) for k, d, t in fields])


def decode_fields(p: Plugin, fc: Any) -> tuple[dict, str, str]:
    """(attributes, shape program, compute type) from plugin fields (as the parser or a plan gives them)."""
    raw = {}
    for f in fc or ():
        raw[f.name] = np.asarray(f.data)
    attrs: dict[str, Any] = {}
    for k, a in p.opdef.attrs.items():  # type: ignore[union-attr]
        if k not in raw:
            continue
        d = raw[k]
        if a.kind == "int":
            attrs[k] = int(d.reshape(-1)[0])
        elif a.kind == "bool":
            attrs[k] = bool(int(d.reshape(-1)[0]))
        elif a.kind == "float":
            attrs[k] = float(d.reshape(-1)[0])
        elif a.kind == "ints":
            attrs[k] = tuple(int(x) for x in d.reshape(-1))
        elif a.kind == "floats":
            attrs[k] = tuple(float(x) for x in d.reshape(-1))
        else:
            attrs[k] = _text(d)
    attrs = p.opdef.normalize_attrs(attrs)  # type: ignore[union-attr]
    return attrs, _text(raw.get("netdsl_shapes")), _text(raw.get("netdsl_type"))


def _text(d: Optional[np.ndarray]) -> str:
    if d is None:
        return ""
    return bytes(np.asarray(d).astype(np.uint8)).split(b"\0")[0].decode()


# ---- the plugin and its creator -------------------------------------------------------------------
def _classes_for(trt: Any) -> tuple:
    """The IPluginV3 and IPluginCreatorV3One classes for this TensorRT module (made once)."""
    key = trt.__name__
    with _lock:
        if key in _classes:
            return _classes[key]

        class GeneratedPlugin(trt.IPluginV3, trt.IPluginV3OneCore, trt.IPluginV3OneBuild,  # type: ignore
                              trt.IPluginV3OneRuntime):
            """One plugin node: the declaration, its attributes, shape program and compute type."""

            def __init__(self, p: Plugin, attrs: dict, program: str, compute: str) -> None:
                trt.IPluginV3.__init__(self)
                trt.IPluginV3OneCore.__init__(self)
                trt.IPluginV3OneBuild.__init__(self)
                trt.IPluginV3OneRuntime.__init__(self)
                self.decl = p
                self.attrs = attrs
                self.program_text = program
                self.program = ShapeProgram.decode(program) if program else None
                self.compute = compute or "float32"
                self.plugin_name = p.trt_name
                self.plugin_version = p.version
                self.plugin_namespace = p.namespace
                self.num_outputs = len(p.opdef.outputs)  # type: ignore[union-attr]

            def get_capability_interface(self, kind: Any) -> Any:
                return self

            def clone(self) -> Any:
                return GeneratedPlugin(self.decl, dict(self.attrs), self.program_text, self.compute)

            # -- build --
            def _prog(self) -> ShapeProgram:
                if self.program is None:
                    raise PluginError(f"{self.decl.describe()}: no shape program (field netdsl_shapes) was given")
                return self.program

            def get_output_data_types(self, input_types: Any) -> list:
                return [trt_type(trt, t) for t in self._prog().output_types(self.compute)]

            def get_output_shapes(self, inputs: Any, shape_inputs: Any, builder: Any) -> list:
                ops = {"+": trt.DimensionOperation.SUM, "-": trt.DimensionOperation.SUB,
                       "*": trt.DimensionOperation.PROD, "/": trt.DimensionOperation.FLOOR_DIV,
                       "cdiv": trt.DimensionOperation.CEIL_DIV}

                def leaf(e: Any) -> Any:
                    return builder.constant(e) if isinstance(e, int) else inputs[e[1]][e[2]]

                def binop(op: str, a: Any, b: Any) -> Any:
                    return builder.operation(ops[op], a, b)

                out = []
                for _, dims in self._prog().outputs:
                    d = trt.DimsExprs(len(dims))
                    for j, e in enumerate(dims):
                        d[j] = fold(e, leaf, binop)
                    out.append(d)
                return out

            def supports_format_combination(self, pos: int, in_out: Any, num_inputs: int) -> bool:
                desc = in_out[pos].desc
                if desc.format != trt.TensorFormat.LINEAR:
                    return False
                prog = self._prog()
                types = list(prog.inputs) + [t for t, _ in prog.outputs]
                want = self.compute if types[pos] == "T" else types[pos]
                return desc.type == trt_type(trt, want)

            def configure_plugin(self, inputs: Any, outputs: Any) -> None:
                pass

            def get_workspace_size(self, inputs: Any, outputs: Any) -> int:
                return 0

            def get_valid_tactics(self) -> list:
                return []

            # -- runtime --
            def on_shape_change(self, inputs: Any, outputs: Any) -> None:
                pass

            def set_tactic(self, tactic: int) -> None:
                pass

            def attach_to_context(self, context: Any) -> Any:
                return self.clone()

            def get_fields_to_serialize(self) -> Any:
                self._field_data: list = []  # alive as long as this plugin (TensorRT reads it later)
                return encode_fields(trt, self.decl, self.attrs, self.program_text, self.compute, self._field_data)

            def enqueue(self, input_desc: Any, output_desc: Any, inputs: Any, outputs: Any, workspace: Any,
                        stream: Any) -> None:
                p = self.decl
                if p.cuda is None:
                    raise PluginError(f"{p.describe()} has no CUDA kernel (cuda=CudaKernel(...))")
                from .cuda import launch
                dt = self.compute  # the entry for the compute type (supports_format_combination)
                shapes = [tuple(int(d) for d in desc.dims) for desc in input_desc]
                launch(p.cuda, dt, int(stream), [int(x) for x in inputs], [int(y) for y in outputs], shapes,
                       self.attrs)

        class GeneratedCreator(trt.IPluginCreatorV3One):  # type: ignore
            """Makes GeneratedPlugin objects from fields (TensorRT's ONNX parser, a plan's deserializer)."""

            def __init__(self, p: Plugin) -> None:
                trt.IPluginCreatorV3One.__init__(self)
                self.decl = p
                self.name = p.trt_name
                self.plugin_namespace = p.namespace
                self.plugin_version = p.version
                types = field_types(trt, p)
                self._field_data = [np.array([], np.int8) for _ in types]  # alive with the creator
                self.field_names = trt.PluginFieldCollection(
                    [trt.PluginField(k, d, t) for (k, t), d in zip(types.items(), self._field_data)])

            def create_plugin(self, name: str, fc: Any, phase: Any) -> Any:
                attrs, program, compute = decode_fields(self.decl, fc)
                return GeneratedPlugin(self.decl, attrs, program, compute)

        _classes[key] = (GeneratedPlugin, GeneratedCreator)
        return _classes[key]


def register(trt: Any, p: Plugin) -> Any:
    """Register the creator of ``p`` with TensorRT's plugin registry (once); returns it. A plugin bound
    to a compiled library loads that library instead."""
    if p.library is not None:
        return load_library(trt, p)
    key = (trt.__name__, p.key)
    with _lock:
        c = _creators.get(key)
        if c is not None and c.decl is p:
            return c
        registry = trt.get_plugin_registry()
        if c is not None:  # the plugin was declared again: replace the creator
            registry.deregister_creator(c)
        c = _classes_for(trt)[1](p)
        if not registry.register_creator(c, p.namespace):
            raise PluginError(f"{p.describe()}: TensorRT's plugin registry refused its creator (is another creator "
                              "with the same name, version and namespace registered?)")
        _creators[key] = c
        return c


def register_graph(trt: Any, graph: Any) -> None:
    """Register the creators of every plugin a graph uses (before building or deserializing a plan)."""
    from ..ops import get_op
    for op in {n.op for n in graph.nodes}:
        p = get_op(op).plugin
        if isinstance(p, Plugin) and (p.cuda is not None or p.library is not None):
            register(trt, p)


def fingerprint(graph: Any) -> str:
    """What a plan holds of a graph's plugin layers beyond the graph's structure: each creator's identity,
    dtypes, the bound library file and the shape programs ('' for a graph without plugins). Part of the
    engine cache key, so that a redeclared or rebound plugin is not served a stale plan."""
    import hashlib
    from ..ops import get_op
    from .shape_program import ShapeProgramError, trace
    parts = []
    for n in graph.nodes:
        p = get_op(n.op).plugin
        if not isinstance(p, Plugin):
            continue
        lib = p.library
        if lib is not None and lib.path and os.path.isfile(lib.path):
            st = os.stat(lib.path)
            lib_id = f"{lib.path}:{st.st_size}:{st.st_mtime_ns}"
        else:
            lib_id = repr(lib)
        try:
            prog = trace(p.opdef, [None if v is None else v.spec for v in n.inputs], n.attrs).encode()
        except ShapeProgramError as e:
            prog = f"error: {e}"
        parts.append(f"{n.name}|{identity(p)}|{[d.value for d in p.dtypes]}|{lib_id}|{prog}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest() if parts else ""


def make_plugin(trt: Any, p: Plugin, attrs: dict, program: str, compute: str) -> Any:
    """A plugin object for one node (the generated IPluginV3, or one from the bound library's creator)."""
    if p.library is None:
        return _classes_for(trt)[0](p, attrs, program, compute)
    creator = load_library(trt, p)
    keep: list = []
    fc = encode_fields(trt, p, attrs, keep=keep)
    return creator.create_plugin(p.trt_name, fc, trt.TensorRTPhase.BUILD)  # the creator copies the fields


# ---- compiled plugin libraries ---------------------------------------------------------------------
class Library:
    """A compiled TensorRT plugin creator bound to a declaration: its library (None: a creator already in
    the registry, e.g. one of TensorRT's own plugins) and the creator's name, version and namespace."""

    def __init__(self, path: Optional[str], name: str, version: str, namespace: str):
        self.path, self.name, self.version, self.namespace = path, name, version, namespace

    def __repr__(self) -> str:
        return f"Library({self.path!r}, creator {self.name}/{self.version}/{self.namespace!r})"


def bind_library(op: "PluginOp | str", path: Optional[str], *, name: Optional[str] = None,
                 version: Optional[str] = None, namespace: Optional[str] = None) -> None:
    """See :func:`netdsl.plugins.bind_library`."""
    from .loader import load
    p = load(op).plugin if not isinstance(op, PluginOp) else op.plugin
    if path is not None and not os.path.isfile(path):
        raise PluginError(f"{p.describe()}: plugin library {path} does not exist")
    p.library = Library(None if path is None else os.path.abspath(path), name or p.trt_name, version or p.version,
                        p.namespace if namespace is None else namespace)


def identity(p: Plugin) -> tuple[str, str, str]:
    """(name, version, namespace) of the creator TensorRT uses for ``p`` (a bound creator's, or p's own)."""
    lib = p.library
    return (lib.name, lib.version, lib.namespace) if lib is not None else (p.trt_name, p.version, p.namespace)


def load_library(trt: Any, p: Plugin) -> Any:
    """Load the bound library into TensorRT's registry (once) and return its creator."""
    lib = p.library
    registry = trt.get_plugin_registry()
    with _lock:
        if lib.path is not None and lib.path not in _libraries:
            try:
                handle = registry.load_library(lib.path)
            except Exception as e:
                raise PluginError(f"{p.describe()}: TensorRT could not load plugin library {lib.path}: {e}") from e
            if handle is None:
                raise PluginError(f"{p.describe()}: TensorRT could not load plugin library {lib.path} (see the "
                                  "TensorRT log: a missing dependency or no getCreators entry point)")
            _libraries[lib.path] = handle
    from ..backends.tensorrt._trt import take_errors
    creator = registry.get_creator(lib.name, lib.version, lib.namespace)
    take_errors(trt)  # the registry logs an error for a missing creator: reported below instead
    if creator is None:
        found = sorted(f"{c.name}/{c.plugin_version}/{c.plugin_namespace!r}" for c in registry.all_creators)
        where = f"plugin library {lib.path}" if lib.path else "TensorRT's plugin registry"
        raise PluginError(f"{p.describe()}: {where} has no creator {lib.name} version {lib.version} in namespace "
                          f"{lib.namespace!r}; registered: {', '.join(found[-12:])}")
    return creator


# ---- the CPU proof: plugin layers read back --------------------------------------------------------
def read_plugin_layer(layer: Any, trt: Any) -> tuple[Plugin, dict]:
    """The declaration and attributes of a PLUGIN_V3 layer, from what TensorRT reports about its plugin
    (name, version, namespace and serialized fields)."""
    from .loader import find_declared
    plugin = layer.plugin
    core = plugin.get_capability_interface(trt.PluginCapabilityType.CORE)
    runtime = plugin.get_capability_interface(trt.PluginCapabilityType.RUNTIME)
    name, version, ns = core.plugin_name, core.plugin_version, core.plugin_namespace
    p = _by_library(name, version, ns) or find_declared(name, version=version, namespace=ns)
    if p is None:
        raise NetdslError(f"inspect: plugin layer '{layer.name}' is {name} version {version} namespace {ns!r}, "
                          "which no declared netdsl plugin matches (load its declaration first)")
    attrs, _, _ = decode_fields(p, runtime.get_fields_to_serialize())
    return p, attrs


def _by_library(name: str, version: str, ns: str) -> Optional[Plugin]:
    from ..ops.registry import all_ops
    for d in all_ops().values():
        lib = getattr(d.plugin, "library", None)
        if isinstance(lib, Library) and (lib.name, lib.version, lib.namespace) == (name, version, ns):
            return d.plugin
    return None


def evaluate_plugin_layer(layer: Any, inputs: list, trt: Any) -> list:
    """Outputs of a plugin layer computed by its declaration's NumPy reference."""
    p, attrs = read_plugin_layer(layer, trt)
    outs = p.opdef.run_reference([None if x is None else np.asarray(x) for x in inputs], attrs)  # type: ignore
    return outs


__all__ = ["register", "register_graph", "make_plugin", "bind_library", "load_library", "Library", "identity",
           "fingerprint", "encode_fields", "decode_fields", "field_types", "read_plugin_layer", "evaluate_plugin_layer"]
