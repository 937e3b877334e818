"""Static copies of a dynamic-shape OpenVINO model: run_many makes one on a shape's second call, at the
dynamic model's streams, single calls in the background on a shape's 8th; same results; other shapes,
checks and errors unchanged."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from netdsl.backends import reference
from netdsl.compare import assert_close
from netdsl.errors import NetdslError, ShapeError

pytest.importorskip("openvino", reason="openvino is not installed (pip install openvino)")
from netdsl.backends import openvino as ovb  # noqa: E402
from netdsl.backends.openvino.specialize import MAX_SPECIALIZATIONS, SPECIALIZE_AFTER_CALLS, static_copy  # noqa: E402,E501

from .test_runtime import feeds, small_cnn  # noqa: E402


@pytest.fixture(scope="module")
def net():
    return small_cnn()


def check_all(net, outs, batch):
    assert len(outs) == len(batch)
    for f, got in zip(batch, outs):
        ref = reference.run(net.graph, f)
        for k in ref:
            assert_close(got[k], ref[k], "float32", what=k)


def static_shapes(m) -> list:
    return [str(i.get_partial_shape()) for i in m.compiled.inputs]


def test_second_call_on_one_shape_runs_a_static_copy_at_the_same_streams(net):
    m = ovb.compile(net.graph, hint="throughput", num_streams=2)
    rng = np.random.default_rng(0)
    batch = [feeds(rng, 3) for _ in range(5)]
    check_all(net, m.run_many(batch), batch)
    assert m.specializations() == {}  # one call: nothing compiled yet
    again = [feeds(rng, 3) for _ in range(5)]
    check_all(net, m.run_many(again), again)
    (special,) = m.specializations().values()
    assert static_shapes(special) == ["[3,3,12,12]"] and static_shapes(m) == ["[?,3,12,12]"]
    assert special.compiled.get_property("NUM_STREAMS") == m.compiled.get_property("NUM_STREAMS") == 2
    assert m.specialize_seconds > 0
    check_all(net, m.run_many(again), again)  # served by the copy from now on
    assert list(m.specializations()) == [((3, 3, 12, 12),)]


def test_streams_follow_the_dynamic_model_not_the_hint_for_fixed_dims(net):
    m = ovb.compile(net.graph, hint="throughput")
    rng = np.random.default_rng(1)
    for _ in range(2):
        m.run_many([feeds(rng, 2) for _ in range(3)])
    (special,) = m.specializations().values()
    assert special.compiled.get_property("NUM_STREAMS") == m.compiled.get_property("NUM_STREAMS")
    assert special.optimal_requests() == m.optimal_requests()


def test_other_and_mixed_shapes_still_run_on_the_dynamic_model(net):
    m = ovb.compile(net.graph, hint="throughput")
    rng = np.random.default_rng(2)
    for _ in range(2):
        m.run_many([feeds(rng, 4) for _ in range(3)])
    mixed = [feeds(rng, b) for b in (1, 4, 7, 4)]
    check_all(net, m.run_many(mixed), mixed)
    other = [feeds(rng, 5) for _ in range(3)]
    check_all(net, m.run_many(other), other)
    check_all(net, [m(f) for f in mixed], mixed)  # single calls: the dynamic model
    assert list(m.specializations()) == [((4, 3, 12, 12),)]


def test_at_most_a_few_copies_per_model(net):
    m = ovb.compile(net.graph, hint="throughput")
    rng = np.random.default_rng(3)
    sizes = list(range(1, MAX_SPECIALIZATIONS + 3))
    for b in sizes:
        for _ in range(2):
            batch = [feeds(rng, b) for _ in range(2)]
            check_all(net, m.run_many(batch), batch)
    assert len(m.specializations()) == MAX_SPECIALIZATIONS
    assert [k[0][0] for k in m.specializations()] == sizes[:MAX_SPECIALIZATIONS]


def test_errors_still_name_the_input_after_specializing(net):
    m = ovb.compile(net.graph, hint="throughput", dynamic={"N": (1, 4)})
    rng = np.random.default_rng(4)
    for _ in range(2):
        m.run_many([feeds(rng, 2) for _ in range(2)])
    assert m.specializations()
    with pytest.raises(ShapeError, match="data"):
        m.run_many([feeds(rng, 2), {"data": np.ones((2, 3, 5, 5), np.float32)}])
    with pytest.raises(ShapeError, match="data"):
        m.run_many([{"data": np.ones((2, 3, 12, 12), np.float32)}, {}])
    with pytest.raises(NetdslError, match="outside the range"):  # the compiled range still holds
        m.run_many([feeds(rng, 5), feeds(rng, 5)])
    ok = [feeds(rng, 2) for _ in range(2)]
    check_all(net, m.run_many(ok), ok)


def test_no_copy_when_turned_off_or_when_dims_are_fixed(net):
    rng = np.random.default_rng(5)
    off = ovb.compile(net.graph, hint="throughput", specialize=False)
    fixed = ovb.compile(net.graph, hint="throughput", dynamic={"N": 2})
    for m in (off, fixed):
        for _ in range(3):
            batch = [feeds(rng, 2) for _ in range(3)]
            check_all(net, m.run_many(batch), batch)
        assert m.specializations() == {}


def test_threads_running_one_shape_at_once_get_right_results(net):
    m = ovb.compile(net.graph, hint="throughput")
    rng = np.random.default_rng(6)
    batches = [[feeds(rng, 3) for _ in range(4)] for _ in range(3)]
    expected = [[reference.run(net.graph, f) for f in b] for b in batches]
    errors: list = []
    start = threading.Barrier(3)

    def worker(t: int) -> None:
        start.wait()
        for _ in range(4):
            for got, ref in zip(m.run_many(batches[t]), expected[t]):
                try:
                    assert_close(got["logits"], ref["logits"], "float32", what=f"thread {t}")
                except AssertionError as e:
                    errors.append(str(e))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:3]
    assert list(m.specializations()) == [((3, 3, 12, 12),)]


def test_a_shape_the_network_cannot_take_gives_no_copy(net):
    m = ovb.compile(net.graph)
    assert static_copy(m.ov_model, {"data": (2, 4, 12, 12)}, "1", "CPU", m.options) is None  # 4 != 3 channels
    made = static_copy(m.ov_model, {"data": (2, 3, 12, 12)}, "1", "CPU", m.options)
    assert made is not None and str(made[0].input(0).get_partial_shape()) == "[2,3,12,12]"
    assert str(m.ov_model.input(0).get_partial_shape()) == "[?,3,12,12]"  # the original is untouched


def test_single_calls_get_a_copy_compiled_in_the_background(net):
    m = ovb.compile(net.graph)
    rng = np.random.default_rng(7)
    calls = [feeds(rng, 2) for _ in range(SPECIALIZE_AFTER_CALLS + 4)]
    check_all(net, [m(f) for f in calls[:SPECIALIZE_AFTER_CALLS - 1]], calls[:SPECIALIZE_AFTER_CALLS - 1])
    assert m.specializations() == {}
    check_all(net, [m(calls[SPECIALIZE_AFTER_CALLS - 1])], calls[SPECIALIZE_AFTER_CALLS - 1:SPECIALIZE_AFTER_CALLS])
    m.wait_specialized(60)
    (copy,) = m.specializations().values()
    assert static_shapes(copy) == ["[2,3,12,12]"]
    assert getattr(copy._local, "request", None) is None
    rest = calls[SPECIALIZE_AFTER_CALLS:]
    check_all(net, [m(f) for f in rest], rest)
    assert copy._local.request is not None  # the copy ran them
    other = feeds(rng, 5)
    check_all(net, [m(other)], [other])
    with pytest.raises(ShapeError, match="data"):
        m({"data": np.ones((2, 3, 5, 5), np.float32)})


def test_a_loaded_ir_refuses_shapes_outside_its_bounds_every_time(net, tmp_path):
    """An IR compiled with dynamic={"N": (1, 4)}: N=5 is refused naming the input on every call (the
    dynamic model failed on the first; the second ran on a static copy made outside the bounds)."""
    path = ovb.compile(net.graph, dynamic={"N": (1, 4)}).save(str(tmp_path / "m.xml"))
    m = ovb.load_ir(path, hint="throughput")
    rng = np.random.default_rng(8)
    for _ in range(3):
        with pytest.raises(ShapeError, match=r"input 'data': dim N=5 is outside the range 1\.\.4"):
            m.run_many([feeds(rng, 5), feeds(rng, 5)])
    with pytest.raises(ShapeError, match="input 'data'"):
        m(feeds(rng, 5))
    ok = [feeds(rng, 3) for _ in range(2)]
    for _ in range(2):
        check_all(net, m.run_many(ok), ok)
    assert list(m.specializations()) == [((3, 3, 12, 12),)]


def recording_specializer(net) -> tuple:
    """``(model, Specializer of its real static copies, list of the shapes it tried to compile)``."""
    from netdsl.backends.openvino.specialize import Specializer
    m = ovb.compile(net.graph)
    tried: list = []

    def make(key: tuple):
        tried.append(key)
        return m._static_copy(key)
    return m, Specializer(["data"], make), tried


def test_a_copy_that_cannot_be_compiled_takes_no_slot_and_is_not_retried(net):
    """The static copy of a shape OpenVINO cannot compile (4 channels for a 3-channel network: a real
    compile failure) is remembered as None without using one of the MAX_SPECIALIZATIONS slots."""
    _, sp, tried = recording_specializer(net)
    bad = [{"data": np.ones((2, 4, 12, 12), np.float32)}] * 2
    for _ in range(3):
        assert sp.for_batch(bad) is None
    assert tried == [((2, 4, 12, 12),)] and sp.copies == {((2, 4, 12, 12),): None}  # tried once
    rng = np.random.default_rng(9)
    sizes = range(1, MAX_SPECIALIZATIONS + 2)
    for b in sizes:
        for _ in range(2):
            sp.for_batch([feeds(rng, b)] * 2)
    made = [k[0][0] for k, c in sp.copies.items() if c is not None]
    assert made == list(sizes)[:MAX_SPECIALIZATIONS], sp.copies
    for _ in range(SPECIALIZE_AFTER_CALLS):  # single calls: the failed shape starts no compilation either
        assert sp.for_call(bad[0]) is None
    assert sp._thread is None and len(tried) == 1 + MAX_SPECIALIZATIONS


def test_shapes_whose_copy_failed_are_remembered_up_to_a_cap(net):
    """Each shape whose static copy failed was remembered without end (a server fed many distinct
    failing shapes grew without bound): after MAX_FAILED_SPECIALIZATIONS of them no copy is compiled
    any more, and the model keeps serving every shape on its dynamic form."""
    from netdsl.backends.openvino.specialize import MAX_FAILED_SPECIALIZATIONS
    m, sp, tried = recording_specializer(net)
    for b in range(1, MAX_FAILED_SPECIALIZATIONS + 6):  # 4 channels for a 3-channel network: each fails
        bad = [{"data": np.ones((b, 4, 12, 12), np.float32)}] * 2
        for _ in range(2):
            assert sp.for_batch(bad) is None
        for _ in range(SPECIALIZE_AFTER_CALLS):
            assert sp.for_call(bad[0]) is None
            sp.wait(60)
    assert len(tried) == len(sp.copies) == MAX_FAILED_SPECIALIZATIONS
    assert all(c is None for c in sp.copies.values())
    rng = np.random.default_rng(10)
    good = [feeds(rng, 2)] * 2
    for _ in range(3):  # no copy made any more: None, and the dynamic model still runs these shapes right
        assert sp.for_batch(good) is None
    check_all(net, m.run_many(good), good)
    assert len(tried) == MAX_FAILED_SPECIALIZATIONS
