"""Checkpoints: readers for every common format (detected from content), binding to a network, .wts writer.

``open_checkpoint(path)`` opens any supported file lazily; ``load_weights(graph, path, ...)`` binds it
to a network's parameters (strict by default) and returns a :class:`BindingReport`.
"""
from .base import Checkpoint, TensorInfo, detect_format, formats, open_checkpoint
from .bind import BindingReport, load_weights
from .random import init_random
from .wts import write_wts

__all__ = ["Checkpoint", "TensorInfo", "BindingReport", "detect_format", "formats", "load_weights",
           "open_checkpoint", "init_random", "write_wts"]
