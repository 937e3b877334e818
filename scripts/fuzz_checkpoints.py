"""Long fuzz run of every checkpoint parser: mutated seed files must give WeightError naming the file.

Each example runs in-process (the parsers are pure Python + NumPy/h5py); a crash (segfault) or a
hang would stop or stall the run, so run it under ``timeout``. Unexpected exceptions are printed
with the reproducing input saved under --out.

    python scripts/fuzz_checkpoints.py [--seconds 600] [--formats npz,pytorch,...] [--out fuzz_failures]
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.weights.fuzzing import check, mutate, seeds  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--formats", default="")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="fuzz_failures")
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="netdsl_fuzz_")
    corpus = seeds(d)
    fmts = [f for f in (args.formats.split(",") if args.formats else sorted(corpus)) if f in corpus]
    rnd = random.Random(args.seed)
    end = time.time() + args.seconds
    n = fails = 0
    per = {f: 0 for f in fmts}
    while time.time() < end:
        fmt = fmts[n % len(fmts)]
        data = corpus[fmt]
        if rnd.random() < 0.05:
            data = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 600)))
        else:
            ops = [(rnd.randint(0, 3), rnd.randint(0, 1 << 20), rnd.randint(-(1 << 62), 1 << 62))
                   for _ in range(rnd.randint(1, 6))]
            data = mutate(data, ops)
        try:
            check(fmt, data, d)
        except Exception:  # anything but WeightError is a bug: keep the input
            fails += 1
            os.makedirs(args.out, exist_ok=True)
            p = os.path.join(args.out, f"{fmt}-{n}.bin")
            with open(p, "wb") as f:
                f.write(data)
            print(f"[{fmt}] unexpected error, input saved to {p}:\n{traceback.format_exc(limit=4)}", flush=True)
        n += 1
        per[fmt] += 1
    print(f"{n} inputs in {args.seconds:.0f}s, {fails} failure(s); per format: "
          + ", ".join(f"{k}={v}" for k, v in per.items()))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
