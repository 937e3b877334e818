"""The calibration cache: activation thresholds in a JSON file, reused when the network, the method
and the excluded layers are the same (a changed network is refused, naming the file)."""
from __future__ import annotations

import json
import os
from typing import Any, Optional

from ..errors import NetdslError

FORMAT = "netdsl-calibration-1"


def load(path: str, key: dict) -> Optional[dict]:
    """Thresholds from ``path`` if it exists and was made for ``key``; None if there is no file."""
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise NetdslError(f"calibration cache {path}: unreadable ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("thresholds"), dict):
        raise NetdslError(f"calibration cache {path}: not a netdsl calibration cache ({FORMAT})")
    diff = [k for k in key if data.get(k) != key[k]]
    if diff:
        raise NetdslError(f"calibration cache {path} was made for {', '.join(f'{k}={data.get(k)!r}' for k in diff)}, "
                          f"not {', '.join(f'{k}={key[k]!r}' for k in diff)}: delete it to calibrate again")
    try:
        return {str(k): float(v) for k, v in data["thresholds"].items()}
    except (TypeError, ValueError):
        raise NetdslError(f"calibration cache {path}: thresholds must be numbers") from None


def save(path: str, key: dict, thresholds: dict, extra: Optional[dict] = None) -> None:
    data: dict[str, Any] = {"format": FORMAT, **key, "thresholds": thresholds}
    data.update(extra or {})
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def write_tensorrt_cache(path: str, thresholds: dict, header: str = "TRT-8601-EntropyCalibration2") -> None:
    """The thresholds as a TensorRT calibration table (``name: hex of the float32 scale`` per line)."""
    import struct
    with open(path, "w") as f:
        f.write(header + "\n")
        for name, t in thresholds.items():
            scale = float(t) / 127.0 if t > 0 else 1.0
            f.write(f"{name}: {struct.pack('>f', scale).hex()}\n")
