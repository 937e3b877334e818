"""NumPy .npz / .npy checkpoints: never unpickled; stored members are memory-mapped."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

from netdsl.errors import WeightError
from netdsl.weights import detect_format, open_checkpoint
from netdsl.weights.base import shares_file_pages


def test_npz_stored_and_compressed(tmp_path, rng):
    t = {"a": rng.standard_normal((3, 4)).astype(np.float32), "b/c": np.arange(5), "f": np.asfortranarray(
        rng.standard_normal((3, 2))), "be": np.arange(4, dtype=">f4")}
    for save, mapped in ((np.savez, True), (np.savez_compressed, False)):
        p = tmp_path / f"{save.__name__}.npz"
        save(p, **t)
        assert detect_format(str(p)) == "npz"
        with open_checkpoint(p) as c:
            assert set(c.names()) == set(t)
            for k, v in t.items():
                np.testing.assert_array_equal(c.read(k), v)
            assert shares_file_pages(c.read("a")) == mapped  # a private memory map


def test_npy(tmp_path):
    p = tmp_path / "w.npy"
    np.save(p, np.arange(6.0).reshape(2, 3))
    with open_checkpoint(p) as c:
        assert c.names() == ["w"]
        np.testing.assert_array_equal(c.read("w"), np.arange(6.0).reshape(2, 3))


def test_object_arrays_refused(tmp_path):
    p = tmp_path / "o.npz"
    np.savez(p, o=np.array([{"x": 1}], dtype=object))
    with pytest.raises(WeightError, match="pickle"):
        open_checkpoint(p)


def test_truncated(tmp_path, rng):
    p = tmp_path / "a.npz"
    np.savez(p, a=rng.standard_normal(1000))
    data = p.read_bytes()
    for cut in (10, 100, len(data) // 2, len(data) - 30):
        q = tmp_path / "t.npz"
        q.write_bytes(data[:cut])
        with pytest.raises(WeightError, match=str(q)):
            with open_checkpoint(q, format="npz") as c:
                [c.read(n) for n in c.names()]


def _npy_header(descr, shape):
    h = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode().ljust(118) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h


@pytest.mark.parametrize("descr", ["|S0", "<U0"])
@pytest.mark.parametrize("shape", [(10**12,), (2**62, 2**62)])
def test_zero_byte_dtypes_refused(tmp_path, descr, shape):
    """'S0' holds any shape in no bytes: NumPy then allocated (or refused with a ValueError) 10^12 elements."""
    from tests.limited import read_checkpoint
    p = tmp_path / "a.npy"
    p.write_bytes(_npy_header(descr, shape))
    z = tmp_path / "a.npz"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("w.npy", _npy_header(descr, shape))
    for path, fmt in ((p, "npy"), (z, "npz")):
        got = read_checkpoint(path, fmt, timeout=30)
        assert got.outcome == "error" and str(path) in got.message and "no bytes per element" in got.message, got


def test_compressed_big_endian_reads_native(tmp_path):
    """A deflated member of a big-endian array read as '>i4' while its index said int32 (a stored one is
    converted): a consumer handing the bytes to an engine would swap every value."""
    a = np.arange(-3, 5, dtype=">i4")
    for save in (np.savez, np.savez_compressed):
        p = tmp_path / f"{save.__name__}.npz"
        save(p, a=a, f=np.linspace(0, 1, 4, dtype=">f8"))
        with open_checkpoint(p) as c:
            for k, want in (("a", a), ("f", np.linspace(0, 1, 4))):
                got = c.read(k)
                assert got.dtype == np.dtype(c.info(k).dtype) and got.dtype.isnative, (save, k)
                np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("arr", [np.array(["ab", "cd"]), np.array([b"ab"]), np.array(["2020-01-01"], "M8[D]")],
                         ids=["text", "bytes", "dates"])
def test_non_numeric_arrays_refused(tmp_path, arr):
    p = tmp_path / "a.npz"
    np.savez(p, w=arr)
    with pytest.raises(WeightError, match=f"{p}.*is not numeric"):
        open_checkpoint(p)


@pytest.mark.parametrize("header,match", [({"fortran_order": "no"}, "fortran_order 'no'"),
                                          ({"shape": (True, 3)}, "bad shape")])
def test_npy_header_values_of_the_wrong_type(tmp_path, header, match):
    """NumPy refuses both; 'no' was taken as True (Fortran order), and (True, 3) failed only when read."""
    d = {"descr": "<f4", "fortran_order": False, "shape": (3,), **header}
    h = repr(d).encode().ljust(118) + b"\n"
    p = tmp_path / "a.npy"
    p.write_bytes(b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h + bytes(4 * 3))
    with pytest.raises(WeightError, match=match):
        open_checkpoint(p)
