"""Fuzzing every checkpoint reader: seed files (valid and hostile) of every format, mutations, and the
property each input must satisfy -- read completely, or one WeightError naming the file; never a
hang, a crash, code that runs, memory past a limit, or a byte from outside the checkpoint.

A *target* is a way to turn bytes into a checkpoint: the bytes may be the whole file, a member that is
zipped again (so a mutated pickle reaches the unpickler instead of failing the zip CRC), or one file of
a several-file checkpoint whose other files stay fixed. :func:`write_seeds` makes the seed files
(it imports torch, onnx and h5py: run it in a separate process when memory limits matter);
:func:`load_targets` reads them back without those imports.
"""
from __future__ import annotations

import io
import json
import os
import random
import shutil
import struct
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from netdsl.errors import WeightError
from netdsl.weights import open_checkpoint, write_wts
from netdsl.weights.caffe import encode_caffemodel
from netdsl.weights.safetensors import save_file

SECRET = b"NETDSL-FUZZ-SECRET-BYTES-0123456"  # 32 bytes that must never reach a tensor
MARKER = "PWNED"  # a file hostile pickles try to create (code ran if it exists)
CASE = "case"  # the sub-directory every case is written to
DARKNET_CFG = ("[net]\nheight=4\nwidth=4\nchannels=2\n[convolutional]\nbatch_normalize=1\nfilters=2\nsize=3\n"
               "pad=1\n[connected]\noutput=3\n")


class Leak(AssertionError):
    """Bytes from outside the checkpoint reached a tensor."""


@dataclass
class Target:
    """How mutated bytes become a checkpoint: ``file`` (in the case directory) written through ``wrap``,
    ``extra`` files and ``links`` beside it, opened with ``fmt`` and ``options``."""

    name: str
    fmt: str
    file: str
    seeds: list = field(default_factory=list)
    wrap: str = ""
    extra: dict = field(default_factory=dict)
    links: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    opens: str = ""  # what to open when not ``file`` (a directory, an index)


