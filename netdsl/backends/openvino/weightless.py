"""Weightless compiled blobs: a cache entry without the weights, which come from the checkpoint itself.

OpenVINO's CPU plugin exports a compiled model without its weights (``CACHE_MODE=OPTIMIZE_SIZE``)
when its constants carry the weightless-cache attribute that OpenVINO's IR reader attaches (offset
and size in the weights file); ``import_model(blob, WEIGHTS_PATH=file)`` then reads them from that
file again, memory-mapped. Constants without the attribute stay in the blob.

netdsl's lowering shares checkpoint tensors with OpenVINO (private file mappings, see
:func:`netdsl.weights.base.shares_file_pages`), so each such constant's bytes *are* bytes of the
checkpoint at a known offset (the process's memory map says which). :func:`attach` replaces them by
constants that OpenVINO's IR reader makes from the same file and offsets -- the same data, now with
the attribute -- and the blob of BERT-base shrinks from 438 MB to about 1 MB.

The graph cache stores such a blob with the checkpoint's path and file identity in its HMAC-sealed
header; the key already holds every weight's identity, so an entry is used only with the very file
it was made from, and no weight is ever read from the cache directory. Linux only (``/proc/self/maps``);
elsewhere blobs keep their weights.
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Optional

import numpy as np

_PRECISION = {"f32": "FP32", "f16": "FP16", "bf16": "BF16", "f64": "FP64", "i8": "I8", "u8": "U8", "i16": "I16",
              "u16": "U16", "i32": "I32", "u32": "U32", "i64": "I64", "u64": "U64", "boolean": "BOOL"}
CACHE_MODE = {"CACHE_MODE": "OPTIMIZE_SIZE"}


def checkpoint_files(weights: dict) -> set:
    """Real paths of the checkpoint files the weights' identities name ({param: identity})."""
    out = set()
    for ident in weights.values():
        if ident.startswith("["):
            try:
                out.add(json.loads(ident)[2])
            except (ValueError, IndexError, TypeError):
                continue
    return out


def _file_regions(files: set) -> list:
    """(start, end, file offset, path) of this process's mappings of ``files``."""
    out = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[5].strip() in files:
                    a, b = (int(x, 16) for x in parts[0].split("-"))
                    out.append((a, b, int(parts[2], 16), parts[5].strip()))
    except OSError:
        return []
    return out


def _file_constants(ov_model: Any, files: set) -> list:
    """[(Constant, path, offset)] for the constants whose data lies in a mapping of one of ``files``."""
    regions = _file_regions(files)
    if not regions:
        return []
    out = []
    for op in ov_model.get_ordered_ops():
        if op.get_type_name() != "Constant" or op.get_element_type().get_type_name() not in _PRECISION:
            continue
        data = op.get_data()
        if data.nbytes == 0 or not data.flags.c_contiguous:
            continue
        p = data.__array_interface__["data"][0]
        for a, b, off, path in regions:
            if a <= p and p + data.nbytes <= b:
                out.append((op, path, off + p - a))
                break
    return out


def _ir(consts: list) -> str:
    """An IR holding one Const -> Result pair per constant, its data at the constant's file offset."""
    layers, edges = [], []
    for i, (op, _, off) in enumerate(consts):
        et = op.get_element_type().get_type_name()
        shape = [int(d) for d in op.get_output_shape(0)]
        dims = "".join(f"<dim>{d}</dim>" for d in shape)
        port = f'precision="{_PRECISION[et]}"'
        layers.append(f'<layer id="{2 * i}" name="c{i}" type="Const" version="opset1"><data element_type="{et}" '
                      f'shape="{",".join(map(str, shape))}" offset="{off}" size="{op.get_data().nbytes}"/>'
                      f'<output><port id="0" {port}>{dims}</port></output></layer>'
                      f'<layer id="{2 * i + 1}" name="r{i}" type="Result" version="opset1">'
                      f'<input><port id="0" {port}>{dims}</port></input></layer>')
        edges.append(f'<edge from-layer="{2 * i}" from-port="0" to-layer="{2 * i + 1}" to-port="0"/>')
    return ('<?xml version="1.0"?>\n<net name="netdsl-weights" version="11"><layers>' + "".join(layers)
            + "</layers><edges>" + "".join(edges) + "</edges></net>\n")


def attach(core: Any, ov_model: Any, files: set) -> Optional[str]:
    """Give the constants of ``ov_model`` that are bytes of one checkpoint file (the one holding the
    most) the weightless-cache attribute, by swapping in OpenVINO's own reading of that file at the
    same offsets. Returns the file's path, or None when no constant qualifies."""
    found = _file_constants(ov_model, files)
    if not found:
        return None
    size: dict = {}
    for op, path, _ in found:
        size[path] = size.get(path, 0) + op.get_data().nbytes
    path = max(size, key=size.get)
    found = [f for f in found if f[1] == path]
    fd, xml = tempfile.mkstemp(suffix=".xml", prefix="netdsl-weights-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(_ir(found))
        src = core.read_model(xml, path)
    finally:
        os.unlink(xml)
    made = {op.get_friendly_name(): op for op in src.get_ordered_ops() if op.get_type_name() == "Constant"}
    for i, (op, _, _) in enumerate(found):
        new = made[f"c{i}"]
        if not np.array_equal(new.get_data().view(np.uint8), op.get_data().view(np.uint8)):
            return None  # not the bytes the mapping showed (the file changed): keep the weights in the blob
        new.set_friendly_name(op.get_friendly_name())
        op.output(0).replace(new.output(0))
    return path


def file_meta(path: str) -> dict:
    """What a weightless entry records of its weights file: real path and file identity."""
    from ...weights.identity import file_identity
    return {"weights_path": os.path.realpath(path), "weights_file": file_identity(path)}


def usable_file(meta: dict, files: set) -> Optional[str]:
    """The weights file of a weightless entry when it is one of this network's checkpoint ``files``
    and unchanged since the entry was made, else None."""
    from ...weights.identity import file_identity
    path = meta.get("weights_path")
    if not isinstance(path, str) or path not in files:
        return None
    ident = file_identity(path)
    return path if ident is not None and ident == meta.get("weights_file") else None


__all__ = ["attach", "checkpoint_files", "file_meta", "usable_file", "CACHE_MODE"]
