"""What every compiled model offers: dict of NumPy arrays in, dict of NumPy arrays out."""
from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping, Optional

import numpy as np

from ..errors import BackendUnavailable, NetdslError, ShapeError
from ..graph import Graph
from ..shapes import fmt_shape


def import_engine(module: str, needed_for: str, install: str) -> Any:
    """``import module``, or BackendUnavailable saying what needs it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise BackendUnavailable(f"{needed_for} needs the '{module.split('.')[0]}' package: {install}; "
                                 f"import failed: {e}") from None


class CompiledModel:
    """Base class: ``model(data=x)`` or ``model({"data": x})`` returns ``{output name: array}``."""

    backend = "?"

    def __init__(self, graph: Graph):
        self.graph = graph
        self.input_names = [v.name for v in graph.inputs]
        self.output_names = [v.name for v in graph.outputs]
        self.dim_ranges: dict[str, tuple[int, int]] = {}  # symbol -> (lo, hi) the engine was built for

    def __call__(self, inputs: Optional[Mapping[str, Any]] = None, **kw: Any) -> dict:
        feeds = dict(inputs or {}, **kw)
        return self.run(self.check_inputs(feeds))

    def run(self, feeds: dict) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def timed_call(self, feeds: dict) -> Callable[[], Any]:
        """A function of no arguments running one inference on ``feeds`` (checked already), for benchmarks.
        Engines that can keep inputs in place override it, so that a call times the engine alone (as
        OpenVINO's benchmark_app and trtexec do); this default times :meth:`run`. Call it once per thread."""
        return lambda: self.run(feeds)

    def check_inputs(self, feeds: Mapping[str, Any]) -> dict:
        """Validate names, ranks, static dims, consistent symbols, dtypes and index ranges; returns NumPy
        arrays. (Engines differ on out-of-range indices: OpenVINO returns zeros, TensorRT is undefined.)

        The checks that depend on shapes alone run once per distinct set of shapes: feeds that are
        arrays of the inputs' own dtypes with shapes already accepted skip straight to the value checks."""
        ranges = getattr(self, "dim_ranges", None)
        accepted = self.__dict__.get("_accepted")
        if accepted is None or accepted[0] is not ranges:  # rebuilt when dim_ranges is replaced
            accepted = self._accepted = (ranges, set())
        key = self._shape_key(feeds)
        if key is not None and key[0] in accepted[1]:
            out = {n: a if a.flags.c_contiguous else np.ascontiguousarray(a) for n, a in zip(self.input_names, key[1])}
        else:
            out = check_inputs(self.graph, feeds)
            check_dim_ranges(self.graph, out, ranges or {}, self.backend)
            if key is not None:
                if len(accepted[1]) >= 64:
                    accepted[1].clear()
                accepted[1].add(key[0])
        if not hasattr(self, "_index_bounds"):
            self._index_bounds = index_bounds(self.graph)
        for name, (hi, layer) in self._index_bounds.items():
            a = out[name]
            if a.size and (a.min() < -hi or a.max() >= hi):
                raise ShapeError(f"input '{name}': index values must be in [-{hi}, {hi}) for layer '{layer}', "
                                 f"got values in [{a.min()}, {a.max()}]")
        return out

    def _shape_key(self, feeds: Mapping[str, Any]) -> Optional[tuple]:
        """``(shapes, arrays)`` when ``feeds`` holds exactly the inputs as arrays of their own dtypes, else None."""
        dtypes = self.__dict__.get("_dtypes")
        if dtypes is None:
            dtypes = self._dtypes = [(v.name, v.dtype.numpy) for v in self.graph.inputs]
        if len(feeds) != len(dtypes):
            return None
        arrays = []
        for name, dt in dtypes:
            a = feeds.get(name)
            if type(a) is not np.ndarray or a.dtype != dt:
                return None
            arrays.append(a)
        return tuple(a.shape for a in arrays), arrays


def check_inputs(graph: Graph, feeds: Mapping[str, Any]) -> dict:
    missing = [v.name for v in graph.inputs if v.name not in feeds]
    extra = [k for k in feeds if k not in {v.name for v in graph.inputs}]
    if missing or extra:
        raise ShapeError(f"network '{graph.name}': " + "; ".join(
            ([f"missing input(s) {', '.join(missing)}"] if missing else [])
            + ([f"unknown input(s) {', '.join(extra)}"] if extra else []))
            + f" (inputs: {', '.join(v.name for v in graph.inputs)})")
    env: dict[str, int] = {}
    out = {}
    for v in graph.inputs:
        refuse_masked(v.name, feeds[v.name])
        try:
            arr = np.asarray(feeds[v.name])
        except (ValueError, TypeError) as e:  # a ragged list
            raise ShapeError(f"input '{v.name}': not an array ({e})") from None
        if arr.dtype != v.dtype.numpy:
            if arr.dtype.kind in "iu" and v.dtype.numpy.kind in "iu":
                _check_fits(v.name, arr, v.dtype.numpy)  # before the cast: 2**32 + 3 must not become 3
                arr = arr.astype(v.dtype.numpy)
            elif arr.dtype.kind == v.dtype.numpy.kind:
                arr = arr.astype(v.dtype.numpy)
            else:
                raise ShapeError(f"input '{v.name}': expected {v.dtype}, got {arr.dtype}")
        if arr.ndim != len(v.shape):
            raise ShapeError(f"input '{v.name}': expected shape {fmt_shape(v.shape)}, got {fmt_shape(arr.shape)}")
        for d, a in zip(v.shape, arr.shape):
            if isinstance(d, int):
                if d != a:
                    raise ShapeError(f"input '{v.name}': expected shape {fmt_shape(v.shape)}, got {fmt_shape(arr.shape)}")
            elif len(d.terms) == 1 and d.terms[0][1] == 1 and d.coeff == 1:
                s = d.terms[0][0]
                if env.setdefault(s, a) != a:
                    raise ShapeError(f"input '{v.name}': dim {s}={a} but another input has {s}={env[s]}")
        out[v.name] = arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)  # keeps 0-d arrays 0-d
    return out


