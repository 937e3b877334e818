"""The network builder: :class:`Network` and symbolic :class:`Tensor`.

There is no global state: every tensor knows the network that made it, and scopes live on the
network (per thread), restored on exit even when an exception escapes::

    net = Network("lenet")
    x = net.input("data", ("N", 1, 28, 28))
    with net.scope("features"):
        x = nd.relu(nd.conv2d(x, net.parameter("conv1.weight", (20, 1, 5, 5))))
    net.output(x, "feat")
"""
from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np

from .dtypes import DType, as_dtype
from .errors import NetdslError, ShapeError
from .graph import Graph, Node, Param, TensorSpec, Value
from .ops import get_op
from .shapes import as_shape, fmt_shape

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))


_SHOWN: dict = {}  # (code file name, cwd) -> how locations show it, None inside netdsl (once per file)


def _shown_file(co_filename: str, cwd: str) -> Optional[str]:
    key = (co_filename, cwd)
    if key not in _SHOWN:
        fn = os.path.abspath(co_filename)
        rel = os.path.relpath(fn)
        inside = fn.startswith(_PKG_DIR + os.sep) or co_filename.startswith("<frozen ")  # python -m's runpy
        _SHOWN[key] = None if inside else (fn if rel.startswith("..") else rel)
    return _SHOWN[key]


def user_location() -> str:
    """file:line of the innermost stack frame outside the netdsl package (the user's code)."""
    f = sys._getframe(1)
    cwd = os.getcwd()  # once per call, not per frame
    while f is not None:
        shown = _shown_file(f.f_code.co_filename, cwd)
        if shown is not None:
            return f"{shown}:{f.f_lineno}"
        f = f.f_back
    return "<netdsl>"


def user_stacklevel() -> int:
    """The ``stacklevel`` for a ``warnings.warn`` in the caller that points at the innermost stack frame
    outside the netdsl package (the user's line), whichever netdsl entry point the user called."""
    f, level = sys._getframe(1), 1
    cwd = os.getcwd()
    while f.f_back is not None and _shown_file(f.f_code.co_filename, cwd) is None:
        f, level = f.f_back, level + 1
    return level


class Tensor:
    """A symbolic tensor: a value of a :class:`Network` under construction."""

    __slots__ = ("net", "value")
    __array_priority__ = 1000  # make numpy defer to our operators

    def __init__(self, net: "Network", value: Value):
        self.net = net
        self.value = value

    # ---- introspection -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.value.shape

    @property
    def dtype(self) -> DType:
        return self.value.dtype

    @property
    def name(self) -> str:
        return self.value.name

    @property
    def rank(self) -> int:
        return len(self.value.shape)

    ndim = rank

    @property
    def spec(self) -> TensorSpec:
        return self.value.spec

    def __repr__(self) -> str:
        return f"Tensor({self.name!r}, {self.dtype}{fmt_shape(self.shape)})"

    def __bool__(self) -> bool:
        raise TypeError("a symbolic Tensor has no truth value (use netdsl.where for data-dependent choices)")

    def __len__(self) -> int:
        d = self.shape[0] if self.shape else None
        if not isinstance(d, int):
            raise TypeError(f"len() of {self!r}: first dim is not static")
        return d

    def __iter__(self):
        raise TypeError("a symbolic Tensor cannot be iterated; use netdsl.split")

    # ---- operators -----------------------------------------------------------------------------
    def _bin(self, op: str, other: Any, reverse: bool = False) -> "Tensor":
        from . import functional as F
        other = F.as_tensor(other, like=self)
        a, b = (other, self) if reverse else (self, other)
        return self.net.apply(op, [a, b])

    def __add__(self, o): return self._bin("add", o)
    def __radd__(self, o): return self._bin("add", o, True)
    def __sub__(self, o): return self._bin("sub", o)
    def __rsub__(self, o): return self._bin("sub", o, True)
    def __mul__(self, o): return self._bin("mul", o)
    def __rmul__(self, o): return self._bin("mul", o, True)
    def __truediv__(self, o): return self._bin("div", o)
    def __rtruediv__(self, o): return self._bin("div", o, True)
    def __pow__(self, o): return self._bin("pow", o)
    def __rpow__(self, o): return self._bin("pow", o, True)
    def __matmul__(self, o): return self._bin("matmul", o)
    def __rmatmul__(self, o): return self._bin("matmul", o, True)
    def __lt__(self, o): return self._bin("less", o)
    def __le__(self, o): return self._bin("less_equal", o)
    def __gt__(self, o): return self._bin("greater", o)
    def __ge__(self, o): return self._bin("greater_equal", o)
    def __and__(self, o): return self._bin("logical_and", o)
    def __or__(self, o): return self._bin("logical_or", o)
    def __invert__(self): return self.net.apply("logical_not", [self])
    def __neg__(self): return self.net.apply("neg", [self])
    def __abs__(self): return self.net.apply("abs", [self])
    __hash__ = object.__hash__  # == is not overloaded: use netdsl.equal

    def __getitem__(self, key: Any) -> "Tensor":
        from .functional import getitem
        return getitem(self, key)

    # ---- methods -------------------------------------------------------------------------------
    def reshape(self, *shape: Any) -> "Tensor":
        from .functional import reshape
        return reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    def transpose(self, *perm: int) -> "Tensor":
        from .functional import transpose
        if len(perm) == 2 and self.rank != 2:  # torch-style swap of two axes
            p = list(range(self.rank))
            a, b = perm[0] % self.rank, perm[1] % self.rank
            p[a], p[b] = p[b], p[a]
            return transpose(self, p)
        return transpose(self, perm[0] if len(perm) == 1 and isinstance(perm[0], (tuple, list)) else (perm or None))

    def permute(self, *perm: int) -> "Tensor":
        from .functional import transpose
        return transpose(self, perm[0] if len(perm) == 1 and isinstance(perm[0], (tuple, list)) else perm)

    @property
    def T(self) -> "Tensor":
        from .functional import transpose
        return transpose(self)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        from .functional import flatten
        return flatten(self, start_dim, end_dim)

    def squeeze(self, dim: Any = None) -> "Tensor":
        from .functional import squeeze
        return squeeze(self, dim)

    def unsqueeze(self, dim: Any) -> "Tensor":
        from .functional import unsqueeze
        return unsqueeze(self, dim)

    def cast(self, dtype: Any) -> "Tensor":
        from .functional import cast
        return cast(self, dtype)

    astype = cast

    # reductions: PyTorch's dim/keepdim, or NumPy's axis/keepdims by keyword (see netdsl.functional)
    def sum(self, dim: Any = None, keepdim: bool = False, **numpy_style: Any) -> "Tensor":
        from .functional import sum as _sum
        return _sum(self, dim, keepdim, **numpy_style)

    def mean(self, dim: Any = None, keepdim: bool = False, **numpy_style: Any) -> "Tensor":
        from .functional import mean
        return mean(self, dim, keepdim, **numpy_style)

    def max(self, dim: Any = None, keepdim: bool = False, **numpy_style: Any) -> "Tensor":
        from .functional import max as _max
        return _max(self, dim, keepdim, **numpy_style)

    def min(self, dim: Any = None, keepdim: bool = False, **numpy_style: Any) -> "Tensor":
        from .functional import min as _min
        return _min(self, dim, keepdim, **numpy_style)


