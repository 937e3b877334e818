"""OpenVINO's compiled-blob cache, wrapped: a corrupted, foreign or forged blob is rebuilt, never served."""
from __future__ import annotations

import os

import numpy as np
import pytest

import netdsl as nd
import netdsl.functional as F
from netdsl.backends import reference, verified_cache
from netdsl.compare import assert_close

pytest.importorskip("openvino", reason="openvino is not installed (pip install openvino)")
from netdsl.backends import openvino as ovb  # noqa: E402
from netdsl.backends.openvino import blob_cache, graph_cache  # noqa: E402


@pytest.fixture(autouse=True)
def _secret(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("NETDSL_CACHE_SECRET", raising=False)
    monkeypatch.setattr(verified_cache, "_secret", None)


def cnn(seed: int) -> nd.Network:
    net = nd.Network("cnn")
    x = net.input("data", (2, 3, 10, 10))
    y = F.relu(F.conv(x, net.parameter("w", (6, 3, 3, 3)), net.parameter("b", (6,)), padding=1, name="conv"))
    y = F.linear(F.flatten(F.max_pool(y, 2)), net.parameter("fc.w", (5, 150)), net.parameter("fc.b", (5,)), name="fc")
    net.output(y, "logits")
    return net.init_random(seed=seed)


FEEDS = {"data": np.random.default_rng(11).standard_normal((2, 3, 10, 10)).astype(np.float32)}


def fresh(net):
    return ovb.compile(net.graph)(FEEDS)["logits"]


def entries(d):
    return sorted(p for p in d.iterdir() if p.is_file())


def kind_key(entry):
    """(kind, key) of a cache file: compile(graph) writes graph-keyed entries (graph_cache), an
    ov.Model compiled directly model-keyed ones (blob_cache)."""
    if entry.name.startswith("netdsl-openvino-graph-"):
        return graph_cache.KIND, entry.name[len("netdsl-openvino-graph-"):-5]
    return blob_cache.KIND, entry.name[16:-5]


def test_hit_equals_fresh_build(tmp_path, caplog):
    import logging
    caplog.set_level(logging.INFO, "netdsl.openvino")
    net = cnn(1)
    cache = tmp_path / "cache"
    first = ovb.compile(net.graph, cache_dir=str(cache))(FEEDS)["logits"]
    [entry] = entries(cache)
    assert entry.name.startswith("netdsl-openvino-")
    second = ovb.compile(net.graph, cache_dir=str(cache))(FEEDS)["logits"]
    assert "served from the verified cache" in caplog.text
    np.testing.assert_array_equal(second, fresh(net))
    np.testing.assert_array_equal(first, second)
    assert_close(second, reference.run(net.graph, FEEDS)["logits"], "float32")


def test_raw_cache_dir_property_is_served_by_netdsl(tmp_path):
    """config={'CACHE_DIR': d} no longer reaches OpenVINO's unverified cache."""
    net = cnn(2)
    cache = tmp_path / "raw"
    ovb.compile(net.graph, config={"CACHE_DIR": str(cache)})
    assert [p.name[:16] for p in entries(cache)] == ["netdsl-openvino-"]


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "garbage"])
def test_damaged_entry_rebuilt(tmp_path, damage):
    net = cnn(3)
    cache = tmp_path / "cache"
    ovb.compile(net.graph, cache_dir=str(cache))
    for p in entries(cache):
        data = bytearray(p.read_bytes())
        if damage == "flip":  # one bit in the weights: OpenVINO's own cache served such a blob silently
            data[len(data) // 5] ^= 0x40
        elif damage == "truncate":
            data = data[: len(data) // 2]
        elif damage == "empty":
            data = bytearray()
        else:
            data = bytearray(np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8).tobytes())
        p.write_bytes(bytes(data))
    got = ovb.compile(net.graph, cache_dir=str(cache))(FEEDS)["logits"]
    np.testing.assert_array_equal(got, fresh(net))
    assert verified_cache.read(str(entries(cache)[0]), *kind_key(entries(cache)[0])) is not None


def two_cached(tmp_path, seed_a, seed_b):
    """Two models of the same structure (other weights), each compiled into its own cache: (a, b, entries)."""
    a, b = cnn(seed_a), cnn(seed_b)
    for net, d in ((a, "a"), (b, "b")):
        ovb.compile(net.graph, cache_dir=str(tmp_path / d))
    [ea], [eb] = entries(tmp_path / "a"), entries(tmp_path / "b")
    return a, b, ea, eb


def test_foreign_entry_rebuilt(tmp_path):
    """Another model's entry under this model's name (same structure, other weights)."""
    a, b, ea, eb = two_cached(tmp_path, 4, 5)
    assert ea.name != eb.name  # the key covers the weights
    eb.write_bytes(ea.read_bytes())
    got = ovb.compile(b.graph, cache_dir=str(eb.parent))(FEEDS)["logits"]
    np.testing.assert_array_equal(got, fresh(b))
    assert not np.array_equal(got, fresh(a))


def test_forged_entry_rebuilt(tmp_path):
    """Another model's blob sealed for this key, with a recomputed checksum, by someone without the secret."""
    a, b, ea, eb = two_cached(tmp_path, 6, 7)
    payload, _ = verified_cache.read(str(ea), *kind_key(ea))
    os.environ["NETDSL_CACHE_SECRET"] = "cd" * 32  # the attacker's own secret
    try:
        verified_cache.write(str(eb), *kind_key(eb), bytes(payload))
    finally:
        del os.environ["NETDSL_CACHE_SECRET"]
    got = ovb.compile(b.graph, cache_dir=str(eb.parent))(FEEDS)["logits"]
    np.testing.assert_array_equal(got, fresh(b))


def test_key_covers_what_changes_results(tmp_path):
    from netdsl.backends.openvino.lower import lower
    from netdsl.backends.openvino.runtime import core as get_core
    core = get_core()
    m1, m2 = lower(cnn(8).graph), lower(cnn(8).graph)
    k = blob_cache.cache_key(core, m1, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    assert k == blob_cache.cache_key(core, m2, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    assert k != blob_cache.cache_key(core, m1, "CPU", {"INFERENCE_PRECISION_HINT": "bf16"})
    net = cnn(8)
    b = net.graph.params["fc.b"].value().copy()
    b[3] = np.nextafter(b[3], np.float32(np.inf))  # one weight, one ulp
    net.load_weights({"fc.b": b}, strict=False)
    assert k != blob_cache.cache_key(core, lower(net.graph), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    m4 = lower(cnn(8).graph)
    m4.get_ordered_ops()[-2].get_rt_info()["precise_0"] = ""  # runtime info changes compilation
    assert k != blob_cache.cache_key(core, m4, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
