"""Shared pieces of the command line: loading MODEL.py, inputs, dims, backend options, exit codes, JSON.

Every command gets the same behaviour for free by using these helpers:

* :func:`add_model_args` / :func:`add_input_args` / :func:`add_engine_args` / :func:`add_backend_arg`
  declare the usual options (with help text and choices);
* :func:`prepare` loads the model, binds weights and validates ``--dim``, ``--dynamic`` and ``--input``
  against the network (an unknown symbol or input is a usage error);
* :func:`backend_options` turns the engine options into keyword arguments for one backend and refuses an
  option that does nothing for that backend and command;
* :func:`emit_json` prints a command's JSON result; ``main()`` maps exceptions to :data:`EXIT_CODES`.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import sys
import traceback
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import NetdslError
from ..feeds import random_inputs

# ---- exit codes -----------------------------------------------------------------------------------
EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_ENGINE, EXIT_INTERNAL = 0, 1, 2, 3, 4
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_MISMATCH: "check/compare found a mismatch (results differ from the reference)",
    EXIT_USAGE: "bad input or usage (arguments, model file, checkpoint, shapes)",
    EXIT_ENGINE: "engine unavailable (not installed, or no supported device here)",
    EXIT_INTERNAL: "internal error (a bug in netdsl: please report it with --debug output)",
}
EXIT_CODES_HELP = "exit codes: " + "; ".join(f"{k} {v}" for k, v in EXIT_CODES.items())  # wrapped by argparse
EXIT_CODES_TABLE = "exit codes:\n" + "\n".join(f"  {k}  {v}" for k, v in EXIT_CODES.items())


class ModelFileError(NetdslError):
    """The user's model file raised while being imported or called; the message is their traceback."""


_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def user_traceback(exc: BaseException) -> str:
    """``exc`` formatted like Python does, with netdsl's and importlib's frames left out."""
    te = traceback.TracebackException.from_exception(exc)
    for t in _chain(te):
        t.stack = traceback.StackSummary.from_list(
            [f for f in t.stack if not os.path.abspath(f.filename).startswith(_PKG_DIR + os.sep)
             and not f.filename.startswith("<frozen ")])
    return "".join(te.format()).rstrip()


def _chain(te: traceback.TracebackException) -> list:
    out, seen = [], set()
    while te is not None and id(te) not in seen:
        seen.add(id(te))
        out.append(te)
        te = te.__cause__ or (None if te.__suppress_context__ else te.__context__)
    return out


# ---- loading the model ----------------------------------------------------------------------------
def load_model(spec: str) -> Any:
    """Import MODEL.py and call FUNC (default ``network``); returns the Network.

    An exception raised by the model file (a syntax error, a NameError ...) becomes a
    :class:`ModelFileError` holding the user's traceback (their file and line, not netdsl's);
    netdsl errors raised while the network is defined (shape errors ...) pass through unchanged.
    """
    path, _, func = spec.partition(":")
    func = func or "network"
    if os.path.isdir(path):
        raise NetdslError(f"{path} is a directory, not a model file (MODEL.py[:FUNC] expected)")
    if not os.path.isfile(path):
        raise NetdslError(f"model file not found: {path}")
    mod_name = "_netdsl_model_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    s = importlib.util.spec_from_file_location(mod_name, path)
    if s is None or s.loader is None:
        raise NetdslError(f"{path} is not a Python file (MODEL.py[:FUNC] expected)")
    mod = importlib.util.module_from_spec(s)
    sys.modules[mod_name] = mod
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        try:
            s.loader.exec_module(mod)
        except NetdslError:
            raise
        except SystemExit as e:
            raise ModelFileError(f"model file {path} called sys.exit({e.code!r}) while being imported") from None
        except Exception as e:
            raise ModelFileError(f"model file {path} failed to import:\n{user_traceback(e)}") from e
        fn = getattr(mod, func, None)
        if fn is None or not callable(fn):
            raise NetdslError(f"{path} defines no function {func!r} (use MODEL.py:FUNC to pick another)")
        try:
            net = fn()
        except NetdslError:
            raise
        except SystemExit as e:
            raise ModelFileError(f"{path}:{func}() called sys.exit({e.code!r})") from None
        except Exception as e:
            raise ModelFileError(f"{path}:{func}() raised an exception:\n{user_traceback(e)}") from e
    finally:
        sys.path.pop(0)
    from ..dsl import Network
    if not isinstance(net, Network):
        raise NetdslError(f"{path}:{func}() returned {type(net).__name__}, not a netdsl.Network")
    return net


