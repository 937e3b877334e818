"""Build a serialized TensorRT plan: builder config, optimization profiles, progress, engine cache.

Profiles come from the graph's symbolic input dims. Give them per input
(``profiles={"data": ((1, 3, 224, 224), (4, 3, 224, 224), (16, 3, 224, 224))}``, or a list of such
dicts for several profiles) or per symbol (``dynamic={"N": (1, 8, 16)}``); a symbol given neither
way gets ``DEFAULT_RANGE``.

The cache (``cache_dir``, default ``$NETDSL_CACHE`` or ``~/.cache/netdsl/tensorrt``) keys a plan by
graph structure hash, weights hash, TensorRT flavour+version, target, precision, profiles and
workspace. Entries are written atomically (temp file + ``os.replace``) with a header holding the
plan's SHA-256; an entry that fails the check is rebuilt, never loaded.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ...errors import NetdslError, ShapeError
from ...graph import Graph
from ...shapes import Sym
from . import _trt
from .lower import Lowered, lower

log = logging.getLogger("netdsl.tensorrt")

DEFAULT_RANGE = (1, 1, 32)
MAGIC = b"NETDSL-TRT-PLAN\n"
DEFAULT_WORKSPACE = 1 << 30


@dataclass
class BuildResult:
    """A serialized plan and how it was made."""

    plan: bytes = field(repr=False)
    lowered: Optional[Lowered] = field(repr=False)
    seconds: float
    cached: bool
    key: str
    profiles: list = field(default_factory=list)  # [{input: (min, opt, max)}]
    meta: dict = field(default_factory=dict)


# ---- profiles ------------------------------------------------------------------------------------
def _sym_name(d: Any) -> Optional[str]:
    if isinstance(d, Sym) and len(d.terms) == 1 and d.terms[0][1] == 1 and d.coeff == 1:
        return d.terms[0][0]
    return None


def make_profiles(graph: Graph, profiles: Any = None, dynamic: Optional[dict] = None) -> list[dict]:
    """Normalize profile options to ``[{input name: (min, opt, max)}]`` covering every dynamic input."""
    dyn_inputs = [v for v in graph.inputs if any(isinstance(d, Sym) for d in v.shape)]
    if not dyn_inputs:
        if profiles:
            raise ShapeError(f"network '{graph.name}' has only static inputs: it takes no profiles")
        return []
    plist = profiles if isinstance(profiles, (list, tuple)) else [profiles or {}]
    dynamic = dict(dynamic or {})
    unknown = set(dynamic) - set(graph.symbols)
    if unknown:
        raise ShapeError(f"dynamic={{...}} names unknown symbol(s) {', '.join(sorted(unknown))}; "
                         f"the inputs have {', '.join(graph.symbols) or 'none'}")
    out = []
    for p in plist:
        p = dict(p or {})
        extra = set(p) - {v.name for v in graph.inputs}
        if extra:
            raise ShapeError(f"profiles name unknown input(s) {', '.join(sorted(extra))}")
        prof = {}
        for v in dyn_inputs:
            if v.name in p:
                mn, opt, mx = (tuple(int(d) for d in s) for s in p[v.name])
                for s in (mn, opt, mx):
                    if len(s) != len(v.shape) or any(isinstance(d, int) and d != s[i] for i, d in enumerate(v.shape)):
                        raise ShapeError(f"profile for input '{v.name}' {s} does not fit its shape {v.shape}")
                if not all(a <= b <= c for a, b, c in zip(mn, opt, mx)):
                    raise ShapeError(f"profile for input '{v.name}' needs min <= opt <= max, got {mn}, {opt}, {mx}")
            else:
                dims = []
                for d in v.shape:
                    if isinstance(d, int):
                        dims.append((d, d, d))
                        continue
                    name = _sym_name(d)
                    if name is None:
                        raise ShapeError(f"input '{v.name}' dim {d} is an expression: give profiles={{'{v.name}': "
                                         "(min, opt, max)}")
                    r = tuple(int(x) for x in dynamic.get(name, DEFAULT_RANGE))
                    if len(r) != 3 or not r[0] <= r[1] <= r[2] or r[0] < 0:
                        raise ShapeError(f"dynamic['{name}'] must be (min, opt, max) with min <= opt <= max, got {r}")
                    dims.append(r)
                mn, opt, mx = (tuple(x[i] for x in dims) for i in range(3))
            prof[v.name] = (mn, opt, mx)
        out.append(prof)
    return out


# ---- progress ------------------------------------------------------------------------------------
def progress_monitor(trt: Any, callback: Optional[Callable[[str], None]] = None) -> Any:
    """An IProgressMonitor that logs phases (and calls ``callback(line)``); None if unavailable."""
    base = getattr(trt, "IProgressMonitor", None)
    if base is None:
        return None

    class _Monitor(base):  # type: ignore[misc,valid-type]
        def __init__(self) -> None:
            base.__init__(self)
            self.steps: dict[str, int] = {}

        def _say(self, line: str) -> None:
            log.info("%s", line)
            if callback is not None:
                callback(line)

        def phase_start(self, phase_name: str, parent_phase: Optional[str], num_steps: int) -> None:
            self.steps[phase_name] = num_steps
            self._say(f"build: {'  ' if parent_phase else ''}{phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name: str, step: int) -> bool:
            return True

        def phase_finish(self, phase_name: str) -> None:
            log.debug("build: %s done", phase_name)

    return _Monitor()


# ---- cache ---------------------------------------------------------------------------------------
def cache_dir(path: Optional[str] = None) -> str:
    return path or os.environ.get("NETDSL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "netdsl",
                                                                  "tensorrt")


def cache_key(graph: Graph, trt: Any, precision: str, profiles: list, target: Any, workspace: int) -> str:
    parts = {"structure": graph.structure_hash(), "weights": graph.weights_hash(), "trt": _trt.version_string(trt),
             "precision": precision, "profiles": profiles, "target": repr(target), "workspace": workspace,
             "format": 1}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def write_plan(path: str, plan: bytes, meta: Optional[dict] = None) -> None:
    """Atomically write a plan with a checked header (magic, JSON meta, SHA-256 of the plan)."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    head = json.dumps({**(meta or {}), "sha256": hashlib.sha256(plan).hexdigest(), "size": len(plan)}).encode()
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".netdsl-", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a plan is an ordinary file
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + len(head).to_bytes(4, "little") + head + plan)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_plan(path: str) -> tuple[bytes, dict]:
    """Read a plan written by :func:`write_plan` (or a raw TensorRT plan); raises NetdslError if corrupt."""
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(MAGIC):
        return data, {}
    try:
        n = int.from_bytes(data[len(MAGIC):len(MAGIC) + 4], "little")
        meta = json.loads(data[len(MAGIC) + 4:len(MAGIC) + 4 + n])
        plan = data[len(MAGIC) + 4 + n:]
    except Exception as e:
        raise NetdslError(f"{path}: corrupt plan header ({e})") from None
    if len(plan) != meta.get("size") or hashlib.sha256(plan).hexdigest() != meta.get("sha256"):
        raise NetdslError(f"{path}: plan checksum mismatch (truncated or corrupt file)")
    return plan, meta


