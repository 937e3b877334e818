"""A preprocessed input (channels reversed) whose size another op reads at run time: OpenVINO 2026.4's
PrePostProcessor got this wrong with dynamic H, W (a conv after it read ~1e3 off), so the lowering uses
plain ops there; the result must equal the reference."""
from __future__ import annotations

import numpy as np
import pytest

import netdsl as nd
from netdsl import nn

pytest.importorskip("openvino", reason="openvino is not installed")


@pytest.mark.parametrize("reverse", [True, False])
def test_reversed_channels_input_read_as_a_size(reverse):
    net = nd.Network("pre_like")
    x = net.input("image", ("N", "H", "W", 3), "uint8", layout="NHWC",
                  preprocess=nd.Preprocess(mean=(104.0, 116.0, 122.0), reverse_channels=reverse))
    y = nn.Conv2d(3, 4, 3, padding="same")(x)
    net.output(nd.resize_to(nd.max_pool2d(y, 2, 2, padding="same"), x, (2, 3), mode="linear"), "y")
    net.init_random(1)
    img = np.random.default_rng(0).integers(0, 255, (2, 7, 5, 3)).astype(np.uint8)
    want = net.compile("reference")({"image": img})["y"]
    got = net.compile("openvino")({"image": img})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
