"""PyTorch ``.pt/.pth/.bin`` checkpoints (zip format and legacy pre-1.6), without torch and without running pickle code.

The pickle is read by :mod:`netdsl.weights.safe_pickle` (allow-listed globals only); tensors become
references to storages that are memory-mapped from the file when read. Options:

* ``pickle_mode``: ``"auto"`` (default; ``"strict"`` is the same): only globals known to be data
  (tensors, storages, NumPy arrays, plain containers...); any other global is refused with its name.
  ``"inert"`` (explicit): other classes, e.g. the modules of a whole pickled model (YOLOv5 style),
  become placeholders that are never imported or run, and a note lists them. Globals that can only
  serve to run code (os.system, builtins.exec ...) are refused in every mode.
* ``key``: which part of a checkpoint dict holds the weights (default: ``state_dict``/``model``/...
  when the top level is not itself a dict of tensors; ``""`` for everything, dotted paths allowed).
"""
from __future__ import annotations

import os
import struct
import zipfile
from typing import Any, Callable, Optional

import numpy as np

from ..errors import WeightError
from .base import (MAX_NAME, Checkpoint, FormatSpec, TensorInfo, raw_dtype, read_dtype, read_zip_member, register_format,
                   widen, zip_data_offset)
from .budget import heap_bytes
from .npz import zip_members
from .pickle_globals import itemsize as _itemsize
from .safe_pickle import Inert, NumpyArrayStub, StorageRef, StorageType, TensorRef, describe, safe_load

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_ROOT_KEYS = ("state_dict", "model_state_dict", "model", "module", "ema", "net", "network", "params",
              "weights", "generator")

