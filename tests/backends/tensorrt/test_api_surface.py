"""The TensorRT API surface netdsl relies on (docs/TENSORRT-API.md).

* every symbol in ``_trt.REQUIRED_API`` exists in the installed TensorRT module, so a TensorRT release
  that drops one fails here, by name, instead of deep inside a lowering;
* the backend's source uses none of the APIs removed in TensorRT 10/11 (bindings, implicit batch,
  fully connected layers, precision builder flags), and the runtime uses the name-based I/O API;
* the normalization path for TensorRT 10.0-10.14 (``add_normalization`` v1, group scale applied after
  the layer) still builds and evaluates correctly on the installed builder (``_trt.hiding``).
"""
from __future__ import annotations

import ast
import pathlib

import numpy as np
import pytest

from netdsl.backends.tensorrt import _trt

SRC = pathlib.Path(_trt.__file__).parent


def _installed():
    try:
        return _trt.load()
    except Exception as e:  # BackendUnavailable: no tensorrt / tensorrt_rtx here
        pytest.skip(f"no TensorRT module installed (tensorrt or tensorrt_rtx): {e}")


def test_required_api_is_present():
    trt = _installed()
    missing = _trt.missing_api(trt)
    assert not missing, (f"{_trt.version_string(trt)} lacks TensorRT API that netdsl's backend uses: "
                         + ", ".join(missing) + " (see docs/TENSORRT-API.md)")


def test_required_and_optional_lists_are_consistent():
    assert len(set(_trt.REQUIRED_API)) == len(_trt.REQUIRED_API), "duplicate entries in REQUIRED_API"
    assert not set(_trt.REQUIRED_API) & set(_trt.OPTIONAL_API), "a symbol cannot be required and optional"
    assert all(isinstance(v, str) and v for v in _trt.OPTIONAL_API.values()), "each optional symbol names its fallback"


def test_optional_api_report():
    """Optional symbols may be absent; when absent the documented fallback is used (nothing to assert but
    that lookups do not raise)."""
    trt = _installed()
    present = {s: _trt.has(trt, s) for s in _trt.OPTIONAL_API}
    assert set(present) == set(_trt.OPTIONAL_API)
    if _trt.flavour_of(trt) == "tensorrt_rtx":  # what TensorRT-RTX 1.7 has (checked by introspection)
        assert present["NetworkDefinitionCreationFlag.STRONGLY_TYPED"]
        assert present["INetworkDefinition.add_normalization_v2"]


def _attributes(path: pathlib.Path) -> set[str]:
    """Attribute names used in a module's code (``x.name``; docstrings and comments excluded)."""
    tree = ast.parse(path.read_text())
    return {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}


# removed in TensorRT 10.0 (implicit batch, bindings, fully connected, non-nd layers ...) or 11.0 (weak typing:
# precision builder flags, calibrators, per-layer precision); netdsl sets no builder flag at all (it only
# clears BuilderFlag.TF32)
REMOVED = {
    "get_binding_name", "get_binding_shape", "get_binding_dtype", "get_binding_index", "binding_is_input",
    "num_bindings", "set_binding_shape", "execute_async_v2", "execute_async", "max_batch_size",
    "add_fully_connected", "add_convolution", "add_deconvolution", "add_pooling", "add_padding", "build_engine",
    "max_workspace_size", "EXPLICIT_BATCH", "set_flag", "int8_calibrator", "FP16", "BF16", "INT8", "FP8", "INT4",
    "FP4", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO",
    "platform_has_fast_fp16", "set_output_type", "reset_precision", "add_plugin_v2",
}


@pytest.mark.parametrize("module", sorted(p.name for p in SRC.glob("*.py")))
def test_backend_uses_no_removed_api(module):
    used = _attributes(SRC / module) & REMOVED
    assert not used, f"netdsl/backends/tensorrt/{module} uses TensorRT API removed in 10.x/11.x: {sorted(used)}"


def test_runtime_uses_name_based_io():
    used = _attributes(SRC / "runtime.py")
    for name in ("num_io_tensors", "get_tensor_name", "get_tensor_mode", "get_tensor_dtype", "set_input_shape",
                 "get_tensor_shape", "set_tensor_address", "execute_async_v3", "TensorIOMode"):
        assert name in used, f"runtime.py should use the TensorRT 10+ name-based I/O API ({name})"
    bindings = sorted(n for n in used if "binding" in n.lower()) + sorted(used & {"execute_v2", "execute_async_v2"})
    assert not bindings, f"runtime.py uses the bindings API: {bindings}"
    required = {s.rsplit(".", 1)[-1] for s in _trt.REQUIRED_API}
    for name in ("num_io_tensors", "get_tensor_name", "get_tensor_mode", "set_input_shape", "set_tensor_address",
                 "execute_async_v3", "deserialize_cuda_engine", "create_execution_context"):
        assert name in required, f"{name} is used by runtime.py but not listed in REQUIRED_API"


@pytest.mark.parametrize("case_id", ["corner_group_norm_3d", "corner_layer_norm_2axes"])
def test_normalization_v1_path(case_id):
    """TensorRT 10.0-10.14 have only add_normalization (v1): hide v2 and use that path on the installed builder
    (the conformance table's mode "api10.0" runs every normalization case this way)."""
    trt = _installed()
    if not _trt.has(trt, "INetworkDefinition.add_normalization"):
        pytest.skip(f"{_trt.version_string(trt)} has no add_normalization (v1) to exercise")
    from netdsl.backends import tensorrt as trt_backend
    from netdsl.backends.tensorrt import inspect, lower
    from tests.conformance.cases import CASES

    case = next(c for c in CASES if c.id == case_id)
    net = case.build()
    rng = np.random.default_rng(5)
    with _trt.hiding(*_trt.API_10_0_ABSENT):
        norms = [li for li in inspect.read(lower.lower(net.graph, trt).network, trt) if li.type == "NORMALIZATION"]
        assert norms and not any(li.params.get("is_v2") for li in norms), "the v1 layer was not used"
        for b in case.batches:
            rep = trt_backend.check(net.graph, case.feeds(rng, b), tol=case.tol)
            assert rep.ok, str(rep)
    assert _trt.normalization_v2(trt.Builder(_trt.logger(trt)).create_network(0)), "hiding() ended"
