"""Is there a GPU that can run TensorRT engines here, and if not, what exactly is missing?

The CUDA driver is asked directly (``libcuda`` through ctypes: ``cuInit``, ``cuDeviceGetCount``, name and
compute capability), so the answer does not depend on pycuda being installed. :func:`status` checks, in
order: a CUDA driver and GPU, a compute capability the installed TensorRT supports, then pycuda (which
netdsl's runtime uses for buffers and streams).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Any, Optional

from . import _trt

RTX_UNSUPPORTED_CC = {(9, 0)}
RTX_MIN_CC = (7, 5)
_CC_MAJOR, _CC_MINOR = 75, 76  # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR


def _libcuda() -> Any:
    names = ["nvcuda.dll"] if sys.platform == "win32" else ["libcuda.so.1", "libcuda.so", ctypes.util.find_library("cuda")]
    for name in names:
        if not name:
            continue
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def devices() -> tuple[list[tuple[str, tuple[int, int]]], str]:
    """``([(name, (major, minor)), ...], "")`` from the CUDA driver, or ``([], why there is none)``."""
    lib = _libcuda()
    if lib is None:
        return [], "no GPU: the NVIDIA driver library (libcuda) is not installed"
    rc = lib.cuInit(0)
    if rc != 0:
        return [], f"no usable GPU: the CUDA driver failed to initialise (cuInit error {rc})"
    n = ctypes.c_int(0)
    if lib.cuDeviceGetCount(ctypes.byref(n)) != 0 or n.value == 0:
        return [], "no GPU: the CUDA driver sees no device"
    out = []
    for i in range(n.value):
        dev = ctypes.c_int(0)
        lib.cuDeviceGet(ctypes.byref(dev), i)
        buf = ctypes.create_string_buffer(256)
        lib.cuDeviceGetName(buf, 256, dev)
        major, minor = ctypes.c_int(0), ctypes.c_int(0)
        lib.cuDeviceGetAttribute(ctypes.byref(major), _CC_MAJOR, dev)
        lib.cuDeviceGetAttribute(ctypes.byref(minor), _CC_MINOR, dev)
        out.append((buf.value.decode(errors="replace"), (major.value, minor.value)))
    return out, ""


def supports(trt: Any, cc: tuple[int, int]) -> Optional[str]:
    """None if the installed TensorRT runs engines on compute capability ``cc``, else the reason."""
    if trt is not None and _trt.flavour_of(trt) == "tensorrt_rtx":
        if cc in RTX_UNSUPPORTED_CC or cc < RTX_MIN_CC:
            return f"TensorRT-RTX does not support compute capability {cc[0]}.{cc[1]}"
    return None


def pycuda_missing() -> Optional[str]:
    """None if pycuda imports and loads the driver, else what is wrong."""
    try:
        import pycuda.driver  # noqa: F401
    except ModuleNotFoundError:
        return ("pycuda is not installed (pip install pycuda, on a machine with the CUDA toolkit and driver; "
                "or pip install netdsl[cuda])")
    except ImportError as e:
        return f"pycuda cannot load the CUDA driver: {e}"
    return None


def status(trt: Any = None, device: int = 0) -> tuple[bool, str]:
    """(True, GPU description) when engines can run on ``device``, else (False, what is missing)."""
    devs, why = devices()
    if not devs:
        return False, why
    if device >= len(devs):
        return False, f"no GPU {device}: the CUDA driver sees {len(devs)} device(s)"
    name, cc = devs[device]
    bad = supports(trt, cc)
    if bad:
        return False, f"{bad} ({name})"
    missing = pycuda_missing()
    if missing:
        return False, f"{missing}; the GPU {name} (compute capability {cc[0]}.{cc[1]}) is otherwise usable"
    return True, f"{name} (compute capability {cc[0]}.{cc[1]})"
