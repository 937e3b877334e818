"""``netdsl bench``: latency percentiles and throughput of a network on a backend (like trtexec/benchmark_app)."""
from __future__ import annotations

import argparse
import time
from typing import Any

from ..errors import NetdslError
from .common import (add_backend_arg, add_json_arg, add_model_args, backend_options, emit_json, info,
                     inputs_from_args, log_engine, nonneg_int, parse_dims, positive_float, positive_int,
                     preload_weights, prepare, wants_json)

COMMAND, ORDER = "bench", 25


def batch_symbol(graph: Any) -> Any:
    """The symbol of the inputs' first dim (the batch), None when it is fixed; a usage error when the
    inputs disagree."""
    from ..shapes import Sym
    firsts = {v.shape[0] for v in graph.inputs if v.shape}
    syms = {d for d in firsts if isinstance(d, Sym) and len(d.symbols) == 1 and d.terms[0][1] == 1 and d.coeff == 1}
    if len(syms) > 1:
        raise NetdslError(f"--batch: the inputs of '{graph.name}' have different first dims "
                          f"({', '.join(map(str, syms))}); set each with --dim")
    return next(iter(syms)).symbols[0] if syms else None


def bench_dims(args: argparse.Namespace, graph: Any) -> tuple[dict, int]:
    """{symbol: value} the benchmark runs with (``--dim``, ``--batch``, else 1) and the batch size."""
    dims = parse_dims(args.dim)
    sym = batch_symbol(graph)
    if args.batch is not None:
        if sym is None:
            fixed = graph.inputs[0].shape[0] if graph.inputs and graph.inputs[0].shape else None
            if fixed != args.batch:
                raise NetdslError(f"--batch {args.batch}: network '{graph.name}' has a fixed batch of {fixed}")
        elif sym in dims and dims[sym] != args.batch:
            raise NetdslError(f"--batch {args.batch} contradicts --dim {sym}={dims[sym]}")
        elif sym is not None:
            dims[sym] = args.batch
    for s in graph.symbols:
        dims.setdefault(s, 1)
    if sym is not None:
        batch = dims[sym]
    else:
        first = graph.inputs[0].shape[0] if graph.inputs and graph.inputs[0].shape else 1
        batch = first if isinstance(first, int) else 1
    return dims, batch


def cmd_bench(args: argparse.Namespace) -> int:
    from ..backends import get_backend
    from ..bench import benchmark
    if args.iterations is not None and args.time is not None:
        raise NetdslError("--iterations and --time both say when to stop: give one of them")
    net = prepare(args)
    graph = net.graph
    dims, batch = bench_dims(args, graph)
    args.dim = [f"{k}={v}" for k, v in dims.items()]
    opts = backend_options(args, args.backend)
    static = []
    if args.backend in ("openvino", "tensorrt"):  # symbols without a --dynamic range: a static engine
        given = opts.setdefault("dynamic", {})
        for s in graph.symbols:
            if s not in given:
                given[s] = dims[s] if args.backend == "openvino" else (dims[s],) * 3
                static.append(f"{s}={dims[s]}")
    feeds = inputs_from_args(args, graph)
    preload_weights(graph)
    t0 = time.perf_counter()
    model = get_backend(args.backend).compile(graph, **opts)
    compile_s = time.perf_counter() - t0
    log_engine(model)
    requests = args.requests
    if requests == 0:  # auto: what the engine suggests
        requests = int(model.optimal_requests()) if hasattr(model, "optimal_requests") else 1
    if static:
        info(args, f"note: engine built for fixed {', '.join(static)} (use --dynamic to benchmark a dynamic one)")
    result = benchmark(model, feeds, warmup=args.warmup, iterations=args.iterations,
                       duration=args.time or (None if args.iterations else 10.0), requests=requests, batch=batch,
                       end_to_end=args.end_to_end, show_progress=not args.quiet)
    result.compile_s = compile_s
    if wants_json(args):
        emit_json(result.to_dict())
    else:
        print(result)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(COMMAND, help="latency percentiles and throughput on a backend (like trtexec, benchmark_app)",
                       description="Compile the network, time the first call, run warm-up calls, then call it "
                                   "in a loop (for --iterations calls or --time seconds) from --requests "
                                   "threads at once. Reports latency min/mean/median/p90/p99/max and "
                                   "throughput in samples/s (calls x batch per second). Symbolic dims are "
                                   "fixed to their --dim/--batch values (default 1) unless --dynamic gives a "
                                   "range. TensorRT needs a GPU it supports: without one the command exits "
                                   "with code 3 and the reason.")
    add_model_args(p)
    add_backend_arg(p, default="openvino")
    p.add_argument("--batch", "-b", type=positive_int, help="batch size: the value of the inputs' first symbolic dim")
    p.add_argument("--iterations", "-n", type=positive_int, help="timed calls (default: run for --time seconds)")
    p.add_argument("--time", "-t", type=positive_float, help="seconds to run (default 10; not with --iterations)")
    p.add_argument("--warmup", type=positive_int, default=3, help="untimed calls before timing, the first included "
                                                          "(its time is reported apart; default 3)")
    p.add_argument("--requests", type=nonneg_int, default=1,
                   help="parallel requests (threads calling at once; 0: the engine's optimal number; default 1)")
    p.add_argument("--end-to-end", dest="end_to_end", action="store_true",
                   help="time model(inputs) calls: netdsl's input checks and copies in and out included (default: "
                        "the engine call alone, inputs set in place where the engine allows, like benchmark_app)")
    add_json_arg(p)
    p.set_defaults(fn=cmd_bench)
