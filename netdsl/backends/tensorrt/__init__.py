"""TensorRT backend: netdsl Graph -> INetworkDefinition -> serialized plan -> engine (pycuda).

Works with ``tensorrt`` 10.x/11.x or ``tensorrt_rtx`` (auto-detected; ``flavour=`` or
``NETDSL_TRT=`` picks one). Importing this package imports neither: the engine is loaded on first use.

* ``compile(graph, **opts)`` -> :class:`TensorRTModel` (needs pycuda and a GPU that the installed
  TensorRT supports);
* ``build(graph, path, **opts)`` writes a plan file (works without a GPU with TensorRT-RTX);
* ``check(graph, feeds, **opts)`` -> :class:`CheckReport`: the CPU proof (build + serialize, TensorRT's
  shapes vs netdsl's, the network read back and evaluated in NumPy vs the float64 reference).

Options: ``precision`` ("float32" | "float16" | "bfloat16"), ``profiles``/``dynamic`` (see
:mod:`.build`), ``workspace`` (bytes), ``target`` (TensorRT-RTX compute capability, e.g. "sm89"),
``flavour``, ``cache`` / ``cache_path``, ``progress``.
"""
from __future__ import annotations

from typing import Any

from ...graph import Graph
from . import build as _build_module  # noqa: F401  (loaded first: the build() below must win the name)
from .check import CheckReport, check  # noqa: F401
from .lower import LOWERINGS, register_lowering  # noqa: F401


def build(graph: Graph, path: Any, **opts: Any) -> Any:
    """Build ``graph`` and write the serialized plan to ``path``; returns the BuildResult."""
    from .build import build as _build, write_plan
    g = getattr(graph, "graph", graph)
    res = _build(g, **opts)
    write_plan(str(path), res.plan, res.meta)
    return res


def compile(graph: Graph, **opts: Any) -> Any:  # noqa: A001
    """Build (or fetch from the engine cache) and load ``graph`` as a runnable TensorRTModel."""
    from . import _trt
    from ...errors import BackendUnavailable
    from .build import build as _build
    from .runtime import TensorRTModel, gpu_status

    g = getattr(graph, "graph", graph)
    trt = _trt.load(opts.get("flavour"))
    ok, why = gpu_status(trt, opts.get("device", 0))
    if not ok:
        raise BackendUnavailable(
            f"TensorRT backend cannot execute engines here: {why}. Without a usable GPU you can still write a "
            f"plan (netdsl build MODEL --backend tensorrt -o model.plan) and prove the lowering on the CPU "
            f"(netdsl check MODEL --backends reference,tensorrt).")
    res = _build(g, **{k: v for k, v in opts.items() if k != "device"})
    return TensorRTModel(g, res.plan, trt, opts.get("device", 0))


def load(path: Any, graph: Graph, **opts: Any) -> Any:
    """Load a plan written by :func:`build` (checksum verified) as a TensorRTModel for ``graph``."""
    from . import _trt
    from .build import read_plan
    from .runtime import TensorRTModel
    plan, _ = read_plan(str(path))
    return TensorRTModel(getattr(graph, "graph", graph), plan, _trt.load(opts.get("flavour")), opts.get("device", 0))


__all__ = ["build", "compile", "check", "load", "register_lowering", "LOWERINGS", "CheckReport"]
