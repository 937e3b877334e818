"""Every reader fuzzed: mutated valid and hostile files give a WeightError naming the file, never anything else.

In-process property tests (hypothesis, bounded examples) over every target, and a short run of
``scripts/fuzz_checkpoints.py`` (each case in its own process, 3 GiB address space, timeout).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis not installed")
pytest.importorskip("torch", reason="torch not installed (the PyTorch seeds are written with it)")
pytest.importorskip("onnx", reason="onnx not installed (the ONNX seeds are written with it)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.weights.fuzzing import check, load_targets, mutate, write_seeds  # noqa: E402

_DIR = tempfile.mkdtemp(prefix="netdsl_fuzz_")
write_seeds(_DIR)
TARGETS = load_targets(_DIR)
OPS = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1 << 20), st.integers(-(1 << 62), 1 << 62)),
               min_size=1, max_size=4)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_every_seed():
    for t in TARGETS.values():
        for s in t.seeds:
            check(t, s, _DIR)


@pytest.mark.parametrize("name", sorted(TARGETS))
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(ops=OPS, which=st.integers(0, 100))
def test_mutations(name, ops, which):
    t = TARGETS[name]
    check(t, mutate(t.seeds[which % len(t.seeds)], ops), _DIR)


@pytest.mark.parametrize("name", sorted(TARGETS))
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.binary(max_size=512))
def test_random_bytes(name, data):
    check(TARGETS[name], data, _DIR)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_truncation_point(name):
    data = TARGETS[name].seeds[0]
    step = max(1, len(data) // 60)
    for cut in range(0, len(data), step):
        check(TARGETS[name], data[:cut], _DIR)


def test_harness_short_run(tmp_path):
    """The fuzz script itself: forked cases under RLIMIT_AS 3 GiB and a timeout; no failure of any kind."""
    out = tmp_path / "stats.json"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "fuzz_checkpoints.py"), "--cases", "144",
                        "--seed", "7", "--timeout", "30", "--json", str(out), "--out", str(tmp_path / "fail")],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": ROOT})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    stats = json.loads(out.read_text())
    assert set(stats) == set(TARGETS) and sum(s["inputs"] for s in stats.values()) == 144
    assert sum(s["clean"] for s in stats.values()) > 10  # the hostile seeds are refused, not read
