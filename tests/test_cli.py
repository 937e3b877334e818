import os
import subprocess
import sys

import numpy as np
import pytest

from netdsl.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LENET = os.path.join(ROOT, "examples", "lenet.py")


def test_summary_lenet(capsys):
    assert main(["summary", LENET]) == 0
    out = capsys.readouterr().out
    for layer in ("conv1", "pool1", "conv2", "pool2", "ip1", "relu", "ip2", "prob"):
        assert layer in out
    assert "431,080 parameters" in out


def test_run_reference_prob_sums_to_one(tmp_path, capsys):
    out_file = tmp_path / "out.npz"
    assert main(["run", LENET, "--backend", "reference", "--output", str(out_file)]) == 0
    text = capsys.readouterr().out
    assert "prob: float32 (1, 10)" in text
    prob = np.load(out_file)["prob"]
    assert prob.shape == (1, 10) and abs(prob.sum() - 1) < 1e-5 and prob.min() > 0


def test_run_with_input_file(tmp_path):
    x = np.random.default_rng(3).standard_normal((1, 1, 28, 28)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", LENET, "--input", f"data={tmp_path / 'x.npy'}", "-o", str(tmp_path / "o.npz")]) == 0
    assert np.load(tmp_path / "o.npz")["prob"].shape == (1, 10)


def test_shape_error_exits_nonzero_naming_op_shapes_line(tmp_path):
    model = tmp_path / "broken.py"
    model.write_text("import netdsl as nd\n\n"
                     "def network():\n"
                     "    net = nd.Network('broken')\n"
                     "    x = net.input('x', (1, 3, 32, 32))\n"
                     "    w = net.parameter('w', (8, 4, 3, 3))\n"
                     "    y = nd.conv2d(x, w, name='conv1')\n"
                     "    net.output(y, 'y')\n"
                     "    return net\n")
    r = subprocess.run([sys.executable, "-m", "netdsl.cli", "summary", str(model)], capture_output=True, text=True)
    assert r.returncode != 0
    assert "conv" in r.stderr and "conv1" in r.stderr and "(1, 3, 32, 32)" in r.stderr and "(8, 4, 3, 3)" in r.stderr
    assert "broken.py:7" in r.stderr


def test_unbound_weights_error(tmp_path, capsys):
    model = tmp_path / "m.py"
    model.write_text("import netdsl as nd\n\ndef network():\n    net = nd.Network('m')\n"
                     "    x = net.input('x', (1, 4))\n    net.output(nd.linear(x, net.parameter('w', (2, 4))), 'y')\n"
                     "    return net\n")
    assert main(["run", str(model)]) == 2
    assert "--random-weights" in capsys.readouterr().err
    assert main(["run", str(model), "--random-weights"]) == 0


def test_check_reference_only(capsys):
    assert main(["check", LENET, "--backends", "reference"]) == 0
    assert "prob: max abs err" in capsys.readouterr().out


def test_missing_model_function(tmp_path, capsys):
    model = tmp_path / "m.py"
    model.write_text("x = 1\n")
    assert main(["summary", f"{model}:nope"]) == 2
    assert "no function 'nope'" in capsys.readouterr().err


def test_ops_table(capsys):
    assert main(["ops"]) == 0
    out = capsys.readouterr().out
    assert "conv" in out and "reference" in out


def test_check_tensorrt_without_gpu_runs_the_cpu_proof(capsys):
    pytest.importorskip("tensorrt_rtx", reason="tensorrt_rtx is not installed")
    from netdsl.backends.tensorrt.runtime import gpu_status
    from netdsl.backends.tensorrt import _trt
    if gpu_status(_trt.load(None))[0]:
        pytest.skip("a usable GPU is present: the engine runs instead of the CPU proof")
    assert main(["check", LENET, "--backends", "reference,tensorrt"]) == 0
    out = capsys.readouterr().out
    assert "ran the CPU proof instead" in out and "[ok] 4c evaluate" in out
    assert "all backends agree" in out
