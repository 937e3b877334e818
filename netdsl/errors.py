"""Exceptions raised by netdsl. Every message names the layer, tensor or file involved.

Every class here is exported from ``netdsl`` (``except netdsl.WeightError``); all derive from
:class:`NetdslError`.
"""
from __future__ import annotations


class NetdslError(Exception):
    """Base class for every netdsl error."""


class ShapeError(NetdslError, ValueError):
    """An op got inputs whose shapes or dtypes it cannot accept (raised at definition time)."""


class AttrError(NetdslError, ValueError):
    """An op attribute is missing, unknown or of the wrong kind."""


class UnknownOpError(NetdslError, KeyError):
    """No op of that name is in the catalogue (or registered as a plugin)."""

    def __str__(self) -> str:  # KeyError quotes its message; we don't want that
        return str(self.args[0]) if self.args else ""


class ModuleError(NetdslError, TypeError):
    """A module or container got arguments it cannot take (e.g. ``nn.Sequential([a, b])``)."""


class GraphError(NetdslError, ValueError):
    """The graph is malformed (dangling value, duplicate name, cycle ...)."""


class WeightError(NetdslError, ValueError):
    """A checkpoint could not be read or bound (names the file and the tensor)."""


class BackendUnavailable(NetdslError, ImportError):
    """The engine a backend needs is not installed; the message says what to install."""


class UnsupportedOpError(NetdslError, NotImplementedError):
    """A backend has no lowering for an op (the message points to plugins)."""
