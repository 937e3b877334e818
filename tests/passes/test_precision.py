"""Which layers a reduced-precision build must keep in which type (explicit casts, scopes, patterns)."""
from __future__ import annotations

import pytest

import netdsl as nd
import netdsl.functional as F
from netdsl.dtypes import DType
from netdsl.errors import NetdslError
from netdsl.passes.precision import layer_precisions, with_layer_precision


def _net():
    net = nd.Network("p")
    x = net.input("x", ("N", 16))
    h = F.linear(x, net.parameter("w1", (16, 16)), None, name="fc1")
    y = F.layer_norm(F.cast(h, "float32", name="up"), (16,), net.parameter("g", (16,), init="ones"), None, name="ln")
    y = F.relu(F.cast(y, "float16", name="down"), name="r16")
    with net.precision("float32"):
        z = F.linear(F.cast(y, "float32", name="up2"), net.parameter("w2", (16, 16)), None, name="fc2")
    out = F.add(z, F.linear(x, net.parameter("w3", (16, 16)), None, name="fc3"), name="mix")
    net.output(F.relu(out, name="last"), "y")
    net.init_random(0)
    return net


def test_explicit_casts_pin_what_computes_only_from_them_until_a_mix():
    p = layer_precisions(_net().graph)
    assert p["up"] is DType.float32 and p["ln"] is DType.float32  # the layer norm after the cast
    assert "down" not in p and "r16" not in p                      # float16 by its own cast
    assert p["up2"] is DType.float32 and p["fc2"] is DType.float32
    assert "mix" not in p and "last" not in p and "fc1" not in p and "fc3" not in p  # mixed: network precision


def test_scopes_pin_their_layers_only():
    net = nd.Network("s")
    x = net.input("x", (2, 8))
    with net.precision("float32"):
        y = F.softmax(x * 2.0, -1, name="sm")
    net.output(F.relu(y, name="after"), "y")
    p = layer_precisions(net.graph)
    assert p["sm"] is DType.float32 and "after" not in p
    assert net.graph.precision["sm"] is DType.float32
    with pytest.raises(ValueError, match="float type"):
        with net.precision("int8"):
            pass


def test_patterns_add_layers_and_change_the_structure_hash():
    g = _net().graph
    g2 = with_layer_precision(g, {"fc*": "float32"})
    assert {"fc1", "fc2", "fc3"} <= set(g2.precision) and not g.precision.keys() - {"up2", "fc2"}
    assert g2.structure_hash() != g.structure_hash()  # engine caches see the difference
    with pytest.raises(NetdslError, match="matches no layer"):
        layer_precisions(g, {"nothing*": "float32"})
