"""``netdsl plugin new NAME``: a plugin folder that works as written and shows where everything goes.

The scaffold implements a small op, ``y = alpha * x`` (one float attribute), in every form a plugin
has: declaration, reference, CUDA kernel, C++ CPU code, ONNX decomposition, tests, example. Its own
test passes out of the box; an author then replaces the op with theirs (reference, cpu.cpp,
kernel.cu, shape inference), keeping the tests passing.
"""
from __future__ import annotations

import keyword
import re
from pathlib import Path

from .declaration import PluginError

PLUGIN_PY = '''"""{name}: y = alpha * x (the scaffold's example op: replace it with yours).

Files of this plugin (see README.md, "Plugins"):
  plugin.py     this declaration: attributes, dtypes, shape inference, NumPy reference, implementations
  kernel.cu     CUDA kernel(s) that TensorRT's generated IPluginV3 launches (one entry per dtype)
  cpu.cpp       C++ CPU code of the compiled OpenVINO route (netdsl_compute)
  test_{name}.py  conformance on every backend (netdsl plugin test {name})
  example.py    a network using the plugin (netdsl check plugins/{name}/example.py ...)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from netdsl.errors import ShapeError
from netdsl.ops import Attr
from netdsl.plugins import Cpu, declare
from netdsl.plugins.cuda import CudaKernel, Launch, ceil_div, numel

HERE = Path(__file__).parent


def infer(x, *, alpha):
    """Output spec (dtype, shape) from the input specs. Dims may be symbolic (netdsl.shapes.Sym):
    compute output dims with + - * / // on them (e.g. (x.shape[2] - 1) // 2 + 1), never int() them."""
    if not x.dtype.is_float:
        raise ShapeError(f"{name} needs a floating-point input, got {{x}}")
    return x


def reference(x, *, alpha):
    """The NumPy reference: every backend is checked against it in float64."""
    return alpha * x


def launch(shapes, attrs):
    """CUDA launch geometry and scalar arguments (after the input and output pointers)."""
    n = numel(shapes[0])
    return Launch(grid=ceil_div(n, 256), block=256, scalars=[("float", attrs["alpha"]), ("long long", n)])


def to_onnx(ctx, node):
    """Optional: the op in standard ONNX nodes, so that ONNX Runtime (the onnx backend) runs networks
    using it. Keep it in step with the reference, or drop onnx=to_onnx below (the export is then one
    custom-domain node, which ONNX Runtime cannot run)."""
    x = ctx.inp(node, 0)
    ctx.add("Mul", [x, ctx.scalar(node.attrs["alpha"], node.inputs[0], "alpha")], [ctx.out(node)])


{name} = declare(
    "{name}",
    version="1",
    namespace="netdsl",
    attrs={{"alpha": Attr("float", 1.0)}},
    dtypes=("float32", "float16"),
    infer=infer,
    reference=reference,
    cuda=CudaKernel.from_file(str(HERE / "kernel.cu"),
                              entries={{"float32": "{name}<float>", "float16": "{name}<nd_half>"}}, launch=launch),
    cpu=Cpu(source=HERE / "cpu.cpp"),
    onnx=to_onnx,
    doc="y = alpha * x",
)
'''

KERNEL_CU = '''// {name}: y = alpha * x, one thread per element.
// Arguments: input pointers, output pointers, then launch()'s scalars (plugin.py).
// nd_load/nd_store (netdsl_cuda.h) read and write float and half through float.
#include "netdsl_cuda.h"

template <typename T>
__global__ void {name}(const T* x, T* y, float alpha, long long n) {{
    long long i = nd_global_index();
    if (i < n) nd_store(y + i, alpha * nd_load(x + i));
}}
'''

CPU_CPP = '''// {name} on the CPU: the compiled OpenVINO route (see netdsl/plugins/include/netdsl_plugin.hpp).
// Outputs arrive allocated with the shapes and types of the declared shape inference.
#include "netdsl_plugin.hpp"

void netdsl_compute(const netdsl::Inputs& in, netdsl::Outputs& out, const netdsl::Attrs& attrs) {{
    const double alpha = attrs.f("alpha");
    netdsl::dispatch_float(in[0].dtype, [&](auto zero) {{
        using T = decltype(zero);
        const T* x = in[0].ptr<T>();
        T* y = out[0].ptr<T>();
        for (int64_t i = 0; i < in[0].numel(); ++i) y[i] = static_cast<T>(alpha * static_cast<double>(x[i]));
    }});
}}
'''

TEST_PY = '''"""{name}: conformance on every backend (``netdsl plugin test {name}`` runs the same checks)."""
from __future__ import annotations

from pathlib import Path

import pytest

from netdsl.plugins import conformance, load

HERE = Path(__file__).parent
PLUGIN = load(HERE)

# Shapes may name symbolic dims ("N"); sizes gives their values in the test data.
CASES = [
    conformance.Case("vector", [(7,)], attrs={{"alpha": 2.5}}),
    conformance.Case("batch", [("N", 3, 5, 5)], attrs={{"alpha": -0.75}}, sizes={{"N": 2}}),
]


@pytest.mark.parametrize("check", conformance.checks(PLUGIN, CASES), ids=str)
def test_conformance(check):
    check.run_test()


def test_example_passes_netdsl_check(capsys):
    from netdsl.cli import main
    backends = conformance.example_backends(PLUGIN)
    assert main(["check", str(HERE / "example.py"), "--backends", ",".join(backends)]) == 0, capsys.readouterr().out
'''

EXAMPLE_PY = '''"""A small network using {name} (seeded random weights).

    netdsl summary plugins/{name}/example.py
    netdsl check plugins/{name}/example.py --backends reference,openvino,onnx,tensorrt
"""
from __future__ import annotations

from pathlib import Path

import netdsl as nd
from netdsl import nn
from netdsl.plugins import load

{name} = load(Path(__file__).parent)


def network(batch: int | str = "N", seed: int = 0) -> nd.Network:
    net = nd.Network("{name}_example")
    x = net.input("image", (batch, 3, 16, 16))
    y = nn.Conv2d(3, 8, 3, padding=1)(x)
    y = {name}(y, alpha=0.5, name="{name}1")
    net.output(nd.relu(y), "features")
    return net.init_random(seed)
'''

FILES = {"plugin.py": PLUGIN_PY, "kernel.cu": KERNEL_CU, "cpu.cpp": CPU_CPP, "test_{name}.py": TEST_PY,
         "example.py": EXAMPLE_PY}


def new(name: str, root: Path, force: bool = False) -> list[Path]:
    """Write ``root/name/`` (plugin.py, kernel.cu, cpu.cpp, test_NAME.py, example.py); returns the files."""
    from ..ops import all_ops
    if not re.match(r"^[a-z_][a-z0-9_]*$", name) or keyword.iskeyword(name):
        raise PluginError(f"plugin name {name!r}: use lower-case letters, digits and _ (a Python identifier)")
    if name in all_ops() and all_ops()[name].plugin is None:
        raise PluginError(f"plugin name {name!r} is a catalogue op already; pick another name")
    folder = root / name
    if folder.exists() and any(folder.iterdir()) and not force:
        raise PluginError(f"{folder} exists and is not empty (pass --force to overwrite the scaffold's files)")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fname, template in FILES.items():
        path = folder / fname.format(name=name)
        path.write_text(template.format(name=name))
        written.append(path)
    return written


__all__ = ["new", "FILES"]
