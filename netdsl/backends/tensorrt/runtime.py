"""Execute a serialized TensorRT plan with pycuda.

One :class:`Engine` holds the deserialized engine, an execution context, a CUDA stream, and for
every I/O tensor a device buffer and a pinned host buffer, reused across calls (grown when a larger
dynamic shape arrives). Calls:

* ``engine.run({name: ndarray})`` -> ``{name: ndarray}`` (synchronous);
* ``engine.run_async({...})`` -> :class:`Pending` (``.result()`` waits and returns the dict);
* ``engine.run_device({name: device array})`` with cupy/torch/any ``__cuda_array_interface__``
  arrays, in and (optionally) out, with no host copy; without ``outputs=`` it returns views of the
  engine's own output buffers (valid until the next call).

pycuda needs the CUDA driver and builds from source; TensorRT-RTX refuses compute capability 9.0.
:func:`gpu_status` (:mod:`.gpu`) says precisely what is missing: no GPU, an unsupported compute
capability, or no pycuda.
"""
from __future__ import annotations

import threading
from typing import Any, Mapping, Optional

import numpy as np

from ...errors import BackendUnavailable, NetdslError, ShapeError
from ..base import CompiledModel
from . import _trt
from .gpu import pycuda_missing, status

gpu_status = status  # (True, GPU) or (False, what is missing): see .gpu


def _pycuda() -> Any:
    missing = pycuda_missing()
    if missing:
        raise BackendUnavailable(missing)
    import pycuda.driver as cuda
    return cuda


def _np_dtype(trt: Any, dt: Any) -> np.dtype:
    m = {trt.float32: np.float32, trt.float16: np.float16, trt.int32: np.int32, trt.int64: np.int64,
         trt.int8: np.int8, trt.uint8: np.uint8, trt.bool: np.bool_}
    if dt not in m:
        raise NetdslError(f"TensorRT I/O type {dt} has no NumPy counterpart (cast it in the network)")
    return np.dtype(m[dt])


class _Buffer:
    """A device buffer + a pinned host buffer for one I/O tensor, grown on demand."""

    def __init__(self, cuda: Any, dtype: np.dtype):
        self.cuda = cuda
        self.dtype = dtype
        self.capacity = 0
        self.device: Any = None
        self.host: Optional[np.ndarray] = None

    def ensure(self, shape: tuple) -> None:
        n = int(np.prod(shape, dtype=np.int64))
        nbytes = max(n * self.dtype.itemsize, 1)
        if nbytes > self.capacity:
            if self.device is not None:
                self.device.free()
            self.device = self.cuda.mem_alloc(nbytes)
            self.host = self.cuda.pagelocked_empty(max(n, 1), self.dtype)
            self.capacity = nbytes
        self.shape = tuple(shape)

    @property
    def ptr(self) -> int:
        return int(self.device)

    def host_view(self) -> np.ndarray:
        n = int(np.prod(self.shape, dtype=np.int64))
        return self.host[:n].reshape(self.shape)  # type: ignore[index]


class DeviceView:
    """A view of an engine output buffer on the GPU (``__cuda_array_interface__``; cupy.asarray works)."""

    def __init__(self, ptr: int, shape: tuple, dtype: np.dtype, owner: Any):
        self._owner = owner  # keeps the engine (and its buffer) alive
        self.shape = shape
        self.dtype = dtype
        self.__cuda_array_interface__ = {"shape": shape, "typestr": dtype.str, "data": (ptr, False),
                                         "strides": None, "version": 3}


def _cai(name: str, arr: Any) -> tuple[int, tuple, np.dtype]:
    cai = getattr(arr, "__cuda_array_interface__", None)
    if cai is None:
        raise ShapeError(f"'{name}': expected a GPU array with __cuda_array_interface__ (cupy, torch, numba), "
                         f"got {type(arr).__name__}")
    shape = tuple(cai["shape"])
    dtype = np.dtype(cai["typestr"])
    strides = cai.get("strides")
    if strides is not None:
        want = []
        acc = dtype.itemsize
        for d in reversed(shape):
            want.append(acc)
            acc *= d
        if tuple(reversed(want)) != tuple(strides) and int(np.prod(shape)) > 1:
            raise ShapeError(f"'{name}': device array is not C-contiguous (strides {strides}); make it contiguous")
    return int(cai["data"][0]), shape, dtype