# ---- seeds --------------------------------------------------------------------------------------------
def write_seeds(d: str) -> None:
    """Write every target's seeds (and the files outside the checkpoint hostile seeds point at) into ``d``."""
    from tests.weights import hostile as H
    os.makedirs(d, exist_ok=True)
    out = os.path.join(d, "outside")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "secret.bin"), "wb") as f:
        f.write(SECRET * 4)
    save_file({"w": np.frombuffer(SECRET * 4, np.float32)}, os.path.join(out, "secret.safetensors"))
    case = os.path.join(d, CASE)
    marker = os.path.join(case, MARKER)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float16)
    targets: list[Target] = []

    def tmpfile(write: Callable[[str], Any], name: str = "tmp") -> bytes:
        p = os.path.join(d, name)
        write(p)
        with open(p, "rb") as f:
            data = f.read()
        os.remove(p)
        return data

    def npy(arr: np.ndarray) -> bytes:
        bio = io.BytesIO()
        np.save(bio, arr)
        return bio.getvalue()

    # npz / npy
    targets.append(Target("npz", "npz", "f.npz", [tmpfile(lambda p: np.savez(p, a=a, b=b), "t.npz"),
                                                 tmpfile(lambda p: np.savez_compressed(p, a=a, b=b), "t.npz")]))
    big_header = npy(a)[:10] + repr({"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)}).encode()
    targets.append(Target("npz-member", "npz", "f.npz", [npy(a), npy(b.astype(">f4")), big_header.ljust(128)],
                          wrap="npz-member"))
    targets.append(Target("npy", "npy", "f.npy", [npy(a), npy(np.asfortranarray(a.astype(">f8")))]))
    # safetensors (a file; an index whose shard links outside)
    st = tmpfile(lambda p: save_file({"a": a, "b": b}, p))
    dup = (b'{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}, '
           b'"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}')  # one name twice
    rank = json.dumps({"w": {"dtype": "F32", "shape": [2**60] * 1000, "data_offsets": [0, 0]}}).encode()
    targets.append(Target("safetensors", "safetensors", "f.safetensors", [st] + [
        struct.pack("<Q", len(h)) + h + bytes(16) for h in (dup, rank)]))
    index = json.dumps({"weight_map": {"a": "s1.safetensors", "w": "s2.safetensors"}}).encode()
    targets.append(Target("safetensors-index", "safetensors", "model.safetensors.index.json", [index],
                          extra={"s1.safetensors": st},
                          links={"s2.safetensors": os.path.join(out, "secret.safetensors")}))
    # text and protobuf formats
    targets.append(Target("wts", "wts", "f.wts", [tmpfile(lambda p: write_wts(p, {"a": a, "b": b})),
                                                 tmpfile(lambda p: write_wts(p, {"a": a}, variant="float"))]))
    targets.append(Target("caffe", "caffe", "f.caffemodel", [encode_caffemodel(
        [("c", "Convolution", [a, b]), ("bn", "BatchNorm", [b, b, [1.0]])]), encode_caffemodel(
        [("c", "InnerProduct", [a])], v1=True, packed=False)]))
    n = 2 * 4 + 2 * 2 * 9 + 3 + 3 * 32
    dk = struct.pack("<3iq", 0, 2, 0, 7) + rng.standard_normal(n).astype(np.float32).tobytes()
    targets.append(Target("darknet", "darknet", "f.weights", [dk], extra={"f.cfg": DARKNET_CFG.encode()}))
    targets.append(Target("darknet-cfg", "darknet", "f.cfg", [DARKNET_CFG.encode()], extra={"f.weights": dk},
                          opens="f.weights"))
    # PyTorch: whole archives, legacy files, and pickles zipped again (valid and hostile)
    import torch
    sd = {"a": torch.from_numpy(a), "b": torch.from_numpy(b), "t": torch.from_numpy(a).t()}
    pt = tmpfile(lambda p: torch.save(sd, p))
    targets.append(Target("pytorch", "pytorch", "f.pt", [pt]))
    targets.append(Target("pytorch-legacy", "pytorch", "f.pt", [tmpfile(
        lambda p: torch.save(sd, p, _use_new_zipfile_serialization=False))]))
    with zipfile.ZipFile(io.BytesIO(pt)) as z:
        pkl = z.read([n for n in z.namelist() if n.endswith("data.pkl")][0])
    st0 = H.storage("0", 12)
    evil = [
        {"w": H.tensor(st0, (10**6, 10**6), (0, 0))},
        {f"t{i}": H.tensor(st0, (12,), (1,)) for i in range(64)},
        [H.Call(H.Global("builtins", "bytearray"), 1 << 30) for _ in range(4)],
        {"w": H.tensor(st0, (12,), (1,)), "x": H.Call(H.Global("posix", "system"), f"touch {marker}")},
        {"x": H.Call(H.Global("builtins", "exec"), f"open({marker!r}, 'w')")},
        {"x": H.Call(H.Global("subprocess", "call"), ["touch", marker])},
        {"x": H.Call(H.Global("torch.fx.graph_module", "_forward_from_src"), f"open({marker!r},'w')", {})},
        {"x": H.Build(H.Global("torch._utils", "_rebuild_tensor_v2"), (None, {"__defaults__": (1,)}))},
        [H.Put((), 0)] + [H.Put((H.Get(i), H.Get(i)), i + 1) for i in range(40)] + [{H.Get(40): 1}],
        [H.Put("x" * 4096, 0)] + [H.Call(H.Global("_codecs", "encode"), H.Get(0), "latin1") for _ in range(64)],
        {"m": H.Build(H.Call(H.Global("mymodels", "Net")), {"_parameters": {"w": H.tensor(st0, (3, 4), (4, 1))}})},
        # keys built to share one hash; SETITEMS on a list; str() of shared nested lists; costly codecs; EXT
        {H.Call(H.Global("builtins", "complex"), -1000003 * k, k): 1 for k in range(1, 100)},
        [H.Put(list(range(1000)), 0),
         H.Raw(b"](" + H.encode(H.Call(H.Global("builtins", "slice"), 0, 0))[2:-1] + b"h\x00u")],
        [H.Put([], 0)] + [H.Put([H.Get(i), H.Get(i)], i + 1) for i in range(40)]
        + [H.Call(H.Global("torch.serialization", "_get_layout"), H.Get(40))],
        [H.Call(H.Global("builtins", "bytearray"), "".join(chr(0x100 + i) for i in range(200)), "punycode")],
        [H.Raw(b"\x82\xf0"), {"w": H.tensor(st0, (12,), (1,))}],
    ]
    targets.append(Target("pytorch-pickle", "pytorch", "f.pt", [pkl] + [H.encode(e) for e in evil],
                          wrap="torch-pickle", options={"pickle_mode": "inert"}))
    targets.append(Target("pytorch-pickle-auto", "pytorch", "f.pt", [pkl] + [H.encode(e) for e in evil],
                          wrap="torch-pickle"))
    # HDF5: Keras 2, chunked/compressed, hostile (external storage, external link), .keras archives
    import h5py

    def keras2(p: str, make: Optional[Callable] = None) -> None:
        with h5py.File(p, "w") as f:
            f.attrs["layer_names"] = [b"d"]
            g = f.create_group("d")
            g.attrs["weight_names"] = [b"d/kernel:0", b"d/bias:0"]
            (make or (lambda g, n: g.__setitem__(n, a)))(g, "d/kernel:0")
            g.create_dataset("d/bias:0", data=a[0], chunks=(2,), compression="gzip", shuffle=True)

    h5 = [tmpfile(lambda p: keras2(p), "t.h5"),
          tmpfile(lambda p: keras2(p, lambda g, n: g.create_dataset(n, shape=(32,), dtype="f4", external=[
              (os.path.join(out, "secret.bin"), 0, 128)])), "t.h5"),
          tmpfile(lambda p: keras2(p, lambda g, n: g.__setitem__(n, h5py.ExternalLink(
              os.path.join(out, "secret.h5"), "/x"))), "t.h5")]
    def dag(p: str) -> None:  # Keras 3 groups each linking the next one twice: 2^30 paths, 31 groups
        with h5py.File(p, "w") as f:
            f.create_group("vars")
            gs = [f.create_group("layers/l0")] + [f.create_group(f"pool/g{i}") for i in range(1, 31)]
            for i, g in enumerate(gs):
                g.create_group("vars")["0"] = a[0]
                if i < 30:
                    g["a"] = g["b"] = gs[i + 1]
    h5.append(tmpfile(dag, "t.h5"))
    with h5py.File(os.path.join(out, "secret.h5"), "w") as f:
        f["x"] = np.frombuffer(SECRET * 4, np.float32)
    targets.append(Target("hdf5", "hdf5", "f.h5", h5, options={"sandbox_timeout": 5.0}))
    targets.append(Target("keras-member", "hdf5", "f.keras", h5[:1], wrap="keras-member",
                          options={"sandbox_timeout": 5.0}))
    # ONNX: initializers and Constants; external data beside the model; external data linking outside
    import onnx
    from onnx import helper, numpy_helper

    def model(ext: Optional[str] = None) -> bytes:
        w = numpy_helper.from_array(a, "W")
        if ext:
            w.ClearField("raw_data")
            w.data_location = onnx.TensorProto.EXTERNAL
            for k, v in (("location", ext), ("offset", "0"), ("length", "48")):
                e = w.external_data.add()
                e.key, e.value = k, v
        g = helper.make_graph([helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(a))], "g", [],
                              [helper.make_tensor_value_info("c", 1, [3, 4])],
                              initializer=[w, helper.make_tensor("B", 1, [5], b.astype(float).tolist()),
                                           helper.make_tensor("I", 7, [4], [1, -2, 300, 2**40])])
        return helper.make_model(g).SerializeToString()
    targets.append(Target("onnx", "onnx", "f.onnx", [model()]))
    targets.append(Target("onnx-external", "onnx", "f.onnx", [model("w.bin")], extra={"w.bin": a.tobytes()},
                          links={"evil.bin": os.path.join(out, "secret.bin")}))
    targets.append(Target("onnx-external-link", "onnx", "f.onnx", [model("evil.bin")],
                          links={"evil.bin": os.path.join(out, "secret.bin")}))
    manifest = []
    for t in targets:
        td = os.path.join(d, "seeds", t.name)
        os.makedirs(td, exist_ok=True)
        for i, s in enumerate(t.seeds):
            with open(os.path.join(td, f"seed{i}"), "wb") as f:
                f.write(s)
        for k, v in t.extra.items():
            with open(os.path.join(td, "extra-" + k), "wb") as f:
                f.write(v)
        manifest.append({"name": t.name, "fmt": t.fmt, "file": t.file, "wrap": t.wrap, "seeds": len(t.seeds),
                         "extra": sorted(t.extra), "links": t.links, "options": t.options, "opens": t.opens})
    with open(os.path.join(d, "seeds", "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


def load_targets(d: str) -> dict[str, Target]:
    """The targets :func:`write_seeds` wrote into ``d`` (no torch/onnx import)."""
    with open(os.path.join(d, "seeds", "manifest.json")) as f:
        manifest = json.load(f)
    out = {}
    for m in manifest:
        td = os.path.join(d, "seeds", m["name"])

        def read(name: str) -> bytes:
            with open(os.path.join(td, name), "rb") as f:
                return f.read()
        out[m["name"]] = Target(m["name"], m["fmt"], m["file"], [read(f"seed{i}") for i in range(m["seeds"])],
                                m["wrap"], {k: read("extra-" + k) for k in m["extra"]}, m["links"], m["options"],
                                m["opens"])
    return out


# ---- one case -----------------------------------------------------------------------------------------
def _wrap(t: Target, data: bytes) -> bytes:
    """The file bytes for mutated ``data`` (members are zipped again, so their CRC is right)."""
    bio = io.BytesIO()
    if t.wrap == "npz-member":
        with zipfile.ZipFile(bio, "w") as z:
            z.writestr("w.npy", data)
            z.writestr("ok.npy", t.seeds[0])
    elif t.wrap == "torch-pickle":
        with zipfile.ZipFile(bio, "w") as z:
            z.writestr("archive/data.pkl", data)
            z.writestr("archive/byteorder", "little")
            for k, n in (("0", 48), ("1", 10), ("2", 48)):  # torch's seed: a (12 x f32), b (5 x f16)
                z.writestr(f"archive/data/{k}", np.arange(n, dtype="u1").tobytes())
            z.writestr("archive/version", "3\n")
    elif t.wrap == "keras-member":
        with zipfile.ZipFile(bio, "w") as z:
            z.writestr("config.json", "{}")
            z.writestr("model.weights.h5", data)
    else:
        return data
    return bio.getvalue()


def materialize(t: Target, data: bytes, d: str) -> str:
    """Write the case into ``d``/case (emptied first); returns the path to open."""
    case = os.path.join(d, CASE)
    shutil.rmtree(case, ignore_errors=True)
    os.makedirs(case)
    for k, v in t.extra.items():
        with open(os.path.join(case, k), "wb") as f:
            f.write(v)
    for k, target in t.links.items():
        os.symlink(target, os.path.join(case, k))
    with open(os.path.join(case, t.file), "wb") as f:
        f.write(_wrap(t, data))
    return os.path.join(case, t.opens or t.file)


def check(t: Target, data: bytes, d: str) -> Optional[WeightError]:
    """Open and read every tensor: None when all was read, the WeightError when it names the case;
    anything else raises (:class:`Leak`, AssertionError for an error that does not name the file)."""
    p = materialize(t, data, d)
    try:
        with open_checkpoint(p, format=t.fmt, **t.options) as c:
            for n in c.names():
                arr = np.ascontiguousarray(c.read(n))
                if SECRET[:16] in arr.tobytes():
                    raise Leak(f"{t.name}: tensor {n!r} holds bytes from outside the checkpoint")
    except WeightError as e:
        if os.path.join(d, CASE) not in str(e):
            raise AssertionError(f"error does not name the file: {e}") from e
        return e
    return None


# ---- mutations -----------------------------------------------------------------------------------------
INTERESTING = [0, 1, -1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**40,
               2**62, 2**63 - 1, -2**63, 10**6, 10**12]


def mutate(data: bytes, ops: list) -> bytes:
    """Apply (kind, position, value) mutations: flip a byte, truncate, insert, or overwrite 8 bytes."""
    b = bytearray(data)
    for kind, pos, val in ops:
        if not b:
            break
        i = pos % len(b)
        if kind == 0:
            b[i] ^= (val % 255) + 1
        elif kind == 1:
            del b[i:]
        elif kind == 2:
            b[i:i] = bytes([val % 256]) * (1 + val % 7)
        else:
            b[i:i + 8] = struct.pack("<q", val)
    return bytes(b)


def random_mutation(data: bytes, rnd: random.Random, others: list) -> bytes:
    """1-6 random edits: bit flips, interesting integers (1/2/4/8 bytes, either byte order), truncation,
    insertion, deletion, duplicated ranges, splices from another seed, or random bytes outright."""
    if rnd.random() < 0.03:
        return bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 600)))
    b = bytearray(data)
    for _ in range(rnd.randint(1, 6)):
        if not b:
            b = bytearray(rnd.choice(others) if others else b"\0")
        i = rnd.randrange(len(b))
        k = rnd.randrange(8)
        if k == 0:
            b[i] ^= 1 << rnd.randrange(8)
        elif k == 1:
            width = rnd.choice((1, 2, 4, 8))
            v = rnd.choice(INTERESTING) % (1 << (8 * width))
            b[i:i + width] = v.to_bytes(width, rnd.choice(("little", "big")))
        elif k == 2:
            del b[i:]
        elif k == 3:
            b[i:i] = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 16)))
        elif k == 4:
            del b[i:i + rnd.randint(1, 64)]
        elif k == 5:
            j = rnd.randrange(len(b))
            b[i:i] = b[j:j + rnd.randint(1, 256)]
        elif k == 6 and others:
            o = rnd.choice(others)
            j = rnd.randrange(len(o)) if o else 0
            b[i:i + rnd.randint(1, 64)] = o[j:j + rnd.randint(1, 64)]
        else:
            b[i] = rnd.getrandbits(8)
    return bytes(b)
