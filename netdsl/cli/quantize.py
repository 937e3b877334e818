"""``netdsl quantize``: INT8 post-training quantization with calibration data, a per-layer SQNR report,
and the quantized network written as a deployable artifact (OpenVINO IR, ONNX QDQ, TensorRT plan)."""
from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

from ..errors import NetdslError
from .common import (add_model_args, artifact_backend, nonneg_int, parse_dynamic, positive_int, prepare,
                     random_inputs)

COMMAND, ORDER = "quantize", 35


def calibration_batches(graph, path: str, batch: int, limit: int) -> list:
    """Batches of feed dicts from an .npz (one array per input name, samples on axis 0) or an .npy
    (a one-input network); ``random:K`` makes K seeded random batches (a smoke test, not calibration)."""
    if path.startswith("random:"):
        count = path.split(":", 1)[1]
        if not count.isdigit() or int(count) < 1:
            raise NetdslError(f"--calibration {path}: random:K takes a positive number of batches K")
        return [random_inputs(graph, seed=i, dims={s: batch for s in graph.symbols}) for i in range(int(count))]
    if os.path.isdir(path):
        raise NetdslError(f"--calibration {path}: a directory, not an .npz or .npy file")
    if not os.path.isfile(path):
        raise NetdslError(f"--calibration: file not found: {path}")
    try:
        data = _read_arrays(path, [v.name for v in graph.inputs])
    except (ValueError, OSError, EOFError) as e:  # not NumPy data, or pickled objects (never loaded)
        raise NetdslError(f"--calibration {path}: not a readable .npz/.npy file ({e})") from None
    count = min(len(a) for a in data.values())
    count = min(count, limit) if limit else count
    if count == 0:
        raise NetdslError(f"--calibration {path}: no samples")
    return [{n: a[i:i + batch] for n, a in data.items()} for i in range(0, count, batch)]


def _read_arrays(path: str, names: list) -> dict:
    """{input name: samples} from an .npy (one input) or an .npz (one array per input), by content."""
    obj = np.load(path, allow_pickle=False)
    if isinstance(obj, np.ndarray):
        if len(names) != 1:
            raise NetdslError(f"--calibration {path}: an .npy holds one input, the network has {len(names)} "
                              f"({', '.join(names)}): use an .npz with one array per input")
        return {names[0]: obj}
    with obj as z:
        missing = [n for n in names if n not in z.files]
        if missing:
            raise NetdslError(f"--calibration {path}: no array for input(s) {', '.join(missing)} "
                              f"(it holds {', '.join(z.files) or 'nothing'})")
        return {n: z[n] for n in names}


def _equalize(text: str) -> object:
    if text in ("auto", "off"):
        return None if text == "off" else text
    try:
        alpha = float(text)
    except ValueError:
        alpha = -1.0
    if not 0 <= alpha <= 1:
        raise NetdslError(f"--equalize {text}: auto, off, or a balance alpha in [0, 1]")
    return alpha


def cmd_quantize(args: argparse.Namespace) -> int:
    from ..backends import get_backend
    from ..quantization import quantize
    if args.output:
        args.backend = artifact_backend(args.output, args.backend)
    elif args.backend:
        raise NetdslError(f"--backend {args.backend} sets the format of the artifact -o writes: give -o too")
    if args.dynamic and not args.output:
        raise NetdslError("--dynamic shapes the artifact -o writes: give -o too")
    if args.dynamic and args.backend not in ("openvino", "tensorrt"):
        raise NetdslError(f"--dynamic applies to an OpenVINO IR or a TensorRT plan (-o .xml/.plan); the "
                          f"{args.backend} artifact keeps the symbolic dims")
    if args.percentile != 99.99 and args.method != "percentile":
        raise NetdslError(f"--percentile applies to --method percentile, not {args.method}")
    if (args.min_sqnr is not None or args.min_top1 is not None) and args.keep_float != "auto" \
            and args.wide_activations not in (None, "auto"):  # None: the default, auto
        raise NetdslError("--min-top1 / --min-sqnr are the targets of --keep-float auto and --wide-activations auto: "
                          "give one of them with them")
    if args.output:
        _check_output(args.output)
    net = prepare(args)
    batches = calibration_batches(net.graph, args.calibration, args.batch_size, args.limit)
    t0 = time.perf_counter()
    reused = bool(args.cache) and os.path.exists(args.cache)  # else calibrated and written
    qnet = quantize(net, batches, method=args.method, exclude=args.exclude or (), backend=args.calibration_backend,
                    percentile=args.percentile, cache=args.cache, report=not args.no_report, scheme=args.scheme,
                    target=args.backend, equalize=_equalize(args.equalize), bias_correction=not args.no_bias_correction,
                    keep_float=args.keep_float, rounding=args.rounding, min_sqnr=args.min_sqnr,
                    min_top1=args.min_top1, refine_ranges=args.refine_ranges,
                    **({} if args.wide_activations is None else {"wide_activations": args.wide_activations}))
    print(f"quantized '{net.name}' ({args.method}, {len(batches)} calibration batch(es)) in "
          f"{time.perf_counter() - t0:.2f} s")
    if not args.no_report:
        print(qnet.quantization)
    if args.cache:
        print(f"calibration cache: {args.cache} ({'reused: no calibration ran' if reused else 'written'})")
    if args.output:
        be = get_backend(args.backend)
        opts = {"dynamic": parse_dynamic(args.dynamic, args.backend)} if args.dynamic else {}
        out = be.build(qnet.graph, args.output, **opts)
        print(f"wrote {args.backend} INT8 artifact {out or args.output}")
    return 0


