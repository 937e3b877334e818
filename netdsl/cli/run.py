"""``netdsl run``: run the network on a backend, print (or save) its outputs, time first and later calls."""
from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from .common import (add_backend_arg, add_model_args, backend_options, info, inputs_from_args, log_engine,
                     nonneg_int, preload_weights, prepare)

COMMAND, ORDER = "run", 20


def steady_calls(model: Any, feeds: dict, repeat: int, budget_s: float = 1.0) -> list:
    """Seconds of up to ``repeat`` further calls (at least one), stopping once ``budget_s`` is spent."""
    times: list = []
    start = time.perf_counter()
    while len(times) < max(repeat, 1) and (not times or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        model(feeds)
        times.append(time.perf_counter() - t0)
    return times


def cmd_run(args: argparse.Namespace) -> int:
    from ..backends import get_backend
    net = prepare(args)
    opts = backend_options(args, args.backend)
    feeds = inputs_from_args(args, net.graph)
    preload_weights(net.graph)
    t0 = time.perf_counter()
    model = get_backend(args.backend).compile(net.graph, **opts)
    t1 = time.perf_counter()
    log_engine(model)
    outs = model(feeds)
    t2 = time.perf_counter()
    line = f"backend {args.backend}: compiled in {t1 - t0:.3f} s; first call {(t2 - t1) * 1e3:.2f} ms"
    if args.precision and getattr(model, "effective_precision", ""):
        line += f"; computes in {model.effective_precision}"
    if args.repeat:
        times = steady_calls(model, feeds, args.repeat)
        line += (f"; steady state {np.median(times) * 1e3:.2f} ms (median of {len(times)} further call"
                 f"{'s' if len(times) > 1 else ''}; 'netdsl bench' measures properly)")
    info(args, line)
    for k, v in outs.items():
        v = np.asarray(v)
        flat = v.reshape(-1)
        preview = np.array2string(flat[:10], precision=5, separator=", ")
        extra = f", sum {float(v.sum()):.6g}" if v.dtype.kind == "f" else ""
        print(f"{k}: {v.dtype} {v.shape}{extra}\n  {preview}{' ...' if flat.size > 10 else ''}")
    if args.output:
        np.savez(args.output, **outs)
        info(args, f"wrote {args.output}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(COMMAND, help="run the network on a backend",
                       description="Run the network once on a backend and print its outputs; then time a few "
                                   "more calls so that the first call (warm-up) and the steady state are "
                                   "reported apart.")
    add_model_args(p)
    add_backend_arg(p, default="reference")
    p.add_argument("--output", "-o", help="write outputs to an .npz file")
    p.add_argument("--repeat", type=nonneg_int, default=5, metavar="N",
                   help="time up to N further calls (within about 1 s) after the first; 0: none (default 5)")
    p.set_defaults(fn=cmd_run)
