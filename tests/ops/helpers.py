"""Shared helpers for the independent reference tests: run one op through a tiny Network and the
NumPy reference executor, and compare with an independently computed answer."""
from __future__ import annotations

import zlib
from typing import Any, Callable, Optional, Sequence

import numpy as np
import pytest

from netdsl.backends import reference
from netdsl.compare import assert_close
from netdsl.dsl import Network

try:  # torch is the independent oracle where it has the op; naive algorithms run without it
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed")
DTYPES = ("float64", "float32")


def rnd(rng: np.random.Generator, *shape: int, low: float = -2.0, high: float = 2.0) -> np.ndarray:
    """Uniform float data rounded to float32 (held as float64), never zeros."""
    a = rng.uniform(low, high, size=shape)
    a = np.where(np.abs(a) < 1e-3, 1e-3, a)
    return a.astype(np.float32).astype(np.float64)


def distinct(rng: np.random.Generator, *shape: int, scale: float = 0.25) -> np.ndarray:
    """Well-separated values (a scaled random permutation): no ties for max/argmax/topk."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2 + 0.5) * scale).reshape(shape).astype(np.float64)


def seed(*parts: object) -> int:
    """A deterministic seed from test parameters (str hashes are salted per process)."""
    return zlib.crc32(repr(parts).encode())


def _decl_dtype(a: np.ndarray) -> str:
    return "float32" if a.dtype.kind == "f" else a.dtype.name


def build(op: str, arrays: Sequence[Optional[np.ndarray]], attrs: Optional[dict] = None,
          sym: Sequence[int] = ()) -> Network:
    """A network x0, x1, ... -> op -> y0, y1, ...; inputs listed in ``sym`` get a symbolic batch 'N'."""
    net = Network(f"t_{op}")
    ts = []
    for i, a in enumerate(arrays):
        if a is None:
            ts.append(None)
            continue
        shape: tuple = tuple(a.shape)
        if i in sym:
            shape = ("N",) + shape[1:]
        ts.append(net.input(f"x{i}", shape, _decl_dtype(a)))
    out = net.apply(op, ts, **(attrs or {}))
    outs = out if isinstance(out, tuple) else (out,)
    for j, o in enumerate(outs):
        net.output(o, f"y{j}")
    return net


def run_op(op: str, arrays: Sequence[Optional[np.ndarray]], attrs: Optional[dict] = None,
           dtype: str = "float64", sym: Sequence[int] = ()) -> list[np.ndarray]:
    """Outputs of ``op`` on ``arrays`` through the reference executor (float64 or float32)."""
    net = build(op, arrays, attrs, sym)
    feeds = {f"x{i}": a for i, a in enumerate(arrays) if a is not None}
    res = reference.compile(net.graph, dtype=dtype)(feeds)
    return [res[f"y{j}"] for j in range(len(res))]


def close(got: np.ndarray, want: Any, dtype: str, what: str = "", scale: float = 1.0) -> None:
    """Compare with the independent result: float64 runs to ~1e-9, float32 runs to ~1e-4 (relative)."""
    want = np.asarray(want.detach().numpy() if torch is not None and isinstance(want, torch.Tensor) else want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != expected {want.shape}"
    if want.dtype.kind in "biu":
        assert got.dtype.kind == want.dtype.kind or want.dtype.kind in "iu" and got.dtype.kind in "iu", \
            f"{what}: dtype {got.dtype} vs expected {want.dtype}"
    assert_close(got, want, dtype, scale * (10.0 if dtype == "float64" else 1.0), what=what)


def check(op: str, arrays: Sequence[Optional[np.ndarray]], attrs: Optional[dict], expect: Callable[..., Any],
          sym: Sequence[int] = (), dtypes: Sequence[str] = DTYPES, scale: float = 1.0) -> None:
    """Run ``op`` in every dtype and compare each output with ``expect(*arrays)`` (a value or a list)."""
    want = expect(*arrays)
    wants = list(want) if isinstance(want, (list, tuple)) else [want]
    for dt in dtypes:
        got = run_op(op, arrays, attrs, dt, sym)
        assert len(got) == len(wants), f"{op}: {len(got)} outputs, expected {len(wants)}"
        for j, (g, w) in enumerate(zip(got, wants)):
            close(g, w, dt, f"{op} {attrs} output {j} ({dt})", scale)


def T(a: np.ndarray) -> "torch.Tensor":
    """A float64 (or integer/bool) torch tensor from a NumPy array."""
    return torch.from_numpy(np.ascontiguousarray(a))


def batches(make: Callable[[int], Sequence[Optional[np.ndarray]]], sizes: Sequence[int] = (1, 3)):
    """Input lists for several batch sizes (symbolic-batch tests)."""
    return [make(b) for b in sizes]