def _check_output(path: str) -> None:
    """Refuse, before calibration runs, an -o path the artifact cannot be written to; a missing directory
    is created when it is written, as ``netdsl build`` does."""
    if os.path.isdir(path):
        raise NetdslError(f"-o {path} is a directory: give the artifact's file path")
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise NetdslError(f"-o {path}: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise NetdslError(f"-o {path}: directory {folder} is not writable")


def _keep_float(text: str) -> Any:
    if text == "auto":
        return text
    try:
        return nonneg_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither 'auto' nor a non-negative integer") from None


def _number_in(what: str, low: float, high: float, brackets: str = "(]") -> Any:
    """argparse type: a float between ``low`` and ``high`` (``brackets`` says which ends are included);
    its error names the option, the value and the interval."""
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            v = float("nan")
        inside = (low <= v if brackets[0] == "[" else low < v) and (v <= high if brackets[1] == "]" else v < high)
        if not inside:  # NaN too
            raise argparse.ArgumentTypeError(f"{text!r} is not {what} in {brackets[0]}{low:g}, {high:g}{brackets[1]}")
        return v
    parse.__name__ = what.replace(" ", "_")
    return parse


def _wide(text: str) -> Any:
    if text in ("auto", "none"):
        return text
    pats = [p.strip() for p in text.split(",")]
    if not all(pats):
        raise argparse.ArgumentTypeError(f"{text!r}: auto, none, or comma-separated tensor/layer name patterns")
    return pats


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(COMMAND, help="INT8 post-training quantization (calibration, SQNR report, artifact)")
    add_model_args(p, backend=False)
    p.add_argument("--calibration", required=True, metavar="DATA",
                   help="calibration inputs: .npz (one array per input) or .npy (one input); random:K for a smoke test")
    p.add_argument("--batch-size", dest="batch_size", type=positive_int, default=8, help="samples per calibration batch")
    p.add_argument("--limit", type=nonneg_int, default=0, help="use at most this many samples (0: all)")
    p.add_argument("--method", choices=("minmax", "percentile", "entropy", "mse"), default="mse",
                   help="how each activation's range is chosen (default mse: least expected squared error)")
    p.add_argument("--scheme", choices=("auto", "symmetric", "unsigned", "asymmetric"), default="auto",
                   help="activation quantization: auto = symmetric int8 for a TensorRT plan, else asymmetric uint8")
    p.add_argument("--equalize", default="auto", metavar="auto|off|ALPHA",
                   help="cross-layer channel equalization (default auto: the balance of best calibration SQNR)")
    p.add_argument("--no-bias-correction", dest="no_bias_correction", action="store_true",
                   help="do not correct the layers' biases for the mean shift quantization causes")
    p.add_argument("--keep-float", dest="keep_float", type=_keep_float, default=0, metavar="K|auto",
                   help="keep the K layers that lose the most accuracy alone (sensitivity analysis) in float; "
                        "auto: the fewest that reach --min-sqnr / --min-top1 on the calibration data")
    p.add_argument("--min-sqnr", dest="min_sqnr", type=_number_in("an output SQNR in dB", 0, 200, "()"), metavar="DB",
                   help="with --keep-float auto: the output SQNR to reach (default 30 dB); with --wide-activations "
                        "auto: the SQNR of outputs that are not class scores (default 20 dB)")
    p.add_argument("--min-top1", dest="min_top1", type=_number_in("a fraction of inputs", 0, 1), metavar="FRACTION",
                   help="with --keep-float auto: the top-1 agreement with float32 to reach (e.g. 0.99); with "
                        "--wide-activations auto: the estimated one of class-score outputs (default 0.995)")
    p.add_argument("--wide-activations", dest="wide_activations", type=_wide, metavar="auto|none|PATTERNS",
                   help="activations quantized in two levels, still on INT8 kernels (value + rounding residual, "
                        "one more INT8 layer each): auto (default: the most sensitive tensors and weights until the "
                        "estimated top-1 / --min-sqnr target is met), none, or comma-separated tensor/layer name "
                        "patterns")
    p.add_argument("--rounding", choices=("nearest", "gptq", "auto"), default="nearest",
                   help="int8 weights: rounded to nearest (default), fitted to the quantized inputs (GPTQ), or auto "
                        "(GPTQ where held-out calibration data gains)")
    p.add_argument("--refine-ranges", dest="refine_ranges", action="store_true",
                   help="search each activation range for the best output SQNR (output-aware, slower)")
    p.add_argument("--percentile", type=_number_in("a percentile", 0, 100), default=99.99,
                   help="with --method percentile: the percentile of |x| kept (default 99.99)")
    p.add_argument("--exclude", action="append", metavar="PATTERN", help="keep matching layers in float (fnmatch)")
    p.add_argument("--calibration-backend", dest="calibration_backend", default="auto",
                   choices=("auto", "reference", "openvino"), help="where the float network runs to calibrate")
    p.add_argument("--cache", help="calibration cache (JSON): reused when it matches, written otherwise")
    p.add_argument("--no-report", dest="no_report", action="store_true", help="skip the per-layer SQNR report")
    p.add_argument("--backend", choices=("openvino", "onnx", "tensorrt"),
                   help="artifact format: openvino (IR), onnx (QDQ), tensorrt (plan); default: from the -o extension")
    p.add_argument("--output", "-o", help="write the INT8 network (e.g. model.xml, model.onnx, model.plan)")
    p.add_argument("--dynamic", action="append", metavar="SYM=LO:HI",
                   help="with -o .xml/.plan: range of a symbolic dim (OpenVINO LO:HI; TensorRT profile MIN:OPT:MAX; "
                        "INT fixes it), as for build")
    p.set_defaults(fn=cmd_quantize)
