"""Every shipped plugin's CUDA kernel compiles with NVRTC for the architectures TensorRT targets
(no GPU needed), with one entry per supported dtype."""
from __future__ import annotations

import os

import pytest

from netdsl.plugins.cuda import compile_kernel, supported_archs
from tests.plugins.helpers import load_plugin, needs_nvrtc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED = sorted(d for d in os.listdir(os.path.join(ROOT, "plugins"))
                 if os.path.isfile(os.path.join(ROOT, "plugins", d, "kernel.cu")))


def test_the_three_detector_plugins_are_shipped():
    assert {"nms", "reorg", "yolo_decode"} <= set(SHIPPED)


@needs_nvrtc
@pytest.mark.parametrize("name", SHIPPED)
def test_kernel_compiles_for_every_supported_arch(name):
    module = load_plugin(name)
    kernel = getattr(module, "KERNEL", None)
    if kernel is None:
        pytest.skip(f"plugins/{name}/plugin.py defines no KERNEL")
    assert {"float32", "float16"} <= set(kernel.entries), kernel.entries
    archs = [a for a in (75, 90, 120) if a in supported_archs()]   # oldest, H100/H200, newest
    for arch in archs:
        c = compile_kernel(kernel, arch)
        assert c.kind == "cubin" and set(c.lowered) == set(kernel.entries.values())
