"""The op catalogue's machinery: :class:`OpDef`, attribute specs, and the registry.

An op is defined once, with its inputs, typed attributes, shape/dtype inference and NumPy
reference. Backends are tables keyed by ``OpDef.name``. Plugins register ops the same way.

Calling conventions (all keyword attributes, normalized first by :meth:`OpDef.normalize_attrs`)::

    infer(*input_specs, **attrs)     -> TensorSpec | list[TensorSpec]
    reference(*arrays, **attrs)      -> np.ndarray | list[np.ndarray]
    macs(out_specs, *input_specs, **attrs) -> int       (optional, for summaries)

Omitted optional inputs arrive as ``None``. Variadic ops (``inputs=("xs*",)``) receive each input
as a separate positional argument.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..dtypes import DType, as_dtype
from ..errors import AttrError, ShapeError, UnknownOpError
from ..graph import TensorSpec

REQUIRED = object()

_KINDS = ("int", "float", "bool", "str", "ints", "floats", "dtype", "array", "any")


@dataclass(frozen=True)
class Attr:
    """An attribute of an op: its kind, default (REQUIRED if none), allowed values."""

    kind: str
    default: Any = REQUIRED
    choices: Optional[tuple] = None
    optional: bool = False  # None allowed
    doc: str = ""

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown attribute kind {self.kind!r}")

    def check(self, op: str, name: str, value: Any) -> Any:
        """Validate and normalize one value (lists become tuples, dtypes DType)."""
        if value is None and (self.optional or self.default is None):
            return None
        k = self.kind
        try:
            if k == "int":
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                    raise TypeError
                value = int(value)
            elif k == "float":
                if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                    raise TypeError
                value = float(value)
            elif k == "bool":
                if not isinstance(value, (bool, np.bool_)):
                    raise TypeError
                value = bool(value)
            elif k == "str":
                if not isinstance(value, str):
                    raise TypeError
            elif k == "ints":
                if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                    value = (value,)
                value = tuple(int(v) for v in value
                              if not isinstance(v, (bool, float, np.floating)) or _bad())  # no silent 1.5 -> 1
            elif k == "floats":
                if isinstance(value, (int, float)):
                    value = (value,)
                value = tuple(float(v) for v in value)
            elif k == "dtype":
                value = as_dtype(value)
            elif k == "array":
                value = np.asarray(value)
        except (TypeError, ValueError):
            raise AttrError(f"op '{op}': attribute '{name}' must be {k}, got {value!r}") from None
        if self.choices is not None and value not in self.choices:
            raise AttrError(f"op '{op}': attribute '{name}' must be one of "
                                  f"{', '.join(map(repr, self.choices))}; got {value!r}")
        return value


def _bad() -> bool:
    raise TypeError


@dataclass(frozen=True)
class OpDef:
    """One catalogue entry."""

    name: str
    inputs: tuple          # input names; "x?" optional, "xs*" variadic
    outputs: tuple         # output names
    attrs: dict            # name -> Attr
    infer: Callable
    reference: Callable
    category: str = "misc"
    doc: str = ""
    macs: Optional[Callable] = None
    plugin: Any = None     # a plugin declaration, for custom ops
    extra: dict = field(default_factory=dict)

    # ---- input arity (computed once: infer_specs asks for every node) ----------------------
    @cached_property
    def variadic(self) -> bool:
        return bool(self.inputs) and self.inputs[-1].endswith("*")

    @cached_property
    def min_inputs(self) -> int:
        return sum(1 for i in self.inputs if not i.endswith(("?", "*")))

    @cached_property
    def max_inputs(self) -> Optional[int]:
        return None if self.variadic else len(self.inputs)

    def input_name(self, i: int) -> str:
        if self.variadic and i >= len(self.inputs) - 1:
            return f"{self.inputs[-1].rstrip('*')}[{i - len(self.inputs) + 1}]"
        return self.inputs[i].rstrip("?*")

    # ---- attributes ----------------------------------------------------------------------
    def normalize_attrs(self, attrs: dict) -> dict:
        unknown = set(attrs) - set(self.attrs)
        if unknown:
            raise AttrError(f"op '{self.name}' has no attribute(s) {', '.join(sorted(unknown))}; "
                                  f"it takes: {', '.join(self.attrs) or 'none'}")
        out = {}
        for name, spec in self.attrs.items():
            if name in attrs:
                out[name] = spec.check(self.name, name, attrs[name])
            elif spec.default is REQUIRED:
                raise AttrError(f"op '{self.name}': attribute '{name}' is required")
            else:
                out[name] = spec.default
        return out

    # ---- inference / reference -----------------------------------------------------------
    def infer_specs(self, inputs: Sequence[Optional[TensorSpec]], attrs: dict) -> list[TensorSpec]:
        n = len(inputs)
        if n < self.min_inputs or (self.max_inputs is not None and n > self.max_inputs):
            raise ShapeError(f"op '{self.name}' takes {self.min_inputs}"
                             f"{'' if self.max_inputs == self.min_inputs else '..' + str(self.max_inputs or 'n')}"
                             f" inputs ({', '.join(self.inputs)}), got {n}")
        for i, s in enumerate(inputs):
            if s is None and i < len(self.inputs) and not self.inputs[i].endswith("?"):
                raise ShapeError(f"op '{self.name}': input '{self.input_name(i)}' is required")
        out = self.infer(*inputs, **attrs)
        if isinstance(out, TensorSpec):
            out = [out]
        out = list(out)
        if not self.outputs[-1].endswith("*") and len(out) != len(self.outputs):
            raise RuntimeError(f"op '{self.name}' inferred {len(out)} outputs, declares {len(self.outputs)}")
        return out

    def run_reference(self, arrays: Sequence[Optional[np.ndarray]], attrs: dict) -> list[np.ndarray]:
        out = self.reference(*arrays, **attrs)
        if isinstance(out, (list, tuple)):
            return [np.asarray(o) for o in out]
        return [np.asarray(out)]


_REGISTRY: dict[str, OpDef] = {}


def register(opdef: OpDef, *, replace: bool = False) -> OpDef:
    if opdef.name in _REGISTRY and not replace:
        raise ValueError(f"op '{opdef.name}' is already registered")
    _REGISTRY[opdef.name] = opdef
    return opdef


def define(name: str, *, infer: Callable, reference: Callable, inputs: Sequence[str] = ("x",),
           outputs: Sequence[str] = ("y",), attrs: Optional[dict] = None, category: str = "misc",
           doc: str = "", macs: Optional[Callable] = None, **extra: Any) -> OpDef:
    """Define and register a catalogue op."""
    return register(OpDef(name=name, inputs=tuple(inputs), outputs=tuple(outputs), attrs=dict(attrs or {}),
                          infer=infer, reference=reference, category=category, doc=doc.strip(),
                          macs=macs, extra=extra))


def get_op(name: str) -> OpDef:
    try:
        return _REGISTRY[name]
    except KeyError:
        import difflib  # only for this message
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownOpError(f"unknown op '{name}'{hint} (custom layers are declared as plugins: "
                             "see netdsl.plugins)") from None


def all_ops() -> dict[str, OpDef]:
    """Every registered op (catalogue and plugins), by name."""
    return dict(_REGISTRY)


# ---- small inference helpers shared by catalogue modules ---------------------------------------
def same(x: TensorSpec, **_: Any) -> TensorSpec:
    """Output has the input's dtype and shape."""
    return x


def require_float(op: str, *specs: Optional[TensorSpec]) -> None:
    for s in specs:
        if s is not None and not s.dtype.is_float:
            raise ShapeError(f"{op} needs floating-point inputs, got {s}")


def require_same_dtype(op: str, *specs: Optional[TensorSpec]) -> DType:
    dts = {s.dtype for s in specs if s is not None}
    if len(dts) > 1:
        raise ShapeError(f"{op}: inputs have different dtypes " + ", ".join(str(s) for s in specs if s))
    return next(iter(dts))


def require_rank(op: str, spec: TensorSpec, ranks: Sequence[int] | int, what: str = "input") -> None:
    ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    if spec.rank not in ranks:
        raise ShapeError(f"{op}: {what} must have rank {' or '.join(map(str, ranks))}, got {spec}")