def refuse_masked(name: str, value: Any) -> None:
    """A ShapeError for a NumPy masked array: every engine would run its raw data, the mask ignored."""
    if isinstance(value, np.ma.MaskedArray):
        raise ShapeError(f"input '{name}' is a numpy masked array: netdsl ignores masks and would run its raw data, "
                         "masked elements included; pass x.filled(value) (the value masked elements stand for)")


def _check_fits(name: str, arr: np.ndarray, target: np.dtype) -> None:
    """Refuse integer values the input's dtype cannot hold (a cast would wrap them)."""
    info = np.iinfo(target)
    if arr.size and (arr.min() < info.min or arr.max() > info.max):
        raise ShapeError(f"input '{name}': values in [{arr.min()}, {arr.max()}] do not fit its dtype {target} "
                         f"([{info.min}, {info.max}]): refused rather than wrapped by a cast")


def dim_ranges(dynamic: Optional[Mapping[str, Any]]) -> dict:
    """``{sym: (lo, hi)}`` from compile options ``dynamic={"N": (1, 16)}`` / ``{"N": 8}`` /
    ``{"N": (min, opt, max)}`` (a negative upper bound means unbounded)."""
    out = {}
    for k, v in (dynamic or {}).items():
        lo, hi = (v, v) if isinstance(v, (int, np.integer)) else (v[0], v[-1])
        out[k] = (int(lo), int(hi) if int(hi) >= 0 else 2 ** 62)
    return out


def check_dynamic(graph: Graph, dynamic: Optional[Mapping[str, Any]]) -> None:
    """A NetdslError unless ``dynamic`` maps symbolic dims of ``graph`` to an int >= 0 (the dim fixed)
    or a (LO, HI) pair of ints with 0 <= LO <= HI (HI < 0: unbounded), as OpenVINO takes them."""
    for k, v in (dynamic or {}).items():
        if k not in graph.symbols:
            have = ", ".join(graph.symbols) or "none"
            raise NetdslError(f"dynamic names {k}, not a symbolic dim of network '{graph.name}' (its symbols: {have})")
        ints = list(v) if isinstance(v, (tuple, list)) else [v]
        if not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in ints) or len(ints) not in (1, 2):
            ok = False
        else:
            lo, hi = int(ints[0]), int(ints[-1])
            ok = lo >= 0 and (hi >= lo or (len(ints) == 2 and hi < 0))
        if not ok:
            raise NetdslError(f"dynamic['{k}'] = {v!r}: give an int >= 0 (the dim fixed) or a pair (LO, HI) of ints "
                              f"with 0 <= LO <= HI (HI = -1: unbounded)")


def check_dim_ranges(graph: Graph, feeds: Mapping[str, np.ndarray], ranges: Mapping[str, tuple], backend: str) -> None:
    """A ShapeError when a fed symbolic dim lies outside the range the engine was built for."""
    if not ranges:
        return
    for v in graph.inputs:
        for i, d in enumerate(v.shape):
            if isinstance(d, int) or not (len(d.terms) == 1 and d.terms[0][1] == 1 and d.coeff == 1):
                continue
            s = d.terms[0][0]
            if s in ranges:
                lo, hi = ranges[s]
                a = feeds[v.name].shape[i]
                if not lo <= a <= hi:
                    span = f"{lo}" if lo == hi else f"{lo}..{hi}" if hi < 2 ** 62 else f">= {lo}"
                    raise ShapeError(f"input '{v.name}': dim {s}={a} is outside the range {span} this {backend} "
                                     f"model was compiled for (dynamic={{'{s}': ...}}, --dynamic on the command "
                                     f"line); compile with a range that includes {a}")


def layer_context(graph: Graph, message: str) -> str:
    """`` [layer 'NAME' (op) at file:line]`` for the layer an engine's error message names (engines name
    nodes after netdsl's layers), or "" when it names none."""
    text = str(message)
    for n in sorted(graph.nodes, key=lambda n: -len(n.name)):  # longest first: 'conv1_1' before 'conv1'
        if n.op in ("parameter", "constant"):
            continue
        if any(f"{q}{n.name}{e}" in text for q, e in (("'", "'"), ('"', '"'), ("(", ")"), ("[", "]"))):
            return f" [layer '{n.name}' ({n.op}) at {n.location or '?'}]"
    return ""


def index_bounds(graph: Graph) -> dict:
    """Inputs read directly as indices by embedding/gather: {input name: (size of the indexed dim, layer)}."""
    inputs = {id(v): v.name for v in graph.inputs}
    out: dict = {}
    for n in graph.nodes:
        if n.op == "embedding":
            idx, dim = n.inputs[0], n.inputs[1].shape[0]
        elif n.op == "gather":
            idx, dim = n.inputs[1], n.inputs[0].shape[n.attrs["axis"] % n.inputs[0].rank]
        else:
            continue
        if id(idx) in inputs and isinstance(dim, int):
            name = inputs[id(idx)]
            out[name] = min(out.get(name, (dim, n.name)), (dim, n.name))
    return out
