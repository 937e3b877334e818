"""safetensors: our own header parser + ``np.memmap`` (zero copies); sharded checkpoints via the index json.

Layout: 8-byte little-endian header length N, N bytes of JSON ``{name: {dtype, shape, data_offsets:
[begin, end]}, "__metadata__": {...}}``, then the data buffer (offsets are relative to it).
Shards (named by an index, or the ``*.safetensors`` files of a directory) are read only from the
checkpoint's own directories (:mod:`netdsl.weights.paths`: symlinks resolved, Hugging Face caches allowed).
"""
from __future__ import annotations

import json
import math
import os
import struct
from typing import Any, Optional

import numpy as np

from ..errors import WeightError
from .base import (MAX_HEADER, MAX_RANK, Checkpoint, FormatSpec, TensorInfo, describe, mmap_array, read_dtype,
                   register_format)
from .budget import heap_bytes
from .paths import allowed_roots, resolve_inside

DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
          "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
          "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
          "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool", "C64": "complex64"}
_ITEMSIZE = {"float8_e4m3fn": 1, "float8_e5m2": 1, "bfloat16": 2}


def _itemsize(stored: str) -> int:
    return _ITEMSIZE.get(stored) or np.dtype(stored).itemsize



def _unique_keys(pairs: list) -> dict:
    """A JSON object whose keys are all different: with a name twice, which tensor is meant would depend on
    the parser (the safetensors library refuses such a header; Python's json keeps the last)."""
    seen: set = set()
    for k, _ in pairs:
        if k in seen:
            raise ValueError(f"it names {describe(k)} twice")
        seen.add(k)
    return dict(pairs)

