"""Acceptance tests of every example model through the command line, as a user runs them.

For each example: ``netdsl summary`` (the full-size model: parameter totals of the originals),
``netdsl run --random-weights`` on the reference backend, ``netdsl check --random-weights`` against
each backend (a backend is skipped only when its engine is not installed), and ``netdsl build -o``
for onnx / openvino / tensorrt with the artifact loaded back and checked where it can run here.
Small variants (``MODEL.py:small``, BERT with 2 layers) keep the runtime modest.
"""
from __future__ import annotations

import importlib.util
import os
import re

import numpy as np
import pytest

from netdsl.backends import reference
from netdsl.cli import load_model, main, random_inputs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EX = os.path.join(ROOT, "examples")

# full-size models: (model spec, total parameters of the original network, output names)
FULL = {
    "lenet": ("lenet.py", 431_080, ["prob"]),
    "alexnet": ("alexnet.py", 60_965_224, ["prob"]),                      # Caffe bvlc_alexnet
    "unet": ("unet.py", None, ["logits"]),
    "yolov3_tiny": ("yolov3_tiny.py", 8_858_734, ["boxes", "scores"]),    # darknet yolov3-tiny
    "vit_tiny": ("vit_tiny.py", 5_717_416, ["logits"]),                   # timm vit_tiny_patch16_224
    # torchvision's counts plus the batch-norm running statistics (buffers in PyTorch, parameters here)
    "resnet50": ("resnet50.py", 25_557_032 + 2 * 26_560, ["logits"]),
    "mobilenet_v2": ("mobilenet_v2.py", 3_504_872 + 2 * 17_056, ["logits"]),
    "bert": ("bert.py", 109_482_240, ["last_hidden_state", "pooler_output"]),  # HF bert-base-uncased
}

WRAPPER = '''
import importlib.util
import netdsl as nd
_s = importlib.util.spec_from_file_location("_example_{name}", {path!r})
_m = importlib.util.module_from_spec(_s)
_s.loader.exec_module(_m)

def network():
    net = nd.Network("{name}")
{body}
    return net
'''

# smaller inputs / configurations of the original examples' own modules (keeps the suite fast)
WRAPPED = {
    "resnet50": """    net.output(_m.ResNet()(net.input("data", ("N", 3, 64, 64))), "logits")""",
    "mobilenet_v2": """    net.output(_m.MobileNetV2()(net.input("data", ("N", 3, 96, 96))), "logits")""",
    "bert": """    ids = net.input("input_ids", ("N", "S"), "int32")
    mask = net.input("attention_mask", ("N", "S"), "int32")
    h, p = _m.Bert(vocab=1000, hidden=64, layers=2, heads=2, inner=128, max_pos=64)(ids, mask)
    net.output(h, "last_hidden_state")
    net.output(p, "pooler_output")""",
}

# what the run/check/build tests use (None: a wrapper above)
SMALL = {
    "lenet": "lenet.py",
    "alexnet": "alexnet.py:small",
    "unet": "unet.py:small",
    "yolov3_tiny": "yolov3_tiny.py:small",
    "vit_tiny": "vit_tiny.py:small",
    "resnet50": None,
    "mobilenet_v2": None,
    "bert": None,
}


def _plugin_ops() -> set:
    from netdsl.ops import all_ops
    return {k for k, d in all_ops().items() if d.plugin is not None}


def _engine(backend: str) -> str | None:
    """Why ``backend``'s engine is missing, or None when it is installed."""
    need = {"onnx": [("onnx",), ("onnxruntime",)], "openvino": [("openvino",)],
            "tensorrt": [("tensorrt", "tensorrt_rtx")]}.get(backend, [])
    for alternatives in need:
        if not any(importlib.util.find_spec(m) for m in alternatives):
            return f"{' or '.join(alternatives)} is not installed"
    return None


