"""Binding a checkpoint to a network's parameters: name rules, presets, layout transforms, the strict report.

Binding never reads tensor data: each parameter's ``source`` becomes a lazy reader (memory-mapped
where the format allows) that runs when a backend lowers the graph, and ``origin`` says
``file:tensor``. A missing tensor is never replaced by zeros: the parameter stays unbound. The
rules deciding which tensor becomes which parameter are in docs/BINDING.md.
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from ..errors import WeightError
from ..graph import Graph, Param
from ..shapes import fmt_shape
from .advice import flag, option, prefix_suggestions, transpose_suggestions
from .base import Checkpoint, open_checkpoint
from .darknet_bind import bn_warnings
from .identity import tensor_identity
from .keras_bind import KERAS_BN_EPS, keras_pairs  # noqa: F401  (KERAS_BN_EPS: public constant)
from .layout import Transform, as_transform, reshape_to

PRESETS = ("pytorch", "huggingface", "keras")
#: options passed on to the reader (Darknet cfg/bn_biases, PyTorch pickle_mode/key, HDF5 layout, .wts variant ...)
#: and to open_checkpoint (sha256: the file's expected digest; memory_budget: bytes the file may make it allocate)
READER_OPTIONS = ("cfg", "pickle_mode", "key", "bn_biases", "layout", "variant", "sandbox", "sandbox_timeout",
                  "sha256", "memory_budget")
#: buffers Hugging Face checkpoints carry that are not weights of the model's computation
HF_BUFFERS = (r"(^|\.)position_ids$", r"(^|\.)token_type_ids$", r"(^|\.)attn\.(masked_)?bias$",
              r"(^|\.)num_batches_tracked$")


@dataclass
class Binding:
    param: str
    tensor: str
    shape: tuple  # shape in the file
    transform: Optional[Transform] = None
    dtype: str = ""
    target: tuple = ()  # the parameter's shape


@dataclass
class BindingReport:
    """Outcome of binding: what was bound, and every problem at once (with advice on fixing it)."""

    path: str
    format: str
    bound: list = field(default_factory=list)       # [Binding]
    missing: list = field(default_factory=list)     # [(param, shape)]
    unexpected: list = field(default_factory=list)  # [(tensor, shape)]
    mismatched: list = field(default_factory=list)  # [(param, expected shape, tensor, shape in file, how)]
    ambiguous: list = field(default_factory=list)   # [message]: Keras layers order cannot tell apart
    ignored: list = field(default_factory=list)     # [tensor]
    layer_pairs: list = field(default_factory=list)  # Keras: [(keras layer, module, "name"|"order"|option)]
    advice: list = field(default_factory=list)      # [(option, value, why)]
    warnings: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    applied: bool = False

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched or self.ambiguous)

    def summary(self) -> str:
        s = f"{len(self.bound)} parameter(s) bound from {os.path.basename(self.path)} ({self.format})"
        probs = [f"{len(x)} {w}" for x, w in ((self.missing, "missing"), (self.unexpected, "unexpected"),
                                               (self.mismatched, "mis-shaped"), (self.ambiguous, "ambiguous"))
                 if x]
        if probs:
            s += "; " + ", ".join(probs)
        if self.warnings:
            s += f"; {len(self.warnings)} warning(s)"
        return s

    def __str__(self) -> str:
        lines = [f"binding {self.path} ({self.format}): " + self.summary()]
        if self.layer_pairs:
            lines.append(f"  Keras layers -> modules ({len(self.layer_pairs)}):")
            lines += [f"    {k} -> {m} (by {how})" for k, m, how in self.layer_pairs]
        if self.missing:
            lines.append(f"  missing from the checkpoint ({len(self.missing)}):")
            lines += [f"    {p} {fmt_shape(s)}" for p, s in self.missing]
        if self.unexpected:
            lines.append(f"  unexpected in the checkpoint ({len(self.unexpected)}):")
            lines += [f"    {t} {fmt_shape(s)}" for t, s in self.unexpected]
        if self.mismatched:
            lines.append(f"  shape mismatches ({len(self.mismatched)}):")
            lines += [f"    {p}: network expects {fmt_shape(e)}, {t} has {fmt_shape(g)}"
                      + (f" ({how})" if how else "") for p, e, t, g, how in self.mismatched]
        if self.ambiguous:
            lines.append(f"  ambiguous order matching ({len(self.ambiguous)}):")
            lines += [f"    {a}" for a in self.ambiguous]
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        for n in self.notes:
            lines.append(f"  note: {n}")
        for name, value, why in self.advice:
            lines.append(f"  hint: {why}: {option(name, value)}")
        return "\n".join(lines)

    def table(self) -> str:
        """One line per bound parameter: param <- tensor [transform]."""
        return "\n".join(f"  {b.param} {fmt_shape(b.target)} <- {b.tensor} {fmt_shape(b.shape)}"
                         + (f" [{b.transform.name}]" if b.transform is not None and b.transform.name != "identity"
                            else "") for b in self.bound)


RenameRules = Sequence[tuple]


def load_weights(graph: Any, source: Union[str, os.PathLike, Checkpoint, dict], *, strict: bool = True,
                 format: Optional[str] = None, mapping: Optional[dict] = None,  # noqa: A002
                 prefix: Optional[str] = None, strip_prefix: Union[str, Sequence[str], None] = None,
                 add_prefix: str = "", rename: Optional[RenameRules] = None, preset: Optional[str] = "auto",
                 transforms: Optional[dict] = None, ignore: Optional[Sequence[str]] = None,
                 keras_layers: Optional[dict] = None, keras_order: bool = False,
                 keras_flatten: Union[str, bool] = "auto", **open_options: Any) -> BindingReport:
    """Bind a checkpoint to ``graph``'s parameters; returns a :class:`BindingReport`.

    Checkpoint names become parameter names by these rules, in order (each argument has one meaning):
    ``mapping`` {checkpoint tensor name: parameter name} (exact, wins over the rest); ``prefix``
    keeps only names under it and strips it; ``strip_prefix`` strips the first of these prefixes a
    name has; ``rename`` [(regex, replacement), ...] applied in order; ``add_prefix`` prepended.
    ``ignore`` [regex, ...] drops checkpoint tensors. ``transforms`` {parameter: Transform | name |
    callable} overrides layouts (names: :data:`netdsl.weights.layout.NAMED`).

    Keras files bind layer by layer (docs/BINDING.md): ``keras_layers`` {Keras layer: module path}
    pairs layers with modules explicitly; otherwise a layer binds to the module of the same name (the
    name rules above apply to Keras layer names); ``keras_order=True`` pairs the remaining layers with
    the remaining modules in order, refusing (strict) same-shaped pairs that parallel branches make
    ambiguous; ``keras_flatten`` permutes a Dense after Flatten from NHWC to NCHW order ("auto").

    ``preset``: "pytorch" (drops ``*.num_batches_tracked``, strips a DataParallel ``module.``),
    "huggingface" (also drops the buffers such checkpoints carry: ``position_ids``, ``token_type_ids``,
    attention-mask biases, and ``pooler.*`` when the network has no pooler; strips the base model's
    prefix, e.g. ``bert.``, when the network lacks it; the report lists what was dropped), "keras",
    None, or "auto" (keras for Keras files, pytorch otherwise).

    ``strict``: raise :class:`~netdsl.errors.WeightError` listing every problem, with hints (nothing is
    bound); otherwise bind what matches and return the report. Data is converted to each
    parameter's dtype when read. Reader options (``sha256=`` the file's expected SHA-256,
    ``memory_budget=``, ``pickle_mode=`` ...) go to :func:`~netdsl.weights.open_checkpoint`.
    """
    graph = getattr(graph, "graph", graph)
    if not isinstance(graph, Graph):
        raise TypeError("load_weights expects a netdsl Network or Graph")
    if preset not in PRESETS + ("auto", None):
        raise WeightError(f"{flag('preset')} must be one of {', '.join(PRESETS)}, auto or None; got {preset!r}")
    ckpt = open_checkpoint(source, format=format, **open_options)
    if preset == "auto":
        preset = "keras" if getattr(ckpt, "layout", "") in ("keras2", "keras3") else "pytorch"
    rep = BindingReport(ckpt.path, _format_name(ckpt))
    rep.notes += ckpt.notes
    ignore_re = [re.compile(p) for p in (ignore or [])]
    infos = [i for i in ckpt.infos() if not any(r.search(i.name) for r in ignore_re)]
    rep.ignored += [i.name for i in ckpt.infos() if any(r.search(i.name) for r in ignore_re)]
    rule = _name_rule(prefix, strip_prefix, rename, add_prefix)

    if preset == "keras":
        pairs = keras_pairs(graph, ckpt, infos, rep, mapping=mapping, keras_layers=keras_layers,
                            keras_order=keras_order, name_rule=rule, keras_flatten=keras_flatten)
    else:
        if keras_layers or keras_order:
            raise WeightError(f"{flag('keras_layers')}/{flag('keras_order')} apply to Keras files; {ckpt.path} "
                              f"binds by name ({flag('preset')} {preset!r})")
        pairs = _name_pairs(graph, infos, rep, preset, mapping, rule, auto_strip=not (strip_prefix or prefix))

    plan, taken = _plan(graph, pairs, transforms, rep)
    if ckpt.format == "darknet":
        bn_warnings(graph, {b.param for b in plan}, rep)
    rep.missing = [(n, p.shape) for n, p in graph.params.items() if n not in taken]
    rep.advice += prefix_suggestions([t for t, _ in rep.unexpected], [p for p, _ in rep.missing])
    rep.advice += transpose_suggestions(rep.mismatched)
    rep.bound = plan
    if strict and not rep.ok:
        err = WeightError(f"cannot bind {ckpt.path} strictly (pass {option('strict', False)} to bind what "
                          f"matches):\n{rep}")
        err.report = rep  # type: ignore[attr-defined]
        raise err
    check = _nonfinite_check(ckpt.path, rep)
    for b in plan:
        p = graph.params[b.param]
        p.source = _reader(ckpt, b.tensor, b.transform, p, check)
        p.origin = f"{ckpt.path}:{b.tensor}"
    rep.applied = True
    return rep


def check_options(options: dict) -> None:
    """Refuse names that are not binding options of :func:`load_weights` (a TypeError naming them)."""
    import inspect
    known = set(inspect.signature(load_weights).parameters) - {"graph", "source", "open_options"}
    unknown = sorted(set(options) - known - set(READER_OPTIONS))
    if unknown:
        raise TypeError(f"unknown binding option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}, "
                        f"and reader options {', '.join(READER_OPTIONS)}")


def _plan(graph: Graph, pairs: list, transforms: Optional[dict], rep: BindingReport) -> tuple:
    """Check each (parameter, tensor, transform) pair's shape and dtype: (bindings that pass, parameters
    some tensor was matched to)."""
    transforms = {k: as_transform(v) for k, v in (transforms or {}).items()}
    unknown = sorted(set(transforms) - set(graph.params))
    if unknown:
        raise WeightError(f"{flag('transforms')} name parameters the network does not have: {', '.join(unknown)}")
    plan: list[Binding] = []
    taken: dict[str, str] = {}
    for pname, info, tf in pairs:
        p = graph.params[pname]
        if pname in taken:
            rep.mismatched.append((pname, p.shape, info.name, info.shape,
                                   f"also matched by {taken[pname]!r}: ambiguous mapping"))
            continue
        taken[pname] = info.name
        tf = transforms.get(pname, tf)
        if tf is None and info.extra.get("flat") and tuple(info.shape) != tuple(p.shape) \
                and info.numel == int(np.prod(p.shape, dtype=np.int64)):
            tf = reshape_to(p.shape)  # formats that store no (or only legacy) shapes
        got = info.shape if tf is None else tf.shape(info.shape)
        if tf is not None and tf.shape_fn is not None and got is None:
            rep.mismatched.append((pname, p.shape, info.name, info.shape, f"{tf.name} does not apply"))
            continue
        if got is not None and tuple(got) != tuple(p.shape):
            how = f"after {tf.name}" if tf is not None and tf.name != "identity" else ""
            rep.mismatched.append((pname, p.shape, info.name, info.shape, how))
            continue
        if p.dtype.is_int and np.dtype(info.dtype).kind == "f":
            rep.mismatched.append((pname, p.shape, info.name, info.shape,
                                   f"dtype {info.dtype} cannot bind an {p.dtype} parameter"))
            continue
        if np.dtype(info.dtype).kind == "c" and np.dtype(p.dtype.numpy).kind != "c":
            rep.mismatched.append((pname, p.shape, info.name, info.shape, f"dtype {info.dtype} cannot bind a "
                                   f"{p.dtype} parameter (its imaginary parts would be dropped)"))
            continue
        plan.append(Binding(pname, info.name, info.shape, tf, info.stored or info.dtype, tuple(p.shape)))
    convs = sorted({(b.dtype, str(graph.params[b.param].dtype)) for b in plan
                    if b.dtype != str(graph.params[b.param].dtype)})
    for src, dst in convs:
        k = sum(1 for b in plan if b.dtype == src and str(graph.params[b.param].dtype) == dst)
        rep.notes.append(f"{k} tensor(s) converted from {src} to {dst} when read")
    return plan, set(taken)


def _format_name(ckpt: Checkpoint) -> str:
    detail = getattr(ckpt, "detail", "")
    return f"{ckpt.format}, {detail}" if detail and detail.lower() != ckpt.format else ckpt.format


def _nonfinite_check(path: str, rep: BindingReport) -> Callable[[str, np.ndarray], None]:
    """``check(tensor, arr)``: a tensor holding NaN or Inf binds as it is, but the first one read warns (once per
    checkpoint: a trained checkpoint with NaN is almost always a broken export); each joins ``rep.warnings``."""
    found: set = set()

    def check(tensor: str, arr: np.ndarray) -> None:
        # a finite sum means every value is finite (one pass, no temporary); an infinite one may be an overflow
        if arr.dtype.kind not in "fc" or tensor in found \
                or np.isfinite(np.sum(arr, dtype=np.float64 if arr.dtype.kind == "f" else None)):
            return
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if not bad:
            return
        found.add(tensor)
        msg = f"tensor {tensor!r} holds {bad} NaN/Inf value(s) of {arr.size} (bound as they are)"
        rep.warnings.append(msg)
        if len(found) == 1:
            warnings.warn(f"{path}: {msg}: a broken export? Later such tensors of this checkpoint are listed in "
                          "its binding report's warnings", stacklevel=2)
    return check


def _reader(ckpt: Checkpoint, tensor: str, tf: Optional[Transform], p: Param,
            check: Optional[Callable[[str, np.ndarray], None]] = None) -> Callable[[], np.ndarray]:
    want = p.dtype.numpy

    def read() -> np.ndarray:
        arr = ckpt.read(tensor)
        if check is not None:
            check(tensor, arr)
        if tf is not None:
            try:
                arr = tf(arr)
            except (ValueError, IndexError, TypeError) as e:
                raise WeightError(f"{ckpt.path}: transform {tf.name} of tensor {tensor!r} for parameter "
                                  f"'{p.name}' failed: {e}") from e
        if arr.dtype != want:
            arr = arr.astype(want)
        return arr
    ident = tensor_identity(ckpt, tensor, tf, want)
    if ident is not None:
        read.identity = ident  # type: ignore[attr-defined]  (caches key the weight by it: weights/identity.py)
    return read


# ---- name rules (checkpoint name -> parameter name) ---------------------------------------------------
def _name_rule(prefix: Optional[str], strip_prefix: Any, rename: Optional[RenameRules],
               add_prefix: str) -> Callable[[str], Optional[str]]:
    """name -> parameter name by prefix/strip_prefix/rename/add_prefix (None: outside ``prefix``)."""
    strips = [strip_prefix] if isinstance(strip_prefix, str) else list(strip_prefix or [])
    try:
        rules = [(re.compile(a), b) for a, b in (rename or [])]
    except (re.error, ValueError, TypeError) as e:
        raise WeightError(f"{flag('rename')} needs (regex, replacement) pairs: {e}") from None

    def rule(n: str) -> Optional[str]:
        if prefix:
            if not n.startswith(prefix):
                return None
            n = n[len(prefix):]
        for s in strips:
            if n.startswith(s):
                n = n[len(s):]
                break
        for r, repl in rules:
            n = r.sub(repl, n)
        return add_prefix + n
    return rule


def _name_pairs(graph: Graph, infos: list, rep: BindingReport, preset: Optional[str], mapping: Optional[dict],
                rule: Callable[[str], Optional[str]], auto_strip: bool) -> list:
    mapping = dict(mapping or {})
    bad = sorted(set(mapping.values()) - set(graph.params))
    if bad:
        raise WeightError(f"{flag('mapping')} names parameters the network does not have: {', '.join(bad)}")
    names = {i.name for i in infos}
    absent = sorted(set(mapping) - names)
    if absent:
        raise WeightError(f"{flag('mapping')} names checkpoint tensors that are not in the file: {', '.join(absent)}")
    if preset in ("pytorch", "huggingface") and auto_strip:  # only when the caller gave no prefix rule
        rule = _auto_strip(graph, infos, mapping, rule, rep, preset)
    buffers = [re.compile(p) for p in HF_BUFFERS] if preset == "huggingface" else \
        [re.compile(HF_BUFFERS[-1])] if preset == "pytorch" else []
    targets = {i.name: (mapping[i.name] if i.name in mapping else rule(i.name)) for i in infos}
    has_pooler = any(p.startswith("pooler.") or ".pooler." in p for p in graph.params)
    pairs, dropped, applied = [], [], {}
    for info in infos:
        target = targets[info.name]
        if target is None:
            rep.ignored.append(info.name)
        elif target in graph.params:
            pairs.append((target, info, None))
        elif info.extra.get("applied"):  # the reader already used it on other tensors (Caffe's scale_factor)
            rep.ignored.append(info.name)
            applied.setdefault(info.extra["applied"], []).append(info.name)
        elif any(b.search(info.name) for b in buffers) or (
                preset == "huggingface" and not has_pooler and re.search(r"(^|\.)pooler\.", target)):
            rep.ignored.append(info.name)
            dropped.append(info.name)
        else:
            rep.unexpected.append((info.name, info.shape))
    for why, names in applied.items():
        rep.notes.append(f"ignored {len(names)} tensor(s) the reader already applied ({why}): "
                         + ", ".join(names[:6]) + (" ..." if len(names) > 6 else ""))
    if preset == "huggingface" and dropped:
        rep.notes.append(f"huggingface preset ignored {len(dropped)} tensor(s) the network does not use: "
                         + ", ".join(dropped[:12]) + (" ..." if len(dropped) > 12 else ""))
    return pairs


def _auto_strip(graph: Graph, infos: list, mapping: dict, rule: Callable, rep: BindingReport,
                preset: str) -> Callable:
    """Strip a leading name component the network lacks: DataParallel's ``module.`` (every name has it),
    or with the huggingface preset the base model's prefix (``bert.``) that makes names match."""
    names = [i.name for i in infos if i.name not in mapping]
    params = set(graph.params)
    if not names:
        return rule
    if all(n.startswith("module.") for n in names) and not any(p.startswith("module.") for p in params):
        rep.notes.append("stripped the DataParallel prefix 'module.'")
        return lambda n: rule(n[len("module."):])
    if preset != "huggingface":
        return rule
    counts: dict = {}
    for n in names:
        head, dot, rest = n.partition(".")
        if dot and rule(n) not in params and rule(rest) in params:
            counts[head] = counts.get(head, 0) + 1
    if not counts:
        return rule
    head = max(counts, key=counts.get)
    if any(p.startswith(head + ".") for p in params):
        return rule
    rep.notes.append(f"huggingface preset stripped the base model prefix '{head}.' ({counts[head]} tensor(s))")
    pre = head + "."
    return lambda n: rule(n[len(pre):] if n.startswith(pre) else n)
