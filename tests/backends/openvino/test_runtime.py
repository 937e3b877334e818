"""OpenVINO runtime: threads, async queue, IR round trip, cache dir, dynamic batch, error messages."""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest

import netdsl as nd
import netdsl.functional as F
from netdsl.backends import reference
from netdsl.compare import assert_close
from netdsl.errors import NetdslError, ShapeError, UnsupportedOpError

pytest.importorskip("openvino", reason="openvino is not installed (pip install openvino)")
from netdsl.backends import openvino as ovb  # noqa: E402


def small_cnn(batch="N") -> nd.Network:
    net = nd.Network("small_cnn")
    x = net.input("data", (batch, 3, 12, 12))
    with net.scope("features"):
        y = F.relu(F.conv(x, net.parameter("conv1.weight", (8, 3, 3, 3)), net.parameter("conv1.bias", (8,)),
                          padding=1, name="conv1"))
        y = F.max_pool(y, 2, name="pool1")
    y = F.linear(F.flatten(y), net.parameter("fc.weight", (10, 8 * 6 * 6)), net.parameter("fc.bias", (10,)),
                 name="fc")
    net.output(F.softmax(y, 1), "prob")
    net.output(y, "logits")
    return net.init_random(seed=3)


@pytest.fixture(scope="module")
def net():
    return small_cnn()


@pytest.fixture(scope="module")
def model(net):
    return ovb.compile(net.graph)


def feeds(rng, batch=2):
    return {"data": rng.standard_normal((batch, 3, 12, 12)).astype(np.float32)}


def check(net, got, f):
    ref = reference.run(net.graph, f)
    for k in ref:
        assert_close(got[k], ref[k], "float32", what=k)


def in_threads(n: int, worker) -> None:
    """Run ``worker(t)`` for t in range(n) in n threads started together; wait for all."""
    start = threading.Barrier(n)

    def run(t: int) -> None:
        start.wait()
        worker(t)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_names_follow_the_dsl(model):
    assert model.input_names == ["data"]
    assert model.output_names == ["prob", "logits"]
    assert [sorted(o.get_names()) for o in model.ov_model.outputs] == [["prob"], ["logits"]]
    friendly = {op.get_friendly_name() for op in model.ov_model.get_ops()}
    assert {"features/conv1", "features/pool1", "fc", "conv1.weight", "fc.weight"} <= friendly


def test_four_threads_get_correct_results_every_time(net, model):
    rng = np.random.default_rng(0)
    inputs = [feeds(rng, b) for b in (1, 2, 3, 4)]
    expected = [reference.run(net.graph, f) for f in inputs]
    errors: list = []

    def worker(t: int) -> None:
        for i in range(25):
            k = (t + i) % 4
            got = model(inputs[k])
            try:
                for name in expected[k]:
                    assert_close(got[name], expected[k][name], "float32", what=f"thread {t} iter {i} {name}")
            except AssertionError as e:
                errors.append(str(e))

    in_threads(4, worker)
    assert not errors, errors[:3]


def test_run_many_uses_async_queue(net):
    m = ovb.compile(net.graph, hint="throughput")
    rng = np.random.default_rng(1)
    batch = [feeds(rng, 1 + i % 3) for i in range(12)]
    outs = m.run_many(batch)
    assert len(outs) == 12
    for f, o in zip(batch, outs):
        check(net, o, f)


