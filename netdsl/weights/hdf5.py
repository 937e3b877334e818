"""HDF5 checkpoints: generic (dataset paths as names), Keras 2 (``layer_names``/``weight_names``), Keras 3 ``.weights.h5``.

* Generic: every dataset, named by its path (``block1/conv/kernel``).
* Keras 2 (``model.save('m.h5')`` / ``save_weights``): layers in the order of the ``layer_names``
  attribute (also split as ``layer_names0..N``), each layer's weights in ``weight_names`` order.
  Names are the weight names (``conv2d/kernel:0``); ``TensorInfo.layer`` is the layer.
* Keras 3 (``*.weights.h5``): ``layers/<path>/vars/<i>`` (nested models recurse through ``layers``),
  and for subclassed models ``<attribute>/.../vars/<i>`` (the optimizer's variables are skipped);
  named ``<path>/vars/<i>`` (``layers/`` levels left out); ``TensorInfo.layer`` is the layer's own name. Layers are ordered as
  Keras wrote them (by file position), which is the model's layer order.
* Keras 3 ``.keras`` archives: their ``model.weights.h5`` member (memory-mapped when stored, as Keras
  writes it).
* bfloat16 stored as opaque 2-byte data (``attrs['dtype'] == 'bfloat16'``) reads as float32.

Contiguous, uncompressed datasets are memory-mapped; filtered ones (deflate, LZF, shuffle, fletcher32)
are decoded here chunk by chunk within their sizes; others are read through h5py. External links, external raw storage, virtual datasets
and filter plugins are refused (:mod:`netdsl.weights.hdf5_guard`): only the file's own bytes are read.
"""
from __future__ import annotations

import io
import math
import os
import select
import signal
from typing import Any, Optional

import numpy as np

from ..errors import WeightError

from .base import Checkpoint, FormatSpec, TensorInfo, bf16_to_f32, mmap_array, register_format
from .budget import heap_bytes
from .hdf5_guard import check_dataset, child, chunk_bytes, filters, read_filtered

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


MAX_ATTR_ITEMS = 1_000_000
MAX_ATTR_BYTES = 64 << 20


def safe_attr(obj: Any, name: str) -> Any:
    """Read an attribute after checking its declared size (a corrupt header must not make HDF5 allocate GBs)."""
    import h5py
    aid = h5py.h5a.open(obj.id, name.encode())
    n = math.prod(aid.shape) if aid.shape else 1
    if n > MAX_ATTR_ITEMS or n * aid.get_type().get_size() > MAX_ATTR_BYTES:
        raise ValueError(f"attribute {name!r} of {obj.name} declares {n} items: corrupt?")
    return obj.attrs[name]


def _attr_list(group: Any, name: str) -> Optional[list]:
    """An attribute that Keras may have split into ``name0``, ``name1`` ... (None when absent)."""
    def dec(xs: Any) -> list:
        return [x.decode("utf8") if isinstance(x, bytes) else str(x) for x in np.asarray(xs).ravel()]
    if name in group.attrs:
        return dec(safe_attr(group, name))
    if f"{name}0" not in group.attrs:
        return None
    out: list = []
    i = 0
    while f"{name}{i}" in group.attrs and i < 10_000:
        out += dec(safe_attr(group, f"{name}{i}"))
        i += 1
        if len(out) > MAX_ATTR_ITEMS:
            raise ValueError(f"attribute {name!r} is implausibly long: corrupt?")
    return out


