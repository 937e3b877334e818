"""OVMS repositories: config.json validated against a JSON schema written from OVMS's documented
configuration fields, the versioned folder layout OVMS documents, and the IR run against the reference."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from netdsl.compare import assert_close
from netdsl.errors import NetdslError
from netdsl.serving import export_ovms

from .nets import lenet, lenet_feeds, multi, ref

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema (to validate OVMS config.json) is not installed")

# OVMS "Model Server Parameters" (model configuration options) and its model-repository guide: a config
# file is {"model_config_list": [{"config": {...}}], ...}; name and base_path are required.
MODEL_CONFIG = {
    "type": "object", "required": ["name", "base_path"], "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "base_path": {"type": "string", "minLength": 1},
        "shape": {"type": ["object", "string"]},
        "batch_size": {"type": ["integer", "string"]},
        "model_version_policy": {"type": "object"},
        "layout": {"type": ["object", "string"]},
        "nireq": {"type": "integer", "minimum": 0},
        "target_device": {"type": "string"},
        "plugin_config": {"type": "object"},
        "stateful": {"type": "boolean"},
        "idle_sequence_cleanup": {"type": "boolean"},
        "max_sequence_number": {"type": "integer", "minimum": 0},
        "low_latency_transformation": {"type": "boolean"},
    },
}
SCHEMA = {
    "type": "object", "required": ["model_config_list"], "additionalProperties": False,
    "properties": {
        "model_config_list": {"type": "array", "items": {
            "type": "object", "required": ["config"], "additionalProperties": False,
            "properties": {"config": MODEL_CONFIG}}},
        "pipeline_config_list": {"type": "array"},
        "custom_node_library_config_list": {"type": "array"},
        "custom_loader_config_list": {"type": "array"},
        "mediapipe_config_list": {"type": "array"},
    },
}


def _check_layout(repo, doc):
    """Every listed model: base_path (relative to config.json) holds positive-integer version folders, each
    with one IR pair."""
    jsonschema.validate(doc, SCHEMA)
    for entry in doc["model_config_list"]:
        base = os.path.join(repo, entry["config"]["base_path"])
        versions = [d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d))]
        assert versions and all(v.isdigit() and int(v) >= 1 and not v.startswith("0") for v in versions)
        for v in versions:
            files = sorted(os.listdir(os.path.join(base, v)))
            assert files == ["model.bin", "model.xml"], files


def test_layout_and_schema(tmp_path):
    net = lenet()
    m = export_ovms(net, tmp_path, plugin_config={"PERFORMANCE_HINT": "LATENCY"}, nireq=2)
    doc = json.loads((tmp_path / "config.json").read_text())
    _check_layout(tmp_path, doc)
    assert doc["model_config_list"] == [{"config": {"name": "lenet", "base_path": "lenet", "target_device": "CPU",
                                                    "plugin_config": {"PERFORMANCE_HINT": "LATENCY"}, "nireq": 2}}]
    assert m.command.startswith("ovms --config_path ")
    # the IR OVMS would load, compiled by a fresh OpenVINO Core, against the reference
    import openvino as ov
    compiled = ov.Core().compile_model(str(tmp_path / "lenet" / "1" / "model.xml"), "CPU",
                                       {"INFERENCE_PRECISION_HINT": "f32"})
    feeds = lenet_feeds(np.random.default_rng(2), 4)  # the batch stays dynamic in the IR
    assert_close(compiled(feeds)[compiled.output("prob")], ref(net, feeds)["prob"], "float32")


def test_models_and_versions_accumulate(tmp_path):
    export_ovms(lenet(), tmp_path)
    export_ovms(lenet(), tmp_path, version=2)
    export_ovms(multi(), tmp_path, name="multi", target_device="AUTO")
    doc = json.loads((tmp_path / "config.json").read_text())
    _check_layout(tmp_path, doc)
    assert [(e["config"]["name"], e["config"]["target_device"]) for e in doc["model_config_list"]] == \
        [("lenet", "CPU"), ("multi", "AUTO")]
    assert sorted(os.listdir(tmp_path / "lenet")) == ["1", "2"]


def test_a_bad_schema_entry_would_be_caught():
    """The schema is strict: an unknown field or a missing base_path is rejected (the check can fail)."""
    for bad in ({"model_config_list": [{"config": {"name": "m"}}]},
                {"model_config_list": [{"config": {"name": "m", "base_path": "m", "device": "CPU"}}]},
                {"models": []}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, SCHEMA)


def test_errors(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    with pytest.raises(NetdslError, match="not a readable OVMS config.json"):
        export_ovms(lenet(), tmp_path / "bad")
    with pytest.raises(NetdslError, match="positive integer"):
        export_ovms(lenet(), tmp_path, version=-1)
    with pytest.raises(NetdslError, match="cannot name a repository folder"):
        export_ovms(lenet(), tmp_path, name="7")
