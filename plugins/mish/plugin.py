"""fused_mish: the Mish activation, ``y = x * tanh(softplus(x))``, as one plugin kernel.

The worked example of a netdsl plugin (``plugins/<name>/``, made by ``netdsl plugin new``):

- this file declares the op: attributes (none), supported dtypes, shape inference (it must accept
  symbolic dims), the NumPy reference that every implementation is checked against, and the
  implementations below;
- ``kernel.cu``: the CUDA kernel that the generated TensorRT IPluginV3 launches on TensorRT's stream
  (one entry per dtype; the launch geometry is ``launch()`` below);
- ``cpu.cpp``: the C++ CPU code of the compiled OpenVINO route (``netdsl_compute``, see
  ``netdsl/plugins/include/netdsl_plugin.hpp``); the Python route runs the reference;
- ``to_onnx``: a standard-ONNX decomposition, so ONNX Runtime runs the exported model too;
- ``test_mish.py`` and ``example.py``: its conformance tests and a network that uses it.

The catalogue has a ``mish`` op already (three layers on TensorRT: softplus, tanh, product); this
plugin computes it in one pass, as YOLOv4 deployments do.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from netdsl.errors import ShapeError
from netdsl.plugins import Cpu, declare
from netdsl.plugins.cuda import CudaKernel, Launch, ceil_div, numel

HERE = Path(__file__).parent


def infer(x):
    """Same shape and dtype as the input; works on symbolic dims (nothing is computed from them)."""
    if not x.dtype.is_float:
        raise ShapeError(f"fused_mish needs a floating-point input, got {x}")
    return x


def reference(x):
    """The float64-capable NumPy reference (softplus via logaddexp: no overflow)."""
    return x * np.tanh(np.logaddexp(0.0, x))


def launch(shapes, attrs):
    """One thread per element, 256 per block; the kernel's scalar argument is the element count."""
    n = numel(shapes[0])
    return Launch(grid=ceil_div(n, 256), block=256, scalars=[("long long", n)])


def to_onnx(ctx, node):
    """Standard ONNX: Mul(x, Tanh(Softplus(x))) (ONNX Runtime runs it; TensorRT gets the plugin)."""
    x = ctx.inp(node, 0)
    ctx.add("Mul", [x, ctx.add1("Tanh", [ctx.add1("Softplus", [x])])], [ctx.out(node)])


KERNEL = CudaKernel.from_file(str(HERE / "kernel.cu"), entries={"float32": "mish<float>", "float16": "mish<nd_half>"},
                              launch=launch, plugin="fused_mish")

fused_mish = declare(
    "fused_mish",
    version="1",
    namespace="netdsl",
    dtypes=("float32", "float16"),
    infer=infer,
    reference=reference,
    cuda=KERNEL,
    cpu=Cpu(source=HERE / "cpu.cpp"),
    onnx=to_onnx,
    doc="Mish activation x * tanh(softplus(x)) as one kernel (TensorRT plugin, OpenVINO extension)",
)
