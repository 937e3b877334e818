"""``netdsl plugin new|test|list``: a scaffold that passes its own checks, and a broken one that fails."""
from __future__ import annotations

from netdsl.cli import main

QUICK = "reference,openvino-python,onnx,tensorrt"


def test_scaffold_passes_its_checks_and_a_wrong_reference_fails(tmp_path, capsys):
    assert main(["plugin", "new", "scaffold_ok", "--dir", str(tmp_path)]) == 0
    folder = tmp_path / "scaffold_ok"
    assert sorted(f.name for f in folder.iterdir()) == ["cpu.cpp", "example.py", "kernel.cu", "plugin.py",
                                                         "test_scaffold_ok.py"]
    assert main(["plugin", "test", str(folder), "--backends", QUICK]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "PASS vector-reference" in out and "plugin test: PASS" in out
    # a reference that no longer matches the implementations: the decomposition run by ONNX Runtime disagrees
    assert main(["plugin", "new", "scaffold_bad", "--dir", str(tmp_path)]) == 0
    bad = tmp_path / "scaffold_bad" / "plugin.py"
    bad.write_text(bad.read_text().replace("return alpha * x\n", "return alpha * x + 1e-2\n"))
    assert main(["plugin", "test", str(bad.parent), "--backends", "reference,onnx"]) == 1
    out = capsys.readouterr().out
    assert "FAIL vector-onnx: AssertionError: the declared ONNX decomposition (onnx=) disagrees with the " \
           "reference: y: max abs err" in out
    assert "plugin test: FAIL" in out, out


def test_new_refuses_bad_names_and_existing_folders(tmp_path, capsys):
    assert main(["plugin", "new", "mish", "--dir", str(tmp_path)]) == 2
    assert "'mish' is a catalogue op already" in capsys.readouterr().err
    assert main(["plugin", "new", "Bad-Name", "--dir", str(tmp_path)]) == 2
    assert "lower-case" in capsys.readouterr().err
    assert main(["plugin", "new", "twice", "--dir", str(tmp_path)]) == 0
    assert main(["plugin", "new", "twice", "--dir", str(tmp_path)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err


def test_list_shows_shipped_plugins(capsys):
    assert main(["plugin", "list"]) == 0
    assert "mish" in capsys.readouterr().out


ROUTE_MODEL = '''
import numpy as np
import netdsl as nd
from netdsl.plugins import Cpu, declare

op = declare("test_cli_route", infer=lambda x: x, reference=lambda x: np.tanh(x) * 3,
             cpu=Cpu(python=lambda x: np.tanh(x) * 3), replace=True)  # no C++: the compiled route cannot be had


def network():
    net = nd.Network("route")
    net.output(op(net.input("x", ("N", 5)), name="t"), "y")
    return net
'''


def test_plugin_route_option_picks_the_openvino_route_for_the_command(tmp_path, capsys, monkeypatch):
    import os

    import pytest
    pytest.importorskip("openvino", reason="openvino not installed")
    model = tmp_path / "route.py"
    model.write_text(ROUTE_MODEL)
    monkeypatch.setenv("NETDSL_PLUGIN_ROUTE", "compiled")
    base = ["check", str(model), "--backends", "openvino"]
    assert main(base) == 1
    assert "the compiled OpenVINO route needs C++ CPU code" in capsys.readouterr().out
    assert main(base + ["--plugin-route", "python"]) == 0, capsys.readouterr().out
    assert os.environ["NETDSL_PLUGIN_ROUTE"] == "compiled"  # the option lasts for its command only
    monkeypatch.delenv("NETDSL_PLUGIN_ROUTE")
    assert main(base + ["--plugin-route", "compiled"]) == 1
    assert "the compiled OpenVINO route needs C++ CPU code" in capsys.readouterr().out
    assert "NETDSL_PLUGIN_ROUTE" not in os.environ
    xml = str(tmp_path / "m.xml")
    assert main(["build", str(model), "--backend", "openvino", "-o", xml, "--plugin-route", "compiled"]) == 2
    assert main(["build", str(model), "--backend", "openvino", "-o", xml, "--plugin-route", "python"]) == 0
    assert main(["run", str(model), "--backend", "openvino", "--plugin-route", "python", "--repeat", "0"]) == 0
    capsys.readouterr()
    assert main(["check", str(model), "--backends", "reference", "--plugin-route", "python"]) == 2
    assert "--plugin-route does nothing for backend reference" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(base + ["--plugin-route", "fast"])
    assert e.value.code == 2 and "invalid choice: 'fast'" in capsys.readouterr().err


def test_unknown_check_names_are_a_usage_error_before_anything_runs(capsys):
    assert main(["plugin", "test", "mish", "--backends", "reference,cuda"]) == 2
    out = capsys.readouterr()
    assert "unknown conformance backend(s) cuda" in out.err and "case(s)" not in out.out
