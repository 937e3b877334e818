"""Plugin folders: found by name on the plugin path or by path, imported once."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from netdsl.plugins import PluginError, available, find, load

PROBE_DIR = Path(__file__).parent / "s2d_probe"


def test_load_by_folder_file_and_name(monkeypatch):
    op = load(PROBE_DIR)
    assert op.name == "s2d_probe" and op.plugin.folder == PROBE_DIR.resolve()
    assert load(PROBE_DIR / "plugin.py") is not None and load(op) is op
    monkeypatch.setenv("NETDSL_PLUGIN_PATH", str(PROBE_DIR.parent))
    assert find("s2d_probe") == PROBE_DIR.parent / "s2d_probe"
    assert load("s2d_probe").opdef is op.opdef  # the same folder is imported once
    assert "s2d_probe" in available() and "mish" in available()  # netdsl's own plugins/ is on the path


def test_shipped_plugins_load_by_name():
    assert load("mish").name == "fused_mish"


def test_missing_plugins_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("NETDSL_PLUGIN_PATH", str(tmp_path))
    with pytest.raises(PluginError, match=r"no plugin named 'nope' on the plugin path \(.*" + tmp_path.name):
        load("nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PluginError, match="has no plugin.py"):
        load(tmp_path / "empty")
    (tmp_path / "quiet").mkdir()
    (tmp_path / "quiet" / "plugin.py").write_text("x = 1\n")
    with pytest.raises(PluginError, match="declares no plugin"):
        load(tmp_path / "quiet")


def test_importing_plugins_imports_no_engine():
    code = ("import sys, netdsl.plugins, netdsl.plugins.conformance\n"
            "netdsl.plugins.load('mish')\n"
            "bad = [m for m in ('tensorrt', 'tensorrt_rtx', 'openvino', 'onnx', 'onnxruntime', 'torch', 'cuda.bindings',"
            " 'cupy', 'pycuda') if m in sys.modules]\n"
            "sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_names_from_files_never_leave_the_plugin_path(tmp_path, monkeypatch):
    """An IR names its op types; one such as '../evil' must not import a plugin.py outside the path."""
    from netdsl.plugins.loader import find_declared
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / "plugin.py").write_text("raise SystemExit('imported!')\n")
    (tmp_path / "path").mkdir()
    monkeypatch.setenv("NETDSL_PLUGIN_PATH", str(tmp_path / "path"))
    for name in ("../evil", str(tmp_path / "evil"), "evil/..", ""):
        assert find(name) is None and find_declared(name) is None


@pytest.mark.parametrize("body,error", [
    ("def infer(x:\n", r"SyntaxError: .* \(at .*plugin\.py:1: def infer\(x:\)"),
    ("import numpy as np\nSCALE = np.float32(undefined_scale)\n",
     r"NameError: name 'undefined_scale' is not defined \(at .*plugin\.py:2: SCALE = np\.float32\(undefined_scale\)\)"),
])
def test_a_plugin_file_that_fails_to_import_is_named_with_its_line(tmp_path, body, error):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "plugin.py").write_text(body)
    with pytest.raises(PluginError, match=r"plugin file .*broken/plugin\.py failed to import: " + error):
        load(tmp_path / "broken")
    from netdsl.cli import main
    assert main(["plugin", "test", str(tmp_path / "broken")]) == 2   # the author's error, not netdsl's
