"""YOLOv3-tiny, layer for layer as darknet's ``yolov3-tiny.cfg`` (13 convolutions, two YOLO heads).

Parameter names are those netdsl's darknet reader gives a ``.weights`` file read with its ``.cfg``:
``<i>.conv.weight``, ``<i>.bn.weight|bias|running_mean|running_var`` (``<i>.conv.bias`` for the two
linear head convolutions), ``<i>`` being darknet's layer index, so::

    netdsl run examples/yolov3_tiny.py --weights yolov3-tiny.weights      # cfg found beside it

Darknet-isms reproduced: batch norm dividing by ``sqrt(var) + 1e-6`` (``eps_mode="outside_sqrt"``);
leaky ReLU 0.1; the 6th max-pool is size 2 stride 1 padded on the bottom/right only (keeps 13x13);
nearest 2x up-sampling; route = channel concat.

Outputs (``output=``):

- ``"boxes"`` (default): ``boxes`` (batch, K, 4) in pixels (x1, y1, x2, y2) and ``scores`` (batch, K,
  classes) = objectness x class probability, K = 3 * ((size/32)^2 + (size/16)^2): both heads decoded
  by the ``yolo_decode`` plugin (plugins/yolo_decode) with the cfg's anchors and masks;
- ``"detections"``: those boxes through the ``nms`` plugin: ``detections`` (batch, 100, 6) rows
  [x1, y1, x2, y2, score, class] and ``count`` (batch,);
- ``"heads"``: the raw heads as darknet's [yolo] layers see them, ``yolo0`` (batch, 3, size/32,
  size/32, 5+classes) and ``yolo1`` (batch, 3, size/16, size/16, 5+classes): sigmoid(x, y), raw
  exp(w, h) factors, sigmoid(objectness, classes), per anchor.
"""
from __future__ import annotations

from pathlib import Path

import netdsl as nd
from netdsl import nn

ANCHORS = (10, 14, 23, 27, 37, 58, 81, 82, 135, 169, 344, 319)    # yolov3-tiny.cfg [yolo] anchors
MASKS = ((3, 4, 5), (0, 1, 2))                                    # head 0 (stride 32), head 1 (stride 16)
PLUGINS = Path(__file__).resolve().parent.parent / "plugins"


class ConvBN(nn.Module):
    """darknet [convolutional] batch_normalize=1 activation=leaky (pad = size // 2)."""

    def __init__(self, cin: int, cout: int, k: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-6, eps_mode="outside_sqrt")  # darknet: / (sqrt(var) + 1e-6)

    def forward(self, x: nd.Tensor) -> nd.Tensor:
        return nd.leaky_relu(self.bn(self.conv(x)), 0.1)


class Head(nn.Module):
    """darknet [convolutional] size=1 activation=linear (with bias, no batch norm)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)

    def forward(self, x: nd.Tensor) -> nd.Tensor:
        return self.conv(x)


def activate(p: nd.Tensor, classes: int) -> nd.Tensor:
    """(N, 3*(5+C), H, W) -> (N, 3, H, W, 5+C) with darknet's [yolo] activations (no anchors/grid)."""
    h, w = p.shape[2], p.shape[3]
    p = p.reshape(0, 3, 5 + classes, h, w).transpose(0, 1, 3, 4, 2)
    xy = nd.sigmoid(p[..., 0:2])
    wh = nd.exp(p[..., 2:4])
    rest = nd.sigmoid(p[..., 4:])
    return nd.concat([xy, wh, rest], axis=-1)


