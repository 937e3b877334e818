"""The *setting* of a TensorRT layer: its type plus the discrete choices that change its semantics.

``layer_settings(layer)`` reduces a layer to hashable tuples such as
``("CONVOLUTION", "nd=2", "pad=EXPLICIT_ROUND_DOWN", "asym", "stride", "groups", "kernel=weights", ...)``.
It reads only what TensorRT reports about the layer, so it works on networks made by netdsl's lowering
and on networks made by TensorRT's own ONNX parser alike. The CPU proof uses it to show that every
setting the lowering emits has been evaluated by :mod:`.inspect` on a network TensorRT's ONNX parser
built, and compared with ONNX Runtime (tests/backends/tensorrt/test_inspect_settings.py).

Continuous parameters (alphas, epsilons, pad amounts) are not part of a setting; the validating
networks use values that make swaps visible (pre != post on every axis, alpha != beta, ...).
Float types are one kind ("float"): the evaluator computes every float layer in float64 and rounds
to the output type, which the CAST settings cover.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

from .inspect import concrete

Setting = tuple


def _kind(t: Any) -> str:
    if t is None:
        return "none"
    n = t.dtype.name
    return "float" if n in ("FLOAT", "HALF", "BF16") else "bool" if n == "BOOL" else "int"


def _input(layer: Any, i: int) -> Any:
    return layer.get_input(i) if i < layer.num_inputs else None


def _flags(**kw: bool) -> list[str]:
    return [k for k, on in kw.items() if on]


def _static(t: Any) -> Optional[tuple]:
    try:
        s = tuple(t.shape)
    except Exception:
        return None
    return s if all(d >= 0 for d in s) else None


def _has_weights(w: Any) -> bool:
    try:
        return w is not None and int(getattr(w, "size", 0) or len(w)) > 0
    except Exception:
        return False


def _conv(layer: Any) -> list:
    pre, post = tuple(layer.pre_padding), tuple(layer.post_padding)
    k_in, b_in = _input(layer, 1), _input(layer, 2)
    out = [f"nd={len(tuple(layer.kernel_size_nd))}", f"pad={layer.padding_mode.name}"]
    out += _flags(padded=any(pre) or any(post), asym=pre != post,
                  stride=any(s > 1 for s in layer.stride_nd), dilation=any(d > 1 for d in layer.dilation_nd),
                  groups=layer.num_groups > 1)
    out.append("kernel=tensor" if k_in is not None else "kernel=weights")
    out.append("bias=tensor" if b_in is not None else "bias=weights" if _has_weights(layer.bias) else "bias=none")
    return out


def _pool(layer: Any) -> list:
    pre, post = tuple(layer.pre_padding), tuple(layer.post_padding)
    kind = layer.type.name
    out = [kind, f"nd={len(tuple(layer.window_size_nd))}", f"pad={layer.padding_mode.name}"]
    out += _flags(padded=any(pre) or any(post), asym=pre != post,
                  overlap=any(s < k for s, k in zip(layer.stride_nd, layer.window_size_nd)))
    if kind != "MAX" and (any(pre) or any(post) or layer.padding_mode.name != "EXPLICIT_ROUND_DOWN"):
        out.append("exclude_pad" if layer.average_count_excludes_padding else "include_pad")
    return out


def _shuffle(layer: Any) -> list:
    x = layer.get_input(0)
    r_in = len(x.shape)
    p1 = tuple(layer.first_transpose)[:r_in]
    out = _flags(transpose1=p1 != tuple(range(r_in)))
    if _input(layer, 1) is not None:
        out.append("reshape=tensor")
    else:
        rd = layer.reshape_dims  # None when the shuffle only transposes
        if rd is not None:
            rd = tuple(rd)
            out.append("reshape=static")
            out += _flags(placeholder0=layer.zero_is_placeholder and 0 in rd, infer=-1 in rd)
    r_out = len(layer.get_output(0).shape)
    p2 = tuple(layer.second_transpose)[:r_out]
    out += _flags(transpose2=p2 != tuple(range(r_out)))
    return out


def _slice(layer: Any) -> list:
    """Two facets: where start/size/stride/fill come from (attributes or tensors), and the index arithmetic
    (negative, zero or >1 strides). The evaluator computes both the same way whatever the source."""
    mode = f"mode={layer.mode.name}"
    dyn = [n for i, n in ((1, "start"), (2, "size"), (3, "stride"), (4, "fill"), (5, "axes"))
           if _input(layer, i) is not None]
    sources = [mode] + ([f"{n}=tensor" for n in dyn] or ["static"])
    if "stride" in dyn:
        return [sources, [mode, "stride=tensor"]]
    st = tuple(layer.stride)
    steps = _flags(negative_stride=any(s < 0 for s in st), zero_stride=any(s == 0 for s in st),
                   step=any(s > 1 for s in st))
    return [sources, [mode] + (steps or ["unit_stride"])]


def _resize(layer: Any) -> list:
    mode = layer.resize_mode.name
    out = [mode, layer.coordinate_transformation.name, f"selector={layer.selector_for_single_pixel.name}"]
    if mode == "NEAREST":
        out.append(f"round={layer.nearest_rounding.name}")
    x, y = _static(layer.get_input(0)), _static(layer.get_output(0))
    if _input(layer, 1) is not None:
        out.append("size=tensor")
    else:
        out.append("size=scales" if layer.scales else "size=shape")
    if x is not None and y is not None:
        out += _flags(single_pixel=any(o == 1 and i != 1 for i, o in zip(x, y)),
                      down=any(o < i for i, o in zip(x, y)), up=any(o > i for i, o in zip(x, y)))
    return out


def _normalization(layer: Any) -> list:
    x, s = layer.get_input(0), layer.get_input(1)
    r = len(x.shape)
    mask = int(layer.axes)
    axes = {i for i in range(r) if mask >> i & 1}
    out = ["axes=several" if len(axes) > 1 else "axes=one"]
    if layer.num_groups > 1:
        out += ["groups", "v2" if getattr(layer, "is_v2", False) else "v1"]
    big = {i for i, d in enumerate(s.shape) if d != 1}
    out.append("scale=channel" if big == {1} and 1 not in axes else "scale=normalized" if big <= axes
               else "scale=other")
    return out


def _elementwise(layer: Any) -> list:
    a, b = layer.get_input(0), layer.get_input(1)
    sa, sb = _static(a), _static(b)
    return [layer.op.name, _kind(a)] + _flags(broadcast=sa != sb or sa is None)


def _matmul(layer: Any) -> list:
    a, b = layer.get_input(0), layer.get_input(1)
    sa, sb = _static(a), _static(b)
    out = [f"op0={layer.op0.name}", f"op1={layer.op1.name}", f"rank={len(a.shape)}"]
    if len(a.shape) > 2:
        out += _flags(batch_broadcast=sa is None or sb is None or sa[:-2] != sb[:-2])
    return out


def _gather(layer: Any) -> list:
    # (the index type is not part of it: TensorRT's parser always casts indices to int32, and the evaluator
    # reads any integer type the same way)
    return [layer.mode.name, _kind(layer.get_input(0)), "axis=0" if layer.axis == 0 else "axis>0"]


def _scale(layer: Any) -> list:
    return [layer.mode.name] + _flags(shift=_has_weights(layer.shift), scale=_has_weights(layer.scale),
                                      power=_has_weights(layer.power))


def _cast(layer: Any) -> list:
    return [layer.get_input(0).dtype.name, layer.to_type.name]


def _reduce(layer: Any) -> list:
    x = layer.get_input(0)
    r = len(x.shape)
    mask = int(layer.axes)
    return [layer.op.name, _kind(x), "keep_dims" if layer.keep_dims else "drop_dims",
            "all_axes" if mask == (1 << r) - 1 else "some_axes"]


def _topk(layer: Any) -> list:
    return [layer.op.name] + (["k=tensor"] if _input(layer, 1) is not None else [])


_SETTINGS: dict[str, Callable[[Any], list]] = {
    "CONVOLUTION": _conv, "DECONVOLUTION": _conv, "POOLING": _pool, "SHUFFLE": _shuffle, "SLICE": _slice,
    "RESIZE": _resize, "NORMALIZATION": _normalization, "ELEMENTWISE": _elementwise,
    "MATRIX_MULTIPLY": _matmul, "GATHER": _gather, "SCALE": _scale, "CAST": _cast, "REDUCE": _reduce,
    "TOPK": _topk,
    "ACTIVATION": lambda l: [l.type.name],
    "UNARY": lambda l: [l.op.name, _kind(l.get_input(0))],
    "CONSTANT": lambda l: [l.get_output(0).dtype.name],
    "FILL": lambda l: [l.operation.name],
    "SELECT": lambda l: _flags(broadcast=len({_static(l.get_input(i)) for i in range(3)}) > 1),
}


def layer_settings(layer: Any, trt: Any) -> set[Setting]:
    """The settings of one layer (tuples starting with the layer type): one for most layers; independent
    facets (e.g. a slice's value sources and its stride arithmetic) as separate tuples."""
    t = layer.type.name  # (read before concrete(): an activation layer's .type is its activation type)
    concrete(trt, layer)
    fn = _SETTINGS.get(t)
    out = fn(layer) if fn else []
    facets = out if out and isinstance(out[0], list) else [out]
    return {(t,) + tuple(f) for f in facets}


def network_settings(net: Any, trt: Any) -> set[Setting]:
    """The settings of every layer of ``net``."""
    return set().union(*(layer_settings(net.get_layer(i), trt) for i in range(net.num_layers)))


def uncovered(emitted: Iterable[Setting], validated: Iterable[Setting],
              exempt: Iterable[str] = ("PLUGIN", "PLUGIN_V2", "PLUGIN_V3")) -> list[Setting]:
    """The emitted settings that no validating network has (layer types in ``exempt`` are skipped)."""
    ok = set(validated)
    skip = set(exempt)
    return sorted(s for s in set(emitted) if s not in ok and s[0] not in skip)
