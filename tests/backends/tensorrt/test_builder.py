"""Builder options (TF32, timing cache, progress), errors, names, hooks and lazy engine import."""
from __future__ import annotations

import importlib
import logging
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed (pip install tensorrt-rtx)")

import netdsl.functional as F  # noqa: E402
from netdsl import progress  # noqa: E402
from netdsl.backends import tensorrt as T  # noqa: E402
from netdsl.backends.tensorrt import builder as B, profiles as P  # noqa: E402
from netdsl.dsl import Network  # noqa: E402
from netdsl.errors import ShapeError, UnsupportedOpError  # noqa: E402

from ._nets import small  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[3]


def test_import_netdsl_loads_no_engine():
    code = ("import sys, netdsl, netdsl.backends.tensorrt; "
            "bad = [m for m in ('tensorrt', 'tensorrt_rtx', 'pycuda', 'openvino') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_no_submodule_is_shadowed_by_a_function():
    """``import netdsl.backends.tensorrt.X as m`` gives the module X for every submodule X."""
    names = sorted(p.stem for p in pathlib.Path(T.__file__).parent.glob("*.py") if p.stem != "__init__")
    for name in names:
        mod = importlib.import_module(f"netdsl.backends.tensorrt.{name}")
        assert getattr(T, name) is mod, f"netdsl.backends.tensorrt.{name} is shadowed by {getattr(T, name)!r}"
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("netdsl.backends.tensorrt.build")  # build() is a function, not a module


def test_float32_builds_clear_tf32_unless_asked():
    tf32 = trt.BuilderFlag.TF32
    assert trt.Builder(trt.Logger()).create_builder_config().get_flag(tf32), "TensorRT's default is TF32 on"
    g = small().graph
    assert not T.network(g).config.get_flag(tf32)
    assert not T.network(g, precision="float16").config.get_flag(tf32)
    assert T.network(g, tf32=True).config.get_flag(tf32)
    assert not B.make_config(trt, trt.Builder(trt.Logger()), []).get_flag(tf32)


def test_tf32_is_part_of_the_engine_cache_key(tmp_path):
    g = small().graph
    off = B.build(g, cache_path=str(tmp_path), progress=False)
    on = B.build(g, cache_path=str(tmp_path), progress=False, tf32=True)
    assert off.key != on.key and not on.cached and off.meta["tf32"] is False and on.meta["tf32"] is True


def test_timing_cache_is_written_and_reused(tmp_path, caplog):
    """The file is TensorRT's own serialization (ITimingCache.serialize), handed back to
    create_timing_cache on the next build. TensorRT-RTX accepts these calls but ignores timing caches
    (no-ops since RTX 1.2) and cannot deserialize one without a GPU: there the file is carried only."""
    path = tmp_path / "timing.cache"
    B.build(small().graph, cache=False, progress=False, timing_cache=str(path))
    first = path.read_bytes()
    assert len(first) > 0
    with caplog.at_level(logging.INFO, logger="netdsl.tensorrt"):
        B.build(small("other", channels=5).graph, cache=False, progress=False, timing_cache=str(path))
    assert f"timing cache {path} ({len(first)} bytes) loaded" in caplog.text
    if trt.__name__.startswith("tensorrt_rtx"):
        assert "TensorRT-RTX ignores timing caches" in caplog.text


def test_unusable_timing_cache_is_replaced(tmp_path):
    path = tmp_path / "timing.cache"
    garbage = b"\x00garbage" * 10
    path.write_bytes(garbage)
    res = B.build(small().graph, cache=False, progress=False, timing_cache=str(path))
    assert res.plan and path.read_bytes() not in (b"", garbage)


def test_build_progress_reports_tensorrt_phases(capsys):
    lines = []
    B.build(small().graph, cache=False, progress=lines.append)
    assert any("Building engine" in ln for ln in lines), lines
    progress.set_enabled(True)
    try:
        B.build(small("bar").graph, cache=False)
    finally:
        progress.set_enabled(None)
    err = capsys.readouterr().err
    assert "TensorRT: Building engine" in err and "step" in err


def test_profile_errors():
    g = small().graph
    with pytest.raises(ShapeError, match="unknown symbol"):
        P.make_profiles(g, dynamic={"B": (1, 2, 3)})
    with pytest.raises(ShapeError, match="min <= opt <= max"):
        P.make_profiles(g, dynamic={"N": (4, 2, 3)})
    with pytest.raises(ShapeError, match="does not fit"):
        P.make_profiles(g, profiles={"data": ((1, 3, 5, 6), (1, 3, 6, 6), (1, 3, 6, 6))})
    assert P.make_profiles(g) == [{"data": ((1, 3, 6, 6), (1, 3, 6, 6), (32, 3, 6, 6))}]


def test_names_map_to_the_dsl_and_helpers_are_derived():
    from netdsl.backends.tensorrt import _trt, lower
    net = Network("names")
    x = net.input("x", ("N", 4))
    net.output(F.linear(x, net.parameter("fc.weight", (3, 4)), net.parameter("fc.bias", (3,)), name="fc"), "out")
    net.init_random(0)
    low = lower.lower(net.graph, _trt.load())
    names = [low.network.get_layer(i).name for i in range(low.network.num_layers)]
    assert "fc" in names and all(n.startswith(("fc", "x")) for n in names), names
    assert low.network.get_output(0).name == "out"


def test_unsupported_op_names_layer_and_plugins(monkeypatch):
    from netdsl.backends.tensorrt import _trt, lower
    monkeypatch.delitem(lower.LOWERINGS, "lrn")
    net = Network("u")
    x = net.input("x", (1, 3, 4, 4))
    net.output(F.lrn(x, 3, name="norm1"), "y")
    with pytest.raises(UnsupportedOpError, match=r"op 'lrn' at layer 'norm1'.*plugin"):
        lower.lower(net.graph, _trt.load())


def test_register_lowering_hook():
    from netdsl.backends.tensorrt import lower
    calls = []

    def my_relu(ctx, node):
        calls.append(node.name)
        return [ctx.act(ctx.t(node.inputs[0]), ctx.trt.ActivationType.RELU)]
    with pytest.raises(ValueError, match="already has"):
        T.register_lowering("relu", my_relu)
    old = lower.LOWERINGS["relu"]
    try:
        T.register_lowering("relu", my_relu, replace=True)
        net = Network("r")
        net.output(F.relu(net.input("x", (2, 3)), name="act"), "y")
        rep = T.check(net.graph, {"x": np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)})
        assert rep.ok and calls == ["act"]
    finally:
        lower.LOWERINGS["relu"] = old


def test_tensorrt_error_names_the_layer():
    net = Network("bad")
    x = net.input("x", (1, 3, 4, 4))
    net.output(F.lrn(x, 4, name="norm_even"), "y")  # TensorRT LRN needs an odd window
    rep = T.check(net.graph, {"x": np.random.default_rng(1).standard_normal((1, 3, 4, 4)).astype(np.float32)})
    assert not rep.ok and "norm_even" in str(rep) and "plugin" in str(rep)


def test_no_gpu_reason_names_what_is_missing():
    ok, why = T.can_execute()
    if ok:
        pytest.skip(f"engines can run here ({why})")
    from netdsl.backends.tensorrt import gpu
    devs, driver_why = gpu.devices()
    if not devs:  # no driver / no GPU: that is the reason, whatever pycuda's state
        assert why == driver_why and "GPU" in why and "pycuda" not in why
    else:
        assert "compute capability" in why or "pycuda" in why
