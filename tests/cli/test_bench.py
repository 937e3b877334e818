"""netdsl bench: percentiles and throughput as JSON, batch and dims, TensorRT's skip with the reason."""
from __future__ import annotations

import json

import pytest

from .conftest import LENET


def test_bench_json_openvino_batch(cli, dyn_model):
    pytest.importorskip("openvino", reason="openvino is not installed")
    rc, out, err = cli("bench", dyn_model, "--random-weights", "--backend", "openvino", "--batch", "4",
                       "--iterations", "20", "--warmup", "2", "--json")
    assert rc == 0, err
    r = json.loads(out)
    assert r["backend"] == "openvino" and r["batch"] == 4 and r["iterations"] == 20 and r["shapes"] == {"x": [4, 8]}
    lat = r["latency_ms"]
    assert set(lat) >= {"min", "mean", "median", "p90", "p99", "max"}
    assert lat["min"] <= lat["median"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert r["throughput"] == pytest.approx(4 * r["calls_per_s"])
    assert r["engine"]["PERFORMANCE_HINT"] == "LATENCY" and r["compile_s"] > 0
    assert "engine built for fixed N=4" in err  # a note: stderr under --json


def test_bench_text_requests_and_end_to_end(cli):
    rc, out, _ = cli("bench", LENET, "--backend", "onnx", "-n", "10", "--requests", "2", "--end-to-end")
    if rc == 3:
        pytest.skip("onnxruntime is not installed")
    assert rc == 0
    assert "2 parallel request(s), 10 calls" in out and "end to end" in out and "p99" in out


@pytest.mark.parametrize("argv, words", [
    (["--batch", "4"], ["--batch 4: network 'lenet' has a fixed batch of 1"]),
    (["--batch", "0"], ["argument --batch/-b: 0 is not a positive integer"]),
    (["--requests", "-1"], ["argument --requests: -1 is not a non-negative integer"]),
    (["--time", "0"], ["argument --time/-t: 0 is not a positive number"]),
    (["--iterations", "x"], ["argument --iterations/-n: 'x' is not an integer"]),
    (["--backend", "onnx", "--hint", "latency"], ["--hint does nothing for backend onnx"]),
])
def test_bench_bad_arguments(cli, argv, words):
    rc, _, err = cli("bench", LENET, "-n", "1", *argv)
    assert rc == 2
    for w in words:
        assert w in err


def test_bench_tensorrt_without_a_supported_gpu_exits_3_with_the_reason(cli):
    pytest.importorskip("tensorrt_rtx", reason="tensorrt_rtx is not installed")
    from netdsl.backends.tensorrt import can_execute
    ok, why = can_execute()
    if ok:
        pytest.skip(f"a GPU TensorRT supports is present ({why}): the benchmark runs there")
    rc, out, err = cli("bench", LENET, "--backend", "tensorrt", "-n", "5", "--json")
    assert rc == 3 and "cannot execute engines here" in err
    assert json.loads(out)["exit_code"] == 3
