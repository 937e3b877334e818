"""OpenVINO Model Server repositories: ``REPO/<name>/<version>/model.xml|bin`` and ``REPO/config.json``.

    export_ovms(net, "models/")     # models/lenet/1/model.{xml,bin}; models/config.json lists it

``config.json`` holds ``model_config_list`` with one ``{"config": {"name", "base_path", ...}}`` per model;
exporting another model (or version) into the same repository keeps the other entries. ``base_path``
is relative to ``config.json`` (OVMS's parameter reference: "The path can be also relative to the
config.json location"), so the folder can be moved or mounted as a whole.
Dynamic dims stay dynamic in the IR, which OVMS serves as they are. A plugin layer's compiled CPU
library goes to ``REPO/extensions/`` (OVMS loads it with ``--cpu_extension``).
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import NetdslError
from .artifacts import copy_libraries, write_openvino
from .interface import Interface, check_model_name, check_version

CONFIG = "config.json"


@dataclass
class OvmsModel:
    """One model written into an OpenVINO Model Server repository."""

    name: str
    version: int
    folder: str
    config_path: str
    entry: dict                       # this model's {"config": {...}} in config.json
    files: list = field(default_factory=list)
    command: str = ""                 # how to start ovms on this repository

    def __str__(self) -> str:
        return f"OVMS model '{self.name}' version {self.version} in {self.folder}"


def export_ovms(network: Any, repo: str, name: Optional[str] = None, version: Any = 1,
                target_device: str = "CPU", plugin_config: Optional[dict] = None, nireq: Optional[int] = None,
                shape: Any = None, batch_size: Any = None, **ir_options: Any) -> OvmsModel:
    """Write ``network`` as an IR version folder of OVMS repository ``repo`` and list it in ``config.json``.

    ``target_device``, ``plugin_config`` (OpenVINO properties, e.g. ``{"PERFORMANCE_HINT": "LATENCY"}``),
    ``nireq``, ``shape`` and ``batch_size`` are OVMS's own model options, written as given. Other keywords
    go to the IR build (``dynamic``, ``compress_to_fp16``).
    """
    g = getattr(network, "graph", network)
    Interface.of(g)  # every tensor must be exchangeable
    name = check_model_name(name or g.name)
    version = check_version(version)
    repo = os.fspath(repo)
    folder = os.path.join(repo, name)
    vdir = os.path.join(folder, str(version))
    if os.path.isdir(vdir):
        shutil.rmtree(vdir)  # a version is replaced whole
    os.makedirs(vdir)
    art = write_openvino(g, vdir, **ir_options)
    libs = copy_libraries(art.libraries, os.path.join(repo, "extensions"))
    if len(libs) > 1:
        raise NetdslError(f"OVMS loads one CPU extension library (--cpu_extension); network '{g.name}' needs "
                          f"{len(libs)}: {', '.join(libs)}")
    conf: dict = {"name": name, "base_path": name, "target_device": str(target_device)}
    if plugin_config:
        conf["plugin_config"] = {str(k): v for k, v in plugin_config.items()}
    if nireq is not None:
        conf["nireq"] = int(nireq)
    if shape is not None:
        conf["shape"] = shape
    if batch_size is not None:
        conf["batch_size"] = batch_size
    entry = {"config": conf}
    path = os.path.join(repo, CONFIG)
    doc = _read_config(path)
    models = [m for m in doc["model_config_list"] if m.get("config", {}).get("name") != name]
    models.append(entry)
    doc["model_config_list"] = models
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
    cmd = f"ovms --config_path {os.path.abspath(path)} --rest_port 8000"
    if libs:
        cmd += f" --cpu_extension {os.path.abspath(libs[0])}"
    return OvmsModel(name, version, folder, path, entry, list(art.files) + libs + [path], cmd)


def _read_config(path: str) -> dict:
    """An existing ``config.json`` (other models are kept), or an empty model list."""
    if not os.path.exists(path):
        return {"model_config_list": []}
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise NetdslError(f"{path}: not a readable OVMS config.json ({e}); move it away to start a new one") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("model_config_list", []), list):
        raise NetdslError(f"{path}: not an OVMS config.json (no model_config_list list)")
    doc.setdefault("model_config_list", [])
    return doc
