"""TensorRT backend: netdsl Graph -> INetworkDefinition -> serialized plan -> engine (pycuda).

Works with ``tensorrt`` 10.x/11.x or ``tensorrt_rtx`` (auto-detected; ``flavour=`` or
``NETDSL_TRT=`` picks one). Importing this package imports neither: the engine is loaded on first use.

* ``compile(graph, **opts)`` -> :class:`TensorRTModel` (needs pycuda and a GPU that the installed
  TensorRT supports);
* ``build(graph, path, **opts)`` writes a plan file: exactly the bytes of
  ``IBuilder.build_serialized_network`` (trtexec, Polygraphy, Triton read it), metadata in ``path.json``
  (works without a GPU with TensorRT-RTX);
* ``check(graph, feeds, **opts)`` -> :class:`CheckReport`: the CPU proof (build + serialize, TensorRT's
  shapes vs netdsl's, the network read back and evaluated in NumPy vs the float64 reference);
* ``network(graph, **opts)`` -> :class:`TensorRTNetwork`: TensorRT's builder, network and config, to
  continue in raw TensorRT; ``wrap_network(network, builder)`` gives a network made in raw TensorRT the
  same tools (CPU evaluation, plan files, engines).

Options: ``precision`` ("float32" | "float16" | "bfloat16"), ``profiles``/``dynamic`` (see
:mod:`.profiles`), ``workspace`` (bytes), ``target`` (TensorRT-RTX compute capability, e.g. "sm89"),
``tf32`` (allow TF32 for float32 layers; off by default), ``timing_cache`` (a file reused across builds),
``flavour``, ``cache`` / ``cache_path`` (the verified engine cache), ``progress``.
"""
from __future__ import annotations

from typing import Any

from ...errors import BackendUnavailable, NetdslError
from ...graph import Graph
from .cpu_proof import CheckReport, check as _check
from .lower import LOWERINGS, register_lowering
from .raw import TensorRTNetwork, network as _network, wrap as _wrap
from . import preprocess, ranges  # noqa: F401,E402  (register preprocess, arange, slice_to)


def check(graph: Graph, feeds: dict, **opts: Any) -> CheckReport:
    """The CPU proof 4a-4c (see :mod:`.cpu_proof`); ``str(report)`` is the text to print, ``report.ok`` the verdict."""
    return _check(_graph(graph, opts), feeds, **options(opts))


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
            raise NetdslError(f"TensorRT precision {out['precision']!r}: use float32, float16 or bfloat16")
        out["precision"] = _PRECISION[p]
    if "cache_dir" in out:
        out["cache_path"] = out.pop("cache_dir")
    return {k: v for k, v in out.items() if k not in _FOREIGN_OPTS}


def _graph(graph: Any, opts: dict) -> Graph:
    """The Graph of a Network or Graph, with ``layer_precision`` (popped from ``opts``) applied."""
    from ...passes.precision import apply_layer_precision
    return apply_layer_precision(getattr(graph, "graph", graph), opts)


def can_execute(flavour: Any = None, device: int = 0) -> tuple:
    """(True, GPU description) when engines can run here, else (False, what is missing: TensorRT, a GPU,
    a supported compute capability, pycuda)."""
    from . import _trt
    from .gpu import status
    try:
        trt = _trt.load(flavour)
    except BackendUnavailable as e:
        return False, str(e)
    return status(trt, device)


def build(graph: Graph, path: Any, **opts: Any) -> str:
    """Build ``graph`` and write the plan to ``path`` (exactly TensorRT's serialized engine) and its
    metadata to ``path.json``; returns the path."""
    from .builder import build as _build
    from .plan_file import write_plan
    g = _graph(graph, opts)
    opts = options(opts)
    opts.pop("device", None)
    res = _build(g, **opts)
    write_plan(str(path), res.plan, res.meta)
    return str(path)


def network(graph: Graph, **opts: Any) -> TensorRTNetwork:
    """TensorRT's builder, INetworkDefinition and builder config for ``graph``, to continue in raw TensorRT."""
    g = _graph(graph, opts)
    opts = options(opts)
    for k in ("device", "cache", "cache_path", "progress", "timing_cache"):
        opts.pop(k, None)
    return _network(g, **opts)


def wrap_network(network: Any, builder: Any, config: Any = None, **opts: Any) -> TensorRTNetwork:
    """Wrap an INetworkDefinition made in raw TensorRT (see :func:`.raw.wrap`)."""
    return _wrap(network, builder, config, **opts)


def compile(graph: Graph, **opts: Any) -> Any:  # noqa: A001
    """Build (or fetch from the engine cache) and load ``graph`` as a runnable TensorRTModel."""
    from . import _trt
    from .builder import build as _build
    from .gpu import status
    from .runtime import TensorRTModel

    g = _graph(graph, opts)
    opts = options(opts)
    trt = _trt.load(opts.get("flavour"))
    ok, why = status(trt, opts.get("device", 0))
    if not ok:
        raise BackendUnavailable(
            f"TensorRT backend cannot execute engines here: {why}. Without a usable GPU you can still write a "
            f"plan (netdsl build MODEL --backend tensorrt -o model.plan) and prove the lowering on the CPU "
            f"(netdsl check MODEL --backends reference,tensorrt).")
    res = _build(g, **{k: v for k, v in opts.items() if k != "device"})
    return TensorRTModel(g, res.plan, trt, opts.get("device", 0))


def load(path: Any, graph: Graph, **opts: Any) -> Any:
    """Load a plan (verified against its ``path.json`` sidecar when there is one) as a TensorRTModel."""
    from . import _trt
    from .plan_file import read_plan
    from .runtime import TensorRTModel
    plan, _ = read_plan(str(path))
    return TensorRTModel(getattr(graph, "graph", graph), plan, _trt.load(opts.get("flavour")), opts.get("device", 0))


__all__ = ["build", "compile", "check", "can_execute", "load", "network", "wrap_network", "options",
           "register_lowering", "LOWERINGS", "CheckReport", "TensorRTNetwork"]


def supported_ops() -> set[str]:
    """Ops with a TensorRT lowering (importing the table imports no TensorRT)."""
    return set(LOWERINGS)
