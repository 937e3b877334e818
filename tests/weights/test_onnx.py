"""ONNX initializers and Constant nodes, read without the onnx package (onnx is used only to write files)."""
from __future__ import annotations

import numpy as np
import pytest

from netdsl.errors import WeightError
from netdsl.weights import detect_format, open_checkpoint

onnx = pytest.importorskip("onnx", reason="onnx not installed")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _model(rng):
    W = rng.standard_normal((4, 3)).astype(np.float32)
    inits = [numpy_helper.from_array(W, "W"),
             helper.make_tensor("B", TensorProto.FLOAT, [4], rng.standard_normal(4).tolist()),  # float_data
             helper.make_tensor("H", TensorProto.FLOAT16, [2], [1.5, -2.0]),
             helper.make_tensor("I", TensorProto.INT64, [3], [1, -2, 3]),
             helper.make_tensor("D", TensorProto.DOUBLE, [2], [0.25, 4.0]),
             helper.make_tensor("BF", TensorProto.BFLOAT16, [2], [1.0, -3.0])]
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["y"], transB=1),
             helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.arange(6, dtype=np.float32)
                                                                                   .reshape(2, 3))),
             helper.make_node("Constant", [], ["cf"], value_floats=[1.0, 2.0])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 1, [1, 3])],
                          [helper.make_tensor_value_info("y", 1, [1, 4])], initializer=inits)
    return helper.make_model(g)


@pytest.mark.parametrize("external", [False, True])
def test_initializers_and_constants(tmp_path, rng, external):
    m = _model(rng)
    p = tmp_path / "m.bin"
    if external:
        onnx.save_model(m, str(p), save_as_external_data=True, all_tensors_to_one_file=True, location="m.data",
                        size_threshold=0)
    else:
        onnx.save(m, str(p))
    assert detect_format(str(p)) == "onnx"
    want = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(p)).graph.initializer}
    with open_checkpoint(p) as c:
        assert set(c.names()) == set(want) | {"c", "cf"}
        for k, v in want.items():
            got = c.read(k)
            np.testing.assert_array_equal(got, v.astype(np.float32) if k == "BF" else v, err_msg=k)
        np.testing.assert_array_equal(c.read("c"), np.arange(6, dtype=np.float32).reshape(2, 3))
        np.testing.assert_array_equal(c.read("cf"), [1.0, 2.0])


def test_operand_constants_are_not_weights(tmp_path):
    """Scalars and integer tensors of Constant nodes (a hard-swish's 3 and 6, a Reshape's shape: what
    Paddle's exporter makes) are not listed; float tensors of Constant nodes (Paddle's weights) are."""
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    nodes = [helper.make_node("Constant", [], ["conv1_weights"], value=numpy_helper.from_array(w)),
             helper.make_node("Constant", [], ["Constant@1"], value=numpy_helper.from_array(np.array(3.0, np.float32))),
             helper.make_node("Constant", [], ["Constant@2"], value=numpy_helper.from_array(np.array([1, 6], np.int64))),
             helper.make_node("Constant", [], ["Constant@3"], value_int=7),
             helper.make_node("Add", ["x", "Constant@1"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 1, [1])],
                          [helper.make_tensor_value_info("y", 1, [1])],
                          initializer=[helper.make_tensor("I", TensorProto.INT64, [2], [4, 5])])
    p = tmp_path / "paddle_like.onnx"
    onnx.save(helper.make_model(g), str(p))
    with open_checkpoint(p) as c:
        assert sorted(c.names()) == ["I", "conv1_weights"]  # an integer initializer is still listed
        np.testing.assert_array_equal(c.read("conv1_weights"), w)


def test_torch_onnx_export(tmp_path):
    torch = pytest.importorskip("torch", reason="torch not installed")
    from tests.weights.nets import torch_cnn
    m = torch_cnn()
    p = tmp_path / "cnn.onnx"
    try:
        torch.onnx.export(m, torch.randn(1, 3, 16, 16), str(p), dynamo=False)
    except Exception as e:  # exporter needs optional packages on some installs
        pytest.skip(f"torch.onnx.export unavailable: {e}")
    want = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(p)).graph.initializer}
    with open_checkpoint(p) as c:
        for k, v in want.items():
            np.testing.assert_array_equal(c.read(k), v)


def test_external_data_outside_dir_refused(tmp_path, rng):
    m = _model(rng)
    p = tmp_path / "m.onnx"
    onnx.save_model(m, str(p), save_as_external_data=True, all_tensors_to_one_file=True, location="m.data",
                    size_threshold=0)
    data = p.read_bytes().replace(b"m.data", b"/e/pwd")
    q = tmp_path / "evil.onnx"
    q.write_bytes(data)
    with pytest.raises(WeightError, match=f"{q}: external data file .*not a file beside the checkpoint.*tensor"):
        open_checkpoint(q)


