"""OpenVINO IR (``.xml`` + ``.bin``): write a lowered model, and load one back for inference.

Weights are written exactly (float32) by default; ``compress_to_fp16=True`` halves the ``.bin``
(OpenVINO's own ``save_model`` compresses by default; netdsl does not). A loaded IR needs neither
the model file nor netdsl's graph: the input/output interface is kept in the IR's rt_info.

Integrity: an IR written here carries ``rt_info`` ``netdsl/ir_sha256``, the SHA-256 of the ``.xml``
(with that value zeroed) and the ``.bin`` together. :func:`load_ir` checks it before OpenVINO reads
anything, so a ``.bin`` from another model, or a changed/corrupted file of the pair, is refused
(``verify=False`` skips the check; IRs written elsewhere carry no hash and load as they are).
"""
from __future__ import annotations

import hashlib
import os
import re
import time
from typing import Any, Optional

from ...errors import NetdslError
from ...graph import Graph
from .lower import import_openvino, lower
from .runtime import OpenVINOModel, compile_ov_model, core, interface_graph


def xml_path(path: Any) -> str:
    p = os.fspath(path)
    if not p.endswith(".xml"):
        if p.endswith(".bin"):
            p = p[:-4]
        p += ".xml"
    return p


def save_ir(model: Any, path: Any, compress_to_fp16: bool = False, dynamic: Optional[dict] = None) -> str:
    """Write ``model`` (a Graph, Network, OpenVINOModel or ov.Model) to ``path`` (.xml; .bin beside it)."""
    ov, _ = import_openvino()
    if isinstance(model, OpenVINOModel):
        model = model.ov_model
    g = getattr(model, "graph", model)
    if isinstance(g, Graph):  # float32 islands marked: readers of the IR keep them at bf16/f16
        from .runtime import _f32_layers
        ov_model = lower(g, dynamic=dynamic, keep_f32=_f32_layers(g))
    else:
        ov_model = model.clone()
    ov_model.set_rt_info(_ZERO, ["netdsl", "ir_sha256"])
    out = xml_path(path)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    try:
        ov.save_model(ov_model, out, compress_to_fp16=compress_to_fp16)
        with open(out, "rb") as f:
            xml = f.read()
        if len(_HASH_FIELD.findall(xml)) != 1:
            raise NetdslError(f"OpenVINO: IR {out} was written without its netdsl/ir_sha256 field")
        digest = ir_digest(xml, out[:-4] + ".bin")
        tmp = out + ".tmp"
        with open(tmp, "wb") as f:
            f.write(_HASH_FIELD.sub(lambda m: m.group(0).replace(_ZERO.encode(), digest.encode()), xml))
        os.replace(tmp, out)
    except (RuntimeError, OSError) as e:
        raise NetdslError(f"OpenVINO: cannot write IR {out}: {e}") from e
    return out


_ZERO = "0" * 64
_HASH_FIELD = re.compile(rb'<ir_sha256 value="([0-9a-f]{64})"\s*/>')


def ir_digest(xml: bytes, bin_path: str) -> str:
    """SHA-256 of an IR pair: the .xml with its ir_sha256 value zeroed, then the .bin."""
    h = hashlib.sha256(b"netdsl-openvino-ir-1\n")
    h.update(_HASH_FIELD.sub(lambda m: m.group(0).replace(m.group(1), _ZERO.encode()), xml))
    h.update(b"\nbin\n")
    if os.path.exists(bin_path):
        with open(bin_path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


def verify_ir(path: str) -> bool:
    """Check an IR's netdsl hash: True when it matches, False when the IR carries none; NetdslError
    when the .xml/.bin pair is not the one netdsl wrote."""
    with open(path, "rb") as f:
        xml = f.read()
    found = _HASH_FIELD.findall(xml)
    if not found:
        return False
    if len(found) > 1:
        raise NetdslError(f"OpenVINO IR {path}: more than one netdsl/ir_sha256 field: refused")
    bin_path = path[:-4] + ".bin"
    if found[0].decode() != ir_digest(xml, bin_path):
        raise NetdslError(f"OpenVINO IR {path}: the .xml and {os.path.basename(bin_path)} do not match the hash "
                          "netdsl wrote with them: the .bin belongs to another model, or a file was changed or "
                          "corrupted (pass verify=False to load it anyway)")
    return True


def load_ir(path: Any, device: str = "CPU", precision: str = "f32", hint: str = "latency",
            cache_dir: Optional[str] = None, num_streams: Optional[int] = None,
            config: Optional[dict] = None, verify: bool = True) -> OpenVINOModel:
    """Read an IR and compile it: the same call interface as a freshly compiled model. ``verify``:
    check the hash netdsl writes into its IRs (a mismatched .xml/.bin pair is refused)."""
    p = xml_path(path)
    if not os.path.exists(p):
        raise NetdslError(f"OpenVINO IR {p} does not exist")
    t0 = time.perf_counter()
    if verify:
        verify_ir(p)
    from ...plugins.openvino_ops import missing_plugins_hint, register_for_ir
    register_for_ir(core(), p)  # plugin ops in the IR: their extensions first
    try:
        ov_model = core().read_model(p)
    except RuntimeError as e:
        raise NetdslError(f"OpenVINO: cannot read IR {p}: {str(e).strip()}{missing_plugins_hint(p)}") from e
    opts = dict(precision=precision, hint=hint, cache_dir=cache_dir, num_streams=num_streams, config=config)
    compiled = compile_ov_model(ov_model, device, **opts)
    m = OpenVINOModel(interface_graph(ov_model), ov_model, compiled, device, opts)
    m.dim_ranges = _bounded_dims(m.graph, ov_model)
    m.compile_seconds = time.perf_counter() - t0
    return m


def _bounded_dims(graph: Graph, ov_model: Any) -> dict:
    """``{symbol: (lo, hi)}`` of the IR's bounded input dims (``dynamic={"N": (1, 8)}`` when it was
    compiled), so that a shape outside them is refused naming the input, as by the compiled model (and
    never served by a static copy)."""
    out: dict = {}
    for v in graph.inputs:
        try:
            ps = ov_model.input(v.name).get_partial_shape()
        except RuntimeError:
            continue
        if ps.rank.is_dynamic or len(ps) != len(v.shape):
            continue
        for d, pd in zip(v.shape, ps):
            if isinstance(d, int) or pd.is_static or not (len(d.terms) == 1 and d.terms[0][1] == 1 and d.coeff == 1):
                continue
            hi = pd.get_max_length()
            if hi < 0 and pd.get_min_length() <= 0:
                continue  # unbounded
            lo0, hi0 = out.get(d.terms[0][0], (0, 2 ** 62))
            out[d.terms[0][0]] = (max(lo0, pd.get_min_length()), min(hi0, hi if hi >= 0 else 2 ** 62))
    return out
