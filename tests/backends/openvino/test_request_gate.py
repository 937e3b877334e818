"""No infer request of a dynamic-shape OpenVINO model is created while another of its requests runs
(OpenVINO's CPU plugin crashes now and then when one is): the gate's rules, and every way a model
runs (single calls, run_many, infer_async) leaves it open for the next thread's request."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from netdsl.backends import reference
from netdsl.backends.openvino.request_gate import OpenGate, RequestGate
from netdsl.compare import assert_close

pytest.importorskip("openvino", reason="openvino is not installed (pip install openvino)")
from netdsl.backends import openvino as ovb  # noqa: E402

from .test_runtime import feeds, small_cnn  # noqa: E402


def _in_thread(fn) -> threading.Thread:
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    return t


def test_a_creation_waits_for_the_runs_in_flight_and_runs_wait_for_it():
    gate = RequestGate()
    made: list = []
    gate.enter()
    creator = _in_thread(lambda: gate.create(lambda: made.append("request")))
    creator.join(0.2)
    assert creator.is_alive() and made == []  # a run is in flight
    ran: list = []
    runner = _in_thread(lambda: (gate.enter(), ran.append(len(made)), gate.leave()))
    runner.join(0.2)
    assert runner.is_alive() and ran == []  # a creation waits: a new run waits behind it
    gate.leave()
    creator.join(5)
    runner.join(5)
    assert made == ["request"] and ran == [1]  # the creation went first
    with gate.running():
        pass
    assert gate.create(lambda: 7) == 7


def test_a_failed_creation_reopens_the_gate():
    gate = RequestGate()
    with pytest.raises(ZeroDivisionError):
        gate.create(lambda: 1 / 0)
    with gate.running():
        pass
    assert gate.create(lambda: "ok") == "ok" and gate._running == 0


def test_only_a_dynamic_model_has_a_closing_gate():
    net = small_cnn()
    assert isinstance(ovb.compile(net.graph)._gate, RequestGate)
    assert not isinstance(ovb.compile(net.graph)._gate, OpenGate)
    assert isinstance(ovb.compile(net.graph, dynamic={"N": 2})._gate, OpenGate)


def test_every_way_of_running_leaves_the_gate_open_for_a_new_thread():
    """Single calls, run_many (its kept requests and a contended call's own) and infer_async (runs
    left by its callback) all leave the gate: a new thread's first call (a new request) then runs."""
    net = small_cnn()
    m = ovb.compile(net.graph, hint="throughput", specialize=False)
    rng = np.random.default_rng(0)
    batch = [feeds(rng, b) for b in (1, 3, 2, 4)]
    expected = [reference.run(net.graph, f)["logits"] for f in batch]
    m(batch[0])
    outs = m.run_many(batch, jobs=2)
    futures = [m.infer_async(f) for f in batch]
    got = [f.result(60)["logits"] for f in futures]
    for o, g, e in zip(outs, got, expected):
        assert_close(o["logits"], e, "float32")
        assert_close(g, e, "float32")
    assert m._gate._running == 0
    results: list = []
    t = _in_thread(lambda: results.append(m(batch[3])["logits"]))
    t.join(60)
    assert not t.is_alive() and len(results) == 1
    assert_close(results[0], expected[3], "float32")
