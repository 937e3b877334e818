import numpy as np
import pytest

import netdsl as nd
from netdsl.errors import GraphError, WeightError


def small_net(name="g"):
    net = nd.Network(name)
    x = net.input("x", ("N", 4))
    w = net.parameter("fc.weight", (3, 4))
    y = nd.relu(nd.linear(x, w, name="fc"))
    net.output(y, "y")
    return net


def test_validate_and_toposort():
    net = small_net()
    net.graph.validate()
    assert [n.name for n in net.graph.toposort()] == [n.name for n in net.graph.nodes]


def test_validate_sees_a_changed_output_shape():
    # Value.spec is made once per (dtype, shape): replacing either must show in the next validation
    net = small_net()
    net.graph.validate()
    fc = net.graph.node("fc")
    fc.outputs[0].shape = (fc.outputs[0].shape[0], 5)
    with pytest.raises(GraphError, match="stored output types"):
        net.graph.validate()
    fc.outputs[0].shape = (fc.outputs[0].shape[0], 3)
    fc.outputs[0].dtype = nd.DType.float16
    with pytest.raises(GraphError, match="stored output types"):
        net.graph.validate()


def test_structure_hash_is_stable_and_sensitive():
    a, b = small_net(), small_net()
    assert a.graph.structure_hash() == b.graph.structure_hash()
    c = nd.Network("g")
    x = c.input("x", ("N", 4))
    c.output(nd.sigmoid(nd.linear(x, c.parameter("fc.weight", (3, 4)), name="fc")), "y")
    assert c.graph.structure_hash() != a.graph.structure_hash()


def test_weights_hash_changes_with_data():
    a, b = small_net(), small_net()
    a.init_random(1)
    b.init_random(2)
    assert a.graph.weights_hash() != b.graph.weights_hash()
    assert a.graph.content_hash() != b.graph.content_hash()


def test_unbound_parameter_error_names_it():
    net = small_net()
    with pytest.raises(WeightError, match="fc.weight"):
        nd.compile(net)(x=np.ones((1, 4), np.float32))


def test_mis_shaped_source_is_caught():
    net = small_net()
    p = net.graph.params["fc.weight"]
    p.source = lambda: np.zeros((4, 3), np.float32)
    p.origin = "test.npz:fc.weight"
    with pytest.raises(WeightError, match="test.npz:fc.weight"):
        p.value()


def test_printing_is_readable():
    s = str(small_net())
    assert "linear(%x, %fc.weight" in s and "return %y" in s


def test_duplicate_names_rejected():
    net = small_net()
    net.graph.nodes[-1].outputs[0].name = "x"
    with pytest.raises(GraphError, match="used twice"):
        net.graph.validate()


def test_no_outputs_rejected():
    net = nd.Network("empty")
    net.input("x", (1,))
    with pytest.raises(GraphError, match="no outputs"):
        net.graph.validate()
