"""ONNX Runtime errors while running come back as netdsl errors naming the layer and the user's line."""
from __future__ import annotations

import numpy as np
import pytest

import netdsl as nd
from netdsl.backends.base import layer_context

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")


def test_out_of_range_index_computed_in_the_graph_names_the_layer():
    net = nd.Network("oob")
    ids = net.input("ids", ("N", 5), "int32")
    net.output(nd.embedding(ids + 100, net.parameter("emb.weight", (10, 4)), name="lookup"), "e")  # ids >= 100
    net.init_random(0)
    line = next(i for i, t in enumerate(open(__file__), 1) if 'name="lookup"' in t)
    with pytest.raises(nd.NetdslError) as e:
        nd.compile(net, "onnx")(ids=np.zeros((1, 5), np.int32))
    assert f"[layer 'lookup' (embedding) at " in str(e.value) and f"test_runtime_errors.py:{line}]" in str(e.value)


def test_layer_context_matches_whole_quoted_names_only():
    net = nd.Network("n")
    x = net.input("x", (1, 4))
    a = nd.relu(x, name="conv1")
    net.output(nd.relu(a, name="conv1_1"), "y")
    g = net.graph
    assert layer_context(g, "node Name:'conv1_1' failed").startswith(" [layer 'conv1_1' (relu)")
    assert layer_context(g, 'while running "conv1"').startswith(" [layer 'conv1' (relu)")
    assert layer_context(g, "conv1x failed") == "" and layer_context(g, "nothing") == ""
