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
from .check import CheckReport, check as _check


def check(graph: Graph, feeds: dict, **opts: Any) -> CheckReport:
    """The CPU proof 4a-4c (see :mod:`.check`); ``str(report)`` is the text to print, ``report.ok`` the verdict."""
    return _check(getattr(graph, "graph", graph), feeds, **options(opts))
from .lower import LOWERINGS, register_lowering  # noqa: F401
from . import preprocess, ranges  # noqa: F401,E402  (register preprocess, arange, slice_to)


_PRECISION = {"f32": "float32", "fp32": "float32", "float32": "float32", "f16": "float16", "fp16": "float16",
              "half": "float16", "float16": "float16", "bf16": "bfloat16", "bfloat16": "bfloat16"}
_FOREIGN_OPTS = ("hint",)  # other backends' options that the CLI passes to every backend


def options(opts: dict) -> dict:
    """Normalize CLI/user options: precision aliases (f16, bf16 ...), cache_dir -> cache_path; options of
    other backends (e.g. OpenVINO's hint) are ignored."""
    out = dict(opts)
    if "precision" in out:
        p = str(out["precision"]).lower()
        if p not in _PRECISION:
            from ...errors import NetdslError
            raise NetdslError(f"TensorRT precision {out['precision']!r}: use float32, float16 or bfloat16")
        out["precision"] = _PRECISION[p]
    if "cache_dir" in out:
        out["cache_path"] = out.pop("cache_dir")
    return {k: v for k, v in out.items() if k not in _FOREIGN_OPTS}


def can_execute(flavour: Any = None, device: int = 0) -> tuple:
    """(True, GPU description) when engines can run here, else (False, the precise reason)."""
    from . import _trt
    from .runtime import gpu_status
    return gpu_status(_trt.load(flavour), device)


def build(graph: Graph, path: Any, **opts: Any) -> str:
    """Build ``graph`` and write the serialized plan (with a checked header) to ``path``; returns the path."""
    from .build import build as _build, write_plan
    g = getattr(graph, "graph", graph)
    opts = options(opts)
    opts.pop("device", None)
    res = _build(g, **opts)
    write_plan(str(path), res.plan, res.meta)
    return str(path)


def compile(graph: Graph, **opts: Any) -> Any:  # noqa: A001
    """Build (or fetch from the engine cache) and load ``graph`` as a runnable TensorRTModel."""
    from . import _trt
    from ...errors import BackendUnavailable
    from .build import build as _build
    from .runtime import TensorRTModel, gpu_status

    g = getattr(graph, "graph", graph)
    opts = options(opts)
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


__all__ = ["build", "compile", "check", "can_execute", "load", "options", "register_lowering", "LOWERINGS",
           "CheckReport"]


def supported_ops() -> set[str]:
    """Ops with a TensorRT lowering (importing the table imports no TensorRT)."""
    return set(LOWERINGS)
