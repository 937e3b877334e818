"""The TensorRT objects themselves, for users who continue in raw TensorRT (or come from it).

* :func:`network` lowers a netdsl graph and returns a :class:`TensorRTNetwork` holding TensorRT's
  ``builder``, ``network`` (the INetworkDefinition, with netdsl's layer names) and ``config`` (profiles,
  workspace, TF32 cleared): add layers, mark outputs, set flags, then ``serialize()`` or ``save()``.
* :func:`wrap` takes an INetworkDefinition you built with TensorRT's API (and its builder) and gives it
  the same tools: ``evaluate(feeds)`` (the CPU evaluator of :mod:`.inspect`, no GPU needed), ``save(path)``
  (plan + sidecar), ``engine()`` (execution on a supported GPU).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ...graph import Graph
from . import _trt
from .builder import DEFAULT_WORKSPACE, make_config, serialize
from .plan_file import write_plan
from .profiles import make_profiles


@dataclass
class TensorRTNetwork:
    """TensorRT's builder, network and builder config, ready to build (fields are the raw TensorRT objects)."""

    trt: Any
    builder: Any
    network: Any
    config: Any
    profiles: list = field(default_factory=list)
    lowered: Any = field(default=None, repr=False)  # netdsl's lowering (keeps the weight arrays alive)

    def serialize(self, progress: Any = True, timing_cache: Optional[str] = None) -> bytes:
        """Build: exactly what ``builder.build_serialized_network(network, config)`` returns."""
        return serialize(self.trt, self.builder, self.network, self.config, progress, timing_cache)

    def save(self, path: str, progress: Any = True, timing_cache: Optional[str] = None) -> str:
        """Build and write the plan to ``path`` (metadata in ``path.json``); returns ``path``."""
        plan = self.serialize(progress, timing_cache)
        write_plan(str(path), plan, {"network": self.network.name, "trt": _trt.version_string(self.trt),
                                     "profiles": self.profiles, "layers": self.network.num_layers})
        return str(path)

    def evaluate(self, feeds: dict) -> dict[str, np.ndarray]:
        """The network's outputs computed on the CPU from the network read back (:mod:`.inspect`)."""
        from .inspect import evaluate
        return evaluate(self.network, feeds, self.trt)

    def engine(self, device: int = 0, progress: Any = True) -> Any:
        """Build and load on a GPU the installed TensorRT supports (a :class:`.runtime.Engine`)."""
        from .runtime import Engine
        return Engine(self.serialize(progress), self.trt, device)


def network(graph: Graph, *, precision: str = "float32", profiles: Any = None, dynamic: Optional[dict] = None,
            workspace: int = DEFAULT_WORKSPACE, target: Any = None, tf32: bool = False,
            flavour: Optional[str] = None) -> TensorRTNetwork:
    """Lower ``graph`` (a Graph or Network) into TensorRT objects you can keep editing."""
    from .lower import lower
    g = getattr(graph, "graph", graph)
    trt = _trt.load(flavour)
    profs = make_profiles(g, profiles, dynamic)
    lowered = lower(g, trt, precision=precision)
    config = make_config(trt, lowered.builder, profs, workspace=workspace, target=target, tf32=tf32)
    return TensorRTNetwork(trt, lowered.builder, lowered.network, config, profs, lowered)


def _module_of(obj: Any) -> Any:
    mod = type(obj).__module__.split(".")[0].split("_bindings")[0]
    return _trt.load("tensorrt_rtx" if mod.startswith("tensorrt_rtx") else "tensorrt")


def wrap(network: Any, builder: Any, config: Any = None, *, profiles: Optional[list] = None,
         tf32: bool = False) -> TensorRTNetwork:
    """Wrap an INetworkDefinition made with TensorRT's own API (and the builder that created it).

    Without ``config`` one is made with netdsl's defaults (TF32 cleared unless ``tf32``; ``profiles``
    given as ``[{input: (min, opt, max)}]`` for dynamic inputs)."""
    trt = _module_of(network)
    if config is None:
        config = make_config(trt, builder, list(profiles or []), tf32=tf32)
    return TensorRTNetwork(trt, builder, network, config, list(profiles or []), None)

