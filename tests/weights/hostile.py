"""Hand-made hostile checkpoints: a small pickle assembler and torch-style zip archives built from it.

``encode(obj)`` writes a protocol-4 pickle of plain values (None, bool, int, float, str, bytes, tuple,
list, dict) and the markers below, opcode by opcode, so a test can name any global and call, build or
persist anything -- what torch.save would never write.
"""
from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Global:
    module: str
    name: str


class Call:
    """``func(*args)`` (REDUCE)."""

    def __init__(self, func: Any, *args: Any):
        self.func, self.args = func, args


class Build:
    """``obj`` with ``state`` applied by the BUILD opcode."""

    def __init__(self, obj: Any, state: Any):
        self.obj, self.state = obj, state


class PersId:
    """A persistent id (BINPERSID), e.g. a torch storage reference."""

    def __init__(self, pid: Any):
        self.pid = pid


class Put:
    """Store ``obj`` in memo slot ``i`` (and leave it on the stack)."""

    def __init__(self, obj: Any, i: int):
        self.obj, self.i = obj, i


@dataclass(frozen=True)
class Get:
    """Memo slot ``i`` (a reference, not a copy)."""

    i: int


class Raw:
    """Opcode bytes written as they are."""

    def __init__(self, data: bytes):
        self.data = data


def _enc(o: Any, out: bytearray) -> None:
    if isinstance(o, Raw):
        out += o.data
    elif o is None:
        out += b"N"
    elif o is True or o is False:
        out += b"\x88" if o else b"\x89"
    elif isinstance(o, int):
        if -(1 << 31) <= o < (1 << 31):
            out += b"J" + struct.pack("<i", o)
        else:
            n = (o.bit_length() + 8) // 8
            out += b"\x8a" + bytes([n]) + o.to_bytes(n, "little", signed=True)
    elif isinstance(o, float):
        out += b"G" + struct.pack(">d", o)
    elif isinstance(o, str):
        b = o.encode("utf8")
        out += b"X" + struct.pack("<I", len(b)) + b
    elif isinstance(o, (bytes, bytearray)):
        out += b"B" + struct.pack("<I", len(o)) + bytes(o)
    elif isinstance(o, Global):
        out += b"c" + o.module.encode() + b"\n" + o.name.encode() + b"\n"
    elif isinstance(o, Call):
        _enc(o.func, out)
        _enc(tuple(o.args), out)
        out += b"R"
    elif isinstance(o, Build):
        _enc(o.obj, out)
        _enc(o.state, out)
        out += b"b"
    elif isinstance(o, PersId):
        _enc(o.pid, out)
        out += b"Q"
    elif isinstance(o, Put):
        _enc(o.obj, out)
        out += b"r" + struct.pack("<I", o.i)
    elif isinstance(o, Get):
        out += b"j" + struct.pack("<I", o.i)
    elif isinstance(o, tuple):
        out += b"("
        for x in o:
            _enc(x, out)
        out += b"t"
    elif isinstance(o, list):
        out += b"]("
        for x in o:
            _enc(x, out)
        out += b"e"
    elif isinstance(o, dict):
        out += b"}("
        for k, v in o.items():
            _enc(k, out)
            _enc(v, out)
        out += b"u"
    else:
        raise TypeError(f"cannot encode {type(o).__name__}")


def encode(obj: Any) -> bytes:
    out = bytearray(b"\x80\x04")
    _enc(obj, out)
    return bytes(out + b".")


# ---- torch-style pieces ------------------------------------------------------------------------------
REBUILD = Global("torch._utils", "_rebuild_tensor_v2")
ODICT = Global("collections", "OrderedDict")


def storage(key: str, numel: int, stype: str = "FloatStorage") -> PersId:
    return PersId(("storage", Global("torch", stype), key, "cpu", numel))


def tensor(store: Any, size: tuple, stride: tuple, offset: int = 0) -> Call:
    return Call(REBUILD, store, offset, size, stride, False, Call(ODICT))


def torch_zip(path: Any, pkl: bytes, storages: dict, compress: bool = False) -> None:
    """A torch.save-style zip archive: ``archive/data.pkl`` and ``archive/data/<key>`` members."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", "little")
        for k, v in storages.items():
            z.writestr(f"archive/data/{k}", v)
        z.writestr("archive/version", "3\n")


@dataclass
class Member:
    """One zip member written as given: ``data`` are its bytes as stored (compressed for method 8), ``size``
    and ``crc`` what the headers declare about the uncompressed bytes."""

    name: str
    data: bytes
    size: int
    crc: int
    method: int = 0


def member(name: str, plain: bytes) -> Member:
    """A stored member whose headers tell the truth."""
    import zlib
    return Member(name, plain, len(plain), zlib.crc32(plain))


def raw_zip(path: Any, members: list) -> None:
    """A zip archive of :class:`Member` s, headers written as declared (sizes, CRCs, names may lie)."""
    out, central = bytearray(), bytearray()
    for m in members:
        name = m.name.encode()
        fields = struct.pack("<HHHHHIII", 20, 0, m.method, 0, 0, m.crc, len(m.data), m.size)
        central += b"PK\x01\x02" + struct.pack("<H", 20) + fields + struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, 0,
                                                                               len(out)) + name
        out += b"PK\x03\x04" + fields + struct.pack("<HH", len(name), 0) + name + m.data
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, len(members), len(members), len(central), len(out), 0)
    with open(path, "wb") as f:
        f.write(bytes(out + central + end))
