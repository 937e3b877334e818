"""PyTorch ``.pt/.pth/.bin`` checkpoints (zip format and legacy pre-1.6), without torch and without running pickle code.

The pickle is read by :mod:`netdsl.weights.safe_pickle` (allow-listed globals only); tensors become
references to storages that are memory-mapped from the file when read. Options:

* ``pickle_mode``: ``"auto"`` (default: allow-list; classes that are not allow-listed, e.g. whole
  pickled modules, become inert placeholders and a note says so), ``"strict"`` (refuse any global
  not on the allow list), ``"inert"`` (like auto, without the note). Globals that can only serve to run
  code (os.system, builtins.exec ...) are refused in every mode.
* ``key``: which part of a checkpoint dict holds the weights (default: ``state_dict``/``model``/...
  when the top level is not itself a dict of tensors; ``""`` for everything, dotted paths allowed).
"""
from __future__ import annotations

import os
import struct
import zipfile
from typing import Any, Optional

import numpy as np

from ..errors import WeightError
from .base import Checkpoint, FormatSpec, TensorInfo, read_dtype, register_format, widen, raw_dtype
from .npz import zip_members
from .safe_pickle import Inert, NumpyArrayStub, StorageRef, StorageType, TensorRef, safe_load

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_ROOT_KEYS = ("state_dict", "model_state_dict", "model", "module", "ema", "net", "network", "params",
              "weights", "generator")
_ITEM = {"bfloat16": 2, "float8_e4m3fn": 1, "float8_e5m2": 1}


def _itemsize(dt: str) -> int:
    return _ITEM.get(dt) or np.dtype(dt).itemsize


