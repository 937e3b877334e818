"""tensorrtx .wts: hex and decimal-float variants, our writer, binding (flat tensors reshape)."""
from __future__ import annotations


import numpy as np
import pytest

from netdsl.errors import WeightError
from netdsl.weights import detect_format, open_checkpoint, write_wts

from .test_wts_tensorrtx import gen_wts


def test_tensorrtx_hex(tmp_path, rng):
    t = {"conv1.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "fc.bias": np.array([0, -1.5, 2e-8],
                                                                                                  np.float32)}
    p = tmp_path / "m.txt"
    gen_wts(t, p)
    assert detect_format(str(p)) == "wts"
    with open_checkpoint(p) as c:
        assert c.names() == list(t)
        for k, v in t.items():
            np.testing.assert_array_equal(c.read(k), v.ravel())


@pytest.mark.parametrize("variant", ["hex", "float"])
def test_writer_roundtrip(tmp_path, rng, variant):
    t = {"a": rng.standard_normal((3, 5)).astype(np.float32), "b": np.zeros(0, np.float32), "c": np.ones(1)}
    p = tmp_path / "w.wts"
    write_wts(str(p), t, variant=variant)
    with open_checkpoint(p) as c:
        for k, v in t.items():
            np.testing.assert_array_equal(c.read(k), v.ravel().astype(np.float32))


def test_bind_reshapes_flat(tmp_path, rng):
    from netdsl import layers as nn
    net = nn.Linear(4, 3, name="fc").build({"x": (1, 4)})
    net.init_random(0)
    p = tmp_path / "fc.wts"
    write_wts(str(p), net)
    net2 = nn.Linear(4, 3, name="fc").build({"x": (1, 4)})
    assert net2.load_weights(p).ok
    np.testing.assert_array_equal(net2.graph.params["fc.weight"].value(), net.graph.params["fc.weight"].value())
    q = tmp_path / "bad.wts"
    write_wts(str(q), {"fc.weight": np.ones(11), "fc.bias": np.ones(3)})
    with pytest.raises(WeightError, match="fc.weight"):
        nn.Linear(4, 3, name="fc").build({"x": (1, 4)}).load_weights(q)


def test_corrupt(tmp_path):
    cases = {"count": "3\na 1 3f800000\n", "values": "1\na 3 3f800000\n", "hex": "1\na 2 3f800000 zzzzzzzz\n",
             "first": "x\na 1 00000000\n"}
    for what, text in cases.items():
        p = tmp_path / f"{what}.wts"
        p.write_text(text)
        with pytest.raises(WeightError, match=str(p)):
            with open_checkpoint(p, format="wts") as c:
                [c.read(n) for n in c.names()]


def test_bad_value_error_is_short(tmp_path):
    """A 500 kB bad token was copied into the error message whole."""
    p = tmp_path / "m.wts"
    p.write_bytes(b"1\nw 1 " + b"z" * 500_000 + b"\n")
    with open_checkpoint(p, format="wts") as c:
        with pytest.raises(WeightError, match=f"{p}.*bad float value") as e:
            c.read("w")
    assert len(str(e.value)) < 1000


def test_value_count_of_thousands_of_digits_refused_briefly(tmp_path):
    """int() of the count failed past 4300 digits, and the error quoted all of them."""
    p = tmp_path / "m.wts"
    p.write_bytes(b"1\nw " + b"9" * 5000 + b" 3f800000\n")
    with pytest.raises(WeightError, match=f"{p}, tensor 'w': .* declares a value count of \\d+ digits") as e:
        open_checkpoint(p, format="wts")
    assert len(str(e.value)) < 300


def test_lines_beyond_the_count_refused(tmp_path):
    """A line after the declared count was ignored without a word: now refused, naming the file and line."""
    p = tmp_path / "m.wts"
    p.write_text("1\na 1 3f800000\nb 1 40000000\n\n")
    with pytest.raises(WeightError, match=f"{p}: header says 1 tensors, but more lines follow .*'b 1 40000000'"):
        open_checkpoint(p, format="wts")
    p.write_text("1\na 1 3f800000\n\n  \n")  # trailing blank lines are fine
    with open_checkpoint(p, format="wts") as c:
        assert c.read("a").tolist() == [1.0]


@pytest.mark.parametrize("token", ["1_0", "infinity", "NaN", "-Infinity", "0x1p3", "1_000.5"])
def test_python_only_float_syntax_refused(tmp_path, token):
    """float() accepted Python's own spellings (1_0, infinity, NaN) where the format has plain decimals."""
    p = tmp_path / "m.wts"
    p.write_text(f"1\na 2 0.5 {token}\n")
    with open_checkpoint(p, format="wts") as c:
        with pytest.raises(WeightError, match=f"{p}, tensor 'a': bad float value"):
            c.read("a")


@pytest.mark.parametrize("token", ["0x3f80", "3f_80", "-1", "+3f8", "3f8000000"])
def test_hex_words_only(tmp_path, token):
    """int(t, 16) accepted 0x.., 1_0, signs and words wider than 32 bits in the hex variant."""
    p = tmp_path / "m.wts"
    p.write_text(f"1\na 2 3f800000 {token}\n")
    with open_checkpoint(p, format="wts", variant="hex") as c:
        with pytest.raises(WeightError, match=f"{p}, tensor 'a': bad hex value"):
            c.read("a")


def test_plain_decimals_and_nan_inf_read(tmp_path):
    """What decimal writers print (repr, %g, %e, nan/inf) still reads."""
    p = tmp_path / "m.wts"
    p.write_text("1\na 7 1.5 -2e-3 .25 3. +4E+2 nan -inf\n")
    with open_checkpoint(p, format="wts") as c:
        np.testing.assert_array_equal(c.read("a"), np.array([1.5, -2e-3, .25, 3, 400, np.nan, -np.inf], "f4"))
