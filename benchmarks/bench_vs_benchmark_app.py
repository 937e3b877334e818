"""`netdsl bench` against OpenVINO's own benchmark_app on the same IR, in one run, interleaved.

    python benchmarks/bench_vs_benchmark_app.py                   # ResNet-50, 3 rounds of 10 s runs
    python benchmarks/bench_vs_benchmark_app.py --model examples/mobilenet_v2.py --seconds 10 --rounds 3

1. ``netdsl build MODEL --random-weights --backend openvino --dynamic N=1`` writes the IR (symbols fixed to 1,
   float32 weights), which benchmark_app (shipped in the openvino wheel) reads.
2. Each round runs, one after the other on the same machine: benchmark_app (latency percentile 50),
   ``netdsl bench MODEL --random-weights --backend openvino --json`` twice, benchmark_app (latency
   percentile 90). Both sides: CPU, float32 (``-infer_precision f32``), one synchronous request with the
   LATENCY hint, the same duration. With ``--throughput`` a second pass compares the THROUGHPUT hint with
   the engine's optimal number of parallel requests on both sides.
3. Before timing, it checks what no load can blur: the model netdsl bench compiles and the IR compiled as
   benchmark_app compiles it have the same properties and the same runtime graph (node types and precisions).
4. It prints every measurement and, per figure, the ratio netdsl / benchmark_app of runs next to each
   other (latency: < 1.00 means netdsl measured less; throughput: > 1.00 means netdsl measured more),
   its median over rounds, and whether that is within --limit (default 10%). On a busy machine use more,
   shorter rounds: the load changes less between neighbouring runs.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def netdsl_cmd(*argv: str) -> list[str]:
    return [sys.executable, "-m", "netdsl.cli", *argv]


def run(cmd: list[str]) -> str:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r.stdout


def benchmark_app_cmd() -> list[str]:
    exe = shutil.which("benchmark_app")
    return [exe] if exe else [sys.executable, "-m", "openvino.tools.benchmark.main"]


def run_benchmark_app(xml: str, seconds: float, percentile: int, hint: str, folder: str) -> dict:
    """benchmark_app's JSON statistics report: latency at ``percentile``, average, min, max, throughput."""
    os.makedirs(folder, exist_ok=True)
    run(benchmark_app_cmd() + ["-m", xml, "-d", "CPU", "-hint", hint, "-infer_precision", "f32", "-t",
                               str(round(seconds)), "-latency_percentile", str(percentile), "-report_type",
                               "no_counters",
                               "-report_folder", folder, "-json_stats"])
    with open(os.path.join(folder, "benchmark_report.json")) as f:
        report = json.load(f)
    res, cfg = report["execution_results"], report["configuration_setup"]
    latency = next(v for k, v in res.items() if k.startswith("latency"))  # "latency (90 percentile) (ms)"
    return {f"p{percentile}": float(latency), "mean": float(res["avg latency"]),
            "min": float(res["min latency"]), "max": float(res["max latency"]),
            "throughput": float(res["throughput"]), "iterations": int(res["total number of iterations"]),
            "requests": int(cfg.get("number of parallel infer requests", 1))}


def run_netdsl(model: str, seconds: float, hint: str) -> dict:
    argv = ["bench", model, "--random-weights", "--backend", "openvino", "--time", str(seconds), "--json",
            "--no-progress", "--hint", hint]
    if hint == "throughput":
        argv += ["--requests", "0"]
    r = json.loads(run(netdsl_cmd(*argv)))
    lat = r["latency_ms"]
    return {"p50": lat["median"], "p90": lat["p90"], "mean": lat["mean"], "min": lat["min"], "max": lat["max"],
            "throughput": r["throughput"], "iterations": r["iterations"], "requests": r["requests"]}


