"""OpenVINO ops generated from declarations: the Python and compiled routes, IR round trips across
routes, build errors, the build cache."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

import netdsl as nd
from netdsl.backends import reference
from netdsl.errors import NetdslError, ShapeError
from netdsl.ops import Attr
from netdsl.plugins import Cpu, PluginError, declare, load, use_route
from netdsl.plugins.cpp_build import library, toolchain_missing

ov = pytest.importorskip("openvino", reason="openvino not installed")
needs_toolchain = pytest.mark.skipif(bool(toolchain_missing()), reason=f"no {toolchain_missing()} to build extensions")

PROBE = load(Path(__file__).parent / "s2d_probe")
ATTRS = dict(block=2, alpha=0.1, flag=True, tag="tag", offsets=[7, -3], weights=[0.1, 1e-20])


def _net(shape=("N", 3, 4, 6)):
    net = nd.Network("probe")
    y, count = PROBE(net.input("x", shape), name="probe", **ATTRS)
    net.output(y, "y")
    net.output(count, "count")
    return net


def _feeds():
    return {"x": np.random.default_rng(5).standard_normal((2, 3, 4, 6)).astype(np.float32)}


def _close(got, net, feeds):
    ref = reference.run(net.graph, feeds, dtype="float64")
    np.testing.assert_allclose(got["y"], ref["y"], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got["count"], ref["count"])


@needs_toolchain
@pytest.mark.parametrize("write,read", [("python", "compiled"), ("compiled", "python")])
def test_ir_written_by_one_route_loads_with_the_other(tmp_path, write, read):
    from netdsl.backends.openvino import build, load_ir
    from netdsl.backends.openvino.runtime import core
    from netdsl.plugins import openvino_ops
    net, feeds = _net(), _feeds()
    with use_route(write):
        xml = build(net.graph, tmp_path / "m.xml")
    text = Path(xml).read_text()
    assert re.search(r'type="s2d_probe" version="netdsl_1"', text)
    data = re.search(r'<data ([^/]*)/>\s*<input>\s*<port id="0" precision="FP32">', text.split('type="s2d_probe"')[1])
    assert 'alpha="0.10000000000000001"' in data.group(1) and 'weights="0.1,1e-20"' in data.group(1)
    assert 'offsets="7, -3"' in data.group(1) and 'tag="tag"' in data.group(1) and 'flag="true"' in data.group(1)
    openvino_ops._registered.pop(id(core()), None)  # as in a fresh process: nothing registered yet
    import openvino as ov_mod
    fresh = ov_mod.Core()
    with use_route(read):
        openvino_ops.register_for_ir(fresh, xml)
        m = fresh.read_model(xml)
        kinds = {type(n).__name__ for n in m.get_ordered_ops() if n.get_type_name() == "s2d_probe"}
        assert kinds == ({"PluginOp_s2d_probe"} if read == "python" else {"Node"})
        _close(load_ir(xml)(feeds), net, feeds)


def test_python_route_computes_with_cpu_python(tmp_path):
    calls = []

    def fast(x, *, gain):
        calls.append(x.dtype)
        return x * gain
    op = declare("test_ov_gain", attrs={"gain": Attr("float", 1.0)}, infer=lambda x, gain: x,
                 reference=lambda x, gain: x * gain, cpu=Cpu(python=fast), replace=True)
    net = nd.Network("g")
    net.output(op(net.input("x", (3,)), gain=3.0), "y")
    x = np.array([1.0, -2.0, 0.5], np.float32)
    np.testing.assert_allclose(nd.compile(net, "openvino")(x=x)["y"], 3 * x)
    assert calls == [np.float32]


def test_undeclared_element_type_is_refused_with_the_plugin_name():
    net = nd.Network("h")
    with pytest.raises(ShapeError, match=r"s2d_probe 'p' at .*test_openvino_ops.py:\d+: plugin 's2d_probe' takes "
                                         r"float32 or float16 \(its declared dtypes\).*got float64"):
        PROBE(net.input("x", (1, 1, 2, 2), "float64"), name="p", **ATTRS)


def _plugin(folder, name, body):
    (folder / "cpu.cpp").write_text('#include "netdsl_plugin.hpp"\n#include <stdexcept>\n' + body)
    return declare(name, attrs={"fail": Attr("bool", False)}, infer=lambda x, fail: x,
                   reference=lambda x, fail: 7 * x, cpu=Cpu(source=folder / "cpu.cpp"), replace=True)


@pytest.fixture(scope="module")
def seven(tmp_path_factory):
    """A compiled plugin y = 7x that throws when its attribute 'fail' is set (built in a private cache)."""
    folder = tmp_path_factory.mktemp("seven")
    os.environ["NETDSL_PLUGIN_CACHE"] = str(folder / "cache")
    try:
        op = _plugin(folder, "test_ov_seven", """
