"""Compiling an ``ov.Model`` and running it: dicts of NumPy arrays in and out, thread-safe.

Precision: netdsl defaults to ``precision="f32"`` so that results match the reference. OpenVINO's
own CPU default (``precision="auto"``) is **bf16** on CPUs that support it, and ``f16`` becomes
bf16 on such CPUs as well; use ``model.runtime_precisions()`` to see what each node really ran in.

Threads: every thread gets its own InferRequest (``threading.local``); a request is never shared.
Throughput: :meth:`OpenVINOModel.run_many` and :meth:`OpenVINOModel.infer_async` use an
``AsyncInferQueue`` (best with ``hint="throughput"``).
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Any, Iterable, Mapping, Optional

import numpy as np

from ...errors import NetdslError
from ...graph import Graph, Value
from ...shapes import as_shape
from ...dtypes import as_dtype
from ..base import CompiledModel, dim_ranges, layer_context
from .lower import import_openvino, lower

PRECISIONS = {"f32": "f32", "fp32": "f32", "float32": "f32", "bf16": "bf16", "bfloat16": "bf16",
              "f16": "f16", "fp16": "f16", "float16": "f16", "auto": None}
HINTS = {"latency": "LATENCY", "throughput": "THROUGHPUT", "cumulative_throughput": "CUMULATIVE_THROUGHPUT"}
# options meant for other backends that the CLI may pass through; ignored here
_FOREIGN = ("workspace", "dtype", "keep", "opset")

_core = None
_core_lock = threading.Lock()


def core() -> Any:
    """The process-wide ``ov.Core`` (created on first use)."""
    global _core
    with _core_lock:
        if _core is None:
            ov, _ = import_openvino()
            _core = ov.Core()
        return _core


def compile_config(precision: str = "f32", hint: str = "latency", cache_dir: Optional[str] = None,
                   num_streams: Optional[int] = None, config: Optional[dict] = None) -> dict:
    """The OpenVINO properties for the given netdsl options. ``cache_dir`` is not one of them: netdsl
    serves it through its verified cache (:mod:`netdsl.backends.openvino.blob_cache`), never OpenVINO's."""
    p = str(precision).lower()
    if p not in PRECISIONS:
        raise NetdslError(f"OpenVINO: unknown precision {precision!r}; choose f32, bf16, f16 or auto")
    h = str(hint).lower()
    if h not in HINTS:
        raise NetdslError(f"OpenVINO: unknown hint {hint!r}; choose latency or throughput")
    cfg: dict[str, Any] = {"PERFORMANCE_HINT": HINTS[h]}
    if PRECISIONS[p] is not None:
        cfg["INFERENCE_PRECISION_HINT"] = PRECISIONS[p]
    if num_streams is not None:
        cfg["NUM_STREAMS"] = str(num_streams)
    cfg.update(config or {})
    return cfg


def compile_ov_model(ov_model: Any, device: str = "CPU", **opts: Any) -> Any:
    """``core.compile_model`` with netdsl's options (through the verified blob cache when ``cache_dir``
    or a ``CACHE_DIR`` property is given); engine errors name the device and options."""
    from .blob_cache import cache_dir_of, compile_cached
    cache_dir, cfg = cache_dir_of(opts.pop("cache_dir", None), compile_config(**opts))
    try:
        if cache_dir:
            return compile_cached(core(), ov_model, device, cfg, cache_dir)
        return core().compile_model(ov_model, device, cfg)
    except RuntimeError as e:
        raise NetdslError(f"OpenVINO could not compile model '{ov_model.get_friendly_name()}' for device "
                          f"{device!r} with {cfg}: {e}") from e


