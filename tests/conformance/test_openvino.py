"""Every conformance case on OpenVINO (CPU): f32 vs the float64 reference at every batch size (symbolic
dims compiled as bounded dynamic dimensions, and fixed for the first batch size), and bf16 with the looser
tolerance (symbolic dims unbounded)."""
from __future__ import annotations

import numpy as np
import pytest

from netdsl.backends import reference

from .cases import CASES
from .compare import assert_close, graph_tolerance

ov = pytest.importorskip("openvino", reason="openvino is not installed (pip install openvino)")
from netdsl.backends import openvino as ovb  # noqa: E402

PRECISIONS = {"f32": "float32", "bf16": "bfloat16"}


def _ids(c):
    return c.id


@pytest.mark.parametrize("precision", sorted(PRECISIONS))
@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_openvino(case, precision):
    reason = case.skip.get("openvino") or case.skip.get(f"openvino-{precision}")
    if reason:
        pytest.skip(reason)
    net = case.build()
    g = net.graph
    # symbolic dims: f32 compiles them once as bounded dynamic dims (and once more with them fixed, for the
    # first batch size); bf16 compiles them once, unbounded
    ranges = {s: (1, max(case.batches) + 2) for s in g.symbols} if precision == "f32" else None
    model = ovb.compile(g, precision=precision, dynamic=ranges)
    fixed = ovb.compile(g, precision=precision, dynamic={s: case.batches[0] for s in g.symbols}) \
        if ranges else None
    oracle = reference.compile(g, dtype="float64")
    rng = np.random.default_rng(1234)
    for i, b in enumerate(case.batches):
        feeds = case.feeds(rng, b)
        got, ref = (fixed if i == 0 and fixed else model)(feeds), oracle(feeds)
        assert set(got) == set(ref)
        for k in ref:
            assert got[k].shape == ref[k].shape, f"{case.name}:{k} batch {b}: shape {got[k].shape} != {ref[k].shape}"
            assert_close(got[k], ref[k], PRECISIONS[precision], case.tol,
                         tol=graph_tolerance(g, PRECISIONS[precision]),
                         what=f"{case.name}:{k} batch {b} {precision}")


def test_every_op_has_an_openvino_lowering():
    from netdsl.ops import all_ops
    missing = sorted(n for n, d in all_ops().items() if d.plugin is None and n not in ovb.supported_ops())
    assert not missing, f"ops without an OpenVINO lowering: {missing}"


def test_every_op_is_checked_on_openvino():
    """Each catalogue op has at least one case that is not skipped on OpenVINO."""
    from netdsl.ops import all_ops
    run = {c.op for c in CASES if "openvino" not in c.skip}
    missing = sorted(n for n, d in all_ops().items() if d.plugin is None and n not in run and n != "parameter")
    assert not missing, f"ops never run on OpenVINO: {missing}"
