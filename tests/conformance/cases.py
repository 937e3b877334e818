"""THE conformance table: every catalogue op, as small networks with fresh random inputs.

Each backend's test (tests/conformance/test_<backend>.py) runs every case here against the float64
reference. A case covers one op (``op``); several cases may cover the same op (shapes, attributes,
symbolic batch). ``feeds`` make fresh random inputs (never zeros) per call; cases with a symbolic
batch list several batch sizes in ``batches``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np

from netdsl.dsl import Network


@dataclass
class Case:
    op: str                                  # the catalogue op this case covers
    name: str                                # unique id (pytest id)
    build: Callable[[], Network]             # a network with inputs, outputs, weights bound
    feeds: Callable[[np.random.Generator, int], dict]  # (rng, batch) -> inputs
    batches: Sequence[int] = (2,)            # batch sizes to run (symbolic batch: several)
    tol: float = 1.0                         # tolerance multiplier for hard ops
    skip: dict = field(default_factory=dict)  # backend -> reason (documented limitation)

    @property
    def id(self) -> str:
        return self.name


def rand(rng: np.random.Generator, shape: Sequence[int], dtype: str = "float32", low: float = -2.0,
         high: float = 2.0) -> np.ndarray:
    """Uniform random data (never all zeros); ints in [low, high)."""
    if np.dtype(dtype).kind in "iu":
        return rng.integers(int(low), int(high), size=shape).astype(dtype)
    if np.dtype(dtype) == bool:
        return rng.random(shape) < 0.5
    return rng.uniform(low, high, size=shape).astype(dtype)


def _sub(shape: Sequence[Any], batch: int) -> tuple:
    return tuple(batch if isinstance(d, str) else d for d in shape)


def case(op: str, name: str, fn: Callable[..., Any], inputs: Sequence[tuple], batches: Sequence[int] = (2,),
         tol: float = 1.0, skip: Optional[dict] = None) -> Case:
    """A case whose network applies ``fn(net, *inputs)``; ``inputs`` are (shape, dtype, gen(rng, shape)).

    Symbolic dims are strings ('N'); each takes the batch size. ``fn`` may declare parameters
    itself (``net.parameter(...)``): they are bound to seeded random data.
    """
    def build() -> Network:
        net = Network(name)
        xs = [net.input(f"x{i}", s, dt) for i, (s, dt, _) in enumerate(inputs)]
        out = fn(net, *xs)
        outs = out if isinstance(out, tuple) else (out,)
        for i, o in enumerate(outs):
            net.output(o, f"y{i}")
        net.init_random(seed=7)
        return net

    def feeds(rng: np.random.Generator, batch: int) -> dict:
        return {f"x{i}": gen(rng, _sub(s, batch)) for i, (s, _, gen) in enumerate(inputs)}

    return Case(op, name, build, feeds, tuple(batches), tol, dict(skip or {}))


def simple(op: str, name: str, fn: Callable[..., Any], shapes: Sequence[Sequence[Any]],
           dtypes: Optional[Sequence[str]] = None, low: float = -2.0, high: float = 2.0,
           batches: Sequence[int] = (2,), params: Optional[dict] = None, tol: float = 1.0,
           ranges: Optional[Sequence[tuple]] = None, skip: Optional[dict] = None) -> Case:
    """A case whose network applies ``fn(net, *inputs, *params)`` to inputs x0, x1, ...

    ``params`` maps parameter name -> shape (bound to seeded random data); ``ranges`` gives
    (low, high) per input.
    """
    dtypes = list(dtypes or ["float32"] * len(shapes))
    ranges = list(ranges or [(low, high)] * len(shapes))
    inputs = [(s, dt, (lambda dt, lo, hi: lambda rng, shape: rand(rng, shape, dt, lo, hi))(dt, lo, hi))
              for s, dt, (lo, hi) in zip(shapes, dtypes, ranges)]

    def with_params(net: Network, *xs: Any) -> Any:
        return fn(net, *xs, *[net.parameter(k, v) for k, v in (params or {}).items()])

    return case(op, name, with_params, inputs, batches, tol, skip)


CASES: list[Case] = []


def add(*cases: Case) -> None:
    CASES.extend(cases)


# ---- the table ------------------------------------------------------------------------------
# Filled per category in cases_*.py modules, imported below so that CASES is complete.
from . import cases_all  # noqa: E402,F401
