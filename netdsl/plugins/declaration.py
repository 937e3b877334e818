"""A plugin declaration: a catalogue op plus its implementations, and :func:`declare`.

The op part (inputs, typed attributes, shape inference on symbolic dims, NumPy reference) is a
normal catalogue entry of category ``"plugin"``, so the reference backend, summaries, ``netdsl
check`` and ONNX export work unchanged. The implementations:

- ``cuda=CudaKernel(...)`` (:mod:`netdsl.plugins.cuda`): TensorRT gets an IPluginV3 generated from
  the declaration whose ``enqueue`` launches the kernel on TensorRT's stream;
- ``cpu=Cpu(source="cpu.cpp", python=fn)``: OpenVINO gets a generated ``openvino.Op`` running
  ``python`` (default: the reference), and a C++ op compiled from ``source`` with CMake;
- ``onnx=fn(ctx, node)``: an optional pure-ONNX decomposition (ONNX Runtime can run it; the default
  export is one custom-domain node that TensorRT's ONNX parser imports as the registered plugin);
- ``openvino=`` / ``tensorrt=``: hand-written lowerings, used instead of the generated ones.

A compiled TensorRT plugin library can be bound to a declaration with
:func:`netdsl.plugins.bind_library`.
"""
from __future__ import annotations

import inspect
import keyword
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ..dtypes import as_dtype
from ..errors import NetdslError, ShapeError
from ..ops.registry import OpDef, register

ATTR_KINDS = ("int", "float", "bool", "str", "ints", "floats")  # what every engine can carry
RESERVED = ("plugin_version", "plugin_namespace")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class PluginError(NetdslError):
    """A plugin declaration is invalid, or a backend lacks what it needs to run a plugin."""


@dataclass
class Cpu:
    """CPU implementations: ``source`` (C++ file, the compiled OpenVINO route; see
    ``netdsl/plugins/include/netdsl_plugin.hpp``) and ``python`` (the quick route:
    ``fn(*arrays, **attrs)`` like the reference; None = the reference itself)."""

    source: Optional[Any] = None
    python: Optional[Callable[..., Any]] = None

    def __post_init__(self) -> None:
        if self.source is not None:
            self.source = Path(self.source)


@dataclass
class Plugin:
    """Backend implementations and export settings of a plugin op (``declare``'s keywords)."""

    version: str = "1"
    namespace: str = "netdsl"
    dtypes: tuple = ("float32",)
    cuda: Any = None
    cpu: Optional[Cpu] = field(default_factory=Cpu)
    onnx: Optional[Callable[..., Any]] = None
    openvino: Optional[Callable[..., Any]] = None
    tensorrt: Optional[Callable[..., Any]] = None
    onnx_domain: str = "netdsl.plugins"
    onnx_op: Optional[str] = None
    onnx_version: int = 1
    library: Any = None          # a bound compiled TensorRT plugin library (see bind_library)
    name: str = ""               # the op name (set by declare)
    folder: Optional[Path] = None  # the plugin folder it was loaded from (if any)
    opdef: Optional[OpDef] = field(default=None, repr=False)

    @property
    def key(self) -> tuple:
        """(name, version, namespace): how TensorRT's plugin registry and OpenVINO find it."""
        return (self.name, self.version, self.namespace)

    @property
    def trt_name(self) -> str:
        """The name the TensorRT plugin registry (and the ONNX node type) uses."""
        return self.onnx_op or self.name

    @property
    def ov_version(self) -> str:
        """The OpenVINO type-info version (the IR ``version=`` of the op)."""
        return f"{self.namespace}_{self.version}"

    def cpu_python(self) -> Callable[..., Any]:
        """The CPU quick route (the reference unless the declaration gives one)."""
        fn = self.cpu.python if self.cpu is not None else None
        return fn or self.opdef.reference  # type: ignore[union-attr]

    def describe(self) -> str:
        return f"plugin '{self.name}' (version {self.version}, namespace {self.namespace})"


