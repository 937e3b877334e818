"""OpenVINO's compiled-blob cache, wrapped so that it never serves a blob other than this model's.

OpenVINO's own ``CACHE_DIR`` imports whatever blob it finds under the model's hash: a blob with a
flipped byte, or another model's blob renamed, loads silently and computes wrong outputs. netdsl
therefore never hands ``CACHE_DIR`` to OpenVINO. ``cache_dir=`` (or ``CACHE_DIR`` in ``config``)
is served here instead:

* the key hashes the ``ov.Model`` itself -- every op, its attributes, runtime info, connections,
  element types, shapes and tensor names, and the bytes of every constant -- with the device (its
  full name and capabilities), the compile properties and the OpenVINO version;
* an entry is ``compiled.export_model()``'s blob sealed by :mod:`netdsl.backends.verified_cache`
  (its key and an HMAC of the payload under a secret kept outside the cache directory);
* a hit is imported with ``core.import_model``; a missing, corrupted, foreign or unimportable entry is
  compiled afresh and rewritten. Devices that cannot export compile without a cache (a log line says so).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import Any, Optional

import numpy as np

from .. import verified_cache
from ..verified_cache import chunk_digests

log = logging.getLogger("netdsl.openvino")

KIND = "openvino-compiled-blob"
FORMAT = 1


def _rt(value: Any) -> Any:
    """Runtime info (an RTMap, nested dicts of OVAny) as plain, sortable data."""
    if hasattr(value, "keys"):
        return {str(k): _rt(value[k]) for k in sorted(value.keys(), key=str)}
    for conv in (lambda v: v.astype(str), str):
        try:
            return conv(value)
        except Exception:  # noqa: BLE001 - an OVAny that does not convert: try the next way
            continue
    return repr(type(value))


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return ["ndarray", str(value.dtype), list(value.shape), hashlib.sha256(np.ascontiguousarray(value)).hexdigest()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _hash_model(m: Any, h: Any) -> None:
    ops = m.get_ordered_ops()
    index = {op.get_name(): i for i, op in enumerate(ops)}
    for op in ops:
        ti = op.get_type_info()
        desc = {"type": ti.name, "opset": ti.version_id,  # friendly names do not change results (and vary)
                "attrs": _plain(op.get_attributes()), "rt": _rt(op.get_rt_info()),
                "in": [[index.get(i.get_source_output().get_node().get_name(), -1), i.get_source_output().get_index(),
                        str(i.get_element_type()), str(i.get_partial_shape())] for i in op.inputs()],
                "out": [[str(o.get_element_type()), str(o.get_partial_shape()), sorted(o.get_names())]
                        for o in op.outputs()]}
        h.update(json.dumps(desc, sort_keys=True, default=str).encode())
        if ti.name == "Constant":
            data = np.ascontiguousarray(op.get_data()).view(np.uint8).reshape(-1)
            h.update(b"data:%d:" % data.nbytes)
            h.update(data if data.nbytes < (1 << 20) else chunk_digests(data))
        for k in range(op.get_internal_subgraphs_size() if hasattr(op, "get_internal_subgraphs_size") else 0):
            h.update(b"body:%d" % k)
            _hash_model(op.get_function(k), h)
    h.update(json.dumps({"rt": _rt(m.get_rt_info()), "name": m.get_friendly_name(),
                         "params": [index[p.get_name()] for p in m.get_parameters()],
                         "results": [index[r.get_name()] for r in m.get_results()]}, sort_keys=True).encode())


def model_digest(ov_model: Any) -> str:
    """SHA-256 of everything in an ``ov.Model`` that can change what it computes."""
    h = hashlib.sha256(b"netdsl-ov-model-digest:%d\n" % FORMAT)
    _hash_model(ov_model, h)
    return h.hexdigest()


def device_info(core: Any, device: str) -> dict:
    """The device's full name and capabilities (a blob compiled for one CPU may not suit another)."""
    dev = {}
    for prop in ("FULL_DEVICE_NAME", "OPTIMIZATION_CAPABILITIES"):
        try:
            dev[prop] = str(core.get_property(device, prop))
        except Exception:  # noqa: BLE001 - virtual devices (AUTO, MULTI) lack some properties
            dev[prop] = ""
    return dev


def cache_key(core: Any, ov_model: Any, device: str, config: dict) -> str:
    import openvino as ov
    dev = device_info(core, device)
    parts = {"format": FORMAT, "model": model_digest(ov_model), "device": device, "device_info": dev,
             "config": {str(k): str(v) for k, v in config.items()}, "openvino": ov.get_version()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def entry_path(cache_dir: str, key: str) -> str:
    return os.path.join(os.fspath(cache_dir), f"netdsl-openvino-{key}.blob")


def compile_cached(core: Any, ov_model: Any, device: str, config: dict, cache_dir: str) -> Any:
    """``core.compile_model`` through the verified cache in ``cache_dir`` (``config`` without CACHE_DIR)."""
    key = cache_key(core, ov_model, device, config)
    path = entry_path(cache_dir, key)
    hit = verified_cache.read(path, KIND, key)
    if hit is not None:
        from ...plugins.openvino_ops import register_for_model
        register_for_model(core, ov_model)  # the blob names plugin ops: the core must know them
        try:  # the verified bytes, shared with OpenVINO (no copy)
            compiled, _ = import_blob(core, hit[0], device, config)
            log.info("OpenVINO: compiled model served from the verified cache %s", path)
            return compiled
        except RuntimeError as e:
            log.warning("OpenVINO could not import the cached blob %s (%s): recompiling", path, str(e)[:200])
    compiled = core.compile_model(ov_model, device, config)
    store_blob(path, KIND, key, compiled, device)
    return compiled


def store_blob(path: str, kind: str, key: str, compiled: Any, device: str, meta: Optional[dict] = None) -> None:
    """Write ``compiled``'s exported blob as a verified entry (a failure is logged, not raised)."""
    try:
        blob = compiled.export_model()
        payload = blob.getvalue() if hasattr(blob, "getvalue") else bytes(blob)
        verified_cache.write(path, kind, key, payload, {"device": device, **(meta or {})})
    except (RuntimeError, OSError) as e:
        log.warning("OpenVINO: compiled model not cached in %s (%s)", os.path.dirname(path), str(e)[:200])


def import_blob(core: Any, payload: Any, device: str, config: dict) -> tuple:
    """``(compiled model, buffer)``: ``core.import_model`` straight from a verified entry's payload
    (a writable buffer of :func:`verified_cache.read`), shared rather than copied twice more. The
    compiled model may keep pointing into the buffer (OpenVINO serves some constants in place), and
    the buffer holds the same reference: it is private memory, read and verified once."""
    import openvino as ov
    import numpy as np
    buf = np.frombuffer(payload, np.uint8)
    if not buf.flags.writeable:  # bytes: OpenVINO shares only writable memory
        buf = buf.copy()
    return core.import_model(ov.Tensor(buf, shared_memory=True), device, config), buf


def cache_dir_of(cache_dir: Optional[str], config: Optional[dict]) -> tuple[Optional[str], dict]:
    """(the cache directory netdsl serves, the config without OpenVINO's own CACHE_DIR)."""
    cfg = dict(config or {})
    raw = cfg.pop("CACHE_DIR", None)
    return (cache_dir or raw or None), cfg
