"""Entropy (KL) calibration against TensorRT's documented algorithm, transcribed here with plain loops
from its description (Migacz, "8-bit Inference with TensorRT", GTC 2017: for i in 128..2047, P = the
first i bins with the outliers added to the last, Q = those bins quantized into 128 levels and expanded
over their non-empty bins, KL(P||Q), threshold = (m + 0.5) bins), zero bins smoothed as MXNet's port
of it does, bin 0 counted as bin 1 as NVIDIA's pytorch-quantization does."""
from __future__ import annotations

import math

import numpy as np
import pytest

from netdsl.quantization.entropy import entropy_threshold


def smoothed(dist: list, eps: float = 1e-4) -> list:
    zeros = sum(1 for v in dist if v == 0)
    nonzeros = len(dist) - zeros
    take = eps * zeros / nonzeros
    return [eps if v == 0 else v - take for v in dist]


def documented_threshold(hist, levels: int = 128) -> float:
    bins = [float(v) for v in hist]
    bins[0] = bins[1]
    divergence = {}
    for i in range(levels, len(bins)):
        reference = bins[:i]
        reference[i - 1] += sum(bins[i:])
        merged, members = [0.0] * levels, [[] for _ in range(levels)]
        for j in range(i):
            merged[j * levels // i] += bins[j]
            members[j * levels // i].append(j)
        candidate = [0.0] * i
        for k in range(levels):
            nonempty = [j for j in members[k] if bins[j] != 0]
            for j in nonempty:
                candidate[j] = merged[k] / len(nonempty)
        if not any(candidate):
            continue
        p, q = smoothed(reference), smoothed(candidate)
        sp, sq = sum(p), sum(q)
        divergence[i] = sum(a / sp * math.log((a / sp) / (b / sq)) for a, b in zip(p, q) if a > 0)
    m = min(divergence, key=divergence.get)
    return m + 0.5


def histograms():
    rng = np.random.default_rng(0)
    n = 640
    relu = np.maximum(rng.normal(0.3, 1.0, 50000), 0)  # a spike of zeros, then a Gaussian tail
    yield "gaussian", np.histogram(np.abs(rng.normal(0, 1, 50000)), n, (0, 5))[0]
    yield "relu", np.histogram(relu, n, (0, relu.max()))[0]
    heavy = np.abs(rng.standard_t(2, 50000))
    yield "heavy tail", np.histogram(heavy, n, (0, heavy.max()))[0]
    yield "outliers", np.histogram(np.abs(np.concatenate([rng.normal(0, 1, 30000), [9.5, 9.0]])), n, (0, 10))[0]
    gaps = np.abs(rng.normal(0, 1, 30000))
    gaps = gaps[(gaps < 1) | (gaps > 1.5)]  # empty bins inside the range
    yield "gaps", np.histogram(gaps, n, (0, gaps.max()))[0]


@pytest.mark.parametrize("name,hist", list(histograms()), ids=[h[0] for h in histograms()])
def test_threshold_is_the_documented_algorithms(name, hist):
    assert np.count_nonzero(hist) >= 128
    assert entropy_threshold(hist) == documented_threshold(hist)


def test_fewer_magnitudes_than_levels_keep_the_whole_range():
    """An image of 8 grey levels: the documented search degenerates (the candidate just past the first
    level holds all of P in its last bin, KL 0, and would clip at 1/8 of the range)."""
    hist = np.histogram(np.random.default_rng(3).integers(1, 9, 20000) / 8.0, 1024, (0, 1.0001))[0]
    assert documented_threshold(hist) == 128.5
    assert entropy_threshold(hist) == 1024


def test_a_spike_at_zero_does_not_drag_the_threshold_down():
    """A ReLU's output (two thirds exact zeros): the threshold follows the positive values."""
    x = np.maximum(np.random.default_rng(4).normal(-0.4, 1.0, 200000), 0)
    edge = x.max()
    t = entropy_threshold(np.histogram(x, 2048, (0, edge))[0]) * edge / 2048
    assert t > 0.5 * np.percentile(x[x > 0], 99.9), t


def test_outliers_clipped_uniform_kept():
    rng = np.random.default_rng(1)
    h = np.histogram(np.abs(np.concatenate([rng.normal(0, 1, 100000), [60.0, -55.0]])), 2048, (0, 60))[0]
    t = entropy_threshold(h) * 60 / 2048
    assert 2.0 < t < 10.0, t  # the two outliers cut off, the Gaussian kept
    assert entropy_threshold(np.full(2048, 100.0)) >= 2000  # no tail: nothing to gain by clipping
