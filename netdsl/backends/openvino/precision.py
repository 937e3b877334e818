"""Per-layer precision on OpenVINO: keeping float32 islands in f32 when the model is compiled with
``INFERENCE_PRECISION_HINT`` bf16 or f16, and telling the precision the CPU really ran.

OpenVINO's mechanism is the ``precise`` runtime attribute (``ov::disable_fp16_compression``), honoured
by the CPU plugin's precision enforcement. Python can only store it as a string in ``rt_info``; the IR
serializer writes that as the typed attribute and the IR reader restores it, so a model with islands
goes through an in-memory IR round trip before it is compiled (``runtime_precisions()`` shows the
islands in f32)."""
from __future__ import annotations

import os
import tempfile
import warnings
from collections import Counter
from typing import Any, Iterable

PRECISE = "precise_0"
COMPUTE = ("Convolution", "FullyConnected", "MatMul", "GroupConvolution", "Deconvolution")
_warned: set = set()


def mark_layer(outputs: Iterable[Any], stop: set) -> None:
    """Mark every node a layer added (from its outputs back to its inputs' producers ``stop``)."""
    todo = [o.get_node() for o in outputs]
    seen: set = set()
    while todo:
        n = todo.pop()
        name = n.get_name()
        if name in seen or name in stop or n.get_type_name() in ("Parameter", "Constant"):
            continue
        seen.add(name)
        n.get_rt_info()[PRECISE] = ""
        todo.extend(i.get_source_output().get_node() for i in n.inputs())


def with_precise_attributes(model: Any) -> Any:
    """The model after an IR round trip, so that string ``precise`` marks become OpenVINO's attribute."""
    import openvino as ov
    from ...plugins.openvino_ops import register_for_model
    from .runtime import core
    register_for_model(core(), model)  # plugin ops: their extensions, to read them back
    with tempfile.TemporaryDirectory(prefix="netdsl-ov-") as d:
        path = os.path.join(d, "m.xml")
        ov.save_model(model, path, compress_to_fp16=False)
        return core().read_model(path)  # weights are memory-mapped: valid after the file is removed


def effective_precision(compiled: Any) -> str:
    """The type the compute layers (convolutions, matmuls) of a compiled model run in: the reduced float
    type most of them use if any does (f32 islands aside), else f32; with INT8 kernels among them,
    "int8+" that float type -- the float layers' own, or where every compute layer is INT8 the type the
    rest of the network runs in ("int8+f32", "int8+bf16"); '' without compute layers."""
    compute: Counter = Counter()
    rest: Counter = Counter()
    for n in compiled.get_runtime_model().get_ordered_ops():
        rt = n.get_rt_info()
        kind = rt["layerType"].astype(str)
        if kind not in ("Input", "Output", "Const", "Reorder"):
            (compute if kind in COMPUTE else rest)[rt["runtimePrecision"].astype(str)] += 1
    floats = _float_type(compute)
    if not any(compute[p] for p in ("i8", "u8")):
        return floats
    return "int8+" + (floats or _float_type(rest) or "f32")


def _float_type(counts: Counter) -> str:
    """The reduced float type most counted if any is, else f32 if counted, else ''."""
    reduced = [(c, p) for p, c in counts.items() if p in ("bf16", "f16")]
    if reduced:
        return max(reduced)[1]
    return "f32" if counts.get("f32") else ""


def runtime_precisions(compiled: Any) -> dict:
    """{node name: precision it ran in} of a compiled model's runtime model, also under the names of the
    layers fused into each node (``originalLayersNames``) that no node of their own carries."""
    out, fused = {}, {}
    for n in compiled.get_runtime_model().get_ordered_ops():
        rt = n.get_rt_info()
        if "runtimePrecision" not in rt:
            continue
        p = out[n.get_friendly_name()] = rt["runtimePrecision"].astype(str)
        for name in fused_names(rt):
            fused.setdefault(name, p)
    return {**fused, **out}


def fused_names(rt: Any) -> list:
    """The names of the layers a runtime node's rt_info says were fused into it (``originalLayersNames``)."""
    return [x for x in rt["originalLayersNames"].astype(str).split(",") if x] if "originalLayersNames" in rt else []


def warn_unkept_islands(compiled: Any, islands: set, model: str, layers: Iterable[str] = ()) -> None:
    """Warn naming the float32-island layers the runtime model shows in bf16/f16: the CPU plugin replaced
    their node (e.g. a linear layer's bias add fused into a new FullyConnected) and the copy lost the mark,
    or rebuilt part of the layer under new names (``rebuilt_in_reduced``)."""
    ran = {k: p for k, p in runtime_precisions(compiled).items() if k in islands and p in ("bf16", "f16")}
    for k, p in rebuilt_in_reduced(compiled, islands, layers).items():
        ran.setdefault(k, p)
    if ran:
        from ...dsl import user_stacklevel
        warnings.warn(f"OpenVINO ran float32 island layer(s) of '{model}' at reduced precision: "
                      + ", ".join(f"'{k}' in {v}" for k, v in sorted(ran.items()))
                      + " (its CPU plugin replaced or rebuilt their nodes and dropped the f32 mark)", RuntimeWarning,
                      stacklevel=user_stacklevel())


def rebuilt_in_reduced(compiled: Any, islands: set, layers: Iterable[str]) -> dict:
    """{island layer: bf16/f16} for islands with a runtime node in a reduced type among the nodes that
    compute their result: walking back from the node named after the layer through nodes of no other
    layer (``layers``: every layer's name; a node belongs to the layer it is named after, or "layer/...")
    up to another layer's nodes, inputs and constants. This finds what the CPU plugin rebuilt under new
    names (a layer norm over the last axis of a 4-D tensor becomes Reduce/Eltwise/RMS nodes), which lose
    the mark and any link to the layer's own nodes."""
    known = set(layers) | set(islands)

    def owner(node: Any) -> Any:
        for name in [node.get_friendly_name()] + fused_names(node.get_rt_info()):
            while name:
                if name in known:
                    return name
                name = name.rpartition("/")[0]
        return None

    out: dict = {}
    for start in compiled.get_runtime_model().get_ordered_ops():
        layer = start.get_friendly_name()
        if layer not in islands:
            continue
        todo = [i.get_source_output().get_node() for i in start.inputs()]
        seen: set = set()
        while todo:
            n = todo.pop()
            rt = n.get_rt_info()
            if n.get_friendly_name() in seen or rt["layerType"].astype(str) in ("Input", "Const"):
                continue
            seen.add(n.get_friendly_name())
            if owner(n) not in (None, layer):
                continue
            p = rt["runtimePrecision"].astype(str)
            if p in ("bf16", "f16") and rt["layerType"].astype(str) != "Reorder":
                out.setdefault(layer, p)
            todo.extend(i.get_source_output().get_node() for i in n.inputs())
    return out


def warn_once(requested: str, effective: str, device: str) -> None:
    key = (requested, effective, device)
    if key in _warned:
        return
    _warned.add(key)
    warnings.warn(f"OpenVINO {device}: precision {requested!r} was requested but the engine runs "
                  f"{effective} (the device's choice for this type); model.effective_precision says so",
                  RuntimeWarning, stacklevel=3)
