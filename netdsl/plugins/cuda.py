"""The CUDA launch path of plugins: NVRTC-compiled kernels launched on a caller's stream.

A plugin's CUDA implementation is a :class:`CudaKernel`: the kernel source, the entry function per
dtype, and its launch geometry as a function of the input shapes and attributes::

    kernel = CudaKernel(source, entries={"float32": "mish_f32", "float16": "mish_f16"},
                        launch=lambda shapes, attrs: Launch(grid=ceil_div(numel(shapes[0]), 256),
                                                           block=256, scalars=[("int", numel(shapes[0]))]))
    launch(kernel, "float32", stream, [x_ptr], [y_ptr], [x.shape], attrs)

TensorRT's ``enqueue`` and the GPU tests use this same :func:`launch`. Kernel arguments are, in
order: the input pointers, the output pointers, then ``Launch.scalars``. Sources may
``#include "netdsl_cuda.h"`` (:data:`PRELUDE`: f16 loads/stores through f32 without ``cuda_fp16.h``,
so kernels compile wherever NVRTC is, with no CUDA toolkit headers).

Compilation is NVRTC for the current device's architecture (a cubin; PTX for the newest
architecture NVRTC knows when the device is newer), cached in memory per device architecture and
source hash, and on disk when ``cache_dir`` or ``NETDSL_CUDA_CACHE`` names a folder.

Why not pycuda: TensorRT hands ``enqueue`` its own stream as a plain integer, and pycuda can neither
wrap a stream it did not create nor launch on one. cuda-python's driver API (``cuLaunchKernel``
takes any ``CUstream`` handle) can; cupy (``ExternalStream`` + ``RawModule``) is the fallback when
cuda-python is absent (``NETDSL_CUDA_LAUNCHER=cupy`` forces it).

Nothing here is imported by ``import netdsl``; cuda-python/cupy load on first compile or launch.
"""
from __future__ import annotations

import functools
import hashlib
import math
import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np

from ..dtypes import as_dtype
from ..errors import BackendUnavailable, NetdslError

Dims3 = Union[int, Sequence[int]]

PRELUDE_NAME = "netdsl_cuda.h"
PRELUDE = r"""// netdsl_cuda.h: helpers for netdsl plugin kernels (no CUDA toolkit headers needed).
#pragma once
struct __align__(2) nd_half { unsigned short bits; };
__device__ __forceinline__ float nd_load(const float* p) { return *p; }
__device__ __forceinline__ float nd_load(const nd_half* p) {
    float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(p->bits)); return f; }
__device__ __forceinline__ void nd_store(float* p, float v) { *p = v; }
__device__ __forceinline__ void nd_store(nd_half* p, float v) {
    unsigned short h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v)); p->bits = h; }
__device__ __forceinline__ long long nd_global_index() {
    return (long long)blockIdx.x * blockDim.x + threadIdx.x; }
"""

_CTYPES = {"int": np.int32, "int32_t": np.int32, "unsigned int": np.uint32, "uint32_t": np.uint32,
           "long long": np.int64, "int64_t": np.int64, "unsigned long long": np.uint64, "uint64_t": np.uint64,
           "size_t": np.uint64, "float": np.float32, "double": np.float64, "void*": np.uint64}


class KernelError(NetdslError, RuntimeError):
    """A plugin kernel failed to compile, load or launch (the message names plugin and kernel)."""


@dataclass(frozen=True)
class Launch:
    """Launch geometry and scalar arguments; ``scalars`` are ``(ctype, value)`` pairs, e.g. ``("int", n)``."""

    grid: Dims3
    block: Dims3
    shared_mem: int = 0
    scalars: Sequence[tuple] = ()

    def dims(self) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        return _dim3(self.grid, "grid"), _dim3(self.block, "block")


