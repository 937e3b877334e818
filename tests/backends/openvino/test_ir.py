"""IR pairs written by netdsl carry a hash: another model's .bin, or a changed file of the pair, is refused."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from netdsl.errors import NetdslError

pytest.importorskip("openvino", reason="openvino is not installed (pip install openvino)")
from netdsl.backends import openvino as ovb  # noqa: E402
from tests.backends.openvino.test_blob_cache import FEEDS, cnn  # noqa: E402


@pytest.fixture
def pair(tmp_path):
    a, b = cnn(21), cnn(22)  # same structure, other weights
    pa = ovb.build(a.graph, tmp_path / "a" / "m.xml")
    pb = ovb.build(b.graph, tmp_path / "b" / "m.xml")
    return a, b, pa, pb


def test_ir_carries_hash_and_loads(pair):
    a, _, pa, _ = pair
    xml = open(pa).read()
    assert re.search(r'<ir_sha256 value="[0-9a-f]{64}"', xml) and "0" * 64 not in xml
    np.testing.assert_array_equal(ovb.load_ir(pa)(FEEDS)["logits"], ovb.compile(a.graph)(FEEDS)["logits"])


def test_bin_of_another_model_refused(pair):
    a, b, pa, pb = pair
    shutil.copy(pb[:-4] + ".bin", pa[:-4] + ".bin")
    with pytest.raises(NetdslError, match=f"{pa}: the .xml and m.bin do not match the hash"):
        ovb.load_ir(pa)
    got = ovb.load_ir(pa, verify=False)(FEEDS)["logits"]  # what the check prevents: b's weights in a's model
    np.testing.assert_array_equal(got, ovb.compile(b.graph)(FEEDS)["logits"])


@pytest.mark.parametrize("which", ["bin", "xml"])
def test_changed_file_refused(pair, which):
    _, _, pa, _ = pair
    path = pa[:-4] + ".bin" if which == "bin" else pa
    data = bytearray(open(path, "rb").read())
    if which == "bin":
        data[len(data) // 2] ^= 0x01
    else:
        data[:] = bytes(data).replace(b'strides="1, 1"', b'strides="2, 2"', 1)
    assert bytes(data) != open(path, "rb").read()
    open(path, "wb").write(bytes(data))
    with pytest.raises(NetdslError, match="do not match the hash"):
        ovb.load_ir(pa)


def test_ir_written_elsewhere_loads(tmp_path):
    import openvino as ov
    net = cnn(23)
    p = str(tmp_path / "plain.xml")
    ov.save_model(ovb.to_ov_model(net.graph), p, compress_to_fp16=False)  # no netdsl hash
    np.testing.assert_array_equal(ovb.load_ir(p)(FEEDS)["logits"], ovb.compile(net.graph)(FEEDS)["logits"])
