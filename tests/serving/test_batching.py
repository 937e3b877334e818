"""Batching in a replica: requests that agree on all but the batch dim run as one inference on the real
engine and get back their own rows; others run apart; one group's failure stays in that group."""
from __future__ import annotations

import numpy as np

import netdsl as nd
from netdsl.compare import assert_close
from netdsl.serving.interface import Interface
from netdsl.serving.ray_app import run_batch

from .nets import lenet, lenet_feeds, multi, multi_feeds, ref


def test_compatible_requests_run_as_one_batch():
    net = lenet()
    model = nd.compile(net, "openvino", precision="f32")
    calls = []

    def run(feeds):
        calls.append(feeds["data"].shape[0])
        return model.run(feeds)

    rng = np.random.default_rng(20)
    items = [lenet_feeds(rng, n) for n in (1, 3, 2, 1)]
    out = run_batch(run, items, Interface.of(net.graph).batch)
    assert calls == [7]
    for feeds, got in zip(items, out):
        assert_close(got["prob"], ref(net, feeds)["prob"], "float32")


def test_groups_by_shape_and_isolates_failures():
    net = multi()
    model = nd.compile(net, "openvino", precision="f32")
    calls = []

    def run(feeds):
        calls.append(feeds["ids"].shape)
        if feeds["ids"].shape[1] == 9:
            raise RuntimeError("engine failure")
        return model.run(feeds)

    rng = np.random.default_rng(21)
    items = [multi_feeds(rng, 2, 5), multi_feeds(rng, 1, 9), multi_feeds(rng, 3, 5), multi_feeds(rng, 1, 4)]
    out = run_batch(run, items, Interface.of(net.graph).batch)
    assert sorted(calls) == [(1, 4), (1, 9), (5, 5)]
    assert isinstance(out[1], RuntimeError)
    for i in (0, 2, 3):
        want = ref(net, items[i])
        assert_close(out[i]["pooled"], want["pooled"], "float32")
        assert_close(out[i]["best"], want["best"])


def test_without_a_batch_dim_each_request_runs_alone():
    net = lenet(batch=1)
    model = nd.compile(net, "openvino", precision="f32")
    rng = np.random.default_rng(22)
    items = [lenet_feeds(rng, 1) for _ in range(3)]
    out = run_batch(model.run, items, Interface.of(net.graph).batch)
    for feeds, got in zip(items, out):
        assert_close(got["prob"], ref(net, feeds)["prob"], "float32")
