"""Every conformance case through TensorRT (TensorRT-RTX's real builder, no GPU needed):

4a the lowered network builds and serializes; 4b TensorRT's inferred shape of every DSL tensor equals
netdsl's, with a dynamic-batch profile and with the batch bound statically; 4c the network read back
from TensorRT (netdsl.backends.tensorrt.inspect) evaluates to the float64 reference. The precision
pass (float16 / bfloat16) runs the same proof at the looser tolerance. Mode "api10.0" hides the API
TensorRT 10.0-10.14 lack (add_normalization_v2) so that the lowering's fallbacks run on the real builder.
"""
from __future__ import annotations

import numpy as np
import pytest

from .cases import CASES

pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed (pip install tensorrt-rtx)")
from netdsl.backends import tensorrt as trtb  # noqa: E402
from netdsl.backends.tensorrt import _trt  # noqa: E402

MODES = ("float32", "static", "float16", "bfloat16", "api10.0")
# ops whose lowering differs where TensorRT 10.0-10.14 lack an API (mode "api10.0" hides it on the builder)
API_DEPENDENT = {"group_norm", "layer_norm", "instance_norm"}


def _skip(case, mode):
    reason = case.skip.get("tensorrt") or case.skip.get(f"tensorrt-{mode}")
    if reason:
        pytest.skip(reason)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_tensorrt(case, mode):
    _skip(case, mode)
    net = case.build()
    g = net.graph
    if mode == "api10.0":
        if not API_DEPENDENT & {n.op for n in g.nodes}:
            pytest.skip("no lowering here depends on API newer than TensorRT 10.0")
        with _trt.hiding(*_trt.API_10_0_ABSENT):
            return _run(case, g, "float32", None)
    precision = mode if mode in ("float16", "bfloat16") else "float32"
    if precision != "float32" and not any(v.dtype.is_float for v in g.values()):
        pytest.skip("no floating-point tensor: the precision pass changes nothing")
    if mode == "static" and not g.symbols:
        pytest.skip("no symbolic dims: covered by the float32 run")
    _run(case, g, precision, mode)


def _run(case, g, precision, mode):
    rng = np.random.default_rng(2024)
    dyn = {s: (1, max(case.batches), max(case.batches) + 2) for s in g.symbols}
    for b in case.batches:
        feeds = case.feeds(rng, b)
        static = {s: b for s in g.symbols} if mode == "static" else None
        rep = trtb.check(g, feeds, precision=precision, dynamic=None if static else dyn, static=static,
                         flavour="tensorrt_rtx", tol=case.tol)
        assert rep.ok, f"batch {b}:\n{rep}"


def test_every_op_has_a_tensorrt_lowering():
    from netdsl.ops import all_ops
    missing = sorted(n for n, d in all_ops().items() if d.plugin is None and n not in trtb.LOWERINGS)
    assert not missing, f"ops without a TensorRT lowering: {missing}"
