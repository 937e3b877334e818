"""Every parser fuzzed (bounded examples): mutated files give a WeightError naming the file, never a crash/hang."""
from __future__ import annotations

import tempfile

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis not installed")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.weights.fuzzing import check, mutate, seeds  # noqa: E402

_DIR = tempfile.mkdtemp(prefix="netdsl_fuzz_")
SEEDS = seeds(_DIR)
OPS = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1 << 20), st.integers(-(1 << 62), 1 << 62)),
               min_size=1, max_size=4)


@pytest.mark.parametrize("fmt", sorted(SEEDS))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(ops=OPS)
def test_mutations(fmt, ops):
    check(fmt, mutate(SEEDS[fmt], ops), _DIR)


@pytest.mark.parametrize("fmt", sorted(SEEDS))
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.binary(max_size=512))
def test_random_bytes(fmt, data):
    check(fmt, data, _DIR)


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_every_truncation_point(fmt):
    data = SEEDS[fmt]
    step = max(1, len(data) // 150)
    for cut in range(0, len(data), step):
        check(fmt, data[:cut], _DIR)
