"""``netdsl build``: write a deployable artifact (OpenVINO IR, TensorRT plan, ONNX)."""
from __future__ import annotations

import argparse
import time

from .common import (add_engine_args, add_model_args, artifact_backend, backend_options, info, preload_weights,
                     prepare)

COMMAND, ORDER = "build", 30
ARTIFACT_BACKENDS = ("openvino", "tensorrt", "onnx")


def cmd_build(args: argparse.Namespace) -> int:
    from ..backends import get_backend
    args.backend = artifact_backend(args.output, args.backend)
    net = prepare(args)
    opts = backend_options(args, args.backend)
    be = get_backend(args.backend)
    preload_weights(net.graph)
    t0 = time.perf_counter()
    out = be.build(net.graph, args.output, **opts)
    info(args, f"built {args.backend} artifact {out or args.output} in {time.perf_counter() - t0:.2f} s")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(COMMAND, help="write a deployable artifact (OpenVINO IR, TensorRT plan, ONNX)",
                       description="Write the network as an artifact its engine loads: OpenVINO IR "
                                   "(.xml + .bin), a TensorRT plan, or an ONNX model.")
    add_model_args(p, backend=False)
    p.add_argument("--backend", choices=ARTIFACT_BACKENDS,
                   help="openvino (IR .xml/.bin), tensorrt (plan), onnx (.onnx); default: from the -o extension")
    p.add_argument("--output", "-o", required=True, help="artifact path")
    add_engine_args(p, "build")
    p.add_argument("--compress-fp16", dest="compress_fp16", action="store_true",
                   help="OpenVINO IR: store weights as fp16")
    p.set_defaults(fn=cmd_build)
