"""``netdsl quantize``: calibration data from .npy/.npz, the SQNR report, the cache, the artifacts."""
from __future__ import annotations

import json
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
    assert json.loads(open(cache).read())["scheme"] == "asymmetric"  # uint8 activations for ONNX Runtime
    assert f"calibration cache: {cache} (written)" in text
    ops = [n.op_type for n in onnx.load(out).graph.node]  # the consumer's own reader
    assert ops.count("QuantizeLinear") == 2 and ops.count("DequantizeLinear") == 4
    rc = main(["quantize", model, "--random-weights", "--calibration", str(tmp_path / "cal.npy"), "--batch-size", "8",
               "--calibration-backend", "reference", "--method", "entropy", "--cache", cache, "--no-report"])
    assert rc == 0 and f"calibration cache: {cache} (reused: no calibration ran)" in capsys.readouterr().out


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


@pytest.mark.parametrize("argv, words", [
    (["--calibration", "random:abc"], ["random:K takes a positive number"]),
    (["--calibration", "random:2", "--batch-size", "0"], ["--batch-size: 0 is not a positive integer"]),
    (["--calibration", "random:2", "--limit", "-1"], ["--limit: -1 is not a non-negative integer"]),
    (["--calibration", "random:2", "--percentile", "150"], ["--percentile: '150' is not a percentile in (0, 100]"]),
    (["--calibration", "random:2", "--percentile", "nan"], ["--percentile: 'nan' is not a percentile in (0, 100]"]),
    (["--calibration", "random:2", "--method", "minmax", "--percentile", "99"], ["--percentile applies to"]),
    (["--calibration", "random:2", "--backend", "onnx"], ["--backend onnx sets the format", "-o"]),
    (["--calibration", "random:2", "--backend", "reference", "-o", "q.xml"], ["invalid choice: 'reference'"]),
    (["--calibration", "random:2", "--backend", "tensorrt", "-o", "q.xml"], [".xml is what --backend openvino"]),
    (["--calibration", "random:2", "--exclude", "nomatch*"], ["exclude pattern 'nomatch*' matches no layer"]),
    (["--calibration", "garbage.npy"], ["--calibration garbage.npy: not a readable .npz/.npy file"]),
    (["--calibration", "."], ["--calibration .: a directory"]),
    (["--calibration", "random:2", "--equalize", "2"], ["--equalize 2: auto, off, or a balance alpha in [0, 1]"]),
    (["--calibration", "random:2", "--keep-float", "-1"], ["--keep-float: '-1' is neither 'auto' nor a non-negative"]),
    (["--calibration", "random:2", "--keep-float", "Auto"], ["--keep-float: 'Auto' is neither 'auto' nor a non-negative"]),
    (["--calibration", "random:2", "--keep-float", "auto", "--min-sqnr", "x"],
     ["--min-sqnr: 'x' is not an output SQNR in dB in (0, 200)"]),
    (["--calibration", "random:2", "--keep-float", "auto", "--min-sqnr", "200"], ["--min-sqnr: '200'", "(0, 200)"]),
    (["--calibration", "random:2", "--keep-float", "auto", "--min-top1", "99"],
     ["--min-top1: '99' is not a fraction of inputs in (0, 1]"]),
    (["--calibration", "random:2", "--wide-activations", "none", "--min-top1", "0.99"],
     ["--min-top1 / --min-sqnr", "--keep-float auto"]),
    (["--calibration", "random:2", "--rounding", "Auto"], ["--rounding: invalid choice: 'Auto'", "'auto'"]),
    (["--calibration", "random:2", "--method", "MSE"], ["--method: invalid choice: 'MSE'", "'mse'"]),
    (["--calibration", "random:2", "--scheme", "int8"], ["--scheme: invalid choice: 'int8'", "'symmetric'"]),
    (["--calibration", "random:2", "--calibration-backend", "ov"], ["--calibration-backend: invalid choice"]),
    (["--calibration", "random:2", "--equalize", "Auto"], ["--equalize Auto: auto, off, or a balance alpha"]),
    (["--calibration", "random:2", "--wide-activations", "Auto"], ["pattern 'Auto' matches no layer or tensor",
                                                                  "give auto, none, or name patterns"]),
    (["--calibration", "random:2", "--scheme", "asymmetric", "-o", "q.plan"], ["scheme 'asymmetric'", "symmetric"]),
    (["--calibration", "random:2", "--scheme", "unsigned", "-o", "q.plan"], ["scheme 'unsigned'", "TensorRT"]),
    (["--calibration", "random:2", "--dynamic", "N=1:4", "-o", "q.onnx"], ["--dynamic", "OpenVINO IR or a TensorRT plan"]),
    (["--calibration", "random:2", "--dynamic", "N=1:4"], ["--dynamic shapes the artifact", "-o"]),
    (["--calibration", "random:2", "--dynamic", "Q=1:4", "-o", "q.xml"], ["--dynamic Q", "no symbolic dim 'Q'"]),
    (["--calibration", "random:2", "--cache", "nodir/c.json"], ["calibration cache nodir/c.json", "does not exist"]),
    (["--calibration", "random:2", "--cache", "."], ["calibration cache . is a directory"]),
    (["--calibration", "random:2", "-o", "garbage.npy/q.xml"], ["-o garbage.npy/q.xml", "is not a directory"]),
    (["--calibration", "random:2", "--backend", "onnx", "-o", "."], ["-o . is a directory"]),
])
def test_quantize_bad_arguments_one_line_exit_2(model, tmp_path, monkeypatch, capsys, argv, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "garbage.npy").write_text("hello")
    try:
        rc = main(["quantize", model, "--random-weights", "--no-report", *argv])
    except SystemExit as e:  # argparse's own checks
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    for w in words:
        assert w in err, (w, err)


