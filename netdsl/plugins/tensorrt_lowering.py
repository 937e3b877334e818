"""Adding plugin layers to a TensorRT network, on every TensorRT flavour.

TensorRT 10.x/11.x: ``network.add_plugin_v3(inputs, [], plugin)`` with the generated IPluginV3 (or
one made by a bound library's creator).

TensorRT-RTX has no ``add_plugin_v3`` (nor any other way to add a plugin layer from Python). Its
ONNX parser, however, imports a node whose type is a registered plugin's name as an IPluginV3 layer,
and it only parses into an EMPTY network. So, before the lowering adds anything, :func:`prepare`
parses one small ONNX model holding every plugin node of the graph (each input a static
placeholder; symbolic dims as 64) into the new network; the lowering then connects each plugin
layer's inputs to the real tensors (``ILayer.set_input``) and removes the placeholders
(``remove_tensor``). The layer's output dims are recomputed by TensorRT from the real inputs.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Optional

from ..errors import NetdslError
from .declaration import Plugin, PluginError
from .generated import is_generated
from .shape_program import trace
from .tensorrt_plugin import check_int32, dtype_name, identity, make_plugin, register, trt_type

PLACEHOLDER_DIM = 64


def _missing(p: Plugin, node: Any) -> Optional[str]:
    if p.cuda is None and p.library is None:
        return (f"TensorRT backend: {p.describe()} at layer '{node.name}'"
                f"{' (' + node.location + ')' if node.location else ''} has no TensorRT implementation: declare "
                "cuda=CudaKernel(...) (netdsl.plugins.cuda) or bind a compiled plugin library "
                "(netdsl.plugins.bind_library)")
    return None


def compute_type(p: Plugin, ctx: Any, node: Any) -> str:
    """The plugin's compute type for this node: the network's type for the first input if the plugin
    declares it (e.g. float16 at precision float16; a float32 island's type inside one), else the
    input's own dtype if declared."""
    first = next(v for v in node.inputs if v is not None)
    names = [d.value for d in p.dtypes]
    island = ctx.islands.get(node.name) if first.dtype.value in ("float32", "float64") else None
    want = dtype_name(ctx.trt, island or ctx.trt_dtype(first.dtype))
    if want in names:
        return want
    if first.dtype.value in names:
        return first.dtype.value
    raise PluginError(f"TensorRT backend: {p.describe()} at layer '{node.name}' supports {', '.join(names)}; "
                      f"its input is {first.dtype} ({want} in this network)")


def _program(p: Plugin, node: Any) -> Any:
    prog = trace(p.opdef, [None if v is None else v.spec for v in node.inputs], node.attrs)
    if "-" in prog.inputs:
        raise PluginError(f"TensorRT backend: {p.describe()} at layer '{node.name}': omitted optional inputs "
                          "are not supported by plugin layers")
    return prog


def lower(p: Plugin, ctx: Any, node: Any) -> list:
    """The TensorRT lowering of one plugin node (see the module docstring)."""
    why = _missing(p, node)
    if why:
        raise PluginError(why)
    trt = ctx.trt
    check_int32(p, node.attrs, f"layer '{node.name}'")
    prog = _program(p, node)
    compute = compute_type(p, ctx, node)
    inputs = []
    for v, t in zip(node.inputs, prog.inputs):
        x = ctx.t(v)
        want = trt_type(trt, compute if t == "T" else t)
        inputs.append(x if x.dtype == want else ctx.cast(x, want, "to_plugin_type"))
    prepared = ctx.fold.get("plugin_layers", {}).pop(node.name, None)
    if prepared is not None:
        layer, placeholders = prepared
        for i, x in enumerate(inputs):
            layer.set_input(i, x)
        for t in placeholders:
            ctx.net.remove_tensor(t)
    elif hasattr(ctx.net, "add_plugin_v3"):
        register(trt, p)
        plugin = make_plugin(trt, p, dict(node.attrs), prog.encode(), compute)
        layer = ctx.net.add_plugin_v3(inputs, [], plugin)
    else:
        raise ctx.error(f"this TensorRT ({trt.__name__}) has no add_plugin_v3 and the plugin layer was not "
                        "prepared through its ONNX parser")
    layer = ctx.add(layer)
    outs = []
    for k, v in enumerate(node.outputs):
        y = layer.get_output(k)
        want = ctx.trt_dtype(v.dtype)
        outs.append(y if y.dtype == want else ctx.cast(y, want, f"from_plugin_type{k or ''}"))
    return outs


# ---- TensorRT-RTX: plugin layers through the ONNX parser ----------------------------------------------
def prepare(ctx: Any) -> None:
    """Parse the graph's plugin nodes into the (still empty) network when TensorRT has no add_plugin_v3;
    the layers wait in ``ctx.fold["plugin_layers"]`` for :func:`lower` to connect them."""
    from ..ops import get_op
    trt, net = ctx.trt, ctx.net
    if hasattr(net, "add_plugin_v3"):
        return
    nodes = [n for n in ctx.graph.nodes
             if isinstance(get_op(n.op).plugin, Plugin) and is_generated(get_op(n.op).plugin.tensorrt)]
    if not nodes:
        return
    if net.num_layers or net.num_inputs:
        raise NetdslError("plugin layers must be parsed into an empty TensorRT network (prepare() runs first)")
    onnx = _onnx()
    graph_nodes, inputs, outputs = [], [], []
    for node in nodes:
        p = get_op(node.op).plugin
        why = _missing(p, node)
        if why:
            raise PluginError(why)
        check_int32(p, node.attrs, f"layer '{node.name}'")
        register(trt, p)
        prog = _program(p, node)
        compute = compute_type(p, ctx, node)
        from ..backends.onnx.export import attribute
        ins = []
        for i, (v, t) in enumerate(zip(node.inputs, prog.inputs)):
            name = f"netdsl_plugin_in/{node.name}/{i}"
            dims = [d if isinstance(d, int) else PLACEHOLDER_DIM for d in v.shape]
            inputs.append(onnx.helper.make_tensor_value_info(name, _onnx_type(onnx, compute if t == "T" else t), dims))
            ins.append(name)
        outs = [f"netdsl_plugin_out/{node.name}/{k}" for k in range(len(node.outputs))]
        outputs += [onnx.helper.make_tensor_value_info(o, _onnx_type(onnx, t), None)
                    for o, t in zip(outs, prog.output_types(compute))]
        attrs = [attribute(onnx, k, v, p.opdef.attrs[k].kind) for k, v in node.attrs.items()]
        name, version, namespace = identity(p)
        n = onnx.helper.make_node(name, ins, outs, name=node.name, domain=p.onnx_domain,
                                  plugin_version=version, plugin_namespace=namespace)
        n.attribute.extend(a for a in attrs if a is not None)
        if p.library is None:
            n.attribute.extend([onnx.helper.make_attribute("netdsl_shapes", prog.encode()),
                                onnx.helper.make_attribute("netdsl_type", compute)])
        graph_nodes.append(n)
    model = onnx.helper.make_model(
        onnx.helper.make_graph(graph_nodes, "netdsl_plugins", inputs, outputs),
        opset_imports=[onnx.helper.make_opsetid("", 17)])
    enable_parser_plugins(trt)
    from ..backends.tensorrt._trt import logger, take_errors
    parser = trt.OnnxParser(net, logger(trt))
    take_errors(trt)
    if not parser.parse(model.SerializeToString()):
        errs = [str(parser.get_error(i)) for i in range(parser.num_errors)] + take_errors(trt)
        raise PluginError("TensorRT's ONNX parser could not add the plugin layer(s) "
                          f"{', '.join(n.name for n in nodes)}: " + " | ".join(errs))
    ctx.fold["onnx_parser"] = parser  # keeps what the parser owns alive until the build
    placeholders = {net.get_input(i).name: net.get_input(i) for i in range(net.num_inputs)}
    layers: dict[str, Any] = {}
    for i in range(net.num_layers):
        layer = net.get_layer(i)
        out0 = layer.get_output(0).name if layer.num_outputs else ""
        if out0.startswith("netdsl_plugin_out/"):
            owner = out0[len("netdsl_plugin_out/"):].rsplit("/", 1)[0]
            ins = [placeholders[layer.get_input(j).name] for j in range(layer.num_inputs)]
            layers[owner] = (layer, ins)
    for t in [net.get_output(i) for i in range(net.num_outputs)]:
        net.unmark_output(t)
    missing = [n.name for n in nodes if n.name not in layers]
    if missing:
        raise PluginError(f"TensorRT's ONNX parser did not make plugin layers for {', '.join(missing)}")
    ctx.fold["plugin_layers"] = layers


def _onnx() -> Any:
    from ..backends.onnx.export import import_onnx
    return import_onnx()


def _onnx_type(onnx: Any, name: str) -> int:
    from ..backends.onnx.context import ONNX_DTYPES
    from ..dtypes import as_dtype
    return ONNX_DTYPES[as_dtype(name)]


# Why a shim library: TensorRT-RTX, while its ONNX parser imports a plugin node, dlopen()s itself by
# the unversioned name "libtensorrt_rtx.so", which the wheel does not ship (only
# libtensorrt_rtx.so.1), and aborts the process ("terminate called without an active exception")
# when that fails. The dynamic loader reads LD_LIBRARY_PATH only when the process starts, and a
# symlink loaded by path does not help (a name lookup matches loaded objects by their SONAME). A tiny
# library whose SONAME is "libtensorrt_rtx.so" and that depends on libtensorrt_rtx.so.1, loaded
# RTLD_GLOBAL first, makes that dlopen() succeed in this process: its symbols are the real library's.
_enabled: list = []


def enable_parser_plugins(trt: Any) -> None:
    """Make TensorRT-RTX's ONNX parser able to import plugin nodes in this process (see above)."""
    if _enabled or not trt.__name__.startswith("tensorrt_rtx"):
        return
    real = _real_library()
    if real is None or (real.parent / "libtensorrt_rtx.so").exists():
        _enabled.append(True)
        return
    try:
        ctypes.CDLL("libtensorrt_rtx.so", mode=ctypes.RTLD_GLOBAL)  # already resolvable (LD_LIBRARY_PATH ...)
        _enabled.append(True)
        return
    except OSError:
        pass
    shim = _build_shim(real)
    ctypes.CDLL(str(shim), mode=ctypes.RTLD_GLOBAL)
    _enabled.append(True)


def _real_library() -> Optional[Path]:
    """Where the loaded libtensorrt_rtx.so.1 lives (from this process's memory map)."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if line.strip() else ""
                if path.endswith("/libtensorrt_rtx.so.1"):
                    return Path(path)
    except OSError:
        pass
    return None


def _build_shim(real: Path) -> Path:
    from .cpp_build import cache_root
    st = real.stat()
    key = hashlib.sha256(f"{real}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
    d = cache_root() / f"tensorrt_rtx-shim-{key}"
    shim = d / "libtensorrt_rtx.so"
    if shim.is_file() and d.stat().st_uid == os.getuid() and not d.stat().st_mode & 0o022:
        return shim
    cc = next((c for c in (os.environ.get("CC"), "cc", "gcc", "clang") if c and shutil.which(c)), None)
    if cc is None:
        link = Path(tempfile.mkdtemp(prefix="netdsl-trt-"))
        (link / "libtensorrt_rtx.so").symlink_to(real)
        raise PluginError("TensorRT-RTX's ONNX parser needs libtensorrt_rtx.so to import plugin layers, and "
                          "no C compiler is here to make the shim netdsl uses: start Python with "
                          f"LD_LIBRARY_PATH={link} (a symlink to {real}), or install gcc")
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = Path(tempfile.mkdtemp(dir=d))
    try:
        (tmp / "shim.c").write_text("/* SONAME libtensorrt_rtx.so -> libtensorrt_rtx.so.1 (netdsl) */\n")
        res = subprocess.run([cc, "-shared", "-o", str(tmp / shim.name), f"-Wl,-soname,{shim.name}",
                              "-Wl,--no-as-needed", str(tmp / "shim.c"), str(real), f"-Wl,-rpath,{real.parent}"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if res.returncode != 0:
            raise PluginError(f"building the libtensorrt_rtx.so shim failed: {res.stdout.strip()[-2000:]}")
        os.replace(tmp / shim.name, shim)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return shim


__all__ = ["lower", "prepare", "compute_type", "enable_parser_plugins"]
