"""Binding options: one meaning each, hints in Python's words, presets, the binding a network declares."""
from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

import netdsl as nd
from netdsl import nn
from netdsl.errors import WeightError
from netdsl.weights import load_weights
from netdsl.weights.layout import NAMED


def _net() -> nd.Network:
    class T(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)
            self.conv = nn.Conv2d(2, 5, 3)

        def forward(self, x, img):
            return self.fc(x), self.conv(img)
    return T().build({"x": ("N", 4), "img": ("N", 2, 6, 6)}, outputs=("y", "z"))


def _tensors(rng) -> dict:
    return {"fc.weight": rng.standard_normal((3, 4)).astype(np.float32),
            "fc.bias": rng.standard_normal(3).astype(np.float32),
            "conv.weight": rng.standard_normal((5, 2, 3, 3)).astype(np.float32),
            "conv.bias": rng.standard_normal(5).astype(np.float32)}


def test_hint_strip_prefix_when_every_name_shares_one(tmp_path, rng):
    p = tmp_path / "w.npz"
    np.savez(p, **{"model.backbone." + k: v for k, v in _tensors(rng).items()})
    with pytest.raises(WeightError) as ei:
        _net().load_weights(p)
    msg = str(ei.value)
    assert "every unmatched checkpoint name starts with 'model.backbone.' and match parameters without it: " \
           "strip_prefix='model.backbone.'" in msg
    assert "strict=False" in msg and "--" not in msg  # Python advice in Python
    assert _net().load_weights(p, strip_prefix="model.backbone.").ok


def test_hint_add_prefix(tmp_path, rng):
    class Wrapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(4, 3)

        def forward(self, x):
            return self.head(x)
    net = Wrapped().build({"x": ("N", 4)})
    with pytest.raises(WeightError, match=r"add_prefix='head\.'"):
        net.load_weights({"weight": np.ones((3, 4), np.float32), "bias": np.ones(3, np.float32)})
    assert net.load_weights({"weight": np.ones((3, 4), np.float32), "bias": np.ones(3, np.float32)},
                            add_prefix="head.").ok


def test_hint_transpose_when_shape_is_reversed(tmp_path, rng):
    t = _tensors(rng)
    stored = dict(t, **{"fc.weight": t["fc.weight"].T.copy(), "conv.weight": t["conv.weight"].transpose(3, 2, 1, 0).copy()})
    with pytest.raises(WeightError) as ei:
        _net().load_weights(stored)
    assert "transforms={'fc.weight': 'transpose', 'conv.weight': 'transpose'}" in str(ei.value)
    net = _net()
    assert net.load_weights(stored, transforms={"fc.weight": "transpose", "conv.weight": "transpose"}).ok
    np.testing.assert_array_equal(net.graph.params["conv.weight"].value(), t["conv.weight"])


def test_each_argument_has_one_meaning(tmp_path, rng):
    t = _tensors(rng)
    # mapping: checkpoint tensor name -> parameter name, for every format (never Keras layer -> module)
    net = _net()
    rep = net.load_weights({"a": t["fc.weight"], "fc.bias": t["fc.bias"], "conv.weight": t["conv.weight"],
                            "conv.bias": t["conv.bias"]}, mapping={"a": "fc.weight"})
    assert rep.ok
    with pytest.raises(WeightError, match="mapping names checkpoint tensors that are not in the file: nope"):
        _net().load_weights(t, mapping={"nope": "fc.weight"})
    with pytest.raises(WeightError, match="mapping names parameters the network does not have: fc.w"):
        _net().load_weights(t, mapping={"fc.weight": "fc.w"})
    with pytest.raises(WeightError, match="keras_layers/keras_order apply to Keras files"):
        _net().load_weights(t, keras_layers={"dense": "fc"})
    with pytest.raises(WeightError, match="unknown transform 'flip'; known: transpose"):
        _net().load_weights(t, transforms={"fc.weight": "flip"})
    with pytest.raises(WeightError, match="preset must be one of pytorch, huggingface, keras"):
        _net().load_weights(t, preset="tf")


def test_named_transforms_are_documented():
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md")).read()
    for name in NAMED:
        assert f"`{name}`" in readme, name


def test_declared_binding_is_used_and_overridable(tmp_path, rng):
    t = _tensors(rng)
    p = tmp_path / "w.npz"
    np.savez(p, **{"net." + k: v for k, v in t.items()})
    net = _net().declare_binding(strip_prefix="net.")
    assert net.binding == {"strip_prefix": "net."}
    assert net.load_weights(p).ok
    with pytest.raises(WeightError):
        net.load_weights(p, strip_prefix="other.")
    with pytest.raises(TypeError, match="unknown binding option.*strip_prefixes"):
        _net().declare_binding(strip_prefixes="net.")


