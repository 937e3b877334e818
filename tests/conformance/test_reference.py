"""Table sanity: every catalogue op has a case; float32 reference agrees with float64."""
import numpy as np
import pytest

from netdsl.backends import reference
from netdsl.ops import all_ops

from .cases import CASES
from .compare import assert_close, graph_tolerance


def test_every_catalogue_op_has_a_case():
    covered = {c.op for c in CASES}
    missing = sorted(n for n, d in all_ops().items() if d.plugin is None and n not in covered
                     and n not in ("parameter",))
    assert not missing, f"ops without a conformance case: {missing}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_reference_float32_vs_float64(case):
    net = case.build()
    rng = np.random.default_rng(0)
    m32 = reference.compile(net.graph, dtype="float32")
    m64 = reference.compile(net.graph, dtype="float64")
    for b in case.batches:
        feeds = case.feeds(rng, b)
        got, ref = m32(feeds), m64(feeds)
        for k in ref:
            assert_close(got[k], ref[k], "float32", case.tol, tol=graph_tolerance(net.graph, "float32"),
                         what=f"{case.name}:{k} batch {b}")