class HDF5Checkpoint(Checkpoint):
    format = "hdf5"
    single_file = True  # tensor data comes from this file alone

    def _open(self) -> None:
        import h5py
        if self.options.get("sandbox", True) and hasattr(os, "fork"):
            _probe_in_child(self, float(self.options.get("sandbox_timeout", 60.0)))
        member = keras_archive_member(self.path)
        if member is None:
            self._base: Optional[int] = 0
            self._h5size = self.file_size
            self._h5 = h5py.File(self.path, "r")
        else:  # a Keras 3 ``.keras`` archive: the weights are its model.weights.h5 member
            off, size, full, stored = member
            self._h5size = full
            if stored:
                self._base = off  # datasets are memory-mapped from the archive itself
                self._h5 = h5py.File(_Window(self.path, off, size), "r")
            else:
                import zlib
                self._base = None
                self.charge(size + 2 * full, f"inflating its {KERAS_WEIGHTS_MEMBER} member")
                with open(self.path, "rb") as f:
                    f.seek(off)
                    d = zlib.decompressobj(-15)
                    data = d.decompress(f.read(size), full + 1)
                if len(data) != full or not d.eof:
                    raise self.error(f"{KERAS_WEIGHTS_MEMBER} does not inflate to the {full} bytes its zip entry "
                                     "declares: corrupt (or a decompression bomb)")
                self._h5 = h5py.File(io.BytesIO(data), "r")
        self._ds: dict[str, str] = {}
        layout = self.options.get("layout")
        root = self._h5
        if "model_weights" in root and _attr_list(self._get(root, "model_weights"), "layer_names") is not None:
            root = self._get(root, "model_weights")
        if layout in (None, "keras2") and _attr_list(root, "layer_names") is not None:
            self.layout = "keras2"
            self._open_keras2(root)
        elif layout in (None, "keras3") and self._looks_keras3(self._h5):
            self.layout = "keras3"
            self._open_keras3()
        else:
            self.layout = "generic"
            self._open_generic()

    @property
    def detail(self) -> str:
        return {"keras2": "Keras 2 HDF5", "keras3": "Keras 3 .weights.h5", "generic": "HDF5"}[self.layout]

    def _get(self, group: Any, path: str) -> Any:
        return child(group, path, self.path)

    def _add_ds(self, name: str, path: str, layer: str = "", index: int = -1) -> None:
        import h5py
        ds = self._get(self._h5, path)
        if not isinstance(ds, h5py.Dataset):
            raise self.error(f"{path} is not a dataset", name)
        check_dataset(ds, self._h5, self.path)
        stored = _stored(ds) if ds.shape is not None else None  # shape None: a null dataspace, no data
        if stored is None:
            if self.layout != "generic":  # Keras lists it as a weight: skipping it would only show up as missing
                none = " (no dataspace)" if ds.shape is None else ""
                raise self.error(f"weight {path} holds {ds.dtype} data{none}, not numbers", name)
            return
        dt = "float32" if stored == "bfloat16" else stored
        numel = math.prod(ds.shape) if ds.shape else 1
        mapped = self._mapped_offset(ds, stored) is not None
        heap = heap_bytes(numel, ds.dtype.itemsize, stored, mapped=mapped, byteswap=ds.dtype.byteorder == ">") \
            + chunk_bytes(ds)
        self._ds[name] = path
        self.add(TensorInfo(name, tuple(int(d) for d in ds.shape), dt, "bfloat16" if stored == "bfloat16" else "",
                            layer=layer, index=index, extra={"path": path}), heap=heap)

    def _mapped_offset(self, ds: Any, stored: str) -> Optional[int]:
        """Offset in the checkpoint file of a dataset that can be memory-mapped (contiguous, unfiltered)."""
        if self._base is None or ds.chunks is not None or ds.size == 0 or filters(ds) \
                or ds.dtype.kind not in "biuf" + ("V" if stored == "bfloat16" else ""):
            return None
        try:
            off = ds.id.get_offset()
        except Exception:  # h5py raises various errors for datasets without a data address
            return None
        if off is None or off < 0 or off + ds.id.get_storage_size() > self._h5size:
            return None
        return off + self._base

    def _open_generic(self) -> None:
        import h5py
        paths: list[str] = []

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                paths.append(name)
        self._h5.visititems(visit)
        for p in paths:
            self._add_ds(p, p)

    def _open_keras2(self, root: Any) -> None:
        layers = _attr_list(root, "layer_names") or []
        idx = 0
        for layer in layers:
            if layer not in root:
                raise self.error(f"layer_names lists {layer!r} but the file has no such group")
            g = self._get(root, layer)
            wnames = _attr_list(g, "weight_names") or []
            for w in wnames:
                if w not in g:
                    raise self.error(f"layer {layer!r} lists weight {w!r} that is not in the file", w)
                name = w if w.startswith(layer + "/") or w in self._infos else f"{layer}/{w}"
                if name in self._infos:
                    name = f"{layer}/{w}"
                self._add_ds(name, self._get(g, w).name.lstrip("/"), layer=layer, index=idx)
                idx += 1

    def _open_keras3(self) -> None:
        import h5py
        entries: list[tuple] = []
        groups: set = set()

        def walk(group: Any, prefix: str) -> None:
            if group.id in groups:  # a group linked from several places (or from inside itself): once
                return
            groups.add(group.id)
            if "vars" in group and isinstance(self._get(group, "vars"), h5py.Group):
                v = self._get(group, "vars")
                layer = safe_attr(v, "name") if "name" in v.attrs else prefix.rsplit("/", 1)[-1]
                layer = layer.decode() if isinstance(layer, bytes) else str(layer)
                keys = sorted((k for k in v if k.isdigit()), key=int)
                for k in keys:
                    var = self._get(v, k)
                    entries.append((f"{prefix}/vars/{k}" if prefix else f"vars/{k}", var.name.lstrip("/"),
                                    layer, _pos(var)))
            for k in group:
                sg = self._get(group, k)
                if k == "vars" or not isinstance(sg, h5py.Group) or (k == "optimizer" and not prefix):
                    continue
                if k in _KERAS3_CONTAINERS:  # a model's layer list: its layers' names, without "layers/"
                    for kk in sg:
                        walk(self._get(sg, kk), f"{prefix}/{kk}" if prefix else kk)
                else:  # an attribute of a subclassed layer or model (``self.head = Conv2D(...)``)
                    walk(sg, f"{prefix}/{k}" if prefix else k)
        walk(self._h5, "")
        # keep each layer's vars together, layers in the order Keras wrote them
        layer_pos: dict[str, float] = {}
        for name, _p, _l, pos in entries:
            lp = name.rsplit("/vars/", 1)[0]
            layer_pos[lp] = min(layer_pos.get(lp, float("inf")), pos)
        entries.sort(key=lambda e: (layer_pos[e[0].rsplit("/vars/", 1)[0]], e[0].rsplit("/vars/", 1)[0],
                                    int(e[0].rsplit("/", 1)[1])))
        for i, (name, path, layer, _pos_) in enumerate(entries):
            self._add_ds(name, path, layer=layer, index=i)

    def _looks_keras3(self, root: Any) -> bool:
        """Keras 3 writes a ``vars`` group for the model itself and for every layer below it: under
        ``layers`` (functional and sequential models) or under attribute names (subclassed models)."""
        import h5py
        for k in list(root)[:1000]:
            g = self._get(root, k)
            if not isinstance(g, h5py.Group):
                continue
            if k in _KERAS3_CONTAINERS:
                if any(isinstance(self._get(g, c), h5py.Group) and ("vars" in self._get(g, c) or "layers" in
                                                                   self._get(g, c)) for c in list(g)[:1000]):
                    return True
            elif k != "vars" and "vars" in g and "vars" in root:
                return True
        return False

    def keras_layer_config(self, layer: str) -> Optional[dict]:
        """The Keras config of ``layer`` from a full-model file's ``model_config`` (None if unknown)."""
        if not hasattr(self, "_kcfg"):
            self._kcfg: dict = {}
            raw = safe_attr(self._h5, "model_config") if "model_config" in self._h5.attrs else None
            try:
                import json
                doc = json.loads(raw.decode() if isinstance(raw, bytes) else raw) if raw is not None else None
            except (ValueError, TypeError, RecursionError):  # the weights do not need it: a corrupt one is unknown
                doc = None

            def walk(c: Any, depth: int = 0) -> None:
                if not isinstance(c, dict) or depth > 50:
                    return
                cfg = c.get("config")
                if isinstance(cfg, dict):
                    if isinstance(cfg.get("name"), str):
                        self._kcfg.setdefault(cfg["name"], cfg)
                    subs = cfg.get("layers")
                    for sub in subs if isinstance(subs, list) else []:
                        walk(sub, depth + 1)
            walk(doc)
        return self._kcfg.get(layer)

    def _read(self, info: TensorInfo) -> np.ndarray:
        ds = self._get(self._h5, self._ds[info.name])
        stored = info.stored or info.dtype
        off = self._mapped_offset(ds, stored)
        if off is not None:
            if stored == "bfloat16":
                return mmap_array(self.path, off, "bfloat16", info.shape)
            bo = ">" if ds.dtype.byteorder == ">" else "<"
            return mmap_array(self.path, off, np.dtype(info.dtype).name, info.shape, byteorder=bo)
        arr = read_filtered(ds, self._h5size, self.path) if filters(ds) else ds[()]
        if stored == "bfloat16":
            return bf16_to_f32(np.asarray(arr).view(np.uint16))
        return np.asarray(arr)

    def close(self) -> None:
        h = getattr(self, "_h5", None)
        if h is not None:
            try:
                h.close()
            except Exception:
                pass
        super().close()


