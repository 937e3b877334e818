"""``netdsl quantize``: calibration data from .npy/.npz, the SQNR report, the cache, the artifacts."""
from __future__ import annotations

import os

import numpy as np
import pytest

from netdsl.cli import main

MODEL = '''
import netdsl as nd, netdsl.functional as F
def network():
    net = nd.Network("tiny")
    x = net.input("x", ("N", 2, 8, 8))
    y = F.relu(F.conv(x, net.parameter("c.w", (4, 2, 3, 3)), net.parameter("c.b", (4,)), padding=1, name="c"))
    net.output(F.linear(F.flatten(y), net.parameter("fc.w", (5, 256)), None, name="fc"), "out")
    return net
'''


@pytest.fixture
def model(tmp_path):
    p = tmp_path / "tiny.py"
    p.write_text(MODEL)
    np.save(tmp_path / "cal.npy", np.random.default_rng(0).standard_normal((20, 2, 8, 8)).astype(np.float32))
    return str(p)


def test_quantize_writes_report_cache_and_onnx(model, tmp_path, capsys):
    onnx = pytest.importorskip("onnx", reason="onnx is not installed")
    cache, out = str(tmp_path / "cal.json"), str(tmp_path / "q.onnx")
    rc = main(["quantize", model, "--random-weights", "--calibration", str(tmp_path / "cal.npy"), "--batch-size", "8",
               "--calibration-backend", "reference", "--method", "entropy", "--cache", cache, "--backend", "onnx",
               "-o", out])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "3 calibration batch(es)" in text and "SQNR" in text and "  fc " in text
    assert os.path.exists(cache)
    ops = [n.op_type for n in onnx.load(out).graph.node]  # the consumer's own reader
    assert ops.count("QuantizeLinear") == 2 and ops.count("DequantizeLinear") == 4


def test_quantize_writes_openvino_ir_with_int8_weights(model, tmp_path, capsys):
    ov = pytest.importorskip("openvino", reason="openvino is not installed")
    out = str(tmp_path / "q.xml")
    rc = main(["quantize", model, "--random-weights", "--calibration", "random:2", "--no-report", "-o", out])
    assert rc == 0, capsys.readouterr()
    m = ov.Core().read_model(out)
    types = {n.get_type_name() for n in m.get_ordered_ops()}
    i8 = [n for n in m.get_ordered_ops() if n.get_type_name() == "Constant" and n.get_element_type() == ov.Type.i8]
    assert "FakeQuantize" in types and len(i8) == 2


def test_quantize_errors_name_the_file_and_inputs(model, tmp_path, capsys):
    np.savez(tmp_path / "bad.npz", y=np.zeros((4, 2, 8, 8), np.float32))
    rc = main(["quantize", model, "--random-weights", "--calibration", str(tmp_path / "bad.npz")])
    err = capsys.readouterr().err
    assert rc == 2 and "bad.npz" in err and "no array for input(s) x" in err
    rc = main(["quantize", model, "--random-weights", "--calibration", str(tmp_path / "missing.npy")])
    assert rc == 2 and "file not found" in capsys.readouterr().err
