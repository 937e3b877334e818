"""``netdsl check``: compare backends with the float64 reference on the same inputs."""
from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from ..errors import BackendUnavailable, NetdslError
from .common import add_model_args, backend_options, parse_dims, prepare, read_inputs

COMMAND, ORDER = "check", 40


def cmd_check(args: argparse.Namespace) -> int:
    from ..backends import get_backend, reference
    from ..compare import TOLERANCES, errors
    net = prepare(args)
    graph = net.graph
    feeds = read_inputs(graph, args.input, args.seed, parse_dims(args.dim))
    ref = reference.run(graph, feeds, dtype="float64")
    ok = True
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for name in backends:
        prec = args.precision or "f32"
        pkey = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}.get(prec, "float32")
        rtol, atol = TOLERANCES[pkey]
        limit = (rtol + atol) * (args.tol if args.tol is not None else (10.0 if pkey == "float32" else 1.0))
        print(f"== {name}")
        try:
            be = get_backend(name)
            if name == "reference":
                outs = reference.compile(graph, dtype="float32")(feeds)
                proof = None
            else:
                outs, proof = backend_outputs(be, graph, feeds, args)
        except NetdslError as e:
            print(f"   FAILED: {e}")
            ok = False
            continue
        if proof:
            for line in proof:
                print(f"   {line}")
        if outs is None:
            continue
        for k, r in ref.items():
            mx, rel = errors(np.asarray(outs[k]), r)
            good = rel <= limit if np.asarray(r).dtype.kind == "f" else mx == 0
            ok &= bool(good)
            print(f"   {k}: max abs err {mx:.3e}, max rel err {rel:.3e} (limit {limit:.1e}) "
                  f"{'ok' if good else 'MISMATCH'}")
    print("check: " + ("all backends agree with the reference" if ok else "MISMATCH"))
    return 0 if ok else 1


def backend_outputs(be: Any, graph: Any, feeds: dict, args: argparse.Namespace) -> tuple:
    """Run on the backend; where it cannot execute here it may offer check() (a proof report)."""
    opts = backend_options(args, be.__name__.rsplit(".", 1)[-1])
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
    p = sub.add_parser(COMMAND, help="compare backends with the float64 reference on the same inputs")
    add_model_args(p)
    p.add_argument("--backends", default="reference,openvino")
    p.add_argument("--tol", type=float, default=None,
                   help="tolerance multiplier of the precision's tolerance (default: 10 for f32, 1 for f16/bf16)")
    p.set_defaults(fn=cmd_check)
