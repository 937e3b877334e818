"""PyTorch checkpoints read without torch's loader and without running pickle code."""
from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest

from netdsl.errors import WeightError
from netdsl.weights import detect_format, open_checkpoint

torch = pytest.importorskip("torch", reason="torch not installed")


def _sd(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"conv.weight": torch.randn(4, 3, 3, 3, generator=g), "conv.bias": torch.randn(4, generator=g),
            "fc.weight": torch.randn(5, 6, generator=g).double(), "steps": torch.tensor(7),
            "half": torch.randn(3, generator=g).half(), "bf": torch.randn(2, 3, generator=g).bfloat16(),
            "mask": torch.tensor([True, False]), "ids": torch.arange(6, dtype=torch.int32).reshape(2, 3)}


def _check(path, sd):
    with open_checkpoint(path) as c:
        assert c.format == "pytorch"
        assert set(c.names()) == set(sd)
        for k, v in sd.items():
            got = c.read(k)
            want = v.float().numpy() if v.dtype == torch.bfloat16 else v.numpy()
            assert got.shape == tuple(v.shape), k
            np.testing.assert_array_equal(got, want, err_msg=k)


@pytest.mark.parametrize("zipfmt", [True, False], ids=["zip", "legacy"])
def test_state_dict_roundtrip(tmp_path, zipfmt):
    sd = _sd()
    p = tmp_path / "m.pth"
    torch.save(sd, p, _use_new_zipfile_serialization=zipfmt)
    assert detect_format(str(p)) == "pytorch"
    _check(p, sd)


def test_memory_mapped_zero_copy(tmp_path):
    p = tmp_path / "m.pt"
    torch.save({"w": torch.randn(64, 64)}, p)
    with open_checkpoint(p) as c:
        a = c.read("w")
        assert not a.flags.owndata and not a.flags.writeable


def test_views_and_shared_storage(tmp_path):
    base = torch.randn(6, 8)
    sd = {"t": base.t(), "row": base[2], "slice": base[1:4, 2:5], "same": base}
    for zipfmt in (True, False):
        p = tmp_path / f"v{zipfmt}.pt"
        torch.save(sd, p, _use_new_zipfile_serialization=zipfmt)
        with open_checkpoint(p) as c:
            for k, v in sd.items():
                np.testing.assert_array_equal(c.read(k), v.numpy(), err_msg=k)


def test_whole_module_inert(tmp_path):
    from tests.weights.nets import torch_cnn
    m = torch_cnn()
    p = tmp_path / "whole.pt"
    torch.save({"model": m, "epoch": 3, "optimizer": None}, p)
    with open_checkpoint(p, pickle_mode="inert") as c:
        assert set(c.names()) == set(m.state_dict())
        assert any("inert" in n for n in c.notes)
        for k, v in m.state_dict().items():
            np.testing.assert_array_equal(c.read(k), v.numpy())
    with open_checkpoint(p, key="", pickle_mode="inert") as c:  # everything, with full paths
        assert "model.conv1.weight" in c.names()
    for mode in ("auto", "strict"):  # whole modules only in the explicit inert mode, naming the class
        with pytest.raises(WeightError, match="'tests.weights.nets.TorchCNN'.*not on the allow list.*"
                                              "pickle_mode='inert'"):
            open_checkpoint(p, pickle_mode=mode)


def test_whole_module_legacy(tmp_path):
    from tests.weights.nets import torch_cnn
    m = torch_cnn()
    p = tmp_path / "whole_legacy.pt"
    torch.save(m, p, _use_new_zipfile_serialization=False)
    with open_checkpoint(p, pickle_mode="inert") as c:
        assert set(c.names()) == set(m.state_dict())
        np.testing.assert_array_equal(c.read("fc1.weight"), m.fc1.weight.detach().numpy())


