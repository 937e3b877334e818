"""dtypes: canonical arrays (what every parameter's data is when it reaches a backend)."""
from __future__ import annotations

import numpy as np
import pytest

from netdsl.dtypes import canonical_array


@pytest.fixture
def rng():
    return np.random.default_rng(5)


def _ok(a: np.ndarray, dtype) -> bool:
    return a.dtype is np.dtype(dtype) and a.dtype.isnative and a.flags.c_contiguous and a.flags.aligned


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64, np.int32, np.int64])
def test_explicit_byte_orders_become_native(rng, dtype):
    v = (rng.standard_normal((3, 5)) * 100).astype(dtype)
    for bo in ("<", ">", "="):
        a = v.astype(v.dtype.newbyteorder(bo))
        out = canonical_array(a, dtype)
        assert _ok(out, dtype), bo
        np.testing.assert_array_equal(out, v)


def test_fortran_unaligned_and_strided(rng):
    v = rng.standard_normal((4, 6)).astype(np.float32)
    f = np.asfortranarray(v)
    un = np.frombuffer(b"\0" + v.tobytes(), np.float32, count=v.size, offset=1).reshape(v.shape)
    assert not un.flags.aligned
    for a in (f, un, v.T.copy().T, v[:, ::2]):
        out = canonical_array(a, np.float32)
        assert _ok(out, np.float32)
        np.testing.assert_array_equal(out, a)


def test_no_copy_when_already_canonical(tmp_path, rng):
    v = rng.standard_normal((8, 8)).astype(np.float32)
    p = tmp_path / "a.bin"
    v.tofile(p)
    mm = np.memmap(p, np.float32, "r", shape=v.shape).view(np.ndarray)
    out = canonical_array(mm, np.float32)
    assert np.shares_memory(out, mm) and _ok(out, np.float32)
    tagged = mm.view(np.dtype(np.float32).newbyteorder("<"))  # same bytes, explicit '<' dtype object
    out = canonical_array(tagged, np.float32)
    assert np.shares_memory(out, mm) and _ok(out, np.float32)


def test_converts_dtype_and_keeps_0d(rng):
    out = canonical_array(np.array(2.5, ">f8"), np.float32)
    assert out.shape == () and _ok(out, np.float32) and out == 2.5
    assert canonical_array(np.arange(3, dtype=">i8")).dtype is np.dtype(np.int64)
