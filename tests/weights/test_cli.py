"""weights_command: listing, binding report, exit code 2 for refused/corrupt files and failed strict bindings."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest

from netdsl.weights.cli import weights_command

MODEL = '''
from netdsl import layers as nn
def network():
    return nn.Linear(4, 3, name="fc").build({"x": (1, 4)})
'''


def test_list_and_bind(tmp_path, capsys):
    p = tmp_path / "w.npz"
    np.savez(p, **{"fc.weight": np.ones((3, 4), np.float32), "fc.bias": np.zeros(3, np.float32)})
    out = io.StringIO()
    assert weights_command(str(p), out=out) == 0
    text = out.getvalue()
    assert "format npz" in text and "fc.weight" in text and "(3, 4)" in text and "float32" in text
    m = tmp_path / "model.py"
    m.write_text(MODEL)
    out = io.StringIO()
    assert weights_command(str(p), model=str(m), out=out) == 0
    assert "2 parameter(s) bound" in out.getvalue()
    np.savez(p, **{"fc.weight": np.ones((4, 3), np.float32)})
    out = io.StringIO()
    assert weights_command(str(p), model=str(m), out=out) == 2
    assert "missing" in out.getvalue() and "fc.bias" in out.getvalue()
    assert weights_command(str(p), model=str(m), out=io.StringIO(), strict=False) == 0
    assert weights_command(str(p), model=str(tmp_path / "nope.py"), out=io.StringIO()) == 2


def test_malicious_exits_nonzero(tmp_path, capsys):
    torch = pytest.importorskip("torch", reason="torch not installed")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    p = tmp_path / "evil.pt"
    torch.save({"w": torch.ones(1), "e": Evil()}, p)
    assert weights_command(str(p), out=io.StringIO()) == 2
    assert "system" in capsys.readouterr().err
    assert not marker.exists()


def test_corrupt_exits_nonzero(tmp_path, capsys):
    p = tmp_path / "x.safetensors"
    p.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    assert weights_command(str(p), out=io.StringIO()) == 2
    assert str(p) in capsys.readouterr().err
