"""Lazy import of TensorRT: ``tensorrt`` (10.x/11.x) or ``tensorrt_rtx`` (TensorRT for RTX).

Choose with the ``flavour`` argument or ``NETDSL_TRT=tensorrt|tensorrt_rtx``; by default the first
one that imports wins (``tensorrt`` first). TensorRT honours one logger per process: :func:`logger`
returns that one, which forwards TensorRT's messages to Python logging (``netdsl.tensorrt``).
"""
from __future__ import annotations

import importlib
import logging
import os
import threading
from typing import Any, Optional

from ...errors import BackendUnavailable

FLAVOURS = ("tensorrt", "tensorrt_rtx")
log = logging.getLogger("netdsl.tensorrt")

_lock = threading.Lock()
_modules: dict[str, Any] = {}
_logger: Any = None
_logger_flavour: Optional[str] = None

INSTALL_ADVICE = ("install TensorRT: `pip install tensorrt` (10.x/11.x, needs NVIDIA's package index) or "
                  "`pip install tensorrt-rtx` (TensorRT for RTX; builds engines even without a GPU); "
                  "or `pip install netdsl[tensorrt-rtx]`")


def load(flavour: Optional[str] = None) -> Any:
    """Import and return the TensorRT module (``import tensorrt as trt`` or ``tensorrt_rtx``)."""
    flavour = flavour or os.environ.get("NETDSL_TRT") or None
    if flavour is not None and flavour not in FLAVOURS:
        raise BackendUnavailable(f"NETDSL_TRT/flavour must be one of {', '.join(FLAVOURS)}, got {flavour!r}")
    names = [flavour] if flavour else list(FLAVOURS)
    errors = []
    with _lock:
        for name in names:
            if name in _modules:
                return _modules[name]
            try:
                mod = importlib.import_module(name)
                if not hasattr(mod, "Builder"):
                    raise ImportError(f"module {name} has no Builder (a stub package?)")
            except Exception as e:  # ImportError, or a broken install raising something else
                errors.append(f"{name}: {type(e).__name__}: {e}")
                continue
            _modules[name] = mod
            return mod
    raise BackendUnavailable("TensorRT backend: no usable TensorRT module (" + "; ".join(errors) + "). "
                             + INSTALL_ADVICE)


def flavour_of(trt: Any) -> str:
    """'tensorrt' or 'tensorrt_rtx' for a loaded module."""
    return "tensorrt_rtx" if trt.__name__.startswith("tensorrt_rtx") else "tensorrt"


def version_string(trt: Any) -> str:
    """e.g. 'tensorrt_rtx-1.7.1.116'."""
    return f"{flavour_of(trt)}-{getattr(trt, '__version__', '?')}"


_LEVELS = {"INTERNAL_ERROR": logging.CRITICAL, "ERROR": logging.ERROR, "WARNING": logging.WARNING,
           "INFO": logging.INFO, "VERBOSE": logging.DEBUG}


def logger(trt: Any) -> Any:
    """The process-wide TensorRT logger (created once), forwarding to Python logging."""
    global _logger, _logger_flavour
    with _lock:
        if _logger is not None and _logger_flavour == flavour_of(trt):
            return _logger

        class _PyLogger(trt.ILogger):  # type: ignore[misc,name-defined]
            def __init__(self) -> None:
                trt.ILogger.__init__(self)
                self.errors: list[str] = []

            def log(self, severity: Any, msg: str) -> None:
                level = _LEVELS.get(getattr(severity, "name", str(severity)).split(".")[-1], logging.INFO)
                if level >= logging.ERROR and "CUDA driver version is insufficient" not in msg:
                    self.errors.append(msg)  # (that one is logged by every CPU-only TensorRT-RTX build)
                    del self.errors[:-50]
                log.log(level, "%s", msg)

        _logger = _PyLogger()
        _logger_flavour = flavour_of(trt)
        return _logger


def take_errors(trt: Any) -> list[str]:
    """TensorRT error messages logged since the last call (to put into exceptions)."""
    lg = logger(trt)
    out = list(lg.errors)
    lg.errors.clear()
    return out
