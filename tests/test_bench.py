"""netdsl.bench: the timing loop, statistics and result (no timing claims: speed lives in benchmarks/)."""
from __future__ import annotations

import numpy as np
import pytest

import netdsl as nd
from netdsl.bench import benchmark, latency_stats


def _model(backend: str = "reference"):
    net = nd.Network("b")
    x = net.input("x", ("N", 8))
    net.output(nd.relu(nd.linear(x, net.parameter("w", (4, 8)))), "y")
    net.init_random(0)
    return nd.compile(net, backend)


def test_latency_stats_percentiles():
    s = latency_stats([i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert s["min"] == 1 and s["max"] == 100 and s["median"] == pytest.approx(50.5)
    assert s["p90"] == pytest.approx(90.1) and s["p99"] == pytest.approx(99.01) and s["mean"] == pytest.approx(50.5)


@pytest.mark.parametrize("requests", [1, 3])
def test_benchmark_counts_calls_and_samples(requests):
    m = _model()
    feeds = {"x": np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)}
    r = benchmark(m, feeds, warmup=2, iterations=30, requests=requests, batch=4, show_progress=False)
    assert r.iterations == 30 and r.requests == requests and r.shapes == {"x": [4, 8]}
    assert r.throughput == pytest.approx(r.calls_per_s * 4)
    lat = r.latency_ms
    assert 0 < lat["min"] <= lat["median"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert r.first_call_ms > 0 and "latency" in str(r) and r.to_dict()["iterations"] == 30


def test_benchmark_duration_and_end_to_end():
    r = benchmark(_model(), {"x": np.ones((1, 8), np.float32)}, duration=0.2, end_to_end=True, show_progress=False)
    assert r.iterations >= 1 and r.end_to_end and 0.15 < r.duration_s < 2.0


def test_openvino_timed_call_runs_the_engine_on_inputs_in_place():
    pytest.importorskip("openvino", reason="openvino is not installed")
    m = _model("openvino")
    x = np.random.default_rng(1).standard_normal((2, 8)).astype(np.float32)
    res = m.timed_call(m.check_inputs({"x": x}))()
    np.testing.assert_allclose(np.asarray(res[m.compiled.outputs[0]]), m(x=x)["y"], rtol=1e-6)
    r = benchmark(m, {"x": x}, iterations=5, requests=2, show_progress=False)
    assert r.engine["PERFORMANCE_HINT"] == "LATENCY" and r.engine["INFERENCE_PRECISION_HINT"] == "f32"


def test_benchmark_surfaces_engine_errors():
    m = _model()
    with pytest.raises(nd.ShapeError):
        benchmark(m, {"x": np.ones((1, 7), np.float32)}, iterations=1, show_progress=False)


def test_threads_the_os_refuses_are_a_netdsl_error():
    """--requests beyond what the OS gives (here: thread stacks of 1 TiB) is one netdsl error, not a
    RuntimeError from threading; the threads already started end."""
    import threading
    from netdsl.errors import NetdslError
    m, feeds = _model(), {"x": np.random.default_rng(1).standard_normal((2, 8)).astype(np.float32)}
    old = threading.stack_size(1 << 40)
    try:
        try:
            probe = threading.Thread(target=lambda: None)
            probe.start()
            probe.join()
            pytest.skip("this machine gives threads 1 TiB stacks (memory overcommit): nothing is refused")
        except RuntimeError:
            pass
        with pytest.raises(NetdslError, match="cannot run 3 parallel requests: thread 1 did not start"):
            benchmark(m, feeds, iterations=5, requests=3, show_progress=False)
    finally:
        threading.stack_size(old)
    assert threading.active_count() < 50
