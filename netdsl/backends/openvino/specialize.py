"""Static specializations of a dynamic-shape OpenVINO model, for ``run_many`` on batches of one shape.

OpenVINO's CPU plugin runs a model whose dims are dynamic more slowly than the same model compiled for
the fed shape at the same streams and threads: the same kernels and layouts, but they take longer
(benchmarks/dynamic_vs_static.py; benchmarks/RESULTS.md, "Throughput at batch 8"). Fixing the dims
at compile time also changes the streams OpenVINO's THROUGHPUT hint picks (16 single-thread streams
for BERT instead of 4 x 4, which is slower), so a specialization is compiled with the dynamic model's
NUM_STREAMS.

:class:`Specializer` keeps a model's copies: ``run_many`` compiles one on the second call whose feeds
all have one set of shapes (that call waits for it); single calls (``model(...)``) start compiling one
in a background thread on a set of shapes' 8th call and keep using the dynamic model until it is ready.
Both are capped: once MAX_SPECIALIZATIONS copies are made or MAX_FAILED_SPECIALIZATIONS have failed, no
other copy is compiled (the dynamic model serves every other shape).
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional, Sequence

from ...errors import NetdslError
from .lower import import_openvino

SPECIALIZE_AFTER = 2  # run_many calls on one set of input shapes before it gets a static copy
SPECIALIZE_AFTER_CALLS = 8  # single calls on one set of input shapes before one is compiled (in background)
MAX_SPECIALIZATIONS = 2  # static copies kept per model (each holds its own copy of the weights; failures
                         # to compile one use no slot and are not retried)
MAX_FAILED_SPECIALIZATIONS = 8  # shapes whose copy failed, remembered per model; then no copy is tried any more
_FORGET = 64  # distinct sets of shapes counted before the counts start afresh


class Specializer:
    """A model's static copies by input shapes. ``make(shapes)`` compiles one (None if it cannot)."""

    def __init__(self, input_names: Sequence[str], make: Callable[[tuple], Optional[Any]]):
        self.names = list(input_names)
        self.make = make
        self.copies: dict = {}  # input shapes -> copy (None: could not be made)
        self.seconds = 0.0  # spent compiling copies
        self._batches: dict = {}  # input shapes -> run_many calls so far
        self._calls: dict = {}  # input shapes -> single calls so far
        self._lock = threading.Lock()  # held while compiling
        self._thread: Optional[threading.Thread] = None

    def key(self, feeds: dict) -> tuple:
        return tuple(feeds[n].shape for n in self.names)

    def for_batch(self, feeds: list) -> Optional[Any]:
        """The copy for ``feeds``' one set of shapes, compiled here on that set's second call; None
        while there is none (mixed shapes, first call, limit reached, another thread compiling)."""
        key = self.key(feeds[0])
        if any(self.key(f) != key for f in feeds[1:]):
            return None
        if key in self.copies:
            return self.copies[key]
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if _count(self._batches, key) >= SPECIALIZE_AFTER:
                return self._compile(key)
            return None
        finally:
            self._lock.release()

    def for_call(self, feeds: dict) -> Optional[Any]:
        """The copy for one call's shapes once it is ready; on the set's 8th call, starts compiling it
        in a background thread and returns None meanwhile."""
        key = self.key(feeds)
        copy = self.copies.get(key)
        if copy is not None or key in self.copies:
            return copy
        if _count(self._calls, key) == SPECIALIZE_AFTER_CALLS and not self._full():
            # not a daemon: an interpreter exiting meanwhile waits for the compilation to end
            t = threading.Thread(target=self._background, args=(key,), name="netdsl-specialize")
            self._thread = t
            t.start()
        return None

    def wait(self, timeout: Optional[float] = None) -> None:
        """Wait for a copy being compiled in the background (if any) to be ready."""
        t = self._thread
        if t is not None:
            t.join(timeout)

    def _background(self, key: tuple) -> None:
        with self._lock:
            self._compile(key)

    def _compile(self, key: tuple) -> Optional[Any]:
        """Compile (once) and keep the copy for ``key``; the caller holds the lock."""
        if key in self.copies or self._full():
            return self.copies.get(key)
        t0 = time.perf_counter()
        copy = self.make(key)
        self.seconds += time.perf_counter() - t0
        self.copies[key] = copy  # None is kept too: a shape that failed is not tried again
        return copy

    def _full(self) -> bool:
        """Whether no other copy may be compiled: MAX_SPECIALIZATIONS made (the ones that failed use no
        slot), or MAX_FAILED_SPECIALIZATIONS failed (each is remembered, so that it is not tried again)."""
        made = sum(c is not None for c in list(self.copies.values()))
        return made >= MAX_SPECIALIZATIONS or len(self.copies) - made >= MAX_FAILED_SPECIALIZATIONS


def _count(counts: dict, key: tuple) -> int:
    """Count one more use of ``key`` (approximately under concurrent use); the new count."""
    if len(counts) > _FORGET and key not in counts:  # many shapes come and go: count afresh
        counts.clear()
    n = counts[key] = counts.get(key, 0) + 1
    return n


def has_dynamic_inputs(compiled: Any) -> bool:
    """Whether any input of an ``ov.CompiledModel`` has a dim left dynamic (or ranged)."""
    return any(not i.get_partial_shape().is_static for i in compiled.inputs)


def static_copy(ov_model: Any, shapes: dict[str, Sequence[int]], streams: Optional[str], device: str,
                opts: dict) -> Optional[tuple]:
    """``(ov.Model, ov.CompiledModel)``: ``ov_model`` reshaped to ``{input name: shape}`` and compiled
    with ``opts`` (netdsl's compile options) at ``streams`` NUM_STREAMS unless ``opts`` names a number;
    None when OpenVINO cannot reshape or compile it (the caller keeps the dynamic model)."""
    from .runtime import auto_streams, compile_ov_model
    ov, _ = import_openvino()
    try:
        model = ov_model.clone()
        model.reshape({name: ov.PartialShape([int(d) for d in shape]) for name, shape in shapes.items()})
        opts = dict(opts)
        if streams is not None and (opts.get("num_streams") is None or auto_streams(opts["num_streams"])):
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
