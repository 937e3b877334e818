"""HDF5 files that reach outside themselves or inflate without bound: refused, through .h5 and .keras."""
from __future__ import annotations

import os
import resource
import zipfile
import zlib

import numpy as np
import pytest

from netdsl.errors import WeightError
from netdsl.weights import open_checkpoint

h5py = pytest.importorskip("h5py")

SECRET = b"TOP-SECRET-BYTES" * 64


def _keras2_with(f, make):
    """Keras 2 layout whose one weight is made by ``make(group, name)``."""
    f.attrs["layer_names"] = [b"dense"]
    g = f.create_group("dense")
    g.attrs["weight_names"] = [b"kernel:0"]
    make(g, "kernel:0")


def _as_keras_archive(h5_path, out, compress=False):
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
        z.writestr("config.json", "{}")
        z.writestr("metadata.json", "{}")
        z.write(h5_path, "model.weights.h5")


def _assert_refused(path, what):
    with pytest.raises(WeightError) as ei:
        with open_checkpoint(path) as c:
            for n in c.names():
                assert SECRET[:16] not in np.asarray(c.read(n)).tobytes()
    assert str(path) in str(ei.value) and what in str(ei.value), str(ei.value)


@pytest.fixture
def secret(tmp_path):
    p = tmp_path / "outside" / "secret.txt"
    p.parent.mkdir()
    p.write_bytes(SECRET)
    return p


def _external_storage(secret):
    return lambda g, n: g.create_dataset(n, shape=(64,), dtype="f4", external=[(str(secret), 0, 256)])


def _virtual(tmp_path):
    src = tmp_path / "outside" / "src.h5"
    with h5py.File(src, "w") as f:
        f["d"] = np.frombuffer(SECRET[:256], "f4")

    def make(g, n):
        lay = h5py.VirtualLayout(shape=(64,), dtype="f4")
        lay[:] = h5py.VirtualSource(str(src), "d", shape=(64,))
        g.create_virtual_dataset(n, lay)
    return make


def _external_link(tmp_path):
    src = tmp_path / "outside" / "src.h5"
    with h5py.File(src, "w") as f:
        f["dense/kernel:0"] = np.frombuffer(SECRET[:256], "f4")  # same path as here: used to be mapped from here
    return lambda g, n: g.__setitem__(n, h5py.ExternalLink(str(src), "/dense/kernel:0"))


def _soft_to_external(tmp_path):
    src = tmp_path / "outside" / "src.h5"
    with h5py.File(src, "w") as f:
        f["x"] = np.frombuffer(SECRET[:256], "f4")

    def make(g, n):
        g.file["ext"] = h5py.ExternalLink(str(src), "/")
        g[n] = h5py.SoftLink("/ext/x")
    return make


@pytest.mark.parametrize("kind,what", [("external_storage", "external files"), ("virtual", "virtual dataset"),
                                       ("external_link", "external link"), ("soft_to_external", "external link")])
@pytest.mark.parametrize("container", ["generic", "keras2", "keras", "keras-deflated"])
def test_outside_bytes_never_read(tmp_path, secret, kind, what, container):
    make = {"external_storage": _external_storage(secret), "virtual": _virtual(tmp_path) if kind == "virtual" else None,
            "external_link": _external_link(tmp_path) if kind == "external_link" else None,
            "soft_to_external": _soft_to_external(tmp_path) if kind == "soft_to_external" else None}[kind]
    p = tmp_path / "w.h5"
    with h5py.File(p, "w") as f:
        if container == "generic":
            make(f, "w")
            f["ok"] = np.ones(3, "f4")
        else:
            _keras2_with(f, make)
    if container.startswith("keras") and container != "keras2":
        q = tmp_path / "m.keras"
        _as_keras_archive(p, q, compress=container == "keras-deflated")
        p = q
    if container == "generic" and kind in ("external_link", "soft_to_external"):
        # the generic layout lists datasets without following links: the link is skipped or refused
        try:
            with open_checkpoint(p) as c:
                assert "w" not in c.names() and all(SECRET[:16] not in c.read(n).tobytes() for n in c.names())
        except WeightError as e:
            assert str(p) in str(e) and what in str(e), str(e)
        return
    _assert_refused(p, what)


def test_filter_plugin_refused(tmp_path):
    p = tmp_path / "f.h5"
    with h5py.File(p, "w") as f:
        ds = f.create_dataset("w", shape=(16,), chunks=(16,), dtype="f4", compression=32013,  # an unknown plugin id
                              allow_unknown_filter=True)
        ds.id.write_direct_chunk((0,), np.ones(16, "f4").tobytes())
    _assert_refused(p, "filter 32013")


def _chunk_bomb(path, mib):
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("w", shape=(1000,), chunks=(1000,), dtype="f4", compression="gzip")
        ds.id.write_direct_chunk((0,), zlib.compress(b"\0" * (mib << 20), 9))


def test_deflate_chunk_bomb(tmp_path):
    """A 4000-byte dataset whose one chunk inflates to 256 MiB (the HDF5 library would allocate it all)."""
    p = tmp_path / "bomb.h5"
    _chunk_bomb(p, 256)
    assert os.path.getsize(p) < 300_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _assert_refused(p, "inflate")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 << 10  # KiB


