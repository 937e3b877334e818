"""Comparing a backend's outputs with the float64 reference, with tolerances set by precision."""
from __future__ import annotations

import numpy as np

# (rtol, atol) relative to the reference's magnitude (max |ref| over the output, at least 1)
TOLERANCES = {
    "float64": (1e-9, 1e-9),
    "float32": (1e-4, 1e-4),
    "float16": (2e-2, 2e-2),
    "bfloat16": (6e-2, 6e-2),
}


def errors(got: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """(max abs error, max abs error / max |ref|)."""
    got = np.asarray(got, np.float64)
    ref = np.asarray(ref, np.float64)
    if got.shape != ref.shape:
        raise AssertionError(f"shape {got.shape} != reference shape {ref.shape}")
    if ref.size == 0:
        return 0.0, 0.0
    finite = np.isfinite(ref)
    if not np.array_equal(finite, np.isfinite(got)) or not np.array_equal(ref[~finite], got[~finite]):
        return float("inf"), float("inf")
    d = np.abs(got[finite] - ref[finite])
    mx = float(d.max()) if d.size else 0.0
    scale = max(float(np.abs(ref[finite]).max()) if d.size else 0.0, 1.0)
    return mx, mx / scale


def assert_close(got: np.ndarray, ref: np.ndarray, precision: str = "float32", scale: float = 1.0,
                 what: str = "output") -> None:
    """Fail unless ``got`` matches ``ref``: exact for integer/bool outputs, tolerance by precision else."""
    ref = np.asarray(ref)
    got = np.asarray(got)
    if ref.dtype.kind in "biu":
        if got.shape != ref.shape or not np.array_equal(got.astype(ref.dtype), ref):
            bad = np.argwhere(got.astype(ref.dtype) != ref)[:5] if got.shape == ref.shape else "shape"
            raise AssertionError(f"{what}: integer/bool result differs from the reference at {bad}")
        return
    rtol, atol = TOLERANCES[precision]
    mx, rel = errors(got, ref)
    limit = (atol + rtol) * scale
    if not rel <= limit:
        raise AssertionError(f"{what}: max abs err {mx:.3g}, relative {rel:.3g} > {limit:.3g} ({precision})")
