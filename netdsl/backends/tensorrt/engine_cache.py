"""The engine cache: serialized plans keyed by everything that changes them, verified on every load.

The directory is ``cache_path`` (``cache_dir=`` on the command line), else ``$NETDSL_CACHE``, else
``~/.cache/netdsl/tensorrt``. The key hashes the graph structure, the weights, the TensorRT flavour and
version, precision, TF32, profiles, target and workspace. An entry is one file
``<key[:2]>/<key>.engine``: a magic line, a JSON header holding **the key, the payload size and its
SHA-256**, then the plan. :func:`load` serves an entry only when the magic, the key, the size and the
checksum all match; an empty, truncated, corrupted, foreign (another key's) or swapped entry is
reported in the log and rebuilt, never loaded.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import Any, Optional

from ...graph import Graph
from . import _trt
from .plan_file import atomic_write, digest

log = logging.getLogger("netdsl.tensorrt")

MAGIC = b"NETDSL-TRT-ENGINE-CACHE\n"
FORMAT = 2


def directory(path: Optional[str] = None) -> str:
    """The cache directory in use for ``path`` (None: ``$NETDSL_CACHE`` or ``~/.cache/netdsl/tensorrt``)."""
    return str(path or os.environ.get("NETDSL_CACHE")
               or os.path.join(os.path.expanduser("~"), ".cache", "netdsl", "tensorrt"))


def key(graph: Graph, trt: Any, **options: Any) -> str:
    """The cache key of ``graph`` built with ``options`` (precision, tf32, profiles, target, workspace)."""
    parts = {"structure": graph.structure_hash(), "weights": graph.weights_hash(), "trt": _trt.version_string(trt),
             "format": FORMAT, **{k: options[k] for k in sorted(options)}}
    from ...plugins.tensorrt_plugin import fingerprint
    if fingerprint(graph):  # plugin layers: what the plan holds of them (creator, fields, shape programs)
        parts["plugins"] = fingerprint(graph)
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=repr).encode()).hexdigest()


def entry_path(cache_key: str, path: Optional[str] = None) -> str:
    return os.path.join(directory(path), cache_key[:2], cache_key + ".engine")


def store(cache_key: str, plan: bytes, meta: Optional[dict] = None, path: Optional[str] = None) -> str:
    """Write an entry atomically; returns its file name."""
    head = json.dumps({"key": cache_key, **digest(plan), "meta": meta or {}}, default=str).encode()
    file = entry_path(cache_key, path)
    atomic_write(file, MAGIC + len(head).to_bytes(4, "little") + head + plan)
    return file


def verify(data: bytes, cache_key: str) -> tuple[bytes, dict]:
    """The plan and metadata of an entry's bytes, or ValueError saying why the entry is unusable."""
    if not data:
        raise ValueError("empty file")
    if not data.startswith(MAGIC):
        raise ValueError("not a netdsl engine cache entry (no header)")
    n = int.from_bytes(data[len(MAGIC):len(MAGIC) + 4], "little")
    try:
        head = json.loads(data[len(MAGIC) + 4:len(MAGIC) + 4 + n])
    except ValueError:
        raise ValueError("unreadable header") from None
    if not isinstance(head, dict) or head.get("key") != cache_key:
        raise ValueError(f"it holds another key ({str(head.get('key') if isinstance(head, dict) else '?')[:12]}...)")
    plan = data[len(MAGIC) + 4 + n:]
    got = digest(plan)
    if not plan or got["size"] != head.get("size") or got["sha256"] != head.get("sha256"):
        raise ValueError(f"payload of {got['size']} bytes does not match its header (size {head.get('size')}, "
                         "SHA-256): truncated or corrupted")
    return plan, dict(head.get("meta") or {})


def load(cache_key: str, path: Optional[str] = None) -> Optional[tuple[bytes, dict]]:
    """``(plan, meta)`` of a verified entry, or None (absent or unusable: the caller rebuilds)."""
    file = entry_path(cache_key, path)
    try:
        with open(file, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        log.warning("engine cache entry %s is unreadable (%s): rebuilding", file, e)
        return None
    try:
        return verify(data, cache_key)
    except ValueError as e:
        log.warning("engine cache entry %s is unusable (%s): rebuilding", file, e)
        return None