@pytest.mark.parametrize("hint,jobs", [("latency", None), ("throughput", None), ("throughput", 3)])
def test_run_many_in_order_across_calls_and_threads(net, hint, jobs):
    """Round-robin requests: outputs in input order, right on every call (requests are kept and
    reused) and when two threads run_many on one model at once (the second gets its own requests)."""
    m = ovb.compile(net.graph, hint=hint)
    rng = np.random.default_rng(11)
    batches = [[feeds(rng, 1 + (i + t) % 4) for i in range(7)] for t in range(2)]
    expected = [[reference.run(net.graph, f) for f in b] for b in batches]
    for _ in range(2):
        for b, exp in zip(batches, expected):
            for got, ref in zip(m.run_many(b, jobs=jobs), exp):
                for k in ref:
                    assert_close(got[k], ref[k], "float32", what=k)
    errors: list = []

    def worker(t: int) -> None:
        for _ in range(5):
            for got, ref in zip(m.run_many(batches[t], jobs=jobs), expected[t]):
                try:
                    assert_close(got["logits"], ref["logits"], "float32", what=f"thread {t}")
                except AssertionError as e:
                    errors.append(str(e))

    in_threads(2, worker)
    assert not errors, errors[:3]
    assert m.run_many([]) == []


def test_run_many_bad_feed_names_it_before_running(net, model):
    rng = np.random.default_rng(12)
    with pytest.raises(ShapeError, match="data"):
        model.run_many([feeds(rng), {"data": np.ones((1, 3, 5, 5), np.float32)}])
    got = model.run_many([feeds(rng)])  # still usable
    assert got[0]["prob"].shape == (2, 10)


def test_calls_read_large_arrays_in_place_and_never_write_them(net):
    """run and run_many hand the caller's arrays of 64 KiB or more to OpenVINO (no copy) and copy
    smaller ones; read-only, strided and other dtypes still run (copied); no later call of any kind
    (a small input on the same request included) writes into an array an earlier call shared."""
    from netdsl.backends.openvino.runtime import SHARE_BYTES
    m = ovb.compile(net.graph, hint="throughput")
    rng = np.random.default_rng(21)
    big = [feeds(rng, 40) for _ in range(5)]  # 40 x 3 x 12 x 12 float32: 69 KB
    assert big[0]["data"].nbytes >= SHARE_BYTES > feeds(rng, 2)["data"].nbytes
    kept = [f["data"].copy() for f in big]
    check(net, m(big[0]), big[0])
    assert np.shares_memory(m._request().get_input_tensor(0).data, big[0]["data"])  # not copied
    small = feeds(rng, 2)
    check(net, m(small), small)  # copied into the request's own tensor, not into big[0]
    assert not np.shares_memory(m._request().get_input_tensor(0).data, small["data"])
    for f, o in zip(big[1:3], m.run_many(big[1:3], jobs=2)):
        check(net, o, f)
    ro = feeds(rng, 40)
    ro["data"].flags.writeable = False
    strided = {"data": np.ascontiguousarray(feeds(rng, 40)["data"].transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)}
    as_f64 = {"data": feeds(rng, 40)["data"].astype(np.float64)}
    for f in (ro, strided, as_f64, big[0]):
        check(net, m(f), {"data": np.asarray(f["data"], np.float32)})
    check(net, m.infer_async(big[3]).result(timeout=30), big[3])  # the queue's requests copy
    batch = [big[4], small, ro, small, big[2]]  # each kept request alternates shared and copied inputs
    for f, o in zip(batch, m.run_many(batch, jobs=2)):
        check(net, o, {"data": np.asarray(f["data"], np.float32)})
    for f, k in zip(big, kept):
        np.testing.assert_array_equal(f["data"], k)


def test_infer_async_future(net, model):
    rng = np.random.default_rng(2)
    batch = [feeds(rng) for _ in range(6)]
    futs = [model.infer_async(f) for f in batch]
    for f, fut in zip(batch, futs):
        check(net, fut.result(timeout=30), f)


def foreign_sum_ir(tmp_path) -> str:
    """An IR written by OpenVINO itself (no netdsl interface): sum = a + b, both (?, 5), each its own batch."""
    import openvino as ov
    import openvino.opset13 as ops
    a, b = ops.parameter([-1, 5], np.float32, name="a"), ops.parameter([-1, 5], np.float32, name="b")
    a.output(0).set_names({"a"})
    b.output(0).set_names({"b"})
    total = ops.add(a, b)
    total.output(0).set_names({"sum"})
    path = str(tmp_path / "foreign.xml")
    ov.save_model(ov.Model([ops.result(total)], [a, b], "foreign_sum"), path)
    return path


