"""Which other files a checkpoint may read: symlink escapes refused, Hugging Face cache layouts loaded."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from netdsl.errors import WeightError
from netdsl.weights import open_checkpoint
from netdsl.weights.safetensors import save_file

onnx = pytest.importorskip("onnx", reason="onnx not installed")
from onnx import helper, numpy_helper  # noqa: E402

SECRET = np.frombuffer(b"TOP-SECRET-BYTES" * 4, "<f4")  # 16 float32 values


@pytest.fixture
def outside(tmp_path):
    d = tmp_path / "elsewhere"
    d.mkdir()
    (d / "secret.bin").write_bytes(SECRET.tobytes())
    save_file({"w": SECRET.copy()}, str(d / "other.safetensors"))
    return d


def _onnx_external(d, location, values):
    """A model whose initializer W (16 float32) lives in external file ``location``."""
    t = numpy_helper.from_array(values.astype(np.float32), "W")
    t.ClearField("raw_data")
    t.data_location = onnx.TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", str(values.nbytes))):
        e = t.external_data.add()
        e.key, e.value = k, v
    g = helper.make_graph([helper.make_node("Identity", ["W"], ["y"])], "g", [],
                          [helper.make_tensor_value_info("y", 1, [16])], initializer=[t])
    p = d / "model.onnx"
    p.write_bytes(helper.make_model(g).SerializeToString())
    return p


def test_onnx_external_data_symlink_escape(tmp_path, outside):
    d = tmp_path / "model"
    d.mkdir()
    os.symlink(outside / "secret.bin", d / "data.bin")  # a file "beside the model" that is a symlink out
    p = _onnx_external(d, "data.bin", SECRET)
    with pytest.raises(WeightError, match=f"{p}: external data file 'data.bin' resolves to .*secret.bin, outside"):
        open_checkpoint(p)
    os.symlink(outside, d / "sub")  # a directory symlink on the way
    p = _onnx_external(d, "sub/secret.bin", SECRET)
    with pytest.raises(WeightError, match="outside the checkpoint's directory"):
        open_checkpoint(p)


def test_onnx_external_data_special_files_refused(tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    os.mkfifo(d / "fifo.bin")  # opening a FIFO would block for ever
    p = _onnx_external(d, "fifo.bin", SECRET)
    with pytest.raises(WeightError, match="not a regular file"):
        open_checkpoint(p)


def test_onnx_external_data_inside_symlinks_ok(tmp_path, rng):
    d = tmp_path / "model"
    (d / "weights").mkdir(parents=True)
    vals = rng.standard_normal(16).astype(np.float32)
    (d / "weights" / "real.bin").write_bytes(vals.tobytes())
    os.symlink("weights/real.bin", d / "data.bin")  # a relative symlink that stays inside
    p = _onnx_external(d, "data.bin", vals)
    with open_checkpoint(p) as c:
        np.testing.assert_array_equal(c.read("W"), vals)


def _hf_cache(root, files):
    """A Hugging Face hub cache: snapshots/<rev>/<file> are relative symlinks to ../../blobs/<hash>."""
    repo = root / "models--org--name"
    snap = repo / "snapshots" / "0123abc"
    (repo / "blobs").mkdir(parents=True)
    for name, data in files.items():
        blob = repo / "blobs" / f"blob{abs(hash(name))}"
        blob.write_bytes(data)
        link = snap / name
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    return snap


def test_hugging_face_cache_layout_loads(tmp_path, rng):
    a, b = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    d = tmp_path / "tmp"
    d.mkdir()
    save_file({"a": a}, str(d / "s1"))
    save_file({"b": b}, str(d / "s2"))
    index = json.dumps({"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                                                       "b": "model-00002-of-00002.safetensors"}}).encode()
    snap = _hf_cache(tmp_path / "hub", {"model.safetensors.index.json": index,
                                        "model-00001-of-00002.safetensors": (d / "s1").read_bytes(),
                                        "model-00002-of-00002.safetensors": (d / "s2").read_bytes()})
    for path in (snap, snap / "model.safetensors.index.json"):
        with open_checkpoint(path) as c:
            np.testing.assert_array_equal(c.read("a"), a)
            np.testing.assert_array_equal(c.read("b"), b)
    # ONNX with external data in a subfolder of the snapshot, both files symlinked into blobs/
    vals = rng.standard_normal(16).astype(np.float32)
    tmp_model = tmp_path / "m"
    tmp_model.mkdir()
    p = _onnx_external(tmp_model, "model.onnx_data", vals)
    snap2 = _hf_cache(tmp_path / "hub2", {"onnx/model.onnx": p.read_bytes(), "onnx/model.onnx_data": vals.tobytes()})
    with open_checkpoint(snap2 / "onnx" / "model.onnx") as c:
        np.testing.assert_array_equal(c.read("W"), vals)
    # a directory of *.safetensors without an index, symlinked into blobs/
    snap3 = _hf_cache(tmp_path / "hub3", {"model.safetensors": (d / "s1").read_bytes()})
    with open_checkpoint(snap3) as c:
        np.testing.assert_array_equal(c.read("a"), a)


def test_hugging_face_cache_escape_refused(tmp_path, outside):
    snap = _hf_cache(tmp_path / "hub", {"config.json": b"{}"})
    index = json.dumps({"weight_map": {"w": "model.safetensors"}}).encode()
    (snap / "model.safetensors.index.json").write_bytes(index)
    os.symlink(outside / "other.safetensors", snap / "model.safetensors")
    for path in (snap, snap / "model.safetensors.index.json"):
        with pytest.raises(WeightError, match="shard 'model.safetensors' resolves to .*other.safetensors, outside"):
            open_checkpoint(path)


def test_safetensors_shard_symlinks_refused(tmp_path, outside):
    d = tmp_path / "ck"
    d.mkdir()
    os.symlink(outside / "other.safetensors", d / "model-00001.safetensors")
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "model-00001.safetensors"}}))
    with pytest.raises(WeightError, match="outside the checkpoint's directory"):
        open_checkpoint(d / "model.safetensors.index.json")
    os.remove(d / "model.safetensors.index.json")  # a plain directory of *.safetensors: same rule
    with pytest.raises(WeightError, match="outside the checkpoint's directory"):
        open_checkpoint(d)
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "/etc/passwd"}}))
    with pytest.raises(WeightError, match="not a file beside the checkpoint"):
        open_checkpoint(d)


def test_special_files_and_cfg_symlinks(tmp_path, outside):
    """A checkpoint that is a FIFO (or links to a device) would block; a Darknet .cfg found beside the
    weights that links elsewhere would show that file's lines in errors."""
    fifo = tmp_path / "m.safetensors"
    os.mkfifo(fifo)
    for fmt in (None, "safetensors"):
        with pytest.raises(WeightError, match="not a regular file"):
            open_checkpoint(fifo, format=fmt)
    d = tmp_path / "dk"
    d.mkdir()
    (d / "yolo.weights").write_bytes(b"\0" * 20)
    os.symlink(outside / "secret.bin", d / "yolo.cfg")
    with pytest.raises(WeightError, match="yolo.cfg' resolves to .*secret.bin, outside"):
        open_checkpoint(d / "yolo.weights", format="darknet")


def test_hub_shaped_tree_with_linked_blobs_refused(tmp_path, outside):
    """A tree shaped like a hub cache whose blobs/ is a symlink (to / or anywhere) opens nothing outside."""
    repo = tmp_path / "hub" / "models--org--name"
    snap = repo / "snapshots" / "0123abc"
    snap.mkdir(parents=True)
    os.symlink(outside, repo / "blobs")
    os.symlink("../../blobs/other.safetensors", snap / "model.safetensors")
    with pytest.raises(WeightError, match="outside the checkpoint's directory"):
        open_checkpoint(snap)
    (snap / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "model.safetensors"}}))
    with pytest.raises(WeightError, match="other.safetensors, outside"):
        open_checkpoint(snap / "model.safetensors.index.json")
