"""A network's serving interface: tensor names, element types, dims, and which symbol is the batch.

Servers describe tensors in their own vocabularies: Triton's model config (``TYPE_FP32``, ``dims``
without the batch dimension when ``max_batch_size > 0``) and the Open Inference Protocol (``FP32``,
``-1`` for a dimension known only at run time). Both are derived here from one description.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

from ..errors import NetdslError
from ..shapes import Sym

# netdsl dtype -> Triton model-config DataType / Open Inference Protocol datatype
TRITON_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "bfloat16": "TYPE_BF16", "float64": "TYPE_FP64",
                "int8": "TYPE_INT8", "uint8": "TYPE_UINT8", "int32": "TYPE_INT32", "int64": "TYPE_INT64",
                "bool": "TYPE_BOOL"}
KSERVE_TYPES = {"float32": "FP32", "float16": "FP16", "bfloat16": "BF16", "float64": "FP64", "int8": "INT8",
                "uint8": "UINT8", "int32": "INT32", "int64": "INT64", "bool": "BOOL"}
DTYPE_OF_KSERVE = {v: k for k, v in KSERVE_TYPES.items()}


def symbol_name(d: Any) -> Optional[str]:
    """The name of a plain symbolic dim (``N``), None for an int or an expression (``2*N``)."""
    if isinstance(d, Sym) and len(d.terms) == 1 and d.terms[0][1] == 1 and d.coeff == 1:
        return d.terms[0][0]
    return None


@dataclass(frozen=True)
class TensorInfo:
    """One input or output: name, netdsl dtype name, dims (-1 where known only at run time) and, per dim,
    the symbol it is (None for a fixed dim or an expression)."""

    name: str
    dtype: str
    dims: tuple
    symbols: tuple

    @classmethod
    def of(cls, value: Any) -> "TensorInfo":
        dims = tuple(d if isinstance(d, int) else -1 for d in value.shape)
        return cls(value.name, str(value.dtype), dims, tuple(symbol_name(d) for d in value.shape))

    @property
    def kserve_type(self) -> str:
        return KSERVE_TYPES[self.dtype]

    @property
    def triton_type(self) -> str:
        return TRITON_TYPES[self.dtype]

    def metadata(self) -> dict:
        """Open Inference Protocol tensor metadata (``name``, ``datatype``, ``shape``)."""
        return {"name": self.name, "datatype": self.kserve_type, "shape": list(self.dims)}


@dataclass(frozen=True)
class Interface:
    """Inputs and outputs of a network as a server sees them; ``batch`` is the batch symbol or None."""

    name: str
    inputs: tuple
    outputs: tuple
    batch: Optional[str]

    @classmethod
    def of(cls, graph: Any) -> "Interface":
        g = getattr(graph, "graph", graph)
        for v in list(g.inputs) + list(g.outputs):
            if str(v.dtype) not in KSERVE_TYPES:
                raise NetdslError(f"network '{g.name}': tensor '{v.name}' has dtype {v.dtype}, which servers "
                                  "cannot exchange")
        ins = tuple(TensorInfo.of(v) for v in g.inputs)
        outs = tuple(TensorInfo.of(v) for v in g.outputs)
        return cls(g.name, ins, outs, batch_symbol(ins, outs))

    def tensor(self, name: str, kind: str = "input") -> TensorInfo:
        pool = self.inputs if kind == "input" else self.outputs
        for t in pool:
            if t.name == name:
                return t
        raise NetdslError(f"model '{self.name}' has no {kind} '{name}' ({kind}s: "
                          f"{', '.join(t.name for t in pool)})")


def batch_symbol(inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo]) -> Optional[str]:
    """The symbol that is the first dim of every input and output and appears in no other dim (what
    Triton calls the batch dimension), or None when the network has no such dim."""
    tensors = list(inputs) + list(outputs)
    if not tensors or any(not t.symbols for t in tensors):
        return None
    first = {t.symbols[0] for t in tensors}
    if len(first) != 1 or None in first:
        return None
    sym = first.pop()
    if any(sym in t.symbols[1:] for t in tensors):
        return None
    return sym


def check_model_name(name: str) -> str:
    """A model name usable as a repository folder and in a URL path."""
    if not name or name in (".", "..") or any(c in name for c in "/\\ ?#%") or name.isdigit():
        raise NetdslError(f"model name {name!r} cannot name a repository folder and a URL path "
                          "(use letters, digits, '-', '_', '.'; not only digits)")
    return name


def check_version(version: Any) -> int:
    """A model version: a positive integer (both Triton and OVMS read numbered folders)."""
    try:
        v = int(version)
    except (TypeError, ValueError):
        v = 0
    if v < 1 or str(version).strip() != str(v):
        raise NetdslError(f"model version {version!r}: use a positive integer (1, 2, ...)")
    return v


def names(tensors: Iterable[TensorInfo]) -> str:
    return ", ".join(t.name for t in tensors)
