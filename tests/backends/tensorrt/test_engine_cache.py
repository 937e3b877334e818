"""The engine cache serves a plan only when the entry's key, size and HMAC match; an empty, corrupt,
truncated, headerless, foreign, swapped or re-checksummed entry, a symlink or a FIFO is rebuilt (never
loaded) and replaced."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil

import pytest

pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed (pip install tensorrt-rtx)")

from netdsl.backends import verified_cache  # noqa: E402
from netdsl.backends.tensorrt import builder as B, engine_cache  # noqa: E402

from ._nets import small  # noqa: E402

DYN = {"N": (1, 2, 4)}


def _build(net, tmp_path, **kw):
    return B.build(net.graph, cache_path=str(tmp_path), dynamic=DYN, progress=False, **kw)


@pytest.fixture()
def fresh(tmp_path):
    """(first build, its cache entry file, the plan a build without the cache makes)."""
    first = _build(small(), tmp_path)
    entry = tmp_path / first.key[:2] / (first.key + ".engine")
    return first, entry, B.build(small().graph, cache=False, dynamic=DYN, progress=False).plan


def test_hit_serves_the_verified_entry(tmp_path, fresh):
    first, entry, plan = fresh
    assert not first.cached and entry.exists() and first.plan == plan
    again = _build(small(), tmp_path)
    assert again.cached and again.plan == plan and again.key == first.key
    other = B.build(small().graph, cache_path=str(tmp_path), dynamic={"N": (1, 2, 8)}, progress=False)
    assert not other.cached and other.key != first.key  # profiles are in the key


def _bad_entries(entry, tmp_path):
    good = entry.read_bytes()
    foreign = _build(small("other", seed=1), tmp_path)  # another model's entry
    foreign_entry = tmp_path / foreign.key[:2] / (foreign.key + ".engine")
    payload_flip = bytearray(good)
    payload_flip[-100] ^= 0x40
    m = verified_cache.MAGIC
    n = int.from_bytes(good[len(m):len(m) + 4], "little")
    head = json.loads(good[len(m) + 4:len(m) + 4 + n])
    other_plan = foreign_entry.read_bytes()[len(m) + 4 + int.from_bytes(foreign_entry.read_bytes()[len(m):len(m) + 4],
                                                                       "little"):]
    # whoever can write the directory can recompute a plain checksum: another plan under this key
    rehead = json.dumps({**head, "size": len(other_plan), "sha256": hashlib.sha256(other_plan).hexdigest()}).encode()
    return {
        "empty": b"",
        "truncated": good[:len(good) // 2],
        "corrupted payload": bytes(payload_flip),
        "headerless plan": good[len(m) + 4 + n:],
        "foreign entry": foreign_entry.read_bytes(),
        "another plan, checksum recomputed": m + len(rehead).to_bytes(4, "little") + rehead + other_plan,
    }


@pytest.mark.parametrize("kind", ["empty", "truncated", "corrupted payload", "headerless plan", "foreign entry",
                                  "another plan, checksum recomputed", "symlink", "fifo"])
def test_bad_entry_is_rebuilt_never_served(tmp_path, fresh, caplog, kind):
    first, entry, plan = fresh
    if kind == "symlink":  # a link to a valid entry kept elsewhere (it could point anywhere)
        elsewhere = tmp_path / "elsewhere.engine"
        elsewhere.write_bytes(entry.read_bytes())
        entry.unlink()
        entry.symlink_to(elsewhere)
    elif kind == "fifo":  # reading it would block for ever
        entry.unlink()
        os.mkfifo(entry)
    else:
        entry.write_bytes(_bad_entries(entry, tmp_path)[kind])
    with caplog.at_level(logging.WARNING):
        res = _build(small(), tmp_path)
    assert not res.cached and res.plan == plan, f"{kind} entry was served"
    assert ("is unusable" in caplog.text or "is unreadable" in caplog.text or "not a regular file" in caplog.text) \
        and str(entry) in caplog.text
    assert engine_cache.load(first.key, str(tmp_path))[0] == plan, "the entry was replaced by a good one"


def test_swapped_entries_are_not_served(tmp_path, fresh):
    """Two models' entries exchanged on disk: each build notices the other's key and rebuilds."""
    first, entry, plan = fresh
    other = _build(small("other", seed=1), tmp_path)
    other_entry = tmp_path / other.key[:2] / (other.key + ".engine")
    a, b = entry.read_bytes(), other_entry.read_bytes()
    entry.write_bytes(b)
    other_entry.write_bytes(a)
    res = _build(small(), tmp_path)
    res2 = _build(small("other", seed=1), tmp_path)
    assert not res.cached and res.plan == plan
    assert not res2.cached and res2.plan == other.plan


def test_weights_are_in_the_key(tmp_path, fresh):
    first, _, _ = fresh
    res = _build(small(seed=5), tmp_path)  # same structure, other weights
    assert not res.cached and res.key != first.key


def test_unwritable_cache_still_builds(tmp_path, caplog):
    ro = tmp_path / "ro"
    ro.write_text("a file where the cache directory should be")
    with caplog.at_level(logging.WARNING, logger="netdsl.tensorrt"):
        res = B.build(small().graph, cache_path=str(ro), progress=False)
    assert res.plan and "could not write the engine cache entry" in caplog.text
    shutil.rmtree(tmp_path, ignore_errors=True)
