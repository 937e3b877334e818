"""TensorRT's classic entropy calibration: the clipping threshold whose 128-level quantization of the
|x| histogram loses the least information (smallest KL divergence from the clipped histogram)."""
from __future__ import annotations

import numpy as np

LEVELS = 128


def _kl(hist: np.ndarray, i: int, levels: int) -> float:
    """KL(P || Q): P = hist[:i] with the clipped tail folded into its last bin, Q = hist[:i] merged into
    ``levels`` bins and spread back over the non-empty bins it came from."""
    p = hist[:i].astype(np.float64)
    p[-1] += hist[i:].sum()
    nonzero = hist[:i] != 0
    edges = (np.arange(levels) * i) // levels
    sums = np.add.reduceat(hist[:i], edges)
    counts = np.add.reduceat(nonzero.astype(np.float64), edges)
    group = np.repeat(np.arange(levels), np.diff(np.append(edges, i)))
    q = np.where(nonzero, (sums / np.maximum(counts, 1))[group], 0.0)
    ps, qs = p.sum(), q.sum()
    if ps == 0 or qs == 0:
        return np.inf
    p, q = p / ps, q / qs
    m = p > 0
    q = np.where(m & (q == 0), 1e-12, q)  # a bin Q cannot represent: a large finite cost
    return float(np.sum(p[m] * np.log(p[m] / q[m])))


def entropy_threshold(hist: np.ndarray, levels: int = LEVELS, coarse: int = 16) -> float:
    """The threshold, in bins, minimizing KL divergence (searched every ``coarse`` bins, then refined)."""
    n = len(hist)
    if not hist.any() or n <= levels:
        return float(n)
    best = min(range(levels, n + 1, coarse), key=lambda i: _kl(hist, i, levels))
    lo, hi = max(levels, best - coarse + 1), min(n, best + coarse - 1)
    return float(min(range(lo, hi + 1), key=lambda i: _kl(hist, i, levels)))
