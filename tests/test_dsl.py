import threading

import numpy as np
import pytest

import netdsl as nd
from netdsl.backends import reference
from netdsl.errors import AttrError, ShapeError


def run(net, **feeds):
    return reference.compile(net.graph, dtype="float64")(feeds)


def test_operators_and_scalars():
    net = nd.Network("ops")
    a = net.input("a", ("N", 3))
    b = net.input("b", (3,))
    y = (a + b) * 2 - 1 / (abs(a) + 1) + (-b) ** 2
    net.output(y, "y")
    av = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    bv = np.random.default_rng(1).standard_normal(3).astype(np.float32)
    got = run(net, a=av, b=bv)["y"]
    ref = (av + bv) * 2 - 1 / (np.abs(av) + 1) + (-bv) ** 2
    np.testing.assert_allclose(got, ref, rtol=1e-6)


def test_indexing_matches_numpy():
    net = nd.Network("idx")
    x = net.input("x", ("N", 4, 5, 6))
    outs = {"a": x[:, 1], "b": x[..., ::2], "c": x[:, 1:3, -2:, None], "d": x[:, :, 4:0:-2, -1],
            "e": x[0]}
    for k, v in outs.items():
        net.output(v, k)
    xv = np.random.default_rng(0).standard_normal((3, 4, 5, 6))
    got = run(net, x=xv)
    ref = {"a": xv[:, 1], "b": xv[..., ::2], "c": xv[:, 1:3, -2:, None], "d": xv[:, :, 4:0:-2, -1], "e": xv[0]}
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k])
        assert net.graph.value(k).rank == ref[k].ndim


def test_symbolic_shape_arithmetic_through_reshape_and_flatten():
    net = nd.Network("sym")
    x = net.input("x", ("N", "T", 8))
    y = x.reshape(-1, 8)
    z = nd.flatten(x, 1)
    w = z.reshape(0, 4, -1)
    assert str(y.shape[0]) == "N*T"
    assert str(z.shape[1]) == "8*T"
    assert str(w.shape[2]) == "2*T"
    net.output(w, "w")
    xv = np.random.default_rng(0).standard_normal((2, 3, 8))
    assert run(net, x=xv)["w"].shape == (2, 4, 6)


def test_shape_error_names_op_shapes_and_user_line():
    net = nd.Network("bad")
    x = net.input("x", (1, 3, 8, 8))
    w = net.parameter("w", (4, 2, 3, 3))
    with pytest.raises(ShapeError) as ei:
        nd.conv2d(x, w, name="conv_bad")  # the line reported
    msg = str(ei.value)
    assert "conv" in msg and "conv_bad" in msg and "(1, 3, 8, 8)" in msg and "(4, 2, 3, 3)" in msg
    assert "test_dsl.py:" in msg


def test_binary_broadcast_error():
    net = nd.Network("bad")
    a, b = net.input("a", (2, 3)), net.input("b", (4, 3))
    with pytest.raises(ShapeError, match=r"add 'add' at .*test_dsl.py:\d+.*\(2, 3\).*\(4, 3\)"):
        a + b


def test_scopes_restore_after_exception_and_are_per_thread():
    net = nd.Network("s")
    x = net.input("x", (1, 4))
    with pytest.raises(RuntimeError):
        with net.scope("block"):
            raise RuntimeError("boom")
    assert nd.relu(x).name == "relu"  # no leaked scope
    with net.scope("a"):
        with net.scope("b"):
            assert nd.relu(x).name == "a/b/relu"
    seen = []

    def worker():
        with net.scope("t"):
            seen.append(nd.sigmoid(x).name)
    with net.scope("main"):
        th = threading.Thread(target=worker)
        th.start()
        th.join()
    assert seen == ["t/sigmoid"]


