"""Keras layers -> modules: by name whenever names match, by order only when asked, ambiguity refused.

Every file here is written by Keras itself (``model.save('m.h5')``: the Keras 2 HDF5 layout;
``save_weights('m.weights.h5')`` and ``save('m.keras')``: Keras 3), and outputs are compared with
Keras' own ``predict``.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import netdsl as nd
from netdsl import nn
from netdsl.errors import WeightError
from netdsl.weights.keras_bind import KERAS_ROLES, module_units
from tests.weights.nets import run_reference

FILES = ["m.h5", "m.weights.h5", "m.keras"]


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras", reason="keras not installed")


def _randomize(m, seed=0):
    rng = np.random.default_rng(seed)
    ws = []
    for w in m.get_weights():
        v = rng.standard_normal(w.shape).astype(np.float32)
        ws.append(np.abs(v) + 0.5 if w.ndim == 1 and "variance" in str(w) else v)
    m.set_weights(ws)
    for layer in m.layers:  # positive variances for batch norms
        if layer.__class__.__name__ == "BatchNormalization":
            g, b, mu, var = layer.get_weights()
            layer.set_weights([g, b, mu, np.abs(var) + 0.5])


def _save(m, tmp_path, fname):
    p = tmp_path / fname
    m.save_weights(p) if fname.endswith(".weights.h5") else m.save(p)
    return p


def _predict(m, x_nchw):
    y = np.asarray(m.predict(x_nchw.transpose(0, 2, 3, 1) if x_nchw.ndim == 4 else x_nchw, verbose=0))
    return y.transpose(0, 3, 1, 2) if y.ndim == 4 else y


# ---- parallel same-shaped branches ---------------------------------------------------------------
def _keras_branches(keras):
    L = keras.layers
    inp = keras.Input((6,))
    b = L.Dense(4, name="branch_b")(inp)       # defined (and stored) before branch_a
    a = L.Dense(4, name="branch_a")(inp)
    m = keras.Model(inp, L.Concatenate()([a, L.Dense(4, name="scale")(b)]))
    _randomize(m, 1)
    return m


class Branches(nn.Module):
    def __init__(self, names=("branch_a", "branch_b")):
        super().__init__()
        self.names = names
        for n in names:
            setattr(self, n, nn.Linear(6, 4))
        self.scale = nn.Linear(4, 4)

    def forward(self, x):
        a, b = (getattr(self, n)(x) for n in self.names)
        return nd.concat([a, self.scale(b)], axis=1)


@pytest.mark.parametrize("fname", FILES)
def test_parallel_branches_bind_by_name(tmp_path, fname):
    keras = _keras()
    m = _keras_branches(keras)
    p = _save(m, tmp_path, fname)
    net = Branches().build({"x": ("N", 6)})
    rep = net.load_weights(p)
    assert rep.ok, str(rep)
    assert sorted(rep.layer_pairs) == [("branch_a", "branch_a", "name"), ("branch_b", "branch_b", "name"),
                                       ("scale", "scale", "name")]
    assert "branch_a -> branch_a (by name)" in str(rep)
    x = np.random.default_rng(2).standard_normal((3, 6)).astype(np.float32)
    np.testing.assert_allclose(run_reference(net, x), _predict(m, x), rtol=1e-5, atol=1e-5)


def test_order_matching_is_only_on_request_and_refuses_parallel_ambiguity(tmp_path):
    keras = _keras()
    m = _keras_branches(keras)
    p = _save(m, tmp_path, "m.h5")
    # module names unlike Keras': nothing binds unless asked, and the error says what to pass
    with pytest.raises(WeightError) as ei:
        Branches(("left", "right")).build({"x": ("N", 6)}).load_weights(p)
    msg = str(ei.value)
    assert "keras_order=True" in msg and "keras_layers=" in msg and "strict=False" in msg
    # asked to match by order: same-shaped Dense layers of parallel branches cannot be told apart
    net = Branches(("left", "right")).build({"x": ("N", 6)})
    with pytest.raises(WeightError, match="ambiguous order matching") as ei:
        net.load_weights(p, keras_order=True)
    assert "'branch_b' and 'branch_a'" in str(ei.value) and "keras_layers={" in str(ei.value)
    assert not any(q.bound for q in net.graph.params.values())
    rep = net.load_weights(p, keras_order=True, strict=False)  # bound, but the report says so
    assert rep.ambiguous and not rep.ok and rep.applied
    # the user says which is which: bound, and right
    net = Branches(("left", "right")).build({"x": ("N", 6)})
    rep = net.load_weights(p, keras_layers={"branch_a": "left", "branch_b": "right"})
    assert rep.ok and ("branch_a", "left", "keras_layers") in rep.layer_pairs
    x = np.random.default_rng(3).standard_normal((2, 6)).astype(np.float32)
    np.testing.assert_allclose(run_reference(net, x), _predict(m, x), rtol=1e-5, atol=1e-5)


def test_order_matching_of_a_chain_is_not_ambiguous(tmp_path):
    """Same-shaped layers one after the other: data flow fixes their order, so order matching is safe."""
    keras = _keras()
    L = keras.layers
    inp = keras.Input((5,))
    m = keras.Model(inp, L.Dense(5)(L.Dense(5)(L.Dense(5)(inp))))
    _randomize(m, 4)
    p = _save(m, tmp_path, "m.h5")
    net = nn.Sequential(nn.Linear(5, 5), nn.Linear(5, 5), nn.Linear(5, 5)).build({"x": ("N", 5)})
    rep = net.load_weights(p, keras_order=True)
    assert rep.ok and [h for *_, h in rep.layer_pairs] == ["order"] * 3
    x = np.random.default_rng(5).standard_normal((2, 5)).astype(np.float32)
    np.testing.assert_allclose(run_reference(net, x), _predict(m, x), rtol=1e-5, atol=1e-5)


# ---- residual block whose file lists the main branch first ---------------------------------------------
def _keras_residual(keras):
    L = keras.layers
    inp = keras.Input((6, 6, 4))
    y = L.Conv2D(8, 3, padding="same", use_bias=False, name="conv_a")(inp)
    y = L.ReLU()(L.BatchNormalization(name="bn_a")(y))
    y = L.Conv2D(8, 3, padding="same", use_bias=False, name="conv_b")(y)
    y = L.BatchNormalization(name="bn_b")(y)
    s = L.BatchNormalization(name="bn_s")(L.Conv2D(8, 1, use_bias=False, name="conv_s")(inp))
    m = keras.Model(inp, L.ReLU()(L.Add()([y, s])))
    _randomize(m, 6)
    return m


class Residual(nn.Module):
    """Layers run in the file's order except at the end: the shortcut's batch norm before the main one's."""

    def __init__(self):
        super().__init__()
        self.conv_a, self.bn_a = nn.Conv2d(4, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8, eps=1e-3)
        self.conv_b, self.bn_b = nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8, eps=1e-3)
        self.conv_s, self.bn_s = nn.Conv2d(4, 8, 1, bias=False), nn.BatchNorm2d(8, eps=1e-3)

    def forward(self, x):
        y = self.conv_b(nd.relu(self.bn_a(self.conv_a(x))))
        s = self.bn_s(self.conv_s(x))
        return nd.relu(self.bn_b(y) + s)


