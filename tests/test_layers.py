import inspect

import numpy as np
import pytest

import netdsl as nd
from netdsl import nn
from netdsl.backends import reference

torch = pytest.importorskip("torch", reason="torch not installed (PyTorch is the independent check here)")


def test_modules_match_torch_with_same_state_dict():
    tm = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                             torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 5),
                             torch.nn.LayerNorm(5)).double().eval()
    with torch.no_grad():
        tm[1].running_mean.uniform_(-1, 1)
        tm[1].running_var.uniform_(0.5, 2)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(8 * 4 * 4, 5), nn.LayerNorm(5))
    net = m.build({"x": ("N", 3, 8, 8)}, outputs=["y"])
    sd = {k: v.numpy() for k, v in tm.state_dict().items() if "num_batches" not in k}
    assert set(sd) == set(net.graph.params)
    for k, p in net.graph.params.items():
        p.source = (lambda a: lambda: a)(sd[k].astype(np.float32))
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8))
    got = reference.run(net.graph, {"x": x.astype(np.float32)})["y"]
    ref = tm(torch.from_numpy(x.astype(np.float32).astype(np.float64))).detach().numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_multihead_attention_matches_torch():
    e, h = 16, 4
    tm = torch.nn.MultiheadAttention(e, h, batch_first=True).double().eval()
    m = nn.MultiHeadAttention(e, h, name="mha")
    net = nd.Network("mha")
    q = net.input("q", ("N", 5, e))
    net.output(m(q), "y")
    W, B = tm.in_proj_weight.detach().numpy(), tm.in_proj_bias.detach().numpy()
    vals = {"mha.q_proj.weight": W[:e], "mha.k_proj.weight": W[e:2 * e], "mha.v_proj.weight": W[2 * e:],
            "mha.q_proj.bias": B[:e], "mha.k_proj.bias": B[e:2 * e], "mha.v_proj.bias": B[2 * e:],
            "mha.out_proj.weight": tm.out_proj.weight.detach().numpy(), "mha.out_proj.bias": tm.out_proj.bias.detach().numpy()}
    for k, p in net.graph.params.items():
        p.source = (lambda a: lambda: a)(vals[k].astype(np.float32))
    x = np.random.default_rng(0).standard_normal((2, 5, e)).astype(np.float32)
    got = reference.run(net.graph, {"q": x})["y"]
    ref = tm(*(torch.from_numpy(x.astype(np.float64)),) * 3, need_weights=False)[0].detach().numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("with_state", [True, False])
@pytest.mark.parametrize("backend", ["reference", "openvino", "onnx"])
def test_lstm_cell_matches_torch(backend, with_state):
    pytest.importorskip({"reference": "numpy", "openvino": "openvino", "onnx": "onnxruntime"}[backend])
    tm = torch.nn.LSTMCell(6, 5).double().eval()
    net = nd.Network("cell")
    x = net.input("x", ("N", 6))
    hx = (net.input("h", ("N", 5)), net.input("c", ("N", 5))) if with_state else None
    h, c = nn.LSTMCell(6, 5, name="cell")(x, hx)
    net.output(h, "h1")
    net.output(c, "c1")
    net.load_weights({f"cell.{k}": v.numpy().astype(np.float32) for k, v in tm.state_dict().items()})
    rng = np.random.default_rng(4)
    feeds = {k: rng.standard_normal((3, 6 if k == "x" else 5)).astype(np.float32)
             for k in (("x", "h", "c") if with_state else ("x",))}
    with torch.no_grad():
        want = tm(*[torch.from_numpy(feeds["x"].astype(np.float64))] +
                  ([(torch.from_numpy(feeds["h"].astype(np.float64)), torch.from_numpy(feeds["c"].astype(np.float64)))]
                   if with_state else []))
    got = nd.compile(net, backend)(feeds)
    np.testing.assert_allclose(got["h1"], want[0].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["c1"], want[1].numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch_first,bidirectional,with_state", [(True, False, False), (False, True, True),
                                                                   (True, True, False)])