def test_nested_checkpoint_and_key(tmp_path):
    sd = {"a.weight": torch.randn(2, 2)}
    p = tmp_path / "ck.pt"
    torch.save({"state_dict": sd, "epoch": 1, "opt": {"lr": 0.1}}, p)
    with open_checkpoint(p) as c:
        assert c.names() == ["a.weight"]
    with open_checkpoint(p, key="state_dict") as c:
        assert c.names() == ["a.weight"]
    with pytest.raises(WeightError, match="no entry"):
        open_checkpoint(p, key="nope")


def test_numpy_values_in_checkpoint(tmp_path):
    p = tmp_path / "np.pt"
    torch.save({"w": torch.ones(2), "best": np.float64(0.5), "arr": np.arange(4, dtype=np.float32)}, p,
               _use_new_zipfile_serialization=True)
    with open_checkpoint(p, key="") as c:
        np.testing.assert_array_equal(c.read("arr"), np.arange(4, dtype=np.float32))
        assert "w" in c.names()


@pytest.mark.parametrize("zipfmt", [True, False])
def test_numpy_arrays_of_other_byte_orders_and_complex(tmp_path, zipfmt):
    """A pickled big-endian array read as '>f4' while the index said float32 (torch tensors and npz members
    are converted); complex arrays were skipped while complex tensors are read."""
    p = tmp_path / "np.pt"
    want = {"be": np.arange(-2, 3, dtype=">f4"), "le": np.arange(3, dtype="<i8"), "c": np.arange(3) * (1 + 2j)}
    torch.save(want, p, _use_new_zipfile_serialization=zipfmt)
    with open_checkpoint(p) as c:
        assert set(c.names()) == set(want)
        for k, v in want.items():
            got = c.read(k)
            assert got.dtype.isnative and got.dtype == np.dtype(c.info(k).dtype) == v.dtype.newbyteorder("="), k
            np.testing.assert_array_equal(got, v)


@pytest.mark.parametrize("kind,what", [("sparse", "a sparse tensor .*: save tensor.to_dense"),
                                       ("quantized", "a quantized tensor .*: save tensor.dequantize"),
                                       ("meta", "a tensor on the meta device .*: it holds no data")])
@pytest.mark.parametrize("mode", ["auto", "inert"])
def test_tensors_that_are_not_dense_refused_clearly(tmp_path, kind, what, mode):
    """torch.save of a sparse, quantized or meta tensor: refused as 'not on the allow list' with advice to use
    the inert mode, where the tensor became a placeholder and went missing without a word."""
    t = {"sparse": lambda: torch.eye(3).to_sparse(), "meta": lambda: torch.empty(3, device="meta"),
         "quantized": lambda: torch.quantize_per_tensor(torch.randn(3), 0.1, 0, torch.qint8)}[kind]()
    p = tmp_path / "m.pt"
    torch.save({"w": t, "b": torch.ones(2)}, p)
    with pytest.raises(WeightError, match=f"{p}: the checkpoint holds {what}"):
        open_checkpoint(p, pickle_mode=mode)


# ---- safety -------------------------------------------------------------------------------------
class _System:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


class _Exec:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').write('pwned')",))


class _Open:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _payload_variants(tmp_path):
    for cls in (_System, _Exec, _Open):
        marker = tmp_path / f"pwned_{cls.__name__}"
        yield cls.__name__, cls(str(marker)), marker


@pytest.mark.parametrize("zipfmt", [True, False], ids=["zip", "legacy"])
@pytest.mark.parametrize("mode", ["auto", "strict", "inert"])
def test_malicious_pickle_is_refused(tmp_path, zipfmt, mode):
    for name, payload, marker in _payload_variants(tmp_path):
        p = tmp_path / f"evil_{name}.pt"
        torch.save({"w": torch.ones(2), "x": payload}, p, _use_new_zipfile_serialization=zipfmt)
        assert not marker.exists()  # torch.save itself does not run it
        with pytest.raises(WeightError) as ei:
            open_checkpoint(p, pickle_mode=mode)
        msg = str(ei.value)
        assert str(p) in msg and "refused" in msg
        assert any(g in msg for g in ("posix.system", "os.system", "builtins.exec", "io.open")), msg
        assert not marker.exists(), f"{name}: the payload ran"


