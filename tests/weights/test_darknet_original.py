"""Darknet files as darknet itself writes them (tests/weights/darknet_writer.py transcribes
src/parser.c save_weights_upto), read back byte-exact, listed by the CLI and bound by name to
examples/yolov3_tiny.py."""
from __future__ import annotations

import io
import os
import struct

import numpy as np
import pytest

from netdsl.errors import WeightError
from netdsl.weights import detect_format, open_checkpoint
from netdsl.weights.cli import weights_command

from .darknet_writer import expected_tensors, make_network, save_weights_upto

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def yolov3_tiny_cfg(size: int = 416, classes: int = 80) -> str:
    """The layer list of darknet's cfg/yolov3-tiny.cfg (training options left out), for any size/classes."""
    def conv(filters, k, bn=True, act="leaky"):
        return (f"[convolutional]\n{'batch_normalize=1' + chr(10) if bn else ''}filters={filters}\nsize={k}\n"
                f"stride=1\npad=1\nactivation={act}\n")
    yolo = lambda mask: (f"[yolo]\nmask = {mask}\nanchors = 10,14,  23,27,  37,58,  81,82,  135,169,  344,319\n"  # noqa
                         f"classes={classes}\nnum=6\njitter=.3\nignore_thresh = .7\ntruth_thresh = 1\nrandom=1\n")
    out = 3 * (5 + classes)
    s = [f"[net]\nbatch=1\nsubdivisions=1\nwidth={size}\nheight={size}\nchannels=3\n"]
    for i, f in enumerate([16, 32, 64, 128, 256, 512]):
        s += [conv(f, 3), f"[maxpool]\nsize=2\nstride={2 if i < 5 else 1}\n"]
    s += [conv(1024, 3), conv(256, 1), conv(512, 3), conv(out, 1, False, "linear"), yolo("3,4,5"),
          "[route]\nlayers = -4\n", conv(128, 1), "[upsample]\nstride=2\n", "[route]\nlayers = -1, 8\n",
          conv(256, 3), conv(out, 1, False, "linear"), yolo("0,1,2")]
    return "\n".join(s)


def _write(tmp_path, cfg_text, rng, name="net", cutoff=10 ** 9, **kw):
    layers = make_network(cfg_text, rng)
    buf = io.BytesIO()
    save_weights_upto(layers, buf, cutoff, **kw)
    (tmp_path / f"{name}.cfg").write_text(cfg_text)
    (tmp_path / f"{name}.weights").write_bytes(buf.getvalue())
    return tmp_path / f"{name}.weights", layers


def _check(path, want):
    with open_checkpoint(path) as c:
        assert c.format == "darknet"
        assert c.names() == list(want)
        for k, v in want.items():
            got = c.read(k)
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got.ravel(), v.ravel(), err_msg=k)
            assert got.shape == v.shape, k


def test_yolov3_tiny_full_cfg_cli_and_binding(tmp_path, rng, capsys):
    p, layers = _write(tmp_path, yolov3_tiny_cfg(), rng, name="yolov3-tiny")
    assert detect_format(str(p)) == "darknet"
    want = expected_tensors(layers)
    assert len(want) == 13 * 2 + 11 * 3            # 13 convs (weight + bias), 11 with batch norm
    _check(p, want)
    with open_checkpoint(p) as c:
        assert c.info("0.conv.weight").shape == (16, 3, 3, 3)
        assert c.info("15.conv.weight").shape == (255, 512, 1, 1)
        assert c.info("21.conv.weight").shape == (256, 384, 3, 3)    # route -1, 8: 128 + 256
        assert c.seen == 64000 and c.version == (0, 2, 5)
    out = io.StringIO()
    assert weights_command(str(p), out=out) == 0
    text = out.getvalue()
    assert "format darknet" in text and "21.conv.weight" in text and "256x384x3x3" in text.replace(" ", "") \
        or "(256, 384, 3, 3)" in text
    out = io.StringIO()
    rc = weights_command(str(p), model=os.path.join(ROOT, "examples", "yolov3_tiny.py"), out=out)
    assert rc == 0, out.getvalue() + capsys.readouterr().err
    assert "missing" not in out.getvalue().lower() or "0 missing" in out.getvalue().lower()


