"""safetensors: our parser vs files written by the safetensors package (numpy and torch), sharded, dtypes."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from netdsl.errors import WeightError
from netdsl.weights import detect_format, open_checkpoint
from netdsl.weights.base import shares_file_pages
from netdsl.weights.safetensors import save_file as our_save

st_numpy = pytest.importorskip("safetensors.numpy", reason="safetensors.numpy not installed")


def test_numpy_written(tmp_path, rng):
    t = {"a": rng.standard_normal((3, 4)).astype(np.float32), "b": rng.integers(0, 9, (5,)).astype(np.int64),
         "c": rng.standard_normal((2, 2)).astype(np.float16), "d": np.array(3.0), "e": np.zeros((0, 3), np.float32)}
    p = tmp_path / "x.safetensors"
    st_numpy.save_file(t, str(p))
    assert detect_format(str(p)) == "safetensors"
    with open_checkpoint(p) as c:
        assert set(c.names()) == set(t)
        for k, v in t.items():
            got = c.read(k)
            assert got.dtype == v.dtype and got.shape == v.shape
            np.testing.assert_array_equal(got, v)
        a = c.read("a")
        assert not a.flags.owndata and shares_file_pages(a)  # memory-mapped, zero copy
        before = p.read_bytes()
        a[...] = 123  # copy-on-write: the array changes, the file (and a new read) do not
        assert p.read_bytes() == before
        np.testing.assert_array_equal(c.read("a"), t["a"])


def test_torch_written_bf16_f8(tmp_path):
    torch = pytest.importorskip("torch", reason="torch not installed")
    import safetensors.torch as st
    t = {"bf": torch.randn(4, 5).bfloat16(), "e4": torch.randn(7).to(torch.float8_e4m3fn),
         "e5": torch.randn(7).to(torch.float8_e5m2), "h": torch.randn(3).half()}
    p = tmp_path / "t.safetensors"
    st.save_file(t, str(p))
    with open_checkpoint(p) as c:
        for k, v in t.items():
            got = c.read(k)
            np.testing.assert_array_equal(got, v.float().numpy() if k != "h" else v.numpy(), err_msg=k)
        assert c.info("bf").stored == "bfloat16" and c.info("bf").dtype == "float32"


def test_sharded(tmp_path, rng):
    t1 = {"l1.w": rng.standard_normal((4, 4)).astype(np.float32)}
    t2 = {"l2.w": rng.standard_normal((2, 4)).astype(np.float32), "l2.b": np.ones(2, np.float32)}
    st_numpy.save_file(t1, str(tmp_path / "model-00001-of-00002.safetensors"))
    st_numpy.save_file(t2, str(tmp_path / "model-00002-of-00002.safetensors"))
    wm = {k: "model-00001-of-00002.safetensors" for k in t1} | {k: "model-00002-of-00002.safetensors" for k in t2}
    idx = tmp_path / "model.safetensors.index.json"
    idx.write_text(json.dumps({"metadata": {"total_size": 0}, "weight_map": wm}))
    for src in (idx, tmp_path):
        with open_checkpoint(src) as c:
            assert c.format == "safetensors"
            assert set(c.names()) == set(wm)
            np.testing.assert_array_equal(c.read("l2.w"), t2["l2.w"])
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(WeightError, match="missing"):
        open_checkpoint(idx)
    idx.write_text(json.dumps({"weight_map": {"x": "../../etc/passwd"}}))
    with pytest.raises(WeightError, match="shard .*not a file beside the checkpoint"):
        open_checkpoint(idx)


def test_our_writer_readable_by_safetensors(tmp_path, rng):
    t = {"w": rng.standard_normal((3, 3)).astype(np.float32)}
    our_save(t, str(tmp_path / "o.safetensors"))
    np.testing.assert_array_equal(st_numpy.load_file(str(tmp_path / "o.safetensors"))["w"], t["w"])


def test_corrupt_headers(tmp_path, rng):
    p = tmp_path / "x.safetensors"
    st_numpy.save_file({"a": rng.standard_normal(10).astype(np.float32)}, str(p))
    data = p.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    hdr = json.loads(data[8:8 + n])
    cases = {
        "truncated": data[:-4],
        "huge header": struct.pack("<Q", 1 << 60) + data[8:],
        "bad json": data[:8] + b"{" + b"x" * (n - 1) + data[8 + n:],
    }
    bad = dict(hdr)
    bad["a"] = dict(hdr["a"], data_offsets=[0, 400])
    h = json.dumps(bad).encode()
    cases["offsets past end"] = struct.pack("<Q", len(h)) + h + data[8 + n:]
    bad["a"] = dict(hdr["a"], dtype="X9")
    h = json.dumps(bad).encode()
    cases["bad dtype"] = struct.pack("<Q", len(h)) + h + data[8 + n:]
    for what, blob in cases.items():
        q = tmp_path / "bad.safetensors"
        q.write_bytes(blob)
        with pytest.raises(WeightError) as ei:
            with open_checkpoint(q, format="safetensors") as c:
                for k in c.names():
                    c.read(k)
        assert str(q) in str(ei.value), what


def test_header_with_a_huge_rank_refused_before_multiplying(tmp_path):
    """150000 dims of 2**60 (3 MB of header): their product took over a minute to compute."""
    from tests.limited import read_checkpoint
    h = json.dumps({"w": {"dtype": "F32", "shape": [2**60] * 150_000, "data_offsets": [0, 0]}}).encode()
    p = tmp_path / "m.safetensors"
    p.write_bytes(struct.pack("<Q", len(h)) + h)
    got = read_checkpoint(p, "safetensors", timeout=20)
    assert got.outcome == "error" and str(p) in got.message and "rank 150000" in got.message, got


def test_header_naming_a_tensor_twice_refused(tmp_path):
    """Python's json kept the last entry; the safetensors library refuses the file: which tensor is meant?"""
    h = (b'{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}, '
         b'"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}')
    p = tmp_path / "m.safetensors"
    p.write_bytes(struct.pack("<Q", len(h)) + h + bytes(16))
    with pytest.raises(WeightError, match=f"{p}: header is not valid JSON: it names 'a' twice"):
        open_checkpoint(p)