# ---- dims, inputs ---------------------------------------------------------------------------------
def parse_dims(items: Optional[Sequence[str]]) -> dict:
    """``--dim SYM=INT`` values as ``{SYM: INT}`` (a usage error names the bad item)."""
    out = {}
    for it in items or []:
        k, eq, v = it.partition("=")
        k, v = k.strip(), v.strip()
        if not eq or not k or not v:
            raise NetdslError(f"--dim expects SYM=INT (e.g. N=4), got {it!r}")
        try:
            n = int(v)
        except ValueError:
            raise NetdslError(f"--dim {it}: {v!r} is not an integer (expected SYM=INT, e.g. N=4)") from None
        if n < 0:
            raise NetdslError(f"--dim {it}: a dim cannot be negative")
        out[k] = n
    return out


def _input_item(item: str, names: set) -> tuple[str, str]:
    """``--input NAME=FILE`` split into (NAME, FILE), NAME checked against the network's inputs."""
    k, eq, path = item.partition("=")
    if not eq or not k or not path:
        raise NetdslError(f"--input expects NAME=FILE.npy, got {item!r}")
    if k not in names:
        have = f"inputs: {', '.join(sorted(names))}" if names else "it has no inputs"
        raise NetdslError(f"--input {k}: the network has no input {k!r} ({have})")
    return k, path


def read_inputs(graph: Any, items: Optional[Sequence[str]], seed: int, dims: dict) -> dict:
    """Random feeds (see :func:`random_inputs`) replaced by ``--input NAME=FILE.npy`` where given."""
    feeds = random_inputs(graph, seed, dims)
    names = {v.name for v in graph.inputs}
    for it in items or []:
        k, path = _input_item(it, names)
        if os.path.isdir(path):
            raise NetdslError(f"--input {k}: {path} is a directory, not an .npy file")
        if not os.path.isfile(path):
            raise NetdslError(f"--input {k}: file not found: {path}")
        try:
            feeds[k] = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise NetdslError(f"--input {k}: {path} is not a readable .npy file ({e})") from None
    return feeds


def inputs_from_args(args: argparse.Namespace, graph: Any) -> dict:
    """The feeds a command runs on: ``--input`` files, else seeded random data shaped by ``--dim``."""
    dims = parse_dims(getattr(args, "dim", None))
    return read_inputs(graph, getattr(args, "input", None), getattr(args, "seed", 0), dims)


def parse_dynamic(items: Optional[Sequence[str]], backend: str) -> dict:
    """--dynamic SYM=INT | SYM=LO:HI | SYM=MIN:OPT:MAX, shaped for the backend."""
    out: dict[str, Any] = {}
    for k, vals in _dynamic_items(items).items():
        if backend == "tensorrt":
            out[k] = vals * 3 if len(vals) == 1 else (vals[0], vals[1], vals[1]) if len(vals) == 2 else vals
        else:
            out[k] = vals[0] if len(vals) == 1 else (vals[0], vals[-1])
    return out


def parse_layer_precision(items: Optional[Sequence[str]]) -> dict:
    """``--layer-precision PATTERN=TYPE`` (repeatable) -> {fnmatch pattern of layer names: float type}."""
    out = {}
    for item in items or []:
        pat, sep, dtype = item.rpartition("=")
        if not pat or not sep or not dtype:
            raise NetdslError(f"--layer-precision expects PATTERN=TYPE (e.g. '*layer_norm*=float32'), got {item!r}")
        if out.get(pat, dtype) != dtype:
            raise NetdslError(f"--layer-precision {pat!r} given twice with different types ({out[pat]}, {dtype})")
        out[pat] = dtype
    return out


