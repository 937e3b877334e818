"""4d: the NumPy evaluator of TensorRT networks (netdsl.backends.tensorrt.inspect) is checked against
NVIDIA's own ONNX parser: small torch models are exported to ONNX, parsed by TensorRT-RTX's
``OnnxParser`` into an INetworkDefinition, evaluated by ``inspect``, and compared with ONNX Runtime.
So the evaluator's reading of TensorRT layer semantics is tested independently of netdsl's lowering.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed (pip install tensorrt-rtx)")
torch = pytest.importorskip("torch", reason="torch is not installed (pip install torch)")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")

from netdsl.backends.tensorrt import _trt, inspect  # noqa: E402

nn, F = torch.nn, torch.nn.functional


class CNN(nn.Module):
    """conv + BN (folded by export) + relu, pools (ceil mode, padding), grouped conv, silu, gemm, softmax."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, stride=2, groups=2, dilation=1)
        self.c3 = nn.Conv2d(8, 6, 2, dilation=2, padding=(1, 0))
        self.fc = nn.Linear(6 * 3 * 4, 10)

    def forward(self, x):
        x = F.relu(self.bn(self.c1(x)))
        x = F.max_pool2d(x, 3, 2, padding=1, ceil_mode=True)
        x = F.silu(self.c2(x))
        x = F.avg_pool2d(x, 2, 1, padding=1, ceil_mode=True, count_include_pad=False)
        x = F.leaky_relu(self.c3(x), 0.1)
        return torch.softmax(self.fc(torch.flatten(x, 1)), -1)


class Decoder(nn.Module):
    """transposed convs, upsampling (nearest, bilinear), padding modes, norms, misc activations."""

    def __init__(self):
        super().__init__()
        self.d1 = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1)
        self.d2 = nn.ConvTranspose2d(6, 4, 2, stride=2, groups=2)
        self.inorm = nn.InstanceNorm2d(6, affine=True)
        self.gn = nn.GroupNorm(2, 4)
        self.prelu = nn.PReLU(4)
        self.lrn = nn.LocalResponseNorm(3)

    def forward(self, x):
        y = F.elu(self.inorm(self.d1(x)))
        y = F.interpolate(y, scale_factor=2, mode="nearest")
        y = F.interpolate(y, size=(13, 11), mode="bilinear", align_corners=False)
        y = self.prelu(self.gn(self.d2(y)))
        y = F.pad(y, (1, 2, 0, 1), mode="reflect")
        y = F.pad(y, (1, 1, 1, 1), mode="replicate")
        y = self.lrn(F.hardswish(y))
        z = F.interpolate(y, size=(7, 9), mode="bilinear", align_corners=True)
        return F.mish(z), torch.clamp(F.hardsigmoid(z) * 3 - 1, -0.5, 0.5)


