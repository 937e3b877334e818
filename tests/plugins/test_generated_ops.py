"""The framework on every engine, through a test plugin (tests/plugins/s2d_probe) that carries an
attribute of every kind, divides symbolic dims and has a second output of a fixed type."""
from __future__ import annotations

from pathlib import Path

import pytest

from netdsl.plugins import conformance, load

PROBE = load(Path(__file__).parent / "s2d_probe")
ATTRS = dict(block=2, alpha=0.5, flag=True, tag="abc", offsets=[1, -3], weights=[0.25, 0.125])
CASES = [
    conformance.Case("static", [(2, 3, 4, 6)], attrs=ATTRS),
    conformance.Case("symbolic", [("N", 3, "H", "W")], attrs=dict(ATTRS, block=3, alpha=-1.25),
                     sizes={"N": 2, "H": 6, "W": 9}),
]


@pytest.mark.parametrize("check", conformance.checks(PROBE, CASES), ids=str)
def test_conformance(check):
    check.run_test()


def test_attributes_reach_the_result():
    """Changing any attribute changes the reference result, so the checks above see a lost attribute."""
    import numpy as np
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 4))
    base = PROBE.opdef.run_reference([x], PROBE.opdef.normalize_attrs(ATTRS))[0]
    for k, v in dict(alpha=0.75, flag=False, tag="abcd", offsets=[1, -2], weights=[0.25]).items():
        other = PROBE.opdef.run_reference([x], PROBE.opdef.normalize_attrs(dict(ATTRS, **{k: v})))[0]
        assert not np.allclose(base, other), k
