"""ONNX models: initializers and Constant nodes as tensors, read with our own protobuf parser (no onnx package).

``raw_data`` and external data files are memory-mapped; typed fields (float_data ...) are decoded
when read. External data is read only from the model's own directories (:mod:`netdsl.weights.paths`:
symlinks resolved, so a ``data.bin`` linking outside is refused; Hugging Face caches load).
"""
from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ..errors import WeightError
from .base import FormatSpec, MappedCheckpoint, TensorInfo, describe, mmap_array, read_dtype, register_format
from .budget import heap_bytes
from .caffe import probe_fields
from .paths import allowed_roots, resolve_inside
from .protobuf import FIXED32, LEN, VARINT, collect_repeated, count_values, fields, packed_varints, signed64, string

# TensorProto.DataType -> stored dtype name
DATA_TYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 9: "bool",
              10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 14: "complex64", 15: "complex128",
              16: "bfloat16", 17: "float8_e4m3fn", 19: "float8_e5m2"}
_ITEM = {"bfloat16": 2, "float8_e4m3fn": 1, "float8_e5m2": 1}
# which typed field holds each dtype when raw_data is absent
_INT32_FIELD = {"int32", "int16", "int8", "uint16", "uint8", "bool", "float16", "bfloat16", "float8_e4m3fn",
                "float8_e5m2"}


def _itemsize(dt: str) -> int:
    return _ITEM.get(dt) or np.dtype(dt).itemsize


def _operand(info: TensorInfo) -> bool:
    """A Constant node that is a scalar or an integer tensor: an operand of the graph's arithmetic or shape
    computation (the 3 and 6 of a hard-swish, a Reshape's target shape, Slice bounds), not a weight.
    Exporters such as Paddle's make hundreds of them; they are not listed."""
    return info.extra.get("source") == "Constant" and (not info.shape or np.dtype(info.dtype).kind in "iub")