class YoloV3Tiny(nn.Module):
    def __init__(self, classes: int = 80) -> None:
        super().__init__()
        self.classes = classes
        out = 3 * (5 + classes)
        chans = [(3, 16), (16, 32), (32, 64), (64, 128), (128, 256), (256, 512)]   # layers 0,2,..,10
        for i, (cin, cout) in enumerate(chans):
            setattr(self, str(2 * i), ConvBN(cin, cout, 3))
        setattr(self, "12", ConvBN(512, 1024, 3))
        setattr(self, "13", ConvBN(1024, 256, 1))
        setattr(self, "14", ConvBN(256, 512, 3))
        setattr(self, "15", Head(512, out))
        setattr(self, "18", ConvBN(256, 128, 1))
        setattr(self, "21", ConvBN(128 + 256, 256, 3))
        setattr(self, "22", Head(256, out))

    def layer(self, i: int) -> nn.Module:
        return getattr(self, str(i))

    def forward(self, x: nd.Tensor) -> tuple:
        for i in range(0, 10, 2):
            x = self.layer(i)(x)
            if i == 8:
                route8 = x                                   # layer 8, routed into layer 20
            x = nd.max_pool2d(x, 2, 2, name=f"{i + 1}.maxpool")
        x = self.layer(10)(x)
        x = nd.max_pool2d(x, 2, 1, padding=(0, 0, 1, 1), name="11.maxpool")   # size=2 stride=1
        x13 = self.layer(13)(self.layer(12)(x))
        y0 = self.layer(15)(self.layer(14)(x13))
        u = nd.interpolate(self.layer(18)(x13), scale_factor=2, mode="nearest", name="19.upsample")
        r = nd.concat([u, route8], axis=1, name="20.route")
        y1 = self.layer(22)(self.layer(21)(r))
        return y0, y1                                       # raw head convolutions (strides 32, 16)


def decode_boxes(heads: tuple, size: int, classes: int) -> tuple:
    """Both heads through the yolo_decode plugin, concatenated: boxes (N, K, 4), scores (N, K, classes)."""
    from netdsl.plugins import load
    yolo_decode = load(PLUGINS / "yolo_decode")
    boxes, scores = [], []
    for i, (head, mask) in enumerate(zip(heads, MASKS)):
        anchors = [float(v) for m in mask for v in ANCHORS[2 * m:2 * m + 2]]
        b, s = yolo_decode(head, anchors=anchors, stride=float(size // head.shape[2]), num_classes=classes,
                           name=f"{16 + 7 * i}.yolo")                       # darknet layers 16 and 23
        boxes.append(b)
        scores.append(s)
    return nd.concat(boxes, axis=1, name="boxes"), nd.concat(scores, axis=1, name="scores")


def network(batch: int | str = "N", size: int = 416, classes: int = 80, weights: str | None = None,
            output: str = "boxes") -> nd.Network:
    """YOLOv3-tiny on (batch, 3, size, size) (size a multiple of 32); ``output``: boxes | detections | heads."""
    if size % 32:
        raise ValueError(f"yolov3_tiny: size {size} must be a multiple of 32")
    if output not in ("boxes", "detections", "heads"):
        raise ValueError(f"yolov3_tiny: output {output!r} must be boxes, detections or heads")
    net = nd.Network("yolov3_tiny")
    x = net.input("data", (batch, 3, size, size))
    heads = YoloV3Tiny(classes)(x)
    if output == "heads":
        net.output(activate(heads[0], classes), "yolo0")
        net.output(activate(heads[1], classes), "yolo1")
    else:
        boxes, scores = decode_boxes(heads, size, classes)
        if output == "boxes":
            net.output(boxes, "boxes")
            net.output(scores, "scores")
        else:
            from netdsl.plugins import load
            detections, count = load(PLUGINS / "nms")(boxes, scores, iou_threshold=0.45, score_threshold=0.25,
                                                       max_detections=100, name="nms")
            net.output(detections, "detections")
            net.output(count, "count")
    if weights:
        net.load_weights(weights)
    return net


def small() -> nd.Network:
    return network(size=64, classes=3)


def heads() -> nd.Network:
    """The raw heads (``output="heads"``), as darknet's [yolo] layers take them."""
    return network(output="heads")


def detector() -> nd.Network:
    """Boxes through per-class NMS: ``detections`` (N, 100, 6) and ``count`` (N,).

    NMS decisions are discontinuous: with random weights many scores round to 1.0 in float32, so a
    float32 engine and the float64 reference may keep different boxes; check ``network()`` instead."""
    return network(output="detections")
