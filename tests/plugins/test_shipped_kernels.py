"""Every shipped plugin's CUDA kernel compiles with NVRTC (no GPU needed) for the oldest architecture
NVRTC knows, H100/H200 and the newest, with an entry per dtype."""
from __future__ import annotations

import os

import pytest

from netdsl.plugins import load
from netdsl.plugins.cuda import compile_kernel, supported_archs
from tests.plugins.helpers import needs_nvrtc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED = sorted(d for d in os.listdir(os.path.join(ROOT, "plugins"))
                 if os.path.isfile(os.path.join(ROOT, "plugins", d, "kernel.cu")))


def test_the_three_detector_plugins_are_shipped():
    assert {"nms", "reorg", "yolo_decode"} <= set(SHIPPED)


@needs_nvrtc
@pytest.mark.parametrize("name", SHIPPED)
def test_kernel_compiles_for_every_supported_arch(name):
    kernel = load(os.path.join(ROOT, "plugins", name)).plugin.cuda
    assert kernel is not None, f"plugins/{name} declares no CUDA kernel"
    assert {"float32", "float16"} <= set(kernel.entries), kernel.entries
    archs = [a for a in (75, 90, 120) if a in supported_archs()]   # oldest, H100/H200, newest
    for arch in archs:
        c = compile_kernel(kernel, arch)
        assert c.kind == "cubin" and set(c.lowered) == set(kernel.entries.values())
