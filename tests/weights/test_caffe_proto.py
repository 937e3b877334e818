"""Caffe .caffemodel bytes encoded field by field from BVLC/caffe src/caffe/proto/caffe.proto (independent of
netdsl's own encoder): NetParameter name=1, layers=2 (V1LayerParameter), layer=100 (LayerParameter);
LayerParameter name=1 type=2 blobs=7; V1LayerParameter name=4 type=5 (enum) blobs=6 layer=1 (V0: name=1,
type=2, blobs=50); BlobProto num=1 channels=2 height=3 width=4 data=5 [packed] shape=7 double_data=8;
BlobShape dim=1 [packed]."""
from __future__ import annotations

import io
import struct

import numpy as np

from netdsl.weights import detect_format, open_checkpoint
from netdsl.weights.cli import weights_command


def varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = b""
    while v > 0x7F:
        out += bytes([v & 0x7F | 0x80])
        v >>= 7
    return out + bytes([v])


def key(fno: int, wt: int) -> bytes:
    return varint(fno << 3 | wt)


def ld(fno: int, payload: bytes) -> bytes:          # wire type 2
    return key(fno, 2) + varint(len(payload)) + payload


def vi(fno: int, v: int) -> bytes:                  # wire type 0
    return key(fno, 0) + varint(v)


def blob_v2(a: np.ndarray) -> bytes:                # Blob::ToProto: shape then packed data
    shape = ld(7, ld(1, b"".join(varint(d) for d in a.shape)))
    return shape + ld(5, a.astype("<f4").tobytes())


def blob_legacy(a: np.ndarray) -> bytes:            # old Blob::ToProto: num, channels, height, width, data
    dims = (1,) * (4 - a.ndim) + a.shape
    return b"".join(vi(f, d) for f, d in zip((1, 2, 3, 4), dims)) + ld(5, a.astype("<f4").tobytes())


def blob_double(a: np.ndarray) -> bytes:            # Blob<double>::ToProto writes double_data = 8
    return ld(7, ld(1, b"".join(varint(d) for d in a.shape))) + ld(8, a.astype("<f8").tobytes())


def test_v2_batchnorm_scale(tmp_path, rng):
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    mean, var = rng.standard_normal(4).astype(np.float32), rng.uniform(1, 2, 4).astype(np.float32)
    sf = np.array([0.5], np.float32)                 # moving-average factor: stored mean = mean * sf
    gamma, beta = rng.standard_normal(4).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    fc = rng.standard_normal((2, 36)).astype(np.float64)
    layers = [ld(100, ld(1, b"data") + ld(2, b"Input") + ld(4, b"data")),
              ld(100, ld(1, b"conv1") + ld(2, b"Convolution") + ld(3, b"data") + ld(4, b"conv1")
                 + ld(7, blob_v2(w)) + ld(7, blob_v2(b))),
              ld(100, ld(1, b"bn1") + ld(2, b"BatchNorm") + ld(7, blob_v2(mean * sf)) + ld(7, blob_v2(var * sf))
                 + ld(7, blob_v2(sf))),
              ld(100, ld(1, b"scale1") + ld(2, b"Scale") + ld(7, blob_v2(gamma)) + ld(7, blob_v2(beta))),
              ld(100, ld(1, b"fc") + ld(2, b"InnerProduct") + ld(7, blob_double(fc)))]
    p = tmp_path / "net.caffemodel"
    p.write_bytes(ld(1, b"tiny") + b"".join(layers))
    assert detect_format(str(p)) == "caffe"
    with open_checkpoint(p) as c:
        assert c.names() == ["conv1.weight", "conv1.bias", "bn1.running_mean", "bn1.running_var",
                             "bn1.scale_factor", "scale1.weight", "scale1.bias", "fc.weight"]
        np.testing.assert_array_equal(c.read("conv1.weight"), w)
        np.testing.assert_allclose(c.read("bn1.running_mean"), mean, rtol=1e-6)   # divided by scale_factor
        np.testing.assert_allclose(c.read("bn1.running_var"), var, rtol=1e-6)
        np.testing.assert_array_equal(c.read("scale1.bias"), beta)
        assert c.info("fc.weight").dtype == "float64"
        np.testing.assert_array_equal(c.read("fc.weight"), fc)
    out = io.StringIO()
    assert weights_command(str(p), out=out) == 0
    assert "bn1.running_var" in out.getvalue() and "format caffe" in out.getvalue()


