"""Channel equalization: chains found through transparent layers, and the equalized network computes
the same function as the original (NumPy reference, fresh random inputs)."""
from __future__ import annotations

import numpy as np

import netdsl as nd
import netdsl.functional as F
from netdsl.backends import reference
from netdsl.passes.equalize import channel_scales, consumer_column_amax, equalize, find_chains


def _net() -> nd.Network:
    net = nd.Network("eq")
    x = net.input("x", ("N", 3, 10, 10))
    y = F.conv(x, net.parameter("c1.w", (8, 3, 3, 3)), net.parameter("c1.b", (8,)), padding=1, name="c1")
    y = F.max_pool(F.relu(y), 2)
    y = F.conv(y, net.parameter("dw.w", (8, 1, 3, 3)), net.parameter("dw.b", (8,)), padding=1, groups=8, name="dw")
    y = F.conv(y, net.parameter("c2.w", (6, 8, 1, 1)), None, name="c2")
    t = F.gelu(F.linear(F.flatten(y), net.parameter("fc1.w", (16, 150)), net.parameter("fc1.b", (16,)), name="fc1"))
    net.output(F.linear(t, net.parameter("fc2.w", (4, 16)), None, name="fc2"), "out")
    net.init_random(0)
    return net


def test_equalized_network_computes_the_same_function():
    net = _net()
    g = net.graph
    chains = {c.tensor.producer.name if c.producer is None else c.producer.name: c for c in find_chains(g)}
    # c1 -> relu -> max_pool -> dw (depthwise), dw -> c2; fc1's and fc2's inputs (a flatten, a gelu) have
    # no producer that can scale channels: a multiply is inserted
    assert chains["c1"].path and chains["c1"].depthwise and [n.name for n in chains["c1"].consumers] == ["dw"]
    assert [n.name for n in chains["dw"].consumers] == ["c2"] and not chains["dw"].depthwise
    smooth = [c for c in find_chains(g) if c.producer is None]
    assert [n.name for c in smooth for n in c.consumers] == ["fc1", "fc2"]
    rng = np.random.default_rng(5)
    scales = {c.tensor.name: rng.uniform(0.1, 10, c.tensor.shape[c.axis]) for c in find_chains(g)}
    e = equalize(g, find_chains(g), scales)
    assert len(e.params) > len(g.params) and any(n.op == "mul" for n in e.nodes)
    feeds = {"x": rng.standard_normal((2, 3, 10, 10)).astype(np.float32)}
    want, got = reference.run(g, feeds)["out"], reference.run(e, feeds)["out"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
    # the range moved: the consumer's largest weight of each input channel is multiplied by s
    c = chains["dw"]
    ce = [ch for ch in find_chains(e) if ch.tensor.name == c.tensor.name][0]
    np.testing.assert_allclose(consumer_column_amax(e, ce), consumer_column_amax(g, c) * scales[c.tensor.name], rtol=1e-6)


def test_channel_scales_balance_activations_and_weights():
    a, w = np.array([8.0, 1.0, 0.0, 2.0]), np.array([1.0, 4.0, 3.0, 0.0])
    s = channel_scales(a, w, 0.5)
    assert s[2] == 1.0 and s[3] == 1.0  # nothing seen: untouched
    r = (a / s)[:2] / (w * s)[:2]  # alpha 0.5: activation and weight ranges in the same ratio on each channel
    np.testing.assert_allclose(r, r[0])
    assert np.isclose(np.exp(np.mean(np.log(s[:2]))), 1.0)
    np.testing.assert_allclose(channel_scales(a, w, 0.0)[:2] * w[:2], (channel_scales(a, w, 0.0)[:2] * w[:2])[0])