# ---- build ---------------------------------------------------------------------------------------
def _set_target(trt: Any, config: Any, target: Any) -> None:
    if target is None:
        return
    targets = [target] if isinstance(target, str) else list(target)
    if not hasattr(config, "set_compute_capability"):
        raise NetdslError(f"target={target!r}: this TensorRT ({_trt.version_string(trt)}) cannot build for a "
                          "chosen compute capability; build on the target GPU instead")
    config.num_compute_capabilities = len(targets)
    for i, t in enumerate(targets):
        name = str(t).upper().replace(".", "")
        name = name if name.startswith("SM") or name == "CURRENT" else "SM" + name
        cc = getattr(trt.ComputeCapability, name, None)
        if cc is None:
            raise NetdslError(f"unknown target {t!r}; choose from {', '.join(trt.ComputeCapability.__members__)}")
        config.set_compute_capability(cc, i)


def build_lowered(lowered: Lowered, profiles: list, workspace: int = DEFAULT_WORKSPACE, target: Any = None,
                  progress: Any = True) -> bytes:
    """Configure the builder and serialize the network; errors name TensorRT's messages."""
    trt, builder, net = lowered.trt, lowered.builder, lowered.network
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace))
    for prof in profiles:
        p = builder.create_optimization_profile()
        for name, (mn, opt, mx) in prof.items():
            p.set_shape(name, mn, opt, mx)
        config.add_optimization_profile(p)
    _set_target(trt, config, target)
    monitor = None
    if progress:
        monitor = progress_monitor(trt, progress if callable(progress) else None)
        if monitor is not None and hasattr(config, "progress_monitor"):
            config.progress_monitor = monitor
        else:
            log.info("build: %s, %d layers", net.name, net.num_layers)
    _trt.take_errors(trt)
    plan = builder.build_serialized_network(net, config)
    if plan is None:
        raise NetdslError(f"TensorRT could not build network '{net.name}': "
                          + (" | ".join(_trt.take_errors(trt)) or "no message (see the netdsl.tensorrt log)"))
    del monitor
    return bytes(memoryview(plan))


def build(graph: Graph, *, precision: str = "float32", profiles: Any = None, dynamic: Optional[dict] = None,
          workspace: int = DEFAULT_WORKSPACE, target: Any = None, flavour: Optional[str] = None,
          cache: bool = True, cache_path: Optional[str] = None, progress: Any = True,
          keep_network: bool = False) -> BuildResult:
    """Lower ``graph`` and build a serialized plan (from the cache when an identical one was built)."""
    trt = _trt.load(flavour)
    profs = make_profiles(graph, profiles, dynamic)
    key = cache_key(graph, trt, precision, profs, target, workspace)
    entry = os.path.join(cache_dir(cache_path), key[:2], key + ".plan")
    if cache and not keep_network and os.path.exists(entry):
        try:
            plan, meta = read_plan(entry)
            log.info("build: %s from the engine cache (%s)", graph.name, entry)
            return BuildResult(plan, None, 0.0, True, key, profs, meta)
        except (NetdslError, OSError) as e:
            log.warning("engine cache entry %s is unusable (%s): rebuilding", entry, e)
    t0 = time.perf_counter()
    lowered = lower(graph, trt, precision=precision)
    plan = build_lowered(lowered, profs, workspace, target, progress)
    dt = time.perf_counter() - t0
    meta = {"network": graph.name, "trt": _trt.version_string(trt), "precision": precision,
            "profiles": profs, "target": repr(target), "layers": lowered.network.num_layers}
    if cache:
        try:
            write_plan(entry, plan, meta)
        except OSError as e:
            log.warning("could not write the engine cache entry %s: %s", entry, e)
    log.info("build: %s built in %.2f s (%d layers, %d bytes)", graph.name, dt, lowered.network.num_layers, len(plan))
    return BuildResult(plan, lowered if keep_network else None, dt, False, key, profs, meta)
