"""``netdsl export``: repositories written from the command line, parsed by the servers' own schemas."""
from __future__ import annotations

import importlib.util
import json
import os

import pytest

from netdsl.cli import main

from .nets import EXAMPLES, lenet, model_config, parse_config

LENET = os.path.join(EXAMPLES, "lenet.py")


def test_export_triton_onnx(tmp_path, capsys):
    assert main(["export", LENET, "--triton", str(tmp_path), "--backend", "onnx", "--name", "digits",
                 "--version", "2", "--instances", "3", "--param", "intra_op_thread_count=1"]) == 0
    out = capsys.readouterr().out
    assert "start the server: tritonserver --model-repository=" in out
    cfg = parse_config(tmp_path / "digits" / "config.pbtxt")
    mc = model_config()
    assert cfg.name == "digits" and cfg.platform == "onnxruntime_onnx" and cfg.max_batch_size == 0
    assert [g.count for g in cfg.instance_group] == [3]
    assert cfg.parameters["intra_op_thread_count"].string_value == "1"
    net = lenet(batch=1)  # examples/lenet.py's network() has batch 1
    assert [(i.name, mc.DataType.Name(i.data_type), list(i.dims)) for i in cfg.input] == \
        [(v.name, "TYPE_FP32", list(v.shape)) for v in net.graph.inputs]
    assert os.path.isfile(tmp_path / "digits" / "2" / "model.onnx")


def test_export_ovms(tmp_path):
    assert main(["export", LENET, "--ovms", str(tmp_path), "--plugin-config", "PERFORMANCE_HINT=THROUGHPUT"]) == 0
    doc = json.loads((tmp_path / "config.json").read_text())
    assert doc["model_config_list"][0]["config"]["plugin_config"] == {"PERFORMANCE_HINT": "THROUGHPUT"}
    assert sorted(os.listdir(tmp_path / "lenet" / "1")) == ["model.bin", "model.xml"]


@pytest.mark.parametrize("argv,message", [
    (["--ovms", "R", "--instances", "2"], "--instances is a Triton option"),
    (["--ovms", "R", "--backend", "onnx"], "--ovms writes OpenVINO IR"),
    ([], "give one of --triton REPO or --ovms REPO"),
    (["--triton", "R", "--param", "novalue"], "--param expects KEY=VALUE"),
    (["--triton", "R", "--backend", "onnx", "--precision", "f16"], "keeps the network's own types"),
])
def test_export_usage_errors(tmp_path, capsys, argv, message):
    argv = [a.replace("R", str(tmp_path)) if a == "R" else a for a in argv]
    assert main(["export", LENET, *argv]) == 2
    assert message in capsys.readouterr().err


def test_export_layer_precision_keeps_the_island(tmp_path, capsys):
    """--layer-precision as for build: the IR in the repository keeps the island in f32 when OpenVINO runs
    it at bf16; the Triton TensorRT plan is built with it; ONNX refuses it."""
    pytest.importorskip("openvino", reason="openvino is not installed")
    from tests.cli.test_build import ISLAND_MODEL, _ov_runtime_precisions
    model = tmp_path / "island.py"
    model.write_text(ISLAND_MODEL)
    for repo, pats in (("kept", ["--layer-precision", "fc1=float32"]), ("plain", [])):
        assert main(["export", str(model), "--random-weights", "--ovms", str(tmp_path / repo), *pats]) == 0
    plain = _ov_runtime_precisions(tmp_path / "plain" / "island" / "1" / "model.xml")
    kept = _ov_runtime_precisions(tmp_path / "kept" / "island" / "1" / "model.xml")
    if plain["fc1"] == "bf16":
        assert kept["fc1"] == "f32" and kept["fc2"] == "bf16", kept
    assert main(["export", str(model), "--random-weights", "--triton", str(tmp_path / "r"), "--backend", "onnx",
                 "--layer-precision", "fc1=float32"]) == 2
    assert "--layer-precision: the ONNX model keeps the network's own types" in capsys.readouterr().err
    if importlib.util.find_spec("tensorrt_rtx") is not None:
        assert main(["export", str(model), "--random-weights", "--triton", str(tmp_path / "t"), "--backend",
                     "tensorrt", "--precision", "f16", "--layer-precision", "nothing*=float32"]) == 2
        assert "'nothing*' matches no layer" in capsys.readouterr().err
        assert main(["export", str(model), "--random-weights", "--triton", str(tmp_path / "t"), "--backend",
                     "tensorrt", "--precision", "f16", "--layer-precision", "*layer_norm*=float32"]) == 0
