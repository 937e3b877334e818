"""ONNX graphs written directly with ``onnx.helper`` to validate the TensorRT evaluator (inspect.py).

Each :class:`OnnxNet` is parsed by TensorRT's own ``OnnxParser`` into an INetworkDefinition, evaluated by
:mod:`netdsl.backends.tensorrt.inspect` and compared with ONNX Runtime on the same random inputs
(test_inspect_settings.py). Together they must produce every layer *setting* (settings.py) that netdsl's
lowering emits; the parameter values are chosen so that swaps cannot hide: pre != post padding on every
axis, O/groups != C/groups, alpha != beta, exact .5 ties for every nearest rounding mode, gather on a
non-zero axis, small variances where epsilon matters.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

onnx = __import__("onnx")
from onnx import TensorProto as TP, helper as oh, numpy_helper  # noqa: E402

FLOAT, F16, BF16, I8, U8, I32, I64, BOOL = (TP.FLOAT, TP.FLOAT16, TP.BFLOAT16, TP.INT8, TP.UINT8, TP.INT32, TP.INT64,
                                            TP.BOOL)


@dataclass
class OnnxNet:
    """One validating network: nodes, typed inputs with their data, initializers, outputs."""

    name: str
    nodes: list
    inputs: dict                      # name -> (elem type, onnx shape (str = dynamic), data)
    inits: dict = field(default_factory=dict)
    outputs: tuple = ("y",)
    opset: int = 21
    # (rtol, atol): |inspect - onnxruntime| <= atol + rtol*|onnxruntime|. Both compute on this CPU (the evaluator
    # in float64 rounded to float32 per layer): measured worst 1.2e-6 absolute (3-d grouped convolutions), so
    # 2e-6 is 5x tighter than the conformance table's float32 limit
    tol: tuple = (2e-6, 2e-6)
    asymmetric_quantization: bool = False  # parser flag needed for non-zero zero points
    output_types: dict = field(default_factory=dict)  # name -> (elem type, shape) where ONNX cannot infer it
    deprecated_op: bool = False        # uses an op version the ONNX checker refuses as deprecated (still valid)

    def model(self) -> Any:
        ins = [oh.make_tensor_value_info(n, t, s) for n, (t, s, _) in self.inputs.items()]
        outs = [oh.make_empty_tensor_value_info(o) for o in self.outputs]
        inits = [numpy_helper.from_array(np.asarray(a), n) for n, a in self.inits.items()]
        g = oh.make_graph(self.nodes, self.name, ins, outs, inits)
        m = oh.make_model(g, opset_imports=[oh.make_opsetid("", self.opset)], ir_version=10)
        inferred = onnx.shape_inference.infer_shapes(m, strict_mode=not self.deprecated_op)
        types = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
        del m.graph.output[:]
        for o in self.outputs:
            if o in self.output_types:
                m.graph.output.append(oh.make_tensor_value_info(o, *self.output_types[o]))
            else:
                m.graph.output.append(types[o])
        if not self.deprecated_op:
            onnx.checker.check_model(m, full_check=True)
        return m

    def feeds(self) -> dict:
        return {n: d for n, (_, _, d) in self.inputs.items()}


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(sum(map(ord, name)) * 7919)


def u(rng: np.random.Generator, shape: tuple, lo: float = -2.0, hi: float = 2.0) -> np.ndarray:
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


def ints(rng: np.random.Generator, shape: tuple, lo: int, hi: int, dt: Any = np.int32) -> np.ndarray:
    return rng.integers(lo, hi, size=shape).astype(dt)


NETS: list[OnnxNet] = []


def net(name: str, nodes: list, inputs: dict, inits: Optional[dict] = None, **kw: Any) -> OnnxNet:
    n = OnnxNet(name, nodes, inputs, dict(inits or {}), **kw)
    NETS.append(n)
    return n


def node(op: str, ins: list, outs: Any = ("y",), **attrs: Any) -> Any:
    return oh.make_node(op, list(ins), [outs] if isinstance(outs, str) else list(outs), **attrs)


def f32(data: np.ndarray, shape: Optional[list] = None) -> tuple:
    return (FLOAT, list(shape or data.shape), data)


def typed(t: int, data: np.ndarray, shape: Optional[list] = None) -> tuple:
    return (t, list(shape or data.shape), data)


def one(name: str, op: str, x: np.ndarray, shape: Optional[list] = None, inits: Optional[dict] = None,
        extra_inputs: tuple = (), **attrs: Any) -> OnnxNet:
    """A one-node network y = op(x, *extra_inputs) on a float input."""
    return net(name, [node(op, ["x", *extra_inputs], **attrs)], {"x": f32(x, shape)}, inits)


# ---- activations and unary math --------------------------------------------------------------------
def _activations() -> None:
    r = _rng("act")
    x = u(r, (2, 3, 5, 4), -3, 3)
    for op, kw in (("Relu", {}), ("Sigmoid", {}), ("Tanh", {}), ("Softsign", {}), ("Softplus", {}),
                   ("LeakyRelu", {"alpha": 0.37}), ("Elu", {"alpha": 2.5}), ("Selu", {"alpha": 1.3, "gamma": 0.7}),
                   ("HardSigmoid", {"alpha": 0.3, "beta": 0.6}), ("HardSwish", {})):
        one(f"act_{op}", op, x, **kw)
    one("act_Clip", "Clip", x, inits={"lo": np.float32(-0.5), "hi": np.float32(0.7)}, extra_inputs=("lo", "hi"))
    g = u(r, (4, 32), 1.5, 3.5) * np.sign(u(r, (4, 32)))  # where erf and tanh forms differ by 1e-4 .. 5e-4
    one("act_Gelu_erf", "Gelu", g)
    one("act_Gelu_tanh", "Gelu", g, approximate="tanh")
    for op, lo, hi in (("Abs", -3, 3), ("Exp", -3, 3), ("Log", 0.05, 5), ("Neg", -3, 3), ("Sqrt", 0.05, 5),
                       ("Reciprocal", 0.25, 4), ("Erf", -2.5, 2.5), ("Ceil", -3, 3)):
        one(f"unary_{op}", op, u(r, (3, 4, 5), lo, hi))
    ties = (ints(r, (3, 8), -6, 6) + 0.5).astype(np.float32)  # Round: half to even
    one("unary_Round_ties", "Round", np.concatenate([ties, u(r, (3, 8), -4, 4)]))
    b = r.random((3, 5)) < 0.5
    net("unary_Not", [node("Not", ["x"])], {"x": typed(BOOL, b)})
    one("softmax_axis1", "Softmax", x, axis=1)
    one("softmax_last", "Softmax", x, axis=-1)
    one("log_softmax_axis1", "LogSoftmax", x, axis=1)
    one("prelu_const_slope", "PRelu", x, inits={"s": u(r, (3, 1, 1), 0.05, 0.5)}, extra_inputs=("s",))
    net("prelu_runtime_slope", [node("PRelu", ["x", "s"])], {"x": f32(x[:, :, :, 0]), "s": f32(u(r, (3, 1), 0.05, 0.5))})
    one("lrn5", "LRN", x, size=5, alpha=0.3, beta=0.6, bias=1.5)
    one("lrn3", "LRN", x, size=3, alpha=0.02, beta=0.75, bias=2.0)
    net("identity", [node("Identity", ["x"], "a"), node("Add", ["a", "x"])], {"x": f32(x)})


# ---- elementwise ---------------------------------------------------------------------------------------
def _elementwise() -> None:
    r = _rng("ew")
    a, b = u(r, (2, 3, 4)), u(r, (2, 3, 4), 0.5, 2)
    small = u(r, (4,), 0.5, 2)
    for op in ("Add", "Sub", "Mul", "Div", "Max", "Min"):
        net(f"ew_{op}", [node(op, ["a", "b"])], {"a": f32(a), "b": f32(b)})
        net(f"ew_{op}_broadcast", [node(op, ["a", "b"])], {"a": f32(a, ["N", 3, 4]), "b": f32(small)})
    pa, pb = u(r, (2, 3, 4), 0.2, 3), u(r, (2, 3, 4), -2, 2)
    net("ew_Pow", [node("Pow", ["a", "b"])], {"a": f32(pa), "b": f32(pb)})
    net("ew_Pow_broadcast", [node("Pow", ["a", "b"])], {"a": f32(pa), "b": f32(u(r, (4,), -2, 2))})
    fi, fj = r.integers(-2, 3, (2, 3, 4)).astype(np.float32), r.integers(-2, 3, (2, 3, 4)).astype(np.float32)
    for op in ("Equal", "Less", "Greater"):
        net(f"cmp_{op}", [node(op, ["a", "b"])], {"a": f32(fi), "b": f32(fj)})
        net(f"cmp_{op}_broadcast", [node(op, ["a", "b"])], {"a": f32(fi), "b": f32(fj[0, 0])})
    ia, ib = ints(r, (3, 4), -20, 20), ints(r, (3, 4), 1, 6) * np.where(r.random((3, 4)) < 0.5, -1, 1).astype(np.int32)
    for op in ("Add", "Sub", "Mul", "Div", "Max", "Min", "Equal", "Less", "Greater"):
        net(f"int_{op}", [node(op, ["a", "b"])], {"a": typed(I32, ia), "b": typed(I32, ib)})
        net(f"int_{op}_broadcast", [node(op, ["a", "b"])], {"a": typed(I32, ia), "b": typed(I32, ib[:1])})
    net("int_Mod_floor", [node("Mod", ["a", "b"])], {"a": typed(I32, ia), "b": typed(I32, ib)})  # FLOOR_DIV
    ba, bb = r.random((3, 5)) < 0.5, r.random((3, 5)) < 0.5
    for op in ("And", "Or"):
        net(f"bool_{op}", [node(op, ["a", "b"])], {"a": typed(BOOL, ba), "b": typed(BOOL, bb)})
        net(f"bool_{op}_broadcast", [node(op, ["a", "b"])], {"a": typed(BOOL, ba), "b": typed(BOOL, bb[0])})
    net("bool_const", [node("And", ["a", "c"])], {"a": typed(BOOL, ba)}, {"c": bb[0]})
    c = r.random((3, 4)) < 0.5
    net("where", [node("Where", ["c", "a", "b"])], {"c": typed(BOOL, c), "a": f32(a[0]), "b": f32(b[0])})
    net("where_broadcast", [node("Where", ["c", "a", "b"])],
        {"c": typed(BOOL, c[0]), "a": f32(a[:, :3]), "b": f32(b[0, :, :1])})


# ---- casts -----------------------------------------------------------------------------------------------
def _casts() -> None:
    r = _rng("cast")
    x = u(r, (3, 5), -9.7, 9.7)
    chains = {  # name: (input type, data, [types to cast through, in order])
        "f16": (FLOAT, x, [F16, FLOAT]), "bf16": (FLOAT, x, [BF16, FLOAT]),
        "f32_i32": (FLOAT, x, [I32, FLOAT]), "f16_i32": (FLOAT, x, [F16, I32, F16, FLOAT]),
        "bf16_i32": (FLOAT, x, [BF16, I32, BF16, FLOAT]), "i32_bool": (FLOAT, x, [I32, BOOL, FLOAT]),
        "bool_f16": (BOOL, r.random((3, 5)) < 0.5, [F16, FLOAT]), "bool_bf16": (BOOL, r.random((3, 5)) < 0.5, [BF16, FLOAT]),
        "f32_i64": (FLOAT, x, [I64, FLOAT]), "f32_i8": (FLOAT, x * 12, [I8, FLOAT]),
        "f16_i8": (FLOAT, x * 12, [F16, I8, FLOAT]), "bf16_i8": (FLOAT, x * 12, [BF16, I8, FLOAT]),
        "u8_f32": (U8, ints(r, (3, 5), 0, 256, np.uint8), [FLOAT]), "u8_f16": (U8, ints(r, (3, 5), 0, 256, np.uint8), [F16, FLOAT]),
        "u8_bf16": (U8, ints(r, (3, 5), 0, 256, np.uint8), [BF16, FLOAT]),
        "f16_bf16": (FLOAT, x, [F16, BF16, FLOAT]), "i8_i32": (I8, ints(r, (3, 5), -128, 128, np.int8), [I32, FLOAT]),
        "u8_i32": (U8, ints(r, (3, 5), 0, 256, np.uint8), [I32, FLOAT]),
    }
    for name, (t, data, through) in chains.items():
        nodes, prev, outs = [], "x", []
        for i, to in enumerate(through):
            out = "y" if i == len(through) - 1 else f"c{i}"
            nodes.append(node("Cast", [prev], out, to=to))
            if out != "y":  # each intermediate is also an output (as float32 where NumPy has no such type):
                outs.append(out if to != BF16 else f"{out}_f32")  # ONNX Runtime's result differs otherwise
                if to == BF16:
                    nodes.append(node("Cast", [out], f"{out}_f32", to=FLOAT))
            prev = out
        net(f"cast_{name}", nodes, {"x": typed(t, data)}, outputs=tuple(outs) + ("y",))
    h = u(r, (2, 3, 4, 4))
    net("const_f16", [node("Cast", ["x"], "a", to=F16), node("Add", ["a", "c"], "b"), node("Cast", ["b"], to=FLOAT)],
        {"x": f32(h)}, {"c": u(r, (1, 3, 1, 1)).astype(np.float16)}, tol=(1e-3, 1e-3))


# ---- convolution / pooling ---------------------------------------------------------------------------
def _conv_net(name: str, x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray], sources: tuple, **attrs: Any) -> None:
    """Conv with the kernel/bias as initializers ('weights') or graph inputs ('tensor')."""
    ks, bs = sources
    inputs, inits = {"x": f32(x)}, {}
    (inputs.__setitem__("w", f32(w)) if ks == "tensor" else inits.__setitem__("w", w))
    names = ["x", "w"]
    if b is not None:
        (inputs.__setitem__("b", f32(b)) if bs == "tensor" else inits.__setitem__("b", b))
        names.append("b")
    net(name, [node("Conv", names, **attrs)], inputs, inits)


def _conv() -> None:
    r = _rng("conv")
    geometries = {  # name: (x shape, w shape, attrs) -- pads: begins then ends, different on every axis
        "plain": ((2, 3, 7, 6), (4, 3, 3, 2), {}),
        "pad_sym": ((2, 3, 7, 6), (4, 3, 3, 3), {"pads": [1, 1, 1, 1]}),
        "pad_sym_stride": ((2, 3, 9, 8), (4, 3, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
        "pad_asym_stride": ((2, 3, 9, 8), (4, 3, 3, 2), {"pads": [1, 0, 2, 1], "strides": [2, 1]}),
        "pad_asym_stride_dilation": ((2, 2, 13, 9), (3, 2, 3, 2), {"pads": [2, 0, 0, 1], "strides": [2, 1],
                                                                 "dilations": [2, 1]}),
        "pad_dilation": ((2, 3, 11, 9), (5, 3, 3, 3), {"pads": [2, 2, 2, 2], "dilations": [2, 2]}),
        "groups_dilation": ((2, 4, 8, 8), (4, 1, 3, 3), {"pads": [2, 2, 2, 2], "dilations": [2, 2], "group": 4}),
        "groups_stride": ((2, 6, 7, 7), (9, 2, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2], "group": 3}),
        "groups_asym": ((2, 6, 9, 8), (9, 2, 3, 2), {"pads": [0, 1, 1, 2], "strides": [1, 2], "dilations": [2, 1],
                                                    "group": 3}),
        "groups_asym_nostride": ((2, 4, 7, 9), (6, 2, 3, 3), {"pads": [2, 1, 1, 0], "group": 2}),
        "asym": ((2, 3, 7, 6), (4, 3, 3, 2), {"pads": [1, 0, 0, 2]}),
        "3d_stride": ((1, 2, 5, 6, 4), (3, 2, 2, 3, 2), {"pads": [1, 1, 1, 1, 1, 1], "strides": [1, 2, 1]}),
        "3d_groups_asym": ((1, 4, 5, 6, 7), (6, 2, 3, 2, 3), {"pads": [1, 0, 2, 2, 1, 0], "strides": [1, 2, 1],
                                                             "group": 2}),
        "3d_groups_stride": ((1, 4, 5, 6, 5), (6, 2, 3, 3, 3), {"pads": [1, 1, 1, 1, 1, 1], "strides": [1, 2, 1],
                                                               "group": 2}),
        "same_upper_stride2": ((1, 2, 8, 7), (3, 2, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
        "same_lower_stride_groups": ((2, 4, 8, 7), (6, 2, 3, 2), {"auto_pad": "SAME_LOWER", "strides": [2, 3],
                                                                  "group": 2}),
        "1d_asym_groups": ((2, 4, 9), (6, 2, 3), {"pads": [2, 1], "group": 2}),
    }
    for g, (xs, ws, attrs) in geometries.items():
        x, w, b = u(r, xs), u(r, ws, -0.5, 0.5), u(r, (ws[0],), -0.5, 0.5)
        for sources in (("weights", "weights"), ("weights", None), ("tensor", "tensor"), ("tensor", None),
                        ("tensor", "weights")):
            tag = f"{sources[0]}_{sources[1] or 'nobias'}"
            _conv_net(f"conv_{g}_{tag}", x, w, b if sources[1] else None, sources, **attrs)
    # ConvTranspose: weight (C_in, O/groups, *k); output_padding beyond the end padding too
    deconvs = {
        "stride_outpad": ((2, 3, 4, 4), (3, 2, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]}),
        "k2s2": ((2, 4, 5, 5), (4, 3, 2, 2), {"strides": [2, 2]}),
        "groups_asym": ((1, 4, 4, 3), (4, 3, 3, 2), {"strides": [2, 3], "pads": [1, 0, 0, 1], "output_padding": [1, 0],
                                                    "group": 2}),
        "groups_dilation": ((1, 4, 4, 4), (4, 1, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1], "dilations": [2, 2],
                                                        "group": 2}),
        "groups_nopad": ((2, 4, 7, 3), (4, 2, 4, 1), {"strides": [3, 1], "group": 2}),
        "groups_pad": ((1, 4, 4, 5), (4, 3, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1], "group": 2}),
        "1d_asym": ((2, 3, 4), (3, 2, 3), {"strides": [3], "pads": [2, 0], "output_padding": [2]}),
        "1d_outpad_nopad": ((2, 4, 4), (4, 3, 3), {"strides": [2], "output_padding": [1]}),
        "3d": ((1, 2, 2, 3, 2), (2, 2, 2, 2, 2), {"strides": [2, 2, 2]}),
    }
    for g, (xs, ws, attrs) in deconvs.items():
        x, w = u(r, xs), u(r, ws, -0.5, 0.5)
        o = ws[1] * attrs.get("group", 1)
        net(f"deconv_{g}_bias", [node("ConvTranspose", ["x", "w", "b"], **attrs)], {"x": f32(x)},
            {"w": w, "b": u(r, (o,), -0.5, 0.5)})
        net(f"deconv_{g}_nobias", [node("ConvTranspose", ["x", "w"], **attrs)], {"x": f32(x)}, {"w": w})
    x = u(r, (2, 3, 7, 8))
    pools = {  # name: (op, attrs, input)
        "max_plain": ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2]}, x),
        "max_pad_ceil": ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}, x),
        "max_asym": ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 1], "pads": [1, 0, 0, 1]}, x),
        "max_asym_ceil": ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 1], "pads": [1, 0, 0, 1], "ceil_mode": 1}, x),
        "max_ceil_overhang": ("MaxPool", {"kernel_shape": [3, 2], "strides": [2, 2], "ceil_mode": 1}, x),
        "max_overlap": ("MaxPool", {"kernel_shape": [3, 3], "strides": [1, 2]}, x),
        "max_pad_sym": ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, x),
        "max_pad_no_overlap": ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1]}, x),
        "max_pad_no_overlap_ceil": ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                                "ceil_mode": 1}, u(r, (2, 3, 6, 8))),
        # (not 7 wide: there the last ceil window would start in the end padding; ONNX Runtime drops it as ONNX
        # says, TensorRT's EXPLICIT_ROUND_UP keeps it, and TensorRT-RTX's parser maps ceil_mode to ROUND_UP)
        "avg_ceil_include_nopad": ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1,
                                                   "count_include_pad": 1}, x),
        "max_3d": ("MaxPool", {"kernel_shape": [2, 2, 2], "strides": [2, 2, 2]}, u(r, (1, 2, 4, 6, 4))),
        "max_1d_asym": ("MaxPool", {"kernel_shape": [3], "strides": [2], "pads": [2, 0]}, u(r, (2, 3, 9))),
        "avg_plain": ("AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2]}, x),
        "avg_overlap": ("AveragePool", {"kernel_shape": [3, 3], "strides": [1, 2]}, x),
        "avg_include_pad": ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 1], "pads": [1, 0, 0, 2],
                                            "count_include_pad": 1}, x),
        "avg_exclude_pad": ("AveragePool", {"kernel_shape": [3, 2], "strides": [1, 2], "pads": [2, 0, 0, 1]}, x),
        "avg_sym_include": ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                            "count_include_pad": 1}, x),
        "avg_sym_exclude": ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, x),
        "avg_ceil_include": ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                             "ceil_mode": 1, "count_include_pad": 1}, x),
        "avg_ceil_exclude": ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                             "ceil_mode": 1}, x),
        # TensorFlow's SAME: odd total padding on both axes (7 -> 4 and 8 -> 4 with stride 2, kernel 3 and 2)
        "max_same_upper": ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}, x),
        "max_same_lower": ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "SAME_LOWER"}, x),
        "avg_same_upper_exclude": ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"},
                                   x),
        "avg_same_lower_include": ("AveragePool", {"kernel_shape": [4, 2], "strides": [3, 2], "auto_pad": "SAME_LOWER",
                                                   "count_include_pad": 1}, x),
        # windows that do not overlap (kernel == stride; ONNX Runtime refuses SAME with a kernel below the stride)
        "max_same_upper_k2s2": ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "SAME_UPPER"}, x),
        "avg_same_lower_exclude_k2s2": ("AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2],
                                                        "auto_pad": "SAME_LOWER"}, x),
        "avg_same_upper_include_k2s2": ("AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2],
                                                        "auto_pad": "SAME_UPPER", "count_include_pad": 1}, x),
        "avg_1d_include": ("AveragePool", {"kernel_shape": [3], "strides": [1], "pads": [1, 1], "count_include_pad": 1},
                           u(r, (2, 3, 9))),
    }
    for g, (op, attrs, data) in pools.items():
        one(f"pool_{g}", op, data, **attrs)
    one("global_avg", "GlobalAveragePool", x)
    one("global_max", "GlobalMaxPool", x)


# ---- normalization ---------------------------------------------------------------------------------------
def _norms() -> None:
    r = _rng("norm")
    x = u(r, (2, 3, 5, 4), -0.02, 0.02)  # variance ~1e-4: the epsilon (1e-3) matters
    c = {"s": u(r, (3,), 0.5, 1.5), "b": u(r, (3,), -0.5, 0.5), "m": u(r, (3,), -0.01, 0.01),
         "v": u(r, (3,), 1e-4, 4e-3)}
    one("batchnorm_small_var", "BatchNormalization", x, inits=c, extra_inputs=("s", "b", "m", "v"), epsilon=1e-3)
    one("instancenorm", "InstanceNormalization", x, inits={"s": c["s"], "b": c["b"]}, extra_inputs=("s", "b"),
        epsilon=1e-3)
    one("instancenorm_rank3", "InstanceNormalization", x[:, :, :, 0], inits={"s": c["s"], "b": c["b"]},
        extra_inputs=("s", "b"), epsilon=1e-3)
    one("layernorm_last", "LayerNormalization", x, inits={"s": u(r, (4,), 0.5, 1.5), "b": u(r, (4,))},
        extra_inputs=("s", "b"), axis=-1, epsilon=1e-3)
    one("layernorm_two_axes", "LayerNormalization", x, inits={"s": u(r, (5, 4), 0.5, 1.5), "b": u(r, (5, 4))},
        extra_inputs=("s", "b"), axis=-2, epsilon=1e-3)
    one("layernorm_from_channels", "LayerNormalization", x[:, :, :, 0], inits={"s": u(r, (3, 5), 0.5, 1.5),
                                                                              "b": u(r, (3, 5))},
        extra_inputs=("s", "b"), axis=1, epsilon=1e-3)
    xg = u(r, (2, 6, 4, 3), -0.02, 0.02)
    net("groupnorm", [node("GroupNormalization", ["x", "s", "b"], num_groups=3, epsilon=1e-3)], {"x": f32(xg)},
        {"s": u(r, (6,), 0.5, 1.5), "b": u(r, (6,))}, output_types={"y": (FLOAT, list(xg.shape))})
    # opset 18: scale and bias per group (TensorRT's parser makes a v1 normalization layer, as TensorRT 10.0 has)
    net("groupnorm_opset18_per_group", [node("GroupNormalization", ["x", "s", "b"], num_groups=3, epsilon=1e-3)],
        {"x": f32(xg)}, {"s": u(r, (3,), 0.5, 1.5), "b": u(r, (3,))}, opset=18, output_types={"y": (FLOAT, list(xg.shape))},
        deprecated_op=True)


# ---- reductions, top-k ----------------------------------------------------------------------------------
def _reductions() -> None:
    r = _rng("reduce")
    x = u(r, (2, 3, 4, 5), 0.7, 1.3)
    x = x * np.sign(u(r, x.shape))
    for op in ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd"):
        for keep in (0, 1):
            net(f"{op}_some_keep{keep}", [node(op, ["x", "a"], keepdims=keep)], {"x": f32(x)},
                {"a": np.array([1, 3], np.int64)})
            net(f"{op}_all_keep{keep}", [node(op, ["x"], keepdims=keep)], {"x": f32(x)})
    net("ReduceProd_int_all_keep", [node("ReduceProd", ["x"], keepdims=1)], {"x": typed(I32, ints(r, (2, 3), 1, 4))})
    net("ReduceSum_int", [node("ReduceSum", ["x", "a"], keepdims=0)], {"x": typed(I32, ints(r, (3, 4, 5), -9, 9))},
        {"a": np.array([1], np.int64)})
    d = (r.permutation(2 * 5 * 3) * 0.25 - 3).astype(np.float32).reshape(2, 5, 3)  # distinct: no ties
    net("argmax", [node("ArgMax", ["x"], axis=1, keepdims=0)], {"x": f32(d)})
    net("argmin", [node("ArgMin", ["x"], axis=2, keepdims=1)], {"x": f32(d)})
    net("topk_smallest", [node("TopK", ["x", "k"], ["y", "i"], axis=1, largest=0)], {"x": f32(d)},
        {"k": np.array([3], np.int64)}, outputs=("y", "i"))


# ---- shapes: reshape, transpose, concat, slice, pad, tile, expand, gather, matmul -----------------
def _shapes() -> None:
    r = _rng("shape")
    x = u(r, (2, 3, 4, 5))
    one("transpose", "Transpose", x, perm=[0, 2, 3, 1])
    one("transpose_rotate", "Transpose", x[0], perm=[2, 0, 1])
    one("reshape_static", "Reshape", x, inits={"s": np.array([6, 20], np.int64)}, extra_inputs=("s",))
    one("reshape_placeholder_infer", "Reshape", x, shape=["N", 3, 4, 5], inits={"s": np.array([0, -1, 5], np.int64)},
        extra_inputs=("s",))
    one("reshape_infer", "Reshape", x, inits={"s": np.array([3, -1], np.int64)}, extra_inputs=("s",))
    one("reshape_placeholder", "Reshape", x, shape=["N", 3, 4, 5], inits={"s": np.array([0, 12, 5], np.int64)},
        extra_inputs=("s",))
    net("reshape_runtime_shape", [node("Shape", ["s"], "shp"), node("Reshape", ["x", "shp"])],
        {"x": f32(x.reshape(-1)[:24], ["M"]), "s": f32(u(r, (4, 6)), ["A", "B"])})
    one("flatten_dynamic", "Flatten", x, shape=["N", 3, 4, 5], axis=2)
    net("squeeze_unsqueeze", [node("Unsqueeze", ["x", "a"], "t"), node("Squeeze", ["t", "b"])],
        {"x": f32(x)}, {"a": np.array([1, -1], np.int64), "b": np.array([1], np.int64)})
    net("concat", [node("Concat", ["x", "c"], axis=1)], {"x": f32(x)}, {"c": u(r, (2, 2, 4, 5))})
    net("split", [node("Split", ["x", "s"], ["y", "z"], axis=1)], {"x": f32(x)}, {"s": np.array([1, 2], np.int64)},
        outputs=("y", "z"))
    slices = {  # name: (starts, ends, axes, steps, dynamic input shape?)
        "basic": ([1, 0], [3, 5], [1, 3], [1, 2], None),
        "negative_steps": ([-1, 4], [-100, 0], [2, 3], [-2, -1], None),
        "dynamic_tail": ([1], [2 ** 62], [0], [1], ["N", 3, 4, 5]),
        "dynamic_negative": ([-1, 4], [-100, 0], [0, 3], [-2, -1], ["N", 3, 4, 5]),
        "dynamic_step": ([0], [-1], [0], [2], ["N", 3, 4, 5]),
    }
    for name, (st, en, ax, sp, shape) in slices.items():
        one(f"slice_{name}", "Slice", x, shape=shape, extra_inputs=("st", "en", "ax", "sp"),
            inits={"st": np.array(st, np.int64), "en": np.array(en, np.int64), "ax": np.array(ax, np.int64),
                   "sp": np.array(sp, np.int64)})
    pads = np.array([0, 1, 2, 1, 0, 2, 1, 3], np.int64)  # begins, ends: pre != post on every padded axis
    refl = np.array([0, 0, 2, 1, 0, 0, 1, 3], np.int64)
    one("pad_constant_value", "Pad", x, inits={"p": pads, "v": np.float32(1.5)}, extra_inputs=("p", "v"))
    one("pad_constant_zero", "Pad", x, inits={"p": pads}, extra_inputs=("p",))
    one("pad_constant_zero_dynamic", "Pad", x, shape=["N", 3, 4, 5], inits={"p": pads}, extra_inputs=("p",))
    one("pad_constant_dynamic", "Pad", x, shape=["N", 3, 4, 5], inits={"p": pads, "v": np.float32(-0.5)},
        extra_inputs=("p", "v"))
    one("pad_reflect", "Pad", x, inits={"p": refl}, extra_inputs=("p",), mode="reflect")
    one("pad_reflect_dynamic", "Pad", x, shape=["N", 3, 4, 5], inits={"p": refl}, extra_inputs=("p",), mode="reflect")
    one("pad_edge", "Pad", x, inits={"p": pads}, extra_inputs=("p",), mode="edge")
    one("pad_wrap", "Pad", x, inits={"p": refl}, extra_inputs=("p",), mode="wrap")
    one("tile", "Tile", x, inits={"t": np.array([1, 2, 1, 3], np.int64)}, extra_inputs=("t",))
    one("tile_dynamic", "Tile", x, shape=["N", 3, 4, 5], inits={"t": np.array([2, 1, 1, 3], np.int64)},
        extra_inputs=("t",))
    one("expand", "Expand", x[:, :1], inits={"s": np.array([2, 3, 4, 5], np.int64)}, extra_inputs=("s",))
    net("expand_dynamic", [node("Shape", ["z"], "s"), node("Expand", ["x", "s"])],
        {"x": f32(u(r, (1, 3, 1))), "z": f32(u(r, (2, 3, 4)), ["N", 3, 4])})
    net("gather_axis0_const", [node("Gather", ["x", "i"], axis=0)], {"x": f32(x[0, 0])},
        {"i": np.array([3, 0, 2, 2], np.int32)})
    net("gather_axis2_int64", [node("Gather", ["x", "i"], axis=2)], {"x": f32(x)},
        {"i": np.array([[0, 3], [2, 1]], np.int64)})
    net("gather_axis1_runtime", [node("Gather", ["x", "i"], axis=1)],
        {"x": f32(x), "i": typed(I32, ints(r, (2, 2), 0, 3))})
    net("gather_int_data", [node("Shape", ["x"], "s"), node("Gather", ["s", "i"], "d", axis=0),
                            node("Cast", ["d"], to=FLOAT)], {"x": f32(x)}, {"i": np.array([2, 0], np.int32)})
    net("embedding", [node("Gather", ["t", "i"], axis=0)], {"i": typed(I32, ints(r, (2, 5), 0, 10))},
        {"t": u(r, (10, 6))})
    net("range_fill", [node("Shape", ["x"], "s"), node("Gather", ["s", "i"], "n", axis=0), node("Cast", ["n"], "nf", to=FLOAT),
                       node("Range", ["z", "nf", "o"])], {"x": f32(u(r, (5, 3)), ["N", 3])},
        {"i": np.array(0, np.int64), "z": np.float32(0.5), "o": np.float32(1.5)})
    mats = {  # name: (a shape, b shape)
        "2d": ((4, 6), (6, 3)), "3d": ((2, 4, 5), (2, 5, 3)), "3d_broadcast": ((2, 4, 5), (5, 3)),
        "4d": ((2, 3, 4, 5), (2, 3, 5, 2)), "4d_broadcast": ((2, 1, 4, 5), (3, 5, 2)),
    }
    for name, (sa, sb) in mats.items():
        net(f"matmul_{name}", [node("MatMul", ["a", "b"])], {"a": f32(u(r, sa)), "b": f32(u(r, sb))})
        net(f"matmul_{name}_const", [node("MatMul", ["a", "b"])], {"a": f32(u(r, sa))}, {"b": u(r, sb)})
    net("gemm_transB", [node("Gemm", ["a", "b", "c"], transB=1)], {"a": f32(u(r, (3, 4)))},
        {"b": u(r, (5, 4)), "c": u(r, (5,))})
    net("gemm_transB_runtime", [node("Gemm", ["a", "b"], transB=1)], {"a": f32(u(r, (3, 4))), "b": f32(u(r, (5, 4)))})


# ---- resize ------------------------------------------------------------------------------------------------
def _resize() -> None:
    r = _rng("resize")
    x = u(r, (1, 2, 8, 6))
    modes = {  # name: (attrs, scales or None, sizes or None) -- scales exact in binary: .5 ties are real ties
        "nearest_half_pixel_down_floor": ({"nearest_mode": "round_prefer_floor"}, [1, 1, 0.5, 0.5], None),
        "nearest_half_pixel_down_ceil": ({"nearest_mode": "round_prefer_ceil"}, [1, 1, 0.5, 0.5], None),
        "nearest_half_pixel_up_floor": ({"nearest_mode": "round_prefer_floor"}, [1, 1, 2, 2], None),
        "nearest_half_pixel_up_ceil": ({"nearest_mode": "round_prefer_ceil"}, [1, 1, 2, 2], None),
        "nearest_half_pixel_updown": ({"nearest_mode": "round_prefer_floor"}, [1, 1, 0.5, 1.5], None),
        "nearest_half_pixel_updown_ceil": ({"nearest_mode": "round_prefer_ceil"}, [1, 1, 0.5, 1.5], None),
        "nearest_asym_up_floor": ({"coordinate_transformation_mode": "asymmetric", "nearest_mode": "round_prefer_floor"},
                                  [1, 1, 2, 2], None),
        "nearest_asym_up_ceil": ({"coordinate_transformation_mode": "asymmetric", "nearest_mode": "round_prefer_ceil"},
                                 [1, 1, 2, 2], None),
        "nearest_asym_floor": ({"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
                               [1, 1, 2, 2], None),
        "nearest_asym_floor_down": ({"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
                                    [1, 1, 0.5, 1], None),
        "nearest_asym_floor_sizes": ({"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
                                     None, [1, 2, 11, 3]),
        "nearest_asym_floor_updown": ({"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
                                      [1, 1, 0.5, 2], None),
        "nearest_asym_ceil": ({"coordinate_transformation_mode": "asymmetric", "nearest_mode": "ceil"},
                              [1, 1, 2, 0.5], None),
        "nearest_align_ceil": ({"coordinate_transformation_mode": "align_corners", "nearest_mode": "ceil"},
                               None, [1, 2, 15, 11]),
        "nearest_align_floor_ties": ({"coordinate_transformation_mode": "align_corners",
                                      "nearest_mode": "round_prefer_floor"}, None, [1, 2, 15, 11]),
        "nearest_align_ceil_ties": ({"coordinate_transformation_mode": "align_corners",
                                     "nearest_mode": "round_prefer_ceil"}, None, [1, 2, 15, 11]),
        "nearest_pytorch_length1": ({"coordinate_transformation_mode": "pytorch_half_pixel", "nearest_mode": "floor"},
                                    None, [1, 2, 1, 4]),
        "nearest_pytorch_length1_round": ({"coordinate_transformation_mode": "pytorch_half_pixel"},
                                          None, [1, 2, 1, 12]),
        "nearest_half_pixel_length1": ({"nearest_mode": "round_prefer_floor"}, None, [1, 2, 1, 3]),
        "linear_half_pixel_up": ({"mode": "linear"}, [1, 1, 2, 2], None),
        "linear_half_pixel_same": ({"mode": "linear"}, [1, 1, 1, 2], None),
        "linear_half_pixel_down": ({"mode": "linear"}, [1, 1, 0.5, 0.5], None),
        "linear_half_pixel_length1": ({"mode": "linear"}, None, [1, 2, 1, 3]),
        "linear_half_pixel_length1_up": ({"mode": "linear"}, None, [1, 2, 1, 9]),  # F.interpolate to one row
        "linear_pytorch_down": ({"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"},
                                None, [1, 2, 3, 4]),
        "linear_pytorch_up": ({"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"},
                              [1, 1, 2, 2], None),
        "linear_pytorch_length1": ({"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"},
                                   None, [1, 2, 1, 12]),
        "linear_pytorch_length1_down": ({"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"},
                                        None, [1, 2, 1, 3]),
        "linear_align_up": ({"mode": "linear", "coordinate_transformation_mode": "align_corners"},
                            None, [1, 2, 15, 11]),
        "linear_asym_up": ({"mode": "linear", "coordinate_transformation_mode": "asymmetric"}, [1, 1, 1.5, 2], None),
    }
    for name, (attrs, scales, sizes) in modes.items():
        ins = ["x", "", "sc"] if scales is not None else ["x", "", "", "sz"]
        inits = {"sc": np.array(scales, np.float32)} if scales is not None else {"sz": np.array(sizes, np.int64)}
        one(f"resize_{name}", "Resize", x, inits=inits, extra_inputs=tuple(ins[1:]), **attrs)
    one("resize_linear_1d", "Resize", x[:, :, 0], inits={"sc": np.array([1, 1, 1.5], np.float32)},
        extra_inputs=("", "sc"), mode="linear")
    one("resize_nearest_dynamic", "Resize", x, shape=["N", 2, 8, 6], inits={"sc": np.array([1, 1, 2, 2], np.float32)},
        extra_inputs=("", "sc"), nearest_mode="round_prefer_floor")
    one("resize_nearest_asym_floor_dynamic", "Resize", x, shape=["N", 2, 8, 6],
        inits={"sc": np.array([1, 1, 2, 2], np.float32)}, extra_inputs=("", "sc"),
        coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    one("resize_linear_align_dynamic", "Resize", x, shape=["N", 2, 8, 6], inits={"sc": np.array([1, 1, 2, 1.5], np.float32)},
        extra_inputs=("", "sc"), mode="linear", coordinate_transformation_mode="align_corners")
    one("resize_linear_dynamic", "Resize", x, shape=["N", 2, 8, 6], inits={"sc": np.array([1, 1, 2, 2], np.float32)},
        extra_inputs=("", "sc"), mode="linear")
    # static sizes, downscaling only
    for name, attrs in (("linear_align_down", {"mode": "linear", "coordinate_transformation_mode": "align_corners"}),
                        ("linear_half_pixel_sizes_down", {"mode": "linear"}),
                        ("nearest_asym_floor_down_sizes", {"coordinate_transformation_mode": "asymmetric",
                                                           "nearest_mode": "floor"})):
        one(f"resize_{name}", "Resize", x, inits={"sz": np.array([1, 2, 5, 3], np.int64)}, extra_inputs=("", "", "sz"),
            **attrs)
    # sizes read at run time from another input's dims (a shape tensor on the resize layer's input 1)
    like = u(r, (1, 1, 11, 5))
    for name, attrs in (("nearest_asym_floor", {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}),
                        ("linear_align", {"mode": "linear", "coordinate_transformation_mode": "align_corners"}),
                        ("linear_half_pixel", {"mode": "linear"}),
                        ("linear_pytorch", {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"})):
        net(f"resize_to_like_{name}", [node("Shape", ["x"], "nc", start=0, end=2),
                                       node("Shape", ["like"], "hw", start=2, end=4),
                                       node("Concat", ["nc", "hw"], "sz", axis=0),
                                       node("Resize", ["x", "", "", "sz"], **attrs)],
            {"x": f32(x), "like": f32(like, [1, 1, "H", "W"])}, output_types={"y": (FLOAT, [1, 2, "H", "W"])})
    # one output row from a size read at run time: F.interpolate(x, size=y.shape[-2:]) to length 1 (half_pixel
    # samples the centre, as PyTorch), the other axis widened
    net("resize_to_like_linear_half_pixel_length1", [node("Shape", ["x"], "nc", start=0, end=2),
                                                     node("Shape", ["like"], "hw", start=2, end=4),
                                                     node("Concat", ["nc", "hw"], "sz", axis=0),
                                                     node("Resize", ["x", "", "", "sz"], mode="linear")],
        {"x": f32(x), "like": f32(u(r, (1, 1, 1, 9)), [1, 1, "H", "W"])}, output_types={"y": (FLOAT, [1, 2, "H", "W"])})


# ---- quantization ---------------------------------------------------------------------------------------
def _quant() -> None:
    r = _rng("quant")
    s = np.array([0.25, 0.125, 0.5], np.float32)
    x = ((r.integers(-140, 140, (2, 3, 4)) + r.uniform(-0.4, 0.4, (2, 3, 4))) * s.reshape(1, 3, 1)).astype(np.float32)
    # (without a zero point ONNX quantizes to uint8; TensorRT's parser reads int8: give an int8 zero point)
    net("qdq_per_channel", [node("QuantizeLinear", ["x", "s", "z"], "q", axis=1),
                            node("DequantizeLinear", ["q", "s", "z"], axis=1)],
        {"x": f32(x)}, {"s": s, "z": np.zeros(3, np.int8)})
    net("qdq_per_tensor_zero_point", [node("QuantizeLinear", ["x", "s", "z"], "q"),
                                      node("DequantizeLinear", ["q", "s", "z"])],
        {"x": f32(x * 0.5)}, {"s": np.float32(0.25), "z": np.int8(3)}, asymmetric_quantization=True)
    net("qdq_per_channel_zero_point", [node("QuantizeLinear", ["x", "s", "z"], "q", axis=1),
                                       node("DequantizeLinear", ["q", "s", "z"], axis=1)],
        {"x": f32(x)}, {"s": s, "z": np.array([0, -3, 5], np.int8)}, asymmetric_quantization=True)
    net("dequantize_int8_input", [node("DequantizeLinear", ["x", "s"], axis=0)],
        {"x": typed(I8, ints(r, (3, 5), -128, 128, np.int8))}, {"s": np.array([0.5, 0.01, 0.2], np.float32)})
    # (a uint8 zero point crashes TensorRT-RTX 1.7's parser: uint8 constants are not permitted weights)


for _build in (_activations, _elementwise, _casts, _conv, _norms, _reductions, _shapes, _resize, _quant):
    _build()

# Settings that no network from TensorRT's ONNX parser can contain, and why (the gate skips them).
_UINT8 = ("TensorRT's ONNX parser refuses uint8 intermediate tensors (legalUINT8: 'TensorRT does not support "
          "UINT8 types for intermediate tensors'), so no parsed network casts to uint8; the evaluator converts to "
          "uint8 exactly as to int8 (inspect._to_type), which cast_*_i8 validates")
UNREACHABLE: dict[tuple, str] = {("CAST", src, "UINT8"): _UINT8 for src in ("FLOAT", "HALF", "BF16")}


def find(name: str) -> OnnxNet:
    return next(n for n in NETS if n.name == name)

