"""PaddleOCR's text-direction classifier (MobileNetV3-small, scale 0.35), as shipped by RapidOCR.

Weights: ``rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx`` inside the
``rapidocr-onnxruntime==1.4.4`` wheel (an ONNX file exported from Paddle; its weights are Constant
nodes), bound unchanged by the names Paddle gave them (``conv5_depthwise_weights``,
``conv5_expand_bn_scale``, ``fc_0.w_0`` ...), which this file uses as parameter names.

Input: ``x`` (N, 3, 48, W) float32, a text line resized to height 48 and normalized as
``(pixel / 255 - 0.5) / 0.5`` (RapidOCR's TextClassifier). Output: ``prob`` (N, 2), the softmax
over {0 degrees, 180 degrees}.

    netdsl check examples/zoo/ppocr_cls.py --backends reference,openvino,onnx,tensorrt --dim N=2
"""
from __future__ import annotations

from typing import Optional

import netdsl as nd

try:
    from .fetch import package_file
except ImportError:  # run as a file
    from fetch import package_file  # type: ignore[no-redef]

PACKAGE = "rapidocr-onnxruntime==1.4.4"
MEMBER = "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"
EPS = 9.999999747378752e-06      # Paddle's batch-norm epsilon, as stored in the file
HS_ALPHA = 0.20000000298023224   # Paddle's hardsigmoid slope (float32 0.2); offset 0.5

# block: (in, expanded, out, kernel, stride (h, w), activation, squeeze-excite)
BLOCKS = {2: (8, 8, 8, 3, (2, 1), "relu", True), 3: (8, 24, 8, 3, (2, 1), "relu", False),
          4: (8, 32, 8, 3, (1, 1), "relu", False), 5: (8, 32, 16, 5, (2, 1), "hswish", True),
          6: (16, 88, 16, 5, (1, 1), "hswish", True), 7: (16, 88, 16, 5, (1, 1), "hswish", True),
          8: (16, 40, 16, 5, (1, 1), "hswish", True), 9: (16, 48, 16, 5, (1, 1), "hswish", True),
          10: (16, 104, 32, 5, (2, 1), "hswish", True), 11: (32, 200, 32, 5, (1, 1), "hswish", True),
          12: (32, 200, 32, 5, (1, 1), "hswish", True)}


def conv_bn(net: nd.Network, x: nd.Tensor, name: str, cin: int, cout: int, k: int = 1, stride=1, groups: int = 1,
            act: Optional[str] = None) -> nd.Tensor:
    """Paddle's ConvBNLayer: ``{name}_weights`` (no bias) + batch norm ``{name}_bn_{scale,offset,mean,variance}``."""
    w = net.parameter(f"{name}_weights", (cout, cin // groups, k, k))
    y = nd.conv2d(x, w, stride=stride, padding=k // 2, groups=groups, name=name)
    scale, offset, mean, var = (net.parameter(f"{name}_bn_{p}", (cout,)) for p in ("scale", "offset", "mean", "variance"))
    y = nd.batch_norm(y, mean, var, scale, offset, eps=EPS, name=f"{name}_bn")
    return {"relu": nd.relu, "hswish": nd.hard_swish, None: lambda t: t}[act](y)


def squeeze_excite(net: nd.Network, x: nd.Tensor, name: str, c: int) -> nd.Tensor:
    s = nd.global_avg_pool(x)
    for i, (ci, co) in enumerate(((c, c // 4), (c // 4, c)), 1):
        s = nd.conv2d(s, net.parameter(f"{name}_se_{i}_weights", (co, ci, 1, 1)),
                      net.parameter(f"{name}_se_{i}_offset", (co,)), name=f"{name}_se_{i}")
        s = nd.relu(s) if i == 1 else nd.hard_sigmoid(s, alpha=HS_ALPHA, beta=0.5)
    return x * s


def classifier(net: nd.Network, x: nd.Tensor) -> nd.Tensor:
    x = conv_bn(net, x, "conv1", 3, 8, 3, stride=2, act="hswish")
    for i, (cin, mid, cout, k, stride, act, se) in BLOCKS.items():
        y = conv_bn(net, x, f"conv{i}_expand", cin, mid, act=act)
        y = conv_bn(net, y, f"conv{i}_depthwise", mid, mid, k, stride, groups=mid, act=act)
        if se:
            y = squeeze_excite(net, y, f"conv{i}", mid)
        y = conv_bn(net, y, f"conv{i}_linear", mid, cout)
        x = x + y if cin == cout and stride == (1, 1) else y
    x = conv_bn(net, x, "conv_last", 32, 200, act="hswish")
    x = nd.flatten(nd.global_avg_pool(nd.max_pool2d(x, 2, 2)), 1)                   # (N, 200)
    logits = nd.matmul(x, net.parameter("fc_0.w_0", (200, 2))) + net.parameter("fc_0.b_0", (2,))
    return nd.softmax(logits, axis=1)


def network(weights: Optional[str] = None, width: int | str = 192) -> nd.Network:
    """(N, 3, 48, width) -> prob (N, 2); RapidOCR feeds width 192."""
    net = nd.Network("ppocr_cls")
    net.output(classifier(net, net.input("x", ("N", 3, 48, width))), "prob")
    net.load_weights(weights or package_file(PACKAGE, MEMBER))
    return net
