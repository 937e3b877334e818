"""netdsl compare: the first diverging layer, its file:line and statistics; --json; exit codes."""
from __future__ import annotations

import json
import os

import pytest

from .conftest import BROKEN_LINE, LENET


def test_compare_names_the_broken_layer_and_its_line(cli, broken_model):
    pytest.importorskip("openvino", reason="openvino is not installed")
    rc, out, err = cli("compare", broken_model, "--random-weights", "--backends", "openvino")
    assert rc == 1, err
    where = f"{os.path.basename(broken_model)}:{BROKEN_LINE}"
    assert "FIRST DIVERGING LAYER: 'block.squash' (test_cli_squash)" in out and where in out, out
    assert "max abs err 0.05" in out and "100% of 8 elements over the limit" in out
    assert "its inputs (block.relu) agree with the reference" in out
    assert "compare: DIVERGED" in out


def test_compare_json(cli, broken_model):
    pytest.importorskip("openvino", reason="openvino is not installed")
    rc, out, _ = cli("compare", broken_model, "--random-weights", "--backends", "openvino,reference", "--json",
                     "--dim", "N=3")
    assert rc == 1
    doc = json.loads(out)
    assert doc["exit_code"] == 1 and doc["ok"] is False
    first = doc["backends"]["openvino"]["first_divergence"]
    assert first["layer"] == "block.squash" and first["location"].endswith(f"broken_model.py:{BROKEN_LINE}")
    assert first["shape"] == [3, 8] and abs(first["max_abs"] - 0.05) < 1e-3 and first["inputs_agree"] is True
    ok_layers = [d["layer"] for d in doc["backends"]["openvino"]["layers"] if d["ok"]]
    assert ok_layers == ["block.fc1", "block.relu"]
    assert doc["backends"]["reference"]["ok"] is True and doc["backends"]["reference"]["first_divergence"] is None


def test_compare_agreeing_backends_exit_0(cli):
    backends = ["reference"]
    for b, mod in (("openvino", "openvino"), ("onnx", "onnxruntime"), ("tensorrt", "tensorrt_rtx")):
        try:
            __import__(mod)
            backends.append(b)
        except ImportError:
            pass
    rc, out, err = cli("compare", LENET, "--backends", ",".join(backends))
    assert rc == 0, out + err
    assert out.count("all 9 compared tensors agree") == len(backends), out
