"""Detection post-processing as a network: per-class non-maximum suppression of (batch, boxes, 4)
corners and (batch, boxes, classes) scores into at most 50 detections per image plus their count.
Put it after a detector's ``yolo_decode`` (``examples/yolov3_tiny.py:detector``) or run it alone.

    netdsl summary plugins/nms/example.py
    netdsl check plugins/nms/example.py --backends reference,openvino,onnx,tensorrt
"""
from __future__ import annotations

from pathlib import Path

import netdsl as nd
from netdsl.plugins import load

nms = load(Path(__file__).parent)


def network(batch: int | str = "N", boxes: int | str = 500, classes: int = 4) -> nd.Network:
    net = nd.Network("postprocess")
    b = net.input("boxes", (batch, boxes, 4))
    s = net.input("scores", (batch, boxes, classes))
    detections, count = nms(b, s, iou_threshold=0.45, score_threshold=0.25, max_detections=50, name="nms")
    net.output(detections, "detections")
    net.output(count, "count")
    return net
