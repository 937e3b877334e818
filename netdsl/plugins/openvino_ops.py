"""OpenVINO ops generated from a plugin declaration: the Python route and the compiled (C++) route.

Both routes make an op with the same type info (type = plugin name, version = ``<namespace>_<version>``)
and the same attributes (the declared ones plus ``netdsl_shapes``, the shape program), so an IR written
with one route is read back by either. The route is chosen by ``NETDSL_PLUGIN_ROUTE`` (or
:func:`use_route`): ``python`` runs ``Cpu.python`` (default: the reference) in an ``openvino.Op``;
``compiled`` builds the declaration's ``cpu.cpp`` (see :mod:`.cpp_build`); ``auto`` (default) takes the
compiled route when the plugin has C++ code and a C++ toolchain (cmake, a compiler) is present.

Attribute encoding (OpenVINO IR): int, float (double, exact), bool, str as themselves; ints as a
list of int64; floats as a comma-separated string of exact decimal reprs (OpenVINO's Python binding
cannot read float lists back from IR).
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from typing import Any, Iterator, Optional

import numpy as np

from ..errors import NetdslError
from .declaration import Plugin, PluginError, author_line
from .shape_program import ShapeProgram, trace

ROUTES = ("auto", "python", "compiled")
log = logging.getLogger("netdsl.plugins")
_route = threading.local()
_classes: dict[tuple, Any] = {}
_lock = threading.Lock()


def current_route() -> str:
    r = getattr(_route, "value", None) or os.environ.get("NETDSL_PLUGIN_ROUTE", "auto")
    if r not in ROUTES:
        raise PluginError(f"NETDSL_PLUGIN_ROUTE must be one of {', '.join(ROUTES)}, got {r!r}")
    return r


@contextlib.contextmanager
def use_route(route: str) -> Iterator[None]:
    """Within the block, plugins lower to OpenVINO through ``route`` (python | compiled | auto)."""
    if route not in ROUTES:
        raise PluginError(f"plugin route must be one of {', '.join(ROUTES)}, got {route!r}")
    old = getattr(_route, "value", None)
    _route.value = route
    try:
        yield
    finally:
        _route.value = old


def route_for(p: Plugin) -> str:
    """The route ``p`` takes now: 'python' or 'compiled' (raises when 'compiled' cannot be had)."""
    r = current_route()
    has_cpp = p.cpu is not None and p.cpu.source is not None
    if r == "python":
        return "python"
    if r == "compiled":
        if not has_cpp:
            raise PluginError(f"{p.describe()}: the compiled OpenVINO route needs C++ CPU code "
                              "(declare cpu=Cpu(source='cpu.cpp')); use the python route")
        return "compiled"
    from .cpp_build import toolchain_missing
    return "compiled" if has_cpp and not toolchain_missing() else "python"


# ---- attributes ----------------------------------------------------------------------------------
def encode_attrs(p: Plugin, attrs: dict, program: str) -> dict:
    out: dict[str, Any] = {}
    for k, spec in p.opdef.attrs.items():  # type: ignore[union-attr]
        v = attrs.get(k)
        if spec.kind == "floats":
            out[k] = ",".join(repr(float(x)) for x in (v or ()))
        elif spec.kind == "ints":
            out[k] = [int(x) for x in (v or ())]
        elif spec.kind == "float":
            out[k] = float(v)
        elif spec.kind == "int":
            out[k] = int(v)
        elif spec.kind == "bool":
            out[k] = bool(v)
        else:
            out[k] = "" if v is None else str(v)
    out["netdsl_shapes"] = program
    return out


def decode_attrs(p: Plugin, encoded: dict) -> dict:
    out: dict[str, Any] = {}
    for k, spec in p.opdef.attrs.items():  # type: ignore[union-attr]
        v = encoded.get(k)
        if spec.kind == "floats":
            out[k] = tuple(float(x) for x in str(v).split(",") if x) if v is not None else ()
        elif spec.kind == "ints":
            out[k] = tuple(int(x) for x in (v or ()))
        else:
            out[k] = v
    return out


# ---- the Python route ----------------------------------------------------------------------------
_NP_OF = {"f32": np.float32, "f16": np.float16, "f64": np.float64, "i32": np.int32, "i64": np.int64,
          "i8": np.int8, "u8": np.uint8, "boolean": np.bool_}


def python_op_class(p: Plugin) -> Any:
    """The ``openvino.Op`` subclass of ``p`` (one per declaration; registered with
    ``core.add_extension(cls)`` to read IRs)."""
    key = (p.key, id(p))
    with _lock:
        if key in _classes:
            return _classes[key]
    import openvino as ov

    dtypes = [d.value for d in p.dtypes]
    compute = p.cpu_python()

    class PluginPythonOp(ov.Op):
        class_type_info = ov.DiscreteTypeInfo(p.trt_name, p.ov_version)

        def __init__(self, inputs: Any = None, attrs: Optional[dict] = None, program: str = "") -> None:
            super().__init__(self)
            self._encoded = encode_attrs(p, attrs, program) if attrs is not None else placeholders(p)
            if inputs is not None:
                self.set_arguments(list(inputs))
                self.constructor_validate_and_infer_types()

        def get_type_info(self) -> Any:
            return PluginPythonOp.class_type_info

        def visit_attributes(self, visitor: Any) -> bool:
            d = dict(self._encoded)
            visitor.on_attributes(d)
            self._encoded = d
            return True

        def validate_and_infer_types(self) -> None:
            text = self._encoded.get("netdsl_shapes", "")
            if not text:
                return
            prog = ShapeProgram.decode(text)
            n = self.get_input_size()
            t = self.get_input_element_type(0) if n else ov.Type.f32
            if t.get_type_name() not in [_OV_NAME[d] for d in dtypes]:
                raise NetdslError(f"{p.describe()}: element type {t.get_type_name()} is not among its declared "
                                  f"dtypes ({', '.join(dtypes)})")
            shapes = []
            for i in range(n):
                ps = self.get_input_partial_shape(i)
                shapes.append(None if ps.rank.is_dynamic else
                              [d.get_length() if d.is_static else None for d in ps])
            for k, ((ty, _), dims) in enumerate(zip(prog.outputs, prog.output_shapes(shapes))):
                et = t if ty == "T" else getattr(ov.Type, _OV_NAME[ty])
                self.set_output_type(k, et, ov.PartialShape([-1 if d is None else d for d in dims]))

        def clone_with_new_inputs(self, new_inputs: Any) -> Any:
            c = PluginPythonOp()
            c._encoded = dict(self._encoded)
            c.set_arguments(list(new_inputs))
            c.constructor_validate_and_infer_types()
            return c

        def has_evaluate(self, *args: Any) -> bool:
            return True

        def evaluate(self, outputs: Any, inputs: Any) -> bool:
            attrs = decode_attrs(p, self._encoded)
            arrays = [np.asarray(t.data) for t in inputs]
            try:
                res = compute(*arrays, **attrs)
            except Exception as e:
                raise NetdslError(f"{p.describe()}: its CPU Python route failed: {type(e).__name__}: {e}"
                                  f"{author_line(e)}") from e
            res = list(res) if isinstance(res, (list, tuple)) else [res]
            for o, r in zip(outputs, res):
                r = np.asarray(r)
                o.shape = r.shape
                o.data[...] = r.astype(o.data.dtype, copy=False)
            return True

    PluginPythonOp.__name__ = PluginPythonOp.__qualname__ = f"PluginOp_{p.name}"
    with _lock:
        _classes.setdefault(key, PluginPythonOp)
        return _classes[key]


_OV_NAME = {"float32": "f32", "float16": "f16", "bfloat16": "bf16", "float64": "f64", "int8": "i8",
            "uint8": "u8", "int32": "i32", "int64": "i64", "bool": "boolean"}


_PLACEHOLDER = {"int": 0, "float": 0.0, "bool": False, "str": "", "ints": [0], "floats": ""}


def placeholders(p: Plugin) -> dict:
    """Typed values for every attribute (what an op read from IR starts with; the IR's values replace
    them when its attributes are visited)."""
    out = {k: _PLACEHOLDER[a.kind] for k, a in p.opdef.attrs.items()}  # type: ignore[union-attr]
    out["netdsl_shapes"] = ""
    return out


# ---- lowering ------------------------------------------------------------------------------------
def lower(p: Plugin, ctx: Any, node: Any, inputs: tuple) -> list:
    """OpenVINO lowering of one plugin node (the route from :func:`route_for`)."""
    if p.cpu is None:
        raise PluginError(f"OpenVINO backend: {p.describe()} at layer '{node.name}'"
                          f"{' (' + node.location + ')' if node.location else ''} has no CPU implementation "
                          "(declared with cpu=None): declare cpu=Cpu(source='cpu.cpp') and/or cpu=Cpu(python=fn)")
    if any(a is None for a in inputs):
        raise PluginError(f"OpenVINO backend: {p.describe()} at layer '{node.name}': omitted optional inputs "
                          "are not supported by generated plugin ops")
    program = trace(p.opdef, [v.spec for v in node.inputs], node.attrs).encode()
    route = route_for(p)
    log.info("plugin '%s' at layer '%s': OpenVINO %s route", p.name, node.name, route)
    if route == "compiled":
        from .cpp_build import create_node
        op = create_node(p, list(inputs), encode_attrs(p, node.attrs, program))
    else:
        op = python_op_class(p)(list(inputs), dict(node.attrs), program)
    op.set_friendly_name(node.name)
    return [op.output(k) for k in range(len(node.outputs))]


# ---- reading IRs that hold plugin ops ---------------------------------------------------------------
_LAYER = re.compile(rb'<layer\b[^>]*?\btype="([^"]+)"[^>]*?\bversion="([^"]+)"')
_registered: dict[int, set] = {}


def plugin_types_in_ir(xml_path: str) -> set:
    """(type, version) pairs of the IR's layers that are not in an OpenVINO opset."""
    with open(xml_path, "rb") as f:
        data = f.read()
    return {(t.decode(), v.decode()) for t, v in _LAYER.findall(data) if not v.startswith(b"opset")}


