"""The preprocess op on OpenVINO: on a network input it is OpenVINO's PrePostProcessor (the compiled
model takes the caller's type and layout natively, no Transpose in the body), also after an IR round trip."""
from __future__ import annotations

import numpy as np
import pytest

import netdsl as nd
from netdsl.backends import reference

ov = pytest.importorskip("openvino", reason="openvino is not installed (pip install openvino)")
from netdsl.backends import openvino as ovb  # noqa: E402
from netdsl.backends.openvino.lower import lower  # noqa: E402


def _net():
    net = nd.Network("pre")
    x = net.input("image", ("N", 6, 5, 3), "uint8", layout="NHWC",
                  preprocess=nd.Preprocess(mean=(10.0, 20.0, 30.0), scale=(2.0, 4.0, 8.0), reverse_channels=True))
    net.output(nd.relu(nd.conv2d(x, net.parameter("w", (4, 3, 3, 3)))), "y")
    return net.init_random(seed=3)


def test_input_is_the_callers_type_and_layout():
    m = lower(_net().graph, {"N": (1, 4)})
    (p,) = m.get_parameters()
    assert p.get_friendly_name() == "image" and p.output(0).get_tensor().get_names() == {"image"}
    assert p.get_element_type() == ov.Type.u8 and str(p.get_partial_shape()) == "[1..4,6,5,3]"
    ops = [o.get_type_name() for o in m.get_ordered_ops()]
    assert "Transpose" in ops and "Convert" in ops  # the PrePostProcessor's steps, in front of the body
    # its scale is a Multiply and reverse_channels goes into the next convolution's weights (or a Gather);
    # netdsl's own fallback would Slice and Divide
    assert "Multiply" in ops and "Slice" not in ops and "Divide" not in ops, ops


def test_runs_and_survives_the_ir(tmp_path):
    net = _net()
    x = np.random.default_rng(0).integers(0, 256, (2, 6, 5, 3)).astype(np.uint8)
    want = reference.run(net.graph, {"image": x})["y"]
    np.testing.assert_allclose(ovb.compile(net.graph)(image=x)["y"], want, rtol=1e-5, atol=1e-4)
    ovb.build(net.graph, str(tmp_path / "m.xml"))
    np.testing.assert_allclose(ovb.load_ir(str(tmp_path / "m.xml"))(image=x)["y"], want, rtol=1e-5, atol=1e-4)


def test_not_on_an_input_it_is_plain_ops():
    net = nd.Network("mid")
    x = net.input("x", ("N", 4, 4, 2))
    net.output(nd.preprocess(x * 2.0, "NHWC", mean=1.0), "y")
    m = lower(net.graph)
    assert m.get_parameters()[0].get_element_type() == ov.Type.f32
    a = np.random.default_rng(1).standard_normal((3, 4, 4, 2)).astype(np.float32)
    np.testing.assert_allclose(ovb.compile(net.graph)(x=a)["y"], (a * 2 - 1).transpose(0, 3, 1, 2), rtol=1e-6)
