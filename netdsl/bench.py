"""Benchmarking a compiled model: warm-up, then a timed loop of synchronous calls, one per parallel request.

``benchmark(model, feeds)`` validates the inputs once, then calls the engine in a loop for ``iterations``
calls or ``duration`` seconds, from ``requests`` threads at once. Each thread calls
``model.timed_call(feeds)``'s function: for OpenVINO its own infer request with the inputs set in place
(the engine alone, as ``benchmark_app`` times it), for other engines ``model.run``. With
``end_to_end=True`` every call is ``model(feeds)`` instead: input checks and copies in and out included,
what an application calling the model sees. Latency is the time of each call; throughput counts samples
(calls x batch) per second of wall time, as ``benchmark_app`` and ``trtexec`` do::

    model = netdsl.compile(net, "openvino", hint="throughput")
    r = benchmark(model, feeds, duration=10, requests=4, batch=8)
    print(r)          # latency min/mean/median/p90/p99/max, throughput
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

import numpy as np

from .errors import NetdslError

PERCENTILES = (("min", 0), ("median", 50), ("p90", 90), ("p99", 99), ("max", 100))


@dataclass
class BenchResult:
    """What :func:`benchmark` measured (times in milliseconds unless named otherwise)."""

    backend: str
    network: str
    batch: int
    requests: int
    iterations: int
    duration_s: float
    warmup: int
    first_call_ms: float
    latency_ms: dict = field(default_factory=dict)   # min, mean, median, p90, p99, max, std
    throughput: float = 0.0                          # samples per second (calls x batch / wall time)
    calls_per_s: float = 0.0
    shapes: dict = field(default_factory=dict)        # input name -> shape
    engine: dict = field(default_factory=dict)        # what the engine chose (streams, threads, precision)
    compile_s: Optional[float] = None
    end_to_end: bool = False                          # calls included netdsl's input checks and copies

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        lat = self.latency_ms
        lines = [f"benchmark of '{self.network}' on {self.backend}: batch {self.batch}, {self.requests} parallel "
                 f"request(s), {self.iterations} calls in {self.duration_s:.2f} s after {self.warmup} warm-up "
                 f"call(s)" + (" (end to end: input checks and copies included)" if self.end_to_end else "")]
        if self.compile_s is not None:
            lines.append(f"  compile      {self.compile_s:.3f} s")
        lines.append(f"  first call   {self.first_call_ms:.2f} ms")
        lines.append("  latency      " + ", ".join(f"{k} {lat[k]:.2f}" for k in ("min", "mean", "median", "p90",
                                                                                 "p99", "max")) + " ms")
        lines.append(f"  throughput   {self.throughput:.2f} samples/s ({self.calls_per_s:.2f} calls/s)")
        if self.shapes:
            lines.append("  inputs       " + ", ".join(f"{k} {tuple(v)}" for k, v in self.shapes.items()))
        if self.engine:
            lines.append("  engine       " + ", ".join(f"{k}={v}" for k, v in self.engine.items()))
        return "\n".join(lines)


def latency_stats(seconds: list) -> dict:
    """min, mean, median, p90, p99, max and std of call times, in milliseconds."""
    a = np.asarray(seconds, dtype=np.float64) * 1e3
    out = {k: float(np.percentile(a, q)) for k, q in PERCENTILES}
    out["mean"] = float(a.mean())
    out["std"] = float(a.std())
    return out


def engine_info(model: Any) -> dict:
    """Settings the engine chose for a compiled model (OpenVINO: streams, threads, requests, precision hint,
    and the precision its convolutions and matmuls really run in)."""
    compiled = getattr(model, "compiled", None)
    info: dict = {}
    if compiled is None or not hasattr(compiled, "get_property"):
        return info
    for key in ("PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS", "INFERENCE_PRECISION_HINT",
                "OPTIMAL_NUMBER_OF_INFER_REQUESTS"):
        try:
            v = compiled.get_property(key)
        except RuntimeError:
            continue
        info[key] = v.get_type_name() if hasattr(v, "get_type_name") else str(v)
    effective = getattr(model, "effective_precision", "")
    if effective:  # what the compute layers really run in (e.g. bf16 for precision "auto")
        info["effective_precision"] = effective
    return info


def benchmark(model: Any, feeds: dict, *, warmup: int = 3, iterations: Optional[int] = None,
              duration: Optional[float] = None, requests: int = 1, batch: int = 1, end_to_end: bool = False,
              show_progress: bool = True) -> BenchResult:
    """Time ``model`` on ``feeds``; stop after ``iterations`` calls, else after ``duration`` seconds
    (default 10). ``requests`` threads call at once. ``warmup`` untimed calls come first (at least one:
    the first call, whose time is reported as ``first_call_ms``); each further thread warms up once."""
    from .progress import progress
    if requests < 1:
        raise ValueError("requests must be >= 1")
    if iterations is None and duration is None:
        duration = 10.0
    checked = model.check_inputs(feeds)

    def make_call() -> Any:
        return (lambda: model(checked)) if end_to_end else model.timed_call(checked)

    call0 = make_call()
    t0 = time.perf_counter()
    call0()
    first = time.perf_counter() - t0
    for _ in range(max(warmup - 1, 0)):
        call0()
    lock = threading.Lock()
    state = {"started": 0}
    times: list = [[] for _ in range(requests)]
    errors: list = []
    total = iterations if iterations is not None else duration
    bar = progress(total=total, desc="benchmarking", unit="call" if iterations is not None else "s",
                   leave=False) if show_progress else None

    def take() -> bool:
        with lock:
            if state.get("abort"):
                return False
            if iterations is not None:
                if state["started"] >= iterations:
                    return False
            elif time.perf_counter() - start >= duration:  # type: ignore[operator]
                return False
            state["started"] += 1
            return True

    def worker(k: int) -> None:
        mine = times[k]
        try:
            call = call0 if k == 0 else make_call()
            if k:  # each further thread warms up its own request
                call()
            ready.wait()
            while take():
                s = time.perf_counter()
                call()
                mine.append(time.perf_counter() - s)
                if bar is not None and iterations is not None:
                    bar.update(1)
        except Exception as e:  # surfaced after the threads end
            errors.append(e)

    ready = threading.Event()
    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(requests)]
    start = time.perf_counter()
    for k, t in enumerate(threads):
        try:
            t.start()
        except RuntimeError as e:  # the OS refuses more threads
            state["abort"] = True
            ready.set()
            for s in threads[:k]:
                s.join()
            if bar is not None:
                bar.close()
            raise NetdslError(f"cannot run {requests} parallel requests: thread {k + 1} did not start ({e})") \
                from None
    start = time.perf_counter()
    ready.set()
    try:
        if bar is not None and iterations is None:
            while any(t.is_alive() for t in threads):
                time.sleep(0.2)
                bar.n = min(round(time.perf_counter() - start, 1), duration)  # type: ignore[type-var]
                bar.refresh()
        for t in threads:
            t.join()
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    flat = [x for ts in times for x in ts]
    if not flat:
        raise ValueError("no call finished within the benchmark's duration: give a longer duration or iterations")
    return BenchResult(backend=getattr(model, "backend", "?"), network=model.graph.name, batch=batch,
                       requests=requests, iterations=len(flat), duration_s=wall, warmup=warmup,
                       first_call_ms=first * 1e3, latency_ms=latency_stats(flat),
                       throughput=len(flat) * batch / wall, calls_per_s=len(flat) / wall,
                       shapes={k: list(np.shape(v)) for k, v in checked.items()}, engine=engine_info(model),
                       end_to_end=end_to_end)


__all__ = ["BenchResult", "benchmark", "engine_info", "latency_stats"]