def test_quantize_backend_from_the_output_extension(model, tmp_path, capsys):
    """The README's ``-o model.onnx`` writes ONNX (the backend follows the extension), not an IR."""
    onnx = pytest.importorskip("onnx", reason="onnx is not installed")
    out = tmp_path / "q.onnx"
    rc = main(["quantize", model, "--random-weights", "--calibration", "random:2", "--no-report",
               "--calibration-backend", "reference", "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert "QuantizeLinear" in {n.op_type for n in onnx.load(str(out)).graph.node}
    assert not (tmp_path / "q.onnx.xml").exists()


def test_quantize_dynamic_sets_the_plans_profile(model, tmp_path, capsys):
    """``--dynamic N=1:8:64`` shapes the TensorRT plan's profile as for ``netdsl build`` (quantize had no
    way to: its plans took N up to 32, whatever batch the user runs)."""
    pytest.importorskip("tensorrt_rtx", reason="tensorrt_rtx is not installed (its builder writes the plan)")
    out = tmp_path / "q.plan"
    rc = main(["quantize", model, "--random-weights", "--calibration", "random:2", "--no-report",
               "--calibration-backend", "reference", "--dynamic", "N=1:8:64", "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "q.plan.json").read_text())["profiles"] == [{"x": [[1, 2, 8, 8], [8, 2, 8, 8],
                                                                                      [64, 2, 8, 8]]}]


def test_quantize_keep_float_auto_and_fitted_rounding(model, tmp_path, capsys):
    cache = str(tmp_path / "cal.json")
    rc = main(["quantize", model, "--random-weights", "--calibration", str(tmp_path / "cal.npy"), "--batch-size", "8",
               "--calibration-backend", "reference", "--keep-float", "auto", "--min-sqnr", "80", "--rounding", "gptq",
               "--refine-ranges", "--cache", cache])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "keep_float='auto'" in text and "target 80 dB" in text and "output-aware ranges" in text
    data = json.loads(open(cache).read())
    assert data["keep_float"] == "auto" and data["keep_target"] == [80.0, None] and data["rounding"] == "gptq"
    assert data["refine_ranges"] is True
    rc = main(["quantize", model, "--random-weights", "--calibration", "random:2", "--no-report",
               "--wide-activations", "none", "--min-top1", "0.99"])
    assert rc == 2 and "targets of --keep-float auto and --wide-activations auto" in capsys.readouterr().err


@pytest.mark.parametrize("wide", [["--wide-activations", "auto"], []])  # auto is the default: --min-sqnr is its target
def test_quantize_wide_activations(model, tmp_path, capsys, wide):
    cache = str(tmp_path / "cal.json")
    rc = main(["quantize", model, "--random-weights", "--calibration", str(tmp_path / "cal.npy"), "--batch-size", "8",
               "--calibration-backend", "reference", *wide, "--min-sqnr", "90", "--cache", cache])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "two-level" in text and "wide_activations='auto'" in text and "90 dB" in text
    assert json.loads(open(cache).read())["wide_activations"] == "auto"
    with pytest.raises(SystemExit) as e:  # argparse's own check
        main(["quantize", model, "--random-weights", "--calibration", "random:2", "--no-report", "--wide-activations", ","])
    assert e.value.code == 2 and "--wide-activations" in capsys.readouterr().err


def test_quantize_paths_are_checked_before_calibration(model, tmp_path, capsys):
    """A cache in a missing directory is refused before calibration runs (no progress bar shows); -o into
    a missing directory creates it, as ``netdsl build`` does."""
    from netdsl import progress
    progress.set_enabled(True)
    try:
        rc = main(["quantize", model, "--random-weights", "--calibration", "random:2", "--cache",
                   str(tmp_path / "nodir" / "c.json")])
    finally:
        progress.set_enabled(None)
    err = capsys.readouterr().err
    assert rc == 2 and "calibrating" not in err and str(tmp_path / "nodir") in err, err
    out = tmp_path / "new" / "dir" / "q.onnx"
    pytest.importorskip("onnx", reason="onnx is not installed")
    assert main(["quantize", model, "--random-weights", "--calibration", "random:2", "--no-report", "-o",
                 str(out)]) == 0 and out.is_file()
    assert main(["build", model, "--random-weights", "-o", str(tmp_path / "new2" / "f.onnx")]) == 0
