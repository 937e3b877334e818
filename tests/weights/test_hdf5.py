"""HDF5: generic files, Keras 2 / Keras 3 layouts (h5py-written and, if installed, real Keras), bf16."""
from __future__ import annotations

import os

import numpy as np
import pytest

from netdsl.errors import WeightError
from netdsl.weights import detect_format, open_checkpoint
from netdsl.weights.base import shares_file_pages

h5py = pytest.importorskip("h5py")


def test_generic(tmp_path, rng):
    p = tmp_path / "g.bin"  # content decides, not the extension
    a, b = rng.standard_normal((3, 4)).astype(np.float32), rng.integers(0, 5, (2, 2))
    with h5py.File(p, "w") as f:
        f["block/conv/kernel"] = a
        f.create_dataset("block/b", data=b, compression="gzip")
        f["names"] = np.array([b"x", b"y"])  # not a tensor: skipped
    assert detect_format(str(p)) == "hdf5"
    with open_checkpoint(p) as c:
        assert c.layout == "generic"
        assert set(c.names()) == {"block/conv/kernel", "block/b"}
        np.testing.assert_array_equal(c.read("block/conv/kernel"), a)
        assert shares_file_pages(c.read("block/conv/kernel"))  # memory-mapped
        np.testing.assert_array_equal(c.read("block/b"), b)