class OnnxCheckpoint(MappedCheckpoint):
    format = "onnx"

    def _open(self) -> None:
        self.map_file()
        self._where: dict[str, tuple] = {}
        self._dir = os.path.dirname(os.path.abspath(self.path))
        self._roots = allowed_roots(self.path)
        self._external: dict[str, int] = {}  # real path -> size, of the external data files read
        graph = None
        for fno, wt, v in fields(self._buf, 0, len(self._buf)):
            if fno == 7 and wt == LEN:
                graph = v
        if graph is None:
            raise self.error("ONNX model has no graph")
        self._graph(graph)
        for name in [n for n, i in self._infos.items() if _operand(i)]:
            del self._infos[name]

    def _graph(self, span: tuple) -> None:
        buf = self._buf
        for fno, wt, v in fields(buf, *span):
            if fno == 5 and wt == LEN:
                self._tensor(v, None, "initializer")
            elif fno == 1 and wt == LEN:
                self._node(v)

    def _node(self, span: tuple) -> None:
        buf = self._buf
        op, outputs, attrs = "", [], []
        for fno, wt, v in fields(buf, *span):
            if fno == 4 and wt == LEN:
                op = string(buf, v)
            elif fno == 2 and wt == LEN:
                outputs.append(string(buf, v))
            elif fno == 5 and wt == LEN:
                attrs.append(v)
        if op != "Constant" or not outputs:
            return
        for a in attrs:
            aname, t, floats, ints, f, i, kind = "", None, [], [], None, None, None
            for fno, wt, v in fields(buf, *a):
                if fno == 1 and wt == LEN:
                    aname = string(buf, v)
                elif fno == 5 and wt == LEN:
                    t = v
                elif fno == 2 and wt == FIXED32:
                    f = np.frombuffer(v, "<f4")[0]
                elif fno == 3 and wt == VARINT:
                    i = signed64(v)
                elif fno == 7:
                    floats.append((wt, v))
                elif fno == 8:
                    ints.append((wt, v))
            if aname == "value" and t is not None:
                self._tensor(t, outputs[0], "Constant")
            elif aname in ("value_float", "value_floats", "value_int", "value_ints"):
                if (aname == "value_float" and f is None) or (aname == "value_int" and i is None):
                    raise self.error(f"Constant node's {aname} attribute holds no value", outputs[0])
                if aname == "value_float":
                    arr = np.array(f, np.float32)
                elif aname == "value_int":
                    arr = np.array(i, np.int64)
                elif aname == "value_floats":
                    arr = collect_repeated(buf, floats, "float32")
                else:
                    arr = collect_repeated(buf, ints, "int64")
                self._where[outputs[0]] = ("array", arr, arr.dtype.name)
                self.add(TensorInfo(outputs[0], tuple(arr.shape), arr.dtype.name, extra={"source": "Constant"}))

    def _tensor(self, span: tuple, name: Any, source: str) -> None:
        buf = self._buf
        dims: list = []
        dtype_code = 0
        tname = ""
        raw = None
        typed: dict[int, list] = {}
        ext: dict[str, str] = {}
        location = 0
        for fno, wt, v in fields(buf, *span):
            if fno == 1:
                dims += [signed64(x) for x in packed_varints(buf, v, 64)] if wt == LEN else [signed64(v)]
            elif fno == 2 and wt == VARINT:
                dtype_code = v
            elif fno == 8 and wt == LEN:
                tname = string(buf, v)
            elif fno == 9 and wt == LEN:
                raw = v
            elif fno in (4, 5, 7, 10, 11):
                typed.setdefault(fno, []).append((wt, v))
            elif fno == 13 and wt == LEN:
                k = val = ""
                for f2, w2, v2 in fields(buf, *v):
                    if f2 == 1 and w2 == LEN:
                        k = string(buf, v2)
                    elif f2 == 2 and w2 == LEN:
                        val = string(buf, v2)
                ext[k] = val
            elif fno == 14 and wt == VARINT:
                location = v
        name = name or tname
        if not name:
            raise self.error("tensor without a name")
        if dtype_code not in DATA_TYPES:
            if dtype_code == 8:
                return  # string tensors are not weights
            raise self.error(f"unsupported tensor data type {dtype_code}", name)
        stored = DATA_TYPES[dtype_code]
        shape = tuple(dims)
        if len(shape) > 32 or any(d < 0 for d in shape):
            raise self.error(f"invalid dims {describe(shape)}", name)
        n = math.prod(shape)
        nbytes = n * _itemsize(stored)
        heap = heap_bytes(n, _itemsize(stored), stored)
        if location == 1 or ext:
            loc = ext.get("location", "")
            try:
                target = resolve_inside(self._dir, loc, self._roots, "external data file", self.path)
            except WeightError as e:
                raise WeightError(f"{e} (tensor {name!r})") from None
            if target not in self._external:
                self._external[target] = os.path.getsize(target)
                self.budget.add_input(self._external[target])
            off, length = (_ext_int(ext, k, d, self.path, name) for k, d in (("offset", 0), ("length", nbytes)))
            if length != nbytes or off < 0 or off + nbytes > self._external[target]:
                raise self.error(f"external data ({loc} offset {off} length {length}) does not hold "
                                 f"{nbytes} bytes for dims {list(shape)}", name)
            where: tuple = ("file", target, off)
        elif raw is not None:
            if raw[1] - raw[0] != nbytes:
                raise self.error(f"raw_data has {raw[1] - raw[0]} bytes, dims {list(shape)} {stored} need "
                                 f"{nbytes}", name)
            where = ("file", self.path, raw[0])
        else:
            where = ("typed", typed, stored)
            fno = 4 if stored in ("float32", "complex64") else 7 if stored == "int64" else \
                10 if stored in ("float64", "complex128") else 11 if stored in ("uint32", "uint64") else 5
            items = typed.get(fno, [])
            count = count_values(buf, items, 4 if fno == 4 else 8 if fno == 10 else 0)
            if stored.startswith("complex"):
                if count % 2:
                    raise self.error(f"complex tensor has an odd number ({count}) of real values", name)
                count //= 2
            if count != n:
                raise self.error(f"tensor has {count} values, dims {list(shape)} need {n}", name)
            heap = 64 * n + heap_bytes(n, _itemsize(stored), stored, mapped=False)  # varint decoding, then the result
        self._where[name] = where
        self.add(TensorInfo(name, shape, read_dtype(stored), "" if read_dtype(stored) == stored else stored,
                            extra={"source": source}), heap=heap)

    def _read(self, info: TensorInfo) -> np.ndarray:
        w = self._where[info.name]
        stored = info.stored or info.dtype
        if w[0] == "array":
            return w[1]
        if w[0] == "file":
            return mmap_array(w[1], w[2], stored, info.shape)
        typed = w[1]
        if stored in ("float32", "complex64"):
            a = collect_repeated(self._buf, typed.get(4, []), "float32")
            a = a.view(np.complex64) if stored == "complex64" else a
        elif stored in ("float64", "complex128"):
            a = collect_repeated(self._buf, typed.get(10, []), "float64")
            a = a.view(np.complex128) if stored == "complex128" else a
        elif stored == "int64":
            a = collect_repeated(self._buf, typed.get(7, []), "int64")
        elif stored in ("uint32", "uint64"):
            a = collect_repeated(self._buf, typed.get(11, []), "int64").astype(stored)
        else:
            ints = collect_repeated(self._buf, typed.get(5, []), "int64")
            if stored == "float16":
                a = ints.astype(np.uint16).view(np.float16)
            elif stored == "bfloat16":
                from .base import bf16_to_f32
                a = bf16_to_f32(ints.astype(np.uint16))
            elif stored.startswith("float8"):
                from .base import widen
                a = widen(ints.astype(np.uint8), stored)
            else:
                a = ints.astype(stored)
        if a.size != info.numel:
            raise self.error(f"tensor has {a.size} values, dims {list(info.shape)} need {info.numel}", info.name)
        return a.reshape(info.shape)


def _ext_int(ext: dict, key: str, default: int, path: str, name: str) -> int:
    """The ``offset`` / ``length`` of an external_data entry: decimal digits (absent or empty: ``default``)."""
    text = ext.get(key, "").strip()
    if not text:
        return default
    if not text.isdecimal() or not text.isascii() or len(text) > 20:
        raise WeightError(f"{path}, tensor {name!r}: external data {key} {describe(text)} is not a byte count")
    return int(text)


def _detect(path: str, head: bytes) -> int:
    fs = probe_fields(head)
    if not fs:
        return 0
    keys = [(f, w) for f, w, _ in fs]
    if keys[0] == (1, VARINT) and 0 < (fs[0][2] or 0) < 100:
        return 2 if any(k in keys for k in ((7, LEN), (8, LEN), (2, LEN), (3, LEN))) or len(keys) == 1 else 1
    if (7, LEN) in keys and (1, LEN) not in keys:
        return 1
    return 0


register_format(FormatSpec("onnx", _detect, lambda p, **o: OnnxCheckpoint(p, **o), (".onnx",)))
