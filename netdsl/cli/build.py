"""``netdsl build``: write a deployable artifact (OpenVINO IR, TensorRT plan, ONNX)."""
from __future__ import annotations

import argparse
import time

from ..errors import NetdslError
from .common import add_model_args, backend_options, prepare

COMMAND, ORDER = "build", 30


def cmd_build(args: argparse.Namespace) -> int:
    from ..backends import get_backend
    net = prepare(args)
    be = get_backend(args.backend)
    if not hasattr(be, "build"):
        raise NetdslError(f"backend {args.backend!r} has no build artifact (try openvino, tensorrt or onnx)")
    t0 = time.perf_counter()
    out = be.build(net.graph, args.output, **backend_options(args, args.backend))
    print(f"built {args.backend} artifact {out or args.output} in {time.perf_counter() - t0:.2f} s")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(COMMAND, help="write a deployable artifact (OpenVINO IR, TensorRT plan, ONNX)")
    add_model_args(p)
    p.add_argument("--backend", required=True)
    p.add_argument("--output", "-o", required=True)
    p.add_argument("--compress-fp16", dest="compress_fp16", action="store_true",
                   help="OpenVINO IR: store weights as fp16")
    p.set_defaults(fn=cmd_build)