def _keras2(path, layers, split=False, full_model=True):
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if full_model else f
        names = [n.encode() for n, _ in layers]
        if split:
            root.attrs["layer_names0"] = names[: len(names) // 2]
            root.attrs["layer_names1"] = names[len(names) // 2:]
        else:
            root.attrs["layer_names"] = names
        for lname, ws in layers:
            g = root.create_group(lname)
            g.attrs["weight_names"] = [f"{lname}/{wn}:0".encode() for wn, _ in ws]
            for wn, arr in ws:
                g[f"{lname}/{wn}:0"] = arr


def test_keras2_layout_split_attrs(tmp_path, rng):
    layers = [("conv2d", [("kernel", rng.standard_normal((3, 3, 2, 4))), ("bias", rng.standard_normal(4))]),
              ("dense", [("kernel", rng.standard_normal((6, 3))), ("bias", rng.standard_normal(3))]),
              ("flatten", [])]
    for split in (False, True):
        for full in (False, True):
            p = tmp_path / f"k2_{split}_{full}.h5"
            _keras2(p, layers, split, full)
            with open_checkpoint(p) as c:
                assert c.layout == "keras2"
                assert c.names() == ["conv2d/kernel:0", "conv2d/bias:0", "dense/kernel:0", "dense/bias:0"]
                assert c.info("dense/bias:0").layer == "dense"
                np.testing.assert_array_equal(c.read("dense/kernel:0"), layers[1][1][0][1])


def test_keras3_layout_nested_and_bf16(tmp_path, rng):
    p = tmp_path / "m.weights.h5"
    k = rng.standard_normal((3, 3, 2, 4)).astype(np.float32)
    bf = (rng.standard_normal(4).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
    with h5py.File(p, "w") as f:
        v = f.create_group("layers/conv2d/vars")
        v.attrs["name"] = "c1"
        v["0"] = k
        ds = v.create_dataset("1", data=bf.view("V2"))
        ds.attrs["dtype"] = "bfloat16"
        f.create_group("layers/functional/layers/dense/vars")["0"] = np.ones((4, 2), np.float32)
        f.create_group("vars")
    with open_checkpoint(p) as c:
        assert c.layout == "keras3"
        assert c.names() == ["conv2d/vars/0", "conv2d/vars/1", "functional/dense/vars/0"]
        assert c.info("conv2d/vars/0").layer == "c1"
        assert c.info("conv2d/vars/1").stored == "bfloat16"
        np.testing.assert_array_equal(c.read("conv2d/vars/1"), (bf.astype(np.uint32) << 16).view(np.float32))


def test_truncated_hdf5(tmp_path, rng):
    p = tmp_path / "t.h5"
    with h5py.File(p, "w") as f:
        f["a"] = rng.standard_normal(5000)
    data = p.read_bytes()
    for cut in (100, 1000, len(data) // 2, len(data) - 100):
        q = tmp_path / "c.h5"
        q.write_bytes(data[:cut])
        with pytest.raises(WeightError, match=str(q)):
            with open_checkpoint(q) as c:
                [c.read(n) for n in c.names()]


# ---- real Keras files --------------------------------------------------------------------------
def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras", reason="keras not installed")


def test_real_keras_files(tmp_path):
    keras = _keras()
    L = keras.layers
    inp = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3, name="c1")(inp)
    x = L.BatchNormalization()(x)
    x = L.DepthwiseConv2D(3, depth_multiplier=2)(x)
    x = L.Flatten()(x)
    out = L.Dense(5)(x)
    m = keras.Model(inp, out)
    m.save(tmp_path / "m.h5")
    m.save_weights(tmp_path / "m.weights.h5")
    m.save(tmp_path / "m.keras")  # Keras 3's default: a zip archive holding model.weights.h5
    want = [w.shape for w in m.get_weights()]
    for f, layout in (("m.h5", "keras2"), ("m.weights.h5", "keras3"), ("m.keras", "keras3")):
        with open_checkpoint(tmp_path / f) as c:
            assert c.layout == layout
            assert [i.shape for i in c.infos()] == [tuple(s) for s in want]
            for i, w in zip(c.infos(), m.get_weights()):
                np.testing.assert_array_equal(c.read(i.name), w)


def test_keras_archive_compressed_member_and_not_an_archive(tmp_path):
    import zipfile
    keras = _keras()
    m = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
    m.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as src, \
            zipfile.ZipFile(tmp_path / "deflated.keras", "w", zipfile.ZIP_DEFLATED) as dst:
        for n in src.namelist():
            dst.writestr(n, src.read(n))
    with open_checkpoint(tmp_path / "deflated.keras") as c:
        for i, w in zip(c.infos(), m.get_weights()):
            np.testing.assert_array_equal(c.read(i.name), w)
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("config.json", "{}")
    with pytest.raises(WeightError, match="other.zip"):
        open_checkpoint(tmp_path / "other.zip")


def test_keras3_groups_linked_twice_walked_once(tmp_path):
    """40 groups each linking the next one twice (105 kB): the Keras 3 walk took 2^40 steps."""
    from tests.limited import read_checkpoint
    p = tmp_path / "m.weights.h5"
    with h5py.File(p, "w") as f:
        f.create_group("vars")
        gs = [f.create_group("layers/l0")] + [f.create_group(f"pool/g{i}") for i in range(1, 41)]
        for i, g in enumerate(gs):
            g.create_group("vars")["0"] = np.full(3, i, np.float32)
            if i < 40:
                g["a"] = g["b"] = gs[i + 1]
    got = read_checkpoint(p, "hdf5", timeout=30)
    assert got.outcome == "ok" and len(got.data["arrays"]) == 41, got
    assert sorted(v[0] for v in got.data["arrays"].values()) == list(range(41))


def test_probe_child_cannot_outlive_its_parent_for_long(tmp_path):
    """The forked HDF5 probe is killed by its parent at the timeout; when the parent itself was killed first
    it kept parsing (an endless parse spun on for ever). Its CPU time is now limited to about the timeout."""
    import signal
    import subprocess
    import sys
    import time

    from tests.limited import ROOT
    p = tmp_path / "many.h5"
    with h5py.File(p, "w", libver="latest") as f:
        for i in range(5000):
            f.create_dataset(f"g{i % 50}/d{i}", data=np.float32(i))
    code = "import sys; from netdsl.weights import open_checkpoint; open_checkpoint(sys.argv[1], sandbox_timeout=7)"
    parent = subprocess.Popen([sys.executable, "-c", code, str(p)], env={**os.environ, "PYTHONPATH": ROOT},
                              start_new_session=True)
    limits = None
    try:
        deadline = time.time() + 60
        # (read until the child has set its limit: right after the fork it still has the parent's)
        while parent.poll() is None and time.time() < deadline:
            try:
                kids = open(f"/proc/{parent.pid}/task/{parent.pid}/children").read().split()
                if kids:
                    limits = open(f"/proc/{kids[0]}/limits").read()
                    if next(x for x in limits.splitlines() if x.startswith("Max cpu time")).split()[3] != "unlimited":
                        break  # (the soft limit; the hard one stays)
            except OSError:
                pass
            time.sleep(0.01)
    finally:
        try:
            os.killpg(parent.pid, signal.SIGKILL)
        except ProcessLookupError:  # it ended (and its probe with it)
            pass
        parent.wait()
    assert limits is not None, "no probe child seen"
    cpu = next(line for line in limits.splitlines() if line.startswith("Max cpu time"))
    assert cpu.split()[3] == "9", cpu  # the soft limit: SIGXCPU after 9 s of CPU


@pytest.mark.parametrize("layout", ["keras2", "keras3"])
def test_keras_weight_that_is_not_numbers_refused(tmp_path, layout):
    """A weight Keras lists that holds strings was skipped: binding then only said it was missing."""
    p = tmp_path / "m.h5"
    with h5py.File(p, "w") as f:
        if layout == "keras2":
            f.attrs["layer_names"] = [b"dense"]
            g = f.create_group("dense")
            g.attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
            g["dense/kernel:0"], g["dense/bias:0"] = np.array([b"x", b"y"]), np.ones(2, np.float32)
        else:
            f.create_group("vars")
            v = f.create_group("layers/dense/vars")
            v["0"], v["1"] = np.array([b"x", b"y"]), np.ones(2, np.float32)
    with pytest.raises(WeightError, match=f"{p}, tensor '(dense/kernel:0|dense/vars/0)': weight .* holds |S1 data"):
        open_checkpoint(p)


def test_datasets_without_a_dataspace_skipped(tmp_path):
    """h5py.Empty: a dataset with a null dataspace failed the whole file with 'NoneType is not iterable'."""
    p = tmp_path / "m.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("empty", data=h5py.Empty("f4"))
        f["w"] = np.arange(3, dtype=np.float32)
    with open_checkpoint(p) as c:
        assert c.names() == ["w"]