def _limit_cpu(timeout: float) -> None:
    """Stop this (probe) process after about ``timeout`` seconds of CPU even when nobody waits for it any
    more: the parent kills it at its timeout, but a parent killed first would leave it spinning."""
    import resource
    if not math.isfinite(timeout):
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    cpu = int(timeout) + 2
    if hard != resource.RLIM_INFINITY:
        cpu = min(cpu, hard)
    if soft == resource.RLIM_INFINITY or soft > cpu:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, hard))


def limit_memory(nbytes: int) -> None:
    """Let this (probe) process map at most ``nbytes`` more than it has now: the HDF5 library parsing corrupt
    metadata allocated 1.1 GB for a 12 kB file, beyond any charge of the budget (it allocates, not Python)."""
    import resource
    try:
        with open("/proc/self/statm") as f:
            now = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return  # no /proc: the CPU limit and the parent's timeout still bound the probe
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = now + int(nbytes)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    if soft == resource.RLIM_INFINITY or soft > cap:
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def _probe_in_child(ck: "HDF5Checkpoint", timeout: float) -> None:
    """Parse the file's index in a forked child first: the HDF5 C library can hang or crash on corrupt
    metadata, and only a separate process can be stopped. Raises WeightError if the child fails."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: parse, report, exit without running any cleanup of the parent's state
        msg = b"ok"
        try:
            os.close(r)
            _limit_cpu(timeout)
            limit_memory(ck.budget.limit)
            HDF5Checkpoint(ck.path, **{**ck.options, "sandbox": False}).close()
        except BaseException as e:  # noqa: BLE001 - everything is reported to the parent
            msg = str(e).encode("utf8", "replace")[:8000] or type(e).__name__.encode()
        finally:
            try:
                os.write(w, msg)
            finally:
                os._exit(0)
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], timeout)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise WeightError(f"{ck.path}: the HDF5 library did not finish parsing the file in {timeout:.0f} s "
                              "(corrupt metadata?); stopped")
        chunks = []
        while True:
            b = os.read(r, 65536)
            if not b:
                break
            chunks.append(b)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(r)
    msg = b"".join(chunks).decode("utf8", "replace")
    if os.WIFSIGNALED(status):
        raise WeightError(f"{ck.path}: the HDF5 library crashed parsing the file (signal "
                          f"{os.WTERMSIG(status)}): corrupt metadata")
    if msg != "ok":
        raise WeightError(msg if ck.path in msg else f"{ck.path}: {msg}")


_KERAS3_CONTAINERS = ("layers", "_layer_checkpoint_dependencies")


def _pos(ds: Any) -> float:
    try:
        off = ds.id.get_offset()
        if off is not None:
            return float(off)
    except Exception:
        pass
    try:
        import h5py
        return float(h5py.h5o.get_info(ds.id).addr)
    except Exception:
        return float("inf")


def _stored(ds: Any) -> Optional[str]:
    """Stored dtype name of a dataset (None for non-numeric datasets, which are skipped)."""
    dt = ds.dtype
    tag = safe_attr(ds, "dtype") if "dtype" in ds.attrs else b""
    tag = tag.decode() if isinstance(tag, bytes) else str(tag)
    if dt.kind == "V" and dt.itemsize == 2 and (tag == "bfloat16" or "bfloat16" in str(getattr(dt, "metadata", ""))
                                                or _opaque_tag(ds) == "bfloat16"):
        return "bfloat16"
    if tag == "bfloat16" and dt.itemsize == 2 and dt.kind in "uV":
        return "bfloat16"
    if dt.kind in "biuf" and not dt.fields:
        return np.dtype(dt).newbyteorder("=").name
    return None


def _opaque_tag(ds: Any) -> str:
    try:
        t = ds.id.get_type()
        tag = t.get_tag()
        return tag.decode() if isinstance(tag, bytes) else str(tag)
    except Exception:
        return ""


def _detect(path: str, head: bytes) -> int:
    for off in (0, 512, 1024, 2048):
        if head[off:off + 8] == HDF5_MAGIC:
            return 3
    if head[:4] == b"PK\x03\x04" and keras_archive_member(path) is not None:
        return 3
    return 0


KERAS_WEIGHTS_MEMBER = "model.weights.h5"


def keras_archive_member(path: str) -> Optional[tuple[int, int, int, bool]]:
    """(data offset, stored size, uncompressed size, stored uncompressed) of a ``.keras`` archive's weights
    member, else None."""
    import struct
    import zipfile
    try:
        with zipfile.ZipFile(path) as z:
            info = z.getinfo(KERAS_WEIGHTS_MEMBER)
            if "config.json" not in z.namelist() or info.compress_type not in (zipfile.ZIP_STORED,
                                                                               zipfile.ZIP_DEFLATED):
                return None
        with open(path, "rb") as f:
            f.seek(info.header_offset)
            hdr = f.read(30)
            if len(hdr) < 30 or hdr[:4] != b"PK\x03\x04":
                return None
            n, m = struct.unpack("<HH", hdr[26:30])
            off = info.header_offset + 30 + n + m
            if off + info.compress_size > os.fstat(f.fileno()).st_size:
                return None
        return off, info.compress_size, info.file_size, info.compress_type == zipfile.ZIP_STORED
    except (OSError, KeyError, zipfile.BadZipFile, struct.error, ValueError):
        return None


class _Window(io.RawIOBase):
    """A read-only file object over ``size`` bytes of ``path`` starting at ``offset`` (for h5py)."""

    def __init__(self, path: str, offset: int, size: int):
        super().__init__()
        self._f = open(path, "rb")
        self._off, self._size, self._pos = offset, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        self._pos = max(0, pos if whence == 0 else self._pos + pos if whence == 1 else self._size + pos)
        return self._pos

    def readinto(self, b: Any) -> int:
        n = max(0, min(len(b), self._size - self._pos))
        self._f.seek(self._off + self._pos)
        got = self._f.readinto(memoryview(b)[:n])
        self._pos += got
        return got

    def close(self) -> None:
        self._f.close()
        super().close()


register_format(FormatSpec("hdf5", _detect, lambda p, **o: HDF5Checkpoint(p, **o), (".h5", ".hdf5", ".keras")))
