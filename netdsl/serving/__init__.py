"""Serving: model repositories for Triton and OpenVINO Model Server, and serving on Ray Serve.

* :func:`export_triton` writes ``REPO/<name>/config.pbtxt`` and ``REPO/<name>/<version>/`` (TensorRT plan,
  OpenVINO IR or ONNX model) for Triton Inference Server;
* :func:`export_ovms` writes versioned IR folders and ``config.json`` for OpenVINO Model Server;
* :func:`serve` deploys a network on Ray Serve behind the Open Inference Protocol (KServe v2), the HTTP
  protocol Triton speaks, so ``tritonclient.http`` and KServe clients work unchanged.

Nothing here imports an engine or Ray until it is used.
"""
from __future__ import annotations

from .interface import Interface, TensorInfo
from .ovms import OvmsModel, export_ovms
from .triton import TritonModel, export_triton


def serve(*args, **kwargs):  # type: ignore[no-untyped-def]
    """Deploy a network on Ray Serve (see :func:`netdsl.serving.ray_app.serve`)."""
    from .ray_app import serve as _serve
    return _serve(*args, **kwargs)


__all__ = ["export_triton", "export_ovms", "serve", "TritonModel", "OvmsModel", "Interface", "TensorInfo"]
