"""functional: a function named like PyTorch's takes PyTorch's arguments and means what PyTorch's means.

Signatures are compared with torch's own (``inspect`` where torch exposes one, else the signature line
of its docstring, the overload with the most positional parameters); numbers with torch's results.
"""
from __future__ import annotations

import ast
import inspect
import math
import re
import warnings

import numpy as np
import pytest

import netdsl as nd
import netdsl.functional as F
from netdsl.backends import reference

torch = pytest.importorskip("torch", reason="torch not installed (PyTorch is the reference for these names)")
TF = torch.nn.functional

# the first arguments are tensors PyTorch and netdsl name differently; the meaning is the same
SAME = {"input": {"x", "a", "data", "ids", "q", "tensor"}, "other": {"b"}, "exponent": {"b"},
        "condition": {"cond"}, "tensor": {"x"}, "end": {"stop"}}
# differences kept on purpose: (function, argument) -> why
KNOWN = {
    ("flatten", "start_dim"): "keeps the batch axis by default, as nn.Flatten and Keras (torch.flatten: 0)",
    ("dropout", "training"): "inference only: dropout is the identity, training=True is refused",
    ("gather", "dim"): "ONNX Gather (numpy.take / torch.index_select), not torch.gather; see index_select",
    ("gather", "index"): "ONNX Gather (numpy.take / torch.index_select), not torch.gather; see index_select",
    **{(f"avg_pool{d}d", "count_include_pad"): "None: True (PyTorch's) with numeric padding, False with "
       "padding='same' (TensorFlow's SAME; PyTorch pools have no 'same')" for d in (1, 2, 3)},
}
# same signature, different result: documented in the function's docstring
SEMANTIC = {"max": "no indices", "min": "see :func:`max`", "equal": "Element-wise"}
IGNORED = {"_stacklevel", "out"}


def _torch_fn(name):
    return getattr(TF, name, None) or getattr(torch, name, None)


def _split_top(text: str) -> list:
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return out + ([cur.strip()] if cur.strip() else [])


def _doc_overloads(name: str, doc: str) -> list:
    """Every ``name(...)`` signature in a docstring: [[(param, default or EMPTY), ...], ...]."""
    out = []
    for m in re.finditer(rf"(?m)^\s*{name}\(", doc):
        depth, i = 1, m.end()
        while i < len(doc) and depth:
            depth += {"(": 1, ")": -1}.get(doc[i], 0)
            i += 1
        params = []
        for p in _split_top(doc[m.end():i - 1]):
            if p.startswith("*"):
                break
            p = p.replace(" = ", "=")
            pname, _, default = p.partition("=")
            pname = pname.split(":")[0].strip()
            if default:
                try:
                    d = ast.literal_eval(default.strip())
                except (ValueError, SyntaxError):
                    d = default.strip()
            else:
                d = inspect.Parameter.empty
            params.append((pname, d))
        out.append(params)
    return out


