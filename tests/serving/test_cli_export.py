"""``netdsl export``: repositories written from the command line, parsed by the servers' own schemas."""
from __future__ import annotations

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
