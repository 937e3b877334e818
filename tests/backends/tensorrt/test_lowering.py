"""TensorRT-specific lowering cases (cases_trt.py) through the CPU proof: build, shapes, evaluation."""
import numpy as np
import pytest

pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed (pip install tensorrt-rtx)")

from netdsl.backends import tensorrt as trt_backend  # noqa: E402

from .cases_trt import CASES_TRT  # noqa: E402


@pytest.mark.parametrize("case", CASES_TRT, ids=lambda c: c.id)
def test_cpu_proof(case):
    net = case.build()
    rng = np.random.default_rng(11)
    for b in case.batches:
        rep = trt_backend.check(net.graph, case.feeds(rng, b), flavour="tensorrt_rtx", tol=case.tol)
        assert rep.ok, str(rep)
