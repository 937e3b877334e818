"""Progress bars for long steps (engine builds, calibration, benchmarks, large weight reads).

Built on ``tqdm``. Bars go to stderr and are shown only when stderr is a terminal, unless
``NETDSL_PROGRESS=1`` forces them on or ``NETDSL_PROGRESS=0`` (or :func:`set_enabled`) turns them
off. Library code uses :func:`progress` and never prints progress itself::

    with progress(total=len(batches), desc="calibrating", unit="batch") as bar:
        for b in batches:
            ...
            bar.update(1)
"""
from __future__ import annotations

import os
import sys
from typing import Any, Iterable, Optional

_forced: Optional[bool] = None


def set_enabled(on: Optional[bool]) -> None:
    """Force progress bars on (True) or off (False); None restores the default (a terminal shows them)."""
    global _forced
    _forced = on


def enabled() -> bool:
    """Whether bars are shown now (see the module docstring for the rules)."""
    if _forced is not None:
        return _forced
    env = os.environ.get("NETDSL_PROGRESS", "").strip().lower()
    if env in ("0", "false", "no", "off"):
        return False
    if env in ("1", "true", "yes", "on"):
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress(iterable: Optional[Iterable[Any]] = None, *, total: Optional[float] = None, desc: str,
             unit: str = "it", leave: bool = False) -> Any:
    """A tqdm bar (a context manager and, given ``iterable``, an iterator); silent when disabled.
    ``desc`` says what the bar is doing ("calibrating"): a bar without one is refused."""
    if not desc:
        raise ValueError("progress(): desc must say what the bar is doing")
    from tqdm.auto import tqdm
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, disable=not enabled(),
                file=sys.stderr, dynamic_ncols=True)


__all__ = ["enabled", "progress", "set_enabled"]
