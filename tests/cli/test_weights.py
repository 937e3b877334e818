"""netdsl weights: listing and binding report through the command line, text and JSON; exit code 2."""
from __future__ import annotations

import json

import numpy as np

from tests.weights.test_cli import MODEL


def test_weights_json_listing_and_binding(tmp_path, cli):
    p = tmp_path / "w.npz"
    np.savez(p, **{"fc.weight": np.ones((3, 4), np.float32), "fc.bias": np.zeros(3, np.float32)})
    rc, out, _ = cli("weights", p, "--json")
    assert rc == 0
    doc = json.loads(out)
    assert doc["format"] == "npz" and {t["name"]: t["shape"] for t in doc["tensors"]} == {"fc.weight": [3, 4],
                                                                                          "fc.bias": [3]}
    m = tmp_path / "model.py"
    m.write_text(MODEL)
    rc, out, _ = cli("weights", p, "--model", m, "--json")
    assert rc == 0 and json.loads(out)["ok"] is True
    np.savez(p, **{"fc.weight": np.ones((4, 3), np.float32)})
    rc, out, _ = cli("weights", p, "--model", m, "--json")
    doc = json.loads(out)
    assert rc == 2 and doc["ok"] is False and doc["missing"] == [{"param": "fc.bias", "shape": [3]}]
    assert doc["mismatched"][0]["param"] == "fc.weight"


def test_weights_corrupt_file_exit_2(tmp_path, cli):
    p = tmp_path / "x.safetensors"
    p.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    rc, out, err = cli("weights", p, "--json")
    assert rc == 2 and str(p) in err and json.loads(out)["ok"] is False