class PyTorchCheckpoint(Checkpoint):
    format = "pytorch"

    def _open(self) -> None:
        mode = self.options.get("pickle_mode", "auto")
        if mode not in ("auto", "strict", "inert"):
            raise WeightError(f"pickle_mode must be auto, strict or inert, not {mode!r}")
        self._mode = "strict" if mode == "strict" else "inert"
        self._storages: dict[str, tuple] = {}  # key -> (file offset or None, nbytes, zip member)
        self._zip: Optional[zipfile.ZipFile] = None
        self._big_endian = False
        self._size = self.file_size
        with open(self.path, "rb") as f:
            head = f.read(4)
        if head[:2] == b"PK":
            obj, up = self._open_zip()
        else:
            obj, up = self._open_legacy()
        if up.stubs and mode == "auto":
            names = sorted(f"{m}.{n}" for m, n in up.stubs)
            self.notes.append(f"the pickle holds {len(names)} class(es) that are not plain tensors "
                              f"({', '.join(names[:4])}{' ...' if len(names) > 4 else ''}); they were read as inert "
                              "placeholders: nothing was imported or run")
        self._collect(obj)

    # ---- containers ------------------------------------------------------------------------------
    def _open_zip(self) -> tuple:
        self._zip = zipfile.ZipFile(self.path)
        names = self._zip.namelist()
        pkls = [n for n in names if n.endswith("data.pkl") and n.count("/") <= 1]
        if not pkls:
            raise self.error("zip archive has no data.pkl: not a PyTorch checkpoint")
        pkl = pkls[0]
        prefix = pkl[: -len("data.pkl")]
        if prefix + "byteorder" in names:
            self._big_endian = self._zip.read(prefix + "byteorder").strip() == b"big"
        members = {zi.filename: zi for zi in self._zip.infolist()}
        zi = members[pkl]
        if zi.file_size > 1 << 31:
            raise self.error("data.pkl is implausibly large")
        data = self._zip.read(pkl)
        storage_types: dict[str, StorageRef] = {}

        def pload(pid: Any) -> Any:
            if not isinstance(pid, tuple) or not pid or pid[0] != "storage" or len(pid) < 5:
                raise WeightError(f"{self.path}: unsupported persistent id {str(pid)[:80]}")
            _, stype, key, location, numel = pid[:5]
            if not isinstance(stype, StorageType) or not isinstance(numel, int) or numel < 0:
                raise WeightError(f"{self.path}: malformed storage reference {str(pid)[:80]}")
            key = str(key)
            member = prefix + "data/" + key
            if member not in members:
                raise WeightError(f"{self.path}: storage {key} is missing from the archive (truncated?)")
            ref = storage_types.get(key)
            if ref is None:
                ref = storage_types[key] = StorageRef(key, stype.dtype, numel, str(location))
                self._storages[key] = self._member_span(members[member])
            return ref

        return safe_load(data, self.path, self._mode, pload)

    def _member_span(self, zi: zipfile.ZipInfo) -> tuple:
        if zi.compress_type != zipfile.ZIP_STORED:
            return (None, zi.file_size, zi)
        with open(self.path, "rb") as f:
            f.seek(zi.header_offset)
            lh = f.read(30)
        if len(lh) < 30 or lh[:4] != b"PK\x03\x04":
            raise WeightError(f"{self.path}: bad zip entry for {zi.filename}")
        nlen, xlen = struct.unpack("<HH", lh[26:30])
        off = zi.header_offset + 30 + nlen + xlen
        if off + zi.file_size > self._size:
            raise WeightError(f"{self.path}: {zi.filename} runs past the end of the file (truncated?)")
        return (off, zi.file_size, zi)

    def _open_legacy(self) -> tuple:
        roots: dict[str, StorageRef] = {}

        def pload(pid: Any) -> Any:
            if isinstance(pid, tuple) and len(pid) > 1 and pid[0] == "module":
                # legacy whole-module files name each module class here (plus its source, ignored)
                if isinstance(pid[1], type) and issubclass(pid[1], Inert):
                    return pid[1]
                raise WeightError(f"{self.path}: malformed module reference in pickle")
            if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
                raise WeightError(f"{self.path}: unsupported persistent id {str(pid)[:80]}")
            _, stype, key, location, numel = pid[:5]
            view = pid[5] if len(pid) > 5 else None
            if not isinstance(stype, StorageType) or not isinstance(numel, int) or numel < 0:
                raise WeightError(f"{self.path}: malformed storage reference {str(pid)[:80]}")
            key = str(key)
            if key not in roots:
                roots[key] = StorageRef(key, stype.dtype, numel, str(location))
            root = roots[key]
            if view is not None:
                try:
                    vkey, voff, vsize = view
                    voff, vsize = int(voff), int(vsize)
                except (TypeError, ValueError):
                    raise WeightError(f"{self.path}: malformed storage view {str(view)[:80]}") from None
                return StorageRef(key, root.dtype, vsize, root.location, (voff, vsize))
            return root

        with open(self.path, "rb") as f:
            magic, _ = safe_load(f, self.path, "strict")
            if magic != LEGACY_MAGIC:
                raise self.error("not a PyTorch checkpoint (no zip archive and no legacy magic number)")
            proto, _ = safe_load(f, self.path, "strict")
            if proto != 1001:
                raise self.error(f"unsupported legacy protocol version {proto!r}")
            sysinfo, _ = safe_load(f, self.path, "strict")
            if isinstance(sysinfo, dict) and sysinfo.get("little_endian") is False:
                self._big_endian = True
            obj, up = safe_load(f, self.path, self._mode, pload)
            keys, _ = safe_load(f, self.path, "strict")
            if not isinstance(keys, list) or len(keys) > 10_000_000:
                raise self.error("malformed storage key list")
            pos = f.tell()
        for key in keys:
            key = str(key)
            if key not in roots:
                raise self.error(f"storage {key} is listed but never referenced")
            if pos + 8 > self._size:
                raise self.error(f"truncated at storage {key}")
            with open(self.path, "rb") as f:
                f.seek(pos)
                (numel,) = struct.unpack("<q", f.read(8))
            isz = _itemsize(roots[key].dtype)
            if numel < 0 or pos + 8 + numel * isz > self._size:
                raise self.error(f"storage {key} ({numel} elements) runs past the end of the file (truncated?)")
            self._storages[key] = (pos + 8, numel * isz, None)
            pos += 8 + numel * isz
        return obj, up

    # ---- tensor tree ------------------------------------------------------------------------------
    def _collect(self, obj: Any) -> None:
        key = self.options.get("key")
        found: dict[str, Any] = {}
        if key:
            for part in key.split("."):
                obj = _child(obj, part)
                if obj is None:
                    raise self.error(f"checkpoint has no entry {key!r}")
        elif key is None and isinstance(obj, dict) and not all(_is_tensor(v) for v in obj.values()):
            for k in _ROOT_KEYS:
                if k in obj and _walk(obj[k], "", {}, limit=1):
                    self.notes.append(f"tensors taken from checkpoint[{k!r}] (pass key='' to list everything)")
                    obj = obj[k]
                    break
        _walk(obj, "", found)
        for i, (name, t) in enumerate(found.items()):
            name = name or os.path.splitext(os.path.basename(self.path))[0]
            if isinstance(t, np.ndarray):
                self._arrays = getattr(self, "_arrays", {})
                self._arrays[name] = t
                self.add(TensorInfo(name, tuple(t.shape), t.dtype.name))
                continue
            if t.storage.key not in self._storages:
                raise self.error(f"storage {t.storage.key} has no data in the file", name)
            stored = t.dtype
            self.add(TensorInfo(name, t.size, read_dtype(stored), "" if read_dtype(stored) == stored else stored,
                                index=i, extra={"ref": t}))

    def _read(self, info: TensorInfo) -> np.ndarray:
        arrays = getattr(self, "_arrays", {})
        if info.name in arrays:
            return arrays[info.name]
        t: TensorRef = info.extra["ref"]
        off, nbytes, zi = self._storages[t.storage.key]
        view_off = 0
        if t.storage.view is not None:
            view_off = t.storage.view[0] * _itemsize(t.storage.dtype)
            nbytes = min(nbytes - view_off, t.storage.view[1] * _itemsize(t.storage.dtype))
        isz = _itemsize(t.dtype)
        dt = raw_dtype(t.dtype)
        if dt.itemsize > 1:
            dt = dt.newbyteorder(">" if self._big_endian else "<")
        n_el = nbytes // isz
        if t.size and 0 in t.size:
            return widen(np.empty(t.size, dt), t.dtype)
        extent = t.offset + sum((s - 1) * st for s, st in zip(t.size, t.stride)) + 1
        if extent > n_el:
            raise self.error(f"tensor of size {t.size} at offset {t.offset} runs past its storage "
                             f"({n_el} elements)", info.name)
        if off is None:
            with self._zip.open(zi) as m:  # type: ignore[union-attr]
                raw = m.read(nbytes + view_off)
            buf = np.frombuffer(raw, np.uint8, count=n_el * isz, offset=view_off).view(dt)
        else:
            if off + view_off + n_el * isz > self._size:
                raise self.error("storage runs past the end of the file (truncated?)", info.name)
            buf = np.memmap(self.path, dtype=dt, mode="r", offset=off + view_off, shape=(n_el,)).view(np.ndarray)
        arr = np.lib.stride_tricks.as_strided(buf[t.offset:], shape=t.size,
                                              strides=tuple(s * isz for s in t.stride), writeable=False)
        if self._big_endian and dt.itemsize > 1:
            arr = arr.astype(dt.newbyteorder("<"))
        return widen(arr, t.dtype)

    def close(self) -> None:
        if getattr(self, "_zip", None) is not None:
            self._zip.close()  # type: ignore[union-attr]
        super().close()


