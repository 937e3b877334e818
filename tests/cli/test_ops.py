"""netdsl ops: the support table, as text and JSON."""
from __future__ import annotations

import json


def test_ops_table(cli):
    rc, out, _ = cli("ops")
    assert rc == 0 and "conv" in out and "reference" in out


def test_ops_json(cli):
    rc, out, _ = cli("ops", "--json")
    assert rc == 0
    ops = {r["op"]: r for r in json.loads(out)["ops"]}
    assert ops["conv"]["backends"]["reference"] is True and ops["conv"]["category"]
    assert set(ops["conv"]["backends"]) == {"reference", "openvino", "tensorrt", "onnx"}
