"""Binding: acceptance against the frameworks that wrote the files, name mapping, transforms, strict report."""
from __future__ import annotations

import os

import numpy as np
import pytest

import netdsl.functional as F
from netdsl import layers as nn
from netdsl.dsl import Network
from netdsl.errors import WeightError
from netdsl.weights import BindingReport, load_weights, open_checkpoint
from netdsl.weights.layout import (dense_to_linear, depthwise_to_grouped, hwio_to_oihw, keras_deconv_to_torch,
                                   nhwc_flatten_dense)
from tests.weights.nets import nd_cnn, run_reference, torch_cnn

X = np.random.default_rng(7).standard_normal((2, 3, 16, 16)).astype(np.float32)


# ---- acceptance: same outputs as the framework that wrote the checkpoint -------------------------
@pytest.mark.parametrize("kind", ["pt-zip", "pt-legacy", "pt-whole-module", "safetensors", "npz"])
def test_pytorch_family_matches_torch(tmp_path, kind):
    torch = pytest.importorskip("torch", reason="torch not installed")
    m = torch_cnn(seed=3)
    want = m(torch.from_numpy(X)).detach().numpy()
    sd = m.state_dict()
    if kind == "pt-zip":
        p = tmp_path / "m.pt"
        torch.save(sd, p)
    elif kind == "pt-legacy":
        p = tmp_path / "m.pth"
        torch.save(sd, p, _use_new_zipfile_serialization=False)
    elif kind == "pt-whole-module":
        p = tmp_path / "whole.pt"
        torch.save({"model": m, "epoch": 10}, p)
    elif kind == "safetensors":
        import safetensors.torch as st
        p = tmp_path / "m.safetensors"
        st.save_file(sd, str(p))
    else:
        p = tmp_path / "m.npz"
        np.savez(p, **{k: v.numpy() for k, v in sd.items()})
    net = nd_cnn()
    rep = net.load_weights(p, **({"pickle_mode": "inert"} if kind == "pt-whole-module" else {}))
    assert rep.ok and len(rep.bound) == len(net.graph.params)
    assert all(k.endswith("num_batches_tracked") for k in rep.ignored)
    assert net.graph.params["conv1.weight"].origin == f"{p}:conv1.weight"
    np.testing.assert_allclose(run_reference(net, X), want, rtol=1e-4, atol=1e-5)


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras", reason="keras not installed")


def _keras_cnn(keras):
    L = keras.layers
    inp = keras.Input((16, 16, 3))
    x = L.Conv2D(8, 3, padding="same")(inp)
    x = L.BatchNormalization()(x)
    x = L.MaxPooling2D(2)(L.ReLU()(x))
    x = L.Conv2D(16, 3, padding="same")(x)
    x = L.BatchNormalization()(x)
    x = L.MaxPooling2D(2)(L.ReLU()(x))
    x = L.Dense(10)(L.Dense(32, activation="relu")(L.Flatten()(x)))
    m = keras.Model(inp, x)
    rng = np.random.default_rng(2)
    for layer in m.layers:
        if isinstance(layer, L.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(.5, 1.5, n), rng.uniform(-.5, .5, n), rng.uniform(-.5, .5, n),
                               rng.uniform(.5, 2, n)])
    return m


@pytest.mark.parametrize("fname", ["m.h5", "m.weights.h5"])
def test_keras_matches_keras(tmp_path, fname):
    keras = _keras()
    m = _keras_cnn(keras)
    p = tmp_path / fname
    m.save(p) if fname == "m.h5" else m.save_weights(p)
    want = np.asarray(m.predict(X.transpose(0, 2, 3, 1), verbose=0))
    net = nd_cnn(eps=1e-3)  # Keras' batch-norm epsilon
    rep = net.load_weights(p, keras_order=True)  # Keras' names (conv2d, ...) are not the modules' names
    assert rep.ok and all("does not record the order" in w for w in rep.warnings), rep.warnings
    assert [(m, how) for _, m, how in rep.layer_pairs] == [(m, "order") for m in
                                                           ("conv1", "bn1", "conv2", "bn2", "fc1", "fc2")]
    assert any("NHWC" in n for n in rep.notes)
    np.testing.assert_allclose(run_reference(net, X), want, rtol=1e-4, atol=1e-5)
    # the PyTorch default epsilon is flagged
    rep = nd_cnn().load_weights(p, keras_order=True)
    assert any("eps=1e-05" in w and "0.001" in w for w in rep.warnings)