def test_infer_async_failure_is_the_futures_error_and_the_next_calls_run(tmp_path):
    """An inference that fails (batches 2 and 3 added: the IR's interface does not tie them) is its
    future's NetdslError: OpenVINO's AsyncInferQueue calls no callback for a failed request, so the
    future never completed (and the error surfaced, raw, in a later call)."""
    m = ovb.load_ir(foreign_sum_ir(tmp_path))
    rng = np.random.default_rng(12)
    pair = [rng.standard_normal((n, 5)).astype(np.float32) for n in (2, 3, 2)]
    np.testing.assert_allclose(m.infer_async(a=pair[0], b=pair[2]).result(timeout=30)["sum"], pair[0] + pair[2])
    with pytest.raises(NetdslError, match="OpenVINO inference of 'foreign_sum' failed"):
        m.infer_async(a=pair[0], b=pair[1]).result(timeout=30)
    later = [(pair[k], pair[2 - k]) for k in (0, 2, 0)]
    for (a, b), fut in zip(later, [m.infer_async(a=a, b=b) for a, b in later]):
        np.testing.assert_allclose(fut.result(timeout=30)["sum"], a + b)


def test_ir_round_trip_exact(net, model, tmp_path):
    path = ovb.build(net.graph, tmp_path / "m.xml")
    assert path.endswith("m.xml") and os.path.exists(tmp_path / "m.bin")
    loaded = ovb.load_ir(path)
    assert loaded.input_names == ["data"] and loaded.output_names == ["prob", "logits"]
    f = feeds(np.random.default_rng(3), 3)
    a, b = model(f), loaded(f)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])  # exact: f32 weights in, same compiled graph
    with pytest.raises(ShapeError, match="missing input"):
        loaded({})


def test_ir_fp16_compression(net, tmp_path):
    exact = ovb.build(net.graph, tmp_path / "f32.xml")
    small = ovb.build(net.graph, tmp_path / "f16.xml", compress_to_fp16=True)
    assert os.path.getsize(tmp_path / "f16.bin") < 0.6 * os.path.getsize(tmp_path / "f32.bin")
    f = feeds(np.random.default_rng(4))
    ref = reference.run(net.graph, f)
    got = ovb.load_ir(small)(f)
    assert_close(got["logits"], ref["logits"], "float16")
    assert not np.array_equal(got["logits"], ovb.load_ir(exact)(f)["logits"])  # weights really changed


def test_compile_cache_dir(net, tmp_path):
    cache = tmp_path / "cache"
    m1 = ovb.compile(net.graph, cache_dir=str(cache))
    assert any(cache.iterdir()), "OpenVINO wrote no cache blob"
    m2 = ovb.compile(net.graph, cache_dir=str(cache))
    f = feeds(np.random.default_rng(5))
    np.testing.assert_array_equal(m1(f)["logits"], m2(f)["logits"])


def test_dynamic_batch_compiled_once(net, model):
    assert not model.compiled.inputs[0].get_partial_shape().is_static
    rng = np.random.default_rng(6)
    for b in (1, 5, 16):
        f = feeds(rng, b)
        got = model(f)
        assert got["prob"].shape == (b, 10)
        check(net, got, f)


def test_run_many_batch_shrinks_and_grows(net):
    """A request's input tensor takes each feed's shape: larger, smaller, then larger again."""
    m = ovb.compile(net.graph, hint="throughput")
    rng = np.random.default_rng(9)
    batches = [feeds(rng, b) for b in (8, 3, 8, 1, 5, 8)]
    for f, got in zip(batches, m.run_many(batches, jobs=2)):
        assert got["prob"].shape == (f["data"].shape[0], 10)
        check(net, got, f)


