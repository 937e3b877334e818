"""``netdsl run``: run the network once on a backend and print (or save) its outputs."""
from __future__ import annotations

import argparse
import time

import numpy as np

from .common import add_model_args, backend_options, parse_dims, prepare, read_inputs

COMMAND, ORDER = "run", 20


def cmd_run(args: argparse.Namespace) -> int:
    from ..backends import get_backend
    net = prepare(args)
    feeds = read_inputs(net.graph, args.input, args.seed, parse_dims(args.dim))
    t0 = time.perf_counter()
    model = get_backend(args.backend).compile(net.graph, **backend_options(args, args.backend))
    t1 = time.perf_counter()
    outs = model(feeds)
    t2 = time.perf_counter()
    print(f"backend {args.backend}: compiled in {t1 - t0:.3f} s, ran in {(t2 - t1) * 1e3:.2f} ms")
    for k, v in outs.items():
        v = np.asarray(v)
        flat = v.reshape(-1)
        preview = np.array2string(flat[:10], precision=5, separator=", ")
        extra = f", sum {float(v.sum()):.6g}" if v.dtype.kind == "f" else ""
        print(f"{k}: {v.dtype} {v.shape}{extra}\n  {preview}{' ...' if flat.size > 10 else ''}")
    if args.output:
        np.savez(args.output, **outs)
        print(f"wrote {args.output}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(COMMAND, help="run the network on a backend")
    add_model_args(p)
    p.add_argument("--backend", default="reference")
    p.add_argument("--output", "-o", help="write outputs to an .npz file")
    p.set_defaults(fn=cmd_run)
