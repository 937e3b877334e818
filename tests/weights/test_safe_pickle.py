"""The safe unpickler under attack: globals, BUILD, memory and CPU bombs, torch archives built by hand."""
from __future__ import annotations

import re
import resource
import struct
import subprocess
import sys
import time
import zipfile
import zlib

import numpy as np
import pytest

from netdsl.errors import WeightError
from netdsl.weights import open_checkpoint
from netdsl.weights import pickle_globals as pg
from tests.weights.hostile import (ODICT, Build, Call, Get, Global, Member, PersId, Put, Raw, encode, member, raw_zip,
                                   storage, tensor, torch_zip)

F32 = np.arange(12, dtype="<f4")


def _open_all(path, **kw):
    with open_checkpoint(path, format="pytorch", **kw) as c:
        return {n: np.array(c.read(n)) for n in c.names()}


def _ckpt(tmp_path, obj, storages=None, name="m.pt", compress=False):
    p = tmp_path / name
    torch_zip(p, encode(obj), storages if storages is not None else {"0": F32.tobytes()}, compress)
    return p


def test_hand_made_archive_reads(tmp_path):
    p = _ckpt(tmp_path, {"w": tensor(storage("0", 12), (3, 4), (4, 1)), "t": tensor(storage("0", 12), (4, 3), (1, 4))})
    got = _open_all(p)
    np.testing.assert_array_equal(got["w"], F32.reshape(3, 4))
    np.testing.assert_array_equal(got["t"], F32.reshape(3, 4).T)


# ---- issue 8: unknown globals are refused by default, with their name --------------------------------
@pytest.mark.parametrize("glob", [("torch.fx.graph_module", "_forward_from_src"), ("torch.storage", "_load_from_bytes"),
                                  ("_posixsubprocess", "fork_exec"), ("torch.package.package_importer", "load"),
                                  ("numpy.testing", "assert_equal")])
@pytest.mark.parametrize("mode", ["auto", "strict", "inert"])
def test_code_globals_refused_in_every_mode(tmp_path, glob, mode):
    p = _ckpt(tmp_path, {"w": tensor(storage("0", 12), (12,), (1,)), "x": Call(Global(*glob), "payload")})
    with pytest.raises(WeightError, match=f"{p}.*'{glob[0]}.{glob[1]}'.*run code"):
        open_checkpoint(p, pickle_mode=mode)


def test_unknown_data_class_needs_explicit_inert(tmp_path):
    obj = {"w": tensor(storage("0", 12), (12,), (1,)), "cfg": Build(Call(Global("mypkg.config", "Config")), {"lr": 0.1})}
    p = _ckpt(tmp_path, obj)
    for mode in ("auto", "strict"):
        with pytest.raises(WeightError, match=f"{p}: refused.*'mypkg.config.Config'.*pickle_mode='inert'"):
            open_checkpoint(p, pickle_mode=mode)
    with open_checkpoint(p, pickle_mode="inert", key="") as c:
        assert c.names() == ["w"]
        assert any("mypkg.config.Config" in n for n in c.notes)


def test_known_data_records_load_in_auto(tmp_path):
    """argparse.Namespace, defaultdict, Counter, sets, complex, bytearray, NumPy scalars: data, allowed."""
    obj = {"state_dict": {"w": tensor(storage("0", 12), (12,), (1,))},
           "args": Build(Call(Global("argparse", "Namespace")), {"lr": 0.1, "epochs": 3}),
           "hist": Call(Global("collections", "defaultdict"), Global("builtins", "list")),
           "s": Call(Global("builtins", "set"), [1, 2, 3]), "c": Call(Global("builtins", "complex"), 1.0, 2.0),
           "ba": Call(Global("builtins", "bytearray"), b"abc"),
           "path": Call(Global("pathlib", "PosixPath"), "runs", "exp1")}
    p = _ckpt(tmp_path, obj)
    np.testing.assert_array_equal(_open_all(p)["w"], F32)


