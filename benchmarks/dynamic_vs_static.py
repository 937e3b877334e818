"""Where a dynamic-shape OpenVINO model loses time against the same model compiled for the fed shape.

    python benchmarks/dynamic_vs_static.py                      # mobilenet_v2, batch 8
    python benchmarks/dynamic_vs_static.py --models mobilenet_v2,bert --batch 8 --runs 40

Both models: float32, throughput hint, the same NUM_STREAMS (the dynamic model's choice) and
PERF_COUNT on; one request at a time (one stream busy, its threads only), the two models taking
turns. Prints the median wall time per request, the median sum of OpenVINO's per-node times, the
process's minor page faults per request, and the per-node time summed by node type and kernel (median
over runs), dynamic against static; then the compiled-model properties in which that static model
(explicit NUM_STREAMS, as netdsl's static copies) differs from one left to OpenVINO's THROUGHPUT hint.
"""
from __future__ import annotations

import argparse
import importlib
import os
import resource
import sys
import time
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from netdsl.backends import openvino as ovb  # noqa: E402
from feeds import dims, make_feeds  # noqa: E402


def requests(name: str, batch: int) -> dict:
    """{"dynamic"/"static": (compiled model, infer request with the inputs set)}."""
    import openvino as ov
    net = importlib.import_module(name).network(batch="N")
    net.init_random(0)
    g = net.graph
    feeds = make_feeds(g, batch, np.random.default_rng(0))
    dyn = ovb.compile(g, hint="throughput", config={"PERF_COUNT": "YES"}, specialize=False)
    streams = int(dyn.compiled.get_property("NUM_STREAMS"))
    static = ovb.compile(g, hint="throughput", dynamic=dims(g, batch), num_streams=streams,
                         config={"PERF_COUNT": "YES"})
    out = {"graph": g}
    for tag, m in (("dynamic", dyn), ("static", static)):
        req = m.compiled.create_infer_request()
        for k, v in feeds.items():
            req.set_tensor(k, ov.Tensor(v))
        req.infer()
        out[tag] = (m.compiled, req)
    return out


def property_differences(compiled: Any, graph: Any, batch: int) -> list:
    """``(property, explicit-streams value, hint-chosen value)`` where ``compiled`` (static, explicit
    NUM_STREAMS) differs from the same model compiled static with the streams left to the hint."""
    auto = ovb.compile(graph, hint="throughput", dynamic=dims(graph, batch), config={"PERF_COUNT": "YES"}).compiled

    def props(c: Any) -> dict:
        out = {}
        for p in c.get_property("SUPPORTED_PROPERTIES"):
            try:
                out[str(p)] = str(c.get_property(str(p)))
            except RuntimeError:
                out[str(p)] = "?"
        return out
    a, b = props(compiled), props(auto)
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def profile(name: str, batch: int, runs: int) -> None:
    reqs = requests(name, batch)
    graph = reqs.pop("graph")
    wall: dict = {t: [] for t in reqs}
    nodes: dict = {t: [] for t in reqs}
    kinds: dict = {t: {} for t in reqs}
    faults: dict = {t: 0 for t in reqs}
    for _ in range(runs):
        for tag, (_, req) in reqs.items():
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t = time.perf_counter()
            req.infer()
            wall[tag].append(time.perf_counter() - t)
            faults[tag] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
            per: dict[Any, float] = {}
            for p in req.profiling_info:
                key = (p.node_type, p.exec_type)
                per[key] = per.get(key, 0.0) + p.real_time.total_seconds()
            nodes[tag].append(sum(per.values()))
            for k, v in per.items():
                kinds[tag].setdefault(k, []).append(v)
    c = reqs["dynamic"][0]
    print(f"\n{name} batch {batch}: {c.get_property('NUM_STREAMS')} streams x "
          f"{int(c.get_property('INFERENCE_NUM_THREADS')) // max(1, int(c.get_property('NUM_STREAMS')))} threads")
    for tag in reqs:
        print(f"  {tag:<8} wall {1e3 * np.median(wall[tag]):8.3f} ms   sum of nodes {1e3 * np.median(nodes[tag]):8.3f} ms"
              f"   page faults {faults[tag] / runs:7.0f} per request")
    print(f"  {'node type':<20}{'kernel':<32}{'dynamic us':>12}{'static us':>12}{'dyn/static':>11}")
    med = {t: {k: 1e6 * float(np.median(v)) for k, v in kinds[t].items()} for t in kinds}
    for k in sorted(set(med["dynamic"]) | set(med["static"]), key=lambda k: -med["dynamic"].get(k, 0.0)):
        d, s = med["dynamic"].get(k, 0.0), med["static"].get(k, 0.0)
        if max(d, s) >= 1.0:
            print(f"  {k[0]:<20}{k[1]:<32}{d:12.0f}{s:12.0f}{(d / s if s else float('inf')):10.2f}x")
    diff = property_differences(reqs["static"][0], graph, batch)
    print("  static, explicit NUM_STREAMS vs streams left to the hint: "
          + ("; ".join(f"{k} {a} vs {b}" for k, a, b in diff) if diff else "same properties"))


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="mobilenet_v2")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args(argv)
    print(f"{os.cpu_count()} CPUs")
    for name in args.models.split(","):
        profile(name.strip(), args.batch, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