def _check(name: str, attrs: dict, p: Plugin, infer: Callable[..., Any], reference: Callable[..., Any]) -> None:
    if not _NAME.match(name) or keyword.iskeyword(name):
        raise PluginError(f"plugin name {name!r} must be an identifier (letters, digits, _)")
    for a, spec in attrs.items():
        if not _NAME.match(a) or a in RESERVED or a.startswith("netdsl_"):
            raise PluginError(f"plugin '{name}': attribute name {a!r} is not allowed (identifiers only; "
                              f"{', '.join(RESERVED)} and netdsl_* are reserved)")
        if spec.kind not in ATTR_KINDS:
            raise PluginError(f"plugin '{name}': attribute '{a}' has kind {spec.kind!r}; plugin attributes must "
                              f"be one of {', '.join(ATTR_KINDS)} (what TensorRT fields, OpenVINO and ONNX carry)")
    if not re.match(r"^[A-Za-z0-9_.]+$", p.version) or not re.match(r"^[A-Za-z0-9_.]*$", p.namespace):
        raise PluginError(f"plugin '{name}': version {p.version!r} / namespace {p.namespace!r} may hold "
                          "letters, digits, '_' and '.' only")
    try:
        p.dtypes = tuple(as_dtype(d) for d in p.dtypes)
    except TypeError as e:
        raise PluginError(f"plugin '{name}': dtypes: {e}") from None
    if not p.dtypes:
        raise PluginError(f"plugin '{name}': dtypes is empty")
    if p.cuda is not None and hasattr(p.cuda, "plugin") and not p.cuda.plugin:
        p.cuda.plugin = name  # kernel errors name the plugin
    for what, fn in (("infer", infer), ("reference", reference),
                     ("cpu=Cpu(python=...)", p.cpu.python if p.cpu is not None else None)):
        _check_keywords(name, what, fn, attrs)
    if p.cpu is not None and p.cpu.source is not None and not p.cpu.source.is_file():
        raise PluginError(f"plugin '{name}': C++ source {p.cpu.source} does not exist")


def _check_keywords(name: str, what: str, fn: Optional[Callable[..., Any]], attrs: dict) -> None:
    """``fn`` takes every declared attribute as a keyword and requires no other keyword."""
    try:
        params = list(inspect.signature(fn).parameters.values()) if fn is not None else []
    except (TypeError, ValueError):
        return
    if not params or any(q.kind == q.VAR_KEYWORD for q in params):
        return
    names = {q.name for q in params if q.kind in (q.KEYWORD_ONLY, q.POSITIONAL_OR_KEYWORD)}
    missing = [a for a in attrs if a not in names]
    if missing:
        raise PluginError(f"plugin '{name}': {what} does not take the declared attribute(s) {', '.join(missing)} "
                          f"as keywords (def {getattr(fn, '__name__', what)}(..., *, {', '.join(attrs)}))")
    extra = [q.name for q in params if q.kind == q.KEYWORD_ONLY and q.default is q.empty and q.name not in attrs]
    if extra:
        raise PluginError(f"plugin '{name}': {what} requires keyword(s) {', '.join(extra)}, which are not declared "
                          f"attributes (declared: {', '.join(attrs) or 'none'}; add them to attrs=)")


class PluginOp:
    """The DSL function of a declared plugin: ``op(*tensors, name=None, **attrs)``."""

    def __init__(self, opdef: OpDef):
        self.opdef = opdef
        self.__doc__ = opdef.doc

    @property
    def name(self) -> str:
        return self.opdef.name

    @property
    def plugin(self) -> Plugin:
        return self.opdef.plugin

    def __call__(self, *inputs: Any, name: Optional[str] = None, **attrs: Any) -> Any:
        from ..functional import _net
        net = _net(*inputs)
        return net.apply(self.opdef.name, list(inputs), name=name, **attrs)

    def __repr__(self) -> str:
        return f"<{self.plugin.describe()}>"