def test_keras_member_inflate_bomb(tmp_path):
    """A deflated model.weights.h5 member that inflates past the size its zip entry declares."""
    p = tmp_path / "w.h5"
    with h5py.File(p, "w") as f:
        f["w"] = np.ones(4, "f4")
    q = tmp_path / "m.keras"
    _as_keras_archive(p, q, compress=True)
    data = bytearray(q.read_bytes())
    with zipfile.ZipFile(q) as z:
        zi = z.getinfo("model.weights.h5")
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = bomb.compress(p.read_bytes() + b"\0" * (64 << 20)) + bomb.flush()
    start = zi.header_offset + 30 + len(zi.filename) + len(zi.extra)
    data[start:start + zi.compress_size] = stream[:zi.compress_size]  # same length: the entry stays consistent
    q.write_bytes(bytes(data))
    with pytest.raises(WeightError, match=str(q)):
        open_checkpoint(q)


def test_fill_value_datasets_total_budget(tmp_path):
    """64 chunked datasets of 256 MiB that were never written (all fill value): a tiny file, 16 GiB to read."""
    p = tmp_path / "fill.h5"
    with h5py.File(p, "w") as f:
        for i in range(64):
            f.create_dataset(f"w{i}", shape=(64 << 20,), chunks=(1 << 20,), dtype="f4", fillvalue=1.0)
    assert os.path.getsize(p) < 100_000
    _assert_refused(p, "budget")


def test_deflated_datasets_read_exactly(tmp_path, rng):
    """gzip + shuffle + fletcher32, edge chunks and missing chunks (fill value): decoded here, equal to h5py."""
    a = rng.standard_normal((37, 11)).astype(np.float32)
    b = rng.integers(-1000, 1000, (50,)).astype(">i4")
    p = tmp_path / "z.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("a", data=a, chunks=(8, 4), compression="gzip", shuffle=True, fletcher32=True)
        f.create_dataset("b", data=b, chunks=(16,), compression="gzip", compression_opts=1)
        c = f.create_dataset("c", shape=(40,), chunks=(10,), dtype="f8", compression="gzip", fillvalue=-3.5)
        c[10:20] = np.arange(10.0)
    with open_checkpoint(p) as ck, h5py.File(p) as ref:
        for n in ("a", "b", "c"):
            np.testing.assert_array_equal(ck.read(n), ref[n][()], err_msg=n)
        assert ck.read("c")[0] == -3.5


def test_huge_chunks_and_lzf_buffers_refused(tmp_path):
    """A 10-element dataset with 1 GiB chunks, and an LZF filter asking for a 3 GiB buffer."""
    p = tmp_path / "chunks.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("w", shape=(10,), maxshape=(None,), chunks=(1 << 28,), dtype="f4")
    _assert_refused(p, "budget")
    q = tmp_path / "lzf.h5"
    with h5py.File(q, "w") as f:
        f.create_dataset("w", data=np.arange(100, dtype="f4"), chunks=(100,), compression="lzf")
    data = q.read_bytes()
    values = np.array([4, 261, 400], "<u4").tobytes()  # the lzf filter's client values, 400 = chunk bytes
    assert data.count(values) == 1
    q.write_bytes(data.replace(values, np.array([4, 261, 3 << 30], "<u4").tobytes()))
    _assert_refused(q, "LZF buffer size")


def test_probe_child_memory_is_limited(tmp_path):
    """A 12 kB .keras archive (a fuzzed Keras seed: 12 bytes inserted, one changed) made the HDF5 library
    allocate 1.1 GB in the forked probe, beyond the memory budget (the library allocates, not Python). The
    probe may now map at most the budget more than it had: the allocation fails and the file is refused."""
    import subprocess
    import sys

    from tests.limited import ROOT
    from tests.weights.fuzzing import load_targets, write_seeds
    write_seeds(str(tmp_path))
    seed = bytearray(load_targets(str(tmp_path))["keras-member"].seeds[0])
    data = seed[:6267] + b"F,{\x9e\x9aLbP\xbf\x90\xca\xb6" + seed[6267:]
    data[6526] = 0xFF
    p = tmp_path / "m.keras"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("config.json", "{}")
        z.writestr("model.weights.h5", bytes(data))
    code = ("import resource, sys; from netdsl.errors import WeightError; from netdsl.weights import open_checkpoint\n"
            "try:\n    open_checkpoint(sys.argv[1], memory_budget=256 << 20).close()\nexcept WeightError:\n    pass\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    r = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": ROOT})
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(r.stdout.split()[-1]) < 500 << 10, r.stdout  # KiB: the probe's peak RSS


def test_probe_memory_limit_helper():
    """limit_memory(n): at most n bytes more can be mapped (checked in a subprocess)."""
    import subprocess
    import sys

    from tests.limited import ROOT
    code = ("import numpy as np; from netdsl.weights.hdf5 import limit_memory; limit_memory(64 << 20)\n"
            "try:\n    np.ones(256 << 20, np.uint8)\n    print('allocated')\nexcept MemoryError:\n    print('refused')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": ROOT})
    assert r.stdout.strip() == "refused", r.stdout + r.stderr[-2000:]


