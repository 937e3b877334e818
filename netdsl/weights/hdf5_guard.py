"""What an HDF5 file may make the reader do: follow links that stay inside it, read datasets stored inside
it, decompress within known sizes.

HDF5 can pull bytes from elsewhere: an external link names an object in another file, a dataset with
external raw storage reads any local file, a virtual dataset maps other files' datasets. All three are
refused, so no byte from outside the checkpoint reaches a tensor. Filters are limited to deflate,
shuffle, fletcher32 and LZF, and filtered chunks are decoded here, never by the library: each bounded by
its chunk's size and fletcher32 checksums verified (the library grows its buffer without limit, so a 500 KB file could make it allocate
gigabytes). N-bit and scale-offset (known HDF5 security bugs live in their decoders; Keras never writes
them) are refused, and other filter ids would make the library load plugins.
"""
from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np

from ..errors import WeightError

DEFLATE, SHUFFLE, FLETCHER32, NBIT, SCALEOFFSET, LZF = 1, 2, 3, 5, 6, 32000
ALLOWED_FILTERS = {DEFLATE: "deflate", SHUFFLE: "shuffle", FLETCHER32: "fletcher32", LZF: "lzf"}
REFUSED_FILTERS = {NBIT: "n-bit", SCALEOFFSET: "scale-offset"}
_MAX_SOFT_LINKS = 16


def child(group: Any, path: str, where: str, depth: int = 0) -> Any:
    """``group[path]``, following only hard links and soft links inside the file (external and
    user-defined links are refused)."""
    import h5py
    if depth > _MAX_SOFT_LINKS:
        raise WeightError(f"{where}: soft links nest more than {_MAX_SOFT_LINKS} deep at {path!r}")
    obj = group.file if path.startswith("/") else group
    for part in [p for p in path.split("/") if p]:
        if not isinstance(obj, h5py.Group):
            raise WeightError(f"{where}: {path!r} goes through {obj.name}, which is not a group")
        if part not in obj:
            raise WeightError(f"{where}: no object {path!r} in the file")
        try:
            link = obj.get(part, getlink=True)
        except (TypeError, KeyError, RuntimeError, ValueError) as e:
            raise WeightError(f"{where}: {obj.name}/{part} is a link of an unsupported kind: refused ({e})") from None
        if isinstance(link, h5py.SoftLink):
            obj = child(obj, link.path, where, depth + 1)
        elif isinstance(link, h5py.HardLink):
            obj = obj[part]
        else:
            raise WeightError(f"{where}: {obj.name}/{part} is an external link ({link}): refused, a checkpoint "
                              "may only hold its own data")
    return obj


def check_dataset(ds: Any, h5: Any, where: str) -> None:
    """Refuse a dataset whose bytes live outside this file, or that needs a filter plugin."""
    import h5py
    if h5py.h5o.get_info(ds.id).fileno != h5py.h5o.get_info(h5.id).fileno:
        raise WeightError(f"{where}: dataset {ds.name} lives in another file: refused")
    dcpl = ds.id.get_create_plist()
    if dcpl.get_layout() == h5py.h5d.VIRTUAL:
        raise WeightError(f"{where}: dataset {ds.name} is a virtual dataset (it maps other files): refused")
    if dcpl.get_external_count():
        raise WeightError(f"{where}: dataset {ds.name} keeps its data in external files "
                          f"({dcpl.get_external(0)[0]!r}...): refused, a checkpoint may only hold its own data")
    for i in range(dcpl.get_nfilters()):
        code, _flags, values, _name = dcpl.get_filter(i)
        if code in REFUSED_FILTERS:
            raise WeightError(f"{where}: dataset {ds.name} is compressed with the HDF5 {REFUSED_FILTERS[code]} filter: "
                              "refused (known HDF5 security bugs live in its decoder, and Keras never writes it; "
                              "save it uncompressed or with gzip)")
        if code not in ALLOWED_FILTERS:
            raise WeightError(f"{where}: dataset {ds.name} uses HDF5 filter {code}, which would load a plugin: "
                              f"refused (supported: {', '.join(ALLOWED_FILTERS.values())})")
        if code == LZF and len(values) >= 3 and values[2] > chunk_bytes(ds):  # the filter mallocs this first
            raise WeightError(f"{where}: dataset {ds.name}: LZF buffer size {values[2]} exceeds its chunk: corrupt")


def chunk_bytes(ds: Any) -> int:
    """Bytes of one chunk of a chunked dataset (0 otherwise): the library allocates this per chunk read."""
    return math.prod(ds.chunks) * ds.dtype.itemsize if ds.chunks else 0


def filters(ds: Any) -> list[int]:
    dcpl = ds.id.get_create_plist()
    return [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())]


