"""Verified cache entries: key, size and HMAC checked; forged, foreign, truncated and empty entries refused."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from netdsl.backends import verified_cache as vc


@pytest.fixture(autouse=True)
def _secret(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("NETDSL_CACHE_SECRET", raising=False)
    monkeypatch.setattr(vc, "_secret", None)


def test_round_trip_and_secret_file(tmp_path):
    p = vc.write(str(tmp_path / "c" / "e.bin"), "kind", "k1", b"payload bytes", {"device": "CPU"})
    payload, meta = vc.read(p, "kind", "k1")
    assert bytes(payload) == b"payload bytes" and meta == {"device": "CPU"}
    st = os.stat(vc.secret_path())
    assert st.st_mode & 0o777 == 0o600 and st.st_size == 32
    assert not vc.secret_path().startswith(str(tmp_path / "c") + os.sep)  # never inside a cache directory


def _bad(tmp_path, data):
    p = tmp_path / "bad.bin"
    p.write_bytes(data)
    return vc.read(str(p), "kind", "k1")


def test_unusable_entries_are_not_served(tmp_path, caplog):
    good = tmp_path / "good.bin"
    vc.write(str(good), "kind", "k1", b"A" * 1000)
    data = good.read_bytes()
    flipped = bytearray(data)
    flipped[-10] ^= 1
    assert _bad(tmp_path, b"") is None
    assert _bad(tmp_path, b"\x00" * 100) is None
    assert _bad(tmp_path, data[:-1]) is None                       # truncated
    assert _bad(tmp_path, bytes(flipped)) is None                  # corrupted payload
    assert vc.read(str(good), "kind", "k2") is None                 # another key's entry
    assert vc.read(str(good), "other-kind", "k1") is None
    assert "HMAC" in caplog.text and "another key" in caplog.text and "truncated" in caplog.text


def test_forged_entry_with_recomputed_checksum_refused(tmp_path, monkeypatch):
    """Whoever can write the cache directory can recompute a checksum, not the HMAC."""
    p = tmp_path / "e.bin"
    vc.write(str(p), "kind", "k1", b"GOOD")
    data = p.read_bytes()
    n = int.from_bytes(data[len(vc.MAGIC):len(vc.MAGIC) + 4], "little")
    head = json.loads(data[len(vc.MAGIC) + 4:len(vc.MAGIC) + 4 + n])
    evil = b"EVIL"
    head.update(size=len(evil), sha256=hashlib.sha256(evil).hexdigest(),
                hmac=hashlib.sha256(b"k1" + evil).hexdigest())
    h = json.dumps(head).encode()
    p.write_bytes(vc.MAGIC + len(h).to_bytes(4, "little") + h + evil)
    assert vc.read(str(p), "kind", "k1") is None
    # sealed with another secret (another user's entry copied in): refused as well
    monkeypatch.setenv("NETDSL_CACHE_SECRET", "ab" * 32)
    vc.write(str(p), "kind", "k1", evil)
    monkeypatch.delenv("NETDSL_CACHE_SECRET")
    assert vc.read(str(p), "kind", "k1") is None



def test_large_payload_of_many_pieces(tmp_path, monkeypatch):
    """Payloads of many hash pieces (hashed in parallel): a byte changed in any piece is refused."""
    monkeypatch.setattr(vc, "_CHUNK", 1000)
    data = os.urandom(10_500)
    p = vc.write(str(tmp_path / "big.bin"), "kind", "k1", data)
    payload, _ = vc.read(p, "kind", "k1")
    assert bytes(payload) == data
    raw = bytearray(open(p, "rb").read())
    for where in (len(raw) - 10_500 + 5, len(raw) - 10_500 + 4321, len(raw) - 1):
        bad = bytearray(raw)
        bad[where] ^= 0x10
        assert _bad(tmp_path, bytes(bad)) is None


def _plant_secret(data, mode=0o600):
    path = vc.secret_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize("mode", [0o644, 0o620, 0o666])
def test_secret_others_may_read_or_write_is_not_used(mode, caplog):
    """Whoever can read the secret can forge entries; whoever can write it can choose it."""
    known = bytes(range(32))
    _plant_secret(known, mode)
    assert vc.secret() != known
    assert "others may read or write it" in caplog.text


def test_secret_symlink_is_not_followed(tmp_path, caplog):
    planted = tmp_path / "planted"
    planted.write_bytes(bytes(range(32)))
    os.chmod(planted, 0o600)
    os.makedirs(os.path.dirname(vc.secret_path()))
    os.symlink(planted, vc.secret_path())
    assert vc.secret() != bytes(range(32))
    assert "cannot read the cache secret" in caplog.text


def test_private_secret_is_used():
    _plant_secret(bytes(range(40)))
    assert vc.secret() == bytes(range(40))


def test_entries_that_are_not_regular_files_are_not_read(tmp_path):
    """A FIFO in the cache directory blocked the reader for ever; a symlink may point anywhere."""
    from tests.limited import run_limited
    good = tmp_path / "good.bin"
    vc.write(str(good), "kind", "k1", b"payload")
    os.symlink(good, tmp_path / "link.bin")
    os.mkfifo(tmp_path / "fifo.bin")
    code = ("import json, sys\nfrom netdsl.backends import verified_cache as vc\n"
            "print(json.dumps({'outcome': 'ok', 'got': [vc.read(p, 'kind', 'k1') is None for p in sys.argv[1:]]}))")
    got = run_limited(code, str(tmp_path / "link.bin"), str(tmp_path / "fifo.bin"), timeout=30,
                      env={"NETDSL_CACHE_SECRET": vc.secret().hex()})
    assert got.outcome == "ok" and got.data["got"] == [True, True], got
