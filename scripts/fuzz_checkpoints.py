"""Fuzz every checkpoint reader, each case in its own process with a timeout and an address-space limit.

Seeds (valid and hostile files of every format, :mod:`tests.weights.fuzzing`) are mutated at random;
each case is written to disk, opened and read completely in a forked child limited to ``--memory``
of address space (RLIMIT_AS) and killed after ``--timeout`` seconds. Outcomes:

  ok       read completely            clean    WeightError naming the file
  unnamed  WeightError not naming it   memory   the limit was hit (MemoryError anywhere in the error chain)
  other    any other exception        hang     killed at the timeout (and again at 10x it)
  crash    the child died of a signal  code     a hostile pickle's marker file appeared
  leak     bytes from outside the checkpoint reached a tensor

Everything but ok/clean is a failure: its input is saved under --out and the exit code is 1.

    python scripts/fuzz_checkpoints.py --seconds 600 [--targets onnx,hdf5] [--json results.json]
    python scripts/fuzz_checkpoints.py --cases 300   # a short run (CI)
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.weights.fuzzing import CASE, MARKER, Leak, check, load_targets, random_mutation  # noqa: E402

OUTCOMES = ("ok", "clean", "unnamed", "memory", "other", "hang", "crash", "code", "leak")
FAILURES = OUTCOMES[2:]


def _memory_in_chain(e: BaseException) -> bool:
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, MemoryError) or "MemoryError" in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False


def _child(target, data: bytes, d: str, memory: int, w: int) -> None:
    try:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        try:
            e = check(target, data, d)
            res = ("ok", "") if e is None else ("memory" if _memory_in_chain(e) else "clean", str(e)[:300])
        except Leak as e:
            res = ("leak", str(e))
        except AssertionError as e:
            res = ("unnamed", str(e)[:300])
        except MemoryError:
            res = ("memory", traceback.format_exc(limit=6)[-1500:])
        except BaseException:  # noqa: BLE001 - everything else is a finding
            res = ("other", traceback.format_exc(limit=6)[-1500:])
        os.write(w, json.dumps(res).encode())
    finally:
        os._exit(0)


def run_case(target, data: bytes, d: str, timeout: float, memory: int) -> tuple[str, str, int]:
    """(outcome, detail, peak RSS in KiB) of one case, run in a forked child."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        _child(target, data, d, memory, w)
    os.close(w)
    chunks, outcome = [], None
    deadline = time.time() + timeout
    while True:
        ready, _, _ = select.select([r], [], [], max(0.0, deadline - time.time()))
        if not ready:
            os.kill(pid, signal.SIGKILL)
            outcome = ("hang", f"no answer within {timeout} s")
            break
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    _, status, usage = os.wait4(pid, 0)
    if outcome is None:
        if os.WIFSIGNALED(status):
            outcome = ("crash", f"signal {os.WTERMSIG(status)}")
        else:
            try:
                outcome = tuple(json.loads(b"".join(chunks)))
            except ValueError:
                outcome = ("crash", "the child exited without reporting")
    if os.path.exists(os.path.join(d, CASE, MARKER)):
        outcome = ("code", "a hostile pickle's marker file was created")
    return outcome[0], outcome[1], usage.ru_maxrss


def make_seeds(d: str) -> None:
    """Write the seeds in another process (torch and onnx stay out of this one's address space)."""
    code = f"import sys; sys.path.insert(0, {ROOT!r}); from tests.weights.fuzzing import write_seeds; write_seeds(sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, d], check=True)


def campaign(d: str, names: list, seconds: float, cases: int, seed: int, timeout: float, memory: int,
             out: str, log=print) -> dict:
    """Run cases round-robin over ``names`` until ``seconds`` pass or ``cases`` are done; per-target counts."""
    targets = load_targets(d)
    names = names or sorted(targets)
    rnd = random.Random(seed)
    stats = {n: {k: 0 for k in OUTCOMES} | {"inputs": 0, "max_rss_mb": 0.0} for n in names}
    end = time.time() + seconds if seconds else float("inf")
    n = 0
    while time.time() < end and (not cases or n < cases):
        name = names[n % len(names)]
        t = targets[name]
        base = rnd.choice(t.seeds)
        data = base if rnd.random() < 0.02 else random_mutation(base, rnd, t.seeds)
        outcome, detail, rss = run_case(t, data, d, timeout, memory)
        if outcome == "hang":  # a starved machine is not a hang: confirm with a much longer timeout
            outcome, detail, rss = run_case(t, data, d, 10 * timeout, memory)
        s = stats[name]
        s["inputs"] += 1
        s[outcome] += 1
        s["max_rss_mb"] = max(s["max_rss_mb"], round(rss / 1024, 1))
        if outcome in FAILURES:
            os.makedirs(out, exist_ok=True)
            p = os.path.join(out, f"{name}-{n}.bin")
            with open(p, "wb") as f:
                f.write(data)
            log(f"[{name}] {outcome}: {detail}\n  input saved to {p}")
        n += 1
    return stats


def table(stats: dict) -> str:
    rows = ["| target | inputs | read | clean errors | other exceptions | hangs | crashes | memory | unnamed | "
            "code | leaks | max RSS MB |", "|---|" + "---|" * 11]
    tot = {k: 0 for k in ("inputs",) + OUTCOMES}
    for name, s in stats.items():
        rows.append(f"| {name} | {s['inputs']} | {s['ok']} | {s['clean']} | {s['other']} | {s['hang']} | "
                    f"{s['crash']} | {s['memory']} | {s['unnamed']} | {s['code']} | {s['leak']} | {s['max_rss_mb']} |")
        for k in tot:
            tot[k] += s[k]
    rows.append(f"| **all** | {tot['inputs']} | {tot['ok']} | {tot['clean']} | {tot['other']} | {tot['hang']} | "
                f"{tot['crash']} | {tot['memory']} | {tot['unnamed']} | {tot['code']} | {tot['leak']} | "
                f"{max([s['max_rss_mb'] for s in stats.values()] + [0])} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=0, help="run for this long (default: until --cases)")
    ap.add_argument("--cases", type=int, default=0, help="stop after this many cases")
    ap.add_argument("--targets", default="", help="comma-separated targets (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per case before it counts as a hang")
    ap.add_argument("--memory", type=float, default=3.0, help="address-space limit per case, GiB")
    ap.add_argument("--out", default="fuzz_failures", help="where failing inputs are saved")
    ap.add_argument("--json", help="write the per-target counts here")
    args = ap.parse_args(argv)
    if not args.seconds and not args.cases:
        args.seconds = 600
    d = tempfile.mkdtemp(prefix="netdsl_fuzz_")
    make_seeds(d)
    t0 = time.time()
    stats = campaign(d, [x for x in args.targets.split(",") if x], args.seconds, args.cases, args.seed,
                     args.timeout, int(args.memory * (1 << 30)), args.out)
    print(f"{sum(s['inputs'] for s in stats.values())} inputs in {time.time() - t0:.0f} s, "
          f"RLIMIT_AS {args.memory:g} GiB, timeout {args.timeout:g} s per case")
    print(table(stats))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(stats, f, indent=1)
    return 1 if any(s[k] for s in stats.values() for k in FAILURES) else 0


if __name__ == "__main__":
    sys.exit(main())