void netdsl_compute(const netdsl::Inputs& in, netdsl::Outputs& out, const netdsl::Attrs& attrs) {
    if (attrs.b("fail")) throw std::runtime_error("bad input 42");
    for (int64_t i = 0; i < in[0].numel(); ++i) out[0].ptr<float>()[i] = 7.0f * in[0].ptr<float>()[i];
}
""")
        library(op.plugin) if not toolchain_missing() else None
        yield op, folder / "cache"
    finally:
        os.environ.pop("NETDSL_PLUGIN_CACHE", None)


@needs_toolchain
def test_compile_errors_name_the_authors_file_and_line(tmp_path):
    op = _plugin(tmp_path, "test_ov_broken", "void netdsl_compute(const netdsl::Inputs& in, netdsl::Outputs& out,\n"
                 "                    const netdsl::Attrs& attrs) {\n  undeclared_thing(in);\n}\n")
    net = nd.Network("b")
    net.output(op(net.input("x", (2,))), "y")
    with use_route("compiled"), pytest.raises(PluginError) as e:
        nd.compile(net, "openvino")
    assert "test_ov_broken" in str(e.value) and re.search(r"cpu\.cpp:5:\d+: error", str(e.value)), str(e.value)


@needs_toolchain
def test_exceptions_in_cpu_code_reach_the_user_with_the_plugin_name(seven):
    op, _ = seven
    for fail in (False, True):
        net = nd.Network("t")
        net.output(op(net.input("x", (2,)), fail=fail), "y")
        with use_route("compiled"):
            m = nd.compile(net, "openvino")
        if not fail:
            np.testing.assert_allclose(m(x=np.array([1, -2], np.float32))["y"], [7, -14])
            continue
        with pytest.raises(Exception, match=r"plugin 'test_ov_seven' CPU code \(netdsl_compute\) failed: bad input 42"):
            m(x=np.ones(2, np.float32))


@needs_toolchain
def test_a_corrupted_cached_library_is_rebuilt_not_loaded(seven, monkeypatch):
    from netdsl.plugins import cpp_build
    op, cache = seven
    monkeypatch.setenv("NETDSL_PLUGIN_CACHE", str(cache))
    monkeypatch.setattr(cpp_build, "_built", {})  # this process's memo of built libraries: start empty
    path = Path(library(op.plugin))
    good = path.read_bytes()
    assert path.is_relative_to(cache) and oct(path.parent.stat().st_mode & 0o777) == "0o700"
    assert (path.parent / "sha256").read_text().strip() == cpp_build._sha256(path)
    cpp_build._built.clear()
    bad = path.with_name("bad.so")  # replaced, not overwritten in place: this process has the library mapped
    bad.write_bytes(b"\x7fELF not a library")
    os.replace(bad, path)
    assert Path(library(op.plugin)) == path and path.read_bytes() == good


def test_auto_route_without_a_toolchain_runs_python(monkeypatch):
    from netdsl.plugins.openvino_ops import route_for
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("CXX", raising=False)
    assert toolchain_missing()
    assert route_for(PROBE.plugin) == "python"
    with use_route("compiled"):
        assert route_for(PROBE.plugin) == "compiled"  # explicit: the build then fails, naming what is missing
        with pytest.raises(PluginError, match="cmake"):
            from netdsl.plugins import cpp_build
            cpp_build._cached_or_build(PROBE.plugin, "0" * 64)


def test_route_names_are_checked(monkeypatch):
    monkeypatch.setenv("NETDSL_PLUGIN_ROUTE", "fast")
    with pytest.raises(PluginError, match="NETDSL_PLUGIN_ROUTE"):
        from netdsl.plugins.openvino_ops import current_route
        current_route()
    assert os.environ["NETDSL_PLUGIN_ROUTE"] == "fast"


@pytest.mark.parametrize("route", ["python", pytest.param("compiled", marks=needs_toolchain)])
def test_compiled_blob_cache_serves_plugin_models(tmp_path, route, caplog):
    """OpenVINO's compiled-model cache (cache_dir): the second compile imports the blob, which needs the
    plugin's extension in the core."""
    import logging
    net, feeds = _net(), _feeds()
    with use_route(route), caplog.at_level(logging.INFO, logger="netdsl"):
        for _ in range(2):
            got = nd.compile(net, "openvino", cache_dir=str(tmp_path))(feeds)
            _close(got, net, feeds)
    assert "served from the verified cache" in caplog.text and "could not import" not in caplog.text


