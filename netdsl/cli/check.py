"""``netdsl check``: compare backends with the float64 reference on the same inputs."""
from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from ..errors import BackendUnavailable, NetdslError
from .common import (EXIT_ENGINE, EXIT_MISMATCH, EXIT_OK, add_backend_arg, add_json_arg, add_model_args,
                     add_tol_arg, backend_options, check_engine_options, emit_json, inputs_from_args,
                     preload_weights, prepare, wants_json)

COMMAND, ORDER = "check", 40


def cmd_check(args: argparse.Namespace) -> int:
    from ..backends import get_backend, reference
    from ..compare import errors
    from ..layerwise import tolerance_limit
    net = prepare(args)
    check_engine_options(args, args.backends)
    graph = net.graph
    feeds = inputs_from_args(args, graph)
    preload_weights(net.graph)
    ref = reference.run(graph, feeds, dtype="float64")
    limit = tolerance_limit(args.precision, args.tol)
    result: dict = {"network": graph.name, "limit": limit, "backends": {}}
    mismatch = unavailable = False
    for name in args.backends:
        entry: dict = {"status": "ok", "outputs": {}}
        result["backends"][name] = entry
        try:
            be = get_backend(name)
            if name == "reference":
                outs, proof = reference.compile(graph, dtype="float32")(feeds), None
            else:
                outs, proof = backend_outputs(be, graph, feeds, args)
        except BackendUnavailable as e:
            entry.update(status="unavailable", error=str(e))
            unavailable = True
            continue
        except NetdslError as e:
            entry.update(status="failed", error=str(e))
            mismatch = True
            continue
        if proof:
            entry["proof"] = proof
        if outs is None:
            continue
        for k, r in ref.items():
            mx, rel = errors(np.asarray(outs[k]), r)
            good = rel <= limit if np.asarray(r).dtype.kind == "f" else mx == 0
            entry["outputs"][k] = {"max_abs": mx, "max_rel": rel, "ok": bool(good)}
            if not good:
                entry["status"] = "mismatch"
                mismatch = True
    result["ok"] = not mismatch and not unavailable
    code = EXIT_MISMATCH if mismatch else EXIT_ENGINE if unavailable else EXIT_OK
    result["exit_code"] = code
    if wants_json(args):
        emit_json(result)
    else:
        print_check(result)
    return code


def print_check(result: dict) -> None:
    for name, e in result["backends"].items():
        print(f"== {name}")
        if e["status"] in ("failed", "unavailable"):
            print(f"   {'FAILED' if e['status'] == 'failed' else 'UNAVAILABLE'}: {e['error']}")
            continue
        for line in e.get("proof") or []:
            print(f"   {line}")
        for k, o in e["outputs"].items():
            print(f"   {k}: max abs err {o['max_abs']:.3e}, max rel err {o['max_rel']:.3e} "
                  f"(limit {result['limit']:.1e}) {'ok' if o['ok'] else 'MISMATCH'}")
    if result["ok"]:
        print("check: all backends agree with the reference")
    elif result["exit_code"] == EXIT_MISMATCH:
        print("check: MISMATCH")
    else:
        print("check: no mismatch, but some engines are unavailable here")


def backend_outputs(be: Any, graph: Any, feeds: dict, args: argparse.Namespace) -> tuple:
    """Run on the backend; where it cannot execute here it may offer check() (a proof report)."""
    opts = backend_options(args, be.__name__.rsplit(".", 1)[-1], strict=False)
    can_run = getattr(be, "can_execute", lambda: (True, ""))
    runnable, why = can_run()
    if runnable:
        try:
            return be.compile(graph, **opts)(feeds), None
        except BackendUnavailable as e:  # e.g. TensorRT without a GPU: fall back to its proof, if any
            if not hasattr(be, "check"):
                raise
            runnable, why = False, str(e).split(". ")[0]
    if hasattr(be, "check"):
        report = be.check(graph, feeds, **opts)
        text = list(report.lines()) if hasattr(report, "lines") else str(report).splitlines()
        lines = [f"cannot execute here ({why}); ran the CPU proof instead:"] + text
        if not report.ok:
            raise NetdslError("\n".join(lines))
        outs = getattr(report, "outputs", None)
        if outs and all(isinstance(v, np.ndarray) for v in outs.values()):
            return outs, lines
        return None, lines  # the proof compared the outputs itself (its lines say how)
    return be.compile(graph, **opts)(feeds), None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(COMMAND, help="compare backends with the float64 reference on the same inputs",
                       description="Run the network on each backend and compare its outputs with the float64 "
                                   "NumPy reference on the same inputs (TensorRT without a usable GPU: the "
                                   "CPU proof). Exit code 1 on a mismatch. 'netdsl compare' finds the "
                                   "first layer that diverges.")
    add_model_args(p)
    add_backend_arg(p, default="reference,openvino", multiple=True)
    add_tol_arg(p)
    add_json_arg(p)
    p.set_defaults(fn=cmd_check)
