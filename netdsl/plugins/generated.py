"""The backend lowerings that a declaration gets unless it brings its own (``openvino=``/``tensorrt=``).

They are small closures that import the engine-specific code on first use, so declaring a plugin
imports no engine.
"""
from __future__ import annotations

from typing import Any, Callable

from .declaration import Plugin


def attach(p: Plugin) -> None:
    """Fill ``p.openvino`` and ``p.tensorrt`` with generated lowerings where the author gave none."""
    if p.openvino is None:
        p.openvino = _openvino(p)
    if p.tensorrt is None:
        p.tensorrt = _tensorrt(p)


def is_generated(fn: Any) -> bool:
    return bool(getattr(fn, "netdsl_generated", False))


def _openvino(p: Plugin) -> Callable[..., Any]:
    def lower(ctx: Any, node: Any, *inputs: Any) -> list:
        from .openvino_ops import lower as _lower
        return _lower(p, ctx, node, inputs)
    lower.netdsl_generated = True  # type: ignore[attr-defined]
    return lower


def _tensorrt(p: Plugin) -> Callable[..., Any]:
    def lower(ctx: Any, node: Any) -> list:
        from .tensorrt_lowering import lower as _lower
        return _lower(p, ctx, node)
    lower.netdsl_generated = True  # type: ignore[attr-defined]
    return lower
