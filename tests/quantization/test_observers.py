"""Calibration methods on data whose right answer is known."""
from __future__ import annotations

import numpy as np
import pytest

from netdsl.quantization.entropy import entropy_threshold
from netdsl.quantization.observers import Observer


def test_minmax_is_the_largest_magnitude_over_all_batches():
    rng = np.random.default_rng(0)
    o = Observer(histogram=False)
    batches = [rng.normal(0, s, 1000) for s in (1.0, 3.0, 0.5)]
    for b in batches:
        o.update(b)
    allv = np.concatenate(batches)
    assert o.threshold("minmax") == pytest.approx(np.abs(allv).max())
    assert (o.lo, o.hi) == (allv.min(), allv.max())


def test_histogram_rebinning_keeps_every_count_and_the_percentile():
    rng = np.random.default_rng(1)
    o = Observer()
    parts = [rng.uniform(-1, 1, 20000), rng.uniform(-4, 4, 20000), rng.uniform(-2, 2, 20000)]  # range grows
    for p in parts:
        o.update(p)
    assert o.hist.sum() == 60000
    allv = np.abs(np.concatenate(parts))
    assert o.threshold("percentile", 90.0) == pytest.approx(np.percentile(allv, 90.0), rel=0.01)


def test_percentile_ignores_rare_outliers_and_entropy_clips_a_long_tail():
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(0, 1, 200000), [60.0, -55.0]])
    o = Observer()
    o.update(x)
    assert o.threshold("minmax") == 60.0
    assert 3.0 < o.threshold("percentile", 99.99) < 5.0
    t = o.threshold("entropy")
    assert 2.0 < t < 20.0, t  # clips the two outliers, keeps the bulk of the Gaussian


def test_entropy_keeps_the_whole_range_of_a_uniform_distribution():
    hist = np.full(2048, 100.0)
    assert entropy_threshold(hist) >= 2000  # nothing to gain by clipping: no tail


def test_unknown_method_is_refused():
    o = Observer()
    o.update(np.arange(5.0))
    with pytest.raises(ValueError, match="minmax, percentile, entropy, mse"):
        o.threshold("kl")
