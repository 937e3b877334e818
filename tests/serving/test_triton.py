"""Triton repositories: every config.pbtxt parsed by Triton's own model-config protobuf and checked
against the network; the artifacts run in their engines against the float64 reference."""
from __future__ import annotations

import os

import numpy as np
import pytest

from netdsl.compare import assert_close
from netdsl.errors import NetdslError
from netdsl.serving import export_triton

from .nets import lenet, lenet_feeds, model_config, multi, multi_feeds, parse_config, ref

TYPES = {"float32": "TYPE_FP32", "uint8": "TYPE_UINT8", "int32": "TYPE_INT32"}


def _check_against_network(cfg, net, mbs_expected):
    """Names, dtypes and dims of the parsed config match the network's inputs and outputs."""
    mc = model_config()
    assert cfg.max_batch_size == mbs_expected
    for entries, values in ((cfg.input, net.graph.inputs), (cfg.output, net.graph.outputs)):
        assert [e.name for e in entries] == [v.name for v in values]
        for e, v in zip(entries, values):
            assert mc.DataType.Name(e.data_type) == TYPES[str(v.dtype)], v.name
            shape = [d if isinstance(d, int) else -1 for d in v.shape]
            want = shape[1:] if mbs_expected else shape
            if want:
                assert list(e.dims) == want, v.name
            else:  # a scalar per batch item: dims [1] reshaped to []
                assert list(e.dims) == [1] and e.HasField("reshape") and list(e.reshape.shape) == []


