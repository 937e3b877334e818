"""Identifying a bound weight without reading it, for caches keyed by a network and its weights.

A checkpoint tensor is identified by the file its data is read from -- real path, device, inode,
size, modification and status-change times, the metadata ``make`` and git trust (the status-change
time moves on every write, and user code cannot set it) -- with the reader's format and options,
the tensor's name, the layout transform and the dtype it is converted to. No identity is given
(the weight is then identified by its content, :func:`weight_identity`) when:

* the file changed less than :data:`RECENT_S` seconds ago (a second write within the same
  timestamp tick would look unchanged);
* the reader takes data from files it does not name (ONNX external data, Darknet's cfg ...);
* the transform is the user's own function (only netdsl's transforms are known by their name).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any, Callable, Optional

import numpy as np

RECENT_S = 2.0


def file_identity(path: str) -> Optional[list]:
    """``[dev, inode, size, mtime_ns, ctime_ns]`` of ``path``, or None (missing, or changed just now)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if time.time() - max(st.st_mtime, st.st_ctime) < RECENT_S:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def tensor_identity(ckpt: Any, tensor: str, transform: Any, dtype: Any) -> Optional[Callable[[], Optional[str]]]:
    """A function returning the identity of ``tensor`` of ``ckpt`` as read now (None when it has none
    now), or None when this tensor can never be identified without its content."""
    path = ckpt.tensor_file(tensor)
    if path is None:
        return None
    if transform is not None and not str(getattr(transform.fn, "__module__", "")).startswith("netdsl.weights."):
        return None
    real = getattr(ckpt, "_realpaths", None)  # one realpath per file of this checkpoint, not one per tensor
    if real is None:
        real = ckpt._realpaths = {}
    if path not in real:
        real[path] = os.path.realpath(path)
    fixed = [real[path], ckpt.format, sorted((str(k), repr(v)) for k, v in ckpt.options.items()),
             tensor, None if transform is None else transform.name, str(np.dtype(dtype))]

    def identity() -> Optional[str]:
        f = file_identity(path)
        return None if f is None else json.dumps(["file", f] + fixed)
    return identity


def weight_identity(param: Any) -> str:
    """What identifies a bound parameter's data: its checkpoint tensor's identity, else a content hash."""
    ident = getattr(param.source, "identity", None)
    got = ident() if ident is not None else None
    if got is not None:
        return got
    arr = np.ascontiguousarray(param.value())
    h = hashlib.sha256(f"{arr.dtype}:{arr.shape}:".encode())
    h.update(arr.view(np.uint8).reshape(-1) if arr.size else b"")
    return "sha256:" + h.hexdigest()


__all__ = ["RECENT_S", "file_identity", "tensor_identity", "weight_identity"]
