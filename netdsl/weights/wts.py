"""tensorrtx ``.wts`` text weights: reader (hex float32 words, or decimal floats) and writer.

Format (tensorrtx ``gen_wts.py``): first line the tensor count; then one line per tensor:
``name count v1 v2 ...`` where each value is the big-endian float32 bit pattern as 8 hex digits
(``struct.pack('>f', v).hex()``). Some exporters write the values as decimal floats instead
(``variant="float"``: plain decimals such as ``-1.5e-3``, or ``nan``/``inf``/``-inf``); ``variant="auto"``
decides per tensor. Lines after the declared count of tensors are refused. Shapes are not stored: tensors are
1-d and binding reshapes them to the parameter when the element counts agree.
"""
from __future__ import annotations

import binascii
import mmap
import re
from typing import Any, Union

import numpy as np

from .base import Checkpoint, FormatSpec, TensorInfo, describe, register_format

_HEX_WORD = re.compile(rb"^[0-9a-fA-F]{1,8}$")
# what a writer of decimals prints (Python repr, printf %g/%e/%f): not Python's own extras (1_0, infinity, NaN)
_DECIMAL = re.compile(rb"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|nan|inf)")
_NON_BLANK = re.compile(rb"\S")


class WtsCheckpoint(Checkpoint):
    format = "wts"
    single_file = True  # tensor data comes from this file alone

    def _open(self) -> None:
        variant = self.options.get("variant", "auto")
        if variant not in ("auto", "hex", "float"):
            raise self.error(f"variant must be auto, hex or float, not {variant!r}")
        self._variant = variant
        self._f = open(self.path, "rb")
        size = self.file_size
        if not size:
            raise self.error("empty file")
        mm = self._mm = mmap.mmap(self._f.fileno(), 0, access=mmap.ACCESS_READ)
        end = mm.find(b"\n")
        end = size if end < 0 else end
        first = mm[:end].strip()
        if not first.isdigit() or len(first) > 12:
            raise self.error(f"first line must be the tensor count, got {bytes(first[:40])!r}")
        count = int(first)
        self._lines: dict[str, tuple] = {}
        pos = end + 1
        dropped = 0
        while pos < size and len(self._lines) < count:
            nl = mm.find(b"\n", pos)
            nl = size if nl < 0 else nl
            head = mm[pos:min(nl, pos + 4096)].split(None, 2)
            if not head:
                pos = nl + 1
                continue
            if len(head) < 2 or not head[1].isdigit():
                raise self.error(f"line at byte {pos} is not 'name count values...'")
            name = head[0].decode("utf8", errors="replace")
            if len(head[1]) > 15:  # more values than any file holds; int() of 5000 digits fails, a long one is slow
                raise self.error(f"line at byte {pos} declares a value count of {len(head[1])} digits", name)
            n = int(head[1])
            if n > (nl - pos):  # each value needs at least 2 bytes
                raise self.error(f"tensor declares {n} values but its line has {nl - pos} bytes (truncated?)", name)
            # start of the values: after name and count
            vstart = pos + mm[pos:nl].find(head[1], len(head[0])) + len(head[1])
            self._lines[name] = (vstart, nl, n)
            self.add(TensorInfo(name, (n,), "float32", extra={"flat": True}))
            pos = nl + 1
            if hasattr(mmap, "MADV_DONTNEED") and pos - dropped > 32 << 20:  # keep the scan out of our RSS
                mm.madvise(mmap.MADV_DONTNEED, dropped, (pos - dropped) - (pos - dropped) % mmap.PAGESIZE)
                dropped = pos - pos % mmap.PAGESIZE
        if len(self._lines) != count:
            raise self.error(f"header says {count} tensors, the file has {len(self._lines)} (truncated?)")
        extra = _NON_BLANK.search(mm, min(pos, size))
        if extra:
            line = mm[extra.start():extra.start() + 60].split(b"\n", 1)[0].decode("utf8", "replace")
            raise self.error(f"header says {count} tensors, but more lines follow (the first at byte "
                             f"{extra.start()}: {describe(line)})")

    def _read(self, info: TensorInfo) -> np.ndarray:
        s, e, n = self._lines[info.name]
        seg = self._mm[s:e]
        if hasattr(mmap, "MADV_DONTNEED") and e - s > 1 << 20:  # drop the text pages from our RSS
            a = s - s % mmap.PAGESIZE
            self._mm.madvise(mmap.MADV_DONTNEED, a, e - a)
        variant = self._variant
        if variant == "auto":
            sample = seg[:900].split()[:64]
            if len(sample) == 64 or e - s <= 900:
                sample = sample if e - s <= 900 else sample[:-1]  # the last one may be cut
            variant = "hex" if sample and all(_HEX_WORD.match(t) for t in sample) \
                and any(len(t) == 8 for t in sample) else "float"
            if not n:
                variant = "hex"
        if variant == "hex":
            try:
                hexes = seg.translate(None, b" \t\r\n")
                words = np.frombuffer(binascii.unhexlify(hexes), ">u4") if len(hexes) == 8 * n else None
            except (ValueError, binascii.Error):
                words = None
            if words is None or words.size != n:  # tokens shorter than 8 digits: the slow way
                toks = seg.split()
                if len(toks) != n:
                    raise self.error(f"declares {n} values, has {len(toks)}", info.name)
                bad = next((t for t in toks if not _HEX_WORD.match(t)), None)
                if bad is not None:  # int(t, 16) also takes 0x.., 1_0, -1 and words wider than 32 bits
                    raise self.error(f"bad hex value {describe(bad.decode('utf8', 'replace'))} (a value is 8 hex "
                                     "digits, a float32's bits)", info.name)
                words = np.array([int(t, 16) for t in toks], dtype=np.uint64)
            return words.astype(np.uint32).view(np.float32)
        toks = seg.split()
        if len(toks) != n:
            raise self.error(f"declares {n} values, has {len(toks)}", info.name)
        bad = next((t for t in toks if not _DECIMAL.fullmatch(t)), None)
        if bad is not None:  # float() also takes 1_0, infinity, NaN, ' 1 '
            raise self.error(f"bad float value {describe(bad.decode('utf8', 'replace'))} (values are hex words or "
                             "plain decimals)", info.name)
        return np.array([float(t) for t in toks], dtype=np.float32)

    def close(self) -> None:
        for a in ("_mm", "_f"):
            h = getattr(self, a, None)
            if h is not None:
                h.close()
        super().close()


