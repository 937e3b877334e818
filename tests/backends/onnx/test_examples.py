"""The example models exported to ONNX: checker, ONNX Runtime equal to the float64 reference; the CLI."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from netdsl.backends import reference
from netdsl.compare import WHOLE_MODEL_FLOAT32, assert_close

from ._util import EXAMPLES, check_model, onnx, ort, random_feeds

from netdsl.backends import onnx as onnxb  # noqa: E402

# (example, network() keyword arguments, batch sizes to run): BERT runs with 2 layers to stay quick;
# its full 12-layer export is checked by test_bert_base_exports.
MODELS = [
    ("lenet", {}, (1,)),
    ("mobilenet_v2", {}, (1, 2)),
    ("resnet50", {}, (1, 2)),
    ("bert", {"layers": 2, "seq": 32}, (1, 3)),
]


def load_example(name: str):
    path = os.path.join(EXAMPLES, f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_netdsl_example_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def build_example(name: str, **kw):
    net = load_example(name).network(**kw)
    if any(not p.bound for p in net.graph.params.values()):
        net.init_random(0)
    return net


@pytest.mark.parametrize("name,kw,batches", MODELS, ids=[m[0] for m in MODELS])
def test_example_matches_reference(name, kw, batches, tmp_path):
    net = build_example(name, **kw)
    path = onnxb.export_onnx(net.graph, tmp_path / f"{name}.onnx")
    check_model(path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    outs = [v.name for v in net.graph.outputs]
    assert [o.name for o in sess.get_outputs()] == outs
    symbolic = any(not isinstance(d, int) for v in net.graph.inputs for d in v.shape)
    for batch in batches if symbolic else batches[:1]:
        feeds = random_feeds(net.graph, batch, seed=batch)
        got = dict(zip(outs, sess.run(outs, feeds)))
        ref = reference.run(net.graph, feeds)
        for k in outs:  # whole models: float32 rounding accumulates over 20-50 layers
            assert_close(got[k], ref[k], tol=WHOLE_MODEL_FLOAT32, what=f"{name}:{k} batch {batch}")


def test_bert_base_exports(tmp_path):
    net = build_example("bert")  # 12 layers, ~110 M parameters
    path = onnxb.export_onnx(net.graph, tmp_path / "bert.onnx")
    m = onnx.load(path)
    assert sum(1 for n in m.graph.node if n.op_type == "LayerNormalization") == 25
    assert {i.name for i in m.graph.input} == {v.name for v in net.graph.inputs}


def test_cli_build_lenet(tmp_path):
    """The acceptance command: ``netdsl build examples/lenet.py --backend onnx -o x.onnx``."""
    out = tmp_path / "x.onnx"
    cmd = [sys.executable, "-m", "netdsl.cli", "build", os.path.join(EXAMPLES, "lenet.py"), "--backend", "onnx",
           "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=os.path.join(EXAMPLES, ".."))
    assert r.returncode == 0, r.stdout + r.stderr
    check_model(str(out))
    net = build_example("lenet")
    feeds = random_feeds(net.graph, 1)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(["prob"], feeds)[0]
    assert_close(got, reference.run(net.graph, feeds)["prob"], "float32")
