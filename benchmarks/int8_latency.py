"""Where INT8 batch-1 time goes on OpenVINO, and which settings cut it, against ONNX Runtime float32 in
the same process (and batch-8 throughput of the Q/DQ placements).

    python benchmarks/int8_latency.py                                   # mobilenet_v2, resnet50
    python benchmarks/int8_latency.py --models mobilenet_v2 --rounds 3 --iters 40
    python benchmarks/int8_latency.py --models mobilenet_v2 --by-kernel    # INT8 vs f32 per kernel kind

Per model: the example's ``network()`` (random weights, seed 0), ``netdsl.quantize`` (percentile
calibration on OpenVINO f32, 4 batches of 8, as benchmarks/int8_vs_onnxruntime.py), then at batch 1,
each engine timed ``--iters`` calls per round, ``--rounds`` interleaved rounds (the starting engine
rotating; 50 ms pause between engines), medians:

  ort-f32          ONNX Runtime on the exported float model (all graph optimizations, default threads)
  nd               ``model(x)`` of ``compile(qnet, hint="latency", dynamic={"N": 1})``
  nd-float-adds    the same with residual adds reading float inputs (the Q/DQ placement before
                   passes/qdq.residual_adds: the add's own Q/DQ pairs removed), MobileNetV2 only
  nd-defaults      ``compile(qnet)`` called per request (dims dynamic: runs its static copy)
  ov-infer         OpenVINO alone on nd's compiled model: ``InferRequest.infer()``, input shared
  ov-async         the same request with ``start_async(); wait()``
  ov-call          ``CompiledModel.__call__(feeds)`` (OpenVINO's Python convenience path)
  nd-copy          nd with its input copied into the request's own tensor (netdsl before inputs of
                   64 KiB or more were handed to OpenVINO in place)
  thr-K            nd at INFERENCE_NUM_THREADS=K
  pin-on/off, ht-on/off, pcore   ENABLE_CPU_PINNING, ENABLE_HYPER_THREADING, SCHEDULING_CORE_TYPE=PCORE_ONLY
  f32-*            the float network with netdsl's defaults and the same settings

netdsl's own per-call cost is nd minus ov-async (the path nd takes: copy in, start, wait, copy out).
OpenVINO's per-inference overhead against its kernels: the wall time of ov-infer against the sum of
its nodes' times (PERF_COUNT, printed as ``nodes``) and against one thread (thr-1: no synchronization).
Batch 8 (MobileNetV2): ``--requests`` batch-8 requests per measurement through ``run_many`` at the
throughput hint (netdsl's defaults: static copy; ``-s8``: dims fixed, 8 streams; ``-copy``: inputs
copied), both placements, against ONNX Runtime back to back.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from typing import Any, Callable

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import netdsl as nd  # noqa: E402
from netdsl.backends import openvino as ovb  # noqa: E402
from netdsl.passes import optimize  # noqa: E402
from feeds import copying, dims, make_feeds  # noqa: E402
from int8_vs_onnxruntime import first, sqnr_db  # noqa: E402
from openvino_vs_peers import ort  # noqa: E402

PAUSE = 0.05
SETTINGS = {
    "thr-1": {"INFERENCE_NUM_THREADS": 1}, "thr-4": {"INFERENCE_NUM_THREADS": 4},
    "thr-8": {"INFERENCE_NUM_THREADS": 8}, "thr-16": {"INFERENCE_NUM_THREADS": 16},
    "pin-on": {"ENABLE_CPU_PINNING": True}, "pin-off": {"ENABLE_CPU_PINNING": False},
    "ht-on": {"ENABLE_HYPER_THREADING": True}, "ht-off": {"ENABLE_HYPER_THREADING": False},
    "pcore": {"SCHEDULING_CORE_TYPE": "PCORE_ONLY"},
}
PROPS = ("NUM_STREAMS", "INFERENCE_NUM_THREADS", "ENABLE_CPU_PINNING", "ENABLE_HYPER_THREADING",
         "SCHEDULING_CORE_TYPE", "INFERENCE_PRECISION_HINT")


def float_adds(graph: Any) -> Any:
    """``graph`` (quantized) with every add reading the float tensors behind its Q/DQ pairs: the
    placement before residual adds were quantized (the pairs only the add read are pruned)."""
    from netdsl.passes.rewrite import clone_graph, prune
    g = clone_graph(graph)
    for n in g.nodes:
        if n.op == "add":
            n.inputs = [v.producer.inputs[0].producer.inputs[0] if v.producer is not None
                        and v.producer.op == "dequantize_linear" else v for v in n.inputs]
    prune(g)
    g.validate()
    return g


def props(m: Any) -> str:
    out = []
    for p in PROPS:
        try:
            out.append(f"{p}={m.compiled.get_property(p)}")
        except RuntimeError:
            pass
    return " ".join(out)


def profile(graph: Any, one: dict, n: int = 50) -> tuple:
    """``graph`` at batch 1 (latency hint, PERF_COUNT): (median wall ms of infer(), median sum of the
    executed nodes' ms, executed nodes, {(node type, kernel): median ms summed over its nodes})."""
    import openvino as ov
    c = ovb.compile(graph, hint="latency", dynamic={k: 1 for k in graph.symbols}, config={"PERF_COUNT": True})
    req = c.compiled.create_infer_request()
    for i, name in zip(c._in_index, c.input_names):
        req.set_input_tensor(i, ov.Tensor(one[name], shared_memory=True))
    walls, sums, count = [], [], 0
    per_node: dict[tuple, list] = {}
    for k in range(n + 5):
        t = time.perf_counter()
        req.infer()
        w = time.perf_counter() - t
        info = [p for p in req.profiling_info if p.status == p.Status.EXECUTED]
        if k >= 5:
            walls.append(w)
            sums.append(sum(p.real_time.total_seconds() for p in info))
            count = len(info)
            for p in info:
                per_node.setdefault((p.node_name, p.node_type, p.exec_type), []).append(p.real_time.total_seconds())
    kinds: dict[tuple, float] = {}
    for (_, node_type, kernel), v in per_node.items():
        kinds[node_type, kernel] = kinds.get((node_type, kernel), 0.0) + 1e3 * float(np.median(v))
    return 1e3 * float(np.median(walls)), 1e3 * float(np.median(sums)), count, kinds


def conv_macs(graph: Any) -> dict:
    """Multiply-accumulates at batch 1 of ``graph``'s convolutions and linear layers by kind
    ("1x1", "depthwise", "conv", "linear"), the kinds OpenVINO's CPU kernels are named after."""
    env = dims(graph, 1)

    def shape(v: Any) -> list:
        return [d if isinstance(d, int) else d.evaluate(env) for d in v.shape]
    out: dict[str, float] = {}
    for n in graph.nodes:
        if n.op not in ("conv", "linear"):
            continue
        w = shape(n.inputs[1])
        kind = ("linear" if n.op == "linear" else "depthwise" if n.attrs.get("groups", 1) > 1
                else "1x1" if tuple(w[2:]) == (1, 1) else "conv")
        out[kind] = out.get(kind, 0.0) + float(np.prod(shape(n.outputs[0]))) * float(np.prod(w[1:]))
    return out


def kernel_kind(node_type: str, kernel: str) -> str | None:
    """The conv_macs kind an OpenVINO CPU node runs (None: not a convolution or linear layer)."""
    if node_type == "GroupConvolution":
        return "depthwise"
    if node_type == "Convolution":
        return "1x1" if "1x1" in kernel else "conv"
    return "linear" if node_type.startswith("FullyConnected") else None


def by_kernel(name: str, net: Any, q: Any, one: dict) -> None:
    """Per kernel kind: batch-1 ms of INT8 and float32 (sums of PERF_COUNT node times), INT8's gain and
    the arithmetic rate (GMAC/s) of the convolutions and linear layers."""
    macs = conv_macs(net.graph)
    rows: dict[str, list] = {}
    for col, g in ((0, q.graph), (1, net.graph)):
        for (node_type, kernel), ms in profile(g, one)[3].items():
            kind = kernel_kind(node_type, kernel) or f"{node_type} ({kernel.split('_')[0]})"
            rows.setdefault(kind, [0.0, 0.0])[col] += ms
    print(f"\n{name} batch 1 by kernel kind (sum of node ms, PERF_COUNT medians; GMAC/s = MACs / ms)")
    for kind, (i8, f32) in sorted(rows.items(), key=lambda r: -r[1][1] - r[1][0]):
        rate = "".join(f"  {m / 1e6 / t:7.1f} GMAC/s" if t else "  " + " " * 13
                       for m, t in ((macs.get(kind), i8), (macs.get(kind), f32)) if m) if kind in macs else ""
        gain = f"{f32 / i8:5.2f}x" if i8 and f32 else "   - "
        print(f"  {kind:<28} int8 {i8:7.3f} ms  f32 {f32:7.3f} ms  gain {gain}{rate}")
    total = [sum(r[c] for r in rows.values()) for c in (0, 1)]
    print(f"  {'all nodes':<28} int8 {total[0]:7.3f} ms  f32 {total[1]:7.3f} ms  gain {total[1] / total[0]:5.2f}x"
          f"  ({sum(macs.values()) / 1e6:.1f} M MACs)")


def engines_for(name: str, net: Any, q: Any, one: dict, onnx_path: str) -> dict:
    """{engine: batch-1 callable} (see the module doc)."""
    import openvino as ov
    g = q.graph
    lat = dict(hint="latency", dynamic=dims(g, 1))
    e: dict[str, Callable] = {"ort-f32": ort(onnx_path)[0]}
    m = ovb.compile(g, **lat)
    print(f"  nd ({name} int8) properties: {props(m)}")
    e["nd"] = m
    if name == "mobilenet_v2":
        e["nd-float-adds"] = ovb.compile(float_adds(g), **lat)
    e["nd-defaults"] = ovb.compile(g)
    req = m.compiled.create_infer_request()
    for i, n in zip(m._in_index, m.input_names):
        req.set_input_tensor(i, ov.Tensor(one[n], shared_memory=True))
    e["ov-infer"] = lambda f: req.infer()

    def ov_async(f: dict) -> None:
        req.start_async()
        req.wait()
    e["ov-async"] = ov_async
    e["ov-call"] = lambda f, c=m.compiled: c(f)
    e["nd-copy"] = copying(ovb.compile(g, **lat))
    for s, cfg in SETTINGS.items():
        e[s] = ovb.compile(g, config=cfg, **lat)
    fm = ovb.compile(net.graph, **lat)
    print(f"  f32 ({name}) properties: {props(fm)}")
    e["f32"] = fm
    for s in ("thr-8", "thr-16", "pin-on", "pin-off", "ht-off"):
        e[f"f32-{s}"] = ovb.compile(net.graph, config=SETTINGS[s], **lat)
    return e


def timed_rounds(engines: dict, arg: Any, iters: int, rounds: int, once: bool = False) -> dict:
    """{engine: [seconds per call]} over interleaved rounds; ``once``: one call per round (batch 8)."""
    out: dict[str, list] = {k: [] for k in engines}
    order = list(engines)
    for r in range(rounds):
        for k in order[r % len(order):] + order[:r % len(order)]:
            f = engines[k]
            time.sleep(PAUSE)
            for _ in range(1 if once else iters):
                t = time.perf_counter()
                f(arg)
                out[k].append(time.perf_counter() - t)
    return out


def quantized(name: str, seed: int = 0) -> tuple:
    """(the example's float network, its INT8 network, one batch-1 feed) as the module doc says."""
    net = importlib.import_module(name).network(batch="N")
    net.init_random(seed)
    rng = np.random.default_rng(seed)
    calib = [make_feeds(net.graph, 8, rng) for _ in range(4)]
    one = make_feeds(net.graph, 1, rng)
    return net, nd.quantize(net, calib, method="percentile", backend="openvino", report=False), one


def bench(name: str, iters: int, rounds: int, requests: int, seed: int = 0) -> None:
    net, q, one = quantized(name, seed)
    rng = np.random.default_rng(seed + 1)
    eight = [make_feeds(net.graph, 8, rng) for _ in range(requests)]
    with tempfile.TemporaryDirectory() as d:
        onnx_path = os.path.join(d, f"{name}.onnx")
        nd.export_onnx(optimize(net.graph), onnx_path)
        e = engines_for(name, net, q, one, onnx_path)
        for f in e.values():  # untimed: warm up; nd-defaults compiles its static copy
            for _ in range(max(iters, 10)):
                f(one)
            getattr(f, "wait_specialized", lambda: None)()
        ref = first(e["f32"](one))
        for k in ("nd", "nd-float-adds"):
            if k in e:
                print(f"  {k}: SQNR vs f32 at batch 1 {sqnr_db(ref, first(e[k](one))):.1f} dB")
        t = timed_rounds(e, one, iters, rounds)
        wall, nodes, count, _ = profile(q.graph, one)
        print(f"\n{name} batch 1 (ms, median of {rounds} x {iters}); ratio = ort-f32 / engine")
        base = float(np.median(t["ort-f32"]))
        for k, v in t.items():
            ms = 1e3 * float(np.median(v))
            print(f"  {k:<16} {ms:8.3f} ms  p10 {1e3 * np.percentile(v, 10):7.3f}  {base * 1e3 / ms:5.2f}x")
        print(f"  nd PERF_COUNT: infer {wall:.3f} ms, sum of {count} executed nodes {nodes:.3f} ms")
        if name != "mobilenet_v2":
            return
        b8 = {"ort-f32": ort(onnx_path)[1]}
        for k, g in (("nd", q.graph), ("nd-float-adds", float_adds(q.graph))):
            b8[k] = ovb.compile(g, hint="throughput").run_many  # netdsl's defaults: dims dynamic
            b8[k + "-s8"] = ovb.compile(g, hint="throughput", dynamic=dims(g, 8), num_streams=8).run_many
        b8["nd-s8-copy"] = copying(ovb.compile(q.graph, hint="throughput", dynamic=dims(q.graph, 8),
                                               num_streams=8).run_many)
        b8["nd-latency"] = ovb.compile(q.graph, hint="latency", dynamic=dims(q.graph, 8)).run_many
        ref8 = np.concatenate([first(o).ravel() for o in b8["ort-f32"](eight)])
        for k, f in b8.items():
            f(eight)
            got = np.concatenate([first(o).ravel() for o in f(eight)])
            print(f"  batch 8 {k}: SQNR vs ort-f32 {sqnr_db(ref8, got):.1f} dB")
        t8 = timed_rounds(b8, eight, 1, 2 * rounds, once=True)
        print(f"\n{name} batch 8 (images/s, {requests} requests per measurement, median of {2 * rounds})")
        base = 8 * requests / float(np.median(t8["ort-f32"]))
        for k, v in t8.items():
            ips = 8 * requests / float(np.median(v))
            print(f"  {k:<16} {ips:9.1f} /s  {ips / base:5.2f}x")
        m = getattr(b8["nd"], "__self__", None)
        if m is not None:
            copies = [c for c in m.specializations().values() if c is not None]
            print(f"  nd batch-8 copy properties: {props(copies[0]) if copies else props(m)}")
    sys.stdout.flush()


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="mobilenet_v2,resnet50")
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--by-kernel", action="store_true",
                    help="only the batch-1 time per kernel kind, INT8 against float32 (PERF_COUNT)")
    args = ap.parse_args(argv)
    tpc = "?"
    try:
        with open("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list") as f:
            tpc = f.read().strip()
    except OSError:
        pass
    print(f"CPU cores: {os.cpu_count()}, affinity {len(os.sched_getaffinity(0))}, cpu0 siblings {tpc}")
    for name in args.models.split(","):
        if args.by_kernel:
            net, q, one = quantized(name)
            by_kernel(name, net, q, one)
        else:
            bench(name, args.iters, args.rounds, args.requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
