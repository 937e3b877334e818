#!/usr/bin/env python
"""Fail when a branch of a backend's lowering is not run by the conformance table.

Reads the coverage data of a test run made with ``pytest --cov=netdsl/backends --cov-branch
--cov-context=test`` (CI does this) and reports, for each lowering module, the lines and branches that no
test under ``tests/conformance/`` executed. Lines that only raise an error (unsupported input, TensorRT
refusing a layer) are not lowering paths and are not counted; their tests are elsewhere.

    python scripts/lowering_coverage.py [--data .coverage] [--all]

``--all`` also reports (without failing) every other module of netdsl/backends.
"""
from __future__ import annotations

import argparse
import io
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the lowering tables of the four backends and their shared helpers: every branch must run in the table
LOWERINGS = [
    "netdsl/backends/tensorrt/lower.py",
    "netdsl/backends/tensorrt/_ctx.py",
    "netdsl/backends/openvino/lower.py",
    "netdsl/backends/onnx/table.py",
]
CONTEXTS = [r"tests/conformance/", r"^$"]  # the conformance tests, and import time (module-level lines)
NOT_LOWERING = [r"^\s*raise\b", r"# not a lowering path"]


def report(cov, files: list[str], contexts: list[str] | None) -> tuple[float, str]:
    out = io.StringIO()
    total = cov.report(morfs=[os.path.join(ROOT, f) for f in files], show_missing=True, contexts=contexts,
                       file=out, precision=1, ignore_errors=True)
    return total, out.getvalue()


def main(argv: list | None = None) -> int:
    import coverage

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(ROOT, ".coverage"), help="coverage data file")
    ap.add_argument("--all", action="store_true", help="also report the other modules of netdsl/backends")
    args = ap.parse_args(argv)
    cov = coverage.Coverage(data_file=args.data, branch=True)
    for rx in NOT_LOWERING:
        cov.exclude(rx)
    cov.load()
    if not cov.get_data().measured_contexts() - {""}:
        print(f"{args.data} has no test contexts: run pytest with --cov-context=test", file=sys.stderr)
        return 2
    total, text = report(cov, LOWERINGS, CONTEXTS)
    print("Lowering branches run by the conformance table (tests/conformance/):")
    print(text)
    if args.all:
        others = sorted(os.path.relpath(os.path.join(d, f), ROOT) for d, _, fs in os.walk(os.path.join(ROOT, "netdsl",
                        "backends")) for f in fs if f.endswith(".py"))
        print("All of netdsl/backends, every test:")
        print(report(cov, [f for f in others if f not in LOWERINGS] + LOWERINGS, None)[1])
    if total < 100.0:
        print(f"lowering coverage by the conformance table is {total:.1f}%: add conformance cases for the "
              "missing lines/branches above (or remove dead code)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
