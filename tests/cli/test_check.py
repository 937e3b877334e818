"""netdsl check: verdicts, exit codes, --json, the TensorRT CPU proof."""
from __future__ import annotations

import json

import pytest

from .conftest import LENET


def test_check_reference_only(cli):
    rc, out, _ = cli("check", LENET, "--backends", "reference")
    assert rc == 0 and "prob: max abs err" in out and "all backends agree" in out


def test_check_json(cli):
    rc, out, _ = cli("check", LENET, "--backends", "reference", "--json")
    assert rc == 0
    doc = json.loads(out)
    assert doc["ok"] is True and doc["exit_code"] == 0
    o = doc["backends"]["reference"]["outputs"]["prob"]
    assert o["ok"] is True and 0 <= o["max_rel"] < doc["limit"]


def test_check_mismatch_exits_1(cli, broken_model):
    pytest.importorskip("openvino", reason="openvino is not installed")
    rc, out, _ = cli("check", broken_model, "--random-weights", "--backends", "reference,openvino")
    assert rc == 1 and "MISMATCH" in out


def test_check_tensorrt_without_gpu_runs_the_cpu_proof(cli):
    pytest.importorskip("tensorrt_rtx", reason="tensorrt_rtx is not installed")
    from netdsl.backends.tensorrt import can_execute
    if can_execute()[0]:
        pytest.skip("a usable GPU is present: the engine runs instead of the CPU proof")
    rc, out, _ = cli("check", LENET, "--backends", "reference,tensorrt")
    assert rc == 0
    assert "ran the CPU proof instead" in out and "[ok] 4c evaluate" in out and "all backends agree" in out


def test_check_layer_precision_reaches_each_engine(cli, tmp_path):
    """--layer-precision goes to OpenVINO's compile and TensorRT's proof: a pattern matching no layer is
    each engine's failure, a matching one passes."""
    pytest.importorskip("openvino", reason="openvino is not installed")
    from .test_build import ISLAND_MODEL
    model = tmp_path / "island.py"
    model.write_text(ISLAND_MODEL)
    rc, out, err = cli("check", model, "--random-weights", "--backends", "openvino,tensorrt", "--precision", "f16",
                       "--layer-precision", "nothing*=float32", "--json")
    doc = json.loads(out)
    assert rc == 1 and all("'nothing*'" in e["error"] and "matches no layer" in e["error"]
                           for e in doc["backends"].values() if e["status"] != "unavailable"), out
    rc, out, err = cli("check", model, "--random-weights", "--backends", "openvino,tensorrt", "--precision", "f16",
                       "--layer-precision", "*layer_norm*=float32")
    assert rc in (0, 3) and "MISMATCH" not in out, out + err
