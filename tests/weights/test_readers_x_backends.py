"""Every checkpoint reader x every backend, with weights as their own writers store them.

Each source writes known arrays with the framework's own writer where one exists (numpy, h5py, torch,
safetensors, keras, onnx; the darknet/tensorrtx writers are transcriptions of their C/Python source,
caffe is encoded from caffe.proto's field numbers), including storage engines do not take as is:
big-endian data, Fortran order, unaligned offsets (legacy ``.pt`` storages, zip members, protobuf
fields) and non-contiguous views. Every tensor then flows through one network, on every backend, into
an output compared with the arrays that were written. The parameter data handed to backends must be
canonical (NumPy's own dtype object, native byte order, C-contiguous, aligned): TensorRT's
``trt.Weights`` refuses anything else.
"""
from __future__ import annotations

import io
import json
import os
import struct
import zipfile

import numpy as np
import pytest

import netdsl as nd
from netdsl.backends import reference
from netdsl.weights import open_checkpoint

RNG = np.random.default_rng(20)


def _arrays() -> dict:
    return {"conv.weight": RNG.standard_normal((4, 3, 3, 3)).astype(np.float32),
            "conv.bias": RNG.standard_normal(4).astype(np.float32),
            "fc.weight": RNG.standard_normal((5, 36)).astype(np.float32),
            "fc.bias": RNG.standard_normal(5).astype(np.float32)}


# ---- writers: each returns (path, open options, {tensor name in the file: the array written}) ------------
def _npz(tmp, order="C", byteorder="=", compressed=False):
    a = _arrays()
    stored = {k: (np.asfortranarray(v) if order == "F" else v).astype(v.dtype.newbyteorder(byteorder), order="K")
              for k, v in a.items()}
    assert all(s.flags.f_contiguous for s in stored.values()) or order == "C"
    p = tmp / "w.npz"
    (np.savez_compressed if compressed else np.savez)(p, **stored)
    return p, {}, a


def _safetensors(tmp):
    from safetensors.numpy import save_file
    a = _arrays()
    p = tmp / "w.safetensors"
    save_file(a, str(p))
    return p, {}, a


def _safetensors_unaligned(tmp):
    """A header whose length is not padded to 8 (the format allows any length): every tensor is unaligned.
    safetensors' own reader must accept the file."""
    a = _arrays()
    header, off = {}, 0
    for k, v in a.items():
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + v.nbytes]}
        off += v.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (4 - len(h) % 4 + 1)  # 8 + len(h) is odd
    p = tmp / "unaligned.safetensors"
    p.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(v.tobytes() for v in a.values()))
    from safetensors import safe_open
    with safe_open(str(p), framework="np") as f:
        for k, v in a.items():
            np.testing.assert_array_equal(f.get_tensor(k), v)
    return p, {}, a


def _torch(tmp, legacy=False):
    torch = pytest.importorskip("torch", reason="torch not installed")
    a = _arrays()
    sd = {k: torch.from_numpy(v) for k, v in a.items()}
    sd["fc.weight"] = torch.from_numpy(np.ascontiguousarray(a["fc.weight"].T)).T  # a non-contiguous view
    assert not sd["fc.weight"].is_contiguous()
    p = tmp / ("legacy.pt" if legacy else "w.pt")
    torch.save(sd, p, _use_new_zipfile_serialization=not legacy)
    return p, {}, a