def _dynamic_items(items: Optional[Sequence[str]]) -> dict:
    out: dict[str, tuple] = {}
    for it in items or []:
        k, _, v = it.partition("=")
        try:
            vals = tuple(int(x) for x in v.split(":"))
        except ValueError:
            vals = ()
        if not k or not 1 <= len(vals) <= 3:
            raise NetdslError(f"--dynamic expects SYM=INT, SYM=LO:HI or SYM=MIN:OPT:MAX, got {it!r}")
        if vals[0] < 1 or list(vals) != sorted(vals):
            raise NetdslError(f"--dynamic {it}: values must be positive and in increasing order")
        out[k] = vals
    return out


def validate_dims(args: argparse.Namespace, graph: Any) -> None:
    """``--dim``/``--dynamic`` name symbols of the network, ``--dim`` lies in the ``--dynamic`` range,
    ``--input`` names an input: each problem is a usage error naming the option."""
    symbols = list(graph.symbols)
    have = ", ".join(symbols) if symbols else "none: every input dim is fixed"
    dims = parse_dims(getattr(args, "dim", None))
    ranges = _dynamic_items(getattr(args, "dynamic", None))
    for opt, names in (("--dim", dims), ("--dynamic", ranges)):
        for k in names:
            if k not in symbols:
                raise NetdslError(f"{opt} {k}: network '{graph.name}' has no symbolic dim {k!r} "
                                  f"(its symbols: {have})")
    for k, n in dims.items():
        if k in ranges and not ranges[k][0] <= n <= ranges[k][-1]:
            lo, hi = ranges[k][0], ranges[k][-1]
            raise NetdslError(f"--dim {k}={n} is outside --dynamic {k}={lo}:{hi}")
    names = {v.name for v in graph.inputs}
    for it in getattr(args, "input", None) or []:
        _input_item(it, names)


# ---- backends and their options -------------------------------------------------------------------
def backend_names() -> list[str]:
    from ..backends import BACKENDS
    return list(BACKENDS)


def backend_list(text: str) -> list[str]:
    """argparse type for ``--backends a,b``: known backend names, in order, without repeats."""
    names = backend_names()
    out: list[str] = []
    for b in (x.strip() for x in text.split(",")):
        if not b:
            continue
        if b not in names:
            raise argparse.ArgumentTypeError(f"unknown backend {b!r} (choose from {', '.join(names)})")
        if b not in out:
            out.append(b)
    if not out:
        raise argparse.ArgumentTypeError("no backend named")
    return out


def _bounded(kind: type, low: float, what: str) -> Any:
    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") \
                from None
        if not low <= v < float("inf"):  # NaN and infinity too
            raise argparse.ArgumentTypeError(f"{text} is not {what}")
        return v
    parse.__name__ = what.replace(" ", "_")
    return parse


positive_int = _bounded(int, 1, "a positive integer")
nonneg_int = _bounded(int, 0, "a non-negative integer")
positive_float = _bounded(float, 1e-9, "a positive number")
nonneg_float = _bounded(float, 0, "a non-negative number")


