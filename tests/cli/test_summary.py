"""netdsl summary: the table, connected-to, trainable/bound parameters, module totals, --json."""
from __future__ import annotations

import json
import os

from .conftest import EXAMPLES, LENET


def test_summary_lenet(cli):
    rc, out, _ = cli("summary", LENET)
    assert rc == 0
    for layer in ("conv1", "pool1", "conv2", "pool2", "ip1", "relu", "ip2", "prob"):
        assert layer in out
    assert "431,080 parameters" in out and "connected to" in out
    assert "trainable: 431,080; non-trainable: 0; all bound" in out
    assert "lenet.npz:conv1.weight" in out


def test_summary_resnet_modules_and_residual_names(cli):
    rc, out, _ = cli("summary", os.path.join(EXAMPLES, "resnet50.py"))
    assert rc == 0
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "layer1.0.add" in rows and "add" not in rows and "add_1" not in rows
    assert rows["layer1.0.add"].rstrip().endswith("layer1.0.bn3, layer1.0.downsample.1")
    assert rows["layer1.0.relu_2"].rstrip().endswith("layer1.0.add")
    assert "layer1.0.bn1.running_mean" in rows and " no " in rows["layer1.0.bn1.running_mean"]
    assert "unbound" in rows["fc.weight"]
    assert rows["layer1"].split()[1:3] == ["32", "218,624"]   # module totals: layers, parameters
    assert "trainable: 25,557,032; non-trainable: 53,120; without weights: 25,610,152" in out


def test_summary_json(cli):
    rc, out, _ = cli("summary", LENET, "--json")
    assert rc == 0
    doc = json.loads(out)
    assert doc["totals"]["params"] == 431_080 and doc["totals"]["trainable_params"] == 431_080
    layers = {x["name"]: x for x in doc["layers"]}
    assert layers["conv2"]["inputs"] == ["pool1"] and layers["conv2"]["params"] == 25_050
    assert layers["conv2"]["location"].startswith("examples/lenet.py:") or "lenet.py:" in layers["conv2"]["location"]
    params = {p["name"]: p for p in doc["parameters"]}
    assert params["ip1.weight"]["shape"] == [500, 800] and params["ip1.weight"]["bound"] is True
