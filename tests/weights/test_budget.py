"""The memory budget: declared sizes checked against the file before anything is allocated."""
from __future__ import annotations

import struct
import zipfile

import numpy as np
import pytest

from netdsl.errors import WeightError
from netdsl.weights import open_checkpoint
from netdsl.weights.budget import MIN_BUDGET, RATIO, Budget
from netdsl.weights.protobuf import enc_field, enc_varint


def test_budget_limits():
    b = Budget()
    b.add_input(1000)
    assert b.limit == MIN_BUDGET
    b.add_input(MIN_BUDGET)
    assert b.limit == RATIO * (MIN_BUDGET + 1000)
    b = Budget(100)
    b.charge(60, "x", "f")
    with pytest.raises(WeightError, match="f: y would make the reader allocate 50 bytes, 60 already taken.*100"):
        b.charge(50, "y", "f")
    with pytest.raises(WeightError, match="memory_budget"):
        Budget(-1)


def _npy(shape, dtype="<f4", data=b""):
    hdr = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    hdr += b" " * (-(10 + len(hdr) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr + data


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_npz_header_larger_than_member(tmp_path, method):
    """A member whose .npy header declares 10^12 elements: refused at open, nothing allocated."""
    p = tmp_path / "bomb.npz"
    with zipfile.ZipFile(p, "w", method) as z:
        z.writestr("w.npy", _npy((10**6, 10**6), data=b"\0" * 64))
    with pytest.raises(WeightError, match=f"{p}, tensor 'w': member holds .* header declares"):
        open_checkpoint(p)


def test_npz_compressed_total_budget(tmp_path):
    """10 deflated members of 32 MiB of zeros (32 KiB each in the file): 640 MiB to read, refused."""
    p = tmp_path / "zeros.npz"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as z:
        blob = _npy((8 << 20,), data=b"\0" * (32 << 20))
        for i in range(10):
            z.writestr(f"w{i}.npy", blob)
    with pytest.raises(WeightError, match=f"{p}.*budget"):
        open_checkpoint(p)
    with open_checkpoint(p, memory_budget=4 << 30) as c:  # the caller may allow more
        assert c.read("w3").shape == (8 << 20,)


def _onnx_varint_tensor(dims, payload):
    """A ModelProto whose one initializer (int64) carries ``payload`` as packed int64_data (field 7)."""
    t = b"".join(enc_field(1, d) for d in dims) + enc_field(2, 7) + enc_field(8, "W") + \
        enc_varint(7 << 3 | 2) + enc_varint(len(payload)) + payload
    graph = enc_field(5, t) + enc_field(2, "g")
    return enc_field(1, 8) + enc_field(7, graph)


def test_onnx_varint_count_checked_at_open(tmp_path):
    p = tmp_path / "m.onnx"
    p.write_bytes(_onnx_varint_tensor([10**9], b"\x01" * 1000))  # dims say 10^9 values, the field has 1000
    with pytest.raises(WeightError, match=f"{p}, tensor 'W': tensor has 1000 values, dims \\[1000000000\\] need"):
        open_checkpoint(p, format="onnx")
    vals = np.array([0, 1, -1, 300, 2**40, -2**63], np.int64)
    p.write_bytes(_onnx_varint_tensor([6], b"".join(enc_varint(int(v)) for v in vals)))
    with open_checkpoint(p, format="onnx") as c:
        np.testing.assert_array_equal(c.read("W"), vals)


def test_safetensors_widening_charged(tmp_path):
    """bfloat16 -> float32 allocates: charged against the budget before reading."""
    import json
    n = 1 << 20
    hdr = json.dumps({"w": {"dtype": "BF16", "shape": [n], "data_offsets": [0, 2 * n]}}).encode()
    p = tmp_path / "bf.safetensors"
    p.write_bytes(struct.pack("<Q", len(hdr)) + hdr + b"\0" * (2 * n))
    with pytest.raises(WeightError, match="budget"):
        open_checkpoint(p, memory_budget=4 * n)
    with open_checkpoint(p) as c:
        assert c.read("w").dtype == np.float32


def test_index_entries_are_charged(tmp_path):
    """'t1 0' lines of a .wts file: 5 bytes each in the file, 600 in the index; a 10 MB file took 670 MB
    without a charge."""
    p = tmp_path / "m.wts"
    n = 200_000
    p.write_text(f"{n}\n" + "".join(f"t{i} 0\n" for i in range(n)))
    with pytest.raises(WeightError, match="the index of its tensors .* over the budget"):
        open_checkpoint(p, memory_budget=32 << 20)
    with open_checkpoint(p, memory_budget=256 << 20) as c:
        assert len(c) == n