# ---- issue 6: BUILD never rewrites netdsl's own objects ---------------------------------------------
@pytest.mark.parametrize("target,state", [
    (Global("torch._utils", "_rebuild_tensor_v2"), (None, {"__defaults__": (1, 2)})),
    (Global("torch._utils", "_rebuild_tensor_v2"), {"__defaults__": (1, 2)}),
    (Global("torch", "float32"), (None, {"evil": 1})),
    (Global("torch", "FloatStorage"), (None, {"dtype": "int8"})),
    (Global("collections", "OrderedDict"), {"x": 1}),
    (Global("builtins", "object"), {"x": 1}),
    (Call(Global("torch", "device"), "cpu"), {"x": 1}),
])
def test_build_on_allow_listed_objects_refused(tmp_path, target, state):
    def shared_state():
        f32 = pg.ALLOWED[("torch", "float32")]
        return (pg._rebuild_tensor.__defaults__, str(f32), getattr(f32, "__dict__", None),
                pg.ALLOWED[("torch", "FloatStorage")].dtype, dict(vars(pg.ODict)))
    before = shared_state()
    p = _ckpt(tmp_path, {"w": tensor(storage("0", 12), (12,), (1,)), "x": Build(target, state)})
    for mode in ("auto", "inert"):
        with pytest.raises(WeightError, match=f"{p}.*(BUILD|refused)"):
            open_checkpoint(p, pickle_mode=mode)
    after = shared_state()
    assert before == after
    # the shared stand-ins still work for the next file
    q = _ckpt(tmp_path, {"w": tensor(storage("0", 12), (12,), (1,))}, name="ok.pt")
    np.testing.assert_array_equal(_open_all(q)["w"], F32)


def test_build_where_pickles_need_it(tmp_path):
    """OrderedDict _metadata, NumPy arrays and dtypes, placeholders of the inert mode: BUILD still works."""
    meta = Build(Call(ODICT), {"_metadata": {"": {"version": 1}}})
    arr = Build(Call(Global("numpy.core.multiarray", "_reconstruct"), Global("numpy", "ndarray"), (0,), b"b"),
                (1, (2,), Build(Call(Global("numpy", "dtype"), "f8", False, True), (3, "<", None, None, None, -1, -1,
                                                                                 0)), False, np.arange(2.).tobytes()))
    obj = {"state_dict": meta, "arr": arr, "mod": Build(Call(Global("mymodels", "Net")), {"w": tensor(
        storage("0", 12), (12,), (1,))})}
    p = _ckpt(tmp_path, obj)
    with open_checkpoint(p, key="", pickle_mode="inert") as c:
        np.testing.assert_array_equal(c.read("arr"), [0., 1.])
        np.testing.assert_array_equal(c.read("mod.w"), F32)


# ---- issue 3: memory bombs refused before allocating ----------------------------------------------
def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_bytearray_bomb(tmp_path):
    """Eight bytearray(1 << 30) calls in a 245-byte pickle used to take 8 GiB before being refused."""
    bomb = [Call(Global("builtins", "bytearray"), 1 << 30) for _ in range(8)]
    p = _ckpt(tmp_path, {"w": tensor(storage("0", 12), (12,), (1,)), "b": bomb})
    before = _peak_rss_mb()
    for mode in ("auto", "inert"):
        with pytest.raises(WeightError, match=str(p)):
            open_checkpoint(p, pickle_mode=mode)
    assert _peak_rss_mb() - before < 200


def test_bytearray8_opcode_bomb(tmp_path):
    p = _ckpt(tmp_path, Raw(b"\x96" + struct.pack("<Q", 1 << 40)))  # BYTEARRAY8 of 1 TiB, no data
    with pytest.raises(WeightError, match=f"{p}.*(truncated|budget)"):
        open_checkpoint(p)


def test_copy_bomb_through_memo(tmp_path):
    """One 1 MB string encoded 4000 times (memo references are free, copies are not): over budget."""
    big = Put("x" * (1 << 20), 0)
    calls = [Call(Global("_codecs", "encode"), Get(0), "latin1") for _ in range(4000)]
    p = _ckpt(tmp_path, [big, calls])
    t0 = time.time()
    with pytest.raises(WeightError, match=f"{p}.*budget"):
        open_checkpoint(p, memory_budget=256 << 20)
    assert time.time() - t0 < 10


def test_quadratic_call_bomb(tmp_path):
    """A 100k-element list passed (by reference) to 10k placeholder calls: charged, refused."""
    big = Put(list(range(100_000)), 0)
    calls = [Call(Global("mymodels", "Layer"), Get(0)) for _ in range(10_000)]
    p = _ckpt(tmp_path, [big, calls])
    with pytest.raises(WeightError, match=f"{p}.*budget"):
        open_checkpoint(p, pickle_mode="inert")


