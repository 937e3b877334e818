"""Conformance checks of a plugin on every backend: what ``netdsl plugin test`` and each plugin's own
test file run.

For each :class:`Case` (input shapes, possibly symbolic, attributes, how to draw inputs) a one-layer
network ``inputs -> plugin -> outputs`` is built and checked against the float64 NumPy reference on
fresh random inputs:

=====================  =====================================================================================
``reference``          the reference's outputs have the shapes and dtypes the declared inference gives
``openvino-python``    OpenVINO, the generated ``openvino.Op`` running the Python route
``openvino-compiled``  OpenVINO, the C++ op built from ``cpu.cpp``
``openvino-ir``        the compiled model saved as IR and read back (the extension is registered on load)
``onnx``               the exported custom-domain node (domain, type, attributes, plugin version/namespace,
                       accepted by onnx.checker); with a decomposition (``onnx=``), ONNX Runtime runs it.
                       ONNX Runtime cannot run an unknown custom-domain op, so without one only the node is
                       checked.
``tensorrt``           TensorRT builds and serializes the network, its shapes equal netdsl's, and the network
                       read back (plugin layers by their reference) equals the reference (the CPU proof),
                       at float32 and, if declared, float16
``cuda-compile``       NVRTC compiles every kernel entry (needs NVRTC, not a GPU)
``cuda-gpu``           each entry launched through ``netdsl.plugins.cuda`` (the path ``enqueue`` uses) on a
                       stream the check did not create, against the reference (needs an NVIDIA GPU)
=====================  =====================================================================================

A check that cannot run here is skipped with the reason (engine missing, no GPU, ...).
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..compare import TOLERANCES, errors
from ..errors import BackendUnavailable, NetdslError
from .declaration import PluginOp

BACKENDS = ("reference", "openvino-python", "openvino-compiled", "openvino-ir", "onnx", "tensorrt",
            "cuda-compile", "cuda-gpu")


class Skip(Exception):
    """The check cannot run here (the message says what is missing)."""


@dataclass
class Case:
    """One configuration of the plugin: ``inputs`` are shapes (ints or symbol names), ``dtypes`` one per
    input (default float32), ``sizes`` the values of the symbols for the test data, ``feeds`` an optional
    ``fn(rng, shapes) -> list of arrays`` when inputs need a special distribution (default: normal * 2)."""

    name: str
    inputs: Sequence[Sequence[Any]]
    attrs: dict = field(default_factory=dict)
    dtypes: Optional[Sequence[str]] = None
    sizes: dict = field(default_factory=dict)
    feeds: Optional[Callable[..., list]] = None
    tol: float = 1.0  # multiplier of the precision's tolerance (netdsl.compare.TOLERANCES)

    def network(self, op: PluginOp, static: bool = False) -> Any:
        """The one-layer network; ``static=True`` gives symbols their test sizes."""
        import netdsl as nd
        net = nd.Network(f"{op.name}_{self.name}")
        dts = list(self.dtypes or ["float32"] * len(self.inputs))
        shapes = [tuple(self.sizes.get(d, 2) if static and isinstance(d, str) else d for d in s) for s in self.inputs]
        xs = [net.input(f"x{i}", s, dt) for i, (s, dt) in enumerate(zip(shapes, dts))]
        ys = op(*xs, name=op.name, **self.attrs)
        ys = list(ys) if isinstance(ys, (list, tuple)) else [ys]
        for k, y in enumerate(ys):
            net.output(y, op.opdef.outputs[k].rstrip("*?") if k < len(op.opdef.outputs) else f"y{k}")
        return net

    def data(self, net: Any, seed: int = 0) -> dict:
        from ..shapes import Sym
        rng = np.random.default_rng(seed)
        shapes = []
        for v in net.graph.inputs:
            shapes.append(tuple(d.evaluate({s: self.sizes.get(s, 2) for s in d.symbols}) if isinstance(d, Sym)
                                else d for d in v.shape))
        if self.feeds is not None:
            arrays = list(self.feeds(rng, shapes))
        else:
            arrays = []
            for v, s in zip(net.graph.inputs, shapes):
                if v.dtype.is_float:
                    arrays.append((rng.standard_normal(s) * 2).astype(v.dtype.numpy))
                else:
                    arrays.append(rng.integers(-5, 6, size=s).astype(v.dtype.numpy))
        return {v.name: np.asarray(a, v.dtype.numpy) for v, a in zip(net.graph.inputs, arrays)}


@dataclass
class Check:
    """One check: ``run()`` returns a one-line result, raises :class:`Skip` or AssertionError."""

    op: PluginOp
    case: Case
    backend: str

    def __str__(self) -> str:
        return f"{self.case.name}-{self.backend}"

    def run(self) -> str:
        return _RUNNERS[self.backend](self)

    def run_test(self) -> str:
        """For pytest: a Skip becomes ``pytest.skip(reason)``."""
        import pytest
        try:
            return self.run()
        except Skip as e:
            pytest.skip(str(e))
            raise  # unreachable


def checks(op: PluginOp, cases: Sequence[Case], backends: Sequence[str] = BACKENDS) -> list[Check]:
    """Every (case, backend) check."""
    bad = [b for b in backends if b not in BACKENDS]
    if bad:
        raise NetdslError(f"unknown conformance backend(s) {', '.join(bad)}; choose from {', '.join(BACKENDS)}")
    return [Check(op, c, b) for c in cases for b in backends]


def run_all(op: PluginOp, cases: Sequence[Case], backends: Sequence[str] = BACKENDS,
            echo: Callable[[str], None] = print) -> bool:
    """Run every check, print one line per check; True when none failed."""
    ok = True
    for c in checks(op, cases, backends):
        try:
            echo(f"  PASS {c}: {c.run()}")
        except Skip as e:
            echo(f"  skip {c}: {e}")
        except (AssertionError, NetdslError, RuntimeError, TypeError, ValueError) as e:
            ok = False
            lines = [ln for ln in str(e).splitlines() if ln.strip()]
            echo(f"  FAIL {c}: {type(e).__name__}: " + "\n      ".join(lines))
    return ok


# ---- runners --------------------------------------------------------------------------------------
def _prepare(c: Check) -> tuple:
    net = c.case.network(c.op)
    feeds = c.case.data(net)
    from ..backends.reference import run
    return net, feeds, run(net.graph, feeds, dtype="float64")


def _compare(c: Check, got: dict, ref: dict, precision: str = "float32") -> str:
    rtol, atol = TOLERANCES[precision]
    parts = []
    for k, r in ref.items():
        g = np.asarray(got[k])
        if np.asarray(r).dtype.kind in "biu":
            if g.shape != r.shape or not np.array_equal(g.astype(r.dtype), r):
                raise AssertionError(f"{k}: integer output differs from the reference")
            parts.append(f"{k} exact")
            continue
        mx, rel = errors(g, r)
        limit = (rtol + atol) * c.case.tol
        if not rel <= limit:
            raise AssertionError(f"{k}: max abs err {mx:.3g}, relative {rel:.3g} > {limit:.3g} ({precision})")
        parts.append(f"{k} max abs err {mx:.2e}")
    return ", ".join(parts)


def _engine(module: str, what: str) -> None:
    import importlib.util
    if importlib.util.find_spec(module) is None:
        raise Skip(f"{module} is not installed ({what})")


def _reference(c: Check) -> str:
    net, feeds, ref = _prepare(c)
    for v in net.graph.outputs:
        r = ref[v.name]
        want = tuple(d if isinstance(d, int) else None for d in v.shape)
        if len(r.shape) != len(want) or any(w is not None and w != g for w, g in zip(want, r.shape)):
            raise AssertionError(f"reference output {v.name} has shape {r.shape}; the declared inference says "
                                 f"{v.shape}")
    bound = _bound(c, net)
    for v in bound.outputs:
        if tuple(ref[v.name].shape) != tuple(v.shape):
            raise AssertionError(f"reference output {v.name} has shape {ref[v.name].shape}; the declared inference "
                                 f"on the test sizes says {v.shape}")
        if np.dtype(ref[v.name].dtype) != v.dtype.numpy and v.dtype.is_int:
            raise AssertionError(f"reference output {v.name} is {ref[v.name].dtype}, declared {v.dtype}")
    return "reference outputs match the declared shapes: " + ", ".join(
        f"{v.name}{tuple(ref[v.name].shape)}" for v in bound.outputs)


def _bound(c: Check, net: Any) -> Any:
    return c.case.network(c.op, static=True).graph


def _plugin_node(c: Check, graph: Any) -> Any:
    return next(n for n in graph.nodes if n.op == c.op.name)


def _openvino(c: Check, route: str) -> str:
    _engine("openvino", "pip install openvino")
    from .openvino_ops import use_route
    if route == "compiled":
        p = c.op.plugin
        if p.cpu is None or p.cpu.source is None:
            raise Skip("the plugin has no C++ CPU code (cpu=Cpu(source=...))")
        from .cpp_build import toolchain_missing
        if toolchain_missing():
            raise Skip(f"building the OpenVINO extension needs {toolchain_missing()}")
    import netdsl as nd
    net, feeds, ref = _prepare(c)
    with use_route(route):
        got = nd.compile(net, "openvino")(feeds)
    return _compare(c, got, ref)


def _openvino_ir(c: Check) -> str:
    _engine("openvino", "pip install openvino")
    from .cpp_build import toolchain_missing
    from .openvino_ops import use_route
    p = c.op.plugin
    route = "compiled" if p.cpu is not None and p.cpu.source is not None and not toolchain_missing() else "python"
    from ..backends.openvino import build, load_ir
    net, feeds, ref = _prepare(c)
    with tempfile.TemporaryDirectory(prefix="netdsl-plugin-ir-") as d, use_route(route):
        path = build(net.graph, Path(d) / "model.xml")
        got = load_ir(path)(feeds)
    return f"IR via the {route} route read back: " + _compare(c, got, ref)


def _onnx(c: Check) -> str:
    _engine("onnx", "pip install onnx")
    import onnx
    import netdsl as nd
    p = c.op.plugin
    net, feeds, ref = _prepare(c)
    with tempfile.TemporaryDirectory(prefix="netdsl-plugin-onnx-") as d:
        model = onnx.load(nd.export_onnx(net, Path(d) / "model.onnx"))
    nodes = [n for n in model.graph.node if n.op_type == p.trt_name and n.domain == p.onnx_domain]
    if len(nodes) != 1:
        raise AssertionError(f"the exported model has {len(nodes)} nodes {p.onnx_domain}:{p.trt_name}, expected 1")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in nodes[0].attribute}
    if attrs.get("plugin_version") != p.version.encode() or attrs.get("plugin_namespace") != p.namespace.encode():
        raise AssertionError(f"exported node lacks plugin_version/plugin_namespace: {attrs}")
    node = _plugin_node(c, net.graph)
    for k, v in node.attrs.items():
        if v is not None and k not in attrs:
            raise AssertionError(f"exported node lacks attribute {k!r}")
    if p.onnx is None:
        return ("custom-domain node exported with its attributes (no decomposition: ONNX Runtime cannot run it, "
                "so it is not run)")
    _engine("onnxruntime", "pip install onnxruntime")
    got = nd.compile(net, "onnx")(feeds)
    try:
        return "decomposition run by ONNX Runtime: " + _compare(c, got, ref)
    except AssertionError as e:
        raise AssertionError(f"the declared ONNX decomposition (onnx=) disagrees with the reference: {e}") from None


def _tensorrt(c: Check) -> str:
    try:
        from ..backends.tensorrt import _trt
        _trt.load()
    except BackendUnavailable as e:
        raise Skip(f"no TensorRT: {e}") from None
    from ..backends.tensorrt import check as trt_check
    net, feeds, _ = _prepare(c)
    lines = []
    precisions = ["float32"] + (["float16"] if any(d.value == "float16" for d in c.op.plugin.dtypes) else [])
    for prec in precisions:
        rep = trt_check(net.graph, feeds, precision=prec, progress=False)
        if not rep.ok:
            raise AssertionError(str(rep))
        errs = ", ".join(f"{k} {e['max_abs']:.2e}" for k, e in rep.outputs.items())
        lines.append(f"{prec}: {rep.layers} layers, plan {rep.plan_bytes} B, read back {errs}")
    return "CPU proof " + "; ".join(lines)


def _cuda_compile(c: Check) -> str:
    k = c.op.plugin.cuda
    if k is None:
        raise Skip("the plugin has no CUDA kernel (cuda=...)")
    from . import cuda
    try:
        archs = cuda.supported_archs()
    except BackendUnavailable as e:
        raise Skip(str(e)) from None
    arch = 90 if 90 in archs else max(archs)
    compiled = cuda.compile_kernel(k, arch)
    return f"NVRTC compiled {', '.join(sorted(compiled.lowered))} for {compiled.arch} ({len(compiled.image)} bytes)"


def _cuda_gpu(c: Check) -> str:
    k = c.op.plugin.cuda
    if k is None:
        raise Skip("the plugin has no CUDA kernel (cuda=...)")
    stream, keep = foreign_stream()
    from . import cuda
    from .shape_program import trace
    net, feeds, _ = _prepare(c)
    node = _plugin_node(c, net.graph)
    prog = trace(c.op.opdef, [v.spec for v in _plugin_node(c, _bound(c, net)).inputs], node.attrs)
    from ..backends.reference import run
    lines = []
    for dt in k.entries:
        prec = "float16" if dt == "float16" else "float32"
        arrays = [np.asarray(a).astype(dt) if a.dtype.kind == "f" else a for a in feeds.values()]
        ref = run(net.graph, {n: a.astype(np.float64) if a.dtype.kind == "f" else a
                              for n, a in zip(feeds, arrays)}, dtype="float64")
        shapes = prog.output_shapes([a.shape for a in arrays])
        types = [dt if t == "T" else t for t in prog.output_types(dt)]
        outs = cuda.run_arrays(k, dt, arrays, [(s, np.dtype(t)) for s, t in zip(shapes, types)], node.attrs,
                               stream)
        got = {v.name: o for v, o in zip(net.graph.outputs, outs)}
        lines.append(f"{dt}: " + _compare(c, got, ref, prec))
    del keep
    return "kernel on a foreign stream: " + "; ".join(lines)


def foreign_stream() -> tuple[int, Any]:
    """A CUDA stream created by torch (or cupy), as (handle, owner): what TensorRT's enqueue gets."""
    try:
        import torch
        if torch.cuda.is_available():
            s = torch.cuda.Stream()
            return int(s.cuda_stream), s
    except ImportError:
        pass
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() > 0:
            s = cupy.cuda.Stream(non_blocking=True)
            return int(s.ptr), s
    except Exception:
        pass
    raise Skip("no NVIDIA GPU (neither torch nor cupy sees a CUDA device)")


