"""fused_mish: conformance on every backend, its reference against PyTorch's Mish, its example."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from netdsl.plugins import conformance, load

HERE = Path(__file__).parent
PLUGIN = load(HERE)


def wide(rng, shapes):
    """Values far into both tails, where a naive softplus overflows."""
    return [rng.uniform(-40.0, 40.0, s) for s in shapes]


CASES = [
    conformance.Case("vector", [(7,)]),
    conformance.Case("image", [("N", 5, 9, 11)], sizes={"N": 3}),
    conformance.Case("wide", [("N", 4099)], sizes={"N": 2}, feeds=wide),
]


@pytest.mark.parametrize("check", conformance.checks(PLUGIN, CASES), ids=str)
def test_conformance(check):
    check.run_test()


def test_reference_matches_pytorch():
    torch = pytest.importorskip("torch", reason="torch not installed")
    x = np.random.default_rng(0).uniform(-40.0, 40.0, 5000)
    want = torch.nn.functional.mish(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(PLUGIN.opdef.reference(x), want, rtol=1e-12, atol=1e-300)


def test_example_passes_netdsl_check(capsys):
    from netdsl.cli import main
    backends = conformance.example_backends(PLUGIN)
    assert main(["check", str(HERE / "example.py"), "--backends", ",".join(backends)]) == 0, capsys.readouterr().out