# ---- the huggingface preset on files written by transformers ---------------------------------------------
def _bert_module():
    path = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "bert.py")
    spec = importlib.util.spec_from_file_location("netdsl_example_bert_for_test", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


CFG = dict(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
           max_position_embeddings=16, type_vocab_size=2)


def _encoder_net(head: bool = False) -> nd.Network:
    """examples/bert.py's encoder without a pooler (the network does not use one)."""
    bert = _bert_module()

    class Encoder(bert.Bert):
        def __init__(self):
            super().__init__(vocab=30, hidden=8, layers=1, heads=2, inner=16, max_pos=16)
            del self._modules["pooler"]
            if head:
                self.classifier = nn.Linear(8, 3)

        def forward(self, ids, attention_mask):
            m = nd.cast(attention_mask, "float32").reshape(0, 1, 1, -1)
            x = self.embeddings(ids)
            for layer in self.encoder.layer:
                x = layer(x, (1.0 - m) * -10000.0)
            return (x, self.classifier(x[:, 0])) if head else x
    net = nd.Network("enc")
    ids, mask = net.input("input_ids", ("N", "S"), "int32"), net.input("attention_mask", ("N", "S"), "int32")
    out = Encoder()(ids, mask)
    net.output(out[0] if head else out, "last_hidden_state")
    return net


def test_huggingface_preset_ignores_buffers_and_unused_pooler(tmp_path):
    torch = pytest.importorskip("torch", reason="torch not installed")
    transformers = pytest.importorskip("transformers", reason="transformers not installed")
    from safetensors.torch import load_file, save_file
    torch.manual_seed(0)
    model = transformers.BertModel(transformers.BertConfig(**CFG), add_pooling_layer=True).eval()
    model.save_pretrained(tmp_path / "bert")  # model.safetensors, Hugging Face names, with the pooler
    p = tmp_path / "bert" / "model.safetensors"
    sd = load_file(p)
    assert "pooler.dense.weight" in sd
    # transformers < 4.31 also saved the position_ids buffer (1, max_pos) int64, as many hub checkpoints have it
    sd["embeddings.position_ids"] = torch.arange(16).unsqueeze(0)
    save_file(sd, p, metadata={"format": "pt"})

    with pytest.raises(WeightError) as ei:
        _encoder_net().load_weights(p)  # the pytorch preset keeps buffers and the pooler as unexpected
    assert "embeddings.position_ids" in str(ei.value) and "pooler.dense.weight" in str(ei.value)
    net = _encoder_net()
    rep = net.load_weights(p, preset="huggingface")
    assert rep.ok, str(rep)
    assert sorted(rep.ignored) == ["embeddings.position_ids", "pooler.dense.bias", "pooler.dense.weight"]
    assert any("huggingface preset ignored 3 tensor(s)" in n for n in rep.notes)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 30, (2, 7)).astype(np.int32)
    mask = np.ones((2, 7), np.int32)
    mask[1, 5:] = 0
    with torch.no_grad():
        want = model(torch.from_numpy(ids.astype(np.int64)), attention_mask=torch.from_numpy(mask)).last_hidden_state
    got = nd.compile(net, "reference")(input_ids=ids, attention_mask=mask)["last_hidden_state"]
    np.testing.assert_allclose(got[0], want.numpy()[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got[1, :5], want.numpy()[1, :5], rtol=1e-4, atol=1e-5)


def test_huggingface_preset_strips_the_base_model_prefix(tmp_path):
    pytest.importorskip("torch", reason="torch not installed")
    transformers = pytest.importorskip("transformers", reason="transformers not installed")
    model = transformers.BertForSequenceClassification(transformers.BertConfig(num_labels=3, **CFG))
    model.save_pretrained(tmp_path / "cls")  # names bert.embeddings.*, bert.pooler.*, classifier.*
    net = _encoder_net(head=True)
    rep = net.load_weights(tmp_path / "cls" / "model.safetensors", preset="huggingface")
    assert rep.ok, str(rep)
    assert any("stripped the base model prefix 'bert.'" in n for n in rep.notes)
    assert "bert.pooler.dense.weight" in rep.ignored
    assert net.graph.params["classifier.weight"].origin.endswith(":classifier.weight")
    assert load_weights(_encoder_net(head=True), tmp_path / "cls" / "model.safetensors", preset="huggingface",
                        strict=False).ok


def test_prefix_wins_over_the_dataparallel_strip(rng):
    t = _tensors(rng)
    sd = {"module.backbone." + k: v for k, v in t.items()}
    sd["module.head.weight"] = np.ones(2, np.float32)
    rep = _net().load_weights(sd, prefix="module.backbone.")
    assert rep.ok and rep.ignored == ["module.head.weight"]
    assert not any("DataParallel" in n for n in rep.notes)
    rep = _net().load_weights({"module." + k: v for k, v in t.items()})
    assert rep.ok and any("DataParallel" in n for n in rep.notes)
