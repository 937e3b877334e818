"""Darknet ``.weights``, driven by its ``.cfg`` (which says which layers have which weights, in order).

Follows darknet's ``src/parser.c`` (pjreddie/darknet and AlexeyAB/darknet: ``save_weights_upto`` /
``load_weights_upto``). Header: int32 major, minor, revision, then ``seen`` as uint64 when
major*10+minor >= 2 (else uint32); major or minor > 1000 flags connected weights stored transposed.
Then float32 weights layer by layer, in cfg order:

- [convolutional] (not ``share_index``): biases, [scales, rolling_mean, rolling_variance if
  batch_normalize], weights (filters, channels/groups, size, size) -- ``flipped=1`` stores them
  (channels/groups*size*size, filters); [deconvolutional] (pjreddie): the same, weights (c, n, k, k);
- [connected]: biases, weights (outputs, inputs), [scales, rolling_mean, rolling_variance];
- [batchnorm]: scales, rolling_mean, rolling_variance (pjreddie) -- AlexeyAB writes biases first
  (``bn_biases=True``; ``None`` = decided by the file size);
- [shortcut] with ``weights_type=per_feature|per_channel``: (n_from + 1) or (n_from + 1) * c floats;
- [implicit_add]/[implicit_mul]: filters * atoms floats;
- [rnn] input/self/output connected layers; [gru] input_z/r/h, state_z/r/h; [lstm] wf, wi, wg, wo,
  uf, ui, ug, uo; [crnn] input/self/output convolutions; [local] biases, weights.

Every float must be used: leftovers are errors (the .cfg does not match). A file that ends exactly
after a layer is a partial file (``darknet partial`` / ``save_weights_upto`` cutoff, e.g.
``darknet53.conv.74``): darknet stops reading at EOF, so it is accepted with a note; a file that
ends inside a layer is an error.

Names: ``<i>.conv.weight`` / ``<i>.conv.bias`` (bias only without batch norm), ``<i>.bn.weight|bias|
running_mean|running_var``, ``<i>.fc.weight|bias``, ``<i>.shortcut.weight``, ``<i>.implicit.weight``,
``<i>.local.weight|bias``, ``<i>.<sub>.fc|conv|bn.*`` for the sub-layers of recurrent layers (``sub``
as darknet names them: ``input_layer``, ``wf``, ``state_z_layer``...), where ``<i>`` is darknet's
layer index (0 = first layer after [net]). The cfg is ``cfg=`` or the .cfg with the same stem beside
the file (or the only .cfg in its folder).
"""
from __future__ import annotations

import glob
import math
import os
import struct
from typing import Any, Optional

import numpy as np

from .base import Checkpoint, FormatSpec, TensorInfo, mmap_array, register_format
from .paths import allowed_roots, resolve_inside


def parse_cfg(text: str, where: str = "cfg") -> list[tuple[str, dict]]:
    """[(section type, {key: value})] of a darknet .cfg."""
    out: list[tuple[str, dict]] = []
    for ln, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ValueError(f"{where}:{ln}: bad section header {raw.strip()!r}")
            out.append((line[1:-1].strip().lower(), {}))
        elif "=" in line:
            if not out:
                raise ValueError(f"{where}:{ln}: option before any [section]")
            k, v = line.split("=", 1)
            out[-1][1][k.strip()] = v.strip()
        else:
            raise ValueError(f"{where}:{ln}: cannot parse {raw.strip()!r}")
    return out


def _i(opts: dict, k: str, default: int, where: str) -> int:
    try:
        return int(opts.get(k, default))
    except ValueError:
        raise ValueError(f"{where}: option {k}={opts[k]!r} is not an integer") from None