@pytest.mark.parametrize("how", ["scaleoffset", "nbit"])
def test_nbit_and_scaleoffset_refused(tmp_path, rng, how):
    """The library's n-bit and scale-offset decoders hold known security bugs (Keras never writes them):
    such datasets were decoded in the main process; now refused, naming the dataset and the file."""
    p = tmp_path / f"{how}.h5"
    with h5py.File(p, "w") as f:
        if how == "scaleoffset":
            f.create_dataset("w", data=rng.standard_normal(64).astype("f4"), chunks=(16,), scaleoffset=3)
        else:
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_chunk((16,))
            dcpl.set_filter(h5py.h5z.FILTER_NBIT)
            sid = h5py.h5s.create_simple((64,))
            h5py.h5d.create(f.id, b"w", h5py.h5t.STD_I32LE, sid, dcpl=dcpl).write(h5py.h5s.ALL, h5py.h5s.ALL,
                                                                  np.arange(64, dtype="<i4"))
    _assert_refused(p, "dataset /w")
    _assert_refused(p, "n-bit" if how == "nbit" else "scale-offset")


@pytest.mark.parametrize("opts", [{"compression": "lzf"}, {"compression": "lzf", "shuffle": True},
                                  {"shuffle": True}, {"shuffle": True, "fletcher32": True}])
def test_lzf_and_shuffle_decoded_here(tmp_path, rng, opts):
    """LZF and shuffle-only datasets were decoded by the HDF5 library in the main process; netdsl decodes
    them itself now (edge chunks, missing chunks, compressible and incompressible data), equal to h5py."""
    from netdsl.weights.hdf5_guard import read_filtered
    a = rng.standard_normal((37, 11)).astype(np.float32)
    b = np.repeat(rng.integers(-9, 9, 30), 20).astype(">i4")  # long runs: overlapping back references
    p = tmp_path / "f.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("a", data=a, chunks=(8, 4), **opts)
        f.create_dataset("b", data=b, chunks=(256,), **opts)
        c = f.create_dataset("c", shape=(40,), chunks=(10,), dtype="f8", fillvalue=-3.5, **opts)
        c[10:20] = rng.standard_normal(10)
    with open_checkpoint(p) as ck, h5py.File(p) as ref:
        for n in ("a", "b", "c"):
            np.testing.assert_array_equal(read_filtered(ref[n], os.path.getsize(p), str(p)), ref[n][()], err_msg=n)
            np.testing.assert_array_equal(ck.read(n), ref[n][()], err_msg=n)


def test_corrupt_lzf_chunk_refused(tmp_path):
    """An LZF back reference pointing before the chunk's start: a clear error, not the library's decoder."""
    p = tmp_path / "lzf.h5"
    data = np.zeros(400, "u1")
    with h5py.File(p, "w") as f:
        f.create_dataset("w", data=data, chunks=(400,), compression="lzf")
        off = f["w"].id.get_chunk_info(0).byte_offset
    raw = bytearray(p.read_bytes())
    raw[off] = 0xE0  # a back reference as the first token
    p.write_bytes(bytes(raw))
    _assert_refused(p, "corrupt LZF data")


@pytest.mark.parametrize("opts", [{}, {"compression": "lzf"}, {"compression": "gzip", "shuffle": True}])
def test_fletcher32_checksum_verified(tmp_path, rng, opts):
    """fletcher32 chunks had their checksum dropped unread: a flipped data byte read as a wrong value where
    h5py refuses the chunk. Intact chunks of many lengths (odd ones from LZF, > 360 words) read equal to
    h5py; a changed byte in the data or in the checksum is refused naming the dataset and the file."""
    p = tmp_path / "f32.h5"
    with h5py.File(p, "w") as f:
        for n, (dt, shape, chunks) in enumerate([("f4", (1000,), (300,)), ("u1", (37,), (11,)), (">f8", (5, 3), (2, 2)),
                                                 ("i1", (2001,), (2001,)), ("?", (9,), (4,))]):
            a = rng.integers(0, 2, shape) if dt == "?" else rng.standard_normal(shape) * 50
            f.create_dataset(f"d{n}", data=np.repeat(a.astype(dt).ravel()[:1], a.size).reshape(shape) if n == 3
                             else a.astype(dt), chunks=chunks, fletcher32=True, **opts)
        info = f["d0"].id.get_chunk_info(1)
    with open_checkpoint(p) as ck, h5py.File(p) as ref:
        for n in ref:
            np.testing.assert_array_equal(ck.read(n), ref[n][()], err_msg=n)
    raw = p.read_bytes()
    for at in (info.byte_offset + 5, info.byte_offset + info.size - 2):  # a data byte; a checksum byte
        bad = bytearray(raw)
        bad[at] ^= 0x10
        p.write_bytes(bytes(bad))
        with pytest.raises(WeightError, match="fletcher32") as ei:
            with open_checkpoint(p) as ck:
                ck.read("d0")
        assert str(p) in str(ei.value) and "/d0" in str(ei.value), str(ei.value)
