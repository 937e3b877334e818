"""netdsl works without onnx installed; the ONNX backend then says what to install."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))

SCRIPT = textwrap.dedent("""
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("onnx", "onnxruntime"):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
            return None

    sys.meta_path.insert(0, Block())

    import numpy as np
    import netdsl as nd
    import netdsl.functional as F
    from netdsl.errors import BackendUnavailable

    net = nd.Network("tiny")
    x = net.input("x", ("N", 4))
    net.output(F.softmax(F.linear(x, net.parameter("fc.weight", (3, 4))), 1), "y")
    net.init_random(0)
    y = nd.compile(net, "reference")(x=np.ones((2, 4), np.float32))["y"]
    assert y.shape == (2, 3) and abs(float(y.sum()) - 2.0) < 1e-5
    for call in (lambda: nd.export_onnx(net, "never.onnx"), lambda: nd.compile(net, "onnx")):
        try:
            call()
        except BackendUnavailable as e:
            assert "pip install onnx" in str(e), str(e)
        else:
            raise SystemExit("no BackendUnavailable")
    bad = [m for m in ("onnx", "onnxruntime") if m in sys.modules]
    assert not bad, bad
    print("ok")
""")


def test_netdsl_works_without_onnx(tmp_path):
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=str(tmp_path),
                       env={**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")})
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr
    assert not (tmp_path / "never.onnx").exists()