class OpenVINOModel(CompiledModel):
    """A compiled OpenVINO model: ``model(data=x) -> {output: array}``; safe to call from many threads.

    ``.ov_model`` is the ``ov.Model``, ``.compiled`` the ``ov.CompiledModel``. ``compile_seconds``
    records how long lowering + compilation took.
    """

    backend = "openvino"

    def __init__(self, graph: Graph, ov_model: Any, compiled: Any, device: str = "CPU",
                 options: Optional[dict] = None):
        super().__init__(graph)
        self.ov_model = ov_model
        self.compiled = compiled
        self.device = device
        self.options = dict(options or {})
        self.compile_seconds = 0.0
        self._effective: Optional[str] = None
        self._local = threading.local()
        self._queue = None
        self._queue_lock = threading.Lock()
        names = [set(o.get_names()) for o in compiled.outputs]
        self._out_index = []
        for n in self.output_names:
            idx = [i for i, s in enumerate(names) if n in s]
            if not idx:
                raise NetdslError(f"OpenVINO: compiled model has no output named {n!r}")
            self._out_index.append(idx[0])
        in_names = [set(i.get_names()) for i in compiled.inputs]
        self._in_index = []
        for n in self.input_names:
            idx = [i for i, s in enumerate(in_names) if n in s]
            if not idx:
                raise NetdslError(f"OpenVINO: compiled model has no input named {n!r}")
            self._in_index.append(idx[0])

    # ---- synchronous -------------------------------------------------------------------------
    def _request(self) -> Any:
        req = getattr(self._local, "request", None)
        if req is None:
            req = self.compiled.create_infer_request()
            self._local.request = req
        return req

    def _feed(self, feeds: dict) -> dict:
        return {i: feeds[n] for i, n in zip(self._in_index, self.input_names)}

    def _outputs(self, results: Any) -> dict:
        return {n: np.array(results[self.compiled.outputs[i]], copy=True)
                for n, i in zip(self.output_names, self._out_index)}

    def run(self, feeds: dict) -> dict:
        req = self._request()
        try:
            # copies in and out: a request that shares NumPy memory keeps pointing at it after the
            # call (crashes seen with share_inputs=True), and it reuses its output buffers
            res = req.infer(self._feed(feeds), share_inputs=False, share_outputs=False)
        except RuntimeError as e:
            raise NetdslError(f"OpenVINO inference of '{self.graph.name}' failed"
                              f"{layer_context(self.graph, str(e))}: {e}") from e
        return self._outputs(res)

    def timed_call(self, feeds: dict) -> Any:
        """A new infer request with ``feeds`` set in place (shared memory: ``feeds`` must stay alive and
        unchanged): each call of the returned ``request.infer`` runs the engine alone, without copies."""
        ov, _ = import_openvino()
        req = self.compiled.create_infer_request()
        for i, n in zip(self._in_index, self.input_names):
            req.set_input_tensor(i, ov.Tensor(feeds[n], shared_memory=True))
        return req.infer

    # ---- asynchronous / batched -----------------------------------------------------------------
    def _get_queue(self) -> Any:
        with self._queue_lock:
            if self._queue is None:
                ov, _ = import_openvino()
                self._queue = ov.AsyncInferQueue(self.compiled, self.optimal_requests())
                self._queue.set_callback(self._done)
            return self._queue

    def optimal_requests(self) -> int:
        try:
            return max(1, int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        except RuntimeError:
            return 2

    def _done(self, request: Any, fut: Future) -> None:
        try:
            fut.set_result(self._outputs({o: request.get_tensor(o).data for o in self.compiled.outputs}))
        except Exception as e:  # pragma: no cover - surfaced through the future
            fut.set_exception(e)

    def infer_async(self, inputs: Optional[Mapping[str, Any]] = None, **kw: Any) -> "Future[dict]":
        """Start one inference on the shared AsyncInferQueue; returns a Future of the output dict."""
        feeds = self.check_inputs(dict(inputs or {}, **kw))
        q = self._get_queue()
        fut: Future = Future()
        with self._queue_lock:  # start_async waits for an idle request; keep starts ordered
            q.start_async(self._feed(feeds), fut, share_inputs=False)
        return fut

    def run_many(self, batch: Iterable[Mapping[str, Any]], jobs: Optional[int] = None) -> list[dict]:
        """Run many feeds through an AsyncInferQueue (``jobs`` requests in flight); ordered outputs."""
        ov, _ = import_openvino()
        feeds = [self.check_inputs(dict(f)) for f in batch]
        q = ov.AsyncInferQueue(self.compiled, jobs or self.optimal_requests())
        out: list[Optional[dict]] = [None] * len(feeds)

        def done(request: Any, i: int) -> None:
            out[i] = self._outputs({o: request.get_tensor(o).data for o in self.compiled.outputs})

        q.set_callback(done)
        for i, f in enumerate(feeds):
            q.start_async(self._feed(f), i, share_inputs=False)
        q.wait_all()
        missing = [i for i, o in enumerate(out) if o is None]
        if missing:
            raise NetdslError(f"OpenVINO: asynchronous requests {missing[:5]} produced no result")
        return out  # type: ignore[return-value]

    # ---- introspection ------------------------------------------------------------------------
    @property
    def effective_precision(self) -> str:
        """The float type the convolutions and matmuls really run in (f32, bf16, f16; '' if none)."""
        if self._effective is None:
            from .precision import effective_precision
            self._effective = effective_precision(self.compiled)
        return self._effective

    def runtime_precisions(self) -> dict:
        """{node name: precision it ran in} from the runtime (executed) model."""
        out = {}
        for n in self.compiled.get_runtime_model().get_ordered_ops():
            rt = n.get_rt_info()
            if "runtimePrecision" in rt:
                out[n.get_friendly_name()] = rt["runtimePrecision"].astype(str)
        return out

    def save(self, path: str, compress_to_fp16: bool = False) -> str:
        """Write the model as OpenVINO IR (``.xml`` + ``.bin``)."""
        from .ir import save_ir
        return save_ir(self.ov_model, path, compress_to_fp16=compress_to_fp16)

    def __repr__(self) -> str:
        return (f"OpenVINOModel({self.graph.name!r}, device={self.device!r}, "
                f"inputs={self.input_names}, outputs={self.output_names})")


def compile(graph: Graph, device: str = "CPU", precision: str = "f32", hint: str = "latency",  # noqa: A001
            cache_dir: Optional[str] = None, num_streams: Optional[int] = None,
            dynamic: Optional[dict] = None, config: Optional[dict] = None, **unused: Any) -> OpenVINOModel:
    """Lower ``graph`` to OpenVINO and compile it.

    device: "CPU", "GPU", "AUTO" ...; precision: "f32" (default, matches the reference), "bf16",
    "f16" or "auto" (OpenVINO's default: bf16 on CPUs that have it); hint: "latency" or
    "throughput"; cache_dir: compiled-blob cache, content-verified (a corrupted or foreign blob is
    rebuilt, never served); num_streams: CPU streams;
    dynamic: ``{"N": (1, 16)}`` bounds (or ``{"N": 8}`` fixes) symbolic dims, which are otherwise
    fully dynamic; config: extra raw OpenVINO properties.
    """
    bad = [k for k in unused if k not in _FOREIGN]
    if bad:
        raise TypeError(f"OpenVINO backend: unknown option(s) {', '.join(bad)}; it takes device, precision, "
                        "hint, cache_dir, num_streams, dynamic, config")
    t0 = time.perf_counter()
    keep = _f32_layers(graph) if PRECISIONS.get(str(precision).lower(), "x") != "f32" else set()
    ov_model = lower(graph, dynamic=dynamic, keep_f32=keep)
    if keep:
        from .precision import with_precise_attributes
        ov_model = with_precise_attributes(ov_model)
    opts = dict(precision=precision, hint=hint, cache_dir=cache_dir, num_streams=num_streams, config=config)
    compiled = compile_ov_model(ov_model, device, **opts)
    m = OpenVINOModel(graph, ov_model, compiled, device, opts)
    m.dim_ranges = dim_ranges(dynamic)
    m.compile_seconds = time.perf_counter() - t0
    _check_precision(m, precision, device)
    return m


def _f32_layers(graph: Graph) -> set:
    """Layers to keep in f32 under reduced-precision inference (explicit casts, net.precision scopes)."""
    from ...passes.precision import layer_precisions
    from ...dtypes import DType
    return {k for k, v in layer_precisions(graph).items() if v is DType.float32}


def _check_precision(m: "OpenVINOModel", precision: str, device: str) -> None:
    """Record the precision the device really runs; warn once when it is not the one requested."""
    from .precision import warn_once
    want = PRECISIONS.get(str(precision).lower())
    if want in ("bf16", "f16") and m.effective_precision and m.effective_precision != want:
        warn_once(want, m.effective_precision, device)


def interface_graph(ov_model: Any) -> Graph:
    """A node-less Graph carrying the inputs/outputs recorded in an IR (for input checks and names)."""
    g = Graph(name=_rt(ov_model, "name") or ov_model.get_friendly_name())

    def parse(spec: str) -> list[Value]:
        out = []
        for item in filter(None, spec.split(";")):
            name, dt, shape = item.split(":", 2)
            dims = [int(d) if d.lstrip("-").isdigit() else d for d in shape.split(",")] if shape else []
            out.append(Value(name, as_dtype(dt), as_shape(dims)))
        return out

    ins, outs = _rt(ov_model, "inputs"), _rt(ov_model, "outputs")
    if ins is not None and outs is not None:
        g.inputs, g.outputs = parse(ins), parse(outs)
        return g
    # an IR not written by netdsl: take names/types/shapes from the model itself
    rev = {"f32": "float32", "f16": "float16", "f64": "float64", "i8": "int8", "u8": "uint8", "i32": "int32",
           "i64": "int64", "boolean": "bool", "bf16": "float32"}

    def val(port: Any, k: int, kind: str) -> Value:
        name = port.get_any_name() if port.get_names() else f"{kind}{k}"
        ps = port.get_partial_shape()
        dims = [d.get_length() if d.is_static else f"{name}_d{j}" for j, d in enumerate(ps)]
        return Value(name, as_dtype(rev.get(port.get_element_type().get_type_name(), "float32")), as_shape(dims))

    g.inputs = [val(p, i, "input") for i, p in enumerate(ov_model.inputs)]
    g.outputs = [val(p, i, "output") for i, p in enumerate(ov_model.outputs)]
    return g


def _rt(ov_model: Any, key: str) -> Optional[str]:
    try:
        if ov_model.has_rt_info(["netdsl", key]):
            return ov_model.get_rt_info(["netdsl", key]).astype(str)
    except RuntimeError:
        pass
    return None


__all__ = ["OpenVINOModel", "compile", "compile_config", "core", "interface_graph"]