TensorLike = Union[Tensor, float, int, np.ndarray]


class LayerName(str):
    """A full layer name (a module's path): used as it is, never prefixed with the current scope."""


class Network:
    """Builds a :class:`~netdsl.graph.Graph`: inputs, ops, parameters, outputs, names and scopes."""

    def __init__(self, name: str = "network"):
        self.graph = Graph(name=name)
        self._used: set[str] = set()
        self._counters: dict[str, int] = {}
        self._param_tensors: dict[str, Tensor] = {}
        self._local = threading.local()
        self._lock = threading.RLock()

    @classmethod
    def from_graph(cls, graph: Graph) -> "Network":
        """A Network around an existing graph (e.g. a pass's result), ready to compile or extend."""
        net = cls(graph.name)
        net.graph = graph
        net._used = {v.name for v in graph.values()} | {n.name for n in graph.nodes} | set(graph.params)
        for n in graph.nodes:
            if n.op == "parameter":
                net._param_tensors[n.attrs["name"]] = Tensor(net, n.outputs[0])
        return net

    @property
    def name(self) -> str:
        return self.graph.name

    # ---- naming --------------------------------------------------------------------------------
    def _scopes(self) -> list[str]:
        if not hasattr(self._local, "scopes"):
            self._local.scopes = []
        return self._local.scopes

    @contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """Prefix layer names made inside with ``name/`` (scopes nest; restored on exceptions)."""
        if not name or "/" in name:
            raise ValueError(f"bad scope name {name!r}")
        with self._pushed(name):
            yield

    @contextmanager
    def module_scope(self, path: str) -> Iterator[None]:
        """Name layers made inside ``path.NAME``: a module's own ops (a residual ``add``) are named
        after the module (``layer1.0.add``), like its sublayers (``layer1.0.conv1``)."""
        if not path:
            yield
            return
        with self._pushed(LayerName(path)):
            yield

    @contextmanager
    def _pushed(self, entry: str) -> Iterator[None]:
        stack = self._scopes()
        stack.append(entry)
        try:
            yield
        finally:
            stack.pop()

    @contextmanager
    def precision(self, dtype: Any) -> Iterator[None]:
        """Layers made inside run in ``dtype`` (e.g. "float32" under a float16 build) on every backend
        that compiles at reduced precision; inputs and outputs are cast at the island's borders."""
        dt = as_dtype(dtype)
        if not dt.is_float:
            raise ValueError(f"net.precision takes a float type, not {dt}")
        if not hasattr(self._local, "precision"):
            self._local.precision = []
        self._local.precision.append(dt)
        try:
            yield
        finally:
            self._local.precision.pop()

    def prefix(self) -> str:
        """What names made now start with: ``scope/`` per scope, ``path.`` inside a module (absolute)."""
        p = ""
        for s in self._scopes():
            p = s + "." if isinstance(s, LayerName) else p + s + "/"
        return p

    def scoped(self, name: str) -> str:
        return name if isinstance(name, LayerName) else self.prefix() + name

    def unique_name(self, base: str) -> str:
        """A fresh name ``base``, ``base_1``, ... (scoped; a :class:`LayerName` is taken as it is) that no
        layer or tensor uses yet."""
        with self._lock:
            base = self.scoped(base)
            if base not in self._used:
                self._used.add(base)
                return base
            i = self._counters.get(base, 0)
            while True:
                i += 1
                cand = f"{base}_{i}"
                if cand not in self._used:
                    self._counters[base] = i
                    self._used.add(cand)
                    return cand

    def _claim(self, name: str, what: str) -> str:
        if not isinstance(name, str) or not name:
            raise ShapeError(f"{what} name must be a non-empty string, got {name!r} ({user_location()})")
        with self._lock:
            if name in self._used:
                raise ShapeError(f"{what} name {name!r} is already used in network '{self.name}' "
                                 f"({user_location()})")
            self._used.add(name)
            return name

    def _snapshot(self) -> tuple:
        """Builder state, for :meth:`_restore` when a Module call fails half-way."""
        with self._lock:
            return (len(self.graph.nodes), len(self.graph.outputs), set(self._used), dict(self._counters),
                    dict(self._param_tensors), dict(self.graph.params))

    def _restore(self, state: tuple) -> None:
        """Drop what was added since ``state`` (nodes, outputs, names, parameters); one builder thread."""
        n, o, used, counters, ptensors, params = state
        with self._lock:
            del self.graph.nodes[n:]
            del self.graph.outputs[o:]
            self._used, self._counters, self._param_tensors = used, counters, ptensors
            self.graph.params.clear()
            self.graph.params.update(params)

    # ---- sources -------------------------------------------------------------------------------
    def input(self, name: str, shape: Sequence[Any], dtype: Any = "float32", layout: Optional[str] = None,
              preprocess: Any = None) -> Tensor:
        """Declare a network input. Dims may be ints or symbol names ('N') for dynamic sizes.

        ``layout`` (e.g. ``"NHWC"``) and ``preprocess`` (a :class:`netdsl.Preprocess`) describe what callers
        feed; the returned tensor is then the preprocessed one, in the model layout (N, C, then the rest)."""
        v = Value(self._claim(name, "input"), as_dtype(dtype), as_shape(shape))
        self.graph.inputs.append(v)
        t = Tensor(self, v)
        if layout is None and preprocess is None:
            return t
        from .preprocessing import Preprocess
        pre = preprocess if preprocess is not None else Preprocess()
        if not isinstance(pre, Preprocess):
            raise ShapeError(f"input '{name}': preprocess must be a netdsl.Preprocess, got {type(pre).__name__} "
                             f"({user_location()})")
        return self.apply("preprocess", [t], name=f"{name}/preprocess", layout=layout or "NCHW", **pre.attrs())

    def parameter(self, name: str, shape: Sequence[int], dtype: Any = "float32", init: str = "normal") -> Tensor:
        """A named weight (e.g. ``conv1.weight``); the same name returns the same tensor."""
        if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise ShapeError(f"parameter '{name}': dims must be non-negative ints, got {tuple(shape)} "
                             f"({user_location()})")
        shape = tuple(int(d) for d in shape)
        dt = as_dtype(dtype)
        with self._lock:
            if name in self._param_tensors:
                t = self._param_tensors[name]
                if t.shape != shape or t.dtype != dt:
                    raise ShapeError(f"parameter '{name}' was declared as {t.dtype}{fmt_shape(t.shape)}, now "
                                     f"as {dt}{fmt_shape(shape)} ({user_location()})")
                return t
            self._claim(name, "parameter")
            self.graph.params[name] = Param(name, dt, shape, init=init)
            node = Node("parameter", name, [], {"name": name, "dtype": dt, "shape": shape}, user_location())
            v = Value(name, dt, shape, node, 0)
            node.outputs.append(v)
            self.graph.nodes.append(node)
            t = Tensor(self, v)
            self._param_tensors[name] = t
            return t

    def constant(self, value: Any, dtype: Any = None, name: Optional[str] = None) -> Tensor:
        """A constant tensor (Python floats become float32 unless ``dtype`` says otherwise)."""
        arr = np.asarray(value)
        if dtype is not None:
            arr = arr.astype(as_dtype(dtype).numpy)
        elif arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        elif arr.dtype == np.int64 and arr.ndim == 0:
            arr = arr.astype(np.int32)
        return self.apply("constant", [], name=name or "const", value=arr)

    def output(self, tensor: Tensor, name: Optional[str] = None) -> Tensor:
        """Mark ``tensor`` as a network output, renaming it to ``name`` if given."""
        if not isinstance(tensor, Tensor) or tensor.net is not self:
            raise ShapeError(f"output {name!r}: not a tensor of network '{self.name}'")
        v = tensor.value
        if v in self.graph.inputs or (v.producer is not None and v.producer.op == "parameter") or \
                any(v is o for o in self.graph.outputs):
            tensor = self.apply("identity", [tensor], name=name or v.name + "_out")
            v = tensor.value
        if name and name != v.name:
            with self._lock:
                self._claim(name, "output")  # the old tensor name stays reserved: it is also the layer's name
                v.name = name
        self.graph.outputs.append(v)
        return tensor

    # ---- ops -----------------------------------------------------------------------------------
    def apply(self, op: str, inputs: Sequence[Optional[Tensor]], name: Optional[str] = None,
              **attrs: Any) -> Any:
        """Add one op node; returns a Tensor (or a tuple for multi-output ops).

        Shape errors are raised here, naming the op, the layer, the input shapes and the user's line.
        """
        opdef = get_op(op)
        loc = user_location()
        for i, t in enumerate(inputs):
            if t is not None and (not isinstance(t, Tensor) or t.net is not self):
                what = "a tensor of another network" if isinstance(t, Tensor) else type(t).__name__
                raise ShapeError(f"{op}: input '{opdef.input_name(i)}' is {what}, not a tensor of network "
                                 f"'{self.name}' (at {loc})")
        layer = self.unique_name(name or op)
        try:
            attrs = opdef.normalize_attrs(attrs)
            specs = opdef.infer_specs([None if t is None else t.spec for t in inputs], attrs)
        except NetdslError as e:
            self._used.discard(layer)
            shapes = ", ".join(f"{opdef.input_name(i)}={'None' if t is None else t.dtype.value + fmt_shape(t.shape)}"
                               for i, t in enumerate(inputs))
            msg = f"{op} '{layer}' at {loc}: {e}"
            if shapes and "input shapes" not in str(e):
                msg += f" [input shapes: {shapes}]"
            raise type(e)(msg) from None
        node = Node(op, layer, [None if t is None else t.value for t in inputs], attrs, loc)
        outs = []
        multi = len(specs) > 1 or opdef.outputs[-1].endswith("*")
        for i, s in enumerate(specs):
            oname = layer
            if multi:
                base = opdef.outputs[i] if not opdef.outputs[-1].endswith("*") else str(i)
                oname = f"{layer}:{base}"
                self._claim(oname, "tensor")
            v = Value(oname, s.dtype, s.shape, node, i)
            node.outputs.append(v)
            outs.append(Tensor(self, v))
        with self._lock:
            self.graph.nodes.append(node)
            if getattr(self._local, "precision", None):
                self.graph.precision[layer] = self._local.precision[-1]
        return tuple(outs) if multi else outs[0]

    # ---- conveniences --------------------------------------------------------------------------
    def summary(self) -> str:
        from .summary import summary
        return summary(self.graph)

    def validate(self) -> "Network":
        self.graph.validate()
        return self

    def init_random(self, seed: int = 0) -> "Network":
        """Bind seeded random weights to every unbound parameter (for tests and demos)."""
        from .weights.random import init_random
        init_random(self.graph, seed)
        return self

    def declare_binding(self, **options: Any) -> "Network":
        """Declare how checkpoints bind to this network (``strip_prefix=``, ``preset=``, ``rename=``, ...: the
        options of :func:`netdsl.weights.load_weights`). :meth:`load_weights`, ``--weights`` and
        ``netdsl weights FILE --model`` use them; options given there win. Returns the network."""
        from .weights.bind import check_options
        check_options(options)
        self.binding = {**getattr(self, "binding", {}), **options}
        return self

    def load_weights(self, path: Any, **options: Any) -> Any:
        """Bind a checkpoint (any supported format) to the parameters; strict by default. Options
        (:func:`netdsl.weights.load_weights`) extend those the network declares (:meth:`declare_binding`)."""
        from .weights import load_weights
        return load_weights(self.graph, path, **{**getattr(self, "binding", {}), **options})

    def compile(self, backend: str = "reference", **options: Any) -> Any:
        from .backends import compile as _compile
        return _compile(self.graph, backend=backend, **options)

    def __str__(self) -> str:
        return str(self.graph)