def test_truncated(tmp_path, rng):
    p = tmp_path / "m.onnx"
    onnx.save(_model(rng), str(p))
    data = p.read_bytes()
    for cut in (3, 20, len(data) // 2, len(data) - 5):
        q = tmp_path / "t.onnx"
        q.write_bytes(data[:cut])
        with pytest.raises(WeightError, match=str(q)):
            with open_checkpoint(q, format="onnx") as c:
                [c.read(n) for n in c.names()]


def test_error_for_a_huge_rank_is_short(tmp_path):
    """An initializer of 200000 dims: the error printed every one of them."""
    w = onnx.TensorProto(name="W", data_type=1, dims=[-1] * 200_000)
    g = helper.make_graph([], "g", [], [], initializer=[w])
    p = tmp_path / "m.onnx"
    p.write_bytes(helper.make_model(g).SerializeToString())
    with pytest.raises(WeightError, match=f"{p}.*invalid dims") as e:
        open_checkpoint(p, format="onnx")
    assert len(str(e.value)) < 1000


def _external_model(tmp_path, **entries):
    np.arange(12, dtype=np.float32).tofile(tmp_path / "data.bin")
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3], data_location=TensorProto.EXTERNAL)
    for k, v in {"location": "data.bin", **entries}.items():
        t.external_data.add(key=k, value=v)
    p = tmp_path / "m.onnx"
    p.write_bytes(helper.make_model(helper.make_graph([], "g", [], [], initializer=[t])).SerializeToString())
    return p


@pytest.mark.parametrize("key,value", [("offset", "abc"), ("offset", "-4"), ("length", "4_0"), ("offset", "١")])
def test_external_data_offsets_must_be_byte_counts(tmp_path, key, value):
    """'abc' failed with int()'s ValueError, without the tensor's name; '4_0' was read as 40."""
    p = _external_model(tmp_path, **{key: value})
    with pytest.raises(WeightError, match=f"{p}, tensor 'w': external data {key} .* is not a byte count"):
        open_checkpoint(p)


def test_external_data_offset_with_spaces_still_reads(tmp_path):
    with open_checkpoint(_external_model(tmp_path, offset=" 4 ", length="12")) as c:
        np.testing.assert_array_equal(c.read("w"), np.arange(1, 4, dtype=np.float32))


@pytest.mark.parametrize("attr,kind", [("value_int", onnx.AttributeProto.INT),
                                       ("value_float", onnx.AttributeProto.FLOAT)])
def test_constant_attribute_without_a_value_refused(tmp_path, attr, kind):
    """value_int without its int failed with int(None)'s TypeError; value_float became NaN."""
    n = helper.make_node("Constant", [], ["c"])
    n.attribute.add(name=attr, type=kind)
    p = tmp_path / "m.onnx"
    p.write_bytes(helper.make_model(helper.make_graph([n], "g", [], [])).SerializeToString())
    with pytest.raises(WeightError, match=f"{p}, tensor 'c': Constant node's {attr} attribute holds no value"):
        open_checkpoint(p)


def test_complex_tensor_with_an_odd_value_count_refused_when_opened(tmp_path):
    t = TensorProto(name="w", data_type=TensorProto.COMPLEX64, dims=[2], float_data=[1, 2, 3, 4, 5])
    p = tmp_path / "m.onnx"
    p.write_bytes(helper.make_model(helper.make_graph([], "g", [], [], initializer=[t])).SerializeToString())
    with pytest.raises(WeightError, match="tensor 'w': complex tensor has an odd number"):
        open_checkpoint(p)


def test_typed_values_of_the_wrong_wire_type_refused(tmp_path):
    """TensorProto.float_data is a float: onnx (protobuf) keeps varint occurrences as unknown fields, so
    ONNX Runtime sees no values; they were read here as the floats 7, 8 and 9."""
    from netdsl.weights.protobuf import enc_field
    t = enc_field(1, 3) + enc_field(2, TensorProto.FLOAT) + enc_field(8, "w")
    t += b"".join(enc_field(4, v) for v in (7, 8, 9))
    p = tmp_path / "m.onnx"
    p.write_bytes(enc_field(1, 8) + enc_field(7, enc_field(5, t)))
    with pytest.raises(WeightError, match=f"{p}.*wire type 0 where 5"):
        open_checkpoint(p, format="onnx")