def test_torch_written_complex64(tmp_path):
    """safetensors writes torch.complex64 as 'C64': it was refused as a 'malformed header entry'."""
    torch = pytest.importorskip("torch", reason="torch not installed")
    import safetensors.torch as st
    t = torch.randn(3, 2, dtype=torch.complex64)
    p = tmp_path / "c.safetensors"
    st.save_file({"c": t, "r": torch.randn(2)}, str(p))
    with open_checkpoint(p) as c:
        got = c.read("c")
        assert got.dtype == np.complex64
        np.testing.assert_array_equal(got, t.numpy())


def _header_file(tmp_path, hdr, data=b"", n=None):
    h = json.dumps(hdr).encode()
    p = tmp_path / "m.safetensors"
    p.write_bytes(struct.pack("<Q", len(h) if n is None else n) + h + data)
    return p


def test_unsupported_dtype_named(tmp_path):
    p = _header_file(tmp_path, {"w": {"dtype": "F8_E8M0", "shape": [3], "data_offsets": [0, 3]}}, bytes(3))
    with pytest.raises(WeightError, match="tensor 'w'.*dtype 'F8_E8M0' is not supported"):
        open_checkpoint(p)


def test_header_longer_than_the_file_reported_as_truncated(tmp_path):
    """Detection wanted the whole header inside the file: a truncated file was an 'unrecognised format'."""
    p = _header_file(tmp_path, {"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}}, bytes(12), n=10 ** 6)
    with pytest.raises(WeightError, match="header length 1000000 exceeds the file"):
        open_checkpoint(p)


def test_empty_shape_too_large_for_numpy_refused_when_opened(tmp_path):
    """[0, 2**62, 2**62] holds no bytes, but NumPy cannot make an array of that shape: reading failed later
    with NumPy's own 'array is too big'; the listing showed it as a tensor."""
    p = _header_file(tmp_path, {"w": {"dtype": "F32", "shape": [0, 2 ** 62, 2 ** 62], "data_offsets": [0, 0]}})
    with pytest.raises(WeightError, match="tensor 'w'.*too large for any array"):
        open_checkpoint(p)


def _raw_safetensors(path, entries, data_len):
    """A safetensors file of float32 tensors at the given data_offsets (``entries``: name -> (shape, b, e))."""
    hdr = json.dumps({k: {"dtype": "F32", "shape": list(s), "data_offsets": [b, e]}
                      for k, (s, b, e) in entries.items()}).encode()
    hdr += b" " * (-len(hdr) % 8)
    path.write_bytes(struct.pack("<Q", len(hdr)) + hdr + np.arange(data_len // 4, dtype="<f4").tobytes())


@pytest.mark.parametrize("case", ["gap", "gap_first", "trailing", "tiled"])
def test_gaps_between_tensors_refused_as_the_library_does(tmp_path, case):
    """Gaps between tensors' data (or bytes after the last) were accepted; the safetensors library refuses
    such files. Each file is checked against the library itself."""
    entries, n = {"gap": ({"a": ((4,), 0, 16), "b": ((4,), 24, 40)}, 40),
                  "gap_first": ({"a": ((4,), 8, 24)}, 24),
                  "trailing": ({"a": ((4,), 0, 16), "b": ((2,), 16, 24)}, 32),
                  "tiled": ({"b": ((4,), 16, 32), "e": ((0,), 16, 16), "a": ((4,), 0, 16)}, 32)}[case]
    p = tmp_path / "m.safetensors"
    _raw_safetensors(p, entries, n)
    if case == "tiled":
        ref = st_numpy.load_file(str(p))
        with open_checkpoint(p) as c:
            for k, v in ref.items():
                np.testing.assert_array_equal(c.read(k), v)
        return
    with pytest.raises(Exception):
        st_numpy.load_file(str(p))
    with pytest.raises(WeightError, match=f"^{p}: .*(leave a gap|bytes follow the last tensor)"):
        open_checkpoint(p)


def test_errors_name_the_file_once(tmp_path):
    """Errors of a file (alone, or a shard of a directory) read 'x: x: ...'."""
    p = tmp_path / "a.safetensors"
    p.write_bytes(b"\x05")
    for path in (p, tmp_path):
        with pytest.raises(WeightError) as e:
            open_checkpoint(path, format="safetensors")
        assert str(e.value).count(str(p)) == 1 and str(e.value).startswith(f"{p}: truncated header"), str(e.value)
    _raw_safetensors(p, {"a": ((4,), 0, 20)}, 20)
    with pytest.raises(WeightError) as e:
        open_checkpoint(p)
    assert str(e.value).startswith(f"{p}, tensor 'a': data_offsets") and str(e.value).count(str(p)) == 1
