"""A minimal, bounds-checked protobuf wire-format reader (for Caffe and ONNX files, without their packages).

Works on any buffer (bytes or an ``mmap``); length-delimited fields are returned as (start, end)
offsets so large payloads are never copied. Every length is checked against its enclosing message.
"""
from __future__ import annotations

import struct
from typing import Any, Iterator

import numpy as np

VARINT, FIXED64, LEN, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5


class ProtoError(ValueError):
    """Malformed protobuf data (message says where)."""


def read_varint(buf: Any, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    for _ in range(10):
        if pos >= end:
            raise ProtoError(f"truncated varint at byte {pos}")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
    raise ProtoError(f"varint longer than 10 bytes at byte {pos}")


def fields(buf: Any, start: int, end: int) -> Iterator[tuple[int, int, Any]]:
    """Yield (field number, wire type, value): int for varint/fixed, (start, end) for length-delimited."""
    pos = start
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        fno, wt = key >> 3, key & 7
        if fno == 0:
            raise ProtoError(f"field number 0 at byte {pos}")
        if wt == VARINT:
            v, pos = read_varint(buf, pos, end)
            yield fno, wt, v
        elif wt == LEN:
            n, pos = read_varint(buf, pos, end)
            if n > end - pos:
                raise ProtoError(f"field {fno}: length {n} at byte {pos} runs past its message (ends at {end})")
            yield fno, wt, (pos, pos + n)
            pos += n
        elif wt == FIXED32:
            if pos + 4 > end:
                raise ProtoError(f"truncated fixed32 at byte {pos}")
            yield fno, wt, bytes(buf[pos:pos + 4])
            pos += 4
        elif wt == FIXED64:
            if pos + 8 > end:
                raise ProtoError(f"truncated fixed64 at byte {pos}")
            yield fno, wt, bytes(buf[pos:pos + 8])
            pos += 8
        else:
            raise ProtoError(f"unsupported wire type {wt} (field {fno}) at byte {pos}")


def string(buf: Any, span: tuple) -> str:
    return bytes(buf[span[0]:span[1]]).decode("utf8", errors="replace")


def packed_varints(buf: Any, span: tuple, limit: int = 1 << 20) -> list[int]:
    out = []
    pos, end = span
    while pos < end:
        v, pos = read_varint(buf, pos, end)
        out.append(v)
        if len(out) > limit:
            raise ProtoError("too many packed values")
    return out


def signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def fixed_float(raw: bytes) -> float:
    return struct.unpack("<f", raw)[0]


def _span(buf: Any, v: tuple) -> np.ndarray:
    return np.frombuffer(buf, np.uint8, count=v[1] - v[0], offset=v[0])


def decode_varints(raw: np.ndarray) -> np.ndarray:
    """Packed varints (uint8 array) -> int64 values (two's complement, as protobuf's int64 fields), vectorized."""
    if raw.size == 0:
        return np.zeros(0, np.int64)
    ends = np.flatnonzero(raw < 0x80)
    if ends.size == 0 or ends[-1] != raw.size - 1:
        raise ProtoError("truncated packed varint")
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lens = ends - starts + 1
    if lens.max() > 10:
        raise ProtoError("varint longer than 10 bytes")
    out = np.zeros(ends.size, np.uint64)
    for k in range(int(lens.max())):
        sel = np.flatnonzero(lens > k)
        out[sel] |= (raw[starts[sel] + k].astype(np.uint64) & np.uint64(0x7F)) << np.uint64(7 * k)
    return out.view(np.int64)


_SCALAR_WIRE = {4: FIXED32, 8: FIXED64, 0: VARINT}


def _check_wire(items: list, item_bytes: int) -> None:
    """Every occurrence of a repeated numeric field has its type's wire type (or is packed, with whole values):
    protobuf's own parsers keep a value of another wire type as an unknown field, so the engine reading the
    file would not see it."""
    want = _SCALAR_WIRE[item_bytes]
    for wt, v in items:
        if wt == LEN:
            if item_bytes and (v[1] - v[0]) % item_bytes:
                raise ProtoError(f"packed field of {v[1] - v[0]} bytes at byte {v[0]}: not whole {item_bytes}-byte "
                                 "values")
        elif wt != want:
            raise ProtoError(f"a numeric field holds wire type {wt} where {want} is its type's")


def count_values(buf: Any, items: list, item_bytes: int) -> int:
    """How many values the (wire type, value) occurrences of a repeated field hold, without decoding them:
    ``item_bytes`` 4/8 for fixed-size fields, 0 for varints (counted by their last bytes)."""
    _check_wire(items, item_bytes)
    n = 0
    for wt, v in items:
        if wt != LEN:
            n += 1
        elif item_bytes:
            n += (v[1] - v[0]) // item_bytes
        else:
            n += int(np.count_nonzero(_span(buf, v) < 0x80))
    return n


def collect_repeated(buf: Any, items: list, dtype: str) -> np.ndarray:
    """Values of a repeated numeric field from its (wire type, value) occurrences (packed or not)."""
    _check_wire(items, {"float32": 4, "float64": 8}.get(dtype, 0))
    parts: list = []
    for wt, v in items:
        if wt == LEN:
            if dtype in ("float32", "float64"):
                parts.append(_span(buf, v).view("<f4" if dtype == "float32" else "<f8"))
            else:
                parts.append(decode_varints(_span(buf, v)))
        elif wt == FIXED32:
            parts.append(np.frombuffer(v, "<f4"))
        elif wt == FIXED64:
            parts.append(np.frombuffer(v, "<f8"))
        else:
            parts.append(np.array([signed64(v)], np.int64))
    if not parts:
        return np.zeros(0, dtype)
    return np.concatenate(parts).astype(dtype, copy=False)


# ---- writer (for tests, fixtures and fuzzing) ----------------------------------------------------
def enc_varint(v: int) -> bytes:
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def enc_field(fno: int, value: Any) -> bytes:
    """Encode one field: int -> varint, bytes/str -> length-delimited, float -> fixed32."""
    if isinstance(value, bool) or isinstance(value, int):
        return enc_varint(fno << 3 | VARINT) + enc_varint(int(value))
    if isinstance(value, float):
        return enc_varint(fno << 3 | FIXED32) + struct.pack("<f", value)
    if isinstance(value, str):
        value = value.encode()
    return enc_varint(fno << 3 | LEN) + enc_varint(len(value)) + bytes(value)
