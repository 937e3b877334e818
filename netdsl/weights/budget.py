"""How much memory a checkpoint may make its reader allocate, checked before allocating.

Memory-mapping the file is free here; what counts is heap memory a reader allocates because the
file says so: objects a pickle builds (and the arguments its calls copy), decompressed zip members,
datasets the HDF5 library reads, widened dtypes (bfloat16/float8 -> float32), byte-swapped copies,
views that repeat their storage (stride 0), the index of the tensors itself. Every such allocation is charged to the checkpoint's
:class:`Budget` before it happens, per tensor and in total. The limit is
``max(MIN_BUDGET, RATIO * input bytes)`` (input bytes: the file, or all shards), or the
``memory_budget=`` option of :func:`~netdsl.weights.open_checkpoint` in bytes.
"""
from __future__ import annotations

from typing import Callable, Optional, Union

from ..errors import WeightError

MIN_BUDGET = 512 << 20
RATIO = 32


class BudgetExceeded(WeightError):
    """A checkpoint asked for more memory than its budget allows."""


class Budget:
    """Bytes a reader may still allocate for one checkpoint; :meth:`charge` before each allocation."""

    def __init__(self, limit: Optional[int] = None):
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise WeightError(f"memory_budget must be a number of bytes, not {limit!r}")
        self.fixed = limit
        self.input = 0
        self.used = 0

    @property
    def limit(self) -> int:
        return self.fixed if self.fixed is not None else max(MIN_BUDGET, RATIO * self.input)

    def add_input(self, nbytes: int) -> None:
        """Count ``nbytes`` more of input (a shard, an external data file)."""
        self.input += max(0, int(nbytes))

    def charge(self, nbytes: int, what: Union[str, Callable[[], str]], where: str = "") -> None:
        """Reserve ``nbytes``; raises :class:`BudgetExceeded` (naming ``where`` and ``what``, which may be a
        function making the text only then) when over."""
        nbytes = int(nbytes)
        if 0 <= nbytes and self.used + nbytes <= self.limit:
            self.used += nbytes
            return
        what = what() if callable(what) else what
        if nbytes < 0:
            raise BudgetExceeded(f"{where}: {what} has a negative size: corrupt")
        if self.used + nbytes > self.limit:
            how = (f"memory_budget={self.fixed}" if self.fixed is not None else
                   f"max({MIN_BUDGET >> 20} MiB, {RATIO} x the {self.input}-byte input)")
            raise BudgetExceeded(f"{where}: {what} would make the reader allocate {nbytes} bytes, "
                                 f"{self.used} already taken: over the budget of {self.limit} bytes ({how}); "
                                 "a hostile or corrupt file? (pass memory_budget=BYTES to allow more)")
        self.used += nbytes


def heap_bytes(numel: int, itemsize: int, stored: str = "", mapped: bool = True, byteswap: bool = False) -> int:
    """Heap bytes reading one tensor costs: 0 for a plain memory-mapped view; otherwise the result plus
    the transient copies the readers make (widening bfloat16/float8 to float32, byte swapping)."""
    if stored in ("bfloat16", "float8_e4m3fn", "float8_e5m2"):
        return numel * (4 + 8) + (0 if mapped else numel * itemsize)  # float32 result + index/shift temporaries
    if mapped and not byteswap:
        return 0
    return 2 * numel * itemsize