def test_lstm_matches_torch(batch_first, bidirectional, with_state):
    tm = torch.nn.LSTM(4, 3, num_layers=2, batch_first=batch_first, bidirectional=bidirectional).double().eval()
    D, L, N = 2 if bidirectional else 1, 5, 2
    net = nd.Network("lstm")
    x = net.input("x", (N, L, 4) if batch_first else (L, N, 4))
    hx = (net.input("h0", (2 * D, N, 3)), net.input("c0", (2 * D, N, 3))) if with_state else None
    out, (h, c) = nn.LSTM(4, 3, 2, batch_first=batch_first, bidirectional=bidirectional, name="lstm")(x, hx)
    for t, n in ((out, "out"), (h, "h"), (c, "c")):
        net.output(t, n)
    net.load_weights({f"lstm.{k}": v.numpy().astype(np.float32) for k, v in tm.state_dict().items()})
    rng = np.random.default_rng(6)
    feeds = {"x": rng.standard_normal(x.shape).astype(np.float32)}
    if with_state:
        feeds.update(h0=rng.standard_normal((2 * D, N, 3)).astype(np.float32),
                     c0=rng.standard_normal((2 * D, N, 3)).astype(np.float32))
    t = {k: torch.from_numpy(v.astype(np.float64)) for k, v in feeds.items()}
    with torch.no_grad():
        want_out, (want_h, want_c) = tm(t["x"], (t["h0"], t["c0"]) if with_state else None)
    for backend in ("reference", "onnx"):
        got = nd.compile(net, backend)(feeds)
        for k, w in (("out", want_out), ("h", want_h), ("c", want_c)):
            np.testing.assert_allclose(got[k], w.numpy(), rtol=1e-5, atol=1e-5, err_msg=f"{k} on {backend}")


def test_lstm_needs_a_static_length():
    net = nd.Network("lstm")
    x = net.input("x", ("N", "L", 4))
    with pytest.raises(nd.ShapeError, match="must be static"):
        nn.LSTM(4, 3, batch_first=True)(x)


def test_shared_module_reuses_parameters():
    lin = nn.Linear(4, 4, name="shared")
    net = nd.Network("s")
    x = net.input("x", (1, 4))
    net.output(lin(lin(x)), "y")
    assert list(net.graph.params) == ["shared.weight", "shared.bias"]
    assert [n.name for n in net.graph.nodes if n.op == "linear"] == ["shared", "shared_1"]


def test_unnamed_leaf_layers_are_named_like_their_parameters():
    net = nd.Network("two")
    x = net.input("x", ("N", 8))
    net.output(nn.Linear(8, 8)(nn.Linear(8, 8)(x)), "y")
    assert list(net.graph.params) == ["linear.weight", "linear.bias", "linear_1.weight", "linear_1.bias"]
    assert [n.name for n in net.graph.nodes if n.op == "linear"] == ["linear", "linear_1"]


def test_root_container_with_own_parameters_adds_no_prefix():
    class Root(nn.Module):  # e.g. a ViT holding cls_token beside its blocks (timm names)
        def __init__(self):
            super().__init__()
            self.param("cls_token", (1, 1, 4))
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            return self.head(x + self.p(x.net, "cls_token"))

    net = nd.Network("root")
    net.output(Root()(net.input("x", ("N", 3, 4))), "y")
    assert list(net.graph.params) == ["cls_token", "head.weight", "head.bias"]


def test_failed_module_call_leaves_the_network_clean():
    net = nd.Network("clean")
    x = net.input("x", ("N", 8))
    block = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(5, 2))
    with pytest.raises(nd.errors.ShapeError):
        block(x)
    assert net.graph.params == {} and net.graph.nodes == []
    net.output(nn.Linear(8, 3)(x), "y")   # the network is still usable; names were released
    assert list(net.graph.params) == ["linear.weight", "linear.bias"]
    net.init_random(0)
    feeds = {"x": np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)}
    assert reference.run(net.graph, feeds)["y"].shape == (2, 3)


def test_module_parameter_dims_must_be_positive():
    with pytest.raises(nd.errors.ShapeError, match="positive"):
        nn.Conv2d(3, 4, 0)
    with pytest.raises(nd.errors.ShapeError, match="positive"):
        nn.Linear(-1, 4)


def test_module_shared_by_two_inputs_and_networks():
    shared = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
    net = nd.Network("share")
    a, b = net.input("a", ("N", 8)), net.input("b", ("N", 8))
    net.output(shared(a) - shared(b), "d")
    assert list(net.graph.params) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    net.init_random(0)
    x = np.random.default_rng(1).standard_normal((2, 8)).astype(np.float32)
    assert np.abs(reference.run(net.graph, {"a": x, "b": x})["d"]).max() == 0
    other = nd.Network("other")
    other.output(shared(other.input("c", ("N", 8))), "o")
    assert list(other.graph.params) == ["0.weight", "0.bias", "2.weight", "2.bias"]


