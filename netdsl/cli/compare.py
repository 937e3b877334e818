"""``netdsl compare``: every layer on each backend against the float64 reference; the first that diverges."""
from __future__ import annotations

import argparse

from .common import (EXIT_ENGINE, EXIT_MISMATCH, EXIT_OK, add_backend_arg, add_json_arg, add_model_args,
                     add_tol_arg, backend_options, check_engine_options, emit_json, inputs_from_args,
                     preload_weights, prepare, wants_json)

COMMAND, ORDER = "compare", 45


def cmd_compare(args: argparse.Namespace) -> int:
    from ..layerwise import compare_layers
    net = prepare(args)
    check_engine_options(args, args.backends)
    feeds = inputs_from_args(args, net.graph)
    preload_weights(net.graph)
    options = {b: backend_options(args, b, strict=False) for b in args.backends}
    precision = next((o["precision"] for o in options.values() if "precision" in o), args.precision or "f32")
    result = compare_layers(net, args.backends, feeds, precision=precision, tol=args.tol, options=options)
    diverged = any(b.error and not b.unavailable or b.first_divergence is not None for b in result.backends.values())
    unavailable = any(b.unavailable for b in result.backends.values())
    code = EXIT_MISMATCH if diverged else EXIT_ENGINE if unavailable else EXIT_OK
    if wants_json(args):
        emit_json(dict(result.to_dict(), exit_code=code))
        return code
    print(result)
    if args.all:
        for name, b in result.backends.items():
            if b.error:
                continue
            print(f"-- every tensor on {name}")
            for d in b.layers:
                mark = "skip" if d.note else "ok" if d.ok else "DIFF"
                print(f"   {mark:<4} {d.tensor:<32} {d.op:<14} {d.location:<24} {d.describe(result.limit)}")
    print("compare: " + ("every layer agrees with the reference" if result.ok else
                         "DIVERGED" if diverged else "no divergence, but some engines are unavailable here"))
    return code


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(COMMAND, help="compare every layer on backends with the float64 reference",
                       description="Mark every intermediate tensor as an output on each backend (OpenVINO, "
                                   "ONNX Runtime; TensorRT: the network read back and evaluated in NumPy), "
                                   "compare each with the float64 reference in graph order, and report the "
                                   "first layer that diverges with its file:line and error statistics. "
                                   "Exit code 1 when a layer diverges.")
    add_model_args(p)
    add_backend_arg(p, default="openvino", multiple=True)
    add_tol_arg(p)
    p.add_argument("--all", action="store_true", help="also list every compared tensor")
    add_json_arg(p)
    p.set_defaults(fn=cmd_compare)
