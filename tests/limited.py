"""Run a hostile case in a child process with an address-space limit (RLIMIT_AS) and a timeout.

``run_limited(code, *args)`` runs Python ``code`` (``sys.argv[1:]`` are ``args``) and returns a
:class:`Outcome`: what the code printed as JSON on its last line, or ``hang`` / ``crash``. A reader
that loops, allocates past the limit or blocks is then a test failure, not a frozen test run.
:func:`read_checkpoint` opens a checkpoint and reads every tensor that way.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIB = 1 << 30

_READ = r"""
import json, sys
import numpy as np
from netdsl.errors import WeightError
from netdsl.weights import open_checkpoint
path, fmt, options = sys.argv[1], sys.argv[2] or None, json.loads(sys.argv[3])
try:
    with open_checkpoint(path, format=fmt, **options) as c:
        arrays = {n: np.array(c.read(n)).tolist() for n in c.names()}
    res = {"outcome": "ok", "arrays": arrays}
except WeightError as e:
    res = {"outcome": "error", "message": str(e)[:2000], "length": len(str(e))}
except MemoryError as e:
    res = {"outcome": "memory", "message": repr(e)[:2000]}
except BaseException as e:
    res = {"outcome": "other", "message": repr(e)[:2000]}
with open("/proc/self/status") as f:  # this program's peak (ru_maxrss would count the forking parent's)
    res["max_rss_mb"] = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024
print(json.dumps(res))
"""


@dataclass
class Outcome:
    outcome: str  # ok, error (a WeightError), memory, other, hang, crash -- or what the code reported
    message: str = ""
    data: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.outcome}: {self.message[:500]}"


def run_limited(code: str, *args: str, timeout: float = 60, memory: int = 3 * GIB, env: Any = None) -> Outcome:
    """Run ``code`` in ``python -c`` under RLIMIT_AS ``memory`` and a ``timeout`` in seconds."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    environ = {**os.environ, "PYTHONPATH": ROOT, **(env or {})}
    try:
        r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                           preexec_fn=limit, env=environ)
    except subprocess.TimeoutExpired:
        return Outcome("hang", f"no answer within {timeout} s")
    lines = r.stdout.strip().splitlines()
    try:
        data = json.loads(lines[-1])
    except (IndexError, ValueError):
        return Outcome("crash", f"exit status {r.returncode}: {r.stderr[-2000:]}")
    return Outcome(data.get("outcome", "ok"), data.get("message", ""), data)


def read_checkpoint(path: Any, fmt: str = "", timeout: float = 60, memory: int = 3 * GIB, **options: Any) -> Outcome:
    """Open ``path`` and read every tensor in a limited child (``data['arrays']`` holds them as lists)."""
    return run_limited(_READ, str(path), fmt, json.dumps(options), timeout=timeout, memory=memory)