def test_openvino_repository(tmp_path):
    net = lenet()
    m = export_triton(net, tmp_path, backend="openvino", dynamic_batching=True, instances=2,
                      parameters={"NUM_STREAMS": "1", "PERFORMANCE_HINT": "LATENCY"})
    cfg = parse_config(tmp_path / "lenet" / "config.pbtxt")
    assert cfg.name == "lenet" and cfg.backend == "openvino" and not cfg.platform
    _check_against_network(cfg, net, 8)
    assert cfg.HasField("dynamic_batching")
    mc = model_config()
    assert [(g.count, mc.ModelInstanceGroup.Kind.Name(g.kind)) for g in cfg.instance_group] == [(2, "KIND_CPU")]
    assert {k: v.string_value for k, v in cfg.parameters.items()} == {"NUM_STREAMS": "1", "PERFORMANCE_HINT": "LATENCY"}
    assert sorted(os.listdir(tmp_path / "lenet" / "1")) == ["model.bin", "model.xml"]
    assert m.version == 1 and m.command.startswith("tritonserver --model-repository=")
    # the IR Triton's OpenVINO backend would read, read here by a fresh OpenVINO Core and run
    import openvino as ov
    compiled = ov.Core().compile_model(str(tmp_path / "lenet" / "1" / "model.xml"), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    feeds = lenet_feeds(np.random.default_rng(0), 3)
    got = compiled(feeds)[compiled.output("prob")]
    assert_close(got, ref(net, feeds)["prob"], "float32")


def test_onnx_repository_runs_in_onnxruntime(tmp_path):
    net = multi()
    export_triton(net, tmp_path, backend="onnx", name="multi_onnx", version=3, max_batch_size=4)
    cfg = parse_config(tmp_path / "multi_onnx" / "config.pbtxt")
    assert cfg.name == "multi_onnx" and cfg.platform == "onnxruntime_onnx"
    _check_against_network(cfg, net, 4)
    import onnxruntime as ort
    sess = ort.InferenceSession(str(tmp_path / "multi_onnx" / "3" / "model.onnx"), providers=["CPUExecutionProvider"])
    feeds = multi_feeds(np.random.default_rng(1))
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    want = ref(net, feeds)
    assert_close(got["pooled"], want["pooled"], "float32")
    assert_close(got["best"], want["best"])


def test_multi_dtype_openvino_config(tmp_path):
    net = multi()
    export_triton(net, tmp_path, backend="openvino", dynamic={"N": (1, 16)})
    _check_against_network(parse_config(tmp_path / "multi" / "config.pbtxt"), net, 16)  # the IR's range


def test_static_batch_has_no_max_batch_size(tmp_path):
    net = lenet(batch=1)
    export_triton(net, tmp_path, backend="onnx")
    cfg = parse_config(tmp_path / "lenet" / "config.pbtxt")
    _check_against_network(cfg, net, 0)
    assert list(cfg.input[0].dims) == [1, 1, 28, 28]
    with pytest.raises(NetdslError, match="dynamic batching needs a batch dimension"):
        export_triton(net, tmp_path / "b", backend="onnx", dynamic_batching=True)
    with pytest.raises(NetdslError, match="no batch dimension"):
        export_triton(net, tmp_path / "c", backend="onnx", max_batch_size=4)


def test_max_batch_size_zero_keeps_the_batch_dim(tmp_path):
    net = lenet()
    export_triton(net, tmp_path, backend="onnx", max_batch_size=0)
    cfg = parse_config(tmp_path / "lenet" / "config.pbtxt")
    _check_against_network(cfg, net, 0)
    assert list(cfg.input[0].dims) == [-1, 1, 28, 28]


def test_bad_names_versions_and_options(tmp_path):
    net = lenet()
    for kw, msg in (({"name": "a/b"}, "cannot name a repository folder"), ({"version": 0}, "positive integer"),
                    ({"version": "x"}, "positive integer"), ({"backend": "reference"}, "not one of"),
                    ({"kind": "tpu"}, "instance kind"), ({"dynamic": {"N": (1, 4)}, "max_batch_size": 8},
                                                         "up to 4")):
        with pytest.raises(NetdslError, match=msg):
            export_triton(net, tmp_path, **{"backend": "onnx", **kw})




def _need_tensorrt():
    from netdsl.backends.tensorrt import _trt
    from netdsl.errors import BackendUnavailable
    try:
        _trt.load()
    except BackendUnavailable as e:
        pytest.skip(f"TensorRT (tensorrt or tensorrt_rtx) is not installed: {e}")


def test_tensorrt_repository_profiles(tmp_path):
    _need_tensorrt()
    net = lenet()
    profiles = [{"data": ((1, 1, 28, 28), (2, 1, 28, 28), (4, 1, 28, 28))},
                {"data": ((1, 1, 28, 28), (8, 1, 28, 28), (16, 1, 28, 28))}]
    m = export_triton(net, tmp_path, backend="tensorrt", profiles=profiles, dynamic_batching=True)
    cfg = parse_config(tmp_path / "lenet" / "config.pbtxt")
    mc = model_config()
    assert cfg.platform == "tensorrt_plan"
    _check_against_network(cfg, net, 16)  # the largest batch a profile covers
    [group] = cfg.instance_group
    assert mc.ModelInstanceGroup.Kind.Name(group.kind) == "KIND_GPU" and list(group.profile) == ["0", "1"]
    plan = tmp_path / "lenet" / "1" / "model.plan"
    from netdsl.backends.tensorrt.plan_file import read_plan
    data, meta = read_plan(str(plan))  # exactly the serialized engine, verified against its sidecar
    assert data == plan.read_bytes() and meta["network"] == "lenet" and len(meta["profiles"]) == 2
    assert str(plan) in m.files


def test_tensorrt_profile_must_start_at_one(tmp_path):
    _need_tensorrt()
    with pytest.raises(NetdslError, match="give N a range from 1"):
        export_triton(lenet(), tmp_path, backend="tensorrt", dynamic={"N": (2, 4, 8)})


def test_tensorrt_multi_dtype(tmp_path):
    _need_tensorrt()
    net = multi()
    export_triton(net, tmp_path, backend="tensorrt", dynamic={"N": (1, 2, 4), "S": (1, 5, 9)})
    _check_against_network(parse_config(tmp_path / "multi" / "config.pbtxt"), net, 4)


def _mish_net():
    import shutil
    if not (shutil.which("cmake") and (shutil.which("g++") or shutil.which("c++"))):
        pytest.skip("cmake and a C++ compiler are needed to build the plugin's OpenVINO extension")
    import netdsl as nd
    from netdsl.plugins import load
    from .nets import ROOT
    mish = load(os.path.join(ROOT, "plugins", "mish"))
    net = nd.Network("mishnet")
    x = net.input("x", ("N", 6))
    net.output(mish(x * 2.0, name="act"), "y")
    return net


def test_openvino_plugin_library_goes_with_the_repository(tmp_path):
    net = _mish_net()
    m = export_triton(net, tmp_path / "repo", backend="openvino")
    cfg = parse_config(tmp_path / "repo" / "mishnet" / "config.pbtxt")
    lib = cfg.parameters["CPU_EXTENSION_PATH"].string_value
    assert os.path.isabs(lib) and os.path.dirname(lib) == str(tmp_path / "repo" / "mishnet" / "plugins")
    assert lib in m.files
    # a fresh Core with only the copied library reads the IR and computes the reference's mish
    import openvino as ov
    core = ov.Core()
    core.add_extension(lib)
    compiled = core.compile_model(str(tmp_path / "repo" / "mishnet" / "1" / "model.xml"), "CPU",
                                  {"INFERENCE_PRECISION_HINT": "f32"})
    x = np.random.default_rng(4).standard_normal((3, 6)).astype(np.float32)
    assert_close(compiled({"x": x})[compiled.output("y")], ref(net, {"x": x})["y"], "float32")


def test_tensorrt_plugin_without_a_library_is_refused(tmp_path):
    _need_tensorrt()
    with pytest.raises(NetdslError, match="plugin 'fused_mish'.*layer 'act'.*bind a compiled plugin library"):
        export_triton(_mish_net(), tmp_path, backend="tensorrt")
