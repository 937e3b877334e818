"""The ``netdsl`` command: summary | run | build | check | weights | ops.

A model is ``MODEL.py[:FUNC]``: a Python file whose function FUNC (default ``network``) returns a
:class:`netdsl.Network`.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
import traceback
from typing import Any, Optional, Sequence

import numpy as np

from .errors import BackendUnavailable, NetdslError


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
    from .dsl import Network
    if not isinstance(net, Network):
        raise NetdslError(f"{path}:{func}() returned {type(net).__name__}, not a netdsl.Network")
    return net


def _parse_dims(items: Sequence[str]) -> dict:
    out = {}
    for it in items or []:
        k, _, v = it.partition("=")
        if not v:
            raise NetdslError(f"--dim expects NAME=INT, got {it!r}")
        out[k] = int(v)
    return out


def random_inputs(graph: Any, seed: int = 0, dims: Optional[dict] = None) -> dict:
    """Seeded random feeds for every input; symbolic dims take ``dims`` values (default 1)."""
    from .shapes import Sym
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


def _read_inputs(graph: Any, items: Sequence[str], seed: int, dims: dict) -> dict:
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


def _parse_dynamic(items: Sequence[str], backend: str) -> dict:
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


def _backend_options(args: argparse.Namespace, backend: str) -> dict:
    """Options for ``backend`` from the command line (each backend takes the ones it knows)."""
    opts: dict[str, Any] = {}
    for key in ("precision", "device", "hint", "cache_dir", "num_streams"):
        val = getattr(args, key, None)
        if val is not None:
            opts[key] = val
    if getattr(args, "dynamic", None):
        opts["dynamic"] = _parse_dynamic(args.dynamic, backend)
    if getattr(args, "workspace", None) is not None:
        opts["workspace"] = int(args.workspace) << 20
    if getattr(args, "compress_fp16", False):
        opts["compress_to_fp16"] = True
    accepted = {"openvino": {"precision", "device", "hint", "cache_dir", "num_streams", "dynamic",
                             "compress_to_fp16"},
                "tensorrt": {"precision", "device", "cache_dir", "dynamic", "workspace"},
                "onnx": set(), "reference": set()}.get(backend)
    if accepted is not None:
        ignored = sorted(set(opts) - accepted)
        if ignored:
            print(f"note: backend {backend} does not use option(s) {', '.join(ignored)}", file=sys.stderr)
        opts = {k: v for k, v in opts.items() if k in accepted}
    return opts


def _prepare(args: argparse.Namespace) -> Any:
    net = load_model(args.model)
    if getattr(args, "weights", None):
        report = net.load_weights(args.weights)
        print(f"weights: bound {args.weights}" + (f" ({report.summary()})" if hasattr(report, "summary") else ""))
    if getattr(args, "random_weights", False):
        net.init_random(args.seed)
    unbound = [p.name for p in net.graph.params.values() if not p.bound]
    if unbound and args.command != "summary":
        raise NetdslError(f"{len(unbound)} parameter(s) have no weights: {', '.join(unbound[:8])}"
                          f"{' ...' if len(unbound) > 8 else ''}; pass --weights CKPT or --random-weights")
    return net


def cmd_summary(args: argparse.Namespace) -> int:
    net = _prepare(args)
    print(net.summary())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .backends import get_backend
    net = _prepare(args)
    feeds = _read_inputs(net.graph, args.input, args.seed, _parse_dims(args.dim))
    t0 = time.perf_counter()
    model = get_backend(args.backend).compile(net.graph, **_backend_options(args, args.backend))
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


def cmd_build(args: argparse.Namespace) -> int:
    from .backends import get_backend
    net = _prepare(args)
    be = get_backend(args.backend)
    if not hasattr(be, "build"):
        raise NetdslError(f"backend {args.backend!r} has no build artifact (try openvino, tensorrt or onnx)")
    t0 = time.perf_counter()
    out = be.build(net.graph, args.output, **_backend_options(args, args.backend))
    print(f"built {args.backend} artifact {out or args.output} in {time.perf_counter() - t0:.2f} s")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .backends import get_backend, reference
    from .compare import TOLERANCES, errors
    net = _prepare(args)
    graph = net.graph
    feeds = _read_inputs(graph, args.input, args.seed, _parse_dims(args.dim))
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
                outs, proof = _backend_outputs(be, graph, feeds, args)
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


def _backend_outputs(be: Any, graph: Any, feeds: dict, args: argparse.Namespace) -> tuple:
    """Run on the backend; where it cannot execute here it may offer check() (a proof report)."""
    opts = _backend_options(args, be.__name__.rsplit(".", 1)[-1])
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


def cmd_weights(args: argparse.Namespace) -> int:
    from .weights.cli import weights_command
    opts = {"cfg": args.cfg, "pickle_mode": args.pickle_mode, "key": args.key}
    if args.no_strict:
        opts["strict"] = False
    return weights_command(args.file, model=args.model, fmt=args.format, **opts)


def cmd_ops(args: argparse.Namespace) -> int:
    from .support import support_table
    print(support_table(markdown=args.markdown))
    return 0


def _add_common(p: argparse.ArgumentParser, backend: bool = True) -> None:
    p.add_argument("model", help="MODEL.py[:FUNC] (FUNC defaults to 'network')")
    p.add_argument("--weights", help="checkpoint to bind (any supported format)")
    p.add_argument("--random-weights", action="store_true", help="bind seeded random weights to unbound parameters")
    p.add_argument("--seed", type=int, default=0, help="seed for random inputs/weights")
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


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="netdsl", description="netdsl: one network definition, many engines")
    ap.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("summary", help="per-layer table: output shapes, parameters, MACs")
    _add_common(p, backend=False)
    p.set_defaults(fn=cmd_summary)
    p = sub.add_parser("run", help="run the network on a backend")
    _add_common(p)
    p.add_argument("--backend", default="reference")
    p.add_argument("--output", "-o", help="write outputs to an .npz file")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("build", help="write a deployable artifact (OpenVINO IR, TensorRT plan, ONNX)")
    _add_common(p)
    p.add_argument("--backend", required=True)
    p.add_argument("--output", "-o", required=True)
    p.add_argument("--compress-fp16", dest="compress_fp16", action="store_true",
                   help="OpenVINO IR: store weights as fp16")
    p.set_defaults(fn=cmd_build)
    p = sub.add_parser("check", help="compare backends with the float64 reference on the same inputs")
    _add_common(p)
    p.add_argument("--backends", default="reference,openvino")
    p.add_argument("--tol", type=float, default=None,
                   help="tolerance multiplier of the precision's tolerance (default: 10 for f32, 1 for f16/bf16)")
    p.set_defaults(fn=cmd_check)
    p = sub.add_parser("weights", help="list a checkpoint's tensors, or its binding report against a model")
    p.add_argument("file")
    p.add_argument("--model", help="MODEL.py[:FUNC] to bind against")
    p.add_argument("--format", help="force a format instead of detecting it")
    p.add_argument("--cfg", help="Darknet .cfg for a .weights file (default: the .cfg beside it)")
    p.add_argument("--pickle-mode", dest="pickle_mode", choices=("auto", "strict", "inert"),
                   help="PyTorch pickles: auto (default), strict (state dicts only), inert (whole modules, no note)")
    p.add_argument("--key", help="sub-object of a PyTorch checkpoint holding the tensors (e.g. model, state_dict)")
    p.add_argument("--no-strict", dest="no_strict", action="store_true",
                   help="with --model: report problems without failing")
    p.set_defaults(fn=cmd_weights)
    p = sub.add_parser("ops", help="the op catalogue and which backends lower each op")
    p.add_argument("--markdown", action="store_true")
    p.set_defaults(fn=cmd_ops)
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args) or 0)
    except NetdslError as e:
        if args.debug:
            traceback.print_exc()
        print(f"netdsl {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `netdsl weights big.pt | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
