"""Activation range observers: running min/max and a histogram of |x| from which the calibration
methods pick a clipping threshold (min-max, percentile, entropy)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .entropy import entropy_threshold

METHODS = ("minmax", "percentile", "entropy")
BINS = 2048


class Observer:
    """What calibration learns about one tensor: min, max and (for percentile/entropy) a histogram
    of |x| over [0, edge] that is re-binned when a later batch holds larger values."""

    def __init__(self, histogram: bool = True, bins: int = BINS):
        self.lo, self.hi = np.inf, -np.inf
        self.count = 0
        self.bins = bins
        self.hist: Optional[np.ndarray] = np.zeros(bins, np.float64) if histogram else None
        self.edge = 0.0

    def update(self, a: np.ndarray) -> None:
        a = np.asarray(a)
        if a.size == 0:
            return
        finite = a[np.isfinite(a)] if not np.all(np.isfinite(a)) else a
        if finite.size == 0:
            return
        self.lo = min(self.lo, float(finite.min()))
        self.hi = max(self.hi, float(finite.max()))
        self.count += int(finite.size)
        if self.hist is None:
            return
        amax = max(abs(self.lo), abs(self.hi))
        if amax > self.edge:
            self._rebin(amax)
        if self.edge > 0:
            h, _ = np.histogram(np.abs(finite), bins=self.bins, range=(0.0, self.edge))
            self.hist += h

    def _rebin(self, edge: float) -> None:
        if self.edge > 0 and self.hist is not None and self.hist.any():
            centers = (np.arange(self.bins) + 0.5) * (self.edge / self.bins)
            self.hist, _ = np.histogram(centers, bins=self.bins, range=(0.0, edge), weights=self.hist)
        self.edge = edge

    @property
    def amax(self) -> float:
        return max(abs(self.lo), abs(self.hi)) if self.count else 0.0

    def threshold(self, method: str, percentile: float = 99.99) -> float:
        """The |x| clipping threshold chosen by ``method``."""
        if method == "minmax" or self.hist is None or self.edge == 0:
            return self.amax
        width = self.edge / self.bins
        if method == "percentile":
            cdf = np.cumsum(self.hist)
            i = int(np.searchsorted(cdf, cdf[-1] * percentile / 100.0))
            return min(self.amax, (i + 1) * width)
        if method == "entropy":
            return min(self.amax, entropy_threshold(self.hist) * width)
        raise ValueError(f"unknown calibration method {method!r}; choose {', '.join(METHODS)}")