def test_dynamic_batch_range(net):
    m = ovb.compile(net.graph, dynamic={"N": (1, 4)})
    assert str(m.ov_model.input(0).get_partial_shape()) == "[1..4,3,12,12]"
    check(net, m(feeds(np.random.default_rng(7), 4)), feeds(np.random.default_rng(7), 4))
    with pytest.raises(NetdslError):
        m(feeds(np.random.default_rng(7), 5))
    fixed = ovb.compile(net.graph, dynamic={"N": 2})
    assert fixed.compiled.inputs[0].get_partial_shape().is_static


@pytest.mark.parametrize("opts, words", [
    ({"dynamic": {"N": (4, 1)}}, r"dynamic\['N'\] = \(4, 1\): .*LO <= HI"),  # was an engine error
    ({"dynamic": {"Q": 2}}, r"dynamic names Q, not a symbolic dim of network 'small_cnn' \(its symbols: N\)"),
    ({"dynamic": {"N": "x"}}, r"dynamic\['N'\] = 'x'"),  # was a ValueError
    ({"dynamic": {"N": -3}}, r"dynamic\['N'\] = -3"),
    ({"specialize": "no"}, "specialize must be True or False, got 'no'"),  # bool('no') turned it on
])
def test_bad_compile_options_are_one_netdsl_error(net, opts, words):
    with pytest.raises(NetdslError, match=words):
        ovb.compile(net.graph, **opts)


def test_precisions(net):
    f = feeds(np.random.default_rng(8))
    ref = reference.run(net.graph, f)
    for p, tol in (("bf16", "bfloat16"), ("auto", "bfloat16"), ("f16", "bfloat16")):
        got = ovb.compile(net.graph, precision=p)(f)
        assert_close(got["logits"], ref["logits"], tol)
    m = ovb.compile(net.graph, precision="f32")
    assert set(m.runtime_precisions().values()) <= {"f32", "i32", "i64", "u8", "boolean", "dynamic", "undefined"}
    with pytest.raises(NetdslError, match="precision"):
        ovb.compile(net.graph, precision="int4")
    with pytest.raises(TypeError, match="unknown option"):
        ovb.compile(net.graph, precison="f32")


def test_missing_and_wrong_inputs(model):
    with pytest.raises(ShapeError, match="missing input.*data"):
        model({})
    with pytest.raises(ShapeError, match="data"):
        model(data=np.zeros((2, 3, 11, 12), np.float32))
    with pytest.raises(ShapeError, match="unknown input.*bogus"):
        model(data=np.ones((1, 3, 12, 12), np.float32), bogus=np.ones(1))


def test_an_empty_batch_runs_and_does_not_fail_the_next_calls(net, tmp_path):
    """OpenVINO 2026.4 fails an empty batch in max pool, and the compiled model then failed every later
    call of the last shape it ran: an empty input is computed by the reference (single calls, run_many,
    infer_async); an IR loaded without its graph says which input was empty."""
    rng = np.random.default_rng(11)
    m = ovb.compile(net.graph, hint="throughput", specialize=False)
    good = [feeds(rng, 4), feeds(rng, 4)]
    empty = {"data": np.zeros((0, 3, 12, 12), np.float32)}
    check(net, m(good[0]), good[0])
    for got in (m(empty), m.run_many([good[0], empty], jobs=2)[1], m.infer_async(empty).result(60)):
        assert got["logits"].shape == (0, 10) and got["logits"].dtype == np.float32 and got["prob"].shape == (0, 10)
    for f in good:
        check(net, m(f), f)
    for f, got in zip(good, m.run_many(good, jobs=2)):
        check(net, got, f)


