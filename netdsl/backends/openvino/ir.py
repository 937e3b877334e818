"""OpenVINO IR (``.xml`` + ``.bin``): write a lowered model, and load one back for inference.

Weights are written exactly (float32) by default; ``compress_to_fp16=True`` halves the ``.bin``
(OpenVINO's own ``save_model`` compresses by default; netdsl does not). A loaded IR needs neither
the model file nor netdsl's graph: the input/output interface is kept in the IR's rt_info.
"""
from __future__ import annotations

import os
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
    ov_model = lower(g, dynamic=dynamic) if isinstance(g, Graph) else model
    out = xml_path(path)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    try:
        ov.save_model(ov_model, out, compress_to_fp16=compress_to_fp16)
    except (RuntimeError, OSError) as e:
        raise NetdslError(f"OpenVINO: cannot write IR {out}: {e}") from e
    return out


def load_ir(path: Any, device: str = "CPU", precision: str = "f32", hint: str = "latency",
            cache_dir: Optional[str] = None, num_streams: Optional[int] = None,
            config: Optional[dict] = None) -> OpenVINOModel:
    """Read an IR and compile it: the same call interface as a freshly compiled model."""
    p = xml_path(path)
    if not os.path.exists(p):
        raise NetdslError(f"OpenVINO IR {p} does not exist")
    t0 = time.perf_counter()
    from ...plugins.openvino_ops import register_for_ir
    register_for_ir(core(), p)  # plugin ops in the IR: their extensions first
    try:
        ov_model = core().read_model(p)
    except RuntimeError as e:
        raise NetdslError(f"OpenVINO: cannot read IR {p}: {e}") from e
    opts = dict(precision=precision, hint=hint, cache_dir=cache_dir, num_streams=num_streams, config=config)
    compiled = compile_ov_model(ov_model, device, **opts)
    m = OpenVINOModel(interface_graph(ov_model), ov_model, compiled, device, opts)
    m.compile_seconds = time.perf_counter() - t0
    return m
