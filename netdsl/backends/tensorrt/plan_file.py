"""Plan files as the TensorRT world reads them, with netdsl's metadata beside them.

``write_plan("m.plan", plan, meta)`` writes exactly the bytes ``IBuilder.build_serialized_network``
returned to ``m.plan`` (so ``trtexec --loadEngine``, Polygraphy, Triton and
``IRuntime.deserialize_cuda_engine`` read it) and the metadata, with the plan's size and SHA-256, to
the sidecar ``m.plan.json``. ``read_plan`` verifies the plan against its sidecar when there is one;
a plan without a sidecar (e.g. from trtexec) is read as it is.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Optional

from ...errors import NetdslError
from ..verified_cache import atomic_write

SIDECAR_FORMAT = "netdsl-tensorrt-plan"
LEGACY_MAGIC = b"NETDSL-TRT-PLAN\n"  # plans with a netdsl header inside (netdsl 0.1): refused with advice


def sidecar_path(path: str) -> str:
    """Where the metadata of plan ``path`` lives (``m.plan`` -> ``m.plan.json``)."""
    return str(path) + ".json"


def digest(plan: bytes) -> dict:
    """``{"size": ..., "sha256": ...}`` of a plan."""
    return {"size": len(plan), "sha256": hashlib.sha256(plan).hexdigest()}


def write_plan(path: str, plan: bytes, meta: Optional[dict] = None) -> None:
    """Write the raw plan to ``path`` and its metadata (size, SHA-256, how it was built) to ``path.json``."""
    if not plan:
        raise NetdslError(f"{path}: refusing to write an empty plan")
    side = {"format": SIDECAR_FORMAT, "version": 1, "plan": os.path.basename(str(path)), **(meta or {}),
            **digest(plan)}
    atomic_write(str(path), plan)
    atomic_write(sidecar_path(path), (json.dumps(side, indent=1, sort_keys=True, default=str) + "\n").encode())


def read_plan(path: str) -> tuple[bytes, dict]:
    """The plan bytes and the sidecar metadata (``{}`` without a sidecar); raises NetdslError naming the
    file when the plan is empty, or does not match its sidecar's size and SHA-256."""
    path = str(path)
    try:
        with open(path, "rb") as f:
            plan = f.read()
    except OSError as e:
        raise NetdslError(f"cannot read plan {path}: {e.strerror or e}") from None
    if not plan:
        raise NetdslError(f"{path}: empty plan file")
    if plan.startswith(LEGACY_MAGIC):
        raise NetdslError(f"{path}: a plan with a netdsl header (written by netdsl 0.1), which TensorRT cannot "
                          "read; rebuild it with `netdsl build --backend tensorrt`")
    meta: dict[str, Any] = {}
    side = sidecar_path(path)
    if os.path.exists(side):
        try:
            with open(side, "rb") as f:
                meta = json.loads(f.read())
            if not isinstance(meta, dict) or meta.get("format") != SIDECAR_FORMAT:
                raise ValueError("not a netdsl plan sidecar")
        except (OSError, ValueError) as e:
            raise NetdslError(f"{side}: unreadable plan metadata ({e})") from None
        got = digest(plan)
        if got["size"] != meta.get("size") or got["sha256"] != meta.get("sha256"):
            raise NetdslError(f"{path}: the plan does not match {os.path.basename(side)} (size {got['size']} vs "
                              f"{meta.get('size')}, SHA-256 differs): a truncated, corrupted or replaced file")
    return plan, meta