@pytest.fixture(scope="module")
def model_specs(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("models")
    specs = {}
    for k, v in SMALL.items():
        if v is None:
            f = d / f"{k}_small.py"
            f.write_text(WRAPPER.format(name=k, path=os.path.join(EX, FULL[k][0]), body=WRAPPED[k]))
            v = str(f)
        specs[k] = os.path.join(EX, v)
    return specs


def _batch2(spec: str) -> list[str]:
    """``--dim N=2`` (batch) and ``--dim S=5`` (sequence) for the symbols the model has (naming a symbol
    the model lacks is a usage error)."""
    syms = load_model(spec).graph.symbols
    return [x for s, v in (("N", 2), ("S", 5)) if s in syms for x in ("--dim", f"{s}={v}")]


def _cli(capsys, *argv: str) -> tuple[int, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out + out.err


@pytest.mark.parametrize("name", list(FULL))
def test_summary_full_model(name, capsys):
    spec, total, outputs = FULL[name]
    rc, out = _cli(capsys, "summary", os.path.join(EX, spec))
    assert rc == 0, out
    m = re.search(r"total: (\d+) layers, ([\d,]+) parameters", out)
    assert m, out
    if total is not None:
        assert int(m.group(2).replace(",", "")) == total, out
    for o in outputs:
        assert re.search(rf"outputs:.*\b{o} float32", out), out


@pytest.mark.parametrize("name", list(SMALL))
def test_run_reference_random_weights(name, model_specs, capsys):
    rc, out = _cli(capsys, "run", model_specs[name], "--random-weights", "--backend", "reference",
                   *_batch2(model_specs[name]))
    assert rc == 0, out
    for o in FULL[name][2]:
        assert re.search(rf"^{o}: float32 \({2 if name != 'lenet' else 1},", out, re.M), out  # lenet: batch 1
    assert "nan" not in out.lower(), out


@pytest.mark.parametrize("backend", ["reference", "onnx", "openvino", "tensorrt"])
@pytest.mark.parametrize("name", list(SMALL))
def test_check_backend(name, backend, model_specs, capsys):
    why = _engine(backend)
    if why:
        pytest.skip(f"{backend}: {why}")
    rc, out = _cli(capsys, "check", model_specs[name], "--random-weights", *_batch2(model_specs[name]),
                   "--backends", f"reference,{backend}")
    assert rc == 0, out
    assert "all backends agree with the reference" in out, out
    if backend == "tensorrt" and "CPU proof" in out:   # no GPU here: 4a-4c must all have passed
        assert all(f"[ok] {s}" in out for s in ("4a build", "4b shapes", "4c evaluate")), out


def _reference_outputs(spec: str, feeds: dict) -> dict:
    net = load_model(spec)
    net.init_random(0)  # the CLI's --random-weights with its default --seed 0
    return reference.run(net.graph, feeds, dtype="float64")


def _assert_matches(got: dict, ref: dict) -> None:
    for k, r in ref.items():
        g = np.asarray(got[k], dtype=np.float64)
        assert g.shape == r.shape, (k, g.shape, r.shape)
        scale = max(float(np.abs(r).max()), 1.0)
        np.testing.assert_allclose(g, r, rtol=1e-3, atol=1e-4 * scale, err_msg=k)


@pytest.mark.parametrize("backend", ["onnx", "openvino", "tensorrt"])
@pytest.mark.parametrize("name", list(SMALL))
def test_build_artifact(name, backend, model_specs, tmp_path, capsys):
    why = _engine(backend)
    if why:
        pytest.skip(f"{backend}: {why}")
    spec = model_specs[name]
    path = tmp_path / {"onnx": "m.onnx", "openvino": "m.xml", "tensorrt": "m.plan"}[backend]
    rc, out = _cli(capsys, "build", spec, "--random-weights", "--backend", backend, "-o", str(path))
    assert rc == 0, out
    assert path.is_file() and path.stat().st_size > 0, out
    net = load_model(spec)
    feeds = random_inputs(net.graph, seed=1, dims={"N": 2})
    if backend == "onnx":
        import onnx
        import onnxruntime as ort
        onnx.checker.check_model(str(path), full_check=True)
        plugins = {n.op for n in net.graph.nodes if n.op in _plugin_ops()}
        if plugins:  # custom-domain nodes (what TensorRT's ONNX parser imports as plugins): ONNX Runtime
            custom = {n.op_type for n in onnx.load(str(path)).graph.node if n.domain == "netdsl.plugins"}
            assert custom == plugins, (custom, plugins)
            return   # cannot run them; `check` runs their standard-ONNX decompositions instead
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
        _assert_matches(got, _reference_outputs(spec, feeds))
    elif backend == "openvino":
        from netdsl.backends.openvino import load_ir
        assert path.with_suffix(".bin").is_file()
        _assert_matches(load_ir(str(path))(feeds), _reference_outputs(spec, feeds))
