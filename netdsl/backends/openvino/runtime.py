"""Compiling an ``ov.Model`` and running it: dicts of NumPy arrays in and out, thread-safe.

Precision: netdsl defaults to ``precision="f32"`` so that results match the reference. OpenVINO's
own CPU default (``precision="auto"``) is **bf16** on CPUs that support it, and ``f16`` becomes
bf16 on such CPUs as well; use ``model.runtime_precisions()`` to see what each node really ran in.

Threads: every thread gets its own InferRequest (``threading.local``); a request is never shared.
A call hands the caller's input arrays of 64 KiB or more to the request as its input tensors (no
copy: on 16 cores a MobileNetV2 batch-1 call was 70-75 us (6%) faster than with its 600 KB input
copied, and its batch-8 run_many 12% faster; smaller arrays are copied, which costs less than
swapping tensors) and starts and waits on it
(the request runs on its stream's threads, already warm: a small network's call costs ~12x less than
``infer()``). The request keeps a reference to the last arrays it ran until its next call;
``infer_async``, whose caller may change its arrays before the call runs, copies them first.
A model with dynamic dims creates a request only while none of its requests runs (OpenVINO's CPU
plugin can crash otherwise; :mod:`.request_gate`).

Throughput: :meth:`OpenVINOModel.run_many` keeps :meth:`~OpenVINOModel.optimal_requests` requests in
flight (OpenVINO's OPTIMAL_NUMBER_OF_INFER_REQUESTS: one per stream), started and collected round
robin by the calling thread; :meth:`OpenVINOModel.infer_async` runs calls on worker threads. Measured
(benchmarks/throughput.py, batch 8, float32, RESULTS.md), which is why the defaults are what they are:

* ``hint="throughput"`` with the batch (and sequence) dims left dynamic lets OpenVINO pick the streams
  that suit BERT (4 streams of 4 threads on 16 cores); fixing the dims (``dynamic={"N": 8}``) makes it
  choose 16 single-thread streams for BERT and YOLOv3-tiny: 0.96x and 0.84x ONNX Runtime (an earlier
  0.70-0.83x for BERT came from this plus only 8 requests in flight for 16 streams).
* But a dynamic-shape model runs slower than one compiled for the fed shape at the same streams
  (MobileNetV2 batch 8 at 4 x 4 on 16 cores: 7% per request, its depthwise convolutions 1.42x;
  benchmarks/dynamic_vs_static.py). So ``run_many``, from the second call whose feeds
  all have one set of shapes on, runs them on a static copy compiled for those shapes at the dynamic
  model's NUM_STREAMS (:mod:`.specialize`; at most two copies per model, each with its own weights;
  ``compile(..., specialize=False)`` turns it off). Single calls (``model(...)``) get one too, from a
  set of shapes' 8th call on, compiled in a background thread (the dynamic model serves meanwhile);
  mixed shapes stay on the dynamic model. Measured at batch 8 on 16 cores: every example 1.07x-3.6x
  ONNX Runtime (MobileNetV2 1.11-1.18x, BERT 1.18x at 4 x 4; the dynamic model alone 1.03-1.18x and
  1.13x).
* Fewer requests in flight than streams leave cores idle; ``hint="latency"`` (one stream, every core
  on each request) suits few large requests (AlexNet's 4096-wide layers: 1.43x).
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
from ..base import CompiledModel, check_dynamic, dim_ranges, layer_context
from .lower import import_openvino, lower
from .request_gate import gate_for
from .specialize import Specializer, has_dynamic_inputs

PRECISIONS = {"f32": "f32", "fp32": "f32", "float32": "f32", "bf16": "bf16", "bfloat16": "bf16",
              "f16": "f16", "fp16": "f16", "float16": "f16", "auto": None}
HINTS = {"latency": "LATENCY", "throughput": "THROUGHPUT", "cumulative_throughput": "CUMULATIVE_THROUGHPUT"}
# options meant for other backends that the CLI may pass through; ignored here
_FOREIGN = ("workspace", "dtype", "keep", "opset")
# inputs at least this large are handed to OpenVINO in place rather than copied: sharing costs ~2-5 us
# (a tensor object and set_input_tensor), a copy of 600 KB 70-75 us on a 16-core Xeon (RESULTS.md)
SHARE_BYTES = 1 << 16

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


def auto_streams(num_streams: Any) -> bool:
    """Whether ``num_streams`` is "auto" (any case)."""
    return isinstance(num_streams, str) and num_streams.lower() == "auto"


def streams_config(num_streams: Any) -> Optional[str]:
    """OpenVINO's NUM_STREAMS for ``num_streams``: a positive integer, or None for "auto": the streams
    OpenVINO's PERFORMANCE_HINT chooses (its NUM_STREAMS "AUTO" would replace a LATENCY hint by THROUGHPUT)."""
    if auto_streams(num_streams):
        return None
    # a digit string as OpenVINO reports them (static copies); isdecimal: int() refuses '\u00b2', isdigit() not
    n = int(num_streams) if isinstance(num_streams, str) and num_streams.isdecimal() else num_streams
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise NetdslError(f"OpenVINO: num_streams={num_streams!r}: give a positive integer or 'auto'")
    return str(int(n))


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
    streams = streams_config(num_streams) if num_streams is not None else None
    if streams is not None:
        cfg["NUM_STREAMS"] = streams
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
        raise _compile_error(ov_model.get_friendly_name(), device, cfg, e) from e


