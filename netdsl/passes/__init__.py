"""Graph rewrites shared by every backend. Each pass takes a Graph and returns a new Graph (the
input is left untouched); weights stay lazy (folded weights are computed when first read)."""
from .rewrite import clone_graph  # noqa: F401
from .fold import fold_batch_norm, fold_constants, remove_identities, optimize  # noqa: F401
from .qdq import insert_qdq  # noqa: F401

__all__ = ["clone_graph", "fold_batch_norm", "fold_constants", "remove_identities", "optimize", "insert_qdq"]