def register_for_ir(core: Any, xml_path: str) -> list[str]:
    """Add to ``core`` the extension of every declared plugin an IR uses (loading plugins by name from
    the plugin path when they are not declared yet); returns the plugin names registered."""
    from .loader import find_declared
    done = _registered.setdefault(id(core), set())
    names = []
    for typ, version in sorted(plugin_types_in_ir(xml_path)):
        p = find_declared(typ, ov_version=version)
        if p is None:
            continue  # OpenVINO names the unknown op when it reads the IR
        if p.key not in done:
            if route_for(p) == "compiled":
                from .cpp_build import library
                core.add_extension(library(p))
            else:
                core.add_extension(python_op_class(p))
            done.add(p.key)
        names.append(p.name)
    return names


def missing_plugins_hint(xml_path: str) -> str:
    """Why OpenVINO cannot read an IR whose non-opset ops no declared plugin provides ('' if none)."""
    from .loader import find_declared, search_path
    try:
        missing = [(t, v) for t, v in sorted(plugin_types_in_ir(xml_path)) if find_declared(t, ov_version=v) is None]
    except (OSError, NetdslError):
        return ""
    if not missing:
        return ""
    other = [find_declared(t) for t, _ in missing]
    if any(other):
        return "\n" + "; ".join(f"the IR uses '{t}' version {v}; the declared {o.describe()} is version {o.ov_version}"
                                 for (t, v), o in zip(missing, other) if o)
    where = ", ".join(str(d) for d in search_path()) or "none of them exists here"
    ops = ", ".join(f"'{t}' (version {v})" for t, v in missing)
    return (f"\nthe IR uses {ops}, outside OpenVINO's opsets, and no declared netdsl plugin provides it: plugins "
            f"are found by name on the plugin path ($NETDSL_PLUGIN_PATH, ./plugins, netdsl's plugins/; here: "
            f"{where}); set NETDSL_PLUGIN_PATH to the folder holding {missing[0][0]}/, or call "
            "netdsl.plugins.load(<its folder>) before loading the IR")


def register_for_model(core: Any, ov_model: Any) -> None:
    """Add to ``core`` the extensions of the plugin ops in ``ov_model`` (before ``core.import_model`` of a
    compiled blob of it, which rebuilds the ops by type name): the Python class for ops made by the
    Python route, the built library for the others."""
    done = _registered.setdefault(id(core), set())
    for node in ov_model.get_ordered_ops():
        info = node.get_type_info()
        if info.version_id.startswith("opset") or not info.version_id:
            continue
        from .loader import find_declared
        p = find_declared(info.name, ov_version=info.version_id)
        if p is None or p.key in done:
            continue
        if type(node).__name__ == f"PluginOp_{p.name}":
            core.add_extension(python_op_class(p))
        else:
            from .cpp_build import library
            core.add_extension(library(p))
        done.add(p.key)


__all__ = ["lower", "python_op_class", "register_for_model", "missing_plugins_hint", "use_route", "current_route", "route_for",
           "register_for_ir", "encode_attrs", "decode_attrs", "ROUTES"]
