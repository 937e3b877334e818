"""Batch-8 (and larger) float32 throughput: netdsl on OpenVINO against ONNX Runtime, every example model.

    python benchmarks/throughput.py                                  # all examples, batch 8
    python benchmarks/throughput.py --models bert,resnet50 --batch 16 --rounds 5
    python benchmarks/throughput.py --variants tput-dyn,tput-static,lat-static

One process, same network (the example's ``network()``), same seeded weights and the same inputs
for every engine; outputs are cross-checked against ONNX Runtime before timing; engines take turns
(interleaved rounds, the starting engine rotating) and each measurement processes ``--requests``
different batches (repeated for small models until it lasts ``--min-seconds``), after one untimed
pass of them per engine (netdsl's static copy is compiled there; its time is printed). Throughput = samples per second (median over rounds).

Engines:
  netdsl      what netdsl does by default for throughput: ``netdsl.compile(net, "openvino",
              hint="throughput")`` then ``model.run_many(batches)`` (float32; symbolic dims dynamic,
              and from the second call on one shape run_many runs a static copy compiled for it at
              the dynamic model's streams)
  ort         ONNX Runtime CPU on the network exported by ``netdsl.export_onnx`` (all graph
              optimizations, default threads), batches run back to back, its usual way
Variants (opt-in, ``--variants``; for finding the defaults; none of them specializes):
  lat-dyn / lat-static       latency hint (one stream, every core on each request), symbolic dims
                             left dynamic / fixed to the fed shape; requests back to back
  tput-dyn / tput-static     throughput hint (several streams) through run_many, dynamic (netdsl's
                             default before run_many specialized) / static (OpenVINO's streams)
  tput-bounded               throughput hint, dims bounded to 1..2x the fed size (``dynamic={"N": (1, 16)}``)
  tput-static-x2             as tput-static with twice OPTIMAL_NUMBER_OF_INFER_REQUESTS in flight
  tput-hinted                throughput hint told how many requests will be in flight
                             (PERFORMANCE_HINT_NUM_REQUESTS = --requests), static
  netdsl-copy                netdsl with every input copied into the requests' own tensors (as
                             before inputs of 64 KiB or more were handed to OpenVINO in place)

Ratios: netdsl (and each variant) / ort; > 1.00x means faster than ONNX Runtime.
BERT runs at sequence length 128 (``--seq``) with a padded tail in its attention mask; YOLOv3-tiny
outputs its raw heads (its box decoding is a plugin op that ONNX Runtime lacks).
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

import netdsl  # noqa: E402
from feeds import copying, dims, make_feeds  # noqa: E402

MODELS = ("lenet", "digits", "resnet50", "mobilenet_v2", "bert", "alexnet", "unet", "yolov3_tiny", "vit_tiny")


def network(name: str, batch: int) -> Any:
    mod = importlib.import_module(name)
    # lenet's example binds its shipped weights at batch 1: give it the batch dim to benchmark;
    # yolov3_tiny: its raw heads (the box decoding is a plugin op ONNX Runtime does not have)
    extra = {"lenet": {"weights": None}, "yolov3_tiny": {"output": "heads"}}.get(name, {})
    net = mod.network(batch="N", **extra)
    net.init_random(0)
    return net


# ---- engines: name -> (runner over a list of feeds, seconds to prepare) ---------------------------
def ort_engine(onnx_path: str) -> Callable:
    import onnxruntime as rt
    from openvino_vs_peers import ort_options
    sess = rt.InferenceSession(onnx_path, ort_options(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return lambda feeds: [dict(zip(names, sess.run(None, f))) for f in feeds]


def ov_engine(graph: Any, variant: str, batch: int, seq: int, requests: int) -> Callable:
    from netdsl.backends import openvino as ovb
    static = dims(graph, batch, seq)
    if variant in ("netdsl", "netdsl-copy"):
        m = ovb.compile(graph, hint="throughput")
        run = (lambda feeds: m.run_many(feeds)) if variant == "netdsl" else copying(m.run_many)  # noqa: E731
    else:
        hint = "latency" if variant.startswith("lat") else "throughput"
        dyn = None if variant.endswith("dyn") else static
        if variant == "tput-bounded":
            dyn = {k: (1, 2 * v) for k, v in static.items()}
        config = {"PERFORMANCE_HINT_NUM_REQUESTS": str(requests)} if variant == "tput-hinted" else None
        m = ovb.compile(graph, hint=hint, dynamic=dyn, config=config, specialize=False)
        jobs = 2 * m.optimal_requests() if variant.endswith("x2") else None
        run = (lambda feeds: [m.run(f) for f in feeds]) if hint == "latency" else \
            (lambda feeds: m.run_many(feeds, jobs=jobs))
    run.model = m  # type: ignore[attr-defined]  (for streams())
    return run


def streams(run: Callable) -> str:
    m = getattr(run, "model", None)
    if m is None:
        return ""
    special = [s for s in m.specializations().values() if s is not None]
    note = f"; static copy compiled in {m.specialize_seconds:.2f} s" if special else ""
    m = special[0] if special else m
    return (f"{m.compiled.get_property('NUM_STREAMS')} streams, {m.compiled.get_property('INFERENCE_NUM_THREADS')} "
            f"threads, {m.optimal_requests()} requests{note}")


def bench(name: str, engines: list, batch: int, seq: int, requests: int, rounds: int,
          min_seconds: float = 0.3) -> dict:
    net = network(name, batch)
    g = net.graph
    rng = np.random.default_rng(1)
    feeds = [make_feeds(g, batch, rng, seq) for _ in range(requests)]
    runners: dict[str, Callable] = {}
    prep: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, f"{name}.onnx")
        netdsl.export_onnx(net, path)
        for e in ["ort"] + engines:
            t0 = time.perf_counter()
            runners[e] = ort_engine(path) if e == "ort" else ov_engine(g, e, batch, seq, requests)
            prep[e] = time.perf_counter() - t0
        ref = runners["ort"](feeds[:1])[0]
        for e, run in runners.items():  # same answers first (float32 engines: 1e-3 of the output scale)
            got = run(feeds[:1])[0]
            for k, r in ref.items():
                err = float(np.max(np.abs(np.asarray(got[k], np.float64) - r))) if r.size else 0.0
                scale = max(1.0, float(np.max(np.abs(r)))) if r.size else 1.0
                if err > 1e-3 * scale:
                    raise SystemExit(f"{name}: {e} output {k} differs from ONNX Runtime by {err:g} (scale {scale:g})")
        for e, run in runners.items():  # one untimed pass each (netdsl compiles its static copy here)
            t = time.perf_counter()
            run(feeds)
            if e == "ort":
                reps = max(1, int(np.ceil(min_seconds / (time.perf_counter() - t))))  # small models: repeat
        times: dict[str, list] = {e: [] for e in runners}
        order = list(runners)
        for r in range(rounds):
            for e in order[r % len(order):] + order[:r % len(order)]:
                time.sleep(0.05)  # the previous engine's spinning worker threads settle first
                t = time.perf_counter()
                for _ in range(reps):
                    runners[e](feeds)
                times[e].append(time.perf_counter() - t)
    out = {}
    for e in runners:
        med = float(np.median(times[e]))
        out[e] = {"per_s": batch * requests * reps / med, "prep_s": prep[e], "info": streams(runners[e])}
    return out


def main(argv: list | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128, help="BERT's sequence length")
    ap.add_argument("--requests", type=int, default=16, help="batches per measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-seconds", type=float, default=0.3,
                    help="each measurement repeats the batches until ONNX Runtime would take this long")
    ap.add_argument("--variants", default="", help="comma-separated opt-in variants (see the module doc)")
    args = ap.parse_args(argv)
    import onnxruntime
    import openvino
    engines = ["netdsl"] + [v for v in args.variants.split(",") if v]
    print(f"{os.cpu_count()} CPUs; OpenVINO {openvino.get_version()}; ONNX Runtime {onnxruntime.__version__}; "
          f"batch {args.batch}, {args.requests} batches per measurement, {args.rounds} rounds; float32")
    rows = ["| model | engine | samples/s | vs ort | streams / requests |", "|---|---|---|---|---|"]
    for name in args.models.split(","):
        res = bench(name.strip(), engines, args.batch, args.seq, args.requests, args.rounds, args.min_seconds)
        ort = res["ort"]["per_s"]
        for e, r in res.items():
            line = f"| {name} | {e} | {r['per_s']:.1f} | {r['per_s'] / ort:.2f}x | {r['info']} |"
            rows.append(line)
            print(line, flush=True)
    print("\n" + "\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