@pytest.mark.parametrize("route", ["python", pytest.param("compiled", marks=needs_toolchain)])
def test_a_plugin_in_a_network_with_a_float32_island_compiles_at_reduced_precision(route):
    """The islands' marks go through an IR round trip, which must read the plugin op back."""
    import warnings
    net = nd.Network("probe_island")
    x = net.input("x", ("N", 3, 4, 6))
    y, count = PROBE(x, name="probe", **ATTRS)
    with net.precision("float32"):
        z = nd.relu(y, name="r")
    net.output(z, "y")
    net.output(count, "count")
    feeds = _feeds()
    with use_route(route), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # f16 may run as bf16
        got = nd.compile(net, "openvino", precision="f16")(feeds)
    ref = reference.run(net.graph, feeds, dtype="float64")
    np.testing.assert_allclose(got["y"], ref["y"], rtol=1e-2, atol=1e-2)


NEW_PROCESS = """
import sys
import numpy as np
from netdsl.backends.openvino import load_ir
x = np.load(sys.argv[2])
np.save(sys.argv[3], load_ir(sys.argv[1])(x=x)["y"])
"""


@pytest.mark.parametrize("route", ["python", pytest.param("compiled", marks=needs_toolchain)])
def test_ir_loads_in_a_new_process_from_the_plugin_path_or_says_where_it_looked(tmp_path, route, monkeypatch):
    """A process that never declared the plugin reads its IR: the plugin is imported by name from the plugin
    path; without it on the path, the error names the op and the folders searched."""
    import subprocess
    import sys
    from netdsl.backends.openvino import build
    from netdsl.plugins.scaffold import new
    monkeypatch.setenv("NETDSL_PLUGIN_CACHE", str(tmp_path / "cache"))  # the new process finds the build there
    name = f"test_ir_proc_{route}"
    new(name, tmp_path / "plugins")
    op = load(tmp_path / "plugins" / name)
    net = nd.Network("proc")
    net.output(op(net.input("x", ("N", 3)), alpha=-1.5, name="scale"), "y")
    x = np.random.default_rng(8).standard_normal((4, 3)).astype(np.float32)
    with use_route(route):
        xml = build(net.graph, tmp_path / "m.xml")
    np.save(tmp_path / "x.npy", x)
    env = {**os.environ, "NETDSL_PLUGIN_ROUTE": route, "PYTHONPATH": str(Path(nd.__file__).parents[1])}
    script = [sys.executable, "-c", NEW_PROCESS, xml, str(tmp_path / "x.npy"), str(tmp_path / "y.npy")]
    ok = subprocess.run(script, cwd=tmp_path, env=env, capture_output=True, text=True)  # ./plugins holds it
    assert ok.returncode == 0, ok.stderr
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), -1.5 * x, rtol=1e-6)
    bad = subprocess.run(script, cwd=tmp_path / "plugins", env=env, capture_output=True, text=True)
    assert bad.returncode != 0
    assert re.search(rf"the IR uses '{name}' \(version netdsl_1\), outside OpenVINO's opsets, and no declared "
                     rf"netdsl plugin provides it: .*set NETDSL_PLUGIN_PATH to the folder holding {name}/",
                     bad.stderr), bad.stderr


