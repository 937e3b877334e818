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
