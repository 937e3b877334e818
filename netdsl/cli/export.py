"""``netdsl export``: write a model repository for Triton Inference Server or OpenVINO Model Server."""
from __future__ import annotations

import argparse

from ..errors import NetdslError
from .common import add_model_args, parse_dynamic, parse_layer_precision, prepare

COMMAND, ORDER = "export", 35
TRITON_BACKENDS = ("openvino", "tensorrt", "onnx")


def _params(items: list) -> dict:
    out = {}
    for it in items or []:
        k, sep, v = it.partition("=")
        if not k or not sep:
            raise NetdslError(f"--param expects KEY=VALUE, got {it!r}")
        out[k] = v
    return out


def build_options(args: argparse.Namespace, backend: str) -> dict:
    """The artifact build options given on the command line (precision, dynamic ranges, workspace)."""
    opts: dict = {}
    if args.precision:
        opts["precision"] = args.precision
    if args.dynamic:
        opts["dynamic"] = parse_dynamic(args.dynamic, backend)
    if args.workspace is not None:
        if backend != "tensorrt":
            raise NetdslError("--workspace applies to --backend tensorrt only")
        opts["workspace"] = int(args.workspace) << 20
    if args.compress_fp16:
        if backend != "openvino":
            raise NetdslError("--compress-fp16 applies to OpenVINO IR only")
        opts["compress_to_fp16"] = True
    if args.layer_precision:
        if backend == "onnx":
            raise NetdslError("--layer-precision: the ONNX model keeps the network's own types")
        opts["layer_precision"] = parse_layer_precision(args.layer_precision)
    if backend == "onnx" and "precision" in opts:
        raise NetdslError("--precision: the ONNX model keeps the network's own types")
    return opts


def cmd_export(args: argparse.Namespace) -> int:
    from ..serving import export_ovms, export_triton
    if bool(args.triton) == bool(args.ovms):
        raise NetdslError("give one of --triton REPO or --ovms REPO")
    net = prepare(args)
    if args.ovms:
        if args.backend not in (None, "openvino"):
            raise NetdslError("--ovms writes OpenVINO IR: --backend openvino (or leave it out)")
        for flag, val in (("--max-batch-size", args.max_batch_size), ("--dynamic-batching", args.dynamic_batching),
                          ("--instances", args.instances), ("--kind", args.kind), ("--param", args.param)):
            if val not in (None, False, []):
                raise NetdslError(f"{flag} is a Triton option (OVMS takes --plugin-config)")
        plugin = _params(args.plugin_config)
        m = export_ovms(net, args.ovms, name=args.name, version=args.version, target_device=args.device or "CPU",
                        plugin_config=plugin or None, **build_options(args, "openvino"))
        print(f"wrote {m}: {', '.join(m.files)}")
    else:
        backend = args.backend or "openvino"
        if args.plugin_config:
            raise NetdslError("--plugin-config is an OVMS option (Triton takes --param KEY=VALUE)")
        m = export_triton(net, args.triton, backend=backend, name=args.name, version=args.version,
                          max_batch_size=args.max_batch_size, dynamic_batching=args.dynamic_batching,
                          instances=args.instances, kind=args.kind, parameters=_params(args.param),
                          **build_options(args, backend))
        print(f"wrote {m}: {', '.join(m.files)}")
    print(f"start the server: {m.command}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(COMMAND, help="write a Triton or OpenVINO Model Server model repository",
                       description="Write REPO/<name>/<version>/ with the artifact and the server's configuration: "
                                   "Triton's config.pbtxt (TensorRT plan, OpenVINO IR or ONNX model) or OVMS's "
                                   "config.json (OpenVINO IR).")
    add_model_args(p, backend=False)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--triton", metavar="REPO", help="Triton model repository to write into")
    where.add_argument("--ovms", metavar="REPO", help="OpenVINO Model Server repository to write into")
    p.add_argument("--backend", choices=TRITON_BACKENDS,
                   help="Triton: openvino (IR, default), tensorrt (plan) or onnx; OVMS: openvino")
    p.add_argument("--name", help="model name (default: the network's name)")
    p.add_argument("--version", default="1", help="model version folder (a positive integer; default 1)")
    p.add_argument("--precision", help="artifact precision (OpenVINO IR: f32 | f16; TensorRT: f32 | f16 | bf16)")
    p.add_argument("--dynamic", action="append", metavar="SYM=LO:HI",
                   help="range of a symbolic dim (TensorRT profile MIN:OPT:MAX; OpenVINO LO:HI)")
    p.add_argument("--layer-precision", dest="layer_precision", action="append", metavar="PATTERN=TYPE",
                   help="keep layers whose name matches PATTERN (fnmatch) in TYPE (e.g. '*layer_norm*=float32') "
                        "under a reduced precision; repeatable")
    p.add_argument("--workspace", type=int, metavar="MB", help="TensorRT builder workspace limit in MiB")
    p.add_argument("--compress-fp16", dest="compress_fp16", action="store_true", help="OpenVINO IR: fp16 weights")
    p.add_argument("--max-batch-size", dest="max_batch_size", type=int,
                   help="Triton max_batch_size (default: what the artifact takes; 0: no batching)")
    p.add_argument("--dynamic-batching", dest="dynamic_batching", action="store_true",
                   help="Triton: enable the dynamic batcher")
    p.add_argument("--instances", type=int, help="Triton: model instances (instance_group count)")
    p.add_argument("--kind", choices=("gpu", "cpu", "auto", "model"), help="Triton: instance kind")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="Triton: a backend parameter")
    p.add_argument("--device", help="OVMS target_device (default CPU)")
    p.add_argument("--plugin-config", dest="plugin_config", action="append", metavar="KEY=VALUE",
                   help="OVMS: an OpenVINO property (e.g. PERFORMANCE_HINT=LATENCY)")
    p.set_defaults(fn=cmd_export)
