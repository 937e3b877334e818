"""Caffe .caffemodel: our protobuf reader on files from our encoder and on a hand-built byte fixture."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from netdsl.errors import WeightError
from netdsl.weights import detect_format, open_checkpoint
from netdsl.weights.caffe import encode_caffemodel


def _layers(rng):
    return [("conv1", "Convolution", [rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)]),
            ("relu1", "ReLU", []),
            ("bn1", "BatchNorm", [rng.standard_normal(4), rng.uniform(1, 2, 4), np.array([2.0])]),
            ("fc", "InnerProduct", [rng.standard_normal((2, 36)), rng.standard_normal(2)])]


@pytest.mark.parametrize("opts", [{}, {"packed": False}, {"legacy_shape": True}, {"v1": True}],
                         ids=["v2", "unpacked", "legacy-shape", "v1"])
def test_encoded(tmp_path, rng, opts):
    layers = _layers(rng)
    p = tmp_path / "net.bin"
    p.write_bytes(encode_caffemodel(layers, **opts))
    assert detect_format(str(p)) == "caffe"
    with open_checkpoint(p) as c:
        want = {f"{n}.{r}": b for n, t, bs in layers for r, b in zip(
            {"Convolution": ["weight", "bias"], "InnerProduct": ["weight", "bias"],
             "BatchNorm": ["running_mean", "running_var", "scale_factor"]}.get(t, []), bs)}
        for k in ("bn1.running_mean", "bn1.running_var"):  # read divided by scale_factor (2.0), as Caffe does
            want[k] = want[k] / 2.0
        if opts.get("v1"):  # V1 has no BatchNorm enum: blobs are numbered (and raw)
            want["bn1.running_mean"], want["bn1.running_var"] = want["bn1.running_mean"] * 2, want["bn1.running_var"] * 2
            want = {k.replace("bn1.running_mean", "bn1.0").replace("bn1.running_var", "bn1.1")
                    .replace("bn1.scale_factor", "bn1.2"): v for k, v in want.items()}
        assert set(c.names()) == set(want)
        for k, v in want.items():
            np.testing.assert_allclose(c.read(k).reshape(v.shape), v.astype(np.float32), err_msg=k)


def _f(fno, wt, payload):
    key = bytes([fno << 3 | wt]) if fno < 16 else bytes([(fno << 3 | wt) & 0x7F | 0x80, (fno << 3 | wt) >> 7])
    if wt == 2:
        return key + bytes([len(payload)]) + payload
    return key + payload


def test_hand_built_fixture(tmp_path):
    """Bytes assembled by hand per caffe.proto: NetParameter{name, layer{name, type, blobs{shape, data}}}."""
    data = struct.pack("<3f", 1.0, -2.0, 0.5)
    shape = _f(1, 2, bytes([1, 3]))                     # BlobShape.dim packed [1, 3]
    blob = _f(7, 2, shape) + _f(5, 2, data)             # BlobProto.shape, BlobProto.data (packed)
    legacy_blob = _f(1, 0, b"\x01") + _f(2, 0, b"\x01") + _f(3, 0, b"\x01") + _f(4, 0, b"\x01") + \
        _f(5, 5, struct.pack("<f", 7.0))                # num/channels/height/width + one unpacked float
    layer = _f(1, 2, b"ip") + _f(2, 2, b"InnerProduct") + _f(7, 2, blob) + _f(7, 2, legacy_blob)
    raw = _f(1, 2, b"tiny") + _f(100, 2, layer)
    assert raw[:6] == b"\x0a\x04tiny"
    p = tmp_path / "tiny.caffemodel"
    p.write_bytes(raw)
    with open_checkpoint(p) as c:
        assert c.names() == ["ip.weight", "ip.bias"]
        np.testing.assert_array_equal(c.read("ip.weight"), [[1.0, -2.0, 0.5]])
        assert c.info("ip.bias").shape == (1, 1, 1, 1) and c.info("ip.bias").extra["flat"]
        assert c.read("ip.bias").ravel().tolist() == [7.0]


def test_bind_caffe_to_network(tmp_path, rng):
    from netdsl import layers as nn
    layers = [("fc", "InnerProduct", [rng.standard_normal((2, 5)), rng.standard_normal(2)])]
    p = tmp_path / "m.caffemodel"
    p.write_bytes(encode_caffemodel(layers, legacy_shape=True))
    net = nn.Linear(5, 2, name="fc").build({"x": (1, 5)})
    rep = net.load_weights(p)
    assert rep.ok
    np.testing.assert_allclose(net.graph.params["fc.weight"].value(), layers[0][2][0].astype(np.float32))


def test_corrupt(tmp_path, rng):
    raw = encode_caffemodel(_layers(rng))
    for cut in (5, 40, len(raw) // 2, len(raw) - 3):
        q = tmp_path / "c.caffemodel"
        q.write_bytes(raw[:cut])
        with pytest.raises(WeightError, match=str(q)):
            with open_checkpoint(q, format="caffe") as c:
                [c.read(n) for n in c.names()]


def test_long_layer_name_times_many_blobs_refused(tmp_path):
    """A 400 kB layer name with 40000 one-value blobs (920 kB) named 16 GB of tensors, one copy per blob."""
    from tests.limited import read_checkpoint
    p = tmp_path / "m.caffemodel"
    p.write_bytes(encode_caffemodel([("n" * 400_000, "Convolution", [np.ones(1, np.float32)] * 40_000)]))
    got = read_checkpoint(p, "caffe", timeout=60)
    assert got.outcome == "error" and str(p) in got.message and "longer than 4096 characters" in got.message, got
    assert got.data["length"] < 1000  # the error describes the name, it does not print it


def test_error_for_a_huge_rank_is_short(tmp_path):
    """A blob of 200000 dims: the error printed every one of them."""
    from netdsl.weights.protobuf import enc_field
    blob = enc_field(7, enc_field(1, 1) * 200_000)  # BlobShape { dim: 1 ... } (not packed)
    p = tmp_path / "m.caffemodel"
    p.write_bytes(enc_field(100, enc_field(1, "conv") + enc_field(2, "Convolution") + enc_field(7, blob)))
    with pytest.raises(WeightError, match=f"{p}.*invalid blob shape") as e:
        open_checkpoint(p, format="caffe")
    assert len(str(e.value)) < 1000


def _blob_layer(*blob_fields):
    from netdsl.weights.protobuf import enc_field
    blob = enc_field(4, 2) + b"".join(blob_fields)  # legacy width 2: shape (1, 1, 1, 2)
    return enc_field(1, "net") + enc_field(100, enc_field(1, "c") + enc_field(2, "Convolution") + enc_field(7, blob))


@pytest.mark.parametrize("what", ["varints", "fixed64", "ragged packed"])
def test_blob_values_of_the_wrong_wire_type_refused(tmp_path, what):
    """BlobProto.data is a float: Caffe's protobuf keeps a varint (or 8-byte) occurrence as an unknown field and
    sees no values, while these were read as the floats 7 and 8 (or as doubles, or a packed run of 6 bytes
    failed only when read)."""
    import struct

    from netdsl.weights.protobuf import enc_field, enc_varint
    fields = {"varints": enc_field(5, 7) + enc_field(5, 8),
              "fixed64": b"".join(enc_varint(5 << 3 | 1) + struct.pack("<d", v) for v in (7, 8)),
              "ragged packed": enc_field(5, bytes(6)) + enc_field(5, bytes(2))}[what]
    p = tmp_path / "m.caffemodel"
    p.write_bytes(_blob_layer(fields))
    with pytest.raises(WeightError, match=f"{p}.*(wire type|not whole 4-byte values)"):
        with open_checkpoint(p, format="caffe") as c:
            [c.read(n) for n in c.names()]


def test_blob_values_packed_in_several_runs_still_read(tmp_path):
    from netdsl.weights.protobuf import enc_field
    p = tmp_path / "m.caffemodel"
    p.write_bytes(_blob_layer(enc_field(5, np.float32([1.5]).tobytes()), enc_field(5, np.float32([-2]).tobytes())))
    with open_checkpoint(p, format="caffe") as c:
        np.testing.assert_array_equal(c.read("c.weight").ravel(), [1.5, -2])


@pytest.mark.parametrize("extra", [(999, 5), (1000, b"xyz"), (9, 1)])
def test_unknown_field_after_the_name(tmp_path, extra):
    """A NetParameter with a field caffe.proto lacks right after its name (a fork's, a newer caffe's) was an
    'unrecognised checkpoint format'; protobuf skips unknown fields, and so does the reader."""
    from netdsl.weights.protobuf import enc_field
    w, b = np.arange(12.0).reshape(3, 4), np.array([1.0, -2.0, 0.5])
    raw = encode_caffemodel([("fc", "InnerProduct", [w, b])], name="net")
    n = len(enc_field(1, "net"))
    for name in ("m.caffemodel", "m.bin"):
        p = tmp_path / name
        p.write_bytes(raw[:n] + enc_field(*extra) + raw[n:])
        with open_checkpoint(p) as c:
            assert c.format == "caffe"
            np.testing.assert_array_equal(c.read("fc.weight"), w)
            np.testing.assert_array_equal(c.read("fc.bias"), b)