def declare(name: str, *, infer: Callable[..., Any], reference: Callable[..., Any], inputs: Sequence[str] = ("x",),
            outputs: Sequence[str] = ("y",), attrs: Optional[dict] = None, doc: str = "",
            macs: Optional[Callable[..., Any]] = None, replace: bool = False, **plugin: Any) -> PluginOp:
    """Declare (register) a plugin op; ``plugin`` keywords fill :class:`Plugin` (version, namespace,
    dtypes, cuda, cpu, onnx, openvino, tensorrt, onnx_domain, onnx_op, onnx_version).

    Declaring the same name again with ``replace=True`` (or from the same file again) replaces it.
    """
    attrs = dict(attrs or {})
    try:
        p = Plugin(**plugin)
    except TypeError as e:
        raise PluginError(f"plugin '{name}': {e}") from None
    p.name = name
    p.version = str(p.version)
    _check(name, attrs, p, infer, reference)
    opdef = OpDef(name=name, inputs=tuple(inputs), outputs=tuple(outputs), attrs=attrs, infer=_checked(p, infer),
                  reference=reference, category="plugin", doc=doc.strip(), macs=macs, plugin=p)
    p.opdef = opdef
    from .generated import attach
    attach(p)
    replace = replace or _redeclared(opdef)
    if not replace:
        _check_free(opdef)
    register(opdef, replace=replace)
    return PluginOp(opdef)


def _check_free(opdef: OpDef) -> None:
    """A clear error when ``opdef``'s name is taken (by a catalogue op, or a plugin declared elsewhere)."""
    from ..ops.registry import all_ops
    old = all_ops().get(opdef.name)
    if old is None:
        return
    if old.plugin is None:
        raise PluginError(f"plugin '{opdef.name}': a catalogue op has this name; choose another")
    where = getattr(getattr(old.reference, "__code__", None), "co_filename", None) or "elsewhere"
    raise PluginError(f"plugin '{opdef.name}' is already declared (in {where}); plugin names are unique per "
                      "process: rename one, or pass replace=True to replace it")


def _checked(p: Plugin, infer: Callable[..., Any]) -> Callable[..., Any]:
    """The declared ``infer`` behind two checks: the compute type (first input's dtype) is one of the
    declared ``dtypes``, and an exception other than a netdsl error (a bug in ``infer``, e.g. an
    operation that symbolic dims lack) becomes a ShapeError naming the plugin and the failing line."""
    def run(*specs: Any, **attrs: Any) -> Any:
        try:
            out = infer(*specs, **attrs)
        except NetdslError:
            raise
        except Exception as e:
            raise ShapeError(f"plugin '{p.name}': its shape inference (infer) raised {type(e).__name__}: {e}"
                             f"{author_line(e)}") from e
        first = next((s for s in specs if s is not None), None)
        if first is not None and first.dtype not in p.dtypes:
            raise ShapeError(f"plugin '{p.name}' takes {' or '.join(d.value for d in p.dtypes)} (its declared "
                             f"dtypes) as its first input, got {first.dtype}")
        return out
    run.__doc__ = infer.__doc__
    run.__wrapped__ = infer  # type: ignore[attr-defined]
    return run


_PKG = str(Path(__file__).resolve().parents[1]) + os.sep


def _library_dirs() -> tuple:
    import sysconfig
    paths = sysconfig.get_paths()
    return (_PKG,) + tuple(os.path.abspath(paths[k]) + os.sep for k in ("stdlib", "platstdlib", "purelib", "platlib")
                           if k in paths)


def author_line(e: BaseException) -> str:
    """' (at file:line: code)' of the innermost traceback frame of the plugin author's code: outside netdsl,
    the standard library and installed packages (NumPy ...); '' when there is none."""
    import traceback
    if isinstance(e, SyntaxError) and e.filename:
        return f" (at {e.filename}:{e.lineno}: {(e.text or '').strip()})"
    skip = _library_dirs()
    for fr in reversed(traceback.extract_tb(e.__traceback__)):
        fn = os.path.abspath(fr.filename)
        if not fn.startswith(skip) and not fr.filename.startswith("<frozen "):
            return f" (at {fr.filename}:{fr.lineno}: {fr.line})" if fr.line else f" (at {fr.filename}:{fr.lineno})"
    return ""


def _redeclared(opdef: OpDef) -> bool:
    """True when a plugin of this name was declared by the same source file (re-importing a plugin)."""
    from ..ops.registry import all_ops
    old = all_ops().get(opdef.name)
    if old is None or old.plugin is None:
        return False
    src = getattr(opdef.reference, "__code__", None)
    prev = getattr(old.reference, "__code__", None)
    return src is not None and prev is not None and os.path.abspath(src.co_filename) == \
        os.path.abspath(prev.co_filename)


__all__ = ["Plugin", "PluginOp", "Cpu", "PluginError", "declare", "author_line", "ATTR_KINDS"]
