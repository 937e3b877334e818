"""Activation range observers: running min/max, a histogram of x from which the calibration methods
pick a clipping range (min-max, percentile, entropy, mse), and per-channel magnitudes (for channel
equalization)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .entropy import entropy_threshold

METHODS = ("minmax", "percentile", "entropy", "mse")
BINS = 2048


class Observer:
    """What calibration learns about one tensor: min, max, how many exact zeros, a histogram of x over
    [-edge, edge] in ``2 * bins`` bins (re-binned when a later batch holds larger values), and with
    ``channel_axis`` the largest |x| of each channel along that axis."""

    def __init__(self, histogram: bool = True, bins: int = BINS, channel_axis: Optional[int] = None):
        self.lo, self.hi = np.inf, -np.inf
        self.count = 0
        self.zeros = 0
        self.bins = bins
        self.signed_hist: Optional[np.ndarray] = np.zeros(2 * bins, np.float64) if histogram else None
        self.edge = 0.0
        self.channel_axis = channel_axis
        self.channel_amax: Optional[np.ndarray] = None
        self._channel_sq: Optional[np.ndarray] = None
        self._channel_n = 0

    def update(self, a: np.ndarray) -> None:
        a = np.asarray(a)
        if a.size == 0:
            return
        if self.channel_axis is not None and a.ndim > 0:
            ax = self.channel_axis % a.ndim
            red = tuple(i for i in range(a.ndim) if i != ax)
            f = np.where(np.isfinite(a), a, 0).astype(np.float64)
            m, sq = np.abs(f).max(axis=red), np.square(f).sum(axis=red)
            self.channel_amax = m if self.channel_amax is None else np.maximum(self.channel_amax, m)
            self._channel_sq = sq if self._channel_sq is None else self._channel_sq + sq
            self._channel_n += a.size // a.shape[ax]
        finite = a[np.isfinite(a)] if not np.all(np.isfinite(a)) else a
        if finite.size == 0:
            return
        self.lo = min(self.lo, float(finite.min()))
        self.hi = max(self.hi, float(finite.max()))
        self.count += int(finite.size)
        self.zeros += int(np.count_nonzero(finite == 0))
        if self.signed_hist is None:
            return
        amax = max(abs(self.lo), abs(self.hi))
        if amax > self.edge:
            self._rebin(amax)
        if self.edge > 0:
            h, _ = np.histogram(finite, bins=2 * self.bins, range=(-self.edge, self.edge))
            self.signed_hist += h

    @property
    def channel_msq(self) -> Optional[np.ndarray]:
        """The mean of x**2 of each channel along ``channel_axis``."""
        return None if self._channel_sq is None else self._channel_sq / max(self._channel_n, 1)

    def _rebin(self, edge: float) -> None:
        h = self.signed_hist
        if self.edge > 0 and h is not None and h.any():
            centers = (np.arange(-self.bins, self.bins) + 0.5) * (self.edge / self.bins)
            self.signed_hist, _ = np.histogram(centers, bins=2 * self.bins, range=(-edge, edge), weights=h)
        self.edge = edge

    @property
    def hist(self) -> Optional[np.ndarray]:
        """The histogram of |x| over [0, edge] in ``bins`` bins."""
        h = self.signed_hist
        return None if h is None else h[self.bins:] + h[:self.bins][::-1]

    @property
    def amax(self) -> float:
        return max(abs(self.lo), abs(self.hi)) if self.count else 0.0

    def threshold(self, method: str, percentile: float = 99.99) -> float:
        """The |x| clipping threshold chosen by ``method`` (symmetric quantization, ``2**7 - 1`` levels)."""
        return self._threshold(method, percentile, 127)

    def _threshold(self, method: str, percentile: float, levels: int) -> float:
        if method not in METHODS:
            raise ValueError(f"unknown calibration method {method!r}; choose {', '.join(METHODS)}")
        hist = self.hist
        if method == "minmax" or hist is None or self.edge == 0:
            return self.amax
        width = self.edge / self.bins
        if method == "percentile":
            cdf = np.cumsum(hist)
            i = int(np.searchsorted(cdf, cdf[-1] * percentile / 100.0))
            return min(self.amax, (i + 1) * width)
        if method == "entropy":
            return min(self.amax, entropy_threshold(hist) * width)
        return min(self.amax, mse_threshold(hist, width, levels, self.zeros))

    def range(self, method: str, percentile: float = 99.99, scheme: str = "symmetric") -> tuple[float, float]:
        """The (lo, hi) clipping range ``method`` chooses for quantization ``scheme``: symmetric
        (-t, t); unsigned (0, t) for a tensor never seen negative, else symmetric; asymmetric (lo, hi)
        around the data (entropy stays symmetric: TensorRT's algorithm is defined on |x|)."""
        if self.count == 0:
            return 0.0, 0.0
        nonneg = self.lo >= 0
        if scheme == "symmetric" or (scheme == "unsigned" and not nonneg):
            t = self.threshold(method, percentile)
            return -t, t
        if nonneg:
            return 0.0, self._threshold(method, percentile, 255)
        h = self.signed_hist
        if method == "minmax" or h is None or self.edge == 0:
            return self.lo, self.hi
        if method == "entropy":
            t = self.threshold(method, percentile)
            return max(self.lo, -t), min(self.hi, t)
        edges = np.linspace(-self.edge, self.edge, 2 * self.bins + 1)
        if method == "percentile":
            cdf = np.cumsum(h)
            tail = cdf[-1] * (1 - percentile / 100.0)
            i = int(np.searchsorted(cdf, tail))
            j = int(np.searchsorted(cdf, cdf[-1] - tail))
            return max(self.lo, min(0.0, edges[i])), min(self.hi, max(0.0, edges[j + 1]))
        lo, hi = mse_range(h, edges, self.zeros)
        return max(self.lo, lo), min(self.hi, hi)


def _tail_costs(counts: np.ndarray, centers: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """sum over bins with center > bound of count * (center - bound)**2, for every bound (sorted centers)."""
    # suffix sums of n, n*c, n*c^2 from the first bin whose center exceeds each bound
    n = np.concatenate([np.cumsum(counts[::-1])[::-1], [0.0]])
    nc = np.concatenate([np.cumsum((counts * centers)[::-1])[::-1], [0.0]])
    ncc = np.concatenate([np.cumsum((counts * centers ** 2)[::-1])[::-1], [0.0]])
    k = np.searchsorted(centers, bounds, side="right")
    return ncc[k] - 2 * bounds * nc[k] + bounds ** 2 * n[k]


def mse_threshold(hist: np.ndarray, width: float, levels: int, zeros: int = 0) -> float:
    """The |x| threshold t of least expected squared error for ``levels`` steps over [0, t]: rounding
    noise (t / levels)**2 / 12 per value inside (exact zeros excepted: zero is on the grid) plus the
    squared distance of every clipped value to t."""
    hist = np.asarray(hist, np.float64)
    centers = (np.arange(len(hist)) + 0.5) * width
    cand = (np.arange(len(hist)) + 1) * width
    inside = np.cumsum(hist) - min(float(zeros), float(hist[0]))
    cost = inside * (cand / levels) ** 2 / 12 + _tail_costs(hist, centers, cand)
    return float(cand[int(np.argmin(cost))])


def mse_range(hist: np.ndarray, edges: np.ndarray, zeros: int = 0, grid: int = 160) -> tuple[float, float]:
    """The (lo, hi) range, lo < 0 < hi, of least expected squared error for a 256-level asymmetric
    grid on a signed histogram (bin edges ``edges``): a search over ``grid`` candidates per side."""
    hist = np.asarray(hist, np.float64)
    centers = (edges[:-1] + edges[1:]) / 2
    nz = np.nonzero(hist)[0]
    lo_min, hi_max = min(edges[nz[0]], 0.0), max(edges[nz[-1] + 1], 0.0)
    los = lo_min * np.linspace(1.0 / grid, 1.0, grid)
    his = hi_max * np.linspace(1.0 / grid, 1.0, grid)
    lower = _tail_costs(hist[::-1], -centers[::-1], -los)     # values below lo
    upper = _tail_costs(hist, centers, his)                  # values above hi
    cdf = np.concatenate([[0.0], np.cumsum(hist)])
    below = cdf[np.searchsorted(edges, los, side="right") - 1]
    above = cdf[-1] - cdf[np.minimum(np.searchsorted(edges, his, side="left"), len(edges) - 1)]
    inside = np.maximum(cdf[-1] - below[:, None] - above[None, :] - zeros, 0.0)
    step = (his[None, :] - los[:, None]) / 255.0
    cost = inside * step ** 2 / 12 + lower[:, None] + upper[None, :]
    i, j = np.unravel_index(int(np.argmin(cost)), cost.shape)
    return float(los[i]), float(his[j])