def _is_tensor(o: Any) -> bool:
    return isinstance(o, TensorRef)


def _child(o: Any, part: str) -> Any:
    if isinstance(o, dict):
        if part in o:
            return o[part]
        if part.isdigit() and int(part) in o:
            return o[int(part)]
        return None
    if isinstance(o, (list, tuple)) and part.isdigit() and int(part) < len(o):
        return o[int(part)]
    if isinstance(o, Inert):
        st = o._state[0] if isinstance(o._state, tuple) and len(o._state) == 2 else o._state
        if isinstance(st, dict):
            if part in st:
                return st[part]
            mods = st.get("_modules")
            if isinstance(mods, dict) and part in mods:
                return mods[part]
    return None


def _join(a: str, b: Any) -> str:
    return f"{a}.{b}" if a else str(b)


def _walk(obj: Any, name: str, out: dict, limit: int = 0, depth: int = 0, seen: Optional[set] = None) -> int:
    """Collect tensors (torch state_dict naming for modules) into ``out``; returns how many were found."""
    seen = set() if seen is None else seen
    if depth > 200:
        raise WeightError("checkpoint object nests more than 200 levels deep")
    if isinstance(obj, TensorRef):
        out.setdefault(name, obj)
        return 1
    if isinstance(obj, NumpyArrayStub):
        if obj.array is not None and obj.array.dtype.kind in "biuf":
            out.setdefault(name, obj.array)
            return 1
        return 0
    if not isinstance(obj, (dict, list, tuple, Inert)) or id(obj) in seen:
        return 0
    seen.add(id(obj))
    n = 0
    items: list = []
    if isinstance(obj, dict):
        items = list(obj.items())
    elif isinstance(obj, (list, tuple)):
        items = list(enumerate(obj))
    else:
        st = obj._state
        if isinstance(st, tuple) and len(st) == 2 and (st[0] is None or isinstance(st[0], dict)):
            st = {**(st[0] or {}), **(st[1] if isinstance(st[1], dict) else {})}
        if isinstance(st, dict) and any(k in st for k in ("_parameters", "_buffers", "_modules")):
            skip = st.get("_non_persistent_buffers_set") or set()
            for k in ("_parameters", "_buffers"):
                d = st.get(k)
                if isinstance(d, dict):
                    items += [(pk, pv) for pk, pv in d.items() if not (k == "_buffers" and pk in skip)]
            mods = st.get("_modules")
            if isinstance(mods, dict):
                items += list(mods.items())
        elif isinstance(st, dict):
            items = list(st.items())
        elif st is not None:
            items = [("", st)] if not isinstance(st, (list, tuple)) else list(enumerate(st))
        items += obj._items
    for k, v in items:
        n += _walk(v, _join(name, k) if k != "" else name, out, limit, depth + 1, seen)
        if limit and n >= limit:
            break
    return n


def _detect(path: str, head: bytes) -> int:
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return 3 if any(n.endswith("data.pkl") for n in zip_members(path)) else 0
    if head[:2] == b"\x80\x02" and head[2:3] == b"\x8a" and head[3:4] == b"\x0a" and \
            int.from_bytes(head[4:14], "little") == LEGACY_MAGIC:
        return 3
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return 1
    return 0


register_format(FormatSpec("pytorch", _detect, lambda p, **o: PyTorchCheckpoint(p, **o), (".pt", ".pth", ".bin",
                                                                                           ".ckpt", ".tar")))
