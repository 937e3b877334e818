"""Every conformance case exported to ONNX: full checker, strict shape inference, ONNX Runtime vs reference."""
import numpy as np
import pytest

from netdsl.backends import reference

from .cases import CASES
from .compare import assert_close

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")

from netdsl.backends.onnx import compile as onnx_compile, to_model  # noqa: E402


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_onnx(case):
    if "onnx" in case.skip:
        pytest.skip(case.skip["onnx"])
    net = case.build()
    model = to_model(net.graph, opset=17)
    onnx.checker.check_model(model, full_check=True)
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    compiled = onnx_compile(net.graph, opset=17)
    ref_model = reference.compile(net.graph, dtype="float64")
    rng = np.random.default_rng(0)
    for b in case.batches:
        feeds = case.feeds(rng, b)
        got, ref = compiled(feeds), ref_model(feeds)
        assert set(got) == set(ref)
        for k in ref:
            assert got[k].dtype == ref[k].dtype or ref[k].dtype.kind == "f", (k, got[k].dtype, ref[k].dtype)
            assert_close(got[k], ref[k], "float32", case.tol, what=f"{case.name}:{k} batch {b}")
