"""The TensorRT evaluator (inspect.py) checked by networks it did not make, on every setting netdsl emits.

1. Every network of onnx_networks.py (ONNX graphs written with onnx.helper) is parsed by TensorRT-RTX's
   ``OnnxParser``, evaluated by inspect.py and compared element-wise with ONNX Runtime.
2. The coverage gate: every layer *setting* (settings.py: layer type + the discrete choices that change
   its semantics) that netdsl's lowering emits for the conformance table, at every precision and with
   symbolic or bound dims, occurs in one of those parsed networks. A lowering that starts emitting a new
   setting fails here until a validating ONNX network is added.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest

trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed (pip install tensorrt-rtx)")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")

from netdsl.backends.tensorrt import _trt, inspect, settings  # noqa: E402

from .onnx_networks import NETS, UNREACHABLE, OnnxNet  # noqa: E402


def parse(n: OnnxNet) -> tuple:
    """(builder, network, parser, model bytes): the network as TensorRT's own ONNX parser builds it."""
    data = n.model().SerializeToString()
    lg = _trt.logger(trt)
    builder = trt.Builder(lg)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, lg)
    if n.asymmetric_quantization:
        parser.set_flag(trt.OnnxParserFlag.ENABLE_UINT8_AND_ASYMMETRIC_QUANTIZATION_DLA)
    ok = parser.parse(data)
    assert ok, f"{n.name}: TensorRT's parser refused it: " + "; ".join(str(parser.get_error(i))
                                                                      for i in range(parser.num_errors))
    return builder, network, parser, data


@functools.lru_cache(maxsize=1)
def validated_settings() -> frozenset:
    out = set()
    for n in NETS:
        _, network, _, _ = parse(n)
        out |= settings.network_settings(network, trt)
    return frozenset(out)


@pytest.mark.parametrize("n", NETS, ids=lambda n: n.name)
def test_evaluator_matches_onnxruntime(n):
    _, network, _, data = parse(n)
    feeds = n.feeds()
    got = inspect.evaluate(network, feeds, trt)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # ONNX semantics, node by node
    sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    ref = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    rtol, atol = n.tol
    for name, r in ref.items():
        g = got[name]
        assert g.shape == r.shape, f"{n.name}:{name}: shape {g.shape}, ONNX Runtime {r.shape}"
        if r.dtype.kind in "biu":
            np.testing.assert_array_equal(g.astype(r.dtype), r, err_msg=f"{n.name}:{name}")
            continue
        r64, g64 = r.astype(np.float64), g.astype(np.float64)
        bad = np.abs(g64 - r64) > atol + rtol * np.abs(r64)
        assert not bad.any(), (f"{n.name}:{name}: {int(bad.sum())} elements differ from ONNX Runtime, e.g. at "
                               f"{tuple(np.argwhere(bad)[0])}: inspect {g64[bad][0]:.8g}, onnxruntime {r64[bad][0]:.8g}")


@functools.lru_cache(maxsize=1)
def lowered_settings() -> dict:
    """setting -> the first conformance case (and mode) whose lowering emits it."""
    from netdsl.backends.tensorrt.cpu_proof import bind_symbols
    from netdsl.backends.tensorrt.lower import lower
    from tests.conformance.cases import CASES
    out: dict = {}
    for case in CASES:
        if case.skip.get("tensorrt"):
            continue
        g = case.build().graph
        graphs = [("dynamic", g)] + ([("static", bind_symbols(g, {s: case.batches[0] for s in g.symbols}))]
                                    if g.symbols else [])
        for precision in ("float32", "float16", "bfloat16"):
            if case.skip.get(f"tensorrt-{precision}"):
                continue
            for mode, gg in graphs:
                for s in settings.network_settings(lower(gg, trt, precision=precision).network, trt):
                    out.setdefault(s, f"{case.name} ({precision}, {mode})")
        with _trt.hiding(*_trt.API_10_0_ABSENT):  # the fallbacks for TensorRT 10.0-10.14
            for s in settings.network_settings(lower(g, trt).network, trt):
                out.setdefault(s, f"{case.name} (float32, TensorRT 10.0 API)")
    return out


def test_every_lowered_setting_is_validated_by_an_onnx_network():
    emitted = lowered_settings()
    missing = [s for s in settings.uncovered(emitted, validated_settings()) if s not in UNREACHABLE]
    assert not missing, ("layer settings emitted by netdsl's TensorRT lowering that no ONNX network in "
                         "tests/backends/tensorrt/onnx_networks.py validates:\n"
                         + "\n".join(f"  {s}  (first from {emitted[s]})" for s in missing))


def test_unreachable_settings_are_really_emitted_and_explained():
    emitted = lowered_settings()
    stale = [s for s in UNREACHABLE if s not in emitted]
    assert not stale, f"UNREACHABLE lists settings the lowering no longer emits: {stale}"
    assert all(isinstance(v, str) and len(v) > 20 for v in UNREACHABLE.values())


def test_settings_name_what_changes_the_semantics():
    from .onnx_networks import find
    conv = settings.network_settings(parse(find("conv_groups_asym_weights_weights"))[1], trt)
    assert ("CONVOLUTION", "nd=2", "pad=EXPLICIT_ROUND_DOWN", "padded", "asym", "stride", "dilation", "groups",
            "kernel=weights", "bias=weights") in conv
    assert ("ACTIVATION", "SELU") in settings.network_settings(parse(find("act_Selu"))[1], trt)
    sl = settings.network_settings(parse(find("slice_negative_steps"))[1], trt)
    assert ("SLICE", "mode=STRICT_BOUNDS", "negative_stride") in sl  # the stride arithmetic facet
    assert any(s[:3] == ("SLICE", "mode=STRICT_BOUNDS", "start=tensor") for s in sl)  # the value-source facet
    rs = settings.network_settings(parse(find("resize_nearest_half_pixel_down_floor"))[1], trt)
    assert ("RESIZE", "NEAREST", "HALF_PIXEL", "selector=FORMULA", "round=HALF_DOWN", "size=scales", "down") in rs