def read_filtered(ds: Any, file_size: int, where: str) -> np.ndarray:
    """A chunked dataset with filters (deflate, LZF, shuffle, fletcher32), decoded chunk by chunk here (each
    chunk's output bounded by its size); missing chunks hold the fill value."""
    codes = filters(ds)
    if any(c not in ALLOWED_FILTERS for c in codes):
        raise WeightError(f"{where}: dataset {ds.name} uses filters {codes}: not supported")
    dt = ds.dtype
    chunk = tuple(ds.chunks)
    size = chunk_bytes(ds)
    out = np.full(ds.shape, ds.fillvalue, dt)
    for i in range(ds.id.get_num_chunks()):
        info = ds.id.get_chunk_info(i)
        if any(o >= n for o, n in zip(info.chunk_offset, ds.shape)):
            continue  # a chunk wholly outside the dataset contributes nothing
        if info.size > file_size or info.byte_offset + info.size > file_size:
            raise WeightError(f"{where}: dataset {ds.name}: chunk {i} lies past the end of the file")
        mask, data = ds.id.read_direct_chunk(info.chunk_offset)
        for j in reversed(range(len(codes))):
            if mask & (1 << j):
                continue
            if codes[j] == FLETCHER32:
                if len(data) < 4 or int.from_bytes(data[-4:], "little") not in _fletcher32_forms(data[:-4]):
                    raise WeightError(f"{where}: dataset {ds.name}: chunk {i} fails its fletcher32 checksum (corrupt)")
                data = data[:-4]
            elif codes[j] == DEFLATE:
                d = zlib.decompressobj()
                data = d.decompress(data, size + 1)
                if len(data) > size or not d.eof:
                    raise WeightError(f"{where}: dataset {ds.name}: chunk {i} does not inflate to its "
                                      f"{size} bytes (corrupt, or a decompression bomb)")
            elif codes[j] == LZF:
                try:
                    data = lzf_decompress(data, size)
                except ValueError as e:
                    raise WeightError(f"{where}: dataset {ds.name}: chunk {i}: corrupt LZF data ({e})") from None
            else:  # shuffle: bytes were grouped by position within the element
                raw = np.frombuffer(data, np.uint8)
                if raw.size == size and dt.itemsize > 1:
                    data = raw.reshape(dt.itemsize, -1).T.tobytes()
        if len(data) != size:
            raise WeightError(f"{where}: dataset {ds.name}: chunk {i} holds {len(data)} bytes, not {size}")
        block = np.frombuffer(data, dt).reshape(chunk)
        dst = tuple(slice(o, min(o + c, s)) for o, c, s in zip(info.chunk_offset, chunk, ds.shape))
        out[dst] = block[tuple(slice(0, d.stop - d.start) for d in dst)]
    return out


def _fletcher32_forms(data: bytes) -> tuple[int, int]:
    """HDF5's fletcher32 of ``data`` (``H5_checksum_fletcher32``: big-endian 16-bit words, sums folded every
    360 words) and its byte-swapped form, which the library also accepts (files of HDF5 1.6.2)."""
    words = np.frombuffer(data[:len(data) - len(data) % 2], ">u2").astype(np.int64)
    s1 = s2 = 0
    for k in range(0, len(words), 360):  # the library folds the sums after each 360 words
        c = np.cumsum(words[k:k + 360])
        s2 += len(c) * s1 + int(c.sum())
        s1 += int(c[-1])
        s1, s2 = (s1 & 0xFFFF) + (s1 >> 16), (s2 & 0xFFFF) + (s2 >> 16)
    if len(data) % 2:  # an odd last byte counts as a word's high byte, then one more fold
        s1 += data[-1] << 8
        s2 += s1
        s1, s2 = (s1 & 0xFFFF) + (s1 >> 16), (s2 & 0xFFFF) + (s2 >> 16)
    s1, s2 = (s1 & 0xFFFF) + (s1 >> 16), (s2 & 0xFFFF) + (s2 >> 16)
    value = (s2 << 16) | s1
    return value, int.from_bytes(value.to_bytes(4, "little"), "big")


def lzf_decompress(data: bytes, limit: int) -> bytes:
    """LZF (liblzf ``lzf_decompress``, as h5py's LZF filter writes it), at most ``limit`` bytes out."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        ctrl = data[i]
        i += 1
        if ctrl < 32:  # a literal run of ctrl + 1 bytes (no more out than in: checked at the end)
            j = i + ctrl + 1
            if j > n:
                raise ValueError("a literal run passes the end of the chunk")
            out += data[i:j]
            i = j
            continue
        ln = ctrl >> 5  # a back reference: length (3 bits, extended by a byte), distance (5 + 8 bits)
        if ln == 7:
            ln += data[i] if i < n else 256
            i += 1
        if i >= n:
            raise ValueError("a back reference passes the end of the chunk")
        o = len(out)
        start = o - (((ctrl & 0x1F) << 8) | data[i]) - 1
        i += 1
        ln += 2
        if start < 0:
            raise ValueError("a back reference points before the start")
        if o + ln > limit:
            raise ValueError(f"it decompresses to more than the chunk's {limit} bytes")
        if start + ln <= o:
            out += out[start:start + ln]
        else:  # an overlapping copy repeats the last o - start bytes
            piece = out[start:]
            out += (piece * (ln // len(piece) + 1))[:ln]
    if len(out) > limit:
        raise ValueError(f"it decompresses to more than the chunk's {limit} bytes")
    return bytes(out)