def same_engine(model: str, xml: str) -> bool:
    """Load-independent check: what ``netdsl bench`` compiles (the network with --random-weights, the
    latency hint) and the IR compiled the way benchmark_app compiles it have equal properties (every one
    the compiled model lists) and equal runtime graphs (layer type and runtime precision of every node)."""
    from collections import Counter

    import openvino as ov
    from netdsl.backends import openvino as ovb
    from netdsl.cli import load_model
    net = load_model(model)
    net.init_random(0)
    mine = ovb.compile(net.graph, dynamic={s: 1 for s in net.graph.symbols}, hint="latency").compiled
    core = ov.Core()
    theirs = core.compile_model(core.read_model(xml), "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                             "INFERENCE_PRECISION_HINT": "f32"})
    keys = [k for k in theirs.get_property("SUPPORTED_PROPERTIES") if k != "SUPPORTED_PROPERTIES"]
    differ = [f"{k}: {theirs.get_property(k)} vs netdsl {mine.get_property(k)}" for k in keys
              if str(theirs.get_property(k)) != str(mine.get_property(k))]

    def nodes(c: object) -> Counter:
        return Counter((n.get_rt_info()["layerType"].astype(str), n.get_rt_info()["runtimePrecision"].astype(str))
                       for n in c.get_runtime_model().get_ordered_ops())  # type: ignore[attr-defined]
    a, b = nodes(theirs), nodes(mine)
    print(f"compiled models: {len(keys) - len(differ)}/{len(keys)} properties equal"
          + (f" (differ: {'; '.join(differ)})" if differ else "")
          + f"; runtime graphs {'equal' if a == b else 'DIFFER'} ({sum(a.values())} vs {sum(b.values())} nodes)")
    return not differ and a == b


def compare(model: str, xml: str, seconds: float, rounds: int, hint: str, tmp: str, limit: float) -> bool:
    """Rounds of benchmark_app (p50), netdsl bench, netdsl bench, benchmark_app (p90): each netdsl figure is
    divided by the benchmark_app figure measured right next to it (load that drifts during a round cancels
    out), and the median over rounds of each ratio is gated."""
    ratios: dict = {k: [] for k in ("p50", "p90", "mean", "throughput", "min", "max")}
    for k in range(rounds):
        a = run_benchmark_app(xml, seconds, 50, hint, os.path.join(tmp, f"ba{k}a"))
        n1 = run_netdsl(model, seconds, hint)
        n2 = run_netdsl(model, seconds, hint)
        b = run_benchmark_app(xml, seconds, 90, hint, os.path.join(tmp, f"ba{k}b"))
        for who, m in (("benchmark_app", a), ("netdsl bench", n1), ("netdsl bench", n2), ("benchmark_app", b)):
            print(f"  round {k + 1} {who:<13} " + ", ".join(f"{key} {val:.2f}" if isinstance(val, float) else
                                                           f"{key} {val}" for key, val in m.items()), flush=True)
        ratios["p50"].append(n1["p50"] / a["p50"])
        ratios["p90"].append(n2["p90"] / b["p90"])
        for key in ("mean", "throughput", "min", "max"):
            ratios[key].append((n1[key] / a[key] + n2[key] / b[key]) / 2)

    ok = True
    print(f"\n{hint} hint: ratio netdsl bench / benchmark_app (median over {rounds} rounds of adjacent runs), "
          f"limit +-{limit:.0%}")
    for key, what in (("p50", "median latency"), ("p90", "p90 latency"), ("mean", "mean latency"),
                      ("throughput", "throughput"), ("min", "min latency"), ("max", "max latency")):
        ratio = statistics.median(ratios[key])
        gated = key in ("p50", "p90", "mean", "throughput")
        within = abs(ratio - 1) <= limit
        ok &= within or not gated
        print(f"  {what:<15} ratio {ratio:.3f}  (rounds: {', '.join(f'{r:.2f}' for r in ratios[key])})  "
              + (("ok" if within else "OUTSIDE LIMIT") if gated else "not gated: extremes are noise"))
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(ROOT, "examples", "resnet50.py"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=float, default=0.10)
    ap.add_argument("--throughput", action="store_true", help="also compare the THROUGHPUT hint")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="netdsl-bench-") as tmp:
        xml = os.path.join(tmp, "model.xml")
        sys.path.insert(0, ROOT)
        from netdsl.cli import load_model
        fixed = [x for s in load_model(args.model).graph.symbols for x in ("--dynamic", f"{s}=1")]
        run(netdsl_cmd("build", args.model, "--random-weights", "--backend", "openvino", *fixed, "-o", xml))
        print(f"model {os.path.relpath(args.model, ROOT)}, IR {os.path.basename(xml)} (static batch 1, f32), "
              f"{args.rounds} rounds of {args.seconds:g} s per tool and percentile")
        ok = same_engine(args.model, xml)
        ok &= compare(args.model, xml, args.seconds, args.rounds, "latency", tmp, args.limit)
        if args.throughput:
            ok &= compare(args.model, xml, args.seconds, args.rounds, "throughput", tmp, args.limit)
    print("\nresult: " + ("every gated figure within the limit" if ok else "SOME FIGURES OUTSIDE THE LIMIT"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