@pytest.mark.parametrize("fname", FILES)
def test_residual_block_binds_batch_norms_by_name(tmp_path, fname):
    keras = _keras()
    m = _keras_residual(keras)
    p = _save(m, tmp_path, fname)
    net = Residual().build({"x": ("N", 4, 6, 6)})
    rep = net.load_weights(p)
    assert rep.ok and not rep.warnings, str(rep)
    assert all(k == mod and how == "name" for k, mod, how in rep.layer_pairs)
    x = np.random.default_rng(7).standard_normal((2, 4, 6, 6)).astype(np.float32)
    want = _predict(m, x)
    np.testing.assert_allclose(run_reference(net, x), want, rtol=1e-4, atol=1e-4)
    if fname != "m.h5":
        return  # only the Keras 2 layout records the layers' order (layer_names)
    # by order (names made to differ), shapes all fit but bn_b and bn_s pair crosswise: refused
    net = Residual().build({"x": ("N", 4, 6, 6)})
    with pytest.raises(WeightError, match="ambiguous") as ei:
        net.load_weights(p, keras_order=True, rename=[(r"$", "_x")])
    rep = ei.value.report
    assert not rep.mismatched and not rep.missing
    assert any("'bn_b' and 'bn_s'" in a for a in rep.ambiguous)
    assert ("bn_b", "bn_s", "order") in rep.layer_pairs  # what order matching did, shown in the report
    rep = net.load_weights(p, keras_order=True, rename=[(r"$", "_x")], strict=False)
    assert not np.allclose(run_reference(net, x), want, atol=1e-3)  # why it is refused


