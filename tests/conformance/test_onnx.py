"""Every conformance case exported to ONNX and run in ONNX Runtime against the float64 reference.

Each case is exported at opset 17 and at the newest opset the installed onnx knows; both pass the
full checker and strict shape inference; both run in ONNX Runtime (the newest at the newest opset
ONNX Runtime loads), for every batch size of the case (symbolic batch = dim_param).
"""
import numpy as np
import pytest

from netdsl.backends import reference

from .cases import CASES
from .compare import assert_close, graph_tolerance

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")

from netdsl.backends.onnx import compile as onnx_compile, to_model  # noqa: E402
from tests.backends.onnx._util import ort_max_opset  # noqa: E402

NEWEST = onnx.defs.onnx_opset_version()
RUN_OPSETS = sorted({17, min(NEWEST, ort_max_opset())})


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_onnx(case):
    if "onnx" in case.skip:
        pytest.skip(case.skip["onnx"])
    net = case.build()
    for opset in sorted({17, NEWEST}):
        model = to_model(net.graph, opset=opset)
        onnx.checker.check_model(model, full_check=True)
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    ref_model = reference.compile(net.graph, dtype="float64")
    for opset in RUN_OPSETS:
        if f"onnx-opset{opset}" in case.skip:  # a kernel ONNX Runtime lacks at that opset (reason in the case)
            continue
        compiled = onnx_compile(net.graph, opset=opset)
        rng = np.random.default_rng(0)
        for b in case.batches:
            feeds = case.feeds(rng, b)
            got, ref = compiled(feeds), ref_model(feeds)
            assert set(got) == set(ref)
            for k in ref:
                if ref[k].dtype.kind != "f":
                    assert got[k].dtype == ref[k].dtype, f"{k}: {got[k].dtype} != {ref[k].dtype}"
                assert_close(got[k], ref[k], "float32", case.tol, tol=graph_tolerance(net.graph, "float32"),
                             what=f"{case.name}:{k} opset {opset} batch {b}")