def test_hash_bomb_key_refused_quickly(tmp_path):
    """A dict key nested out of shared tuples would take 2**64 steps to hash."""
    ops = [Put((), 0)] + [Put((Get(i), Get(i)), i + 1) for i in range(64)]
    p = _ckpt(tmp_path, [ops, {Get(64): 1}])
    t0 = time.time()
    with pytest.raises(WeightError, match=f"{p}.*dict key"):
        open_checkpoint(p)
    assert time.time() - t0 < 10


def test_colliding_int_keys_refused(tmp_path):
    """Ints that differ by multiples of 2**61 - 1 share a hash (a dict of them takes quadratic time)."""
    p = _ckpt(tmp_path, {5 + i * ((1 << 61) - 1): 1 for i in range(1, 4)})
    with pytest.raises(WeightError, match=f"{p}.*integer dict key"):
        open_checkpoint(p)


def test_stride_zero_view_bomb(tmp_path):
    """size (10^6, 10^6) over one element: used to come back as a 10^12-element view."""
    p = _ckpt(tmp_path, {"w": tensor(storage("0", 12), (10**6, 10**6), (0, 0))})
    with pytest.raises(WeightError, match=f"{p}.*budget"):
        open_checkpoint(p)


def test_shared_storage_views_bomb(tmp_path):
    """2000 tensors each viewing the same 4 MB storage: 8 GB once materialized."""
    n = 1 << 20
    p = _ckpt(tmp_path, {f"t{i}": tensor(storage("0", n), (n,), (1,)) for i in range(2000)},
              {"0": np.zeros(n, "<f4").tobytes()})
    with pytest.raises(WeightError, match=f"{p}.*budget"):
        open_checkpoint(p)


def test_small_expanded_view_still_reads(tmp_path):
    p = _ckpt(tmp_path, {"w": tensor(storage("0", 12), (5, 3), (0, 1), offset=2)})
    np.testing.assert_array_equal(_open_all(p)["w"], np.broadcast_to(F32[2:5], (5, 3)))


@pytest.mark.parametrize("size,stride,offset,stype,numel", [
    ((13,), (1,), 0, "FloatStorage", 12),           # one element past the end
    ((4, 4), (4, 1), 0, "FloatStorage", 12),
    ((2,), (11,), 1, "FloatStorage", 12),
    ((4,), (1,), 0, "UntypedStorage", 12),           # float32 view of a 12-byte untyped storage: 16 bytes
])
def test_views_past_storage_refused(tmp_path, size, stride, offset, stype, numel):
    st = storage("0", numel, stype)
    t = Call(Global("torch._utils", "_rebuild_tensor_v3"), st, offset, size, stride, False, Call(ODICT),
             Global("torch", "float32"))
    p = _ckpt(tmp_path, {"w": t}, {"0": F32.tobytes()[:numel * (4 if stype == "FloatStorage" else 1)]})
    with pytest.raises(WeightError, match=f"{p}.*storage"):
        _open_all(p)


def test_dtype_must_be_a_torch_dtype(tmp_path):
    t = Call(Global("torch._utils", "_rebuild_tensor_v3"), storage("0", 12), 0, (12,), (1,), False, Call(ODICT), "object")
    p = _ckpt(tmp_path, {"w": t})
    with pytest.raises(WeightError, match=f"{p}.*dtype"):
        _open_all(p)


# ---- issue 7: zlib errors are netdsl errors naming the file -------------------------------------------
@pytest.mark.parametrize("member", ["data.pkl", "data/0"])
def test_corrupt_deflated_member(tmp_path, member):
    p = _ckpt(tmp_path, {"w": tensor(storage("0", 12), (12,), (1,))}, compress=True)
    data = bytearray(p.read_bytes())
    with zipfile.ZipFile(p) as z:
        zi = z.getinfo(f"archive/{member}")
    start = zi.header_offset + 30 + len(zi.filename) + len(zi.extra)
    data[start:start + zi.compress_size] = bytes([0xFF]) * zi.compress_size  # an invalid deflate block
    p.write_bytes(bytes(data))
    with pytest.raises(WeightError, match=str(p)):
        _open_all(p)


def test_bzip2_members_refused(tmp_path):
    p = tmp_path / "m.pt"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_BZIP2) as z:
        z.writestr("archive/data.pkl", encode({"w": tensor(storage("0", 12), (12,), (1,))}))
        z.writestr("archive/data/0", F32.tobytes())
    with pytest.raises(WeightError, match=f"{p}.*compression method"):
        _open_all(p)