def test_v1_enum_layers_legacy_shapes(tmp_path, rng):
    """A V1 (``layers``) net as old Caffe wrote it: enum types, 4-d num/channels/height/width blobs."""
    w = rng.standard_normal((8, 3, 5, 5)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    fw = rng.standard_normal((10, 32)).astype(np.float32)
    fb = rng.standard_normal(10).astype(np.float32)
    layers = [ld(2, ld(2, b"data") + ld(3, b"conv1") + ld(4, b"conv1") + vi(5, 4)
                 + ld(6, blob_legacy(w)) + ld(6, blob_legacy(b))),
              ld(2, ld(4, b"relu1") + vi(5, 18)),
              ld(2, ld(4, b"pool1") + vi(5, 17)),
              ld(2, ld(4, b"ip1") + vi(5, 14) + ld(6, blob_legacy(fw)) + ld(6, blob_legacy(fb))),
              ld(2, ld(4, b"prob") + vi(5, 20))]
    p = tmp_path / "old.caffemodel"
    p.write_bytes(ld(1, b"LeNet") + b"".join(layers))
    with open_checkpoint(p) as c:
        assert c.names() == ["conv1.weight", "conv1.bias", "ip1.weight", "ip1.bias"]
        assert c.info("conv1.weight").shape == (8, 3, 5, 5)
        assert c.info("conv1.bias").shape == (1, 1, 1, 8)        # legacy: as stored, marked flat
        assert c.info("ip1.weight").shape == (1, 1, 10, 32)
        assert c.info("ip1.weight").extra["flat"]
        np.testing.assert_array_equal(c.read("ip1.weight").reshape(10, 32), fw)
        np.testing.assert_array_equal(c.read("conv1.bias").ravel(), b)


def test_v0_layers(tmp_path, rng):
    """V1LayerParameter.layer = 1 holding a V0LayerParameter (name 1, type 2 string, blobs 50)."""
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    v0 = ld(1, b"conv1") + ld(2, b"conv") + ld(50, blob_legacy(w)) + ld(50, blob_legacy(np.zeros(4, np.float32)))
    p = tmp_path / "v0.caffemodel"
    p.write_bytes(ld(1, b"v0net") + ld(2, ld(1, v0) + ld(2, b"data") + ld(3, b"conv1")))
    with open_checkpoint(p, format="caffe") as c:
        assert c.names() == ["conv1.weight", "conv1.bias"]
        np.testing.assert_array_equal(c.read("conv1.weight"), w)


def test_unpacked_floats(tmp_path, rng):
    """Parsers must accept unpacked encodings of packed fields (protobuf rule): fixed32 data, varint dims."""
    a = rng.standard_normal((2, 3)).astype(np.float32)
    blob = ld(7, vi(1, 2) + vi(1, 3)) + b"".join(key(5, 5) + struct.pack("<f", x) for x in a.ravel())
    p = tmp_path / "u.caffemodel"
    p.write_bytes(ld(1, b"n") + ld(100, ld(1, b"ip") + ld(2, b"InnerProduct") + ld(7, blob)))
    with open_checkpoint(p) as c:
        np.testing.assert_array_equal(c.read("ip.weight"), a)


def test_batchnorm_scale_factor_is_applied_not_a_parameter(tmp_path, rng):
    """Caffe's BatchNorm + Scale bind to one batch norm (Scale renamed into it); the scale_factor blob, already
    divided out of mean and variance when read, binds nowhere and is dropped with a note, even when strict."""
    import netdsl as nd
    from netdsl import nn
    mean, var = rng.standard_normal(4).astype(np.float32), rng.uniform(1, 2, 4).astype(np.float32)
    sf = np.array([0.25], np.float32)
    gamma, beta = rng.standard_normal(4).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    p = tmp_path / "bn.caffemodel"
    p.write_bytes(ld(1, b"bn") + ld(100, ld(1, b"bn1") + ld(2, b"BatchNorm") + ld(7, blob_v2(mean * sf))
                                     + ld(7, blob_v2(var * sf)) + ld(7, blob_v2(sf)))
                  + ld(100, ld(1, b"scale1") + ld(2, b"Scale") + ld(7, blob_v2(gamma)) + ld(7, blob_v2(beta))))
    net = nd.Network("bn")
    x = net.input("x", ("N", 4, 3, 3))
    net.output(nn.BatchNorm2d(4, name="bn1")(x), "y")
    rep = net.load_weights(p, rename=[(r"^scale1\.", "bn1.")])
    assert rep.ok and rep.ignored == ["bn1.scale_factor"], str(rep)
    assert any("scale_factor" in n and "already" in n for n in rep.notes), rep.notes
    v = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    want = (v - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5) * gamma[:, None, None] + beta[:, None, None]
    np.testing.assert_allclose(nd.compile(net, "reference")(x=v)["y"], want, rtol=1e-5, atol=1e-5)
