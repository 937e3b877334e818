import numpy as np
import pytest

import netdsl as nd
from netdsl.errors import ShapeError


def _emb_net():
    net = nd.Network("oob")
    ids = net.input("ids", ("N", 5), "int32")
    net.output(nd.embedding(ids, net.parameter("emb.weight", (10, 4))), "e")
    return net.init_random(0)


@pytest.mark.parametrize("backend", ["reference", "onnx", "openvino"])
def test_out_of_range_ids_are_refused_before_the_engine(backend):
    pytest.importorskip({"reference": "numpy", "onnx": "onnxruntime", "openvino": "openvino"}[backend],
                        reason=f"{backend} engine not installed")
    model = nd.compile(_emb_net(), backend)
    with pytest.raises(ShapeError, match=r"'ids'.*\[-10, 10\).*embedding"):
        model(ids=np.full((1, 5), 12, np.int32))
    ok = model(ids=np.arange(5, dtype=np.int32)[None])["e"]
    assert ok.shape == (1, 5, 4)


def test_input_errors_name_the_input():
    model = nd.compile(_emb_net())
    with pytest.raises(ShapeError, match="missing input"):
        model()
    with pytest.raises(ShapeError, match="input 'ids': expected shape"):
        model(ids=np.zeros((2, 6), np.int32))
    with pytest.raises(ShapeError, match="expected int32"):
        model(ids=np.zeros((2, 5), np.float32))
    with pytest.raises(ShapeError, match=r"input 'ids': not an array \(.*inhomogeneous"):
        model(ids=[[1, 2, 3, 4, 5], [1, 2]])  # ragged: NumPy's own ValueError named no input


@pytest.mark.parametrize("backend", ["reference", "onnx", "openvino"])
def test_integer_feeds_checked_before_the_cast(backend):
    """int64 2**32 + 3 used to become int32 3 (row 3 of the table) before the range check."""
    pytest.importorskip({"reference": "numpy", "onnx": "onnxruntime", "openvino": "openvino"}[backend],
                        reason=f"{backend} engine not installed")
    model = nd.compile(_emb_net(), backend)
    ids = np.array([[0, 1, 2, 2**32 + 3, 4]], np.int64)
    with pytest.raises(ShapeError, match=r"input 'ids': values in \[0, 4294967299\] do not fit its dtype int32"):
        model(ids=ids)
    with pytest.raises(ShapeError, match="do not fit its dtype int32"):
        model(ids=np.array([[0, 1, 2, 2**63, 4]], np.uint64))
    with pytest.raises(ShapeError, match="do not fit"):
        model(ids=np.array([[0, 1, 2, -2**31 - 1, 4]], np.int64))
    got = model(ids=np.array([[0, 1, 2, 3, -1]], np.int64))["e"]  # in range: cast and used
    ref = model(ids=np.array([[0, 1, 2, 3, -1]], np.int32))["e"]
    np.testing.assert_array_equal(got, ref)


def test_uint64_into_int64_input():
    net = nd.Network("i64")
    x = net.input("x", (3,), "int64")
    net.output(x + 1, "y")
    model = nd.compile(net)
    with pytest.raises(ShapeError, match="do not fit its dtype int64"):
        model(x=np.array([1, 2, 2**63], np.uint64))
    np.testing.assert_array_equal(model(x=np.array([1, 2, 3], np.uint64))["y"], [2, 3, 4])


@pytest.mark.parametrize("backend", ["reference", "openvino"])
def test_checks_hold_after_a_shape_was_accepted(backend):
    """check_inputs skips the shape checks for shapes it accepted before: every other check still runs."""
    pytest.importorskip({"reference": "numpy", "openvino": "openvino"}[backend], reason=f"{backend} not installed")
    model = nd.compile(_emb_net(), backend)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 10, (3, 5)).astype(np.int32)
    first = model(ids=ids)["e"]
    np.testing.assert_array_equal(model(ids=ids.copy())["e"], first)  # the accepted shape, again
    with pytest.raises(ShapeError, match=r"'ids'.*\[-10, 10\).*embedding"):  # values: checked every time
        model(ids=np.full((3, 5), 12, np.int32))
    with pytest.raises(ShapeError, match="do not fit its dtype int32"):  # another dtype: the full checks
        model(ids=np.full((3, 5), 2**32 + 3, np.int64))
    with pytest.raises(ShapeError, match="input 'ids': expected shape"):
        model(ids=np.zeros((3, 6), np.int32))
    with pytest.raises(ShapeError, match="unknown input"):
        model(ids=ids, other=ids)
    wide = np.asfortranarray(rng.integers(0, 10, (3, 5)).astype(np.int32))  # accepted shape, not C-contiguous
    np.testing.assert_array_equal(model(ids=wide)["e"], model(ids=np.ascontiguousarray(wide))["e"])
    model.dim_ranges = {"N": (1, 2)}  # a new range: shapes are checked against it again
    with pytest.raises(ShapeError, match="outside the range 1..2"):
        model(ids=ids)


def _float_net():
    net = nd.Network("masked")
    x = net.input("x", ("N", 4))
    net.output(nd.relu(x) * 2.0, "y")
    return net


@pytest.mark.parametrize("backend", ["reference", "onnx", "openvino"])
def test_a_masked_array_is_refused_naming_the_input(backend):
    """A numpy masked array was run on its raw data, the mask ignored, by every engine and entry point."""
    pytest.importorskip({"reference": "numpy", "onnx": "onnxruntime", "openvino": "openvino"}[backend],
                        reason=f"{backend} engine not installed")
    from netdsl.backends import reference
    net = _float_net()
    model = nd.compile(net, backend)
    x = np.random.default_rng(5).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(model(x=x)["y"], np.maximum(x, 0) * 2, rtol=1e-6)  # this shape is accepted now
    masked = np.ma.masked_array(x, mask=x < 0)
    calls = [lambda: model(x=masked), lambda: reference.run(net.graph, {"x": masked})]
    if backend == "openvino":
        calls += [lambda: model.run_many([{"x": x}, {"x": masked}]), lambda: model.infer_async(x=masked).result(30)]
    for call in calls:
        with pytest.raises(ShapeError, match=r"input 'x' is a numpy masked array: .*x\.filled\(value\)"):
            call()
    np.testing.assert_allclose(model(x=masked.filled(0.0))["y"], np.maximum(x, 0) * 2, rtol=1e-6)
