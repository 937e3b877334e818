"""netdsl INT8 on OpenVINO against ONNX Runtime's own static INT8 quantizer and ONNX Runtime float32,
in one process, same networks, weights and calibration data.

    python benchmarks/int8_vs_onnxruntime.py                          # resnet50, mobilenet_v2, bert
    python benchmarks/int8_vs_onnxruntime.py --models resnet50 --iters 20
    python benchmarks/int8_vs_onnxruntime.py --models mobilenet_v2 --variants int8-defaults,int8-s16

Engines:
  netdsl-int8  netdsl.quantize (percentile calibration on OpenVINO f32, per-channel int8 weights)
               compiled by OpenVINO for the fed shape (latency hint at batch 1, throughput hint +
               run_many at 8)
  ort-int8     onnxruntime.quantization.quantize_static on the exported float model (QDQ,
               per-channel, its defaults otherwise), same calibration batches
  ort-f32      ONNX Runtime on the exported float model (all graph optimizations)
Variants of netdsl-int8 (opt-in, ``--variants``):
  int8-defaults  netdsl's defaults: dims left dynamic (``compile(qnet)`` called per batch-1 request;
                 ``compile(qnet, hint="throughput").run_many`` at batch 8); both run static copies
                 compiled for the fed shape after the untimed pass (see runtime.py)
  int8-sK        batch 8 at K streams (NUM_STREAMS=K, static dims; batch 1 as netdsl-int8)
  int8-x2        batch 8 with twice OPTIMAL_NUMBER_OF_INFER_REQUESTS in flight

An untimed pass first (``--iters`` batch-1 calls, two batch-8 passes), then engines take turns:
``--rounds`` rounds, the starting engine rotating; each round times ``--iters`` batch-1 calls for each
engine, then one pass over the batch-8 requests for each (medians), with a 50 ms pause before each
engine's turn (ONNX Runtime's and OpenVINO's idle workers spin for a while).

Prints batch-1 latency (median), batch-8 throughput (images or sequences per second, ``--requests``
batch-8 requests per measurement), how often INT8 top-1 agrees with float32 for the classifiers and
the SQNR of the first output against float32 (random weights and inputs: no real data ships for these
models), and the ratios of netdsl-int8 against each peer (> 1.00x: netdsl-int8 is faster). BERT runs
at sequence length 128.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import netdsl as nd  # noqa: E402
from netdsl.backends import openvino as ovb  # noqa: E402
from netdsl.passes import optimize  # noqa: E402
from feeds import dims, make_feeds  # noqa: E402
from openvino_vs_peers import ort  # noqa: E402

PAUSE = 0.05  # s between engines: the previous engine's spinning worker threads settle first


def ort_int8(onnx_path: str, calib: list, out_path: str) -> tuple:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(calib)

        def get_next(self) -> Any:
            return next(self.it, None)

    t0 = time.perf_counter()
    quantize_static(onnx_path, out_path, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    weight_type=QuantType.QInt8)
    q = time.perf_counter() - t0
    run1, run8, _ = ort(out_path)
    return run1, run8, q


def netdsl_int8(net: Any, calib: list) -> tuple:
    t0 = time.perf_counter()
    q = nd.quantize(net, calib, method="percentile", backend="openvino", report=False)
    tq = time.perf_counter() - t0
    g = q.graph
    m1 = ovb.compile(g, hint="latency", dynamic=dims(g, 1))
    m8 = ovb.compile(g, hint="throughput", dynamic=dims(g, 8))
    return m1, m8.run_many, tq, q


def int8_variant(variant: str, q: Any, m1: Any) -> tuple:
    """(run1, run8, prep seconds) of one ``--variants`` entry on the quantized network ``q``."""
    g = q.graph
    t0 = time.perf_counter()
    if variant == "int8-defaults":
        m1 = ovb.compile(g)
        run8 = ovb.compile(g, hint="throughput").run_many
    elif variant == "int8-x2":
        m8 = ovb.compile(g, hint="throughput", dynamic=dims(g, 8))
        run8 = lambda feeds: m8.run_many(feeds, jobs=2 * m8.optimal_requests())  # noqa: E731
    elif variant.startswith("int8-s") and variant[6:].isdigit():
        run8 = ovb.compile(g, hint="throughput", dynamic=dims(g, 8), num_streams=int(variant[6:])).run_many
    else:
        raise SystemExit(f"unknown variant {variant!r}")
    return m1, run8, time.perf_counter() - t0


def streams(run8: Any) -> str:
    """'streams x threads' of the OpenVINO model behind a batch-8 runner (its static copy if any)."""
    m = getattr(run8, "__self__", None)
    if m is None or not hasattr(m, "compiled"):
        return ""
    m = next((c for c in m.specializations().values() if c is not None), m)
    n = int(m.compiled.get_property("NUM_STREAMS"))
    return f"{n} x {int(m.compiled.get_property('INFERENCE_NUM_THREADS')) // max(1, n)}"


def first(out: dict) -> np.ndarray:
    return np.asarray(next(iter(out.values())), np.float64)


def sqnr_db(ref: np.ndarray, got: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - got) ** 2), 1e-30)))


def bench(name: str, iters: int, calib_batches: int, requests: int, rounds: int = 3, variants: tuple = (),
          seed: int = 0) -> dict:
    mod = importlib.import_module(name)
    net = mod.network(batch="N")
    net.init_random(seed)
    rng = np.random.default_rng(seed)
    calib = [make_feeds(net.graph, 8, rng) for _ in range(calib_batches)]
    one = make_feeds(net.graph, 1, rng)
    eight = [make_feeds(net.graph, 8, rng) for _ in range(requests)]
    engines: dict[str, tuple] = {}
    with tempfile.TemporaryDirectory() as d:
        f32 = os.path.join(d, f"{name}.onnx")
        nd.export_onnx(optimize(net.graph), f32)  # batch norms folded, as ORT's quantizer expects
        *own, q = netdsl_int8(net, calib)
        engines["netdsl-int8"] = tuple(own)
        for v in variants:
            engines[v] = int8_variant(v, q, own[0])
        engines["ort-int8"] = ort_int8(f32, calib, os.path.join(d, f"{name}.int8.onnx"))
        engines["ort-f32"] = ort(f32)
        ref = [first(o) for o in engines["ort-f32"][1](eight)]
        res: dict[str, dict] = {}
        for e, (run1, run8, prep) in engines.items():  # untimed pass (warms up; checks the answers)
            for _ in range(iters):
                run1(one)
            getattr(run1, "wait_specialized", lambda: None)()  # netdsl's defaults: the static copy
            got = [first(o) for o in run8(eight)]
            run8(eight)
            top1 = float(np.mean([np.mean(g.argmax(-1) == r.argmax(-1)) for g, r in zip(got, ref)]))
            sq = sqnr_db(np.concatenate([r.ravel() for r in ref]), np.concatenate([g.ravel() for g in got]))
            res[e] = {"prep_s": prep, "top1": top1 if ref[0].ndim == 2 else float("nan"), "sqnr": sq}
        lat: dict[str, list] = {e: [] for e in engines}
        thr: dict[str, list] = {e: [] for e in engines}
        order = list(engines)
        for r in range(rounds):
            turn = order[r % len(order):] + order[:r % len(order)]
            for e in turn:  # batch 1 for every engine, then batch 8 for every engine
                run1 = engines[e][0]
                time.sleep(PAUSE)
                for _ in range(iters):
                    t = time.perf_counter()
                    run1(one)
                    lat[e].append(time.perf_counter() - t)
            for e in turn:
                time.sleep(PAUSE)
                t = time.perf_counter()
                engines[e][1](eight)
                thr[e].append(time.perf_counter() - t)
        for e in engines:
            res[e]["b1_ms"] = 1e3 * float(np.median(lat[e]))
            res[e]["b8_per_s"] = 8 * len(eight) / float(np.median(thr[e]))
            res[e]["streams"] = streams(engines[e][1])
    return res


def main(argv: list | None = None) -> int:
    import logging
    logging.getLogger().setLevel(logging.ERROR)  # ORT's quantizer logs advice on the root logger
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="resnet50,mobilenet_v2,bert")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--calib-batches", type=int, default=4)
    ap.add_argument("--requests", type=int, default=16, help="batch-8 requests per throughput measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--variants", default="", help="comma-separated opt-in netdsl-int8 variants (module doc)")
    args = ap.parse_args(argv)
    variants = tuple(v for v in args.variants.split(",") if v)
    print(f"CPU cores: {os.cpu_count()}")
    for name in args.models.split(","):
        r = bench(name, args.iters, args.calib_batches, args.requests, args.rounds, variants)
        print(f"\n{name}")
        print(f"  {'engine':<14} {'b1 ms':>9} {'b8 /s':>9} {'top1=f32':>9} {'SQNR dB':>8} {'prep s':>8}  b8 streams")
        for e, v in r.items():
            print(f"  {e:<14} {v['b1_ms']:9.2f} {v['b8_per_s']:9.1f} {v['top1']:9.3f} {v['sqnr']:8.1f} "
                  f"{v['prep_s']:8.2f}  {v['streams']}")
        for own in ("netdsl-int8",) + variants:
            n = r[own]
            for peer in ("ort-int8", "ort-f32"):
                p = r[peer]
                print(f"  {own} vs {peer}: b1 {p['b1_ms'] / n['b1_ms']:.2f}x, b8 {n['b8_per_s'] / p['b8_per_s']:.2f}x")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