def test_malicious_raw_pickle_in_zip(tmp_path):
    """A hand-made archive whose data.pkl calls subprocess: refused, never run."""
    marker = tmp_path / "pwned_sub"
    evil = (b"\x80\x02csubprocess\ncall\n(]q\x00(X\x05\x00\x00\x00touchX" + len(str(marker)).to_bytes(4, "little")
            + str(marker).encode() + b"etR.")
    p = tmp_path / "evil.pt"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("evil/data.pkl", evil)
        z.writestr("evil/version", "3\n")
    with pytest.raises(WeightError, match="subprocess.call"):
        open_checkpoint(p)
    assert not marker.exists()


@pytest.mark.parametrize("zipfmt", [True, False], ids=["zip", "legacy"])
def test_truncated_and_corrupt(tmp_path, zipfmt):
    p = tmp_path / "m.pt"
    torch.save(_sd(), p, _use_new_zipfile_serialization=zipfmt)
    data = p.read_bytes()
    for cut in (5, 20, len(data) // 3, len(data) // 2, len(data) - 10):
        q = tmp_path / f"cut{cut}.pt"
        q.write_bytes(data[:cut])
        with pytest.raises(WeightError) as ei:
            with open_checkpoint(q, format="pytorch") as c:
                for n in c.names():
                    c.read(n)
        assert str(q) in str(ei.value)


def test_storage_bounds_checked(tmp_path):
    """A tensor whose size claims more than its storage holds is refused, not read out of bounds."""
    p = tmp_path / "m.pt"
    torch.save({"w": torch.ones(4)}, p)
    z = zipfile.ZipFile(p)
    items = {n: z.read(n) for n in z.namelist()}
    pkl_name = [n for n in items if n.endswith("data.pkl")][0]
    pkl = items[pkl_name]
    # the size tuple (4,) is pickled as 'K\x04\x85': make it (100,)
    assert b"K\x04\x85" in pkl
    items[pkl_name] = pkl.replace(b"K\x04\x85", b"Kd\x85", 1)
    q = tmp_path / "bad.pt"
    with zipfile.ZipFile(q, "w") as z2:
        for n, d in items.items():
            z2.writestr(n, d)
    with pytest.raises(WeightError, match="more than its storage|runs past"):
        with open_checkpoint(q) as c:
            c.read("w")


def test_return_types_named_tuples_read(tmp_path):
    """torch.save of torch.max(x, 0) (a torch.return_types named tuple) was refused as 'not on the allow
    list': its tensors read now, named by its fields, with nothing imported or run."""
    x = torch.randn(3, 4)
    p = tmp_path / "r.pt"
    torch.save({"m": torch.max(x, 0), "s": torch.linalg.svd(torch.randn(3, 3)), "t": torch.topk(x, 2)}, p)
    ref = torch.load(p, weights_only=False)  # torch's own safe loader refuses these types
    with open_checkpoint(p) as c:
        assert c.names() == ["m.values", "m.indices", "s.U", "s.S", "s.Vh", "t.values", "t.indices"]
        for n in c.names():
            k, f = n.split(".")
            np.testing.assert_array_equal(c.read(n), getattr(ref[k], f).numpy(), err_msg=n)
    torch.save(torch.sort(x), p)
    with open_checkpoint(p) as c:
        np.testing.assert_array_equal(c.read("indices"), torch.sort(x).indices.numpy())
    torch.save(torch.sort(x), p, _use_new_zipfile_serialization=False)  # legacy: no CRC to fix up
    data = bytearray(p.read_bytes())
    at = data.index(b"torch.return_types\nsort")
    data[at + 19:at + 23] = b"sorx"  # a return type of a later torch
    p.write_bytes(bytes(data))
    with pytest.raises(WeightError, match="torch.return_types named tuple .*'torch.return_types.sorx'"):
        open_checkpoint(p, pickle_mode="inert")