class Engine:
    """A deserialized plan with reusable buffers and a stream (one call at a time per Engine)."""

    def __init__(self, plan: bytes, trt: Any = None, device: int = 0, profile: int = 0):
        self.trt = trt or _trt.load()
        ok, why = gpu_status(self.trt, device)
        if not ok:
            raise BackendUnavailable(f"TensorRT engine cannot run here: {why}")
        cuda = self.cuda = _pycuda()
        self.cuda_ctx = cuda.Device(device).retain_primary_context()
        self.cuda_ctx.push()
        try:
            self.runtime = self.trt.Runtime(_trt.logger(self.trt))
            self.engine = self.runtime.deserialize_cuda_engine(plan)
            if self.engine is None:
                raise NetdslError("TensorRT could not deserialize the plan: "
                                  + " | ".join(_trt.take_errors(self.trt)))
            self.context = self.engine.create_execution_context()
            self.stream = cuda.Stream()
            if profile:
                self.context.set_optimization_profile_async(profile, self.stream.handle)
            T = self.trt.TensorIOMode
            names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
            self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == T.INPUT]
            self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == T.OUTPUT]
            self.dtypes = {n: _np_dtype(self.trt, self.engine.get_tensor_dtype(n)) for n in names}
            self.buffers = {n: _Buffer(cuda, self.dtypes[n]) for n in names}
        finally:
            self.cuda_ctx.pop()
        self._lock = threading.Lock()
        self._pending: Optional[Pending] = None

    # -- shapes --
    def _set_shapes(self, shapes: Mapping[str, tuple]) -> dict:
        for n in self.inputs:
            if n not in shapes:
                raise ShapeError(f"engine input '{n}' not given (inputs: {', '.join(self.inputs)})")
            if not self.context.set_input_shape(n, tuple(int(d) for d in shapes[n])):
                raise ShapeError(f"input '{n}' shape {tuple(shapes[n])} is outside the engine's optimization "
                                 "profile: rebuild with profiles=/dynamic= covering it | "
                                 + " | ".join(_trt.take_errors(self.trt)))
        out = {}
        for n in self.outputs:
            s = tuple(self.context.get_tensor_shape(n))
            if any(d < 0 for d in s):
                raise NetdslError(f"output '{n}' has a data-dependent shape {s}; not supported")
            out[n] = s
        return out

    def _wait_previous(self) -> None:
        p, self._pending = self._pending, None
        if p is not None and not p.done:
            p.event.synchronize()

    # -- host arrays --
    def _enqueue(self, feeds: Mapping[str, np.ndarray]) -> "Pending":
        cuda = self.cuda
        self._wait_previous()
        arrays = {n: np.ascontiguousarray(feeds[n], dtype=self.dtypes[n]) for n in self.inputs if n in feeds}
        out_shapes = self._set_shapes({n: a.shape for n, a in arrays.items()})
        for n, a in arrays.items():
            b = self.buffers[n]
            b.ensure(a.shape)
            np.copyto(b.host_view(), a)
            cuda.memcpy_htod_async(b.device, b.host_view(), self.stream)
            self.context.set_tensor_address(n, b.ptr)
        for n, s in out_shapes.items():
            b = self.buffers[n]
            b.ensure(s)
            self.context.set_tensor_address(n, b.ptr)
        if not self.context.execute_async_v3(self.stream.handle):
            raise NetdslError("TensorRT execution failed: " + " | ".join(_trt.take_errors(self.trt)))
        for n in self.outputs:
            b = self.buffers[n]
            cuda.memcpy_dtoh_async(b.host_view(), b.device, self.stream)
        ev = cuda.Event()
        ev.record(self.stream)
        self._pending = Pending(self, ev)
        return self._pending

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Synchronous: copies in, executes, copies out (returns new arrays)."""
        return self.run_async(feeds).result()

    def run_async(self, feeds: Mapping[str, np.ndarray]) -> "Pending":
        """Enqueue on the engine's stream and return at once; ``.result()`` waits for the outputs."""
        with self._lock:
            self.cuda_ctx.push()
            try:
                return self._enqueue(feeds)
            finally:
                self.cuda_ctx.pop()

    # -- device arrays --
    def run_device(self, inputs: Mapping[str, Any], outputs: Optional[Mapping[str, Any]] = None,
                   stream: Optional[int] = None) -> dict[str, Any]:
        """Execute on GPU arrays without host copies.

        ``inputs``/``outputs`` are objects with ``__cuda_array_interface__`` (C-contiguous, the engine's
        dtype). ``stream`` is a raw CUDA stream handle (e.g. ``cupy.cuda.get_current_stream().ptr``);
        the call returns when the work is enqueued on it. Without ``outputs`` the result holds
        :class:`DeviceView` s of the engine's buffers, valid until the next call.
        """
        with self._lock:
            self.cuda_ctx.push()
            try:
                self._wait_previous()
                shapes, ptrs = {}, {}
                for n in self.inputs:
                    if n not in inputs:
                        raise ShapeError(f"engine input '{n}' not given")
                    ptr, shape, dt = _cai(n, inputs[n])
                    if dt != self.dtypes[n]:
                        raise ShapeError(f"input '{n}': device array is {dt}, the engine wants {self.dtypes[n]}")
                    shapes[n], ptrs[n] = shape, ptr
                out_shapes = self._set_shapes(shapes)
                for n, p in ptrs.items():
                    self.context.set_tensor_address(n, p)
                result: dict[str, Any] = {}
                for n, s in out_shapes.items():
                    if outputs is not None and n in outputs:
                        ptr, shape, dt = _cai(n, outputs[n])
                        if shape != s or dt != self.dtypes[n]:
                            raise ShapeError(f"output '{n}': device array is {dt}{shape}, the engine produces "
                                             f"{self.dtypes[n]}{s}")
                        self.context.set_tensor_address(n, ptr)
                        result[n] = outputs[n]
                    else:
                        b = self.buffers[n]
                        b.ensure(s)
                        self.context.set_tensor_address(n, b.ptr)
                        result[n] = DeviceView(b.ptr, s, self.dtypes[n], self)
                handle = self.stream.handle if stream is None else int(stream)
                if not self.context.execute_async_v3(handle):
                    raise NetdslError("TensorRT execution failed: " + " | ".join(_trt.take_errors(self.trt)))
                if stream is None:
                    self.stream.synchronize()
                return result
            finally:
                self.cuda_ctx.pop()


