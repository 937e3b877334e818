"""Build a serialized TensorRT plan: builder config, TF32, timing cache, progress, engine cache.

* TF32: TensorRT lets float32 convolutions and matrix multiplies run in TF32 on Ampere and later GPUs
  unless ``BuilderFlag.TF32`` is cleared. netdsl clears it, so a "float32" engine computes in float32;
  ``tf32=True`` (``--tf32``) keeps TensorRT's default.
* ``timing_cache="path"`` (``--timing-cache``): the builder's timing cache is read from that file when
  it exists and written back after the build, so later builds (of any network) reuse its measurements.
* Progress: TensorRT's ``IProgressMonitor`` phases become a bar on the command line
  (:func:`netdsl.progress.progress`) and log lines (``netdsl.tensorrt`` logger).
* The engine cache (:mod:`.engine_cache`) serves a plan only after verifying its key and checksum.
"""
from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ...errors import NetdslError
from ...graph import Graph
from ...progress import progress as progress_bar
from . import _trt, engine_cache
from .lower import Lowered, lower
from .plan_file import atomic_write
from .profiles import make_profiles

log = logging.getLogger("netdsl.tensorrt")

DEFAULT_WORKSPACE = 1 << 30


@dataclass
class BuildResult:
    """A serialized plan and how it was made."""

    plan: bytes = field(repr=False)
    lowered: Optional[Lowered] = field(repr=False)
    seconds: float
    cached: bool
    key: str
    profiles: list = field(default_factory=list)  # [{input: (min, opt, max)}]
    meta: dict = field(default_factory=dict)


# ---- progress ------------------------------------------------------------------------------------
def progress_monitor(trt: Any, callback: Optional[Callable[[str], None]] = None) -> Any:
    """An IProgressMonitor: a progress bar for each top-level build phase, nested phases as its postfix,
    every phase logged (and passed to ``callback(line)``); None where TensorRT has no IProgressMonitor."""
    base = getattr(trt, "IProgressMonitor", None)
    if base is None:
        return None

    class _Monitor(base):  # type: ignore[misc,valid-type]
        def __init__(self) -> None:
            base.__init__(self)
            self.bars: dict[str, Any] = {}
            self.top: Optional[str] = None

        def phase_start(self, phase_name: str, parent_phase: Optional[str], num_steps: int) -> None:
            line = f"build: {'  ' if parent_phase else ''}{phase_name} ({num_steps} steps)"
            log.info("%s", line)
            if callback is not None:
                callback(line)
            if parent_phase is None:
                self.top = phase_name
                self.bars[phase_name] = progress_bar(total=num_steps, desc=f"TensorRT: {phase_name}", unit="step")
            elif self.top in self.bars:
                self.bars[self.top].set_postfix_str(phase_name, refresh=True)

        def step_complete(self, phase_name: str, step: int) -> bool:
            bar = self.bars.get(phase_name)
            if bar is not None:
                bar.update(max(0, step + 1 - bar.n))
            return True  # never cancel

        def phase_finish(self, phase_name: str) -> None:
            log.debug("build: %s done", phase_name)
            bar = self.bars.pop(phase_name, None)
            if bar is not None:
                bar.close()

    return _Monitor()


# ---- timing cache --------------------------------------------------------------------------------
def attach_timing_cache(trt: Any, config: Any, path: Optional[str]) -> Any:
    """Give ``config`` the timing cache stored at ``path`` (a new one if the file is absent or unusable).

    TensorRT-RTX accepts the calls but ignores timing caches (no-ops since RTX 1.2); the file is still
    read and written through TensorRT's own (de)serializer, and the log says so."""
    if not path:
        return None
    if not hasattr(config, "create_timing_cache"):
        log.warning("this TensorRT (%s) has no timing cache: %s is not used", _trt.version_string(trt), path)
        return None
    data = b""
    if os.path.exists(path):
        with open(path, "rb") as f:
            data = f.read()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TensorRT-RTX: "no-ops in TensorRT-RTX"
        cache = config.create_timing_cache(data) if data else None
        if data and cache is None:
            log.warning("timing cache %s is unusable (%s): starting a new one", path,
                        " | ".join(_trt.take_errors(trt)) or "rejected by TensorRT")
        if cache is None:
            cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)
    if data:
        log.info("build: timing cache %s (%d bytes) loaded", path, len(data))
    if _trt.flavour_of(trt) == "tensorrt_rtx":
        log.info("build: TensorRT-RTX ignores timing caches (no-ops since RTX 1.2); %s only matters to tensorrt", path)
    return cache


def save_timing_cache(cache: Any, path: Optional[str]) -> None:
    if cache is None or not path:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        data = bytes(memoryview(cache.serialize()))
    atomic_write(path, data)
    log.info("build: timing cache written to %s (%d bytes)", path, len(data))


