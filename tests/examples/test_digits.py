"""README command 1 (examples/digits.py): NumPy training -> HDF5 -> netdsl -> OpenVINO, accuracy >= 0.95."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn is not installed (the digits data set comes with it)")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_digits_trains_deploys_and_reaches_95_percent(tmp_path):
    env = dict(os.environ, DIGITS_EPOCHS=os.environ.get("DIGITS_EPOCHS", "8"))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "digits.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    m = re.search(r"held-out accuracy \((\w+)\): ([0-9.]+)", out)
    assert m, out
    assert float(m.group(2)) >= 0.95, out
    assert "epoch  1/" in out and "compiling" in out and "latency per image" in out
    int8 = dict(re.findall(r"INT8 held-out accuracy \((\w+)\): ([0-9.]+)", out))
    for backend, acc in int8.items():  # INT8 within 0.5 points of float32
        assert abs(float(acc) - float(m.group(2))) <= 0.005, out
    trt = re.search(r"INT8 TensorRT network: CPU proof (\w+); held-out accuracy ([0-9.]+)", out)
    if trt or "INT8 on TensorRT skipped" not in out:  # the symmetric int8 network TensorRT builds
        assert trt and trt.group(1) == "ok", out
        assert abs(float(trt.group(2)) - float(m.group(2))) <= 0.005, out
    with h5py.File(tmp_path / "digits.h5", "r") as f:  # the checkpoint: one dataset per layer/weight
        assert f["conv1/weight"].shape == (16, 1, 3, 3) and f["fc2/bias"].shape == (10,)
    try:
        import openvino  # noqa: F401
    except ImportError:
        assert "falling back to the reference" in out
        return
    assert m.group(1) == "openvino"
    assert set(int8) >= {"openvino"}, out
    assert (tmp_path / "digits.xml").exists() and (tmp_path / "digits.bin").exists()
    # the IR runs on its own (no model file) and agrees with the network bound from the checkpoint
    from netdsl.backends import openvino as ovb
    from netdsl.backends import reference
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        import digits
    finally:
        sys.path.pop(0)
    _, _, x_te, y_te = digits.load_data(0)
    ir = ovb.load_ir(tmp_path / "digits.xml")
    prob = ir(image=x_te)["prob"]
    assert float((prob.argmax(1) == y_te).mean()) >= 0.95
    ref = reference.run(digits.network(weights=str(tmp_path / "digits.h5")).graph, {"image": x_te[:16]})
    np.testing.assert_allclose(prob[:16], ref["prob"], atol=1e-5)
