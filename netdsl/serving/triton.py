"""Triton Inference Server model repositories: ``REPO/<name>/config.pbtxt`` + ``REPO/<name>/<version>/``.

    export_triton(net, "repo/", backend="tensorrt", dynamic={"N": (1, 8, 32)}, dynamic_batching=True)
    # repo/lenet/config.pbtxt, repo/lenet/1/model.plan (+ model.plan.json, netdsl's metadata)

Backends: ``tensorrt`` (platform ``tensorrt_plan``: the raw plan; optimization profiles listed in the
instance group), ``openvino`` (backend ``openvino``: the IR as ``model.xml``/``model.bin``) and ``onnx``
(platform ``onnxruntime_onnx``: ``model.onnx``). A symbolic batch dim shared by every input and output
becomes ``max_batch_size`` (dims then leave it out); other symbolic dims are ``-1``. Plugin layers bring
their libraries into ``REPO/<name>/plugins/``: TensorRT loads them with
``--backend-config=tensorrt,plugins="..."``, OpenVINO through the ``CPU_EXTENSION_PATH`` parameter.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import NetdslError
from .artifacts import WRITERS, Artifact, copy_libraries
from .interface import Interface, TensorInfo, check_model_name, check_version, names
from .pbtxt import Enum, dumps

DEFAULT_MAX_BATCH = 8
PLATFORMS = {"tensorrt": {"platform": "tensorrt_plan"}, "openvino": {"backend": "openvino"},
             "onnx": {"platform": "onnxruntime_onnx"}}
DEFAULT_KIND = {"tensorrt": "KIND_GPU", "openvino": "KIND_CPU", "onnx": "KIND_CPU"}
KINDS = {"gpu": "KIND_GPU", "cpu": "KIND_CPU", "auto": "KIND_AUTO", "model": "KIND_MODEL"}


@dataclass
class TritonModel:
    """One model written into a Triton repository."""

    name: str
    version: int
    folder: str
    config: str                       # the config.pbtxt text
    files: list = field(default_factory=list)
    command: str = ""                 # how to start tritonserver on this repository

    def __str__(self) -> str:
        return f"Triton model '{self.name}' version {self.version} in {self.folder}"


def export_triton(network: Any, repo: str, backend: str = "openvino", name: Optional[str] = None,
                  version: Any = 1, max_batch_size: Optional[int] = None, dynamic_batching: Any = None,
                  instances: Optional[int] = None, kind: Optional[str] = None,
                  parameters: Optional[dict] = None, **backend_options: Any) -> TritonModel:
    """Write ``network`` into the Triton model repository ``repo``; returns what was written.

    ``max_batch_size``: None picks the largest batch the artifact takes (TensorRT: its profiles; others
    the ``dynamic`` range of the batch symbol, else 8); 0 turns batching off. ``dynamic_batching``: True
    or ``{"preferred_batch_size": [...], "max_queue_delay_microseconds": ...}``. ``instances``/``kind``
    set the instance group (kind: gpu | cpu | auto). ``parameters`` are the backend's string parameters.
    Other keywords go to the backend's build (``precision``, ``dynamic``, ``workspace`` ...).
    """
    g = getattr(network, "graph", network)
    if backend not in WRITERS:
        raise NetdslError(f"Triton repository: backend {backend!r} is not one of {', '.join(WRITERS)}")
    iface = Interface.of(g)
    name = check_model_name(name or g.name)
    version = check_version(version)
    folder = os.path.join(os.fspath(repo), name)
    vdir = os.path.join(folder, str(version))
    if os.path.isdir(vdir):
        shutil.rmtree(vdir)  # a version is replaced whole
    os.makedirs(vdir)
    art = WRITERS[backend](g, vdir, **backend_options)
    _check_names(iface, art)
    mbs = _max_batch_size(iface, art, max_batch_size, backend_options.get("dynamic"))
    libs = copy_libraries(art.libraries, os.path.join(folder, "plugins"))
    cfg: dict = {"name": name, **PLATFORMS[backend], "max_batch_size": mbs,
                 "input": [tensor_config(t, mbs) for t in art.inputs],
                 "output": [tensor_config(t, mbs) for t in art.outputs]}
    if kind and kind.lower() not in KINDS:
        raise NetdslError(f"instance kind {kind!r}: choose {', '.join(KINDS)}")
    group: dict = {"count": int(instances) if instances else 1,
                   "kind": Enum(KINDS[kind.lower()] if kind else DEFAULT_KIND[backend])}
    if art.profiles:
        group["profile"] = [str(i) for i in range(len(art.profiles))]
    cfg["instance_group"] = [group]
    if dynamic_batching:
        if mbs == 0:
            raise NetdslError(f"dynamic batching needs a batch dimension (max_batch_size > 0); network "
                              f"'{g.name}' has none that every input and output starts with")
        cfg["dynamic_batching"] = dict(dynamic_batching) if isinstance(dynamic_batching, dict) else {}
    params = {str(k): str(v) for k, v in (parameters or {}).items()}
    if backend == "openvino" and libs:
        if len(libs) > 1:
            raise NetdslError(f"Triton's OpenVINO backend loads one extension library (CPU_EXTENSION_PATH); "
                              f"network '{g.name}' needs {len(libs)}: {', '.join(libs)}")
        params.setdefault("CPU_EXTENSION_PATH", os.path.abspath(libs[0]))
    if params:
        cfg["parameters"] = [{"key": k, "value": {"string_value": v}} for k, v in params.items()]
    text = dumps(cfg)
    with open(os.path.join(folder, "config.pbtxt"), "w") as f:
        f.write(text)
    cmd = f"tritonserver --model-repository={os.path.abspath(os.fspath(repo))}"
    if backend == "tensorrt" and libs:
        cmd += f' --backend-config=tensorrt,plugins="{";".join(os.path.abspath(p) for p in libs)}"'
    return TritonModel(name, version, folder, text, list(art.files) + libs + [os.path.join(folder, "config.pbtxt")],
                       cmd)


def _check_names(iface: Interface, art: Artifact) -> None:
    for kind, want, got in (("inputs", iface.inputs, art.inputs), ("outputs", iface.outputs, art.outputs)):
        if [t.name for t in want] != [t.name for t in got]:
            raise NetdslError(f"the {art.backend} artifact of '{iface.name}' names its {kind} "
                              f"{names(got) or '(none)'}, the network {names(want) or '(none)'}")


def _max_batch_size(iface: Interface, art: Artifact, requested: Optional[int], dynamic: Any) -> int:
    """Triton's max_batch_size for the artifact (0: no batch dimension)."""
    sym = iface.batch
    batchable = sym is not None and all(t.dims and t.dims[0] == -1 for t in art.inputs + art.outputs)
    if requested == 0:
        return 0
    if not batchable:
        if requested:
            raise NetdslError(f"max_batch_size={requested}: network '{iface.name}' has no batch dimension (a "
                              "symbol that is the first dim of every input and output, e.g. ('N', 3, 224, 224))")
        return 0
    limit = None
    if art.profiles:  # TensorRT: the batch every profile covers, as Triton computes it
        maxes = []
        for prof in art.profiles:
            lo = {name: mn[0] for name, (mn, _, _) in prof.items()}
            if any(v > 1 for v in lo.values()):
                raise NetdslError(f"Triton batches requests from 1 up to max_batch_size, but the TensorRT profile "
                                  f"{prof} starts the batch {sym} at {max(lo.values())}; give {sym} a range from 1")
            maxes.append(min(mx[0] for _, _, mx in prof.values()))
        limit = max(maxes)
    elif dynamic and sym in dynamic:
        r = dynamic[sym]
        limit = int(r[-1]) if isinstance(r, (tuple, list)) else int(r)
    if requested is not None:
        if requested < 0 or (limit is not None and requested > limit):
            raise NetdslError(f"max_batch_size={requested}: the artifact takes batches of {sym} up to {limit}")
        return int(requested)
    return limit if limit is not None else DEFAULT_MAX_BATCH


def tensor_config(t: TensorInfo, mbs: int) -> dict:
    """A model-config ``input``/``output`` entry (dims without the batch dim when ``mbs > 0``)."""
    dims = list(t.dims[1:] if mbs > 0 else t.dims)
    out: dict = {"name": t.name, "data_type": Enum(t.triton_type), "dims": dims or [1]}
    if not dims:  # a scalar per batch item: Triton's convention is dims [1] reshaped to []
        out["reshape"] = {"shape": []}
    return out