def num_streams_arg(text: str) -> Any:
    """--num-streams: a positive integer, or 'auto' (OpenVINO chooses)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer or 'auto'") from None


def add_backend_arg(p: argparse.ArgumentParser, default: Optional[str] = None, multiple: bool = False,
                    required: bool = False, help: str = "") -> None:
    """``--backend B`` (choices) or, with ``multiple``, ``--backends a,b`` (validated list)."""
    names = backend_names()
    if multiple:
        p.add_argument("--backends", type=backend_list, default=default,
                       required=required, metavar="B1,B2",
                       help=help or f"comma-separated backends ({', '.join(names)}); default {default}")
    else:
        p.add_argument("--backend", choices=names, default=default, required=required,
                       help=help or f"engine to use ({', '.join(names)})"
                                    + (f"; default {default}" if default else ""))


_EXEC = frozenset({"run"})          # commands that execute the network (run, check, bench, compare ...)
_BUILD = frozenset({"build"})       # commands that write an artifact
_BOTH = _EXEC | _BUILD
# option -> {backend: kinds of command for which the backend uses it}
OPTION_USE: dict[str, dict[str, frozenset]] = {
    "precision": {"reference": _EXEC, "openvino": _BOTH, "tensorrt": _BOTH, "onnx": _EXEC},
    "device": {"openvino": _EXEC, "tensorrt": _EXEC},
    "hint": {"openvino": _EXEC},
    "num_streams": {"openvino": _EXEC},
    "cache_dir": {"openvino": _EXEC, "tensorrt": _BOTH},
    "dynamic": {"openvino": _BOTH, "tensorrt": _BOTH},
    "workspace": {"tensorrt": _BOTH},
    "tf32": {"tensorrt": _BOTH},
    "timing_cache": {"tensorrt": _BOTH},
    "compress_fp16": {"openvino": _BUILD},
    "plugin_route": {"openvino": _BOTH},
    "layer_precision": {"openvino": _BOTH, "tensorrt": _BOTH},
}
# precision values each backend accepts (canonical spelling first), by kind of command
PRECISIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("reference", "run"): ("f32", "f64"),
    ("openvino", "run"): ("f32", "bf16", "f16", "auto"),
    ("openvino", "build"): ("f32", "f16"),
    ("tensorrt", "run"): ("f32", "f16", "bf16"),
    ("tensorrt", "build"): ("f32", "f16", "bf16"),
    ("onnx", "run"): ("f32",),
}
_PRECISION_ALIASES = {"fp32": "f32", "float32": "f32", "fp16": "f16", "float16": "f16", "half": "f16",
                      "bfloat16": "bf16", "fp64": "f64", "float64": "f64", "double": "f64"}
_FLAGS = {"precision": "--precision", "device": "--device", "hint": "--hint", "num_streams": "--num-streams",
          "cache_dir": "--cache-dir", "dynamic": "--dynamic", "workspace": "--workspace", "tf32": "--tf32",
          "timing_cache": "--timing-cache", "compress_fp16": "--compress-fp16", "plugin_route": "--plugin-route",
          "layer_precision": "--layer-precision"}


def command_kind(args: argparse.Namespace) -> str:
    """"build" for commands that write an artifact, "run" for those that execute the network."""
    return "build" if getattr(args, "command", "") in ("build", "export") else "run"


def _given(args: argparse.Namespace, key: str) -> bool:
    v = getattr(args, key, None)
    return v not in (None, False, [], "")


def normalize_precision(value: str, backend: str, kind: str = "run") -> str:
    """The canonical precision name for ``backend`` (usage error listing the choices otherwise)."""
    p = _PRECISION_ALIASES.get(str(value).lower(), str(value).lower())
    choices = PRECISIONS.get((backend, kind), PRECISIONS.get((backend, "run"), ()))
    if p not in choices:
        what = "for a build" if kind == "build" else "to run"
        hint = "; INT8 needs a quantized network" if p in ("int8", "i8", "u8") else ""
        raise NetdslError(f"--precision {value}: not available {what} on backend {backend} "
                          f"(choose {', '.join(choices)}){hint}")
    return p


def check_engine_options(args: argparse.Namespace, backends: Sequence[str]) -> None:
    """Usage error for an engine option none of ``backends`` uses for this command (or a bad value)."""
    kind = command_kind(args)
    for key, use in OPTION_USE.items():
        if not _given(args, key):
            continue
        users = [b for b in backends if kind in use.get(b, ())]
        if not users:
            where = sorted(b for b, kinds in use.items() if kind in kinds)
            raise NetdslError(f"{_FLAGS[key]} does nothing for backend {', '.join(backends)} with "
                              f"'{getattr(args, 'command', '?')}'"
                              + (f" (it applies to {', '.join(where)})" if where else ""))
        if key == "precision":
            for b in users:
                normalize_precision(args.precision, b, kind)


def backend_options(args: argparse.Namespace, backend: str, strict: bool = True) -> dict:
    """Keyword options for ``backend`` from the command line.

    ``strict`` (one backend named): an option that does nothing for this backend and command is a usage
    error. Not strict (a command over several backends, which calls :func:`check_engine_options` once):
    such options are left out for this backend.
    """
    if strict:
        check_engine_options(args, [backend])
    kind = command_kind(args)
    opts: dict[str, Any] = {}
    for key, use in OPTION_USE.items():
        if not _given(args, key) or kind not in use.get(backend, ()):
            continue
        val = getattr(args, key)
        if key == "precision":
            p = normalize_precision(val, backend, kind)
            if backend == "reference":
                opts["dtype"] = "float64" if p == "f64" else "float32"
            elif backend == "onnx":
                continue  # f32 only: nothing to pass
            else:
                opts["precision"] = p
        elif key == "dynamic":
            opts["dynamic"] = parse_dynamic(val, backend)
        elif key == "workspace":
            opts["workspace"] = int(val) << 20
        elif key == "compress_fp16":
            opts["compress_to_fp16"] = True
        elif key == "plugin_route":
            continue  # process-wide for the command (cli._Session), not a compile option
        elif key == "tf32":
            opts["tf32"] = True
        elif key == "layer_precision":
            opts["layer_precision"] = parse_layer_precision(val)
        elif key == "cache_dir" and os.path.exists(val) and not os.path.isdir(val):
            raise NetdslError(f"--cache-dir {val}: not a directory")
        elif key == "device" and backend == "openvino":
            opts["device"] = openvino_device(val)
        elif key == "device" and backend == "tensorrt":
            try:
                opts["device"] = int(val)
            except ValueError:
                raise NetdslError(f"--device {val}: TensorRT takes a GPU index (0, 1, ...)") from None
        else:
            opts[key] = val
    return opts


_OV_VIRTUAL = ("AUTO", "MULTI", "HETERO", "BATCH")  # devices that take a list of others after ':'
_OV_KNOWN = ("CPU", "GPU", "NPU")


def openvino_device(name: str) -> str:
    """``--device`` for OpenVINO checked against the devices present here: an unknown name is a usage
    error; a known kind that is absent here (GPU, NPU) means the engine is unavailable."""
    from ..backends.openvino.runtime import core
    from ..errors import BackendUnavailable
    present = list(core().available_devices)  # e.g. ['CPU', 'GPU.0', 'GPU.1']
    kinds = {d.split(".")[0] for d in present}
    virtual, _, rest = name.partition(":")
    wanted = [d for d in rest.split(",") if d] if virtual.upper() in _OV_VIRTUAL else [name]
    if virtual.upper() in _OV_VIRTUAL and not rest and virtual.upper() != "AUTO":
        raise NetdslError(f"--device {name}: {virtual} needs a device list ({virtual}:GPU,CPU)")
    for d in wanted:
        if d in present or d in kinds:
            continue
        here = ", ".join(present) or "none"
        if d.split(".")[0].upper() in _OV_KNOWN:
            raise BackendUnavailable(f"OpenVINO device {d} is not present here (devices here: {here})")
        raise NetdslError(f"--device {name}: unknown OpenVINO device {d!r} (devices here: {here}; also "
                          f"AUTO, or {', '.join(v + ':D1,D2' for v in _OV_VIRTUAL[1:])})")
    return name


# artifact file extensions and the backend that writes each
ARTIFACT_EXTENSIONS = {".xml": "openvino", ".onnx": "onnx", ".plan": "tensorrt", ".engine": "tensorrt"}


def artifact_backend(path: str, backend: Optional[str]) -> str:
    """The backend that writes ``-o PATH``: ``--backend`` when given, else the one the extension names
    (.xml OpenVINO IR, .onnx, .plan/.engine TensorRT). A usage error when the extension is another
    backend's artifact (``-o m.xml --backend tensorrt`` would overwrite an IR with a plan) or tells nothing."""
    ext = os.path.splitext(path)[1].lower()
    by_ext = ARTIFACT_EXTENSIONS.get(ext)
    names = ", ".join(f"{e} ({b})" for e, b in ARTIFACT_EXTENSIONS.items())
    if backend is None:
        if by_ext is None:
            raise NetdslError(f"-o {path}: pass --backend, or name the file by its artifact: {names}")
        return by_ext
    if by_ext is not None and by_ext != backend:
        raise NetdslError(f"-o {path}: {ext} is what --backend {by_ext} writes, not --backend {backend} "
                          f"(extensions: {names})")
    return backend


