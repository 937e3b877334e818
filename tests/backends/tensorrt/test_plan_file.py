"""Plan files: exactly TensorRT's serialized engine (metadata in a sidecar), proved with TensorRT's own
deserializer.

Without a GPU, ``trt.Runtime(logger).deserialize_cuda_engine(data)`` on TensorRT-RTX checks the plan
header first (magic tag, serialization version, ``header.size == blobSize``) and then fails where it
needs the GPU (``ScopedCudaStream``: "CUDA driver version is insufficient"). So a file that gets as far
as a plan straight from ``build_serialized_network`` passed every check TensorRT can make without a
GPU; a file with a header in front is rejected at the magic tag, a truncated one at the size check.
(A flipped byte inside the body is not detected before the GPU is needed: the sidecar's SHA-256 is
what catches that, in :func:`read_plan`.) Where a supported GPU exists, the plan deserializes.
"""
from __future__ import annotations

import json
import logging

import pytest

trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed (pip install tensorrt-rtx)")

from netdsl.backends import tensorrt as T  # noqa: E402
from netdsl.backends.tensorrt import _trt  # noqa: E402
from netdsl.backends.tensorrt.plan_file import LEGACY_MAGIC, read_plan, sidecar_path, write_plan  # noqa: E402
from netdsl.errors import NetdslError  # noqa: E402

from ._nets import small  # noqa: E402

PROFILE = {"data": ((1, 3, 6, 6), (2, 3, 6, 6), (4, 3, 6, 6))}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(path of `netdsl build`'s plan, the bytes build_serialized_network returned for the same network)."""
    path = tmp_path_factory.mktemp("plan") / "m.plan"
    T.build(small().graph, path, profiles=PROFILE, cache=False, progress=False)
    raw = T.network(small().graph, profiles=PROFILE)
    plan = raw.builder.build_serialized_network(raw.network, raw.config)  # TensorRT's API, called directly
    return path, bytes(memoryview(plan))


def test_plan_file_is_exactly_the_serialized_engine(built):
    path, straight = built
    assert path.read_bytes() == straight


def test_sidecar_holds_the_metadata_and_checksum(built):
    path, straight = built
    meta = json.loads(open(sidecar_path(str(path))).read())
    assert meta["format"] == "netdsl-tensorrt-plan" and meta["size"] == len(straight)
    assert meta["network"] == "small" and meta["tf32"] is False and meta["precision"] == "float32"
    assert meta["profiles"] == [{"data": [[1, 3, 6, 6], [2, 3, 6, 6], [4, 3, 6, 6]]}]
    plan, meta2 = read_plan(str(path))
    assert plan == straight and meta2 == meta


def test_read_plan_checks_the_sidecar(tmp_path, built):
    _, straight = built
    p = tmp_path / "x.plan"
    write_plan(str(p), straight, {"network": "x"})
    p.write_bytes(straight[:-10])
    with pytest.raises(NetdslError, match=r"x\.plan: the plan does not match x\.plan\.json"):
        read_plan(str(p))
    flipped = bytearray(straight)
    flipped[len(flipped) // 2] ^= 1
    p.write_bytes(bytes(flipped))
    with pytest.raises(NetdslError, match="SHA-256 differs"):
        read_plan(str(p))
    p.write_bytes(b"")
    with pytest.raises(NetdslError, match="empty plan file"):
        read_plan(str(p))
    q = tmp_path / "from_trtexec.plan"  # no sidecar: read as it is
    q.write_bytes(straight)
    assert read_plan(str(q)) == (straight, {})
    q.write_bytes(LEGACY_MAGIC + b"\x02\x00\x00\x00{}" + straight)
    with pytest.raises(NetdslError, match="netdsl header.*rebuild"):
        read_plan(str(q))


def _deserialize(data: bytes, caplog) -> tuple:
    """(engine or None, TensorRT's log lines) for ``IRuntime.deserialize_cuda_engine(data)``."""
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="netdsl.tensorrt"):
        runtime = trt.Runtime(_trt.logger(trt))
        engine = runtime.deserialize_cuda_engine(data)
    return engine, [r.getMessage() for r in caplog.records if r.name == "netdsl.tensorrt"]


def _failure_point(lines: list) -> str:
    """Where deserialization stopped: the first error, with source positions and numbers removed."""
    errors = [ln for ln in lines if "Error Code" in ln]
    assert errors, lines
    first = errors[0]
    for marker in ("ScopedCudaStream", "magicTag", "header.size == blobSize", "empty memory buffer"):
        if marker in first:
            return marker
    return first


def test_tensorrt_deserializer_accepts_the_plan_up_to_the_gpu(built, caplog):
    path, straight = built
    data = path.read_bytes()
    ok, why = T.can_execute(flavour="tensorrt_rtx")
    engine, lines = _deserialize(data, caplog)
    if ok:  # a supported GPU: the plan is a working engine
        assert engine is not None and engine.num_io_tensors == 2
        return
    ref_engine, ref_lines = _deserialize(straight, caplog)
    assert engine is None and ref_engine is None
    # the same path through the deserializer as the plan straight from build_serialized_network:
    assert _failure_point(lines) == _failure_point(ref_lines) == "ScopedCudaStream"
    assert any("Skipping the engine compute capability check" in ln for ln in lines)  # header was parsed
    # while a file with a header in front is rejected at the magic tag, and a truncated one at its size
    _, headered = _deserialize(LEGACY_MAGIC + b"\x02\x00\x00\x00{}" + data, caplog)
    assert _failure_point(headered) == "magicTag"
    _, truncated = _deserialize(data[:-64], caplog)
    assert _failure_point(truncated) == "header.size == blobSize"


def test_cli_build_writes_plan_and_sidecar_with_tf32_and_timing_cache(tmp_path, capsys):
    from netdsl.cli import main
    lenet = str(__import__("pathlib").Path(__file__).resolve().parents[3] / "examples" / "lenet.py")
    out, tc = tmp_path / "lenet.plan", tmp_path / "lenet.timing"
    assert main(["build", lenet, "--random-weights", "--backend", "tensorrt", "-o", str(out), "--tf32",
                 "--timing-cache", str(tc), "--cache-dir", str(tmp_path / "cache")]) == 0
    plan, meta = read_plan(str(out))
    assert not plan.startswith(LEGACY_MAGIC) and meta["tf32"] is True and meta["network"]
    assert tc.exists() and tc.stat().st_size > 0