class Pending:
    """An enqueued execution; ``result()`` waits for it and returns copies of the outputs."""

    def __init__(self, engine: Engine, event: Any):
        self.engine = engine
        self.event = event
        self.done = False

    def result(self) -> dict[str, np.ndarray]:
        if not self.done:
            self.event.synchronize()
            self.done = True
        return {n: self.engine.buffers[n].host_view().copy() for n in self.engine.outputs}


class TensorRTModel(CompiledModel):
    """A compiled netdsl network running as a TensorRT engine (dict of NumPy arrays in and out)."""

    backend = "tensorrt"

    def __init__(self, graph: Any, plan: bytes, trt: Any = None, device: int = 0):
        super().__init__(graph)
        self.plan = plan
        from ...plugins.tensorrt_plugin import register_graph
        register_graph(trt or _trt.load(), graph)  # plugin creators, for the plan's deserializer
        self.engine = Engine(plan, trt, device)

    def run(self, feeds: dict) -> dict:
        out = self.engine.run(feeds)
        return {n: out[n] for n in self.output_names}

    def run_async(self, inputs: Optional[Mapping[str, Any]] = None, **kw: Any) -> Pending:
        return self.engine.run_async(self.check_inputs(dict(inputs or {}, **kw)))

    def run_device(self, inputs: Mapping[str, Any], outputs: Optional[Mapping[str, Any]] = None,
                   stream: Optional[int] = None) -> dict:
        return self.engine.run_device(inputs, outputs, stream)

    def save(self, path: str) -> None:
        """Write the plan (exactly TensorRT's serialized engine) and its sidecar ``path.json``."""
        from .plan_file import write_plan
        write_plan(path, self.plan, {"network": self.graph.name})
