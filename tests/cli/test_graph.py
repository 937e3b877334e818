"""netdsl graph: pictures through the command line; --netron writes the ONNX file Netron opens."""
from __future__ import annotations

import importlib.util
import shutil

import pytest

from .conftest import LENET


def test_graph_html_has_file_line_on_hover(cli, tmp_path, dyn_model):
    pytest.importorskip("graphviz", reason="the graphviz package is not installed")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot program is not installed (apt-get install graphviz)")
    rc, out, err = cli("graph", dyn_model, "-o", tmp_path / "net.html")
    assert rc == 0, err
    page = (tmp_path / "net.html").read_text()
    assert "block.fc1 (linear) at " in page and "dyn.py:" in page and "block (144 params)" in page
    rc, _, _ = cli("graph", LENET, "-o", tmp_path / "lenet.svg", "--horizontal")
    assert rc == 0 and (tmp_path / "lenet.svg").read_text().lstrip().startswith("<?xml")


def test_graph_needs_an_output_or_netron(cli):
    rc, _, err = cli("graph", LENET)
    assert rc == 2 and "-o/--output is required" in err


def test_graph_netron_writes_onnx(cli, tmp_path):
    pytest.importorskip("onnx", reason="onnx is not installed")
    if importlib.util.find_spec("netron") is not None:
        pytest.skip("netron is installed: the command would serve the file until stopped")
    import onnx
    rc, out, err = cli("graph", LENET, "--netron", "-o", tmp_path / "lenet.onnx")
    assert rc == 0, err
    assert "open it in Netron" in out
    onnx.checker.check_model(str(tmp_path / "lenet.onnx"))
    rc, _, err = cli("graph", LENET, "--netron", "-o", tmp_path / "lenet.svg")
    assert rc == 2 and "must end in .onnx" in err
