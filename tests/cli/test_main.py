"""netdsl.cli.main: exit codes, one-line usage errors, the user's traceback for model-file errors, --json errors."""
from __future__ import annotations

import json

import pytest

import netdsl.cli.ops
from netdsl.cli.common import EXIT_CODES

from .conftest import LENET


def test_help_documents_exit_codes(netdsl_cmd):
    for argv in (["--help"], ["check", "--help"], ["bench", "--help"]):
        r = netdsl_cmd(*argv)
        assert r.returncode == 0, r.stderr
        text = " ".join(r.stdout.split())
        for code, meaning in EXIT_CODES.items():
            assert f"{code} {' '.join(meaning.split())}" in text, (argv, code)


@pytest.mark.parametrize("argv, words", [
    (["run", LENET, "--dim", "N=x"], ["--dim N=x", "'x' is not an integer"]),
    (["run", LENET, "--dim", "M=4"], ["--dim M", "no symbolic dim 'M'"]),
    (["run", LENET, "--dynamic", "Q=1:4", "--backend", "openvino"], ["--dynamic Q", "no symbolic dim 'Q'"]),
    (["build", LENET, "--backend", "openvino", "--precision", "int8", "-o", "x.xml"],
     ["--precision int8", "openvino", "f32, f16"]),
    (["build", LENET, "--backend", "openvino", "--hint", "latency", "-o", "x.xml"], ["unrecognized", "--hint"]),
    (["run", LENET, "--backend", "tensorrt", "--hint", "latency"], ["--hint does nothing", "tensorrt"]),
    (["run", LENET, "--backend", "reference", "--num-streams", "2"], ["--num-streams does nothing", "reference"]),
    (["run", LENET, "--backend", "openvino", "--num-streams", "0"], ["'0' is not a positive integer or 'auto'"]),
    (["serve", LENET, "--num-streams", "-1"], ["--num-streams", "'-1' is not a positive integer or 'auto'"]),
    (["serve", LENET, "--num-streams", "two"], ["--num-streams", "'two' is not a positive integer or 'auto'"]),
    (["check", LENET, "--backends", "reference,nosuch"], ["unknown backend 'nosuch'"]),
    (["run", LENET, "--backend", "nosuch"], ["invalid choice: 'nosuch'"]),
    (["run", LENET, "--input", "nope=x.npy"], ["--input nope", "no input 'nope'"]),
    (["run", LENET, "--input", "data"], ["--input expects NAME=FILE.npy, got 'data'"]),
    (["run", LENET, "--input", "data=missing.npy"], ["--input data: file not found: missing.npy"]),
    (["summary", "missing_model.py"], ["model file not found: missing_model.py"]),
    (["nosuchcommand"], ["invalid choice"]),
    (["run", LENET, "--repeat", "-1"], ["--repeat: -1 is not a non-negative integer"]),
    (["build", LENET, "--backend", "tensorrt", "--workspace", "0", "-o", "x.plan"], ["0 is not a positive integer"]),
])
def test_bad_arguments_one_line_exit_2(cli, argv, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, err = cli(*argv)
    assert rc == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("netdsl"), lines[0]
    assert "error" in lines[0] and "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_bad_arguments_as_a_user_sees_them(netdsl_cmd):
    for argv in (["run", LENET, "--backend", "nosuch"], ["run", LENET, "--dim", "N=x"]):
        r = netdsl_cmd(*argv)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_syntax_error_in_model_file_shows_the_users_file(tmp_path, netdsl_cmd):
    m = tmp_path / "broken_syntax.py"
    m.write_text("import netdsl as nd\n\ndef network():\n    net = nd.Network('m')\n    x = net.input('x', (1, 4)\n"
                 "    return net\n")
    r = netdsl_cmd("summary", m)
    assert r.returncode == 2
    assert f'File "{m}", line 5' in r.stderr and "SyntaxError" in r.stderr, r.stderr
    assert "netdsl/cli" not in r.stderr and "importlib" not in r.stderr, r.stderr


def test_exception_in_model_file_shows_the_users_traceback(tmp_path, netdsl_cmd):
    m = tmp_path / "raises.py"
    m.write_text("import netdsl as nd\n\ndef helper(net):\n    return undefined_name + 1\n\n"
                 "def network():\n    net = nd.Network('m')\n    helper(net)\n    return net\n")
    r = netdsl_cmd("summary", m)
    assert r.returncode == 2
    err = r.stderr
    assert f'File "{m}", line 8, in network' in err and f'File "{m}", line 4, in helper' in err, err
    assert "NameError: name 'undefined_name' is not defined" in err
    assert "netdsl/cli" not in err and "site-packages" not in err, err


def test_shape_error_names_layer_and_line(tmp_path, cli):
    m = tmp_path / "bad_shape.py"
    m.write_text("import netdsl as nd\n\ndef network():\n    net = nd.Network('m')\n"
                 "    x = net.input('x', (1, 3, 32, 32))\n    w = net.parameter('w', (8, 4, 3, 3))\n"
                 "    net.output(nd.conv2d(x, w, name='conv1'), 'y')\n    return net\n")
    rc, out, err = cli("summary", m)
    assert rc == 2
    assert "conv1" in err and "bad_shape.py:7" in err and "(1, 3, 32, 32)" in err and "(8, 4, 3, 3)" in err


def test_missing_model_function(tmp_path, cli):
    m = tmp_path / "m.py"
    m.write_text("x = 1\n")
    rc, _, err = cli("summary", f"{m}:nope")
    assert rc == 2 and "no function 'nope'" in err


def test_json_error_document(cli):
    rc, out, err = cli("check", LENET, "--dim", "N=2", "--json")
    assert rc == 2
    doc = json.loads(out)
    assert doc["ok"] is False and doc["exit_code"] == 2 and "no symbolic dim 'N'" in doc["error"]
    assert "no symbolic dim 'N'" in err


def test_internal_error_exit_4(monkeypatch, cli):
    def broken(args):
        return {}["missing"]
    monkeypatch.setattr(netdsl.cli.ops, "cmd_ops", broken)
    rc, _, err = cli("ops")
    assert rc == 4
    assert "internal error: KeyError" in err and "a bug in netdsl" in err


def test_engine_unavailable_exit_3(cli):
    pytest.importorskip("tensorrt_rtx", reason="tensorrt_rtx is not installed")
    from netdsl.backends.tensorrt import can_execute
    if can_execute()[0]:
        pytest.skip("a GPU supported by TensorRT is present: the engine runs here")
    rc, _, err = cli("run", LENET, "--backend", "tensorrt")
    assert rc == 3
    assert "engine unavailable" in err and "cannot execute engines here" in err


def test_global_options_after_the_command(cli):
    rc, out, err = cli("ops", "--quiet", "--no-progress", "-v", "--debug")
    assert rc == 0 and "conv" in out


def test_verbose_forwards_engine_logs_and_quiet_silences_notes(cli):
    pytest.importorskip("tensorrt_rtx", reason="tensorrt_rtx is not installed")
    rc, _, err = cli("check", LENET, "--backends", "tensorrt", "-v")
    assert rc == 0 and "[netdsl.tensorrt]" in err  # the TensorRT builder's own log lines
    rc, _, err = cli("check", LENET, "--backends", "tensorrt")
    assert rc == 0 and "[netdsl.tensorrt]" not in err
    rc, out, err = cli("run", LENET, "--quiet")
    assert rc == 0 and "first call" not in out and "prob: float32" in out


def test_verbose_reports_openvino_settings(cli):
    pytest.importorskip("openvino", reason="openvino is not installed")
    rc, _, err = cli("run", LENET, "--backend", "openvino", "-v", "--repeat", "0")
    assert rc == 0 and "[netdsl.cli] openvino engine settings: PERFORMANCE_HINT=LATENCY" in err


# model files and paths a user gets wrong (written into the test's folder; the command runs there)
_FILES = {
    "exits.py": "import sys\ndef network():\n    sys.exit(7)\n",
    "exits_on_import.py": "raise SystemExit('not a library')\n",
    "afile": "not a directory\n",
    "dyn.py": "import netdsl as nd\ndef network():\n    net = nd.Network('d')\n"
              "    net.output(nd.relu(net.input('x', ('N', 8))), 'y')\n    return net\n",
}


@pytest.mark.parametrize("argv, words", [
    (["run", "exits.py"], ["exits.py:network() called sys.exit(7)"]),
    (["summary", "exits_on_import.py"], ["called sys.exit('not a library') while being imported"]),
    (["run", "adir"], ["adir is a directory, not a model file"]),
    (["run", LENET, "--input", "data=adir"], ["--input data: adir is a directory"]),
    (["check", LENET, "--backends", "reference", "--tol", "-1"], ["--tol: -1 is not a non-negative number"]),
    (["compare", LENET, "--backends", "reference", "--tol", "nan"], ["--tol: nan is not a non-negative number"]),
    (["bench", LENET, "--backend", "reference", "-n", "2", "--time", "1"], ["--iterations and --time"]),
    (["bench", LENET, "--backend", "reference", "--time", "inf"], ["--time/-t: inf is not a positive number"]),
    (["run", LENET, "--backend", "openvino", "--cache-dir", "afile"], ["--cache-dir afile: not a directory"]),
    (["build", LENET, "--backend", "tensorrt", "-o", "m.xml"], [".xml is what --backend openvino writes"]),
    (["build", LENET, "--backend", "openvino", "-o", "m.onnx"], [".onnx is what --backend onnx writes"]),
    (["build", LENET, "-o", "m.bin"], ["-o m.bin: pass --backend"]),
    (["build", LENET, "--backend", "onnx", "-o", "afile/m.onnx"], ["cannot use", "afile"]),
    (["graph", LENET, "-o", "afile/m.dot"], ["cannot use afile/m.dot"]),
    (["run", LENET, "--seed", "-1"], ["--seed: -1 is not a non-negative integer"]),
])
def test_more_bad_arguments_one_line_exit_2(cli, argv, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    for name, text in _FILES.items():
        (tmp_path / name).write_text(text)
    rc, out, err = cli(*argv)
    assert rc == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert not (tmp_path / "m.xml").exists() and not (tmp_path / "m.onnx").exists()


def test_openvino_device_unknown_is_usage_absent_is_engine_unavailable(cli):
    pytest.importorskip("openvino", reason="openvino is not installed")
    from netdsl.backends.openvino.runtime import core
    rc, _, err = cli("run", LENET, "--backend", "openvino", "--device", "TPU9")
    assert rc == 2 and "unknown OpenVINO device 'TPU9'" in err and len(err.strip().splitlines()) == 1, err
    kinds = {d.split(".")[0] for d in core().available_devices}
    absent = next((k for k in ("NPU", "GPU") if k not in kinds), None)
    if absent is None:
        pytest.skip("this machine has both an OpenVINO GPU and NPU: no absent device kind to ask for")
    rc, _, err = cli("run", LENET, "--backend", "openvino", "--device", f"AUTO:{absent},CPU")
    assert rc == 3 and f"OpenVINO device {absent} is not present here" in err, err


def test_inputs_too_large_for_memory_are_a_usage_error(cli, tmp_path, monkeypatch):
    try:
        with open("/proc/sys/vm/overcommit_memory") as f:
            if f.read().strip() == "1":
                pytest.skip("memory overcommit is unconditional here: a 58 TiB allocation would be granted")
    except OSError:
        pass
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dyn.py").write_text(_FILES["dyn.py"])
    rc, _, err = cli("run", "dyn.py", "--dim", "N=1000000000000")
    assert rc == 2 and "out of memory" in err and len(err.strip().splitlines()) == 1, err
