"""Networks and checks shared by the serving tests."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import netdsl as nd
from netdsl.backends import reference

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")


def lenet(batch: object = "N") -> nd.Network:
    """examples/lenet.py with its bound checkpoint (batch symbolic by default)."""
    sys.path.insert(0, EXAMPLES)
    try:
        import lenet as mod
    finally:
        sys.path.pop(0)
    return mod.network(batch=batch)


def multi() -> nd.Network:
    """uint8 NHWC images with preprocessing and int32 ids of any length in; float32 (N, 4) and a per-item
    int32 scalar out: every dtype mapping, a non-batch symbol and a rank-1 output."""
    net = nd.Network("multi")
    img = net.input("image", ("N", 8, 8, 3), "uint8", layout="NHWC",
                    preprocess=nd.Preprocess(mean=(1.0, 2.0, 3.0), scale=(2.0, 4.0, 8.0)))
    ids = net.input("ids", ("N", "S"), "int32")
    table = net.constant(np.random.default_rng(3).standard_normal((10, 4)).astype(np.float32), name="table")
    net.output(nd.mean(nd.embedding(ids, table), dim=1), "pooled")
    net.output(nd.argmax(nd.flatten(img), dim=1), "best")
    return net


def multi_feeds(rng: np.random.Generator, n: int = 3, s: int = 5) -> dict:
    return {"image": rng.integers(0, 256, (n, 8, 8, 3)).astype(np.uint8),
            "ids": rng.integers(0, 10, (n, s)).astype(np.int32)}


def lenet_feeds(rng: np.random.Generator, n: int = 2) -> dict:
    return {"data": rng.standard_normal((n, 1, 28, 28)).astype(np.float32)}


def ref(net: nd.Network, feeds: dict) -> dict:
    return reference.run(net.graph, feeds, dtype="float64")


def model_config():
    """Triton's ModelConfig protobuf message class, as the tritonclient package ships it."""
    mc = pytest.importorskip("tritonclient.grpc.model_config_pb2",
                             reason="tritonclient[grpc] (Triton's model-config protobuf) is not installed")
    return mc


def parse_config(path: str):
    """``config.pbtxt`` parsed by protobuf's text format into Triton's ModelConfig (fails on any field or
    value the schema does not have)."""
    from google.protobuf import text_format
    mc = model_config()
    with open(path) as f:
        return text_format.Parse(f.read(), mc.ModelConfig())