class Block(nn.Module):
    """a pre-norm transformer block: layer norm, multi-head attention with a mask, gelu MLP."""

    def __init__(self, d=32, h=4):
        super().__init__()
        self.h = h
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x, mask):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (z.reshape(b, t, self.h, d // self.h).transpose(1, 2) for z in (q, k, v))
        s = q @ k.transpose(-1, -2) / (d // self.h) ** 0.5
        s = s.masked_fill(mask[:, None, None, :] == 0, float("-inf"))
        a = torch.softmax(s, -1) @ v
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class Encoder(nn.Module):
    """torch's own TransformerEncoderLayer plus embedding, topk, argmax, reductions, gather, where."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True, activation="gelu")

    def forward(self, ids):
        h = self.layer(self.emb(ids))
        vals, idx = torch.topk(h.mean(-1), 3, dim=-1)
        best = torch.argmax(h, dim=-1)
        picked = torch.where(h > 0, h, h.pow(2) * -0.5).sum(1)
        return vals, idx, best, picked, torch.exp(-h.abs()).amax(-1), torch.sqrt(h * h + 1).prod(-1)


def _onnx_bytes(model, args, names, dynamic=None):
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), args, f, opset_version=17, input_names=names, dynamo=False,
                          dynamic_axes=dynamic)
    return f.getvalue()


def _parse(data):
    lg = _trt.logger(trt)
    builder = trt.Builder(lg)
    net = builder.create_network(0)
    parser = trt.OnnxParser(net, lg)
    ok = parser.parse(data)
    assert ok, [str(parser.get_error(i)) for i in range(parser.num_errors)]
    return builder, net, parser


def _compare(data, feeds, rtol=1e-5, atol=1e-5):
    """inspect's evaluation of TensorRT's parse vs ONNX Runtime (no graph optimizations), element-wise."""
    builder, net, parser = _parse(data)
    got = inspect.evaluate(net, feeds, trt)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    ref = sess.run(None, feeds)
    names = [o.name for o in sess.get_outputs()]
    for name, r in zip(names, ref):
        g = got[name]
        assert g.shape == r.shape, (name, g.shape, r.shape)
        if r.dtype.kind in "iub":
            np.testing.assert_array_equal(g.astype(r.dtype), r, err_msg=name)
        else:
            d = np.abs(g.astype(np.float64) - r)
            assert (d <= atol + rtol * np.abs(r)).all(), (name, float(d.max()))
    return net


def _seeded(model):
    torch.manual_seed(0)
    m = model()
    for p in m.parameters():  # non-trivial norm affine params and BN statistics
        with torch.no_grad():
            p.add_(torch.randn_like(p) * 0.1)
    for b in m.buffers():
        if b.dtype.is_floating_point:
            with torch.no_grad():
                b.copy_(torch.rand_like(b) + 0.5)
    return m


def test_cnn():
    x = np.random.default_rng(0).standard_normal((2, 3, 15, 17)).astype(np.float32)
    net = _compare(_onnx_bytes(_seeded(CNN), (torch.from_numpy(x),), ["x"]), {"x": x})
    types = inspect.layer_counts(net, trt)
    assert types.get("CONVOLUTION") == 3 and types.get("POOLING") == 2


def test_cnn_dynamic_batch():
    x = np.random.default_rng(1).standard_normal((3, 3, 15, 17)).astype(np.float32)
    data = _onnx_bytes(_seeded(CNN), (torch.from_numpy(x),), ["x"], {"x": {0: "N"}})
    _compare(data, {"x": x})


def test_decoder():
    x = np.random.default_rng(2).standard_normal((2, 4, 3, 3)).astype(np.float32)
    net = _compare(_onnx_bytes(_seeded(Decoder), (torch.from_numpy(x),), ["x"]), {"x": x})
    types = inspect.layer_counts(net, trt)
    assert types.get("DECONVOLUTION") == 2 and types.get("RESIZE", 0) >= 3


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_transformer_block(dynamic):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 6, 32)).astype(np.float32)
    mask = np.ones((2, 6), np.int64)
    mask[1, 4:] = 0
    dyn = {"x": {0: "B", 1: "T"}, "mask": {0: "B", 1: "T"}} if dynamic else None
    data = _onnx_bytes(_seeded(Block), (torch.from_numpy(x), torch.from_numpy(mask)), ["x", "mask"], dyn)
    net = _compare(data, {"x": x, "mask": mask})
    types = inspect.layer_counts(net, trt)
    assert types.get("MATRIX_MULTIPLY", 0) >= 6 and types.get("SOFTMAX") == 1


def test_torch_encoder_layer():
    ids = np.random.default_rng(4).integers(0, 50, (2, 7)).astype(np.int64)
    _compare(_onnx_bytes(_seeded(Encoder), (torch.from_numpy(ids),), ["ids"]), {"ids": ids})


def test_qdq_conv_int8():
    """Q/DQ (per-tensor activation, per-channel int8 weights) in front of a convolution, as ONNX
    Runtime's quantizer writes it; TensorRT's parser makes IQuantizeLayer/IDequantizeLayer of it."""
    onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
    h, T = onnx.helper, onnx.TensorProto
    rng = np.random.default_rng(5)
    wq = rng.integers(-127, 128, (6, 3, 3, 3)).astype(np.int8)
    ws = rng.uniform(0.01, 0.03, 6).astype(np.float32)
    inits = [h.make_tensor("s", T.FLOAT, [], [0.0625]), h.make_tensor("z", T.INT8, [], [0]),
             h.make_tensor("wq", T.INT8, wq.shape, wq.reshape(-1).tolist()),
             h.make_tensor("ws", T.FLOAT, [6], ws.tolist()), h.make_tensor("wz", T.INT8, [6], [0] * 6)]
    nodes = [h.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             h.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             h.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0),
             h.make_node("Conv", ["xd", "w"], ["y"], pads=[1, 1, 1, 1])]
    g = h.make_graph(nodes, "qdq", [h.make_tensor_value_info("x", T.FLOAT, [2, 3, 7, 7])],
                     [h.make_tensor_value_info("y", T.FLOAT, [2, 6, 7, 7])], inits)
    data = h.make_model(g, opset_imports=[h.make_opsetid("", 17)], ir_version=8).SerializeToString()
    k = rng.integers(-140, 140, (2, 3, 7, 7))  # whole steps, exact ties (x.5) and saturation
    u = np.where(rng.random(k.shape) < 0.2, 0.5, rng.uniform(-0.4, 0.4, k.shape))
    x = ((k + u) * 0.0625).astype(np.float32)
    net = _compare(data, {"x": x})
    types = inspect.layer_counts(net, trt)
    assert types.get("QUANTIZE") == 1 and types.get("DEQUANTIZE") == 2, types
