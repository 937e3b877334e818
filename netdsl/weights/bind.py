"""Binding a checkpoint to a network's parameters: name mapping, layout transforms, the strict report.

Binding never reads tensor data: each parameter's ``source`` becomes a lazy reader (memory-mapped
where the format allows) that runs when a backend lowers the graph, and ``origin`` says
``file:tensor``. A missing tensor is never replaced by zeros: the parameter stays unbound.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from ..errors import WeightError
from ..graph import Graph, Param
from ..shapes import fmt_shape
from .base import Checkpoint, TensorInfo, open_checkpoint
from .layout import (Transform, as_transform, dense_to_linear, depthwise_to_grouped, hwio_to_oihw, identity,
                     keras_deconv_to_torch, nhwc_flatten_dense, reshape_to)

KERAS_BN_EPS = 1e-3
_KERAS_ROLES = {"kernel": "weight", "depthwise_kernel": "weight", "embeddings": "weight", "alpha": "weight",
                "gamma": "weight", "beta": "bias", "bias": "bias", "moving_mean": "running_mean",
                "moving_variance": "running_var"}


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
    """Outcome of binding: what was bound, and every problem at once."""

    path: str
    format: str
    bound: list = field(default_factory=list)       # [Binding]
    missing: list = field(default_factory=list)     # [(param, shape)]
    unexpected: list = field(default_factory=list)  # [(tensor, shape)]
    mismatched: list = field(default_factory=list)  # [(param, expected shape, tensor, shape in file, how)]
    ignored: list = field(default_factory=list)     # [tensor]
    warnings: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    applied: bool = False

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        s = f"{len(self.bound)} parameter(s) bound from {os.path.basename(self.path)} ({self.format})"
        probs = [f"{len(x)} {w}" for x, w in ((self.missing, "missing"), (self.unexpected, "unexpected"),
                                               (self.mismatched, "mis-shaped")) if x]
        if probs:
            s += "; " + ", ".join(probs)
        if self.warnings:
            s += f"; {len(self.warnings)} warning(s)"
        return s

    def __str__(self) -> str:
        lines = [f"binding {self.path} ({self.format}): " + self.summary()]
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
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        for n in self.notes:
            lines.append(f"  note: {n}")
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
                 keras_flatten: Union[str, bool] = "auto", **open_options: Any) -> BindingReport:
    """Bind a checkpoint to ``graph``'s parameters; returns a :class:`BindingReport`.

    Name mapping (checkpoint name -> parameter name), in this order: ``mapping`` {ckpt name: param}
    (exact, wins); ``prefix`` keeps only tensors under it and strips it; ``strip_prefix`` strips one
    of these prefixes where present; ``rename`` [(regex, replacement), ...] applied in order;
    ``add_prefix``. ``ignore`` regexes drop checkpoint tensors silently.

    ``preset``: "pytorch" (drops ``*.num_batches_tracked``, strips a DataParallel ``module.`` prefix),
    "keras" (Keras layers -> our modules by ``mapping`` {keras layer: module} or by layer order, with
    the layout transforms; warns about batch-norm epsilon), None, or "auto" (keras for Keras HDF5
    files, pytorch otherwise). ``transforms`` {param: Transform | name | callable} overrides layouts.
    Conversion to each parameter's dtype happens when read. ``strict``: raise
    :class:`~netdsl.errors.WeightError` listing every problem (nothing is bound); otherwise bind what
    matches and return the report.
    """
    graph = getattr(graph, "graph", graph)
    if not isinstance(graph, Graph):
        raise TypeError("load_weights expects a netdsl Network or Graph")
    ckpt = open_checkpoint(source, format=format, **open_options)
    if preset == "auto":
        preset = "keras" if getattr(ckpt, "layout", "") in ("keras2", "keras3") else "pytorch"
    if preset not in ("pytorch", "keras", None):
        raise ValueError(f"preset must be 'pytorch', 'keras', 'auto' or None, not {preset!r}")
    rep = BindingReport(ckpt.path, _format_name(ckpt))
    rep.notes += ckpt.notes
    ignore_re = [re.compile(p) for p in (ignore or [])]
    infos = [i for i in ckpt.infos() if not any(r.search(i.name) for r in ignore_re)]
    rep.ignored += [i.name for i in ckpt.infos() if any(r.search(i.name) for r in ignore_re)]

    if preset == "keras":
        pairs = _keras_pairs(graph, ckpt, infos, mapping, rep, keras_flatten)
    else:
        pairs = _name_pairs(graph, infos, rep, preset, mapping, prefix, strip_prefix, add_prefix, rename)

    transforms = {k: as_transform(v) for k, v in (transforms or {}).items()}
    unknown = sorted(set(transforms) - set(graph.params))
    if unknown:
        raise WeightError(f"transforms name parameters the network does not have: {', '.join(unknown)}")
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
        plan.append(Binding(pname, info.name, info.shape, tf, info.stored or info.dtype, tuple(p.shape)))
    rep.missing = [(n, p.shape) for n, p in graph.params.items() if n not in taken]
    convs = sorted({(b.dtype, str(graph.params[b.param].dtype)) for b in plan
                    if b.dtype != str(graph.params[b.param].dtype)})
    for src, dst in convs:
        k = sum(1 for b in plan if b.dtype == src and str(graph.params[b.param].dtype) == dst)
        rep.notes.append(f"{k} tensor(s) converted from {src} to {dst} when read")
    rep.bound = plan
    if strict and not rep.ok:
        err = WeightError(f"cannot bind {ckpt.path} strictly (pass strict=False to bind what matches):\n{rep}")
        err.report = rep  # type: ignore[attr-defined]
        raise err
    for b in plan:
        p = graph.params[b.param]
        p.source = _reader(ckpt, b.tensor, b.transform, p)
        p.origin = f"{ckpt.path}:{b.tensor}"
    rep.applied = True
    return rep


def _format_name(ckpt: Checkpoint) -> str:
    detail = getattr(ckpt, "detail", "")
    return f"{ckpt.format}, {detail}" if detail and detail.lower() != ckpt.format else ckpt.format


def _reader(ckpt: Checkpoint, tensor: str, tf: Optional[Transform], p: Param) -> Callable[[], np.ndarray]:
    want = p.dtype.numpy

    def read() -> np.ndarray:
        arr = ckpt.read(tensor)
        if tf is not None:
            try:
                arr = tf(arr)
            except (ValueError, IndexError, TypeError) as e:
                raise WeightError(f"{ckpt.path}: transform {tf.name} of tensor {tensor!r} for parameter "
                                  f"'{p.name}' failed: {e}") from e
        if arr.dtype != want:
            arr = arr.astype(want)
        return arr
    return read


# ---- name-based mapping (PyTorch-style names) ------------------------------------------------------
def _name_pairs(graph: Graph, infos: list, rep: BindingReport, preset: Optional[str], mapping: Optional[dict],
                prefix: Optional[str], strip_prefix: Any, add_prefix: str, rename: Optional[RenameRules]) -> list:
    mapping = dict(mapping or {})
    strips = [strip_prefix] if isinstance(strip_prefix, str) else list(strip_prefix or [])
    rules = [(re.compile(a), b) for a, b in (rename or [])]
    if preset == "pytorch":
        names = [i.name for i in infos if i.name not in mapping]
        if names and all(n.startswith("module.") for n in names) and not any(
                p.startswith("module.") for p in graph.params):
            strips.append("module.")
            rep.notes.append("stripped the DataParallel prefix 'module.'")
    pairs = []
    for info in infos:
        if info.name in mapping:
            target = mapping[info.name]
        else:
            n = info.name
            if prefix:
                if not n.startswith(prefix):
                    rep.ignored.append(n)
                    continue
                n = n[len(prefix):]
            for s in strips:
                if n.startswith(s):
                    n = n[len(s):]
                    break
            for r, repl in rules:
                n = r.sub(repl, n)
            target = add_prefix + n
        if target in graph.params:
            pairs.append((target, info, None))
        elif preset == "pytorch" and info.name.endswith("num_batches_tracked"):
            rep.ignored.append(info.name)
        else:
            rep.unexpected.append((info.name, info.shape))
    bad = sorted(set(mapping.values()) - set(graph.params))
    if bad:
        raise WeightError(f"mapping names parameters the network does not have: {', '.join(bad)}")
    return pairs


# ---- Keras ----------------------------------------------------------------------------------------
def _keras_pairs(graph: Graph, ckpt: Checkpoint, infos: list, mapping: Optional[dict], rep: BindingReport,
                 keras_flatten: Union[str, bool]) -> list:
    # Keras layers with weights, in file order
    layers: dict[str, list[TensorInfo]] = {}
    for i in infos:
        key = i.name.rsplit("/vars/", 1)[0] if "/vars/" in i.name else (i.layer or i.name.rsplit("/", 1)[0])
        layers.setdefault(key, []).append(i)
    display = {k: (v[0].layer or k) for k, v in layers.items()}
    # our modules with parameters, in declaration order
    modules: dict[str, list[str]] = {}
    for n in graph.params:
        modules.setdefault(n.rsplit(".", 1)[0] if "." in n else "", []).append(n)
    assign: dict[str, str] = {}
    if mapping:
        by_name = {}
        for k in layers:
            by_name[k] = k
            by_name.setdefault(display[k], k)
        for kl, mod in mapping.items():
            if kl not in by_name:
                raise WeightError(f"mapping names Keras layer {kl!r}, not in {ckpt.path} (layers: "
                                  f"{', '.join(display[k] for k in layers)})")
            if mod not in modules:
                raise WeightError(f"mapping names module {mod!r}, which has no parameters in the network "
                                  f"(modules: {', '.join(modules)})")
            assign[by_name[kl]] = mod
    else:
        lk, mk = list(layers), list(modules)
        if len(lk) != len(mk):
            rep.warnings.append(f"matching by layer order, but the Keras file has {len(lk)} layers with weights "
                                f"({', '.join(display[k] for k in lk)}) and the network has {len(mk)} modules with "
                                f"parameters ({', '.join(mk)}); pass mapping={{keras_layer: module}}")
        assign = dict(zip(lk, mk))
        rep.notes.append("Keras layers matched to modules by order: "
                         + ", ".join(f"{display[k]}->{m}" for k, m in assign.items()))
    consumers = graph.consumers()
    param_nodes = {n.attrs["name"]: n for n in graph.nodes if n.op == "parameter"}
    pairs = []
    used_mods = set()
    for lk, tensors in layers.items():
        mod = assign.get(lk)
        if mod is None:
            rep.unexpected += [(t.name, t.shape) for t in tensors]
            continue
        used_mods.add(mod)
        params = modules[mod]
        targets = _keras_roles(tensors, params)
        for t, pname in zip(tensors, targets):
            if pname is None:
                rep.unexpected.append((t.name, t.shape))
                continue
            user = _weight_user(param_nodes.get(pname), consumers)
            tf = _keras_transform(t, graph.params[pname], user, graph, keras_flatten, rep)
            pairs.append((pname, t, tf))
            if user is not None and user.op == "batch_norm" and pname.endswith("running_var"):
                eps = float(user.attrs.get("eps", 1e-5))
                want = _keras_eps(ckpt, display[lk])
                if abs(eps - want) > 1e-12:
                    rep.warnings.append(f"batch_norm '{user.name}' uses eps={eps:g} but Keras layer "
                                        f"'{display[lk]}' used eps={want:g}"
                                        + (" (Keras' default)" if want == KERAS_BN_EPS else "")
                                        + f"; outputs will differ: declare eps={want:g} in the network")
    return pairs


def _keras_roles(tensors: list, params: list) -> list:
    """Our parameter for each Keras weight of one layer: by role name (Keras 2), else by position."""
    suffix = {p.rsplit(".", 1)[-1]: p for p in params}
    out: list = []
    for i, t in enumerate(tensors):
        base = t.name.rsplit("/", 1)[-1].split(":")[0]
        role = _KERAS_ROLES.get(base)
        if role is not None and role in suffix:
            out.append(suffix[role])
        elif "/vars/" in t.name or role is None:
            out.append(params[i] if i < len(params) else None)
        else:
            out.append(None)
    return out


def _weight_user(pnode: Any, consumers: dict) -> Any:
    if pnode is None:
        return None
    for n in consumers.get(id(pnode.outputs[0]), []):
        return n
    return None


def _keras_transform(t: TensorInfo, p: Param, user: Any, graph: Graph, keras_flatten: Any,
                     rep: BindingReport) -> Optional[Transform]:
    s = tuple(t.shape)
    if user is None or len(s) <= 1:
        return identity()
    widx = 1
    if user.op == "conv" and user.inputs[widx] is not None and user.inputs[widx].name == p.name:
        if user.attrs.get("groups", 1) > 1 and len(s) == 4 and p.shape[1] == 1 and s[3] * s[2] == p.shape[0]:
            return depthwise_to_grouped()
        return hwio_to_oihw(len(s))
    if user.op == "conv_transpose" and user.inputs[widx] is not None and user.inputs[widx].name == p.name:
        return keras_deconv_to_torch(len(s))
    if user.op == "linear" and len(s) == 2 and user.inputs[1] is not None and user.inputs[1].name == p.name:
        src = user.inputs[0].producer if user.inputs[0] is not None else None
        if keras_flatten and src is not None and src.op in ("flatten", "reshape") and src.inputs[0] is not None:
            pre = src.inputs[0].shape
            if len(pre) == 4 and all(isinstance(d, int) for d in pre[1:]) and pre[2] * pre[3] > 1 and pre[1] > 1:
                c, h, w = pre[1:]
                rep.notes.append(f"'{p.name}': Dense after Flatten, rows permuted from Keras' NHWC order to NCHW "
                                 f"(C,H,W)=({c},{h},{w}) (keras_flatten=False to disable)")
                return nhwc_flatten_dense(c, h, w)
        return dense_to_linear()
    return identity()


def _keras_eps(ckpt: Checkpoint, layer: str) -> float:
    cfg = getattr(ckpt, "keras_layer_config", None)
    if cfg is not None:
        c = cfg(layer)
        if c and "epsilon" in c:
            return float(c["epsilon"])
    return KERAS_BN_EPS