# ---- containers: accept exactly what PyTorch accepts --------------------------------------------
def _container_cases(lib):
    """(description, constructor) pairs, built the same way from torch.nn or netdsl.nn."""
    from collections import OrderedDict

    def lin():
        return lib.Linear(4, 4)
    return [
        ("Sequential(*mods)", lambda: lib.Sequential(lin(), lib.ReLU(), lin())),
        ("Sequential()", lambda: lib.Sequential()),
        ("Sequential(OrderedDict)", lambda: lib.Sequential(OrderedDict([("a", lin()), ("act", lib.ReLU())]))),
        ("Sequential(list)", lambda: lib.Sequential([lin(), lin()])),
        ("Sequential(tuple)", lambda: lib.Sequential((lin(), lin()))),
        ("Sequential(dict)", lambda: lib.Sequential({"a": lin()})),
        ("Sequential(mod, int)", lambda: lib.Sequential(lin(), 3)),
        ("Sequential(OrderedDict with dotted key)", lambda: lib.Sequential(OrderedDict([("a.b", lin())]))),
        ("ModuleList(list)", lambda: lib.ModuleList([lin(), lin()])),
        ("ModuleList(generator)", lambda: lib.ModuleList(lin() for _ in range(3))),
        ("ModuleList(Sequential)", lambda: lib.ModuleList(lib.Sequential(lin(), lin()))),
        ("ModuleList()", lambda: lib.ModuleList()),
        ("ModuleList(*mods)", lambda: lib.ModuleList(lin(), lin())),
        ("ModuleList(mod)", lambda: lib.ModuleList(lin())),
        ("ModuleList([mod, str])", lambda: lib.ModuleList([lin(), "relu"])),
        ("ModuleDict(dict)", lambda: lib.ModuleDict({"a": lin(), "b": lib.ReLU()})),
        ("ModuleDict(pairs)", lambda: lib.ModuleDict([("a", lin()), ("b", lin())])),
        ("ModuleDict(OrderedDict)", lambda: lib.ModuleDict(OrderedDict([("a", lin())]))),
        ("ModuleDict(list of mods)", lambda: lib.ModuleDict([lin(), lin()])),
        ("ModuleDict({'a': 1})", lambda: lib.ModuleDict({"a": 1})),
        ("ModuleDict({1: mod})", lambda: lib.ModuleDict({1: lin()})),
        ("ModuleDict({'': mod})", lambda: lib.ModuleDict({"": lin()})),
        ("ModuleDict({'keys': mod})", lambda: lib.ModuleDict({"keys": lin()})),
        ("ModuleDict(mod)", lambda: lib.ModuleDict(lin())),
    ]


def test_containers_accept_what_pytorch_accepts():
    for (what, mk_torch), (_, mk_nd) in zip(_container_cases(torch.nn), _container_cases(nn)):
        try:
            t = mk_torch()
        except (TypeError, KeyError, ValueError):
            t = None
        try:
            m = mk_nd()
        except nd.ModuleError as e:
            assert t is None, f"{what}: PyTorch accepts it, netdsl refused: {e}"
            assert "test_layers.py:" in str(e), f"{what}: the error does not point at the user's line: {e}"
            continue
        assert t is not None, f"{what}: PyTorch refuses it, netdsl accepted it"
        assert len(m) == len(t), what
        tn = [n for n, _ in t.named_parameters()]
        assert [n for n, _ in m.named_parameters()] == tn, what


def test_sequential_list_error_says_what_to_do():
    with pytest.raises(nd.ModuleError, match=r"list, not a netdsl Module; pass the modules themselves: "
                                             r"Sequential\(\*modules\).*test_layers.py"):
        nn.Sequential([nn.Linear(4, 4), nn.ReLU()])


