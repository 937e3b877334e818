"""Helpers of the shipped plugins' own tests: NVRTC availability, a CUDA stream that torch (or cupy)
created, never netdsl, as TensorRT's enqueue gets, and the launchers to try."""
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
    from netdsl.plugins.conformance import Skip, foreign_stream
    reason = _nvrtc_reason()
    if reason:
        pytest.skip(f"no NVIDIA GPU test: {reason}")
    try:
        handle, owner = foreign_stream()
    except Skip as e:
        pytest.skip(str(e))
    _STREAMS.append(owner)
    return handle


def launchers() -> list[Any]:
    """cuda-python always; cupy (the fallback) where installed."""
    out: list[Any] = ["cuda-python"]
    out.append(pytest.param("cupy", marks=pytest.mark.skipif(importlib.util.find_spec("cupy") is None,
                                                             reason="cupy not installed")))
    return out


def load_plugin(name: str) -> Any:
    """The module of the shipped ``plugins/<name>/plugin.py`` (declares the op on first import)."""
    import os
    from netdsl.plugins.loader import import_folder
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return import_folder(os.path.join(root, "plugins", name))


def check_example(name: str) -> None:
    """``netdsl check plugins/<name>/example.py`` on every backend installed here passes."""
    import os
    from netdsl.cli import main
    from netdsl.plugins.conformance import available_backends
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    backends = available_backends(("reference", "openvino", "onnx", "tensorrt"))
    assert main(["check", os.path.join(root, "plugins", name, "example.py"), "--backends", ",".join(backends)]) == 0