class SafetensorsCheckpoint(Checkpoint):
    format = "safetensors"

    def _open(self) -> None:
        self._where: dict[str, tuple] = {}
        if os.path.isdir(self.path) or self.path.endswith(".json"):
            self._open_sharded()
        else:
            self._open_file(self.path)

    def _open_sharded(self) -> None:
        index = self.path
        if os.path.isdir(index):
            roots = allowed_roots(index)
            cands = [f for f in sorted(os.listdir(index)) if f.endswith(".safetensors.index.json")]
            if cands:
                index = resolve_inside(index, cands[0], roots, "index", self.path)
                roots = list(dict.fromkeys(roots + allowed_roots(index)))
                base = self.path
            else:
                files = [f for f in sorted(os.listdir(index)) if f.endswith(".safetensors")]
                if not files:
                    raise self.error("directory holds no *.safetensors files and no index json")
                for f in files:
                    self._open_file(resolve_inside(index, f, roots, "file", self.path))
                return
        else:
            roots = allowed_roots(index)
            base = os.path.dirname(os.path.abspath(index))
        if os.path.getsize(index) > MAX_HEADER:
            raise self.error("index json too large")
        with open(index, "rb") as f:
            try:
                doc = json.loads(f.read())
            except (ValueError, UnicodeError) as e:
                raise self.error(f"index json is not valid JSON: {e}") from e
        wm = doc.get("weight_map") if isinstance(doc, dict) else None
        if not isinstance(wm, dict):
            raise self.error("index json has no 'weight_map' object")
        shards: dict[str, list[str]] = {}
        for name, shard in wm.items():
            if not isinstance(shard, str):
                raise self.error(f"weight_map entry {shard!r} is not a file beside the index", name)
            shards.setdefault(shard, []).append(name)
        for shard, want in shards.items():
            try:
                p = resolve_inside(base, shard, roots, "shard", self.path)
            except WeightError as e:
                raise WeightError(f"{e} (named by the index for {len(want)} tensor(s), e.g. {want[0]!r})") from None
            got = self._open_file(p)
            lacking = sorted(set(want) - set(got))
            if lacking:
                raise self.error(f"shard {shard} lacks {len(lacking)} tensor(s) the index lists, e.g. "
                                 f"{lacking[0]!r}")

    def _open_file(self, path: str) -> list[str]:
        size = os.path.getsize(path)
        if path != self.path:
            self.budget.add_input(size)
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise self.error("truncated header", file=path)
            (n,) = struct.unpack("<Q", raw)
            if n > min(MAX_HEADER, size - 8):
                raise self.error(f"header length {n} exceeds the file ({size} bytes): truncated or "
                                 "not safetensors", file=path)
            text = f.read(n)
        try:
            hdr = json.loads(text, object_pairs_hook=_unique_keys)
        except (ValueError, UnicodeError) as e:
            raise self.error(f"header is not valid JSON: {e}", file=path) from e
        if not isinstance(hdr, dict):
            raise self.error("header is not a JSON object", file=path)
        data_start, data_len = 8 + n, size - 8 - n
        names = []
        spans = []
        for name, ent in hdr.items():
            if name == "__metadata__":
                continue
            if isinstance(ent, dict) and isinstance(ent.get("dtype"), str) and ent["dtype"] not in DTYPES:
                raise self.error(f"dtype {describe(ent['dtype'])} is not supported (netdsl reads "
                                 f"{', '.join(DTYPES)})", name, file=path)
            try:
                stored = DTYPES[ent["dtype"]]
                shape = tuple(ent["shape"])
                b, e = ent["data_offsets"]
            except (KeyError, TypeError, ValueError):
                raise self.error(f"malformed header entry {describe(ent)}", name, file=path) from None
            if len(shape) > MAX_RANK:  # before multiplying: the product of 50000 huge dims takes seconds per MB
                raise self.error(f"shape of rank {len(shape)} (more than {MAX_RANK}) in header", name, file=path)
            if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape) \
                    or not all(isinstance(x, int) and not isinstance(x, bool) for x in (b, e)):
                raise self.error("bad shape/offsets in header", name, file=path)
            nbytes = math.prod(shape) * _itemsize(stored) if shape else _itemsize(stored)
            if b < 0 or e - b != nbytes or e > data_len:
                raise self.error(f"data_offsets [{b}, {e}] do not fit shape {describe(list(shape))} {ent['dtype']} "
                                 f"in a {data_len}-byte data buffer (truncated?)", name, file=path)
            spans.append((b, e))
            self._where[name] = (path, data_start + b, stored, size)
            self.add(TensorInfo(name, shape, read_dtype(stored), "" if read_dtype(stored) == stored else stored,
                                extra={"file": os.path.basename(path)}),
                     heap=heap_bytes(math.prod(shape), _itemsize(stored), stored))
            names.append(name)
        spans.sort()
        at = 0  # the tensors must tile the data buffer, as the safetensors library requires
        for b, e in spans:
            if b != at:
                raise self.error(f"tensors {'overlap' if b < at else 'leave a gap'} in the data buffer (a tensor at "
                                 f"offset {b}, the one before it ends at {at}): not a valid safetensors file", file=path)
            at = e
        if at != data_len:
            raise self.error(f"the data buffer holds {data_len} bytes, its tensors {at}: {data_len - at} bytes follow "
                             "the last tensor (not a valid safetensors file)", file=path)
        return names

    def tensor_file(self, name: str) -> Optional[str]:
        return self._where[name][0] if name in self._where else None

    def _read(self, info: TensorInfo) -> np.ndarray:
        path, off, stored, size = self._where[info.name]
        return mmap_array(path, off, stored, info.shape, file_size=size)


def _detect(path: str, head: bytes) -> int:
    if os.path.isdir(path):
        fs = os.listdir(path)
        return 2 if any(f.endswith(".safetensors") or f.endswith(".safetensors.index.json") for f in fs) else 0
    if path.endswith(".json") and b"weight_map" in head:
        return 2
    if len(head) < 10:
        return 0
    (n,) = struct.unpack("<Q", head[:8])
    if head[8:9] == b"{" and n >= 2:  # a header longer than the file: a truncated file, reported as such
        return 3 if n <= os.path.getsize(path) - 8 else 1
    return 0


register_format(FormatSpec("safetensors", _detect, lambda p, **o: SafetensorsCheckpoint(p, **o),
                           (".safetensors", ".json")))


def save_file(tensors: dict, path: str, metadata: Any = None) -> None:
    """Write a safetensors file (float32/16/64 and ints; used by tests and benchmarks)."""
    rev = {v: k for k, v in DTYPES.items()}
    hdr: dict = {}
    off = 0
    arrays = []
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        hdr[name] = {"dtype": rev[a.dtype.name], "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
        arrays.append(a)
    if metadata:
        hdr["__metadata__"] = metadata
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for a in arrays:
            f.write(a.tobytes())