# ---- output -------------------------------------------------------------------------------------
def wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def info(args: argparse.Namespace, msg: str) -> None:
    """A human-readable line: stdout normally; stderr under --json (stdout holds only the JSON);
    nothing under --quiet."""
    if getattr(args, "quiet", False):
        return
    print(msg, file=sys.stderr if wants_json(args) else sys.stdout)


def to_jsonable(obj: Any) -> Any:
    """NumPy scalars/arrays, tuples, symbolic dims and other objects as plain JSON values."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if np.isfinite(f) else str(f)
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def emit_json(obj: Any, code: int = EXIT_OK) -> None:
    """Print ``obj`` as the command's JSON document on stdout; a dict gets ``ok`` and ``exit_code``
    (the command's exit code) unless it has them (docs/CLI-JSON.md lists each command's shape)."""
    if isinstance(obj, dict):
        obj = {**obj, "ok": obj.get("ok", code == EXIT_OK), "exit_code": obj.get("exit_code", code)}
    print(json.dumps(to_jsonable(obj), indent=2))


def add_tol_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tol", type=nonneg_float, default=None,
                   help="tolerance multiplier of the precision's tolerance (default: 10 for f32, 1 for f16/bf16)")


def add_json_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout (notes go to stderr)")


# ---- the model, bound and validated ---------------------------------------------------------------
def prepare(args: argparse.Namespace) -> Any:
    """Load MODEL.py, bind ``--weights`` / ``--random-weights``, validate dims and inputs; the Network."""
    from ..weights.advice import command_line
    from .binding import binding_options
    net = load_model(args.model)
    binding = binding_options(args)
    if binding and not getattr(args, "weights", None):
        raise NetdslError(f"binding options ({', '.join(sorted(binding))}) need --weights CKPT")
    if getattr(args, "weights", None):
        with command_line():
            report = net.load_weights(args.weights, **binding)
        info(args, f"weights: bound {args.weights}" + (f" ({report.summary()})" if hasattr(report, "summary") else ""))
    if getattr(args, "random_weights", False):
        net.init_random(args.seed)
    unbound = [p.name for p in net.graph.params.values() if not p.bound]
    if unbound and args.command not in ("summary", "graph"):
        raise NetdslError(f"{len(unbound)} parameter(s) have no weights: {', '.join(unbound[:8])}"
                          f"{' ...' if len(unbound) > 8 else ''}; pass --weights CKPT or --random-weights")
    validate_dims(args, net.graph)
    return net


def preload_weights(graph: Any, min_bytes: int = 64 << 20) -> None:
    """Read every bound weight now, with a progress bar, when they total at least ``min_bytes``
    (engines then lower from memory). Smaller networks are left lazy."""
    params = [p for p in graph.params.values() if p.bound]
    total = sum(int(np.prod(p.shape, dtype=np.int64)) * p.dtype.itemsize for p in params)
    if total < min_bytes:
        return
    from ..progress import progress
    with progress(total=total, desc="reading weights", unit="B") as bar:
        for p in params:
            arr = p.value()
            p.source = _cached_source(p.source, arr)
            bar.update(arr.nbytes)


def _cached_source(old: Any, arr: np.ndarray) -> Any:
    """A source returning ``arr`` that keeps the old source's ``identity`` (caches key weights by it)."""
    def source() -> np.ndarray:
        return arr
    if hasattr(old, "identity"):
        source.identity = old.identity  # type: ignore[attr-defined]
    return source