class _Layout:
    """Where each tensor of a darknet file lies, computed from the .cfg as darknet's parser does."""

    def __init__(self, start: int, transposed: bool, bn_biases: bool) -> None:
        self.transposed, self.bn_biases = transposed, bn_biases
        self.entries: list[tuple[str, tuple, str, int, dict]] = []   # name, shape, layer, offset, extra
        self.ends: list[tuple[int, int]] = []                          # (layer index, offset after it)
        self.pos = start

    def put(self, name: str, shape: tuple, layer: str, **extra: Any) -> None:
        self.entries.append((name, tuple(int(d) for d in shape), layer, self.pos, extra))
        self.pos += 4 * math.prod(shape)

    def bn(self, p: str, n: int, layer: str) -> None:
        for role in ("weight", "running_mean", "running_var"):
            self.put(f"{p}.bn.{role}", (n,), layer)

    def conv(self, p: str, c: int, n: int, k: int, groups: int, bn: bool, layer: str, flipped: bool = False,
             deconv: bool = False) -> None:
        """save_convolutional_weights: biases, [scales, rolling_mean, rolling_variance], weights."""
        self.put(f"{p}.bn.bias" if bn else f"{p}.conv.bias", (n,), layer)
        if bn:
            self.bn(p, n, layer)
        self.put(f"{p}.conv.weight", (c, n, k, k) if deconv else (n, c // groups, k, k), layer, flipped=flipped)

    def fc(self, p: str, inputs: int, outputs: int, bn: bool, layer: str) -> None:
        """save_connected_weights: biases, weights (outputs x inputs), [scales, rolling_mean, rolling_variance]."""
        self.put(f"{p}.fc.bias", (outputs,), layer)
        self.put(f"{p}.fc.weight", (outputs, inputs), layer, transposed=self.transposed)
        if bn:
            self.bn(p, outputs, layer)


_INT_MAX = 2**31 - 1  # darknet keeps sizes in C ints: larger ones (e.g. upsampling a huge stride 10^5 times) are corrupt
_NO_WEIGHTS = ("dropout", "yolo", "region", "detection", "softmax", "soft", "cost", "activation", "gaussian_yolo",
               "contrastive", "empty", "silence", "logistic", "l2norm", "normalization", "lrn", "sam",
               "scale_channels")


class DarknetCheckpoint(Checkpoint):
    format = "darknet"

    def _open(self) -> None:
        cfg = self.options.get("cfg")
        if not cfg:  # found beside the file: it must really be there (a symlink out is refused)
            cfg = find_cfg(self.path)
            if cfg:
                cfg = resolve_inside(os.path.dirname(cfg), os.path.basename(cfg), allowed_roots(self.path), ".cfg",
                                     self.path)
        if not cfg or not os.path.isfile(cfg):
            raise self.error("darknet weights need their .cfg: pass cfg=PATH (none found beside the file)")
        self.cfg = cfg
        if os.path.getsize(cfg) > 16 << 20:
            raise self.error(f"{cfg} is too large for a .cfg")
        with open(cfg, encoding="utf8", errors="replace") as f:
            sections = parse_cfg(f.read(), cfg)
        if not sections or sections[0][0] not in ("net", "network"):
            raise self.error(f"{cfg} does not start with [net]")
        size = self.file_size
        with open(self.path, "rb") as f:
            head = f.read(20)
        if len(head) < 16:
            raise self.error("truncated header")
        major, minor, revision = struct.unpack("<3i", head[:12])
        if not (0 <= major < 1000 and 0 <= minor < 1000):
            if major > 1000 or minor > 1000:
                self.notes.append("header flags transposed connected-layer weights")
            else:
                raise self.error(f"implausible header version {major}.{minor}.{revision}")
        wide = major * 10 + minor >= 2
        if wide and len(head) < 20:
            raise self.error("truncated header")
        self.version = (major, minor, revision)
        self.seen = struct.unpack("<Q" if wide else "<I", head[12:20] if wide else head[12:16])[0]
        self._transposed = major > 1000 or minor > 1000
        start = 20 if wide else 16
        has_bn_layer = any(k == "batchnorm" for k, _ in sections[1:])
        choice = self.options.get("bn_biases")
        tries = [bool(choice)] if choice is not None or not has_bn_layer else [False, True]
        layouts = [self._layout(sections, start, t) for t in tries]
        exact = [lay for lay in layouts if lay.pos == size]
        if exact:
            lay = exact[0]
        else:
            lay = layouts[0]
            if lay.pos < size:
                raise self.error(f"{(size - lay.pos) // 4} float(s) ({size - lay.pos} bytes) left over after the "
                                 f"last layer of {cfg}: the .cfg does not match these weights")
            cut = [(li, end) for li, end in lay.ends if end == size]
            if not cut:
                name = next(e[0] for e in lay.entries if e[3] + 4 * math.prod(e[1]) > size)
                raise self.error(f"the file ends at byte {size}, inside the weights of {cfg} layer "
                                 f"{name.split('.')[0]}: truncated, or the .cfg does not match", name)
            last = cut[-1][0]
            self.notes.append(f"partial weights: the file ends after layer {last} (darknet stops reading at "
                              f"the end of the file); later layers have no weights here")
            lay.entries = [e for e in lay.entries if e[3] < size]
        if has_bn_layer and lay.bn_biases:
            self.notes.append("[batchnorm] layers carry biases (AlexeyAB layout)")
        for idx, (name, shape, layer, off, extra) in enumerate(lay.entries):
            self.add(TensorInfo(name, shape, "float32", layer=layer, index=idx, extra={"offset": off, **extra}))

    def _layout(self, sections: list, start: int, bn_biases: bool) -> _Layout:
        cfg = self.cfg
        lay = _Layout(start, self._transposed, bn_biases)
        net = sections[0][1]
        h, w, c = _i(net, "height", 0, cfg), _i(net, "width", 0, cfg), _i(net, "channels", 0, cfg)
        inputs = _i(net, "inputs", h * w * c, cfg)
        shapes: list[tuple[int, int, int]] = []  # (c, h, w) output of each layer
        for li, (kind, o) in enumerate(sections[1:]):
            where = f"{cfg} [{kind}] (layer {li})"
            first = len(lay.entries)
            L = f"{li}:{kind}"

            def opt(k: str, default: int) -> int:
                return _i(o, k, default, where)

            def ref(text: str) -> int:
                try:
                    r = int(text)
                except ValueError:
                    raise self.error(f"{where}: layer reference {text.strip()!r} is not an integer") from None
                j = li + r if r < 0 else r
                if not 0 <= j < len(shapes):
                    raise self.error(f"{where}: refers to layer {r}, which does not exist")
                return j
            if kind in ("convolutional", "conv", "deconvolutional", "deconv"):
                n, k, groups = opt("filters", 1), opt("size", 1), opt("groups", 1)
                stride = opt("stride", 1)
                sx, sy = opt("stride_x", -1), opt("stride_y", -1)
                sx, sy = (sx if sx >= 1 else stride), (sy if sy >= 1 else stride)
                pad = k // 2 if opt("pad", 0) else opt("padding", 0)
                bn = bool(opt("batch_normalize", 0) or opt("cbn", 0))
                if groups < 1 or c < 1 or c % groups or n < 1 or k < 1 or sx < 1 or sy < 1:
                    raise self.error(f"{where}: invalid filters/size/stride/groups for {c} input channels")
                deconv = kind.startswith("deconv")
                if "share_index" not in o:
                    lay.conv(str(li), c, n, k, groups, bn, L, flipped=bool(opt("flipped", 0)), deconv=deconv)
                if deconv:
                    h, w = (h - 1) * sy + k - 2 * pad, (w - 1) * sx + k - 2 * pad
                else:
                    h, w = (h + 2 * pad - k) // sy + 1, (w + 2 * pad - k) // sx + 1
                c = n
                inputs = c * h * w
            elif kind in ("connected", "conn"):
                out = opt("output", 1)
                lay.fc(str(li), inputs, out, bool(opt("batch_normalize", 0)), L)
                c, h, w, inputs = out, 1, 1, out
            elif kind == "batchnorm":
                if bn_biases:
                    lay.put(f"{li}.bn.bias", (c,), L)
                lay.bn(str(li), c, L)
            elif kind in ("rnn", "gru", "lstm"):
                out, bn = opt("output", 1), bool(opt("batch_normalize", 0))
                if kind == "rnn":
                    hidden = opt("hidden", 1)
                    subs = [("input_layer", inputs, hidden), ("self_layer", hidden, hidden),
                            ("output_layer", hidden, out)]
                elif kind == "gru":
                    subs = [(f"input_{g}_layer", inputs, out) for g in "zrh"] + \
                           [(f"state_{g}_layer", out, out) for g in "zrh"]
                else:
                    subs = [(f"w{g}", out, out) for g in "figo"] + [(f"u{g}", inputs, out) for g in "figo"]
                for sub, i_n, o_n in subs:
                    lay.fc(f"{li}.{sub}", i_n, o_n, bn, L)
                c, h, w, inputs = out, 1, 1, out
            elif kind == "crnn":
                k, stride = opt("size", 3), opt("stride", 1)
                pad = k // 2 if opt("pad", 0) else opt("padding", 0)
                hidden, out, groups = opt("hidden", 1), opt("output", 1), opt("groups", 1)
                bn = bool(opt("batch_normalize", 0))
                lay.conv(f"{li}.input_layer", c, hidden, k, groups, bn, L)
                lay.conv(f"{li}.self_layer", hidden, hidden, k, groups, bn, L)
                lay.conv(f"{li}.output_layer", hidden, out, k, groups, bn, L)
                h, w = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
                c = out
                inputs = c * h * w
            elif kind == "local":
                n, k, stride = opt("filters", 1), opt("size", 1), opt("stride", 1)
                if stride < 1:
                    raise self.error(f"{where}: stride must be >= 1")
                oh = (h - (1 if opt("pad", 0) else k)) // stride + 1
                ow = (w - (1 if opt("pad", 0) else k)) // stride + 1
                lay.put(f"{li}.local.bias", (n, oh, ow), L)
                lay.put(f"{li}.local.weight", (oh * ow, n, c * k * k), L)
                c, h, w = n, oh, ow
                inputs = c * h * w
            elif kind == "shortcut":
                refs = [ref(x) for x in o.get("from", "").split(",") if x.strip()]
                if not refs:
                    raise self.error(f"{where}: shortcut without from=")
                wt = o.get("weights_type", "none")
                if wt in ("per_feature", "per_layer"):
                    lay.put(f"{li}.shortcut.weight", (len(refs) + 1,), L)
                elif wt == "per_channel":
                    lay.put(f"{li}.shortcut.weight", (len(refs) + 1, c), L)
                elif wt != "none":
                    raise self.error(f"{where}: unknown weights_type={wt}")
            elif kind in ("implicit_add", "implicit_mul", "implicit"):
                filters, atoms = opt("filters", 128), opt("atoms", 1)
                lay.put(f"{li}.implicit.weight", (filters, atoms, 1), L)
                c, h, w = filters, atoms, 1
                inputs = c * h * w
            elif kind in ("maxpool", "max", "local_avgpool", "local_avg"):
                stride = opt("stride", 1)
                sx, sy = opt("stride_x", stride), opt("stride_y", stride)
                k = opt("size", stride)
                padding = opt("padding", k - 1)
                if sx < 1 or sy < 1:
                    raise self.error(f"{where}: stride must be >= 1")
                if kind in ("maxpool", "max") and opt("maxpool_depth", 0):
                    c = opt("out_channels", 1)
                else:
                    h, w = (h + padding - k) // sy + 1, (w + padding - k) // sx + 1
                inputs = c * h * w
            elif kind in ("avgpool", "avg"):
                h, w = 1, 1
                inputs = c
            elif kind == "upsample":
                s = opt("stride", 2)
                if s == 0:
                    raise self.error(f"{where}: stride must not be 0")
                h, w = (h * s, w * s) if s > 0 else (h // -s, w // -s)
                inputs = c * h * w
            elif kind in ("reorg", "reorg3d"):
                s = opt("stride", 1)
                if s < 1:
                    raise self.error(f"{where}: stride must be >= 1")
                c, h, w = (c // (s * s), h * s, w * s) if opt("reverse", 0) else (c * s * s, h // s, w // s)
                inputs = c * h * w
            elif kind == "crop":
                h, w = opt("crop_height", 1), opt("crop_width", 1)
                inputs = c * h * w
            elif kind == "route":
                refs = [ref(x) for x in o.get("layers", "").split(",") if x.strip()]
                if not refs:
                    raise self.error(f"{where}: route without layers")
                hw = shapes[refs[0]][1:]
                for j in refs[1:]:
                    if shapes[j][1:] != hw:
                        raise self.error(f"{where}: route joins layers of different sizes {hw} and {shapes[j][1:]}")
                c = sum(shapes[j][0] for j in refs) // max(opt("groups", 1), 1)
                h, w = hw
                inputs = c * h * w
            elif kind in _NO_WEIGHTS:
                pass
            else:
                raise self.error(f"{where}: layer type [{kind}] is not supported")
            bad = next((e for e in lay.entries[first:] if any(d < 0 for d in e[1])), None)
            if bad is not None:  # a negative size would move the reading position back
                raise self.error(f"{where}: {bad[0]} would have the negative shape {bad[1]}: the .cfg is corrupt")
            if not all(-_INT_MAX <= v <= _INT_MAX for v in (c, h, w, inputs)):
                raise self.error(f"{where}: output size {c} x {h} x {w} exceeds darknet's int (2^31 - 1): "
                                 "the .cfg is corrupt")
            shapes.append((c, h, w))
            lay.ends.append((li, lay.pos))
        return lay

    def _read(self, info: TensorInfo) -> np.ndarray:
        ex = info.extra
        if ex.get("transposed"):   # load_connected_weights: transpose_matrix(weights, inputs, outputs)
            return mmap_array(self.path, ex["offset"], "float32", info.shape[::-1]).T
        if ex.get("flipped"):      # load_convolutional_weights: transpose_matrix(weights, c/g*k*k, n)
            n = info.shape[0]
            flat = mmap_array(self.path, ex["offset"], "float32", (info.numel // n, n))
            return np.ascontiguousarray(flat.T).reshape(info.shape)
        return mmap_array(self.path, ex["offset"], "float32", info.shape)


def find_cfg(path: str) -> Optional[str]:
    stem = os.path.splitext(path)[0]
    if os.path.isfile(stem + ".cfg"):
        return stem + ".cfg"
    cands = glob.glob(os.path.join(os.path.dirname(os.path.abspath(path)), "*.cfg"))
    return cands[0] if len(cands) == 1 else None


def _detect(path: str, head: bytes) -> int:
    if len(head) < 16 or os.path.isdir(path):
        return 0
    major, minor, rev = struct.unpack("<3i", head[:12])
    if not (0 <= major < 10 and 0 <= minor < 100 and 0 <= rev < 100000):
        return 0
    size = os.path.getsize(path)
    if size % 4:
        return 0
    return 2 if find_cfg(path) else 1


def _open(path: str, **options: Any) -> Checkpoint:
    return DarknetCheckpoint(path, **options)


register_format(FormatSpec("darknet", _detect, _open, (".weights",)))
