"""Skips and streams for the plugin kernel tests: GPU tests launch on a stream that torch (or cupy)
created, never one netdsl made, as TensorRT's enqueue does."""
from __future__ import annotations

import importlib.util
from typing import Any

import pytest


def _nvrtc_reason() -> str:
    if importlib.util.find_spec("cuda") is None or importlib.util.find_spec("cuda.bindings") is None:
        return "cuda-python not installed (pip install cuda-python nvidia-cuda-nvrtc)"
    try:
        from netdsl.plugins.cuda import supported_archs
        supported_archs()
    except Exception as e:   # BackendUnavailable, missing libnvrtc
        return f"NVRTC not usable: {e}"
    return ""


needs_nvrtc = pytest.mark.skipif(bool(_nvrtc_reason()), reason=_nvrtc_reason() or "-")

_STREAMS: list = []


def gpu_stream() -> int:
    """A stream created by torch (cupy if torch has no CUDA), as an int; skips without an NVIDIA GPU."""
    reason = _nvrtc_reason()
    if reason:
        pytest.skip(f"no NVIDIA GPU test: {reason}")
    try:
        import torch
        if torch.cuda.is_available():
            s = torch.cuda.Stream()
            _STREAMS.append(s)
            return int(s.cuda_stream)
    except ImportError:
        pass
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() > 0:
            s = cupy.cuda.Stream(non_blocking=True)
            _STREAMS.append(s)
            return int(s.ptr)
    except Exception:
        pass
    pytest.skip("no NVIDIA GPU (neither torch nor cupy sees a CUDA device)")


def launchers() -> list[Any]:
    """cuda-python always; cupy (the fallback) where installed."""
    out: list[Any] = ["cuda-python"]
    out.append(pytest.param("cupy", marks=pytest.mark.skipif(importlib.util.find_spec("cupy") is None,
                                                             reason="cupy not installed")))
    return out


def load_plugin(name: str) -> Any:
    """The module ``plugins/<name>/plugin.py`` of this checkout (imported once, by netdsl's plugin loader)."""
    import os
    from netdsl.plugins.loader import import_folder
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return import_folder(os.path.join(root, "plugins", name))