def _compile_error(name: str, device: str, cfg: dict, e: Exception) -> NetdslError:
    return NetdslError(f"OpenVINO could not compile model '{name}' for device {device!r} with {cfg}: {e}")


class OpenVINOModel(CompiledModel):
    """A compiled OpenVINO model: ``model(data=x) -> {output: array}``; safe to call from many threads.

    ``.ov_model`` is the ``ov.Model`` (lowered on first use when the compiled model came from the
    cache), ``.compiled`` the ``ov.CompiledModel``. ``compile_seconds`` records how long lowering +
    compilation (or the cache lookup) took; ``from_cache`` whether the compiled model was cached.
    """

    backend = "openvino"

    def __init__(self, graph: Graph, ov_model: Any, compiled: Any, device: str = "CPU",
                 options: Optional[dict] = None, lower: Optional[Any] = None):
        super().__init__(graph)
        self._ov_model = ov_model
        self._lower = lower  # () -> ov.Model, for a model served from the cache without lowering
        self.from_cache = False
        self.compiled = compiled
        self.device = device
        self.options = dict(options or {})
        self.compile_seconds = 0.0
        self._effective: Optional[str] = None
        self._local = threading.local()
        self._queue = None  # infer_async's worker threads (created on first use)
        self._queue_lock = threading.Lock()
        self._many: dict = {}  # run_many's kept infer requests (and their _Bound), by number in flight
        self._many_locks: dict = {}
        self.specialize = True  # static copies for repeated input shapes (see run_many)
        self._special = Specializer(self.input_names, self._static_copy) if has_dynamic_inputs(compiled) else None
        self._gate = gate_for(self._special is not None)  # no request created while another runs (dynamic dims)
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
        self._in_dtypes = [_numpy_type(compiled.inputs[i]) for i in self._in_index]

    @property
    def ov_model(self) -> Any:
        if self._ov_model is None and self._lower is not None:
            self._ov_model = self._lower()
        return self._ov_model

    # ---- synchronous -------------------------------------------------------------------------
    def _request(self) -> Any:
        req = getattr(self._local, "request", None)
        if req is None:
            req = self._gate.create(self.compiled.create_infer_request)
            self._local.request, self._local.bound = req, _Bound(len(self.input_names))
        return req

    def _bind(self, req: Any, feeds: dict, bound: Optional["_Bound"] = None) -> None:
        """Set the (checked) feeds as the request's inputs, with none of the per-call dispatch cost of
        ``infer(dict)``. With ``bound`` (a request the caller waits on: ``run``, ``run_many``), an array
        of at least SHARE_BYTES that OpenVINO can read in place (C-contiguous, writable, its element
        type) becomes the input tensor itself, no copy (``infer_async`` runs on its own copy of the
        caller's arrays); the others are copied into the request's own tensors (a new one, holding the copy, where an array was bound in place: the tensor that was the
        request's before may no longer own memory)."""
        for k, (i, n) in enumerate(zip(self._in_index, self.input_names)):
            arr = feeds[n]
            if bound is not None:
                if (arr.nbytes >= SHARE_BYTES and arr.flags.c_contiguous and arr.flags.writeable
                        and arr.dtype == self._in_dtypes[k]):
                    bound.share(req, i, k, arr)
                    continue
                if bound.held[k] is not None:
                    bound.held[k] = None
                    ov, _ = import_openvino()
                    req.set_input_tensor(i, ov.Tensor(np.array(arr, dtype=self._in_dtypes[k] or arr.dtype, order="C")))
                    continue
            t = req.get_input_tensor(i)
            dst = t.data  # its shape is the tensor's (tuple(t.shape) costs ~15 us, 50x more)
            if dst.shape != arr.shape:
                t.shape = arr.shape
                dst = t.data
            if dst.dtype == arr.dtype:
                np.copyto(dst, arr)
            else:  # an element type NumPy spells differently: let OpenVINO convert a copy
                ov, _ = import_openvino()
                req.set_input_tensor(i, ov.Tensor(np.ascontiguousarray(arr)))

    def _read(self, req: Any) -> dict:
        """The request's outputs, copied (the request reuses its buffers)."""
        return {n: np.array(req.get_output_tensor(i).data, copy=True)
                for n, i in zip(self.output_names, self._out_index)}

    def run(self, feeds: dict) -> dict:
        if _empty(feeds):
            return self._run_empty(feeds)
        sp = self._specializer()
        copy = sp.for_call(feeds) if sp is not None else None
        if copy is not None:
            return copy.run(feeds)
        try:
            req = self._request()
            with self._gate.running():
                self._bind(req, feeds, self._local.bound)
                # start + wait rather than infer(): the request then runs on its stream's own (warm)
                # threads; measured 6x less per-call overhead at the latency hint for small networks
                req.start_async()
                req.wait()
        except RuntimeError as e:
            raise self._run_error(e) from e
        return self._read(req)

    def _run_empty(self, feeds: dict) -> dict:
        """A call with an empty input (a zero-size dim), never run by OpenVINO: its 2026.4 CPU plugin
        fails some layers on empty tensors (max pool), and the compiled model then fails every later
        call of the last shape it ran until another shape runs. Computed by the NumPy reference in
        float32; a model without its graph (a loaded IR) returns empty outputs of the shapes its
        interface gives for these inputs, or refuses the call where an output would not be empty or
        its shape is unknown."""
        if not self.graph.nodes:
            return self._empty_outputs(feeds)
        from ..reference import run as reference_run
        out = reference_run(self.graph, feeds, dtype="float32")
        return {v.name: np.asarray(out[v.name], v.dtype.numpy) for v in self.graph.outputs}

    def _empty_outputs(self, feeds: dict) -> dict:
        """Empty arrays of the output shapes the interface graph gives for ``feeds`` (see _run_empty)."""
        env: dict = {}
        for v in self.graph.inputs:
            for d, a in zip(v.shape, feeds[v.name].shape):
                if not isinstance(d, int) and len(d.terms) == 1 and d.terms[0][1] == 1 and d.coeff == 1:
                    env[d.terms[0][0]] = a
        out = {}
        for v, i in zip(self.graph.outputs, self._out_index):
            try:
                shape = tuple(d if isinstance(d, int) else d.evaluate(env) for d in v.shape)
            except (KeyError, ZeroDivisionError, NetdslError):
                shape = None
            if shape is None or 0 not in shape:
                empty = next(f"'{n}' (shape {a.shape})" for n, a in feeds.items() if 0 in a.shape)
                why = "its shape is not known" if shape is None else f"it would have shape {shape}, not empty"
                raise NetdslError(f"OpenVINO model '{self.graph.name}' (loaded without its netdsl graph): input "
                                  f"{empty} is empty and output '{v.name}' cannot be made for it ({why}); "
                                  "OpenVINO is not given empty inputs (it fails some layers on them and then "
                                  "later calls): skip empty batches, or compile the network itself")
            out[v.name] = np.empty(shape, _numpy_type(self.compiled.outputs[i]) or v.dtype.numpy)
        return out

    def _run_error(self, e: Exception) -> NetdslError:
        """The NetdslError of a failed inference, naming the layer (no call with an empty input gets here)."""
        return NetdslError(f"OpenVINO inference of '{self.graph.name}' failed{layer_context(self.graph, str(e))}: {e}")

    def timed_call(self, feeds: dict) -> Any:
        """A new infer request with ``feeds`` set in place (shared memory: ``feeds`` must stay alive and
        unchanged): each call of the returned ``request.infer`` runs the engine alone, without copies."""
        ov, _ = import_openvino()
        req = self._gate.create(self.compiled.create_infer_request)
        for i, n in zip(self._in_index, self.input_names):
            req.set_input_tensor(i, ov.Tensor(feeds[n], shared_memory=True))
        return req.infer

    # ---- asynchronous / batched -----------------------------------------------------------------
    def optimal_requests(self) -> int:
        """OpenVINO's OPTIMAL_NUMBER_OF_INFER_REQUESTS: as many as it runs at once (its streams)."""
        try:
            return max(1, int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        except RuntimeError:
            return 2

    def infer_async(self, inputs: Optional[Mapping[str, Any]] = None, **kw: Any) -> "Future[dict]":
        """Start one inference; returns a Future of the output dict (or of the call's NetdslError). The
        calls run as :meth:`run` on :meth:`optimal_requests` worker threads, each with its own request,
        on a copy of the inputs (the caller may change its arrays before the call runs). An
        ``AsyncInferQueue`` calls no callback for a request that fails: its future never completed."""
        feeds = self.check_inputs(dict(inputs or {}, **kw))
        feeds = {k: np.array(a, copy=True) for k, a in feeds.items()}
        with self._queue_lock:
            if self._queue is None:
                from concurrent.futures import ThreadPoolExecutor
                self._queue = ThreadPoolExecutor(self.optimal_requests(), thread_name_prefix="netdsl-infer")
        return self._queue.submit(self.run, feeds)

    def run_many(self, batch: Iterable[Mapping[str, Any]], jobs: Optional[int] = None) -> list[dict]:
        """Run many feeds with ``jobs`` requests in flight; outputs in order.

        ``jobs`` defaults to :meth:`optimal_requests`: as many as OpenVINO runs at once (its streams;
        1 for a model compiled with ``hint="latency"``, so compile with ``hint="throughput"`` to run
        several at once). The requests are started and collected round robin by the calling thread
        (no callbacks: measured 1.5-2x less overhead per request than an AsyncInferQueue for small
        networks) and kept for the next call.

        A model with dynamic dims runs the second and later calls whose feeds all have one set of
        shapes on a static copy compiled for those shapes at the same streams (the second call waits
        for its compilation; see :mod:`~netdsl.backends.openvino.specialize`;
        ``compile(..., specialize=False)`` turns it off; single calls get one too, compiled in the
        background)."""
        feeds = [self.check_inputs(dict(f)) for f in batch]
        if any(_empty(f) for f in feeds):
            return [self.run(f) for f in feeds]  # see _run_empty
        special = self._specialized(feeds)
        return (special or self)._run_checked(feeds, jobs)

    def _specialized(self, feeds: list) -> Optional["OpenVINOModel"]:
        """run_many's static copy for ``feeds`` (see :class:`.specialize.Specializer`), or None."""
        sp = self._specializer()
        return sp.for_batch(feeds) if sp is not None and feeds else None

    def _specializer(self) -> Optional[Any]:
        """The :class:`.specialize.Specializer` of a model with dynamic inputs (None otherwise, or when
        ``specialize`` is off)."""
        return self._special if self.specialize else None

    def _static_copy(self, shapes: tuple) -> Optional["OpenVINOModel"]:
        """This model compiled for ``shapes`` (one per input) at its own NUM_STREAMS; None if it cannot be."""
        from .specialize import static_copy, streams_of
        t0 = time.perf_counter()
        made = static_copy(self.ov_model, dict(zip(self.input_names, shapes)), streams_of(self.compiled),
                           self.device, self.options)
        if made is None:
            return None
        copy = OpenVINOModel(self.graph, made[0], made[1], self.device, self.options)
        copy.specialize, copy.dim_ranges = False, self.dim_ranges
        copy.compile_seconds = time.perf_counter() - t0
        return copy

    @property
    def specialize_seconds(self) -> float:
        """Seconds spent compiling static copies of this model (see :meth:`run_many`)."""
        return self._special.seconds if self._special else 0.0

    def specializations(self) -> dict:
        """``{input shapes: static copy}`` made so far (a copy is None where it could not be compiled)."""
        return dict(self._special.copies) if self._special else {}

    def wait_specialized(self, timeout: Optional[float] = None) -> None:
        """Wait until a static copy being compiled in the background for single calls is ready."""
        if self._special:
            self._special.wait(timeout)

    def _run_checked(self, feeds: list, jobs: Optional[int]) -> list[dict]:
        """run_many on feeds already checked."""
        jobs = max(1, jobs or self.optimal_requests())
        lock = self._many_locks.setdefault(jobs, threading.Lock())
        mine = lock.acquire(blocking=False)  # another thread is using the kept requests: make new ones
        reqs = None
        try:
            kept = self._many.get(jobs) if mine else None
            if kept is None:
                kept = (self._gate.create(lambda: [self.compiled.create_infer_request() for _ in range(jobs)]),
                        [_Bound(len(self.input_names)) for _ in range(jobs)])
                if mine:
                    self._many[jobs] = kept
            reqs, bound = kept
            out: list = [None] * len(feeds)
            busy: list = [None] * jobs  # the feed index each request is running
            with self._gate.running():
                try:
                    for i, f in enumerate(feeds):
                        j = i % jobs
                        if busy[j] is not None:
                            reqs[j].wait()
                            out[busy[j]] = self._read(reqs[j])
                        self._bind(reqs[j], f, bound[j])
                        reqs[j].start_async()
                        busy[j] = i
                finally:
                    for j, i in enumerate(busy):  # collect (or, after an error, drain) what is in flight
                        if i is not None and out[i] is None:
                            reqs[j].wait()
                            out[i] = self._read(reqs[j])
        except RuntimeError as e:
            raise self._run_error(e) from e
        finally:
            if mine:
                lock.release()
            elif reqs is not None:  # this call's own requests: destroyed behind the gate too
                self._gate.create(reqs.clear)
        return out

    # ---- introspection ------------------------------------------------------------------------
    @property
    def effective_precision(self) -> str:
        """The type the convolutions and matmuls really run in (f32, bf16, f16; "int8+f32" etc. with INT8
        kernels, after the float type of the rest; '' if none)."""
        if self._effective is None:
            from .precision import effective_precision
            self._effective = effective_precision(self.compiled)
        return self._effective

    def runtime_precisions(self) -> dict:
        """{node name: precision it ran in} from the runtime (executed) model; a layer fused into another
        node (a bias add into its convolution) is there by its own name too."""
        from .precision import runtime_precisions
        return runtime_precisions(self.compiled)

    def save(self, path: str, compress_to_fp16: bool = False) -> str:
        """Write the model as OpenVINO IR (``.xml`` + ``.bin``)."""
        from .ir import save_ir
        return save_ir(self.ov_model, path, compress_to_fp16=compress_to_fp16)

    def __repr__(self) -> str:
        return (f"OpenVINOModel({self.graph.name!r}, device={self.device!r}, "
                f"inputs={self.input_names}, outputs={self.output_names})")


def _empty(feeds: dict) -> bool:
    """Whether an input has a zero-size dim."""
    return any(0 in np.shape(a) for a in feeds.values())


class _Bound:
    """The caller's arrays a request runs on in place of its own input tensors (kept until the
    request's next call: the request points into them, and only these tensors keep them alive)."""

    __slots__ = ("held",)

    def __init__(self, inputs: int):
        self.held: list = [None] * inputs  # the tensor sharing the array bound to input k, if any

    def share(self, req: Any, i: int, k: int, arr: np.ndarray) -> None:
        ov, _ = import_openvino()
        self.held[k] = ov.Tensor(arr, shared_memory=True)
        req.set_input_tensor(i, self.held[k])


def compile(graph: Graph, device: str = "CPU", precision: str = "f32", hint: str = "latency",  # noqa: A001
            cache_dir: Optional[str] = None, num_streams: Optional[int] = None,
            dynamic: Optional[dict] = None, config: Optional[dict] = None, specialize: bool = True,
            **unused: Any) -> OpenVINOModel:
    """Lower ``graph`` to OpenVINO and compile it.

    device: "CPU", "GPU", "AUTO" ...; precision: "f32" (default, matches the reference), "bf16",
    "f16" or "auto" (OpenVINO's default: bf16 on CPUs that have it); hint: "latency" or
    "throughput"; cache_dir: compiled-blob cache, content-verified (a corrupted or foreign blob is
    rebuilt, never served); num_streams: CPU streams, or "auto" (the hint's own choice, as None);
    dynamic: ``{"N": (1, 16)}`` bounds (or ``{"N": 8}`` fixes) symbolic dims, which are otherwise
    fully dynamic; config: extra raw OpenVINO properties; specialize: let ``run_many`` compile a static
    copy for a set of input shapes it runs repeatedly (dynamic dims only; see ``run_many``).
    """
    bad = [k for k in unused if k not in _FOREIGN]
    if bad:
        raise TypeError(f"OpenVINO backend: unknown option(s) {', '.join(bad)}; it takes device, precision, "
                        "hint, cache_dir, num_streams, dynamic, config, specialize")
    check_dynamic(graph, dynamic)
    if not isinstance(specialize, (bool, np.bool_)):  # bool("no") would turn it on
        raise NetdslError(f"specialize must be True or False, got {specialize!r}")
    t0 = time.perf_counter()
    keep = _f32_layers(graph) if PRECISIONS.get(str(precision).lower(), "x") != "f32" else set()

    def lowered() -> Any:
        ov_model = lower(graph, dynamic=dynamic, keep_f32=keep)
        if keep:
            from .precision import with_precise_attributes
            ov_model = with_precise_attributes(ov_model)
        return ov_model

    opts = dict(precision=precision, hint=hint, cache_dir=cache_dir, num_streams=num_streams, config=config)
    from . import graph_cache
    from .blob_cache import cache_dir_of
    cache, cfg = cache_dir_of(cache_dir, compile_config(precision, hint, None, num_streams, config))
    if cache and graph_cache.usable(graph):
        compiled, ov_model, blob = _compile_graph_cached(graph, device, cfg, cache, dynamic, keep, lowered)
    else:
        ov_model, blob = lowered(), None
        compiled = compile_ov_model(ov_model, device, **opts)
    m = OpenVINOModel(graph, ov_model, compiled, device, opts, lower=lowered)
    m.dim_ranges = dim_ranges(dynamic)
    m.specialize = bool(specialize)
    m.from_cache, m._blob = ov_model is None, blob  # the compiled model may point into the blob
    m.compile_seconds = time.perf_counter() - t0
    _check_precision(m, precision, device)
    return m


def _compile_graph_cached(graph: Graph, device: str, cfg: dict, cache: str, dynamic: Optional[dict],
                          keep: set, lowered: Any) -> tuple:
    """``(compiled, ov.Model or None, blob or None)`` through :mod:`graph_cache`: served without lowering
    on a hit; lowered, compiled and stored on a miss (unless a weight's file changed meanwhile)."""
    from . import graph_cache
    from .weightless import CACHE_MODE, attach, checkpoint_files
    weights = graph_cache.weight_ids(graph)
    files = checkpoint_files(weights)
    key = graph_cache.graph_key(core(), graph, device, cfg, dynamic, keep, weights)
    hit = graph_cache.load(core(), cache, key, device, cfg, files)
    if hit is not None:
        return hit[0], None, hit[1]
    ov_model = lowered()
    weights_file = attach(core(), ov_model, files) if files and device.upper().startswith("CPU") else None
    try:
        compiled = core().compile_model(ov_model, device, {**cfg, **CACHE_MODE} if weights_file else cfg)
    except RuntimeError as e:
        raise _compile_error(ov_model.get_friendly_name(), device, cfg, e) from e
    if graph_cache.unchanged(graph, weights):
        graph_cache.store(cache, key, compiled, device, weights_file)
    return compiled, ov_model, None


def _f32_layers(graph: Graph) -> set:
    """Layers to keep in f32 under reduced-precision inference (explicit casts, net.precision scopes)."""
    from ...passes.precision import layer_precisions
    from ...dtypes import DType
    return {k for k, v in layer_precisions(graph).items() if v is DType.float32}


def _numpy_type(port: Any) -> Optional[np.dtype]:
    """The NumPy dtype of an input port's element type (None where NumPy has none)."""
    try:
        return np.dtype(port.get_element_type().to_dtype())
    except (RuntimeError, TypeError, ValueError):
        return None


def _check_precision(m: "OpenVINOModel", precision: str, device: str) -> None:
    """Record the precision the device really runs; warn once when it is not the one requested."""
    from .precision import warn_once, warn_unkept_islands
    want = PRECISIONS.get(str(precision).lower())
    runs = m.effective_precision.split("+")[-1]  # an INT8 model: the float type of the rest
    if want in ("bf16", "f16") and runs and runs != want:
        warn_once(want, m.effective_precision, device)
    if want in ("bf16", "f16") and m.graph.nodes:  # an IR's interface graph has none
        warn_unkept_islands(m.compiled, _f32_layers(m.graph), m.graph.name, [n.name for n in m.graph.nodes])


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
