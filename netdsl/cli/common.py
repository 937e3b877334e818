"""Shared pieces of the command line: loading MODEL.py, inputs, dims and backend options."""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import NetdslError


def load_model(spec: str) -> Any:
    """Import MODEL.py and call FUNC (default ``network``); returns the Network."""
    path, _, func = spec.partition(":")
    func = func or "network"
    if not os.path.isfile(path):
        raise NetdslError(f"model file not found: {path}")
    mod_name = "_netdsl_model_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    s = importlib.util.spec_from_file_location(mod_name, path)
    mod = importlib.util.module_from_spec(s)
    sys.modules[mod_name] = mod
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        s.loader.exec_module(mod)  # type: ignore[union-attr]
    finally:
        sys.path.pop(0)
    fn = getattr(mod, func, None)
    if fn is None or not callable(fn):
        raise NetdslError(f"{path} defines no function {func!r} (use MODEL.py:FUNC to pick another)")
    net = fn()
    from ..dsl import Network
    if not isinstance(net, Network):
        raise NetdslError(f"{path}:{func}() returned {type(net).__name__}, not a netdsl.Network")
    return net


def parse_dims(items: Sequence[str]) -> dict:
    out = {}
    for it in items or []:
        k, _, v = it.partition("=")
        if not v:
            raise NetdslError(f"--dim expects NAME=INT, got {it!r}")
        out[k] = int(v)
    return out


def random_inputs(graph: Any, seed: int = 0, dims: Optional[dict] = None) -> dict:
    """Seeded random feeds for every input; symbolic dims take ``dims`` values (default 1)."""
    from ..shapes import Sym
    rng = np.random.default_rng(seed)
    dims = dims or {}
    consumers = graph.consumers()
    feeds = {}
    for v in graph.inputs:
        shape = []
        for d in v.shape:
            if isinstance(d, Sym):
                env = {s: dims.get(s, 1) for s in d.symbols}
                shape.append(d.evaluate(env))
            else:
                shape.append(d)
        if v.dtype.is_float:
            feeds[v.name] = rng.standard_normal(shape).astype(v.dtype.numpy)
        elif v.dtype.value == "bool":
            feeds[v.name] = rng.random(shape) < 0.5
        else:
            hi = 2
            for n in consumers.get(id(v), []):
                if n.op == "embedding" and n.inputs[0] is v:
                    hi = n.inputs[1].shape[0]
                elif n.op == "gather" and n.inputs[1] is v:
                    hi = n.inputs[0].shape[n.attrs["axis"] % n.inputs[0].rank]
            feeds[v.name] = rng.integers(0, hi if isinstance(hi, int) else 2, size=shape).astype(v.dtype.numpy)
    return feeds


def read_inputs(graph: Any, items: Sequence[str], seed: int, dims: dict) -> dict:
    feeds = random_inputs(graph, seed, dims)
    names = {v.name for v in graph.inputs}
    for it in items or []:
        k, _, path = it.partition("=")
        if k not in names:
            raise NetdslError(f"--input {k}: the network has no input {k!r} (inputs: {', '.join(sorted(names))})")
        if not os.path.isfile(path):
            raise NetdslError(f"--input {k}: file not found: {path}")
        feeds[k] = np.load(path, allow_pickle=False)
    return feeds


def parse_dynamic(items: Sequence[str], backend: str) -> dict:
    """--dynamic SYM=INT | SYM=LO:HI | SYM=MIN:OPT:MAX, shaped for the backend."""
    out: dict[str, Any] = {}
    for it in items or []:
        k, _, v = it.partition("=")
        try:
            vals = tuple(int(x) for x in v.split(":"))
        except ValueError:
            vals = ()
        if not k or not 1 <= len(vals) <= 3:
            raise NetdslError(f"--dynamic expects SYM=INT, SYM=LO:HI or SYM=MIN:OPT:MAX, got {it!r}")
        if backend == "tensorrt":
            out[k] = vals * 3 if len(vals) == 1 else (vals[0], vals[1], vals[1]) if len(vals) == 2 else vals
        else:
            out[k] = vals[0] if len(vals) == 1 else (vals[0], vals[-1])
    return out