# ---- separable and depthwise convolutions ------------------------------------------------------------
class SepNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.sep = nn.SeparableConv2d(3, 8, 3, padding=1, depth_multiplier=2)
        self.dw = nn.DepthwiseConv2d(8, 3, stride=2, depth_multiplier=1)
        self.sep_nb = nn.SeparableConv2d(8, 4, 1, bias=False)

    def forward(self, x):
        return self.sep_nb(nd.relu(self.dw(nd.relu(self.sep(x)))))


@pytest.mark.parametrize("fname", FILES)
def test_separable_and_depthwise_from_keras(tmp_path, fname):
    keras = _keras()
    L = keras.layers
    inp = keras.Input((9, 9, 3))
    y = L.SeparableConv2D(8, 3, padding="same", depth_multiplier=2, name="sep")(inp)
    y = L.DepthwiseConv2D(3, strides=2, name="dw")(L.ReLU()(y))
    y = L.SeparableConv2D(4, 1, use_bias=False, name="sep_nb")(L.ReLU()(y))
    m = keras.Model(inp, y)
    _randomize(m, 8)
    p = _save(m, tmp_path, fname)
    net = SepNet().build({"x": ("N", 3, 9, 9)})
    assert list(module_units(net.graph)) == ["sep", "dw", "sep_nb"]
    rep = net.load_weights(p)
    assert rep.ok, str(rep)
    table = rep.table()
    assert "sep.depthwise.weight (6, 1, 3, 3) <- " in table and "[depthwise (H,W,C,M)->(C*M,1,H,W)]" in table
    assert "sep.pointwise.weight (8, 6, 1, 1) <- " in table and "[HWIO->OIHW]" in table
    x = np.random.default_rng(9).standard_normal((2, 3, 9, 9)).astype(np.float32)
    want = _predict(m, x)
    np.testing.assert_allclose(run_reference(net, x), want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(nd.compile(net, "openvino")(x=x)["output"], want, rtol=1e-4, atol=1e-4)


def test_roles_table_covers_what_keras_layers_store():
    keras = _keras()
    L = keras.layers
    layers = [L.Conv2D(2, 3), L.Dense(2), L.SeparableConv2D(2, 3), L.DepthwiseConv2D(3), L.BatchNormalization(),
              L.Embedding(5, 2), L.PReLU(), L.Conv2DTranspose(2, 3), L.LayerNormalization()]
    for layer in layers:
        layer.build((1, 8, 8, 3) if not isinstance(layer, (L.Dense, L.Embedding)) else (1, 3))
        for w in layer.weights:
            assert w.name in KERAS_ROLES, (type(layer).__name__, w.name)


def test_mapping_means_tensor_to_parameter_in_keras_files_too(tmp_path):
    keras = _keras()
    m = _keras_branches(keras)
    p = _save(m, tmp_path, "m.h5")
    net = Branches(("left", "branch_b")).build({"x": ("N", 6)})
    rep = net.load_weights(p, mapping={"branch_a/kernel": "left.weight", "branch_a/bias": "left.bias"})
    assert rep.ok, str(rep)
    x = np.random.default_rng(3).standard_normal((2, 6)).astype(np.float32)
    np.testing.assert_allclose(run_reference(net, x), _predict(m, x), rtol=1e-5, atol=1e-5)  # kernel transposed
    with pytest.raises(WeightError, match=r"'branch_a' is a Keras layer, use keras_layers=\{'branch_a': 'left'\}"):
        Branches(("left", "branch_b")).build({"x": ("N", 6)}).load_weights(p, mapping={"branch_a": "left"})


# ---- subclassed Keras 3 models: weights stored under attribute names ------------------------------------
def _keras_subclassed(keras):
    L = keras.layers

    class Sub(keras.Model):  # a keras.Model subclass, as most Keras 3 code is written
        def __init__(self):
            super().__init__()
            self.stem = keras.Sequential([L.Conv2D(4, 3, padding="same", name="stem_conv"), L.Conv2D(4, 1, name="conv2d")])
            self.head = L.Conv2D(2, 1)
            self.bn = L.BatchNormalization()

        def call(self, x):
            return self.bn(self.head(self.stem(x)))

    m = Sub()
    m(np.zeros((1, 6, 6, 3), np.float32))
    m.compile(optimizer="adam", loss="mse")  # the optimizer's variables are saved too
    m.fit(np.ones((2, 6, 6, 3), np.float32), np.ones((2, 6, 6, 2), np.float32), verbose=0, epochs=1)
    _randomize(m, 11)
    for w in m.bn.weights[2:]:
        w.assign(np.abs(np.asarray(w)) + 0.5)
    return m


class SubNet(nn.Module):
    """Modules named as the Keras model's attributes (``head``, ``bn``) or its layers' names (``stem_conv``)."""

    def __init__(self):
        super().__init__()
        self.stem_conv, self.conv2d = nn.Conv2d(3, 4, 3, padding="same"), nn.Conv2d(4, 4, 1)
        self.head, self.bn = nn.Conv2d(4, 2, 1), nn.BatchNorm2d(2, eps=1e-3)

    def forward(self, x):
        return self.bn(self.head(self.conv2d(self.stem_conv(x))))


@pytest.mark.parametrize("fname", ["m.weights.h5", "m.keras"])
def test_subclassed_keras3_model_binds_by_attribute_and_layer_names(tmp_path, fname):
    keras = _keras()
    m = _keras_subclassed(keras)
    p = _save(m, tmp_path, fname)
    from netdsl.weights import open_checkpoint
    ck = open_checkpoint(p)
    assert ck.layout == "keras3"
    assert not [n for n in ck.names() if n.startswith("optimizer")]
    assert len(ck.names()) == 2 + 2 + 2 + 4  # every layer's weights, none of the optimizer's
    net = SubNet().build({"x": ("N", 3, 6, 6)})
    rep = net.load_weights(p)
    assert rep.ok, str(rep)
    assert {(mod, how) for _, mod, how in rep.layer_pairs} == {("stem_conv", "name"), ("conv2d", "name"),
                                                               ("head", "path"), ("bn", "path")}
    assert "head -> head (by path)" in str(rep)
    x = np.random.default_rng(12).standard_normal((2, 3, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(run_reference(net, x), _predict(m, x), rtol=1e-4, atol=1e-4)


class SubNetByPath(nn.Module):
    """Modules named as ``netdsl weights`` lists the file (``sequential/conv2d_1/vars/0``)."""

    def __init__(self):
        super().__init__()
        self.sequential = nn.ModuleDict({"conv2d": nn.Conv2d(3, 4, 3, padding="same"), "conv2d_1": nn.Conv2d(4, 4, 1)})
        self.head, self.bn = nn.Conv2d(4, 2, 1), nn.BatchNorm2d(2, eps=1e-3)

    def forward(self, x):
        for c in self.sequential.values():
            x = c(x)
        return self.bn(self.head(x))


def test_subclassed_keras3_model_binds_by_the_listed_paths(tmp_path):
    keras = _keras()
    m = _keras_subclassed(keras)
    p = _save(m, tmp_path, "m.weights.h5")
    net = SubNetByPath().build({"x": ("N", 3, 6, 6)})
    rep = net.load_weights(p)
    assert rep.ok, str(rep)
    assert sorted(rep.layer_pairs) == [("bn", "bn", "path"), ("head", "head", "path"),
                                       ("sequential/conv2d", "sequential.conv2d", "path"),
                                       ("sequential/conv2d_1", "sequential.conv2d_1", "path")]
    x = np.random.default_rng(13).standard_normal((2, 3, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(run_reference(net, x), _predict(m, x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("edit", ["epsilon text", "epsilon null", "epsilon list", "layers not a list", "deep json"])
def test_corrupt_model_config_does_not_break_binding(tmp_path, edit):
    """The file's model_config is read only for the batch norms' epsilon: an epsilon 'abc' / null / [1] failed
    load_weights with float()'s ValueError/TypeError, 'layers': 5 with 'int is not iterable', and 100000 nested
    brackets with a RecursionError (raw Python errors; the command line called them bugs of netdsl)."""
    import json

    import h5py
    keras = _keras()
    p = _save(_keras_residual(keras), tmp_path, "m.h5")
    with h5py.File(p, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        for layer in cfg["config"]["layers"]:
            if layer["class_name"] == "BatchNormalization":
                layer["config"]["epsilon"] = {"epsilon text": "abc", "epsilon null": None,
                                              "epsilon list": [1]}.get(edit, layer["config"]["epsilon"])
        if edit == "layers not a list":
            cfg["config"]["layers"] = 5
        f.attrs["model_config"] = "[" * 100_000 + "]" * 100_000 if edit == "deep json" else json.dumps(cfg)
    net = Residual().build({"x": ("N", 4, 6, 6)})
    rep = net.load_weights(p)
    assert rep.ok and len(rep.bound) == len(net.graph.params)
