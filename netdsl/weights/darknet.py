"""Darknet ``.weights``, driven by its ``.cfg`` (which says which layers have which weights, in order).

Header: int32 major, minor, revision, then ``seen`` as int64 when major*10+minor >= 2 (else int32).
Then float32 weights layer by layer: convolutional = biases, [scales, rolling_mean, rolling_variance
if batch_normalize], weights (filters, channels/groups, size, size); connected = biases, weights
(outputs, inputs), [scales, mean, variance]; batchnorm = scales, mean, variance. Every float must be
used exactly: leftovers or a short file are errors (the .cfg does not match).

Names: ``<i>.conv.weight`` / ``<i>.conv.bias`` (bias only without batch norm), ``<i>.bn.weight|bias|
running_mean|running_var``, ``<i>.fc.weight|bias``, where ``<i>`` is darknet's layer index (0 = first
layer after [net]). The cfg is ``cfg=`` or the .cfg with the same stem beside the file.
"""
from __future__ import annotations

import glob
import os
import struct
from typing import Any, Optional

import numpy as np

from .base import Checkpoint, FormatSpec, TensorInfo, mmap_array, register_format


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


class DarknetCheckpoint(Checkpoint):
    format = "darknet"

    def _open(self) -> None:
        cfg = self.options.get("cfg") or find_cfg(self.path)
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
        self.version = (major, minor, revision)
        self.seen = struct.unpack("<q" if wide else "<i", head[12:20] if wide else head[12:16])[0]
        self._transposed = major > 1000 or minor > 1000
        pos = 20 if wide else 16
        net = sections[0][1]
        h, w, c = _i(net, "height", 0, cfg), _i(net, "width", 0, cfg), _i(net, "channels", 3, cfg)
        shapes: list[tuple[int, int, int]] = []  # (c, h, w) output of each layer
        idx = 0
        for li, (kind, o) in enumerate(sections[1:]):
            where = f"{cfg} [{kind}] (layer {li})"
            entries: list[tuple[str, tuple]] = []
            if kind in ("convolutional", "conv", "deconvolutional", "deconv"):
                n, k = _i(o, "filters", 1, where), _i(o, "size", 1, where)
                stride, groups = _i(o, "stride", 1, where), _i(o, "groups", 1, where)
                pad = _i(o, "padding", 0, where)
                if _i(o, "pad", 0, where):
                    pad = k // 2
                bn = _i(o, "batch_normalize", 0, where)
                if groups < 1 or c % groups or n < 1 or k < 1 or stride < 1:
                    raise self.error(f"{where}: invalid filters/size/groups for {c} input channels")
                entries.append((f"{li}.bn.bias" if bn else f"{li}.conv.bias", (n,)))
                if bn:
                    entries += [(f"{li}.bn.weight", (n,)), (f"{li}.bn.running_mean", (n,)),
                                (f"{li}.bn.running_var", (n,))]
                if kind.startswith("deconv"):
                    entries.append((f"{li}.conv.weight", (c, n, k, k)))
                    h, w = (h - 1) * stride + k - 2 * pad, (w - 1) * stride + k - 2 * pad
                else:
                    entries.append((f"{li}.conv.weight", (n, c // groups, k, k)))
                    h, w = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
                c = n
            elif kind in ("connected", "conn"):
                out = _i(o, "output", 1, where)
                bn = _i(o, "batch_normalize", 0, where)
                inputs = c * h * w
                entries += [(f"{li}.fc.bias", (out,)), (f"{li}.fc.weight", (out, inputs))]
                if bn:
                    entries += [(f"{li}.bn.weight", (out,)), (f"{li}.bn.running_mean", (out,)),
                                (f"{li}.bn.running_var", (out,))]
                c, h, w = out, 1, 1
            elif kind == "batchnorm":
                entries += [(f"{li}.bn.weight", (c,)), (f"{li}.bn.running_mean", (c,)),
                            (f"{li}.bn.running_var", (c,))]
            elif kind in ("maxpool", "max", "local_avgpool"):
                k, stride = _i(o, "size", 2, where), _i(o, "stride", 2, where)
                padding = _i(o, "padding", k - 1, where)
                if stride < 1:
                    raise self.error(f"{where}: stride must be >= 1")
                h, w = (h + padding - k) // stride + 1, (w + padding - k) // stride + 1
            elif kind in ("avgpool", "avg"):
                h, w = 1, 1
            elif kind == "upsample":
                s = _i(o, "stride", 2, where)
                h, w = h * s, w * s
            elif kind == "reorg":
                s = _i(o, "stride", 2, where)
                c, h, w = c * s * s, h // s, w // s
            elif kind == "route":
                refs = [int(x) for x in o.get("layers", "").split(",") if x.strip()]
                if not refs:
                    raise self.error(f"{where}: route without layers")
                total, hw = 0, None
                for r in refs:
                    j = li + r if r < 0 else r
                    if not 0 <= j < len(shapes):
                        raise self.error(f"{where}: route to layer {r} that does not exist")
                    total += shapes[j][0]
                    if hw is not None and shapes[j][1:] != hw:
                        raise self.error(f"{where}: route joins layers of different sizes {hw} and "
                                         f"{shapes[j][1:]}")
                    hw = shapes[j][1:]
                groups = _i(o, "groups", 1, where)
                c, (h, w) = total // max(groups, 1), hw  # type: ignore[misc]
            elif kind in ("shortcut", "scale_channels", "sam", "dropout", "yolo", "region", "detection",
                          "softmax", "cost", "activation", "gaussian_yolo", "contrastive", "empty", "silence",
                          "crop", "logistic", "l2norm"):
                pass
            else:
                raise self.error(f"{where}: layer type [{kind}] is not supported")
            for name, shape in entries:
                n_el = int(np.prod(shape, dtype=np.int64))
                if pos + 4 * n_el > size:
                    raise self.error(f"the file ends at byte {size} but {where} needs {n_el} more floats "
                                     f"from byte {pos}: truncated, or the .cfg does not match", name)
                self.add(TensorInfo(name, tuple(int(d) for d in shape), "float32", layer=f"{li}:{kind}", index=idx,
                                    extra={"offset": pos}))
                idx += 1
                pos += 4 * n_el
            shapes.append((c, h, w))
        left = size - pos
        if left:
            raise self.error(f"{left // 4} float(s) ({left} bytes) left over after the last layer of {cfg}: "
                             "the .cfg does not match these weights")

    def _read(self, info: TensorInfo) -> np.ndarray:
        arr = mmap_array(self.path, info.extra["offset"], "float32", info.shape)
        if self._transposed and ".fc.weight" in info.name:
            arr = arr.reshape(info.shape[::-1]).T
        return arr


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
