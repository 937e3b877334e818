"""The op catalogue: every op netdsl knows, defined once (attributes, inference, NumPy reference).

Importing this package registers the built-in ops. Use :func:`get_op` / :func:`all_ops` to look
them up; backends key their lowering tables by ``OpDef.name``.
"""
from .registry import REQUIRED, Attr, OpDef, all_ops, define, get_op, register  # noqa: F401
from . import sources, elementwise, nn, tensor, reduce, ranges, preprocess, quantize  # noqa: F401  (registration side effects)

__all__ = ["Attr", "OpDef", "REQUIRED", "all_ops", "define", "get_op", "register"]