class PyTorchCheckpoint(Checkpoint):
    format = "pytorch"
    single_file = True  # tensor data comes from this file alone

    def _open(self) -> None:
        mode = self.options.get("pickle_mode", "auto")
        if mode not in ("auto", "strict", "inert"):
            raise WeightError(f"pickle_mode must be auto, strict or inert, not {mode!r}")
        self._mode = mode
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
        if up.stubs:
            names = sorted(f"{m}.{n}" if f"{m}.{n}".isprintable() else describe(f"{m}.{n}") for m, n in up.stubs)
            self.notes.append(f"the pickle holds {len(names)} class(es) that are not plain tensors "
                              f"({', '.join(names[:4])}{' ...' if len(names) > 4 else ''}); they were read as inert "
                              "placeholders: nothing was imported or run")
        self._collect(obj)

    # ---- containers ------------------------------------------------------------------------------
    def _storage_ref(self, pid: Any, refs: dict) -> StorageRef:
        """The storage a persistent id ``('storage', type, key, location, numel[, view])`` names."""
        if not isinstance(pid, tuple) or len(pid) not in (5, 6) or pid[0] != "storage":
            raise WeightError(f"{self.path}: unsupported persistent id {describe(pid)}")
        _, stype, key, location, numel = pid[:5]
        if not isinstance(stype, StorageType) or not isinstance(numel, int) or isinstance(numel, bool) \
                or numel < 0 or not isinstance(key, (str, int)) or len(str(key)) > 256 \
                or not isinstance(location, str):  # str() of anything else may never finish
            raise WeightError(f"{self.path}: malformed storage reference {describe(pid)}")
        key = str(key)
        root = refs.get(key)
        if root is None:
            root = refs[key] = StorageRef(key, stype.dtype, numel, location[:64])
        elif root.dtype != stype.dtype or root.numel != numel:
            raise WeightError(f"{self.path}: storage {key} is referenced as {stype.dtype} x {numel} and as "
                              f"{root.dtype} x {root.numel}")
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return root
        try:
            _vkey, voff, vsize = view
        except (TypeError, ValueError):
            raise WeightError(f"{self.path}: malformed storage view {describe(view)}") from None
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (voff, vsize)) or voff < 0 or vsize < 0 \
                or voff + vsize > root.numel:
            raise WeightError(f"{self.path}: storage view {describe(view)} lies outside storage {key} "
                              f"({root.numel} elements)")
        return StorageRef(key, root.dtype, vsize, root.location, (voff, vsize))

    def _open_zip(self) -> tuple:
        self._zip = zipfile.ZipFile(self.path)
        names = self._zip.namelist()
        if len(set(names)) != len(names):  # which copy a reader takes differs (torch's reader and zipfile's)
            twice = next(n for i, n in enumerate(names) if n in names[:i])
            raise self.error(f"zip archive holds two members named {describe(twice)}: refused (ambiguous)")
        pkls = [n for n in names if n.endswith("data.pkl") and n.count("/") <= 1]
        if not pkls:
            raise self.error("zip archive has no data.pkl: not a PyTorch checkpoint")
        pkl = pkls[0]
        prefix = pkl[: -len("data.pkl")]
        members = {zi.filename: zi for zi in self._zip.infolist()}
        if prefix + "byteorder" in names:
            if members[prefix + "byteorder"].file_size > 16:
                raise self.error("byteorder record is implausibly large")
            order = read_zip_member(self._zip, members[prefix + "byteorder"], self._size, self.path)
            if order.strip() not in (b"little", b"big"):
                raise self.error(f"byteorder record says {describe(order)}, not 'little' or 'big'")
            self._big_endian = order.strip() == b"big"
        zi = members[pkl]
        self.charge(zi.file_size, "its data.pkl")
        data = read_zip_member(self._zip, zi, self._size, self.path)
        refs: dict[str, StorageRef] = {}

        def pload(pid: Any) -> Any:
            ref = self._storage_ref(pid, refs)
            member = prefix + "data/" + ref.key
            if member not in members:
                raise WeightError(f"{self.path}: storage {ref.key} is missing from the archive (truncated?)")
            if ref.key not in self._storages:
                self._storages[ref.key] = self._member_span(members[member])
            return ref

        return safe_load(data, self.path, self._mode, pload, self.budget)

    def _member_span(self, zi: zipfile.ZipInfo) -> tuple:
        """(file offset or None when deflated, bytes, member) of a storage's zip member."""
        with open(self.path, "rb") as f:
            off = zip_data_offset(f, zi, self._size, self.path)
        return (off, zi.file_size, zi)

    def _open_legacy(self) -> tuple:
        refs: dict[str, StorageRef] = {}

        def pload(pid: Any) -> Any:
            if isinstance(pid, tuple) and len(pid) > 1 and pid[0] == "module":
                # legacy whole-module files name each module class here (plus its source, ignored)
                if isinstance(pid[1], type) and issubclass(pid[1], Inert):
                    return pid[1]
                raise WeightError(f"{self.path}: malformed module reference in pickle")
            return self._storage_ref(pid, refs)

        with open(self.path, "rb") as f:
            magic, _ = safe_load(f, self.path, "strict", budget=self.budget)
            if magic != LEGACY_MAGIC:
                raise self.error("not a PyTorch checkpoint (no zip archive and no legacy magic number)")
            proto, _ = safe_load(f, self.path, "strict", budget=self.budget)
            if proto != 1001:
                raise self.error(f"unsupported legacy protocol version {describe(proto)}")
            sysinfo, _ = safe_load(f, self.path, "strict", budget=self.budget)
            if isinstance(sysinfo, dict) and sysinfo.get("little_endian") is False:
                self._big_endian = True
            obj, up = safe_load(f, self.path, self._mode, pload, self.budget)
            keys, _ = safe_load(f, self.path, "strict", budget=self.budget)
            if not isinstance(keys, list) or len(keys) > 10_000_000:
                raise self.error("malformed storage key list")
            pos = f.tell()
            for key in keys:
                if not isinstance(key, (str, int)) or isinstance(key, bool):
                    raise self.error(f"storage key {describe(key)} is not a name")
                key = str(key)
                if key not in refs:
                    raise self.error(f"storage {key} is listed but never referenced")
                if key in self._storages:
                    raise self.error(f"storage {key} is listed twice")
                f.seek(pos)
                raw = f.read(8)
                if len(raw) < 8:
                    raise self.error(f"truncated at storage {key}")
                (numel,) = struct.unpack("<q", raw)
                isz = _itemsize(refs[key].dtype)
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
        try:
            _walk(obj, "", found, charge=lambda n: self.charge(n, "the names of its tensors"))
        except WeightError as e:
            raise e if self.path in str(e) else self.error(str(e)) from None
        self._arrays: dict[str, np.ndarray] = {}
        for i, (name, t) in enumerate(found.items()):
            name = name or os.path.splitext(os.path.basename(self.path))[0]
            if isinstance(t, np.ndarray):
                if not t.dtype.isnative:  # read() returns what the index says: native byte order
                    self.charge(t.nbytes, "byte-swapping it", name)
                    t = t.astype(t.dtype.newbyteorder("="))
                self._arrays[name] = t
                self.add(TensorInfo(name, tuple(t.shape), t.dtype.name))
                continue
            if t.storage.key not in self._storages:
                raise self.error(f"storage {t.storage.key} has no data in the file", name)
            off, nbytes, _zi = self._storages[t.storage.key]
            if t.storage.view is None and t.storage.nbytes != nbytes:
                raise self.error(f"storage {t.storage.key} holds {nbytes} bytes in the file, the pickle says "
                                 f"{t.storage.nbytes}", name)
            stored = t.dtype
            heap = heap_bytes(t.numel, _itemsize(stored), stored, mapped=off is not None,
                              byteswap=self._big_endian and _itemsize(stored) > 1)
            if off is None:  # a deflated member is decompressed whole for every tensor read from it
                heap += nbytes
            self.add(TensorInfo(name, t.size, read_dtype(stored), "" if read_dtype(stored) == stored else stored,
                                index=i, extra={"ref": t}), heap=heap)

    def _read(self, info: TensorInfo) -> np.ndarray:
        if info.name in self._arrays:
            return self._arrays[info.name]
        t: TensorRef = info.extra["ref"]
        off, nbytes, zi = self._storages[t.storage.key]
        view_off = 0
        if t.storage.view is not None:
            view_off = t.storage.view[0] * _itemsize(t.storage.dtype)
            nbytes = t.storage.view[1] * _itemsize(t.storage.dtype)
        isz = _itemsize(t.dtype)
        dt = raw_dtype(t.dtype)
        if dt.itemsize > 1:
            dt = dt.newbyteorder(">" if self._big_endian else "<")
        if t.size and 0 in t.size:
            return widen(np.empty(t.size, dt), t.dtype)
        n_el = nbytes // isz
        if off is None:
            with self._zip.open(zi) as m:  # type: ignore[union-attr]
                raw = m.read(view_off + nbytes)
            if len(raw) < view_off + n_el * isz:
                raise self.error("storage member is shorter than its zip entry says (corrupt)", info.name)
            buf = np.frombuffer(raw, np.uint8, count=n_el * isz, offset=view_off).view(dt)
        else:
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
    """``a.b`` (a key that is not a str or an int is described briefly: str() of a big tuple can be huge)."""
    b = b if isinstance(b, str) else str(b) if isinstance(b, int) else describe(b)
    if len(a) + len(b) >= MAX_NAME:
        raise WeightError(f"checkpoint has a tensor name longer than {MAX_NAME} characters "
                          f"({describe(a + '.' + b[:100])})")
    return f"{a}.{b}" if a else b


def _walk(obj: Any, name: str, out: dict, limit: int = 0, depth: int = 0, seen: Optional[set] = None,
          charge: Optional[Callable[[int], None]] = None) -> int:
    """Collect tensors (torch state_dict naming for modules) into ``out``; returns how many were found.
    ``charge(n)`` is told the bytes of every name made (long keys repeated along a path of nested dicts
    would otherwise make names of gigabytes from a small file)."""
    seen = set() if seen is None else seen
    if depth > 200:
        raise WeightError("checkpoint object nests more than 200 levels deep")
    if charge is not None and name:
        charge(64 + 4 * len(name))
    if isinstance(obj, TensorRef) or (isinstance(obj, NumpyArrayStub) and obj.array is not None
                                       and obj.array.dtype.kind in "biufc"):
        t = obj if isinstance(obj, TensorRef) else obj.array
        if out.setdefault(name, t) is not t:  # e.g. {'a.b': x, 'a': {'b': y}}: which one binds would be a guess
            raise WeightError(f"checkpoint holds two different tensors named {describe(name)}")
        return 1
    if isinstance(obj, NumpyArrayStub):
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
        n += _walk(v, _join(name, k) if k != "" else name, out, limit, depth + 1, seen, charge)
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