def test_keras_depthwise_and_transposed(tmp_path):
    keras = _keras()
    L = keras.layers
    inp = keras.Input((8, 8, 3))
    x = L.Conv2D(4, 3, name="c1")(inp)
    x = L.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(x)
    x = L.Conv2DTranspose(3, 2, strides=2, name="up")(x)
    m = keras.Model(inp, x)
    rng = np.random.default_rng(3)
    m.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in m.get_weights()])
    p = tmp_path / "dw.h5"
    m.save(p)

    class Nd(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.dw = nn.Conv2d(4, 8, 3, groups=4)
            self.up = nn.ConvTranspose2d(8, 3, 2, stride=2)

        def forward(self, x):
            return self.up(self.dw(self.conv(x)))
    net = Nd().build({"x": (1, 3, 8, 8)})
    rep = net.load_weights(p, keras_layers={"c1": "conv"})  # dw and up bind by name
    assert rep.ok
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    want = np.asarray(m.predict(x.transpose(0, 2, 3, 1), verbose=0)).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(run_reference(net, x), want, rtol=1e-4, atol=1e-4)


# ---- layout transforms against independent computations ------------------------------------------
def test_layout_transforms(rng):
    k = rng.standard_normal((3, 5, 2, 4))  # H, W, I, O
    t = hwio_to_oihw()
    assert t.shape(k.shape) == (4, 2, 3, 5)
    assert np.array_equal(t(k)[1, 0, 2, 3], k[2, 3, 0, 1])
    d = rng.standard_normal((6, 3))
    assert np.array_equal(dense_to_linear()(d), d.T)
    dw = rng.standard_normal((3, 3, 4, 2))  # H W C M
    g = depthwise_to_grouped()(dw)
    assert g.shape == (8, 1, 3, 3) and np.array_equal(g[2 * 2 + 1, 0], dw[:, :, 2, 1])
    kt = rng.standard_normal((2, 2, 3, 8))  # H W out in
    assert keras_deconv_to_torch()(kt).shape == (8, 3, 2, 2)
    # NHWC flatten: y = flat_nhwc(x) @ K  ==  flat_nchw(x) @ W.T
    c, h, w = 3, 2, 4
    x = rng.standard_normal((c, h, w))
    K = rng.standard_normal((h * w * c, 5))
    W = nhwc_flatten_dense(c, h, w)(K)
    np.testing.assert_allclose(x.transpose(1, 2, 0).ravel() @ K, W @ x.ravel())


# ---- mapping and the report ---------------------------------------------------------------------
def _tiny() -> Network:
    class T(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)
            self.out = nn.Linear(3, 2, bias=False)

        def forward(self, x):
            return self.out(F.relu(self.fc(x)))
    return T().build({"x": ("N", 4)})


def _tensors(rng):
    return {"fc.weight": rng.standard_normal((3, 4)).astype(np.float32),
            "fc.bias": rng.standard_normal(3).astype(np.float32),
            "out.weight": rng.standard_normal((2, 3)).astype(np.float32)}


def test_strict_report_lists_everything(tmp_path, rng):
    t = _tensors(rng)
    t["fc.weight"] = t["fc.weight"].T.copy()  # mis-shaped
    del t["fc.bias"]                          # missing
    t["extra.weight"] = np.ones(2, np.float32)  # unexpected
    t["more.bias"] = np.ones(1, np.float32)
    p = tmp_path / "w.npz"
    np.savez(p, **t)
    net = _tiny()
    with pytest.raises(WeightError) as ei:
        net.load_weights(p)
    msg = str(ei.value)
    for s in ("fc.bias", "extra.weight", "more.bias", "fc.weight", "(3, 4)", "(4, 3)", str(p)):
        assert s in msg, s
    assert not any(prm.bound for prm in net.graph.params.values())  # strict failure binds nothing
    rep = ei.value.report
    assert isinstance(rep, BindingReport)
    assert len(rep.missing) == 1 and len(rep.unexpected) == 2 and len(rep.mismatched) == 1
    rep = net.load_weights(p, strict=False)
    assert [b.param for b in rep.bound] == ["out.weight"]
    assert not net.graph.params["fc.bias"].bound  # never bound to zeros
    with pytest.raises(WeightError, match="no weights bound"):
        net.graph.params["fc.bias"].value()


def test_mapping_prefix_rename(tmp_path, rng):
    t = _tensors(rng)
    p = tmp_path / "w.npz"
    np.savez(p, **{f"module.backbone.{k.replace('fc', 'dense')}": v for k, v in t.items()}, other=np.ones(1))
    net = _tiny()
    rep = net.load_weights(p, prefix="module.backbone.", rename=[(r"^dense\.", "fc.")])
    assert rep.ok and "other" in rep.ignored
    np.testing.assert_array_equal(net.graph.params["fc.weight"].value(), t["fc.weight"])
    np.savez(p, a=t["fc.weight"], b=t["fc.bias"], c=t["out.weight"])
    rep = _tiny().load_weights(p, mapping={"a": "fc.weight", "b": "fc.bias", "c": "out.weight"})
    assert rep.ok
    np.savez(p, **{f"net.{k}": v for k, v in t.items()})
    assert _tiny().load_weights(p, strip_prefix="net.").ok
    np.savez(p, **{k[3:] if k.startswith("fc.") else k: v for k, v in t.items()})
    assert not _tiny().load_weights(p, strict=False).ok


def test_dataparallel_prefix_and_transforms(tmp_path, rng):
    t = _tensors(rng)
    p = tmp_path / "w.npz"
    np.savez(p, **{"module." + k: (v.T.copy() if k == "out.weight" else v) for k, v in t.items()})
    net = _tiny()
    rep = net.load_weights(p, transforms={"out.weight": "transpose"})
    assert rep.ok
    np.testing.assert_array_equal(net.graph.params["out.weight"].value(), t["out.weight"])


def test_binding_is_lazy_and_converts_dtype(tmp_path, rng):
    t = {k: v.astype(np.float16) for k, v in _tensors(rng).items()}
    p = tmp_path / "w.npz"
    np.savez(p, **t)
    ck = open_checkpoint(p)
    reads = []
    orig = ck.read
    ck.read = lambda n: (reads.append(n), orig(n))[1]
    net = _tiny()
    rep = load_weights(net, ck)
    assert reads == [] and any("float16 to float32" in n for n in rep.notes)
    v = net.graph.params["fc.weight"].value()
    assert reads == ["fc.weight"] and v.dtype == np.float32
    np.testing.assert_array_equal(v, t["fc.weight"].astype(np.float32))


def test_complex_tensors_do_not_bind_real_parameters(tmp_path, rng):
    """complex64 weights were bound with a note 'converted from complex64 to float32': their imaginary parts
    were dropped (NumPy's astype), and the network computed with half of what the file holds."""
    t = {k: (v + 1j * rng.standard_normal(v.shape)).astype(np.complex64) for k, v in _tensors(rng).items()}
    p = tmp_path / "w.npz"
    np.savez(p, **t)
    rep = load_weights(_tiny(), p, strict=False)
    assert not rep.bound and {m[0] for m in rep.mismatched} == set(t)
    assert all("imaginary parts would be dropped" in m[4] for m in rep.mismatched)


def test_dict_source(rng):
    net = _tiny()
    assert load_weights(net, _tensors(rng)).ok


def test_nan_and_inf_weights_warn_once(tmp_path, rng):
    """NaN/Inf weights bound without a word (a trained checkpoint holding them is almost always a broken
    export): they still bind, and the first one read warns, once per checkpoint; the report lists each."""
    import warnings

    import safetensors.numpy as st
    net = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2)).build({"x": (1, 4)})
    w0, b0, _w1, b1 = net.graph.params
    t = {k: rng.standard_normal(p.shape).astype(np.float32) for k, p in net.graph.params.items()}
    p = tmp_path / "ok.safetensors"
    st.save_file(t, str(p))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.load_weights(p)
        [q.value() for q in net.graph.params.values()]
    t[w0][1, 2] = np.nan
    t[b1][0] = -np.inf
    t[b0][:] = 3e38  # finite, but their sum overflows
    st.save_file(t, str(p))
    rep = net.load_weights(p)
    with pytest.warns(UserWarning) as w:
        vals = {k: q.value() for k, q in net.graph.params.items()}
    assert len(w) == 1 and str(p) in str(w[0].message) and f"'{w0}' holds 1 NaN/Inf" in str(w[0].message)
    assert np.isnan(vals[w0][1, 2]) and vals[b1][0] == -np.inf and vals[b0][0] == np.float32(3e38)
    assert len(rep.warnings) == 2 and f"'{b1}' holds 1 NaN/Inf" in rep.warnings[1]