def test_build_log_diagnostics_keep_the_compiler_excerpt_and_drop_make():
    from netdsl.plugins.cpp_build import diagnostics
    log = """[ 50%] Building CXX object CMakeFiles/x.dir/cpu.cpp.o
/p/cpu.cpp: In function 'void netdsl_compute(...)':
/p/cpu.cpp:14:42: error: 'k' was not declared in this scope
   14 |     y[i] = k * x[i];
      |            ^
gmake[2]: *** [CMakeFiles/x.dir/build.make:76: CMakeFiles/x.dir/cpu.cpp.o] Error 1
gmake: *** [Makefile:124: x] Error 2
/usr/bin/ld: ext.cpp.o: in function `evaluate':
ext.cpp:(.text+0x2c4e): undefined reference to `netdsl_compute'
collect2: error: ld returned 1 exit status"""
    assert diagnostics(log) == [
        "/p/cpu.cpp:14:42: error: 'k' was not declared in this scope", "   14 |     y[i] = k * x[i];",
        "      |            ^", "ext.cpp:(.text+0x2c4e): undefined reference to `netdsl_compute'",
        "collect2: error: ld returned 1 exit status"]
    assert diagnostics("something odd\nhappened") == ["something odd", "happened"]


@needs_toolchain
def test_a_wrong_netdsl_compute_signature_fails_the_build_once_with_the_expected_signature(tmp_path, monkeypatch):
    from netdsl.plugins import cpp_build
    monkeypatch.setenv("NETDSL_PLUGIN_CACHE", str(tmp_path / "cache"))
    op = _plugin(tmp_path, "test_ov_signature", "void netdsl_compute(const netdsl::Inputs& in, netdsl::Outputs& out,"
                 " netdsl::Attrs attrs) {}\n")   # Attrs by value: another function
    runs = []
    real = cpp_build._run
    monkeypatch.setattr(cpp_build, "_run", lambda p, cmd: runs.append(cmd) or real(p, cmd))
    net = nd.Network("s")
    net.output(op(net.input("x", (2,))), "y")
    for _ in range(2):
        with use_route("compiled"), pytest.raises(PluginError) as e:
            nd.compile(net, "openvino")
        msg = str(e.value)
        assert "test_ov_signature" in msg and "undefined reference to `netdsl_compute'" in msg, msg
        assert "must define void netdsl_compute(const netdsl::Inputs& in, netdsl::Outputs& out, const " \
               "netdsl::Attrs& attrs), exactly this signature" in msg and "gmake" not in msg, msg
    assert len(runs) == 3  # configure, the author's object, the library: the second compile did not rebuild


def test_an_exception_in_the_python_route_names_plugin_layer_and_the_authors_line():
    def broken(x):
        raise ValueError("python route exploded")
    op = declare("test_ov_pyerr", infer=lambda x: x, reference=lambda x: x, cpu=Cpu(python=broken), replace=True)
    net = nd.Network("t")
    net.output(op(net.input("x", (2,)), name="boom"), "y")
    with use_route("python"):
        m = nd.compile(net, "openvino")
    with pytest.raises(NetdslError) as e:
        m(x=np.ones(2, np.float32))
    assert re.search(r"Node boom .*plugin 'test_ov_pyerr' .*its CPU Python route failed: ValueError: python route "
                     r"exploded \(at .*test_openvino_ops\.py:\d+: raise ValueError", str(e.value), re.S), str(e.value)