def test_an_ir_without_its_graph_answers_an_empty_batch_and_keeps_running(net, tmp_path):
    """A loaded IR has no graph to run on the reference: an empty call gets empty outputs of the shapes
    its interface gives (OpenVINO never sees it: one empty call failed every later call of the model)."""
    rng = np.random.default_rng(12)
    ir = ovb.load_ir(ovb.compile(net.graph, specialize=False).save(str(tmp_path / "m.xml")))
    good = [feeds(rng, 3), feeds(rng, 3)]
    empty = {"data": np.zeros((0, 3, 12, 12), np.float32)}
    check(net, ir(good[0]), good[0])
    for got in (ir(empty), ir.run_many([good[0], empty], jobs=2)[1], ir.infer_async(empty).result(60)):
        assert {k: (a.shape, a.dtype) for k, a in got.items()} == {k: ((0, 10), np.float32) for k in ("prob", "logits")}
    for f in good:
        check(net, ir(f), f)
    for f, got in zip(good, ir.run_many(good, jobs=2)):
        check(net, got, f)


def test_an_ir_without_its_graph_refuses_an_empty_batch_whose_output_is_not_empty(tmp_path):
    """An output that is not empty for an empty input (a sum over the batch) has values the interface does
    not give: the empty call alone is refused, naming the input and the output."""
    n = nd.Network("batch_sum")
    x = n.input("x", ("N", 5))
    n.output(F.sum(F.relu(x), 0), "total")
    ir = ovb.load_ir(ovb.build(n.graph, str(tmp_path / "s.xml")))
    with pytest.raises(NetdslError, match=r"input 'x' \(shape \(0, 5\)\) is empty and output 'total' .*shape \(5,\)"):
        ir(x=np.zeros((0, 5), np.float32))
    f = {"x": np.random.default_rng(13).standard_normal((4, 5)).astype(np.float32)}
    assert_close(ir(f)["total"], reference.run(n.graph, f)["total"], "float32", what="total")
    foreign = ovb.load_ir(foreign_sum_ir(tmp_path))  # no interface: its output shape is not known
    with pytest.raises(NetdslError, match=r"input 'a' \(shape \(0, 5\)\) is empty .*output 'sum' .*not known"):
        foreign(a=np.zeros((0, 5), np.float32), b=np.zeros((0, 5), np.float32))
    a = np.random.default_rng(14).standard_normal((3, 5)).astype(np.float32)
    np.testing.assert_allclose(foreign(a=a, b=a)["sum"], a + a)


def test_unsupported_op_names_layer_and_points_to_plugins(net):
    from netdsl.backends.openvino.lower import LOWERINGS
    saved = LOWERINGS.pop("max_pool")
    try:
        with pytest.raises(UnsupportedOpError) as e:
            ovb.compile(net.graph)
        msg = str(e.value)
        assert "max_pool" in msg and "features/pool1" in msg and "register_lowering" in msg and "plugin" in msg
        assert "test_runtime.py" in msg  # the user's line
    finally:
        LOWERINGS["max_pool"] = saved


def test_register_lowering_hook(net):
    from netdsl.backends.openvino.lower import LOWERINGS, register_lowering
    saved = LOWERINGS["relu"]
    calls = []

    def my_relu(ctx, node, x):
        calls.append(node.name)
        return ctx.ops.maximum(x, ctx.scalar(0.0, x)).output(0)

    with pytest.raises(ValueError, match="already exists"):
        register_lowering("relu", my_relu)
    register_lowering("relu", my_relu, replace=True)
    try:
        m = ovb.compile(net.graph)
        assert calls == ["features/relu"]
        f = feeds(np.random.default_rng(9))
        check(net, m(f), f)
    finally:
        LOWERINGS["relu"] = saved


def test_identity_of_an_input_keeps_both_names():
    net = nd.Network("passthrough")
    x = net.input("x", ("N", 4))
    net.output(x, "y")
    net.output(F.relu(x), "z")
    m = ovb.compile(net.graph)
    a = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    out = m(x=a)
    np.testing.assert_array_equal(out["y"], a)
    np.testing.assert_array_equal(out["z"], np.maximum(a, 0))


