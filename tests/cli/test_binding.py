"""Binding options on the command line: every load_weights option, for run/build/check/weights, with
command-line advice in errors and the binding a model declares."""
from __future__ import annotations

import os

import numpy as np
import pytest

from netdsl.cli import build_parser, main
from netdsl.cli.binding import binding_options

MODEL = '''
from netdsl import layers as nn
def network():
    return nn.Linear(4, 3, name="fc").build({"x": ("N", 4)})

def declared():
    net = network()
    net.declare_binding(strip_prefix="net.", ignore=["^extra$"])
    return net
'''

FLAGS = ["--format", "npz", "--preset", "huggingface", "--map", "a=fc.weight", "--map", "b=fc.bias",
         "--prefix", "m.", "--strip-prefix", "x.", "--strip-prefix", "y.", "--rename", r"^d\.=fc.",
         "--add-prefix", "top.", "--ignore", "^opt", "--transform", "fc.weight=transpose",
         "--keras-layer", "dense=fc", "--keras-order", "--no-keras-flatten", "--no-strict",
         "--cfg", "y.cfg", "--pickle-mode", "inert", "--key", "state_dict"]
EXPECTED = {"format": "npz", "preset": "huggingface", "mapping": {"a": "fc.weight", "b": "fc.bias"},
            "prefix": "m.", "strip_prefix": ["x.", "y."], "rename": [(r"^d\.", "fc.")], "add_prefix": "top.",
            "ignore": ["^opt"], "transforms": {"fc.weight": "transpose"}, "keras_layers": {"dense": "fc"},
            "keras_order": True, "keras_flatten": False, "strict": False, "cfg": "y.cfg", "pickle_mode": "inert",
            "key": "state_dict"}


@pytest.mark.parametrize("cmd", [["run", "m.py"], ["build", "m.py", "--backend", "onnx", "-o", "m.onnx"],
                                 ["check", "m.py"], ["weights", "w.npz"], ["summary", "m.py"]])
def test_every_binding_option_on_every_command(cmd):
    args = build_parser().parse_args(cmd + FLAGS)
    assert binding_options(args) == EXPECTED
    assert binding_options(build_parser().parse_args(cmd)) == {}  # nothing given: the model's own binding


def test_help_lists_the_layout_transforms(capsys):
    with pytest.raises(SystemExit):
        main(["build", "--help"])
    out = capsys.readouterr().out
    for name in ("transpose", "hwio_to_oihw", "dense_to_linear", "depthwise_to_grouped", "keras_deconv_to_torch"):
        assert name in out


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    p = tmp_path / "w.npz"
    np.savez(p, **{"net.fc.weight": w, "net.fc.bias": b, "extra": np.ones(1, np.float32)})
    m = tmp_path / "model.py"
    m.write_text(MODEL)
    return str(m), str(p)


def test_errors_give_command_line_advice(files, capsys):
    m, p = files
    assert main(["run", m, "--weights", p]) == 2
    err = capsys.readouterr().err
    assert "hint: 2 unmatched checkpoint name(s) start with 'net.' and match parameters without it: " \
           "--strip-prefix net." in err
    assert "--no-strict" in err and "strip_prefix=" not in err and "strict=False" not in err
    assert main(["run", m, "--weights", p, "--strip-prefix", "net.", "--ignore", "^extra$"]) == 0
    assert main(["run", m, "--strip-prefix", "net."]) == 2
    assert "need --weights" in capsys.readouterr().err


def test_transpose_advice_and_transform_option(tmp_path, capsys):
    m = tmp_path / "model.py"
    m.write_text(MODEL)
    p = tmp_path / "t.npz"
    np.savez(p, **{"fc.weight": np.ones((4, 3), np.float32), "fc.bias": np.ones(3, np.float32)})
    assert main(["check", str(m), "--weights", str(p), "--backends", "reference"]) == 2
    assert "--transform fc.weight=transpose" in capsys.readouterr().err
    assert main(["check", str(m), "--weights", str(p), "--backends", "reference",
                 "--transform", "fc.weight=transpose"]) == 0
    assert main(["build", str(m), "--weights", str(p), "--backend", "onnx", "-o", str(tmp_path / "m.onnx"),
                 "--transform", "fc.weight=flip"]) == 2
    assert "unknown transform 'flip'" in capsys.readouterr().err


def test_weights_command_uses_the_declared_binding(files, capsys):
    m, p = files
    assert main(["weights", p, "--model", m]) == 2            # network(): nothing declared
    assert "--strip-prefix net." in capsys.readouterr().out
    assert main(["weights", p, "--model", m + ":declared"]) == 0  # declared(): strip_prefix and ignore
    out = capsys.readouterr().out
    assert "2 parameter(s) bound" in out and "fc.weight (3, 4) <- net.fc.weight" in out
    assert main(["weights", p, "--model", m + ":declared", "--strip-prefix", "other."]) == 2  # the option wins


def test_keras_options_on_the_command_line(tmp_path, capsys):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras", reason="keras not installed")
    inp = keras.Input((4,))
    keras.Model(inp, keras.layers.Dense(3, name="dense_out")(inp)).save(tmp_path / "k.h5")
    m = tmp_path / "model.py"
    m.write_text(MODEL)
    assert main(["weights", str(tmp_path / "k.h5"), "--model", str(m)]) == 2
    out = capsys.readouterr().out
    assert "--keras-order" in out and "--keras-layer dense_out=MODULE" in out
    assert main(["weights", str(tmp_path / "k.h5"), "--model", str(m), "--keras-layer", "dense_out=fc"]) == 0
    assert "dense_out -> fc (by --keras-layer)" in capsys.readouterr().out
    assert main(["weights", str(tmp_path / "k.h5"), "--model", str(m), "--keras-order"]) == 0
    assert "dense_out -> fc (by order)" in capsys.readouterr().out
