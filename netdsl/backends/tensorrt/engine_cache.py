"""The engine cache: serialized plans keyed by everything that changes them, verified on every load.

The directory is ``cache_path`` (``cache_dir=`` on the command line), else ``$NETDSL_CACHE``, else
``~/.cache/netdsl/tensorrt``. The key hashes the graph structure, the weights, the TensorRT flavour and
version, precision, TF32, profiles, target and workspace. An entry is one file
``<key[:2]>/<key>.engine`` of :mod:`netdsl.backends.verified_cache` (as OpenVINO's blobs): a header
holding **the key, the payload size and an HMAC-SHA256 of both under the user's cache secret**, then
the plan. :func:`load` serves an entry only when all of them match and the entry is a regular file of
this user; an empty, truncated, corrupted, foreign (another key's), swapped or re-sealed entry, a
symlink or a FIFO is reported in the log and rebuilt, never loaded.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Optional

from ...graph import Graph
from . import _trt
from .. import verified_cache

KIND = "tensorrt-engine"
FORMAT = 3


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
    """Write an entry atomically, sealed with the user's cache secret; returns its file name."""
    return verified_cache.write(entry_path(cache_key, path), KIND, cache_key, plan, dict(meta or {}))


def load(cache_key: str, path: Optional[str] = None) -> Optional[tuple[bytes, dict]]:
    """``(plan, meta)`` of a verified entry, or None (absent or unusable: the caller rebuilds)."""
    hit = verified_cache.read(entry_path(cache_key, path), KIND, cache_key)
    return None if hit is None else (bytes(hit[0]), hit[1])