def _torch_big_endian(tmp):
    """A torch zip as a big-endian machine writes it ('byteorder' record 'big', storages byte-swapped),
    re-zipped without torch's 64-byte record alignment; torch.load must read it back."""
    torch = pytest.importorskip("torch", reason="torch not installed")
    p0, _, a = _torch(tmp)
    p = tmp / "big.pt"
    with zipfile.ZipFile(p0) as zin, zipfile.ZipFile(p, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("/byteorder"):
                data = b"big"
            elif "/data/" in info.filename and not info.filename.endswith(".pkl"):
                data = np.frombuffer(data, "<f4").astype(">f4").tobytes()
            zout.writestr(info.filename, data)
    names = zipfile.ZipFile(p).namelist()
    assert any(n.endswith("/byteorder") for n in names)
    back = torch.load(p, weights_only=True)
    for k, v in a.items():
        np.testing.assert_array_equal(back[k].numpy(), v)
    return p, {}, a


def _hdf5(tmp, byteorder="=", chunked=False):
    h5py = pytest.importorskip("h5py", reason="h5py not installed")
    a = _arrays()
    p = tmp / "w.h5"
    with h5py.File(p, "w") as f:
        for k, v in a.items():
            kw = {"chunks": True, "compression": "gzip"} if chunked else {}
            f.create_dataset(k, data=v.astype(v.dtype.newbyteorder(byteorder)), **kw)
    with h5py.File(p) as f:
        assert f["fc.weight"].dtype.byteorder == (">" if byteorder == ">" else "<")
    return p, {}, a


def _keras(tmp, how):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras", reason="keras not installed")
    L = keras.layers
    inp = keras.Input((6, 6, 3))
    x = L.Conv2D(4, 3, name="conv")(inp)
    x = L.Dense(5, name="fc")(L.Flatten()(x))
    m = keras.Model(inp, x)
    m.set_weights([RNG.standard_normal(w.shape).astype(np.float32) for w in m.get_weights()])
    p = tmp / {"h5": "m.h5", "weights": "m.weights.h5", "archive": "m.keras"}[how]
    m.save_weights(p) if how == "weights" else m.save(p)
    with open_checkpoint(p) as c:
        names = c.names()
    return p, {}, dict(zip(names, m.get_weights(), strict=True))


def _onnx(tmp, external=False):
    onnx = pytest.importorskip("onnx", reason="onnx not installed")
    from onnx import helper, numpy_helper
    a = _arrays()
    inits = [numpy_helper.from_array(v, k) for k, v in a.items()]
    nodes = [helper.make_node("Identity", [k], [k + "_out"]) for k in a]
    outs = [helper.make_tensor_value_info(k + "_out", onnx.TensorProto.FLOAT, v.shape) for k, v in a.items()]
    m = helper.make_model(helper.make_graph(nodes, "g", [], outs, inits))
    p = tmp / "w.onnx"
    if external:
        onnx.save_model(m, str(p), save_as_external_data=True, all_tensors_to_one_file=True, location="w.data",
                        size_threshold=0)
    else:
        onnx.save_model(m, str(p))
    onnx.checker.check_model(str(p))
    return p, {}, a


def _caffe(tmp):
    from netdsl.weights.caffe import encode_caffemodel
    a = _arrays()
    p = tmp / "w.caffemodel"
    p.write_bytes(encode_caffemodel([("conv", "Convolution", [a["conv.weight"], a["conv.bias"]]),
                                     ("fc", "InnerProduct", [a["fc.weight"], a["fc.bias"]])]))
    return p, {}, a


DARKNET_CFG = "[net]\nheight=4\nwidth=4\nchannels=3\n\n[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\n" \
              "activation=linear\n\n[connected]\noutput=5\nactivation=linear\n"


def _darknet(tmp, version):
    from tests.weights.darknet_writer import expected_tensors, make_network, save_weights_upto
    layers = make_network(DARKNET_CFG, RNG)
    p = tmp / "w.weights"
    (tmp / "w.cfg").write_text(DARKNET_CFG)
    with open(p, "wb") as f:
        save_weights_upto(layers, f, len(layers), version=version)
    return p, {}, expected_tensors(layers)


def _wts(tmp):
    from tests.weights.test_wts_tensorrtx import gen_wts
    a = _arrays()
    p = tmp / "w.wts"
    gen_wts(a, p)
    return p, {}, {k: v.reshape(-1) for k, v in a.items()}


def _dict(tmp):
    a = _arrays()
    return {k: np.asfortranarray(v).astype(">f4", order="K") for k, v in a.items()}, {}, a


SOURCES = {
    "npz": _npz, "npz-big-endian": lambda t: _npz(t, byteorder=">"), "npz-fortran": lambda t: _npz(t, "F"),
    "npz-fortran-big-endian": lambda t: _npz(t, "F", ">"), "npz-compressed": lambda t: _npz(t, compressed=True),
    "safetensors": _safetensors, "safetensors-unaligned": _safetensors_unaligned,
    "pt-zip": _torch, "pt-legacy": lambda t: _torch(t, legacy=True), "pt-zip-big-endian": _torch_big_endian,
    "hdf5": _hdf5, "hdf5-big-endian": lambda t: _hdf5(t, ">"), "hdf5-chunked": lambda t: _hdf5(t, chunked=True),
    "keras-h5": lambda t: _keras(t, "h5"), "keras-weights-h5": lambda t: _keras(t, "weights"),
    "keras-archive": lambda t: _keras(t, "archive"),
    "onnx": _onnx, "onnx-external": lambda t: _onnx(t, external=True),
    "caffe": _caffe, "darknet-0.1": lambda t: _darknet(t, (0, 1, 0)), "darknet-0.2": lambda t: _darknet(t, (0, 2, 5)),
    "wts": _wts, "dict-big-endian-fortran": _dict,
}


def _network(names_shapes: list) -> nd.Network:
    """Every parameter flattened into one output, scaled per row by the input: y = x * concat(params)."""
    net = nd.Network("every_tensor")
    x = net.input("x", ("N", 1))
    flat = [net.parameter(f"p{i}", s).reshape(1, -1) for i, (_, s) in enumerate(names_shapes)]
    net.output(nd.concat(flat, axis=1) * x, "y")
    return net


def _canonical(a: np.ndarray) -> bool:
    return a.dtype is np.dtype(np.float32) and a.flags.c_contiguous and a.flags.aligned


@pytest.mark.parametrize("source", list(SOURCES))
def test_reader_on_every_backend(tmp_path, source):
    path, opts, written = SOURCES[source](tmp_path)
    ckpt = open_checkpoint(path, **opts)
    infos = [i for i in ckpt.infos() if i.name in written]
    assert {i.name for i in infos} == set(written), (source, ckpt.names())
    net = _network([(i.name, i.shape) for i in infos])
    rep = net.load_weights(ckpt, preset=None, mapping={i.name: f"p{j}" for j, i in enumerate(infos)}, strict=False)
    assert not rep.missing and not rep.mismatched, str(rep)
    for j, i in enumerate(infos):
        v = net.graph.params[f"p{j}"].value()
        assert _canonical(v), (source, i.name, v.dtype.byteorder, v.flags)
        np.testing.assert_array_equal(v, np.asarray(written[i.name], np.float32).reshape(i.shape))
    x = RNG.uniform(0.5, 2.0, (3, 1)).astype(np.float32)
    want = np.concatenate([np.asarray(written[i.name], np.float64).reshape(1, -1) for i in infos], axis=1) * x
    np.testing.assert_allclose(reference.run(net.graph, {"x": x})["y"], want, rtol=1e-12)
    for backend in ("openvino", "onnx"):
        np.testing.assert_allclose(nd.compile(net, backend)(x=x)["y"], want, rtol=1e-6, err_msg=backend)
    pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx not installed (TensorRT CPU proof)")
    from netdsl.backends import tensorrt
    proof = tensorrt.check(net.graph, {"x": x})
    assert proof.ok, str(proof)