def backend_options(args: argparse.Namespace, backend: str) -> dict:
    """Options for ``backend`` from the command line (each backend takes the ones it knows)."""
    opts: dict[str, Any] = {}
    for key in ("precision", "device", "hint", "cache_dir", "num_streams"):
        val = getattr(args, key, None)
        if val is not None:
            opts[key] = val
    if getattr(args, "dynamic", None):
        opts["dynamic"] = parse_dynamic(args.dynamic, backend)
    if getattr(args, "workspace", None) is not None:
        opts["workspace"] = int(args.workspace) << 20
    if getattr(args, "compress_fp16", False):
        opts["compress_to_fp16"] = True
    if getattr(args, "tf32", False):
        opts["tf32"] = True
    if getattr(args, "timing_cache", None):
        opts["timing_cache"] = args.timing_cache
    accepted = {"openvino": {"precision", "device", "hint", "cache_dir", "num_streams", "dynamic",
                             "compress_to_fp16"},
                "tensorrt": {"precision", "device", "cache_dir", "dynamic", "workspace", "tf32", "timing_cache"},
                "onnx": set(), "reference": set()}.get(backend)
    if accepted is not None:
        ignored = sorted(set(opts) - accepted)
        if ignored:
            print(f"note: backend {backend} does not use option(s) {', '.join(ignored)}", file=sys.stderr)
        opts = {k: v for k, v in opts.items() if k in accepted}
    return opts


def prepare(args: argparse.Namespace) -> Any:
    from ..weights.advice import command_line
    from .binding import binding_options
    net = load_model(args.model)
    binding = binding_options(args)
    if binding and not getattr(args, "weights", None):
        raise NetdslError(f"binding options ({', '.join(sorted(binding))}) need --weights CKPT")
    if getattr(args, "weights", None):
        with command_line():
            report = net.load_weights(args.weights, **binding)
        print(f"weights: bound {args.weights}" + (f" ({report.summary()})" if hasattr(report, "summary") else ""))
    if getattr(args, "random_weights", False):
        net.init_random(args.seed)
    unbound = [p.name for p in net.graph.params.values() if not p.bound]
    if unbound and args.command != "summary":
        raise NetdslError(f"{len(unbound)} parameter(s) have no weights: {', '.join(unbound[:8])}"
                          f"{' ...' if len(unbound) > 8 else ''}; pass --weights CKPT or --random-weights")
    return net


def add_model_args(p: argparse.ArgumentParser, backend: bool = True) -> None:
    p.add_argument("model", help="MODEL.py[:FUNC] (FUNC defaults to 'network')")
    p.add_argument("--weights", help="checkpoint to bind (any supported format)")
    p.add_argument("--random-weights", action="store_true", help="bind seeded random weights to unbound parameters")
    p.add_argument("--seed", type=int, default=0, help="seed for random inputs/weights")
    from .binding import add_binding_args
    add_binding_args(p)
    if backend:
        p.add_argument("--input", action="append", metavar="NAME=FILE.npy", help="input data (random when omitted)")
        p.add_argument("--dim", action="append", metavar="SYM=INT", help="value of a symbolic dim for random inputs")
        p.add_argument("--precision", help="f32 | f16 | bf16 | auto (backend permitting)")
        p.add_argument("--device", help="backend device (OpenVINO: CPU, GPU, AUTO)")
        p.add_argument("--hint", help="OpenVINO performance hint: latency | throughput")
        p.add_argument("--cache-dir", dest="cache_dir", help="compile/engine cache directory")
        p.add_argument("--dynamic", action="append", metavar="SYM=LO:HI",
                       help="range of a symbolic dim (OpenVINO LO:HI; TensorRT profile MIN:OPT:MAX; INT fixes it)")
        p.add_argument("--num-streams", dest="num_streams", type=int, help="OpenVINO inference streams")
        p.add_argument("--workspace", type=int, metavar="MB", help="TensorRT builder workspace limit in MiB")
        p.add_argument("--tf32", action="store_true",
                       help="TensorRT: allow TF32 math in float32 layers (off by default: float32 stays float32)")
        p.add_argument("--timing-cache", dest="timing_cache", metavar="FILE",
                       help="TensorRT: timing cache file, read if present and updated after the build")