def log_engine(model: Any) -> None:
    """Under -v: the settings the engine chose for a compiled model (OpenVINO: hint, streams, threads,
    precision, requests)."""
    log = logging.getLogger("netdsl.cli")
    if not log.isEnabledFor(logging.INFO):
        return
    from ..bench import engine_info
    settings = engine_info(model)
    if settings:
        log.info("%s engine settings: %s", getattr(model, "backend", "?"),
                 ", ".join(f"{k}={v}" for k, v in settings.items()))


def add_model_args(p: argparse.ArgumentParser, backend: bool = True) -> None:
    """MODEL.py, ``--weights``, ``--random-weights``, ``--seed``; with ``backend`` also the input and
    engine options of commands that execute the network (see :func:`add_input_args`,
    :func:`add_engine_args`)."""
    p.add_argument("model", help="MODEL.py[:FUNC] (FUNC defaults to 'network')")
    p.add_argument("--weights", help="checkpoint to bind (any supported format)")
    p.add_argument("--random-weights", action="store_true", help="bind seeded random weights to unbound parameters")
    p.add_argument("--seed", type=nonneg_int, default=0, help="seed for random inputs/weights")
    from .binding import add_binding_args
    add_binding_args(p)
    if backend:
        add_input_args(p)
        add_engine_args(p, "run")


