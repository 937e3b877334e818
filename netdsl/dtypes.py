"""Element types of netdsl tensors and their NumPy counterparts."""
from __future__ import annotations

import functools
from enum import Enum
from typing import Any

import numpy as np


class DType(str, Enum):
    """Element type of a tensor. Values are the canonical lower-case names."""

    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"
    float64 = "float64"
    int8 = "int8"
    uint8 = "uint8"
    int32 = "int32"
    int64 = "int64"
    bool = "bool"

    def __str__(self) -> str:
        return self.value

    __repr__ = __str__

    @property
    def is_float(self) -> bool:
        return self in (DType.float32, DType.float16, DType.bfloat16, DType.float64)

    @property
    def is_int(self) -> bool:
        return self in (DType.int8, DType.uint8, DType.int32, DType.int64)

    @property
    def itemsize(self) -> int:
        return {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int8": 1,
                "uint8": 1, "int32": 4, "int64": 8, "bool": 1}[self.value]

    @property
    def numpy(self) -> np.dtype:
        """The NumPy dtype used to hold values of this type (bfloat16 is held as float32)."""
        if self is DType.bfloat16:
            return np.dtype(np.float32)
        return np.dtype(self.value)


_ALIASES = {"float": "float32", "f32": "float32", "fp32": "float32", "half": "float16",
            "f16": "float16", "fp16": "float16", "bf16": "bfloat16", "double": "float64",
            "f64": "float64", "int": "int32", "i32": "int32", "i64": "int64", "long": "int64",
            "bool_": "bool", "i8": "int8", "u8": "uint8"}


def as_dtype(x: Any) -> DType:
    """Convert a DType, a name ('float32', 'fp16', 'bf16' ...) or a NumPy dtype to a DType."""
    if isinstance(x, DType):
        return x
    if isinstance(x, str):
        name = _ALIASES.get(x.lower(), x.lower())
    else:
        try:
            name = np.dtype(x).name
        except TypeError:
            raise TypeError(f"not a dtype: {x!r}") from None
    try:
        return DType(name)
    except ValueError:
        raise TypeError(f"unsupported dtype {x!r}; netdsl knows {', '.join(d.value for d in DType)}") from None


@functools.lru_cache(maxsize=64)
def _canonical(dtype: Any) -> np.dtype:
    """NumPy's canonical, native-order dtype object for ``dtype`` (``'<f4'`` -> float32)."""
    return np.dtype(np.dtype(dtype).name)


def canonical_array(arr: Any, dtype: Any = None) -> np.ndarray:
    """``arr`` as engines expect array data: NumPy's canonical ``dtype`` object (native byte order),
    C-contiguous and aligned; no copy when it already is (memory-mapped weights stay mapped).

    Readers may return views with an explicit byte order (``'<f4'``, ``'>f4'``), Fortran order or
    unaligned storage (legacy PyTorch, zip members); engines such as TensorRT accept only the
    canonical form, so every parameter's data passes through here (``Param.value``).
    """
    arr = np.asarray(arr)
    dt = dtype if dtype is not None else arr.dtype
    try:
        want = _canonical(dt)
    except TypeError:  # an unhashable dtype description
        want = np.dtype(np.dtype(dt).name)
    if arr.dtype != want or not arr.dtype.isnative:
        arr = arr.astype(want)
    elif arr.dtype is not want:  # same values and byte order, another dtype object ('<f4' vs float32)
        arr = arr.view(want)
    if not (arr.flags.c_contiguous and arr.flags.aligned):
        arr = np.array(arr, dtype=want, order="C", copy=True)
    return arr