def test_many_costly_keys_refused(tmp_path):
    """100k dict items keyed by one shared 250-value tuple: 25M hash steps; charged, refused in seconds."""
    key = Put(tuple(range(250)), 0)
    items = Raw(b"}(" + b"".join(b"j\x00\x00\x00\x00K\x01" for _ in range(100_000)) + b"u")
    p = _ckpt(tmp_path, [key, items])
    t0 = time.time()
    with pytest.raises(WeightError, match=f"{p}.*budget"):
        open_checkpoint(p)
    assert time.time() - t0 < 20


# ---- issue 14 acceptance: new hostile pickles, each read in a child under RLIMIT_AS 3 GiB and a timeout -----
from tests.limited import read_checkpoint  # noqa: E402

_W = {"w": tensor(storage("0", 12), (12,), (1,))}


def _refused(p, match, timeout=60, **options):
    got = read_checkpoint(p, "pytorch", timeout=timeout, **options)
    assert got.outcome == "error" and str(p) in got.message and re.search(match, got.message), got


def _shared_lists(depth):
    """Memo slot ``depth`` holds a list whose str() has 2**depth leaves (each level lists the one below twice)."""
    return [Put([], 0)] + [Put([Get(i), Get(i)], i + 1) for i in range(depth)]


def test_colliding_complex_keys_refused(tmp_path):
    """complex(-1000003 k, k) all hash to 0: 50000 of them as dict keys took half a minute (quadratic inserts)."""
    n = 50_000
    keys = b"".join(b"h\x00\x8a\x05" + (-1000003 * k).to_bytes(5, "little", signed=True) + b"J"
                    + struct.pack("<i", k) + b"\x86RK\x01" for k in range(1, n))
    p = _ckpt(tmp_path, [Put(Global("builtins", "complex"), 0), Raw(b"}(" + keys + b"u"), _W])
    assert p.stat().st_size < 1 << 20
    _refused(p, "one hash value", timeout=20)


@pytest.mark.parametrize("op", [b"s", b"u"])
def test_setitem_on_a_list_refused(tmp_path, op):
    """SETITEM(S) with key slice(0, 0) on a list inserts the whole value list again each time (copy bomb)."""
    big = Put(list(range(100_000)), 0)
    sl = Put(Call(Global("builtins", "slice"), 0, 0), 1)
    one = b"h\x01h\x00s" if op == b"s" else b"(h\x01h\x00u"
    p = _ckpt(tmp_path, [big, sl, Raw(b"]" + one * 20_000), _W])
    _refused(p, "on a list: refused", timeout=30)


def test_get_layout_of_nested_lists_refused(tmp_path):
    """str() of 60 levels of shared lists never ends."""
    p = _ckpt(tmp_path, [_shared_lists(60), Call(Global("torch.serialization", "_get_layout"), Get(60)), _W])
    _refused(p, "_get_layout of a list", timeout=30)


def test_storage_location_must_be_text(tmp_path):
    st = PersId(("storage", Global("torch", "FloatStorage"), "0", Get(60), 12))
    p = _ckpt(tmp_path, [_shared_lists(60), {"w": tensor(st, (12,), (1,))}])
    _refused(p, "malformed storage reference", timeout=30)


def test_bytearray_of_text_in_other_codecs_refused(tmp_path):
    """bytearray(text, 'punycode') of 20000 distinct characters takes a minute (58 kB of pickle)."""
    text = "".join(chr(0x100 + i) for i in range(20_000))
    for codec in ("punycode", "utf-32"):
        p = _ckpt(tmp_path, [Call(Global("builtins", "bytearray"), text, codec), _W], name=f"{codec}.pt")
        _refused(p, "bytearray of something other", timeout=30)
    p = _ckpt(tmp_path, [Call(Global("builtins", "bytearray"), "abc", "latin1"), _W], name="ok.pt")
    assert read_checkpoint(p, "pytorch").outcome == "ok"


def test_extension_codes_refused(tmp_path):
    """EXT1 names a global through copyreg's registry (and would fill its process-wide cache)."""
    p = _ckpt(tmp_path, [Raw(b"\x82\xf0"), _W])
    code = ("import copyreg, sys; copyreg.add_extension('mymodels', 'Net', 240)\n"
            "from netdsl.weights import open_checkpoint\n"
            "try:\n    open_checkpoint(sys.argv[1], pickle_mode='inert')\nexcept Exception as e:\n    print(e)\n"
            "print(sorted(copyreg._extension_cache.items()))")
    r = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True, timeout=60)
    assert f"{p}" in r.stdout and "extension code 240" in r.stdout and r.stdout.strip().endswith("[]"), r.stdout


