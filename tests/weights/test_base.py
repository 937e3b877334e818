"""Format detection from content (not the extension) and the Checkpoint interface."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from netdsl.errors import WeightError
from netdsl.weights import Checkpoint, detect_format, formats, open_checkpoint
from netdsl.weights.caffe import encode_caffemodel
from netdsl.weights.safetensors import save_file


def _files(tmp_path, rng):
    a = rng.standard_normal((2, 3)).astype(np.float32)
    out = {}
    np.savez(tmp_path / "a", w=a)
    out["npz"] = tmp_path / "a.npz"
    save_file({"w": a}, str(tmp_path / "a.st"))
    out["safetensors"] = tmp_path / "a.st"
    (tmp_path / "a.cm").write_bytes(encode_caffemodel([("w", "InnerProduct", [a])]))
    out["caffe"] = tmp_path / "a.cm"
    (tmp_path / "a.txt").write_text("1\nw 6 " + " ".join(struct.pack(">f", float(v)).hex() for v in a.ravel()) + "\n")
    out["wts"] = tmp_path / "a.txt"
    import h5py
    with h5py.File(tmp_path / "a.dat", "w") as f:
        f["w"] = a
    out["hdf5"] = tmp_path / "a.dat"
    return out


def test_detect_by_content_with_misleading_extension(tmp_path, rng):
    for fmt, p in _files(tmp_path, rng).items():
        q = p.with_suffix(".pt")  # a lying extension
        p.rename(q)
        assert detect_format(str(q)) == fmt
        with open_checkpoint(q) as c:
            assert isinstance(c, Checkpoint) and c.format == fmt
            assert "w" in c.names() or "w.weight" in c.names()


def test_all_formats_registered():
    assert {"npz", "safetensors", "pytorch", "hdf5", "onnx", "caffe", "darknet", "wts"} <= set(formats())


def test_errors(tmp_path):
    with pytest.raises(WeightError, match="not found"):
        open_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(WeightError, match="empty"):
        open_checkpoint(tmp_path / "empty.bin")
    (tmp_path / "junk.bin").write_bytes(b"\xff\xfe garbage " * 10)
    with pytest.raises(WeightError, match="unrecognised"):
        open_checkpoint(tmp_path / "junk.bin")
    with pytest.raises(WeightError, match="unknown checkpoint format"):
        open_checkpoint(tmp_path / "junk.bin", format="nope")


def test_interface(tmp_path, rng):
    np.savez(tmp_path / "a.npz", w=np.ones((2, 2), np.float32))
    c = open_checkpoint(tmp_path / "a.npz")
    assert len(c) == 1 and "w" in c and list(c) == ["w"]
    info = c.info("w")
    assert info.shape == (2, 2) and info.dtype == "float32" and info.nbytes == 16
    with pytest.raises(WeightError, match="no tensor named 'x'"):
        c.info("x")
    c.close()
    with pytest.raises(WeightError, match="closed"):
        c.read("w")


# ---- optional integrity: sha256= ------------------------------------------------------------------------
def test_sha256(tmp_path, rng):
    import hashlib

    from netdsl import Network
    from netdsl.weights import load_weights
    a = rng.standard_normal((3, 4)).astype(np.float32)
    p = tmp_path / "w.npz"
    np.savez(p, w=a)
    digest = hashlib.sha256(p.read_bytes()).hexdigest()
    with open_checkpoint(p, sha256=digest.upper()) as c:
        np.testing.assert_array_equal(c.read("w"), a)
    with pytest.raises(WeightError, match=f"{p}: SHA-256 is {digest}, expected 0+"):
        open_checkpoint(p, sha256="0" * 64)
    with pytest.raises(WeightError, match="64 hex digits"):
        open_checkpoint(p, sha256="abc")
    with pytest.raises(WeightError, match="single checkpoint file"):
        open_checkpoint(tmp_path, sha256=digest)
    net = Network("n")
    net.output(net.parameter("w", (3, 4)) * 1.0, "y")
    with pytest.raises(WeightError, match="SHA-256"):
        load_weights(net, p, sha256="1" * 64)
    assert load_weights(net, p, sha256=digest).ok


def test_sha256_command_line(tmp_path, rng, capsys):
    import hashlib

    from netdsl.cli import main
    p = tmp_path / "w.npz"
    np.savez(p, w=rng.standard_normal(3))
    digest = hashlib.sha256(p.read_bytes()).hexdigest()
    assert main(["weights", str(p), "--sha256", digest]) == 0
    assert main(["weights", str(p), "--sha256", "f" * 64]) == 2
    assert "SHA-256" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["conv\x1b[2J.weight", "fc.weight\nfc.bias  (3,)  float32", "x\u202etxt.exe",
                                  "w\x9b31m"])
def test_names_with_control_characters_refused(tmp_path, name):
    """Names reach the terminal (listings, reports, errors): an escape sequence cleared or recoloured it, a
    newline faked a line of the listing, a right-to-left override showed the name reordered."""
    p = tmp_path / "a.npz"
    np.savez(p, **{name: np.ones(3, np.float32), "ok": np.ones(2, np.float32)})
    with pytest.raises(WeightError, match=f"{p}: tensor name .* holds control characters") as e:
        open_checkpoint(p)
    assert name not in str(e.value) and "\x1b" not in str(e.value)
