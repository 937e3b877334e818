"""Caffe ``.caffemodel``: a hand-written reader of the NetParameter protobuf (V1 ``layers`` and V2 ``layer``).

Blobs are named ``<layer>.<role>``: weight/bias for Convolution, Deconvolution, InnerProduct and
Scale, running_mean/running_var/scale_factor for BatchNorm (Caffe stores mean and variance
multiplied by scale_factor: they are read divided by it, as BatchNormLayer::Forward_cpu does; 0 -> 0),
weight for PReLU, ``<layer>.<i>`` otherwise. Field numbers are BVLC/caffe ``caffe.proto``'s:
NetParameter.layer = 100 (LayerParameter name 1, type 2 string, blobs 7), NetParameter.layers = 2
(V1LayerParameter name 4, type 5 enum, blobs 6; its ``layer`` = 1 is a V0LayerParameter: name 1,
type 2 string, blobs 50), BlobProto num/channels/height/width 1-4, data 5, diff 6, shape 7
(BlobShape dim 1), double_data 8. Packed
float data is memory-mapped. Shapes come from ``shape`` or the legacy num/channels/height/width
(legacy 4-d shapes such as (1, 1, out, in) are marked ``flat`` so binding may reshape them).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import FormatSpec, MappedCheckpoint, TensorInfo, describe, mmap_array, register_format
from .protobuf import FIXED32, FIXED64, LEN, VARINT, ProtoError, collect_repeated, count_values, fields, \
    packed_varints, read_varint, signed64, string

_ROLES = {"Convolution": ["weight", "bias"], "Deconvolution": ["weight", "bias"],
          "InnerProduct": ["weight", "bias"], "Scale": ["weight", "bias"], "PReLU": ["weight"],
          "BatchNorm": ["running_mean", "running_var", "scale_factor"], "Bias": ["bias"],
          "Embed": ["weight", "bias"], "DepthwiseConvolution": ["weight", "bias"], "ConvolutionDepthwise":
          ["weight", "bias"]}
# V1LayerParameter.LayerType enum values that have weights
_V1_TYPES = {4: "Convolution", 39: "Deconvolution", 14: "InnerProduct"}
# V0LayerParameter.type strings (upgrade_proto.cpp UpgradeV0LayerType) that have weights
_V0_TYPES = {"conv": "Convolution", "innerproduct": "InnerProduct"}


class CaffeCheckpoint(MappedCheckpoint):
    format = "caffe"
    single_file = True  # tensor data comes from this file alone

    def _open(self) -> None:
        self.map_file()
        self._where: dict[str, tuple] = {}
        idx = nlayers = 0
        for fno, wt, v in fields(self._buf, 0, len(self._buf)):
            if wt != LEN:
                continue
            if fno == 100:
                idx = self._layer(v, v2=True, idx=idx)
                nlayers += 1
            elif fno == 2:
                idx = self._layer(v, v2=False, idx=idx)
                nlayers += 1
        if not nlayers:
            raise self.error("the NetParameter has no layers (truncated, or not a .caffemodel)")

    def _layer(self, span: tuple, v2: bool, idx: int) -> int:
        buf = self._buf
        name, ltype, blobs = "", "", []
        name_f, type_f, blob_f = (1, 2, 7) if v2 else (4, 5, 6)
        for fno, wt, v in fields(buf, *span):
            if not v2 and fno == 1 and wt == LEN:  # V1LayerParameter.layer: a V0LayerParameter
                for f0, w0, v0 in fields(buf, *v):
                    if f0 == 1 and w0 == LEN:
                        name = name or string(buf, v0)
                    elif f0 == 2 and w0 == LEN:
                        t0 = string(buf, v0)
                        ltype = ltype or _V0_TYPES.get(t0, t0)
                    elif f0 == 50 and w0 == LEN:
                        blobs.append(v0)
            elif fno == name_f and wt == LEN:
                name = string(buf, v)
            elif fno == type_f:
                ltype = string(buf, v) if wt == LEN else _V1_TYPES.get(v, f"type{v}") if wt == VARINT else ""
            elif fno == blob_f and wt == LEN:
                blobs.append(v)
        roles = _ROLES.get(ltype, [])
        for i, b in enumerate(blobs):
            role = roles[i] if i < len(roles) else str(i)
            tname = f"{name}.{role}"
            self._blob(tname, b, name, ltype, idx)
            idx += 1
        return idx

    def _blob(self, tname: str, span: tuple, layer: str, ltype: str, idx: int) -> None:
        buf = self._buf
        legacy = {1: 1, 2: 1, 3: 1, 4: 1}
        shape = None
        data: list = []
        ddata: list = []
        for fno, wt, v in fields(buf, *span):
            if fno in legacy and wt == VARINT:
                legacy[fno] = signed64(v)
            elif fno == 7 and wt == LEN:  # BlobShape { repeated int64 dim = 1 [packed] }
                dims: list = []
                for f2, w2, v2 in fields(buf, *v):
                    if f2 == 1:
                        dims += [signed64(x) for x in packed_varints(buf, v2, 64)] if w2 == LEN else [signed64(v2)]
                shape = tuple(dims)
            elif fno == 5:
                data.append((wt, v))
            elif fno == 8:
                ddata.append((wt, v))
        flat = False
        if shape is None:
            shape = tuple(legacy[k] for k in (1, 2, 3, 4))
            flat = True
        if any(d < 0 for d in shape) or len(shape) > 32:
            raise self.error(f"invalid blob shape {describe(shape)}", tname)
        n = math.prod(shape)
        dtype = "float64" if ddata and not data else "float32"
        items = ddata if dtype == "float64" else data
        itemsize = 8 if dtype == "float64" else 4
        if len(items) == 1 and items[0][0] == LEN:
            s, e = items[0][1]
            if e - s != n * itemsize:
                raise self.error(f"blob has {e - s} bytes of values, its shape {shape} needs {n} x {itemsize}",
                                 tname)
            where: tuple = ("mmap", s)
        else:
            count = count_values(buf, items, itemsize)
            if count != n:
                raise self.error(f"blob has {count} values, its shape {shape} needs {n}", tname)
            where = ("fields", items)
        self._where[tname] = (where, dtype)
        extra = {"type": ltype, "flat": flat}
        if ltype == "BatchNorm" and tname.endswith(".scale_factor"):
            extra["applied"] = "Caffe BatchNorm's scale_factor: already divided out of its mean and variance"
        self.add(TensorInfo(tname, shape, dtype, layer=layer, index=idx, extra=extra))

    def _read(self, info: TensorInfo) -> np.ndarray:
        arr = self._raw(info.name, info.shape)
        if info.extra.get("type") == "BatchNorm" and info.name.rsplit(".", 1)[-1] in ("running_mean", "running_var"):
            sf_name = info.name.rsplit(".", 1)[0] + ".scale_factor"
            if sf_name in self:
                sf = self._raw(sf_name, self.info(sf_name).shape).ravel()
                if sf.size:
                    arr = arr * (0.0 if sf[0] == 0 else 1.0 / sf[0])  # BatchNormLayer::Forward_cpu
        return arr

    def _raw(self, name: str, shape: tuple) -> np.ndarray:
        (kind, v), dtype = self._where[name]
        if kind == "mmap":
            return mmap_array(self.path, v, dtype, shape)
        return collect_repeated(self._buf, v, dtype).reshape(shape)


def probe_fields(head: bytes, limit: int = 8) -> list[tuple[int, int, Any]]:
    """The first top-level fields of a protobuf (tolerating a cut-off last field); [] if not protobuf."""
    out = []
    pos = 0
    try:
        while pos < len(head) and len(out) < limit:
            key, pos = read_varint(head, pos, len(head))
            fno, wt = key >> 3, key & 7
            if fno == 0 or wt not in (VARINT, LEN, FIXED32, FIXED64):
                return []
            if wt == VARINT:
                v, pos = read_varint(head, pos, len(head))
            elif wt == LEN:
                n, pos = read_varint(head, pos, len(head))
                v = (pos, pos + n)
                pos += n
            else:
                v = None
                pos += 4 if wt == FIXED32 else 8
            out.append((fno, wt, v))
    except ProtoError:
        pass
    return out


def _detect(path: str, head: bytes) -> int:
    fs = probe_fields(head)
    if not fs:
        return 0
    fno, wt, v = fs[0]
    if (fno, wt) == (1, LEN) and all(32 <= c < 127 for c in head[v[0]:min(v[1], v[0] + 64)]):
        rest = [f[:2] for f in fs[1:]]
        if not rest or rest[0] in ((2, LEN), (100, LEN), (3, LEN), (4, VARINT), (5, VARINT), (8, LEN),
                                   (7, LEN), (6, VARINT)) or (100, LEN) in rest or (2, LEN) in rest:
            return 2
        return 1  # a name, then fields caffe.proto lacks (a fork's): the reader skips them, as protobuf does
    if (fno, wt) in ((100, LEN), (2, LEN)):
        return 1
    return 0


register_format(FormatSpec("caffe", _detect, lambda p, **o: CaffeCheckpoint(p, **o), (".caffemodel",)))


# ---- writer (tests, fixtures) -------------------------------------------------------------------
def encode_caffemodel(layers: list, name: str = "net", v1: bool = False, legacy_shape: bool = False,
                      packed: bool = True) -> bytes:
    """Encode a NetParameter: ``layers`` = [(name, type, [blob arrays])]; V1 uses the enum types."""
    import struct

    from .protobuf import enc_field, enc_varint
    v1_enum = {"Convolution": 4, "Deconvolution": 39, "InnerProduct": 14, "ReLU": 18, "Pooling": 17}
    out = enc_field(1, name)
    for lname, ltype, blobs in layers:
        body = b""
        bmsgs = []
        for b in blobs:
            b = np.asarray(b, np.float32)
            msg = b""
            if legacy_shape or v1:
                dims = (1,) * (4 - b.ndim) + b.shape if b.ndim <= 4 else b.shape
                for fno, d in zip((1, 2, 3, 4), dims):
                    msg += enc_field(fno, int(d))
            else:
                msg += enc_field(7, b"".join(enc_field(1, int(d)) for d in b.shape) if not packed else
                                 enc_varint(1 << 3 | 2) + enc_varint(len(b"".join(enc_varint(int(d)) for d in b.shape)))
                                 + b"".join(enc_varint(int(d)) for d in b.shape))
            if packed:
                msg += enc_field(5, b.astype("<f4").tobytes())
            else:
                msg += b"".join(enc_varint(5 << 3 | 5) + struct.pack("<f", float(x)) for x in b.ravel())
            bmsgs.append(msg)
        if v1:
            body += enc_field(4, lname) + enc_field(5, v1_enum.get(ltype, 0))
            body += b"".join(enc_field(6, m) for m in bmsgs)
            out += enc_field(2, body)
        else:
            body += enc_field(1, lname) + enc_field(2, ltype)
            body += b"".join(enc_field(7, m) for m in bmsgs)
            out += enc_field(100, body)
    return out
