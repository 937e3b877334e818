"""Shared fuzzing harness: seed files of every format, and the property 'only WeightError, never a crash'."""
from __future__ import annotations

import os
import struct
from typing import Callable

import numpy as np

from netdsl.errors import WeightError
from netdsl.weights import open_checkpoint, write_wts
from netdsl.weights.caffe import encode_caffemodel
from netdsl.weights.safetensors import save_file

DARKNET_CFG = ("[net]\nheight=4\nwidth=4\nchannels=2\n[convolutional]\nbatch_normalize=1\nfilters=2\nsize=3\n"
               "pad=1\n[connected]\noutput=3\n")


def seeds(d: str) -> dict[str, bytes]:
    """Small valid files of every format (bytes), written into ``d`` once to be read back."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float16)
    out: dict[str, bytes] = {}

    def grab(name: str, fmt: str, write: Callable[[str], None]) -> None:
        p = os.path.join(d, name)
        write(p)
        with open(p, "rb") as f:
            out[fmt] = f.read()
    grab("s.npz", "npz", lambda p: np.savez(p, a=a, b=b))
    grab("s.safetensors", "safetensors", lambda p: save_file({"a": a, "b": b}, p))
    grab("s.wts", "wts", lambda p: write_wts(p, {"a": a, "b": b}))
    grab("s.caffemodel", "caffe", lambda p: open(p, "wb").write(
        encode_caffemodel([("c", "Convolution", [a, b]), ("bn", "BatchNorm", [b, b, [1.0]])])))
    n = 2 * 4 + 2 * 2 * 9 + 3 + 3 * 32
    grab("s.weights", "darknet", lambda p: open(p, "wb").write(
        struct.pack("<3iq", 0, 2, 0, 7) + rng.standard_normal(n).astype(np.float32).tobytes()))
    try:
        import torch
        sd = {"a": torch.from_numpy(a), "b": torch.from_numpy(b), "t": torch.from_numpy(a).t()}
        grab("s.pt", "pytorch", lambda p: torch.save(sd, p))
        grab("s_legacy.pt", "pytorch-legacy", lambda p: torch.save(sd, p, _use_new_zipfile_serialization=False))
    except ImportError:
        pass
    try:
        import h5py

        def h5(p: str) -> None:
            with h5py.File(p, "w") as f:
                f.attrs["layer_names"] = [b"d"]
                g = f.create_group("d")
                g.attrs["weight_names"] = [b"d/kernel:0"]
                g["d/kernel:0"] = a
        grab("s.h5", "hdf5", h5)
    except ImportError:
        pass
    try:
        import onnx
        from onnx import helper, numpy_helper
        g = helper.make_graph([helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(a))], "g", [],
                              [helper.make_tensor_value_info("c", 1, [3, 4])],
                              initializer=[numpy_helper.from_array(a, "W"),
                                           helper.make_tensor("B", 1, [5], b.astype(float).tolist())])
        grab("s.onnx", "onnx", lambda p: onnx.save(helper.make_model(g), p))
    except ImportError:
        pass
    return out


def check(fmt: str, data: bytes, d: str) -> None:
    """Open and read every tensor of ``data`` as ``fmt``: any failure must be a WeightError naming the file."""
    real = "pytorch" if fmt == "pytorch-legacy" else fmt
    p = os.path.join(d, f"fuzz.{ {'darknet': 'weights'}.get(real, real)}")
    with open(p, "wb") as f:
        f.write(data)
    if real == "darknet":
        with open(os.path.join(d, "fuzz.cfg"), "w") as f:
            f.write(DARKNET_CFG)
    try:
        opts = {"sandbox_timeout": 5.0} if real == "hdf5" else {}
        with open_checkpoint(p, format=real, **opts) as c:
            for n in c.names():
                np.asarray(c.read(n)).sum()
    except WeightError as e:
        assert p in str(e), f"error does not name the file: {e}"


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