def torch_params(name: str) -> list:
    f = _torch_fn(name)
    try:
        sig = inspect.signature(f)
        if not any(p.kind == p.VAR_POSITIONAL for p in sig.parameters.values()):
            return [(p.name, p.default) for p in sig.parameters.values()
                    if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        pass
    overloads = _doc_overloads(name, f.__doc__ or "")
    assert overloads, f"no signature for torch's {name}"
    return max(overloads, key=len)


def _shared_names():
    return sorted(n for n in F.__all__ if _torch_fn(n) is not None and callable(_torch_fn(n)))


def test_the_audit_covers_the_pytorch_names():
    names = _shared_names()
    for n in ("softmax", "batch_norm", "layer_norm", "pad", "conv_transpose2d", "max_pool2d", "leaky_relu",
              "hardsigmoid", "scaled_dot_product_attention", "transpose", "argmax", "sum", "interpolate"):
        assert n in names
    assert "hard_sigmoid" not in names  # ONNX's variant has its own name


@pytest.mark.parametrize("name", _shared_names())
def test_signature_matches_pytorch(name):
    ours = [p for p in inspect.signature(getattr(F, name)).parameters.values() if p.name != "name"]
    positional = [p for p in ours if p.kind == p.POSITIONAL_OR_KEYWORD]
    keyword_only = {p.name for p in ours if p.kind == p.KEYWORD_ONLY}
    for i, (tname, tdefault) in enumerate(torch_params(name)):
        if tname in IGNORED or (name, tname) in KNOWN:
            continue
        assert i < len(positional), f"{name}: PyTorch's argument {i} '{tname}' is missing"
        p = positional[i]
        if tdefault is inspect.Parameter.empty:  # a required argument: same place, same meaning
            assert p.name == tname or p.name in SAME.get(tname, ()), f"{name}: argument {i} is '{p.name}', PyTorch's '{tname}'"
            continue
        if p.name != tname:
            assert tname in keyword_only, f"{name}: argument {i} is '{p.name}', PyTorch's '{tname}={tdefault!r}'"
            continue
        assert p.default == tdefault or (p.default is None and tdefault == ()), \
            f"{name}: {tname} defaults to {p.default!r}, PyTorch's to {tdefault!r}"


def test_known_and_semantic_differences_are_documented():
    for (fn, _arg), _why in KNOWN.items():
        assert "PyTorch" in (getattr(F, fn).__doc__ or "") or "torch" in (getattr(F, fn).__doc__ or ""), fn
    for fn, phrase in SEMANTIC.items():
        assert phrase in (getattr(F, fn).__doc__ or ""), fn


# ---- numbers: the same call gives PyTorch's result ------------------------------------------------------
def _run(build, *arrays):
    net = nd.Network("t")
    ins = [net.input(f"x{i}", a.shape, str(a.dtype)) for i, a in enumerate(arrays)]
    outs = build(net, *ins)
    for i, o in enumerate(outs if isinstance(outs, (tuple, list)) else [outs]):
        net.output(o, f"y{i}")
    res = reference.run(net.graph, {f"x{i}": a for i, a in enumerate(arrays)}, dtype="float64")
    return [res[f"y{i}"] for i in range(len(res))]


def _t(a):
    return torch.from_numpy(np.asarray(a, np.float64))


RNG = np.random.default_rng(11)
X4 = RNG.standard_normal((2, 3, 7, 6)).astype(np.float32)
C = [RNG.standard_normal(3).astype(np.float32) for _ in range(4)]
VAR = np.abs(C[3]) + 0.5


def _params(net, *arrs):
    return [net.constant(a) for a in arrs]


CASES = {
    "batch_norm positional (x, mean, var, weight, bias)": (
        lambda n, x: F.batch_norm(x, *_params(n, C[0], VAR, C[1], C[2]), False, 0.1, 1e-3),
        lambda x: TF.batch_norm(x, _t(C[0]), _t(VAR), _t(C[1]), _t(C[2]), False, 0.1, 1e-3), [X4]),
    "batch_norm without affine": (lambda n, x: F.batch_norm(x, *_params(n, C[0], VAR)),
                                  lambda x: TF.batch_norm(x, _t(C[0]), _t(VAR)), [X4]),
    "layer_norm (x, normalized_shape, weight, bias)": (
        lambda n, x: F.layer_norm(x, (7, 6), *_params(n, X4[0, 0], X4[1, 1])),
        lambda x: TF.layer_norm(x, (7, 6), _t(X4[0, 0]), _t(X4[1, 1])), [X4]),
    "group_norm no affine": (lambda n, x: F.group_norm(x, 3), lambda x: TF.group_norm(x, 3), [X4]),
    "instance_norm defaults": (lambda n, x: F.instance_norm(x), lambda x: TF.instance_norm(x), [X4]),
    "instance_norm running stats": (
        lambda n, x: F.instance_norm(x, *_params(n, C[0], VAR), use_input_stats=False),
        lambda x: TF.instance_norm(x, _t(C[0]), _t(VAR), use_input_stats=False), [X4]),
    "pad in PyTorch order": (lambda n, x: F.pad(x, (1, 2, 0, 3), "reflect"),
                             lambda x: TF.pad(x, (1, 2, 0, 3), "reflect"), [X4]),
    "pad replicate and value": (lambda n, x: [F.pad(x, (2, 1, 1, 0), "replicate"), F.pad(x, (1, 1, 2, 2, 1, 0), value=0.5)],
                                lambda x: [TF.pad(x, (2, 1, 1, 0), "replicate"), TF.pad(x, (1, 1, 2, 2, 1, 0), value=0.5)],
                                [X4]),
    "conv_transpose2d positional groups then dilation": (
        lambda n, x: F.conv_transpose2d(x, n.constant(RNG.standard_normal((3, 2, 3, 3))), None, 2, 1, 1, 3, 2),
        None, [X4]),
    "max_pool2d positional dilation, ceil_mode": (lambda n, x: F.max_pool2d(x, 3, 2, 1, 1, True),
                                                  lambda x: TF.max_pool2d(x, 3, 2, 1, 1, True), [X4]),
    "avg_pool2d": (lambda n, x: F.avg_pool2d(x, 2, 1, 1, False, False),
                   lambda x: TF.avg_pool2d(x, 2, 1, 1, False, False), [X4]),
    "softmax/log_softmax dim": (lambda n, x: [F.softmax(x, 1), F.log_softmax(x, dim=2)],
                                lambda x: [TF.softmax(x, 1), TF.log_softmax(x, dim=2)], [X4]),
    "hardsigmoid is PyTorch's": (lambda n, x: F.hardsigmoid(x * 4.0), lambda x: TF.hardsigmoid(x * 4), [X4]),
    "leaky_relu negative_slope": (lambda n, x: F.leaky_relu(x, negative_slope=0.2, inplace=True),
                                  lambda x: TF.leaky_relu(x, negative_slope=0.2), [X4]),
    "softplus beta": (lambda n, x: F.softplus(x, 2.0), lambda x: TF.softplus(x, 2.0), [X4]),
    "transpose swaps two dims": (lambda n, x: [F.transpose(x, 1, 3), x.transpose(0, 2)],
                                 lambda x: [torch.transpose(x, 1, 3), x.transpose(0, 2)], [X4]),
    "permute": (lambda n, x: F.permute(x, (3, 1, 0, 2)), lambda x: torch.permute(x, (3, 1, 0, 2)), [X4]),
    "argmax without dim is over the flattened tensor": (
        lambda n, x: [F.argmax(x), F.argmax(x, 1, True)],
        lambda x: [torch.argmax(x), torch.argmax(x, 1, True)], [X4]),
    "sum/mean dim keepdim": (lambda n, x: [F.sum(x, (1, 2), True), F.mean(x, dim=-1), x.sum(1)],
                             lambda x: [torch.sum(x, (1, 2), True), torch.mean(x, dim=-1), x.sum(1)], [X4]),
    "cat/stack/split dim": (lambda n, x: [F.cat([x, x], 2), F.stack([x, x], dim=1), F.split(x, [2, 5], 2)[1]],
                            lambda x: [torch.cat([x, x], 2), torch.stack([x, x], dim=1), torch.split(x, [2, 5], 2)[1]],
                            [X4]),
    "topk dim": (lambda n, x: F.topk(x, 2, 1)[0], lambda x: torch.topk(x, 2, 1)[0], [X4]),
    "index_select": (lambda n, x: F.index_select(x, 2, [4, 0]),
                     lambda x: torch.index_select(x, 2, torch.tensor([4, 0])), [X4]),
    "scaled_dot_product_attention positional (mask, dropout_p, is_causal)": (
        lambda n, q: F.scaled_dot_product_attention(q, q, q, None, 0.0, True),
        lambda q: TF.scaled_dot_product_attention(q, q, q, None, 0.0, True), [X4[:, :, :6, :]]),
    "interpolate bilinear default align_corners": (
        lambda n, x: F.interpolate(x, scale_factor=2, mode="bilinear"),
        lambda x: TF.interpolate(x, scale_factor=2, mode="bilinear"), [X4]),
    "interpolate bilinear to one row/column (torch samples the centre, not position 0)": (
        lambda n, x: [F.interpolate(x, size=(1, 4), mode="bilinear"), F.interpolate(x, size=(3, 1), mode="bilinear"),
                      F.interpolate(x[:, :, 0], size=1, mode="linear")],
        lambda x: [TF.interpolate(x, size=(1, 4), mode="bilinear"), TF.interpolate(x, size=(3, 1), mode="bilinear"),
                   TF.interpolate(x[:, :, 0], size=1, mode="linear")], [X4]),
}


@pytest.mark.parametrize("what", list(CASES))
def test_same_call_same_result_as_pytorch(what):
    ours, theirs, arrays = CASES[what]
    got = _run(ours, *arrays)
    if theirs is None:  # conv_transpose: torch's weight is built from the same generator state below
        return
    want = theirs(*[_t(a) for a in arrays])
    want = want if isinstance(want, (tuple, list)) else [want]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-5, atol=1e-6, err_msg=what)


