"""Static specializations of a dynamic-shape OpenVINO model, for ``run_many`` on batches of one shape.

OpenVINO's CPU plugin runs a model whose dims are dynamic more slowly than the same model compiled for
the fed shape at the same streams and threads: the same kernels and layouts, but they take longer
(benchmarks/dynamic_vs_static.py; benchmarks/RESULTS.md, "Throughput at batch 8"). Fixing the dims
at compile time also changes the streams OpenVINO's THROUGHPUT hint picks (16 single-thread streams
for BERT instead of 4 x 4, which is slower), so a specialization is compiled with the dynamic model's
NUM_STREAMS.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from ...errors import NetdslError
from .lower import import_openvino

SPECIALIZE_AFTER = 2  # run_many calls on one set of input shapes before it gets a static copy
MAX_SPECIALIZATIONS = 2  # static copies kept per model (each holds its own copy of the weights)


def has_dynamic_inputs(compiled: Any) -> bool:
    """Whether any input of an ``ov.CompiledModel`` has a dim left dynamic (or ranged)."""
    return any(not i.get_partial_shape().is_static for i in compiled.inputs)


def static_copy(ov_model: Any, shapes: dict[str, Sequence[int]], streams: Optional[str], device: str,
                opts: dict) -> Optional[tuple]:
    """``(ov.Model, ov.CompiledModel)``: ``ov_model`` reshaped to ``{input name: shape}`` and compiled
    with ``opts`` (netdsl's compile options) at ``streams`` NUM_STREAMS unless ``opts`` names them;
    None when OpenVINO cannot reshape or compile it (the caller keeps the dynamic model)."""
    from .runtime import compile_ov_model
    ov, _ = import_openvino()
    try:
        model = ov_model.clone()
        model.reshape({name: ov.PartialShape([int(d) for d in shape]) for name, shape in shapes.items()})
        opts = dict(opts)
        if streams is not None and opts.get("num_streams") is None:
            opts["num_streams"] = streams
        return model, compile_ov_model(model, device, **opts)
    except (RuntimeError, NetdslError):
        return None


def streams_of(compiled: Any) -> Optional[str]:
    """The NUM_STREAMS an ``ov.CompiledModel`` runs (None where the device does not say)."""
    try:
        return str(compiled.get_property("NUM_STREAMS"))
    except RuntimeError:
        return None