def _dim3(v: Dims3, what: str) -> tuple[int, int, int]:
    t = (int(v),) if isinstance(v, (int, np.integer)) else tuple(int(x) for x in v)
    if not 1 <= len(t) <= 3 or any(x < 0 for x in t):
        raise ValueError(f"{what} must be 1 to 3 non-negative ints, got {v!r}")
    return t + (1,) * (3 - len(t))  # type: ignore[return-value]


def ceil_div(a: int, b: int) -> int:
    return -(-int(a) // int(b))


def numel(shape: Sequence[int]) -> int:
    return int(math.prod(int(d) for d in shape))


@dataclass
class CudaKernel:
    """A plugin's CUDA source, its entry function per dtype, and its launch geometry function."""

    source: str
    entries: Mapping[str, str]
    launch: Callable[[Sequence[tuple], dict], Launch]
    name: str = "kernel.cu"          # file name shown in compiler messages
    plugin: str = ""                 # plugin name shown in errors
    options: Sequence[str] = ("--std=c++17",)
    cache_dir: Optional[str] = None
    include_dirs: Sequence[str] = ()   # for #include "..." (their headers are part of the cache key)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _digests: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.entries = {as_dtype(k).value: v for k, v in dict(self.entries).items()}

    @classmethod
    def from_file(cls, path: str, entries: Mapping[str, str], launch: Callable[..., Launch], **kw: Any) -> "CudaKernel":
        with open(path, encoding="utf-8") as f:
            source = f.read()
        kw.setdefault("name", os.path.basename(path))
        kw.setdefault("include_dirs", (os.path.dirname(os.path.abspath(path)),))
        return cls(source, entries, launch, **kw)

    @property
    def label(self) -> str:
        return f"plugin '{self.plugin}' kernel {self.name}" if self.plugin else f"kernel {self.name}"

    def entry(self, dtype: Any) -> str:
        d = as_dtype(dtype).value
        if d not in self.entries:
            raise KernelError(f"{self.label} has no entry for {d} (it has: {', '.join(self.entries) or 'none'})")
        return self.entries[d]

    def digest(self, arch: str) -> str:
        """Cache key: source, prelude, headers of ``include_dirs``, options, entries and target
        (computed once per target: a kernel's files are read when it is first compiled)."""
        hit = self._digests.get(arch)
        if hit is None:
            hit = self._digests[arch] = self._hash(arch)
        return hit

    def _hash(self, arch: str) -> str:
        h = hashlib.sha256()
        for part in (self.source, PRELUDE, arch, repr(tuple(self.options)), repr(sorted(self.entries.items()))):
            h.update(part.encode() + b"\0")
        for d in self.include_dirs:
            for f in sorted(os.listdir(d)) if os.path.isdir(d) else ():
                if f.endswith((".h", ".cuh", ".hpp")):
                    with open(os.path.join(d, f), "rb") as fh:
                        h.update(f.encode() + b"\0" + fh.read() + b"\0")
        return h.hexdigest()

    def compile_options(self) -> list[str]:
        return [*self.options, *(f"--include-path={d}" for d in self.include_dirs)]


@dataclass(frozen=True)
class Compiled:
    """NVRTC output: a cubin (``kind='cubin'``) or PTX, and each entry's lowered (mangled) name."""

    image: bytes
    kind: str
    arch: str
    lowered: Mapping[str, str]   # entry expression -> lowered name


# ------------------------------------------------------------------------------------------------
# NVRTC
# ------------------------------------------------------------------------------------------------

def _bindings() -> tuple[Any, Any]:
    try:
        from cuda.bindings import driver, nvrtc
    except ImportError:
        raise BackendUnavailable("cuda-python is not installed (pip install cuda-python nvidia-cuda-nvrtc, "
                                 "or netdsl[cuda] on a GPU machine)") from None
    return driver, nvrtc


def _nvrtc_call(nvrtc: Any, result: tuple, what: str, label: str) -> tuple:
    err = result[0]
    if int(err) != 0:
        _, msg = nvrtc.nvrtcGetErrorString(err)
        raise KernelError(f"{label}: NVRTC {what} failed: {msg.decode(errors='replace')}")
    return result[1:]


@functools.lru_cache(maxsize=None)
def nvrtc_version() -> tuple[int, int]:
    _, nvrtc = _bindings()
    try:
        err, major, minor = nvrtc.nvrtcVersion()
    except RuntimeError as e:  # libnvrtc not found
        raise BackendUnavailable(f"NVRTC cannot be loaded ({e}); pip install nvidia-cuda-nvrtc") from None
    return int(major), int(minor)


def supported_archs() -> list[int]:
    """Compute capabilities (e.g. 90 for sm_90) the installed NVRTC compiles for."""
    return list(_supported_archs())


@functools.lru_cache(maxsize=None)
def _supported_archs() -> tuple[int, ...]:
    _, nvrtc = _bindings()
    nvrtc_version()
    return tuple(int(a) for a in _nvrtc_call(nvrtc, nvrtc.nvrtcGetSupportedArchs(), "query", "NVRTC")[0])


def compile_kernel(kernel: CudaKernel, arch: int) -> Compiled:
    """Compile every entry of ``kernel`` for compute capability ``arch`` (e.g. 90); cached."""
    archs = supported_archs()
    usable = [a for a in archs if a <= arch]
    if not usable:
        raise KernelError(f"{kernel.label}: NVRTC {nvrtc_version()} cannot compile for sm_{arch} "
                          f"(it supports {', '.join(f'sm_{a}' for a in archs)})")
    target = f"sm_{arch}" if arch in archs else f"compute_{max(usable)}"   # PTX the driver JITs
    key = kernel.digest(target + repr(nvrtc_version()))
    with kernel._lock:
        hit = _COMPILED.get(key)
        if hit is None:
            hit = _read_disk(kernel, key, target) or _nvrtc_compile(kernel, target)
            _write_disk(kernel, key, hit)
            _COMPILED[key] = hit
    return hit


_COMPILED: dict[str, Compiled] = {}


def _nvrtc_compile(kernel: CudaKernel, target: str) -> Compiled:
    _, nvrtc = _bindings()
    label = kernel.label
    (prog,) = _nvrtc_call(nvrtc, nvrtc.nvrtcCreateProgram(kernel.source.encode(), kernel.name.encode(), 1,
                                                          [PRELUDE.encode()], [PRELUDE_NAME.encode()]),
                          "create", label)
    try:
        names = list(dict.fromkeys(kernel.entries.values()))
        for n in names:
            _nvrtc_call(nvrtc, nvrtc.nvrtcAddNameExpression(prog, n.encode()), f"name expression {n!r}", label)
        opts = [f"--gpu-architecture={target}", *kernel.compile_options()]
        (err,) = nvrtc.nvrtcCompileProgram(prog, len(opts), [o.encode() for o in opts])
        if int(err) != 0:
            (size,) = _nvrtc_call(nvrtc, nvrtc.nvrtcGetProgramLogSize(prog), "log", label)
            log = b" " * size
            nvrtc.nvrtcGetProgramLog(prog, log)
            raise KernelError(f"{label} does not compile for {target}:\n"
                              f"{log.decode(errors='replace').rstrip(chr(0)).strip()}")
        lowered = {}
        for n in names:
            (low,) = _nvrtc_call(nvrtc, nvrtc.nvrtcGetLoweredName(prog, n.encode()), f"entry {n!r}", label)
            lowered[n] = low.decode()
        if target.startswith("sm_"):
            (size,) = _nvrtc_call(nvrtc, nvrtc.nvrtcGetCUBINSize(prog), "cubin size", label)
            image = b" " * size
            _nvrtc_call(nvrtc, nvrtc.nvrtcGetCUBIN(prog, image), "cubin", label)
            kind = "cubin"
        else:
            (size,) = _nvrtc_call(nvrtc, nvrtc.nvrtcGetPTXSize(prog), "ptx size", label)
            image = b" " * size
            _nvrtc_call(nvrtc, nvrtc.nvrtcGetPTX(prog, image), "ptx", label)
            kind = "ptx"
    finally:
        nvrtc.nvrtcDestroyProgram(prog)
    return Compiled(image=bytes(image), kind=kind, arch=target, lowered=lowered)


def _cache_dir(kernel: CudaKernel) -> Optional[str]:
    return kernel.cache_dir or os.environ.get("NETDSL_CUDA_CACHE") or None


_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _disk_path(kernel: CudaKernel, key: str, target: str) -> Optional[str]:
    d = _cache_dir(kernel)
    if not d:
        return None
    stem = _SAFE.sub("_", f"{kernel.plugin or 'kernel'}-{os.path.splitext(kernel.name)[0]}")
    return os.path.join(d, f"{stem}-{target}-{key[:24]}")


def _read_disk(kernel: CudaKernel, key: str, target: str) -> Optional[Compiled]:
    """A cached image and its lowered names (plain text: ``name<TAB>lowered`` lines; nothing is executed)."""
    p = _disk_path(kernel, key, target)
    if not p or not (os.path.isfile(p + ".img") and os.path.isfile(p + ".names")):
        return None
    with open(p + ".img", "rb") as f:
        image = f.read()
    with open(p + ".names", encoding="utf-8") as f:
        pairs = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    lowered = {a: b for a, b in pairs}
    if set(lowered) != set(kernel.entries.values()):
        return None
    return Compiled(image=image, kind="cubin" if target.startswith("sm_") else "ptx", arch=target, lowered=lowered)


def _write_disk(kernel: CudaKernel, key: str, c: Compiled) -> None:
    p = _disk_path(kernel, key, c.arch)
    if not p or os.path.isfile(p + ".names"):
        return
    os.makedirs(os.path.dirname(p), exist_ok=True)
    for suffix, data in ((".img", c.image), (".names", "".join(f"{a}\t{b}\n" for a, b in c.lowered.items()).encode())):
        tmp = f"{p}{suffix}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, p + suffix)


# ------------------------------------------------------------------------------------------------
# Launch
# ------------------------------------------------------------------------------------------------

def launch(kernel: CudaKernel, dtype: Any, stream: int, input_ptrs: Sequence[int], output_ptrs: Sequence[int],
           input_shapes: Sequence[Sequence[int]], attrs: Mapping[str, Any], *, launcher: Optional[str] = None) -> None:
    """Launch ``kernel``'s entry for ``dtype`` on ``stream`` (a raw ``cudaStream_t``/``CUstream`` int).

    Arguments: ``input_ptrs``, then ``output_ptrs`` (device addresses as ints), then the scalars of
    ``kernel.launch(input_shapes, attrs)``. Asynchronous on ``stream``; nothing is synchronized.
    ``launcher``: ``"cuda-python"`` or ``"cupy"`` (default: ``NETDSL_CUDA_LAUNCHER``, else whichever is
    installed, cuda-python first).
    """
    shapes = [tuple(int(d) for d in s) for s in input_shapes]
    geometry = kernel.launch(shapes, dict(attrs))
    grid, block = geometry.dims()
    if 0 in grid or 0 in block:
        return   # empty tensors: nothing to do
    args = [("void*", int(p or 0)) for p in (*input_ptrs, *output_ptrs)] + list(geometry.scalars)
    values = [_kernel_arg(kernel, ctype, value) for ctype, value in args]
    entry = kernel.entry(dtype)
    which = launcher or os.environ.get("NETDSL_CUDA_LAUNCHER") or _default_launcher()
    if which == "cuda-python":
        _launch_driver(kernel, entry, int(stream or 0), grid, block, int(geometry.shared_mem), values)
    elif which == "cupy":
        _launch_cupy(kernel, entry, int(stream or 0), grid, block, int(geometry.shared_mem), values)
    else:
        raise KernelError(f"{kernel.label}: unknown launcher {which!r} (cuda-python or cupy)")


_ARRAY = re.compile(r"^(.+?)\s*\[(\d+)\]$")


def _kernel_arg(kernel: CudaKernel, ctype: str, value: Any) -> np.ndarray:
    """One kernel argument as a 0-d array holding its bytes: a scalar, or for ``"float[K]"`` (etc.)
    a struct ``{ float v[K]; }`` passed by value (shorter values are zero-padded)."""
    m = _ARRAY.match(ctype)
    base = m.group(1) if m else ctype
    if base not in _CTYPES:
        raise KernelError(f"{kernel.label}: argument type {ctype!r} is not one of {', '.join(_CTYPES)} "
                          "(or an array of one, e.g. 'float[16]')")
    if not m:
        return np.array(value, dtype=_CTYPES[base])
    size = int(m.group(2))
    items = np.asarray(value, dtype=_CTYPES[base]).ravel()
    if items.size > size:
        raise KernelError(f"{kernel.label}: {items.size} values do not fit argument {ctype!r}")
    arg = np.zeros((), dtype=np.dtype([("v", _CTYPES[base], (size,))]))
    arg["v"][:items.size] = items
    return arg


@functools.lru_cache(maxsize=None)
def _default_launcher() -> str:
    import importlib.util
    if importlib.util.find_spec("cuda") is not None and importlib.util.find_spec("cuda.bindings") is not None:
        return "cuda-python"
    if importlib.util.find_spec("cupy") is not None:
        return "cupy"
    raise BackendUnavailable("launching a plugin's CUDA kernel needs cuda-python (pip install cuda-python "
                             "nvidia-cuda-nvrtc) "
                             "or cupy")


def _drv(driver: Any, result: Any, what: str, label: str) -> tuple:
    if not isinstance(result, tuple):
        result = (result,)
    err = result[0]
    if int(err) != 0:
        _, name = driver.cuGetErrorName(err)
        _, text = driver.cuGetErrorString(err)
        raise KernelError(f"{label}: {what} failed: {_s(name)} ({_s(text)})")
    return result[1:]


def _s(b: Any) -> str:
    return b.decode(errors="replace") if isinstance(b, bytes) else str(b)


_MODULES: dict[tuple[int, str], tuple[Any, dict]] = {}
_MODULES_LOCK = threading.Lock()
_INIT = []


def _launch_driver(kernel: CudaKernel, entry: str, stream: int, grid: tuple, block: tuple, shared: int,
                   values: list) -> None:
    driver, _ = _bindings()
    label = kernel.label
    _init(driver, label)
    pushed = _enter_context(driver, stream, label)
    try:
        (ctx,) = _drv(driver, driver.cuCtxGetCurrent(), "cuCtxGetCurrent", label)
        hit = _FUNCTIONS.get((int(ctx), id(kernel), entry))
        fn = hit[1] if hit is not None and hit[0] is kernel else _load_function(driver, kernel, entry, ctx)
        params = np.array([v.ctypes.data for v in values], dtype=np.uint64)
        _drv(driver, driver.cuLaunchKernel(fn, *grid, *block, shared, driver.CUstream(stream),
                                           params.ctypes.data, 0),
             f"cuLaunchKernel({entry!r}, grid={grid}, block={block})", label)
    finally:
        if pushed:
            driver.cuCtxPopCurrent()


_FUNCTIONS: dict[tuple[int, int, str], tuple[CudaKernel, Any]] = {}   # (context, kernel, entry): the fast path


def _load_function(driver: Any, kernel: CudaKernel, entry: str, ctx: Any) -> Any:
    """Compile (cached) and load ``kernel`` into the current context; its CUfunction for ``entry``."""
    label = kernel.label
    (dev,) = _drv(driver, driver.cuCtxGetDevice(), "cuCtxGetDevice", label)
    compiled = compile_kernel(kernel, _arch(driver, dev, label))
    key = (int(ctx), kernel.digest(compiled.arch))
    with _MODULES_LOCK:
        mod = _MODULES.get(key)
        if mod is None:
            image = compiled.image + (b"\0" if compiled.kind == "ptx" else b"")
            (module,) = _drv(driver, driver.cuModuleLoadData(image), f"cuModuleLoadData ({compiled.arch})", label)
            mod = _MODULES[key] = (module, {})
        module, functions = mod
        fn = functions.get(entry)
        if fn is None:
            (fn,) = _drv(driver, driver.cuModuleGetFunction(module, compiled.lowered[entry].encode()),
                         f"cuModuleGetFunction({entry!r})", label)
            functions[entry] = fn
        _FUNCTIONS[(int(ctx), id(kernel), entry)] = (kernel, fn)   # holding the kernel keeps its id unique
    return fn


def _init(driver: Any, label: str) -> None:
    if not _INIT:
        _drv(driver, driver.cuInit(0), "cuInit (is there an NVIDIA GPU and driver?)", label)
        _INIT.append(True)


def _enter_context(driver: Any, stream: int, label: str) -> bool:
    """Make the stream's context current (the primary context of device 0 for the default stream
    when none is current). Returns whether a context was pushed (and must be popped)."""
    (cur,) = _drv(driver, driver.cuCtxGetCurrent(), "cuCtxGetCurrent", label)
    if stream:
        (sctx,) = _drv(driver, driver.cuStreamGetCtx(driver.CUstream(stream)), "cuStreamGetCtx", label)
        if int(sctx) and int(sctx) != int(cur or 0):
            _drv(driver, driver.cuCtxPushCurrent(sctx), "cuCtxPushCurrent", label)
            return True
        return False
    if cur is None or int(cur) == 0:
        (dev,) = _drv(driver, driver.cuDeviceGet(0), "cuDeviceGet", label)
        (pctx,) = _drv(driver, driver.cuDevicePrimaryCtxRetain(dev), "cuDevicePrimaryCtxRetain", label)
        _drv(driver, driver.cuCtxPushCurrent(pctx), "cuCtxPushCurrent", label)
        return True
    return False


def _arch(driver: Any, dev: Any, label: str) -> int:
    """Compute capability of ``dev`` as e.g. 90."""
    a = driver.CUdevice_attribute
    (major,) = _drv(driver, driver.cuDeviceGetAttribute(a.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev),
                    "cuDeviceGetAttribute", label)
    (minor,) = _drv(driver, driver.cuDeviceGetAttribute(a.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev),
                    "cuDeviceGetAttribute", label)
    return int(major) * 10 + int(minor)


_CUPY_MODULES: dict[tuple[int, str], Any] = {}


def _launch_cupy(kernel: CudaKernel, entry: str, stream: int, grid: tuple, block: tuple, shared: int,
                 values: list) -> None:
    try:
        import cupy
    except ImportError:
        raise BackendUnavailable("cupy is not installed (the fallback launcher); pip install "
                                 "cupy, or cuda-python nvidia-cuda-nvrtc for the main launcher") from None
    label = kernel.label
    dev = cupy.cuda.Device().id
    key = (dev, kernel.digest("cupy"))
    with _MODULES_LOCK:
        mod = _CUPY_MODULES.get(key)
        if mod is None:
            source = (PRELUDE.replace("#pragma once", "") + f'#line 1 "{kernel.name}"\n'
                      + kernel.source.replace(f'#include "{PRELUDE_NAME}"', ""))
            try:
                mod = cupy.RawModule(code=source, options=tuple(kernel.compile_options()),
                                     name_expressions=list(dict.fromkeys(kernel.entries.values())))
                mod.compile()
            except cupy.cuda.compiler.CompileException as e:
                raise KernelError(f"{label} does not compile (cupy/NVRTC):\n{e}") from None
            _CUPY_MODULES[key] = mod
    fn = mod.get_function(entry)
    try:
        with _cupy_stream(cupy, stream):
            fn(grid, block, tuple(v[()] for v in values), shared_mem=shared)
    except cupy.cuda.driver.CUDADriverError as e:
        raise KernelError(f"{label}: launch of {entry!r} failed: {e}") from None


class _StreamHandle:
    """A raw stream handle in the CUDA stream protocol (what cupy's ``Stream.from_external`` takes)."""

    def __init__(self, handle: int) -> None:
        self.handle = handle

    def __cuda_stream__(self) -> tuple[int, int]:
        return (0, self.handle)


def _cupy_stream(cupy: Any, stream: int) -> Any:
    """cupy's view of a foreign stream: ``Stream.from_external`` (cupy 14+), else ``ExternalStream``."""
    if hasattr(cupy.cuda.Stream, "from_external"):
        try:
            return cupy.cuda.Stream.from_external(_StreamHandle(stream))
        except (TypeError, ValueError, AttributeError):
            pass
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return cupy.cuda.ExternalStream(stream)


def run_arrays(kernel: CudaKernel, dtype: Any, inputs: Sequence[np.ndarray], outputs: Sequence[tuple],
               attrs: Mapping[str, Any], stream: int, *, launcher: Optional[str] = None) -> list[np.ndarray]:
    """Copy ``inputs`` to the device, :func:`launch` on ``stream`` (the caller's), copy ``outputs`` back.

    ``outputs``: ``(shape, numpy dtype)`` per output. For tests and ``plugin test`` runs on a GPU.
    Output buffers start filled with 0xFF bytes, so a kernel that leaves elements unwritten is caught.
    """
    driver, _ = _bindings()
    label = kernel.label
    _init(driver, label)
    pushed = _enter_context(driver, int(stream or 0), label)
    allocated = []

    def alloc(nbytes: int) -> int:
        (ptr,) = _drv(driver, driver.cuMemAlloc(max(nbytes, 1)), "cuMemAlloc", label)
        allocated.append(ptr)
        return int(ptr)

    try:
        hs = driver.CUstream(int(stream or 0))
        host_in = [np.ascontiguousarray(a) for a in inputs]
        in_ptrs = []
        for a in host_in:
            ptr = alloc(a.nbytes)
            _drv(driver, driver.cuMemcpyHtoDAsync(ptr, a.ctypes.data, a.nbytes, hs), "cuMemcpyHtoDAsync", label)
            in_ptrs.append(ptr)
        host_out = [np.empty(tuple(shape), np.dtype(dt)) for shape, dt in outputs]
        out_ptrs = []
        for a in host_out:
            ptr = alloc(a.nbytes)
            _drv(driver, driver.cuMemsetD8Async(ptr, 0xFF, a.nbytes, hs), "cuMemsetD8Async", label)
            out_ptrs.append(ptr)
        launch(kernel, dtype, int(stream or 0), in_ptrs, out_ptrs, [a.shape for a in host_in], attrs,
               launcher=launcher)
        for a, ptr in zip(host_out, out_ptrs):
            _drv(driver, driver.cuMemcpyDtoHAsync(a.ctypes.data, ptr, a.nbytes, hs), "cuMemcpyDtoHAsync", label)
        _drv(driver, driver.cuStreamSynchronize(hs), "cuStreamSynchronize", label)
        return host_out
    finally:
        for ptr in allocated:
            driver.cuMemFree(ptr)
        if pushed:
            driver.cuCtxPopCurrent()


__all__ = ["run_arrays", "CudaKernel", "Launch", "KernelError", "Compiled", "launch", "compile_kernel", "supported_archs",
           "nvrtc_version", "ceil_div", "numel", "PRELUDE", "PRELUDE_NAME"]