def write_wts(path: str, tensors: Union[dict, Checkpoint, Any], variant: str = "hex") -> None:
    """Write a tensorrtx ``.wts`` file from a dict of arrays, a Checkpoint, or a Network/Graph's bound parameters."""
    if isinstance(tensors, Checkpoint):
        items = [(n, tensors.read(n)) for n in tensors.names()]
    elif isinstance(tensors, dict):
        items = list(tensors.items())
    else:
        g = getattr(tensors, "graph", tensors)
        items = [(n, p.value()) for n, p in g.params.items()]
    with open(path, "w") as f:
        f.write(f"{len(items)}\n")
        for name, arr in items:
            if any(c.isspace() for c in name) or not name:
                raise ValueError(f"tensor name {name!r} cannot be written to .wts (whitespace)")
            flat = np.asarray(arr, dtype=np.float32).ravel()
            f.write(f"{name} {flat.size}")
            if variant == "hex":
                hx = flat.astype(">f4").tobytes().hex()
                f.write("".join(" " + hx[i:i + 8] for i in range(0, len(hx), 8)))
            elif variant == "float":
                f.write("".join(f" {v!r}" for v in flat.tolist()))
            else:
                raise ValueError("variant must be hex or float")
            f.write("\n")


def _detect(path: str, head: bytes) -> int:
    lines = head.split(b"\n", 2)
    if len(lines) < 2 or not lines[0].strip().isdigit():
        return 0
    parts = lines[1].split(None, 2)
    if len(parts) >= 2 and parts[1].isdigit() and all(32 <= c < 127 for c in parts[0]):
        return 2
    return 0


register_format(FormatSpec("wts", _detect, lambda p, **o: WtsCheckpoint(p, **o), (".wts",)))