def add_input_args(p: argparse.ArgumentParser) -> None:
    """``--input NAME=FILE.npy`` and ``--dim SYM=INT``."""
    p.add_argument("--input", action="append", metavar="NAME=FILE.npy", help="input data (random when omitted)")
    p.add_argument("--dim", action="append", metavar="SYM=INT",
                   help="value of a symbolic dim for random inputs (default 1)")


def add_engine_args(p: argparse.ArgumentParser, kind: str = "run") -> None:
    """The engine options that do something for ``kind`` ("run": executing commands; "build")."""
    def has(key: str) -> bool:
        return any(kind in kinds for kinds in OPTION_USE[key].values())

    if has("precision"):
        choices = sorted({c for (b, k), cs in PRECISIONS.items() if k == kind for c in cs})
        p.add_argument("--precision", metavar="P",
                       help=f"compute precision ({', '.join(choices)}; each backend takes some of them)")
    if has("device"):
        p.add_argument("--device", help="OpenVINO device (CPU, GPU, AUTO); TensorRT GPU index")
    if has("hint"):
        p.add_argument("--hint", choices=("latency", "throughput"), help="OpenVINO performance hint")
    if has("cache_dir"):
        p.add_argument("--cache-dir", dest="cache_dir", help="compile/engine cache directory")
    if has("dynamic"):
        p.add_argument("--dynamic", action="append", metavar="SYM=LO:HI",
                       help="range of a symbolic dim (OpenVINO LO:HI; TensorRT profile MIN:OPT:MAX; INT fixes it)")
    if has("num_streams"):
        p.add_argument("--num-streams", dest="num_streams", type=num_streams_arg, metavar="N",
                       help="OpenVINO inference streams (a positive integer, or auto)")
    if has("workspace"):
        p.add_argument("--workspace", type=positive_int, metavar="MB", help="TensorRT builder workspace limit in MiB")
    if has("tf32"):
        p.add_argument("--tf32", action="store_true",
                       help="TensorRT: allow TF32 math in float32 layers (off by default: float32 stays float32)")
    if has("plugin_route"):
        p.add_argument("--plugin-route", dest="plugin_route", choices=("auto", "python", "compiled"),
                       help="OpenVINO route of plugin ops: the C++ op built from cpu.cpp (compiled), the Python "
                            "op (python), or compiled where a C++ toolchain is present (auto, the default; "
                            "as NETDSL_PLUGIN_ROUTE)")
    if has("layer_precision"):
        p.add_argument("--layer-precision", dest="layer_precision", action="append", metavar="PATTERN=TYPE",
                       help="keep layers whose name matches PATTERN (fnmatch) in TYPE (e.g. '*layer_norm*=float32') "
                            "under a reduced --precision; repeatable")
    if has("timing_cache"):
        p.add_argument("--timing-cache", dest="timing_cache", metavar="FILE",
                       help="TensorRT: timing cache file, read if present and updated after the build")