def test_long_names_refused(tmp_path):
    """A 64 kB key shared through the memo along 200 nested dicts would make every tensor name 13 MB."""
    key = "k" * 65536
    obj = _W["w"]
    for _ in range(199):
        obj = {Get(0): obj}
    p = _ckpt(tmp_path, [Put(key, 0), obj])
    _refused(p, "longer than 4096 characters", timeout=30)


def test_tuple_keys_described_not_printed(tmp_path):
    """A key tuple of 200 references to one 1 MB string would be a 200 MB tensor name."""
    big = Put("x" * (1 << 20), 0)
    p = _ckpt(tmp_path, [big, {tuple(Get(0) for _ in range(200)): _W["w"]}])
    got = read_checkpoint(p, "pytorch", timeout=30)
    assert got.outcome in ("ok", "error") and got.data["max_rss_mb"] < 150, got


def _inflating_to(head: bytes, zeros_mb: int) -> bytes:
    """A raw deflate stream of ``head`` then ``zeros_mb`` MiB of zeros (1 kB per MiB: repeated flushed blocks)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    return first + block * zeros_mb + c.flush()


@pytest.mark.parametrize("where", ["data.pkl", "byteorder"])
def test_member_inflating_past_its_declared_size(tmp_path, where):
    """A 900 kB member declaring 100-odd bytes inflated 900 MiB before being cut to its declared size."""
    pkl, order = encode(_W), b"little"
    plain = pkl if where == "data.pkl" else order
    bomb = Member(f"archive/{where}", _inflating_to(plain, 900), len(plain), zlib.crc32(plain), 8)
    p = tmp_path / "m.pt"
    raw_zip(p, [bomb if where == "data.pkl" else member("archive/data.pkl", pkl),
                bomb if where == "byteorder" else member("archive/byteorder", order),
                member("archive/data/0", F32.tobytes())])
    assert p.stat().st_size < 1 << 20
    got = read_checkpoint(p, "pytorch")
    assert got.outcome == "ok" and got.data["arrays"]["w"] == F32.tolist() and got.data["max_rss_mb"] < 300, got


def test_legacy_storage_keys_must_be_names(tmp_path):
    """A legacy file's storage key list holding 60 levels of shared lists: str() of it never ends."""
    from netdsl.weights.pytorch import LEGACY_MAGIC
    memo = Raw(b"(" + encode(_shared_lists(60))[2:-1] + b"1")  # fill the memo, leave nothing on the stack
    p = tmp_path / "legacy.pt"
    p.write_bytes(encode(LEGACY_MAGIC) + encode(1001) + encode({"little_endian": True}) + encode(_W)
                  + encode([memo, Get(60)]) + struct.pack("<q", 12) + F32.tobytes())
    _refused(p, "storage key .* is not a name", timeout=30)


def test_tensor_names_are_charged(tmp_path):
    """20000 references to one tensor under a 4000-character key: 80 MB of names from a 200 kB file."""
    t = Put(_W["w"], 1)
    items = Raw(b"}(" + b"".join(b"J" + struct.pack("<i", i) + b"h\x01" for i in range(20_000)) + b"u")
    p = _ckpt(tmp_path, [Put("k" * 4000, 0), t, {Get(0): items}])
    _refused(p, "names of its tensors.*budget", memory_budget=32 << 20)


@pytest.mark.parametrize("obj", [{"a.b": _W["w"], "a": {"b": tensor(storage("0", 12), (3, 4), (4, 1))}},
                                 {1: _W["w"], "1": tensor(storage("0", 12), (3, 4), (4, 1))}],
                         ids=["dotted-and-nested", "int-and-str-key"])
def test_two_tensors_under_one_name_refused(tmp_path, obj):
    """Two different tensors whose names join to the same text: one of them was dropped without a word."""
    with pytest.raises(WeightError, match="two different tensors named '(a.b|1)'"):
        _open_all(_ckpt(tmp_path, obj))


