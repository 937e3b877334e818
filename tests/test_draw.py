"""netdsl.draw: the Graphviz picture (clusters by module scope, shapes on edges, tooltips with file:line)."""
from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET

import pytest

import netdsl as nd
from netdsl import nn

pytest.importorskip("graphviz", reason="the graphviz package is not installed (pip install graphviz)")

from netdsl.draw import render, to_dot  # noqa: E402

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def _resnet():
    import importlib.util
    s = importlib.util.spec_from_file_location("_ex_resnet50", os.path.join(EXAMPLES, "resnet50.py"))
    m = importlib.util.module_from_spec(s)
    s.loader.exec_module(m)
    return m.network()


def test_dot_source_groups_layers_by_module_and_labels_edges():
    src = to_dot(_resnet().graph).source
    assert 'label="layer1 (218,624 params)"' in src and 'label="layer1.0.downsample' in src
    assert "subgraph \"cluster_" in src and 'label="(N, 256, 56, 56)"' in src
    assert "layer1.0.conv1 (conv) at " in src and "resnet50.py:" in src


def test_svg_and_html_are_valid_and_carry_file_line_tooltips(tmp_path):
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot program is not installed (apt-get install graphviz)")
    net = nd.Network("tiny")
    x = net.input("x", ("N", 4))
    net.output(nn.Linear(4, 2, name="fc")(x), "y")
    svg = render(net.graph, tmp_path / "t.svg")
    root = ET.parse(svg).getroot()  # well-formed SVG
    titles = [e.get("{http://www.w3.org/1999/xlink}title") for e in root.iter() if e.tag.endswith("}a")]
    assert any(t and t.startswith("fc (linear) at ") and "test_draw.py:" in t for t in titles), titles
    page = open(render(net.graph, tmp_path / "t.html")).read()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "test_draw.py:" in page
    png = render(net.graph, tmp_path / "t.png")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(nd.NetdslError, match="unknown picture format 'jpg'"):
        render(_resnet().graph, tmp_path / "x.jpg")
