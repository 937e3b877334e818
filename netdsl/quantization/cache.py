"""The calibration cache: every decision calibration made (activation ranges, equalization factors, the
layers kept in float, fitted int8 weights, bias corrections) in a JSON file, reused when the network,
its weights and every option are the same (a changed network, or other weights, is refused, naming
the file)."""
from __future__ import annotations

import json
import os
from typing import Any, Optional

from ..errors import NetdslError

FORMAT = "netdsl-calibration-11"  # 3: keyed by the weights too; 4: fitted weights, keep_float="auto", refined ranges;
# 5: ranges of residual adds' inputs too (passes/qdq.py); 6: wide (two-level) activations and weights;
# 7: wide tensors' ranges with headroom (plan.WIDE_HEADROOM); 8: layers a wide plan would run as three
# INT8 copies kept float (plan.fold_triples); 9: layers kept float where widening fell short of its target
# (plan.keep_for_wide), the estimate with the margins near zero spread evenly; 10: inputs of residual
# adds read through a ReLU (ResNet's add -> relu) too; 11: residual adds with a wide sum read in float (the
# wide plan's estimates change with it)


def load(path: str, key: dict) -> Optional[tuple]:
    """(the cache's data, {tensor: (lo, hi)}) from ``path`` if it exists and was made for ``key``;
    None if there is no file."""
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise NetdslError(f"calibration cache {path}: unreadable ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("thresholds"), dict):
        raise NetdslError(f"calibration cache {path}: not a netdsl calibration cache ({FORMAT})")
    if data.get("format") != FORMAT:
        raise NetdslError(f"calibration cache {path} is {data.get('format')!r}, made by another netdsl version "
                          f"(this one reads {FORMAT}): delete it to calibrate again")
    diff = [k for k in key if data.get(k) != key[k] and k != "weights"]
    if not diff and data.get("weights") != key.get("weights"):  # ranges, scales, bias corrections: weights'
        raise NetdslError(f"calibration cache {path} was made for other weights of network "
                          f"'{key.get('network')}': delete it to calibrate again")
    if diff:
        raise NetdslError(f"calibration cache {path} was made for {', '.join(f'{k}={data.get(k)!r}' for k in diff)}, "
                          f"not {', '.join(f'{k}={key[k]!r}' for k in diff)}: delete it to calibrate again")
    try:
        return data, {str(k): _range(v) for k, v in data["thresholds"].items()}
    except (TypeError, ValueError):
        raise NetdslError(f"calibration cache {path}: thresholds must be [lo, hi] pairs of numbers") from None


def _range(v: Any) -> tuple:
    """(lo, hi) from a [lo, hi] pair or a symmetric |x| threshold."""
    if isinstance(v, list) and len(v) == 2:
        lo, hi = float(v[0]), float(v[1])
    else:
        hi = float(v)
        lo = -hi
    if not (lo <= 0 <= hi):
        raise ValueError(v)
    return lo, hi


def check_writable(path: str) -> None:
    """Refuse a cache path that calibration could not write (checked before it runs): a directory, or a
    new file in a folder that does not exist or is not writable."""
    if os.path.isdir(path):
        raise NetdslError(f"calibration cache {path} is a directory: give a file path (e.g. {path}/calib.json)")
    if os.path.exists(path):
        return  # read, and reused or refused, before any calibration
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise NetdslError(f"calibration cache {path}: its directory {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise NetdslError(f"calibration cache {path}: its directory {folder} is not writable")


def save(path: str, key: dict, plan: dict) -> None:
    """Write ``key`` and the calibration ``plan`` (its "thresholds" and any other decisions) to ``path``."""
    data: dict[str, Any] = {"format": FORMAT, **key, **plan}
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