def test_conv_transpose_positional_order():
    w = RNG.standard_normal((3, 2, 3, 3))
    got = _run(lambda n, x: F.conv_transpose2d(x, n.constant(w), None, 2, 1, 1, 3, 2), X4)[0]
    want = TF.conv_transpose2d(_t(X4), _t(w), None, 2, 1, 1, 3, 2).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_softmax_without_dim_warns_and_picks_pytorchs_axis():
    x = RNG.standard_normal((4, 5, 3)).astype(np.float32)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        got = _run(lambda n, t: F.softmax(t), x)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = TF.softmax(_t(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(_run(lambda n, t: F.softmax(t, axis=-1), x)[0], TF.softmax(_t(x), -1).numpy(),
                               rtol=1e-6)


def test_onnx_hard_sigmoid_needs_its_parameters():
    with pytest.raises(TypeError):
        _run(lambda n, x: F.hard_sigmoid(x), X4)  # no silent 0.2/0.5
    got = _run(lambda n, x: F.hard_sigmoid(x, 0.2, 0.5), X4)[0]
    np.testing.assert_allclose(got, np.clip(0.2 * X4.astype(np.float64) + 0.5, 0, 1), rtol=1e-6)


def test_old_argument_orders_are_refused_loudly():
    with pytest.raises(nd.ShapeError, match="normalized_shape"):
        _run(lambda n, x: F.layer_norm(x, n.constant(np.ones(6)), n.constant(np.zeros(6))), X4)
    with pytest.raises(nd.ShapeError, match="pad"):
        _run(lambda n, x: F.pad(x, (0, 0, 1, 1, 0, 0, 1, 1, 0)), X4)
    with pytest.raises(nd.ShapeError, match="two axes"):
        _run(lambda n, x: F.transpose(x, 1), X4)


# ---- TensorFlow-style 'same' max pooling on sizes known only at run time ---------------------------------
@pytest.mark.parametrize("backend", ["reference", "openvino", "onnx"])
def test_max_pool_same_with_symbolic_size_is_keras_same(backend):
    """MaxPooling2D(2, padding='same') of Keras on odd and even sizes, with H and W symbolic."""
    import os
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras", reason="keras not installed (its MaxPooling2D is the oracle)")
    pytest.importorskip({"reference": "numpy", "openvino": "openvino", "onnx": "onnxruntime"}[backend])
    net = nd.Network("pool")
    x = net.input("x", ("N", 3, "H", "W"))
    net.output(nd.max_pool2d(x, 2, 2, padding="same"), "y")
    model = nd.compile(net, backend, **({"dynamic": {"N": (1, 4), "H": (1, 16), "W": (1, 16)}}
                                        if backend == "openvino" else {}))
    pool = keras.layers.MaxPooling2D(2, padding="same")
    rng = np.random.default_rng(5)
    for h, w in ((7, 9), (8, 6), (5, 5)):
        v = rng.standard_normal((2, 3, h, w)).astype(np.float32)
        want = np.asarray(pool(v.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
        np.testing.assert_array_equal(model(x=v)["y"], want)


@pytest.mark.parametrize("kw, words", [
    (dict(size=(3, 3), mode="nearest", align_corners=True), "align_corners applies to the linear modes"),
    (dict(size=(3, 3), scale_factor=2), "size or scale_factor, not both"),
    (dict(), "size or scale_factor"),
])
def test_interpolate_refuses_what_torch_refuses(kw, words):
    """PyTorch raises for these; netdsl ignored align_corners with nearest and scale_factor beside size."""
    with pytest.raises(ValueError):
        TF.interpolate(torch.zeros(1, 1, 2, 2), **kw)
    net = nd.Network("i")
    with pytest.raises(nd.ShapeError, match=words):
        F.interpolate(net.input("x", (1, 1, 2, 2)), **kw)


# ---- nearest interpolate picks PyTorch's source pixels at any ratio --------------------------------------
def _nearest_pairs():
    """(in, out) sizes whose ratio is not an integer, where float index arithmetic disagrees somewhere."""
    return [(14, 4), (20, 12), (21, 3), (14, 18), (14, 36), (21, 27), (13, 5), (7, 10), (25, 39), (3, 2)]


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
def test_nearest_interpolate_matches_pytorch_on_a_size_sweep(mode):
    """Every (in, out) of 1..25 -> 1..39 by size, and scale factors, on the reference: PyTorch's pixels."""
    for i in range(1, 26):
        x = np.arange(2 * i, dtype=np.float32).reshape(1, 2, i)
        for o in range(1, 40):
            got = _run(lambda n, t: F.interpolate(t, size=o, mode=mode), x)[0]
            np.testing.assert_array_equal(got, TF.interpolate(torch.from_numpy(x), size=o, mode=mode).numpy(),
                                          err_msg=f"{mode} {i} -> {o}")
        for sf in (0.3, 0.55, 0.7, 1.3, 1.5, 2.5, 3.7):
            if math.floor(i * sf) < 1:
                continue
            got = _run(lambda n, t: F.interpolate(t, scale_factor=sf, mode=mode), x)[0]
            np.testing.assert_array_equal(got, TF.interpolate(torch.from_numpy(x), scale_factor=sf, mode=mode).numpy(),
                                          err_msg=f"{mode} {i} x {sf}")


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize("spatial", [(5,), (5, 7), (5, 7, 3)])
def test_nearest_interpolate_matches_pytorch_by_scale_factor_in_every_rank(mode, spatial):
    """Scale factors whose output size is the input's or twice it (PyTorch's 2-d 'nearest' then copies or
    halves the index, its 1-d and 3-d kernels do not) and others, on 1-, 2- and 3-d inputs."""
    x = np.random.default_rng(5).standard_normal((1, 2) + spatial).astype(np.float32)
    for sf in (1.1, 2.1, 1.3, 2.0, 0.5, 1 / 3, 0.7, 2.5):
        sfs = tuple(sf * (1 + 0.05 * k) for k in range(len(spatial)))
        if any(math.floor(i * s) < 1 for i, s in zip(spatial, sfs)):
            continue
        want = TF.interpolate(torch.from_numpy(x), scale_factor=sfs, mode=mode).numpy()
        got = _run(lambda n, t: F.interpolate(t, scale_factor=sfs, mode=mode), x)[0]
        np.testing.assert_array_equal(got, want, err_msg=f"{mode} {spatial} x {sfs}")


@pytest.mark.parametrize("backend", ["openvino", "onnx", "tensorrt"])
def test_nearest_interpolate_matches_pytorch_on_engines(backend):
    """The pairs where ONNX's float32 Resize picks a neighbouring pixel: every engine gives PyTorch's."""
    pytest.importorskip({"openvino": "openvino", "onnx": "onnxruntime", "tensorrt": "tensorrt_rtx"}[backend],
                        reason=f"{backend} engine not installed")
    rng = np.random.default_rng(3)
    for (i, o), mode in zip(_nearest_pairs(), ["nearest", "nearest-exact"] * 5):
        net = nd.Network("up")
        x = net.input("x", ("N", 3, i, i + 1))
        net.output(F.interpolate(x, size=(o, o + 2), mode=mode), "y")
        v = rng.standard_normal((2, 3, i, i + 1)).astype(np.float32)
        want = TF.interpolate(torch.from_numpy(v), size=(o, o + 2), mode=mode).numpy()
        if backend == "tensorrt":  # the network TensorRT's builder accepted, read back and evaluated
            from netdsl.backends.tensorrt import cpu_proof
            rep = cpu_proof.check(net.graph, {"x": v})  # a wrong pixel is an error of order 1: far outside
            assert rep.ok, str(rep)
            got = reference.run(net.graph, {"x": v})["y"]
        else:
            got = nd.compile(net, backend)(x=v)["y"]
        np.testing.assert_array_equal(got, want, err_msg=f"{backend} {mode} {i} -> {o}")


@pytest.mark.parametrize("backend", ["openvino", "onnx", "tensorrt"])
def test_nearest_interpolate_downscales_by_an_odd_integer_on_engines(backend):
    """A downscale by 3 or 5 (scale_factor 1/3, or a size with a symbolic batch, which becomes a scale): a
    Resize by the float32 scale picks the pixel before every third on TensorRT; every engine gives PyTorch's."""
    pytest.importorskip({"openvino": "openvino", "onnx": "onnxruntime", "tensorrt": "tensorrt_rtx"}[backend],
                        reason=f"{backend} engine not installed")
    rng = np.random.default_rng(4)
    for i, kw in [(12, dict(scale_factor=1 / 3)), (10, dict(scale_factor=0.2)), (9, dict(size=3)),
                  (10, dict(scale_factor=0.1))]:
        for mode in ("nearest", "nearest-exact"):
            net = nd.Network("down")
            net.output(F.interpolate(net.input("x", ("N", 2, i)), mode=mode, **kw), "y")
            v = rng.standard_normal((2, 2, i)).astype(np.float32)
            want = TF.interpolate(torch.from_numpy(v), mode=mode, **kw).numpy()
            if backend == "tensorrt":
                from netdsl.backends.tensorrt import cpu_proof
                rep = cpu_proof.check(net.graph, {"x": v})
                assert rep.ok, str(rep)
                got = reference.run(net.graph, {"x": v})["y"]
            else:
                got = nd.compile(net, backend)(x=v)["y"]
            np.testing.assert_array_equal(got, want, err_msg=f"{backend} {mode} {i} {kw}")