def test_backend_unavailable_message():
    """Without openvino (import blocked in a fresh interpreter), compile says what to install."""
    import subprocess
    import sys
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'openvino' or name.startswith('openvino.'):\n"
            "            raise ImportError('openvino blocked for this test')\n"
            "sys.meta_path.insert(0, Block())\n"
            "import netdsl, netdsl.functional as F\n"
            "from netdsl.errors import BackendUnavailable\n"
            "net = netdsl.Network('n'); x = net.input('x', (1, 2)); net.output(F.relu(x), 'y')\n"
            "try:\n    netdsl.compile(net, 'openvino')\nexcept BackendUnavailable as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "pip install openvino" in out.stdout and "netdsl[openvino]" in out.stdout, out.stdout + out.stderr


def test_get_backend_and_netdsl_compile(net):
    from netdsl.backends import get_backend
    be = get_backend("openvino")
    assert hasattr(be, "compile") and hasattr(be, "build")
    m = nd.compile(net, "openvino", precision="f32", hint="latency")
    f = feeds(np.random.default_rng(10))
    check(net, m(f), f)


@pytest.mark.parametrize("size", [2, 4, 5])
def test_lrn_window_placement(size):
    """Even LRN sizes are lowered explicitly (OpenVINO centres even windows differently)."""
    net = nd.Network("lrn")
    x = net.input("x", ("N", 7, 3, 3))
    net.output(F.lrn(x, size, alpha=0.5, beta=0.75, bias=1.5), "y")
    f = {"x": np.random.default_rng(size).uniform(-2, 2, (2, 7, 3, 3)).astype(np.float32)}
    check(net, ovb.compile(net.graph)(f), f)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "two", "\u00b2", "0"])
def test_num_streams_must_be_a_positive_integer_or_auto(bad):
    """num_streams 0, -1 or 2.5 went to OpenVINO as text without a word (or OpenVINO's own error)."""
    from netdsl.backends.openvino.runtime import compile_config
    with pytest.raises(NetdslError, match=rf"num_streams={bad!r}: give a positive integer or 'auto'"):
        compile_config(num_streams=bad)
    assert compile_config(num_streams=3)["NUM_STREAMS"] == "3"
    assert "NUM_STREAMS" not in compile_config(num_streams="Auto")  # the hint's own choice (see below)


def test_every_accepted_num_streams_value_compiles_and_computes():
    """num_streams as the API and the CLI give it: an int, a numpy int, a digit string, 'auto' in any case."""
    net = nd.Network("streams")
    x = net.input("x", ("N", 6))
    net.output(F.relu(F.linear(x, net.parameter("w", (4, 6)), net.parameter("b", (4,)))), "y")
    net.init_random(0)
    f = {"x": np.random.default_rng(3).standard_normal((2, 6)).astype(np.float32)}
    for streams in (1, 2, np.int64(2), "3", "auto", "AUTO"):
        check(net, ovb.compile(net.graph, num_streams=streams)(f), f)


@pytest.mark.parametrize("hint", ["latency", "throughput"])
def test_auto_streams_keep_the_users_hint(net, hint):
    """num_streams='auto' went to OpenVINO as NUM_STREAMS AUTO, which turned a latency hint into
    PERFORMANCE_HINT THROUGHPUT: 'auto' is the hint's own choice of streams, on static copies too."""
    rng = np.random.default_rng(21)
    plain = ovb.compile(net.graph, hint=hint)
    m = ovb.compile(net.graph, hint=hint, num_streams="auto")
    batch = [feeds(rng, 3) for _ in range(2)]
    for _ in range(2):  # the second run_many runs on a static copy
        for f, got in zip(batch, m.run_many(batch)):
            check(net, got, f)
    [copy] = m.specializations().values()
    for c in (m.compiled, copy.compiled):
        assert str(c.get_property("PERFORMANCE_HINT")) == hint.upper()
        assert c.get_property("NUM_STREAMS") == plain.compiled.get_property("NUM_STREAMS")
