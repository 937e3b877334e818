"""NumPy ``.npz`` (and single ``.npy``) checkpoints: never unpickles; stored members are memory-mapped."""
from __future__ import annotations

import ast
import math
import struct
import zipfile
from typing import Any

import numpy as np

from .base import Checkpoint, FormatSpec, TensorInfo, describe, mmap_array, register_format, zip_data_offset
from .budget import heap_bytes

_NPY_MAGIC = b"\x93NUMPY"


def parse_npy_header(head: bytes, where: str) -> tuple[tuple, np.dtype, bool, int]:
    """(shape, dtype, fortran_order, header length) of a .npy header; refuses object dtypes."""
    if head[:6] != _NPY_MAGIC or len(head) < 10:
        raise ValueError(f"{where}: not a .npy array (bad magic)")
    major = head[6]
    if major == 1:
        (hlen,), start = struct.unpack("<H", head[8:10]), 10
    elif major in (2, 3):
        if len(head) < 12:
            raise ValueError(f"{where}: truncated .npy header")
        (hlen,), start = struct.unpack("<I", head[8:12]), 12
    else:
        raise ValueError(f"{where}: unsupported .npy version {major}")
    if hlen > 1 << 20 or start + hlen > len(head):
        raise ValueError(f"{where}: truncated or oversized .npy header ({hlen} bytes)")
    text = head[start:start + hlen].decode("latin1" if major < 3 else "utf8")
    d = ast.literal_eval(text)  # a dict literal; literal_eval never runs code
    if not isinstance(d, dict) or not {"descr", "fortran_order", "shape"} <= set(d):
        raise ValueError(f"{where}: malformed .npy header {text[:80]!r}")
    shape = d["shape"]
    if not isinstance(shape, tuple) or len(shape) > 32 \
            or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in shape):
        raise ValueError(f"{where}: bad shape {describe(shape)}")
    if not isinstance(d["fortran_order"], bool):  # as NumPy's reader: bool('no') would be True
        raise ValueError(f"{where}: fortran_order {describe(d['fortran_order'])} is not True or False")
    descr = d["descr"]
    if not isinstance(descr, str):
        raise ValueError(f"{where}: structured dtype {descr!r} is not a tensor")
    dt = np.dtype(descr)
    if dt.hasobject or dt.kind in "OV":
        raise ValueError(f"{where}: dtype {descr!r} would need pickle; refused")
    if dt.itemsize == 0:  # 'S0' / 'U0': any shape, however huge, in zero bytes
        raise ValueError(f"{where}: dtype {descr!r} has no bytes per element; not a tensor")
    if dt.kind not in "biufc":  # text, bytes, dates: not weights
        raise ValueError(f"{where}: dtype {descr!r} is not numeric; not a tensor")
    return tuple(shape), dt, bool(d["fortran_order"]), start + hlen


class NpzCheckpoint(Checkpoint):
    format = "npz"
    single_file = True  # tensor data comes from this file alone

    def _open(self) -> None:
        self._zip = zipfile.ZipFile(self.path)
        self._where: dict[str, tuple] = {}
        size = self.file_size
        with open(self.path, "rb") as f:
            for zi in self._zip.infolist():
                if zi.is_dir():
                    continue
                name = zi.filename[:-4] if zi.filename.endswith(".npy") else zi.filename
                start = zip_data_offset(f, zi, size, self.path)  # None: deflated
                if start is not None:
                    f.seek(start)
                    head = f.read(min(zi.file_size, 65536 + 12))
                else:
                    with self._zip.open(zi) as m:
                        head = m.read(65536 + 12)
                shape, dt, fortran, hlen = parse_npy_header(head, f"{self.path}:{name}")
                nbytes = math.prod(shape) * dt.itemsize
                if hlen + nbytes != zi.file_size:
                    raise self.error(f"member holds {zi.file_size} bytes, its header declares {hlen + nbytes}: "
                                     "truncated or corrupt", name)
                offset = None if start is None else start + hlen
                heap = 2 * nbytes if offset is None else heap_bytes(math.prod(shape), dt.itemsize,
                                                                    byteswap=dt.byteorder == ">")
                self._where[name] = (zi, offset, dt, fortran)
                self.add(TensorInfo(name, shape, dt.newbyteorder("=").name if dt.byteorder != "|" else dt.name,
                                    extra={"compressed": offset is None}), heap=heap)

    def _read(self, info: TensorInfo) -> np.ndarray:
        zi, offset, dt, fortran = self._where[info.name]
        if offset is not None:
            bo = ">" if dt.byteorder == ">" else "<"
            return mmap_array(self.path, offset, dt.newbyteorder("=").name if dt.itemsize > 1 else dt.name,
                              info.shape, order="F" if fortran else "C", byteorder=bo)
        with self._zip.open(zi) as m:
            arr = np.lib.format.read_array(m, allow_pickle=False)
        return arr.astype(arr.dtype.newbyteorder("=")) if arr.dtype.byteorder == ">" else arr  # as the index says

    def close(self) -> None:
        z = getattr(self, "_zip", None)
        if z is not None:
            z.close()
        super().close()


class NpyCheckpoint(Checkpoint):
    """A single ``.npy`` array, as a checkpoint with one tensor named after the file."""

    format = "npy"
    single_file = True  # tensor data comes from this file alone

    def _open(self) -> None:
        import os
        with open(self.path, "rb") as f:
            head = f.read(65536 + 12)
        shape, dt, fortran, hlen = parse_npy_header(head, self.path)
        self._meta = (hlen, dt, fortran)
        if hlen + math.prod(shape) * dt.itemsize > self.file_size:
            raise self.error("array data is truncated")
        self.add(TensorInfo(os.path.splitext(os.path.basename(self.path))[0], shape, dt.newbyteorder("=").name))

    def _read(self, info: TensorInfo) -> np.ndarray:
        hlen, dt, fortran = self._meta
        return mmap_array(self.path, hlen, dt.newbyteorder("=").name if dt.itemsize > 1 else dt.name, info.shape,
                          order="F" if fortran else "C", byteorder=">" if dt.byteorder == ">" else "<")


def zip_members(path: str) -> list[str]:
    try:
        with zipfile.ZipFile(path) as z:
            return z.namelist()[:100000]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return []


def _detect(path: str, head: bytes) -> int:
    if head.startswith(_NPY_MAGIC):
        return 0
    if head[:4] not in (b"PK\x03\x04", b"PK\x05\x06"):
        return 0
    names = zip_members(path)
    if any(n.endswith("data.pkl") for n in names):
        return 0
    if not names or all(n.endswith(".npy") for n in names):
        return 2
    return 0


def _open(path: str, **options: Any) -> Checkpoint:
    return NpzCheckpoint(path, **options)


register_format(FormatSpec("npz", _detect, _open, (".npz",)))
register_format(FormatSpec("npy", lambda p, h: 2 if h.startswith(_NPY_MAGIC) else 0,
                           lambda p, **o: NpyCheckpoint(p, **o), (".npy",)))
