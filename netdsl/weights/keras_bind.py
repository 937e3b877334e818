"""Keras files: which Keras layer binds to which module, and which of its weights to which parameter.

The rules (docs/BINDING.md has them with examples):

1. **Layer -> module.** A *module* is the path of the parameters' owner (``block1.conv`` for
   ``block1.conv.weight``); a ``SeparableConv2d``'s ``depthwise``/``pointwise`` children count as one
   module, since Keras stores them as one layer. A Keras layer binds to the module given by
   ``keras_layers={keras layer: module}``, else to the module whose path equals the layer's name
   (a Keras 3 layer stored under an attribute of a subclassed model: its attribute path first, then
   its name; after the name rules ``prefix``/``strip_prefix``/``rename``/``add_prefix``, with ``/`` read as
   ``.``). Only with ``keras_order=True`` are the layers left over paired with the modules left over
   in order (file order against declaration order); then two same-shaped layers paired with modules
   that no data path orders (parallel branches) are *ambiguous*: refused when strict, warned otherwise.
2. **Weight -> parameter.** Keras 2 weights are named: :data:`KERAS_ROLES` gives, for each Keras
   weight name, the parameter names it binds to inside the module (the first one the module has).
   Keras 3 files number their weights (``vars/0``...): the i-th binds to the module's i-th parameter
   in declaration order. Unknown names bind by position too.
3. **Layout.** The transform follows the op that uses the parameter: HWIO -> OIHW for a convolution,
   (H, W, C, M) -> (C*M, 1, H, W) for a depthwise one, (H, W, out, in) -> (in, out, H, W) for a
   transposed one, (in, out) -> (out, in) for a linear layer (rows permuted from NHWC to NCHW order
   when it follows a Flatten of a 4-d map, unless ``keras_flatten=False``).
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Callable, Optional, Union

from ..errors import WeightError
from ..graph import Graph, Param
from .advice import flag, option
from .base import Checkpoint, TensorInfo
from .layout import (Transform, dense_to_linear, depthwise_to_grouped, hwio_to_oihw, identity, keras_deconv_to_torch,
                     nhwc_flatten_dense)

KERAS_BN_EPS = 1e-3

#: Keras weight name -> the parameter it binds to inside the module (the first of these the module has).
KERAS_ROLES: dict[str, tuple] = {
    "kernel": ("weight",),                                  # Conv*, Conv*Transpose, Dense
    "depthwise_kernel": ("depthwise.weight", "weight"),     # SeparableConv2D / DepthwiseConv2D
    "pointwise_kernel": ("pointwise.weight",),              # SeparableConv2D
    "bias": ("pointwise.bias", "bias"),
    "gamma": ("weight",), "beta": ("bias",),                # BatchNormalization, LayerNormalization
    "moving_mean": ("running_mean",), "moving_variance": ("running_var",),
    "embeddings": ("weight",),                              # Embedding
    "alpha": ("weight",),                                   # PReLU
}
#: children that one Keras layer holds together (SeparableConv2D = depthwise + pointwise)
JOINED_CHILDREN = ("depthwise", "pointwise")


def module_units(graph: Graph) -> "OrderedDict[str, list]":
    """Module path -> its parameter names, in declaration order (a separable pair joined)."""
    leaf: OrderedDict = OrderedDict()
    for n in graph.params:
        leaf.setdefault(n.rsplit(".", 1)[0] if "." in n else "", []).append(n)
    units: OrderedDict = OrderedDict()
    for u, ps in leaf.items():
        parent, _, child = u.rpartition(".")
        pre = parent + "." if parent else ""
        joined = child in JOINED_CHILDREN and all(pre + c in leaf for c in JOINED_CHILDREN)
        units.setdefault(parent if joined else u, []).extend(ps)
    return units


def keras_layers_of(infos: list) -> tuple:
    """(OrderedDict layer key -> its tensors in file order, {key: the layer's name})."""
    layers: OrderedDict = OrderedDict()
    for i in infos:
        key = i.name.rsplit("/vars/", 1)[0] if "/vars/" in i.name else (i.layer or i.name.rsplit("/", 1)[0])
        layers.setdefault(key, []).append(i)
    return layers, {k: (v[0].layer or k) for k, v in layers.items()}


def _attribute_path(info: TensorInfo) -> bool:
    """Whether a Keras 3 layer is stored under an attribute name (``head/vars/0``, ``block1/...``)
    rather than as an entry of a layer list (``layers/conv2d_1/vars/0``, named by Keras)."""
    path = (info.extra or {}).get("path", "")
    if "/vars/" not in path:
        return False
    parts = path.rsplit("/vars/", 1)[0].split("/")
    return len(parts) == 1 or parts[-2] not in ("layers", "_layer_checkpoint_dependencies")


def keras_pairs(graph: Graph, ckpt: Checkpoint, infos: list, rep: Any, *, mapping: Optional[dict],
                keras_layers: Optional[dict], keras_order: bool, name_rule: Callable[[str], Optional[str]],
                keras_flatten: Union[str, bool]) -> list:
    """[(parameter, TensorInfo, Transform)] for a Keras file; fills the report's pairs and problems."""
    mapping = dict(mapping or {})
    layers, display = keras_layers_of([i for i in infos if i.name not in mapping])
    names = {i.name for i in infos}
    for k in mapping:
        if k not in names:
            lay = [d for d in display.values() if d == k]
            hint = f": {k!r} is a Keras layer, use {option('keras_layers', {k: mapping[k]})}" if lay else ""
            raise WeightError(f"{flag('mapping')} maps checkpoint tensor names to parameter names; {ckpt.path} has "
                              f"no tensor {k!r}{hint}")
    bad = sorted(set(mapping.values()) - set(graph.params))
    if bad:
        raise WeightError(f"{flag('mapping')} names parameters the network does not have: {', '.join(bad)}")
    units = module_units(graph)
    assign = _assign(graph, ckpt, layers, display, units, keras_layers, keras_order, name_rule, rep)
    consumers = graph.consumers()
    param_nodes = {n.attrs["name"]: n for n in graph.nodes if n.op == "parameter"}
    pairs = []
    for i in infos:
        if i.name in mapping:
            p = graph.params[mapping[i.name]]
            pairs.append((p.name, i, _transform(i, p, _user(param_nodes.get(p.name), consumers), keras_flatten, rep)))
    for key, tensors in layers.items():
        unit = assign.get(key)
        if unit is None and name_rule(display[key]) is None:
            rep.ignored += [t.name for t in tensors]
            continue
        if unit is None:
            rep.unexpected += [(t.name, t.shape) for t in tensors]
            continue
        for t, pname in zip(tensors, _roles(tensors, unit, units[unit])):
            if pname is None:
                rep.unexpected.append((t.name, t.shape))
                continue
            user = _user(param_nodes.get(pname), consumers)
            pairs.append((pname, t, _transform(t, graph.params[pname], user, keras_flatten, rep)))
            if user is not None and user.op == "batch_norm" and pname.endswith("running_var"):
                _eps_warning(ckpt, display[key], user, rep)
    return pairs


def _assign(graph: Graph, ckpt: Checkpoint, layers: OrderedDict, display: dict, units: OrderedDict,
            keras_layers: Optional[dict], keras_order: bool, name_rule: Callable, rep: Any) -> dict:
    """Keras layer key -> module path, by keras_layers, then by name, then (if asked) by order."""
    assign: dict = {}
    taken: set = set()
    by_display = {}
    for k in layers:
        by_display.setdefault(display[k], k)
        by_display.setdefault(k, k)
    for kl, mod in (keras_layers or {}).items():
        if kl not in by_display:
            raise WeightError(f"{flag('keras_layers')} names Keras layer {kl!r}, not in {ckpt.path} (layers with "
                              f"weights: {', '.join(display[k] for k in layers)})")
        if mod not in units:
            raise WeightError(f"{flag('keras_layers')} names module {mod!r}, which has no parameters in the "
                              f"network (modules: {', '.join(units)})")
        assign[by_display[kl]] = mod
        taken.add(mod)
        rep.layer_pairs.append((display[by_display[kl]], mod, flag("keras_layers")))
    skipped = set()
    # a layer stored under an attribute name (subclassed models) binds by that path first: its own name
    # may be one Keras generated (``conv2d_3``) and so depend on what else the session built; then by its
    # name; then (second pass) by the path the file stores it under (``block1/conv2d_1``)
    for second in (False, True):
        for k in layers:
            if k in assign or k in skipped:
                continue
            attr = _attribute_path(layers[k][0])
            tried = ([k] if attr else []) + [display[k]] if not second else [k] if not attr and k != display[k] else []
            names = [(t, name_rule(t)) for t in tried]
            if not second and all(n is None for _, n in names):
                skipped.add(k)
                continue
            for t, cand in ((t, c) for t, n in names if n is not None for c in (n, n.replace("/", "."))):
                if cand in units and cand not in taken:
                    assign[k] = cand
                    taken.add(cand)
                    rep.layer_pairs.append((t, cand, "name" if t == display[k] else "path"))
                    break
    left = [k for k in layers if k not in assign and k not in skipped]
    free = [u for u in units if u not in taken]
    if not left:
        return assign
    if not keras_order:
        if free:
            rep.advice.append(("keras_layers", {display[k]: "MODULE" for k in left[:3]},
                               f"{len(left)} Keras layer(s) match no module by name ({', '.join(display[k] for k in left[:6])}"
                               f"{' ...' if len(left) > 6 else ''}); name the modules after them, map them"))
            rep.advice.append(("keras_order", True, "or pair the rest in order (checked for ambiguity)"))
        return assign
    if len(left) != len(free):
        rep.warnings.append(f"matching by order, but {len(left)} Keras layer(s) with weights are left "
                            f"({', '.join(display[k] for k in left)}) and {len(free)} module(s) "
                            f"({', '.join(free)})")
    if getattr(ckpt, "layout", "") == "keras3":
        rep.warnings.append("a Keras 3 weights file does not record the order of layers of different types: "
                            "order matching follows the storage order; prefer names "
                            f"({flag('keras_layers')} or modules named after the Keras layers)")
    order_pairs = list(zip(left, free))
    for k, u in order_pairs:
        assign[k] = u
        rep.layer_pairs.append((display[k], u, "order"))
    _ambiguity(graph, layers, display, units, order_pairs, rep)
    return assign


def _ambiguity(graph: Graph, layers: OrderedDict, display: dict, units: OrderedDict, order_pairs: list,
               rep: Any) -> None:
    """Same-shaped layers paired by order with modules no data path orders: either pairing fits."""
    groups: dict = {}
    for k, u in order_pairs:
        groups.setdefault(tuple(tuple(t.shape) for t in layers[k]), []).append((k, u))
    groups = {s: g for s, g in groups.items() if len(g) > 1}
    if not groups:
        return
    linked = _linked(graph, units)
    for g in groups.values():
        for a in range(len(g)):
            for b in range(a + 1, len(g)):
                (ka, ua), (kb, ub) = g[a], g[b]
                if not linked(ua, ub):
                    rep.ambiguous.append(
                        f"Keras layers '{display[ka]}' and '{display[kb]}' have the same shapes and were paired by "
                        f"order with '{ua}' and '{ub}', which no data path orders (parallel branches): either "
                        f"pairing fits; name the modules after the Keras layers or pass "
                        f"{option('keras_layers', {display[ka]: ua, display[kb]: ub})}")


def _linked(graph: Graph, units: OrderedDict) -> Callable[[str, str], bool]:
    """linked(u, v): some layer using u's parameters feeds (directly or not) one using v's, or back."""
    idx = {id(n): i for i, n in enumerate(graph.nodes)}
    anc = [0] * len(graph.nodes)
    for i, n in enumerate(graph.nodes):
        m = 0
        for v in n.inputs:
            j = idx.get(id(v.producer)) if v is not None and v.producer is not None else None
            if j is not None:
                m |= anc[j] | (1 << j)
        anc[i] = m
    consumers = graph.consumers()
    users: dict = {}
    pnodes = {n.attrs["name"]: n for n in graph.nodes if n.op == "parameter"}
    for u, ps in units.items():
        users[u] = {idx[id(c)] for p in ps if p in pnodes for c in consumers.get(id(pnodes[p].outputs[0]), [])}

    def before(a: str, b: str) -> bool:
        return any((anc[j] >> i) & 1 for i in users[a] for j in users[b])
    return lambda a, b: before(a, b) or before(b, a)


def _roles(tensors: list, unit: str, params: list) -> list:
    """The parameter each Keras weight of one layer binds to (None: no place for it)."""
    pre = unit + "." if unit else ""
    rel = {p[len(pre):]: p for p in params}
    out: list = []
    used: set = set()
    for i, t in enumerate(tensors):
        base = t.name.rsplit("/", 1)[-1].split(":")[0]
        roles = KERAS_ROLES.get(base)
        target = None
        if roles is not None and "/vars/" not in t.name:
            target = next((rel[r] for r in roles if r in rel and rel[r] not in used), None)
        elif i < len(params) and params[i] not in used:
            target = params[i]
        if target is not None:
            used.add(target)
        out.append(target)
    return out


def _user(pnode: Any, consumers: dict) -> Any:
    if pnode is None:
        return None
    for n in consumers.get(id(pnode.outputs[0]), []):
        return n
    return None


def _transform(t: TensorInfo, p: Param, user: Any, keras_flatten: Any, rep: Any) -> Optional[Transform]:
    s = tuple(t.shape)
    if user is None or len(s) <= 1:
        return identity()
    w = user.inputs[1] if len(user.inputs) > 1 else None
    if w is None or w.name != p.name:
        return identity()
    if user.op == "conv":
        if user.attrs.get("groups", 1) > 1 and len(s) == 4 and p.shape[1] == 1 and s[3] * s[2] == p.shape[0]:
            return depthwise_to_grouped()
        return hwio_to_oihw(len(s))
    if user.op == "conv_transpose":
        return keras_deconv_to_torch(len(s))
    if user.op == "linear" and len(s) == 2:
        src = user.inputs[0].producer if user.inputs[0] is not None else None
        if keras_flatten and src is not None and src.op in ("flatten", "reshape") and src.inputs[0] is not None:
            pre = src.inputs[0].shape
            if len(pre) == 4 and all(isinstance(d, int) for d in pre[1:]) and pre[2] * pre[3] > 1 and pre[1] > 1:
                c, h, w_ = pre[1:]
                rep.notes.append(f"'{p.name}': Dense after Flatten, rows permuted from Keras' NHWC order to NCHW "
                                 f"(C,H,W)=({c},{h},{w_}) ({option('keras_flatten', False)} to disable)")
                return nhwc_flatten_dense(c, h, w_)
        return dense_to_linear()
    return identity()


def _eps_warning(ckpt: Checkpoint, layer: str, user: Any, rep: Any) -> None:
    eps = float(user.attrs.get("eps", 1e-5))
    want = KERAS_BN_EPS
    cfg = getattr(ckpt, "keras_layer_config", None)
    c = cfg(layer) if cfg is not None else None
    file_eps = c.get("epsilon") if c else None
    if isinstance(file_eps, (int, float)) and not isinstance(file_eps, bool) and math.isfinite(file_eps):
        want = float(file_eps)  # anything else in the file's model_config (text, null, a list) is not an epsilon
    if abs(eps - want) > 1e-12:
        rep.warnings.append(f"batch_norm '{user.name}' uses eps={eps:g} but Keras layer '{layer}' used eps={want:g}"
                            + (" (Keras' default)" if want == KERAS_BN_EPS else "")
                            + f"; outputs will differ: declare eps={want:g} in the network")


def roles_table() -> str:
    """The Keras weight-name rules as text (for docs and ``--help``)."""
    return "\n".join(f"  {k:<18} -> {' | '.join(v)}" for k, v in KERAS_ROLES.items())