def example_backends(op: PluginOp) -> list[str]:
    """The ``netdsl check`` backends a network using ``op`` can be checked on here (the ``onnx`` backend
    only when the plugin has a decomposition ONNX Runtime can run)."""
    names = ["reference", "openvino"] + (["onnx"] if op.plugin.onnx is not None else []) + ["tensorrt"]
    return available_backends(names)


def available_backends(names: Sequence[str] = ("reference", "openvino", "onnx", "tensorrt")) -> list[str]:
    """The ``netdsl check`` backends among ``names`` whose engines are installed here."""
    import importlib.util
    need = {"openvino": ("openvino",), "onnx": ("onnx", "onnxruntime"), "tensorrt": ("tensorrt_rtx", "tensorrt")}
    out = []
    for n in names:
        mods = need.get(n, ())
        ok = all(importlib.util.find_spec(m) is not None for m in mods) if n != "tensorrt" else \
            any(importlib.util.find_spec(m) is not None for m in mods)
        if ok:
            out.append(n)
    return out


_RUNNERS: dict[str, Callable[[Check], str]] = {
    "reference": _reference,
    "openvino-python": lambda c: _openvino(c, "python"),
    "openvino-compiled": lambda c: _openvino(c, "compiled"),
    "openvino-ir": _openvino_ir,
    "onnx": _onnx,
    "tensorrt": _tensorrt,
    "cuda-compile": _cuda_compile,
    "cuda-gpu": _cuda_gpu,
}


__all__ = ["Case", "Check", "Skip", "checks", "run_all", "BACKENDS", "foreign_stream", "available_backends",
           "example_backends"]
