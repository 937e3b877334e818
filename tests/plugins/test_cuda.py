"""The CUDA launch path (netdsl.plugins.cuda): NVRTC compilation on any machine with NVRTC, launches
on a stream the test did not create (torch's) on machines with an NVIDIA GPU."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from netdsl.plugins.cuda import CudaKernel, KernelError, Launch, ceil_div, compile_kernel, launch, numel, run_arrays
from tests.plugins.helpers import gpu_stream, launchers, needs_nvrtc

SAXPY = r"""
#include "netdsl_cuda.h"
template <typename T>
__global__ void saxpy(const T* x, const T* y, T* out, float a, long long n) {
    long long i = nd_global_index();
    if (i < n) nd_store(out + i, a * nd_load(x + i) + nd_load(y + i));
}
extern "C" __global__ void saxpy_plain(const float* x, const float* y, float* out, float a, long long n) {
    saxpy<float>(x, y, out, a, n);
}
"""


def _geometry(shapes, attrs):
    n = numel(shapes[0])
    return Launch(grid=ceil_div(n, 128), block=128, scalars=[("float", attrs["a"]), ("long long", n)])


def _kernel(**kw) -> CudaKernel:
    return CudaKernel(SAXPY, entries={"float32": "saxpy<float>", "float16": "saxpy<nd_half>"}, launch=_geometry,
                      name="saxpy.cu", plugin="saxpy", **kw)


def test_import_does_not_load_cuda_python():
    code = "import sys, netdsl.plugins.cuda; sys.exit(1 if 'cuda.bindings' in sys.modules or 'cupy' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_geometry_and_entries():
    k = _kernel()
    g = k.launch([(3, 1000)], {"a": 2.0})
    assert g.dims() == ((24, 1, 1), (128, 1, 1))
    assert Launch(grid=(2, 3), block=(32, 4, 2)).dims() == ((2, 3, 1), (32, 4, 2))
    assert k.entry("fp16") == "saxpy<nd_half>"
    with pytest.raises(KernelError, match="plugin 'saxpy' kernel saxpy.cu has no entry for int32"):
        k.entry("int32")
    with pytest.raises(ValueError, match="grid"):
        Launch(grid=(1, 2, 3, 4), block=1).dims()


@needs_nvrtc
@pytest.mark.parametrize("arch", [75, 80, 90])
def test_nvrtc_compiles_every_entry(arch):
    c = compile_kernel(_kernel(), arch)
    assert c.kind == "cubin" and c.arch == f"sm_{arch}" and c.image[:4] == b"\x7fELF"
    assert set(c.lowered) == {"saxpy<float>", "saxpy<nd_half>"}
    assert all(v.startswith("_Z") for v in c.lowered.values())       # mangled template instances
    assert compile_kernel(_kernel(), arch) is c                        # cached in memory


@needs_nvrtc
def test_newer_device_than_nvrtc_gets_ptx():
    c = compile_kernel(_kernel(), 999)
    assert c.kind == "ptx" and c.arch.startswith("compute_") and b".entry" in c.image


@needs_nvrtc
def test_compile_error_names_plugin_file_line_and_log():
    bad = CudaKernel("__global__ void k(float* x) { x[0] = undefined_thing; }\n", {"float32": "k"},
                     launch=_geometry, name="bad.cu", plugin="broken")
    with pytest.raises(KernelError, match=r"(?s)plugin 'broken' kernel bad.cu does not compile.*bad.cu\(1\).*undefined_thing"):
        compile_kernel(bad, 80)
    missing = CudaKernel("__global__ void k(float* x) {}\n", {"float32": "not_there"}, launch=_geometry,
                         name="m.cu", plugin="broken")
    with pytest.raises(KernelError, match="plugin 'broken' kernel m.cu"):
        compile_kernel(missing, 80)


@needs_nvrtc
def test_disk_cache_round_trip(tmp_path):
    a = compile_kernel(_kernel(cache_dir=str(tmp_path), options=("--std=c++17", "-DONE")), 86)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and files[0].startswith("saxpy-saxpy-sm_86-")
    from netdsl.plugins import cuda
    cuda._COMPILED.clear()
    b = compile_kernel(_kernel(cache_dir=str(tmp_path), options=("--std=c++17", "-DONE")), 86)
    assert b is not a and b.image == a.image and b.lowered == a.lowered


def test_unknown_scalar_type_is_named():
    k = CudaKernel(SAXPY, {"float32": "saxpy<float>"}, plugin="saxpy", name="saxpy.cu",
                   launch=lambda s, a: Launch(1, 1, scalars=[("float4", 1.0)]))
    with pytest.raises(KernelError, match="plugin 'saxpy' kernel saxpy.cu: argument type 'float4'"):
        launch(k, "float32", 0, [1], [2], [(4,)], {}, launcher="cuda-python")
    k.launch = lambda s, a: Launch(1, 1, scalars=[("float[2]", [1.0, 2.0, 3.0])])
    with pytest.raises(KernelError, match="3 values do not fit argument 'float\\[2\\]'"):
        launch(k, "float32", 0, [1], [2], [(4,)], {}, launcher="cuda-python")


@pytest.mark.parametrize("launcher", launchers())
@pytest.mark.parametrize("dtype,tol", [("float32", 1e-6), ("float16", 2e-3)])
def test_gpu_launch_on_foreign_stream(launcher, dtype, tol):
    stream = gpu_stream()
    rng = np.random.default_rng()
    x, y = (rng.standard_normal((7, 1001)).astype(dtype) for _ in range(2))
    (out,) = run_arrays(_kernel(), dtype, [x, y], [(x.shape, dtype)], {"a": 1.75}, stream, launcher=launcher)
    ref = 1.75 * x.astype(np.float64) + y.astype(np.float64)
    np.testing.assert_allclose(out.astype(np.float64), ref, rtol=tol, atol=tol)


STRUCT = r"""
struct Coeffs { float v[4]; };
extern "C" __global__ void poly(const float* x, float* y, Coeffs c, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = c.v[0] + x[i] * (c.v[1] + x[i] * (c.v[2] + x[i] * c.v[3]));
}
"""


@pytest.mark.parametrize("launcher", launchers())
def test_gpu_struct_argument_by_value(launcher):
    stream = gpu_stream()
    k = CudaKernel(STRUCT, {"float32": "poly"}, plugin="poly", name="poly.cu",
                   launch=lambda s, a: Launch(ceil_div(numel(s[0]), 64), 64,
                                              scalars=[("float[4]", a["c"]), ("int", numel(s[0]))]))
    x = np.random.default_rng().standard_normal(300).astype(np.float32)
    (y,) = run_arrays(k, "float32", [x], [(x.shape, np.float32)], {"c": [0.5, -1.0, 2.0]}, stream,
                      launcher=launcher)
    np.testing.assert_allclose(y, 0.5 - x + 2 * x * x, rtol=1e-5, atol=1e-5)   # c[3] zero-padded


def test_gpu_empty_input_launches_nothing():
    stream = gpu_stream()
    x = np.zeros((0, 5), np.float32)
    (out,) = run_arrays(_kernel(), "float32", [x, x], [(x.shape, np.float32)], {"a": 1.0}, stream)
    assert out.shape == (0, 5)
