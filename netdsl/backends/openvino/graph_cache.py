"""Compiled OpenVINO models cached by the netdsl graph, so that a warm start skips lowering.

:mod:`blob_cache` keys an entry by the lowered ``ov.Model``: to look one up, a process must first
lower the network, copying every weight into the model (for BERT-base about as long as OpenVINO's
own compile). ``compile(graph, cache_dir=...)`` keys the compiled blob by what determines that
model instead, all known before lowering:

* the graph's structure hash (ops, attributes, names, shapes, precision scopes);
* each weight's identity (:mod:`netdsl.weights.identity`: its checkpoint file's metadata, tensor,
  transform and dtype; the content hash for weights from anywhere else);
* the lowering options (dynamic dims, layers kept in f32), the compile properties and the device;
* the netdsl source (every module of the package), the OpenVINO version and the device's name and
  capabilities.

Entries are :mod:`netdsl.backends.verified_cache` entries like blob_cache's: key and HMAC are
checked before an entry is used, and a missing, corrupted, foreign or unimportable one is rebuilt.
A hit is imported from the verified bytes themselves (one read, no further copy; the compiled model
keeps them); the ``ov.Model`` is lowered only when asked for (``model.ov_model``). Where the weights
are checkpoint bytes OpenVINO can read again, the entry holds no weights (:mod:`weightless`): BERT-base's
entry is about 1 MB instead of 438 MB, and a hit maps the checkpoint instead of reading the blob. An entry is
written only when no weight's file changed while the network was lowered, nor in the seconds before
(:data:`netdsl.weights.identity.RECENT_S`). Networks with plugin ops
use blob_cache (their extensions are registered from the lowered model).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from typing import Any, Optional

from ...graph import Graph
from .. import verified_cache

log = logging.getLogger("netdsl.openvino")

KIND = "openvino-compiled-graph"
FORMAT = 1
_source_digest: Optional[str] = None
_source_lock = threading.Lock()


def source_digest() -> str:
    """SHA-256 of every ``.py`` file of the netdsl package (what lowers a graph), once per process."""
    global _source_digest
    with _source_lock:
        if _source_digest is None:
            root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            h = hashlib.sha256(b"netdsl-source\n")
            for d, dirs, files in os.walk(root):
                dirs[:] = sorted(x for x in dirs if x != "__pycache__")
                for f in sorted(x for x in files if x.endswith(".py")):
                    p = os.path.join(d, f)
                    h.update(os.path.relpath(p, root).encode() + b"\n")
                    with open(p, "rb") as fh:
                        h.update(fh.read())
            _source_digest = h.hexdigest()
        return _source_digest


def usable(graph: Graph) -> bool:
    """Whether ``graph`` can be served by its own key (no plugin ops)."""
    from ...ops import get_op
    return all(get_op(n.op).plugin is None for n in graph.nodes)


def weight_ids(graph: Graph) -> dict:
    """{parameter: identity} (:func:`netdsl.weights.identity.weight_identity`) for the bound parameters."""
    from ...weights.identity import weight_identity
    return {name: weight_identity(p) for name, p in sorted(graph.params.items()) if p.bound}


def unchanged(graph: Graph, weights: dict) -> bool:
    """Whether ``graph``'s compiled model may be stored under the key made of ``weights``: every weight
    identified by its file still has that identity, and none was identified by content only because
    its file had just changed (such a key would not be found again once the file is older)."""
    for name, ident in weights.items():
        fn = getattr(graph.params[name].source, "identity", None)
        if fn is not None and (ident.startswith("sha256:") or fn() != ident):
            return False
    return True


def graph_key(core: Any, graph: Graph, device: str, config: dict, dynamic: Optional[dict], keep: Any,
              weights: dict) -> str:
    """The entry key of ``graph`` compiled for ``device`` with ``config`` (see the module docstring)."""
    from .blob_cache import device_info
    import openvino as ov
    parts = {"format": FORMAT, "structure": graph.structure_hash(), "weights": weights,
             "dynamic": sorted((str(k), repr(v)) for k, v in (dynamic or {}).items()), "keep_f32": sorted(keep),
             "device": device, "device_info": device_info(core, device),
             "config": {str(k): str(v) for k, v in config.items()}, "openvino": ov.get_version(),
             "netdsl": source_digest()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def entry_path(cache_dir: str, key: str) -> str:
    return os.path.join(os.fspath(cache_dir), f"netdsl-openvino-graph-{key}.blob")


def load(core: Any, cache_dir: str, key: str, device: str, config: dict, files: set = frozenset()) -> Optional[tuple]:
    """``(compiled model, the bytes it was imported from)`` for a verified entry, else None. A weightless
    entry (:mod:`weightless`) is imported with its weights file when that is one of the network's
    checkpoint ``files``, unchanged."""
    path = entry_path(cache_dir, key)
    hit = verified_cache.read(path, KIND, key)
    if hit is None:
        return None
    from .blob_cache import import_blob
    from .weightless import CACHE_MODE, usable_file
    if "weights_path" in hit[1]:
        weights = usable_file(hit[1], files)
        if weights is None:
            log.info("cache entry %s: its weights file is not this network's, or changed: recompiling", path)
            return None
        config = {**config, **CACHE_MODE, "WEIGHTS_PATH": weights}
    try:
        compiled, keep = import_blob(core, hit[0], device, config)
    except RuntimeError as e:
        log.warning("OpenVINO could not import the cached blob %s (%s): recompiling", path, str(e)[:200])
        return None
    log.info("OpenVINO: compiled model served from the verified cache %s (not lowered)", path)
    return compiled, keep


def store(cache_dir: str, key: str, compiled: Any, device: str, weights_file: Optional[str] = None) -> None:
    """Write ``compiled``'s exported blob as the entry for ``key`` (a failure is logged, not raised);
    ``weights_file``: the blob is weightless and reads its weights from that checkpoint file."""
    from .blob_cache import store_blob
    from .weightless import file_meta
    store_blob(entry_path(cache_dir, key), KIND, key, compiled, device, file_meta(weights_file) if weights_file else None)


__all__ = ["graph_key", "load", "store", "unchanged", "usable", "weight_ids", "source_digest", "entry_path"]
