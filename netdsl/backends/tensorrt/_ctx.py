"""The lowering context: naming, constants, precision, rank broadcasting and shape helpers.

Every layer a lowering function adds goes through :meth:`Ctx.add`, which names it after the DSL
layer (``conv1``, or ``conv1/bias_add`` for helpers) so that TensorRT's messages name the user's
layer. Weight arrays are kept in ``Ctx.keep`` until the build has finished (``trt.Weights`` does
not copy them).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import numpy as np

from ...dtypes import DType
from ...errors import NetdslError, UnsupportedOpError
from ...graph import Graph, Node, Value
from ...shapes import Sym
from ._trt import take_errors

PRECISIONS = ("float32", "float16", "bfloat16")

# a reshape/size spec item: an int, ("in", i) = input dim i, ("prod", i, j) = product of dims i..j,
# ("add", i, k) = input dim i + k
Spec = Sequence[Union[int, tuple]]


class Ctx:
    """State shared by the lowering functions while one network is being built."""

    def __init__(self, trt: Any, net: Any, graph: Graph, precision: str = "float32"):
        if precision not in PRECISIONS:
            raise NetdslError(f"TensorRT precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.trt = trt
        self.net = net
        self.graph = graph
        self.precision = precision
        self.fdt = {"float32": trt.float32, "float16": trt.float16, "bfloat16": trt.bfloat16}[precision]
        self.keep: list[np.ndarray] = []          # weights alive until the build is done
        self.tensors: dict[str, Any] = {}          # DSL value name -> ITensor
        self.names: set[str] = set()               # layer names used
        self.tnames: set[str] = set()              # tensor names used
        self.dsl_names: set[str] = set()           # tensor names that are DSL value names
        self.outputs: dict[str, Any] = {}          # graph output name -> the marked ITensor
        self.node: Optional[Node] = None
        self.layers_of: dict[str, list[str]] = {}  # DSL layer -> TensorRT layer names
        self.producers: dict[int, Node] = {id(o): n for n in graph.nodes for o in n.outputs}
        self.fold: dict[str, Any] = {}             # pass results (e.g. batch-norm folding)
        self.islands: dict[str, Any] = {}          # layer -> TensorRT float type (per-layer precision)

    # ---- types ---------------------------------------------------------------------------
    def trt_dtype(self, dt: DType) -> Any:
        t = self.trt
        if dt in (DType.float32, DType.float64):
            return self.fdt
        m = {DType.float16: t.float16, DType.bfloat16: t.bfloat16, DType.int8: t.int8, DType.uint8: t.uint8,
             DType.int32: t.int32, DType.int64: t.int64, DType.bool: t.bool}
        return m[dt]

    def np_weights(self, arr: np.ndarray, trt_dt: Any = None) -> Any:
        """A trt.Weights for ``arr`` converted to ``trt_dt`` (default: the compute float type for floats)."""
        t = self.trt
        arr = np.asarray(arr)
        if trt_dt is None:
            trt_dt = self.fdt if arr.dtype.kind == "f" else self._int_dt(arr.dtype)
        if trt_dt == t.bfloat16:
            raise self.error("bfloat16 weights go in as float32 constants + a cast (see constant())")
        np_dt = {t.float32: np.float32, t.float16: np.float16, t.int32: np.int32, t.int64: np.int64,
                 t.bool: np.bool_, t.int8: np.int8, t.uint8: np.uint8}[trt_dt]
        a = np.ascontiguousarray(arr, dtype=np_dt)
        self.keep.append(a)
        return t.Weights(a)

    def _int_dt(self, dt: np.dtype) -> Any:
        t = self.trt
        return {np.dtype(np.int32): t.int32, np.dtype(np.int64): t.int64, np.dtype(np.bool_): t.bool,
                np.dtype(np.int8): t.int8, np.dtype(np.uint8): t.uint8}[np.dtype(dt)]

    # ---- naming -----------------------------------------------------------------------------
    def _unique(self, base: str, used: set) -> str:
        name, i = base, 2
        while name in used:
            name, i = f"{base}_{i}", i + 1
        used.add(name)
        return name

    def add(self, layer: Any, suffix: Optional[str] = None) -> Any:
        """Name a freshly created layer after the current DSL layer; fail clearly if TensorRT refused it."""
        node = self.node
        base = node.name + (f"/{suffix}" if suffix else "")
        if layer is None:
            raise self.error(f"TensorRT refused to create layer '{base}': " + " | ".join(take_errors(self.trt)))
        layer.name = self._unique(base, self.names)
        for i in range(layer.num_outputs):
            out = layer.get_output(i)
            out.name = self._unique(layer.name + (f":{i}" if i else ""), self.tnames)
        self.layers_of.setdefault(node.name, []).append(layer.name)
        return layer

    def rename(self, tensor: Any, name: str) -> None:
        self.tnames.discard(tensor.name)
        tensor.name = self._unique(name, self.tnames)

    def error(self, msg: str) -> NetdslError:  # not a lowering path
        n = self.node
        where = f"layer '{n.name}' ({n.op}{', ' + n.location if n.location else ''}): " if n else ""
        return NetdslError(f"TensorRT lowering: {where}{msg}")

    def unsupported(self, why: str) -> UnsupportedOpError:  # not a lowering path
        n = self.node
        return UnsupportedOpError(
            f"TensorRT backend: op '{n.op}' at layer '{n.name}'{' (' + n.location + ')' if n.location else ''}: "
            f"{why}. Implement it as a plugin (netdsl.plugins, TensorRT IPluginV3) or register a lowering with "
            "netdsl.backends.tensorrt.register_lowering(op, fn).")

    # ---- values --------------------------------------------------------------------------
    def arr(self, v: Optional[Value]) -> Optional[np.ndarray]:
        """The data of a value produced by a 'parameter' or 'constant' node, else None."""
        if v is None:
            return None
        p = self.producers.get(id(v))
        if p is None:
            return None
        if p.op == "parameter":
            return self.graph.params[p.attrs["name"]].value()
        if p.op == "constant":
            return np.asarray(p.attrs["value"])
        return None

    def t(self, v: Value) -> Any:
        """The ITensor of a DSL value (constants and parameters become constant layers on first use)."""
        if v.name in self.tensors:
            return self.tensors[v.name]
        a = self.arr(v)
        if a is None:
            raise self.error(f"tensor '{v.name}' has not been lowered yet")
        saved, self.node = self.node, self.producers[id(v)]
        try:
            out = self.constant(a, trt_dt=self.trt_dtype(v.dtype), suffix=None)
            self.rename(out, v.name)
            self.dsl_names.add(out.name)
        finally:
            self.node = saved
        self.tensors[v.name] = out
        return out

    def constant(self, a: Any, trt_dt: Any = None, suffix: Optional[str] = "const") -> Any:
        """A constant layer. bfloat16 constants are stored as float32 + a cast (TensorRT folds it at build
        time), because bfloat16 weights cannot be read back from a network (no NumPy view)."""
        a = np.asarray(a)
        if trt_dt is None and a.dtype.kind == "f":
            trt_dt = self.fdt
        if trt_dt == self.trt.bfloat16:
            layer = self.net.add_constant(tuple(a.shape), self.np_weights(a, self.trt.float32))
            c = self.add(layer, (suffix or "const") + "_f32").get_output(0)
            return self.cast(c, trt_dt, suffix)
        layer = self.net.add_constant(tuple(a.shape), self.np_weights(a, trt_dt))
        return self.add(layer, suffix).get_output(0)

    @property
    def weights_as_tensors(self) -> bool:
        """Layer weights (conv kernels ...) go in as constant tensors (needed for bfloat16)."""
        return self.fdt == self.trt.bfloat16

    def scalar(self, value: float, like: Any, rank: Optional[int] = None, suffix: str = "const") -> Any:
        """A constant of ``like``'s dtype and rank (all dims 1)."""
        r = len(like.shape) if rank is None else rank
        a = np.full((1,) * r, value, dtype=self.np_dtype(like.dtype))
        return self.constant(a, like.dtype, suffix)

    def np_dtype(self, trt_dt: Any) -> np.dtype:
        t = self.trt
        return np.dtype({t.float32: np.float64, t.float16: np.float64, t.bfloat16: np.float64,
                         t.int32: np.int32, t.int64: np.int64, t.bool: np.bool_, t.int8: np.int8,
                         t.uint8: np.uint8}[trt_dt])

    # ---- layers with rank handling -----------------------------------------------------------
    def to_rank(self, x: Any, rank: int, suffix: str = "unsqueeze") -> Any:
        r = len(x.shape)
        if r >= rank:
            return x
        return self.reshape(x, [1] * (rank - r) + [("in", i) for i in range(r)], suffix)

    def ew(self, a: Any, b: Any, op: Any, suffix: Optional[str] = None) -> Any:
        """Elementwise op with NumPy broadcasting (ranks equalized by unsqueezing)."""
        r = max(len(a.shape), len(b.shape))
        a, b = self.to_rank(a, r), self.to_rank(b, r)
        return self.add(self.net.add_elementwise(a, b, op), suffix).get_output(0)

    def unary(self, x: Any, op: Any, suffix: Optional[str] = None) -> Any:
        return self.add(self.net.add_unary(x, op), suffix).get_output(0)

    def act(self, x: Any, kind: Any, suffix: Optional[str] = None, alpha: Optional[float] = None,
            beta: Optional[float] = None) -> Any:
        layer = self.net.add_activation(x, kind)
        if alpha is not None:
            layer.alpha = alpha
        if beta is not None:
            layer.beta = beta
        return self.add(layer, suffix).get_output(0)

    def cast(self, x: Any, dt: Any, suffix: Optional[str] = "cast") -> Any:
        if x.dtype == dt:
            return x
        return self.add(self.net.add_cast(x, dt), suffix).get_output(0)

    # ---- shapes ------------------------------------------------------------------------------
    def _resolve(self, item: Any, dims: tuple) -> Optional[int]:
        if isinstance(item, int):
            return item
        kind = item[0]
        if kind == "in":
            d = dims[item[1]]
            return None if d < 0 else d
        if kind == "prod":
            ds = dims[item[1]:item[2] + 1]
            return None if any(d < 0 for d in ds) else int(np.prod(ds, dtype=np.int64))
        if kind == "add":
            d = dims[item[1]]
            return None if d < 0 else d + item[2]
        if kind == "mul":
            d = dims[item[1]]
            return None if d < 0 else d * item[2]
        raise ValueError(item)

    def shape_tensor(self, x: Any, spec: Spec, suffix: str = "shape") -> Any:
        """An int64 1-D tensor holding the dims described by ``spec`` (uses a shape layer)."""
        dims = tuple(x.shape)
        shape = None
        parts = []
        for item in spec:
            v = self._resolve(item, dims)
            if v is not None:
                parts.append(self.constant(np.array([v], np.int64), self.trt.int64, f"{suffix}_c"))
                continue
            if shape is None:
                shape = self.add(self.net.add_shape(x), suffix).get_output(0)
            if item[0] in ("in", "add", "mul"):
                idx = self.constant(np.array([item[1]], np.int32), self.trt.int32, f"{suffix}_i")
                d = self.add(self.net.add_gather(shape, idx, 0), f"{suffix}_d").get_output(0)
                if item[0] != "in":
                    k = self.constant(np.array([item[2]], np.int64), self.trt.int64, f"{suffix}_k")
                    E = self.trt.ElementWiseOperation
                    d = self.ew(d, k, E.SUM if item[0] == "add" else E.PROD, f"{suffix}_{item[0]}")
            else:  # prod
                sl = self.add(self.net.add_slice(shape, (item[1],), (item[2] - item[1] + 1,), (1,)),
                              f"{suffix}_s").get_output(0)
                d = self.add(self.net.add_reduce(sl, self.trt.ReduceOperation.PROD, 1, True),
                             f"{suffix}_p").get_output(0)
            parts.append(d)
        if len(parts) == 1:
            return parts[0]
        layer = self.net.add_concatenation(parts)
        layer.axis = 0
        return self.add(layer, suffix + "_cat").get_output(0)

    def static_or_tensor(self, x: Any, spec: Spec, suffix: str) -> tuple[Optional[tuple], Optional[Any]]:
        dims = tuple(x.shape)
        vals = [self._resolve(i, dims) for i in spec]
        if all(v is not None for v in vals):
            return tuple(vals), None  # type: ignore[arg-type]
        return None, self.shape_tensor(x, spec, suffix)

    def reshape(self, x: Any, spec: Spec, suffix: Optional[str] = "reshape") -> Any:
        """Shuffle to the dims in ``spec``: static dims, 0-placeholders and one -1 when possible."""
        dims = tuple(x.shape)
        vals = [self._resolve(i, dims) for i in spec]
        rd: Optional[list] = list(vals)
        if not all(v is not None for v in vals):
            rd = []
            for p, (item, v) in enumerate(zip(spec, vals)):
                if v is not None:
                    rd.append(v)
                elif isinstance(item, tuple) and item[0] == "in" and item[1] == p:
                    rd.append(0)
                else:
                    rd.append(-1)
            if rd.count(-1) > 1 or any(v == 0 for v in vals):
                rd = None
        shape = None if rd is not None else self.shape_tensor(x, spec, (suffix or "reshape") + "_shape")
        layer = self.net.add_shuffle(x)  # created after its shape input: layers stay in topological order
        if shape is None:
            layer.reshape_dims = tuple(rd)
        else:
            layer.set_input(1, shape)
            layer.zero_is_placeholder = False
        return self.add(layer, suffix).get_output(0)

    def shuffle_perm(self, x: Any, perm: Sequence[int], suffix: Optional[str] = None) -> Any:
        layer = self.net.add_shuffle(x)
        layer.first_transpose = tuple(int(p) for p in perm)
        return self.add(layer, suffix).get_output(0)

    def slice(self, x: Any, start: Sequence[int], size_spec: Spec, stride: Sequence[int],
              suffix: Optional[str] = None, mode: Any = None, fill: Optional[Any] = None) -> Any:
        static, size_t = self.static_or_tensor(x, size_spec, (suffix or "slice") + "_size")
        layer = self.net.add_slice(x, tuple(int(s) for s in start), static or (0,) * len(size_spec),
                                   tuple(int(s) for s in stride))
        if size_t is not None:
            layer.set_input(2, size_t)
        if mode is not None:
            layer.mode = mode
        if fill is not None:
            layer.set_input(4, fill)
        return self.add(layer, suffix).get_output(0)


def dims_of(shape: Sequence[Any]) -> tuple:
    """netdsl shape -> TensorRT dims (-1 for symbolic)."""
    return tuple(-1 if isinstance(d, Sym) else int(d) for d in shape)
