"""Darknet .weights driven by the .cfg: header versions, batch-norm order, leftover/short checks, binding."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from netdsl.errors import WeightError
from netdsl.weights import detect_format, open_checkpoint

CFG = """[net]
# comment
height=8
width=8
channels=3

[convolutional]
batch_normalize=1
filters=4
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[convolutional]
filters=2
size=1
stride=1
pad=1
activation=linear

[route]
layers=-1,-2

[connected]
output=5
activation=linear
"""
# layer 0 conv (bn): 4 bias, 4 scales, 4 mean, 4 var, 4*3*3*3 weights; layer 1 maxpool -> 4x4x4
# layer 2 conv: 2 bias, 2*4 weights; layer 3 route -> 6 channels 4x4 (concat 2 + 4); layer 4 connected 5x96
SIZES = [4, 4, 4, 4, 108, 2, 8, 5, 480]


def _write(tmp_path, rng, major=0, minor=2, extra=0, cfg=CFG, name="yolo"):
    n = sum(SIZES) + extra
    vals = rng.standard_normal(n).astype(np.float32)
    hdr = struct.pack("<3iq", major, minor, 5, 123456) if major * 10 + minor >= 2 else \
        struct.pack("<3ii", major, minor, 5, 1234)
    (tmp_path / f"{name}.weights").write_bytes(hdr + vals.tobytes())
    (tmp_path / f"{name}.cfg").write_text(cfg)
    return tmp_path / f"{name}.weights", vals


@pytest.mark.parametrize("version", [(0, 1), (0, 2), (1, 0)])
def test_read_versions(tmp_path, rng, version):
    p, vals = _write(tmp_path, rng, *version)
    assert detect_format(str(p)) == "darknet"
    with open_checkpoint(p) as c:
        assert c.names() == ["0.bn.bias", "0.bn.weight", "0.bn.running_mean", "0.bn.running_var", "0.conv.weight",
                             "2.conv.bias", "2.conv.weight", "4.fc.bias", "4.fc.weight"]
        assert c.info("0.conv.weight").shape == (4, 3, 3, 3)
        assert c.info("4.fc.weight").shape == (5, 96)
        np.testing.assert_array_equal(c.read("0.bn.bias"), vals[:4])          # biases first
        np.testing.assert_array_equal(c.read("0.bn.weight"), vals[4:8])       # then scales
        np.testing.assert_array_equal(c.read("0.bn.running_var"), vals[12:16])
        np.testing.assert_array_equal(c.read("0.conv.weight").ravel(), vals[16:124])
        np.testing.assert_array_equal(c.read("4.fc.weight").ravel(), vals[-480:])


def test_leftover_and_short(tmp_path, rng):
    p, _ = _write(tmp_path, rng, extra=3)
    with pytest.raises(WeightError, match="3 float.*left over"):
        open_checkpoint(p)
    p, _ = _write(tmp_path, rng, extra=-10)
    with pytest.raises(WeightError, match="truncated|does not match"):
        open_checkpoint(p)


def test_cfg_required_and_option(tmp_path, rng):
    p, _ = _write(tmp_path, rng)
    other = tmp_path / "sub"
    other.mkdir()
    q = other / "w.weights"
    q.write_bytes(p.read_bytes())
    with pytest.raises(WeightError, match="cfg"):
        open_checkpoint(q, format="darknet")
    with open_checkpoint(q, format="darknet", cfg=str(tmp_path / "yolo.cfg")) as c:
        assert len(c) == 9


def test_bad_cfg(tmp_path, rng):
    p, _ = _write(tmp_path, rng, cfg=CFG.replace("[route]\nlayers=-1,-2", "[route]\nlayers=-9"))
    with pytest.raises(WeightError, match="route"):
        open_checkpoint(p)


def test_bind_with_rename(tmp_path, rng):
    from netdsl import layers as nn
    import netdsl.functional as F

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(4)

        def forward(self, x):
            return F.relu(self.bn(self.conv(x)))
    cfg = "[net]\nheight=8\nwidth=8\nchannels=3\n[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\n"
    vals = rng.standard_normal(16 + 108).astype(np.float32)
    (tmp_path / "s.weights").write_bytes(struct.pack("<3iq", 0, 2, 0, 0) + vals.tobytes())
    (tmp_path / "s.cfg").write_text(cfg)
    net = Net().build({"x": (1, 3, 8, 8)})
    rep = net.load_weights(tmp_path / "s.weights", rename=[(r"^0\.", "")])
    assert rep.ok
    np.testing.assert_array_equal(net.graph.params["bn.running_mean"].value(), vals[8:12])


@pytest.mark.parametrize("bn_kw,warned", [({}, True), ({"eps": 1e-6}, True), ({"eps_mode": "outside_sqrt"}, True),
                                          ({"eps": 1e-6, "eps_mode": "outside_sqrt"}, False)], ids=str)
def test_bind_warns_about_batch_norm_formula(tmp_path, rng, bn_kw, warned):
    """Darknet divides by sqrt(var) + 1e-6: any other batch norm bound to a .weights file is reported."""
    from netdsl import layers as nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(4, **bn_kw)

        def forward(self, x):
            return self.bn(self.conv(x))
    cfg = "[net]\nheight=8\nwidth=8\nchannels=3\n[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\n"
    (tmp_path / "s.weights").write_bytes(struct.pack("<3iq", 0, 2, 0, 0) + rng.standard_normal(124).astype(
        np.float32).tobytes())
    (tmp_path / "s.cfg").write_text(cfg)
    net = Net().build({"x": (1, 3, 8, 8)})
    rep = net.load_weights(tmp_path / "s.weights", rename=[(r"^0\.", "")])
    assert rep.ok
    msgs = [w for w in rep.warnings if "batch_norm 'bn'" in w]
    assert bool(msgs) == warned, rep.warnings
    if warned:
        assert 'eps=1e-6, eps_mode="outside_sqrt"' in msgs[0] and "test_darknet.py" in msgs[0]


def test_sizes_beyond_darknet_int_refused(tmp_path):
    """35000 [upsample] stride=99999 sections (840 kB of .cfg): sizes of 175000 digits, never finished."""
    from tests.limited import read_checkpoint
    cfg = "[net]\nheight=4\nwidth=4\nchannels=2\n" + "[upsample]\nstride=99999\n" * 35_000 + "[connected]\noutput=3\n"
    (tmp_path / "m.cfg").write_text(cfg)
    p = tmp_path / "m.weights"
    p.write_bytes(struct.pack("<3iq", 0, 2, 0, 7) + bytes(64))
    got = read_checkpoint(p, "darknet", timeout=30)
    assert got.outcome == "error" and str(p) in got.message and "exceeds darknet's int" in got.message, got


@pytest.mark.parametrize("edit,match", [
    (("[route]\nlayers=-1,-2", "[route]\nlayers=-1,x"),
     r"\[route\] \(layer 3\): layer reference 'x' is not an integer"),
    (("[connected]\noutput=5", "[connected]\noutput=-5"), r"\[connected\] \(layer 4\): 4.fc.bias would have the "
                                                          r"negative shape \(-5,\)"),
])
def test_cfg_values_that_cannot_be_sizes(tmp_path, rng, edit, match):
    """A layer reference 'x' failed with int()'s ValueError naming no layer; a negative output size moved the
    reading position back, so the error spoke of floats 'left over' (or of a shape, far from the cfg line)."""
    p, _ = _write(tmp_path, rng, cfg=CFG.replace(*edit))
    with pytest.raises(WeightError, match=match):
        open_checkpoint(p)
