"""compile(graph, cache_dir=...): the compiled model found by the graph's own key, without lowering."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

import netdsl as nd
import netdsl.functional as F
from netdsl.backends import reference, verified_cache
from netdsl.compare import assert_close
from netdsl.weights import identity

pytest.importorskip("openvino", reason="openvino is not installed (pip install openvino)")
safetensors_numpy = pytest.importorskip("safetensors.numpy", reason="safetensors is not installed")
from netdsl.backends import openvino as ovb  # noqa: E402
from netdsl.backends.openvino import graph_cache  # noqa: E402
from netdsl.backends.openvino.lower import LOWERINGS, register_lowering  # noqa: E402


@pytest.fixture(autouse=True)
def _secret(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("NETDSL_CACHE_SECRET", raising=False)
    monkeypatch.setattr(verified_cache, "_secret", None)


def mlp() -> nd.Network:
    net = nd.Network("mlp")
    x = net.input("x", ("N", 12))
    h = F.relu(F.linear(x, net.parameter("fc1.weight", (16, 12)), net.parameter("fc1.bias", (16,)), name="fc1"))
    net.output(F.linear(h, net.parameter("fc2.weight", (3, 16)), net.parameter("fc2.bias", (3,)), name="fc2"), "y")
    return net


def write_checkpoint(path, seed: int) -> dict:
    """A safetensors file written by the safetensors package (random weights of ``mlp``)."""
    rng = np.random.default_rng(seed)
    tensors = {n: rng.standard_normal(p.shape).astype(np.float32) for n, p in mlp().graph.params.items()}
    safetensors_numpy.save_file(tensors, str(path))
    return tensors


X = {"x": np.random.default_rng(99).standard_normal((4, 12)).astype(np.float32)}


def bound(path) -> nd.Network:
    net = mlp()
    net.load_weights(str(path))
    return net


class CountingRelu:
    """A relu lowering (the public register_lowering hook) that counts how often the graph is lowered
    and can run an action while it lowers."""

    def __init__(self, during=None):
        self.calls, self.during, self.saved = 0, during, LOWERINGS["relu"]

    def __enter__(self):
        def relu(ctx, node, x):
            self.calls += 1
            if self.during is not None:
                self.during()
            return self.saved(ctx, node, x)
        register_lowering("relu", relu, replace=True)
        return self

    def __exit__(self, *exc):
        LOWERINGS["relu"] = self.saved


def entries(d):
    return sorted(p.name for p in d.iterdir() if p.is_file()) if d.exists() else []


def test_second_compile_is_served_without_lowering(tmp_path, monkeypatch):
    monkeypatch.setattr(identity, "RECENT_S", 0.0)  # the file was written just now: trust its metadata
    ckpt = tmp_path / "w.safetensors"
    write_checkpoint(ckpt, 1)
    cache = tmp_path / "cache"
    with CountingRelu() as lowerings:
        first = ovb.compile(bound(ckpt).graph, cache_dir=str(cache))
        net = bound(ckpt)
        second = ovb.compile(net.graph, cache_dir=str(cache))
        assert lowerings.calls == 1  # the second compile did not lower
    assert [e[:22] for e in entries(cache)] == ["netdsl-openvino-graph-"]
    assert not first.from_cache and second.from_cache
    ref = reference.run(net.graph, X)["y"]
    np.testing.assert_array_equal(second(X)["y"], first(X)["y"])
    assert_close(second(X)["y"], ref, "float32")
    ids = graph_cache.weight_ids(net.graph)
    assert all(v.startswith('["file"') for v in ids.values())  # identified by the file, not read
    assert second.ov_model.get_friendly_name() == "mlp"  # lowered when asked for
    assert os.path.exists(second.save(str(tmp_path / "m.xml")))


def test_checkpoint_rewritten_in_place_is_not_served(tmp_path, monkeypatch):
    """Same path, same size, new values (a training loop saving over its checkpoint): a new key."""
    monkeypatch.setattr(identity, "RECENT_S", 0.0)
    ckpt = tmp_path / "w.safetensors"
    write_checkpoint(ckpt, 2)
    cache = tmp_path / "cache"
    old = ovb.compile(bound(ckpt).graph, cache_dir=str(cache))(X)["y"]
    time.sleep(0.05)  # past the file system's timestamp tick
    new_weights = write_checkpoint(ckpt, 3)
    net = bound(ckpt)
    got = ovb.compile(net.graph, cache_dir=str(cache))
    assert not got.from_cache and len(entries(cache)) == 2
    assert not np.allclose(got(X)["y"], old)
    assert_close(got(X)["y"], reference.run(net.graph, X)["y"], "float32")
    np.testing.assert_array_equal(net.graph.params["fc2.bias"].value(), new_weights["fc2.bias"])


def test_weights_changed_while_lowering_are_not_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(identity, "RECENT_S", 0.0)
    ckpt = tmp_path / "w.safetensors"
    write_checkpoint(ckpt, 4)
    time.sleep(0.05)
    cache = tmp_path / "cache"
    with CountingRelu(during=lambda: write_checkpoint(ckpt, 5)):
        m = ovb.compile(bound(ckpt).graph, cache_dir=str(cache))
    assert entries(cache) == [] and not m.from_cache


def test_recent_file_and_own_transform_are_identified_by_content(tmp_path):
    ckpt = tmp_path / "w.safetensors"
    write_checkpoint(ckpt, 6)
    assert all(v.startswith("sha256:") for v in graph_cache.weight_ids(bound(ckpt).graph).values())
    m = ovb.compile(bound(ckpt).graph, cache_dir=str(tmp_path / "cache"))  # not stored: the file just changed
    assert entries(tmp_path / "cache") == [] and not m.from_cache
    os.utime(ckpt, (time.time() - 60, time.time() - 60))
    net = mlp()
    net.load_weights(str(ckpt), transforms={"fc1.weight": lambda a: a * 1.0})
    ids = graph_cache.weight_ids(net.graph)
    assert ids["fc1.weight"].startswith("sha256:")  # the user's function: only its output identifies it
    random = mlp().init_random(0)
    assert all(v.startswith("sha256:") for v in graph_cache.weight_ids(random.graph).values())


def test_key_covers_options_and_structure(tmp_path):
    net = mlp().init_random(7)
    cache = tmp_path / "cache"
    for opts in ({}, {"precision": "bf16"}, {"hint": "throughput"}, {"dynamic": {"N": 4}}, {}):
        m = ovb.compile(net.graph, cache_dir=str(cache), **opts)
        assert_close(m(X)["y"], reference.run(net.graph, X)["y"], "bfloat16" if opts.get("precision") else "float32")
    assert len(entries(cache)) == 4  # the last compile was a hit
    other = mlp().init_random(8)  # same structure, other weights
    got = ovb.compile(other.graph, cache_dir=str(cache))
    assert not got.from_cache
    assert_close(got(X)["y"], reference.run(other.graph, X)["y"], "float32")


def test_entry_of_checkpoint_weights_is_weightless(tmp_path, monkeypatch):
    """The entry holds no weights that are checkpoint bytes: OpenVINO reads them from the checkpoint again."""
    monkeypatch.setattr(identity, "RECENT_S", 0.0)

    def wide() -> nd.Network:
        net = nd.Network("wide")
        x = net.input("x", ("N", 64))
        h = F.relu(F.linear(x, net.parameter("a.weight", (512, 64)), net.parameter("a.bias", (512,)), name="a"))
        net.output(F.linear(h, net.parameter("b.weight", (3, 512)), None, name="b"), "y")
        return net

    ckpt, cache = tmp_path / "w.safetensors", tmp_path / "cache"
    rng = np.random.default_rng(7)
    safetensors_numpy.save_file({n: rng.standard_normal(p.shape).astype(np.float32)
                                 for n, p in wide().graph.params.items()}, str(ckpt))
    feeds = {"x": rng.standard_normal((2, 64)).astype(np.float32)}
    nets = [wide(), wide()]
    for n in nets:
        n.load_weights(str(ckpt))
    first = ovb.compile(nets[0].graph, cache_dir=str(cache))
    [entry] = entries(cache)
    assert os.path.getsize(cache / entry) < os.path.getsize(ckpt) / 4  # the weights stayed in the checkpoint
    second = ovb.compile(nets[1].graph, cache_dir=str(cache))
    assert second.from_cache
    np.testing.assert_array_equal(second(feeds)["y"], first(feeds)["y"])
    assert_close(second(feeds)["y"], reference.run(nets[1].graph, feeds)["y"], "float32")