def test_yolov3_tiny_small_binds_values(tmp_path, rng):
    import importlib.util
    spec = importlib.util.spec_from_file_location("yolov3_tiny_example", os.path.join(ROOT, "examples", "yolov3_tiny.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    p, layers = _write(tmp_path, yolov3_tiny_cfg(64, 3), rng, name="tiny")
    net = mod.small()
    rep = net.load_weights(p)
    assert rep.ok, rep
    want = expected_tensors(layers)
    for k in ("0.conv.weight", "13.bn.running_var", "22.conv.bias", "21.conv.weight"):
        np.testing.assert_array_equal(net.graph.params[k].value(), want[k])


CFG_MIX = """[net]
height=8
width=8
channels=3

[convolutional]
batch_normalize=1
filters=4
size=3
stride=1
pad=1
activation=leaky

[convolutional]
filters=4
size=1
stride=1
pad=1
activation=linear

[shortcut]
from=-2
weights_type=per_channel
activation=linear

[batchnorm]

[maxpool]
size=2
stride=2

[upsample]
stride=2

[route]
layers=-1,0

[convolutional]
filters=6
size=1
stride=2
pad=0
groups=2
activation=linear

[connected]
batch_normalize=1
output=5
activation=leaky

[connected]
output=3
activation=linear

[softmax]
groups=1
"""


@pytest.mark.parametrize("variant", ["alexeyab", "pjreddie"])
@pytest.mark.parametrize("version", [(0, 2, 5), (0, 1, 0)])
def test_mixed_layers(tmp_path, rng, variant, version):
    ab = variant == "alexeyab"
    p, layers = _write(tmp_path, CFG_MIX, rng, version=version, seen=1234, alexeyab=ab)
    want = expected_tensors(layers, alexeyab=ab)
    assert want["2.shortcut.weight"].size == 2 * 4
    _check(p, want)
    with open_checkpoint(p) as c:
        assert c.info("2.shortcut.weight").shape == (2, 4)
        assert c.info("7.conv.weight").shape == (6, 4, 1, 1)       # route 4 + 4 channels, groups 2
        assert c.info("8.fc.weight").shape == (5, 6 * 4 * 4)
        assert c.seen == 1234
        assert any("AlexeyAB" in n for n in c.notes) == ab


def test_recurrent_layers(tmp_path, rng):
    cfg = ("[net]\ninputs=7\ntime_steps=2\nbatch=2\n\n[rnn]\nbatch_normalize=1\noutput=4\nhidden=5\n\n"
           "[gru]\noutput=3\n\n[lstm]\noutput=2\n\n[connected]\noutput=6\n")
    p, layers = _write(tmp_path, cfg, rng)
    want = expected_tensors(layers)
    _check(p, want)
    with open_checkpoint(p) as c:
        assert c.info("0.input_layer.fc.weight").shape == (5, 7)
        assert c.info("1.state_h_layer.fc.weight").shape == (3, 3)
        assert c.info("2.uo.fc.weight").shape == (2, 3)
        assert c.info("3.fc.weight").shape == (6, 2)


def test_partial_file_like_darknet_partial(tmp_path, rng):
    """`darknet partial cfg weights out N` = save_weights_upto(net, out, N): darknet loads it (stops at EOF)."""
    p, layers = _write(tmp_path, yolov3_tiny_cfg(64, 3), rng, cutoff=12)
    want = expected_tensors(layers[:12])
    _check(p, want)
    with open_checkpoint(p) as c:
        assert any("partial" in n for n in c.notes)
    raw = p.read_bytes()
    p.write_bytes(raw[:-8])                                    # ends inside a layer: an error naming it
    with pytest.raises(WeightError, match="inside the weights of .* layer 10"):
        open_checkpoint(p)


def test_transposed_and_flipped(tmp_path, rng):
    cfg = "[net]\nheight=2\nwidth=2\nchannels=3\n\n[convolutional]\nfilters=4\nsize=1\nflipped=1\n\n[connected]\noutput=5\n"
    conv_w, fc_w = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((5, 16)).astype(np.float32)
    b1, b2 = rng.standard_normal(4).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    # a file whose header sets major > 1000 stores connected weights (inputs, outputs): load_connected_weights
    # transposes them back; flipped=1 stores conv weights (c*k*k, n): load_convolutional_weights transposes.
    body = b1.tobytes() + conv_w.T.copy().tobytes() + b2.tobytes() + fc_w.T.copy().tobytes()
    (tmp_path / "t.cfg").write_text(cfg)
    (tmp_path / "t.weights").write_bytes(struct.pack("<3iQ", 1001, 2, 0, 0) + body)
    with open_checkpoint(tmp_path / "t.weights", format="darknet") as c:
        np.testing.assert_array_equal(c.read("0.conv.weight").reshape(4, 3), conv_w)
        np.testing.assert_array_equal(c.read("1.fc.weight"), fc_w)
