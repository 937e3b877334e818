"""Lowering shares memory-mapped checkpoint weights with OpenVINO and copies everything else once."""
from __future__ import annotations

import numpy as np
import pytest

import netdsl as nd
import netdsl.functional as F
from netdsl.backends import reference
from netdsl.compare import assert_close

pytest.importorskip("openvino", reason="openvino is not installed (pip install openvino)")
safetensors_numpy = pytest.importorskip("safetensors.numpy", reason="safetensors is not installed")
from netdsl.backends import openvino as ovb  # noqa: E402


def net_with(source) -> nd.Network:
    net = nd.Network("emb")
    ids = net.input("ids", ("N",), "int32")
    x = F.embedding(ids, net.parameter("table", (50, 8)))
    net.output(F.linear(x, net.parameter("w", (3, 8))), "y")
    net.load_weights(source)
    return net


def weights(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"table": rng.standard_normal((50, 8)).astype(np.float32),
            "w": rng.standard_normal((3, 8)).astype(np.float32)}


def constant_address(ov_model, shape) -> int:
    [c] = [op for op in ov_model.get_ordered_ops() if op.get_type_name() == "Constant"
           and tuple(op.get_output_shape(0)) == shape]
    return c.get_data().__array_interface__["data"][0]


def mapped_from(path) -> list:
    """(start, end) of this process's memory mappings of ``path`` (/proc/self/maps)."""
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[5] == str(path):
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                out.append((lo, hi))
    return out


IDS = {"ids": np.array([0, 7, 49, 3], np.int32)}


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/maps"), reason="no /proc/self/maps (not Linux)")
def test_checkpoint_weights_are_served_from_the_file_mapping(tmp_path):
    path = tmp_path / "w.safetensors"
    safetensors_numpy.save_file(weights(1), str(path))
    net = net_with(str(path))
    m = ovb.compile(net.graph)
    addr = constant_address(m.ov_model, (50, 8))
    assert any(lo <= addr < hi for lo, hi in mapped_from(path.resolve())), "table was copied"
    assert_close(m(IDS)["y"], reference.run(net.graph, IDS)["y"], "float32")


def test_in_memory_weights_are_copied(tmp_path):
    """An array of the caller's, changed after compiling, must not change the compiled model."""
    w = weights(2)
    net = net_with(w)
    m = ovb.compile(net.graph)
    before = m(IDS)["y"]
    w["table"][:] = 0  # the embedding table is one the CPU plugin reads in place
    w["w"][:] = 0
    np.testing.assert_array_equal(m(IDS)["y"], before)
    assert np.abs(before).max() > 0
