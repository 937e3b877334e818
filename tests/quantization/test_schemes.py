"""Activation quantization schemes and least-squared-error ranges: the grid each scheme makes from a
calibrated range, and MSE ranges against a brute-force search of the real quantization error."""
from __future__ import annotations

import numpy as np
import pytest

from netdsl.dtypes import DType
from netdsl.quantization.observers import Observer
from netdsl.quantization.schemes import pick_scheme, qparams


def _fake_quant(x: np.ndarray, qp) -> np.ndarray:
    lo, hi = (0, 255) if qp.dtype is DType.uint8 else (-128, 127)
    z = qp.zero_point or 0
    return (np.clip(np.rint(x / qp.scale) + z, lo, hi) - z) * qp.scale


def test_each_scheme_makes_its_grid():
    assert qparams(-2.0, 1.0, "symmetric") == (DType.int8, 2.0 / 127, None)
    assert qparams(0.0, 3.0, "symmetric") == (DType.int8, 3.0 / 127, None)
    assert qparams(0.0, 3.0, "unsigned") == (DType.uint8, 3.0 / 255, 0)  # one more bit after a ReLU
    assert qparams(-1.0, 3.0, "unsigned")[0] is DType.int8  # negative values: symmetric int8
    dt, s, z = qparams(-1.0, 3.0, "asymmetric")
    assert dt is DType.uint8 and z % 2 == 0 and 0 < z < 255
    # the grid covers the whole range and holds 0 exactly
    assert -z * s <= -1.0 + 1e-9 and (255 - z) * s >= 3.0 - 1e-9 and s <= 4.0 / 254
    assert pick_scheme("auto", "tensorrt") == "symmetric" and pick_scheme("auto", None) == "asymmetric"
    assert pick_scheme("symmetric", "tensorrt") == "symmetric" and pick_scheme("unsigned", "onnx") == "unsigned"


@pytest.mark.parametrize("seed", [0, 1])
def test_mse_ranges_are_near_the_best_grid(seed):
    rng = np.random.default_rng(seed)
    x = rng.laplace(size=50_000) + 0.7  # heavy tails
    o = Observer()
    o.update(x)
    lo_mse, hi_mse = o.range("mse", scheme="asymmetric")
    lo_mm, hi_mm = o.range("minmax", scheme="asymmetric")
    err = lambda lo, hi: np.mean((_fake_quant(x, qparams(lo, hi, "asymmetric")) - x) ** 2)  # noqa: E731
    best = min(err(x.min() * a, x.max() * b) for a in np.linspace(0.3, 1, 36) for b in np.linspace(0.3, 1, 36))
    assert err(lo_mse, hi_mse) < 0.95 * err(lo_mm, hi_mm)  # the rare largest values no longer set the step
    assert err(lo_mse, hi_mse) <= 1.05 * best
    # one-sided (after a ReLU): uint8 over (0, t), t near the best of a brute-force search
    r = np.maximum(x, 0)
    o2 = Observer()
    o2.update(r)
    lo, t = o2.range("mse", scheme="unsigned")
    assert lo == 0.0
    e = lambda t: np.mean((_fake_quant(r, qparams(0.0, t, "unsigned")) - r) ** 2)  # noqa: E731
    assert e(t) <= 1.15 * min(e(r.max() * a) for a in np.linspace(0.01, 1, 200))