# ---- config --------------------------------------------------------------------------------------
def _set_target(trt: Any, config: Any, target: Any) -> None:
    if target is None:
        return
    targets = [target] if isinstance(target, str) else list(target)
    if not hasattr(config, "set_compute_capability"):
        raise NetdslError(f"target={target!r}: this TensorRT ({_trt.version_string(trt)}) cannot build for a "
                          "chosen compute capability; build on the target GPU instead")
    config.num_compute_capabilities = len(targets)
    for i, t in enumerate(targets):
        name = str(t).upper().replace(".", "")
        name = name if name.startswith("SM") or name == "CURRENT" else "SM" + name
        cc = getattr(trt.ComputeCapability, name, None)
        if cc is None:
            raise NetdslError(f"unknown target {t!r}; choose from {', '.join(trt.ComputeCapability.__members__)}")
        config.set_compute_capability(cc, i)


def make_config(trt: Any, builder: Any, profiles: list, *, workspace: int = DEFAULT_WORKSPACE, target: Any = None,
                tf32: bool = False) -> Any:
    """An IBuilderConfig: workspace limit, optimization profiles, target, TF32 cleared unless ``tf32``."""
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace))
    for prof in profiles:
        p = builder.create_optimization_profile()
        for name, (mn, opt, mx) in prof.items():
            p.set_shape(name, mn, opt, mx)
        config.add_optimization_profile(p)
    _set_target(trt, config, target)
    flag = getattr(getattr(trt, "BuilderFlag", None), "TF32", None)
    if flag is not None and not tf32:
        config.clear_flag(flag)
    return config


def serialize(trt: Any, builder: Any, network: Any, config: Any, progress: Any = True,
              timing_cache: Optional[str] = None) -> bytes:
    """``builder.build_serialized_network(network, config)`` as bytes, with progress and the timing cache;
    a failed build raises NetdslError with TensorRT's messages."""
    monitor = None
    if progress:
        monitor = progress_monitor(trt, progress if callable(progress) else None)
        if monitor is not None and hasattr(config, "progress_monitor"):
            config.progress_monitor = monitor
        else:
            log.info("build: %s, %d layers", network.name, network.num_layers)
    cache = attach_timing_cache(trt, config, timing_cache)
    _trt.take_errors(trt)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise NetdslError(f"TensorRT could not build network '{network.name}': "
                          + (" | ".join(_trt.take_errors(trt)) or "no message (see the netdsl.tensorrt log)"))
    save_timing_cache(cache, timing_cache)
    if monitor is not None and hasattr(config, "progress_monitor"):
        config.progress_monitor = None
    return bytes(memoryview(plan))


def build_lowered(lowered: Lowered, profiles: list, workspace: int = DEFAULT_WORKSPACE, target: Any = None,
                  progress: Any = True, tf32: bool = False, timing_cache: Optional[str] = None) -> bytes:
    """Configure the builder for a lowered network and serialize it."""
    config = make_config(lowered.trt, lowered.builder, profiles, workspace=workspace, target=target, tf32=tf32)
    return serialize(lowered.trt, lowered.builder, lowered.network, config, progress, timing_cache)


def build(graph: Graph, *, precision: str = "float32", profiles: Any = None, dynamic: Optional[dict] = None,
          workspace: int = DEFAULT_WORKSPACE, target: Any = None, flavour: Optional[str] = None,
          cache: bool = True, cache_path: Optional[str] = None, progress: Any = True, tf32: bool = False,
          timing_cache: Optional[str] = None, keep_network: bool = False) -> BuildResult:
    """Lower ``graph`` and build a serialized plan (from the engine cache when a verified entry exists)."""
    trt = _trt.load(flavour)
    profs = make_profiles(graph, profiles, dynamic)
    key = engine_cache.key(graph, trt, precision=precision, tf32=bool(tf32), profiles=profs, target=repr(target),
                           workspace=int(workspace))
    if cache and not keep_network:
        hit = engine_cache.load(key, cache_path)
        if hit is not None:
            log.info("build: %s from the engine cache (%s)", graph.name, engine_cache.entry_path(key, cache_path))
            return BuildResult(hit[0], None, 0.0, True, key, profs, hit[1])
    t0 = time.perf_counter()
    lowered = lower(graph, trt, precision=precision)
    plan = build_lowered(lowered, profs, workspace, target, progress, tf32, timing_cache)
    dt = time.perf_counter() - t0
    meta = {"network": graph.name, "trt": _trt.version_string(trt), "precision": precision, "tf32": bool(tf32),
            "profiles": profs, "target": repr(target), "layers": lowered.network.num_layers,
            "inputs": {v.name: [str(d) for d in v.shape] for v in graph.inputs},
            "outputs": [v.name for v in graph.outputs]}
    if cache:
        try:
            engine_cache.store(key, plan, meta, cache_path)
        except OSError as e:
            log.warning("could not write the engine cache entry for %s: %s", graph.name, e)
    log.info("build: %s built in %.2f s (%d layers, %d bytes)", graph.name, dt, lowered.network.num_layers, len(plan))
    return BuildResult(plan, lowered if keep_network else None, dt, False, key, profs, meta)