def test_container_parameters_bind_like_pytorch():
    from collections import OrderedDict

    class Nd(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(OrderedDict([("fc", nn.Linear(4, 6)), ("act", nn.ReLU())]))
            self.heads = nn.ModuleDict({"cls": nn.Linear(6, 3), "box": nn.Linear(6, 2)})
            self.extra = nn.ModuleList([nn.Linear(6, 6)])
            self.extra.append(nn.Linear(6, 6))

        def forward(self, x):
            h = self.body(x)
            for m in self.extra:
                h = m(h)
            return self.heads["cls"](h) + self.heads["box"](h).sum(axis=1, keepdims=True)

    class T(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(OrderedDict([("fc", torch.nn.Linear(4, 6)), ("act", torch.nn.ReLU())]))
            self.heads = torch.nn.ModuleDict({"cls": torch.nn.Linear(6, 3), "box": torch.nn.Linear(6, 2)})
            self.extra = torch.nn.ModuleList([torch.nn.Linear(6, 6)])
            self.extra.append(torch.nn.Linear(6, 6))

        def forward(self, x):
            h = self.body(x)
            for m in self.extra:
                h = m(h)
            return self.heads["cls"](h) + self.heads["box"](h).sum(1, keepdim=True)

    t = T().double()
    net = Nd().build({"x": ("N", 4)})
    sd = {k: v.detach().numpy() for k, v in t.state_dict().items()}
    assert set(net.graph.params) == set(sd)
    assert net.load_weights(sd).ok
    x = np.random.default_rng(3).standard_normal((2, 4))
    got = reference.run(net.graph, {"x": x.astype(np.float32)}, dtype="float64")["output"]
    np.testing.assert_allclose(got, t(torch.from_numpy(x.astype(np.float32).astype(np.float64))).detach().numpy(),
                               rtol=1e-6)


def test_indexing_slicing_and_insert():
    seq = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    assert isinstance(seq[1], nn.ReLU) and isinstance(seq[-1], nn.Linear) and len(seq[:2]) == 2
    assert isinstance(seq[:2], nn.Sequential)
    ml = nn.ModuleList([nn.ReLU(), nn.ReLU()])
    ml.insert(1, nn.Linear(4, 4))
    assert isinstance(ml[1], nn.Linear) and list(ml._modules) == ["0", "1", "2"]
    with pytest.raises(IndexError):
        ml[3]
    with pytest.raises(nd.ModuleError, match="container"):
        ml(nd.Network("n").input("x", (1, 4)))


# ---- depthwise and separable convolutions against PyTorch's grouped-conv pairs ----------------------
class _TorchSep(torch.nn.Module):
    """The usual PyTorch separable convolution: a grouped conv then a 1x1 conv."""

    def __init__(self, cin, cout, k, stride=1, padding=0, mult=1, dw="depthwise", pw="pointwise"):
        super().__init__()
        self.dw_name, self.pw_name = dw, pw
        setattr(self, dw, torch.nn.Conv2d(cin, cin * mult, k, stride, padding, groups=cin, bias=False))
        setattr(self, pw, torch.nn.Conv2d(cin * mult, cout, 1))

    def forward(self, x):
        return getattr(self, self.pw_name)(getattr(self, self.dw_name)(x))


@pytest.mark.parametrize("names,rename", [(("depthwise", "pointwise"), None),
                                          (("conv_dw", "conv_pw"), [(r"\.conv_dw\.", ".depthwise."),
                                                                    (r"\.conv_pw\.", ".pointwise.")])])
def test_separable_and_depthwise_bind_pytorch_pairs(tmp_path, names, rename):
    torch.manual_seed(0)
    t = torch.nn.Module()
    t.sep = _TorchSep(3, 8, 3, stride=2, padding=1, mult=2, dw=names[0], pw=names[1])
    t.dw = torch.nn.Conv2d(8, 16, 3, padding=1, groups=8)
    p = tmp_path / "sep.pt"
    torch.save(t.state_dict(), p)

    class Nd(nn.Module):
        def __init__(self):
            super().__init__()
            self.sep = nn.SeparableConv2d(3, 8, 3, stride=2, padding=1, depth_multiplier=2)
            self.dw = nn.DepthwiseConv2d(8, 3, padding=1, depth_multiplier=2)

        def forward(self, x):
            return self.dw(self.sep(x))
    net = Nd().build({"x": ("N", 3, 9, 9)})
    assert net.graph.params["sep.depthwise.weight"].shape == (6, 1, 3, 3)
    assert "sep.depthwise.bias" not in net.graph.params and net.graph.params["dw.weight"].shape == (16, 1, 3, 3)
    rep = net.load_weights(p, rename=rename)
    assert rep.ok, str(rep)
    x = np.random.default_rng(4).standard_normal((2, 3, 9, 9)).astype(np.float32)
    with torch.no_grad():
        want = t.dw(t.sep(torch.from_numpy(x))).numpy()
    np.testing.assert_allclose(reference.run(net.graph, {"x": x})["output"], want, rtol=1e-4, atol=1e-5)


# ---- layers named like torch.nn's take torch.nn's constructor arguments ---------------------------------
def _shared_layer_names():
    out = []
    for n in dir(nn):
        c = getattr(nn, n)
        if isinstance(c, type) and issubclass(c, nn.Module) and not n.startswith("_") and hasattr(torch.nn, n) \
                and n not in ("Module", "Sequential", "ModuleList", "ModuleDict"):
            out.append(n)
    return out


def test_layer_audit_covers_the_pytorch_names():
    names = _shared_layer_names()
    for n in ("Conv2d", "BatchNorm2d", "Softmax", "Hardsigmoid", "LeakyReLU", "MaxPool2d", "InstanceNorm2d",
              "Upsample", "Embedding", "LayerNorm"):
        assert n in names


# documented departures: (layer, parameter) -> why (the class docstring says it too)
KNOWN = {
    **{(f"BatchNorm{d}d", "eps_mode"): "keyword-only addition: Darknet's (x - mean) / (sqrt(var) + eps)"
       for d in (1, 2, 3)},
    **{(f"AvgPool{d}d", "count_include_pad"): "None: True (PyTorch's) with numeric padding, False with "
       "padding='same' (TensorFlow's; PyTorch pools have no 'same')" for d in (1, 2, 3)},
}


@pytest.mark.parametrize("name", _shared_layer_names())
def test_layer_signature_is_pytorchs(name):
    """Same parameters, order and defaults as torch.nn's constructor; netdsl adds only keyword ``name``
    (and the documented departures in KNOWN)."""
    t = getattr(torch.nn, name)
    theirs = [] if t.__init__ is torch.nn.Module.__init__ else \
        [(p.name, p.kind, p.default) for p in inspect.signature(t).parameters.values()]  # no arguments of its own
    if issubclass(t, torch.nn.RNNBase):  # nn.LSTM(*args, **kwargs) forwards them to RNNBase(mode, ...)
        theirs = [(p.name, p.kind, p.default) for p in inspect.signature(torch.nn.RNNBase).parameters.values()
                  if p.name != "mode"]
    ours = [(p.name, p.kind, p.default) for p in inspect.signature(getattr(nn, name)).parameters.values()
            if p.name != "name" and (name, p.name) not in KNOWN]
    theirs = [p for p in theirs if (name, p[0]) not in KNOWN]
    for (layer, arg), _why in KNOWN.items():
        if layer == name:
            assert arg in (inspect.getdoc(getattr(nn, name)) or ""), f"{name}'s docstring must explain {arg}"
    if name != "Identity":
        assert inspect.signature(getattr(nn, name)).parameters["name"].kind == inspect.Parameter.KEYWORD_ONLY
    assert ours == theirs


LAYERS = [  # (class, constructor args, kwargs, input shape)
    ("Softmax", (), {"dim": 1}, (2, 4, 3)),
    ("LogSoftmax", (2,), {}, (2, 4, 3)),
    ("Hardsigmoid", (), {}, (2, 9)),
    ("Hardswish", (True,), {}, (2, 9)),
    ("LeakyReLU", (0.2, True), {}, (2, 9)),
    ("ELU", (0.5,), {}, (2, 9)),
    ("Softplus", (2.0, 10.0), {}, (2, 9)),
    ("GELU", ("tanh",), {}, (2, 9)),
    ("ReLU", (), {"inplace": True}, (2, 9)),
    ("Dropout", (0.3,), {}, (2, 9)),
    ("MaxPool2d", (3, 2, 1, 1, False, True), {}, (2, 3, 7, 7)),
    ("AvgPool2d", (3, 2, 1, True, False), {}, (2, 3, 7, 7)),
    ("AvgPool1d", (2,), {}, (2, 3, 8)),
    ("LocalResponseNorm", (3, 1e-3, 0.7, 2.0), {}, (2, 5, 4, 4)),
    ("Upsample", (None, 2, "bilinear"), {}, (1, 2, 3, 4)),
    ("Flatten", (2,), {}, (2, 3, 4, 5)),
    ("Conv2d", (3, 4, 3, 1, 1), {"padding_mode": "reflect"}, (2, 3, 6, 6)),
    ("Conv2d", (3, 6, 3, 2, 2, 2, 3, False, "replicate"), {}, (2, 3, 9, 9)),
    ("ConvTranspose2d", (4, 2, 3, 2, 1, 1, 2, True, 1), {}, (2, 4, 5, 5)),
    ("BatchNorm2d", (3,), {"affine": False}, (2, 3, 4, 4)),
    ("BatchNorm1d", (3, 1e-3), {"bias": False}, (2, 3)),
    ("InstanceNorm2d", (3,), {}, (2, 3, 4, 4)),
    ("InstanceNorm2d", (3,), {"affine": True, "track_running_stats": True}, (2, 3, 4, 4)),
    ("GroupNorm", (2, 4), {"affine": False}, (2, 4, 3, 3)),
    ("LayerNorm", ((4, 5),), {"bias": False}, (2, 3, 4, 5)),
    ("PReLU", (3, 0.1), {}, (2, 3, 4)),
]


@pytest.mark.parametrize("cls,args,kwargs,shape", LAYERS, ids=[f"{c}{a}{k}" for c, a, k, _ in LAYERS])
def test_layer_with_pytorch_arguments_matches_pytorch(cls, args, kwargs, shape):
    torch.manual_seed(0)
    t = getattr(torch.nn, cls)(*args, **kwargs).double().eval()
    with torch.no_grad():  # non-trivial statistics and affine parameters
        for k, v in t.named_buffers():
            if k.endswith("running_var"):
                v.uniform_(0.5, 2.0)
            elif k.endswith("running_mean"):
                v.uniform_(-1, 1)
        for v in t.parameters():
            v.uniform_(-1, 1)
    net = getattr(nn, cls)(*args, **kwargs, name="m").build({"x": shape})
    sd = {f"m.{k}": v.numpy() for k, v in t.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert list(sd) == list(net.graph.params), cls  # PyTorch's state_dict: same names, same order
    if sd:
        assert net.load_weights(sd).ok
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    got = reference.run(net.graph, {"x": x}, dtype="float64")["output"]
    with torch.no_grad():
        want = t(torch.from_numpy(x.astype(np.float64))).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_layers_refuse_what_they_cannot_do():
    with pytest.raises(nd.ShapeError, match="padding_mode"):
        nn.Conv2d(3, 4, 3, padding_mode="circular")
    with pytest.raises(nd.ShapeError, match="track_running_stats=False"):
        nn.BatchNorm2d(3, track_running_stats=False)
    with pytest.raises(nd.ShapeError, match="max_norm"):
        nn.Embedding(5, 3, max_norm=1.0)


def test_ops_made_in_forward_are_named_inside_the_module():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.act = nn.Linear(4, 4), nn.ReLU()

        def forward(self, x):
            y = self.act(self.fc(x)) + x              # the add belongs to the block
            y = nn.Sigmoid()(y)                       # a layer made on the fly: its op's name, in the block
            return self.act(nd.tanh(y, name="squash"))  # a named op: named inside the block too

    class Top(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.Sequential(Block(), Block())

        def forward(self, x):
            return self.blocks(x) * 2.0

    net = nd.Network("names")
    x = net.input("x", ("N", 4))
    with net.scope("enc"):
        y = Top()(x)
    net.output(y, "y")
    names = [n.name for n in net.graph.nodes if n.op not in ("parameter", "constant")]
    assert names == ["enc.blocks.0.fc", "enc.blocks.0.act", "enc.blocks.0.add", "enc.blocks.0.sigmoid",
                     "enc.blocks.0.squash", "enc.blocks.0.act_1",
                     "enc.blocks.1.fc", "enc.blocks.1.act", "enc.blocks.1.add", "enc.blocks.1.sigmoid",
                     "enc.blocks.1.squash", "enc.blocks.1.act_1", "enc.mul"]
    assert sorted(net.graph.params) == [f"enc.blocks.{i}.fc.{w}" for i in (0, 1) for w in ("bias", "weight")]