def test_names_unique_and_outputs_renamed():
    net = nd.Network("n")
    x = net.input("x", (2,))
    a, b = nd.relu(x), nd.relu(x)
    assert a.name != b.name
    net.output(a, "out")
    assert net.graph.outputs[0].name == "out"
    with pytest.raises(ShapeError, match="already used"):
        net.input("out", (1,))


def test_tensor_from_other_network_rejected():
    n1, n2 = nd.Network("a"), nd.Network("b")
    x1, x2 = n1.input("x", (2,)), n2.input("x", (2,))
    with pytest.raises(ShapeError, match="another network"):
        nd.add(x1, x2)


def test_parameter_reuse_and_conflict():
    net = nd.Network("p")
    w1 = net.parameter("w", (2, 2))
    assert net.parameter("w", (2, 2)) is w1
    with pytest.raises(ShapeError, match="declared as"):
        net.parameter("w", (3, 2))


def test_unknown_op_suggests():
    net = nd.Network("u")
    x = net.input("x", (2,))
    with pytest.raises(nd.UnknownOpError, match="did you mean relu"):
        net.apply("rellu", [x])


def test_bad_attribute_is_reported():
    net = nd.Network("u")
    x = net.input("x", (2, 3))
    with pytest.raises(nd.NetdslError, match="no attribute"):
        net.apply("softmax", [x], dim=1)
    with pytest.raises(nd.NetdslError, match="must be one of"):
        nd.gelu(x, approximate="fast")


def test_same_padding_and_module_names():
    net = nd.Network("m")
    x = net.input("x", ("N", 3, 17, 17))
    conv = nd.nn.Conv2d(3, 8, 3, stride=2, padding="same", name="stem")
    y = conv(x)
    assert y.shape[2:] == (9, 9)
    assert "stem.weight" in net.graph.params and "stem.bias" in net.graph.params
    seq = nd.nn.Sequential(nd.nn.Conv2d(8, 8, 3, padding=1), nd.nn.BatchNorm2d(8), nd.nn.ReLU())
    with net.scope("body"):
        seq(y)
    assert "body.0.weight" in net.graph.params and "body.1.running_var" in net.graph.params


def test_symbolic_reshape_with_wrong_element_count_is_rejected():
    net = nd.Network("r")
    x = net.input("x", ("N", 3, 8, 8))
    with pytest.raises(ShapeError, match=r"192\*N elements.*100\*N elements"):
        x.reshape(0, 100)
    assert x.reshape(0, 192).shape[1] == 192 and x.reshape(0, 3, -1).shape[2] == 64
    y = net.input("y", ("N", "K"))
    assert y.reshape(0, 6).shape[1] == 6  # K/6 == 1 is possible: left to run time


def test_definition_errors_before_the_op_name_the_users_line():
    net = nd.Network("e")
    x = net.input("x", ("N", 3, 8, 8))
    w = net.parameter("w", (4, 3, 3, 3))
    for bad in (lambda: nd.conv2d(x, w, stride=1.5), lambda: nd.conv2d(x, w, padding="foo"),
                lambda: x[:, 5], lambda: nd.interpolate(x, scale_factor=2, mode="bicubic")):
        with pytest.raises(ShapeError, match=r"test_dsl\.py:\d+"):
            bad()
    with pytest.raises(AttrError, match="strides"):
        nd.conv2d(x, w, stride=(1.5, 1.5))  # not silently truncated to 1


def test_bad_names_and_dims_are_rejected():
    net = nd.Network("n")
    with pytest.raises(ShapeError, match="non-empty"):
        net.input("", (2, 3))
    with pytest.raises(ShapeError, match="non-negative"):
        net.parameter("p", (-1, 3))


def test_locations_skip_frozen_frames_of_python_dash_m():
    """``python -m tool`` runs the tool from <frozen runpy>: not a place a user can open."""
    from netdsl.dsl import user_location
    got = {}
    exec(compile("got['loc'] = user_location()", "<frozen runpy>", "exec"), {"user_location": user_location, "got": got})
    assert "test_dsl.py:" in got["loc"], got
