"""netdsl.cli.common: option tables, per-backend options, dims, weights read with progress."""
from __future__ import annotations

import argparse

import numpy as np
import pytest

import netdsl as nd
from netdsl.cli.common import (backend_options, check_engine_options, parse_dims, parse_dynamic, preload_weights,
                               user_traceback)
from netdsl.errors import NetdslError


def _args(command: str = "run", **kw) -> argparse.Namespace:
    base = dict(command=command, precision=None, device=None, hint=None, cache_dir=None, dynamic=None,
                num_streams=None, workspace=None, compress_fp16=False, tf32=False, timing_cache=None)
    base.update(kw)
    return argparse.Namespace(**base)


def test_backend_options_per_backend():
    a = _args(precision="fp16", dynamic=["N=1:8"], workspace=64, hint="throughput")
    assert backend_options(a, "openvino", strict=False) == {"precision": "f16", "dynamic": {"N": (1, 8)},
                                                           "hint": "throughput"}
    assert backend_options(a, "tensorrt", strict=False) == {"precision": "f16", "dynamic": {"N": (1, 8, 8)},
                                                           "workspace": 64 << 20}
    assert backend_options(_args(precision="f64"), "reference") == {"dtype": "float64"}
    assert backend_options(_args(precision="float32"), "onnx") == {}
    assert backend_options(_args("build", compress_fp16=True), "openvino") == {"compress_to_fp16": True}
    assert backend_options(_args(device="1"), "tensorrt") == {"device": 1}
    with pytest.raises(NetdslError, match="TensorRT takes a GPU index"):
        backend_options(_args(device="GPU"), "tensorrt")


def test_engine_options_over_several_backends():
    check_engine_options(_args(hint="latency"), ["reference", "openvino"])  # openvino uses it
    with pytest.raises(NetdslError, match="--hint does nothing for backend reference, onnx"):
        check_engine_options(_args(hint="latency"), ["reference", "onnx"])
    with pytest.raises(NetdslError, match="--precision bf16: not available to run on backend onnx"):
        check_engine_options(_args(precision="bf16"), ["openvino", "onnx"])


def test_parse_dims_and_dynamic():
    assert parse_dims(["N=4", " T = 16 "]) == {"N": 4, "T": 16}
    for bad, msg in (("N", "expects SYM=INT"), ("N=", "expects SYM=INT"), ("N=-1", "cannot be negative"),
                     ("N=1.5", "'1.5' is not an integer")):
        with pytest.raises(NetdslError, match=msg):
            parse_dims([bad])
    assert parse_dynamic(["N=4"], "openvino") == {"N": 4} and parse_dynamic(["N=4"], "tensorrt") == {"N": (4, 4, 4)}
    assert parse_dynamic(["N=1:2:8"], "tensorrt") == {"N": (1, 2, 8)} and parse_dynamic(["N=1:2:8"], "x") == {"N": (1, 8)}
    for bad in ("N=8:1", "N=0:4", "N=a:b", "N=1:2:3:4", "=4"):
        with pytest.raises(NetdslError, match="--dynamic"):
            parse_dynamic([bad], "openvino")


def test_preload_weights_reads_once_with_progress(capsys, monkeypatch):
    monkeypatch.setenv("NETDSL_PROGRESS", "1")
    net = nd.Network("w")
    x = net.input("x", (1, 4))
    net.output(nd.linear(x, net.parameter("w", (3, 4))), "y")
    calls = []
    data = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    p = net.graph.params["w"]

    def source():
        calls.append(1)
        return data
    source.identity = lambda: "file-identity"
    p.source = source
    preload_weights(net.graph, min_bytes=1 << 20)  # small network: stays lazy
    assert not calls
    preload_weights(net.graph, min_bytes=0)
    assert calls == [1] and "reading weights" in capsys.readouterr().err
    np.testing.assert_array_equal(p.value(), data)
    p.value()
    assert calls == [1] and p.source.identity() == "file-identity"  # caches still identify the weight


def test_user_traceback_keeps_only_user_frames(tmp_path):
    src = tmp_path / "user_mod.py"
    src.write_text("def f():\n    raise ValueError('boom')\n")
    import importlib.util
    s = importlib.util.spec_from_file_location("user_mod", src)
    m = importlib.util.module_from_spec(s)
    s.loader.exec_module(m)
    try:
        m.f()
    except ValueError as e:
        text = user_traceback(e)
    assert f'File "{src}", line 2, in f' in text and "ValueError: boom" in text
    assert "test_common.py" in text  # the caller's frame (this test) is user code too