def test_one_tensor_under_two_names_still_reads(tmp_path):
    t = Put(_W["w"], 0)
    got = _open_all(_ckpt(tmp_path, {"a": t, "b": Get(0)}))
    assert set(got) == {"a", "b"} and (got["a"] == F32).all() and (got["b"] == F32).all()


@pytest.mark.parametrize("twice", ["archive/data.pkl", "archive/data/0"])
def test_zip_members_named_twice_refused(tmp_path, twice):
    """Which copy of a member named twice is read differs between zip readers: the first data.pkl here runs
    os.system for a reader that takes the first copy, the second is harmless."""
    evil = encode({"w": Call(Global("os", "system"), "echo hi")})
    members = {"archive/data.pkl": [evil, encode(_W)], "archive/data/0": [F32[:4].tobytes(), F32.tobytes()]}
    p = tmp_path / "m.pt"
    raw_zip(p, [member(twice, b) for b in members[twice]]
            + [member(n, v[-1]) for n, v in members.items() if n != twice])
    with pytest.raises(WeightError, match=f"two members named '{twice}'"):
        _open_all(p)


def test_byteorder_record_must_say_little_or_big(tmp_path):
    p = tmp_path / "m.pt"
    raw_zip(p, [member("archive/data.pkl", encode(_W)), member("archive/byteorder", b"middle"),
                member("archive/data/0", F32.tobytes())])
    with pytest.raises(WeightError, match="byteorder record says b'middle'"):
        _open_all(p)


@pytest.mark.parametrize("size,stride", [((1, 12), (1 << 100, 1)), ((12,), (1 << 63,))])
def test_strides_beyond_int64_refused_when_opened(tmp_path, size, stride):
    """A stride torch cannot hold (int64), on a dimension of size 1: the tensor addresses its storage, and
    failed only when read, with NumPy's OverflowError."""
    p = _ckpt(tmp_path, {"w": tensor(storage("0", 12), size, stride)})
    with pytest.raises(WeightError, match="invalid size"):
        open_checkpoint(p, format="pytorch")


def test_ordered_dict_state_cannot_shadow_its_methods(tmp_path):
    """BUILD of {'items': ...} on an OrderedDict set an instance attribute that hid its items() method: its
    tensors disappeared from the listing (or the reader failed with 'int is not callable')."""
    od = Build(Call(ODICT, [("w", _W["w"])]), {"items": Global("collections", "OrderedDict"), "keys": 1,
                                                "_metadata": {}})
    assert set(_open_all(_ckpt(tmp_path, od))) == {"w"}


def test_control_characters_shown_escaped(tmp_path):
    """Names from the file reach the terminal: a newline or an escape sequence in them must not."""
    p = _ckpt(tmp_path, {"a\x1b[2J\nb": _W["w"]})
    with pytest.raises(WeightError, match=re.escape(r"'a\x1b[2J\nb' holds control characters")):
        _open_all(p)
    p = _ckpt(tmp_path, {"w": Call(Global("os\x1b[2J", "system"), "x")})
    with pytest.raises(WeightError) as ei:
        _open_all(p)
    assert "\x1b" not in str(ei.value) and r"'os\x1b[2J.system'" in str(ei.value)


@pytest.mark.parametrize("body", [b"]" * 300_000, b"}" * 300_000, b"(" * 300_000, b"N" + b"\x94" * 300_000,
                                  b"N" + b"\x85" * 300_000, b"\x8f" * 100_000],
                         ids=["empty lists", "empty dicts", "marks", "memo entries", "nested 1-tuples", "empty sets"])
def test_small_object_bombs_charged(tmp_path, body):
    """One-byte opcodes that each keep a new object were not charged: 20 MB of ']' made 1.4 GB of empty lists
    (72 times the file, over twice the budget)."""
    p = tmp_path / "m.pt"
    torch_zip(p, b"\x80\x04" + body + b"N.", {})
    with pytest.raises(WeightError, match="the objects the pickle builds .* over the budget"):
        open_checkpoint(p, format="pytorch", memory_budget=8 << 20)


def test_many_tensors_within_the_default_budget(tmp_path):
    torch = pytest.importorskip("torch", reason="torch not installed")
    p = tmp_path / "m.pt"
    torch.save({f"layer{i}.weight": torch.full((2,), float(i)) for i in range(20_000)}, p)
    with open_checkpoint(p) as c:
        assert len(c) == 20_000 and c.read("layer7.weight").tolist() == [7.0, 7.0]
        assert c.budget.used < 100 << 20
